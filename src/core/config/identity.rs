//! `identity` → `Identity`: trust domains, human profiles, chain depth, actor allowlist.

use super::raw::{RawActor, RawIdentity};
use super::{clean, err, non_empty_list, range, scope_ok, ConfigError, ConfigProblem, Identity};
use crate::core::chain::spiffe;
use crate::core::limits::MAX_CONFIGURABLE_CHAIN_DEPTH;
use std::collections::{BTreeMap, BTreeSet};

/// An absent `identity` is every default (`Identity::default`).
pub(super) fn build_identity(raw: Option<RawIdentity>) -> Result<Identity, ConfigError> {
    let Some(raw) = raw else {
        return Ok(Identity::default());
    };
    let default = Identity::default();
    let trust_domains = match raw.trust_domains {
        None => default.trust_domains,
        Some(list) => Some(trust_domains(list)?),
    };
    let human_profiles = raw.human_profiles.unwrap_or(default.human_profiles);
    check_human_profiles(&human_profiles)?;
    let max_chain_depth = range(
        "identity.max_chain_depth",
        u64::from(raw.max_chain_depth.unwrap_or(default.max_chain_depth)),
        0,
        u64::from(MAX_CONFIGURABLE_CHAIN_DEPTH),
    )?;
    let actors = match raw.actors {
        None => default.actors,
        Some(map) => Some(actors(map, trust_domains.as_deref())?),
    };
    Ok(Identity {
        trust_domains,
        human_profiles,
        // In range, so it fits.
        max_chain_depth: u32::try_from(max_chain_depth).unwrap_or(MAX_CONFIGURABLE_CHAIN_DEPTH),
        actors,
    })
}

fn trust_domains(list: Vec<String>) -> Result<Vec<String>, ConfigError> {
    non_empty_list("identity.trust_domains", &list)?;
    for (i, td) in list.iter().enumerate() {
        if !spiffe::is_trust_domain(td) {
            return Err(err(
                format!("identity.trust_domains[{i}]"),
                ConfigProblem::BadTrustDomain(td.clone()),
            ));
        }
    }
    Ok(list)
}

fn check_human_profiles(profiles: &[String]) -> Result<(), ConfigError> {
    for (i, h) in profiles.iter().enumerate() {
        // One profile name each: `sub_profile` values are split on spaces.
        if !clean(h) || h.contains(' ') {
            return Err(err(
                format!("identity.human_profiles[{i}]"),
                ConfigProblem::NotClean(h.clone()),
            ));
        }
    }
    Ok(())
}

/// The allowlist: each actor inside the trust domains (when pinned), with its ceiling.
fn actors(
    map: BTreeMap<String, RawActor>,
    trust_domains: Option<&[String]>,
) -> Result<BTreeMap<String, Option<BTreeSet<String>>>, ConfigError> {
    let mut out = BTreeMap::new();
    for (id, actor) in map {
        let path = format!("identity.actors.{id}");
        if trust_domains.is_some_and(|tds| !spiffe::in_trust_domains(&id, tds)) {
            return Err(err(path, ConfigProblem::ActorOutsideTrustDomains(id)));
        }
        let ceiling = match actor.max_scopes {
            None => None,
            Some(scopes) => Some(ceiling(&path, scopes)?),
        };
        out.insert(id, ceiling);
    }
    Ok(out)
}

/// `max_scopes`: the most this actor's scopes can be, whatever the token says.
fn ceiling(path: &str, scopes: Vec<String>) -> Result<BTreeSet<String>, ConfigError> {
    for (i, s) in scopes.iter().enumerate() {
        if !scope_ok(s) {
            return Err(err(
                format!("{path}.max_scopes[{i}]"),
                ConfigProblem::BadScope(s.clone()),
            ));
        }
    }
    Ok(scopes.into_iter().collect())
}
