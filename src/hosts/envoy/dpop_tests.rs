//! DPoP (SPEC §10) in the Envoy filter against `FakeHost`: one replay window for every
//! worker through shared data, compare-and-swap contention, a full window failing closed,
//! `:scheme`, and the DPoP challenge.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use super::abi::{Action, LogLevel};
use super::fake::{FakeHost, Race};
use super::replay::shard_key;
use super::root::Root;
use crate::core::dpop::replay::{admit_in_shard, entry_key, shard_layout};
use crate::core::keys::alg::Alg;
use crate::core::limits::DPOP_REPLAY_CAS_ATTEMPTS;
use crate::tools::mint::{public_jwks, ProofClaims, SigningKey};
use ring::rand::SystemRandom;
use serde_json::{json, Value};
use std::sync::OnceLock;

const NOW_S: u64 = 1_800_000_000;
const ISS: &str = "https://local.example.com";

struct Keys {
    issuer: SigningKey,
    agent: SigningKey,
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let rng = SystemRandom::new();
        Keys {
            issuer: SigningKey::generate(Alg::ES256, "iss", &rng).unwrap(),
            agent: SigningKey::generate(Alg::ES256, "agent", &rng).unwrap(),
        }
    })
}

fn config(entries: u64) -> Value {
    json!({
        "providers": {
            "local": { "issuer": ISS, "audiences": ["api"],
                       "local_jwks": { "inline_string": public_jwks(&[&keys().issuer]).to_string() },
                       "dpop": { "mode": "allowed", "replay_window_entries": entries } }
        },
        "rules": [ { "id": "api", "match": { "path_prefix": "/api" } } ]
    })
}

fn bound_token() -> String {
    let claims = json!({ "iss": ISS, "sub": "alice", "aud": "api", "iat": NOW_S - 10,
                         "exp": NOW_S + 300, "cnf": { "jkt": keys().agent.jkt().unwrap() } });
    keys()
        .issuer
        .mint(Alg::ES256, &claims, None, &SystemRandom::new())
        .unwrap()
}

fn proof(token: &str, htu: &str, jti: Option<&str>) -> String {
    let claims = ProofClaims {
        htm: "GET",
        htu,
        iat: NOW_S,
        jti,
        access_token: Some(token),
    };
    keys()
        .agent
        .dpop_proof(Alg::ES256, &claims, &SystemRandom::new())
        .unwrap()
}

/// A worker: a root context configured on the shared fake host.
fn worker(fake: &FakeHost, root_id: u32, config: &Value) -> Root<FakeHost> {
    {
        let mut state = fake.state();
        state.now_ms = NOW_S * 1000;
        state.effective = root_id;
        state.plugin_configuration = Some(config.to_string().into_bytes());
    }
    let mut root = Root::new(root_id, fake.clone());
    assert!(root.on_configure(0), "{:?}", fake.logs(LogLevel::Critical));
    root
}

/// Sends a DPoP request through `root`; the local reply's status and challenge, or
/// `None` when the request was allowed.
fn send(
    fake: &FakeHost,
    root: &Root<FakeHost>,
    context_id: u32,
    token: &str,
    proof: &str,
    scheme: &str,
) -> Option<(u32, String, String)> {
    let auth = format!("DPoP {token}");
    let headers = [
        (":method", "GET"),
        (":scheme", scheme),
        (":path", "/api/items?x=1"),
        (":authority", "api.example.com"),
        ("authorization", auth.as_str()),
        ("dpop", proof),
    ];
    let before = fake.replies().len();
    fake.enter_request(context_id, &headers);
    let mut filter = root.filter(context_id).unwrap();
    let action = filter.on_http_request_headers(headers.len(), true);
    let replies = fake.replies();
    match replies.get(before) {
        None => {
            assert_eq!(action, Action::Continue);
            None
        }
        Some(reply) => Some((
            reply.status,
            reply.body.clone(),
            reply
                .header("www-authenticate")
                .unwrap_or_default()
                .to_owned(),
        )),
    }
}

const HTU: &str = "https://api.example.com/api/items";

#[test]
fn a_proof_accepted_by_one_worker_is_a_replay_on_another() {
    let fake = FakeHost::default();
    let a = worker(&fake, 1, &config(65_536));
    let b = worker(&fake, 100, &config(65_536));
    let token = bound_token();
    let proof = proof(&token, HTU, None);
    assert_eq!(send(&fake, &a, 2, &token, &proof, "https"), None);
    let (status, body, challenge) = send(&fake, &b, 3, &token, &proof, "https").unwrap();
    assert_eq!(status, 401);
    assert!(body.contains("dpop_replayed"), "{body}");
    assert_eq!(
        challenge,
        r#"DPoP error="invalid_dpop_proof", error_description="dpop_replayed", algs="ES256 EdDSA""#
    );
    assert_eq!(fake.counter("actwarden.deny.dpop_replayed"), 1);
    // And on the first worker again.
    assert!(send(&fake, &a, 4, &token, &proof, "https").is_some());
    let audit = fake.logs(LogLevel::Info);
    assert!(
        audit.iter().any(|l| l.contains(r#""binding":"dpop""#)),
        "{audit:?}"
    );
}

#[test]
fn every_shard_exists_once_the_plugin_is_configured() {
    let fake = FakeHost::default();
    worker(&fake, 1, &config(65_536));
    let (shards, _) = shard_layout(65_536);
    assert_eq!(shards, 512);
    for shard in 0..shards {
        assert_eq!(
            fake.shared(&shard_key("local", shards, shard)),
            Some(vec![1])
        );
    }
    assert_eq!(fake.shared(&shard_key("local", shards, shards)), None);
    // A second worker leaves the shards as they are.
    fake.set_shared(&shard_key("local", shards, 0), &[1; 25]);
    worker(&fake, 100, &config(65_536));
    assert_eq!(
        fake.shared(&shard_key("local", shards, 0)),
        Some(vec![1; 25])
    );
}

#[test]
fn lost_compare_and_swap_races_are_retried() {
    let fake = FakeHost::default();
    let root = worker(&fake, 1, &config(65_536));
    let token = bound_token();
    fake.state().races.extend((0..3).map(|_| Race {
        key_prefix: "actwarden.dpop.v1|local|".into(),
        value: None,
    }));
    assert_eq!(
        send(&fake, &root, 2, &token, &proof(&token, HTU, None), "https"),
        None
    );
    assert!(fake.state().races.is_empty());
}

#[test]
fn a_swap_that_keeps_losing_fails_closed_and_is_counted() {
    let fake = FakeHost::default();
    let root = worker(&fake, 1, &config(65_536));
    let token = bound_token();
    fake.state()
        .races
        .extend((0..DPOP_REPLAY_CAS_ATTEMPTS).map(|_| Race {
            key_prefix: "actwarden.dpop.v1|local|".into(),
            value: None,
        }));
    let (status, body, _) =
        send(&fake, &root, 2, &token, &proof(&token, HTU, None), "https").unwrap();
    assert_eq!(status, 401);
    assert!(
        body.contains("dpop_replayed") && body.contains("full"),
        "{body}"
    );
    assert_eq!(fake.counter("actwarden.dpop.replay_window_full"), 1);
}

/// Worker B records the same proof between worker A's read of the shard and its write:
/// A's swap fails, A reads again, and finds the proof — a replay, not a second accept.
#[test]
fn a_rival_recording_the_same_proof_mid_swap_makes_it_a_replay() {
    let fake = FakeHost::default();
    let root = worker(&fake, 1, &config(4));
    let token = bound_token();
    let key = entry_key("local", "the-jti");
    let (_, rival) = admit_in_shard(None, &key, NOW_S, NOW_S + 120, 4);
    fake.state().races.push_back(Race {
        key_prefix: shard_key("local", 1, 0),
        value: rival,
    });
    let proof = proof(&token, HTU, Some("the-jti"));
    let (status, body, _) = send(&fake, &root, 2, &token, &proof, "https").unwrap();
    assert_eq!(status, 401);
    assert!(body.contains("already used"), "{body}");
    assert_eq!(fake.counter("actwarden.dpop.replay_window_full"), 0);
}

#[test]
fn a_full_window_refuses_new_proofs_until_entries_expire() {
    let fake = FakeHost::default();
    let root = worker(&fake, 1, &config(2));
    let token = bound_token();
    for id in [2, 3] {
        assert_eq!(
            send(&fake, &root, id, &token, &proof(&token, HTU, None), "https"),
            None
        );
    }
    let (status, body, _) =
        send(&fake, &root, 4, &token, &proof(&token, HTU, None), "https").unwrap();
    assert_eq!(status, 401);
    assert!(body.contains("full"), "{body}");
    assert_eq!(fake.counter("actwarden.dpop.replay_window_full"), 1);
    // max_age_s 60 + skew 60 later, the entries are gone. The proof's iat must be fresh too.
    fake.state().now_ms = (NOW_S + 121) * 1000;
    let late = {
        let claims = ProofClaims {
            htm: "GET",
            htu: HTU,
            iat: NOW_S + 121,
            jti: None,
            access_token: Some(&token),
        };
        keys()
            .agent
            .dpop_proof(Alg::ES256, &claims, &SystemRandom::new())
            .unwrap()
    };
    assert_eq!(send(&fake, &root, 5, &token, &late, "https"), None);
}

#[test]
fn the_scheme_comes_from_the_scheme_pseudo_header() {
    let fake = FakeHost::default();
    let root = worker(&fake, 1, &config(64));
    let token = bound_token();
    let http = "http://api.example.com/api/items";
    assert_eq!(
        send(&fake, &root, 2, &token, &proof(&token, http, None), "http"),
        None
    );
    let (status, body, challenge) =
        send(&fake, &root, 3, &token, &proof(&token, http, None), "https").unwrap();
    assert_eq!(status, 401);
    assert!(body.contains("htu"), "{body}");
    assert!(
        challenge.starts_with("DPoP error=\"invalid_dpop_proof\""),
        "{challenge}"
    );
}

/// A cached token (SPEC §8) is remembered only for what does not depend on the request or
/// the time: each request still needs its own fresh proof, for this URI, not replayed.
#[test]
fn a_cached_token_still_needs_a_fresh_proof_every_request() {
    let fake = FakeHost::default();
    let root = worker(&fake, 1, &config(64));
    let token = bound_token();
    let first = proof(&token, HTU, None);
    assert_eq!(send(&fake, &root, 2, &token, &first, "https"), None);
    assert_eq!(fake.counter("actwarden.cache.miss"), 1);
    // The token is a cache hit from here on; its proofs are not.
    let (status, body, _) = send(&fake, &root, 3, &token, &first, "https").unwrap();
    assert_eq!(status, 401);
    assert!(body.contains("dpop_replayed"), "{body}");
    let other_uri = proof(&token, "https://api.example.com/api/other", None);
    let (status, body, _) = send(&fake, &root, 4, &token, &other_uri, "https").unwrap();
    assert_eq!(status, 401);
    assert!(body.contains("dpop_invalid"), "{body}");
    let (status, body, _) = send(&fake, &root, 5, &token, "", "https").unwrap();
    assert_eq!(status, 401);
    assert!(body.contains("dpop"), "{body}");
    assert_eq!(
        send(&fake, &root, 6, &token, &proof(&token, HTU, None), "https"),
        None
    );
    assert!(fake.counter("actwarden.cache.hit") >= 3);
    assert_eq!(fake.counter("actwarden.cache.miss"), 1);
}

/// A token bound both to a DPoP key and to a certificate: the filter reads the peer only
/// when the binding step needs it, deciding the request a second time — which must not
/// find the request's own proof replayed. The proof is still recorded once, for good.
#[test]
fn a_dpop_and_certificate_bound_token_is_decided_with_the_peer_once_its_proof_passed() {
    let digest = [7u8; 32];
    let claims = json!({ "iss": ISS, "sub": "alice", "aud": "api", "iat": NOW_S - 10,
                         "exp": NOW_S + 300,
                         "cnf": { "jkt": keys().agent.jkt().unwrap(),
                                  "x5t#S256": crate::core::token::b64::encode(&digest) } });
    let token = keys()
        .issuer
        .mint(Alg::ES256, &claims, None, &SystemRandom::new())
        .unwrap();
    for (peer, allowed) in [(digest, true), ([8u8; 32], false)] {
        let fake = FakeHost::default();
        let root = worker(&fake, 1, &config(64));
        fake.state().properties.insert(
            "connection.sha256_peer_certificate_digest".into(),
            crate::core::token::b64::hex(&peer),
        );
        let proof = proof(&token, HTU, None);
        let answer = send(&fake, &root, 2, &token, &proof, "https");
        if allowed {
            assert_eq!(answer, None);
            // The proof was recorded by that request: sent again, a replay.
            let (status, body, _) = send(&fake, &root, 3, &token, &proof, "https").unwrap();
            assert_eq!(status, 401);
            assert!(body.contains("dpop_replayed"), "{body}");
        } else {
            let (status, body, _) = answer.unwrap();
            assert_eq!(status, 401);
            assert!(body.contains("binding_mismatch"), "{body}");
        }
    }
}
