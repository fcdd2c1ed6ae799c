//! The HTTP endpoint on hyper's HTTP/1 server: for Prometheus and container probes, open to
//! all, `GET /metrics`, `/health` (the process answers) and `/ready` (config loaded and
//! listeners serving); behind `server.http_auth`, the status page `GET /` and its JSON
//! `GET /api/...` (see `api.rs`).

use std::convert::Infallible;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{
    HeaderValue, CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, WWW_AUTHENTICATE,
    X_CONTENT_TYPE_OPTIONS,
};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use super::rates::Rates;
use super::{api, http_auth};
use crate::state::SharedState;

/// HTTP connections served at once. At the cap the one open longest gives way, if it has
/// been open [`GIVE_WAY_AFTER`]; else the new one is closed right away. Without that, 64
/// connections held open (a client pipelining requests it never reads the answers of, or
/// one reopened as fast as they close) kept the liveness probe out, and its pod restarted.
const MAX_CONNECTIONS: usize = 64;
const GIVE_WAY_AFTER: Duration = Duration::from_secs(1);

/// Serves until `shutdown` completes. `ready` is what `/ready` reports.
pub async fn serve(
    listener: TcpListener,
    state: SharedState,
    ready: Arc<AtomicBool>,
    shutdown: impl Future<Output = ()>,
) {
    let ep = Arc::new(Endpoint {
        registry: super::metrics::registry(Arc::clone(&state)),
        state,
        ready,
        rates: Rates::default(),
    });
    let mut conns = JoinSet::new();
    // Oldest first; entries of connections that ended are dropped as they are met.
    let mut opened: std::collections::VecDeque<(std::time::Instant, tokio::task::AbortHandle)> =
        std::collections::VecDeque::new();
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
        // Counted by what still runs: `conns` holds finished tasks until they are reaped.
        opened.retain(|(_, h)| !h.is_finished());
        if opened.len() >= MAX_CONNECTIONS {
            match opened.front() {
                Some((at, h)) if at.elapsed() >= GIVE_WAY_AFTER => {
                    h.abort();
                    opened.pop_front();
                }
                _ => continue,
            }
        }
        let ep = Arc::clone(&ep);
        let handle = conns.spawn(async move {
            let service = service_fn(move |req| {
                let answer = respond(&req, &ep);
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
        opened.push_back((std::time::Instant::now(), handle));
    }
    conns.abort_all();
}

/// What a request is answered from.
struct Endpoint {
    registry: Registry,
    state: SharedState,
    ready: Arc<AtomicBool>,
    rates: Rates,
}

type Answer = (StatusCode, &'static str, Bytes);

fn text(status: StatusCode, body: &'static str) -> Answer {
    (
        status,
        "text/plain; charset=utf-8",
        Bytes::from_static(body.as_bytes()),
    )
}

fn respond(req: &Request<Incoming>, ep: &Endpoint) -> Response<Full<Bytes>> {
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        return response(text(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD\n"));
    }
    let path = req.uri().path();
    if let Some(view) = api::route(path) {
        return status_page(req, ep, view);
    }
    // Open to all: Prometheus and container probes come without credentials.
    response(match path {
        "/metrics" => (
            StatusCode::OK,
            super::metrics::CONTENT_TYPE,
            Bytes::from(super::metrics::encode(&ep.registry)),
        ),
        "/health" => text(StatusCode::OK, "ok\n"),
        "/ready" if ep.ready.load(Ordering::Acquire) => text(StatusCode::OK, "ready\n"),
        "/ready" => text(StatusCode::SERVICE_UNAVAILABLE, "not ready\n"),
        _ => text(
            StatusCode::NOT_FOUND,
            "not found: try /, /api/status, /metrics, /health, /ready\n",
        ),
    })
}

/// The status page and its JSON, behind `server.http_auth`; never cached, never framed.
fn status_page(req: &Request<Incoming>, ep: &Endpoint, view: api::View) -> Response<Full<Bytes>> {
    let rt = ep.state.load_full();
    if !http_auth::allowed(req.headers(), &rt.config) {
        let mut resp = response(text(StatusCode::UNAUTHORIZED, "credentials required\n"));
        resp.headers_mut().insert(
            WWW_AUTHENTICATE,
            HeaderValue::from_static(http_auth::CHALLENGE),
        );
        return resp;
    }
    let (content_type, body) = api::render(view, &rt, &ep.rates);
    let mut resp = response((StatusCode::OK, content_type, body));
    let h = resp.headers_mut();
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if view == api::View::Page {
        h.insert(
            CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(api::PAGE_CSP),
        );
    }
    resp
}

fn response((status, content_type, body): Answer) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(body));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}
