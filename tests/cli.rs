//! The `switchyard` command line: `check` validates, prints the routing table, lists every
//! problem, and with `--diff` says what a reload over a running config would change.

use std::process::Command;

fn check(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .arg("check")
        .args(args)
        .env("P", "secret-value")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn write(name: &str, text: &str) -> String {
    let path = std::env::temp_dir().join(format!("sy-cli-{}-{name}.toml", std::process::id()));
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

const BASE: &str = r#"
[[tenants]]
name = "acme"
schemas = ["wf_acme"]
primary = "127.0.0.1:3307"
replicas = ["127.0.0.1:3308"]

[[tenants]]
name = "globex"
schemas = ["wf_globex"]
primary = "127.0.0.1:3307"

[[users]]
name = "acme_app"
password = "${P}"
tenant = "acme"
"#;

#[test]
fn check_prints_the_table_and_never_the_password() {
    let file = write("ok", BASE);
    let (ok, out, _) = check(&["--config", &file]);
    assert!(ok);
    assert!(
        out.contains("tenant acme") && out.contains("127.0.0.1:3308"),
        "{out}"
    );
    assert!(!out.contains("secret-value"), "{out}");
}

#[test]
fn check_lists_every_problem_with_its_line() {
    let bad = BASE
        .replace("127.0.0.1:3308", "nowhere")
        .replace("tenant = \"acme\"", "tenant = \"nobody\"");
    let file = write(
        "bad",
        &format!("{bad}\n[server]\nlisten = \"x\"\nbogus = 1\n"),
    );
    let (ok, _, err) = check(&["--config", &file]);
    assert!(!ok);
    for part in [
        "tenants[0].replicas[0]",
        "users[0].tenant",
        "server.bogus",
        "line ",
    ] {
        assert!(err.contains(part), "{part} in:\n{err}");
    }
}

#[test]
fn check_diff_says_what_a_reload_would_change() {
    let running = write("running", BASE);
    let next = BASE.replace("127.0.0.1:3308", "127.0.0.1:3309")
        + "\n[[tenants]]\nname = \"initech\"\nschemas = [\"wf_initech\"]\nprimary = \"127.0.0.1:3307\"\n";
    let next = write("next", &next);
    let (ok, out, _) = check(&["--config", &next, "--diff", &running]);
    assert!(ok);
    assert!(
        out.contains("tenants added: initech; removed: none; changed: acme; users unchanged"),
        "{out}"
    );
    // A user's connection limit and the [server] section: they said "users unchanged" and
    // nothing of [server].
    let next = BASE.replace(
        "tenant = \"acme\"",
        "tenant = \"acme\"\nmax_connections = 5",
    ) + "\n[server]\nmax_connections = 50\n";
    let next = write("next-settings", &next);
    let (ok, out, _) = check(&["--config", &next, "--diff", &running]);
    assert!(ok);
    assert!(
        out.contains("changed: none; users changed; [server] changed"),
        "{out}"
    );
}

#[test]
fn check_loads_the_files_the_config_names() {
    let text = BASE.replacen(
        "replicas = [\"127.0.0.1:3308\"]",
        "replicas = [\"127.0.0.1:3308\"]\nbackend_tls = { ca = \"/nonexistent/sy-ca.pem\" }",
        1,
    );
    let path = write("missing-ca", &text);
    let (ok, _, err) = check(&["--config", &path]);
    assert!(!ok, "a CA file that cannot be read must fail the check");
    assert!(err.contains("/nonexistent/sy-ca.pem"), "{err}");
}

/// `config push --etcd https://...` says https is not supported, as `fleet.etcd` does (it
/// tried `http://https://...`, which cannot be reached).
#[test]
fn config_push_refuses_an_https_etcd_endpoint() {
    let path = write("push-https", BASE);
    let out = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args([
            "config",
            "push",
            &path,
            "--fleet",
            "f",
            "--etcd",
            "https://127.0.0.1:1",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("https://127.0.0.1:1") && err.contains("not supported"),
        "{err}"
    );
}
