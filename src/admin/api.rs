//! The status page (`GET /`) and its JSON (`GET /api/status`, `/api/tenants`,
//! `/api/backends`, `/api/sessions`, `/api/statements`): which path shows what, as bytes.

use bytes::Bytes;
use serde::Serialize;

use super::rates::Rates;
use super::status::{self, Status};
use crate::state::RuntimeState;

/// The page: inline CSS and JS, no external resources. It shows the JSON embedded in it at
/// once and then polls `/api/status`.
const PAGE: &str = include_str!("page.html");
/// Where [`PAGE`] takes the status read with it.
const PLACEHOLDER: &str = "/*STATUS*/null";

pub const JSON: &str = "application/json";
pub const HTML: &str = "text/html; charset=utf-8";

/// The page's policy: nothing but itself and its own origin's JSON.
pub const PAGE_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; \
     script-src 'unsafe-inline'; connect-src 'self'; img-src data:; \
     base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// What a status path shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Page,
    Status,
    Tenants,
    Backends,
    Sessions,
    Statements,
}

/// The view a path names; `None` for paths that are not the status page's.
pub fn route(path: &str) -> Option<View> {
    Some(match path {
        "/" | "/index.html" => View::Page,
        "/api/status" => View::Status,
        "/api/tenants" => View::Tenants,
        "/api/backends" => View::Backends,
        "/api/sessions" => View::Sessions,
        "/api/statements" => View::Statements,
        _ => return None,
    })
}

/// The body and content type of `view` as the state is now.
pub fn render(view: View, rt: &RuntimeState, rates: &Rates) -> (&'static str, Bytes) {
    let s = status::read(rt, rates);
    match view {
        View::Page => (HTML, Bytes::from(page(&s))),
        View::Status => json(&s),
        View::Tenants => json(&s.tenants),
        View::Backends => json(&BackendsView {
            backends: &s.backends,
            lag_history: &s.lag_history,
        }),
        View::Sessions => json(&s.sessions),
        View::Statements => json(&s.statements),
    }
}

/// `/api/backends`: the rows and the lag history their sparklines are drawn from.
#[derive(Serialize)]
struct BackendsView<'a> {
    backends: &'a [status::Backend],
    lag_history: &'a std::collections::BTreeMap<String, Vec<status::LagSample>>,
}

fn json<T: Serialize>(value: &T) -> (&'static str, Bytes) {
    let body = serde_json::to_vec(value).unwrap_or_else(|e| {
        tracing::error!(error = %e, "status JSON encoding failed");
        b"null".to_vec()
    });
    (JSON, Bytes::from(body))
}

/// The page with `s` embedded. Inside a `<script>` element only `</script` could end it
/// early; with every `<` escaped, no name a client chose (a schema, a host) can.
fn page(s: &Status) -> String {
    let json = serde_json::to_string(s).unwrap_or_else(|_| "null".into());
    let safe = json.replace('<', "\\u003c");
    PAGE.replacen(PLACEHOLDER, &safe, 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_name_views() {
        assert_eq!(route("/"), Some(View::Page));
        assert_eq!(route("/api/status"), Some(View::Status));
        assert_eq!(route("/api/sessions"), Some(View::Sessions));
        assert_eq!(route("/metrics"), None);
        assert_eq!(route("/api/nope"), None);
    }

    #[test]
    fn the_page_embeds_the_status_where_its_script_reads_it() {
        assert_eq!(PAGE.matches(PLACEHOLDER).count(), 1);
        // A schema name may hold what a tenant name may not ('/').
        let text = "[[tenants]]\nname = \"a\"\nschemas = [\"a</script><b>\"]\nprimary = \"127.0.0.1:3307\"\n";
        let rt = RuntimeState::new(crate::config::parse(text, &|_| None).unwrap());
        let (ctype, body) = render(View::Page, &rt, &Rates::default());
        assert_eq!(ctype, HTML);
        let html = String::from_utf8(body.to_vec()).unwrap();
        assert!(!html.contains(PLACEHOLDER));
        assert!(html.contains(r#""a\u003c/script>\u003cb>""#), "escaped");
        assert!(!html.contains("a</script>"));
    }
}
