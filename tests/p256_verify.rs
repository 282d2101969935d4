//! `actwarden::p256_verify` (the issue 5 exploration, not used by verification):
//!
//! - every vector of Wycheproof's `ecdsa_secp256r1_sha256_p1363_test.json`, through
//!   `verify`, a parsed `PublicKey` and a `PreparedKey`, must get exactly Wycheproof's answer (`valid` accepted, `invalid` rejected; the file has no
//!   `acceptable` case, and one would be printed), and ring must agree on each;
//! - differential properties against ring 0.17: ring signs random messages under a pool of
//!   keys; the unmodified signature, its high-s twin, signatures and messages and keys with
//!   flipped bits, and r/s at the range edges must get the same answer from both.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use actwarden::p256_verify::{self, PreparedKey, PublicKey, Rejected};
use proptest::prelude::*;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair, UnparsedPublicKey};
use serde_json::Value;
use std::io::Write as _;
use std::sync::OnceLock;

const WYCHEPROOF: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/vectors/wycheproof/ecdsa_secp256r1_sha256_p1363_test.json"
);

/// n, big-endian.
const N: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
];

fn unhex(text: &str) -> Vec<u8> {
    assert!(text.len() % 2 == 0, "odd-length hex {text:?}");
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex digit"))
        .collect()
}

fn ring_verify(key: &[u8], msg: &[u8], sig: &[u8]) -> bool {
    UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, key)
        .verify(msg, sig)
        .is_ok()
}

#[test]
fn every_wycheproof_p256_p1363_vector() {
    let file: Value = serde_json::from_str(&std::fs::read_to_string(WYCHEPROOF).unwrap()).unwrap();
    let (mut total, mut passed) = (0u64, 0u64);
    let mut failures = Vec::new();
    for group in file["testGroups"].as_array().unwrap() {
        let key = unhex(group["publicKey"]["uncompressed"].as_str().unwrap());
        assert_eq!(group["sha"], "SHA-256");
        let parsed = PublicKey::from_sec1(&key);
        let prepared = parsed.map(|k| k.prepare());
        for case in group["tests"].as_array().unwrap() {
            total += 1;
            let id = case["tcId"].as_u64().unwrap();
            let msg = unhex(case["msg"].as_str().unwrap());
            let sig = unhex(case["sig"].as_str().unwrap());
            let ours = parsed.and_then(|k| k.verify(&msg, &sig));
            assert_eq!(
                ours,
                p256_verify::verify(&key, &msg, &sig),
                "tcId {id}: the two entry points differ"
            );
            assert_eq!(
                ours,
                prepared
                    .as_ref()
                    .map_err(|e| *e)
                    .and_then(|k| k.verify(&msg, &sig)),
                "tcId {id}: the prepared key differs"
            );
            let ring = ring_verify(&key, &msg, &sig);
            let expected = case["result"].as_str().unwrap();
            let ok = match expected {
                "valid" => ours.is_ok(),
                "invalid" => ours.is_err(),
                "acceptable" => {
                    eprintln!("p256_verify: tcId {id} acceptable: ours {ours:?}, ring {ring}");
                    true
                }
                other => panic!("tcId {id}: unknown result `{other}`"),
            };
            if ok && ours.is_ok() == ring {
                passed += 1;
            } else {
                failures.push(format!(
                    "tcId {id} ({}): expected {expected}, ours {ours:?}, ring accepts: {ring}",
                    case["comment"].as_str().unwrap_or("")
                ));
            }
        }
    }
    // Straight to stderr (not captured), so that the count shows in CI logs.
    let _ = writeln!(
        std::io::stderr(),
        "p256_verify: Wycheproof P-256 P1363: {passed}/{total} vectors as expected"
    );
    assert_eq!(total, file["numberOfTests"].as_u64().unwrap());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

type Key = (EcdsaKeyPair, Vec<u8>, PreparedKey);

/// A few ring key pairs, made once: (key pair, uncompressed public key, prepared key).
fn keys() -> &'static [Key] {
    static KEYS: OnceLock<Vec<Key>> = OnceLock::new();
    KEYS.get_or_init(|| {
        let rng = SystemRandom::new();
        (0..6)
            .map(|_| {
                let alg = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
                let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
                let pair = EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).unwrap();
                let public = pair.public_key().as_ref().to_vec();
                let prepared = PublicKey::from_sec1(&public).unwrap().prepare();
                (pair, public, prepared)
            })
            .collect()
    })
}

fn sign(key: usize, msg: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let (pair, public, _) = &keys()[key % keys().len()];
    let sig = pair.sign(&SystemRandom::new(), msg).unwrap();
    (public.clone(), sig.as_ref().to_vec())
}

/// a - b for big-endian 32-byte integers, a >= b.
fn sub_be(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; 32];
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let t = i16::from(a[i]) - i16::from(b[i]) - borrow;
        out[i] = t.rem_euclid(256) as u8;
        borrow = i16::from(t < 0);
    }
    out
}

fn flip(bytes: &mut [u8], bit: usize) {
    let len = bytes.len();
    if len > 0 {
        bytes[(bit / 8) % len] ^= 1 << (bit % 8);
    }
}

fn agree(key: &[u8], msg: &[u8], sig: &[u8]) -> Result<bool, TestCaseError> {
    let ours = p256_verify::verify(key, msg, sig).is_ok();
    let ring = ring_verify(key, msg, sig);
    prop_assert_eq!(
        ours,
        ring,
        "key {:02x?} msg {:02x?} sig {:02x?}",
        key,
        msg,
        sig
    );
    Ok(ours)
}

/// Edge values for r or s: 0, 1, n - 1, n, n + 1, 2^256 - 1, and a random-looking one.
fn edge_scalar(which: u8) -> Vec<u8> {
    let one = {
        let mut v = vec![0u8; 32];
        v[31] = 1;
        v
    };
    match which % 7 {
        0 => vec![0; 32],
        1 => one,
        2 => sub_be(&N, &one),
        3 => N.to_vec(),
        4 => {
            let mut v = N.to_vec();
            v[31] += 1;
            v
        }
        5 => vec![0xff; 32],
        _ => unhex("7fffffff800000007fffffffffffffffde737d56d38bcf4279dce5617e3192a8"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn agrees_with_ring_on_signatures_and_bit_flips(
        key in 0usize..6,
        msg in proptest::collection::vec(any::<u8>(), 0..200),
        sig_bit in 0usize..512,
        msg_bit in 0usize..1600,
        key_bit in 8usize..520,
    ) {
        let (public, sig) = sign(key, &msg);
        prop_assert!(agree(&public, &msg, &sig)?, "a fresh signature must verify");

        // The high-s twin (r, n - s) is valid ECDSA; neither verifier normalizes s.
        let mut twin = sig[..32].to_vec();
        twin.extend(sub_be(&N, &sig[32..]));
        prop_assert!(agree(&public, &msg, &twin)?);

        let mut bad_sig = sig.clone();
        flip(&mut bad_sig, sig_bit);
        prop_assert!(!agree(&public, &msg, &bad_sig)?);

        let mut bad_msg = msg.clone();
        flip(&mut bad_msg, msg_bit);
        if !msg.is_empty() {
            prop_assert!(!agree(&public, &bad_msg, &sig)?);
        }

        // A flipped bit in x or y: almost always off the curve, both must reject.
        let mut bad_key = public.clone();
        flip(&mut bad_key, key_bit);
        prop_assert!(!agree(&bad_key, &msg, &sig)?);
        prop_assert!(matches!(
            PublicKey::from_sec1(&bad_key),
            Err(Rejected::KeyNotOnCurve | Rejected::KeyEncoding)
        ));
    }

    #[test]
    fn agrees_with_ring_on_edge_scalars_and_random_signatures(
        key in 0usize..6,
        msg in proptest::collection::vec(any::<u8>(), 0..64),
        r_edge in any::<u8>(),
        s_edge in any::<u8>(),
        random_sig in proptest::collection::vec(any::<u8>(), 64),
        len in 0usize..80,
    ) {
        let (public, sig) = sign(key, &msg);
        let mut with_r = edge_scalar(r_edge);
        with_r.extend_from_slice(&sig[32..]);
        agree(&public, &msg, &with_r)?;
        let mut with_s = sig[..32].to_vec();
        with_s.extend(edge_scalar(s_edge));
        agree(&public, &msg, &with_s)?;
        let mut both = edge_scalar(r_edge);
        both.extend(edge_scalar(s_edge));
        agree(&public, &msg, &both)?;
        prop_assert!(!agree(&public, &msg, &random_sig)?);
        let mut resized = sig.clone();
        resized.resize(len, 0);
        agree(&public, &msg, &resized)?;
    }
}
