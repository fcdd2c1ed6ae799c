//! What the fleet tests run for real, all on loopback in a temp dir: Debian's etcd, the
//! `switchyard` binary (several instances of one fleet), HAProxy in front of them, and a
//! TCP relay that can cut one instance off from etcd.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use mysql_async::prelude::*;
use mysql_async::{Conn, OptsBuilder};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};
use tokio::sync::watch;

use super::common;

pub use super::common::{free_port, until, ScratchDir};

/// A fleet test's scratch directory, removed when dropped.
pub fn scratch(label: &str) -> ScratchDir {
    ScratchDir::new(&format!("sy-fleet-{label}"))
}

// ---- etcd ----

pub struct Etcd {
    pub port: u16,
    peer: u16,
    data: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

impl Etcd {
    /// A one-member etcd on two free ports, answering (within 20 s).
    pub async fn start(dir: &Path) -> Etcd {
        let mut e = Etcd {
            port: free_port(),
            peer: free_port(),
            data: dir.join("etcd-data"),
            log: dir.join("etcd.log"),
            child: None,
        };
        e.run().await;
        e
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    async fn run(&mut self) {
        let (c, p) = (self.port, self.peer);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new("etcd")
            .arg("--name=t")
            .arg(format!("--data-dir={}", self.data.display()))
            .arg(format!("--listen-client-urls=http://127.0.0.1:{c}"))
            .arg(format!("--advertise-client-urls=http://127.0.0.1:{c}"))
            .arg(format!("--listen-peer-urls=http://127.0.0.1:{p}"))
            .arg(format!(
                "--initial-advertise-peer-urls=http://127.0.0.1:{p}"
            ))
            .arg(format!("--initial-cluster=t=http://127.0.0.1:{p}"))
            // One member on loopback: elect itself in a fraction of a second.
            .args(["--heartbeat-interval=50", "--election-timeout=300"])
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("etcd (Debian's etcd-server) on PATH");
        self.child = Some(child);
        let endpoint = self.endpoint();
        until("etcd answers", Duration::from_secs(20), || {
            let endpoint = endpoint.clone();
            async move {
                let mut c = etcd_client::Client::connect([endpoint], None).await.ok()?;
                c.put("/probe", "1", None).await.ok().map(|_| ())
            }
        })
        .await;
    }

    /// Kills etcd (its data stays for the restart).
    pub async fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill().await;
        }
    }

    pub async fn restart(&mut self) {
        self.run().await;
    }

    pub async fn client(&self) -> etcd_client::Client {
        etcd_client::Client::connect([self.endpoint()], None)
            .await
            .unwrap()
    }
}

// ---- a relay that can cut one instance off from etcd ----

pub struct Relay {
    pub port: u16,
    open: watch::Sender<bool>,
}

impl Relay {
    /// Forwards loopback connections on a free port to `target`.
    pub async fn start(target: u16) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (open, _) = watch::channel(true);
        let gate = open.clone();
        tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let mut rx = gate.subscribe();
                if !*rx.borrow() {
                    continue; // cut: the connection is dropped at once
                }
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(("127.0.0.1", target)).await else {
                        return;
                    };
                    let mut inbound = inbound;
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = rx.wait_for(|open| !*open) => {}
                    }
                });
            }
        });
        Relay { port, open }
    }

    pub fn cut(&self) {
        self.open.send_replace(false);
    }

    pub fn restore(&self) {
        self.open.send_replace(true);
    }
}

// ---- switchyard instances ----

pub const ADMIN_PASSWORD: &str = "fleet-admin";

/// Settings shared by the fleet's instances: `[fleet]` waits and the tenants and users.
#[derive(Clone)]
pub struct FleetSpec {
    pub fleet: String,
    pub lease_ttl: &'static str,
    pub ack_timeout: &'static str,
    /// Everything after `[server]`, `[admin]` and `[fleet]`: tenants and users.
    pub body: String,
}

pub struct Instance {
    pub name: String,
    pub app: u16,
    pub admin: u16,
    pub http: u16,
    pub dir: PathBuf,
    child: Option<Child>,
}

/// Tenant acme (wf_acme) on the cluster whose primary and replicas are `ports`, with
/// `tenant_keys`, and its user acme_app; what the admin port needs.
pub fn acme_body(ports: [u16; 3], tenant_keys: &str) -> String {
    let [p, r1, r2] = ports;
    format!(
        "[admin]\nuser = \"admin\"\npassword = \"{ADMIN_PASSWORD}\"\n\n\
         [[tenants]]\nname = \"acme\"\nschemas = [\"wf_acme\"]\n\
         primary = \"127.0.0.1:{p}\"\nreplicas = [\"127.0.0.1:{r1}\", \"127.0.0.1:{r2}\"]\n\
         {tenant_keys}\n\n\
         [[users]]\nname = \"acme_app\"\npassword = \"acme_pw\"\ntenant = \"acme\"\n"
    )
}

pub fn local_ports() -> [u16; 3] {
    let [r1, r2] = common::replica_ports();
    [common::primary_port(), r1, r2]
}

impl Instance {
    /// Starts `switchyard run` as instance `name`, reaching etcd on `etcd_port`.
    pub fn spawn(root: &Path, name: &str, spec: &FleetSpec, etcd_port: u16) -> Instance {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let (app, admin, http) = (free_port(), free_port(), free_port());
        let text = format!(
            "[server]\nlisten = \"127.0.0.1:{app}\"\nadmin_listen = \"127.0.0.1:{admin}\"\n\
             http_listen = \"127.0.0.1:{http}\"\nhandshake_timeout = \"2s\"\nshutdown_grace = \"1s\"\n\n\
             [fleet]\nname = \"{}\"\netcd = [\"http://127.0.0.1:{etcd_port}\"]\ninstance = \"{name}\"\n\
             lease_ttl = \"{}\"\nack_timeout = \"{}\"\netcd_timeout = \"1s\"\n\
             document_cache = \"{}\"\n\n{}",
            spec.fleet,
            spec.lease_ttl,
            spec.ack_timeout,
            dir.join("fleet-document.toml").display(),
            spec.body
        );
        let file = dir.join("switchyard.toml");
        std::fs::write(&file, text).unwrap();
        let log = std::fs::File::create(dir.join("switchyard.log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_switchyard"))
            .args(["run", "--config"])
            .arg(&file)
            .env("RUST_LOG", "info")
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        Instance {
            name: name.to_string(),
            app,
            admin,
            http,
            dir,
            child: Some(child),
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().and_then(Child::id).expect("running") as i32
    }

    pub fn signal(&self, sig: &str) {
        let status = std::process::Command::new("kill")
            .args([format!("-{sig}"), self.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -{sig} {}", self.pid());
    }

    pub async fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill().await;
        }
    }

    /// Waits for the process to exit (after a signal).
    pub async fn wait(&mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = tokio::time::timeout(Duration::from_secs(10), c.wait()).await;
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("switchyard.log")).unwrap_or_default()
    }

    pub async fn admin(&self) -> Conn {
        let opts = OptsBuilder::default()
            .ip_or_hostname("127.0.0.1")
            .tcp_port(self.admin)
            .user(Some("admin"))
            .pass(Some(ADMIN_PASSWORD))
            .prefer_socket(false);
        Conn::new(opts).await.expect("admin login")
    }

    pub async fn app(&self) -> Conn {
        common::connect(self.app, "acme_app", Some("wf_acme")).await
    }

    /// `GET path` on the HTTP port: the body.
    pub async fn http_get(&self, path: &str) -> Option<String> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = TcpStream::connect(("127.0.0.1", self.http)).await.ok()?;
        let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.ok()?;
        let mut out = String::new();
        s.read_to_string(&mut out).await.ok()?;
        Some(out)
    }

    /// The value of an unlabelled metric.
    pub async fn metric(&self, name: &str) -> Option<f64> {
        let body = self.http_get("/metrics").await?;
        body.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .and_then(|v| v.trim().parse().ok())
    }
}

/// SHOW FLEET (or any admin command) as rows of column name to text.
pub async fn rows(c: &mut Conn, command: &str) -> mysql_async::Result<Vec<Vec<(String, String)>>> {
    let rows: Vec<mysql_async::Row> = c.query(command).await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let cols: Vec<String> = r
                .columns_ref()
                .iter()
                .map(|c| c.name_str().into_owned())
                .collect();
            let mut out = Vec::new();
            for (i, name) in cols.into_iter().enumerate() {
                let v: Option<String> = r.get_opt(i).and_then(Result::ok).flatten();
                out.push((name, v.unwrap_or_default()));
            }
            out
        })
        .collect())
}

pub fn field<'r>(row: &'r [(String, String)], name: &str) -> &'r str {
    row.iter()
        .find(|(n, _)| n == name)
        .map_or("", |(_, v)| v.as_str())
}

/// The fleet: etcd and `names` instances, each registered (within 20 s).
pub struct Fleet {
    pub dir: ScratchDir,
    pub etcd: Etcd,
    pub spec: FleetSpec,
    pub instances: Vec<Instance>,
}

impl Fleet {
    pub async fn start(label: &str, names: &[&str], spec: FleetSpec) -> Fleet {
        Self::start_relayed(label, names, spec, None).await.0
    }

    /// Like [`start`](Self::start), with instance `relayed` reaching etcd through a
    /// [`Relay`] the test can cut.
    pub async fn start_relayed(
        label: &str,
        names: &[&str],
        spec: FleetSpec,
        relayed: Option<&str>,
    ) -> (Fleet, Option<Relay>) {
        let dir = scratch(label);
        let etcd = Etcd::start(&dir.0).await;
        let relay = match relayed {
            Some(_) => Some(Relay::start(etcd.port).await),
            None => None,
        };
        let instances = names
            .iter()
            .map(|n| {
                let port = match (&relay, relayed) {
                    (Some(r), Some(name)) if name == *n => r.port,
                    _ => etcd.port,
                };
                Instance::spawn(&dir.0, n, &spec, port)
            })
            .collect();
        let f = Fleet {
            dir,
            etcd,
            spec,
            instances,
        };
        f.wait_live(names.len()).await;
        (f, relay)
    }

    pub fn get(&self, name: &str) -> &Instance {
        self.instances.iter().find(|i| i.name == name).unwrap()
    }

    /// Waits until `n` instances are live in etcd.
    pub async fn wait_live(&self, n: usize) {
        let endpoint = self.etcd.endpoint();
        let prefix = format!("/switchyard/{}/live/", self.spec.fleet);
        let logs = || {
            self.instances
                .iter()
                .map(|i| format!("--- {}:\n{}", i.name, i.log()))
                .collect::<String>()
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let live = live_count(&endpoint, &prefix).await;
            if live == n {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{live} of {n} instances live\n{}",
                logs()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The instance records in etcd (`live/`), by name.
    pub async fn records(&self) -> Vec<serde_json::Value> {
        let mut c = self.etcd.client().await;
        let prefix = format!("/switchyard/{}/live/", self.spec.fleet);
        let opts = etcd_client::GetOptions::new().with_prefix();
        let resp = c.get(prefix, Some(opts)).await.unwrap();
        resp.kvs()
            .iter()
            .filter_map(|kv| serde_json::from_slice(kv.value()).ok())
            .collect()
    }
}

async fn live_count(endpoint: &str, prefix: &str) -> usize {
    let Ok(mut c) = etcd_client::Client::connect([endpoint], None).await else {
        return 0;
    };
    let opts = etcd_client::GetOptions::new()
        .with_prefix()
        .with_count_only();
    c.get(prefix, Some(opts))
        .await
        .map_or(0, |r| r.count() as usize)
}

// ---- HAProxy ----

pub struct HaProxy {
    pub port: u16,
    _child: Child,
}

impl HaProxy {
    /// TCP load balancing over `instances`' app ports, each checked with `GET /ready`.
    pub async fn start(dir: &Path, instances: &[&Instance]) -> HaProxy {
        let port = free_port();
        let mut servers = String::new();
        for i in instances {
            servers.push_str(&format!(
                "  server {} 127.0.0.1:{} check port {}\n",
                i.name, i.app, i.http
            ));
        }
        let cfg = format!(
            "global\n  maxconn 2000\n\n\
             defaults\n  mode tcp\n  timeout connect 1s\n  timeout client 60s\n  timeout server 60s\n\
             \x20 retries 3\n  option redispatch\n\n\
             frontend mysql\n  bind 127.0.0.1:{port}\n  default_backend switchyard\n\n\
             backend switchyard\n  balance roundrobin\n  option httpchk GET /ready\n\
             \x20 http-check expect status 200\n  default-server inter 200ms fall 2 rise 1\n{servers}"
        );
        let file = dir.join("haproxy.cfg");
        std::fs::write(&file, cfg).unwrap();
        let log = std::fs::File::create(dir.join("haproxy.log")).unwrap();
        let child = common::haproxy(&file, log.into());
        let h = HaProxy {
            port,
            _child: child,
        };
        until(
            "haproxy passes a query through",
            Duration::from_secs(10),
            || async move {
                let mut c = Conn::new(common::opts(port, "acme_app", Some("wf_acme")))
                    .await
                    .ok()?;
                c.query_drop("SELECT 1").await.ok()
            },
        )
        .await;
        h
    }
}
