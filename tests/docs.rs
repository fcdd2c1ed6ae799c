//! The documentation stays in step with the code: docs/configuration.md names exactly the
//! keys the config schema accepts, its complete example is the one the unit tests keep
//! valid, and every TOML example of the docs loads. Pure file checks: no cluster needed.

use std::collections::BTreeSet;
use std::path::PathBuf;

use switchyard::config::keys::{accepted_keys, EXAMPLE};

const KEY_TABLE_HEADER: &str = "| key | type | default | meaning |";

fn read(rel: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// The first cell of every row of every key table (tables whose header is
/// `KEY_TABLE_HEADER`), with its backticks removed.
fn documented_keys(doc: &str) -> Vec<String> {
    let mut keys = Vec::new();
    let mut in_table = false;
    for line in doc.lines().map(str::trim) {
        if line == KEY_TABLE_HEADER {
            in_table = true;
            continue;
        }
        if !in_table {
            continue;
        }
        if !line.starts_with('|') {
            in_table = false;
            continue;
        }
        let first = line
            .trim_matches('|')
            .split('|')
            .next()
            .unwrap_or("")
            .trim();
        if first.chars().all(|c| c == '-' || c == ' ') {
            continue; // the |---| separator row
        }
        let key = first
            .strip_prefix('`')
            .and_then(|k| k.strip_suffix('`'))
            .unwrap_or_else(|| panic!("key cell not in backticks: {line}"));
        keys.push(key.to_string());
    }
    keys
}

#[test]
fn configuration_doc_names_exactly_the_accepted_keys() {
    let doc = read("docs/configuration.md");
    let listed = documented_keys(&doc);
    let documented: BTreeSet<String> = listed.iter().cloned().collect();
    assert_eq!(listed.len(), documented.len(), "a key is documented twice");
    let accepted: BTreeSet<String> = accepted_keys().into_iter().collect();
    let missing: Vec<&String> = accepted.difference(&documented).collect();
    let unknown: Vec<&String> = documented.difference(&accepted).collect();
    assert!(
        missing.is_empty() && unknown.is_empty(),
        "docs/configuration.md is out of step with the config schema\n  \
         accepted but not documented: {missing:?}\n  \
         documented but not accepted: {unknown:?}"
    );
}

#[test]
fn configuration_doc_shows_the_complete_example() {
    let doc = read("docs/configuration.md");
    let (_, after) = doc
        .split_once("## A complete example")
        .expect("a \"## A complete example\" section");
    let block = after
        .split_once("```toml\n")
        .and_then(|(_, rest)| rest.split_once("```"))
        .map(|(block, _)| block)
        .expect("a toml code block in the complete example section");
    assert_eq!(
        block.trim(),
        EXAMPLE.trim(),
        "the complete example in docs/configuration.md must be config::keys::EXAMPLE"
    );
}

#[test]
fn key_table_parser_reads_rows() {
    let doc = "text\n| key | type | default | meaning |\n| --- | --- | --- | --- |\n\
               | `a.b` | x | y | z |\n| `c[].d` | x | y | z |\n\nafter\n| `not.a.key` | table |\n";
    assert_eq!(documented_keys(doc), vec!["a.b", "c[].d"]);
}

#[test]
fn docs_link_to_files_that_exist() {
    // Relative links between the docs and to repo files, e.g. (routing.md) or (../config/x).
    for page in [
        "README.md",
        "ARCHITECTURE.md",
        "docs/configuration.md",
        "docs/routing.md",
        "docs/operations.md",
        "docs/security.md",
        "docs/product.md",
        "docs/design.md",
    ] {
        let text = read(page);
        assert!(
            !text.contains("../shared"),
            "{page} points outside the repository (../shared): a clone does not have it"
        );
        let base = PathBuf::from(page)
            .parent()
            .map(PathBuf::from)
            .unwrap_or_default();
        for (_, rest) in text.match_indices("](").map(|(i, _)| text.split_at(i + 2)) {
            let target = rest.split(')').next().unwrap_or("");
            let target = target.split('#').next().unwrap_or("");
            if target.is_empty() || target.contains("://") || target.contains(' ') {
                continue;
            }
            let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join(&base)
                .join(target);
            assert!(
                path.exists(),
                "{page} links to {target}, which does not exist"
            );
        }
    }
}

/// Every ```toml block of the docs and the README.
fn toml_blocks() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for doc in ["docs/configuration.md", "docs/security.md", "README.md"] {
        let text = read(doc);
        let mut rest = text.as_str();
        while let Some((before, after)) = rest.split_once("```toml\n") {
            let line = text.len() - rest.len() + before.len();
            let line = text[..line].lines().count() + 1;
            let (block, tail) = after.split_once("```").expect("a closed block");
            out.push((format!("{doc}:{line}"), block.to_owned()));
            rest = tail;
        }
    }
    out
}

/// What operators copy from the docs must load: each example is valid on its own, with the
/// tenant the examples name (`acme`) and a user added where it shows neither tenants nor
/// clusters (every `${VAR}` set).
#[test]
fn every_toml_example_in_the_docs_is_valid() {
    let blocks = toml_blocks();
    assert!(blocks.len() >= 10, "{} blocks", blocks.len());
    let env = |_: &str| Some("x".to_string());
    let filler = "\n[[tenants]]\nname = \"acme\"\nschemas = [\"wf_acme\"]\nprimary = \"127.0.0.1:3306\"\n\n[[users]]\nname = \"docs_filler_app\"\npassword = \"pw\"\ntenant = \"acme\"\n";
    let mut problems = Vec::new();
    for (at, block) in &blocks {
        let whole = block.contains("[[tenants]]") || block.contains("[[clusters]]");
        let text = if whole {
            block.clone()
        } else {
            format!("{block}{filler}")
        };
        if let Err(e) = switchyard::config::parse(&text, &env) {
            problems.push(format!("{at}:\n{e}"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}
