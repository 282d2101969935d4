//! Step 6 of SPEC §4: `jti`, subject, or any actor in the chain on a revocation list.

use crate::core::claims::Claims;
use crate::core::config::Policy;
use crate::core::reasons::{Denial, Revocation};

pub(crate) fn check(policy: &Policy, claims: &Claims) -> Result<(), Denial> {
    if claims
        .jti
        .as_ref()
        .is_some_and(|j| policy.revoked.jti.contains(j))
    {
        return Err(Denial::Revoked(Revocation::Jti));
    }
    if policy.revoked.subjects.contains(&claims.sub) {
        return Err(Denial::Revoked(Revocation::Subject));
    }
    if let Some(actor) = claims
        .chain
        .iter()
        .find(|a| policy.revoked.actors.contains(&a.sub))
    {
        return Err(Denial::Revoked(Revocation::Actor(actor.sub.clone())));
    }
    Ok(())
}
