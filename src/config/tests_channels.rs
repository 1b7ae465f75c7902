//! The channels file's validation rules, each at its bound, and that every
//! namespace key is documented in `docs/CONFIGURATION.md` and `--help`.

use super::channels::parse;
use super::tests::flags;
use super::*;

/// Parses `text`, expecting an error that names `needle`.
fn refused(text: &str, needle: &str) {
    let err = parse(text).expect_err(text);
    assert!(err.contains(needle), "{text:?} -> {err}");
}

#[test]
fn history_size_is_at_most_ten_thousand() {
    let ok = "[default]\nhistory_size = 10000\nhistory_ttl_secs = 60\n";
    assert_eq!(parse(ok).unwrap().default.history_size, MAX_HISTORY_SIZE);
    refused(
        "[namespaces.chat]\nhistory_size = 10001\nhistory_ttl_secs = 60\n",
        "history_size = 10001 is above the maximum 10000",
    );
}

#[test]
fn history_ttl_is_at_most_thirty_days() {
    let ok = "[namespaces.chat]\nhistory_size = 1\nhistory_ttl_secs = 2592000\n";
    let ttl = parse(ok).unwrap().options("chat:1").history_ttl;
    assert_eq!(ttl.as_secs(), MAX_HISTORY_TTL_SECS);
    refused(
        "[namespaces.chat]\nhistory_ttl_secs = 2592001\n",
        "history_ttl_secs = 2592001 is above the maximum",
    );
}

#[test]
fn a_ttl_without_history_is_accepted_and_ignored() {
    let ns = parse("[default]\nhistory_ttl_secs = 60\n").unwrap();
    assert!(!ns.default.has_history());
}

#[test]
fn rules_apply_to_the_options_after_inheriting_the_default() {
    // presence from [default] satisfies join_leave in a namespace.
    let ns = parse("[default]\npresence = true\n[namespaces.chat]\njoin_leave = true\n").unwrap();
    assert!(ns.options("chat:1").join_leave);
    // A namespace that zeroes the inherited TTL keeps the inherited size.
    refused(
        "[default]\nhistory_size = 5\nhistory_ttl_secs = 60\n\
         [namespaces.chat]\nhistory_ttl_secs = 0\n",
        "[namespaces.chat] history_size = 5 needs history_ttl_secs",
    );
    // [default] itself is checked.
    refused(
        "[default]\njoin_leave = true\n",
        "[default] join_leave = true needs presence",
    );
}

#[test]
fn join_leave_per_sec_defaults_to_50_and_0_means_no_limit() {
    let ns = parse("[namespaces.quiet]\njoin_leave_per_sec = 0\n").unwrap();
    assert_eq!(ns.default.join_leave_per_sec, 50);
    assert_eq!(ns.options("quiet:1").join_leave_per_sec, 0);
    refused("[default]\njoin_leave_per_sec = -1\n", "join_leave_per_sec");
    refused(
        "[default]\njoin_leave_per_sec = 4294967296\n",
        "join_leave_per_sec",
    );
}

#[test]
fn a_namespace_name_is_1_to_64_allowed_characters() {
    let longest = "a".repeat(64);
    let ok = format!("[namespaces.\"{longest}\"]\npublic = true\n");
    assert!(parse(&ok).unwrap().options(&format!("{longest}:x")).public);
    let allowed = "[namespaces.\"A-z0.9_@/=,\"]\npublic = true\n";
    assert!(parse(allowed).unwrap().options("A-z0.9_@/=,:x").public);
    for bad in ["", &"a".repeat(65), "a b", "a:b", "é"] {
        refused(
            &format!("[namespaces.\"{bad}\"]\npublic = true\n"),
            "1 to 64 characters",
        );
    }
}

/// The keys the file accepts, as serde lists them for an unknown one: a key
/// added to the file's struct shows up here without editing this test.
fn accepted_keys() -> Vec<String> {
    let err = parse("[default]\nno_such_key = 1\n").unwrap_err();
    let (_, list) = err
        .split_once("expected one of ")
        .unwrap_or_else(|| panic!("serde's unknown-field message changed: {err}"));
    let list = list.lines().next().unwrap_or(list);
    let keys: Vec<String> = list
        .split(", ")
        .map(|k| k.trim().trim_matches('`').to_owned())
        .collect();
    assert!(keys.len() >= 7, "{keys:?} from {err}");
    keys
}

#[test]
fn every_namespace_key_is_in_the_docs_table_and_in_help() {
    let root = env!("CARGO_MANIFEST_DIR");
    let docs = std::fs::read_to_string(format!("{root}/docs/CONFIGURATION.md")).unwrap();
    let ConfigError::Cli(e) = flags(&["--help"]).unwrap_err() else {
        panic!("--help is a Cli error")
    };
    let help = e.render().to_string();
    for key in accepted_keys() {
        let row = format!("| `{key}` |");
        assert!(
            docs.contains(&row),
            "docs/CONFIGURATION.md lacks the row {row}"
        );
        assert!(help.contains(&key), "--help lacks the namespace key {key}");
    }
}
