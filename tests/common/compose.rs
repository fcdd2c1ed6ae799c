//! docker-compose.yml as data, for the tests that check it and the ones that run its
//! services without Docker.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

/// The repository's root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A file of the repository, whole.
pub fn read(rel: &str) -> String {
    let path = root().join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// The exit code of the image's health check (deploy/switchyard/healthcheck.sh) probing
/// `url`: 0 healthy, 1 not. Run as a child process the runtime awaits, so an in-process
/// proxy on the test's own runtime can answer it.
pub async fn health_check(url: &str) -> Option<i32> {
    let run = tokio::process::Command::new("bash")
        .arg(root().join("deploy/switchyard/healthcheck.sh"))
        .arg(url)
        .stderr(std::process::Stdio::null())
        .status();
    tokio::time::timeout(std::time::Duration::from_secs(10), run)
        .await
        .expect("the health check ends within 10 s")
        .expect("bash runs the health check")
        .code()
}

/// docker-compose.yml as JSON, read by PyYAML (the file uses anchors and merge keys, which
/// PyYAML, docker-compose v1 and docker compose v2 all resolve).
pub fn file() -> Value {
    let mut docs = yaml_documents(&["docker-compose.yml"]);
    assert_eq!(docs.len(), 1, "docker-compose.yml: one YAML document");
    docs.remove(0)
}

/// Every non-empty YAML document of the repository files `rels`, in order, as JSON.
pub fn yaml_documents(rels: &[&str]) -> Vec<Value> {
    let out = Command::new("/usr/bin/python3")
        .args([
            "-c",
            "import json, sys, yaml\n\
             docs = [d for f in sys.argv[1:] for d in yaml.safe_load_all(open(f)) if d]\n\
             json.dump(docs, sys.stdout)",
        ])
        .args(rels.iter().map(|r| root().join(r)))
        .output()
        .expect("run /usr/bin/python3 (scripts/cluster.sh deps installs it)");
    assert!(
        out.status.success(),
        "{rels:?} could not be read as YAML (PyYAML comes from Debian's python3-yaml, \
         installed by scripts/cluster.sh deps):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("PyYAML printed JSON")
}

pub fn service<'v>(compose: &'v Value, name: &str) -> &'v Value {
    compose
        .get("services")
        .and_then(|s| s.get(name))
        .unwrap_or_else(|| panic!("docker-compose.yml has no service {name}"))
}

pub fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|x| match x {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A service's environment as a map, whether written as a map or as `KEY=value` items.
pub fn environment(svc: &Value) -> BTreeMap<String, String> {
    match svc.get("environment") {
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().map_or(v.to_string(), str::to_string)))
            .collect(),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(|item| match item.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (item.to_string(), String::new()),
            })
            .collect(),
        _ => BTreeMap::new(),
    }
}

/// A service's environment as `docker compose` with an empty shell environment gives it:
/// `${VAR:-default}` is its default (the tests' passwords are the compose file's defaults),
/// anything else as written.
pub fn resolved_environment(svc: &Value) -> Vec<(String, String)> {
    environment(svc)
        .into_iter()
        .map(|(k, v)| {
            let value = v
                .strip_prefix("${")
                .and_then(|r| r.strip_suffix('}'))
                .and_then(|r| r.split_once(":-"))
                .map_or_else(|| v.clone(), |(_, default)| default.to_string());
            (k, value)
        })
        .collect()
}
