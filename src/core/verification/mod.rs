//! Step 3 of SPEC §4: the provider by the (not yet trusted) `iss`, `typ`, `alg`, the keys,
//! `kid`, and the signature. Nothing in a token is trusted before `verify` returns `Ok`.
//! With a `TokenCache`, a token seen before skips parsing and the signature — never the
//! checks around them.

pub(crate) mod backend;
pub(crate) mod cache;
pub(crate) mod crypto;
pub(crate) mod shared;

use crate::core::audit::{truncate, AuditFacts, TokenSeen};
use crate::core::claims;
use crate::core::config::ProviderName;
use crate::core::config::{typ_is_one_of, KeyConfig, Policy, Provider, Rule};
use crate::core::keys::alg::{Alg, AlgName};
use crate::core::keys::{KeySet, VerificationKey};
use crate::core::limits::{MAX_AUDIT_HEADER_VALUE, MAX_SIGNATURE_VERIFICATIONS};
use crate::core::pipeline::Context;
use crate::core::reasons::Denial;
use crate::core::time::UnixTime;
use crate::core::token::b64;
use crate::core::token::extract::Found;
use crate::core::token::{self, TokenProblem};
use crate::core::trace::{Recorder, Step};
use backend::SignatureVerifier;
use cache::{Cached, Failed, TokenCache, TokenHash, Verified};
use shared::SharedVerified;

/// A token whose signature verified and whose claims were read, with the provider that
/// verified it. Shared with the cache (`Rc`): a hit copies nothing.
pub(crate) struct VerifiedToken<'p> {
    pub provider: &'p Provider,
    pub token: std::rc::Rc<Verified>,
}

/// Step 2 (shape) and 3 (provider, type, algorithm, key, signature), then the claim types
/// of step 4. Nothing in the token is trusted before this returns `Ok`. With a
/// `TokenCache`, a token seen before skips parsing and the signature — never the checks
/// around them.
pub(crate) fn verify<'p>(
    ctx: Context<'p>,
    rule: &Rule,
    found: &Found<'_>,
    now: UnixTime,
    audit: &mut AuditFacts,
    t: &mut Recorder,
) -> Result<VerifiedToken<'p>, Denial> {
    let cached = ctx.cache.and_then(|c| c.get(found.token, now));
    // The token's SHA-256 only on a miss: a hit kept its `token_id`.
    let (seen, hash) = match &cached {
        Some(Cached::Verified(hit)) => (TokenSeen::Cached(std::rc::Rc::clone(hit)), None),
        Some(Cached::Failed(hit)) => (TokenSeen::read(hit.token_id.clone()), None),
        None => {
            let hash = crypto::sha256(found.token.as_bytes());
            (TokenSeen::read(token_id(&hash)), Some(hash))
        }
    };
    audit.token = Some(seen);
    if found.token.is_empty() {
        t.pass(Step::TokenSize);
        let empty = Denial::Token(TokenProblem::NotCompact { dots: 0 });
        return Err(t.fail(Step::TokenShape, empty));
    }
    // A hit lends its header and claims; a miss parses the token (nothing trusted yet).
    let parsed = match &cached {
        Some(Cached::Verified(_)) => {
            t.pass(Step::TokenSize);
            t.pass(Step::TokenShape);
            None
        }
        _ => Some(parse(found.token, t)?),
    };
    // The (not yet trusted) `iss`: a hit's was read into its claims when it was filled.
    let (header, iss) = match (&cached, &parsed) {
        (_, Some(p)) => (&p.jws.header, claimed_issuer(&p.claims)),
        (Some(Cached::Verified(v)), None) => (&v.header, Some(v.claims.iss.as_str())),
        // Unreachable: a token is parsed whenever there is no verified hit.
        _ => return Err(Denial::Token(TokenProblem::NotCompact { dots: 0 })),
    };
    record_header(audit, header);
    let (index, provider) = t.check(
        Step::VerifyIssuer,
        provider_for(ctx.policy, rule, found, iss),
    )?;
    audit.provider = Some(ProviderName::clone(&provider.name));
    t.check(Step::VerifyTyp, typ_accepted(provider, header))?;
    let keys: Option<&KeySet> = match &provider.keys {
        KeyConfig::Local(set) => Some(set),
        KeyConfig::Remote(_) => ctx.remote_keys.remote_keys(&provider.name),
    };
    let (alg, candidates) = select_keys(header, keys, provider, t)?;
    let selected = Selected {
        index,
        provider,
        alg,
        candidates,
    };
    if let Some(known) = from_cache(cached, &selected, t) {
        return known;
    }
    // A hit whose key is gone: verify afresh, from the token text (which parsed before).
    let parsed = match parsed {
        Some(p) => p,
        None => {
            token::parse(found.token).map_err(|e| t.fail(Step::TokenShape, Denial::Token(e)))?
        }
    };
    let hash = hash.unwrap_or_else(|| crypto::sha256(found.token.as_bytes()));
    let fresh = Fresh {
        token: found.token,
        hash,
        now,
    };
    let verified = verify_fresh(ctx, &selected, parsed, &fresh, t)?;
    Ok(VerifiedToken {
        provider,
        token: verified,
    })
}

/// The audit `token_id` (SPEC §6): the first 8 bytes of the token's SHA-256, in hex.
fn token_id(hash: &TokenHash) -> String {
    b64::hex(hash.get(..8).unwrap_or_default())
}

/// A token not in this VM's cache: its text, its SHA-256 (the shared table's key and its
/// `token_id`), and the decision time.
struct Fresh<'t> {
    token: &'t str,
    hash: TokenHash,
    now: UnixTime,
}

/// The provider and the keys a token's signature may be checked with.
struct Selected<'p, 'k> {
    index: usize,
    provider: &'p Provider,
    alg: Alg,
    candidates: Vec<&'k VerificationKey>,
}

impl Selected<'_, '_> {
    fn fingerprints(&self) -> impl Iterator<Item = [u8; 32]> + '_ {
        self.candidates.iter().map(|k| k.fingerprint)
    }
}

/// What the cache already knows about this token under these keys, if anything. A hit
/// counts only while the key that verified it is still published; after a rotation the
/// token is verified afresh (and fails unless a current key verifies).
fn from_cache<'p>(
    cached: Option<Cached>,
    selected: &Selected<'p, '_>,
    t: &mut Recorder,
) -> Option<Result<VerifiedToken<'p>, Denial>> {
    let same = |provider: usize, alg: Alg| provider == selected.index && alg == selected.alg;
    match cached? {
        Cached::Verified(v)
            if same(v.provider, v.alg) && selected.fingerprints().any(|f| f == v.key) =>
        {
            t.pass(Step::VerifySignature);
            t.pass(Step::ClaimsShape);
            Some(Ok(VerifiedToken {
                provider: selected.provider,
                token: v,
            }))
        }
        Cached::Failed(f)
            if same(f.provider, f.alg) && selected.fingerprints().all(|k| f.tried.contains(&k)) =>
        {
            Some(Err(t.fail(Step::VerifySignature, Denial::SignatureInvalid)))
        }
        _ => None,
    }
}

/// The signature — unless another worker VM verified this token with the same provider,
/// algorithm and key (`shared`) — then (4, first part) the claim types, remembered in the
/// caches either way. Claim types depend on the token only, so they are read once and
/// cached with it; a token whose claims are ill-typed is refused and not cached.
fn verify_fresh(
    ctx: Context<'_>,
    selected: &Selected<'_, '_>,
    parsed: token::UnverifiedToken<'_>,
    fresh: &Fresh<'_>,
    t: &mut Recorder,
) -> Result<std::rc::Rc<Verified>, Denial> {
    let (index, alg) = (selected.index, selected.alg);
    let shared_key = ctx
        .shared
        .and_then(|s| s.get(&fresh.hash))
        .and_then(|entry| verified_elsewhere(&entry, selected, fresh.now));
    let from_shared = shared_key.is_some();
    let key = shared_key
        .or_else(|| verify_with_candidates(&parsed.jws, alg, &selected.candidates, ctx.crypto));
    let Some(key) = key else {
        if let Some(cache) = ctx.cache {
            let tried = selected.fingerprints().collect();
            let token_id = token_id(&fresh.hash);
            cache.put_failed(fresh.token, failure(index, alg, tried, fresh.now, token_id));
        }
        return Err(t.fail(Step::VerifySignature, Denial::SignatureInvalid));
    };
    t.pass(Step::VerifySignature);
    let token::UnverifiedToken { jws, claims: raw } = parsed;
    let claims = t.check(Step::ClaimsShape, claims::read(raw))?;
    let entry = std::rc::Rc::new(Verified {
        header: jws.header,
        expires: cache_expiry(&claims, selected.provider),
        claims,
        provider: index,
        alg,
        key,
        token_id: token_id(&fresh.hash),
        sha256: fresh.hash,
        standing: std::cell::OnceCell::new(),
    });
    if let Some(cache) = ctx.cache {
        cache.put_verified(fresh.token, std::rc::Rc::clone(&entry), fresh.now);
    }
    match ctx.shared {
        Some(shared) if !from_shared && fresh.now < entry.expires => {
            let facts = SharedVerified {
                provider: index,
                alg,
                key,
                expires: entry.expires,
            };
            shared.put(&fresh.hash, &facts);
        }
        _ => {}
    }
    Ok(entry)
}

/// The key another VM verified this token with, if this VM would accept that now: the same
/// provider and algorithm it selected itself, a key among its own current candidates (a
/// key gone from the JWKS ends the entry), and not expired.
fn verified_elsewhere(
    entry: &SharedVerified,
    selected: &Selected<'_, '_>,
    now: UnixTime,
) -> Option<[u8; 32]> {
    let usable = entry.provider == selected.index
        && entry.alg == selected.alg
        && now < entry.expires
        && selected.fingerprints().any(|f| f == entry.key);
    usable.then_some(entry.key)
}

/// Step 2 (size, shape): the compact JWS, its header and its claims as JSON.
fn parse<'t>(token: &'t str, t: &mut Recorder) -> Result<token::UnverifiedToken<'t>, Denial> {
    match token::parse(token) {
        Ok(parsed) => {
            t.pass(Step::TokenSize);
            t.pass(Step::TokenShape);
            Ok(parsed)
        }
        Err(problem @ TokenProblem::TooLarge { .. }) => {
            Err(t.fail(Step::TokenSize, Denial::Token(problem)))
        }
        Err(problem) => {
            t.pass(Step::TokenSize);
            Err(t.fail(Step::TokenShape, Denial::Token(problem)))
        }
    }
}

/// The (unverified) `alg` and `kid` identify the token in the audit record. A cache hit
/// keeps them in its entry.
fn record_header(audit: &mut AuditFacts, header: &token::Header) {
    if let Some(TokenSeen::Read { kid, alg, .. }) = &mut audit.token {
        *alg = Some(truncate(&header.alg, MAX_AUDIT_HEADER_VALUE));
        *kid = header
            .kid
            .as_deref()
            .map(|k| truncate(k, MAX_AUDIT_HEADER_VALUE));
    }
}

/// A parsed token's `iss`, if it is a string.
fn claimed_issuer(raw_claims: &crate::core::token::Object) -> Option<&str> {
    match raw_claims.get("iss") {
        Some(serde_json::Value::String(s)) => Some(s.as_str()),
        _ => None,
    }
}

/// The provider (and its index) for the not yet trusted `iss`: one this rule accepts, and
/// one that reads tokens from the header this token came in.
fn provider_for<'p>(
    policy: &'p Policy,
    rule: &Rule,
    found: &Found<'_>,
    iss: Option<&str>,
) -> Result<(usize, &'p Provider), Denial> {
    let Some(iss) = iss else {
        return Err(Denial::IssuerMissing);
    };
    let Some((index, provider)) = policy
        .providers
        .iter()
        .enumerate()
        .find(|(_, p)| p.issuer == iss)
    else {
        return Err(Denial::IssuerUnknown);
    };
    if !rule.providers.contains(&index) {
        return Err(Denial::ProviderNotForRule {
            provider: ProviderName::clone(&provider.name),
        });
    }
    if !provider.sources.contains(&found.source) {
        return Err(Denial::TokenFromOtherHeader {
            provider: ProviderName::clone(&provider.name),
        });
    }
    Ok((index, provider))
}

/// `typ` is one of the provider's `token_types` (no `typ` passes only where `jwt` does).
fn typ_accepted(provider: &Provider, header: &token::Header) -> Result<(), Denial> {
    match &header.typ {
        None if provider.token_types.iter().any(|t| t == "jwt") => Ok(()),
        None => Err(Denial::TypeMissing {
            provider: ProviderName::clone(&provider.name),
        }),
        Some(typ) if typ_is_one_of(typ, &provider.token_types) => Ok(()),
        Some(_) => Err(Denial::TypeNotAllowed {
            provider: ProviderName::clone(&provider.name),
        }),
    }
}

/// `candidate_keys`, recording its four checks (`alg`, keys, `kid`, key/`alg` fit).
fn select_keys<'k>(
    header: &token::Header,
    keys: Option<&'k KeySet>,
    provider: &Provider,
    t: &mut Recorder,
) -> Result<(Alg, Vec<&'k VerificationKey>), Denial> {
    const STEPS: [Step; 4] = [
        Step::VerifyAlg,
        Step::VerifyKeys,
        Step::VerifyKid,
        Step::VerifyKeyAlg,
    ];
    let result = candidate_keys(header, keys, &provider.algorithms);
    let failed_at = result.as_ref().err().map(|f| f.step());
    for step in STEPS.into_iter().take_while(|s| Some(*s) != failed_at) {
        t.pass(step);
    }
    result.map_err(|f| t.fail(f.step(), f.into_denial(&provider.name)))
}

fn failure(
    provider: usize,
    alg: Alg,
    tried: Vec<[u8; 32]>,
    now: UnixTime,
    token_id: String,
) -> Failed {
    Failed {
        provider,
        alg,
        tried,
        expires: TokenCache::failure_expiry(now),
        token_id,
    }
}

/// An entry never outlives its token: `exp` plus skew bounds it (an already expired token
/// is remembered with the failures instead, see token_cache).
fn cache_expiry(claims: &claims::Claims, provider: &Provider) -> UnixTime {
    UnixTime::from_secs_f64(claims.exp + provider.clock_skew_s as f64)
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
    /// The check of step 3 that gives this failure.
    fn step(self) -> Step {
        match self {
            SignatureFailure::AlgNone
            | SignatureFailure::AlgUnsupported
            | SignatureFailure::AlgNotAllowed => Step::VerifyAlg,
            SignatureFailure::NoKeys => Step::VerifyKeys,
            SignatureFailure::KidUnknown => Step::VerifyKid,
            SignatureFailure::KeyDoesNotFitAlg => Step::VerifyKeyAlg,
            SignatureFailure::Invalid => Step::VerifySignature,
        }
    }

    fn into_denial(self, provider: &ProviderName) -> Denial {
        let provider = ProviderName::clone(provider);
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
/// try: the one with the token's `kid`, or without a `kid`, the first
/// `MAX_SIGNATURE_VERIFICATIONS` keys that fit the `alg`.
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
            // SPEC §13: a token without `kid` is tried against the first fitting keys
            // only, so a JWKS of many keys cannot multiply the work of one request.
            let candidates: Vec<_> = keys
                .keys
                .iter()
                .filter(|k| k.fits(alg))
                .take(MAX_SIGNATURE_VERIFICATIONS)
                .collect();
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
    crypto: &dyn SignatureVerifier,
) -> Option<[u8; 32]> {
    let message = jws.signing_input.as_bytes();
    candidates
        .iter()
        // `candidate_keys` bounds the list; the bound is applied here again so that no
        // caller can spend more than the budget.
        .take(MAX_SIGNATURE_VERIFICATIONS)
        .find(|k| crypto.verify(alg, k, message, &jws.signature).is_valid())
        .map(|k| k.fingerprint)
}

/// The whole JWS layer of step 3: `candidate_keys`, then the signature.
pub fn verify_signature(
    jws: &token::Jws<'_>,
    keys: Option<&KeySet>,
    algorithms: &[Alg],
    crypto: &dyn SignatureVerifier,
) -> Result<Alg, SignatureFailure> {
    let (alg, candidates) = candidate_keys(&jws.header, keys, algorithms)?;
    match verify_with_candidates(jws, alg, &candidates, crypto) {
        Some(_) => Ok(alg),
        None => Err(SignatureFailure::Invalid),
    }
}

#[cfg(test)]
mod budget_tests;
