//! Step 5 of SPEC §4 and SPEC §3: the delegation chain (depth, cycles, trust domains, the
//! actor allowlist, `may_act`) and the effective scopes every actor's ceiling leaves.

pub(crate) mod spiffe;

use crate::core::claims::Claims;
use crate::core::config::Policy;
use crate::core::reasons::Denial;
use std::collections::HashSet;

/// The token's scopes ∩ the `max_scopes` of every actor in the chain with a ceiling.
pub(crate) fn effective_scopes(policy: &Policy, claims: &Claims) -> Vec<String> {
    let ceilings: Vec<_> = match &policy.identity.actors {
        None => Vec::new(),
        Some(actors) => claims
            .chain
            .iter()
            .filter_map(|a| actors.get(&a.sub).and_then(|c| c.as_ref()))
            .collect(),
    };
    claims
        .scopes
        .iter()
        .filter(|s| ceilings.iter().all(|c| c.contains(*s)))
        .cloned()
        .collect()
}

pub(crate) fn check(policy: &Policy, claims: &Claims) -> Result<(), Denial> {
    let identity = &policy.identity;
    let depth = claims.chain.len();
    if depth > identity.max_chain_depth as usize {
        return Err(Denial::ChainTooDeep {
            depth,
            max: identity.max_chain_depth,
        });
    }
    let mut seen: HashSet<&str> = HashSet::with_capacity(depth + 1);
    seen.insert(claims.sub.as_str());
    for actor in &claims.chain {
        if !seen.insert(actor.sub.as_str()) {
            return Err(Denial::ActorCycle {
                identity: actor.sub.clone(),
            });
        }
    }
    if let Some(tds) = &identity.trust_domains {
        if spiffe::claims_to_be_spiffe(&claims.sub) && !spiffe::in_trust_domains(&claims.sub, tds) {
            return Err(Denial::TrustDomainMismatch {
                identity: claims.sub.clone(),
            });
        }
        if let Some(actor) = claims
            .chain
            .iter()
            .find(|a| !spiffe::in_trust_domains(&a.sub, tds))
        {
            return Err(Denial::TrustDomainMismatch {
                identity: actor.sub.clone(),
            });
        }
    }
    if let Some(allowed) = &identity.actors {
        if let Some(actor) = claims.chain.iter().find(|a| !allowed.contains_key(&a.sub)) {
            return Err(Denial::ActorNotAllowed {
                actor: actor.sub.clone(),
            });
        }
    }
    if let (Some(may_act), Some(current)) = (&claims.may_act, claims.chain.first()) {
        let actor_iss = current.iss.as_deref().unwrap_or(&claims.iss);
        if may_act.sub != current.sub || may_act.iss.as_deref().is_some_and(|i| i != actor_iss) {
            return Err(Denial::MayActViolation {
                may_act: may_act.sub.clone(),
                actor: current.sub.clone(),
            });
        }
    }
    Ok(())
}
