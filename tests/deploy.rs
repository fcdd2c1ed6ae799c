//! The container deployment stays valid and in step with the rest of the repo:
//! `docker-compose.yml`, the `Dockerfile` and `config/compose.toml`, which must be
//! `config/switchyard.toml` (what the local cluster and the tests use) with only its
//! addresses changed.
//!
//! No Docker engine and no network: `switchyard check`, `docker-compose config` (or
//! `docker compose config`) and PyYAML, which `scripts/cluster.sh deps` installs. One test
//! runs the stack itself without Docker: scratch MariaDB servers made by the services' own
//! settings and init scripts, and the switchyard binary with the compose config.

mod common;

use common::compose::{environment, read, resolved_environment, root, service, strings};

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use switchyard::config::{self, Config};

/// The passwords the configs read with `${VAR}` (the local cluster's, as in scripts/test.sh).
const ENV: [(&str, &str); 5] = [
    ("SWITCHYARD_ADMIN_PASSWORD", "admin"),
    ("SWITCHYARD_MONITOR_PASSWORD", "sy_monitor"),
    ("ACME_APP_PASSWORD", "acme_pw"),
    ("GLOBEX_APP_PASSWORD", "globex_pw"),
    ("OPS_PASSWORD", "ops_pw"),
];

/// Local cluster address -> its docker-compose counterpart. Every address in
/// config/switchyard.toml must be here.
const ADDRESSES: [(&str, &str); 6] = [
    ("127.0.0.1:6033", "0.0.0.0:6033"),
    ("127.0.0.1:6032", "0.0.0.0:6032"),
    ("127.0.0.1:9090", "0.0.0.0:9090"),
    ("127.0.0.1:3307", "primary:3306"),
    ("127.0.0.1:3308", "replica1:3306"),
    ("127.0.0.1:3309", "replica2:3306"),
];

const MARIADB_SERVICES: [&str; 3] = ["primary", "replica1", "replica2"];

fn env_lookup(name: &str) -> Option<String> {
    ENV.iter()
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

fn parse_config(rel: &str) -> Config {
    config::parse(&read(rel), &env_lookup).unwrap_or_else(|e| panic!("{rel} does not parse:\n{e}"))
}

fn port_of(addr: &str) -> u16 {
    addr.rsplit_once(':')
        .and_then(|(_, p)| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {addr}"))
}

/// The `${VAR}` names a config file reads.
fn referenced_variables(text: &str) -> BTreeSet<String> {
    text.split("${")
        .skip(1)
        .filter_map(|rest| rest.split_once('}').map(|(name, _)| name.to_string()))
        .collect()
}

#[test]
fn switchyard_check_accepts_the_compose_config() {
    let out = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .current_dir(root())
        .args(["check", "--config", "config/compose.toml"])
        .envs(ENV)
        .output()
        .expect("run switchyard check");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "switchyard check --config config/compose.toml failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("primary:3306"), "{stdout}");
    assert!(stdout.contains("replica2:3306"), "{stdout}");
}

#[test]
fn compose_config_is_the_example_config_with_other_addresses() {
    let local = parse_config("config/switchyard.toml");
    let compose = parse_config("config/compose.toml");
    let map = |addr: &str| -> String {
        ADDRESSES
            .iter()
            .find(|(from, _)| *from == addr)
            .map(|(_, to)| to.to_string())
            .unwrap_or_else(|| {
                panic!("config/switchyard.toml has address {addr}: give it a docker-compose counterpart in tests/deploy.rs and config/compose.toml")
            })
    };
    let mut mapped = local.clone();
    mapped.server.listen = map(&mapped.server.listen);
    for listen in [
        &mut mapped.server.admin_listen,
        &mut mapped.server.http_listen,
    ]
    .into_iter()
    .flatten()
    {
        *listen = map(listen);
    }
    for t in &mut mapped.tenants {
        t.primary = map(&t.primary);
        for r in &mut t.replicas {
            r.addr = map(&r.addr);
        }
    }
    // Debug covers every field (secrets print as ***, so they are compared on their own).
    assert_eq!(
        format!("{mapped:#?}"),
        format!("{compose:#?}"),
        "config/compose.toml must be config/switchyard.toml with only the addresses changed"
    );
    let secrets = |c: &Config| -> Vec<String> {
        let mut v: Vec<String> = c
            .users
            .iter()
            .map(|u| u.password.plaintext().unwrap_or_default().to_string())
            .collect();
        v.extend(c.admin.iter().map(|a| a.password.expose().to_string()));
        v
    };
    assert_eq!(secrets(&local), secrets(&compose));
    assert_eq!(
        referenced_variables(&read("config/switchyard.toml")),
        referenced_variables(&read("config/compose.toml")),
        "both configs read the same environment variables"
    );
}

#[test]
fn docker_compose_config_accepts_the_file() {
    // `docker compose` (v2 plugin) if present, else docker-compose (v1, Debian's package).
    let v2 = Command::new("docker")
        .args(["compose", "version"])
        .output()
        .is_ok_and(|o| o.status.success());
    let (program, mut args) = if v2 {
        ("docker", vec!["compose"])
    } else {
        ("docker-compose", vec![])
    };
    args.extend(["--file", "docker-compose.yml", "config", "--quiet"]);
    let out = Command::new(program)
        .current_dir(root())
        .args(&args)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {program} (scripts/cluster.sh deps installs docker-compose): {e}")
        });
    assert!(
        out.status.success(),
        "{program} {} failed:\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn compose_services_match_the_compose_config() {
    let compose = common::compose::file();
    let cfg = parse_config("config/compose.toml");
    let services: BTreeSet<&str> = compose["services"]
        .as_object()
        .expect("services")
        .keys()
        .map(String::as_str)
        .collect();
    for name in MARIADB_SERVICES.iter().chain(&["switchyard"]) {
        assert!(
            services.contains(name),
            "service {name} missing: {services:?}"
        );
    }

    // Switchyard: built from this repo, config/compose.toml mounted where the image reads it.
    let sy = service(&compose, "switchyard");
    assert!(
        sy.get("build").is_some(),
        "switchyard must be built (build: .)"
    );
    let volumes = strings(sy.get("volumes"));
    assert!(
        volumes
            .iter()
            .any(|v| v == "./config/compose.toml:/etc/switchyard/switchyard.toml:ro"),
        "switchyard must mount config/compose.toml read-only: {volumes:?}"
    );
    // Docker's stop waits out the drain (SIGKILL after 10 s otherwise).
    let stop = sy["stop_grace_period"].as_str().expect("stop_grace_period");
    let stop: u64 = stop.trim_end_matches('s').parse().expect(stop);
    assert!(
        stop > cfg.server.shutdown_grace.as_secs(),
        "stop_grace_period {stop}s"
    );
    let command = strings(sy.get("command")).join(" ");
    assert!(
        command.is_empty() || command == "run --config /etc/switchyard/switchyard.toml",
        "{command}"
    );

    // Published ports are the ports the config listens on.
    let published: BTreeSet<u16> = strings(sy.get("ports"))
        .iter()
        .map(|p| port_of(p.split('/').next().unwrap_or(p)))
        .collect();
    let s = &cfg.server;
    let listening: BTreeSet<u16> = [
        Some(&s.listen),
        s.admin_listen.as_ref(),
        s.http_listen.as_ref(),
    ]
    .into_iter()
    .flatten()
    .map(|a| port_of(a))
    .collect();
    assert_eq!(
        published, listening,
        "switchyard ports vs [server] listeners"
    );
    assert_eq!(listening, BTreeSet::from([6033, 6032, 9090]));

    let health = strings(sy.get("healthcheck").and_then(|h| h.get("test"))).join(" ");
    let http_port = port_of(s.http_listen.as_deref().expect("http_listen"));
    assert!(
        health.contains(&format!("http://127.0.0.1:{http_port}/health")),
        "switchyard healthcheck must probe /health on http_listen: {health:?}"
    );

    // Every secret the config reads is passed in.
    let env = environment(sy);
    for var in referenced_variables(&read("config/compose.toml")) {
        assert!(env.contains_key(&var), "switchyard environment lacks {var}");
    }

    // Backends are services of this file, on MariaDB's port.
    for t in &cfg.tenants {
        for addr in std::iter::once(&t.primary).chain(t.replicas.iter().map(|r| &r.addr)) {
            let (host, port) = addr.rsplit_once(':').expect("host:port");
            assert!(
                MARIADB_SERVICES.contains(&host),
                "tenant {} uses {addr}, not a MariaDB service of docker-compose.yml",
                t.name
            );
            assert_eq!(port, "3306", "{addr}");
        }
    }
}

#[test]
fn mariadb_services_form_a_gtid_cluster() {
    let compose = common::compose::file();
    let mut server_ids = BTreeSet::new();
    for name in MARIADB_SERVICES {
        let svc = service(&compose, name);
        let image = svc["image"].as_str().unwrap_or("");
        assert!(image.starts_with("mariadb:10.11"), "{name}: image {image}");
        let command = strings(svc.get("command"));
        let id = command
            .iter()
            .find_map(|a| a.strip_prefix("--server-id="))
            .unwrap_or_else(|| panic!("{name}: no --server-id"));
        assert!(
            server_ids.insert(id.to_string()),
            "{name}: server id {id} reused"
        );
        let read_only = command.iter().any(|a| a == "--read-only=1");
        assert_eq!(read_only, name != "primary", "{name}: read_only");
        assert!(svc.get("healthcheck").is_some(), "{name}: healthcheck");

        // The init scripts and the shared server settings it mounts exist here.
        let volumes = strings(svc.get("volumes"));
        let init = volumes
            .iter()
            .find(|v| v.contains(":/docker-entrypoint-initdb.d"))
            .unwrap_or_else(|| panic!("{name}: no init scripts mounted"));
        let dir = root().join(init.split(':').next().unwrap_or(""));
        let scripts = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{name}: {}: {e}", dir.display()))
            .count();
        assert!(scripts > 0, "{name}: {} is empty", dir.display());
        assert!(
            volumes
                .iter()
                .any(|v| v.starts_with("./deploy/mariadb/conf.d/switchyard.cnf:")),
            "{name}: shared server settings not mounted"
        );
        if name != "primary" {
            assert!(
                svc.pointer("/depends_on/primary").is_some(),
                "{name} must start after the primary"
            );
        }
    }
    let cnf = read("deploy/mariadb/conf.d/switchyard.cnf");
    for setting in ["log-bin", "log-slave-updates", "gtid-strict-mode = ON"] {
        assert!(cnf.contains(setting), "switchyard.cnf lacks {setting}");
    }
    let replica_init = read("deploy/mariadb/replica/10-switchyard-replication.sh");
    assert!(replica_init.contains("MASTER_USE_GTID=slave_pos"));
    // The users scripts/cluster.sh creates (sy_root aside: the image has its own root).
    let primary_init = read("deploy/mariadb/primary/10-switchyard-users.sh");
    for user in ["acme_app", "globex_app", "ops", "sbtest", "repl"] {
        assert!(
            primary_init.contains(&format!("CREATE OR REPLACE USER '{user}'@'%'")),
            "primary init does not create {user}"
        );
    }
}

#[test]
fn dockerfile_builds_in_two_stages_and_runs_unprivileged() {
    let text = read("Dockerfile");
    let instructions = dockerfile_instructions(&text);
    let all = |word: &str| -> Vec<&str> {
        instructions
            .iter()
            .filter(|(w, _)| w == word)
            .map(|(_, rest)| rest.as_str())
            .collect()
    };
    let froms = all("FROM");
    assert!(froms.len() >= 2, "multi-stage build expected: {froms:?}");
    assert!(
        froms
            .last()
            .is_some_and(|f| f.starts_with("debian:bookworm-slim")),
        "runtime stage: {froms:?}"
    );
    let user = all("USER");
    let last_user = user.last().expect("a USER instruction");
    let name = last_user.split(':').next().unwrap_or("");
    assert!(
        name != "root" && name != "0",
        "the image must run as a non-root user, not {last_user}"
    );
    let health = all("HEALTHCHECK").join(" ");
    assert!(
        health.contains("http://127.0.0.1:9090/health"),
        "HEALTHCHECK must probe /health: {health}"
    );
    assert!(
        text.contains(r#"CMD ["run", "--config", "/etc/switchyard/switchyard.toml"]"#),
        "default command"
    );
    // Files the Dockerfile copies from the context must exist and not be ignored.
    let ignore = read(".dockerignore");
    for copied in ["deploy/switchyard/healthcheck.sh", "config/compose.toml"] {
        assert!(text.contains(copied));
        assert!(Path::new(&root().join(copied)).exists(), "{copied}");
        assert!(
            ignore.contains(&format!("!{copied}")),
            ".dockerignore hides {copied}"
        );
    }
}

/// One MariaDB service of docker-compose.yml as a scratch server on loopback: started with the
/// shared settings file and its service's command flags, set up by its init scripts the way
/// the image's entrypoint runs them (a first start without replication threads, the root
/// password set outside the binary log, the scripts, then a restart).
struct ScratchServer {
    name: &'static str,
    /// Removed after the server is killed (fields drop after `Drop::drop`).
    dir: common::ScratchDir,
    port: u16,
    flags: Vec<String>,
    child: Option<std::process::Child>,
}

impl ScratchServer {
    fn install(name: &'static str, flags: Vec<String>) -> Self {
        let port = common::free_port();
        let scratch = common::ScratchDir::new(&format!("sy-compose-{name}"));
        let dir = &scratch.0;
        // The client's own socket, so the init scripts' `mariadb --protocol=socket` finds
        // this server as it finds the container's (a client reads ~/.my.cnf last).
        let sock = dir.join("sock");
        std::fs::write(
            dir.join(".my.cnf"),
            format!("[client]\nsocket={}\n", sock.display()),
        )
        .unwrap();
        let out = Command::new(sbin("mariadb-install-db"))
            .args([
                "--no-defaults",
                "--user=root",
                "--skip-test-db",
                "--skip-name-resolve",
            ])
            .args([
                "--auth-root-authentication-method=socket",
                "--innodb-log-file-size=8M",
            ])
            .arg(format!("--datadir={}", dir.join("data").display()))
            .output()
            .expect("mariadb-install-db (scripts/cluster.sh deps installs mariadb-server)");
        assert!(out.status.success(), "{name}: mariadb-install-db: {out:?}");
        ScratchServer {
            name,
            dir: scratch,
            port,
            flags,
            child: None,
        }
    }

    fn start(&mut self, extra: &[&str]) {
        let d = &self.dir.0;
        let child = Command::new(sbin("mariadbd"))
            .arg(format!(
                "--defaults-file={}",
                root()
                    .join("deploy/mariadb/conf.d/switchyard.cnf")
                    .display()
            ))
            .args([
                "--user=root",
                "--bind-address=127.0.0.1",
                "--performance-schema=OFF",
            ])
            // Small, to keep three servers light; neither is a setting of the compose file.
            .args(["--innodb-log-file-size=8M", "--innodb-buffer-pool-size=32M"])
            .arg(format!("--port={}", self.port))
            .arg(format!("--datadir={}", d.join("data").display()))
            .arg(format!("--socket={}", d.join("sock").display()))
            .arg(format!("--pid-file={}", d.join("pid").display()))
            .arg(format!("--log-error={}", d.join("error.log").display()))
            .args(&self.flags)
            .args(extra)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("mariadbd (scripts/cluster.sh deps installs mariadb-server)");
        self.child = Some(child);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while self.client(&["-e", "SELECT 1"], &[]).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "{}: mariadbd did not start: {}",
                self.name,
                std::fs::read_to_string(d.join("error.log")).unwrap_or_default()
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }

    /// SIGTERM, and waits for the clean shutdown.
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").arg(child.id().to_string()).status();
            let _ = child.wait();
        }
    }

    /// Runs the mariadb client as root over the socket, with `env` added.
    fn client(&self, args: &[&str], env: &[(String, String)]) -> Result<String, String> {
        self.run(
            Command::new("mariadb")
                .args(["--user=root", "--batch", "--skip-column-names"])
                .args(args),
            env,
        )
    }

    fn run(&self, cmd: &mut Command, env: &[(String, String)]) -> Result<String, String> {
        let out = cmd
            .env("HOME", &self.dir.0)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(format!("{out:?}"))
        }
    }

    /// What the image's entrypoint does on an empty datadir: a first server without
    /// replication threads, root's password set outside the binary log, every script of
    /// the service's /docker-entrypoint-initdb.d in order, then the server proper.
    fn initialize(&mut self, init_dir: &Path, env: &[(String, String)]) {
        self.start(&["--skip-slave-start"]);
        let root_pw = &env
            .iter()
            .find(|(k, _)| k == "MARIADB_ROOT_PASSWORD")
            .expect("MARIADB_ROOT_PASSWORD")
            .1;
        self.client(
            &[
                "-e",
                &format!(
                    "SET sql_log_bin = 0; ALTER USER root@localhost IDENTIFIED VIA unix_socket \
                     OR mysql_native_password USING PASSWORD('{root_pw}')"
                ),
            ],
            &[],
        )
        .unwrap();
        let mut scripts: Vec<PathBuf> = std::fs::read_dir(init_dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        scripts.sort();
        for script in scripts {
            if let Err(e) = self.run(Command::new("bash").arg(&script), env) {
                panic!("{}: {} failed: {e}", self.name, script.display());
            }
        }
        self.stop();
        self.start(&[]);
    }
}

impl Drop for ScratchServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The Dockerfile's instructions, one per logical line (comments dropped, `\`
/// continuations joined): the instruction word upper-cased, and the rest.
fn dockerfile_instructions(text: &str) -> Vec<(String, String)> {
    let logical = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n")
        .replace("\\\n", " ");
    logical
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .filter_map(|l| {
            let (word, rest) = l.split_once(char::is_whitespace)?;
            Some((word.to_ascii_uppercase(), rest.trim().to_string()))
        })
        .collect()
}

/// Copies `src` (a file or a tree) to the path `to`, making its parent directories.
fn copy_to(src: &Path, to: &Path) {
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    let status = Command::new("cp")
        .arg("-R")
        .arg(src)
        .arg(to)
        .status()
        .unwrap();
    assert!(status.success(), "cp -R {} {}", src.display(), to.display());
}

/// The build stage of the Dockerfile, replayed in a scratch directory from the build
/// context `.dockerignore` lets through: its COPYs done, and each RUN that builds run with
/// `cargo` standing for one that reads the manifest and every target as a build does
/// (`cargo build --bin <none>` answers "no bin target" only once all parse). A target the
/// context lacks (a `[[bench]]` whose file stays out) fails the image's build where no
/// Docker engine runs: this catches it here.
#[test]
fn docker_build_stage_has_every_file_cargo_reads() {
    let guard = common::ScratchDir::new("sy-docker-ctx");
    let scratch = &guard.0;
    let (context, work, shims) = (
        scratch.join("ctx"),
        scratch.join("src"),
        scratch.join("bin"),
    );
    for d in [&context, &work, &shims] {
        std::fs::create_dir_all(d).unwrap();
    }
    // The context: `*` then `!path` re-includes (the only forms the file may use here).
    for line in read(".dockerignore").lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line == "*" {
            continue;
        }
        let rel = line
            .strip_prefix('!')
            .unwrap_or_else(|| panic!(".dockerignore: only `*` and `!path` are replayed: {line}"));
        if root().join(rel).exists() {
            copy_to(&root().join(rel), &context.join(rel));
        }
    }
    let cargo = option_env!("CARGO").unwrap_or("cargo");
    std::fs::write(
        shims.join("cargo"),
        format!(
            "#!/bin/bash\n[ \"$1\" = build ] || {{ echo \"cargo $1: only builds are replayed\" >&2; exit 1; }}\n\
             out=$(\"{cargo}\" build --offline --locked --bin __no_such_bin__ 2>&1)\n\
             case \"$out\" in *'no bin target named'*) exit 0 ;; esac\n\
             echo \"$out\" >&2\nexit 1\n"
        ),
    )
    .unwrap();
    Command::new("chmod")
        .arg("+x")
        .arg(shims.join("cargo"))
        .status()
        .unwrap();
    let path = format!(
        "{}:{}",
        shims.display(),
        std::env::var("PATH").unwrap_or_default()
    );

    let mut in_build = false;
    let mut builds = 0;
    // The build arguments as RUN sees them: their defaults, but the plain build's branch
    // (PGO=0) is what runs here; the profile-guided one is scripts/pgo.sh's, run on its own.
    let mut args: Vec<(String, String)> = Vec::new();
    for (word, rest) in dockerfile_instructions(&read("Dockerfile")) {
        match word.as_str() {
            "FROM" => in_build = rest.ends_with(" AS build"),
            "ARG" if in_build => {
                let (name, default) = rest.split_once('=').unwrap_or((&rest, ""));
                let value = if name == "PGO" { "0" } else { default };
                args.push((name.to_string(), value.to_string()));
            }
            "COPY" if in_build => {
                assert!(!rest.starts_with("--"), "COPY {rest}: not replayed");
                let args: Vec<&str> = rest.split_whitespace().collect();
                let (dest, sources) = args.split_last().unwrap();
                for src in sources {
                    assert!(
                        context.join(src).exists(),
                        "COPY {src}: not in the build context (.dockerignore)"
                    );
                    let to = if dest.ends_with('/') {
                        work.join(dest).join(Path::new(src).file_name().unwrap())
                    } else {
                        work.join(dest)
                    };
                    copy_to(&context.join(src), &to);
                }
            }
            // Only what builds runs here, in the scratch directory; package installs do
            // not touch this machine.
            "RUN" if in_build && rest.contains("cargo ") => {
                assert!(
                    !rest.contains(" /") && !rest.contains("apt-get"),
                    "a building RUN is replayed on this machine: keep it to relative paths: {rest}"
                );
                // As Docker runs it: /bin/sh -c, no -e (the && chains stop at a failure).
                let out = Command::new("sh")
                    .args(["-c", &rest])
                    .current_dir(&work)
                    .envs(args.iter().map(|(k, v)| (k, v)))
                    .env("PATH", &path)
                    .output()
                    .unwrap();
                assert!(
                    out.status.success(),
                    "RUN {rest}\n{}",
                    String::from_utf8_lossy(&out.stderr)
                );
                builds += 1;
            }
            _ => {}
        }
    }
    assert!(
        builds >= 1,
        "no cargo build in the Dockerfile's build stage"
    );
    assert!(
        args.iter().any(|(k, _)| k == "PGO"),
        "the build stage has no PGO argument"
    );
    // What scripts/pgo.sh reads (outside comments) is in the stage for its branch.
    let pgo = read("scripts/pgo.sh");
    let mut needed = vec!["scripts/pgo.sh".to_string()];
    for line in pgo.lines().filter(|l| !l.trim_start().starts_with('#')) {
        for word in line.split(|c: char| c.is_whitespace() || c == '"') {
            if word.starts_with("bench/") {
                needed.push(word.to_string());
            }
        }
        if let Some(rest) = line.split("--example ").nth(1) {
            let name = rest.split_whitespace().next().unwrap();
            needed.push(format!("examples/{name}.rs"));
        }
    }
    assert!(needed.len() >= 4, "{needed:?}");
    for file in needed {
        assert!(
            work.join(&file).exists(),
            "{file} (read by scripts/pgo.sh) is not in the image's build stage"
        );
    }
}

/// The server that answered a read: `@@report_host` (replica1, replica2; NULL on the
/// primary), as docs/operations.md tells compose users to ask.
async fn report_host(c: &mut mysql_async::Conn) -> Option<String> {
    use mysql_async::prelude::Queryable;
    c.query_first::<Option<String>, _>("SELECT @@report_host")
        .await
        .unwrap()
        .flatten()
}

/// A MariaDB server program: on PATH, or in /usr/sbin where Debian puts it.
fn sbin(program: &str) -> PathBuf {
    let in_sbin = Path::new("/usr/sbin").join(program);
    if in_sbin.exists() {
        in_sbin
    } else {
        PathBuf::from(program)
    }
}

/// `docker compose up` without Docker: the three MariaDB services made from their settings
/// and init scripts (deploy/mariadb/), and the switchyard binary with config/compose.toml, its
/// service names replaced by those servers' loopback addresses. What docs/operations.md
/// says of the stack holds: the demo logins work, reads go to the replicas (`@@report_host`),
/// transactions and a tenant without replicas to the primary, a write is read back at once,
/// and the container health check passes. Docker's own part (images, entrypoint) is not run.
#[tokio::test]
async fn the_compose_stack_serves_the_demo_without_docker() {
    use mysql_async::prelude::Queryable;

    let compose = common::compose::file();
    let mut servers: Vec<ScratchServer> = Vec::new();
    let mut addresses = Vec::new();
    for name in MARIADB_SERVICES {
        let svc = service(&compose, name);
        let mut server = ScratchServer::install(name, strings(svc.get("command")));
        let mut env = resolved_environment(svc);
        if let Some(primary) = servers.first() {
            env.push(("PRIMARY_HOST".into(), "127.0.0.1".into()));
            env.push(("PRIMARY_PORT".into(), primary.port.to_string()));
        }
        let init = strings(svc.get("volumes"))
            .into_iter()
            .find(|v| v.contains(":/docker-entrypoint-initdb.d"))
            .expect("init scripts mounted");
        let init = root().join(init.split(':').next().unwrap());
        server.initialize(&init, &env);
        addresses.push((format!("{name}:3306"), format!("127.0.0.1:{}", server.port)));
        servers.push(server);
    }

    let (admin, http) = (common::free_port(), common::free_port());
    let proxy = common::binary::spawn(
        |port| {
            let mut text = read("config/compose.toml")
                .replace("0.0.0.0:6033", &format!("127.0.0.1:{port}"))
                .replace("0.0.0.0:6032", &format!("127.0.0.1:{admin}"))
                .replace("0.0.0.0:9090", &format!("127.0.0.1:{http}"));
            for (service, local) in &addresses {
                text = text.replace(service.as_str(), local);
            }
            text
        },
        &[],
        std::process::Stdio::null(),
    );

    let mut acme = proxy.connect("acme_app", Some("wf_acme")).await;
    // Reads go to a replica once the monitor (its own login, made by the primary's
    // script) has seen the replicas replicating.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while report_host(&mut acme).await.is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "acme's reads never reached a replica"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    for _ in 0..10 {
        let host = report_host(&mut acme).await;
        assert!(
            matches!(host.as_deref(), Some("replica1" | "replica2")),
            "read served by {host:?}"
        );
    }
    acme.query_drop("CREATE TABLE compose_check (id INT PRIMARY KEY)")
        .await
        .unwrap();
    acme.query_drop("INSERT INTO compose_check VALUES (7)")
        .await
        .unwrap();
    let ids: Vec<i32> = acme.query("SELECT id FROM compose_check").await.unwrap();
    assert_eq!(
        ids,
        [7],
        "the write read back at once (consistency = tenant)"
    );
    acme.query_drop("BEGIN").await.unwrap();
    assert_eq!(
        report_host(&mut acme).await,
        None,
        "a transaction on the primary"
    );
    acme.query_drop("COMMIT").await.unwrap();

    let mut globex = proxy.connect("globex_app", Some("wf_globex")).await;
    assert_eq!(
        report_host(&mut globex).await,
        None,
        "globex has no replicas"
    );
    let mut ops = proxy.connect("ops", Some("wf_acme")).await;
    let ids: Vec<i32> = ops.query("SELECT id FROM compose_check").await.unwrap();
    assert_eq!(ids, [7]);
    ops.query_drop("USE wf_globex").await.unwrap();

    let health = common::compose::health_check(&format!("http://127.0.0.1:{http}/health")).await;
    assert_eq!(health, Some(0), "the container health check");
    drop(proxy);
}

fn k8s_object<'d>(docs: &'d [serde_json::Value], kind: &str, name: &str) -> &'d serde_json::Value {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("deploy/k8s has no {kind} {name}"))
}

/// The Kubernetes manifests agree with themselves and with Switchyard, as far as can be
/// told without a cluster: each pod's file is a valid config (with the variables the pod
/// gets), the probes ask the HTTP port for paths that answer, the container and Service
/// ports are the listeners, the push Job names the pods' fleet and etcd, and the secret the
/// README creates holds every variable the pod's file and the compose config read.
#[test]
fn k8s_manifests_agree_with_the_config() {
    let docs = common::compose::yaml_documents(&[
        "deploy/k8s/etcd.yaml",
        "deploy/k8s/switchyard.yaml",
        "deploy/k8s/config-push.yaml",
    ]);
    let instance = k8s_object(&docs, "ConfigMap", "switchyard-instance")["data"]["switchyard.toml"]
        .as_str()
        .expect("the pod's switchyard.toml");
    let dir = common::ScratchDir::new("sy-k8s");
    let file = dir.0.join("switchyard.toml");
    std::fs::write(&file, instance).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["check", "--config"])
        .arg(&file)
        .envs(ENV)
        .envs([("POD_NAME", "switchyard-7d9-a"), ("POD_IP", "10.0.0.7")])
        .output()
        .unwrap();
    drop(dir);
    assert!(
        out.status.success(),
        "the pod's config:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let cfg = config::parse(instance, &|v: &str| {
        env_lookup(v).or_else(|| Some(format!("{v}-value")))
    })
    .unwrap();
    let fleet = cfg.fleet.as_ref().expect("[fleet]");

    let deployment = k8s_object(&docs, "Deployment", "switchyard");
    let pod = &deployment["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    let port_of_name = |name: &str| -> u16 {
        container["ports"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .and_then(|p| p["containerPort"].as_u64())
            .unwrap_or_else(|| panic!("no container port {name}")) as u16
    };
    let s = &cfg.server;
    assert_eq!(port_of_name("mysql"), port_of(&s.listen));
    assert_eq!(
        port_of_name("admin"),
        port_of(s.admin_listen.as_deref().unwrap())
    );
    assert_eq!(
        port_of_name("http"),
        port_of(s.http_listen.as_deref().unwrap())
    );
    for (probe, path) in [("readinessProbe", "/ready"), ("livenessProbe", "/health")] {
        assert_eq!(container[probe]["httpGet"]["path"], path, "{probe}");
        assert_eq!(container[probe]["httpGet"]["port"], "http", "{probe}");
    }
    assert_eq!(
        strings(container.get("args")),
        ["run", "--config", "/etc/switchyard/switchyard.toml"]
    );
    assert_eq!(container["volumeMounts"][0]["mountPath"], "/etc/switchyard");
    // The fleet document's cache sits on a volume the pod can write.
    let cache = fleet.document_cache.as_ref().expect("fleet.document_cache");
    let mounted = container["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| {
            m["readOnly"] != true
                && m["mountPath"]
                    .as_str()
                    .is_some_and(|at| cache.starts_with(at))
        });
    assert!(mounted, "{} is on no writable volume", cache.display());
    // The pod's name is its instance name; the grace outlasts the preStop wait (which
    // keeps the listener open until the Service has let the pod go) and shutdown_grace.
    let grace = pod["terminationGracePeriodSeconds"].as_u64().unwrap();
    let pre_stop = strings(container["lifecycle"]["preStop"]["exec"].get("command"));
    assert_eq!(pre_stop[0], "sleep", "{pre_stop:?}");
    let pre_stop: u64 = pre_stop[1].parse().unwrap();
    assert!(
        grace > pre_stop + s.shutdown_grace.as_secs(),
        "terminationGracePeriodSeconds {grace} <= preStop {pre_stop} + shutdown_grace"
    );
    for (service, wanted) in [("switchyard", "mysql"), ("switchyard-admin", "admin")] {
        let ports = &k8s_object(&docs, "Service", service)["spec"]["ports"];
        assert!(
            ports
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["targetPort"] == wanted),
            "Service {service} targets no {wanted} port"
        );
    }

    let job = k8s_object(&docs, "Job", "switchyard-config-push");
    let push = strings(job["spec"]["template"]["spec"]["containers"][0].get("args"));
    let after = |flag: &str| {
        push.iter()
            .skip_while(|a| *a != flag)
            .nth(1)
            .cloned()
            .unwrap_or_else(|| panic!("push without {flag}: {push:?}"))
    };
    assert_eq!(push[..2], ["config", "push"]);
    assert_eq!(after("--fleet"), fleet.name);
    assert!(fleet.etcd.contains(&after("--etcd")), "{:?}", fleet.etcd);
    let etcd = k8s_object(&docs, "Service", "switchyard-etcd");
    assert!(after("--etcd").starts_with("http://switchyard-etcd:"));
    assert_eq!(etcd["spec"]["ports"][0]["port"], 2379);

    let readme = read("deploy/k8s/README.md");
    let mut wanted = referenced_variables(instance);
    wanted.extend(referenced_variables(&read("config/compose.toml")));
    for var in wanted {
        if var.starts_with("POD_") {
            continue;
        }
        assert!(
            readme.contains(&format!("--from-literal={var}=")),
            "deploy/k8s/README.md's secret lacks {var}"
        );
    }
}
