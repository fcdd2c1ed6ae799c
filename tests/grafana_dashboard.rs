//! deploy/grafana/switchyard-dashboard.json queries only series Switchyard exports: every
//! metric name in its PromQL (panel targets and template variables) must be one a live
//! in-process proxy's `/metrics` declares, by the exposition format's suffix rules (a
//! counter family `x` is queried as `x_total`, a histogram as `x_bucket`, `x_sum`,
//! `x_count`). The proxy needs no cluster: families are declared whether or not any
//! backend answers.

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;
use switchyard::state::RuntimeState;

const DASHBOARD: &str = "deploy/grafana/switchyard-dashboard.json";

fn dashboard() -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(DASHBOARD);
    let text = std::fs::read_to_string(&path).unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{DASHBOARD}: {e}"))
}

/// Every PromQL expression in the dashboard: panel targets' `expr` (rows' nested panels
/// too) and query variables' `query`.
fn expressions(d: &Value) -> Vec<String> {
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(e)) = m.get("expr") {
                    out.push(e.clone());
                }
                m.values().for_each(|x| walk(x, out));
            }
            Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(&d["panels"], &mut out);
    for var in d["templating"]["list"].as_array().unwrap() {
        if var["type"] == "query" {
            let q = var["query"]["query"].as_str().or(var["query"].as_str());
            out.push(label_values_selector(q.expect("a query variable's query")));
        }
    }
    out
}

/// `label_values(selector, label)` -> `selector`.
fn label_values_selector(q: &str) -> String {
    let inner = q
        .strip_prefix("label_values(")
        .and_then(|r| r.strip_suffix(')'))
        .unwrap_or_else(|| panic!("not label_values(...): {q}"));
    let (selector, _label) = inner
        .rsplit_once(',')
        .expect("label_values(selector, label)");
    selector.trim().to_owned()
}

/// `text` without what `open`...`close` enclose.
fn strip(text: &str, open: char, close: char) -> String {
    let mut out = String::new();
    let mut depth = 0;
    for c in text.chars() {
        if c == open {
            depth += 1;
        } else if c == close && depth > 0 {
            depth -= 1;
        } else if depth == 0 {
            out.push(c);
        }
    }
    out
}

const KEYWORDS: [&str; 10] = [
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "and",
    "or",
    "unless",
];

/// The metric names a PromQL expression selects: identifiers that are neither functions
/// (followed by `(` or by a `by`/`without` grouping), keywords, label lists (after by/without/on/ignoring/group_*), label
/// matchers (`{...}`), ranges (`[...]`), strings, numbers nor `$variables`.
fn metric_names(expr: &str) -> Vec<String> {
    let mut text = String::new();
    let mut quote = None;
    for c in expr.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '"' || c == '\'' || c == '`' => quote = Some(c),
            None => text.push(c),
        }
    }
    let text = strip(&strip(&text, '{', '}'), '[', ']');
    let chars: Vec<char> = text.chars().collect();
    let mut names = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
        if c == '$' || c.is_ascii_digit() || c == '.' {
            // A variable or a number (with its exponent or unit letters).
            i += 1;
            while i < chars.len() && (ident(chars[i]) || chars[i] == '.') {
                i += 1;
            }
            continue;
        }
        if !(c.is_ascii_alphabetic() || c == '_' || c == ':') {
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len() && ident(chars[i]) {
            i += 1;
        }
        let word: String = chars[start..i].iter().collect();
        let mut j = i;
        while j < chars.len() && chars[j].is_whitespace() {
            j += 1;
        }
        let rest: String = chars[j..].iter().take(8).collect();
        // `sum by (x) (...)`: an aggregation whose grouping comes before its argument.
        let grouped = ["by", "without"].iter().any(|k| {
            rest.strip_prefix(k)
                .is_some_and(|r| r.starts_with([' ', '(']))
        });
        let call = chars.get(j) == Some(&'(') || grouped;
        if KEYWORDS.contains(&word.as_str()) {
            if call {
                // A label list: skip to its ')'.
                i = chars[j..]
                    .iter()
                    .position(|c| *c == ')')
                    .map_or(chars.len(), |p| j + p + 1);
            }
            continue;
        }
        if !call && !["offset", "inf", "nan"].contains(&word.to_ascii_lowercase().as_str()) {
            names.push(word);
        }
    }
    names
}

/// The series names a text exposition allows: from each `# TYPE family kind`, by the
/// suffix rules, plus every sample's own name.
fn exported_series(exposition: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in exposition.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split_whitespace();
            let (Some(family), Some(kind)) = (parts.next(), parts.next()) else {
                continue;
            };
            let suffixes: &[&str] = match kind {
                "counter" => &["_total", "_created"],
                "histogram" | "gaugehistogram" => &["_bucket", "_sum", "_count", "_created"],
                "summary" => &["", "_sum", "_count", "_created"],
                _ => &[""],
            };
            for s in suffixes {
                out.insert(format!("{family}{s}"));
            }
        } else if !line.starts_with('#') && !line.is_empty() {
            let name = line.split(['{', ' ']).next().unwrap_or("");
            out.insert(name.to_owned());
        }
    }
    out
}

/// (expression, name) for each name an expression uses that `exported` lacks.
fn unknown_names(exprs: &[String], exported: &BTreeSet<String>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for e in exprs {
        for n in metric_names(e) {
            if !exported.contains(&n) {
                out.push((e.clone(), n));
            }
        }
    }
    out
}

async fn live_metrics() -> String {
    let cfg = common::config("");
    let p = common::start_with_admin(RuntimeState::new(cfg)).await;
    let a = common::http::get(p.http, "/metrics", "", Duration::from_secs(10)).await;
    assert_eq!(a.status, 200, "{}", a.head);
    a.body
}

#[tokio::test]
async fn every_series_the_dashboard_queries_is_exported() {
    let d = dashboard();
    let exprs = expressions(&d);
    assert!(exprs.len() >= 20, "the dashboard's queries: {exprs:#?}");
    for e in &exprs {
        assert!(!metric_names(e).is_empty(), "no metric name found in {e}");
    }
    let exported = exported_series(&live_metrics().await);
    assert!(
        exported.contains("switchyard_statements_total"),
        "{exported:?}"
    );
    let unknown = unknown_names(&exprs, &exported);
    assert!(
        unknown.is_empty(),
        "{DASHBOARD} queries series /metrics does not export: {unknown:#?}"
    );
    // What the dashboard leaves out, for whoever adds a metric.
    let used: BTreeSet<String> = exprs.iter().flat_map(|e| metric_names(e)).collect();
    let unused: Vec<&String> = exported
        .iter()
        .filter(|n| !used.contains(*n) && !n.ends_with("_created"))
        .collect();
    println!("series not on the dashboard: {unused:?}");
}

#[test]
fn panels_ask_for_the_prometheus_picked_in_the_datasource_variable() {
    let d = dashboard();
    let vars = d["templating"]["list"].as_array().unwrap();
    let ds = vars
        .iter()
        .find(|v| v["name"] == "datasource")
        .expect("a datasource variable");
    assert_eq!(
        (&ds["type"], &ds["query"]),
        (&"datasource".into(), &"prometheus".into())
    );
    let mut ids = BTreeSet::new();
    for p in d["panels"].as_array().unwrap() {
        assert!(ids.insert(p["id"].as_u64().unwrap()), "panel id twice: {p}");
        assert!(p["gridPos"]["w"].as_u64().unwrap() <= 24, "{p}");
        if p["type"] == "row" {
            continue;
        }
        assert_eq!(p["datasource"]["uid"], "${datasource}", "{}", p["title"]);
        for t in p["targets"].as_array().unwrap() {
            assert_eq!(t["datasource"]["uid"], "${datasource}", "{}", p["title"]);
            assert!(t["refId"].is_string(), "{}", p["title"]);
        }
    }
}

#[test]
fn a_misspelt_or_unsuffixed_name_is_reported() {
    let exported = exported_series(
        "# TYPE switchyard_statements counter\nswitchyard_statements_total{tenant=\"a\"} 1\n\
         # TYPE switchyard_statement_duration_seconds histogram\n# EOF\n",
    );
    let exprs = [
        "sum(rate(switchyard_statments_total[5m]))".to_string(),
        "rate(switchyard_statements[5m])".to_string(),
        "histogram_quantile(0.9, sum by (le) (rate(switchyard_statement_duration_seconds_bucket[1m])))"
            .to_string(),
    ];
    let unknown: Vec<String> = unknown_names(&exprs, &exported)
        .into_iter()
        .map(|(_, n)| n)
        .collect();
    assert_eq!(
        unknown,
        ["switchyard_statments_total", "switchyard_statements"]
    );
}

#[test]
fn names_are_told_from_functions_labels_and_numbers() {
    let e = r#"sum by (tenant, route) (rate(a_total{tenant=~"$tenant", x="b_total"}[$__rate_interval]))
        / on(tenant) group_left(kind) max without (addr) (c_gauge offset 5m) > 1e3 or vector(0)"#;
    assert_eq!(metric_names(e), ["a_total", "c_gauge"]);
    assert_eq!(metric_names("count(d == 0) * 2.5"), ["d"]);
    assert_eq!(
        metric_names("topk by (x) (3, f) + by_name"),
        ["f", "by_name"]
    );
    assert_eq!(
        label_values_selector(r#"label_values(e_total{instance=~"$instance"}, tenant)"#),
        r#"e_total{instance=~"$instance"}"#
    );
}
