//! `make bench-native` (scripts/bench-native.sh): what one `decide` costs natively.
//!
//! - `decision/cached/ES256`, `decision/cached_chain3/ES256`: the filter's hot path, a
//!   `TokenCache` already holding the token (the same token reused), so no signature.
//! - `decision/cold/{alg}`: no cache, every call verifies the signature (a token with one
//!   actor, the demo's request (a)).
//! - `decision/cold_chain3/{alg}`: the same with a three-actor `act` chain, every actor
//!   allowed with a ceiling, so the chain checks and scope intersection show.
//! - `decision/dpop/{ES256,EdDSA}`, `decision/dpop_cached/…`: a DPoP-bound ES256 token
//!   (`cnf.jkt`) with a proof of the agent's key (ES256 or Ed25519, SPEC §10), the token
//!   verified every time or from the cache; the proof is verified every time. The window
//!   admits every proof (`AdmitAll`), so one proof can be decided repeatedly; the replay
//!   window's own cost is the in-memory or shared-data lookup of the host.
//!
//! - `mcp/tool_call`: an MCP `tools/call` (SPEC §9) with arguments, cached token: reading
//!   the JSON-RPC body, `match.mcp` and two `require.arguments` conditions on top of the
//!   cached path. `mcp/tools_list_100`: filtering a 100-tool `tools/list` answer (three
//!   rules, so three rule evaluations, cached token).
//!
//! Keys are the corpus test keys (host-tests/corpus/keys.json); the policy is the example
//! gateway policy's shape (gateway-configs/example/actwarden.json) with those keys. Every
//! decision is asserted to be an allow once, before any timing.

use actwarden::mint::{public_jwks, SigningKey};
use actwarden::Alg;
use actwarden::TokenCache;
use actwarden::{decide, Context, NoRemoteKeys, Policy, Request, UnixTime};
use criterion::{criterion_group, criterion_main, Criterion};
use ring::rand::SystemRandom;
use serde_json::{json, Value};
use std::hint::black_box;

const KEYS: &str = include_str!("../host-tests/corpus/keys.json");
const NOW: u64 = 1_800_000_000;
const ORCHESTRATOR: &str = "spiffe://prod.example.com/agent/orchestrator";
const PLANNER: &str = "spiffe://prod.example.com/agent/planner";
const ASSISTANT: &str = "spiffe://prod.example.com/agent/assistant";

/// (alg, name of the corpus key that signs it)
const ALGS: [(Alg, &str); 5] = [
    (Alg::ES256, "es256-a"),
    (Alg::ES384, "es384-a"),
    (Alg::RS256, "rsa-a"),
    (Alg::PS256, "rsa-a"),
    (Alg::EdDSA, "ed-a"),
];

struct Fixture {
    policy: Policy,
    /// (alg name, request with a one-actor token, request with a three-actor token)
    requests: Vec<(&'static str, Request, Request)>,
}

fn signing_key(keys: &Value, name: &str, rng: &SystemRandom) -> Result<SigningKey, String> {
    let jwk = keys
        .get(name)
        .and_then(Value::as_object)
        .ok_or_else(|| format!("no key `{name}` in keys.json"))?;
    SigningKey::from_jwk(jwk.clone(), rng).map_err(|e| format!("key `{name}`: {e}"))
}

fn policy(jwks: &Value) -> Result<Policy, String> {
    let actor = |scopes: &[&str]| json!({ "max_scopes": scopes });
    let config = json!({
        "providers": {
            "corp-sts": {
                "issuer": "https://sts.example.com",
                "audiences": ["payments-api"],
                "local_jwks": { "inline_string": jwks.to_string() },
                "algorithms": ["ES256", "ES384", "RS256", "PS256", "EdDSA"],
                "token_types": ["at+jwt", "jwt"],
                "clock_skew_s": 60,
                "max_lifetime_s": 3600,
                "from_headers": [{ "name": "authorization", "value_prefix": "Bearer " }]
            }
        },
        "identity": {
            "trust_domains": ["prod.example.com"],
            "human_profiles": ["user"],
            "max_chain_depth": 4,
            "actors": {
                ORCHESTRATOR: actor(&["invoices:read", "payments:write"]),
                "spiffe://prod.example.com/agent/billing": actor(&["invoices:read"]),
                PLANNER: actor(&["invoices:read", "payments:write"]),
                ASSISTANT: actor(&["invoices:read", "payments:write", "profile:read"])
            }
        },
        "binding": { "cnf": "if_present", "actor_must_match_peer": false },
        "revoked": {
            "jti": ["jti-revoked-1", "jti-revoked-2"],
            "subjects": ["user:mallory"],
            "actors": ["spiffe://prod.example.com/agent/rogue"]
        },
        "rules": [
            { "id": "health", "match": { "path_prefix": "/healthz" }, "allow_anonymous": true },
            { "id": "invoices", "match": { "path_prefix": "/v1/invoices", "methods": ["GET"] },
              "require": { "scopes": ["invoices:read"] } },
            { "id": "pay", "match": { "path_prefix": "/v1/payments", "methods": ["POST"] },
              "providers": ["corp-sts"],
              "require": { "scopes": ["payments:write"], "human_subject": true, "delegated": true,
                           "actors": [ORCHESTRATOR, "spiffe://prod.example.com/agent/billing"],
                           "max_chain_depth": 3, "fresh_auth_s": 300,
                           "claims": { "acr": ["urn:example:acr:approved"] } } }
        ],
        "on_no_match": "deny"
    });
    Policy::from_json(&config.to_string()).map_err(|e| format!("policy: {e}"))
}

/// The claims of a token exchanged down `chain` (current actor first).
fn claims(chain: &[&str]) -> Value {
    let mut act: Option<Value> = None;
    for actor in chain.iter().rev() {
        let mut a = json!({ "sub": actor });
        if let (Some(prior), Some(obj)) = (act.take(), a.as_object_mut()) {
            obj.insert("act".into(), prior);
        }
        act = Some(a);
    }
    let mut claims = json!({
        "iss": "https://sts.example.com",
        "sub": "user:alice",
        "sub_profile": "user",
        "aud": "payments-api",
        "iat": NOW - 60,
        "exp": NOW + 600,
        "auth_time": NOW - 60,
        "jti": "bench-7f3a9c",
        "client_id": "orchestrator",
        "scope": "invoices:read payments:write",
        "acr": "urn:example:acr:approved"
    });
    if let (Some(act), Some(obj)) = (act, claims.as_object_mut()) {
        obj.insert("act".into(), act);
    }
    claims
}

fn request(token: &str) -> Request {
    Request {
        scheme: None,
        method: "POST".into(),
        path: "/v1/payments?idempotency=1".into(),
        authority: Some("api.example.com".into()),
        headers: vec![
            ("authorization".into(), format!("Bearer {token}")),
            ("content-type".into(), "application/json".into()),
            ("user-agent".into(), "agent-sdk/1.4".into()),
            (
                "x-request-id".into(),
                "6f1e0c3a-8d2b-4c55-9a1e-2b7d3e4f5a60".into(),
            ),
            (
                "traceparent".into(),
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into(),
            ),
            // A spoofed identity header, as in the demo: stripped, never trusted.
            ("x-agent-subject".into(), "user:admin".into()),
        ],
        peer: None,
        body: None,
    }
}

fn fixture() -> Result<Fixture, String> {
    let rng = SystemRandom::new();
    let keys: Value = serde_json::from_str(KEYS).map_err(|e| format!("keys.json: {e}"))?;
    let signers = ["es256-a", "es384-a", "rsa-a", "ed-a"]
        .iter()
        .map(|name| Ok((*name, signing_key(&keys, name, &rng)?)))
        .collect::<Result<Vec<_>, String>>()?;
    let public: Vec<&SigningKey> = signers.iter().map(|(_, k)| k).collect();
    let policy = policy(&public_jwks(&public))?;
    let mut requests = Vec::new();
    for (alg, key_name) in ALGS {
        let key = signers
            .iter()
            .find(|(n, _)| *n == key_name)
            .map(|(_, k)| k)
            .ok_or_else(|| format!("no signer `{key_name}`"))?;
        let mint = |chain: &[&str]| {
            key.mint(alg, &claims(chain), None, &rng)
                .map_err(|e| format!("mint {}: {e}", alg.name()))
        };
        let one = request(&mint(&[ORCHESTRATOR])?);
        let three = request(&mint(&[ORCHESTRATOR, PLANNER, ASSISTANT])?);
        requests.push((alg.name(), one, three));
    }
    Ok(Fixture { policy, requests })
}

fn context<'a>(policy: &'a Policy, cache: Option<&'a TokenCache>) -> Context<'a> {
    Context {
        policy,
        remote_keys: &NoRemoteKeys,
        crypto: &actwarden::RING,
        cache,
        // Benchmarks decide bearer tokens; the window is never consulted.
        replay: Box::leak(Box::new(actwarden::MemoryWindow::new())),
        shared: None,
    }
}

/// A replay window that admits every proof: the benchmark decides one proof many times.
struct AdmitAll;

impl actwarden::ReplayWindow for AdmitAll {
    fn admit(&self, _: actwarden::ReplayEntry<'_>) -> actwarden::Admission {
        actwarden::Admission::Fresh
    }
}

/// The DPoP policy, and one request per proof algorithm: (alg, request).
/// (proof alg, request)
type DpopRequests = Vec<(&'static str, Request)>;

fn dpop_fixture() -> Result<(Policy, DpopRequests), String> {
    let rng = SystemRandom::new();
    let keys: Value = serde_json::from_str(KEYS).map_err(|e| format!("keys.json: {e}"))?;
    let issuer = signing_key(&keys, "es256-a", &rng)?;
    let mut config: Value = json!({
        "providers": { "corp-sts": { "issuer": "https://sts.example.com",
            "audiences": ["payments-api"],
            "local_jwks": { "inline_string": public_jwks(&[&issuer]).to_string() },
            "dpop": { "mode": "required" } } },
        "rules": [{ "id": "pay", "match": { "path_prefix": "/v1/payments" } }]
    });
    let policy = Policy::from_json(&config.take().to_string()).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for (alg, name) in [(Alg::ES256, "agent-es256"), (Alg::EdDSA, "agent-ed")] {
        let agent = signing_key(&keys, name, &rng)?;
        let mut c = claims(&[ORCHESTRATOR]);
        let jkt = agent.jkt().ok_or("no thumbprint")?;
        if let Some(obj) = c.as_object_mut() {
            obj.insert("cnf".into(), json!({ "jkt": jkt }));
        }
        let token = issuer
            .mint(Alg::ES256, &c, None, &rng)
            .map_err(|e| e.to_string())?;
        let proof = agent
            .dpop_proof(
                alg,
                &actwarden::mint::ProofClaims {
                    htm: "POST",
                    htu: "https://api.example.com/v1/payments",
                    iat: NOW,
                    jti: Some("bench-proof"),
                    access_token: Some(&token),
                },
                &rng,
            )
            .map_err(|e| e.to_string())?;
        let mut req = request(&token);
        req.headers.retain(|(n, _)| n != "authorization");
        req.headers
            .push(("authorization".into(), format!("DPoP {token}")));
        req.headers.push(("dpop".into(), proof));
        out.push((alg.name(), req));
    }
    Ok((policy, out))
}

/// Not a timed assertion: each benchmark must measure an allow, never a deny by accident.
fn assert_allowed(ctx: Context<'_>, request: &Request, what: &str) {
    let d = decide(ctx, request, UnixTime::from_secs(NOW));
    assert!(
        d.is_allowed(),
        "{what}: expected an allow, got {:?} ({:?})",
        d.reason(),
        d.audit_record(request).detail
    );
}

fn benches(c: &mut Criterion) {
    let fx = match fixture() {
        Ok(fx) => fx,
        Err(e) => {
            eprintln!("decision bench setup failed: {e}");
            std::process::exit(1);
        }
    };
    let now = UnixTime::from_secs(NOW);

    for (case, chain3) in [("cached", false), ("cached_chain3", true)] {
        let mut group = c.benchmark_group(format!("decision/{case}"));
        for (alg, one, three) in fx.requests.iter().filter(|(a, _, _)| *a == "ES256") {
            let req = if chain3 { three } else { one };
            let cache = TokenCache::default();
            let ctx = context(&fx.policy, Some(&cache));
            assert_allowed(ctx, req, &format!("{case}/{alg} (fills the cache)"));
            assert_allowed(ctx, req, &format!("{case}/{alg} (from the cache)"));
            group.bench_function(*alg, |b| {
                b.iter(|| decide(ctx, black_box(req), black_box(now)))
            });
            let stats = cache.stats();
            assert!(
                stats.misses <= 1,
                "{case}/{alg}: the cached benchmark verified again ({stats:?})"
            );
        }
        group.finish();
    }

    match dpop_fixture() {
        Err(e) => {
            eprintln!("dpop bench setup failed: {e}");
            std::process::exit(1);
        }
        Ok((policy, requests)) => {
            for case in ["dpop", "dpop_cached"] {
                let mut group = c.benchmark_group(format!("decision/{case}"));
                for (alg, req) in &requests {
                    let cache = TokenCache::default();
                    let ctx = Context {
                        policy: &policy,
                        remote_keys: &NoRemoteKeys,
                        crypto: &actwarden::RING,
                        cache: (case == "dpop_cached").then_some(&cache),
                        replay: &AdmitAll,
                        shared: None,
                    };
                    assert_allowed(ctx, req, &format!("{case}/{alg}"));
                    group.bench_function(*alg, |b| {
                        b.iter(|| decide(ctx, black_box(req), black_box(now)))
                    });
                }
                group.finish();
            }
        }
    }

    for (case, chain3) in [("cold", false), ("cold_chain3", true)] {
        let mut group = c.benchmark_group(format!("decision/{case}"));
        for (alg, one, three) in &fx.requests {
            let req = if chain3 { three } else { one };
            let ctx = context(&fx.policy, None);
            assert_allowed(ctx, req, &format!("{case}/{alg}"));
            group.bench_function(*alg, |b| {
                b.iter(|| decide(ctx, black_box(req), black_box(now)))
            });
        }
        group.finish();
    }
}

/// SPEC §9: what an MCP message adds to the cached path, and filtering a tool list.
fn mcp_benches(c: &mut Criterion) {
    let rng = SystemRandom::new();
    let setup = || -> Result<(Policy, SigningKey), String> {
        let keys: Value = serde_json::from_str(KEYS).map_err(|e| e.to_string())?;
        let key = signing_key(&keys, "es256-a", &rng)?;
        let config = json!({
            "providers": { "corp-sts": { "issuer": "https://sts.example.com", "audiences": ["mcp"],
                "local_jwks": { "inline_string": public_jwks(&[&key]).to_string() } } },
            "mcp": { "endpoints": ["/mcp"] },
            "rules": [
                { "id": "pay", "match": { "mcp": { "methods": ["tools/call"], "names": ["pay_*"] } },
                  "require": { "scopes": ["payments:write"], "arguments": [
                      { "pointer": "/amount", "max": 1000 }, { "pointer": "/currency", "one_of": ["EUR", "USD"] } ] } },
                { "id": "admin", "match": { "mcp": { "methods": ["tools/call"], "names": ["admin_*"] } },
                  "require": { "scopes": ["admin"] } },
                { "id": "session", "match": { "path_exact": "/mcp" } }
            ]
        });
        let policy = Policy::from_json(&config.to_string()).map_err(|e| e.to_string())?;
        Ok((policy, key))
    };
    let (policy, key) = match setup() {
        Ok(v) => v,
        Err(e) => {
            eprintln!("mcp bench setup failed: {e}");
            std::process::exit(1);
        }
    };
    let mut claims = claims(&[ORCHESTRATOR]);
    if let Some(obj) = claims.as_object_mut() {
        obj.insert("aud".into(), json!("mcp"));
    }
    let token = match key.mint(Alg::ES256, &claims, None, &rng) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("mcp bench mint failed: {e}");
            std::process::exit(1);
        }
    };
    let post = |body: String| {
        let mut r = request(&token);
        r.path = "/mcp".into();
        r.body = Some(body.into_bytes());
        r
    };
    let call = post(
        json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
               "params": {"name": "pay_supplier", "arguments": {"amount": 480, "currency": "EUR", "to": "ACME"}}})
        .to_string(),
    );
    let list = post(json!({"jsonrpc": "2.0", "id": 7, "method": "tools/list"}).to_string());
    let tools: Vec<Value> = (0..100)
        .map(|i| {
            let name = match i % 3 {
                0 => format!("pay_{i}"),
                1 => format!("admin_{i}"),
                _ => format!("read_{i}"),
            };
            json!({"name": name, "description": "a tool", "inputSchema": {"type": "object"}})
        })
        .collect();
    let answer = json!({"jsonrpc": "2.0", "id": 7, "result": {"tools": tools}}).to_string();
    let now = UnixTime::from_secs(NOW);
    let cache = TokenCache::default();
    let ctx = context(&policy, Some(&cache));
    assert_allowed(ctx, &call, "mcp/tool_call");
    let facts = decide(ctx, &list, now).mcp;
    let Some(facts) = facts else {
        eprintln!("mcp bench: tools/list is not an MCP message");
        std::process::exit(1);
    };
    let mut group = c.benchmark_group("mcp");
    group.bench_function("tool_call", |b| {
        b.iter(|| decide(ctx, black_box(&call), black_box(now)))
    });
    group.bench_function("tools_list_100", |b| {
        b.iter(|| {
            actwarden::mcp::filter_tools_list(
                ctx,
                &list,
                &facts,
                now,
                "application/json",
                black_box(answer.as_bytes()),
            )
        })
    });
    group.finish();
}

criterion_group!(decision, benches, mcp_benches);
criterion_main!(decision);
