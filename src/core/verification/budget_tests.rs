//! SPEC §13's signature budget: a kid-less token costs at most
//! `MAX_SIGNATURE_VERIFICATIONS` verifications, whatever the JWKS holds.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use super::backend::{SignatureVerifier, Verification};
use super::{candidate_keys, verify_signature, SignatureFailure};
use crate::core::keys::alg::Alg;
use crate::core::keys::{parse_jwks, KeySource, VerificationKey};
use crate::core::limits::MAX_SIGNATURE_VERIFICATIONS;
use crate::core::token;
use crate::tools::mint::{public_jwks, SigningKey};
use ring::rand::SystemRandom;
use serde_json::{json, Map};
use std::cell::Cell;

/// ring, counting the signatures it was asked to check.
#[derive(Default)]
struct Counting(Cell<usize>);

impl SignatureVerifier for Counting {
    fn verify(&self, alg: Alg, key: &VerificationKey, m: &[u8], s: &[u8]) -> Verification {
        self.0.set(self.0.get() + 1);
        super::crypto::RING.verify(alg, key, m, s)
    }
}

/// Six ES256 keys in one JWKS, and a kid-less token signed by key `signer`.
fn six_keys_and_token(signer: usize) -> (crate::core::keys::KeySet, String) {
    let rng = SystemRandom::new();
    let keys: Vec<SigningKey> = (0..6)
        .map(|i| SigningKey::generate(Alg::ES256, &format!("k{i}"), &rng).unwrap())
        .collect();
    let jwks = public_jwks(&keys.iter().collect::<Vec<_>>()).to_string();
    let set = parse_jwks(&jwks, KeySource::Configured).unwrap();
    let mut no_kid = Map::new();
    no_kid.insert("kid".into(), serde_json::Value::Null);
    let claims = json!({"iss": "https://sts.example.com"});
    let token = keys[signer]
        .mint(Alg::ES256, &claims, Some(&no_kid), &rng)
        .unwrap();
    (set, token)
}

#[test]
fn kid_less_token_is_tried_against_at_most_the_budget() {
    assert_eq!(MAX_SIGNATURE_VERIFICATIONS, 4, "SPEC §13");
    let (set, token) = six_keys_and_token(5);
    let jws = token::split(&token).unwrap();
    let (_, candidates) = candidate_keys(&jws.header, Some(&set), &[Alg::ES256]).unwrap();
    assert_eq!(candidates.len(), MAX_SIGNATURE_VERIFICATIONS);
    let counting = Counting::default();
    let result = verify_signature(&jws, Some(&set), &[Alg::ES256], &counting);
    assert_eq!(result, Err(SignatureFailure::Invalid));
    assert_eq!(counting.0.get(), MAX_SIGNATURE_VERIFICATIONS);
}

#[test]
fn kid_less_token_of_the_last_key_within_budget_verifies() {
    let (set, token) = six_keys_and_token(MAX_SIGNATURE_VERIFICATIONS - 1);
    let jws = token::split(&token).unwrap();
    let counting = Counting::default();
    let result = verify_signature(&jws, Some(&set), &[Alg::ES256], &counting);
    assert_eq!(result, Ok(Alg::ES256));
    assert_eq!(counting.0.get(), MAX_SIGNATURE_VERIFICATIONS);
}

#[test]
fn token_with_kid_costs_one_verification() {
    let (set, _) = six_keys_and_token(0);
    let rng = SystemRandom::new();
    let other = SigningKey::generate(Alg::ES256, "k5", &rng).unwrap();
    let token = other
        .mint(Alg::ES256, &json!({"iss": "x"}), None, &rng)
        .unwrap();
    let jws = token::split(&token).unwrap();
    let counting = Counting::default();
    let result = verify_signature(&jws, Some(&set), &[Alg::ES256], &counting);
    assert_eq!(result, Err(SignatureFailure::Invalid));
    assert_eq!(counting.0.get(), 1);
}
