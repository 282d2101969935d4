//! The requests of each workload, minted now with one ES256 key.
//!
//! - `hot`: one valid token, reused (every cache hits).
//! - `cold`: `COLD_TOKENS` distinct valid tokens, cycled: more than any cache holds
//!   (actwarden keeps 4096 per worker, `jwt_cache_config` is set to 100), so every request
//!   verifies a signature.
//! - `cold_rs256`: the same as `cold` with RS256 tokens (2048-bit key `rsa-a` of the
//!   corpus keys: ring cannot generate RSA keys).
//! - `mixed`: 100 requests, 80 valid (8 tokens) and 20 invalid of five kinds, interleaved.
//! - `dpop` (issue 13): one reused ES256 token bound to a DPoP key (`cnf.jkt`), each
//!   request with its own proof (ES256, unique `jti`, the request's `htm`/`htu`, `ath` of
//!   the token, `iat` now): minted right before each point (`dpop_requests`), since a
//!   proof is good for `max_age_s` (60 s) and a window of its own per Envoy.
//! - `mcp` (issue 12): an MCP `tools/call` (`POST /mcp`, a 300-byte JSON-RPC body), the
//!   `hot` token reused.
//!
//! Two token families: `simple` (subject only: the checks `jwt_authn` can also do) and
//! `chain` (a three-actor RFC 8693 chain, for `actwarden_full`).

use actwarden::mint::{delegate, public_jwks, ProofClaims, SigningKey};
use actwarden::Alg;
use actwarden_envoy_tests::{Error, Result};
use ring::rand::SystemRandom;
use serde_json::{json, Value};

pub const ISSUER: &str = "https://sts.bench.example";
pub const AUDIENCE: &str = "bench-api";
pub const SCOPE: &str = "invoices:read";
pub const PATH: &str = "/v1/invoices";
pub const AUTHORITY: &str = "api.example.com";
/// The MCP endpoint of the `mcp` workload (actwarden's `mcp.endpoints`).
pub const MCP_PATH: &str = "/mcp";
/// The tool the `mcp` workload calls (the policy's MCP rule names it).
pub const MCP_TOOL: &str = "list_invoices";
/// The size of the `mcp` workload's JSON-RPC body (issue 12).
pub const MCP_BODY_BYTES: usize = 300;
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
    Dpop,
    Mcp,
}

/// What a workload's requests look like besides their headers.
pub struct Shape {
    pub method: &'static str,
    pub path: &'static str,
    pub body: Option<String>,
}

impl Workload {
    pub const ALL: [Workload; 6] = [
        Workload::Hot,
        Workload::Cold,
        Workload::ColdRs256,
        Workload::Mixed,
        Workload::Dpop,
        Workload::Mcp,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Workload::Hot => "hot",
            Workload::Cold => "cold",
            Workload::ColdRs256 => "cold_rs256",
            Workload::Mixed => "mixed",
            Workload::Dpop => "dpop",
            Workload::Mcp => "mcp",
        }
    }

    pub fn shape(self) -> Shape {
        match self {
            Workload::Mcp => Shape {
                method: "POST",
                path: MCP_PATH,
                body: Some(mcp_body()),
            },
            _ => Shape {
                method: "GET",
                path: PATH,
                body: None,
            },
        }
    }
}

/// A JSON-RPC `tools/call` of `MCP_TOOL`, padded (inside an argument) to `MCP_BODY_BYTES`.
pub fn mcp_body() -> String {
    let with = |pad: usize| {
        json!({ "jsonrpc": "2.0", "id": 42, "method": "tools/call",
                "params": { "name": MCP_TOOL,
                            "arguments": { "customer": "cus_8f3a2c1b", "status": "open",
                                           "limit": 50, "memo": "x".repeat(pad) } } })
        .to_string()
    };
    let base = with(0).len();
    with(MCP_BODY_BYTES.saturating_sub(base))
}

/// One request of a workload: its `authorization` value (none: no header) and whether
/// every configuration must allow it.
#[derive(Clone, Debug)]
pub struct BenchRequest {
    pub authorization: Option<String>,
    /// Further headers (`dpop`, MCP's `content-type` and `accept`).
    pub headers: Vec<(&'static str, String)>,
    pub valid: bool,
    /// What it is, for messages (`valid`, `expired`, …).
    pub kind: &'static str,
}

pub struct Tokens {
    key: SigningKey,
    rsa: SigningKey,
    /// The agent's DPoP key (ES256).
    agent: SigningKey,
    /// The `dpop` workload's token, bound to `agent`.
    dpop_token: String,
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
        let agent = SigningKey::generate(Alg::ES256, "bench-agent", &rng)
            .map_err(|e| Error(format!("key: {e}")))?;
        let mut tokens = Tokens {
            key,
            rsa,
            agent,
            dpop_token: String::new(),
            rng,
            now,
            next_jti: std::cell::Cell::new(1),
        };
        let mut claims = tokens.claims(Family::Simple, "agent-user@bench.example");
        let jkt = tokens
            .agent
            .jkt()
            .ok_or_else(|| Error("no thumbprint".into()))?;
        claims["cnf"] = json!({ "jkt": jkt });
        tokens.dpop_token = tokens.sign(&claims)?;
        Ok(tokens)
    }

    /// The `mcp` workload's request; with `method_header`, an `mcp-method` header that
    /// must agree with the body (the precheck sends one that does not: a filter that
    /// decides on the body refuses it, which shows the body was read).
    pub fn mcp_request(&self, family: Family, method_header: Option<&str>) -> Result<BenchRequest> {
        let mut request = self.valid(family, 0)?;
        request.headers = vec![
            ("content-type", "application/json".into()),
            ("accept", "application/json, text/event-stream".into()),
        ];
        if let Some(method) = method_header {
            request.headers.push(("mcp-method", method.into()));
            request.valid = method == "tools/call";
            request.kind = "mcp_header_mismatch";
        }
        Ok(request)
    }

    /// `count` requests of the `dpop` workload: the one bound token, each with a fresh
    /// proof for `GET http://AUTHORITY/PATH`, `iat` now (Unix seconds `now`).
    pub fn dpop_requests(&self, count: usize, now: u64) -> Result<Vec<BenchRequest>> {
        // The bench listener is plain HTTP: `:scheme` is `http`.
        let htu = format!("http://{AUTHORITY}{PATH}");
        let authorization = format!("DPoP {}", self.dpop_token);
        (0..count)
            .map(|n| {
                let jti = format!("bench-proof-{now}-{n}");
                let claims = ProofClaims {
                    htm: "GET",
                    htu: &htu,
                    iat: now,
                    jti: Some(&jti),
                    access_token: Some(&self.dpop_token),
                };
                let proof = self
                    .agent
                    .dpop_proof(Alg::ES256, &claims, &self.rng)
                    .map_err(|e| Error(format!("proof: {e}")))?;
                Ok(BenchRequest {
                    authorization: Some(authorization.clone()),
                    headers: vec![("dpop", proof)],
                    valid: true,
                    kind: "valid",
                })
            })
            .collect()
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
            headers: Vec::new(),
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
            headers: Vec::new(),
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
            headers: Vec::new(),
            valid: false,
            kind: label,
        })
    }

    pub fn requests(&self, family: Family, workload: Workload) -> Result<Vec<BenchRequest>> {
        match workload {
            Workload::Hot => Ok(vec![self.valid(family, 0)?]),
            // Proofs are minted per point (`dpop_requests`); these serve the precheck.
            Workload::Dpop => self.dpop_requests(4, self.now),
            Workload::Mcp => Ok(vec![self.mcp_request(family, None)?]),
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

/// The workload as wrk's script reads it: one request per line, its `authorization` value
/// (empty: none), then each further header as a tab and `name: value`.
pub fn to_lines(requests: &[BenchRequest]) -> String {
    let mut out = String::new();
    for r in requests {
        out.push_str(r.authorization.as_deref().unwrap_or(""));
        for (name, value) in &r.headers {
            out.push('\t');
            out.push_str(name);
            out.push_str(": ");
            out.push_str(value);
        }
        out.push('\n');
    }
    out
}
