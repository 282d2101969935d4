//! One DPoP proof's checks (SPEC §10, `actwarden::dangerous::verify_dpop_proof`): a proof
//! over fuzz-chosen header (`typ`, `alg`, `jwk`, extra members) and claims (`htm`, `htu`,
//! `iat`, `jti`, `ath`, extra members) signed by a fixed key (Ed25519 most of the time),
//! bound or not by the token's `cnf.jkt`, sometimes altered; or any text as the proof. The
//! provider's settings vary (algorithms, `max_age_s`, `clock_skew_s`), and the `htu`
//! comparison form (`normalize_htu`) is fuzzed on its own text.
//!
//! Invariants: a proof the harness broke for certain (wrong key for `cnf.jkt`, flipped
//! signature, other `htm` / `htu`, wrong or no `ath`, `iat` far out, empty `jti`) is never
//! accepted; a pristine proof (every part as a client writes it) is always accepted; an
//! accepted proof's `jti` and `iat` are the ones it carries, `iat` within the window, its
//! `alg` in the allowlist and never HMAC or `none`; `normalize_htu` is idempotent, gives
//! lower-case `http(s)://host` with no query or fragment, and the request URI it gives for
//! the request's own parts equals the normalized `htu` a pristine proof carries.
#![no_main]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use actwarden::dangerous::{normalize_htu, request_htu, verify_dpop_proof, ExpectedProof};
use actwarden::{Alg, DpopConfig, DpopMode, RING};
use actwarden_fuzz::dpop::{ProofIn, AUTHORITY};
use actwarden_fuzz::{base64_lite, fixture, NOW};
use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

/// SHA-256 of an access token, as the pipeline keeps it with the verified token (`ath`).
fn token_sha256(token: &str) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

const METHODS: [&str; 4] = ["GET", "POST", "DELETE", "get"];
const PATHS: [&str; 5] = ["/v1/payments", "/", "/mcp", "/a b", "/v1/x%20y"];

#[derive(Arbitrary, Debug)]
struct ConfigIn {
    /// Bit i: `ALGS[i]` allowed (none: the default `ES256 EdDSA`).
    algs: u8,
    max_age_s: u16,
    clock_skew_s: u8,
}

const ALGS: [Alg; 6] = [
    Alg::ES256,
    Alg::EdDSA,
    Alg::ES384,
    Alg::RS256,
    Alg::PS256,
    Alg::HS256,
];

#[derive(Arbitrary, Debug)]
enum Input {
    Built {
        proof: Box<ProofIn>,
        method: u8,
        path: u8,
        config: Option<ConfigIn>,
        token: String,
    },
    Raw {
        proof: String,
        jkt: Option<String>,
        config: Option<ConfigIn>,
    },
    Htu(String),
}

fn config_of(c: &Option<ConfigIn>) -> DpopConfig {
    let mut config = DpopConfig {
        mode: DpopMode::Allowed,
        ..DpopConfig::default()
    };
    if let Some(c) = c {
        let algs: Vec<Alg> = ALGS
            .iter()
            .enumerate()
            .filter(|(i, _)| c.algs & (1 << i) != 0)
            .map(|(_, a)| *a)
            .collect();
        if !algs.is_empty() {
            config.algorithms = algs;
        }
        config.max_age_s = u64::from(c.max_age_s % 3600) + 1;
    }
    config
}

fn check_htu(text: &str) {
    if let Some(n) = normalize_htu(text) {
        assert_eq!(
            normalize_htu(&n).as_deref(),
            Some(n.as_str()),
            "not idempotent"
        );
        assert!(n.starts_with("https://") || n.starts_with("http://"), "{n}");
        assert!(!n.contains('?') && !n.contains('#'), "{n}");
        let rest = n.split_once("://").unwrap().1;
        let authority = rest.split('/').next().unwrap();
        assert_eq!(authority, authority.to_ascii_lowercase(), "{n}");
        assert!(!authority.contains('@') && !authority.is_empty(), "{n}");
        assert!(
            !authority.ends_with(":443") && !authority.ends_with(":80") || {
                // The default port of the other scheme stays.
                (n.starts_with("http://") && authority.ends_with(":443"))
                    || (n.starts_with("https://") && authority.ends_with(":80"))
            }
        );
    }
}

fuzz_target!(|input: Input| {
    let f = fixture();
    match input {
        Input::Htu(text) => check_htu(&text),
        Input::Raw { proof, jkt, config } => {
            let config = config_of(&config);
            let uri = format!("https://{AUTHORITY}/v1/payments");
            let expected = ExpectedProof {
                config: &config,
                clock_skew_s: 60,
                method: "POST",
                uri: Some(&uri),
                now: NOW,
                access_token_sha256: &token_sha256("token"),
                jkt: jkt.as_deref(),
            };
            // Unsigned by any fixed key and bound to no key the fuzzer can sign with.
            let result = verify_dpop_proof(&proof, &expected, &RING);
            if let Ok(accepted) = result {
                panic!("a raw proof verified: {accepted:?} {proof}");
            }
        }
        Input::Built {
            proof,
            method,
            path,
            config: config_in,
            token,
        } => {
            let config = config_of(&config_in);
            let skew = config_in.as_ref().map_or(60, |c| u64::from(c.clock_skew_s));
            let method = METHODS[usize::from(method) % METHODS.len()];
            let path = PATHS[usize::from(path) % PATHS.len()];
            // A DPoP-scheme request: the proof is read whatever `scheme` says.
            let built = proof.build(f, method, path, &token, NOW);
            let uri = request_htu("https", AUTHORITY, path);
            check_htu(&format!("https://{AUTHORITY}{path}"));
            let jkt_claim = match &proof.jkt {
                actwarden_fuzz::dpop::JktIn::Key(_) | actwarden_fuzz::dpop::JktIn::Json(_) => {
                    let mut claims = serde_json::json!({});
                    proof.patch_claims(f, &mut claims);
                    claims["cnf"]["jkt"].as_str().map(str::to_owned)
                }
                actwarden_fuzz::dpop::JktIn::Absent => None,
            };
            let expected = ExpectedProof {
                config: &config,
                clock_skew_s: skew,
                method,
                uri: uri.as_deref(),
                now: NOW,
                access_token_sha256: &token_sha256(&token),
                jkt: jkt_claim.as_deref(),
            };
            let [one] = built.headers.as_slice() else {
                return;
            };
            let result = verify_dpop_proof(one, &expected, &RING);
            // The proof is always read here, whatever scheme the input names.
            let must_fail = built.proof_must_fail;
            let window = config.max_age_s + skew;
            if let Ok(accepted) = &result {
                assert!(!must_fail, "accepted a proof that must fail: {one}");
                assert!(
                    (accepted.iat - NOW as i64).unsigned_abs() <= window,
                    "iat out of the window"
                );
                let claims: Value =
                    serde_json::from_slice(&base64_decode(one.split('.').nth(1).unwrap()).unwrap())
                        .unwrap();
                assert_eq!(claims["jti"].as_str(), Some(accepted.jti.as_str()));
                let header: Value =
                    serde_json::from_slice(&base64_decode(one.split('.').next().unwrap()).unwrap())
                        .unwrap();
                let alg = Alg::parse(header["alg"].as_str().unwrap()).unwrap();
                assert!(config.algorithms.contains(&alg) && !alg.is_hmac());
                assert_eq!(
                    claims["htu"].as_str().and_then(normalize_htu),
                    uri,
                    "accepted another htu"
                );
            }
            // A pristine proof: everything as a client writes it.
            let key_alg = actwarden_fuzz::dpop::PROOF_KEYS
                [[0, 0, 0, 0, 0, 0, 1, 2][usize::from(proof.key % 8)]]
            .1;
            let pristine = !must_fail
                && proof.typ.is_none()
                && proof.alg.is_none()
                && proof.jwk.is_none()
                && proof.header_extra.is_empty()
                && proof.corrupt.is_none()
                && matches!(proof.htu, actwarden_fuzz::dpop::HtuIn::Good)
                && proof.htm.is_none()
                && matches!(proof.ath, actwarden_fuzz::dpop::AthIn::Good)
                && proof.jti.is_none()
                && u64::from(proof.iat.0.unsigned_abs()) <= window
                && config.algorithms.contains(&key_alg)
                && uri.is_some()
                && within_budgets(one);
            if pristine {
                assert!(result.is_ok(), "a pristine proof refused: {result:?} {one}");
            }
        }
    }
});

/// The proof is within the size and nesting budgets (`limits::MAX_DPOP_*_BYTES`,
/// `MAX_JSON_DEPTH` 128): extra claims may be any JSON, and a proof over a budget is
/// refused (`TooLarge`, `NotCompactJws`) however pristine its other parts.
fn within_budgets(proof: &str) -> bool {
    let parts: Vec<&str> = proof.split('.').collect();
    // Nesting outside strings (brackets inside a string do not count).
    let depth = |part: &str| {
        let (mut d, mut max, mut in_string, mut escaped) = (0usize, 0usize, false, false);
        for c in base64_decode(part).unwrap_or_default() {
            if in_string {
                match (escaped, c) {
                    (true, _) => escaped = false,
                    (false, b'\\') => escaped = true,
                    (false, b'"') => in_string = false,
                    _ => {}
                }
                continue;
            }
            match c {
                b'"' => in_string = true,
                b'[' | b'{' => {
                    d += 1;
                    max = max.max(d);
                }
                b']' | b'}' => d = d.saturating_sub(1),
                _ => {}
            }
        }
        max
    };
    proof.len() <= 8 * 1024
        && parts.len() == 3
        && parts[0].len() / 4 * 3 <= 4 * 1024
        && parts[1].len() / 4 * 3 <= 4 * 1024
        && depth(parts[0]) < 100
        && depth(parts[1]) < 100
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut acc = 0u32;
    let mut bits = 0;
    for c in s.bytes() {
        let v = base64_lite::A.iter().position(|&a| a == c)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}
