#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! `Policy::from_plugin_config`: what the Envoy filter's `on_configure` loads (Envoy
//! `configuration`, Istio `pluginConfig`).

use agentgate::config::ConfigProblem;
use agentgate::Policy;

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
