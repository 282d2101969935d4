//! `providers.<name>` → `Provider`, one aspect per step: issuer and audiences, keys,
//! algorithms, token types, time settings, token sources.

use super::raw::{RawFromHeader, RawLocalJwks, RawProvider, RawRemoteJwks};
use super::ProviderName;
use super::{
    clean, err, non_empty_list, range, ConfigError, ConfigProblem, Files, FromHeader, JsonPath,
    KeyConfig, Provider, RemoteJwks, DEFAULT_CACHE_DURATION_S, DEFAULT_CLOCK_SKEW_S,
    DEFAULT_MAX_LIFETIME_S, DEFAULT_MAX_STALE_S, DEFAULT_TIMEOUT_MS, DEFAULT_TOKEN_TYPES,
};
use crate::core::keys::alg::{Alg, AlgName, ASYMMETRIC};
use crate::core::keys::{self as jwk, KeySet, KeySource};
use std::sync::Arc;

const DAY_S: u64 = 86_400;
/// An hour of skew is already generous; more means the clocks, not the tokens, are wrong.
const MAX_CLOCK_SKEW_S: u64 = 3600;
/// A year: beyond that a token is a password.
const MAX_LIFETIME_S: u64 = 365 * DAY_S;
/// 60 s: beyond that a paused request is better denied than kept waiting.
const MAX_TIMEOUT_MS: u64 = 60_000;
/// A week: the longest a cache may go between refreshes and still be "remote".
const MAX_CACHE_DURATION_S: u64 = 7 * DAY_S;
/// A month of serving the last good keys through failed refreshes.
const MAX_STALE_S: u64 = 30 * DAY_S;

pub(super) fn build_provider(
    name: &str,
    p: RawProvider,
    files: Files<'_>,
) -> Result<Provider, ConfigError> {
    let at = JsonPath(format!("providers.{name}"));
    if name.is_empty() {
        return Err(err("providers", ConfigProblem::Empty));
    }
    check_issuer_and_audiences(&at, &p)?;
    let keys = keys(&at, p.local_jwks, p.remote_jwks, files)?;
    let algorithms = match p.algorithms {
        Some(names) => listed_algorithms(&at, &names, &keys)?,
        None => default_algorithms(&at, &keys)?,
    };
    let token_types = token_types(&at, p.token_types)?;
    let clock_skew_s = range(
        &at.field("clock_skew_s"),
        p.clock_skew_s.unwrap_or(DEFAULT_CLOCK_SKEW_S),
        0,
        MAX_CLOCK_SKEW_S,
    )?;
    let max_lifetime_s = range(
        &at.field("max_lifetime_s"),
        p.max_lifetime_s.unwrap_or(DEFAULT_MAX_LIFETIME_S),
        1,
        MAX_LIFETIME_S,
    )?;
    let mut from_headers = from_headers(&at, p.from_headers)?;
    let dpop = super::dpop::build(&at, p.dpop)?;
    // SPEC §10: with DPoP on, `Authorization: DPoP <token>` is read like `Bearer`.
    if dpop.mode != super::DpopMode::Off && !from_headers.iter().any(FromHeader::is_dpop) {
        from_headers.push(FromHeader::dpop());
    }
    Ok(Provider {
        name: ProviderName::from(name),
        issuer: p.issuer,
        audiences: p.audiences,
        keys,
        algorithms,
        token_types,
        clock_skew_s,
        max_lifetime_s,
        from_headers,
        sources: Vec::new(),
        dpop,
    })
}

fn check_issuer_and_audiences(at: &JsonPath, p: &RawProvider) -> Result<(), ConfigError> {
    if !clean(&p.issuer) {
        return Err(err(
            at.field("issuer"),
            ConfigProblem::NotClean(p.issuer.clone()),
        ));
    }
    non_empty_list(&at.field("audiences"), &p.audiences)?;
    for (i, a) in p.audiences.iter().enumerate() {
        if !clean(a) {
            return Err(err(
                at.item("audiences", i),
                ConfigProblem::NotClean(a.clone()),
            ));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Keys.

fn keys(
    at: &JsonPath,
    local: Option<RawLocalJwks>,
    remote: Option<RawRemoteJwks>,
    files: Files<'_>,
) -> Result<KeyConfig, ConfigError> {
    match (local, remote) {
        (Some(local), None) => Ok(KeyConfig::Local(local_keys(at, local, files)?)),
        (None, Some(remote)) => Ok(KeyConfig::Remote(remote_keys(at, remote)?)),
        _ => Err(err(at.to_string(), ConfigProblem::JwksSourceCount)),
    }
}

fn local_keys(
    at: &JsonPath,
    local: RawLocalJwks,
    files: Files<'_>,
) -> Result<Arc<KeySet>, ConfigError> {
    let text = match (local.inline_string, local.filename) {
        (Some(text), None) => text,
        (None, Some(file)) => {
            let path = at.field("local_jwks.filename");
            match files {
                Files::Unavailable => return Err(err(path, ConfigProblem::NoFileAccess)),
                Files::Reader(read) => read(&file)
                    .map_err(|why| err(path, ConfigProblem::FileUnavailable(why.to_string())))?,
            }
        }
        _ => return Err(err(at.field("local_jwks"), ConfigProblem::JwksSourceCount)),
    };
    let set = jwk::parse_jwks(&text, KeySource::Configured).map_err(|e| {
        let inner = e.path();
        let path = if inner.is_empty() {
            at.field("local_jwks")
        } else {
            at.field(&format!("local_jwks.{inner}"))
        };
        err(path, ConfigProblem::Jwks(e))
    })?;
    Ok(Arc::new(set))
}

fn remote_keys(at: &JsonPath, remote: RawRemoteJwks) -> Result<RemoteJwks, ConfigError> {
    let http = remote.http_uri;
    if !(http.uri.starts_with("http://") || http.uri.starts_with("https://"))
        || http.uri.contains(char::is_whitespace)
    {
        return Err(err(
            at.field("remote_jwks.http_uri.uri"),
            ConfigProblem::NotAUri(http.uri),
        ));
    }
    if http.cluster.is_empty() {
        return Err(err(
            at.field("remote_jwks.http_uri.cluster"),
            ConfigProblem::Empty,
        ));
    }
    let timeout_ms = range(
        &at.field("remote_jwks.http_uri.timeout_ms"),
        http.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS),
        1,
        MAX_TIMEOUT_MS,
    )?;
    let cache_duration_s = range(
        &at.field("remote_jwks.cache_duration_s"),
        remote.cache_duration_s.unwrap_or(DEFAULT_CACHE_DURATION_S),
        1,
        MAX_CACHE_DURATION_S,
    )?;
    let max_stale_s = range(
        &at.field("remote_jwks.max_stale_s"),
        remote.max_stale_s.unwrap_or(DEFAULT_MAX_STALE_S),
        0,
        MAX_STALE_S,
    )?;
    Ok(RemoteJwks {
        uri: http.uri,
        cluster: http.cluster,
        timeout_ms,
        cache_duration_s,
        max_stale_s,
    })
}

// ---------------------------------------------------------------------------------------
// Algorithms.

/// `algorithms` as written: each a supported name, HMAC only with a key for it; repeats
/// are kept once.
fn listed_algorithms(
    at: &JsonPath,
    names: &[String],
    keys: &KeyConfig,
) -> Result<Vec<Alg>, ConfigError> {
    non_empty_list(&at.field("algorithms"), names)?;
    let mut algs = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let alg = listed_algorithm(at.item("algorithms", i), name, keys)?;
        if !algs.contains(&alg) {
            algs.push(alg);
        }
    }
    Ok(algs)
}

fn listed_algorithm(path: String, name: &str, keys: &KeyConfig) -> Result<Alg, ConfigError> {
    let alg = match Alg::classify(name) {
        AlgName::Supported(a) => a,
        AlgName::None => return Err(err(path, ConfigProblem::NoneAlgorithm)),
        AlgName::Unsupported => {
            return Err(err(
                path,
                ConfigProblem::UnsupportedAlgorithm(name.to_owned()),
            ))
        }
        AlgName::Unknown => {
            return Err(err(path, ConfigProblem::UnknownAlgorithm(name.to_owned())))
        }
    };
    // A shared secret only verifies when the operator configured one for this algorithm.
    let has_key = matches!(keys, KeyConfig::Local(set) if set.keys.iter().any(|k| k.fits(alg)));
    if alg.is_hmac() && !has_key {
        return Err(err(path, ConfigProblem::HmacWithoutKey(alg)));
    }
    Ok(alg)
}

/// No `algorithms`: every asymmetric algorithm the keys can verify (all of them for keys
/// not known yet). HMAC is never a default.
fn default_algorithms(at: &JsonPath, keys: &KeyConfig) -> Result<Vec<Alg>, ConfigError> {
    let KeyConfig::Local(set) = keys else {
        return Ok(ASYMMETRIC.to_vec());
    };
    let algs: Vec<Alg> = ASYMMETRIC
        .into_iter()
        .filter(|a| set.keys.iter().any(|k| k.fits(*a)))
        .collect();
    if algs.is_empty() {
        return Err(err(
            at.field("algorithms"),
            ConfigProblem::HmacNeedsExplicitAlgorithms,
        ));
    }
    Ok(algs)
}

// ---------------------------------------------------------------------------------------
// Token types.

fn token_types(at: &JsonPath, list: Option<Vec<String>>) -> Result<Vec<String>, ConfigError> {
    let Some(list) = list else {
        return Ok(DEFAULT_TOKEN_TYPES.map(str::to_owned).to_vec());
    };
    non_empty_list(&at.field("token_types"), &list)?;
    let mut out = Vec::with_capacity(list.len());
    for (i, t) in list.iter().enumerate() {
        let norm = normalize_typ(t);
        let token = !norm.is_empty()
            && norm
                .bytes()
                .all(|b| b.is_ascii_graphic() && b != b'/' && b != b',');
        if !token {
            return Err(err(
                at.item("token_types", i),
                ConfigProblem::UnknownTokenType(t.clone()),
            ));
        }
        out.push(norm);
    }
    Ok(out)
}

/// `typ` comparison form: case-insensitive, with an optional `application/` prefix
/// (RFC 7515 §4.1.9, RFC 8725 §3.11).
fn normalize_typ(typ: &str) -> String {
    let lower = typ.to_ascii_lowercase();
    lower
        .strip_prefix("application/")
        .map_or(lower.clone(), str::to_owned)
}

/// Whether a token's `typ` is one of `normalized` (entries from `normalize_typ`), without
/// allocating on the request path.
pub(crate) fn typ_is_one_of(typ: &str, normalized: &[String]) -> bool {
    let bare = match typ.get(..12) {
        Some(head) if head.eq_ignore_ascii_case("application/") => {
            typ.get(12..).unwrap_or_default()
        }
        _ => typ,
    };
    normalized.iter().any(|t| t.eq_ignore_ascii_case(bare))
}

// ---------------------------------------------------------------------------------------
// Token sources.

fn from_headers(
    at: &JsonPath,
    list: Option<Vec<RawFromHeader>>,
) -> Result<Vec<FromHeader>, ConfigError> {
    let Some(list) = list else {
        return Ok(vec![FromHeader::default()]);
    };
    non_empty_list(&at.field("from_headers"), &list)?;
    list.into_iter()
        .enumerate()
        .map(|(i, h)| from_header(at, i, h))
        .collect()
}

fn from_header(at: &JsonPath, i: usize, h: RawFromHeader) -> Result<FromHeader, ConfigError> {
    let item = at.item("from_headers", i);
    // Identity fields (`x-agent-*`, also spelled `x_agent_*`) are stripped from every
    // request; a token can never come from one.
    let name = h.name.to_ascii_lowercase();
    if h.name.is_empty()
        || !h.name.bytes().all(is_tchar)
        || crate::core::decision::is_identity_header(&name)
    {
        return Err(err(
            format!("{item}.name"),
            ConfigProblem::BadHeaderName(h.name),
        ));
    }
    match h.value_prefix {
        Some(p) if p.chars().any(char::is_control) => Err(err(
            format!("{item}.value_prefix"),
            ConfigProblem::NotClean(p),
        )),
        prefix => Ok(FromHeader {
            name,
            value_prefix: prefix.filter(|p| !p.is_empty()),
        }),
    }
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

impl FromHeader {
    /// Same header (names are case-insensitive) and same prefix (matched case-insensitively).
    pub fn same_source(&self, other: &FromHeader) -> bool {
        self.name == other.name
            && match (&self.value_prefix, &other.value_prefix) {
                (None, None) => true,
                (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
                _ => false,
            }
    }

    /// The token in `value` when this source reads it. A prefix ending in a space (an auth
    /// scheme, `Bearer `) also matches the scheme followed by tabs or several spaces, as
    /// lenient upstream parsers do: such a value is a token to verify, never one to pass on.
    /// The bare scheme (`Bearer`, which is what `Bearer ` becomes once a proxy trims the
    /// field value) reads as an empty token: malformed, not missing.
    pub fn read<'v>(&self, value: &'v str) -> Option<&'v str> {
        // Leading whitespace is not part of a field value (RFC 9110 §5.5).
        let value = value.trim_start();
        let Some(prefix) = &self.value_prefix else {
            return Some(value.trim());
        };
        let scheme = prefix.trim_end_matches(' ');
        if scheme.len() < prefix.len() {
            let head = value.get(..scheme.len())?;
            let rest = value.get(scheme.len()..)?;
            (head.eq_ignore_ascii_case(scheme)
                && (rest.is_empty() || rest.starts_with([' ', '\t'])))
            .then(|| rest.trim())
        } else {
            let head = value.get(..prefix.len())?;
            head.eq_ignore_ascii_case(prefix)
                .then(|| value.get(prefix.len()..).unwrap_or_default().trim())
        }
    }
}

/// Collects the distinct token sources of all providers and records each provider's.
pub(super) fn token_sources(providers: &mut [Provider]) -> Vec<FromHeader> {
    let mut sources: Vec<FromHeader> = Vec::new();
    for p in providers.iter() {
        for h in &p.from_headers {
            if !sources.iter().any(|s| s.same_source(h)) {
                sources.push(h.clone());
            }
        }
    }
    sources.sort_by_key(|s| std::cmp::Reverse(s.value_prefix.as_ref().map_or(0, |p| p.len() + 1)));
    for p in providers.iter_mut() {
        p.sources = sources
            .iter()
            .enumerate()
            .filter(|(_, s)| p.from_headers.iter().any(|h| h.same_source(s)))
            .map(|(i, _)| i)
            .collect();
    }
    sources
}
