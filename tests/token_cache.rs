#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! The verified-token cache (SPEC §8) through `decide`: a hit never changes a decision,
//! never outlives the key that verified it nor the token, and a forged token replayed
//! costs no second verification.

use actwarden::mint::{public_jwks, SigningKey};
use actwarden::Alg;
use actwarden::TokenCache;
use actwarden::{decide, Context};
use actwarden::{parse_jwks, KeySet, KeySource};
use actwarden::{Policy, Reason, Request, UnixTime};
use actwarden::{SharedTokens, SharedVerified};
use jsonwebtoken::crypto::{CryptoProvider, JwtVerifier, KeyUtils};
use jsonwebtoken::{Algorithm, DecodingKey};
use ring::rand::SystemRandom;
use serde_json::json;
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};

const NOW: u64 = 1_800_000_000;

/// `crypto::RING`, counting how many verifiers it builds (one per signature checked).
static VERIFICATIONS: AtomicUsize = AtomicUsize::new(0);

fn counting_verifier(
    alg: &Algorithm,
    key: &DecodingKey,
) -> Result<Box<dyn JwtVerifier>, jsonwebtoken::errors::Error> {
    VERIFICATIONS.fetch_add(1, Ordering::SeqCst);
    (actwarden::RING.verifier_factory)(alg, key)
}

fn counting() -> CryptoProvider {
    let ring = &actwarden::RING;
    let utils = &ring.key_utils;
    CryptoProvider {
        signer_factory: ring.signer_factory,
        verifier_factory: counting_verifier,
        key_utils: KeyUtils {
            rsa_pub_components_from_private_key: utils.rsa_pub_components_from_private_key,
            rsa_pub_components_from_public_key: utils.rsa_pub_components_from_public_key,
            ec_pub_components_from_private_key: utils.ec_pub_components_from_private_key,
            ed_pub_components_from_private_key: utils.ed_pub_components_from_private_key,
            compute_digest: utils.compute_digest,
        },
    }
}

fn policy() -> Policy {
    Policy::from_json(
        &json!({
            "providers": { "sts": {
                "issuer": "https://sts.example.com", "audiences": ["api"],
                "remote_jwks": { "http_uri": { "uri": "http://sts/jwks", "cluster": "sts" } },
                "algorithms": ["ES256"] } },
            "rules": [{ "id": "all", "match": { "path_prefix": "/" }, "providers": ["sts"] }]
        })
        .to_string(),
    )
    .unwrap()
}

fn keys(signers: &[&SigningKey]) -> HashMap<String, KeySet> {
    let text = public_jwks(signers).to_string();
    HashMap::from([(
        "sts".to_owned(),
        parse_jwks(&text, KeySource::Fetched).unwrap(),
    )])
}

fn token(key: &SigningKey, exp: u64) -> String {
    let claims = json!({ "iss": "https://sts.example.com", "sub": "user:alice", "aud": "api",
                         "iat": NOW - 10, "exp": exp, "scope": "read" });
    key.mint(Alg::ES256, &claims, None, &SystemRandom::new())
        .unwrap()
}

fn request(token: &str) -> Request {
    Request {
        method: "GET".into(),
        path: "/x".into(),
        authority: None,
        headers: vec![("authorization".into(), format!("Bearer {token}"))],
        peer: None,
        scheme: None,
        body: None,
    }
}

/// Decides with the counting crypto provider; returns the reason and how many signatures
/// were checked.
fn decide_counting(
    policy: &Policy,
    keys: &HashMap<String, KeySet>,
    cache: &TokenCache,
    token: &str,
    now: u64,
) -> (Reason, usize) {
    decide_shared(policy, keys, cache, None, token, now)
}

/// `decide_counting` with a table shared across "worker VMs" (one `TokenCache` each).
fn decide_shared(
    policy: &Policy,
    keys: &HashMap<String, KeySet>,
    cache: &TokenCache,
    shared: Option<&dyn SharedTokens>,
    token: &str,
    now: u64,
) -> (Reason, usize) {
    let before = VERIFICATIONS.load(Ordering::SeqCst);
    let crypto = counting();
    let ctx = Context {
        policy,
        remote_keys: keys,
        crypto: &crypto,
        cache: Some(cache),
        replay: &actwarden::MemoryWindow::new(),
        shared,
    };
    let decision = decide(ctx, &request(token), UnixTime::from_secs(now));
    (
        decision.reason(),
        VERIFICATIONS.load(Ordering::SeqCst) - before,
    )
}

/// Envoy shared data, as a map (what another VM wrote, it reads).
#[derive(Default)]
struct Shared {
    entries: RefCell<HashMap<[u8; 32], SharedVerified>>,
    writes: RefCell<usize>,
}

impl SharedTokens for Shared {
    fn get(&self, token: &[u8; 32]) -> Option<SharedVerified> {
        self.entries.borrow().get(token).copied()
    }

    fn put(&self, token: &[u8; 32], entry: &SharedVerified) {
        *self.writes.borrow_mut() += 1;
        self.entries.borrow_mut().insert(*token, *entry);
    }
}

// The tests share one counter, so they run as one test in a fixed order.
#[test]
fn token_cache_semantics() {
    let rng = SystemRandom::new();
    let k1 = SigningKey::generate(Alg::ES256, "k1", &rng).unwrap();
    let k2 = SigningKey::generate(Alg::ES256, "k2", &rng).unwrap();
    let k1_again = SigningKey::generate(Alg::ES256, "k1", &rng).unwrap();
    let policy = policy();

    // A hit skips the signature and decides the same.
    let cache = TokenCache::default();
    let t1 = token(&k1, NOW + 600);
    let set_k1 = keys(&[&k1]);
    assert_eq!(
        decide_counting(&policy, &set_k1, &cache, &t1, NOW),
        (Reason::Allowed, 1)
    );
    assert_eq!(
        decide_counting(&policy, &set_k1, &cache, &t1, NOW),
        (Reason::Allowed, 0)
    );
    assert_eq!(cache.stats().hits, 1);

    // Time checks still run on a hit: the cached token expires like any other.
    assert_eq!(
        decide_counting(&policy, &set_k1, &cache, &t1, NOW + 599).0,
        Reason::Allowed
    );
    assert_eq!(
        decide_counting(&policy, &set_k1, &cache, &t1, NOW + 661).0,
        Reason::TokenExpired
    );

    // Rotation: once k1 leaves the JWKS, the cached verification is not used.
    let cache = TokenCache::default();
    assert_eq!(
        decide_counting(&policy, &set_k1, &cache, &t1, NOW).0,
        Reason::Allowed
    );
    assert_eq!(
        decide_counting(&policy, &keys(&[&k2]), &cache, &t1, NOW),
        (Reason::KidUnknown, 0)
    );
    // The same `kid` now names different key material: the old signature does not verify.
    assert_eq!(
        decide_counting(&policy, &keys(&[&k1_again]), &cache, &t1, NOW),
        (Reason::SignatureInvalid, 1)
    );
    // k1 published again (an overlap): the key that verified it is back, so is the hit.
    assert_eq!(
        decide_counting(&policy, &keys(&[&k1, &k2]), &cache, &t1, NOW),
        (Reason::Allowed, 0)
    );

    // A forgery (k2 signs with k1's kid) costs one verification, then none while the keys
    // are the same; a new key under that kid is tried again.
    let cache = TokenCache::default();
    let mut forged = token(&k2, NOW + 600);
    let header_k1 = t1.split('.').next().unwrap();
    let rest = forged.split_once('.').unwrap().1.to_owned();
    forged = format!("{header_k1}.{rest}");
    assert_eq!(
        decide_counting(&policy, &set_k1, &cache, &forged, NOW),
        (Reason::SignatureInvalid, 1)
    );
    assert_eq!(
        decide_counting(&policy, &set_k1, &cache, &forged, NOW),
        (Reason::SignatureInvalid, 0)
    );
    assert_eq!(
        decide_counting(&policy, &keys(&[&k1_again]), &cache, &forged, NOW),
        (Reason::SignatureInvalid, 1)
    );
    // The remembered failure expires (limits::TOKEN_FAILURE_TTL_S).
    assert_eq!(
        decide_counting(&policy, &set_k1, &cache, &forged, NOW + 61),
        (Reason::SignatureInvalid, 1)
    );

    // A token that had expired when first seen never enters the verified map; it is
    // remembered with the failures, so replaying it costs no second verification, and
    // it is still `token_expired` every time (the time check runs on every request).
    let cache = TokenCache::default();
    let old = token(&k1, NOW - 100);
    assert_eq!(
        decide_counting(&policy, &set_k1, &cache, &old, NOW),
        (Reason::TokenExpired, 1)
    );
    assert_eq!(cache.len(), (0, 1));
    assert_eq!(
        decide_counting(&policy, &set_k1, &cache, &old, NOW + 1),
        (Reason::TokenExpired, 0)
    );
    // …while its key is published: another key under the kid means verifying afresh.
    assert_eq!(
        decide_counting(&policy, &keys(&[&k1_again]), &cache, &old, NOW + 2),
        (Reason::SignatureInvalid, 1)
    );
    // …and for the failure TTL only.
    let cache = TokenCache::default();
    decide_counting(&policy, &set_k1, &cache, &old, NOW);
    assert_eq!(
        decide_counting(&policy, &set_k1, &cache, &old, NOW + 61),
        (Reason::TokenExpired, 1)
    );

    shared_table_semantics(&policy, &k1, &k2, &k1_again);
}

/// SPEC §8: what one worker VM verified, another does not verify again — while its own
/// view (provider, algorithm, current keys, time) agrees; it still reads the claims itself.
fn shared_table_semantics(
    policy: &Policy,
    k1: &SigningKey,
    k2: &SigningKey,
    k1_again: &SigningKey,
) {
    let shared = Shared::default();
    let set_k1 = keys(&[k1]);
    let t1 = token(k1, NOW + 600);
    let (vm1, vm2) = (TokenCache::default(), TokenCache::default());
    let s: Option<&dyn SharedTokens> = Some(&shared);
    assert_eq!(
        decide_shared(policy, &set_k1, &vm1, s, &t1, NOW),
        (Reason::Allowed, 1)
    );
    assert_eq!(*shared.writes.borrow(), 1);
    // The other worker: no signature, and it fills its own cache (its next request is a hit).
    assert_eq!(
        decide_shared(policy, &set_k1, &vm2, s, &t1, NOW),
        (Reason::Allowed, 0)
    );
    assert_eq!(vm2.len(), (1, 0));
    assert_eq!(
        decide_shared(policy, &set_k1, &vm2, s, &t1, NOW),
        (Reason::Allowed, 0)
    );
    assert_eq!(vm2.stats().hits, 1);
    // A shared entry is not written back by a worker that read it.
    assert_eq!(*shared.writes.borrow(), 1);
    // Time still runs on every request: the shared verification does not extend `exp`.
    let vm = TokenCache::default();
    assert_eq!(
        decide_shared(policy, &set_k1, &vm, s, &t1, NOW + 661),
        (Reason::TokenExpired, 1),
        "past exp + skew the shared entry is not used"
    );

    // Rotation: the same kid with other key material — the entry names k1's fingerprint,
    // which this worker's keys no longer hold, so it verifies (and fails) itself.
    let vm = TokenCache::default();
    assert_eq!(
        decide_shared(policy, &keys(&[k1_again]), &vm, s, &t1, NOW),
        (Reason::SignatureInvalid, 1)
    );
    // k1 gone altogether: `kid_unknown` before any signature.
    let vm = TokenCache::default();
    assert_eq!(
        decide_shared(policy, &keys(&[k2]), &vm, s, &t1, NOW),
        (Reason::KidUnknown, 0)
    );

    // An entry that does not fit what this worker selected (another key, algorithm or
    // provider, as a damaged or foreign entry would say) is not used.
    let t2 = token(k1, NOW + 600);
    let hash: [u8; 32] = ring::digest::digest(&ring::digest::SHA256, t2.as_bytes())
        .as_ref()
        .try_into()
        .unwrap();
    let good = SharedVerified {
        provider: 0,
        alg: Alg::ES256,
        key: [0; 32],
        expires: UnixTime::from_secs(NOW + 660),
    };
    for wrong in [
        good,
        SharedVerified {
            provider: 1,
            ..good
        },
        SharedVerified {
            alg: Alg::ES384,
            ..good
        },
    ] {
        shared.entries.borrow_mut().insert(hash, wrong);
        let vm = TokenCache::default();
        assert_eq!(
            decide_shared(policy, &set_k1, &vm, s, &t2, NOW),
            (Reason::Allowed, 1)
        );
    }
    // A forged token never enters the table, so never passes through it.
    let mut forged = token(k2, NOW + 600);
    let header_k1 = t1.split('.').next().unwrap();
    forged = format!("{header_k1}.{}", forged.split_once('.').unwrap().1);
    let (vm1, vm2) = (TokenCache::default(), TokenCache::default());
    assert_eq!(
        decide_shared(policy, &set_k1, &vm1, s, &forged, NOW),
        (Reason::SignatureInvalid, 1)
    );
    assert_eq!(
        decide_shared(policy, &set_k1, &vm2, s, &forged, NOW),
        (Reason::SignatureInvalid, 1)
    );
}

/// A token's standing under the policy (chain and revocation outcomes, effective scopes,
/// identity headers) is remembered with its cache entry: every decision with the entry
/// equals the decision without a cache, for tokens that pass and tokens each check
/// refuses, and `x-agent-rule` stays the matched rule's.
#[test]
fn a_remembered_standing_never_changes_a_decision() {
    let rng = SystemRandom::new();
    let k1 = SigningKey::generate(Alg::ES256, "k1", &rng).unwrap();
    let orch = "spiffe://prod.example.com/agent/orchestrator";
    let billing = "spiffe://prod.example.com/agent/billing";
    let policy = Policy::from_json(
        &json!({
            "providers": { "sts": {
                "issuer": "https://sts.example.com", "audiences": ["api"],
                "remote_jwks": { "http_uri": { "uri": "http://sts/jwks", "cluster": "sts" } },
                "algorithms": ["ES256"] } },
            "identity": { "trust_domains": ["prod.example.com"], "max_chain_depth": 2,
                          "actors": { orch: { "max_scopes": ["read", "pay"] },
                                      billing: { "max_scopes": ["read"] } } },
            "revoked": { "jti": ["revoked-jti"] },
            "rules": [
                { "id": "pay", "match": { "path_prefix": "/pay" }, "providers": ["sts"],
                  "require": { "scopes": ["pay"] } },
                { "id": "all", "match": { "path_prefix": "/" }, "providers": ["sts"] }
            ]
        })
        .to_string(),
    )
    .unwrap();
    let keys = keys(&[&k1]);
    let user = json!({ "iss": "https://sts.example.com", "sub": "user:alice", "aud": "api",
                       "iat": NOW - 10, "exp": NOW + 600, "scope": "read pay write",
                       "jti": "j-1" });
    let delegate = |claims: &serde_json::Value, actor: &str| {
        let mut c = actwarden::mint::delegate(claims, actor, None);
        c["may_act"] = json!({ "sub": actor });
        c
    };
    let mut revoked = user.clone();
    revoked["jti"] = json!("revoked-jti");
    let cases = [
        ("user", user.clone()),
        ("via orchestrator", delegate(&user, orch)),
        ("via orchestrator and billing", {
            let mut c = actwarden::mint::delegate(&delegate(&user, orch), billing, None);
            c["may_act"] = json!({ "sub": billing });
            c
        }),
        (
            "unknown actor",
            delegate(&user, "spiffe://prod.example.com/agent/rogue"),
        ),
        (
            "other trust domain",
            delegate(&user, "spiffe://evil.example.com/agent/x"),
        ),
        ("revoked", revoked),
    ];
    let decide_once = |cache: Option<&TokenCache>, token: &str, path: &str| {
        let ctx = Context {
            policy: &policy,
            remote_keys: &keys,
            crypto: &actwarden::RING,
            cache,
            replay: &actwarden::MemoryWindow::new(),
            shared: None,
        };
        let mut request = request(token);
        request.path = path.into();
        let d = decide(ctx, &request, UnixTime::from_secs(NOW));
        let headers: Vec<(String, String)> = d
            .identity_headers()
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
            .collect();
        (d.verdict.clone(), headers, d.audit_record(&request))
    };
    let mut reasons = Vec::new();
    for (name, claims) in &cases {
        let token = k1.mint(Alg::ES256, claims, None, &rng).unwrap();
        let cache = TokenCache::default();
        for path in ["/pay", "/other", "/pay"] {
            let uncached = decide_once(None, &token, path);
            for round in ["first", "second"] {
                let cached = decide_once(Some(&cache), &token, path);
                assert_eq!(cached, uncached, "{name}, {path}, {round} cached decision");
            }
            reasons.push((*name, path, uncached.0.reason()));
            let scopes = uncached.1.iter().find(|(n, _)| n == "x-agent-scopes");
            if *name == "via orchestrator and billing" && path == "/other" {
                assert_eq!(scopes.map(|(_, v)| v.as_str()), Some("read"));
            }
            let rule = uncached.1.iter().find(|(n, _)| n == "x-agent-rule");
            if let Some((_, rule)) = rule {
                assert_eq!(rule, if path == "/pay" { "pay" } else { "all" });
            }
        }
        assert_eq!(cache.stats().misses, 1, "{name}: verified once");
    }
    let reason = |name: &str, path: &str| {
        reasons
            .iter()
            .find(|(n, p, _)| *n == name && *p == path)
            .map(|(_, _, r)| *r)
    };
    assert_eq!(reason("user", "/pay"), Some(Reason::Allowed));
    assert_eq!(reason("via orchestrator", "/pay"), Some(Reason::Allowed));
    // Billing's ceiling drops `pay`: refused where it is required, allowed elsewhere.
    let both = "via orchestrator and billing";
    assert_eq!(reason(both, "/pay"), Some(Reason::ActorScopeExceeded));
    assert_eq!(reason(both, "/other"), Some(Reason::Allowed));
    assert_eq!(
        reason("unknown actor", "/other"),
        Some(Reason::ActorNotAllowed)
    );
    assert_eq!(
        reason("other trust domain", "/other"),
        Some(Reason::TrustDomainMismatch)
    );
    assert_eq!(reason("revoked", "/other"), Some(Reason::TokenRevoked));
}
