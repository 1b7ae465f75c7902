//! `docs/METRICS.md` against the code: every family `/metrics` renders is a
//! row of the metrics table with its type, `/stats` key and CloudWatch name,
//! every row is a family, and the `/stats` example has exactly the keys
//! `/stats` renders. A metric added or renamed without its documentation
//! fails here.

use std::collections::BTreeSet;

use serde_json::Value;

use super::{render_prometheus, render_stats_json, Counter, Gauge, MetricsRegistry};

/// One row of the table: `(prometheus, stats, type, cloudwatch)`.
type Row = (String, String, String, String);

fn doc() -> String {
    let root = env!("CARGO_MANIFEST_DIR");
    std::fs::read_to_string(format!("{root}/docs/METRICS.md")).unwrap()
}

/// The rows of the table in "## The metrics", Prometheus names without
/// their labels.
fn rows(doc: &str) -> Vec<Row> {
    let section = doc.split("## The metrics").nth(1).expect("section");
    section
        .lines()
        .skip_while(|l| !l.starts_with("| what |"))
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').skip(1).map(str::trim).collect();
            assert!(cells.len() >= 7, "a row has 7 columns: {l}");
            let name = cells[1].trim_matches('`');
            let name = name.split('{').next().unwrap().to_owned();
            let [stats, kind, cloudwatch] = [cells[2], cells[3], cells[4]].map(str::to_owned);
            (name, stats, kind, cloudwatch)
        })
        .collect()
}

fn row<'a>(rows: &'a [Row], name: &str) -> &'a Row {
    rows.iter()
        .find(|r| r.0 == name)
        .unwrap_or_else(|| panic!("docs/METRICS.md has no row for {name}"))
}

/// `name kind` of every `# TYPE` line.
fn families(text: &str) -> BTreeSet<(String, String)> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .map(|l| {
            let (name, kind) = l.split_once(' ').unwrap();
            (name.to_owned(), kind.to_owned())
        })
        .collect()
}

#[test]
fn every_rendered_family_is_a_row_and_every_row_a_family() {
    let doc = doc();
    let rows = rows(&doc);
    let text = render_prometheus(&MetricsRegistry::new(1).snapshot(), "s");
    let families = families(&text);
    for (name, kind) in &families {
        let documented = &row(&rows, name).2;
        assert!(
            documented.starts_with(kind.as_str()),
            "{name}: {documented} vs {kind}"
        );
    }
    let rendered: BTreeSet<_> = families.into_iter().map(|(n, _)| n).collect();
    let documented: BTreeSet<_> = rows.iter().map(|r| r.0.clone()).collect();
    assert_eq!(documented, rendered, "table rows vs /metrics families");
}

#[test]
fn counters_and_gauges_name_their_stats_key_and_cloudwatch_metric() {
    let doc = doc();
    let rows = rows(&doc);
    let camel = |s: &str| s[..1].to_lowercase() + &s[1..];
    for c in Counter::ALL {
        let info = c.info();
        let (_, stats, _, cloudwatch) = row(&rows, info.prometheus);
        assert_eq!(stats, &format!("`counters.{}`", camel(info.name)));
        let expected = match info.cloudwatch_unit {
            Some(_) => format!("`{}`", info.name),
            None => "—".to_owned(),
        };
        assert!(
            cloudwatch.starts_with(&expected),
            "{}: {cloudwatch}",
            info.name
        );
    }
    for g in Gauge::ALL {
        let info = g.info();
        let (_, stats, _, cloudwatch) = row(&rows, info.prometheus);
        assert_eq!(stats, &format!("`gauges.{}`", camel(info.name)));
        assert_eq!(cloudwatch, &format!("`{}`", info.name));
    }
}

/// Every key path of `v` (`a`, `a.b`, ...).
fn paths(v: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    if let Value::Object(map) = v {
        for (k, child) in map {
            let path = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            paths(child, &path, out);
            out.insert(path);
        }
    }
}

#[test]
fn the_stats_example_has_exactly_the_rendered_keys() {
    let doc = doc();
    let section = doc.split("### `/stats`").nth(1).expect("section");
    let example = section
        .split("```json\n")
        .nth(1)
        .and_then(|s| s.split("```").next())
        .expect("a json block");
    let example: Value = serde_json::from_str(example).expect("the example is JSON");
    let rendered = render_stats_json(&MetricsRegistry::new(1).snapshot(), "s");
    let rendered: Value = serde_json::from_str(&rendered).unwrap();
    let (mut want, mut have) = (BTreeSet::new(), BTreeSet::new());
    paths(&rendered, "", &mut want);
    paths(&example, "", &mut have);
    assert_eq!(have, want, "the /stats example vs /stats");
    // Each key the table's `/stats` column names exists.
    for (name, stats, ..) in rows(&doc) {
        for key in stats.split('`').skip(1).step_by(2) {
            let key = key.trim_start_matches('.');
            let full = [
                key.to_owned(),
                format!("{}.{key}", stats.split('`').nth(1).unwrap()),
            ];
            assert!(
                full.iter().any(|k| want.contains(k)),
                "{name}: /stats has no {key}"
            );
        }
    }
}
