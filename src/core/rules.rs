//! Rules: which rule a request falls under (step 1 of SPEC §4), and the rule's `require`
//! block (step 8, in the SPEC's order).

use crate::core::claims::{self, Claims};
use crate::core::config::{PathMatch, Policy, Rule};
use crate::core::reasons::Denial;
use crate::core::time::UnixTime;

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

pub(crate) fn check_requirements(
    policy: &Policy,
    rule: &Rule,
    claims: &Claims,
    effective: &[String],
    now: UnixTime,
    skew: u64,
) -> Result<(), Denial> {
    let req = &rule.require;
    let current = claims.chain.first();
    match (req.delegated, current) {
        (Some(true), None) => return Err(Denial::DelegationRequired),
        (Some(false), Some(_)) => return Err(Denial::DelegationForbidden),
        _ => {}
    }
    if req.human_subject
        && !claims::is_human(
            claims.sub_profile.as_deref(),
            &policy.identity.human_profiles,
        )
    {
        return Err(Denial::HumanSubjectRequired {
            profile: claims.sub_profile.clone(),
        });
    }
    if let Some(actors) = &req.actors {
        if !current.is_some_and(|c| actors.contains(&c.sub)) {
            return Err(Denial::RuleActorNotAllowed {
                actor: current.map(|c| c.sub.clone()),
            });
        }
    }
    if let Some(max) = req.max_chain_depth {
        if claims.chain.len() > max as usize {
            return Err(Denial::RuleChainTooDeep {
                depth: claims.chain.len(),
                max,
            });
        }
    }
    let missing: Vec<String> = req
        .scopes
        .iter()
        .filter(|s| !claims.scopes.contains(s))
        .cloned()
        .collect();
    if !missing.is_empty() {
        return Err(Denial::ScopeInsufficient { missing });
    }
    if let Some(scope) = req.scopes.iter().find(|s| !effective.contains(s)) {
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
        return Err(Denial::ActorScopeExceeded {
            scope: scope.clone(),
            actor,
        });
    }
    for (name, allowed) in &req.claims {
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
    if let Some(max) = req.fresh_auth_s {
        match claims.auth_time.or(claims.iat) {
            None => return Err(Denial::StepUpRequired { age: None, max }),
            // An authentication time in the future (beyond skew) proves nothing about
            // freshness; it would otherwise stay "fresh" for the token's whole life.
            Some(t) if t > now.secs_f64() + skew as f64 => {
                return Err(Denial::StepUpRequired { age: None, max })
            }
            Some(t) => {
                let age = now.secs_f64() - t;
                if age > max as f64 {
                    return Err(Denial::StepUpRequired {
                        age: Some(age.floor()),
                        max,
                    });
                }
            }
        }
    }
    Ok(())
}
