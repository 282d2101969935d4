//! The pipeline of SPEC §1, in the order of SPEC §4: the first failing check is the
//! reason, so every request has exactly one right answer. Each step lives in the module
//! named after it; this file only calls them in order.
//!
//! Everything comes in as arguments — policy, keys, crypto backend, request, time — and a
//! `Decision` comes out. No clock, no I/O, no globals.

use crate::core::audit::{record_identity, trace_id, truncate, AuditRecord, BindingOutcome};
use crate::core::config::{OnNoMatch, Policy, Rule};
use crate::core::decision::{deny_response, is_identity_header, Decision};
use crate::core::keys::RemoteKeys;
use crate::core::limits::{MAX_AUDIT_HEADER_VALUE, MAX_AUDIT_REQUEST_FIELD};
use crate::core::reasons::{Denial, Reason};
use crate::core::request::Request;
use crate::core::time::UnixTime;
use crate::core::token::b64;
use crate::core::token::extract::find_tokens;
use crate::core::verification::cache::TokenCache;
use crate::core::verification::crypto;
use crate::core::{binding, chain, claims, revocation, rules, verification};
use jsonwebtoken::crypto::CryptoProvider;

/// What the core needs besides the request.
#[derive(Clone, Copy)]
pub struct Context<'a> {
    pub policy: &'a Policy,
    pub remote_keys: &'a dyn RemoteKeys,
    pub crypto: &'a CryptoProvider,
    /// The verified-token cache of SPEC §8, for hosts that decide many requests under one
    /// policy (Envoy). `None` verifies every token (CLI, playground, tests).
    pub cache: Option<&'a TokenCache>,
}

struct Allow {
    reason: Reason,
    identity_headers: Vec<(String, String)>,
}

/// Decides one request.
pub fn decide(ctx: Context<'_>, request: &Request, now: UnixTime) -> Decision {
    let strip_headers: Vec<String> = request
        .headers
        .iter()
        .filter(|(n, _)| is_identity_header(n))
        .map(|(n, _)| n.clone())
        .collect();
    let mut audit = AuditRecord {
        ts: now.rfc3339(),
        decision: "deny",
        reason: Reason::RouteDenied,
        status: None,
        enforced: true,
        rule: None,
        provider: None,
        iss: None,
        sub: None,
        sub_profile: None,
        actor: None,
        chain: None,
        depth: None,
        scopes: None,
        kid: None,
        alg: None,
        jti: None,
        token_id: None,
        method: truncate(&request.method, MAX_AUDIT_REQUEST_FIELD),
        path: truncate(request.path_only(), MAX_AUDIT_REQUEST_FIELD),
        authority: request
            .authority
            .as_deref()
            .map(|a| truncate(a, MAX_AUDIT_REQUEST_FIELD)),
        request_id: request
            .single_header("x-request-id")
            .map(|v| truncate(v, MAX_AUDIT_HEADER_VALUE)),
        trace_id: request.single_header("traceparent").and_then(trace_id),
        peer: request.peer.as_ref().and_then(|p| p.uri_san.clone()),
        binding: BindingOutcome::NotChecked,
        eval_us: None,
        detail: None,
    };
    let mut rule_for_response: Option<&Rule> = None;
    let outcome = evaluate(ctx, request, now, &mut audit, &mut rule_for_response);
    // SPEC §11: the matched rule's mode, else (no rule yet) the policy's.
    let enforced = rule_for_response
        .map_or(ctx.policy.mode, |rule| rule.mode)
        .is_enforced();
    audit.enforced = enforced;
    match outcome {
        Ok(allow) => {
            audit.decision = "allow";
            audit.reason = allow.reason;
            Decision {
                allowed: true,
                reason: allow.reason,
                denial: None,
                strip_headers,
                identity_headers: allow.identity_headers,
                response: None,
                enforced,
                audit,
            }
        }
        Err(denial) => {
            let reason = denial.reason();
            let detail = denial.detail();
            audit.reason = reason;
            audit.status = reason.status();
            audit.detail = Some(detail.clone());
            let (scopes, acr) = match rule_for_response {
                Some(rule) => (rule.require.scopes.as_slice(), acr_values(rule)),
                None => (&[][..], None),
            };
            let response =
                deny_response(&denial, &detail, request.is_grpc(), scopes, acr.as_deref());
            Decision {
                allowed: false,
                reason,
                denial: Some(denial),
                strip_headers,
                identity_headers: Vec::new(),
                response: Some(response),
                enforced,
                audit,
            }
        }
    }
}

fn acr_values(rule: &Rule) -> Option<Vec<String>> {
    rule.require.claims.get("acr").map(|vals| {
        vals.iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect()
    })
}

fn evaluate<'p>(
    ctx: Context<'p>,
    request: &Request,
    now: UnixTime,
    audit: &mut AuditRecord,
    rule_out: &mut Option<&'p Rule>,
) -> Result<Allow, Denial> {
    let policy = ctx.policy;
    // 1. rule
    let path = request.path_only();
    if !crate::core::request::path::is_normalized(path) {
        return Err(Denial::PathNotNormalized);
    }
    let Some(rule) = policy
        .rules
        .iter()
        .find(|r| rules::matches(r, &request.method, path))
    else {
        return match policy.on_no_match {
            OnNoMatch::Deny => Err(Denial::RouteDenied),
            OnNoMatch::Allow => Ok(Allow {
                reason: Reason::AllowedAnonymous,
                identity_headers: Vec::new(),
            }),
        };
    };
    *rule_out = Some(rule);
    audit.rule = Some(rule.id.clone());

    // 2. token
    let found = find_tokens(policy, request);
    let token = match found.as_slice() {
        [] if rule.allow_anonymous => {
            return Ok(Allow {
                reason: Reason::AllowedAnonymous,
                identity_headers: Vec::new(),
            })
        }
        [] => return Err(Denial::TokenMissing),
        [one] => one,
        many => return Err(Denial::TokenRepeated { count: many.len() }),
    };
    let token_hash = crypto::sha256(token.token.as_bytes());
    audit.token_id = Some(b64::hex(token_hash.get(..8).unwrap_or_default()));
    let verified = verification::verify(ctx, rule, token, &token_hash, now, audit)?;
    let provider = verified.provider;

    // 4. claim types (read in `verify`, right after the signature), audience, time
    let claims = &verified.token.claims;
    let effective = chain::effective_scopes(policy, claims);
    record_identity(audit, claims, &effective);
    if !claims.aud.iter().any(|a| provider.audiences.contains(a)) {
        return Err(Denial::AudienceMismatch);
    }
    claims::check_time(provider, claims, now)?;

    // 5. chain
    chain::check(policy, claims)?;

    // 6. revocation
    revocation::check(policy, claims)?;

    // 7. binding
    binding::check(policy, claims, request, &mut audit.binding)?;

    // 8. rule requirements
    rules::check_requirements(policy, rule, claims, &effective, now, provider.clock_skew_s)?;

    let mut headers = vec![("x-agent-subject".to_owned(), claims.sub.clone())];
    if let Some(profile) = &claims.sub_profile {
        headers.push(("x-agent-subject-profile".to_owned(), profile.clone()));
    }
    if let Some(current) = claims.chain.first() {
        headers.push(("x-agent-actor".to_owned(), current.sub.clone()));
        let chain: Vec<&str> = claims.chain.iter().map(|a| a.sub.as_str()).collect();
        headers.push(("x-agent-chain".to_owned(), chain.join(",")));
    }
    headers.push(("x-agent-scopes".to_owned(), effective.join(" ")));
    headers.push(("x-agent-issuer".to_owned(), claims.iss.clone()));
    headers.push(("x-agent-rule".to_owned(), rule.id.clone()));
    Ok(Allow {
        reason: Reason::Allowed,
        identity_headers: headers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::keys::NoRemoteKeys;

    #[test]
    fn caller_controlled_audit_fields_are_bounded() {
        let policy = Policy::from_json(r#"{"rules": []}"#).unwrap();
        let long = format!("/{}", "a".repeat(10_000));
        let request = Request {
            method: "G".repeat(5000),
            path: long.clone(),
            authority: Some("h".repeat(5000)),
            headers: vec![("x-request-id".into(), "r".repeat(5000))],
            peer: None,
        };
        let ctx = Context {
            policy: &policy,
            remote_keys: &NoRemoteKeys,
            crypto: &crate::core::verification::crypto::RING,
            cache: None,
        };
        let d = decide(ctx, &request, UnixTime::from_secs(0));
        assert_eq!(d.reason, Reason::RouteDenied);
        assert_eq!(d.audit.path.len(), MAX_AUDIT_REQUEST_FIELD);
        assert_eq!(d.audit.method.len(), MAX_AUDIT_REQUEST_FIELD);
        assert_eq!(
            d.audit.authority.as_ref().map(String::len),
            Some(MAX_AUDIT_REQUEST_FIELD)
        );
        assert_eq!(
            d.audit.request_id.as_ref().map(String::len),
            Some(MAX_AUDIT_HEADER_VALUE)
        );
        assert!(long.starts_with(&d.audit.path));
    }
}
