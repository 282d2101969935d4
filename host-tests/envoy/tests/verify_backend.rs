//! SPEC §13, differential: the signature backend the filter chose in a real Envoy
//! (BoringSSL through Envoy's `verify_signature`) answers every Wycheproof ECDSA P-256 and
//! P-384 (P1363, as JWS carries them) and RSA PKCS#1 v1.5 2048/SHA-256 vector exactly as
//! ring does natively, and `actwarden.verify.host` counts each of them.
//!
//! The test-hooks filter (`target/actwarden-test.wasm`) answers
//! `/__actwarden/test/verify` (src/hosts/envoy/test_verify.rs): the vector's key goes
//! through `parse_jwks`, its signature through the plugin's verifier — the path a token's
//! signature takes. Known divergences would be listed in
//! `host-tests/envoy/VERIFY_DIVERGENCES.md`; there are none.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use actwarden::{parse_jwks, Alg, KeySource, SignatureVerifier, RING};
use actwarden_envoy_tests::bootstrap as boot;
use actwarden_envoy_tests::envoy::{Envoy, Options};
use actwarden_envoy_tests::http::{self, Request};
use actwarden_envoy_tests::paths;
use actwarden_envoy_tests::servers::EchoServer;
use serde_json::{json, Value};
use std::net::SocketAddr;

const DIR: &str = "tests/vectors/wycheproof";

fn b64url(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().fold(0u32, |a, b| a << 8 | u32::from(*b)) << (8 * (3 - chunk.len()));
        for i in 0..=chunk.len() {
            out.push(ABC[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// One vector as the route takes it.
struct Vector {
    file: &'static str,
    tc_id: u64,
    alg: Alg,
    jwk: Value,
    message: Vec<u8>,
    signature: Vec<u8>,
}

fn vectors() -> Vec<Vector> {
    let mut out = Vec::new();
    let files: [(&str, Alg); 3] = [
        ("ecdsa_secp256r1_sha256_p1363_test.json", Alg::ES256),
        ("ecdsa_secp384r1_sha384_p1363_test.json", Alg::ES384),
        ("rsa_signature_2048_sha256_test.json", Alg::RS256),
    ];
    for (file, alg) in files {
        let doc: Value =
            serde_json::from_str(&paths::read_repo_file(&format!("{DIR}/{file}")).unwrap())
                .unwrap();
        for group in doc["testGroups"].as_array().unwrap() {
            let jwk = group_jwk(group, alg);
            for case in group["tests"].as_array().unwrap() {
                out.push(Vector {
                    file,
                    tc_id: case["tcId"].as_u64().unwrap(),
                    alg,
                    jwk: jwk.clone(),
                    message: hex(case["msg"].as_str().unwrap()),
                    signature: hex(case["sig"].as_str().unwrap()),
                });
            }
        }
    }
    out
}

/// The group's raw public key as a JWK (EC: from the uncompressed point; RSA: n, e).
fn group_jwk(group: &Value, alg: Alg) -> Value {
    let key = &group["publicKey"];
    if alg == Alg::RS256 {
        let n = hex(key["modulus"].as_str().unwrap());
        let e = hex(key["publicExponent"].as_str().unwrap());
        return json!({"kty": "RSA", "n": b64url(&n), "e": b64url(&e)});
    }
    let (crv, size) = if alg == Alg::ES256 {
        ("P-256", 32)
    } else {
        ("P-384", 48)
    };
    let point = hex(key["uncompressed"].as_str().unwrap());
    let coord = |range: std::ops::Range<usize>| b64url(point.get(range).unwrap_or_default());
    json!({"kty": "EC", "crv": crv, "x": coord(1..1 + size), "y": coord(1 + size..1 + 2 * size)})
}

/// ring's answer natively: `None` when the key does not load (or does not fit).
fn ring_answer(v: &Vector) -> Option<bool> {
    let set = parse_jwks(&json!({"keys": [v.jwk]}).to_string(), KeySource::Configured).ok()?;
    let key = set.keys.into_iter().next().filter(|k| k.fits(v.alg))?;
    Some(
        RING.verify(v.alg, &key, &v.message, &v.signature)
            .is_valid(),
    )
}

/// Envoy's answer: (`None` when not loaded, the backend name).
fn envoy_answer(addr: SocketAddr, v: &Vector) -> (Option<bool>, String) {
    let header = json!({"alg": v.alg.name(), "jwk": v.jwk,
                        "message": b64url(&v.message), "signature": b64url(&v.signature)});
    let request = Request::new("POST", "/__actwarden/test/verify")
        .header("host", "api.example.com")
        .header("x-actwarden-test-verify", &header.to_string());
    let response = http::send(addr, &request).unwrap();
    assert_eq!(response.status, 200, "{}", response.text());
    let body: Value = serde_json::from_str(&response.text()).unwrap();
    assert!(
        body.get("error").is_none(),
        "{} tcId {}: {body}",
        v.file,
        v.tc_id
    );
    let backend = body["backend"].as_str().unwrap_or("none").to_owned();
    (body["valid"].as_bool(), backend)
}

#[test]
fn host_backend_answers_every_wycheproof_vector_as_ring_does() {
    let wasm = paths::test_wasm().unwrap();
    let dir = paths::work_dir("verify-backend").unwrap();
    let echo = EchoServer::start().unwrap();
    let config = json!({ "rules": [] });
    let bootstrap = boot::bootstrap(
        vec![boot::actwarden_listener(
            "main",
            &wasm,
            &config.to_string(),
            "actwarden",
            None,
        )],
        vec![boot::cluster(boot::UPSTREAM_CLUSTER, echo.addr())],
    );
    let envoy = Envoy::start(&dir, &bootstrap, &Options::default()).unwrap();
    let chosen = envoy.log_grep("actwarden: signatures:");
    assert!(
        chosen.iter().any(|l| l.contains("verified by the host")),
        "the probe must find Envoy's verify_signature: {chosen:?}"
    );
    let addr = envoy.listener("main").unwrap();
    let vectors = vectors();
    let (mut by_host, mut valid, mut divergences) = (0u64, 0, Vec::new());
    for v in &vectors {
        let ring = ring_answer(v);
        let (host, backend) = envoy_answer(addr, v);
        if host != ring {
            divergences.push(format!(
                "{} tcId {}: host {host:?}, ring {ring:?}",
                v.file, v.tc_id
            ));
        }
        if host.is_some() {
            assert_eq!(backend, "host", "{} tcId {}", v.file, v.tc_id);
            by_host += 1;
        }
        valid += usize::from(host == Some(true));
    }
    assert!(divergences.is_empty(), "{}", divergences.join("\n"));
    eprintln!(
        "verify_backend: {} vectors, {by_host} verified by the host, {valid} valid; host == ring for all",
        vectors.len()
    );
    assert!(by_host > 600 && valid > 100, "{by_host} / {valid}");
    assert_eq!(envoy.counter("actwarden.verify.host").unwrap(), by_host);
    assert_eq!(envoy.counter("actwarden.verify.wasm").unwrap(), 0);
}
