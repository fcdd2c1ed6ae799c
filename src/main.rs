//! The `switchyard` command line: parse arguments, set up logging, call the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use switchyard::state::{directory, RuntimeState};
use switchyard::{config, Listeners};

#[derive(Parser)]
#[command(version, about = "A read/write-splitting, tenant-aware MySQL proxy")]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log format on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Human, global = true)]
    log_format: LogFormat,
}

#[derive(Subcommand)]
enum Command {
    /// Start the proxy.
    Run {
        #[arg(long, default_value = "config/switchyard.toml")]
        config: PathBuf,
        /// Worker threads serving sessions (overrides `server.threads`); 0: one per core
        /// available to the process.
        #[arg(long)]
        threads: Option<usize>,
    },
    /// Validate a config file and print the routing table it resolves to.
    Check {
        #[arg(long, default_value = "config/switchyard.toml")]
        config: PathBuf,
        /// The config a running instance uses: also print what reloading CONFIG over it
        /// would change.
        #[arg(long, value_name = "RUNNING_CONFIG")]
        diff: Option<PathBuf>,
        /// Print the tenant this schema resolves to (repeatable).
        #[arg(long)]
        schema: Vec<String>,
        /// Print the user and tenant this login name resolves to (repeatable).
        #[arg(long)]
        user: Vec<String>,
        /// Print only the resolutions and a summary, not the whole routing table.
        #[arg(long)]
        brief: bool,
    },
    /// The fleet's shared config document in etcd (see [fleet] in docs/configuration.md).
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
}

#[derive(Subcommand)]
enum ConfigAction {
    /// Validate FILE and store it as the fleet's next config version; every instance
    /// validates and applies it. Waits for their reports and exits non-zero unless all
    /// applied it.
    Push {
        file: PathBuf,
        /// The fleet's name (`fleet.name` of its instances).
        #[arg(long)]
        fleet: String,
        /// An etcd endpoint, `http://host:port` (repeatable).
        #[arg(long, required = true)]
        etcd: Vec<String>,
        /// Seconds to wait for every live instance's report.
        #[arg(long, default_value_t = 10.0)]
        wait: f64,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Human,
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    match cli.command {
        Command::Check {
            config,
            diff,
            schema,
            user,
            brief,
        } => {
            let asked = Asked {
                schemas: schema,
                users: user,
                brief,
            };
            check(&config, diff.as_deref(), &asked)
        }
        Command::Run { config, threads } => run(&config, threads),
        Command::Config {
            action:
                ConfigAction::Push {
                    file,
                    fleet,
                    etcd,
                    wait,
                },
        } => push(&file, &fleet, &etcd, wait),
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Human => builder
            .fmt_fields(switchyard::admin::log_line::OneLineFields::default())
            .init(),
        // A session's events name its span as their parent ("span"); the list of entered
        // spans would be empty for them, so it is left out.
        LogFormat::Json => builder.json().with_span_list(false).init(),
    }
}

/// What `check` was asked to resolve besides validating.
struct Asked {
    schemas: Vec<String>,
    users: Vec<String>,
    brief: bool,
}

fn check(path: &std::path::Path, running: Option<&std::path::Path>, asked: &Asked) -> ExitCode {
    match config::load(path) {
        Ok(cfg) => {
            // The files the config names must load too, or `run` would refuse to start.
            let rt = match RuntimeState::new(cfg.clone()).with_tls() {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("{}: invalid\n  {e}", path.display());
                    return ExitCode::FAILURE;
                }
            };
            println!("{}: valid\n", path.display());
            if asked.brief {
                println!(
                    "{} clusters, {} named tenants, {} users",
                    cfg.clusters.len(),
                    cfg.tenants.len(),
                    cfg.users.len()
                );
            } else {
                print!("{}", config::render_table(&cfg));
            }
            for s in &asked.schemas {
                println!("{}", directory::describe_schema(&rt.directory, s));
            }
            for u in &asked.users {
                println!("{}", directory::describe_user(&rt.directory, &cfg, u));
            }
            let Some(running) = running else {
                return ExitCode::SUCCESS;
            };
            match config::load(running) {
                Ok(old) => {
                    let report = switchyard::state::reload::diff(&old, &cfg);
                    println!("\nreloading over {}: {report}", running.display());
                    ExitCode::SUCCESS
                }
                Err(errors) => {
                    eprintln!("{}: invalid\n{errors}", running.display());
                    ExitCode::FAILURE
                }
            }
        }
        Err(errors) => {
            eprintln!("{}: invalid", path.display());
            eprintln!("{errors}");
            ExitCode::FAILURE
        }
    }
}

fn run(path: &std::path::Path, threads: Option<usize>) -> ExitCode {
    let mut cfg = match config::load(path) {
        Ok(c) => c,
        Err(errors) => {
            eprintln!("{}: invalid, not starting\n{errors}", path.display());
            return ExitCode::FAILURE;
        }
    };
    if let Some(n) = threads {
        if n > config::MAX_THREADS {
            eprintln!(
                "--threads {n}: at most {} worker threads",
                config::MAX_THREADS
            );
            return ExitCode::FAILURE;
        }
        cfg.server.threads = n;
    }
    raise_open_files_limit(cfg.server.max_connections);
    // The control plane (accept, admin, HTTP, monitor) is light: one thread. Sessions run
    // on the worker threads `switchyard::run` starts.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    let runtime = match runtime {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let listen = cfg.server.listen.clone();
        let app = match switchyard::bind(&listen).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("cannot listen on {listen}: {e}");
                return ExitCode::FAILURE;
            }
        };
        let admin = match bind_optional(cfg.server.admin_listen.as_deref(), "admin").await {
            Ok(l) => l,
            Err(code) => return code,
        };
        let http = match bind_optional(cfg.server.http_listen.as_deref(), "http").await {
            Ok(l) => l,
            Err(code) => return code,
        };
        if admin.is_some() && cfg.admin.is_none() {
            tracing::warn!(
                "admin_listen is set but there is no [admin] user: admin logins are refused"
            );
        }
        tracing::info!(%listen, tenants = cfg.tenants.len(), "switchyard listening");
        let privileged = cfg.monitor.is_some();
        let state = match RuntimeState::from_file(cfg, path.to_path_buf()).with_tls() {
            Ok(s) => s.with_monitor(),
            Err(e) => {
                eprintln!("cannot start: {e}");
                return ExitCode::FAILURE;
            }
        };
        let backends = state.monitor.as_ref().map_or(0, |m| m.backend_count());
        tracing::info!(backends, privileged, "backend monitor started");
        let state = state.shared();
        let shutdown = async {
            let what = stop_signal().await;
            tracing::info!("{what}: shutting down");
            // A second signal stops at once: the operator who asks twice does not wait out
            // `shutdown_grace` for sessions still in a transaction. Listened for from here,
            // not from when the task first runs: one sent as soon as the listener closes
            // was lost in between.
            let again = stop_signal();
            tokio::spawn(async {
                let what = again.await;
                tracing::warn!(
                    "{what} again: stopping now, sessions still in a transaction are cut off"
                );
                std::process::exit(1);
            });
        };
        if switchyard::run(Listeners { app, admin, http }, state, shutdown)
            .await
            .is_err()
        {
            return ExitCode::FAILURE;
        }
        tracing::info!("switchyard stopped");
        ExitCode::SUCCESS
    })
}

/// SIGTERM (what `docker stop` and Kubernetes send) or SIGINT (Ctrl-C): which, for the log.
/// Registers at the call, not at the first poll: a signal that comes in between is seen.
fn stop_signal() -> impl std::future::Future<Output = &'static str> {
    use tokio::signal::unix::{signal, SignalKind};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    async move {
        match (term, int) {
            (Ok(mut term), Ok(mut int)) => tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "interrupted",
            },
            (Ok(mut term), Err(_)) => {
                term.recv().await;
                "SIGTERM"
            }
            (Err(_), Ok(mut int)) => {
                int.recv().await;
                "interrupted"
            }
            (Err(_), Err(_)) => std::future::pending().await,
        }
    }
}

fn push(file: &std::path::Path, fleet: &str, etcd: &[String], wait: f64) -> ExitCode {
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("cannot read {}: {e}", file.display());
            return ExitCode::FAILURE;
        }
    };
    // As `fleet.etcd` is read: `https://` was made `http://https://...`, an address that
    // cannot be reached, instead of this answer.
    if let Some(e) = etcd.iter().find(|e| e.starts_with("https://")) {
        eprintln!("--etcd {e}: https endpoints are not supported yet: reach etcd over a private network or a local TLS proxy");
        return ExitCode::FAILURE;
    }
    let endpoints: Vec<String> = etcd
        .iter()
        .map(|e| match e.starts_with("http://") {
            true => e.clone(),
            false => format!("http://{e}"),
        })
        .collect();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // NaN passes a clamp, and `from_secs_f64` panics on it.
    let wait = if wait.is_nan() {
        0.0
    } else {
        wait.clamp(0.0, 3600.0)
    };
    let wait = std::time::Duration::from_secs_f64(wait);
    let limit = std::time::Duration::from_secs(5);
    let report = match runtime.block_on(switchyard::fleet::push(
        &endpoints, fleet, &text, wait, limit,
    )) {
        Ok(r) => r,
        Err(switchyard::fleet::FleetError::Document(e)) => {
            eprintln!("{}: invalid, not pushed\n{e}", file.display());
            return ExitCode::FAILURE;
        }
        Err(e) => {
            eprintln!("{}: not pushed: {e}", file.display());
            return ExitCode::FAILURE;
        }
    };
    println!(
        "{}: stored as version {} of fleet {fleet}",
        file.display(),
        report.version
    );
    let took = report.took.as_secs_f64();
    if !report.applied.is_empty() {
        println!(
            "applied by {} ({took:.3}s after the write)",
            report.applied.join(", ")
        );
    }
    for (name, why) in &report.refused {
        println!("refused by {name}: {why}");
    }
    if !report.pending.is_empty() {
        println!(
            "no report after {took:.1}s from {}",
            report.pending.join(", ")
        );
    }
    // A fleet name mistyped, or a fleet with no instance up: stored, run by nobody.
    if report.applied.is_empty() && report.refused.is_empty() && report.pending.is_empty() {
        println!("no live instance in fleet {fleet} within the wait: nothing runs it yet");
        return ExitCode::FAILURE;
    }
    if report.refused.is_empty() && report.pending.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Binds `addr` if it is set; a failure is reported and ends the process.
async fn bind_optional(
    addr: Option<&str>,
    what: &str,
) -> Result<Option<tokio::net::TcpListener>, ExitCode> {
    let Some(addr) = addr else {
        return Ok(None);
    };
    match switchyard::bind(addr).await {
        Ok(l) => {
            tracing::info!(listen = %addr, "{what} listening");
            Ok(Some(l))
        }
        Err(e) => {
            eprintln!("cannot listen on {addr} ({what}): {e}");
            Err(ExitCode::FAILURE)
        }
    }
}

/// Each client and each server connection is a file descriptor, and services often start
/// with a soft limit of 1024, which would stop accept at about a thousand clients (the rest
/// wait in the listen backlog) far below `server.max_connections`: the soft limit is raised
/// to the hard one, and a hard limit still below the clients the config allows is logged.
fn raise_open_files_limit(max_connections: u32) {
    // The kernel refuses more than `fs.nr_open` (1,048,576 by default), also for an
    // unlimited hard limit.
    const CEILING: libc::rlim_t = 1 << 20;
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit read or write only the struct they are given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return;
    }
    let target = limit.rlim_max.min(CEILING);
    if limit.rlim_cur < target {
        let raised = libc::rlimit {
            rlim_cur: target,
            rlim_max: limit.rlim_max,
        };
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            limit.rlim_cur = target;
        }
    }
    // Clients, then listeners, the monitor's and admin's connections; server connections
    // come on top, as many as the pools' caps allow.
    let clients = libc::rlim_t::from(max_connections) + 64;
    if limit.rlim_cur < clients {
        tracing::warn!(
            limit = limit.rlim_cur,
            max_connections,
            "open files limit below server.max_connections: clients past it wait at accept and new server connections fail (raise LimitNOFILE, ulimit -n or docker's --ulimit nofile)"
        );
    }
}
