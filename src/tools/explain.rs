//! Explanations of a decision for people: every check of SPEC §4 in order with its
//! outcome, and the delegation chain drawn with each actor's ceiling and the scopes it
//! removed. Pure views over a `Decision` (no new decisions are made here); the playground
//! shows them and `actwarden check --explain` prints them.

use crate::core::config::Policy;
use crate::core::decision::Decision;
use crate::core::request::Request;
use crate::core::trace::{Outcome, Step, Trace};
use serde_json::{json, Map, Value};

/// The token a request carries, read the way the configuration says (first one found).
pub fn find_token(policy: &Policy, request: &Request) -> Option<String> {
    policy.token_sources.iter().find_map(|source| {
        request
            .header_values(&source.name)
            .find_map(|v| source.read(v))
            .map(|t| t.trim().to_owned())
    })
}

/// For people: what a check makes sure of, and the reasons it can give.
fn describe(step: Step) -> (&'static str, &'static [&'static str]) {
    match step {
        Step::McpBody => (
            "MCP message within mcp.max_body_bytes",
            &["mcp_body_too_large"],
        ),
        Step::McpMessage => (
            "MCP body is one strict JSON-RPC 2.0 object",
            &["mcp_malformed"],
        ),
        Step::McpHeaders => (
            "mcp-method / mcp-name headers agree with the body",
            &["mcp_header_mismatch"],
        ),
        Step::RequireArguments => (
            "require.arguments (tool call arguments)",
            &["argument_denied"],
        ),
        Step::Route => ("a rule matches the method and path", &["route_denied"]),
        Step::TokenPresent => ("a token is present", &["token_missing"]),
        Step::TokenSingle => ("exactly one token", &["token_malformed"]),
        Step::TokenSize => ("token within size limits", &["token_too_large"]),
        Step::TokenShape => (
            "compact JWS: base64url, header and payload JSON",
            &["token_malformed"],
        ),
        Step::VerifyIssuer => (
            "issuer has a provider this rule accepts",
            &["issuer_unknown"],
        ),
        Step::VerifyTyp => ("typ is in token_types", &["type_not_allowed"]),
        Step::VerifyAlg => ("alg is allowed", &["alg_not_allowed"]),
        Step::VerifyKeys => ("provider has usable keys", &["jwks_unavailable"]),
        Step::VerifyKid => ("kid names a key", &["kid_unknown"]),
        Step::VerifyKeyAlg => ("key and alg agree", &["alg_not_allowed"]),
        Step::VerifySignature => ("signature verifies", &["signature_invalid"]),
        Step::ClaimsShape => (
            "claim types and shapes (exp, sub, scope, act)",
            &["claim_invalid"],
        ),
        Step::ClaimsAud => (
            "aud is one of the provider's audiences",
            &["audience_mismatch"],
        ),
        Step::ClaimsExp => ("not expired (exp, with skew)", &["token_expired"]),
        Step::ClaimsNbfIat => (
            "already valid (nbf, iat, with skew)",
            &["token_not_yet_valid"],
        ),
        Step::ClaimsLifetime => ("lifetime within max_lifetime_s", &["lifetime_too_long"]),
        Step::ChainDepth => (
            "chain depth within identity.max_chain_depth",
            &["chain_too_deep"],
        ),
        Step::ChainCycle => ("no identity repeats in the chain", &["actor_cycle"]),
        Step::ChainTrustDomain => (
            "actors and SPIFFE subject in trust_domains",
            &["trust_domain_mismatch"],
        ),
        Step::ChainAllowlist => ("every actor in identity.actors", &["actor_not_allowed"]),
        Step::ChainMayAct => ("may_act names the current actor", &["may_act_violation"]),
        Step::Revocation => ("jti, subject and actors not revoked", &["token_revoked"]),
        Step::DpopScheme => (
            "DPoP scheme where dpop.mode or cnf.jkt needs it",
            &["dpop_required"],
        ),
        Step::DpopProof => (
            "one valid DPoP proof for this request, token and key",
            &["dpop_invalid"],
        ),
        Step::DpopReplay => ("DPoP proof not seen before", &["dpop_replayed"]),
        Step::BindingRequired => (
            "cnf present (binding.cnf = required)",
            &["binding_required"],
        ),
        Step::BindingCnf => ("cnf matches the peer certificate", &["binding_mismatch"]),
        Step::BindingPeer => ("mTLS peer is the current actor", &["peer_mismatch"]),
        Step::RequireDelegated => (
            "require.delegated",
            &["delegation_required", "delegation_forbidden"],
        ),
        Step::RequireHumanSubject => ("require.human_subject", &["human_subject_required"]),
        Step::RequireActors => ("require.actors", &["actor_not_allowed"]),
        Step::RequireMaxChainDepth => ("require.max_chain_depth", &["chain_too_deep"]),
        Step::RequireScopes => (
            "require.scopes (effective scopes)",
            &["scope_insufficient", "actor_scope_exceeded"],
        ),
        Step::RequireClaims => ("require.claims", &["claim_mismatch"]),
        Step::RequireFreshAuth => (
            "require.fresh_auth_s (auth_time, else iat)",
            &["stepup_required"],
        ),
    }
}

/// Every check of SPEC §4, rendered from the trace the pipeline recorded while it decided
/// (`decide_traced`): the checks it ran, in the order it ran them, with their outcomes; then
/// the checks it never ran, from the step list — `not_reached` after a failure, and
/// `not_applicable` after an anonymous allow (there is no token to check).
pub fn checks(trace: &Trace) -> Value {
    let ran = trace.checks();
    let denied = ran.iter().any(|c| matches!(c.outcome, Outcome::Failed(_)));
    let rest = Step::ALL
        .into_iter()
        .filter(|step| !ran.iter().any(|c| c.step == *step))
        .map(|step| {
            let status = if denied {
                "not_reached"
            } else {
                "not_applicable"
            };
            render(step, status, None)
        });
    let list = ran
        .iter()
        .map(|check| match check.outcome {
            Outcome::Passed => render(check.step, "pass", check.note),
            Outcome::Failed(reason) => render(check.step, "fail", Some(reason.code())),
            Outcome::NotApplicable => render(check.step, "not_applicable", check.note),
        })
        .chain(rest)
        .collect();
    Value::Array(list)
}

fn render(step: Step, status: &str, note: Option<&str>) -> Value {
    let (label, reasons) = describe(step);
    json!({
        "id": step.id(),
        "stage": step.stage(),
        "label": label,
        "reasons": reasons,
        "status": status,
        "note": note,
    })
}

/// The token's scopes as the core reads them (`scope`, or `scp` as a string or array);
/// for claims the core refuses, a best-effort reading for display.
fn scopes_of(claims: &Map<String, Value>) -> Vec<String> {
    if let Ok(read) = crate::core::claims::read(claims.clone().into()) {
        return read.scopes;
    }
    match (claims.get("scope"), claims.get("scp")) {
        (Some(Value::String(s)), _) => s.split_whitespace().map(str::to_owned).collect(),
        (_, Some(Value::String(s))) => s.split_whitespace().map(str::to_owned).collect(),
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
pub fn chain(policy: &Policy, decision: &Decision, token: Option<&str>) -> Value {
    let Some(token) = token else {
        return Value::Null;
    };
    let decoded = crate::tools::decode::decode_unverified(token);
    let Some(Value::Object(claims)) = decoded.get("claims").cloned() else {
        return Value::Null;
    };
    let verified = decision.verified();
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
    // A verified token's effective scopes are the pipeline's (computed once, in the
    // decision); the walk above only draws them for people, and stands in when unverified.
    let effective = decision.effective_scopes().map_or(held, <[String]>::to_vec);
    json!({
        "verified": verified,
        "subject": {
            "id": claims.get("sub"),
            "profile": claims.get("sub_profile"),
            "scopes": token_scopes,
        },
        "actors": out,
        "effective": effective,
    })
}
