#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! `Policy::from_plugin_config`: what the Envoy filter's `on_configure` loads (Envoy
//! `configuration`, Istio `pluginConfig`).

use actwarden::ConfigProblem;
use actwarden::Policy;

const DOC: &str =
    r#"{"rules":[{"id":"health","match":{"path_prefix":"/healthz"},"allow_anonymous":true}]}"#;

#[test]
fn an_object_or_a_string_holding_it() {
    let direct = Policy::from_plugin_config(DOC.as_bytes()).unwrap();
    let quoted = serde_json::to_string(DOC).unwrap();
    let nested = Policy::from_plugin_config(format!("  {quoted}\n").as_bytes()).unwrap();
    assert_eq!(direct.rules.len(), 1);
    assert_eq!(nested.rules[0].id, direct.rules[0].id);
}

#[test]
fn errors_name_the_path_also_inside_a_string() {
    let bad = DOC.replace("\"health\"", "\"\"");
    let direct = Policy::from_plugin_config(bad.as_bytes()).unwrap_err();
    let nested =
        Policy::from_plugin_config(serde_json::to_string(&bad).unwrap().as_bytes()).unwrap_err();
    assert_eq!(direct.path, "rules[0].id");
    assert_eq!(direct, nested);
}

#[test]
fn not_utf8_not_json_and_empty_are_refused() {
    for bytes in [&b"\xff\xfe"[..], b"\"unterminated", b"", b"[]", b"\"[]\""] {
        let err = Policy::from_plugin_config(bytes).unwrap_err();
        assert!(
            matches!(err.problem, ConfigProblem::Syntax(_)),
            "{bytes:?}: {err:?}"
        );
    }
}

/// A hostile configuration cannot make one error line huge (it goes to Envoy's log at
/// critical): user input in messages and paths is cut to `limits::MAX_ERROR_INPUT`.
#[test]
fn error_messages_repeat_at_most_a_bounded_piece_of_input() {
    let big = "a".repeat(1 << 20);
    let cases = [
        // a rule id of 1 MiB
        format!(
            r#"{{"rules":[{{"id":"{big}","match":{{"path_prefix":"/"}},"allow_anonymous":true}}]}}"#
        ),
        // an unknown member name of 1 MiB
        format!(r#"{{"{big}":1}}"#),
        // a provider name (part of the path) of 1 MiB with a bad member
        format!(r#"{{"providers":{{"{big}":{{"issuer":"x"}}}}}}"#),
    ];
    for config in cases {
        let err = Policy::from_plugin_config(config.as_bytes()).unwrap_err();
        let line = err.to_string();
        assert!(line.len() < 2048, "{} bytes: {}…", line.len(), &line[..200]);
        assert!(line.contains("bytes in all") || line.len() < 600, "{line}");
    }
}
