//! Every EC and RSA key's prepared `SubjectPublicKeyInfo` (`VerificationKey::spki`, what
//! the Envoy host hands BoringSSL) equals the DER Wycheproof publishes for the same key
//! (`publicKeyDer`, produced by other libraries), for P-256, P-384 and RSA-2048.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use actwarden::{parse_jwks, KeySource};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/wycheproof");

fn groups(file: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(format!("{DIR}/{file}")).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    v["testGroups"].as_array().unwrap().clone()
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The group's key as a JWK, from its raw public key (not its own JWK, which some groups
/// lack), and the SPKI the loader built for it. `None`: the loader refused the key.
fn spki_of(jwk: Value) -> Option<Vec<u8>> {
    let set = parse_jwks(&json!({"keys": [jwk]}).to_string(), KeySource::Configured).ok()?;
    Some(set.keys.first()?.spki.as_deref()?.to_vec())
}

fn check_ec(file: &str, crv: &str, size: usize) -> usize {
    let mut checked = 0;
    for g in groups(file) {
        let point = hex(g["publicKey"]["uncompressed"].as_str().unwrap());
        if point.len() != 1 + 2 * size {
            continue;
        }
        let jwk = json!({"kty": "EC", "crv": crv, "x": b64(&point[1..=size]), "y": b64(&point[1 + size..])});
        let Some(spki) = spki_of(jwk) else { continue };
        assert_eq!(spki, hex(g["publicKeyDer"].as_str().unwrap()), "{file}");
        checked += 1;
    }
    checked
}

#[test]
fn ec_spki_equals_wycheproof_public_key_der() {
    assert!(check_ec("ecdsa_secp256r1_sha256_p1363_test.json", "P-256", 32) > 50);
    assert!(check_ec("ecdsa_secp384r1_sha384_p1363_test.json", "P-384", 48) > 50);
}

#[test]
fn rsa_spki_equals_wycheproof_public_key_der() {
    let mut checked = 0;
    for g in groups("rsa_signature_2048_sha256_test.json") {
        let n = hex(g["publicKey"]["modulus"].as_str().unwrap());
        let e = hex(g["publicKey"]["publicExponent"].as_str().unwrap());
        // Wycheproof writes the modulus as a DER INTEGER's content (a leading zero when the
        // top bit is set); the JWK takes the magnitude either way.
        let jwk = json!({"kty": "RSA", "n": b64(&n), "e": b64(&e)});
        let spki = spki_of(jwk).expect("a 2048-bit key loads");
        assert_eq!(spki, hex(g["publicKeyDer"].as_str().unwrap()));
        checked += 1;
    }
    assert!(checked >= 1);
}
