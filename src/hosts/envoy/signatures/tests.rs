//! The host backend against `FakeHost`: the probe, every status, fallback to ring, the
//! counters, and agreement with ring for every algorithm the host takes over.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use super::super::fake::{Call, FakeHost, Foreign};
use super::super::host::HostStatus;
use super::*;
use crate::core::keys::{parse_jwks, KeySet, KeySource};
use crate::tools::mint::{public_jwks, SigningKey};
use ring::rand::SystemRandom;

fn host_with(foreign: Foreign) -> FakeHost {
    let host = FakeHost::default();
    host.state().foreign = foreign;
    host
}

fn foreign_calls(host: &FakeHost) -> usize {
    host.calls()
        .iter()
        .filter(|c| matches!(c, Call::Foreign(_)))
        .count()
}

/// Prints a fresh probe vector for `probe.rs` (run with `--ignored --nocapture`).
#[test]
#[ignore = "generates probe.rs constants"]
fn make_probe_vector() {
    use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
    let pair =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    let spki =
        crate::core::keys::der::ec_spki(crate::core::keys::Curve::P256, pair.public_key().as_ref());
    let sig = pair.sign(&rng, probe::MESSAGE).unwrap();
    println!("SPKI {:?}", spki);
    println!("SIG {:?}", sig.as_ref());
}

#[test]
fn probe_vector_verifies_with_ring() {
    use ring::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_ASN1};
    assert_eq!(probe::SPKI.len(), 91);
    let key = UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, &probe::SPKI[26..]);
    assert!(key.verify(probe::MESSAGE, probe::SIGNATURE_DER).is_ok());
    assert!(key
        .verify(probe::OTHER_MESSAGE, probe::SIGNATURE_DER)
        .is_err());
}

#[test]
fn probe_succeeds_when_the_host_verifies() {
    let host = host_with(Foreign::VerifyWithRing);
    assert_eq!(probe(&host), Ok(()));
    assert_eq!(foreign_calls(&host), 2);
}

#[test]
fn probe_maps_not_found_to_not_offered() {
    assert_eq!(
        probe(&host_with(Foreign::NotFound)),
        Err(ProbeFailure::NotOffered)
    );
}

#[test]
fn probe_maps_every_other_status() {
    for status in [2, 3, 4, 7, 8, 10, 12, 99] {
        let got = probe(&host_with(Foreign::Status(status)));
        assert_eq!(got, Err(ProbeFailure::Status(HostStatus(status))));
        let text = got.unwrap_err().to_string();
        assert!(text.contains(&status.to_string()), "{text}");
    }
}

#[test]
fn probe_refuses_garbage_and_wrong_answers() {
    let garbage = probe(&host_with(Foreign::Bytes(vec![0x0b])));
    assert!(matches!(garbage, Err(ProbeFailure::Undecodable(_))));
    // A host that says yes to everything must not be trusted with anything.
    let always_yes = probe(&host_with(Foreign::Bytes(vec![0x08, 0x01])));
    assert!(matches!(
        always_yes,
        Err(ProbeFailure::WrongAnswer {
            good: true,
            bad: true,
            ..
        })
    ));
    let always_no = probe(&host_with(Foreign::Bytes(Vec::new())));
    assert!(matches!(
        always_no,
        Err(ProbeFailure::WrongAnswer { good: false, .. })
    ));
}

#[test]
fn status_names() {
    assert_eq!(HostStatus::NOT_FOUND.name(), "NotFound");
    assert_eq!(HostStatus(10).to_string(), "InternalFailure (10)");
    assert_eq!(HostStatus(42).to_string(), "unknown status (42)");
}

#[test]
fn hash_follows_the_algorithm_only() {
    assert_eq!(host_algorithm(Alg::ES256), Some(("sha256", Some(32))));
    assert_eq!(host_algorithm(Alg::ES384), Some(("sha384", Some(48))));
    assert_eq!(host_algorithm(Alg::RS256), Some(("sha256", None)));
    assert_eq!(host_algorithm(Alg::RS384), Some(("sha384", None)));
    assert_eq!(host_algorithm(Alg::RS512), Some(("sha512", None)));
    for alg in [Alg::PS256, Alg::PS384, Alg::PS512, Alg::EdDSA, Alg::HS256] {
        assert_eq!(host_algorithm(alg), None, "{alg:?} stays with ring");
    }
}

/// Keys of every asymmetric type (the RSA one is the corpus's `rsa-a`).
fn keys() -> (Vec<(Alg, SigningKey)>, KeySet) {
    let rng = SystemRandom::new();
    let corpus: serde_json::Value =
        serde_json::from_str(include_str!("../../../../host-tests/corpus/keys.json")).unwrap();
    let rsa = SigningKey::from_jwk(corpus["rsa-a"].as_object().unwrap().clone(), &rng).unwrap();
    let mut signers = vec![
        (
            Alg::ES256,
            SigningKey::generate(Alg::ES256, "es256", &rng).unwrap(),
        ),
        (
            Alg::ES384,
            SigningKey::generate(Alg::ES384, "es384", &rng).unwrap(),
        ),
        (
            Alg::EdDSA,
            SigningKey::generate(Alg::EdDSA, "ed", &rng).unwrap(),
        ),
    ];
    for alg in [Alg::RS256, Alg::RS384, Alg::RS512, Alg::PS256] {
        signers.push((
            alg,
            SigningKey::from_jwk(corpus["rsa-a"].as_object().unwrap().clone(), &rng).unwrap(),
        ));
    }
    let jwks = public_jwks(&[&signers[0].1, &signers[1].1, &signers[2].1, &rsa]);
    (
        signers,
        parse_jwks(&jwks.to_string(), KeySource::Configured).unwrap(),
    )
}

fn key_for(set: &KeySet, alg: Alg) -> &VerificationKey {
    set.keys.iter().find(|k| k.fits(alg)).unwrap()
}

/// For each algorithm: a valid signature, a flipped one, and the valid one over other
/// bytes; the answer must be ring's, and the backend the expected one.
#[test]
fn host_backend_agrees_with_ring_and_counts() {
    let rng = SystemRandom::new();
    let (signers, set) = keys();
    let host = host_with(Foreign::VerifyWithRing);
    let verifier = EnvoyVerifier::new(&host, Backend::Host);
    let (mut want_host, mut want_wasm) = (0, 0);
    for (alg, signer) in &signers {
        let key = key_for(&set, *alg);
        let sig = signer.sign(*alg, b"message", &rng).unwrap();
        let mut flipped = sig.clone();
        *flipped.last_mut().unwrap() ^= 1;
        let expected_backend = if host_algorithm(*alg).is_some() {
            Backend::Host
        } else {
            Backend::Wasm
        };
        for (message, signature, valid) in [
            (&b"message"[..], &sig, true),
            (b"message", &flipped, false),
            (b"massage", &sig, false),
        ] {
            let (answer, backend) = verifier.verify_with_backend(*alg, key, message, signature);
            assert_eq!(answer.is_valid(), valid, "{alg:?}");
            assert_eq!(RING.verify(*alg, key, message, signature), answer);
            assert_eq!(backend, expected_backend, "{alg:?}");
            match backend {
                Backend::Host => want_host += 1,
                Backend::Wasm => want_wasm += 1,
            }
        }
    }
    assert_eq!(verifier.counts(), (want_host, want_wasm));
    assert_eq!(want_host, 15);
}

#[test]
fn malformed_ecdsa_signatures_are_refused_without_a_call() {
    let (_, set) = keys();
    let host = host_with(Foreign::VerifyWithRing);
    let verifier = EnvoyVerifier::new(&host, Backend::Host);
    let key = key_for(&set, Alg::ES256);
    for sig in [
        vec![1u8; 63],
        vec![0u8; 64],
        [vec![0u8; 32], vec![1u8; 32]].concat(),
    ] {
        let (answer, backend) = verifier.verify_with_backend(Alg::ES256, key, b"m", &sig);
        assert_eq!((answer, backend), (Verification::Invalid, Backend::Host));
    }
    assert_eq!(foreign_calls(&host), 0);
}

/// A host call that fails for one signature falls back to ring: the answer stays ring's.
#[test]
fn failed_host_calls_fall_back_to_ring() {
    let rng = SystemRandom::new();
    let (signers, set) = keys();
    let (alg, signer) = &signers[0];
    let key = key_for(&set, *alg);
    let sig = signer.sign(*alg, b"m", &rng).unwrap();
    for foreign in [
        Foreign::NotFound,
        Foreign::Status(10),
        Foreign::Status(2),
        Foreign::Bytes(vec![0xff]),
    ] {
        let host = host_with(foreign);
        let verifier = EnvoyVerifier::new(&host, Backend::Host);
        let (answer, backend) = verifier.verify_with_backend(*alg, key, b"m", &sig);
        assert_eq!((answer, backend), (Verification::Valid, Backend::Wasm));
        let (answer, _) = verifier.verify_with_backend(*alg, key, b"x", &sig);
        assert_eq!(answer, Verification::Invalid);
        assert_eq!(verifier.counts(), (0, 2));
        assert_eq!(foreign_calls(&host), 2);
    }
}

#[test]
fn wasm_backend_never_calls_the_host() {
    let rng = SystemRandom::new();
    let (signers, set) = keys();
    let host = host_with(Foreign::VerifyWithRing);
    let verifier = EnvoyVerifier::new(&host, Backend::Wasm);
    for (alg, signer) in &signers {
        let sig = signer.sign(*alg, b"m", &rng).unwrap();
        assert!(verifier
            .verify(*alg, key_for(&set, *alg), b"m", &sig)
            .is_valid());
    }
    assert_eq!(foreign_calls(&host), 0);
    assert_eq!(verifier.counts(), (0, signers.len() as u64));
}

// --- Through the plugin: the probe at start, the log line, the counters ----------------

mod through_the_plugin {
    use super::super::super::fake::{FakeHost, Foreign};
    use super::super::super::root::Root;
    use super::super::Backend;
    use crate::core::keys::alg::Alg;
    use crate::hosts::envoy::abi::LogLevel;
    use crate::tools::mint::{public_jwks, SigningKey};
    use ring::rand::SystemRandom;
    use serde_json::json;

    const NOW_S: u64 = 1_800_000_000;

    /// A plugin on a fake host answering `foreign`, and an ES256 token it accepts.
    fn configured(foreign: Foreign) -> (FakeHost, Root<FakeHost>, String) {
        let rng = SystemRandom::new();
        let key = SigningKey::generate(Alg::ES256, "k", &rng).unwrap();
        let config = json!({
            "providers": { "p": { "issuer": "https://p.example.com", "audiences": ["api"],
                "local_jwks": { "inline_string": public_jwks(&[&key]).to_string() } } },
            "rules": [ { "id": "all", "match": { "path_prefix": "/" }, "providers": ["p"] } ]
        });
        let claims = json!({ "iss": "https://p.example.com", "sub": "alice", "aud": "api",
                             "iat": NOW_S - 10, "exp": NOW_S + 300 });
        let token = key.mint(Alg::ES256, &claims, None, &rng).unwrap();
        let fake = FakeHost::default();
        {
            let mut state = fake.state();
            state.now_ms = NOW_S * 1000;
            state.effective = 1;
            state.plugin_configuration = Some(config.to_string().into_bytes());
            state.foreign = foreign;
        }
        let mut root = Root::new(1, fake.clone());
        assert!(root.on_configure(0));
        (fake, root, token)
    }

    fn send(fake: &FakeHost, root: &Root<FakeHost>, context_id: u32, token: &str) {
        let auth = format!("Bearer {token}");
        let headers = [
            (":method", "GET"),
            (":path", "/x"),
            (":authority", "api.example.com"),
            ("authorization", auth.as_str()),
        ];
        fake.enter_request(context_id, &headers);
        let mut filter = root.filter(context_id).unwrap();
        filter.on_http_request_headers(headers.len(), true);
    }

    #[test]
    fn a_host_that_verifies_gets_the_signatures() {
        let (fake, root, token) = configured(Foreign::VerifyWithRing);
        assert_eq!(root.plugin().unwrap().signature_backend, Backend::Host);
        let info = fake.logs(LogLevel::Info);
        assert!(
            info.iter().any(|l| l.contains("verified by the host")),
            "{info:?}"
        );
        send(&fake, &root, 2, &token);
        assert_eq!(fake.counter("actwarden.allow"), 1);
        assert_eq!(fake.counter("actwarden.verify.host"), 1);
        assert_eq!(fake.counter("actwarden.verify.wasm"), 0);
        // The second request is a cache hit: no verification at all.
        send(&fake, &root, 3, &token);
        assert_eq!(fake.counter("actwarden.allow"), 2);
        assert_eq!(fake.counter("actwarden.verify.host"), 1);
    }

    #[test]
    fn without_verify_signature_ring_verifies_and_says_why() {
        for (foreign, why) in [
            (Foreign::NotFound, "has no `verify_signature`"),
            (Foreign::Status(10), "InternalFailure (10)"),
            (Foreign::Bytes(vec![0x0b]), "do not decode"),
            (Foreign::Bytes(vec![0x08, 0x01]), "true for an invalid"),
        ] {
            let (fake, root, token) = configured(foreign);
            assert_eq!(root.plugin().unwrap().signature_backend, Backend::Wasm);
            let info = fake.logs(LogLevel::Info);
            assert!(
                info.iter()
                    .any(|l| l.contains("all verified by ring") && l.contains(why)),
                "{info:?}"
            );
            send(&fake, &root, 2, &token);
            assert_eq!(fake.counter("actwarden.allow"), 1);
            assert_eq!(fake.counter("actwarden.verify.host"), 0);
            assert_eq!(fake.counter("actwarden.verify.wasm"), 1);
        }
    }
}
