//! `audit.log` (an extension of SPEC §6) in Envoy: with `"denials"`, an allowed request
//! writes no audit line but is still counted in `actwarden.allow` and still carries its
//! identity headers upstream; a denied one is logged as always.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use actwarden::mint::{public_jwks, SigningKey};
use actwarden::Alg;
use actwarden_envoy_tests::fixtures::{
    bearer_get, claims, decide, mint, request_id, start_gateway, Via,
};
use actwarden_envoy_tests::servers::echoed;
use ring::rand::SystemRandom;
use serde_json::{json, Value};

#[test]
fn denials_only_logs_denials_and_still_counts_allows() {
    let key = SigningKey::generate(Alg::ES256, "k1", &SystemRandom::new()).unwrap();
    let config = json!({
        "providers": { "sts": { "issuer": "https://sts.e2e", "audiences": ["api"],
            "local_jwks": { "inline_string": public_jwks(&[&key]).to_string() } } },
        "rules": [{ "id": "read", "match": { "path_prefix": "/" },
                    "require": { "scopes": ["invoices:read"] } }],
        "audit": { "log": "denials" }
    })
    .to_string();
    // One worker: the log is written in request order.
    let gateway = start_gateway("audit-log-denials", &config, 1).unwrap();
    let (envoy, addr) = (&gateway.envoy, gateway.addr);
    let token = mint(&key, &claims("https://sts.e2e", "api", "user:alice")).unwrap();

    let allowed_id = request_id("audit-allow");
    let req = bearer_get("/v1/invoices", &token)
        .header("x-request-id", &allowed_id)
        .header("host", "api.example.com");
    let response = actwarden_envoy_tests::http::send(addr, &req).unwrap();
    assert_eq!(response.status, 200, "{}", response.text());
    let upstream = echoed(&response).expect("the upstream answered");
    assert_eq!(upstream.get("x-agent-subject"), Some("user:alice"));

    // The denial after it is logged; once its line is there, the allow's would be too.
    let denied = decide(
        envoy,
        &Via::Plain(addr),
        bearer_get("/v1/invoices", "x.y.z"),
    )
    .unwrap();
    assert_eq!(denied.reason(), "token_malformed", "{}", denied.describe());
    let audits = envoy.audits();
    assert_eq!(audits.len(), 1, "only the denial: {audits:?}");
    assert!(audits
        .iter()
        .all(|a| a.get("request_id").and_then(Value::as_str) != Some(allowed_id.as_str())));

    let counters = envoy.actwarden_counters().unwrap();
    assert_eq!(counters.get("actwarden.allow"), Some(&1), "{counters:?}");
    assert_eq!(
        counters.get("actwarden.deny.token_malformed"),
        Some(&1),
        "{counters:?}"
    );
}
