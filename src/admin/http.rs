//! The HTTP endpoint for Prometheus and container probes: `GET /metrics`, `/health`
//! (the process answers) and `/ready` (config loaded and listeners serving), on hyper's
//! HTTP/1 server.

use std::convert::Infallible;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::CONTENT_TYPE;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::state::SharedState;

/// HTTP connections served at once; more are closed right away.
const MAX_CONNECTIONS: usize = 64;

/// Serves until `shutdown` completes. `ready` is what `/ready` reports.
pub async fn serve(
    listener: TcpListener,
    state: SharedState,
    ready: Arc<AtomicBool>,
    shutdown: impl Future<Output = ()>,
) {
    let registry = Arc::new(super::metrics::registry(state));
    let mut conns = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
            _ = &mut shutdown => break,
        };
        let stream = match accepted {
            Ok((s, _)) => s,
            Err(e) => {
                tracing::warn!(error = %e, "http accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if conns.len() >= MAX_CONNECTIONS {
            continue;
        }
        let registry = Arc::clone(&registry);
        let ready = Arc::clone(&ready);
        conns.spawn(async move {
            let service = service_fn(move |req| {
                let answer = respond(&req, &registry, ready.load(Ordering::Acquire));
                async move { Ok::<_, Infallible>(answer) }
            });
            let served = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .serve_connection(TokioIo::new(stream), service)
                .await;
            if let Err(e) = served {
                tracing::debug!(error = %e, "http connection ended");
            }
        });
    }
    conns.abort_all();
}

fn respond(req: &Request<Incoming>, registry: &Registry, ready: bool) -> Response<Full<Bytes>> {
    let text = |status: StatusCode, body: &'static str| {
        (
            status,
            "text/plain; charset=utf-8",
            Bytes::from_static(body.as_bytes()),
        )
    };
    let (status, content_type, body) = match (req.method(), req.uri().path()) {
        (&Method::GET | &Method::HEAD, "/metrics") => (
            StatusCode::OK,
            super::metrics::CONTENT_TYPE,
            Bytes::from(super::metrics::encode(registry)),
        ),
        (&Method::GET | &Method::HEAD, "/health") => text(StatusCode::OK, "ok\n"),
        (&Method::GET | &Method::HEAD, "/ready") if ready => text(StatusCode::OK, "ready\n"),
        (&Method::GET | &Method::HEAD, "/ready") => {
            text(StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
        }
        (&Method::GET | &Method::HEAD, _) => text(
            StatusCode::NOT_FOUND,
            "not found: try /metrics, /health, /ready\n",
        ),
        _ => text(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD\n"),
    };
    let mut resp = Response::new(Full::new(body));
    *resp.status_mut() = status;
    if let Ok(v) = content_type.parse() {
        resp.headers_mut().insert(CONTENT_TYPE, v);
    }
    resp
}
