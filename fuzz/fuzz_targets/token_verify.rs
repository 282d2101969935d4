//! Token verification against a fixed key set (the corpus's `main` provider: ES256,
//! ES384, EdDSA and RSA keys, plus the `hs-a` secret in a set of its own). The input picks
//! one of tokens minted at start (every algorithm) and alters it, or is a token itself.
//! Invariant: a signature verifies only over exactly the signing input a fixed key signed,
//! with the algorithm it was signed with — no forgery, no algorithm confusion.
#![no_main]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use actwarden::dangerous::{split, verify_signature};
use actwarden::{Alg, KeySet, KeySource, RING};
use actwarden_fuzz::{corpus_key, corrupt, Corrupt};
use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use ring::rand::SystemRandom;
use serde_json::json;
use std::sync::OnceLock;

struct Keys {
    asym: KeySet,
    hs: KeySet,
    /// (token, key set index, algorithm) signed at start.
    tokens: Vec<(String, usize, Alg)>,
}

const SIGNED: [(&str, Alg); 9] = [
    ("es256-a", Alg::ES256),
    ("es256-b", Alg::ES256),
    ("es384-a", Alg::ES384),
    ("ed-a", Alg::EdDSA),
    ("rsa-a", Alg::RS256),
    ("rsa-a", Alg::PS256),
    ("rsa-pinned", Alg::RS256),
    ("hs-a", Alg::HS256),
    ("evil-es256", Alg::ES256),
];

fn keys() -> &'static Keys {
    static K: OnceLock<Keys> = OnceLock::new();
    K.get_or_init(|| {
        let rng = SystemRandom::new();
        let public: Vec<_> = ["es256-a", "es256-b", "es384-a", "ed-a", "rsa-a", "rsa-pinned"]
            .iter()
            .map(|n| corpus_key(n))
            .collect();
        let refs: Vec<_> = public.iter().collect();
        let asym = actwarden::mint::public_jwks(&refs).to_string();
        let asym = actwarden::parse_jwks(&asym, KeySource::Configured).unwrap();
        let hs_jwk = serde_json::from_str::<serde_json::Value>(actwarden_fuzz::KEYS_JSON).unwrap()["hs-a"].clone();
        let hs = actwarden::parse_jwks(&json!({ "keys": [hs_jwk] }).to_string(), KeySource::Configured).unwrap();
        let claims = json!({"iss": "https://sts.example.com", "sub": "user:alice", "aud": "payments-api", "exp": 1800000600});
        let tokens = SIGNED
            .iter()
            .map(|(name, alg)| {
                let key = corpus_key(name);
                let set = usize::from(*name == "hs-a");
                (key.mint(*alg, &claims, None, &rng).unwrap(), set, *alg)
            })
            .collect();
        Keys { asym, hs, tokens }
    })
}

const ALGS: [Alg; 10] = [
    Alg::ES256,
    Alg::ES384,
    Alg::EdDSA,
    Alg::RS256,
    Alg::RS384,
    Alg::RS512,
    Alg::PS256,
    Alg::PS384,
    Alg::HS256,
    Alg::HS512,
];

#[derive(Arbitrary, Debug)]
enum Input {
    Minted {
        which: u8,
        corrupt: Option<Corrupt>,
        hs_set: bool,
        allowed: u16,
    },
    Raw {
        token: String,
        hs_set: bool,
        allowed: u16,
    },
}

fuzz_target!(|input: Input| {
    let k = keys();
    let (token, set, allowed) = match &input {
        Input::Minted {
            which,
            corrupt: c,
            hs_set,
            allowed,
        } => {
            let (t, _, _) = &k.tokens[usize::from(*which) % k.tokens.len()];
            let t = match c {
                Some(c) => corrupt(t, c),
                None => t.clone(),
            };
            (t, usize::from(*hs_set), *allowed)
        }
        Input::Raw {
            token,
            hs_set,
            allowed,
        } => (token.clone(), usize::from(*hs_set), *allowed),
    };
    let algorithms: Vec<Alg> = ALGS
        .iter()
        .enumerate()
        .filter(|(i, _)| allowed & (1 << i) != 0)
        .map(|(_, a)| *a)
        .collect();
    let Ok(jws) = split(&token) else { return };
    let keyset = if set == 1 { &k.hs } else { &k.asym };
    if let Ok(alg) = verify_signature(&jws, Some(keyset), &algorithms, &RING) {
        assert!(
            algorithms.contains(&alg),
            "verified with an algorithm not allowed"
        );
        let input_of = |t: &str| t.rsplit_once('.').map(|(input, _)| input.to_owned());
        let genuine = k.tokens.iter().any(|(t, s, a)| {
            *s == set && *a == alg && input_of(t).as_deref() == Some(jws.signing_input)
        });
        assert!(
            genuine,
            "verified a signing input no fixed key signed with {alg:?}: {token}"
        );
        // The attacker's token (same header and claims as es256-a's, kid es256-a) never verifies.
        let evil = &k.tokens[k.tokens.len() - 1].0;
        assert!(
            jws.signature != split(evil).unwrap().signature,
            "the attacker's key verified"
        );
    }
    // Without keys: never a verification.
    assert!(verify_signature(&jws, None, &algorithms, &RING).is_err());
});
