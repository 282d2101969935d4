//! The browser playground's binding (feature `web`, wasm-bindgen): JSON in, JSON out.
//!
//! Every export takes strings and returns one JSON text: `{"ok": true, …}` on success, or
//! `{"ok": false, "error": {"kind", "path", "message"}}` (`path` is a JSON path such as
//! `rules[1].require.scopes`, empty for the document itself). Nothing here panics on input
//! (the crate denies unwrap/expect/panic/indexing), so no error reaches JavaScript as a
//! trap. Decisions are made by exactly the function the CLI calls (`api::check`); this
//! file only adapts types.

use crate::api;
use crate::core::config::Policy;
use crate::core::dpop::MemoryWindow;
use crate::core::file::FileError;
use crate::core::keys::alg::Alg;
use crate::core::keys::{self as jwk, KeySet, KeySource};
use crate::core::time::UnixTime;
use crate::tools::mint::{self, SigningKey};
use ring::rand::SystemRandom;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use wasm_bindgen::prelude::*;

#[cfg(target_arch = "wasm32")]
#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = performance, js_name = now)]
    fn performance_now() -> f64;
}

/// Milliseconds from the browser's monotonic clock (the host measures `eval_us`; the core
/// has no clock).
#[cfg(target_arch = "wasm32")]
fn clock_ms() -> f64 {
    performance_now()
}

#[cfg(not(target_arch = "wasm32"))]
fn clock_ms() -> f64 {
    0.0
}

fn ok(body: Map<String, Value>) -> String {
    // `ok` first, for people reading it.
    let mut out = Map::new();
    out.insert("ok".into(), Value::Bool(true));
    for (k, v) in body {
        out.insert(k, v);
    }
    Value::Object(out).to_string()
}

fn fail(kind: &str, path: &str, message: impl Into<String>) -> String {
    json!({ "ok": false, "error": { "kind": kind, "path": path, "message": message.into() } })
        .to_string()
}

fn object(pairs: Vec<(&str, Value)>) -> Map<String, Value> {
    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

/// `message` without a leading `path: ` (the path is reported separately).
fn strip_path(path: &str, message: String) -> String {
    if path.is_empty() {
        return message;
    }
    message
        .strip_prefix(&format!("{path}: "))
        .map(str::to_owned)
        .unwrap_or(message)
}

/// The crate version, e.g. `0.1.0`.
#[wasm_bindgen]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_owned()
}

/// Every reason code of SPEC §4 with its HTTP status (`null` for the allow reasons).
#[wasm_bindgen]
pub fn reasons() -> String {
    let list: Vec<Value> = crate::core::reasons::Reason::ALL
        .iter()
        .map(|r| json!({ "reason": r.code(), "status": r.status() }))
        .collect();
    ok(object(vec![("reasons", Value::Array(list))]))
}

// ---------------------------------------------------------------------------------------
// lint

/// Validates a configuration (SPEC §2), as `actwarden lint`. On success: `notes` (keys that
/// were skipped), `warnings` (as `lint` prints them), `providers` and `rules` (ids, in order). On failure: `error.path`.
#[wasm_bindgen]
pub fn lint(config_json: &str) -> String {
    match Policy::from_json(config_json) {
        Ok(policy) => ok(object(vec![
            ("notes", json!(policy.notes())),
            // SPEC §9: what `actwarden lint` prints as warnings (e.g. `mcp.resource` in no
            // provider's audiences).
            (
                "warnings",
                json!(crate::core::mcp::config::warnings(&policy)),
            ),
            (
                "providers",
                json!(policy
                    .providers
                    .iter()
                    .map(|p| p.name.clone())
                    .collect::<Vec<_>>()),
            ),
            (
                "rules",
                json!(policy
                    .rules
                    .iter()
                    .map(|r| r.id.clone())
                    .collect::<Vec<_>>()),
            ),
        ])),
        Err(e) => fail("config", &e.path, strip_path(&e.path, e.to_string())),
    }
}

// ---------------------------------------------------------------------------------------
// matrix

/// The auth matrix of a configuration (SPEC §12), as `actwarden matrix --format json`:
/// `{"ok": true, "matrix": {...}}`, or the configuration error with its path.
#[wasm_bindgen]
pub fn matrix(config_json: &str) -> String {
    match Policy::from_json(config_json) {
        Ok(policy) => match serde_json::to_value(crate::tools::matrix::matrix(&policy)) {
            Ok(m) => ok(object(vec![("matrix", m)])),
            Err(e) => fail("matrix", "", e.to_string()),
        },
        Err(e) => fail("config", &e.path, strip_path(&e.path, e.to_string())),
    }
}

// ---------------------------------------------------------------------------------------
// check

thread_local! {
    /// The playground session's DPoP replay window (SPEC §10): a proof accepted once in
    /// this page is a replay the second time, as at a gateway.
    static SESSION_REPLAY: MemoryWindow = MemoryWindow::new();
}

/// Starts a new playground session: forgets every DPoP proof seen so far.
#[wasm_bindgen(js_name = resetReplayWindow)]
pub fn reset_replay_window() {
    SESSION_REPLAY.with(MemoryWindow::clear);
}

/// Decides `request_json` (SPEC §7 REQUEST.json) under `config_json` at `now_seconds` (Unix
/// seconds, fractions allowed), exactly as `actwarden check --config C --request R --now T
/// [--jwks NAME=FILE …]`. `remote_jwks_json`, when given, is `{"provider": JWKS}` (the JWKS
/// as text or as an object): the keys a gateway would have fetched for `remote_jwks`.
///
/// Returns `{"ok": true, "allowed", "report", "checks", "chain"}`: `report` is what the CLI
/// prints (every field equal but the measured `eval_us`), `checks` every check of SPEC §4
/// in order with `pass`/`fail`/`not_reached`/`not_applicable`, `chain` the delegation chain
/// with each actor's ceiling and the scopes it removed. `mcp_response`, when given, is the
/// upstream's answer to a `tools/list`: `report.filtered_response` is what the gateway
/// would pass on (SPEC §9; `actwarden check --mcp-response`).
#[wasm_bindgen]
pub fn check(
    config_json: &str,
    request_json: &str,
    now_seconds: f64,
    remote_jwks_json: Option<String>,
    mcp_response: Option<String>,
) -> String {
    if !(now_seconds.is_finite() && now_seconds >= 0.0) {
        return fail("now", "", "`now` must be a non-negative number of seconds");
    }
    let now = UnixTime::from_secs_f64(now_seconds);
    let remote = match remote_keys(remote_jwks_json.as_deref()) {
        Ok(r) => r,
        Err(e) => return e,
    };
    let clock = || (clock_ms().max(0.0) * 1000.0) as u64;
    let checked = SESSION_REPLAY.with(|window| {
        api::check(api::CheckInput {
            policy: api::PolicySource::Text {
                config: config_json,
                read_file: &|_| Err(FileError::NoFiles),
            },
            request: request_json,
            now,
            remote_keys: &remote,
            explain: true,
            clock: Some(&clock),
            replay: Some(window),
            mcp_response: mcp_response.as_deref().map(str::as_bytes),
        })
    });
    let out = match checked {
        Ok(out) => out,
        Err(api::ApiError::Request(e)) => return fail("request", e.path(), e.message()),
        Err(api::ApiError::Config(e)) => {
            return fail("config", &e.path, strip_path(&e.path, e.to_string()))
        }
    };
    let (checks, chain) = match out.explain {
        Some(Value::Object(mut m)) => (
            m.remove("checks").unwrap_or(Value::Null),
            m.remove("chain").unwrap_or(Value::Null),
        ),
        _ => (Value::Null, Value::Null),
    };
    ok(object(vec![
        ("allowed", Value::Bool(out.decision.is_allowed())),
        ("checks", checks),
        ("chain", chain),
        ("report", out.report),
    ]))
}

fn remote_keys(text: Option<&str>) -> Result<HashMap<String, KeySet>, String> {
    let mut out = HashMap::new();
    let Some(text) = text.filter(|t| !t.trim().is_empty()) else {
        return Ok(out);
    };
    let map = match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(m)) => m,
        Ok(Value::Null) => return Ok(out),
        _ => {
            return Err(fail(
                "remote_jwks",
                "",
                "remote JWKS must be a JSON object {\"provider\": JWKS}",
            ))
        }
    };
    for (name, jwks) in map {
        let jwks_text = match jwks {
            Value::String(s) => s,
            other => other.to_string(),
        };
        match jwk::parse_jwks(&jwks_text, KeySource::Fetched) {
            Ok(set) => {
                out.insert(name, set);
            }
            Err(e) => {
                let inner = e.path();
                let path = if inner.is_empty() {
                    name.clone()
                } else {
                    format!("{name}.{inner}")
                };
                return Err(fail("remote_jwks", &path, e.to_string()));
            }
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// decode and minting

/// A token's header, claims, subject and actor chain (current first), WITHOUT verifying
/// anything (`verified: false`).
#[wasm_bindgen]
pub fn decode(token: &str) -> String {
    let decoded = crate::tools::decode::decode_unverified(token);
    match decoded {
        Value::Object(mut m) => match m.remove("error") {
            Some(e) => fail(
                "token",
                "",
                e.as_str().unwrap_or("not a compact JWS").to_owned(),
            ),
            None => ok(m),
        },
        _ => fail("token", "", "not a compact JWS"),
    }
}

/// Generates a key pair: `alg` is ES256, ES384, EdDSA (or HS256/384/512 for a secret).
/// Randomness comes from the browser (`crypto.getRandomValues`, through getrandom).
/// Returns `private_jwk`, `public_jwk` and `jwks` (a JWKS with the public key).
#[wasm_bindgen(js_name = generateKey)]
pub fn generate_key(alg: &str, kid: &str) -> String {
    let rng = SystemRandom::new();
    let alg = match parse_alg_str(alg) {
        Ok(a) => a,
        Err(e) => return fail("alg", "", e),
    };
    match SigningKey::generate(alg, kid, &rng) {
        Ok(key) => ok(object(vec![
            ("private_jwk", key.private_jwk()),
            ("public_jwk", key.public_jwk()),
            ("jwks", mint::public_jwks(&[&key])),
        ])),
        Err(e) => fail("key", "", e.to_string()),
    }
}

/// The public JWKS of private JWKs: `keys_json` is a JSON array of private JWKs, a
/// `{"keys": […]}` document, or one JWK.
#[wasm_bindgen(js_name = publicJwks)]
pub fn public_jwks(keys_json: &str) -> String {
    let rng = SystemRandom::new();
    let list = match serde_json::from_str::<Value>(keys_json) {
        Ok(Value::Array(a)) => a,
        Ok(Value::Object(mut m)) => match m.remove("keys") {
            Some(Value::Array(a)) => a,
            Some(_) => return fail("key", "keys", "`keys` must be an array"),
            None => vec![Value::Object(m)],
        },
        _ => return fail("key", "", "expected a JSON array of private JWKs"),
    };
    let mut keys = Vec::new();
    for (i, jwk) in list.into_iter().enumerate() {
        match jwk {
            Value::Object(m) => match SigningKey::from_jwk(m, &rng) {
                Ok(k) => keys.push(k),
                Err(e) => return fail("key", &format!("[{i}]"), e.to_string()),
            },
            _ => return fail("key", &format!("[{i}]"), "not a JSON object"),
        }
    }
    ok(object(vec![(
        "jwks",
        mint::public_jwks(&keys.iter().collect::<Vec<_>>()),
    )]))
}

/// Signs `claims_json` with a private JWK into a compact JWS (`typ` `at+jwt`, the key's
/// `kid`). `alg` defaults to the key's; `header_json` adds or overrides header members
/// (`null` removes one). Returns `token`.
#[wasm_bindgen(js_name = signToken)]
pub fn sign_token(
    private_jwk_json: &str,
    claims_json: &str,
    alg: Option<String>,
    header_json: Option<String>,
) -> String {
    let rng = SystemRandom::new();
    let key = match SigningKey::from_jwk_json(private_jwk_json, &rng) {
        Ok(k) => k,
        Err(e) => return fail("key", "", e.to_string()),
    };
    let claims = match serde_json::from_str::<Value>(claims_json) {
        Ok(v @ Value::Object(_)) => v,
        Ok(_) => return fail("claims", "", "claims must be a JSON object"),
        Err(e) => return fail("claims", "", format!("not valid JSON: {e}")),
    };
    let header = match header_json.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(text) => match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(m)) => Some(m),
            _ => return fail("header", "", "the header must be a JSON object"),
        },
    };
    let alg = match alg.as_deref().map(str::trim) {
        None | Some("") => key.default_alg(),
        Some(name) => match parse_alg_str(name) {
            Ok(a) => a,
            Err(e) => return fail("alg", "", e),
        },
    };
    match key.mint(alg, &claims, header.as_ref(), &rng) {
        Ok(token) => ok(object(vec![("token", Value::String(token))])),
        Err(e) => fail("sign", "", e.to_string()),
    }
}

/// The RFC 7638 SHA-256 thumbprint of a JWK (public or private), base64url: the `cnf.jkt`
/// that binds a token to that key for DPoP (SPEC §10). Returns `jkt`.
#[wasm_bindgen(js_name = jwkThumbprint)]
pub fn jwk_thumbprint(jwk_json: &str) -> String {
    let jwk = match serde_json::from_str::<Value>(jwk_json) {
        Ok(v @ Value::Object(_)) => v,
        _ => return fail("key", "", "expected a JWK (a JSON object)"),
    };
    match mint::jwk_thumbprint(&jwk) {
        Some(jkt) => ok(object(vec![("jkt", Value::String(jkt))])),
        None => fail(
            "key",
            "",
            "an EC, OKP or RSA JWK is needed for a thumbprint",
        ),
    }
}

/// A DPoP proof (RFC 9449) signed with a private JWK, for `htm` and `htu` at `iat` (Unix
/// seconds), with `ath` when `token` is given and a random `jti` unless one is. Returns
/// `proof`.
#[wasm_bindgen(js_name = dpopProof)]
pub fn dpop_proof(
    private_jwk_json: &str,
    htm: &str,
    htu: &str,
    iat: f64,
    token: Option<String>,
    jti: Option<String>,
) -> String {
    let rng = SystemRandom::new();
    let key = match SigningKey::from_jwk_json(private_jwk_json, &rng) {
        Ok(k) => k,
        Err(e) => return fail("key", "", e.to_string()),
    };
    if !(iat.is_finite() && iat >= 0.0) {
        return fail("iat", "", "`iat` must be a non-negative number of seconds");
    }
    let claims = mint::ProofClaims {
        htm,
        htu,
        iat: UnixTime::from_secs_f64(iat).secs(),
        jti: jti.as_deref().filter(|j| !j.is_empty()),
        access_token: token.as_deref().map(str::trim).filter(|t| !t.is_empty()),
    };
    match key.dpop_proof(key.default_alg(), &claims, &rng) {
        Ok(proof) => ok(object(vec![("proof", Value::String(proof))])),
        Err(e) => fail("sign", "", e.to_string()),
    }
}

/// Simulated token exchange (RFC 8693): the claims of the new token, with `actor` as the
/// current actor and the previous `act` nested under it. `claims_json` may also be a token,
/// whose (unverified) claims are used. Returns `claims`.
#[wasm_bindgen]
pub fn delegate(claims_json: &str, actor: &str, actor_profile: Option<String>) -> String {
    let text = claims_json.trim();
    let claims = if text.starts_with('{') {
        match serde_json::from_str::<Value>(text) {
            Ok(v @ Value::Object(_)) => v,
            _ => return fail("claims", "", "claims must be a JSON object"),
        }
    } else {
        match crate::tools::decode::decode_unverified(text).get("claims") {
            Some(v @ Value::Object(_)) => v.clone(),
            _ => return fail("token", "", "neither a claims object nor a token"),
        }
    };
    if actor.trim().is_empty() {
        return fail("actor", "", "the actor must not be empty");
    }
    let profile = actor_profile.filter(|p| !p.trim().is_empty());
    ok(object(vec![(
        "claims",
        mint::delegate(&claims, actor, profile.as_deref()),
    )]))
}

fn parse_alg_str(name: &str) -> Result<Alg, String> {
    Alg::parse(name).map_err(|e| e.to_string())
}
