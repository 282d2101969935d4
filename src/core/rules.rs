//! Rules: which rule a request falls under (step 1 of SPEC §4), and the rule's `require`
//! block (step 8, in the SPEC's order).

use crate::core::claims::{self, Claims};
use crate::core::config::{PathMatch, Policy, Rule};
use crate::core::reasons::Denial;
use crate::core::time::UnixTime;
use crate::core::trace::{Recorder, Step};

/// Whether `rule` matches this method and (normalized, query-less) path.
pub(crate) fn matches(rule: &Rule, method: &str, path: &str) -> bool {
    let path_ok = match &rule.path {
        PathMatch::Prefix(p) => path.starts_with(p.as_str()),
        PathMatch::Exact(p) => path == p,
    };
    path_ok
        && rule
            .methods
            .as_ref()
            .is_none_or(|ms| ms.iter().any(|m| m == method))
}

/// Step 8: the rule's `require`, in SPEC order. A requirement the rule does not set is
/// recorded as not applicable.
pub(crate) fn check_requirements(
    policy: &Policy,
    rule: &Rule,
    claims: &Claims,
    effective: &[String],
    now: UnixTime,
    skew: u64,
    t: &mut Recorder,
) -> Result<(), Denial> {
    let req = &rule.require;
    match req.delegated {
        None => t.not_applicable(Step::RequireDelegated, NOT_REQUIRED),
        Some(delegated) => t.check(Step::RequireDelegated, delegation(claims, delegated))?,
    }
    if req.human_subject {
        t.check(Step::RequireHumanSubject, human_subject(policy, claims))?;
    } else {
        t.not_applicable(Step::RequireHumanSubject, NOT_REQUIRED);
    }
    match &req.actors {
        None => t.not_applicable(Step::RequireActors, NOT_REQUIRED),
        Some(actors) => t.check(Step::RequireActors, listed_actor(claims, actors))?,
    }
    match req.max_chain_depth {
        None => t.not_applicable(Step::RequireMaxChainDepth, NOT_REQUIRED),
        Some(max) => t.check(Step::RequireMaxChainDepth, chain_depth(claims, max))?,
    }
    if req.scopes.is_empty() {
        t.not_applicable(Step::RequireScopes, NOT_REQUIRED);
    } else {
        t.check(
            Step::RequireScopes,
            scopes(policy, claims, effective, &req.scopes),
        )?;
    }
    if req.claims.is_empty() {
        t.not_applicable(Step::RequireClaims, NOT_REQUIRED);
    } else {
        t.check(Step::RequireClaims, claim_values(claims, &req.claims))?;
    }
    match req.fresh_auth_s {
        None => t.not_applicable(Step::RequireFreshAuth, NOT_REQUIRED),
        Some(max) => t.check(Step::RequireFreshAuth, fresh_auth(claims, now, skew, max))?,
    }
    Ok(())
}

const NOT_REQUIRED: &str = "not required";

fn delegation(claims: &Claims, delegated: bool) -> Result<(), Denial> {
    match (delegated, claims.chain.first()) {
        (true, None) => Err(Denial::DelegationRequired),
        (false, Some(_)) => Err(Denial::DelegationForbidden),
        _ => Ok(()),
    }
}

fn human_subject(policy: &Policy, claims: &Claims) -> Result<(), Denial> {
    if claims::is_human(
        claims.sub_profile.as_deref(),
        &policy.identity.human_profiles,
    ) {
        return Ok(());
    }
    Err(Denial::HumanSubjectRequired {
        profile: claims.sub_profile.clone(),
    })
}

/// The current actor is one of `actors` (a token without `act` has none).
fn listed_actor(claims: &Claims, actors: &[String]) -> Result<(), Denial> {
    let current = claims.chain.first();
    if current.is_some_and(|c| actors.contains(&c.sub)) {
        return Ok(());
    }
    Err(Denial::RuleActorNotAllowed {
        actor: current.map(|c| c.sub.clone()),
    })
}

fn chain_depth(claims: &Claims, max: u32) -> Result<(), Denial> {
    let depth = claims.chain.len();
    if depth > max as usize {
        return Err(Denial::RuleChainTooDeep { depth, max });
    }
    Ok(())
}

/// Every required scope in the token (`scope_insufficient`), and left by every actor's
/// ceiling (`actor_scope_exceeded`, naming the first actor whose ceiling removes it).
fn scopes(
    policy: &Policy,
    claims: &Claims,
    effective: &[String],
    required: &[String],
) -> Result<(), Denial> {
    let missing: Vec<String> = required
        .iter()
        .filter(|s| !claims.scopes.contains(s))
        .cloned()
        .collect();
    if !missing.is_empty() {
        return Err(Denial::ScopeInsufficient { missing });
    }
    let Some(scope) = required.iter().find(|s| !effective.contains(s)) else {
        return Ok(());
    };
    let actors = policy.identity.actors.as_ref();
    let actor = claims
        .chain
        .iter()
        .find(|a| {
            actors
                .and_then(|m| m.get(&a.sub))
                .and_then(|c| c.as_ref())
                .is_some_and(|c| !c.contains(scope))
        })
        .map_or_else(String::new, |a| a.sub.clone());
    Err(Denial::ActorScopeExceeded {
        scope: scope.clone(),
        actor,
    })
}

/// Each `require.claims` entry: the claim (or one of its array items) has an allowed value.
fn claim_values<'r>(
    claims: &Claims,
    required: impl IntoIterator<Item = (&'r String, &'r Vec<serde_json::Value>)>,
) -> Result<(), Denial> {
    for (name, allowed) in required {
        let ok = match claims.raw.get(name) {
            None => false,
            Some(serde_json::Value::Array(items)) => items.iter().any(|v| allowed.contains(v)),
            Some(v) => allowed.contains(v),
        };
        if !ok {
            return Err(Denial::ClaimMismatch {
                claim: name.clone(),
            });
        }
    }
    Ok(())
}

/// `fresh_auth_s`: `auth_time` (else `iat`) within `max` seconds of now.
fn fresh_auth(claims: &Claims, now: UnixTime, skew: u64, max: u64) -> Result<(), Denial> {
    match claims.auth_time.or(claims.iat) {
        None => Err(Denial::StepUpRequired { age: None, max }),
        // An authentication time in the future (beyond skew) proves nothing about
        // freshness; it would otherwise stay "fresh" for the token's whole life.
        Some(t) if t > now.secs_f64() + skew as f64 => {
            Err(Denial::StepUpRequired { age: None, max })
        }
        Some(t) => {
            let age = now.secs_f64() - t;
            if age > max as f64 {
                return Err(Denial::StepUpRequired {
                    age: Some(age.floor()),
                    max,
                });
            }
            Ok(())
        }
    }
}
