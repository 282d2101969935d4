//! What one `decide` costs besides the signature, natively and as wasm32-wasip1 under V8
//! (`make profile-v8`): the part of a request the filter's own code pays in Envoy, where
//! the host verifies ES*/RS* signatures itself (SPEC §13). Together with the per-stage
//! Envoy builds of docs/performance.md it says where a request's time goes.
//!
//! Cases (the policy of benches/decision.rs; every decision is checked to be an allow):
//! - `cached`: one ES256 token with one actor, the token cache holding it (the `hot` path);
//! - `cold`: `DECIDE_BENCH_TOKENS` distinct tokens (default 6000, more than the cache's
//!   4096), cycled: every decision misses the cache, parses the token, hashes it and fills
//!   the cache (the `cold` path besides the signature; a hit fails the run);
//! - `dpop`: a DPoP-bound token, cached, with its proof (the `dpop` path besides the two
//!   signatures and the host's replay window);
//! - `mcp`: the `mcp` workload of `make bench` (a `tools/call` matched by `match.mcp`, one
//!   `require.arguments` condition), the token cached.
//!
//! Signatures are not verified here (`SignaturesNotChecked` answers every one valid): their
//! cost is the host's in Envoy and is measured by `verify-bench`. Only this benchmark
//! uses it; it never decides a real request.
//!
//! Prints `{"cached": {"us": N}, "cold": {...}, "dpop": {...}, "mcp": {...}}` (µs per
//! decision, the median of `DECIDE_BENCH_ROUNDS` rounds, default 5); `DECIDE_BENCH_CASES`
//! (a comma list) runs only those cases, e.g. one to profile. Under `node --cpu-prof` the module
//! keeps its function names (`make profile-v8` builds it unstripped), and
//! `scripts/v8_profile.py` sums a profile per function below `decide_with`.

use actwarden::mint::{public_jwks, ProofClaims};
use actwarden::{
    decide, Admission, Alg, Context, NoRemoteKeys, Policy, ReplayEntry, ReplayWindow, Request,
    SignatureVerifier, TokenCache, UnixTime, Verification, VerificationKey,
};
use ring::rand::SystemRandom;
use serde_json::{json, Map, Value};
use std::hint::black_box;
use std::process::ExitCode;
use std::time::Instant;

mod common;

use common::{env_number, signing_key, KEYS, NOW};

const ORCHESTRATOR: &str = "spiffe://prod.example.com/agent/orchestrator";

/// BENCHMARK ONLY: answers every signature valid, so that what is timed is the decision
/// around it.
struct SignaturesNotChecked;

impl SignatureVerifier for SignaturesNotChecked {
    fn verify(&self, _: Alg, _: &VerificationKey, _: &[u8], _: &[u8]) -> Verification {
        Verification::Valid
    }
}

/// Admits every proof: the `dpop` case decides one proof many times.
struct AdmitAll;

impl ReplayWindow for AdmitAll {
    fn admit(&self, _: ReplayEntry<'_>) -> Admission {
        Admission::Fresh
    }
}

fn policy(jwks: &Value, dpop: bool) -> Result<Policy, String> {
    let mut provider = json!({
        "issuer": "https://sts.example.com",
        "audiences": ["payments-api"],
        "local_jwks": { "inline_string": jwks.to_string() },
        "algorithms": ["ES256"],
        "clock_skew_s": 60,
        "max_lifetime_s": 3600
    });
    if let (true, Some(p)) = (dpop, provider.as_object_mut()) {
        p.insert("dpop".into(), json!({ "mode": "required" }));
    }
    let config = json!({
        "providers": { "corp-sts": provider },
        "identity": {
            "trust_domains": ["prod.example.com"],
            "human_profiles": ["user"],
            "max_chain_depth": 4,
            "actors": { ORCHESTRATOR: { "max_scopes": ["invoices:read", "payments:write"] } }
        },
        "revoked": { "jti": ["jti-revoked-1"], "subjects": ["user:mallory"] },
        "rules": [
            { "id": "pay", "match": { "path_prefix": "/v1/payments", "methods": ["POST"] },
              "require": { "scopes": ["payments:write"], "human_subject": true,
                           "delegated": true, "actors": [ORCHESTRATOR] } }
        ],
        "on_no_match": "deny"
    });
    Policy::from_json(&config.to_string()).map_err(|e| format!("policy: {e}"))
}

fn claims(jti: &str) -> Value {
    json!({
        "iss": "https://sts.example.com", "sub": "user:alice", "sub_profile": "user",
        "aud": "payments-api", "iat": NOW - 60, "exp": NOW + 600, "jti": jti,
        "scope": "invoices:read payments:write", "act": { "sub": ORCHESTRATOR }
    })
}

fn request(authorization: String, proof: Option<String>) -> Request {
    let mut headers = vec![
        ("authorization".to_owned(), authorization),
        ("content-type".to_owned(), "application/json".to_owned()),
        (
            "x-request-id".to_owned(),
            "6f1e0c3a-8d2b-4c55-9a1e-2b7d3e4f5a60".to_owned(),
        ),
    ];
    headers.extend(proof.map(|p| ("dpop".to_owned(), p)));
    Request {
        scheme: None,
        method: "POST".into(),
        path: "/v1/payments".into(),
        authority: Some("api.example.com".into()),
        headers,
        peer: None,
        body: None,
    }
}

fn ctx<'a>(policy: &'a Policy, cache: &'a TokenCache) -> Context<'a> {
    Context {
        policy,
        remote_keys: &NoRemoteKeys,
        crypto: &SignaturesNotChecked,
        cache: Some(cache),
        replay: &AdmitAll,
        shared: None,
    }
}

/// µs per decision of `requests` (cycled), the median of `rounds` rounds of `per_round`.
fn time(
    ctx: Context<'_>,
    requests: &[Request],
    rounds: usize,
    per_round: usize,
) -> Result<f64, String> {
    let now = UnixTime::from_secs(NOW);
    // Warm-up, and every decision must be an allow.
    for r in requests {
        let d = decide(ctx, r, now);
        if !d.is_allowed() {
            return Err(format!("expected an allow, got {:?}", d.reason()));
        }
    }
    let mut results = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let started = Instant::now();
        for r in requests.iter().cycle().take(per_round) {
            black_box(decide(ctx, black_box(r), now));
        }
        results.push(started.elapsed().as_secs_f64() * 1e6 / per_round as f64);
    }
    results.sort_by(f64::total_cmp);
    results
        .get(results.len() / 2)
        .copied()
        .ok_or_else(|| "no rounds".to_owned())
}

fn main_result() -> Result<(), String> {
    let count = |name, default| {
        env_number(name, default)
            .and_then(|n| usize::try_from(n).map_err(|e| format!("`{name}`: {e}")))
    };
    let rounds = count("DECIDE_BENCH_ROUNDS", 5)?;
    let cases = std::env::var("DECIDE_BENCH_CASES").unwrap_or_default();
    let wanted = |case: &str| cases.is_empty() || cases.split(',').any(|c| c.trim() == case);
    let tokens = count("DECIDE_BENCH_TOKENS", 6000)?;
    let rng = SystemRandom::new();
    let keys: Value = serde_json::from_str(KEYS).map_err(|e| format!("keys.json: {e}"))?;
    let issuer = signing_key(&keys, "es256-a", &rng)?;
    let jwks = public_jwks(&[&issuer]);
    let mint = |c: &Value| {
        issuer
            .mint(Alg::ES256, c, None, &rng)
            .map_err(|e| format!("mint: {e}"))
    };
    let mut out = Map::new();
    let mut record = |case: &str, us: f64| {
        eprintln!("decide-bench: {case}: {us:.2} µs");
        out.insert(
            case.to_owned(),
            json!({ "us": (us * 100.0).round() / 100.0 }),
        );
    };

    let bearer = policy(&jwks, false)?;
    let cached = TokenCache::default();
    if wanted("cached") {
        let hot = [request(format!("Bearer {}", mint(&claims("hot"))?), None)];
        record(
            "cached",
            time(ctx(&bearer, &cached), &hot, rounds, 200_000)?,
        );
    }
    if wanted("cold") {
        let distinct = (0..tokens)
            .map(|i| {
                Ok(request(
                    format!("Bearer {}", mint(&claims(&format!("cold-{i}")))?),
                    None,
                ))
            })
            .collect::<Result<Vec<_>, String>>()?;
        let cold = TokenCache::default();
        let us = time(ctx(&bearer, &cold), &distinct, rounds, tokens)?;
        // Not a timed assertion: the case must measure misses, never hits by accident.
        let stats = cold.stats();
        if stats.hits > 0 {
            return Err(format!(
                "cold: {} cache hits: DECIDE_BENCH_TOKENS ({tokens}) must exceed the cache",
                stats.hits
            ));
        }
        record("cold", us);
    }
    if wanted("dpop") {
        let bound = policy(&jwks, true)?;
        let agent = signing_key(&keys, "agent-es256", &rng)?;
        let mut c = claims("dpop");
        let jkt = agent.jkt().ok_or("no thumbprint")?;
        if let Some(obj) = c.as_object_mut() {
            obj.insert("cnf".into(), json!({ "jkt": jkt }));
        }
        let token = mint(&c)?;
        let proof = agent
            .dpop_proof(
                Alg::ES256,
                &ProofClaims {
                    htm: "POST",
                    htu: "https://api.example.com/v1/payments",
                    iat: NOW,
                    jti: Some("bench-proof"),
                    access_token: Some(&token),
                },
                &rng,
            )
            .map_err(|e| format!("proof: {e}"))?;
        let dpop = [request(format!("DPoP {token}"), Some(proof))];
        let dpop_cache = TokenCache::default();
        record(
            "dpop",
            time(ctx(&bound, &dpop_cache), &dpop, rounds, 100_000)?,
        );
    }

    if wanted("mcp") {
        // The `mcp` workload of `make bench`: a `tools/call` on an MCP endpoint, matched by
        // `match.mcp` and checked against one `require.arguments` condition.
        let config = json!({
            "providers": { "corp-sts": {
                "issuer": "https://sts.example.com", "audiences": ["payments-api"],
                "local_jwks": { "inline_string": jwks.to_string() }, "algorithms": ["ES256"] } },
            "mcp": { "endpoints": ["/mcp"], "resource": "https://api.example.com/mcp" },
            "rules": [
                { "id": "tools", "match": { "mcp": { "methods": ["tools/call"],
                                                     "names": ["list_invoices"] } },
                  "require": { "scopes": ["invoices:read"],
                               "arguments": [{ "pointer": "/limit", "max": 100 }] } }
            ],
            "on_no_match": "deny",
            "audit": { "log": "denials" }
        });
        let mcp = Policy::from_json(&config.to_string()).map_err(|e| format!("policy: {e}"))?;
        let body = json!({ "jsonrpc": "2.0", "id": 42, "method": "tools/call",
                           "params": { "name": "list_invoices",
                                       "arguments": { "customer": "cus_8f3a2c1b",
                                                      "status": "open", "limit": 50,
                                                      "memo": "x".repeat(160) } } });
        let mut call = request(format!("Bearer {}", mint(&claims("mcp"))?), None);
        call.path = "/mcp".into();
        call.headers.push((
            "accept".to_owned(),
            "application/json, text/event-stream".to_owned(),
        ));
        call.body = Some(body.to_string().into_bytes());
        let mcp_cache = TokenCache::default();
        record(
            "mcp",
            time(ctx(&mcp, &mcp_cache), &[call], rounds, 100_000)?,
        );
    }

    println!("{}", Value::Object(out));
    Ok(())
}

fn main() -> ExitCode {
    common::exit("decide-bench", main_result())
}
