//! Certificates and keys for the TLS tests, made with Debian's openssl at test time, and
//! the local cluster's own (scripts/cluster.sh makes them at `up`).

use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs `openssl <args>` in `dir`; any failure fails the test with openssl's message.
pub fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A fresh directory for this test process's files (`tag` keeps tests apart).
pub fn scratch_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sy-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A throwaway CA in `dir`: `ca.pem` and `ca.key`.
pub fn make_ca(dir: &Path, name: &str) {
    let subject = format!("/CN={name}");
    openssl(
        dir,
        &[
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", &subject,
            "-keyout", "ca.key", "-out", "ca.pem",
        ],
    );
}

/// A server certificate for 127.0.0.1 and localhost signed by the CA in `dir`:
/// `server.pem` and `server.key`.
pub fn make_server_cert(dir: &Path) {
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ],
    );
    std::fs::write(
        dir.join("san.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "san.ext",
            "-out",
            "server.pem",
        ],
    );
}

/// The local cluster's TLS directory: `ca.pem`, and the `server.pem`/`server.key` every
/// instance serves.
pub fn cluster_tls() -> PathBuf {
    let dir = std::env::var("SWITCHYARD_CLUSTER_DIR")
        .unwrap_or_else(|_| "/tmp/switchyard-cluster".into());
    let tls = Path::new(&dir).join("tls");
    assert!(
        tls.join("ca.pem").exists(),
        "{} missing: run scripts/cluster.sh up",
        tls.display()
    );
    tls
}
