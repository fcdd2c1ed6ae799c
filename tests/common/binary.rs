//! The real `switchyard` binary, for tests of what only the process shows: signals, exit
//! codes, log output. It serves a file config on a free loopback port.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use mysql_async::Conn;
use tokio::process::{Child, Command};

pub struct Binary {
    pub port: u16,
    child: Option<Child>,
    dir: PathBuf,
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// [`super::globex_only`] listening on `port`, with `server_keys` added to `[server]`.
pub fn globex_config(port: u16, server_keys: &str) -> String {
    super::globex_only(&format!("listen = \"127.0.0.1:{port}\"\n{server_keys}"))
}

/// Starts `switchyard <global_args> run --config <file>` with `config(port)` as the file;
/// its stderr goes to `stderr`. The child is killed if the test drops it.
pub fn spawn(config: impl FnOnce(u16) -> String, global_args: &[&str], stderr: Stdio) -> Binary {
    spawn_with_env(config, global_args, stderr, &[])
}

/// [`spawn`] with `env` added to the child's environment.
pub fn spawn_with_env(
    config: impl FnOnce(u16) -> String,
    global_args: &[&str],
    stderr: Stdio,
    env: &[(&str, &str)],
) -> Binary {
    start(config, global_args, stderr, env, None)
}

/// [`spawn`] with the open-files limit (soft, hard) set for the child before it starts.
pub fn spawn_with_open_files(
    config: impl FnOnce(u16) -> String,
    stderr: Stdio,
    (soft, hard): (u64, u64),
) -> Binary {
    start(config, &[], stderr, &[], Some((soft, hard)))
}

fn start(
    config: impl FnOnce(u16) -> String,
    global_args: &[&str],
    stderr: Stdio,
    env: &[(&str, &str)],
    open_files: Option<(u64, u64)>,
) -> Binary {
    let port = super::free_port();
    let dir = std::env::temp_dir().join(format!("sy-bin-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("switchyard.toml");
    std::fs::write(&file, config(port)).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_switchyard"));
    cmd.args(global_args)
        .args(["run", "--config"])
        .arg(&file)
        .envs(env.iter().copied())
        .stderr(stderr)
        .kill_on_drop(true);
    if let Some((soft, hard)) = open_files {
        let limit = libc::rlimit {
            rlim_cur: soft,
            rlim_max: hard,
        };
        // SAFETY: setrlimit is async-signal-safe, and `limit` is a plain copy.
        unsafe {
            cmd.pre_exec(move || {
                if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            });
        }
    }
    let child = cmd.spawn().unwrap();
    Binary {
        port,
        child: Some(child),
        dir,
    }
}

impl Binary {
    /// A client connection once the listener is up (within 10 s).
    pub async fn connect(&self, user: &str, db: Option<&str>) -> Conn {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            match Conn::new(super::opts(self.port, user, db)).await {
                Ok(c) => return c,
                Err(e) if std::time::Instant::now() > deadline => {
                    panic!("switchyard on {} never accepted {user}: {e}", self.port)
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    /// The config file it was started with (rewrite it, then SIGHUP, to reload).
    pub fn config_path(&self) -> PathBuf {
        self.dir.join("switchyard.toml")
    }

    /// The process id (for reading its memory use from /proc).
    pub fn pid(&self) -> u32 {
        self.child
            .as_ref()
            .and_then(Child::id)
            .expect("still running")
    }

    pub fn sigterm(&self) {
        let pid = self
            .child
            .as_ref()
            .and_then(Child::id)
            .expect("still running")
            .to_string();
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        assert!(status.success(), "kill -TERM {pid}");
    }

    /// How the process ended, and what it wrote to a piped stderr; it must end within
    /// `within`.
    pub async fn exit(mut self, within: Duration) -> std::process::Output {
        let child = self.child.take().expect("not waited for yet");
        tokio::time::timeout(within, child.wait_with_output())
            .await
            .unwrap_or_else(|_| panic!("switchyard did not exit within {within:?}"))
            .unwrap()
    }
}
