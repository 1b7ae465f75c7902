//! The `COMPRESSION_*` block: defaults, ranges, and that it reaches `Settings`.

use super::tests::{flags, load_with};
use crate::protocol::deflate::DeflateConfig;

#[test]
fn off_by_default_with_the_documented_defaults() {
    let c = flags(&[]).unwrap();
    assert_eq!(c.settings.compression, None);
    assert!(c.summary().contains(" compression=off"), "{}", c.summary());
    let on = flags(&["--compression", "on"]).unwrap();
    assert_eq!(
        on.settings.compression,
        Some(DeflateConfig {
            min_bytes: 256,
            level: 6
        })
    );
    assert!(on
        .summary()
        .contains("compression=on(level=6 min_bytes=256)"));
}

#[test]
fn flags_and_environment_set_it() {
    let c = load_with(
        &["--compression-level", "1"],
        &[("COMPRESSION", "on"), ("COMPRESSION_MIN_BYTES", "0")],
    )
    .unwrap();
    assert_eq!(
        c.settings.compression,
        Some(DeflateConfig {
            min_bytes: 0,
            level: 1
        })
    );
}

#[test]
fn bad_values_name_their_setting_even_when_off() {
    for (args, setting) in [
        (&["--compression-level", "0"][..], "COMPRESSION_LEVEL"),
        (&["--compression-level", "10"][..], "COMPRESSION_LEVEL"),
        (
            &["--compression-min-bytes", "16777217"][..],
            "COMPRESSION_MIN_BYTES",
        ),
    ] {
        let err = flags(args).unwrap_err();
        assert_eq!(err.setting(), Some(setting), "{args:?}: {err}");
    }
    let err = load_with(&[], &[("COMPRESSION", "yes")]).unwrap_err();
    assert_eq!(err.setting(), Some("COMPRESSION"), "{err}");
}
