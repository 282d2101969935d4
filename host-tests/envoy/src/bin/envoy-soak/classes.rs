//! The request classes of the soak: what each sends, and the reasons it may get.
//!
//! A class is steady (provider `steady`, keys inline in the configuration: its reason never
//! depends on the JWKS server) or flapping (provider `flappy`, `remote_jwks` on the JWKS
//! server that goes down, slow, garbage and rotates keys: `kid_unknown` and
//! `jwks_unavailable` are allowed only there). A steady class's reason is decided natively
//! by the core at start, under the same configuration, so the soak also checks that Envoy
//! decides exactly as the core does.
//!
//! MCP classes (SPEC §9) send JSON-RPC bodies to `POST /mcp`: a tool call the policy
//! allows, one it denies, one over an argument cap, a malformed body and one over
//! `max_body_bytes`. DPoP classes (SPEC §10) send a token bound by `cnf.jkt` to the soak's
//! proof key with the `DPoP` scheme: a fresh proof (minted per request), a proof the same
//! connection already had accepted (`dpop_replayed`: the replay window is shared by both
//! workers), and no proof at all.
//!
//! Adding a class: a variant in [`Class`], its name, weight and flapping-ness in the tables
//! below, and its request in [`Tokens::request`]. Everything else (tallies, checks, the
//! closing line) follows.

use actwarden::mint::{public_jwks, ProofClaims, SigningKey};
use actwarden::Alg;
use actwarden_envoy_tests::http::Request;
use actwarden_envoy_tests::{Error, Result};
use ring::rand::SystemRandom;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

pub const STEADY_ISS: &str = "https://steady.example.com";
pub const FLAPPY_ISS: &str = "https://flappy.example.com";
pub const AUDIENCE: &str = "soak-api";
/// The spoofed identity: never seen by the upstream.
pub const SPOOF: &str = "spoofed-by-the-caller";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Class {
    Valid,
    Expired,
    BadSignature,
    UnknownKid,
    Oversized,
    NestingBomb,
    DeepChain,
    Spoofed,
    SpoofedAnonymous,
    NoToken,
    RemoteValid,
    RemoteBadSignature,
    McpAllowed,
    McpDenied,
    McpArgumentOverCap,
    McpMalformed,
    McpOversized,
    DpopValid,
    /// The last proof this connection had accepted, again (the load loop keeps it).
    DpopReplayed,
    DpopMissing,
}

impl Class {
    pub const ALL: [Class; 20] = [
        Class::Valid,
        Class::Expired,
        Class::BadSignature,
        Class::UnknownKid,
        Class::Oversized,
        Class::NestingBomb,
        Class::DeepChain,
        Class::Spoofed,
        Class::SpoofedAnonymous,
        Class::NoToken,
        Class::RemoteValid,
        Class::RemoteBadSignature,
        Class::McpAllowed,
        Class::McpDenied,
        Class::McpArgumentOverCap,
        Class::McpMalformed,
        Class::McpOversized,
        Class::DpopValid,
        Class::DpopReplayed,
        Class::DpopMissing,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Class::Valid => "valid",
            Class::Expired => "expired",
            Class::BadSignature => "bad_signature",
            Class::UnknownKid => "unknown_kid",
            Class::Oversized => "oversized",
            Class::NestingBomb => "nesting_bomb",
            Class::DeepChain => "deep_chain",
            Class::Spoofed => "spoofed_headers",
            Class::SpoofedAnonymous => "spoofed_anonymous",
            Class::NoToken => "no_token",
            Class::RemoteValid => "remote_valid",
            Class::RemoteBadSignature => "remote_bad_signature",
            Class::McpAllowed => "mcp_call_allowed",
            Class::McpDenied => "mcp_call_denied",
            Class::McpArgumentOverCap => "mcp_argument_over_cap",
            Class::McpMalformed => "mcp_malformed",
            Class::McpOversized => "mcp_oversized",
            Class::DpopValid => "dpop_valid",
            Class::DpopReplayed => "dpop_replayed",
            Class::DpopMissing => "dpop_missing_proof",
        }
    }

    pub fn index(self) -> usize {
        Class::ALL.iter().position(|c| *c == self).unwrap_or(0)
    }

    /// Requests of this class per round of the mix.
    pub fn weight(self) -> usize {
        match self {
            Class::Valid | Class::RemoteValid => 4,
            Class::Spoofed => 2,
            _ => 1,
        }
    }

    /// Against the flapping provider: besides its own reason it may get `kid_unknown`
    /// (a rotation not yet fetched) and `jwks_unavailable` (keys older than `max_stale_s`).
    pub fn flapping(self) -> bool {
        matches!(self, Class::RemoteValid | Class::RemoteBadSignature)
    }

    /// The reasons this class may get besides the steady one decided natively.
    pub fn flapping_reasons(self) -> &'static [&'static str] {
        match self {
            Class::RemoteValid => &["allowed", "kid_unknown", "jwks_unavailable"],
            Class::RemoteBadSignature => &["signature_invalid", "kid_unknown", "jwks_unavailable"],
            _ => &[],
        }
    }

    /// A class from the `x-request-id` the soak gives it (`soak-<index>-…`).
    pub fn of_request_id(id: &str) -> Option<Class> {
        let rest = id.strip_prefix("soak-")?;
        let index: usize = rest.split('-').next()?.parse().ok()?;
        Class::ALL.get(index).copied()
    }
}

pub const DPOP_ISS: &str = "https://dpop.example.com";
/// The largest MCP body the soak's policy reads.
pub const MCP_MAX_BODY: usize = 8192;
/// The authority every soak request names (`host`); DPoP proofs' `htu` is on it, over
/// plain HTTP (Envoy's `:scheme`).
pub const AUTHORITY: &str = "api.example.com";
pub const DPOP_PATH: &str = "/dpop/data";

/// The configuration the soak's Envoy runs (SPEC §2).
pub fn config(steady: &SigningKey, jwks_cluster: &str) -> Value {
    json!({
        "providers": {
            "steady": {
                "issuer": STEADY_ISS, "audiences": [AUDIENCE],
                "local_jwks": { "inline_string": public_jwks(&[steady]).to_string() },
                "algorithms": ["ES256"]
            },
            "dpop": {
                "issuer": DPOP_ISS, "audiences": [AUDIENCE],
                "local_jwks": { "inline_string": public_jwks(&[steady]).to_string() },
                "algorithms": ["ES256"],
                "clock_skew_s": 5,
                // A short window: the replay window holds ~35 s of fresh proofs.
                "dpop": { "mode": "required", "algorithms": ["EdDSA", "ES256"], "max_age_s": 30 }
            },
            "flappy": {
                "issuer": FLAPPY_ISS, "audiences": [AUDIENCE],
                "remote_jwks": {
                    "http_uri": { "uri": "http://jwks.soak/jwks", "cluster": jwks_cluster, "timeout_ms": 500 },
                    "cache_duration_s": 2, "max_stale_s": 3
                },
                "algorithms": ["ES256"]
            }
        },
        "identity": { "trust_domains": ["prod.example.com"], "max_chain_depth": 4 },
        "mcp": { "endpoints": ["/mcp"], "max_body_bytes": MCP_MAX_BODY },
        "rules": [
            { "id": "health", "match": { "path_prefix": "/healthz" }, "allow_anonymous": true },
            { "id": "mcp-read", "providers": ["steady"],
              "match": { "mcp": { "methods": ["tools/call"], "names": ["get_balance"] } },
              "require": { "scopes": ["soak:read"],
                           "arguments": [{ "pointer": "/amount", "max": 100 }] } },
            { "id": "mcp-admin", "providers": ["steady"],
              "match": { "mcp": { "methods": ["tools/call"], "names": ["delete_*"] } },
              "require": { "scopes": ["soak:admin"] } },
            { "id": "mcp-session", "match": { "path_exact": "/mcp" }, "providers": ["steady"] },
            { "id": "dpop", "match": { "path_prefix": "/dpop" }, "providers": ["dpop"],
              "require": { "scopes": ["soak:read"] } },
            { "id": "steady", "match": { "path_prefix": "/steady" }, "providers": ["steady"],
              "require": { "scopes": ["soak:read"] } },
            { "id": "flappy", "match": { "path_prefix": "/flappy" }, "providers": ["flappy"] }
        ]
    })
}

fn claims(iss: &str, sub: &str, now: u64, jti: u64) -> Value {
    json!({ "iss": iss, "aud": AUDIENCE, "sub": sub, "sub_profile": "user",
            "scope": "soak:read", "iat": now, "exp": now + 3 * 3600, "jti": format!("j-{jti}") })
}

fn mint(key: &SigningKey, claims: &Value, header: Option<Value>) -> Result<String> {
    let header = header.and_then(|h| h.as_object().cloned());
    key.mint(Alg::ES256, claims, header.as_ref(), &SystemRandom::new())
        .map_err(|e| Error(format!("mint: {e}")))
}

/// A nesting bomb: `depth` nested `act` objects (short `sub`s), signed by the steady key.
fn nested(depth: usize) -> Value {
    let mut act = json!({ "sub": "spiffe://prod.example.com/agent/a0" });
    for i in 1..depth {
        act = json!({ "sub": format!("spiffe://prod.example.com/agent/a{i}"), "act": act });
    }
    act
}

/// The token with the first character of its signature changed (to another one: the
/// first soak runs replaced it with `A` even when it already was one, one token in 64).
fn flip_signature(token: &str) -> String {
    match token.rsplit_once('.') {
        Some((input, sig)) => {
            let replacement = if sig.starts_with('A') { "B" } else { "A" };
            let rest = sig.get(1..).unwrap_or_default();
            format!("{input}.{replacement}{rest}")
        }
        None => token.to_owned(),
    }
}

/// A JSON-RPC `tools/call` body.
fn tool_call(name: &str, arguments: Value) -> Vec<u8> {
    json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": { "name": name, "arguments": arguments } })
    .to_string()
    .into_bytes()
}

/// Tokens minted at start (steady) and at every rotation (flappy).
pub struct Tokens {
    valid: Vec<String>,
    expired: String,
    bad_signature: String,
    unknown_kid: String,
    oversized: String,
    bomb: String,
    deep_chain: String,
    /// The flapping provider's tokens, minted with its newest key.
    remote: RwLock<Arc<(Vec<String>, String)>>,
    next: AtomicU64,
    /// The DPoP provider's token, bound to `proof_key` (`cnf.jkt`).
    dpop_token: String,
    proof_key: SigningKey,
    /// Distinct proof `jti`s (per soak run: a random prefix).
    proof_prefix: String,
    /// The oversized MCP body (valid JSON-RPC, padded over `MCP_MAX_BODY`).
    mcp_oversized: Vec<u8>,
}

pub const VALID_POOL: usize = 4096 + 512;
const REMOTE_POOL: usize = 64;

impl Tokens {
    pub fn new(steady: &SigningKey, now: u64) -> Result<Tokens> {
        let mut valid = Vec::with_capacity(VALID_POOL);
        // More distinct tokens than the verified-token cache holds (4096): it evicts.
        for i in 0..VALID_POOL {
            valid.push(mint(
                steady,
                &claims(STEADY_ISS, &format!("user:soak-{i}"), now, i as u64),
                None,
            )?);
        }
        let mut expired = claims(STEADY_ISS, "user:late", now, 1);
        expired["iat"] = json!(now - 7200);
        expired["exp"] = json!(now - 3600);
        let ok = claims(STEADY_ISS, "user:alice", now, 2);
        let mut big = ok.clone();
        big["padding"] = json!("x".repeat(20 * 1024));
        let mut bomb = ok.clone();
        bomb["act"] = nested(400);
        let mut deep = ok.clone();
        deep["act"] = nested(12);
        let rng = SystemRandom::new();
        let proof_key = SigningKey::generate(Alg::EdDSA, "proof", &rng)
            .map_err(|e| Error(format!("keygen: {e}")))?;
        let jkt = proof_key
            .jkt()
            .ok_or_else(|| Error("proof key thumbprint".into()))?;
        let mut bound = claims(DPOP_ISS, "user:dpop", now, 3);
        bound["cnf"] = json!({ "jkt": jkt });
        let mut prefix = [0u8; 6];
        ring::rand::SecureRandom::fill(&rng, &mut prefix).map_err(|_| Error("rng".into()))?;
        let oversized = tool_call(
            "get_balance",
            json!({ "amount": 1, "memo": "m".repeat(MCP_MAX_BODY) }),
        );
        Ok(Tokens {
            valid,
            expired: mint(steady, &expired, None)?,
            bad_signature: flip_signature(&mint(steady, &ok, None)?),
            unknown_kid: mint(steady, &ok, Some(json!({ "kid": "no-such-kid" })))?,
            oversized: mint(steady, &big, None)?,
            bomb: mint(steady, &bomb, None)?,
            deep_chain: mint(steady, &deep, None)?,
            remote: RwLock::new(Arc::new((Vec::new(), String::new()))),
            next: AtomicU64::new(0),
            dpop_token: mint(steady, &bound, None)?,
            proof_key,
            proof_prefix: prefix.iter().map(|b| format!("{b:02x}")).collect(),
            mcp_oversized: oversized,
        })
    }

    /// Mints the flapping provider's tokens with `key` (its newest).
    pub fn rotate_remote(&self, key: &SigningKey, now: u64) -> Result<()> {
        let mut pool = Vec::with_capacity(REMOTE_POOL);
        for i in 0..REMOTE_POOL {
            pool.push(mint(
                key,
                &claims(FLAPPY_ISS, &format!("user:remote-{i}"), now, i as u64),
                None,
            )?);
        }
        let bad = flip_signature(&mint(key, &claims(FLAPPY_ISS, "user:bad", now, 0), None)?);
        let mut slot = self.remote.write().unwrap_or_else(|p| p.into_inner());
        *slot = Arc::new((pool, bad));
        Ok(())
    }

    fn remote(&self) -> Arc<(Vec<String>, String)> {
        Arc::clone(&self.remote.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// A fresh DPoP proof for `GET` `DPOP_PATH` with the DPoP token, issued `now`.
    fn proof(&self, n: usize) -> String {
        let htu = format!("http://{AUTHORITY}{DPOP_PATH}");
        let jti = format!("{}-{n}", self.proof_prefix);
        let claims = ProofClaims {
            htm: "GET",
            htu: &htu,
            iat: actwarden_envoy_tests::fixtures::now(),
            jti: Some(&jti),
            access_token: Some(&self.dpop_token),
        };
        self.proof_key
            .dpop_proof(Alg::EdDSA, &claims, &SystemRandom::new())
            .unwrap_or_default()
    }

    /// The request a class sends (without `x-request-id` and `host`). `DpopReplayed` is
    /// sent by the load loop from a `DpopValid` request it had accepted; asked here (the
    /// reasons decided at start), it is a fresh valid one.
    pub fn request(&self, class: Class) -> Request {
        let n = self.next.fetch_add(1, Ordering::Relaxed) as usize;
        let bearer = |path: &str, token: &str| {
            Request::new("GET", path).header("authorization", &format!("Bearer {token}"))
        };
        let pick = |pool: &[String]| pool.get(n % pool.len().max(1)).cloned().unwrap_or_default();
        match class {
            Class::Valid => bearer("/steady/data", &pick(&self.valid)),
            Class::Expired => bearer("/steady/data", &self.expired),
            Class::BadSignature => bearer("/steady/data", &self.bad_signature),
            Class::UnknownKid => bearer("/steady/data", &self.unknown_kid),
            Class::Oversized => bearer("/steady/data", &self.oversized),
            Class::NestingBomb => bearer("/steady/data", &self.bomb),
            Class::DeepChain => bearer("/steady/data", &self.deep_chain),
            Class::Spoofed => bearer("/steady/data", &pick(&self.valid))
                .header("x-agent-subject", SPOOF)
                .header("X-Agent-Actor", SPOOF)
                .header("x-agent-chain", SPOOF)
                .header("x-agent-scopes", "admin"),
            Class::SpoofedAnonymous => Request::new("GET", "/healthz")
                .header("x-agent-subject", SPOOF)
                .header("x-agent-issuer", SPOOF),
            Class::NoToken => Request::new("GET", "/steady/data"),
            Class::RemoteValid => bearer("/flappy/data", &pick(&self.remote().0)),
            Class::RemoteBadSignature => bearer("/flappy/data", &self.remote().1),
            Class::McpAllowed => mcp(
                &pick(&self.valid),
                tool_call("get_balance", json!({ "account": "acc-1", "amount": 10 })),
            ),
            Class::McpDenied => mcp(
                &pick(&self.valid),
                tool_call("delete_everything", json!({})),
            ),
            Class::McpArgumentOverCap => mcp(
                &pick(&self.valid),
                tool_call("get_balance", json!({ "account": "acc-1", "amount": 5000 })),
            ),
            Class::McpMalformed => mcp(
                &pick(&self.valid),
                br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"#.to_vec(),
            ),
            Class::McpOversized => mcp(&pick(&self.valid), self.mcp_oversized.clone()),
            Class::DpopValid | Class::DpopReplayed => Request::new("GET", DPOP_PATH)
                .header("authorization", &format!("DPoP {}", self.dpop_token))
                .header("dpop", &self.proof(n)),
            Class::DpopMissing => Request::new("GET", DPOP_PATH)
                .header("authorization", &format!("DPoP {}", self.dpop_token)),
        }
    }
}

/// `POST /mcp` with a JSON-RPC body.
fn mcp(token: &str, body: Vec<u8>) -> Request {
    let mut req = Request::new("POST", "/mcp")
        .header("authorization", &format!("Bearer {token}"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream");
    req.body = body;
    req
}

#[cfg(test)]
mod tests {
    use super::flip_signature;

    #[test]
    fn a_flipped_signature_always_differs() {
        for sig in ["AAAA", "ABCD", "BAAA", "zzzA", "A"] {
            let token = format!("h.p.{sig}");
            assert_ne!(flip_signature(&token), token);
        }
    }
}
