//! DPoP (SPEC §10) in a real Envoy with two workers (`--concurrency 2`): a proof accepted
//! on one connection is `dpop_replayed` on another, whichever worker each lands on — the
//! replay window lives in shared data, not in a worker. Pairs are sent on fresh
//! connections until one pair was served by two different workers (the worker is the
//! thread id in Envoy's log line of the audit record).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use actwarden::mint::{public_jwks, ProofClaims, SigningKey};
use actwarden::Alg;
use actwarden_envoy_tests::envoy::Envoy;
use actwarden_envoy_tests::fixtures::{claims, mint, now, request_id, start_gateway};
use actwarden_envoy_tests::http::{self, Request};
use ring::rand::SystemRandom;
use serde_json::json;
use std::time::Duration;

const ISS: &str = "https://sts.e2e";
/// Pairs sent at most; with two workers and connections spread by the kernel, the chance
/// that no pair crosses workers is about 2^-(PAIRS - 1).
const PAIRS: usize = 24;

/// The worker thread of the log line that carries `request_id` (`[…][thread][level]…`).
fn worker_of(envoy: &Envoy, request_id: &str) -> String {
    let line = envoy
        .wait_log(
            &format!("\"request_id\":\"{request_id}\""),
            0,
            Duration::from_secs(10),
        )
        .unwrap();
    line.split(['[', ']'])
        .filter(|p| !p.is_empty())
        .nth(1)
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn a_proof_accepted_by_one_worker_is_a_replay_on_the_other() {
    let rng = SystemRandom::new();
    let issuer = SigningKey::generate(Alg::ES256, "iss", &rng).unwrap();
    let agent = SigningKey::generate(Alg::ES256, "agent", &rng).unwrap();
    let config = json!({
        "providers": { "sts": { "issuer": ISS, "audiences": ["api"],
            "local_jwks": { "inline_string": public_jwks(&[&issuer]).to_string() },
            "dpop": { "mode": "required" } } },
        "rules": [{ "id": "pay", "match": { "path_prefix": "/v1/" } }]
    })
    .to_string();
    let gateway = start_gateway("dpop-replay", &config, 2).unwrap();
    let (envoy, addr) = (&gateway.envoy, gateway.addr);

    let mut token_claims = claims(ISS, "api", "user:alice");
    token_claims["cnf"] = json!({ "jkt": agent.jkt().unwrap() });
    let token = mint(&issuer, &token_claims).unwrap();
    let send = |proof: &str, id: &str| {
        let req = Request::new("POST", "/v1/payments?x=1")
            .header("host", "api.example.com")
            .header("authorization", &format!("DPoP {token}"))
            .header("dpop", proof)
            .header("x-request-id", id);
        http::send(addr, &req).unwrap()
    };

    let mut crossed = 0;
    for pair in 0..PAIRS {
        let proof = agent
            .dpop_proof(
                Alg::ES256,
                &ProofClaims {
                    htm: "POST",
                    // A plain-HTTP listener: Envoy's `:scheme` is `http`.
                    htu: "http://api.example.com/v1/payments",
                    iat: now(),
                    jti: None,
                    access_token: Some(&token),
                },
                &rng,
            )
            .unwrap();
        let (first, second) = (request_id("dpop-first"), request_id("dpop-second"));
        let ok = send(&proof, &first);
        assert_eq!(ok.status, 200, "pair {pair}: {}", ok.text());
        let replay = send(&proof, &second);
        assert_eq!(replay.status, 401, "pair {pair}: {}", replay.text());
        assert!(replay.text().contains("dpop_replayed"), "{}", replay.text());
        assert_eq!(
            replay.get("www-authenticate"),
            Some(
                r#"DPoP error="invalid_dpop_proof", error_description="dpop_replayed", algs="ES256 EdDSA""#
            )
        );
        let audit = envoy.wait_audit(&first, Duration::from_secs(10)).unwrap();
        assert_eq!(audit["binding"], "dpop");
        if worker_of(envoy, &first) != worker_of(envoy, &second) {
            crossed += 1;
        }
        if crossed >= 2 && pair >= 3 {
            break;
        }
    }
    assert!(
        crossed >= 1,
        "no pair of connections was served by two workers (log {})",
        envoy.log_path().display()
    );
    assert!(envoy.counter("actwarden.deny.dpop_replayed").unwrap() >= 1);

    // The copied token without the agent's key: refused, never a bearer token.
    let stolen = Request::new("POST", "/v1/payments")
        .header("host", "api.example.com")
        .header("authorization", &format!("Bearer {token}"));
    let resp = http::send(addr, &stolen).unwrap();
    assert_eq!(resp.status, 401);
    assert!(resp.text().contains("dpop_required"), "{}", resp.text());
}
