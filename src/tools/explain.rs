//! Explanations of a decision for people: every check of SPEC §4 in order with its
//! outcome, and the delegation chain drawn with each actor's ceiling and the scopes it
//! removed. Pure views over a `Decision` (no new decisions are made here); the playground
//! shows them and `actwarden check --explain` prints them.

use crate::core::config::{CnfMode, Policy};
use crate::core::decision::Decision;
use crate::core::reasons::Denial;
use crate::core::request::Request;
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
    use crate::core::token::TokenProblem;
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
pub fn checks(policy: &Policy, decision: &Decision) -> Value {
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

/// The token's scopes as the core reads them (`scope`, or `scp` as a string or array);
/// for claims the core refuses, a best-effort reading for display.
fn scopes_of(claims: &Map<String, Value>) -> Vec<String> {
    if let Ok(read) = crate::core::claims::read(claims.clone()) {
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
