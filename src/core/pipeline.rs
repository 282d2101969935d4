//! The pipeline of SPEC §1, in the order of SPEC §4: the first failing check is the
//! reason, so every request has exactly one right answer. Each step lives in the module
//! named after it; this file only calls them in order.
//!
//! Everything comes in as arguments — policy, keys, crypto backend, request, time — and a
//! `Decision` comes out. No clock, no I/O, no globals.

use crate::core::audit::{record_identity, trace_id, truncate, AuditRecord, BindingOutcome};
use crate::core::claims::Claims;
use crate::core::config::{OnNoMatch, Policy, Rule};
use crate::core::decision::{deny_response, is_identity_header, Decision, Verdict};
use crate::core::keys::RemoteKeys;
use crate::core::limits::{MAX_AUDIT_HEADER_VALUE, MAX_AUDIT_REQUEST_FIELD};
use crate::core::reasons::{Denial, Reason};
use crate::core::request::Request;
use crate::core::time::UnixTime;
use crate::core::token::extract::{find_tokens, Found};
use crate::core::trace::{Recorder, Step};
use crate::core::verification::backend::SignatureVerifier;
use crate::core::verification::cache::TokenCache;
use crate::core::verification::shared::SharedTokens;
use crate::core::{binding, chain, claims, revocation, rules, verification};

/// What the core needs besides the request.
#[derive(Clone, Copy)]
pub struct Context<'a> {
    pub policy: &'a Policy,
    pub remote_keys: &'a dyn RemoteKeys,
    /// The signature backend (SPEC §13): `&RING` for ring, or a host's own.
    pub crypto: &'a dyn SignatureVerifier,
    /// The verified-token cache of SPEC §8, for hosts that decide many requests under one
    /// policy (Envoy). `None` verifies every token (CLI, playground, tests).
    pub cache: Option<&'a TokenCache>,
    /// Verified tokens shared with other worker VMs (SPEC §8; Envoy shared data). `None`
    /// elsewhere.
    pub shared: Option<&'a dyn SharedTokens>,
}

/// Decides one request.
pub fn decide(ctx: Context<'_>, request: &Request, now: UnixTime) -> Decision {
    decide_with(ctx, request, now, Recorder::off())
}

/// Decides one request and records every check it runs, in order (`Decision::trace`), for
/// explanations. The decision is the one `decide` makes.
pub fn decide_traced(ctx: Context<'_>, request: &Request, now: UnixTime) -> Decision {
    decide_with(ctx, request, now, Recorder::on())
}

fn decide_with(ctx: Context<'_>, request: &Request, now: UnixTime, mut t: Recorder) -> Decision {
    let strip_headers: Vec<String> = request
        .headers
        .iter()
        .filter(|(n, _)| is_identity_header(n))
        .map(|(n, _)| n.clone())
        .collect();
    let mut audit = audit_of_request(request, now);
    let mut rule_for_response: Option<&Rule> = None;
    let outcome = evaluate(
        ctx,
        request,
        now,
        &mut audit,
        &mut rule_for_response,
        &mut t,
    );
    // SPEC §11: the matched rule's mode, else (no rule yet) the policy's.
    let enforced = rule_for_response
        .map_or(ctx.policy.mode, |rule| rule.mode)
        .is_enforced();
    audit.enforced = enforced;
    let verdict = match outcome {
        Ok(verdict) => {
            audit.decision = "allow";
            audit.reason = verdict.reason();
            verdict
        }
        Err(denial) => deny(denial, request, rule_for_response, &mut audit),
    };
    Decision {
        verdict,
        strip_headers,
        enforced,
        audit,
        trace: t.finish(),
    }
}

/// The audit record before any check: what the request itself says (bounded).
fn audit_of_request(request: &Request, now: UnixTime) -> AuditRecord {
    AuditRecord {
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
    }
}

/// The deny verdict: the reply (challenge from the matched rule, if any) and the audit.
fn deny(
    denial: Denial,
    request: &Request,
    rule: Option<&Rule>,
    audit: &mut AuditRecord,
) -> Verdict {
    let reason = denial.reason();
    let detail = denial.detail();
    audit.reason = reason;
    audit.status = reason.status();
    let (scopes, acr) = match rule {
        Some(rule) => (rule.require.scopes.as_slice(), acr_values(rule)),
        None => (&[][..], None),
    };
    let response = deny_response(&denial, &detail, request.is_grpc(), scopes, acr.as_deref());
    audit.detail = Some(detail);
    Verdict::Deny { denial, response }
}

fn acr_values(rule: &Rule) -> Option<Vec<String>> {
    rule.require.claims.get("acr").map(|vals| {
        vals.iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect()
    })
}

/// Step 1: the rule for this method and path, or the verdict when none matches.
fn route<'p>(
    policy: &'p Policy,
    request: &Request,
    t: &mut Recorder,
) -> Result<Result<&'p Rule, Verdict>, Denial> {
    let path = request.path_only();
    if !crate::core::request::path::is_normalized(path) {
        return Err(t.fail(Step::Route, Denial::PathNotNormalized));
    }
    match policy
        .rules
        .iter()
        .find(|r| rules::matches(r, &request.method, path))
    {
        Some(rule) => {
            t.pass(Step::Route);
            Ok(Ok(rule))
        }
        None => match policy.on_no_match {
            OnNoMatch::Deny => Err(t.fail(Step::Route, Denial::RouteDenied)),
            OnNoMatch::Allow => {
                t.pass_noted(Step::Route, "no rule matched; on_no_match is allow");
                Ok(Err(Verdict::AllowAnonymous))
            }
        },
    }
}

/// Step 2 (presence): the one token, or the verdict for a request without one.
fn one_token<'r>(
    policy: &Policy,
    rule: &Rule,
    request: &'r Request,
    t: &mut Recorder,
) -> Result<Result<Found<'r>, Verdict>, Denial> {
    let mut found = find_tokens(policy, request);
    let count = found.len();
    match found.pop() {
        None if rule.allow_anonymous => {
            t.note(Step::Route, "rule allows anonymous requests");
            t.not_applicable(Step::TokenPresent, "no token; the rule allows anonymous");
            Ok(Err(Verdict::AllowAnonymous))
        }
        None => Err(t.fail(Step::TokenPresent, Denial::TokenMissing)),
        Some(one) if count == 1 => {
            t.pass(Step::TokenPresent);
            t.pass(Step::TokenSingle);
            Ok(Ok(one))
        }
        Some(_) => {
            t.pass(Step::TokenPresent);
            Err(t.fail(Step::TokenSingle, Denial::TokenRepeated { count }))
        }
    }
}

fn evaluate<'p>(
    ctx: Context<'p>,
    request: &Request,
    now: UnixTime,
    audit: &mut AuditRecord,
    rule_out: &mut Option<&'p Rule>,
    t: &mut Recorder,
) -> Result<Verdict, Denial> {
    let policy = ctx.policy;
    // 1. rule
    let rule = match route(policy, request, t)? {
        Ok(rule) => rule,
        Err(verdict) => return Ok(verdict),
    };
    *rule_out = Some(rule);
    audit.rule = Some(rule.id.clone());

    // 2. token; 3. verification (and the claim types of 4)
    let token = match one_token(policy, rule, request, t)? {
        Ok(token) => token,
        Err(verdict) => return Ok(verdict),
    };
    let verified = verification::verify(ctx, rule, &token, now, audit, t)?;
    let provider = verified.provider;

    // 4. audience, time. The effective scopes are computed here, once, and kept in the
    // audit record; the requirements, the headers and explanations read them there.
    let claims = &verified.token.claims;
    record_identity(audit, claims, chain::effective_scopes(policy, claims));
    let effective = audit.scopes.as_deref().unwrap_or_default();
    let audience_ok = claims.aud.iter().any(|a| provider.audiences.contains(a));
    t.check(
        Step::ClaimsAud,
        if audience_ok {
            Ok(())
        } else {
            Err(Denial::AudienceMismatch)
        },
    )?;
    claims::check_time(provider, claims, now, t)?;

    // 5. chain; 6. revocation; 7. binding; 8. rule requirements
    chain::check(policy, claims, t)?;
    t.check(Step::Revocation, revocation::check(policy, claims))?;
    binding::check(policy, claims, request, &mut audit.binding, t)?;
    rules::check_requirements(
        policy,
        rule,
        claims,
        effective,
        now,
        provider.clock_skew_s,
        t,
    )?;

    Ok(Verdict::Allow {
        identity_headers: identity_headers(claims, effective, rule),
    })
}

/// SPEC §5: who the upstream is told is calling.
fn identity_headers(claims: &Claims, effective: &[String], rule: &Rule) -> Vec<(String, String)> {
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
    headers
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
            shared: None,
        };
        let d = decide(ctx, &request, UnixTime::from_secs(0));
        assert_eq!(d.reason(), Reason::RouteDenied);
        assert!(d.trace.is_none(), "decide records nothing");
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
