//! Pins what the load-time messages built here say and what an absent field becomes,
//! so splitting the builders and typing the errors changes neither.

use super::*;

const EC_JWKS: &str = r#"{"keys":[{"kty":"EC","crv":"P-256","kid":"a","x":"04N0xi21hshyvBp7I167sbE_bXqyqkAPfefdklMO7wY","y":"UI8exy-C06a7DUnjIdENkxeFtHM4-l_41LqEw9nVgmw"}]}"#;

fn message(result: Result<Policy, ConfigError>) -> String {
    result.unwrap_err().to_string()
}

fn anonymous_rule() -> serde_json::Value {
    serde_json::json!([{ "id": "r", "match": { "path_prefix": "/" }, "allow_anonymous": true }])
}

#[test]
fn syntax_messages_are_unchanged() {
    assert_eq!(
        message(Policy::from_plugin_config(b"\xff\xfe")),
        "the plugin configuration is not utf-8"
    );
    let unterminated = message(Policy::from_plugin_config(b"\"unterminated"));
    assert!(
        unterminated.starts_with("a json string that does not parse: "),
        "{unterminated}"
    );
    let broken = message(Policy::from_json("{"));
    assert!(broken.starts_with("not valid JSON: "), "{broken}");
    assert_eq!(
        message(Policy::from_json(r#"{"rules":[],"rules":[]}"#)),
        "member `rules` appears twice in one object"
    );
    assert_eq!(
        message(Policy::from_json(r#"{"rules":[],"x":1}"#)),
        "x: unknown field `x`, expected one of `providers`, `identity`, `binding`, `revoked`, `rules`, `on_no_match`, `audit`, `mode`, `mcp`"
    );
}

#[test]
fn a_jwks_file_in_a_host_without_files_is_refused_as_before() {
    let config = serde_json::json!({
        "providers": { "p": { "issuer": "i", "audiences": ["a"],
                              "local_jwks": { "filename": "keys.json" } } },
        "rules": anonymous_rule(),
    });
    let e = Policy::from_json(&config.to_string()).unwrap_err();
    assert_eq!(e.problem, ConfigProblem::NoFileAccess);
    assert_eq!(
        e.to_string(),
        "providers.p.local_jwks.filename: cannot read the jwks file: this host has no files; use `inline_string`"
    );
    let read = |name: &str| {
        Err(crate::core::file::FileError::io(
            name,
            &std::io::Error::new(std::io::ErrorKind::NotFound, "gone"),
        ))
    };
    let e = Policy::from_json_with_files(&config.to_string(), &read).unwrap_err();
    assert_eq!(
        e.to_string(),
        "providers.p.local_jwks.filename: cannot read the jwks file: `keys.json`: gone"
    );
}

#[test]
fn absent_fields_take_the_documented_defaults() {
    let config = serde_json::json!({
        "providers": {
            "local": { "issuer": "i", "audiences": ["a"],
                       "local_jwks": { "inline_string": EC_JWKS } },
            "remote": { "issuer": "j", "audiences": ["a"],
                        "remote_jwks": { "http_uri": { "uri": "https://k/jwks", "cluster": "k" } } }
        },
        "rules": anonymous_rule(),
    });
    let policy = Policy::from_json(&config.to_string()).unwrap();
    let local = &policy.providers[0];
    assert_eq!(local.algorithms, vec![Alg::ES256]);
    assert_eq!(local.token_types, vec!["at+jwt", "jwt"]);
    assert_eq!((local.clock_skew_s, local.max_lifetime_s), (60, 86_400));
    assert_eq!(local.from_headers.len(), 1);
    assert_eq!(local.from_headers[0].name, "authorization");
    assert_eq!(
        local.from_headers[0].value_prefix.as_deref(),
        Some("Bearer ")
    );
    let remote = &policy.providers[1];
    assert_eq!(
        remote.algorithms,
        crate::core::keys::alg::ASYMMETRIC.to_vec()
    );
    let KeyConfig::Remote(r) = &remote.keys else {
        panic!("remote keys expected")
    };
    assert_eq!(
        (r.timeout_ms, r.cache_duration_s, r.max_stale_s),
        (2000, 300, 86_400)
    );
    assert_eq!(policy.identity.trust_domains, None);
    assert_eq!(policy.identity.human_profiles, vec!["user"]);
    assert_eq!(policy.identity.max_chain_depth, 4);
    assert!(policy.identity.actors.is_none());
    assert_eq!(policy.binding.cnf, CnfMode::IfPresent);
    assert!(!policy.binding.actor_must_match_peer);
    assert!(policy.revoked.jti.is_empty() && policy.revoked.subjects.is_empty());
    assert_eq!(policy.on_no_match, OnNoMatch::Deny);
    assert_eq!(policy.audit_log, AuditLog::All);
    assert_eq!(policy.rules[0].providers, vec![0, 1]);
}

/// SPEC §9 with §10 and §11: the metadata document names the DPoP algorithms when a
/// provider accepts DPoP, and the metadata `GET` is answered even in shadow mode.
#[test]
fn mcp_metadata_with_dpop_and_shadow() {
    let config = |dpop: &str| {
        serde_json::json!({
            "mode": "shadow",
            "providers": { "sts": {
                "issuer": "https://sts.example.com",
                "audiences": ["https://api.example.com/mcp"],
                "local_jwks": { "inline_string": EC_JWKS },
                "dpop": { "mode": dpop } } },
            "mcp": { "endpoints": ["/mcp"], "resource": "https://api.example.com/mcp" },
            "rules": [{ "id": "mcp", "match": { "path_exact": "/mcp" } }]
        })
        .to_string()
    };
    let policy = Policy::from_json(&config("allowed")).unwrap();
    let doc = crate::core::mcp::metadata::document(&policy).unwrap();
    assert_eq!(
        doc["dpop_signing_alg_values_supported"],
        serde_json::json!(["ES256", "EdDSA"])
    );
    let off = Policy::from_json(&config("off")).unwrap();
    let doc = crate::core::mcp::metadata::document(&off).unwrap();
    assert!(doc.get("dpop_signing_alg_values_supported").is_none());

    let request = crate::core::request::Request {
        method: "GET".into(),
        path: "/.well-known/oauth-protected-resource/mcp".into(),
        authority: None,
        headers: vec![],
        peer: None,
        scheme: None,
        body: None,
    };
    let ctx = crate::core::pipeline::Context {
        policy: &policy,
        remote_keys: &crate::core::keys::NoRemoteKeys,
        crypto: &crate::core::verification::crypto::RING,
        cache: None,
        replay: &crate::core::dpop::MemoryWindow::new(),
        shared: None,
    };
    let d = crate::core::pipeline::decide(ctx, &request, crate::core::time::UnixTime::from_secs(0));
    assert_eq!(d.reason(), crate::core::reasons::Reason::ResourceMetadata);
    assert!(!d.enforced, "no rule matched: the policy's shadow mode");
    assert_eq!(d.enforced_response().map(|r| r.http_status), Some(200));
}
