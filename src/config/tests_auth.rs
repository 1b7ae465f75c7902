//! The auth resolution matrix: JWT secret set or unset × AUTH_MODE ×
//! loopback or not, exactly as the protocol's "Connecting" states it.

use super::tests::{flags, load_with, SECRET};
use super::*;

/// What a combination must resolve to.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Want {
    /// Token auth.
    Token,
    /// Insecure with this `explicit` flag.
    Insecure(bool),
    /// Refused, naming this setting.
    Error(&'static str),
}

fn resolve(secret: bool, mode: &str, host: &str) -> Want {
    let mut args = vec!["--host", host, "--auth-mode", mode];
    if secret {
        args.extend(["--jwt-secret", SECRET]);
    }
    match flags(&args) {
        Ok(c) => match c.auth {
            ResolvedAuth::Token { secret, .. } => {
                assert_eq!(secret.as_deref(), Some(SECRET.as_bytes()));
                Want::Token
            }
            ResolvedAuth::Insecure { explicit } => Want::Insecure(explicit),
        },
        Err(e) => match e {
            ConfigError::Invalid { setting, .. } => Want::Error(setting),
            other => panic!("unexpected error {other}"),
        },
    }
}

#[test]
fn auth_matrix_follows_the_contract() {
    let loopback = ["127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.1"];
    let exposed = ["0.0.0.0", "::", "10.1.2.3", "192.168.0.10", "2001:db8::1"];
    for host in loopback.iter().chain(&exposed) {
        let is_loopback = loopback.contains(host);
        // With a secret: always token, and insecure is a conflict.
        assert_eq!(resolve(true, "auto", host), Want::Token, "{host}");
        assert_eq!(resolve(true, "token", host), Want::Token, "{host}");
        assert_eq!(
            resolve(true, "insecure", host),
            Want::Error("AUTH_MODE"),
            "{host}"
        );
        // Without a secret: token is impossible, insecure must be chosen
        // explicitly unless the host is loopback.
        assert_eq!(
            resolve(false, "token", host),
            Want::Error("JWT_SECRET"),
            "{host}"
        );
        assert_eq!(
            resolve(false, "insecure", host),
            Want::Insecure(true),
            "{host}"
        );
        let auto = if is_loopback {
            Want::Insecure(false)
        } else {
            Want::Error("JWT_SECRET")
        };
        assert_eq!(resolve(false, "auto", host), auto, "{host}");
    }
}

#[test]
fn the_refusal_on_an_exposed_host_explains_both_ways_out() {
    let text = flags(&["--host", "0.0.0.0"]).unwrap_err().to_string();
    assert!(text.contains("JWT_SECRET"), "{text}");
    assert!(text.contains("AUTH_MODE=insecure"), "{text}");
    assert!(text.contains("0.0.0.0"), "{text}");
}

#[test]
fn secret_length_is_checked_in_bytes() {
    let short = &SECRET[..31];
    let err = flags(&["--jwt-secret", short]).unwrap_err();
    assert_eq!(err.setting(), Some("JWT_SECRET"));
    assert!(err.to_string().contains("31 bytes"), "{err}");
    // 11 three-byte characters: 11 characters, 33 bytes.
    let wide = "€".repeat(11);
    assert!(matches!(
        flags(&["--jwt-secret", &wide]).unwrap().auth,
        ResolvedAuth::Token { .. }
    ));
}

#[test]
fn secret_and_mode_from_the_environment() {
    let c = load_with(&["--host", "0.0.0.0"], &[("JWT_SECRET", SECRET)]).unwrap();
    assert!(matches!(c.auth, ResolvedAuth::Token { .. }));
    let c = load_with(&["--host", "0.0.0.0"], &[("AUTH_MODE", "insecure")]).unwrap();
    assert_eq!(c.auth, ResolvedAuth::Insecure { explicit: true });
    // An empty JWT_SECRET counts as unset (a blank line in .env.local).
    let c = load_with(&[], &[("JWT_SECRET", "")]).unwrap();
    assert_eq!(c.auth, ResolvedAuth::Insecure { explicit: false });
}

#[test]
fn echo_path_needs_insecure_auth() {
    let c = flags(&["--echo-path", "/autobahn"]).unwrap();
    assert_eq!(c.settings.echo_path.as_deref(), Some("/autobahn"));
    let err = load_with(&["--echo-path", "/echo"], &[("JWT_SECRET", SECRET)]).unwrap_err();
    assert_eq!(err.setting(), Some("ECHO_PATH"));
}
