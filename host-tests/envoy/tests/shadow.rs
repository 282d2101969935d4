//! Shadow mode (SPEC §11) in Envoy: a denial under a shadow rule is forwarded to the
//! upstream anyway — inbound `x-agent-*` stripped, no identity header added — and logged
//! with its real reason and `"enforced": false`, counted in `actwarden.shadow_deny` and
//! `actwarden.shadow_deny.<reason>`, never in `actwarden.deny.*`. An enforced rule of the
//! same policy still replies locally.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use actwarden::mint::{public_jwks, SigningKey};
use actwarden::Alg;
use actwarden_envoy_tests::fixtures::{bearer_get, claims, decide, mint, start_gateway, Via};
use ring::rand::SystemRandom;
use serde_json::json;

#[test]
fn a_shadow_rule_forwards_a_denial_without_identity_and_logs_it() {
    let key = SigningKey::generate(Alg::ES256, "k1", &SystemRandom::new()).unwrap();
    let config = json!({
        "providers": { "sts": { "issuer": "https://sts.e2e", "audiences": ["api"],
            "local_jwks": { "inline_string": public_jwks(&[&key]).to_string() } } },
        "rules": [
            { "id": "trial", "match": { "path_prefix": "/v1/trial" }, "mode": "shadow",
              "require": { "scopes": ["payments:write"] } },
            { "id": "strict", "match": { "path_prefix": "/v1/strict" },
              "require": { "scopes": ["payments:write"] } }
        ]
    })
    .to_string();
    let gateway = start_gateway("shadow", &config, 2).unwrap();
    let (envoy, addr) = (&gateway.envoy, gateway.addr);
    let via = Via::Plain(addr);
    // A valid token without the scope: a real `scope_insufficient`.
    let token = mint(&key, &claims("https://sts.e2e", "api", "user:alice")).unwrap();

    let shadow = decide(
        envoy,
        &via,
        bearer_get("/v1/trial/x", &token).header("x-agent-subject", "user:spoofed"),
    )
    .unwrap();
    assert_eq!(
        shadow.reason(),
        "scope_insufficient",
        "{}",
        shadow.describe()
    );
    assert_eq!(shadow.audit["decision"], json!("deny"));
    assert_eq!(shadow.audit["status"], json!(403));
    assert_eq!(shadow.audit["enforced"], json!(false));
    assert_eq!(shadow.response.status, 200, "{}", shadow.describe());
    let upstream = shadow.upstream.as_ref().expect("forwarded to the upstream");
    let identity: Vec<_> = upstream
        .headers
        .iter()
        .filter(|(k, _)| k.to_ascii_lowercase().starts_with("x-agent-"))
        .collect();
    assert!(
        identity.is_empty(),
        "identity headers upstream: {identity:?}"
    );

    let enforced = decide(envoy, &via, bearer_get("/v1/strict/x", &token)).unwrap();
    assert_eq!(enforced.reason(), "scope_insufficient");
    assert_eq!(enforced.audit["enforced"], json!(true));
    assert_eq!(enforced.response.status, 403, "{}", enforced.describe());
    assert!(enforced.upstream.is_none(), "{}", enforced.describe());

    let counters = envoy.actwarden_counters().unwrap();
    let count = |name: &str| counters.get(name).copied().unwrap_or(0);
    assert_eq!(count("actwarden.shadow_deny"), 1, "{counters:?}");
    assert_eq!(
        count("actwarden.shadow_deny.scope_insufficient"),
        1,
        "{counters:?}"
    );
    assert_eq!(
        count("actwarden.deny.scope_insufficient"),
        1,
        "{counters:?}"
    );
    assert_eq!(count("actwarden.allow"), 0, "{counters:?}");
}
