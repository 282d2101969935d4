//! The browser playground's binding (feature `web`, wasm-bindgen): JSON in, JSON out.
//!
//! Every export takes strings and returns one JSON text: `{"ok": true, …}` on success, or
//! `{"ok": false, "error": {"kind", "path", "message"}}` (`path` is a JSON path such as
//! `rules[1].require.scopes`, empty for the document itself). Nothing here panics on input
//! (the crate denies unwrap/expect/panic/indexing), so no error reaches JavaScript as a
//! trap. Decisions are made by exactly the functions the CLI calls (`api::decide_json`,
//! `report::decision_json`); this file only adapts types and adds views for the page.

use crate::alg::{Alg, AlgName};
use crate::config::{CnfMode, Policy};
use crate::decision::Decision;
use crate::jwk::{self, KeySet, KeySource};
use crate::mint::{self, SigningKey};
use crate::reason::Denial;
use crate::request::Request;
use crate::time::UnixTime;
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

fn parse_alg(name: &str) -> Result<Alg, String> {
    match Alg::classify(name) {
        AlgName::Supported(a) => Ok(a),
        _ => Err(format!("`{name}` is not an algorithm agentgate can use")),
    }
}

/// The crate version, e.g. `0.1.0`.
#[wasm_bindgen]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_owned()
}

/// Every reason code of SPEC §4 with its HTTP status (`null` for the allow reasons).
#[wasm_bindgen]
pub fn reasons() -> String {
    let list: Vec<Value> = crate::reason::Reason::ALL
        .iter()
        .map(|r| json!({ "reason": r.code(), "status": r.status() }))
        .collect();
    ok(object(vec![("reasons", Value::Array(list))]))
}

// ---------------------------------------------------------------------------------------
// lint

/// Validates a configuration (SPEC §2), as `agentgate lint`. On success: `notes` (keys that
/// were skipped), `providers` and `rules` (ids, in order). On failure: `error.path`.
#[wasm_bindgen]
pub fn lint(config_json: &str) -> String {
    match Policy::from_json(config_json) {
        Ok(policy) => ok(object(vec![
            ("notes", json!(policy.notes())),
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
// check

/// Decides `request_json` (SPEC §7 REQUEST.json) under `config_json` at `now_seconds` (Unix
/// seconds, fractions allowed), exactly as `agentgate check --config C --request R --now T
/// [--jwks NAME=FILE …]`. `remote_jwks_json`, when given, is `{"provider": JWKS}` (the JWKS
/// as text or as an object): the keys a gateway would have fetched for `remote_jwks`.
///
/// Returns `{"ok": true, "allowed", "report", "checks", "chain"}`: `report` is what the CLI
/// prints (every field equal but the measured `eval_us`), `checks` every check of SPEC §4
/// in order with `pass`/`fail`/`not_reached`/`not_applicable`, `chain` the delegation chain
/// with each actor's ceiling and the scopes it removed.
#[wasm_bindgen]
pub fn check(
    config_json: &str,
    request_json: &str,
    now_seconds: f64,
    remote_jwks_json: Option<String>,
) -> String {
    if !(now_seconds.is_finite() && now_seconds >= 0.0) {
        return fail("now", "", "`now` must be a non-negative number of seconds");
    }
    // As the CLI: `UnixTime::from_millis((secs * 1000.0) as u64)`.
    let now = UnixTime::from_millis((now_seconds * 1000.0) as u64);
    let remote = match remote_keys(remote_jwks_json.as_deref()) {
        Ok(r) => r,
        Err(e) => return e,
    };
    let policy = match Policy::from_json(config_json) {
        Ok(p) => p,
        Err(e) => return fail("config", &e.path, strip_path(&e.path, e.to_string())),
    };
    let started = clock_ms();
    let result = crate::api::decide_json(&policy, request_json, now, &remote);
    let elapsed_us = ((clock_ms() - started).max(0.0) * 1000.0) as u64;
    let (decision, mut report) = match result {
        Ok(r) => r,
        Err(crate::api::ApiError::Request(e)) => {
            let path = e.path.clone();
            return fail("request", &path, e.message);
        }
        Err(crate::api::ApiError::Config(e)) => {
            return fail("config", &e.path, strip_path(&e.path, e.to_string()))
        }
    };
    if let Some(obj) = report.as_object_mut() {
        obj.insert("eval_us".into(), elapsed_us.into());
    }
    let token = Request::from_json(request_json)
        .ok()
        .and_then(|r| find_token(&policy, &r));
    ok(object(vec![
        ("allowed", Value::Bool(decision.allowed)),
        ("checks", checks(&policy, &decision)),
        ("chain", chain_view(&policy, &decision, token.as_deref())),
        ("report", report),
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

/// The token a request carries, read the way the configuration says (first one found).
fn find_token(policy: &Policy, request: &Request) -> Option<String> {
    policy.token_sources.iter().find_map(|source| {
        request
            .header_values(&source.name)
            .find_map(|v| source.read(v))
            .map(|t| t.trim().to_owned())
    })
}

/// One check of SPEC §4: id, stage (1–8), label and the reasons it can give.
struct Step {
    id: &'static str,
    stage: u8,
    label: &'static str,
    reasons: &'static [&'static str],
}

const STEPS: &[Step] = &[
    Step {
        id: "route",
        stage: 1,
        label: "a rule matches the method and path",
        reasons: &["route_denied"],
    },
    Step {
        id: "token.present",
        stage: 2,
        label: "a token is present",
        reasons: &["token_missing"],
    },
    Step {
        id: "token.single",
        stage: 2,
        label: "exactly one token",
        reasons: &["token_malformed"],
    },
    Step {
        id: "token.size",
        stage: 2,
        label: "token within size limits",
        reasons: &["token_too_large"],
    },
    Step {
        id: "token.shape",
        stage: 2,
        label: "compact JWS: base64url, header and payload JSON",
        reasons: &["token_malformed"],
    },
    Step {
        id: "verify.issuer",
        stage: 3,
        label: "issuer has a provider this rule accepts",
        reasons: &["issuer_unknown"],
    },
    Step {
        id: "verify.typ",
        stage: 3,
        label: "typ is in token_types",
        reasons: &["type_not_allowed"],
    },
    Step {
        id: "verify.alg",
        stage: 3,
        label: "alg is allowed",
        reasons: &["alg_not_allowed"],
    },
    Step {
        id: "verify.keys",
        stage: 3,
        label: "provider has usable keys",
        reasons: &["jwks_unavailable"],
    },
    Step {
        id: "verify.kid",
        stage: 3,
        label: "kid names a key",
        reasons: &["kid_unknown"],
    },
    Step {
        id: "verify.key_alg",
        stage: 3,
        label: "key and alg agree",
        reasons: &["alg_not_allowed"],
    },
    Step {
        id: "verify.signature",
        stage: 3,
        label: "signature verifies",
        reasons: &["signature_invalid"],
    },
    Step {
        id: "claims.shape",
        stage: 4,
        label: "claim types and shapes (exp, sub, scope, act)",
        reasons: &["claim_invalid"],
    },
    Step {
        id: "claims.aud",
        stage: 4,
        label: "aud is one of the provider's audiences",
        reasons: &["audience_mismatch"],
    },
    Step {
        id: "claims.exp",
        stage: 4,
        label: "not expired (exp, with skew)",
        reasons: &["token_expired"],
    },
    Step {
        id: "claims.nbf_iat",
        stage: 4,
        label: "already valid (nbf, iat, with skew)",
        reasons: &["token_not_yet_valid"],
    },
    Step {
        id: "claims.lifetime",
        stage: 4,
        label: "lifetime within max_lifetime_s",
        reasons: &["lifetime_too_long"],
    },
    Step {
        id: "chain.depth",
        stage: 5,
        label: "chain depth within identity.max_chain_depth",
        reasons: &["chain_too_deep"],
    },
    Step {
        id: "chain.cycle",
        stage: 5,
        label: "no identity repeats in the chain",
        reasons: &["actor_cycle"],
    },
    Step {
        id: "chain.trust_domain",
        stage: 5,
        label: "actors and SPIFFE subject in trust_domains",
        reasons: &["trust_domain_mismatch"],
    },
    Step {
        id: "chain.allowlist",
        stage: 5,
        label: "every actor in identity.actors",
        reasons: &["actor_not_allowed"],
    },
    Step {
        id: "chain.may_act",
        stage: 5,
        label: "may_act names the current actor",
        reasons: &["may_act_violation"],
    },
    Step {
        id: "revocation",
        stage: 6,
        label: "jti, subject and actors not revoked",
        reasons: &["token_revoked"],
    },
    Step {
        id: "binding.required",
        stage: 7,
        label: "cnf present (binding.cnf = required)",
        reasons: &["binding_required"],
    },
    Step {
        id: "binding.cnf",
        stage: 7,
        label: "cnf matches the peer certificate",
        reasons: &["binding_mismatch"],
    },
    Step {
        id: "binding.peer",
        stage: 7,
        label: "mTLS peer is the current actor",
        reasons: &["peer_mismatch"],
    },
    Step {
        id: "require.delegated",
        stage: 8,
        label: "require.delegated",
        reasons: &["delegation_required", "delegation_forbidden"],
    },
    Step {
        id: "require.human_subject",
        stage: 8,
        label: "require.human_subject",
        reasons: &["human_subject_required"],
    },
    Step {
        id: "require.actors",
        stage: 8,
        label: "require.actors",
        reasons: &["actor_not_allowed"],
    },
    Step {
        id: "require.max_chain_depth",
        stage: 8,
        label: "require.max_chain_depth",
        reasons: &["chain_too_deep"],
    },
    Step {
        id: "require.scopes",
        stage: 8,
        label: "require.scopes (effective scopes)",
        reasons: &["scope_insufficient", "actor_scope_exceeded"],
    },
    Step {
        id: "require.claims",
        stage: 8,
        label: "require.claims",
        reasons: &["claim_mismatch"],
    },
    Step {
        id: "require.fresh_auth_s",
        stage: 8,
        label: "require.fresh_auth_s (auth_time, else iat)",
        reasons: &["stepup_required"],
    },
];

/// The step a denial failed at. Reasons given by two steps are told apart by the facts.
fn failed_step(denial: &Denial) -> Option<&'static str> {
    use crate::token::TokenProblem;
    let id = match denial {
        Denial::TokenRepeated { .. } => "token.single",
        Denial::Token(TokenProblem::TooLarge { .. }) => "token.size",
        Denial::Token(_) => "token.shape",
        Denial::KeyDoesNotFitAlg { .. } => "verify.key_alg",
        Denial::RuleActorNotAllowed { .. } => "require.actors",
        Denial::RuleChainTooDeep { .. } => "require.max_chain_depth",
        Denial::ChainTooDeep { .. } => "chain.depth",
        Denial::ActorNotAllowed { .. } => "chain.allowlist",
        other => {
            let code = other.reason().code();
            return STEPS
                .iter()
                .find(|s| s.reasons.contains(&code))
                .map(|s| s.id);
        }
    };
    Some(id)
}

/// Whether a check applies to this request under this policy, and a note when it does not.
fn applicability(policy: &Policy, decision: &Decision, step: &Step) -> Option<&'static str> {
    let rule = decision
        .audit
        .rule
        .as_deref()
        .and_then(|id| policy.rules.iter().find(|r| r.id == id));
    let req = rule.map(|r| &r.require);
    match step.id {
        "binding.required" if policy.binding.cnf != CnfMode::Required => {
            Some("binding.cnf is if_present")
        }
        "binding.peer" if !policy.binding.actor_must_match_peer => {
            Some("actor_must_match_peer is off")
        }
        "chain.allowlist" if policy.identity.actors.is_none() => {
            Some("no identity.actors allowlist")
        }
        "chain.trust_domain" if policy.identity.trust_domains.is_none() => {
            Some("no identity.trust_domains")
        }
        "require.delegated" if req.is_some_and(|r| r.delegated.is_none()) => Some("not required"),
        "require.human_subject" if req.is_some_and(|r| !r.human_subject) => Some("not required"),
        "require.actors" if req.is_some_and(|r| r.actors.is_none()) => Some("not required"),
        "require.max_chain_depth" if req.is_some_and(|r| r.max_chain_depth.is_none()) => {
            Some("not required")
        }
        "require.scopes" if req.is_some_and(|r| r.scopes.is_empty()) => Some("not required"),
        "require.claims" if req.is_some_and(|r| r.claims.is_empty()) => Some("not required"),
        "require.fresh_auth_s" if req.is_some_and(|r| r.fresh_auth_s.is_none()) => {
            Some("not required")
        }
        _ => None,
    }
}

/// Every check of SPEC §4 in order: the checks before the failing one passed, the failing
/// one failed, later ones were not reached. On allow every applicable check passed.
fn checks(policy: &Policy, decision: &Decision) -> Value {
    let reason = decision.reason.code();
    let failed = decision.denial.as_ref().and_then(failed_step);
    let anonymous = reason == "allowed_anonymous";
    let mut reached_failure = false;
    let list: Vec<Value> = STEPS
        .iter()
        .map(|step| {
            let (status, note) = if reached_failure {
                ("not_reached", None)
            } else if failed == Some(step.id) {
                reached_failure = true;
                ("fail", Some(reason))
            } else if anonymous {
                if step.id == "route" {
                    let note = if decision.audit.rule.is_none() {
                        "no rule matched; on_no_match is allow"
                    } else {
                        "rule allows anonymous requests"
                    };
                    ("pass", Some(note))
                } else if step.id == "token.present" && decision.audit.rule.is_some() {
                    (
                        "not_applicable",
                        Some("no token; the rule allows anonymous"),
                    )
                } else {
                    ("not_applicable", None)
                }
            } else {
                match applicability(policy, decision, step) {
                    Some(note) => ("not_applicable", Some(note)),
                    None => ("pass", None),
                }
            };
            json!({
                "id": step.id,
                "stage": step.stage,
                "label": step.label,
                "reasons": step.reasons,
                "status": status,
                "note": note,
            })
        })
        .collect();
    Value::Array(list)
}

fn scopes_of(claims: &Map<String, Value>) -> Vec<String> {
    match (claims.get("scope"), claims.get("scp")) {
        (Some(Value::String(s)), _) => s.split_whitespace().map(str::to_owned).collect(),
        (_, Some(Value::Array(a))) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

/// The delegation chain drawn from subject to current actor: each actor with its ceiling
/// (`max_scopes`, `null` = none), the scopes it removed from what reached it, and what it
/// holds. `verified` says whether the token's signature verified (otherwise the chain is
/// what the token claims, shown for debugging only).
fn chain_view(policy: &Policy, decision: &Decision, token: Option<&str>) -> Value {
    let Some(token) = token else {
        return Value::Null;
    };
    let decoded = crate::dangerous::decode_unverified(token);
    let Some(Value::Object(claims)) = decoded.get("claims").cloned() else {
        return Value::Null;
    };
    let verified = decision.audit.sub.is_some();
    let token_scopes = scopes_of(&claims);
    // Actors from the outermost `act` inward (current first), bounded like the core.
    let mut actors = Vec::new();
    let mut next = claims.get("act");
    while let Some(act) = next {
        if actors.len() >= 64 {
            break;
        }
        actors.push(act);
        next = act.get("act");
    }
    actors.reverse();
    let mut held = token_scopes.clone();
    let mut out = Vec::new();
    for act in actors {
        let id = act.get("sub").and_then(Value::as_str).unwrap_or_default();
        let entry = policy.identity.actors.as_ref().map(|m| m.get(id));
        let ceiling = match entry {
            Some(Some(Some(c))) => Some(c.iter().cloned().collect::<Vec<_>>()),
            _ => None,
        };
        let removed: Vec<String> = match &ceiling {
            Some(c) => held.iter().filter(|s| !c.contains(s)).cloned().collect(),
            None => Vec::new(),
        };
        held.retain(|s| !removed.contains(s));
        out.push(json!({
            "id": id,
            "profile": act.get("sub_profile"),
            "in_allowlist": entry.map(|e| e.is_some()),
            "ceiling": ceiling,
            "removed": removed,
            "holds": held.clone(),
        }));
    }
    json!({
        "verified": verified,
        "subject": {
            "id": claims.get("sub"),
            "profile": claims.get("sub_profile"),
            "scopes": token_scopes,
        },
        "actors": out,
        "effective": held,
    })
}

// ---------------------------------------------------------------------------------------
// decode and minting

/// A token's header, claims, subject and actor chain (current first), WITHOUT verifying
/// anything (`verified: false`).
#[wasm_bindgen]
pub fn decode(token: &str) -> String {
    let decoded = crate::dangerous::decode_unverified(token);
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
    let alg = match parse_alg(alg) {
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
        Some(name) => match parse_alg(name) {
            Ok(a) => a,
            Err(e) => return fail("alg", "", e),
        },
    };
    match key.mint(alg, &claims, header.as_ref(), &rng) {
        Ok(token) => ok(object(vec![("token", Value::String(token))])),
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
        match crate::dangerous::decode_unverified(text).get("claims") {
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

// ---------------------------------------------------------------------------------------
// the shared corpus (browser tests)

/// TEST SUPPORT: materialises one case of `host-tests/corpus/cases/*.json` (its twin when
/// `twin` is true) with `agentgate::corpus`, exactly as the native runner does. Returns
/// `name`, `config` (text), `request` (text), `now` (seconds), `remote_jwks`
/// (`{provider: JWKS text}`) and `expect`; `absent: true` when a twin was asked for and the
/// case has none. The decision itself is made separately, by `check`.
#[wasm_bindgen(js_name = corpusMaterialize)]
pub fn corpus_materialize(
    case_json: &str,
    keys_json: &str,
    configs_json: &str,
    twin: bool,
) -> String {
    use crate::corpus;
    let rng = SystemRandom::new();
    let value: Value = match serde_json::from_str(case_json) {
        Ok(v) => v,
        Err(e) => return fail("case", "", e.to_string()),
    };
    let (case, expect) = if twin {
        match corpus::twin_case(&value) {
            Ok(Some(c)) => {
                let expect = value
                    .get("twin")
                    .and_then(|t| t.get("expect"))
                    .cloned()
                    .unwrap_or(Value::Null);
                (c, expect)
            }
            Ok(None) => return ok(object(vec![("absent", Value::Bool(true))])),
            Err(e) => return fail("case", "twin", e),
        }
    } else {
        match serde_json::from_value::<corpus::Case>(value.clone()) {
            Ok(c) => (c, value.get("expect").cloned().unwrap_or(Value::Null)),
            Err(e) => return fail("case", "", e.to_string()),
        }
    };
    let keys = match corpus::load_keys(keys_json, &rng) {
        Ok(k) => k,
        Err(e) => return fail("keys", "", e),
    };
    let configs: Map<String, Value> = match serde_json::from_str(configs_json) {
        Ok(c) => c,
        Err(e) => return fail("configs", "", e.to_string()),
    };
    let Some(config) = configs.get(&case.config) else {
        return fail("configs", &case.config, "no such configuration");
    };
    let token = match &case.token {
        None => None,
        Some(spec) => match corpus::materialize(spec, &keys, &rng) {
            Ok(t) => Some(t),
            Err(e) => return fail("token", "", e.to_string()),
        },
    };
    let mut remote = Map::new();
    for (provider, names) in &case.remote_jwks {
        let mut set = Vec::new();
        for name in names {
            match keys.get(name) {
                Some(k) => set.push(k),
                None => return fail("keys", name, "no such key"),
            }
        }
        remote.insert(
            provider.clone(),
            Value::String(mint::public_jwks(&set).to_string()),
        );
    }
    ok(object(vec![
        ("name", Value::String(case.name.clone())),
        ("config", Value::String(config.to_string())),
        (
            "request",
            Value::String(corpus::request_with_token(&case.request, token.as_deref())),
        ),
        ("now", json!(case.now)),
        ("remote_jwks", Value::Object(remote)),
        ("token", json!(token)),
        ("expect", expect),
    ]))
}
