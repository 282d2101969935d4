//! The pipeline of SPEC §1, in the order of SPEC §4: the first failing check is the
//! reason, so every request has exactly one right answer.
//!
//! Everything comes in as arguments — policy, keys, crypto backend, request, time — and a
//! `Decision` comes out. No clock, no I/O, no globals.

use crate::alg::{Alg, AlgName};
use crate::b64;
use crate::claims::{self, Claims, Confirmation};
use crate::config::{
    typ_is_one_of, CnfMode, KeyConfig, OnNoMatch, PathMatch, Policy, Provider, Rule,
};
use crate::crypto;
use crate::decision::{deny_response, is_identity_header, AuditRecord, BindingOutcome, Decision};
use crate::jwk::{KeySet, VerificationKey};
use crate::limits::{MAX_AUDIT_HEADER_VALUE, MAX_AUDIT_REQUEST_FIELD};
use crate::reason::{BindingProblem, Denial, Reason, Revocation};
use crate::request::Request;
use crate::spiffe;
use crate::time::UnixTime;
use crate::token::{self, TokenProblem};
use crate::token_cache::{Cached, Failed, TokenCache, TokenHash, Verified};
use jsonwebtoken::crypto::CryptoProvider;
use std::collections::HashSet;

/// Keys that are not in the configuration: what a host fetched for `remote_jwks`
/// providers. `None` means the provider has no usable keys now (`jwks_unavailable`).
pub trait RemoteKeys {
    fn remote_keys(&self, provider: &str) -> Option<&KeySet>;
}

/// A host without fetched keys (every remote provider is unavailable).
pub struct NoRemoteKeys;

impl RemoteKeys for NoRemoteKeys {
    fn remote_keys(&self, _: &str) -> Option<&KeySet> {
        None
    }
}

impl RemoteKeys for std::collections::HashMap<String, KeySet> {
    fn remote_keys(&self, provider: &str) -> Option<&KeySet> {
        self.get(provider)
    }
}

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

/// A token whose signature verified and whose claims were read, with the provider that
/// verified it. Shared with the cache (`Rc`): a hit copies nothing.
struct VerifiedToken<'p> {
    pub provider: &'p Provider,
    pub token: std::rc::Rc<Verified>,
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

fn truncate(value: &str, max: usize) -> String {
    if value.len() <= max {
        return value.to_owned();
    }
    let mut end = max;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    value.get(..end).unwrap_or_default().to_owned()
}

/// W3C Trace Context `traceparent` → trace id (32 lower-case hex digits, not all zero).
fn trace_id(traceparent: &str) -> Option<String> {
    let mut parts = traceparent.trim().split('-');
    let (_version, trace, _span, _flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let ok = trace.len() == 32
        && trace
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        && trace.bytes().any(|b| b != b'0');
    ok.then(|| trace.to_owned())
}

fn rule_matches(rule: &Rule, method: &str, path: &str) -> bool {
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

/// A token found in the request, and which source (`Policy::token_sources`) read it.
struct Found<'r> {
    token: &'r str,
    source: usize,
}

/// Reads tokens from every provider's sources — not only the matched rule's — so that a
/// second credential can never ride along unverified, and a token of a provider the rule
/// does not accept is `issuer_unknown`, not silently "missing".
fn find_tokens<'r>(policy: &Policy, request: &'r Request) -> Vec<Found<'r>> {
    let mut found = Vec::new();
    for (name, value) in &request.headers {
        let hit = policy
            .token_sources
            .iter()
            .enumerate()
            .filter(|(_, s)| s.name.eq_ignore_ascii_case(name))
            .find_map(|(i, s)| s.read(value).map(|token| (i, token)));
        if let Some((source, token)) = hit {
            // A proxy may join a repeated header into one value with commas (RFC 9110
            // §5.3; Envoy does). A compact JWS never contains a comma, so each part is a
            // token of its own: two tokens are refused whichever way they arrive.
            found.extend(token.split(',').map(|t| Found {
                token: t.trim(),
                source,
            }));
        }
    }
    found
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
    if !crate::path::is_normalized(path) {
        return Err(Denial::PathNotNormalized);
    }
    let Some(rule) = policy
        .rules
        .iter()
        .find(|r| rule_matches(r, &request.method, path))
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
    let verified = verify(ctx, rule, token, &token_hash, now, audit)?;
    let provider = verified.provider;

    // 4. claim types (read in `verify`, right after the signature), audience, time
    let claims = &verified.token.claims;
    let effective = effective_scopes(policy, claims);
    record_identity(audit, claims, &effective);
    if !claims.aud.iter().any(|a| provider.audiences.contains(a)) {
        return Err(Denial::AudienceMismatch);
    }
    check_time(provider, claims, now)?;

    // 5. chain
    check_chain(policy, claims)?;

    // 6. revocation
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

    // 7. binding
    check_binding(policy, claims, request, &mut audit.binding)?;

    // 8. rule requirements
    check_requirements(policy, rule, claims, &effective, now, provider.clock_skew_s)?;

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

/// Step 2 (shape) and 3 (provider, type, algorithm, key, signature). Nothing in the token
/// is trusted before this returns `Ok`. With a `TokenCache`, a token seen before skips
/// parsing and the signature — never the checks around them.
fn verify<'p>(
    ctx: Context<'p>,
    rule: &Rule,
    found: &Found<'_>,
    token_hash: &TokenHash,
    now: UnixTime,
    audit: &mut AuditRecord,
) -> Result<VerifiedToken<'p>, Denial> {
    if found.token.is_empty() {
        return Err(Denial::Token(TokenProblem::NotCompact { dots: 0 }));
    }
    let cached = ctx.cache.and_then(|c| c.get(token_hash, now));
    // A hit lends its header and claims; a miss parses the token (nothing trusted yet).
    let parsed = match &cached {
        Some(Cached::Verified(_)) => None,
        _ => Some(token::parse(found.token).map_err(Denial::Token)?),
    };
    let (header, raw_claims) = match (&cached, &parsed) {
        (_, Some(p)) => (&p.jws.header, &p.claims),
        (Some(Cached::Verified(v)), None) => (&v.header, &v.claims.raw),
        // Unreachable: a token is parsed whenever there is no verified hit.
        _ => return Err(Denial::Token(TokenProblem::NotCompact { dots: 0 })),
    };
    audit.alg = Some(truncate(&header.alg, MAX_AUDIT_HEADER_VALUE));
    audit.kid = header
        .kid
        .as_deref()
        .map(|k| truncate(k, MAX_AUDIT_HEADER_VALUE));

    let iss = match raw_claims.get("iss") {
        Some(serde_json::Value::String(s)) => s.as_str(),
        _ => return Err(Denial::IssuerMissing),
    };
    let Some((index, provider)) = ctx
        .policy
        .providers
        .iter()
        .enumerate()
        .find(|(_, p)| p.issuer == iss)
    else {
        return Err(Denial::IssuerUnknown);
    };
    if !rule.providers.contains(&index) {
        return Err(Denial::ProviderNotForRule {
            provider: provider.name.clone(),
        });
    }
    if !provider.sources.contains(&found.source) {
        return Err(Denial::TokenFromOtherHeader {
            provider: provider.name.clone(),
        });
    }
    audit.provider = Some(provider.name.clone());

    match &header.typ {
        None if provider.token_types.iter().any(|t| t == "jwt") => {}
        None => {
            return Err(Denial::TypeMissing {
                provider: provider.name.clone(),
            })
        }
        Some(typ) => {
            if !typ_is_one_of(typ, &provider.token_types) {
                return Err(Denial::TypeNotAllowed {
                    provider: provider.name.clone(),
                });
            }
        }
    }
    let keys: Option<&KeySet> = match &provider.keys {
        KeyConfig::Local(set) => Some(set),
        KeyConfig::Remote(_) => ctx.remote_keys.remote_keys(&provider.name),
    };
    let (alg, candidates) = candidate_keys(header, keys, &provider.algorithms)
        .map_err(|e| e.into_denial(&provider.name))?;
    let fingerprints = || candidates.iter().map(|k| k.fingerprint);
    match cached {
        // A hit counts only while the key that verified it is still published; after a
        // rotation the token is verified afresh (and fails unless a current key verifies).
        Some(Cached::Verified(v))
            if v.provider == index && v.alg == alg && fingerprints().any(|f| f == v.key) =>
        {
            return Ok(VerifiedToken { provider, token: v });
        }
        Some(Cached::Failed(f))
            if f.provider == index
                && f.alg == alg
                && fingerprints().all(|k| f.tried.contains(&k)) =>
        {
            return Err(Denial::SignatureInvalid);
        }
        _ => {}
    }
    // A hit whose key is gone: verify afresh, from the token text.
    let parsed = match parsed {
        Some(p) => p,
        None => token::parse(found.token).map_err(Denial::Token)?,
    };
    let Some(key) = verify_with_candidates(&parsed.jws, alg, &candidates, ctx.crypto) else {
        if let Some(cache) = ctx.cache {
            cache.put_failed(
                *token_hash,
                Failed {
                    provider: index,
                    alg,
                    tried: fingerprints().collect(),
                    expires: TokenCache::failure_expiry(now),
                },
            );
        }
        return Err(Denial::SignatureInvalid);
    };
    // 4. (first part) claim types: depend on the token only, so they are read once and
    // cached with it. A token whose claims are ill-typed is refused and not cached.
    let token::UnverifiedToken { jws, claims: raw } = parsed;
    let claims = claims::read(raw)?;
    // An entry never outlives its token: `exp` plus skew bounds it (an already expired
    // token is remembered with the failures instead, see token_cache).
    let expires_s = claims.exp + provider.clock_skew_s as f64;
    let expires = if expires_s.is_finite() && expires_s > 0.0 {
        UnixTime::from_millis((expires_s * 1000.0) as u64)
    } else {
        UnixTime::from_millis(0)
    };
    let entry = std::rc::Rc::new(Verified {
        header: jws.header,
        claims,
        provider: index,
        alg,
        key,
        expires,
    });
    if let Some(cache) = ctx.cache {
        cache.put_verified(*token_hash, std::rc::Rc::clone(&entry), now);
    }
    Ok(VerifiedToken {
        provider,
        token: entry,
    })
}

/// Why a JWS signature was not accepted (mapped to a `Denial` with the provider's name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureFailure {
    AlgNone,
    AlgUnsupported,
    AlgNotAllowed,
    NoKeys,
    KidUnknown,
    KeyDoesNotFitAlg,
    Invalid,
}

impl SignatureFailure {
    fn into_denial(self, provider: &str) -> Denial {
        let provider = provider.to_owned();
        match self {
            SignatureFailure::AlgNone => Denial::AlgNone,
            SignatureFailure::AlgUnsupported => Denial::AlgUnsupported,
            SignatureFailure::AlgNotAllowed => Denial::AlgNotAllowed { provider },
            SignatureFailure::NoKeys => Denial::JwksUnavailable { provider },
            SignatureFailure::KidUnknown => Denial::KidUnknown { provider },
            SignatureFailure::KeyDoesNotFitAlg => Denial::KeyDoesNotFitAlg { provider },
            SignatureFailure::Invalid => Denial::SignatureInvalid,
        }
    }
}

/// The JWS layer of step 3 before any cryptography, in SPEC order: `alg` against the
/// allowlist, keys available, `kid`, key/`alg` fit. Returns the algorithm and the keys to
/// try: the one with the token's `kid`, or without a `kid`, every key that fits the `alg`.
pub fn candidate_keys<'k>(
    header: &token::Header,
    keys: Option<&'k KeySet>,
    algorithms: &[Alg],
) -> Result<(Alg, Vec<&'k VerificationKey>), SignatureFailure> {
    let alg = match Alg::classify(&header.alg) {
        AlgName::None => return Err(SignatureFailure::AlgNone),
        AlgName::Unsupported => return Err(SignatureFailure::AlgUnsupported),
        AlgName::Supported(a) if algorithms.contains(&a) => a,
        _ => return Err(SignatureFailure::AlgNotAllowed),
    };
    let keys = keys.ok_or(SignatureFailure::NoKeys)?;
    match &header.kid {
        Some(kid) => {
            let key = keys
                .keys
                .iter()
                .find(|k| k.kid.as_deref() == Some(kid.as_str()))
                .ok_or(SignatureFailure::KidUnknown)?;
            if !key.fits(alg) {
                return Err(SignatureFailure::KeyDoesNotFitAlg);
            }
            Ok((alg, vec![key]))
        }
        None => {
            let candidates: Vec<_> = keys.keys.iter().filter(|k| k.fits(alg)).collect();
            if candidates.is_empty() {
                return Err(SignatureFailure::KeyDoesNotFitAlg);
            }
            Ok((alg, candidates))
        }
    }
}

/// The fingerprint of the first candidate whose signature over the JWS verifies.
fn verify_with_candidates(
    jws: &token::Jws<'_>,
    alg: Alg,
    candidates: &[&VerificationKey],
    crypto: &CryptoProvider,
) -> Option<[u8; 32]> {
    let message = jws.signing_input.as_bytes();
    let jwt_alg = alg.to_jsonwebtoken();
    candidates
        .iter()
        .find(|k| match (&k.es256, alg) {
            // crypto::OWN_ES256 (wasm builds): the key's prepared P-256 tables.
            (Some(prepared), Alg::ES256) => prepared.verify(message, &jws.signature).is_ok(),
            _ => crypto::verify_with(crypto, jwt_alg, &k.decoding, message, &jws.signature),
        })
        .map(|k| k.fingerprint)
}

/// The whole JWS layer of step 3: `candidate_keys`, then the signature.
pub fn verify_signature(
    jws: &token::Jws<'_>,
    keys: Option<&KeySet>,
    algorithms: &[Alg],
    crypto: &CryptoProvider,
) -> Result<Alg, SignatureFailure> {
    let (alg, candidates) = candidate_keys(&jws.header, keys, algorithms)?;
    match verify_with_candidates(jws, alg, &candidates, crypto) {
        Some(_) => Ok(alg),
        None => Err(SignatureFailure::Invalid),
    }
}

fn effective_scopes(policy: &Policy, claims: &Claims) -> Vec<String> {
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

fn record_identity(audit: &mut AuditRecord, claims: &Claims, effective: &[String]) {
    audit.iss = Some(claims.iss.clone());
    audit.sub = Some(claims.sub.clone());
    audit.sub_profile = claims.sub_profile.clone();
    audit.actor = claims.chain.first().map(|a| a.sub.clone());
    audit.chain = Some(claims.chain.iter().map(|a| a.sub.clone()).collect());
    audit.depth = Some(claims.chain.len());
    audit.scopes = Some(effective.to_vec());
    audit.jti = claims.jti.clone();
}

fn check_time(provider: &Provider, claims: &Claims, now: UnixTime) -> Result<(), Denial> {
    let now_s = now.secs_f64();
    let skew = provider.clock_skew_s;
    let skew_f = skew as f64;
    // RFC 7519 §4.1.4: not accepted on or after `exp`.
    if now_s >= claims.exp + skew_f {
        return Err(Denial::Expired {
            now: now.secs(),
            exp: claims.exp,
            skew,
        });
    }
    if let Some(nbf) = claims.nbf {
        if now_s + skew_f < nbf {
            return Err(Denial::NotYetValid {
                now: now.secs(),
                nbf,
                skew,
            });
        }
    }
    if let Some(iat) = claims.iat {
        if iat > now_s + skew_f {
            return Err(Denial::IssuedInFuture {
                now: now.secs(),
                iat,
                skew,
            });
        }
    }
    let lifetime = claims.exp - claims.iat.unwrap_or(now_s);
    if lifetime > provider.max_lifetime_s as f64 {
        return Err(Denial::LifetimeTooLong {
            lifetime,
            max: provider.max_lifetime_s,
        });
    }
    Ok(())
}

fn check_chain(policy: &Policy, claims: &Claims) -> Result<(), Denial> {
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

fn check_binding(
    policy: &Policy,
    claims: &Claims,
    request: &Request,
    outcome: &mut BindingOutcome,
) -> Result<(), Denial> {
    let peer_digest = request.peer.as_ref().and_then(|p| p.certificate_sha256);
    match &claims.cnf {
        None => {
            *outcome = BindingOutcome::Absent;
            if policy.binding.cnf == CnfMode::Required {
                return Err(Denial::BindingRequired);
            }
        }
        Some(cnf) => {
            *outcome = BindingOutcome::Mismatch;
            let problem = match (cnf, peer_digest) {
                (Confirmation::Unsupported, _) => Some(BindingProblem::UnsupportedMethod),
                (Confirmation::CertificateThumbprint(_), None) => {
                    Some(BindingProblem::NoPeerCertificate)
                }
                // Not a secret (a certificate hash), so a plain comparison is fine.
                (Confirmation::CertificateThumbprint(expected), Some(actual))
                    if actual == *expected =>
                {
                    None
                }
                (Confirmation::CertificateThumbprint(_), Some(_)) => {
                    Some(BindingProblem::ThumbprintMismatch)
                }
            };
            if let Some(problem) = problem {
                return Err(Denial::BindingMismatch(problem));
            }
            *outcome = BindingOutcome::Ok;
        }
    }
    if policy.binding.actor_must_match_peer {
        let expected = claims.chain.first().map_or(&claims.sub, |a| &a.sub);
        let peer = request.peer.as_ref().and_then(|p| p.uri_san.clone());
        if peer.as_deref() != Some(expected.as_str()) {
            return Err(Denial::PeerMismatch {
                expected: expected.clone(),
                peer,
            });
        }
    }
    Ok(())
}

fn check_requirements(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent() {
        assert_eq!(
            trace_id("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        assert_eq!(
            trace_id("00-00000000000000000000000000000000-00f067aa0ba902b7-01"),
            None
        );
        assert_eq!(trace_id("garbage"), None);
    }

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
            crypto: &crate::crypto::RING,
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
