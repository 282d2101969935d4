//! `rules[i]` → `Rule`, one part per step: id, match, providers, require.

use super::raw::{RawMatch, RawRequire, RawRule};
use super::{
    clean, err, non_empty_list, range, scope_ok, ConfigError, ConfigProblem, Identity, JsonPath,
    PathMatch, Provider, Require, Rule,
};
use crate::core::chain::spiffe;
use crate::core::limits::MAX_CONFIGURABLE_CHAIN_DEPTH;

/// Rule ids go into the `x-agent-rule` header, audit records and metric names.
const MAX_RULE_ID_BYTES: usize = 128;
/// A year: an `auth_time` older than that is no freshness requirement at all.
const MAX_FRESH_AUTH_S: u64 = 365 * 86_400;

pub(super) fn build_rule(
    i: usize,
    r: RawRule,
    providers: &[Provider],
    identity: &Identity,
    has_mcp: bool,
) -> Result<Rule, ConfigError> {
    let at = JsonPath(format!("rules[{i}]"));
    check_id(&at, &r.id)?;
    let mut matcher_raw = r.matcher;
    let mcp = matcher_raw
        .mcp
        .take()
        .map(|m| crate::core::mcp::config::build_match(&at.0, m, has_mcp))
        .transpose()?;
    // SPEC §9: a rule with `mcp` and no path matches every endpoint (MCP messages arrive
    // only on endpoints, so the prefix `/` says exactly that).
    if mcp.is_some() && matcher_raw.path_prefix.is_none() && matcher_raw.path_exact.is_none() {
        matcher_raw.path_prefix = Some("/".to_owned());
    }
    let (path, methods) = matcher(&at, matcher_raw)?;
    let allow_anonymous = r.allow_anonymous.unwrap_or(false);
    let provider_indices = match r.providers {
        None => (0..providers.len()).collect(),
        Some(names) => named_providers(&at, &names, providers)?,
    };
    if !allow_anonymous && provider_indices.is_empty() {
        return Err(err(at.to_string(), ConfigProblem::NoProviders));
    }
    let require = match r.require {
        None => Require::default(),
        Some(_) if allow_anonymous => {
            return Err(err(
                at.field("require"),
                ConfigProblem::AnonymousWithRequire,
            ))
        }
        Some(req) => require(&at, req, identity, has_mcp)?,
    };
    Ok(Rule {
        id: r.id.into(),
        path,
        methods,
        allow_anonymous,
        providers: provider_indices,
        require,
        // Set by the caller: the rule's own `mode`, else the policy's (SPEC §11).
        mode: super::Mode::Enforce,
        mcp,
    })
}

fn check_id(at: &JsonPath, id: &str) -> Result<(), ConfigError> {
    let ok = (1..=MAX_RULE_ID_BYTES).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(err(at.field("id"), ConfigProblem::BadRuleId(id.to_owned())))
    }
}

// ---------------------------------------------------------------------------------------
// Match.

fn matcher(at: &JsonPath, m: RawMatch) -> Result<(PathMatch, Option<Vec<String>>), ConfigError> {
    let (path, field) = match (m.path_prefix, m.path_exact) {
        (Some(p), None) => (PathMatch::Prefix(p), "match.path_prefix"),
        (None, Some(p)) => (PathMatch::Exact(p), "match.path_exact"),
        _ => return Err(err(at.field("match"), ConfigProblem::PathMatchCount)),
    };
    let (PathMatch::Prefix(p) | PathMatch::Exact(p)) = &path;
    if !p.starts_with('/') {
        return Err(err(
            at.field(field),
            ConfigProblem::PathNotAbsolute(p.clone()),
        ));
    }
    // A rule path a normalized request path can never equal would silently match nothing
    // and let requests fall through to a weaker rule.
    if p.contains(['?', '#']) || !crate::core::request::path::is_normalized(p) {
        return Err(err(
            at.field(field),
            ConfigProblem::PathNeverMatches(p.clone()),
        ));
    }
    if let Some(methods) = &m.methods {
        check_methods(at, methods)?;
    }
    Ok((path, m.methods))
}

fn check_methods(at: &JsonPath, methods: &[String]) -> Result<(), ConfigError> {
    non_empty_list(&at.field("match.methods"), methods)?;
    for (j, m) in methods.iter().enumerate() {
        let token = !m.is_empty()
            && m.bytes()
                .all(|b| b.is_ascii_uppercase() || b == b'-' || b == b'_');
        if !token {
            return Err(err(
                at.item("match.methods", j),
                ConfigProblem::BadMethod(m.clone()),
            ));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Providers.

/// `providers` as written: indices into the providers, each name one that exists.
fn named_providers(
    at: &JsonPath,
    names: &[String],
    providers: &[Provider],
) -> Result<Vec<usize>, ConfigError> {
    non_empty_list(&at.field("providers"), names)?;
    names
        .iter()
        .enumerate()
        .map(|(j, n)| {
            providers
                .iter()
                .position(|p| *p.name == **n)
                .ok_or_else(|| {
                    err(
                        at.item("providers", j),
                        ConfigProblem::UnknownProvider(n.clone()),
                    )
                })
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Require.

fn require(
    at: &JsonPath,
    req: RawRequire,
    identity: &Identity,
    has_mcp: bool,
) -> Result<Require, ConfigError> {
    let scopes = req.scopes.unwrap_or_default();
    for (j, s) in scopes.iter().enumerate() {
        if !scope_ok(s) {
            return Err(err(
                at.item("require.scopes", j),
                ConfigProblem::BadScope(s.clone()),
            ));
        }
    }
    check_delegation(at, req.delegated, req.actors.is_some(), req.max_chain_depth)?;
    if let Some(actors) = &req.actors {
        check_actors(at, actors, identity)?;
    }
    if let Some(d) = req.max_chain_depth {
        range(
            &at.field("require.max_chain_depth"),
            u64::from(d),
            0,
            u64::from(MAX_CONFIGURABLE_CHAIN_DEPTH),
        )?;
    }
    if let Some(f) = req.fresh_auth_s {
        range(&at.field("require.fresh_auth_s"), f, 0, MAX_FRESH_AUTH_S)?;
    }
    let claims = req.claims.unwrap_or_default();
    for (name, values) in &claims {
        non_empty_list(&at.field(&format!("require.claims.{name}")), values)?;
    }
    let arguments = match req.arguments {
        None => Vec::new(),
        Some(raw) => crate::core::mcp::config::build_arguments(&at.0, raw, has_mcp)?,
    };
    Ok(Require {
        scopes,
        human_subject: req.human_subject.unwrap_or(false),
        delegated: req.delegated,
        actors: req.actors,
        max_chain_depth: req.max_chain_depth,
        fresh_auth_s: req.fresh_auth_s,
        claims,
        arguments,
    })
}

/// A rule no token can pass is a mistake, not a closed door: refuse the contradictions.
fn check_delegation(
    at: &JsonPath,
    delegated: Option<bool>,
    has_actors: bool,
    max_chain_depth: Option<u32>,
) -> Result<(), ConfigError> {
    if delegated == Some(false) && (has_actors || max_chain_depth.is_some()) {
        return Err(err(
            at.field("require.delegated"),
            ConfigProblem::DelegationContradiction,
        ));
    }
    if delegated == Some(true) && max_chain_depth == Some(0) {
        return Err(err(
            at.field("require.max_chain_depth"),
            ConfigProblem::DelegationContradiction,
        ));
    }
    Ok(())
}

/// Each actor clean, and one the identity section would let through: otherwise the rule
/// could never pass.
fn check_actors(at: &JsonPath, actors: &[String], identity: &Identity) -> Result<(), ConfigError> {
    non_empty_list(&at.field("require.actors"), actors)?;
    for (j, a) in actors.iter().enumerate() {
        let path = at.item("require.actors", j);
        if !clean(a) {
            return Err(err(path, ConfigProblem::NotClean(a.clone())));
        }
        let outside = identity
            .trust_domains
            .as_ref()
            .is_some_and(|tds| !spiffe::in_trust_domains(a, tds));
        if outside {
            return Err(err(
                path,
                ConfigProblem::ActorOutsideTrustDomains(a.clone()),
            ));
        }
        if identity.actors.as_ref().is_some_and(|m| !m.contains_key(a)) {
            return Err(err(path, ConfigProblem::ActorNotInAllowlist(a.clone())));
        }
    }
    Ok(())
}
