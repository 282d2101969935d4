//! Phase two of loading: `RawConfig` → an immutable, checked `Policy`, built once (in
//! Envoy's `on_configure`, the playground's lint, the CLI's start) and shared by every
//! request. Every error names the JSON path it is about.

mod mode;
mod raw;

pub use mode::Mode;

use crate::core::chain::spiffe;
use crate::core::keys::alg::{Alg, AlgName, ASYMMETRIC};
use crate::core::keys::{self as jwk, JwksError, KeySet, KeySource};
use crate::core::limits::{clip_for_error, MAX_CONFIGURABLE_CHAIN_DEPTH};
use raw::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt;
use std::sync::Arc;

/// What is wrong at a path.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigProblem {
    /// Not JSON, or a type or field error reported by the parser (its message).
    Syntax(String),
    DuplicateMember(String),
    Empty,
    NoneAlgorithm,
    UnsupportedAlgorithm(String),
    UnknownAlgorithm(String),
    HmacWithoutKey(Alg),
    HmacNeedsExplicitAlgorithms,
    JwksSourceCount,
    FileUnavailable(String),
    Jwks(JwksError),
    OutOfRange {
        value: u64,
        min: u64,
        max: u64,
    },
    NotAUri(String),
    BadHeaderName(String),
    BadTrustDomain(String),
    ActorOutsideTrustDomains(String),
    DuplicateIssuer {
        other: String,
    },
    DuplicateRuleId(String),
    BadRuleId(String),
    UnknownProvider(String),
    PathMatchCount,
    PathNotAbsolute(String),
    BadMethod(String),
    BadScope(String),
    AnonymousWithRequire,
    NoProviders,
    DelegationContradiction,
    UnknownTokenType(String),
    NotClean(String),
    PathNeverMatches(String),
    ActorNotInAllowlist(String),
}

/// A configuration refused at load time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// JSON path, e.g. `rules[1].require.scopes`; empty for the document itself.
    pub path: String,
    pub problem: ConfigProblem,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        use ConfigProblem::*;
        match &self.problem {
            Syntax(msg) => f.write_str(msg),
            DuplicateMember(name) => write!(f, "member `{name}` appears twice in one object"),
            Empty => f.write_str("must not be empty"),
            NoneAlgorithm => f.write_str("`none` is never accepted"),
            UnsupportedAlgorithm(a) => write!(
                f,
                "algorithm `{a}` is not supported (ring 0.17 has no P-521 or secp256k1)"
            ),
            UnknownAlgorithm(a) => write!(f, "`{a}` is not a JWS signature algorithm"),
            HmacWithoutKey(a) => write!(
                f,
                "`{a}` needs an `oct` key with `\"alg\": \"{a}\"` in this provider's local_jwks"
            ),
            HmacNeedsExplicitAlgorithms => f.write_str(
                "a provider with only `oct` keys must list its HMAC algorithm in `algorithms`",
            ),
            JwksSourceCount => {
                f.write_str("a provider needs exactly one of `local_jwks` and `remote_jwks`")
            }
            FileUnavailable(why) => write!(f, "cannot read the jwks file: {why}"),
            Jwks(e) => write!(f, "{e}"),
            OutOfRange { value, min, max } => {
                write!(f, "{value} is out of range; allowed is {min} to {max}")
            }
            NotAUri(u) => write!(f, "`{u}` is not an http:// or https:// uri"),
            BadHeaderName(h) => write!(f, "`{h}` is not a valid header name"),
            BadTrustDomain(t) => write!(
                f,
                "`{t}` is not a trust domain name (lowercase letters, digits, `.`, `-`, `_`)"
            ),
            ActorOutsideTrustDomains(a) => {
                write!(
                    f,
                    "actor `{a}` is not a SPIFFE ID in `identity.trust_domains`"
                )
            }
            DuplicateIssuer { other } => {
                write!(f, "this issuer is already used by provider `{other}`")
            }
            DuplicateRuleId(id) => write!(f, "rule id `{id}` is used twice"),
            BadRuleId(id) => write!(
                f,
                "rule id `{id}` must be 1 to 128 of letters, digits, `.`, `_`, `:`, `-`"
            ),
            UnknownProvider(p) => write!(f, "no provider named `{p}`"),
            PathMatchCount => f.write_str("needs exactly one of `path_prefix` and `path_exact`"),
            PathNotAbsolute(p) => write!(f, "`{p}` must start with `/`"),
            BadMethod(m) => write!(f, "`{m}` is not an upper-case HTTP method token"),
            BadScope(s) => write!(f, "`{s}` is not a scope token (no spaces, not empty)"),
            AnonymousWithRequire => {
                f.write_str("`require` cannot be combined with `allow_anonymous`")
            }
            NoProviders => f.write_str("this rule needs a token but no providers are configured"),
            DelegationContradiction => f.write_str(
                "`actors` or `max_chain_depth` cannot be required with `delegated: false`",
            ),
            UnknownTokenType(t) => write!(f, "`{t}` is not a media type token"),
            NotClean(v) => write!(
                f,
                "`{}` must be non-empty, without control characters or surrounding spaces",
                v.escape_debug()
            ),
            PathNeverMatches(p) => write!(
                f,
                "`{p}` can never match a request: rule paths must be normalized (no `..`, `.`, `//`, `;`, `?`, `#`, needless percent-escapes)"
            ),
            ActorNotInAllowlist(a) => write!(f, "actor `{a}` is not in `identity.actors`"),
        }
    }
}

impl std::error::Error for ConfigError {}

fn err(path: impl Into<String>, problem: ConfigProblem) -> ConfigError {
    ConfigError {
        path: clip_for_error(path.into()),
        problem: problem.clipped(),
    }
}

impl ConfigProblem {
    /// The same problem with the user input it carries cut to `limits::MAX_ERROR_INPUT`.
    fn clipped(self) -> ConfigProblem {
        use ConfigProblem::*;
        let c = clip_for_error;
        match self {
            Syntax(m) => Syntax(c(m)),
            DuplicateMember(n) => DuplicateMember(c(n)),
            UnsupportedAlgorithm(a) => UnsupportedAlgorithm(c(a)),
            UnknownAlgorithm(a) => UnknownAlgorithm(c(a)),
            FileUnavailable(w) => FileUnavailable(c(w)),
            Jwks(JwksError::DuplicateKid { index, kid }) => {
                Jwks(JwksError::DuplicateKid { index, kid: c(kid) })
            }
            NotAUri(u) => NotAUri(c(u)),
            BadHeaderName(h) => BadHeaderName(c(h)),
            BadTrustDomain(t) => BadTrustDomain(c(t)),
            ActorOutsideTrustDomains(a) => ActorOutsideTrustDomains(c(a)),
            DuplicateIssuer { other } => DuplicateIssuer { other: c(other) },
            DuplicateRuleId(i) => DuplicateRuleId(c(i)),
            BadRuleId(i) => BadRuleId(c(i)),
            UnknownProvider(p) => UnknownProvider(c(p)),
            PathNotAbsolute(p) => PathNotAbsolute(c(p)),
            BadMethod(m) => BadMethod(c(m)),
            BadScope(s) => BadScope(c(s)),
            UnknownTokenType(t) => UnknownTokenType(c(t)),
            NotClean(v) => NotClean(c(v)),
            PathNeverMatches(p) => PathNeverMatches(c(p)),
            ActorNotInAllowlist(a) => ActorNotInAllowlist(c(a)),
            other => other,
        }
    }
}

// ---------------------------------------------------------------------------------------
// The checked policy.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CnfMode {
    /// Defaults to this: a token with `cnf` must match the peer; one without passes.
    IfPresent,
    Required,
}

/// Which decisions the host logs an audit line for (`audit.log`). Every decision still
/// has its record (the CLI and the playground always show it) and is counted in metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditLog {
    /// Every decision (SPEC §6). The default.
    All,
    /// Denials only: for routes where one line per allowed request is more than the log
    /// pipeline should carry; allows remain in `actwarden.allow`.
    Denials,
}

impl AuditLog {
    /// Whether a host logs the record of a decision with this outcome.
    pub fn logs(self, allowed: bool) -> bool {
        match self {
            AuditLog::All => true,
            AuditLog::Denials => !allowed,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnNoMatch {
    Deny,
    Allow,
}

#[derive(Debug, Clone)]
pub struct FromHeader {
    /// Lower-case header name.
    pub name: String,
    /// Matched case-insensitively; `None` takes the whole value.
    pub value_prefix: Option<String>,
}

#[derive(Debug, Clone)]
pub struct RemoteJwks {
    pub uri: String,
    pub cluster: String,
    pub timeout_ms: u64,
    pub cache_duration_s: u64,
    pub max_stale_s: u64,
}

#[derive(Debug, Clone)]
pub enum KeyConfig {
    Local(Arc<KeySet>),
    Remote(RemoteJwks),
}

#[derive(Debug, Clone)]
pub struct Provider {
    pub name: String,
    pub issuer: String,
    pub audiences: Vec<String>,
    pub keys: KeyConfig,
    pub algorithms: Vec<Alg>,
    /// Normalised: lower case, without an `application/` prefix.
    pub token_types: Vec<String>,
    pub clock_skew_s: u64,
    pub max_lifetime_s: u64,
    pub from_headers: Vec<FromHeader>,
    /// Indices into `Policy::token_sources` of this provider's `from_headers`.
    pub sources: Vec<usize>,
}

#[derive(Debug, Clone)]
pub struct Identity {
    pub trust_domains: Option<Vec<String>>,
    pub human_profiles: Vec<String>,
    pub max_chain_depth: u32,
    /// `None`: no allowlist. Each entry's `Some(ceiling)` caps that actor's scopes.
    pub actors: Option<BTreeMap<String, Option<BTreeSet<String>>>>,
}

#[derive(Debug, Clone)]
pub struct Binding {
    pub cnf: CnfMode,
    pub actor_must_match_peer: bool,
}

#[derive(Debug, Clone, Default)]
pub struct Revoked {
    pub jti: HashSet<String>,
    pub subjects: HashSet<String>,
    pub actors: HashSet<String>,
}

#[derive(Debug, Clone)]
pub enum PathMatch {
    Prefix(String),
    Exact(String),
}

#[derive(Debug, Clone, Default)]
pub struct Require {
    pub scopes: Vec<String>,
    pub human_subject: bool,
    pub delegated: Option<bool>,
    pub actors: Option<Vec<String>>,
    pub max_chain_depth: Option<u32>,
    pub fresh_auth_s: Option<u64>,
    pub claims: BTreeMap<String, Vec<Value>>,
}

#[derive(Debug, Clone)]
pub struct Rule {
    pub id: String,
    pub path: PathMatch,
    pub methods: Option<Vec<String>>,
    pub allow_anonymous: bool,
    /// Indices into `Policy::providers`; all of them when the rule names none.
    pub providers: Vec<usize>,
    pub require: Require,
    /// This rule's own `mode`, else the policy's (SPEC §11).
    pub mode: Mode,
}

/// A checked, immutable configuration.
#[derive(Debug, Clone)]
pub struct Policy {
    pub providers: Vec<Provider>,
    /// Every distinct place a token is read from, over all providers: longest prefix
    /// first, prefix-less last, so a header value is read one way only.
    pub token_sources: Vec<FromHeader>,
    pub identity: Identity,
    pub binding: Binding,
    pub revoked: Revoked,
    pub rules: Vec<Rule>,
    pub on_no_match: OnNoMatch,
    pub audit_log: AuditLog,
    /// Top-level `mode`: applies to decisions made before a rule matched (SPEC §11).
    pub mode: Mode,
}

/// Reads `local_jwks.filename` for hosts that have files (the CLI). The core never does I/O.
pub type FileReader<'a> = &'a dyn Fn(&str) -> Result<String, String>;

impl Policy {
    /// Loads a configuration in a host without files: `local_jwks.filename` is refused.
    pub fn from_json(text: &str) -> Result<Policy, ConfigError> {
        Self::from_json_with_files(text, &|_| {
            Err("this host has no files; use `inline_string`".to_owned())
        })
    }

    /// Loads Envoy's `configuration` / Istio's `pluginConfig`: the SPEC §2 document as a
    /// JSON object, or a JSON string that holds it (what a `StringValue` carrying an
    /// escaped document, or a templating tool, produces).
    pub fn from_plugin_config(bytes: &[u8]) -> Result<Policy, ConfigError> {
        let syntax = |message: String| err("", ConfigProblem::Syntax(message));
        let text = std::str::from_utf8(bytes)
            .map_err(|_| syntax("the plugin configuration is not utf-8".to_owned()))?;
        if text.trim_start().starts_with('"') {
            let inner: String = serde_json::from_str(text)
                .map_err(|e| syntax(format!("a json string that does not parse: {e}")))?;
            return Self::from_json(&inner);
        }
        Self::from_json(text)
    }

    pub fn from_json_with_files(
        text: &str,
        read_file: FileReader<'_>,
    ) -> Result<Policy, ConfigError> {
        let value = match crate::core::token::json::parse_strict(text.as_bytes()) {
            Ok(v) => v,
            Err(crate::core::token::json::JsonProblem::DuplicateMember(name)) => {
                return Err(err("", ConfigProblem::DuplicateMember(name)))
            }
            Err(crate::core::token::json::JsonProblem::Syntax) => {
                // Ask serde_json again for a message with a line and column.
                let msg = serde_json::from_str::<Value>(text).err().map_or_else(
                    || "not valid JSON".to_owned(),
                    |e| format!("not valid JSON: {e}"),
                );
                return Err(err("", ConfigProblem::Syntax(msg)));
            }
        };
        Self::from_value_with_files(value, read_file)
    }

    pub fn from_value_with_files(
        value: Value,
        read_file: FileReader<'_>,
    ) -> Result<Policy, ConfigError> {
        let raw: RawConfig = serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            let path = if path == "." { String::new() } else { path };
            err(path, ConfigProblem::Syntax(e.into_inner().to_string()))
        })?;
        build(raw, read_file)
    }

    /// Things that load but deserve a look: keys of a configured JWKS that were skipped
    /// (not for signatures, or of a type actwarden does not verify).
    pub fn notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        for p in &self.providers {
            if let KeyConfig::Local(set) = &p.keys {
                for s in &set.skipped {
                    let why = match &s.reason {
                        jwk::SkipReason::NotForSignatures => {
                            "not for signature verification (`use` or `key_ops`)".to_owned()
                        }
                        jwk::SkipReason::UnsupportedKeyType(k) => {
                            format!("key type `{k}` is not supported")
                        }
                        jwk::SkipReason::UnsupportedCurve(c) => {
                            format!("curve `{c}` is not supported")
                        }
                        jwk::SkipReason::UnsupportedAlgorithm(a) => {
                            format!("algorithm `{a}` is not supported")
                        }
                    };
                    notes.push(format!(
                        "providers.{}.local_jwks.keys[{}]: skipped: {why}",
                        p.name, s.index
                    ));
                }
            }
        }
        notes
    }
}

fn build(raw: RawConfig, read_file: FileReader<'_>) -> Result<Policy, ConfigError> {
    let mode = raw.mode.map_or(Mode::Enforce, Mode::from);
    let identity = build_identity(raw.identity)?;
    let mut providers = Vec::with_capacity(raw.providers.len());
    for (name, p) in raw.providers {
        let provider = build_provider(&name, p, read_file)?;
        if let Some(other) = providers
            .iter()
            .find(|o: &&Provider| o.issuer == provider.issuer)
        {
            return Err(err(
                format!("providers.{name}.issuer"),
                ConfigProblem::DuplicateIssuer {
                    other: other.name.clone(),
                },
            ));
        }
        providers.push(provider);
    }
    let binding = match raw.binding {
        None => Binding {
            cnf: CnfMode::IfPresent,
            actor_must_match_peer: false,
        },
        Some(b) => Binding {
            cnf: match b.cnf {
                None | Some(RawCnfMode::IfPresent) => CnfMode::IfPresent,
                Some(RawCnfMode::Required) => CnfMode::Required,
            },
            actor_must_match_peer: b.actor_must_match_peer.unwrap_or(false),
        },
    };
    let revoked = raw.revoked.map_or_else(Revoked::default, |r| Revoked {
        jti: r.jti.into_iter().collect(),
        subjects: r.subjects.into_iter().collect(),
        actors: r.actors.into_iter().collect(),
    });
    let mut rules: Vec<Rule> = Vec::with_capacity(raw.rules.len());
    for (i, r) in raw.rules.into_iter().enumerate() {
        let own_mode = r.mode;
        let mut rule = build_rule(i, r, &providers, &identity)?;
        rule.mode = mode::rule_mode(own_mode, mode);
        if rules.iter().any(|o| o.id == rule.id) {
            return Err(err(
                format!("rules[{i}].id"),
                ConfigProblem::DuplicateRuleId(rule.id),
            ));
        }
        rules.push(rule);
    }
    let on_no_match = match raw.on_no_match {
        None | Some(RawOnNoMatch::Deny) => OnNoMatch::Deny,
        Some(RawOnNoMatch::Allow) => OnNoMatch::Allow,
    };
    let audit_log = match raw.audit.and_then(|a| a.log) {
        None | Some(RawAuditLog::All) => AuditLog::All,
        Some(RawAuditLog::Denials) => AuditLog::Denials,
    };
    let token_sources = token_sources(&mut providers);
    Ok(Policy {
        providers,
        token_sources,
        identity,
        binding,
        revoked,
        rules,
        on_no_match,
        audit_log,
        mode,
    })
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
fn token_sources(providers: &mut [Provider]) -> Vec<FromHeader> {
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

fn range(path: &str, value: u64, min: u64, max: u64) -> Result<u64, ConfigError> {
    if (min..=max).contains(&value) {
        Ok(value)
    } else {
        Err(err(path, ConfigProblem::OutOfRange { value, min, max }))
    }
}

fn non_empty_list<T>(path: &str, list: &[T]) -> Result<(), ConfigError> {
    if list.is_empty() {
        Err(err(path, ConfigProblem::Empty))
    } else {
        Ok(())
    }
}

fn build_provider(
    name: &str,
    p: RawProvider,
    read_file: FileReader<'_>,
) -> Result<Provider, ConfigError> {
    let at = |field: &str| format!("providers.{name}.{field}");
    if name.is_empty() {
        return Err(err("providers", ConfigProblem::Empty));
    }
    if !clean(&p.issuer) {
        return Err(err(at("issuer"), ConfigProblem::NotClean(p.issuer)));
    }
    non_empty_list(&at("audiences"), &p.audiences)?;
    for (i, a) in p.audiences.iter().enumerate() {
        if !clean(a) {
            return Err(err(
                at(&format!("audiences[{i}]")),
                ConfigProblem::NotClean(a.clone()),
            ));
        }
    }
    let keys = match (p.local_jwks, p.remote_jwks) {
        (Some(local), None) => {
            let text = match (local.inline_string, local.filename) {
                (Some(text), None) => text,
                (None, Some(file)) => read_file(&file).map_err(|why| {
                    err(
                        at("local_jwks.filename"),
                        ConfigProblem::FileUnavailable(why),
                    )
                })?,
                _ => return Err(err(at("local_jwks"), ConfigProblem::JwksSourceCount)),
            };
            let set = jwk::parse_jwks(&text, KeySource::Configured).map_err(|e| {
                let inner = e.path();
                let path = if inner.is_empty() {
                    at("local_jwks")
                } else {
                    at(&format!("local_jwks.{inner}"))
                };
                err(path, ConfigProblem::Jwks(e))
            })?;
            KeyConfig::Local(Arc::new(set))
        }
        (None, Some(remote)) => {
            let uri = remote.http_uri.uri;
            if !(uri.starts_with("http://") || uri.starts_with("https://"))
                || uri.contains(char::is_whitespace)
            {
                return Err(err(
                    at("remote_jwks.http_uri.uri"),
                    ConfigProblem::NotAUri(uri),
                ));
            }
            if remote.http_uri.cluster.is_empty() {
                return Err(err(
                    at("remote_jwks.http_uri.cluster"),
                    ConfigProblem::Empty,
                ));
            }
            // 60 s: beyond that a paused request is better denied than kept waiting.
            let timeout_ms = range(
                &at("remote_jwks.http_uri.timeout_ms"),
                remote.http_uri.timeout_ms.unwrap_or(2000),
                1,
                60_000,
            )?;
            // A week: the longest a cache may go between refreshes and still be "remote".
            let cache_duration_s = range(
                &at("remote_jwks.cache_duration_s"),
                remote.cache_duration_s.unwrap_or(300),
                1,
                7 * 86_400,
            )?;
            let max_stale_s = range(
                &at("remote_jwks.max_stale_s"),
                remote.max_stale_s.unwrap_or(86_400),
                0,
                30 * 86_400,
            )?;
            KeyConfig::Remote(RemoteJwks {
                uri,
                cluster: remote.http_uri.cluster,
                timeout_ms,
                cache_duration_s,
                max_stale_s,
            })
        }
        _ => {
            return Err(err(
                format!("providers.{name}"),
                ConfigProblem::JwksSourceCount,
            ))
        }
    };

    let algorithms = match p.algorithms {
        Some(names) => {
            non_empty_list(&at("algorithms"), &names)?;
            let mut algs = Vec::new();
            for (i, n) in names.iter().enumerate() {
                let path = at(&format!("algorithms[{i}]"));
                let alg = match Alg::classify(n) {
                    AlgName::Supported(a) => a,
                    AlgName::None => return Err(err(path, ConfigProblem::NoneAlgorithm)),
                    AlgName::Unsupported => {
                        return Err(err(path, ConfigProblem::UnsupportedAlgorithm(n.clone())))
                    }
                    AlgName::Unknown => {
                        return Err(err(path, ConfigProblem::UnknownAlgorithm(n.clone())))
                    }
                };
                if alg.is_hmac() {
                    let has_key = matches!(&keys, KeyConfig::Local(set) if set.keys.iter().any(|k| k.fits(alg)));
                    if !has_key {
                        return Err(err(path, ConfigProblem::HmacWithoutKey(alg)));
                    }
                }
                if !algs.contains(&alg) {
                    algs.push(alg);
                }
            }
            algs
        }
        None => match &keys {
            KeyConfig::Remote(_) => ASYMMETRIC.to_vec(),
            KeyConfig::Local(set) => {
                let algs: Vec<Alg> = ASYMMETRIC
                    .into_iter()
                    .filter(|a| set.keys.iter().any(|k| k.fits(*a)))
                    .collect();
                if algs.is_empty() {
                    return Err(err(
                        at("algorithms"),
                        ConfigProblem::HmacNeedsExplicitAlgorithms,
                    ));
                }
                algs
            }
        },
    };

    let token_types = match p.token_types {
        None => vec!["at+jwt".to_owned(), "jwt".to_owned()],
        Some(list) => {
            non_empty_list(&at("token_types"), &list)?;
            let mut out = Vec::new();
            for (i, t) in list.iter().enumerate() {
                let norm = normalize_typ(t);
                if norm.is_empty()
                    || !norm
                        .bytes()
                        .all(|b| b.is_ascii_graphic() && b != b'/' && b != b',')
                {
                    return Err(err(
                        at(&format!("token_types[{i}]")),
                        ConfigProblem::UnknownTokenType(t.clone()),
                    ));
                }
                out.push(norm);
            }
            out
        }
    };
    // An hour of skew is already generous; more means the clocks, not the tokens, are wrong.
    let clock_skew_s = range(&at("clock_skew_s"), p.clock_skew_s.unwrap_or(60), 0, 3600)?;
    // A year: beyond that a token is a password.
    let max_lifetime_s = range(
        &at("max_lifetime_s"),
        p.max_lifetime_s.unwrap_or(86_400),
        1,
        365 * 86_400,
    )?;
    let from_headers = match p.from_headers {
        None => vec![FromHeader {
            name: "authorization".into(),
            value_prefix: Some("Bearer ".into()),
        }],
        Some(list) => {
            non_empty_list(&at("from_headers"), &list)?;
            let mut out = Vec::new();
            for (i, h) in list.into_iter().enumerate() {
                if h.name.is_empty() || !h.name.bytes().all(is_tchar) {
                    return Err(err(
                        at(&format!("from_headers[{i}].name")),
                        ConfigProblem::BadHeaderName(h.name),
                    ));
                }
                let name = h.name.to_ascii_lowercase();
                if crate::core::decision::is_identity_header(&name) {
                    // Identity fields (`x-agent-*`, also spelled `x_agent_*`) are stripped
                    // from every request; a token can never come from one.
                    return Err(err(
                        at(&format!("from_headers[{i}].name")),
                        ConfigProblem::BadHeaderName(h.name),
                    ));
                }
                if h.value_prefix
                    .as_deref()
                    .is_some_and(|p| p.chars().any(char::is_control))
                {
                    return Err(err(
                        at(&format!("from_headers[{i}].value_prefix")),
                        ConfigProblem::NotClean(h.value_prefix.unwrap_or_default()),
                    ));
                }
                out.push(FromHeader {
                    name,
                    value_prefix: h.value_prefix.filter(|p| !p.is_empty()),
                });
            }
            out
        }
    };
    Ok(Provider {
        name: name.to_owned(),
        issuer: p.issuer,
        audiences: p.audiences,
        keys,
        algorithms,
        token_types,
        clock_skew_s,
        max_lifetime_s,
        from_headers,
        sources: Vec::new(),
    })
}

/// `typ` comparison form: case-insensitive, with an optional `application/` prefix
/// (RFC 7515 §4.1.9, RFC 8725 §3.11).
pub(crate) fn normalize_typ(typ: &str) -> String {
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

/// A configured value that is copied into headers or logs, or compared with claims.
fn clean(value: &str) -> bool {
    !value.is_empty() && value.trim() == value && !value.chars().any(char::is_control)
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn scope_ok(s: &str) -> bool {
    // RFC 6749 §3.3: %x21 / %x23-5B / %x5D-7E.
    !s.is_empty()
        && s.bytes()
            .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
}

fn build_identity(raw: Option<RawIdentity>) -> Result<Identity, ConfigError> {
    let raw = raw.unwrap_or(RawIdentity {
        trust_domains: None,
        human_profiles: None,
        max_chain_depth: None,
        actors: None,
    });
    let trust_domains = match raw.trust_domains {
        None => None,
        Some(list) => {
            non_empty_list("identity.trust_domains", &list)?;
            for (i, td) in list.iter().enumerate() {
                if !spiffe::is_trust_domain(td) {
                    return Err(err(
                        format!("identity.trust_domains[{i}]"),
                        ConfigProblem::BadTrustDomain(td.clone()),
                    ));
                }
            }
            Some(list)
        }
    };
    let human_profiles = raw
        .human_profiles
        .unwrap_or_else(|| vec!["user".to_owned()]);
    for (i, h) in human_profiles.iter().enumerate() {
        // One profile name each: `sub_profile` values are split on spaces.
        if !clean(h) || h.contains(' ') {
            return Err(err(
                format!("identity.human_profiles[{i}]"),
                ConfigProblem::NotClean(h.clone()),
            ));
        }
    }
    let max_chain_depth = u32::try_from(range(
        "identity.max_chain_depth",
        u64::from(raw.max_chain_depth.unwrap_or(4)),
        0,
        u64::from(MAX_CONFIGURABLE_CHAIN_DEPTH),
    )?)
    .unwrap_or(MAX_CONFIGURABLE_CHAIN_DEPTH);
    let actors = match raw.actors {
        None => None,
        Some(map) => {
            let mut out = BTreeMap::new();
            for (id, actor) in map {
                let path = format!("identity.actors.{id}");
                if let Some(tds) = &trust_domains {
                    if !spiffe::in_trust_domains(&id, tds) {
                        return Err(err(path, ConfigProblem::ActorOutsideTrustDomains(id)));
                    }
                }
                let ceiling = match actor.max_scopes {
                    None => None,
                    Some(scopes) => {
                        for (i, s) in scopes.iter().enumerate() {
                            if !scope_ok(s) {
                                return Err(err(
                                    format!("{path}.max_scopes[{i}]"),
                                    ConfigProblem::BadScope(s.clone()),
                                ));
                            }
                        }
                        Some(scopes.into_iter().collect())
                    }
                };
                out.insert(id, ceiling);
            }
            Some(out)
        }
    };
    Ok(Identity {
        trust_domains,
        human_profiles,
        max_chain_depth,
        actors,
    })
}

fn build_rule(
    i: usize,
    r: RawRule,
    providers: &[Provider],
    identity: &Identity,
) -> Result<Rule, ConfigError> {
    let at = |field: &str| format!("rules[{i}].{field}");
    // Rule ids go into the `x-agent-rule` header, audit records and metric names.
    let id_ok = (1..=128).contains(&r.id.len())
        && r.id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b));
    if !id_ok {
        return Err(err(at("id"), ConfigProblem::BadRuleId(r.id)));
    }
    let path = match (r.matcher.path_prefix, r.matcher.path_exact) {
        (Some(p), None) => PathMatch::Prefix(p),
        (None, Some(p)) => PathMatch::Exact(p),
        _ => return Err(err(at("match"), ConfigProblem::PathMatchCount)),
    };
    let (PathMatch::Prefix(p) | PathMatch::Exact(p)) = &path;
    let field = if matches!(path, PathMatch::Prefix(_)) {
        "match.path_prefix"
    } else {
        "match.path_exact"
    };
    if !p.starts_with('/') {
        return Err(err(at(field), ConfigProblem::PathNotAbsolute(p.clone())));
    }
    // A rule path a normalized request path can never equal would silently match nothing
    // and let requests fall through to a weaker rule.
    if p.contains(['?', '#']) || !crate::core::request::path::is_normalized(p) {
        return Err(err(at(field), ConfigProblem::PathNeverMatches(p.clone())));
    }
    if let Some(methods) = &r.matcher.methods {
        non_empty_list(&at("match.methods"), methods)?;
        for (j, m) in methods.iter().enumerate() {
            if m.is_empty()
                || !m
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b == b'-' || b == b'_')
            {
                return Err(err(
                    at(&format!("match.methods[{j}]")),
                    ConfigProblem::BadMethod(m.clone()),
                ));
            }
        }
    }
    let allow_anonymous = r.allow_anonymous.unwrap_or(false);
    let provider_indices = match r.providers {
        None => (0..providers.len()).collect(),
        Some(names) => {
            non_empty_list(&at("providers"), &names)?;
            let mut out = Vec::new();
            for (j, n) in names.iter().enumerate() {
                let idx = providers.iter().position(|p| &p.name == n).ok_or_else(|| {
                    err(
                        at(&format!("providers[{j}]")),
                        ConfigProblem::UnknownProvider(n.clone()),
                    )
                })?;
                out.push(idx);
            }
            out
        }
    };
    if !allow_anonymous && provider_indices.is_empty() {
        return Err(err(format!("rules[{i}]"), ConfigProblem::NoProviders));
    }
    let require = match r.require {
        None => Require::default(),
        Some(_) if allow_anonymous => {
            return Err(err(at("require"), ConfigProblem::AnonymousWithRequire))
        }
        Some(req) => {
            let scopes = req.scopes.unwrap_or_default();
            for (j, s) in scopes.iter().enumerate() {
                if !scope_ok(s) {
                    return Err(err(
                        at(&format!("require.scopes[{j}]")),
                        ConfigProblem::BadScope(s.clone()),
                    ));
                }
            }
            if req.delegated == Some(false)
                && (req.actors.is_some() || req.max_chain_depth.is_some())
            {
                return Err(err(
                    at("require.delegated"),
                    ConfigProblem::DelegationContradiction,
                ));
            }
            if req.delegated == Some(true) && req.max_chain_depth == Some(0) {
                return Err(err(
                    at("require.max_chain_depth"),
                    ConfigProblem::DelegationContradiction,
                ));
            }
            if let Some(actors) = &req.actors {
                non_empty_list(&at("require.actors"), actors)?;
                for (j, a) in actors.iter().enumerate() {
                    let path = at(&format!("require.actors[{j}]"));
                    if !clean(a) {
                        return Err(err(path, ConfigProblem::NotClean(a.clone())));
                    }
                    // An actor the identity section would refuse can never pass this rule.
                    if let Some(tds) = &identity.trust_domains {
                        if !spiffe::in_trust_domains(a, tds) {
                            return Err(err(
                                path,
                                ConfigProblem::ActorOutsideTrustDomains(a.clone()),
                            ));
                        }
                    }
                    if identity.actors.as_ref().is_some_and(|m| !m.contains_key(a)) {
                        return Err(err(path, ConfigProblem::ActorNotInAllowlist(a.clone())));
                    }
                }
            }
            if let Some(d) = req.max_chain_depth {
                range(
                    &at("require.max_chain_depth"),
                    u64::from(d),
                    0,
                    u64::from(MAX_CONFIGURABLE_CHAIN_DEPTH),
                )?;
            }
            if let Some(f) = req.fresh_auth_s {
                range(&at("require.fresh_auth_s"), f, 0, 365 * 86_400)?;
            }
            let claims = req.claims.unwrap_or_default();
            for (name, values) in &claims {
                non_empty_list(&at(&format!("require.claims.{name}")), values)?;
            }
            Require {
                scopes,
                human_subject: req.human_subject.unwrap_or(false),
                delegated: req.delegated,
                actors: req.actors,
                max_chain_depth: req.max_chain_depth,
                fresh_auth_s: req.fresh_auth_s,
                claims,
            }
        }
    };
    Ok(Rule {
        id: r.id,
        path,
        methods: r.matcher.methods,
        allow_anonymous,
        providers: provider_indices,
        require,
        mode: Mode::Enforce, // set by `build` from the rule's and the policy's `mode`
    })
}
