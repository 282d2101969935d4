//! A verified token's standing under the policy: what step 5 (the chain) says of it, its
//! effective scopes (SPEC §3), and the identity headers it yields (SPEC §5, all but
//! `x-agent-rule`). None of it depends on the request or the time, only on the token's
//! claims and the policy, so a cache entry (the cache belongs to one policy) works it out
//! on its first decision and remembers it (`Verified::standing`); every later request with
//! that token reads it instead of checking the chain and the actors' ceilings again and
//! building the header values again. Revocation (step 6) is not remembered: SPEC §8 has it
//! run on every request, with the time checks, the binding and the rule's checks.
//!
//! Without a cache it is worked out on every decision, by the same function: one source for
//! each of these facts. A traced decision (explanations) also runs step 5's checks one by
//! one so that each is recorded; they are the same checks (`chain::check`).

use crate::core::chain;
use crate::core::claims::Claims;
use crate::core::config::Policy;
use crate::core::reasons::Denial;
use crate::core::trace::Recorder;
use std::rc::Rc;

#[derive(Debug)]
pub(crate) struct Standing {
    /// Step 5: depth, cycles, trust domains, the allowlist, `may_act`.
    pub chain: Result<(), Denial>,
    /// The token's scopes after every actor's ceiling.
    pub scopes: Vec<String>,
    /// `x-agent-subject` … `x-agent-issuer`, in the order SPEC §5 lists them.
    pub headers: Rc<[(&'static str, String)]>,
}

impl Standing {
    pub(crate) fn of(policy: &Policy, claims: &Claims) -> Self {
        let scopes = chain::effective_scopes(policy, claims);
        Standing {
            chain: chain::check(policy, claims, &mut Recorder::off()),
            headers: identity_headers(claims, &scopes).into(),
            scopes,
        }
    }
}

/// SPEC §5: who the upstream is told is calling (`x-agent-rule` is the rule's).
fn identity_headers(claims: &Claims, effective: &[String]) -> Vec<(&'static str, String)> {
    let mut headers = Vec::with_capacity(6);
    headers.push(("x-agent-subject", claims.sub.clone()));
    if let Some(profile) = &claims.sub_profile {
        headers.push(("x-agent-subject-profile", profile.clone()));
    }
    if let Some(current) = claims.chain.first() {
        headers.push(("x-agent-actor", current.sub.clone()));
        let chain: Vec<&str> = claims.chain.iter().map(|a| a.sub.as_str()).collect();
        headers.push(("x-agent-chain", chain.join(",")));
    }
    headers.push(("x-agent-scopes", effective.join(" ")));
    headers.push(("x-agent-issuer", claims.iss.clone()));
    headers
}
