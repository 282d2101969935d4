//! Step 5 of SPEC §4 and SPEC §3: the delegation chain (depth, cycles, trust domains, the
//! actor allowlist, `may_act`) and the effective scopes every actor's ceiling leaves.

pub(crate) mod spiffe;

use crate::core::claims::Claims;
use crate::core::config::Policy;
use crate::core::reasons::Denial;
use crate::core::trace::{Recorder, Step};
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

/// Step 5, in SPEC order: depth, cycles, trust domains, the allowlist, `may_act`.
pub(crate) fn check(policy: &Policy, claims: &Claims, t: &mut Recorder) -> Result<(), Denial> {
    let identity = &policy.identity;
    t.check(Step::ChainDepth, depth(claims, identity.max_chain_depth))?;
    t.check(Step::ChainCycle, no_cycle(claims))?;
    match &identity.trust_domains {
        None => t.not_applicable(Step::ChainTrustDomain, "no identity.trust_domains"),
        Some(tds) => t.check(Step::ChainTrustDomain, in_trust_domains(claims, tds))?,
    }
    match &identity.actors {
        None => t.not_applicable(Step::ChainAllowlist, "no identity.actors allowlist"),
        Some(allowed) => t.check(
            Step::ChainAllowlist,
            match claims.chain.iter().find(|a| !allowed.contains_key(&a.sub)) {
                Some(actor) => Err(Denial::ActorNotAllowed {
                    actor: actor.sub.clone(),
                }),
                None => Ok(()),
            },
        )?,
    }
    t.check(Step::ChainMayAct, may_act_names_current(claims))
}

fn depth(claims: &Claims, max: u32) -> Result<(), Denial> {
    let depth = claims.chain.len();
    if depth > max as usize {
        return Err(Denial::ChainTooDeep { depth, max });
    }
    Ok(())
}

/// No identity twice in subject + chain.
fn no_cycle(claims: &Claims) -> Result<(), Denial> {
    let mut seen: HashSet<&str> = HashSet::with_capacity(claims.chain.len() + 1);
    seen.insert(claims.sub.as_str());
    match claims.chain.iter().find(|a| !seen.insert(a.sub.as_str())) {
        Some(actor) => Err(Denial::ActorCycle {
            identity: actor.sub.clone(),
        }),
        None => Ok(()),
    }
}

/// A SPIFFE subject, and every actor, in one of `tds`.
fn in_trust_domains(claims: &Claims, tds: &[String]) -> Result<(), Denial> {
    if spiffe::claims_to_be_spiffe(&claims.sub) && !spiffe::in_trust_domains(&claims.sub, tds) {
        return Err(Denial::TrustDomainMismatch {
            identity: claims.sub.clone(),
        });
    }
    match claims
        .chain
        .iter()
        .find(|a| !spiffe::in_trust_domains(&a.sub, tds))
    {
        Some(actor) => Err(Denial::TrustDomainMismatch {
            identity: actor.sub.clone(),
        }),
        None => Ok(()),
    }
}

/// RFC 8693 §4.4: `may_act`, when present with an `act`, names the current actor.
fn may_act_names_current(claims: &Claims) -> Result<(), Denial> {
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
