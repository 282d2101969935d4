//! The pipeline of SPEC §1, in the order of SPEC §4: the first failing check is the
//! reason, so every request has exactly one right answer. Each step lives in the module
//! named after it; this file only calls them in order.
//!
//! Everything comes in as arguments — policy, keys, crypto backend, request, time — and a
//! `Decision` comes out. No clock, no I/O, no globals.

use crate::core::audit::{AuditFacts, Identity};
use crate::core::config::{OnNoMatch, Policy, Rule, RuleId};
use crate::core::decision::{
    deny_response, is_identity_header, Decision, IdentityHeaders, Verdict,
};
use crate::core::dpop::{self, ReplayWindow};
use crate::core::keys::RemoteKeys;
use crate::core::mcp::{self, McpFacts};
use crate::core::reasons::Denial;
use crate::core::request::Request;
use crate::core::standing::Standing;
use crate::core::time::UnixTime;
use crate::core::token::extract::{find_tokens, Found};
use crate::core::trace::{Recorder, Step};
use crate::core::verification::backend::SignatureVerifier;
use crate::core::verification::cache::TokenCache;
use crate::core::verification::shared::SharedTokens;
use crate::core::verification::VerifiedToken;
use crate::core::{binding, chain, claims, revocation, rules, verification};
use std::rc::Rc;

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
    /// The DPoP replay window (SPEC §10) this host keeps: one per CLI run, policy test
    /// file or playground session (`MemoryWindow`); shared by every worker in Envoy.
    pub replay: &'a dyn ReplayWindow,
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
    let mut audit = AuditFacts::new(now);
    let mut rule_for_response: Option<&Rule> = None;
    // SPEC §9: the metadata GET is the gateway's own answer; an MCP message is read (size,
    // shape, headers) before step 1.
    let facts = mcp_message(ctx.policy, request, &mut t);
    let outcome = match (&facts, mcp::metadata::answer(ctx.policy, request)) {
        (_, Some(response)) => Ok(Verdict::Answer { response }),
        (Err(denial), None) => Err(denial.clone()),
        (Ok(facts), None) => evaluate(
            ctx,
            request,
            facts.as_ref(),
            now,
            &mut audit,
            &mut rule_for_response,
            &mut t,
        ),
    };
    // SPEC §11: the matched rule's mode, else (no rule yet) the policy's.
    let enforced = rule_for_response
        .map_or(ctx.policy.mode, |rule| rule.mode)
        .is_enforced();
    let verdict = match outcome {
        Ok(verdict) => verdict,
        Err(denial) => deny(ctx.policy, denial, request, rule_for_response, &mut audit),
    };
    Decision {
        verdict,
        strip_headers,
        enforced,
        audit,
        trace: t.finish(),
        // Arguments are dropped here: the decision outlives the check that needed them.
        mcp: facts.ok().flatten().map(|f| McpFacts {
            arguments: None,
            ..f
        }),
    }
}

/// The checks SPEC §9 puts before step 1, for an MCP message: size, shape, headers.
/// `Ok(None)`: the request is not an MCP message.
fn mcp_message(
    policy: &Policy,
    request: &Request,
    t: &mut Recorder,
) -> Result<Option<McpFacts>, Denial> {
    if !mcp::message::is_mcp_message(policy, request) {
        return Ok(None);
    }
    match mcp::message::read(policy, request) {
        Ok(facts) => {
            t.pass(Step::McpBody);
            t.pass(Step::McpMessage);
            t.pass(Step::McpHeaders);
            Ok(Some(facts))
        }
        Err(denial) => {
            let failed = match denial {
                Denial::McpBodyTooLarge { .. } => Step::McpBody,
                Denial::McpMalformed(_) => Step::McpMessage,
                _ => Step::McpHeaders,
            };
            for step in [Step::McpBody, Step::McpMessage] {
                if step == failed {
                    break;
                }
                t.pass(step);
            }
            Err(t.fail(failed, denial))
        }
    }
}

/// The deny verdict: the reply (challenge from the matched rule, if any) and the audit.
fn deny(
    policy: &Policy,
    denial: Denial,
    request: &Request,
    rule: Option<&Rule>,
    audit: &mut AuditFacts,
) -> Verdict {
    let reason = denial.reason();
    let detail = denial.detail();
    let (scopes, acr) = match rule {
        Some(rule) => (rule.require.scopes.as_slice(), acr_values(rule)),
        None => (&[][..], None),
    };
    let mut response = deny_response(&denial, &detail, request.is_grpc(), scopes, acr.as_deref());
    dpop::rewrite_challenge(policy, request, reason, &mut response.headers);
    mcp::metadata::challenge(policy, reason.status(), &mut response);
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
    facts: Option<&McpFacts>,
    t: &mut Recorder,
) -> Result<Result<&'p Rule, Verdict>, Denial> {
    let path = request.path_only();
    if !crate::core::request::path::is_normalized(path) {
        return Err(t.fail(Step::Route, Denial::PathNotNormalized));
    }
    match find_rule(policy, &request.method, path, facts) {
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

/// The first rule whose `match` fits (SPEC §2, with `match.mcp` of SPEC §9).
pub(crate) fn find_rule<'p>(
    policy: &'p Policy,
    method: &str,
    path: &str,
    facts: Option<&McpFacts>,
) -> Option<&'p Rule> {
    policy
        .rules
        .iter()
        .find(|r| rules::matches(r, method, path) && mcp::matching::fits(r.mcp.as_ref(), facts))
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
    facts: Option<&McpFacts>,
    now: UnixTime,
    audit: &mut AuditFacts,
    rule_out: &mut Option<&'p Rule>,
    t: &mut Recorder,
) -> Result<Verdict, Denial> {
    // 1. rule
    let rule = match route(ctx.policy, request, facts, t)? {
        Ok(rule) => rule,
        Err(verdict) => return Ok(verdict),
    };
    *rule_out = Some(rule);
    audit.rule = Some(RuleId::clone(&rule.id));
    let arguments = Arguments::Check(facts.and_then(|f| f.arguments.as_ref()));
    evaluate_rule(ctx, request, rule, arguments, now, audit, t)
}

/// What `require.arguments` is checked against.
#[derive(Clone, Copy)]
enum Arguments<'a> {
    Check(Option<&'a crate::core::token::json::Object>),
    /// `tools/list` filtering: "every check except `require.arguments`" (SPEC §9).
    Skip,
}

/// Whether a request under `rule` passes steps 2–8 with this request's token, peer and
/// time, `require.arguments` aside: the test of a tool in a filtered `tools/list`.
pub(crate) fn passes_rule(ctx: Context<'_>, request: &Request, rule: &Rule, now: UnixTime) -> bool {
    let mut audit = AuditFacts::new(now);
    let mut t = Recorder::off();
    // The request's DPoP proof was checked (and its `jti` recorded) when the request was
    // decided; checking it again per tool must not find it replayed.
    let window = crate::core::dpop::MemoryWindow::new();
    let ctx = Context {
        replay: &window,
        ..ctx
    };
    evaluate_rule(ctx, request, rule, Arguments::Skip, now, &mut audit, &mut t).is_ok()
}

/// Steps 2–8 under the matched rule.
fn evaluate_rule(
    ctx: Context<'_>,
    request: &Request,
    rule: &Rule,
    arguments: Arguments<'_>,
    now: UnixTime,
    audit: &mut AuditFacts,
    t: &mut Recorder,
) -> Result<Verdict, Denial> {
    let policy = ctx.policy;

    // 2. token; 3. verification (and the claim types of 4)
    let token = match one_token(policy, rule, request, t)? {
        Ok(token) => token,
        Err(verdict) => return Ok(verdict),
    };
    let verified = verification::verify(ctx, rule, &token, now, audit, t)?;
    let provider = verified.provider;

    // The token's standing under the policy (step 5's outcome, its effective scopes, its
    // identity headers): remembered with its cache entry, or worked out now.
    // The requirements, the headers, explanations and the audit record read it there.
    let claims = &verified.token.claims;
    let identity = audit.identity.insert(Identity {
        standing: standing(ctx, &verified),
        token: Rc::clone(&verified.token),
    });
    let standing = Rc::clone(&identity.standing);
    let effective = standing.scopes.as_slice();

    // 4. audience, time
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

    // 5. chain (its checks one by one when traced); 6. revocation; 7. binding; 8. rule
    // requirements
    if t.is_on() {
        chain::check(policy, claims, t)?;
    } else {
        standing.chain.clone()?;
    }
    t.check(Step::Revocation, revocation::check(policy, claims))?;
    let presented = dpop::Presented {
        provider,
        token_sha256: &verified.token.sha256,
        dpop_scheme: policy
            .token_sources
            .get(token.source)
            .is_some_and(|s| s.is_dpop()),
        window: ctx.replay,
        crypto: ctx.crypto,
        memo: ctx.cache,
    };
    dpop::check(&presented, claims, request, now, &mut audit.binding, t)?;
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
    // SPEC §9: the last check of step 8.
    match (arguments, rule.require.arguments.as_slice()) {
        (_, []) => t.not_applicable(Step::RequireArguments, "not required"),
        (Arguments::Skip, _) => t.not_applicable(Step::RequireArguments, "not checked"),
        (Arguments::Check(args), conditions) => t.check(
            Step::RequireArguments,
            mcp::arguments::check(conditions, args, claims),
        )?,
    }

    Ok(Verdict::Allow {
        identity_headers: IdentityHeaders {
            token: Rc::clone(&standing.headers),
            rule: RuleId::clone(&rule.id),
        },
    })
}

/// The verified token's standing: its cache entry's (worked out by the first decision that
/// reached here with it), or, without a cache, worked out now.
fn standing(ctx: Context<'_>, verified: &VerifiedToken<'_>) -> Rc<Standing> {
    let claims = &verified.token.claims;
    match ctx.cache {
        None => Rc::new(Standing::of(ctx.policy, claims)),
        Some(_) => Rc::clone(
            verified
                .token
                .standing
                .get_or_init(|| Rc::new(Standing::of(ctx.policy, claims))),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::keys::NoRemoteKeys;
    use crate::core::limits::{MAX_AUDIT_HEADER_VALUE, MAX_AUDIT_REQUEST_FIELD};
    use crate::core::reasons::Reason;

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
            scheme: None,
            body: None,
        };
        let ctx = Context {
            policy: &policy,
            remote_keys: &NoRemoteKeys,
            crypto: &crate::core::verification::crypto::RING,
            cache: None,
            replay: &crate::core::dpop::MemoryWindow::new(),
            shared: None,
        };
        let d = decide(ctx, &request, UnixTime::from_secs(0));
        assert_eq!(d.reason(), Reason::RouteDenied);
        assert!(d.trace.is_none(), "decide records nothing");
        let audit = d.audit_record(&request);
        assert_eq!(audit.path.len(), MAX_AUDIT_REQUEST_FIELD);
        assert_eq!(audit.method.len(), MAX_AUDIT_REQUEST_FIELD);
        assert_eq!(
            audit.authority.as_ref().map(String::len),
            Some(MAX_AUDIT_REQUEST_FIELD)
        );
        assert_eq!(
            audit.request_id.as_ref().map(String::len),
            Some(MAX_AUDIT_HEADER_VALUE)
        );
        assert!(long.starts_with(&audit.path));
    }

    /// A cached token's standing is worked out by its first decision and shared by every
    /// later one; without a cache each decision works out its own.
    #[test]
    fn a_cache_entry_remembers_the_standing() {
        use crate::core::keys::alg::Alg;
        use crate::tools::mint::{public_jwks, SigningKey};
        let rng = ring::rand::SystemRandom::new();
        let key = SigningKey::generate(Alg::ES256, "k", &rng).unwrap();
        let jwks = public_jwks(&[&key]).to_string();
        let config = serde_json::json!({
            "providers": { "p": { "issuer": "https://i", "audiences": ["a"],
                                  "local_jwks": { "inline_string": jwks },
                                  "algorithms": ["ES256"] } },
            "rules": [{ "id": "r", "match": { "path_prefix": "/" } }]
        });
        let policy = Policy::from_json(&config.to_string()).unwrap();
        let claims = serde_json::json!({ "iss": "https://i", "aud": "a", "sub": "u",
                                         "iat": 1_900_000_000u64, "exp": 1_900_000_600u64,
                                         "scope": "s" });
        let token = key.mint(Alg::ES256, &claims, None, &rng).unwrap();
        let request = Request {
            method: "GET".into(),
            path: "/x".into(),
            headers: vec![("authorization".into(), format!("Bearer {token}"))],
            ..Request::default()
        };
        let cache = TokenCache::default();
        let standing = |cache: Option<&TokenCache>| {
            let ctx = Context {
                policy: &policy,
                remote_keys: &NoRemoteKeys,
                crypto: &crate::core::verification::crypto::RING,
                cache,
                replay: &crate::core::dpop::MemoryWindow::new(),
                shared: None,
            };
            let d = decide(ctx, &request, UnixTime::from_secs(1_900_000_000));
            assert_eq!(d.reason(), Reason::Allowed);
            d.audit.identity.map(|i| i.standing).unwrap()
        };
        let (first, second) = (standing(Some(&cache)), standing(Some(&cache)));
        assert!(Rc::ptr_eq(&first, &second));
        assert!(!Rc::ptr_eq(&standing(None), &standing(None)));
        assert_eq!(first.scopes, ["s"]);
    }
}
