//! The requests of each workload, minted now with one ES256 key.
//!
//! - `hot`: one valid token, reused (every cache hits).
//! - `cold`: `COLD_TOKENS` distinct valid tokens, cycled: more than any cache holds
//!   (actwarden keeps 4096 per worker, `jwt_cache_config` is set to 100), so every request
//!   verifies a signature.
//! - `cold_rs256`: the same as `cold` with RS256 tokens (2048-bit key `rsa-a` of the
//!   corpus keys: ring cannot generate RSA keys).
//! - `mixed`: 100 requests, 80 valid (8 tokens) and 20 invalid of five kinds, interleaved.
//!
//! Two token families: `simple` (subject only: the checks `jwt_authn` can also do) and
//! `chain` (a three-actor RFC 8693 chain, for `actwarden_full`).

use actwarden::mint::{delegate, public_jwks, SigningKey};
use actwarden::Alg;
use actwarden_envoy_tests::{Error, Result};
use ring::rand::SystemRandom;
use serde_json::{json, Value};

pub const ISSUER: &str = "https://sts.bench.example";
pub const AUDIENCE: &str = "bench-api";
pub const SCOPE: &str = "invoices:read";
pub const PATH: &str = "/v1/invoices";
pub const AUTHORITY: &str = "api.example.com";
/// Twice actwarden's verified-token cache (limits::VERIFIED_CACHE_ENTRIES, 4096).
pub const COLD_TOKENS: usize = 8192;
/// Tokens stay valid for the whole run.
const TTL_S: u64 = 4 * 3600;

/// The actors of the `chain` family, nearest the subject first.
pub const ACTORS: [&str; 3] = [
    "spiffe://prod.bench.example/agent/billing",
    "spiffe://prod.bench.example/agent/orchestrator",
    "spiffe://prod.bench.example/agent/planner",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    Simple,
    Chain,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    Hot,
    Cold,
    ColdRs256,
    Mixed,
}

impl Workload {
    pub const ALL: [Workload; 4] = [
        Workload::Hot,
        Workload::Cold,
        Workload::ColdRs256,
        Workload::Mixed,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Workload::Hot => "hot",
            Workload::Cold => "cold",
            Workload::ColdRs256 => "cold_rs256",
            Workload::Mixed => "mixed",
        }
    }
}

/// One request of a workload: its `authorization` value (none: no header) and whether
/// every configuration must allow it.
#[derive(Clone, Debug)]
pub struct BenchRequest {
    pub authorization: Option<String>,
    pub valid: bool,
    /// What it is, for messages (`valid`, `expired`, …).
    pub kind: &'static str,
}

pub struct Tokens {
    key: SigningKey,
    rsa: SigningKey,
    rng: SystemRandom,
    now: u64,
    next_jti: std::cell::Cell<u64>,
}

impl Tokens {
    pub fn new(now: u64) -> Result<Tokens> {
        let rng = SystemRandom::new();
        let key = SigningKey::generate(Alg::ES256, "bench-es256-1", &rng)
            .map_err(|e| Error(format!("key: {e}")))?;
        let rsa = rsa_key(&rng)?;
        Ok(Tokens {
            key,
            rsa,
            rng,
            now,
            next_jti: std::cell::Cell::new(1),
        })
    }

    /// The JWKS both `jwt_authn` and actwarden are given (inline).
    pub fn jwks(&self) -> String {
        public_jwks(&[&self.key, &self.rsa]).to_string()
    }

    fn claims(&self, family: Family, sub: &str) -> Value {
        let jti = self.next_jti.get();
        self.next_jti.set(jti + 1);
        let base = json!({
            "iss": ISSUER, "aud": AUDIENCE, "sub": sub, "sub_profile": "user",
            "scope": SCOPE, "iat": self.now, "exp": self.now + TTL_S,
            "jti": format!("bench-{jti}"),
        });
        match family {
            Family::Simple => base,
            // delegate() wraps: the last actor added is the nearest the subject.
            Family::Chain => ACTORS.iter().rev().fold(base, |claims, actor| {
                delegate(&claims, actor, Some("ai_agent"))
            }),
        }
    }

    fn sign(&self, claims: &Value) -> Result<String> {
        self.key
            .mint(Alg::ES256, claims, None, &self.rng)
            .map_err(|e| Error(format!("mint: {e}")))
    }

    fn valid(&self, family: Family, n: usize) -> Result<BenchRequest> {
        let token = self.sign(&self.claims(family, &format!("user-{n}@bench.example")))?;
        Ok(BenchRequest {
            authorization: Some(format!("Bearer {token}")),
            valid: true,
            kind: "valid",
        })
    }

    fn valid_rs256(&self, family: Family, n: usize) -> Result<BenchRequest> {
        let claims = self.claims(family, &format!("user-{n}@bench.example"));
        let token = self
            .rsa
            .mint(Alg::RS256, &claims, None, &self.rng)
            .map_err(|e| Error(format!("mint: {e}")))?;
        Ok(BenchRequest {
            authorization: Some(format!("Bearer {token}")),
            valid: true,
            kind: "valid",
        })
    }

    /// The five kinds of invalid request in `mixed`, each a different check failing.
    fn invalid(&self, family: Family, kind: usize) -> Result<BenchRequest> {
        let mut claims = self.claims(family, "mallory@bench.example");
        let (label, authorization) = match kind % 5 {
            0 => {
                claims["exp"] = json!(self.now.saturating_sub(3600));
                claims["iat"] = json!(self.now.saturating_sub(7200));
                ("expired", Some(format!("Bearer {}", self.sign(&claims)?)))
            }
            1 => {
                // A valid token with one signature byte changed: the signature fails.
                let token = self.sign(&claims)?;
                let (head, sig) = token.rsplit_once('.').unwrap_or((&token, ""));
                let flipped: String = sig
                    .char_indices()
                    .map(|(i, c)| match (i, c) {
                        (3, 'A') => 'B',
                        (3, _) => 'A',
                        (_, c) => c,
                    })
                    .collect();
                ("bad_signature", Some(format!("Bearer {head}.{flipped}")))
            }
            2 => {
                claims["aud"] = json!("another-api");
                (
                    "wrong_audience",
                    Some(format!("Bearer {}", self.sign(&claims)?)),
                )
            }
            3 => ("no_token", None),
            _ => ("malformed", Some("Bearer not.a.jwt".to_owned())),
        };
        Ok(BenchRequest {
            authorization,
            valid: false,
            kind: label,
        })
    }

    pub fn requests(&self, family: Family, workload: Workload) -> Result<Vec<BenchRequest>> {
        match workload {
            Workload::Hot => Ok(vec![self.valid(family, 0)?]),
            Workload::Cold => (0..COLD_TOKENS).map(|n| self.valid(family, n)).collect(),
            Workload::ColdRs256 => (0..COLD_TOKENS)
                .map(|n| self.valid_rs256(family, n))
                .collect(),
            Workload::Mixed => {
                // 80 valid (8 tokens, 10 times each) and 20 invalid (5 kinds, 4 each),
                // one invalid after every four valid.
                let valid: Vec<BenchRequest> = (0..8)
                    .map(|n| self.valid(family, n))
                    .collect::<Result<_>>()?;
                let invalid: Vec<BenchRequest> = (0..5)
                    .map(|k| self.invalid(family, k))
                    .collect::<Result<_>>()?;
                let mut out = Vec::with_capacity(100);
                for i in 0..100usize {
                    let pick = if i % 5 == 4 {
                        invalid.get((i / 5) % invalid.len())
                    } else {
                        valid.get(i % valid.len())
                    };
                    out.extend(pick.cloned());
                }
                Ok(out)
            }
        }
    }
}

/// The corpus's 2048-bit RSA key (`host-tests/corpus/keys.json`, `rsa-a`).
fn rsa_key(rng: &SystemRandom) -> Result<SigningKey> {
    let path = actwarden_envoy_tests::paths::repo_root().join("host-tests/corpus/keys.json");
    let keys: Value = serde_json::from_str(&std::fs::read_to_string(&path)?)
        .map_err(|e| Error(format!("{}: {e}", path.display())))?;
    let jwk = keys
        .get("rsa-a")
        .ok_or_else(|| Error("keys.json: no `rsa-a`".into()))?;
    SigningKey::from_jwk_json(&jwk.to_string(), rng).map_err(|e| Error(format!("rsa-a: {e}")))
}

/// The workload as wrk's script reads it: one `authorization` value per line, an empty
/// line for a request without one.
pub fn to_lines(requests: &[BenchRequest]) -> String {
    let mut out = String::new();
    for r in requests {
        out.push_str(r.authorization.as_deref().unwrap_or(""));
        out.push('\n');
    }
    out
}
