//! Phase two of loading: `RawConfig` → an immutable, checked `Policy`, built once (in
//! Envoy's `on_configure`, the playground's lint, the CLI's start) and shared by every
//! request. Every error names the JSON path it is about.
//!
//! The steps, in the order a document is read: `raw` (the types of phase one) read by
//! `shape` (serde, with the JSON path of a shape error), `identity`,
//! `provider` (keys, algorithms, token types, time settings, token sources), `rule`
//! (match, providers, require); `error` holds what any of them can refuse.

mod dpop;
mod error;
mod identity;
mod mode;
mod provider;
mod raw;
mod rule;
mod shape;

pub(crate) use dpop::DPOP_PROOF_HEADER;
pub use dpop::{DpopConfig, DpopMode};
pub(crate) use error::err as config_err;
pub use error::{ConfigError, ConfigProblem, SyntaxProblem};
pub use mode::Mode;
// Reachable as `ConfigProblem::Syntax`'s payload; naming it outside needs a re-export in
// lib.rs (the facade), which this module does not own.
pub(crate) use provider::typ_is_one_of;

use crate::core::keys::alg::Alg;
use crate::core::keys::{self as jwk, KeySet};
use crate::core::token::json::{parse_strict, JsonProblem};
use error::err;
use raw::{RawAuditLog, RawBinding, RawCnfMode, RawConfig, RawOnNoMatch, RawRevoked};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt;
use std::sync::Arc;

// ---------------------------------------------------------------------------------------
// The checked policy. Each default is stated once, as a constant next to its field; the
// raw fields in `raw.rs` point here.

/// How `cnf` (RFC 7800 proof of possession) is enforced against the peer certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CnfMode {
    /// A token with `cnf` must match the peer; one without passes. The default.
    #[default]
    IfPresent,
    /// Every token must carry a `cnf` that matches the peer.
    Required,
}

/// Which decisions the host logs an audit line for (`audit.log`). Every decision still
/// has its record (the CLI and the playground always show it) and is counted in metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuditLog {
    /// Every decision (SPEC §6). The default.
    #[default]
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

/// What happens to a request no rule matches (`on_no_match`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnNoMatch {
    /// Denied with `route_denied`: a route nobody wrote a rule for is closed. The default.
    #[default]
    Deny,
    /// Passed on unchecked: for gateways where actwarden guards only some routes.
    Allow,
}

/// `from_headers` when a provider does not set it: `Authorization: Bearer <token>`.
pub(crate) const DEFAULT_TOKEN_HEADER: &str = "authorization";
/// The scheme of the default token source; matched case-insensitively.
pub(crate) const DEFAULT_TOKEN_PREFIX: &str = "Bearer ";

/// One place a token is read from: a header, and the prefix its value starts with.
#[derive(Debug, Clone)]
pub struct FromHeader {
    /// Lower-case header name, so it compares with any spelling. Defaults to
    /// `authorization` (`DEFAULT_TOKEN_HEADER`).
    pub name: String,
    /// What precedes the token in the value, matched case-insensitively (an auth scheme);
    /// `None` takes the whole value. Defaults to `Bearer ` (`DEFAULT_TOKEN_PREFIX`).
    pub value_prefix: Option<String>,
}

impl Default for FromHeader {
    fn default() -> Self {
        FromHeader {
            name: DEFAULT_TOKEN_HEADER.to_owned(),
            value_prefix: Some(DEFAULT_TOKEN_PREFIX.to_owned()),
        }
    }
}

/// `remote_jwks.http_uri.timeout_ms` when absent.
pub(crate) const DEFAULT_TIMEOUT_MS: u64 = 2000;
/// `remote_jwks.cache_duration_s` when absent.
pub(crate) const DEFAULT_CACHE_DURATION_S: u64 = 300;
/// `remote_jwks.max_stale_s` when absent: a day of outage at the key server.
pub(crate) const DEFAULT_MAX_STALE_S: u64 = 86_400;

/// Where a host fetches a provider's keys (`remote_jwks`); the core never fetches.
#[derive(Debug, Clone)]
pub struct RemoteJwks {
    /// The JWKS url, `http://` or `https://`; required.
    pub uri: String,
    /// The Envoy cluster that reaches `uri`; required, non-empty.
    pub cluster: String,
    /// How long one fetch may take, 1 to 60 000. Defaults to `2000` (`DEFAULT_TIMEOUT_MS`).
    pub timeout_ms: u64,
    /// How long fetched keys are used before a refresh, 1 s to a week. Defaults to `300`
    /// (`DEFAULT_CACHE_DURATION_S`).
    pub cache_duration_s: u64,
    /// How long the last good keys outlive failed refreshes, 0 to 30 days. Defaults to
    /// `86400` (`DEFAULT_MAX_STALE_S`).
    pub max_stale_s: u64,
}

/// A provider's keys: exactly one source, so a provider cannot have both or neither.
#[derive(Debug, Clone)]
pub enum KeyConfig {
    /// `local_jwks`: checked at load time and shared by every request.
    Local(Arc<KeySet>),
    /// `remote_jwks`: fetched by the host (`RemoteKeys`).
    Remote(RemoteJwks),
}

/// `token_types` when absent: RFC 9068 access tokens and plain JWTs.
pub(crate) const DEFAULT_TOKEN_TYPES: [&str; 2] = ["at+jwt", "jwt"];
/// `clock_skew_s` when absent.
pub(crate) const DEFAULT_CLOCK_SKEW_S: u64 = 60;
/// `max_lifetime_s` when absent: a day.
pub(crate) const DEFAULT_MAX_LIFETIME_S: u64 = 86_400;

/// A provider's name, shared by the policy, denials and audit records.
pub type ProviderName = std::sync::Arc<str>;
/// A rule's `id`, shared: decisions keep it for their audit record without copying it.
pub type RuleId = std::sync::Arc<str>;

/// A token issuer (`providers.<name>`).
#[derive(Debug, Clone)]
pub struct Provider {
    /// The key of `providers`: named by rules, metrics and audit records. Shared, so a
    /// denial or an audit record names its provider without copying the text.
    pub name: ProviderName,
    /// Compared exactly with `iss`; required, and unique across providers.
    pub issuer: String,
    /// `aud` must contain one of these; required, non-empty.
    pub audiences: Vec<String>,
    /// Where the verification keys come from; required (`local_jwks` or `remote_jwks`).
    pub keys: KeyConfig,
    /// The allowlist for a token's `alg`; never `none`, HMAC only with a matching `oct`
    /// key. Defaults to every asymmetric algorithm the keys can verify (all nine for
    /// remote keys).
    pub algorithms: Vec<Alg>,
    /// Accepted `typ` values, normalised: lower case, without an `application/` prefix.
    /// Defaults to `["at+jwt", "jwt"]` (`DEFAULT_TOKEN_TYPES`).
    pub token_types: Vec<String>,
    /// Seconds of leeway on `exp`, `nbf` and a future `iat`, 0 to 3600. Defaults to `60`
    /// (`DEFAULT_CLOCK_SKEW_S`).
    pub clock_skew_s: u64,
    /// Longest accepted `exp - iat` (or `exp - now`), 1 s to a year. Defaults to `86400`
    /// (`DEFAULT_MAX_LIFETIME_S`).
    pub max_lifetime_s: u64,
    /// Where this provider's tokens are read from. Defaults to `Authorization: Bearer`
    /// (`FromHeader::default`).
    pub from_headers: Vec<FromHeader>,
    /// Indices into `Policy::token_sources` of this provider's `from_headers`, so a token
    /// found in another provider's source is not taken for this one's.
    pub sources: Vec<usize>,
    /// DPoP (SPEC §10). Defaults to `DpopConfig::default()` (mode `off`).
    pub dpop: DpopConfig,
}

/// `identity.human_profiles` when absent.
pub(crate) const DEFAULT_HUMAN_PROFILES: [&str; 1] = ["user"];
/// `identity.max_chain_depth` when absent: four agents between the human and the API.
pub(crate) const DEFAULT_MAX_CHAIN_DEPTH: u32 = 4;

/// Who may appear as subject and actors (`identity`).
#[derive(Debug, Clone)]
pub struct Identity {
    /// Every actor, and every SPIFFE subject, must be `spiffe://<one of these>/…`.
    /// Defaults to `None`: no trust-domain pinning.
    pub trust_domains: Option<Vec<String>>,
    /// `sub_profile` values that make a subject human (`require.human_subject`).
    /// Defaults to `["user"]` (`DEFAULT_HUMAN_PROFILES`).
    pub human_profiles: Vec<String>,
    /// Longest accepted delegation chain, 0 to 32. Defaults to `4`
    /// (`DEFAULT_MAX_CHAIN_DEPTH`).
    pub max_chain_depth: u32,
    /// The actor allowlist; each entry's `Some(ceiling)` caps that actor's scopes.
    /// Defaults to `None`: no allowlist.
    pub actors: Option<BTreeMap<String, Option<BTreeSet<String>>>>,
}

impl Default for Identity {
    fn default() -> Self {
        Identity {
            trust_domains: None,
            human_profiles: DEFAULT_HUMAN_PROFILES.map(str::to_owned).to_vec(),
            max_chain_depth: DEFAULT_MAX_CHAIN_DEPTH,
            actors: None,
        }
    }
}

/// How a token is tied to the TLS peer (`binding`).
#[derive(Debug, Clone, Default)]
pub struct Binding {
    /// Whether `cnf` is required or checked only when present. Defaults to
    /// `CnfMode::IfPresent`.
    pub cnf: CnfMode,
    /// Whether the innermost actor must be the peer's SPIFFE ID. Defaults to `false`.
    pub actor_must_match_peer: bool,
}

/// Tokens refused whatever their signature (`revoked`).
#[derive(Debug, Clone, Default)]
pub struct Revoked {
    /// Revoked token ids (`jti`). Defaults to none.
    pub jti: HashSet<String>,
    /// Revoked subjects (`sub`). Defaults to none.
    pub subjects: HashSet<String>,
    /// Revoked actors, anywhere in a chain. Defaults to none.
    pub actors: HashSet<String>,
}

/// The path part of a rule's `match`: exactly one kind.
#[derive(Debug, Clone)]
pub enum PathMatch {
    /// `path_prefix`: the request path starts with this.
    Prefix(String),
    /// `path_exact`: the request path is this.
    Exact(String),
}

/// What a rule asks of a verified token (`rules[i].require`). `Default` is "a valid
/// token, nothing more", what a rule without `require` asks.
#[derive(Debug, Clone, Default)]
pub struct Require {
    /// Every one of these must be among the effective scopes. Defaults to none.
    pub scopes: Vec<String>,
    /// The subject must have a human `sub_profile`. Defaults to `false`.
    pub human_subject: bool,
    /// `Some(true)`: there must be an `act` chain; `Some(false)`: there must not.
    /// Defaults to `None`: either.
    pub delegated: Option<bool>,
    /// The innermost actor must be one of these. Defaults to `None`: any actor.
    pub actors: Option<Vec<String>>,
    /// A tighter chain depth for this rule. Defaults to `None`: the identity's.
    pub max_chain_depth: Option<u32>,
    /// `auth_time` must be at most this many seconds ago. Defaults to `None`: no limit.
    pub fresh_auth_s: Option<u64>,
    /// Each claim must hold one of its listed values. Defaults to none.
    pub claims: BTreeMap<String, Vec<Value>>,
    /// Conditions on MCP tool-call arguments, checked last. Defaults to none.
    pub arguments: Vec<crate::core::mcp::ArgumentCondition>,
}

/// One entry of `rules`.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Names the rule in `x-agent-rule`, audit records and metrics; required, unique.
    pub id: RuleId,
    /// Which request paths the rule is for; required.
    pub path: PathMatch,
    /// Upper-case methods the rule is for. Defaults to `None`: any method.
    pub methods: Option<Vec<String>>,
    /// Whether a request without a token passes (a present token is still verified).
    /// Defaults to `false`.
    pub allow_anonymous: bool,
    /// Indices into `Policy::providers` whose tokens this rule accepts. Defaults to all
    /// of them.
    pub providers: Vec<usize>,
    /// What a valid token must also show. Defaults to nothing more (`Require::default`).
    pub require: Require,
    /// This rule's own `mode`, else the policy's (SPEC §11).
    pub mode: Mode,
    /// MCP methods and names (SPEC §9); `Some` matches MCP messages only. Defaults to
    /// `None`: not about MCP.
    pub mcp: Option<crate::core::mcp::McpMatch>,
}

/// A checked, immutable configuration.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Token issuers, in name order. Defaults to none (then only anonymous rules load).
    pub providers: Vec<Provider>,
    /// Every distinct place a token is read from, over all providers: longest prefix
    /// first, prefix-less last, so a header value is read one way only.
    pub token_sources: Vec<FromHeader>,
    /// Who may appear in a token. Defaults to `Identity::default`.
    pub identity: Identity,
    /// Proof of possession and peer checks. Defaults to `Binding::default`.
    pub binding: Binding,
    /// Revocation lists. Defaults to empty.
    pub revoked: Revoked,
    /// Tried in order; the first whose `match` fits decides. Required.
    pub rules: Vec<Rule>,
    /// What a request no rule matches gets. Defaults to `OnNoMatch::Deny`.
    pub on_no_match: OnNoMatch,
    /// Which decisions are logged (`audit.log`). Defaults to `AuditLog::All`.
    pub audit_log: AuditLog,
    /// Top-level `mode`: applies to decisions made before a rule matched (SPEC §11).
    pub mode: Mode,
    /// MCP endpoints, discovery and filtering (SPEC §9). Defaults to `None`.
    pub mcp: Option<crate::core::mcp::McpConfig>,
}

pub(crate) use crate::core::file::FileReader;

/// How a load may read `local_jwks.filename`.
#[derive(Clone, Copy)]
enum Files<'a> {
    /// A host without files (Envoy, the playground): `filename` is refused.
    Unavailable,
    /// The host's reader (the CLI).
    Reader(FileReader<'a>),
}

impl Policy {
    /// Loads a configuration in a host without files: `local_jwks.filename` is refused.
    pub fn from_json(text: &str) -> Result<Policy, ConfigError> {
        load_json(text, Files::Unavailable)
    }

    /// Loads Envoy's `configuration` / Istio's `pluginConfig`: the SPEC §2 document as a
    /// JSON object, or a JSON string that holds it (what a `StringValue` carrying an
    /// escaped document, or a templating tool, produces).
    pub fn from_plugin_config(bytes: &[u8]) -> Result<Policy, ConfigError> {
        let syntax = |problem| err("", ConfigProblem::Syntax(problem));
        let text = std::str::from_utf8(bytes).map_err(|_| syntax(SyntaxProblem::NotUtf8))?;
        if text.trim_start().starts_with('"') {
            // `from_slice`, not `from_str`: the one serde_json reader the filter links
            // (same messages and positions; `text` is UTF-8 already).
            let inner: String = serde_json::from_slice(text.as_bytes())
                .map_err(|e| syntax(SyntaxProblem::StringNotJson(e.to_string())))?;
            return Self::from_json(&inner);
        }
        Self::from_json(text)
    }

    /// Loads a configuration in a host that reads `local_jwks.filename` with `read_file`.
    pub fn from_json_with_files(
        text: &str,
        read_file: FileReader<'_>,
    ) -> Result<Policy, ConfigError> {
        load_json(text, Files::Reader(read_file))
    }

    /// `from_json_with_files` for a document already parsed.
    pub fn from_value_with_files(
        value: Value,
        read_file: FileReader<'_>,
    ) -> Result<Policy, ConfigError> {
        load_value(value, Files::Reader(read_file))
    }

    /// Things that load but deserve a look: keys of a configured JWKS that were skipped
    /// (not for signatures, or of a type actwarden does not verify).
    pub fn notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        for p in &self.providers {
            if let KeyConfig::Local(set) = &p.keys {
                for s in &set.skipped {
                    notes.push(format!(
                        "providers.{}.local_jwks.keys[{}]: skipped: {}",
                        p.name,
                        s.index,
                        skip_note(&s.reason)
                    ));
                }
            }
        }
        notes
    }
}

fn skip_note(reason: &jwk::SkipReason) -> String {
    match reason {
        jwk::SkipReason::NotForSignatures => {
            "not for signature verification (`use` or `key_ops`)".to_owned()
        }
        jwk::SkipReason::UnsupportedKeyType(k) => format!("key type `{k}` is not supported"),
        jwk::SkipReason::UnsupportedCurve(c) => format!("curve `{c}` is not supported"),
        jwk::SkipReason::UnsupportedAlgorithm(a) => format!("algorithm `{a}` is not supported"),
    }
}

/// Strict JSON first (duplicate members are refused: serde would keep the last one).
fn load_json(text: &str, files: Files<'_>) -> Result<Policy, ConfigError> {
    let value = match parse_strict(text.as_bytes()) {
        Ok(v) => v,
        Err(JsonProblem::DuplicateMember(name)) => {
            return Err(err("", ConfigProblem::DuplicateMember(name)))
        }
        Err(JsonProblem::Syntax(message)) => {
            // serde_json's message with a line and column, from the strict parse itself
            // (not a second parse: one deserializer fewer in the filter).
            return Err(err(
                "",
                ConfigProblem::Syntax(SyntaxProblem::NotJson(Some(message))),
            ));
        }
    };
    load_value(value, files)
}

/// Phase one (serde, with the path of a shape error), then phase two.
fn load_value(value: Value, files: Files<'_>) -> Result<Policy, ConfigError> {
    let raw: RawConfig = shape::read(&value).map_err(|e| {
        err(
            e.path(),
            ConfigProblem::Syntax(SyntaxProblem::Shape(e.message().to_owned())),
        )
    })?;
    build(raw, files)
}

/// Phase two, section by section in document order; identity first, since providers and
/// rules are checked against it.
fn build(raw: RawConfig, files: Files<'_>) -> Result<Policy, ConfigError> {
    let mode = raw.mode.map_or(Mode::Enforce, Mode::from);
    let identity = identity::build_identity(raw.identity)?;
    let mut providers = Vec::with_capacity(raw.providers.len());
    for (name, p) in raw.providers {
        let provider = provider::build_provider(&name, p, files)?;
        if let Some(other) = providers
            .iter()
            .find(|o: &&Provider| o.issuer == provider.issuer)
        {
            return Err(err(
                format!("providers.{name}.issuer"),
                ConfigProblem::DuplicateIssuer {
                    other: other.name.to_string(),
                },
            ));
        }
        providers.push(provider);
    }
    let binding = raw.binding.map_or_else(Binding::default, build_binding);
    let revoked = raw.revoked.map_or_else(Revoked::default, build_revoked);
    let issuers: Vec<String> = providers.iter().map(|p| p.issuer.clone()).collect();
    let mcp = raw
        .mcp
        .map(|m| crate::core::mcp::config::build_mcp(m, &issuers))
        .transpose()?;
    let mut rules: Vec<Rule> = Vec::with_capacity(raw.rules.len());
    for (i, r) in raw.rules.into_iter().enumerate() {
        let own_mode = r.mode;
        let mut rule = rule::build_rule(i, r, &providers, &identity, mcp.is_some())?;
        rule.mode = mode::rule_mode(own_mode, mode);
        if rules.iter().any(|o| o.id == rule.id) {
            return Err(err(
                format!("rules[{i}].id"),
                ConfigProblem::DuplicateRuleId(rule.id.to_string()),
            ));
        }
        rules.push(rule);
    }
    let token_sources = provider::token_sources(&mut providers);
    Ok(Policy {
        providers,
        token_sources,
        identity,
        binding,
        revoked,
        rules,
        on_no_match: raw.on_no_match.map_or_else(OnNoMatch::default, Into::into),
        audit_log: raw
            .audit
            .and_then(|a| a.log)
            .map_or_else(AuditLog::default, Into::into),
        mode,
        mcp,
    })
}

fn build_binding(b: RawBinding) -> Binding {
    let default = Binding::default();
    Binding {
        cnf: b.cnf.map_or(default.cnf, Into::into),
        actor_must_match_peer: b
            .actor_must_match_peer
            .unwrap_or(default.actor_must_match_peer),
    }
}

fn build_revoked(r: RawRevoked) -> Revoked {
    Revoked {
        jti: r.jti.into_iter().collect(),
        subjects: r.subjects.into_iter().collect(),
        actors: r.actors.into_iter().collect(),
    }
}

impl From<RawCnfMode> for CnfMode {
    fn from(raw: RawCnfMode) -> Self {
        match raw {
            RawCnfMode::IfPresent => CnfMode::IfPresent,
            RawCnfMode::Required => CnfMode::Required,
        }
    }
}

impl From<RawOnNoMatch> for OnNoMatch {
    fn from(raw: RawOnNoMatch) -> Self {
        match raw {
            RawOnNoMatch::Deny => OnNoMatch::Deny,
            RawOnNoMatch::Allow => OnNoMatch::Allow,
        }
    }
}

impl From<RawAuditLog> for AuditLog {
    fn from(raw: RawAuditLog) -> Self {
        match raw {
            RawAuditLog::All => AuditLog::All,
            RawAuditLog::Denials => AuditLog::Denials,
        }
    }
}

/// The JSON path of an object in the document (`providers.corp`, `rules[2]`), to name
/// its members in errors.
struct JsonPath(String);

impl JsonPath {
    /// `<object>.<field>`; `field` may itself be a path (`require.scopes`).
    fn field(&self, field: &str) -> String {
        format!("{}.{field}", self.0)
    }

    /// `<object>.<field>[<index>]`.
    fn item(&self, field: &str, index: usize) -> String {
        format!("{}.{field}[{index}]", self.0)
    }
}

impl fmt::Display for JsonPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `value` when `min <= value <= max`; otherwise `OutOfRange` at `path`.
fn range(path: &str, value: u64, min: u64, max: u64) -> Result<u64, ConfigError> {
    if (min..=max).contains(&value) {
        Ok(value)
    } else {
        Err(err(path, ConfigProblem::OutOfRange { value, min, max }))
    }
}

/// A list that, when written, must say something: `[]` is never "no restriction".
fn non_empty_list<T>(path: &str, list: &[T]) -> Result<(), ConfigError> {
    if list.is_empty() {
        Err(err(path, ConfigProblem::Empty))
    } else {
        Ok(())
    }
}

/// A configured value that is copied into headers or logs, or compared with claims.
fn clean(value: &str) -> bool {
    !value.is_empty() && value.trim() == value && !value.chars().any(char::is_control)
}

fn scope_ok(s: &str) -> bool {
    // RFC 6749 §3.3: %x21 / %x23-5B / %x5D-7E.
    !s.is_empty()
        && s.bytes()
            .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]
mod tests;
