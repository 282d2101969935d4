//! Phase one of loading: the configuration exactly as written (SPEC §2), with serde and
//! `deny_unknown_fields` everywhere, so a typo is an error that names its path rather
//! than a setting silently ignored. Nothing here is checked beyond JSON types; `Policy`
//! (phase two) does that once, and every request uses only the checked form.

use super::mode::RawMode;
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use std::collections::BTreeMap;

/// An optional member that, when written, must hold a value: `"require": null` is an
/// error, not "no requirements" (a `null` must never switch a control off silently).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConfig {
    /// Token issuers by name. Defaults to none (then only anonymous rules can load).
    #[serde(default)]
    pub providers: BTreeMap<String, RawProvider>,
    /// Defaults to no trust-domain pinning, no actor allowlist, `human_profiles`
    /// `["user"]`, `max_chain_depth` 4.
    #[serde(default, deserialize_with = "present")]
    pub identity: Option<RawIdentity>,
    /// Defaults to `cnf: "if_present"`, `actor_must_match_peer: false`.
    #[serde(default, deserialize_with = "present")]
    pub binding: Option<RawBinding>,
    /// Defaults to empty lists.
    #[serde(default, deserialize_with = "present")]
    pub revoked: Option<RawRevoked>,
    /// Required; tried in order, the first match decides.
    pub rules: Vec<RawRule>,
    /// Defaults to `deny` (`route_denied`).
    #[serde(default, deserialize_with = "present")]
    pub on_no_match: Option<RawOnNoMatch>,
    /// Extension of SPEC §6. Defaults to `{"log": "all"}`.
    #[serde(default, deserialize_with = "present")]
    pub audit: Option<RawAudit>,
    /// SPEC §11. Defaults to `enforce`.
    #[serde(default, deserialize_with = "present")]
    pub mode: Option<RawMode>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAudit {
    /// Which decisions a host writes an audit line for. Defaults to `all`.
    #[serde(default, deserialize_with = "present")]
    pub log: Option<RawAuditLog>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum RawAuditLog {
    All,
    Denials,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawProvider {
    /// Required, compared exactly with `iss`.
    pub issuer: String,
    /// Required and non-empty.
    pub audiences: Vec<String>,
    /// Exactly one of `local_jwks` and `remote_jwks`.
    #[serde(default, deserialize_with = "present")]
    pub local_jwks: Option<RawLocalJwks>,
    #[serde(default, deserialize_with = "present")]
    pub remote_jwks: Option<RawRemoteJwks>,
    /// Defaults to every asymmetric algorithm the keys can verify (all nine for remote
    /// keys). HMAC is never a default.
    #[serde(default, deserialize_with = "present")]
    pub algorithms: Option<Vec<String>>,
    /// Defaults to `["at+jwt", "jwt"]`.
    #[serde(default, deserialize_with = "present")]
    pub token_types: Option<Vec<String>>,
    /// Defaults to 60.
    #[serde(default, deserialize_with = "present")]
    pub clock_skew_s: Option<u64>,
    /// Defaults to 86400.
    #[serde(default, deserialize_with = "present")]
    pub max_lifetime_s: Option<u64>,
    /// Defaults to `authorization` with prefix `Bearer ` (matched case-insensitively).
    #[serde(default, deserialize_with = "present")]
    pub from_headers: Option<Vec<RawFromHeader>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLocalJwks {
    #[serde(default, deserialize_with = "present")]
    pub inline_string: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub filename: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRemoteJwks {
    pub http_uri: RawHttpUri,
    /// Defaults to 300.
    #[serde(default, deserialize_with = "present")]
    pub cache_duration_s: Option<u64>,
    /// Defaults to 86400: how long the last good keys outlive failed refreshes.
    #[serde(default, deserialize_with = "present")]
    pub max_stale_s: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHttpUri {
    pub uri: String,
    pub cluster: String,
    /// Defaults to 2000.
    #[serde(default, deserialize_with = "present")]
    pub timeout_ms: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFromHeader {
    pub name: String,
    #[serde(default, deserialize_with = "present")]
    pub value_prefix: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawIdentity {
    /// Defaults to no pinning.
    #[serde(default, deserialize_with = "present")]
    pub trust_domains: Option<Vec<String>>,
    /// Defaults to `["user"]`.
    #[serde(default, deserialize_with = "present")]
    pub human_profiles: Option<Vec<String>>,
    /// Defaults to 4.
    #[serde(default, deserialize_with = "present")]
    pub max_chain_depth: Option<u32>,
    /// Defaults to no allowlist; when present, only these actors may appear in a chain.
    #[serde(default, deserialize_with = "present")]
    pub actors: Option<BTreeMap<String, RawActor>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawActor {
    /// Defaults to no ceiling.
    #[serde(default, deserialize_with = "present")]
    pub max_scopes: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBinding {
    /// Defaults to `if_present`.
    #[serde(default, deserialize_with = "present")]
    pub cnf: Option<RawCnfMode>,
    /// Defaults to false.
    #[serde(default, deserialize_with = "present")]
    pub actor_must_match_peer: Option<bool>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum RawCnfMode {
    IfPresent,
    Required,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRevoked {
    #[serde(default)]
    pub jti: Vec<String>,
    #[serde(default)]
    pub subjects: Vec<String>,
    #[serde(default)]
    pub actors: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRule {
    pub id: String,
    #[serde(rename = "match")]
    pub matcher: RawMatch,
    /// Defaults to false: a token is required.
    #[serde(default, deserialize_with = "present")]
    pub allow_anonymous: Option<bool>,
    /// Defaults to every provider.
    #[serde(default, deserialize_with = "present")]
    pub providers: Option<Vec<String>>,
    /// Defaults to no requirement beyond a valid token.
    #[serde(default, deserialize_with = "present")]
    pub require: Option<RawRequire>,
    /// SPEC §11. Defaults to the top-level `mode`.
    #[serde(default, deserialize_with = "present")]
    pub mode: Option<RawMode>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMatch {
    /// Exactly one of `path_prefix` and `path_exact`.
    #[serde(default, deserialize_with = "present")]
    pub path_prefix: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub path_exact: Option<String>,
    /// Defaults to any method.
    #[serde(default, deserialize_with = "present")]
    pub methods: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRequire {
    #[serde(default, deserialize_with = "present")]
    pub scopes: Option<Vec<String>>,
    #[serde(default, deserialize_with = "present")]
    pub human_subject: Option<bool>,
    #[serde(default, deserialize_with = "present")]
    pub delegated: Option<bool>,
    #[serde(default, deserialize_with = "present")]
    pub actors: Option<Vec<String>>,
    #[serde(default, deserialize_with = "present")]
    pub max_chain_depth: Option<u32>,
    #[serde(default, deserialize_with = "present")]
    pub fresh_auth_s: Option<u64>,
    #[serde(default, deserialize_with = "present")]
    pub claims: Option<BTreeMap<String, Vec<Value>>>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum RawOnNoMatch {
    Deny,
    Allow,
}
