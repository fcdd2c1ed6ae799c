//! Tests of the config as a whole: `parse` on complete files, helpers, and rendering.

use std::time::Duration;

use super::*;

/// The example from product.md, verbatim.
const PRODUCT_EXAMPLE: &str = r#"
[server]
listen = "127.0.0.1:6033"        # MySQL protocol, for apps
admin_listen = "127.0.0.1:6032"  # MySQL protocol, for ops (admin commands)
http_listen = "127.0.0.1:9090"   # GET /metrics, /health, /ready
max_connections = 10000          # client connections, all tenants together
handshake_timeout = "10s"        # a client that does not finish logging in is dropped
idle_timeout = "8h"              # like the server's wait_timeout
shutdown_grace = "30s"           # SIGTERM: open transactions get this long to finish
tls_cert = "config/tls/server.pem"   # optional: TLS for clients (PEM certificate chain)
tls_key = "config/tls/server.key"
require_tls = false              # true: plaintext logins are refused

[admin]
user = "admin"
password = "${SWITCHYARD_ADMIN_PASSWORD}"   # ${VAR} is read from the environment

[defaults]                       # each tenant inherits these unless it sets its own
consistency = "read_your_writes" # eventual | read_your_writes | primary
max_replica_lag = "5s"           # replicas further behind get no reads
health_interval = "500ms"
pool_max = 64                    # backend connections per backend server

[[tenants]]
name = "acme"
schemas = ["wf_acme", "rb_acme"]  # databases that belong to this tenant
primary = "127.0.0.1:3307"
replicas = ["127.0.0.1:3308", { addr = "127.0.0.1:3309", weight = 2 }]
max_replica_lag = "2s"
max_connections = 500             # this tenant's client connections
backend_tls = { ca = "config/tls/ca.pem" }   # optional: TLS to this tenant's servers

[[tenants]]
name = "globex"
schemas = ["wf_globex"]
primary = "127.0.0.1:3307"
replicas = []                     # all traffic to the primary

[[users]]
name = "acme_app"
password = "${ACME_APP_PASSWORD}"
tenant = "acme"                   # bound to one tenant
max_connections = 200

[[users]]
name = "ops"
password = "${OPS_PASSWORD}"
tenants = "*"                     # tenant chosen by the database named at connect or by USE
"#;

const ADMIN_PW: &str = "adm1n-Secret!";
const ACME_PW: &str = "acme-Secret!";
const GLOBEX_PW: &str = "globex-Secret!";
const OPS_PW: &str = "ops-Secret!";
const MONITOR_PW: &str = "mon1tor-Secret!";

fn demo_env(name: &str) -> Option<String> {
    let value = match name {
        "SWITCHYARD_ADMIN_PASSWORD" => ADMIN_PW,
        "ACME_APP_PASSWORD" => ACME_PW,
        "GLOBEX_APP_PASSWORD" => GLOBEX_PW,
        "OPS_PASSWORD" => OPS_PW,
        "SWITCHYARD_MONITOR_PASSWORD" => MONITOR_PW,
        _ => return None,
    };
    Some(value.to_string())
}

fn no_env(_: &str) -> Option<String> {
    None
}

fn parse_ok(text: &str) -> Config {
    match parse(text, &demo_env) {
        Ok(cfg) => cfg,
        Err(e) => panic!("expected a valid config, got:\n{e}"),
    }
}

fn parse_err(text: &str) -> Vec<ConfigError> {
    match parse(text, &demo_env) {
        Ok(cfg) => panic!("expected errors, got a valid config: {cfg:?}"),
        Err(e) => e.0,
    }
}

/// Asserts exactly one error, at `line` and `path`, whose message contains `needle`.
fn assert_single_error(text: &str, line: usize, path: &str, needle: &str) {
    let errors = parse_err(text);
    assert_eq!(errors.len(), 1, "expected one error, got {errors:#?}");
    let e = &errors[0];
    assert_eq!(
        (e.line, e.path.as_str()),
        (Some(line), path),
        "wrong place: {e}"
    );
    assert!(e.message.contains(needle), "message lacks {needle:?}: {e}");
}

/// A valid tenant + user pair, to which tests append the one thing they break.
const BASE: &str = r#"[[tenants]]
name = "acme"
schemas = ["wf_acme"]
primary = "db1:3306"

[[users]]
name = "app"
password = "pw"
tenant = "acme"
"#;

// ---- valid configs ----

#[test]
fn product_example_parses() {
    let cfg = parse_ok(PRODUCT_EXAMPLE);
    let s = &cfg.server;
    assert_eq!(s.listen, "127.0.0.1:6033");
    assert_eq!(s.admin_listen.as_deref(), Some("127.0.0.1:6032"));
    assert_eq!(s.http_listen.as_deref(), Some("127.0.0.1:9090"));
    assert_eq!(s.max_connections, 10_000);
    assert_eq!(s.handshake_timeout, Duration::from_secs(10));
    assert_eq!(s.idle_timeout, Duration::from_secs(8 * 3600));
    assert_eq!(s.shutdown_grace, Duration::from_secs(30));
    assert_eq!(s.tls_cert.as_deref(), Some("config/tls/server.pem"));
    assert_eq!(s.tls_key.as_deref(), Some("config/tls/server.key"));
    assert!(!s.require_tls);

    let admin = cfg.admin.as_ref().expect("admin");
    assert_eq!(admin.user, "admin");
    assert_eq!(admin.password.expose(), ADMIN_PW);

    let acme = cfg.tenant("acme").expect("acme");
    assert_eq!(acme.schemas, ["wf_acme", "rb_acme"]);
    assert_eq!(acme.primary, "127.0.0.1:3307");
    assert_eq!(
        acme.replicas,
        [
            ReplicaConfig {
                addr: "127.0.0.1:3308".into(),
                weight: 1
            },
            ReplicaConfig {
                addr: "127.0.0.1:3309".into(),
                weight: 2
            },
        ]
    );
    assert_eq!(acme.max_replica_lag, Duration::from_secs(2));
    assert_eq!(acme.max_connections, Some(500));
    assert_eq!(acme.backend_tls_ca.as_deref(), Some("config/tls/ca.pem"));
    assert_eq!(acme.consistency, Consistency::Session);
    assert_eq!(acme.health_interval, Duration::from_millis(500));
    assert_eq!(acme.pool_max, 64);

    let globex = cfg.tenant("globex").expect("globex");
    assert!(globex.replicas.is_empty());
    assert_eq!(globex.max_replica_lag, Duration::from_secs(5));
    assert_eq!(globex.max_connections, None);

    let acme_app = cfg.user("acme_app").expect("acme_app");
    assert_eq!(acme_app.password.plaintext().unwrap(), ACME_PW);
    assert_eq!(acme_app.tenants, UserTenants::One("acme".into()));
    assert_eq!(acme_app.max_connections, Some(200));
    let ops = cfg.user("ops").expect("ops");
    assert_eq!(ops.password.plaintext().unwrap(), OPS_PW);
    assert_eq!(ops.tenants, UserTenants::All);
}

#[test]
fn demo_config_file_parses() {
    let cfg = parse_ok(include_str!("../../config/switchyard.toml"));
    assert_eq!(cfg.server.listen, "127.0.0.1:6033");
    assert_eq!(cfg.server.admin_listen.as_deref(), Some("127.0.0.1:6032"));
    assert_eq!(cfg.server.http_listen.as_deref(), Some("127.0.0.1:9090"));
    let admin = cfg.admin.as_ref().expect("admin");
    assert_eq!(
        (admin.user.as_str(), admin.password.expose()),
        ("admin", ADMIN_PW)
    );

    let acme = cfg.tenant("acme").expect("acme");
    assert_eq!(acme.schemas, ["wf_acme", "rb_acme"]);
    assert_eq!(acme.primary, "127.0.0.1:3307");
    let replicas: Vec<_> = acme
        .replicas
        .iter()
        .map(|r| (r.addr.as_str(), r.weight))
        .collect();
    assert_eq!(replicas, [("127.0.0.1:3308", 1), ("127.0.0.1:3309", 1)]);
    let globex = cfg.tenant("globex").expect("globex");
    assert_eq!(globex.schemas, ["wf_globex"]);
    assert_eq!(globex.primary, "127.0.0.1:3307");
    assert!(globex.replicas.is_empty());

    let binding = |name: &str| {
        cfg.user(name)
            .map(|u| (u.tenants.clone(), u.password.plaintext().unwrap()))
    };
    assert_eq!(
        binding("acme_app"),
        Some((UserTenants::One("acme".into()), ACME_PW))
    );
    assert_eq!(
        binding("globex_app"),
        Some((UserTenants::One("globex".into()), GLOBEX_PW))
    );
    assert_eq!(binding("ops"), Some((UserTenants::All, OPS_PW)));

    let monitor = cfg.monitor.as_ref().expect("monitor");
    assert_eq!(
        (monitor.user.as_str(), monitor.password.expose()),
        ("sy_monitor", MONITOR_PW)
    );
    assert_eq!(
        (monitor.connect_timeout, monitor.rise, monitor.fall),
        (Duration::from_secs(1), 2, 1)
    );
}

#[test]
fn demo_config_file_needs_its_env_vars() {
    let err = parse(include_str!("../../config/switchyard.toml"), &no_env).expect_err("no env");
    let missing: Vec<&str> = err.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        missing,
        [
            "admin.password",
            "monitor.password",
            "users[0].password",
            "users[1].password",
            "users[2].password"
        ]
    );
}

#[test]
fn built_in_defaults_apply_when_sections_are_absent() {
    let cfg = parse_ok(BASE);
    let s = &cfg.server;
    assert_eq!(s.listen, "127.0.0.1:6033");
    assert_eq!(s.admin_listen, None);
    assert_eq!(s.http_listen, None);
    assert_eq!(s.max_connections, 10_000);
    assert_eq!(s.handshake_timeout, Duration::from_secs(10));
    assert_eq!(s.idle_timeout, Duration::from_secs(8 * 3600));
    assert_eq!(s.shutdown_grace, Duration::from_secs(30));
    assert!(!s.require_tls);
    assert!(cfg.admin.is_none());
    let t = &cfg.tenants[0];
    assert_eq!(t.consistency, Consistency::Tenant);
    assert_eq!(t.max_replica_lag, Duration::from_secs(5));
    assert_eq!(t.health_interval, Duration::from_millis(500));
    assert_eq!(t.pool_max, 64);
    assert!(t.replicas.is_empty());
}

#[test]
fn tenants_inherit_defaults_unless_they_override() {
    let text = r#"
[defaults]
consistency = "eventual"
max_replica_lag = "1m"
health_interval = "2s"
pool_max = 8

[[tenants]]
name = "inherits"
schemas = ["a"]
primary = "db1:3306"

[[tenants]]
name = "overrides"
schemas = ["b"]
primary = "db1:3306"
consistency = "primary"
max_replica_lag = "250ms"
health_interval = "1d"
pool_max = 2
"#;
    let cfg = parse_ok(text);
    let a = cfg.tenant("inherits").expect("inherits");
    assert_eq!(a.consistency, Consistency::Eventual);
    assert_eq!(a.max_replica_lag, Duration::from_secs(60));
    assert_eq!(a.health_interval, Duration::from_secs(2));
    assert_eq!(a.pool_max, 8);
    let b = cfg.tenant("overrides").expect("overrides");
    assert_eq!(b.consistency, Consistency::Primary);
    assert_eq!(b.max_replica_lag, Duration::from_millis(250));
    assert_eq!(b.health_interval, Duration::from_secs(86_400));
    assert_eq!(b.pool_max, 2);
}

#[test]
fn accepts_tenant_lists_ipv6_and_backend_credentials() {
    let text = r#"
[[tenants]]
name = "a"
schemas = ["wf_a"]
primary = "[::1]:3306"
replicas = [{ addr = "[2001:db8::1]:3306" }]
backend_user = "svc"
backend_password = "${OPS_PASSWORD}"

[[tenants]]
name = "b"
schemas = ["wf_b"]
primary = "db-b:3306"

[[users]]
name = "multi"
password = ""
tenants = ["a", "b"]
"#;
    let cfg = parse_ok(text);
    let a = cfg.tenant("a").expect("a");
    assert_eq!(a.primary, "[::1]:3306");
    assert_eq!(a.replicas[0].weight, 1);
    assert_eq!(a.backend_user.as_deref(), Some("svc"));
    assert_eq!(
        a.backend_password.as_ref().map(Secret::expose),
        Some(OPS_PW)
    );
    let multi = cfg.user("multi").expect("multi");
    assert_eq!(
        multi.tenants,
        UserTenants::List(vec!["a".into(), "b".into()])
    );
}

#[test]
fn env_vars_expand_in_any_string() {
    let text = BASE.replace("db1:3306", "${DB_HOST}:3306");
    let env = |name: &str| (name == "DB_HOST").then(|| "db-primary".to_string());
    let cfg = parse(&text, &env).expect("valid");
    assert_eq!(cfg.tenants[0].primary, "db-primary:3306");
}

#[test]
fn admin_user_may_share_a_name_with_an_app_user() {
    let text = format!("[admin]\nuser = \"app\"\npassword = \"x\"\n\n{BASE}");
    let cfg = parse_ok(&text);
    assert_eq!(cfg.admin.map(|a| a.user), Some("app".to_string()));
}

/// An empty secret (`SWITCHYARD_ADMIN_PASSWORD=""`, an empty k8s secret) opened the admin
/// port and the HTTP API to a login with no password.
#[test]
fn an_empty_admin_password_is_refused() {
    let text = format!("[admin]\nuser = \"admin\"\npassword = \"${{ADMIN_PW}}\"\n\n{BASE}");
    let env = |name: &str| (name == "ADMIN_PW").then(String::new);
    let errs = parse(&text, &env).unwrap_err().to_string();
    assert!(errs.contains("admin.password is empty"), "{errs}");
    let env = |name: &str| (name == "ADMIN_PW").then(|| "s3cret".to_string());
    assert!(parse(&text, &env).is_ok());
}

#[test]
fn a_backend_user_without_its_password_is_refused() {
    let text = BASE.replacen(
        "primary = \"db1:3306\"",
        "primary = \"db1:3306\"\nbackend_user = \"sy_acme\"",
        1,
    );
    let errs = parse(&text, &demo_env).unwrap_err().to_string();
    assert!(errs.contains("backend_password is missing"), "{errs}");
    // A cluster's tenant takes the cluster's password when it names its own user.
    let text = "[[clusters]]\nname = \"c\"\nprimary = \"db:1\"\nbackend_user = \"u\"\nbackend_password = \"pw\"\n\n\
        [[tenants]]\nname = \"a\"\ncluster = \"c\"\nschemas = [\"a\"]\nbackend_user = \"v\"\n";
    let cfg = parse(text, &demo_env).unwrap();
    let t = cfg.tenant("a").unwrap();
    assert_eq!(t.backend_user.as_deref(), Some("v"));
    assert_eq!(t.backend_password.as_ref().map(|p| p.expose()), Some("pw"));
}

#[test]
fn a_tenant_name_with_a_slash_is_refused() {
    let text = BASE.replacen("name = \"acme\"", "name = \"acme/eu\"", 1);
    let errs = parse(&text, &demo_env).unwrap_err().to_string();
    assert!(
        errs.contains("tenant name \"acme/eu\" contains '/'"),
        "{errs}"
    );
}

/// Settings `check` passed and `run` could not live with: a zero handshake or idle timeout
/// ended every login or session at once, two listeners on one port failed the second
/// bind, a replica that is the primary took every read to the primary, a fractional
/// lease was cut to whole seconds, a thread count past the workers' counters shared them.
#[test]
fn settings_that_cannot_run_are_refused() {
    let server = |keys: &str| format!("[server]\n{keys}\n\n{BASE}");
    for (keys, needle) in [
        ("handshake_timeout = \"0s\"", "must be greater than 0"),
        ("idle_timeout = \"0s\"", "must be at least 1s"),
        ("idle_timeout = \"500ms\"", "must be at least 1s"),
        ("threads = 256", "at most 255 worker threads"),
        (
            "listen = \"127.0.0.1:6033\"\nadmin_listen = \"127.0.0.1:6033\"",
            "is also server.listen's",
        ),
        (
            "listen = \"0.0.0.0:6033\"\nhttp_listen = \"127.0.0.1:6033\"",
            "is also server.listen's",
        ),
        (
            "admin_listen = \"[::]:6032\"\nhttp_listen = \"127.0.0.1:6032\"",
            "is also server.admin_listen's",
        ),
    ] {
        let errs = parse(&server(keys), &demo_env).unwrap_err().to_string();
        assert!(errs.contains(needle), "{keys}: {errs}");
    }
    parse_ok(&server(
        "listen = \"127.0.0.1:6033\"\nadmin_listen = \"127.0.0.2:6033\"\nthreads = 255\nidle_timeout = \"1s\"",
    ));
    // An IPv4 wildcard and an IPv6 address bind side by side.
    parse_ok(&server(
        "listen = \"0.0.0.0:6033\"\nadmin_listen = \"[::1]:6033\"",
    ));
    let text = BASE.replacen(
        "primary = \"db1:3306\"",
        "primary = \"db1:3306\"\nreplicas = [\"DB1:3306\"]",
        1,
    );
    let errs = parse(&text, &demo_env).unwrap_err().to_string();
    assert!(errs.contains("is the tenant's primary"), "{errs}");
    let fleet = format!(
        "[fleet]\nname = \"f\"\ninstance = \"a\"\netcd = [\"http://127.0.0.1:2379\"]\nlease_ttl = \"2900ms\"\n\n{BASE}"
    );
    let errs = parse(&fleet, &demo_env).unwrap_err().to_string();
    assert!(errs.contains("must be whole seconds"), "{errs}");
}

/// Two tenants' schemas that differ in letter case only are one database on a server with
/// `lower_case_table_names` set: each tenant's users would reach the other's data.
#[test]
fn schemas_differing_in_case_only_are_refused() {
    let text = format!(
        "{BASE}\n[[tenants]]\nname = \"globex\"\nschemas = [\"WF_Acme\"]\nprimary = \"db1:3306\"\n"
    );
    let errs = parse(&text, &demo_env).unwrap_err().to_string();
    assert!(
        errs.contains(
            "differs from tenant \"acme\"'s \"wf_acme\" on the same server in letter case only"
        ),
        "{errs}"
    );
    // On other servers they are two databases; an exact second claim is refused still,
    // after a claim in another case.
    let text = format!(
        "{BASE}\n[[tenants]]\nname = \"b\"\nschemas = [\"WF_ACME\"]\nprimary = \"db2:3306\"\n\n\
         [[tenants]]\nname = \"c\"\nschemas = [\"WF_ACME\"]\nprimary = \"db2:3306\"\n"
    );
    let errs = parse(&text, &demo_env).unwrap_err().to_string();
    assert!(
        errs.contains("schema \"WF_ACME\" is already owned by tenant \"b\""),
        "{errs}"
    );
    // One tenant's own two spellings share no data with another tenant.
    parse_ok(&BASE.replace("[\"wf_acme\"]", "[\"wf_acme\", \"WF_ACME\"]"));
}

// ---- helpers ----

#[test]
fn lookup_helpers() {
    let cfg = parse_ok(PRODUCT_EXAMPLE);
    assert_eq!(
        cfg.tenant("globex").map(|t| t.primary.as_str()),
        Some("127.0.0.1:3307")
    );
    assert!(cfg.tenant("Globex").is_none());
    assert!(cfg.user("ops").is_some());
    assert!(cfg.user("nobody").is_none());
    assert_eq!(owner(&cfg, "rb_acme").as_deref(), Some("acme"));
    assert_eq!(owner(&cfg, "wf_globex").as_deref(), Some("globex"));
    assert!(owner(&cfg, "WF_ACME").is_none(), "case-sensitive");
    assert!(owner(&cfg, "mysql").is_none());
}

#[test]
fn user_tenants_allows() {
    assert!(UserTenants::One("a".into()).allows("a"));
    assert!(!UserTenants::One("a".into()).allows("b"));
    let list = UserTenants::List(vec!["a".into(), "b".into()]);
    assert!(list.allows("b"));
    assert!(!list.allows("c"));
    assert!(UserTenants::All.allows("anything"));
}

#[test]
fn consistency_round_trips() {
    for c in [
        Consistency::Eventual,
        Consistency::Session,
        Consistency::Tenant,
        Consistency::Global,
        Consistency::Primary,
    ] {
        assert_eq!(Consistency::parse(c.as_str()), Some(c));
        assert_eq!(c.to_string(), c.as_str());
    }
    assert_eq!(
        Consistency::parse("read_your_writes"),
        Some(Consistency::Session),
        "the older name stays an alias"
    );
    assert_eq!(Consistency::parse("Primary"), None);
}

// ---- [monitor] ----

#[test]
fn monitor_is_off_unless_configured() {
    assert!(parse_ok(BASE).monitor.is_none());
}

#[test]
fn monitor_defaults_and_overrides() {
    let text = format!("[monitor]\nuser = \"mon\"\npassword = \"pw\"\n\n{BASE}");
    let m = parse_ok(&text).monitor.expect("monitor");
    assert_eq!(m.user, "mon");
    assert_eq!(
        (m.connect_timeout, m.rise, m.fall),
        (Duration::from_secs(1), 2, 1)
    );

    let text = format!(
        "[monitor]\nuser = \"mon\"\npassword = \"${{SWITCHYARD_MONITOR_PASSWORD}}\"\n\
         connect_timeout = \"250ms\"\nrise = 5\nfall = 3\n\n{BASE}"
    );
    let m = parse_ok(&text).monitor.expect("monitor");
    assert_eq!(m.password.expose(), MONITOR_PW);
    assert_eq!(
        (m.connect_timeout, m.rise, m.fall),
        (Duration::from_millis(250), 5, 3)
    );
}

#[test]
fn monitor_problems_are_reported_with_their_keys() {
    let text = format!(
        "[monitor]\nuser = \"\"\npassword = \"pw\"\nconnect_timeout = \"0s\"\n\
         rise = 0\nfall = 0\ninterval = \"1s\"\n\n{BASE}"
    );
    let errors = parse_err(&text);
    let got: Vec<_> = errors.iter().map(|e| (e.line, e.path.as_str())).collect();
    assert_eq!(
        got,
        [
            (Some(2), "monitor.user"),
            (Some(4), "monitor.connect_timeout"),
            (Some(5), "monitor.rise"),
            (Some(6), "monitor.fall"),
            (Some(7), "monitor.interval"),
        ],
        "{errors:#?}"
    );
}

#[test]
fn monitor_needs_a_user_and_password() {
    let text = format!("[monitor]\nuser = \"mon\"\n\n{BASE}");
    let errors = parse_err(&text);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(errors[0].path, "monitor.password");
}

#[test]
fn monitor_is_rendered_without_its_password() {
    let text = format!(
        "[monitor]\nuser = \"mon\"\npassword = \"${{SWITCHYARD_MONITOR_PASSWORD}}\"\nrise = 3\n\n{BASE}"
    );
    let cfg = parse_ok(&text);
    let table = render_table(&cfg);
    assert!(
        table.contains("monitor          user mon, connect_timeout 1s, rise 3, fall 1"),
        "{table}"
    );
    assert!(!table.contains(MONITOR_PW), "{table}");
    assert!(!format!("{cfg:?}").contains(MONITOR_PW));
}

// ---- secrets ----

#[test]
fn secrets_stay_out_of_debug_and_render() {
    let cfg = parse_ok(PRODUCT_EXAMPLE);
    let debug = format!("{cfg:?}");
    let table = render_table(&cfg);
    for secret in [ADMIN_PW, ACME_PW, OPS_PW] {
        assert!(!debug.contains(secret), "Debug leaks {secret}");
        assert!(!table.contains(secret), "render leaks {secret}");
    }
    assert!(debug.contains("***"));
    assert_eq!(Secret::new("pw").to_string(), "***");
    // Nor the hash a plain password is kept with (SHA1(SHA1(pw)), what the server stores),
    // in any of the ways Debug writes bytes.
    let native = crate::protocol::auth::native_stage2(ACME_PW.as_bytes());
    let hex: String = native.iter().map(|b| format!("{b:02x}")).collect();
    assert!(
        !debug.contains(&format!("{native:?}")),
        "Debug leaks the hash"
    );
    assert!(!debug.contains("native"), "Debug names the hash");
    assert!(!debug.to_lowercase().contains(&hex));
}

#[test]
fn errors_never_echo_a_password() {
    // A password that is not a valid `${VAR}` reference must not appear in the report.
    let text = BASE.replace("password = \"pw\"", "password = \"hunter2${\"");
    let errors = parse_err(&text);
    let report = ConfigErrors(errors).to_string();
    assert!(report.contains("users[0].password"), "{report}");
    assert!(!report.contains("hunter2"), "{report}");
}

#[test]
fn a_password_written_without_quotes_is_not_echoed() {
    let text = BASE.replace("password = \"pw\"", "password = 12345678");
    let report = ConfigErrors(parse_err(&text)).to_string();
    assert!(report.contains("users[0].password"), "{report}");
    assert!(report.contains("invalid type: integer"), "{report}");
    assert!(!report.contains("12345678"), "{report}");
}

// ---- render ----

#[test]
fn render_shows_the_routing_table() {
    let table = render_table(&parse_ok(PRODUCT_EXAMPLE));
    let expected = "\
server
  listen           127.0.0.1:6033
  admin_listen     127.0.0.1:6032 (user admin)
  http_listen      127.0.0.1:9090
  client tls       optional
  monitor          on, as each tenant's own login (no [monitor] section: lag from GTIDs, replication threads not seen)

tenant acme
  schemas          wf_acme, rb_acme
  primary          127.0.0.1:3307
  replicas         127.0.0.1:3308 (weight 1), 127.0.0.1:3309 (weight 2)
  consistency      session
  replica_fallback primary
  max_replica_lag  2s
  health_interval  500ms
  pool_max         64
  max_connections  500
  backend_tls_ca   config/tls/ca.pem
  lag measured     GTID timeline as acme_app (replication threads not checked: add [monitor] with SLAVE MONITOR for that)

tenant globex
  schemas          wf_globex
  primary          127.0.0.1:3307
  replicas         none (all traffic to the primary)
  consistency      session
  replica_fallback primary
  max_replica_lag  5s
  health_interval  500ms
  pool_max         64
  lag measured     no replicas

users
  acme_app -> acme  (max_connections 200)
  ops      -> * (any tenant)
";
    assert_eq!(table, expected);
}

// ---- errors: syntax and schema ----

#[test]
fn toml_syntax_error_has_a_line() {
    let text = "[server]\nlisten = \"127.0.0.1:6033\n";
    let errors = parse_err(text);
    assert_eq!(errors[0].line, Some(2), "{errors:#?}");
}

#[test]
fn several_syntax_errors_are_reported_together() {
    let text = "[server]
listen = \"127.0.0.1:6033\"
listen = \"x:1\"
[x\nmax_connections = = 3\n";
    let errors = parse_err(text);
    let lines: Vec<_> = errors.iter().map(|e| e.line).collect();
    assert!(lines.contains(&Some(3)), "{errors:#?}");
    assert!(lines.contains(&Some(4)), "{errors:#?}");
    assert!(lines.contains(&Some(5)), "{errors:#?}");
    assert_eq!(errors[0].message, "duplicate key `listen`");
}

#[test]
fn unknown_top_level_key() {
    let text = format!("{BASE}\n[serverr]\nlisten = \"x:1\"\n");
    assert_single_error(&text, 11, "serverr", "unknown key \"serverr\"");
}

#[test]
fn unknown_key_in_server() {
    let text = format!("[server]\nlisten = \"127.0.0.1:6033\"\nlisen = \"x\"\n\n{BASE}");
    assert_single_error(&text, 3, "server.lisen", "unknown field `lisen`");
}

#[test]
fn every_unknown_key_is_reported_and_the_rest_still_checked() {
    let text = format!(
        "[server]\nlisen = \"x\"\nmax_conections = 5\nidle_timeout = \"forever\"\n\n{}",
        BASE.replace(
            "primary = \"db1:3306\"",
            "primary = \"db1:3306\"\nreplicas = [{ adr = \"r:1\", addr = \"r:1\", weight = 0 }]"
        )
    );
    let errors = parse_err(&text);
    let got: Vec<_> = errors.iter().map(|e| (e.line, e.path.as_str())).collect();
    assert_eq!(
        got,
        [
            (Some(2), "server.lisen"),
            (Some(3), "server.max_conections"),
            (Some(4), "server.idle_timeout"),
            (Some(10), "tenants[0].replicas[0].adr"),
            (Some(10), "tenants[0].replicas[0].weight"),
        ]
    );
}

#[test]
fn unknown_key_in_a_tenant() {
    let text = format!(
        "{BASE}\n[[tenants]]\nname = \"b\"\nschemas = [\"s\"]\nprimary = \"db:1\"\nreplica = []\n"
    );
    assert_single_error(&text, 15, "tenants[1].replica", "unknown field `replica`");
}

#[test]
fn unknown_key_in_a_replica_table() {
    let text = BASE.replace(
        "primary = \"db1:3306\"",
        "primary = \"db1:3306\"\nreplicas = [\"r1:1\", { addr = \"r2:1\", wieght = 2 }]",
    );
    assert_single_error(
        &text,
        5,
        "tenants[0].replicas[1].wieght",
        "unknown field `wieght`",
    );
}

#[test]
fn missing_required_key() {
    let text = BASE.replace("primary = \"db1:3306\"\n", "");
    assert_single_error(&text, 2, "tenants[0].primary", "missing field `primary`");
}

#[test]
fn wrong_value_type() {
    let text = format!("[defaults]\npool_max = \"64\"\n\n{BASE}");
    assert_single_error(&text, 2, "defaults.pool_max", "invalid type");
}

#[test]
fn tenants_must_be_an_array_of_tables() {
    let text = "[tenants]\nname = \"a\"\n";
    assert_single_error(text, 1, "tenants", "expected an array of tables");
}

// ---- errors: values ----

#[test]
fn bad_primary_address() {
    let text = BASE.replace("db1:3306", "db1");
    assert_single_error(&text, 4, "tenants[0].primary", "must be host:port");
}

#[test]
fn bad_replica_addresses() {
    let text = BASE.replace(
        "primary = \"db1:3306\"",
        "primary = \"db1:3306\"\nreplicas = [\"r1:99999\",\n  { addr = \":3306\" }]",
    );
    let errors = parse_err(&text);
    let got: Vec<_> = errors.iter().map(|e| (e.line, e.path.as_str())).collect();
    assert_eq!(
        got,
        [
            (Some(5), "tenants[0].replicas[0]"),
            (Some(6), "tenants[0].replicas[1]")
        ]
    );
    assert!(errors[0].message.contains("invalid port"), "{}", errors[0]);
    assert!(errors[1].message.contains("empty host"), "{}", errors[1]);
}

#[test]
fn bad_listen_addresses() {
    let text = format!("[server]\nlisten = \"6033\"\nhttp_listen = \"[::1]:\"\n\n{BASE}");
    let errors = parse_err(&text);
    let got: Vec<_> = errors.iter().map(|e| (e.line, e.path.as_str())).collect();
    assert_eq!(
        got,
        [(Some(2), "server.listen"), (Some(3), "server.http_listen")]
    );
}

#[test]
fn zero_weight() {
    let text = BASE.replace(
        "primary = \"db1:3306\"",
        "primary = \"db1:3306\"\nreplicas = [{ addr = \"r1:1\", weight = 0 }]",
    );
    assert_single_error(&text, 5, "tenants[0].replicas[0].weight", "at least 1");
}

#[test]
fn a_health_interval_too_short_for_a_check() {
    let text = BASE.replace(
        "primary = \"db1:3306\"",
        "primary = \"db1:3306\"\nhealth_interval = \"10ms\"",
    );
    assert_single_error(&text, 5, "tenants[0].health_interval", "at least 100ms");
}

#[test]
fn bad_durations() {
    let text = format!(
        "[server]\nidle_timeout = \"8 hours\"\n\n[defaults]\nmax_replica_lag = \"1.5s\"\n\n{}",
        BASE.replace(
            "primary = \"db1:3306\"",
            "primary = \"db1:3306\"\nhealth_interval = \"0ms\""
        )
    );
    let errors = parse_err(&text);
    let got: Vec<_> = errors.iter().map(|e| (e.line, e.path.as_str())).collect();
    assert_eq!(
        got,
        [
            (Some(2), "server.idle_timeout"),
            (Some(5), "defaults.max_replica_lag"),
            (Some(11), "tenants[0].health_interval"),
        ]
    );
    assert!(
        errors[0].message.contains("invalid duration \"8 hours\""),
        "{}",
        errors[0]
    );
    assert!(
        errors[2].message.contains("greater than 0"),
        "{}",
        errors[2]
    );
}

#[test]
fn bad_consistency() {
    let text = format!("[defaults]\nconsistency = \"strong\"\n\n{BASE}");
    assert_single_error(
        &text,
        2,
        "defaults.consistency",
        "invalid consistency \"strong\"",
    );
}

#[test]
fn http_auth_is_admin_unless_set_to_none() {
    let cfg = parse_ok(BASE);
    assert_eq!(cfg.server.http_auth, HttpAuth::Admin);
    let cfg = parse_ok(&format!("[server]\nhttp_auth = \"none\"\n\n{BASE}"));
    assert_eq!(cfg.server.http_auth, HttpAuth::None);
    let text = format!("[server]\nhttp_auth = \"basic\"\n\n{BASE}");
    assert_single_error(&text, 2, "server.http_auth", "invalid http_auth \"basic\"");
}

#[test]
fn render_says_when_the_status_page_is_open_or_refused() {
    let listen = "[server]\nhttp_listen = \"127.0.0.1:9090\"\n";
    let refused = render_table(&parse_ok(&format!("{listen}\n{BASE}")));
    assert!(
        refused.contains("http_listen      127.0.0.1:9090 (no [admin] user: status page refused)"),
        "{refused}"
    );
    let open = render_table(&parse_ok(&format!(
        "{listen}http_auth = \"none\"\n\n{BASE}"
    )));
    assert!(
        open.contains("127.0.0.1:9090 (status page open to all)"),
        "{open}"
    );
}

#[test]
fn zero_counts() {
    let text = format!("[server]\nmax_connections = 0\n\n{BASE}");
    assert_single_error(&text, 2, "server.max_connections", "at least 1");
}

#[test]
fn tls_key_without_cert_and_require_tls_without_either() {
    let text = format!("[server]\ntls_key = \"k.pem\"\nrequire_tls = true\n\n{BASE}");
    let errors = parse_err(&text);
    let got: Vec<_> = errors.iter().map(|e| (e.line, e.path.as_str())).collect();
    assert_eq!(
        got,
        [
            (Some(2), "server.tls_cert"),
            (Some(3), "server.require_tls")
        ]
    );
}

// ---- errors: tenants and schemas ----

#[test]
fn duplicate_tenant_name() {
    let text = format!(
        "{BASE}\n[[tenants]]\nname = \"acme\"\nschemas = [\"other\"]\nprimary = \"db2:3306\"\n"
    );
    assert_single_error(
        &text,
        12,
        "tenants[1].name",
        "duplicate tenant name \"acme\"",
    );
}

#[test]
fn schema_owned_by_two_tenants() {
    let text = format!(
        "{BASE}\n[[tenants]]\nname = \"globex\"\nschemas = [\"wf_acme\"]\nprimary = \"db2:3306\"\n"
    );
    let err = parse(&text, &demo_env).expect_err("invalid");
    assert_eq!(
        err.to_string(),
        "line 13: tenants[1].schemas[0]: schema \"wf_acme\" is already owned by tenant \"acme\""
    );
}

#[test]
fn schema_listed_twice_in_one_tenant() {
    let text = BASE.replace("[\"wf_acme\"]", "[\"wf_acme\", \"wf_acme\"]");
    assert_single_error(&text, 3, "tenants[0].schemas[1]", "listed twice");
}

#[test]
fn schemas_compare_case_sensitively() {
    let text = format!(
        "{BASE}\n[[tenants]]\nname = \"b\"\nschemas = [\"WF_ACME\"]\nprimary = \"db2:3306\"\n"
    );
    let cfg = parse_ok(&text);
    assert_eq!(owner(&cfg, "WF_ACME").as_deref(), Some("b"));
}

#[test]
fn empty_schema_list() {
    let text = BASE.replace("[\"wf_acme\"]", "[]");
    assert_single_error(&text, 3, "tenants[0].schemas", "at least one schema");
}

#[test]
fn blank_and_spaced_names() {
    let text = BASE
        .replace("name = \"acme\"", "name = \"ac me\"")
        .replace("[\"wf_acme\"]", "[\"\"]")
        .replace("tenant = \"acme\"", "tenant = \"ac me\"");
    let errors = parse_err(&text);
    let got: Vec<_> = errors.iter().map(|e| (e.line, e.path.as_str())).collect();
    assert_eq!(
        got,
        [
            (Some(2), "tenants[0].name"),
            (Some(3), "tenants[0].schemas[0]")
        ]
    );
    assert!(
        errors[0].message.contains("contains whitespace"),
        "{}",
        errors[0]
    );
    assert!(
        errors[1].message.contains("schema name is empty"),
        "{}",
        errors[1]
    );
}

// ---- errors: users ----

#[test]
fn duplicate_user_name() {
    let text = format!("{BASE}\n[[users]]\nname = \"app\"\npassword = \"x\"\ntenants = \"*\"\n");
    assert_single_error(&text, 12, "users[1].name", "duplicate user name \"app\"");
}

#[test]
fn user_bound_to_unknown_tenant() {
    let text = BASE.replace("tenant = \"acme\"", "tenant = \"acme2\"");
    assert_single_error(&text, 9, "users[0].tenant", "unknown tenant \"acme2\"");
}

#[test]
fn user_listing_an_unknown_tenant() {
    let text = BASE.replace("tenant = \"acme\"", "tenants = [\"acme\", \"nope\"]");
    assert_single_error(&text, 9, "users[0].tenants[1]", "unknown tenant \"nope\"");
}

#[test]
fn user_with_both_tenant_and_tenants() {
    let text = BASE.replace("tenant = \"acme\"", "tenant = \"acme\"\ntenants = \"*\"");
    assert_single_error(&text, 10, "users[0]", "not both");
}

#[test]
fn user_with_neither_tenant_nor_tenants() {
    let text = BASE.replace("tenant = \"acme\"\n", "");
    assert_single_error(&text, 7, "users[0]", "user needs tenant");
}

#[test]
fn tenants_string_other_than_star() {
    let text = BASE.replace("tenant = \"acme\"", "tenants = \"acme\"");
    assert_single_error(&text, 9, "users[0].tenants", "tenant = \"name\"");
}

#[test]
fn empty_tenants_list() {
    let text = BASE.replace("tenant = \"acme\"", "tenants = []");
    assert_single_error(&text, 9, "users[0].tenants", "tenants list is empty");
}

#[test]
fn user_naming_a_broken_tenant_is_not_reported_twice() {
    let text = BASE.replace("primary = \"db1:3306\"\n", "");
    let errors = parse_err(&text);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(errors[0].path, "tenants[0].primary");
}

// ---- errors: env and reporting ----

#[test]
fn missing_env_var_names_variable_and_key() {
    let text = BASE.replace("password = \"pw\"", "password = \"${APP_DB_PASSWORD}\"");
    assert_single_error(
        &text,
        8,
        "users[0].password",
        "environment variable APP_DB_PASSWORD is not set",
    );
}

#[test]
fn every_problem_is_reported_in_file_order() {
    let text = r#"
[server]
listen = "nope"
bogus = 1

[[tenants]]
name = "acme"
schemas = ["wf_acme"]
primary = "db1:3306"
replicas = [{ addr = "r1:3306", weight = 0 }]

[[tenants]]
name = "acme"
schemas = ["wf_acme"]
primary = "db2"
max_replica_lag = "forever"

[[users]]
name = "app"
password = "${MISSING}"
tenant = "globex"

[[users]]
name = "app"
password = "x"
"#;
    let err = parse(text, &demo_env).expect_err("invalid");
    let got: Vec<_> = err.iter().map(|e| (e.line, e.path.as_str())).collect();
    assert_eq!(
        got,
        [
            (Some(3), "server.listen"),
            (Some(4), "server.bogus"),
            (Some(10), "tenants[0].replicas[0].weight"),
            (Some(13), "tenants[1].name"),
            (Some(14), "tenants[1].schemas[0]"),
            (Some(15), "tenants[1].primary"),
            (Some(16), "tenants[1].max_replica_lag"),
            (Some(20), "users[0].password"),
            (Some(21), "users[0].tenant"),
            (Some(24), "users[1]"),
            (Some(24), "users[1].name"),
        ]
    );
    assert_eq!(err.to_string().lines().count(), got.len());
}

#[test]
fn load_reads_a_file_and_reports_a_missing_one() {
    let dir = std::env::temp_dir().join(format!("switchyard-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("ok.toml");
    std::fs::write(&file, BASE).expect("write");
    let cfg = load(&file).expect("valid");
    assert_eq!(cfg.tenants[0].name, "acme");

    let missing = dir.join("missing.toml");
    let err = load(&missing).expect_err("missing");
    assert_eq!(err.len(), 1);
    assert!(err.to_string().starts_with("cannot read "), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn max_packet_is_a_size_within_mysql_limits() {
    let ok = format!("[server]\nmax_packet = \"16M\"\n\n{BASE}");
    assert_eq!(parse_ok(&ok).server.max_packet, 16 << 20);
    assert_eq!(parse_ok(BASE).server.max_packet, 64 << 20);
    let text = format!("[server]\nmax_packet = \"2G\"\n\n{BASE}");
    assert_single_error(&text, 2, "server.max_packet", "outside 1K..1G");
    let text = format!("[server]\nmax_packet = \"64 MB\"\n\n{BASE}");
    assert_single_error(&text, 2, "server.max_packet", "invalid size");
}

#[test]
fn reset_after_quit_is_on_unless_turned_off() {
    assert!(parse_ok(BASE).server.reset_after_quit, "on by default");
    assert!(!render_table(&parse_ok(BASE)).contains("after COM_QUIT"));
    let off = parse_ok(&format!("[server]\nreset_after_quit = false\n\n{BASE}"));
    assert!(!off.server.reset_after_quit);
    let table = render_table(&off);
    assert!(
        table.contains("  after COM_QUIT   FIN (reset_after_quit = false)\n"),
        "{table}"
    );
}

#[test]
fn proxy_protocol_lists_networks_or_addresses() {
    let ok =
        format!("[server]\nproxy_protocol = [\"10.0.1.9/24\", \"10.0.2.7\", \"::1\"]\n\n{BASE}");
    let nets: Vec<String> = (parse_ok(&ok).server.proxy_protocol.iter())
        .map(ToString::to_string)
        .collect();
    assert_eq!(nets, ["10.0.1.0/24", "10.0.2.7/32", "::1/128"]);
    assert!(
        parse_ok(BASE).server.proxy_protocol.is_empty(),
        "off by default"
    );
    let table = render_table(&parse_ok(&ok));
    assert!(
        table.contains("  proxy protocol   from 10.0.1.0/24, 10.0.2.7/32, ::1/128\n"),
        "{table}"
    );
    let text = format!("[server]\nproxy_protocol = [\"10.0.0.0/8\", \"lb.internal\"]\n\n{BASE}");
    assert_single_error(
        &text,
        2,
        "server.proxy_protocol[1]",
        "not an address or network",
    );
    let text = format!("[server]\nproxy_protocol = [\"10.0.0.0/33\"]\n\n{BASE}");
    assert_single_error(
        &text,
        2,
        "server.proxy_protocol[0]",
        "not an address or network",
    );
}

#[test]
fn the_table_says_which_users_have_a_hash_or_need_tls() {
    let text = BASE.replacen(
        "password = \"pw\"",
        "password_hash = \"*0A3F7E1E4B7C4E7B0A3E0C0C1E3A5F7B9D1C3E5F\"\nrequire_tls = true",
        1,
    );
    assert_ne!(text, BASE, "BASE changed: adjust this test");
    let table = crate::config::render_table(&parse_ok(&text));
    assert!(
        table.contains("(password_hash for mysql_native_password)  (require_tls)"),
        "{table}"
    );
}

/// The tenant owning `schema` at run time.
fn owner(cfg: &Config, schema: &str) -> Option<String> {
    let d = crate::state::Directory::new(cfg, &Default::default());
    d.tenant_of_schema(schema).map(|t| t.name.clone())
}

// ---- clusters and templates ----

const CLUSTERS: &str = r#"[[clusters]]
name = "eu1"
primary = "db1:3306"
replicas = ["db2:3306"]
schemas = ["wf_{tenant}", "rb_{tenant}"]
tenants = "*"
pool_max = 8
backend_user = "eu1_backend"
backend_password = "bpw"

[[clusters]]
name = "us1"
primary = "db9:3306"
schemas = ["wf_{tenant}"]
tenants = ["globex", "hooli"]

[[tenants]]
name = "initech"
cluster = "eu1"
consistency = "primary"

[[users]]
name = "{tenant}_app"
password = "pw"

[[users]]
name = "ops"
password = "pw"
tenants = "*"
"#;

#[test]
fn clusters_give_their_tenants_servers_settings_and_schemas() {
    let cfg = parse_ok(CLUSTERS);
    let initech = cfg.tenant("initech").unwrap();
    assert_eq!(initech.schemas, ["wf_initech", "rb_initech"]);
    assert_eq!(initech.primary, "db1:3306");
    assert_eq!(initech.replicas.len(), 1);
    assert_eq!(initech.pool_max, 8);
    assert_eq!(initech.consistency, Consistency::Primary);
    assert_eq!(initech.backend_user.as_deref(), Some("eu1_backend"));
    assert_eq!(initech.cluster.as_deref(), Some("eu1"));
    let hooli = cfg.tenant("hooli").unwrap();
    assert_eq!(
        (hooli.primary.as_str(), &hooli.schemas[..]),
        ("db9:3306", &["wf_hooli".to_string()][..])
    );
    assert_eq!(cfg.open_cluster().map(|c| c.name.as_str()), Some("eu1"));
    // Named first, then the open cluster's patterns; a named tenant owns only its schemas.
    assert_eq!(owner(&cfg, "wf_hooli").as_deref(), Some("hooli"));
    assert_eq!(owner(&cfg, "wf_newco").as_deref(), Some("newco"));
    assert_eq!(owner(&cfg, "rb_hooli"), None);
    assert_eq!(owner(&cfg, "wf_"), None);
    assert_eq!(owner(&cfg, "mysql"), None);
    let d = crate::state::Directory::new(&cfg, &Default::default());
    let newco = d.tenant_of_schema("rb_newco").unwrap();
    assert_eq!((newco.primary.as_str(), newco.pool_max), ("db1:3306", 8));
    let user = d.user(&cfg, "newco_app").unwrap();
    assert_eq!(user.tenants, UserTenants::One("newco".into()));
    assert!(d.user(&cfg, "ops").is_some());
    assert!(d.user(&cfg, "_app").is_none());
    assert!(
        d.user(&cfg, "{tenant}_app").is_none(),
        "a template is no login name"
    );
}

#[test]
fn isolation_sees_tenants_made_by_pattern() {
    let cfg = parse_ok(CLUSTERS);
    let d = crate::state::Directory::new(&cfg, &Default::default());
    let newco = UserTenants::One("newco".into());
    let foreign = |name: &str| d.foreign(&newco, name, &name.to_ascii_lowercase());
    assert!(!foreign("wf_newco"));
    assert!(
        !foreign("RB_newco"),
        "the prefix in another case is still newco's"
    );
    assert!(
        foreign("wf_NEWCO"),
        "another tenant on a server that keeps case"
    );
    assert!(foreign("wf_other"));
    assert!(foreign("wf_hooli"));
    assert!(foreign("WF_HOOLI"));
    assert!(!foreign("mysql"));
    assert!(!foreign("wf_"));
}

#[test]
fn cluster_mistakes_are_reported_where_written() {
    let base = "[[users]]\nname = \"ops\"\npassword = \"pw\"\ntenants = \"*\"\n";
    let cases = [
        (
            "[[tenants]]\nname = \"a\"\ncluster = \"nope\"\nschemas = [\"a\"]\n",
            "tenants[0].cluster",
            "unknown cluster \"nope\"",
        ),
        (
            "[[clusters]]\nname = \"c\"\nprimary = \"db:1\"\n\n[[tenants]]\nname = \"a\"\ncluster = \"c\"\nprimary = \"db:2\"\nschemas = [\"a\"]\n",
            "tenants[0].primary",
            "set either cluster or primary",
        ),
        (
            "[[clusters]]\nname = \"c\"\nprimary = \"db:1\"\n\n[[tenants]]\nname = \"a\"\ncluster = \"c\"\n",
            "tenants[0].schemas",
            "a tenant needs schemas",
        ),
        (
            "[[clusters]]\nname = \"c\"\nprimary = \"db:1\"\nschemas = [\"{tenant}\"]\n",
            "clusters[0].schemas[0]",
            "would match every name",
        ),
        (
            "[[clusters]]\nname = \"c\"\nprimary = \"db:1\"\nschemas = [\"wf_acme\"]\n",
            "clusters[0].schemas[0]",
            "no {tenant} placeholder",
        ),
        (
            "[[clusters]]\nname = \"c\"\nprimary = \"db:1\"\ntenants = [\"a\"]\n",
            "clusters[0].tenants",
            "need schema patterns",
        ),
        (
            "[[clusters]]\nname = \"c\"\nprimary = \"db:1\"\nschemas = [\"a_{tenant}\"]\ntenants = \"*\"\n\n[[clusters]]\nname = \"d\"\nprimary = \"db:2\"\nschemas = [\"b_{tenant}\"]\ntenants = \"*\"\n",
            "clusters[1].tenants",
            "only one cluster may take unnamed tenants",
        ),
        (
            "[[clusters]]\nname = \"c\"\nprimary = \"db:1\"\nschemas = [\"a_{tenant}\"]\ntenants = [\"x\"]\n\n[[tenants]]\nname = \"x\"\nschemas = [\"other\"]\nprimary = \"db:3\"\n",
            "clusters[0].tenants[0]",
            "duplicate tenant name \"x\" (first defined as tenants[0])",
        ),
        (
            "[[clusters]]\nname = \"c\"\nprimary = \"db:1\"\nschemas = [\"a_{tenant}\"]\ntenants = [\"x\"]\n\n[[tenants]]\nname = \"y\"\nschemas = [\"a_x\"]\nprimary = \"db:3\"\n",
            "clusters[0].tenants[0].schemas[0]",
            "already owned by tenant \"y\"",
        ),
        (
            "[[clusters]]\nname = \"c\"\nprimary = \"db:1\"\nschemas = [\"a_{tenant}\"]\ntenants = \"*\"\n\n[[users]]\nname = \"{tenant}_x\"\npassword = \"pw\"\ntenant = \"q\"\n",
            "users[1]",
            "bound to the tenant its name spells",
        ),
        (
            "[[clusters]]\nname = \"c\"\nprimary = \"db:1\"\nschemas = [\"wf_{tenant}\", \"wf_{tenant}_rb\"]\ntenants = \"*\"\n",
            "clusters[0].schemas",
            "can both take one schema name",
        ),
    ];
    for (text, path, needle) in cases {
        let errors = parse_err(&format!("{base}\n{text}"));
        assert!(
            errors
                .iter()
                .any(|e| e.path == path && e.message.contains(needle)),
            "expected {path}: {needle:?} in {errors:#?}"
        );
    }
}

#[test]
fn a_user_may_name_a_tenant_the_open_cluster_would_make() {
    let text = format!(
        "{CLUSTERS}\n[[users]]\nname = \"newco_admin\"\npassword = \"pw\"\ntenant = \"newco\"\n"
    );
    parse_ok(&text);
    let without_open = CLUSTERS.replace("tenants = \"*\"\n", "");
    let text = format!("{without_open}\n[[users]]\nname = \"newco_admin\"\npassword = \"pw\"\ntenant = \"newco\"\n");
    assert!(parse_err(&text)
        .iter()
        .any(|e| e.message.contains("unknown tenant \"newco\"")));
}

/// A key of thousands of dotted parts nests tables so deep that reading them overflowed the
/// stack (a process abort, every session with it): refused before the TOML parser sees it,
/// counted only outside strings and comments.
#[test]
fn a_key_nested_past_the_limit_is_refused_before_parsing() {
    use super::{too_deep, MAX_KEY_PARTS};
    let deep = "a.".repeat(50_000);
    for text in [
        format!("[server]\n{deep}a = 1\n"),
        format!("[{deep}a]\n"),
        format!("[server]\nx = {{ {deep}a = 1 }}\n"),
        // Hidden from a scan that took the rest for a string: an escaped line end ends a
        // one-line string, and a triple quote's closing takes up to two more quotes.
        format!("[server]\nx = \"a\\\n{deep}a = 1\n"),
        format!("[server]\nt = {{ s = '''a'''', {deep}a = 1 }}\n"),
        // Many keys nested a little each, inline table in inline table.
        format!(
            "[server]\n{}1{}\n",
            "a.a.a.a.a.a.a.a = { ".repeat(40),
            " }".repeat(40)
        ),
    ] {
        assert!(too_deep(&text).is_some());
        let errors = super::parse(&text, &|_| None).unwrap_err().to_string();
        assert!(errors.contains("more than 64 parts"), "{errors}");
    }
    let fine = format!(
        "a.{}b = 1\ns = \"{}\"\n# {}\nf = [1.5, 2.5]\nt = '''{}'''\n",
        "c.".repeat(MAX_KEY_PARTS - 3),
        ".".repeat(1000),
        ".".repeat(1000),
        ".\n".repeat(1000)
    );
    assert_eq!(too_deep(&fine), None);
}
