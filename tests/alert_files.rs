//! The alert rules (deploy/prometheus/alerts.yml) and the Grafana dashboard (deploy/grafana/) only name
//! metrics the app exports: a renamed metric would otherwise leave an alert that never fires. (promtool checks
//! their syntax in scripts/check-alerts.sh.)

use std::collections::BTreeSet;
use std::path::Path;

/// Every `sentiment_lake_*` name in `text`.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("sentiment_lake_") {
        let tail = &rest[at..];
        let end = tail.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(tail.len());
        names.insert(tail[..end].to_string());
        rest = &tail[end..];
    }
    names
}

fn sources(dir: &Path, out: &mut String) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push_str(&std::fs::read_to_string(&path).unwrap());
        }
    }
}

#[test]
fn alerts_and_dashboards_name_only_exported_metrics() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut code = String::new();
    sources(&root.join("src"), &mut code);
    let exported: BTreeSet<String> = metric_names(&code).into_iter().filter(|name| code.contains(&format!("\"{name}\""))).collect();
    // A histogram is exported as its name's `_bucket`, `_sum` and `_count` series.
    let is_exported = |name: &str| {
        exported.contains(name)
            || ["_bucket", "_sum", "_count"].iter().any(|suffix| name.strip_suffix(suffix).is_some_and(|stem| exported.contains(stem)))
    };
    let mut checked = 0;
    for file in ["deploy/prometheus/alerts.yml", "deploy/grafana/sentiment-lake.json"] {
        let named = metric_names(&std::fs::read_to_string(root.join(file)).unwrap());
        assert!(!named.is_empty(), "{file} names no metric");
        let unknown: Vec<&String> = named.iter().filter(|name| !is_exported(name)).collect();
        assert!(unknown.is_empty(), "{file} names metrics the app does not export: {unknown:?}");
        checked += named.len();
    }
    assert!(checked >= 8, "{checked}");
}

#[test]
fn names_are_found_whole() {
    let found = metric_names(r#"max(sentiment_lake_signal_firing{signal="x"}) + rate(sentiment_lake_rows_staged_total[5m])"#);
    assert_eq!(found.into_iter().collect::<Vec<_>>(), vec!["sentiment_lake_rows_staged_total", "sentiment_lake_signal_firing"]);
}
