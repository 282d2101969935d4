//! Phase one of loading: the configuration exactly as written (SPEC §2), with serde and
//! `deny_unknown_fields` everywhere, so a typo is an error that names its path rather
//! than a setting silently ignored. Nothing here is checked beyond JSON types; `Policy`
//! (phase two) does that once, and every request uses only the checked form.

use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Token issuers by name. Defaults to none (then only anonymous rules can load).
    #[serde(default)]
    pub providers: BTreeMap<String, RawProvider>,
    /// Defaults to no trust-domain pinning, no actor allowlist, `human_profiles`
    /// `["user"]`, `max_chain_depth` 4.
    pub identity: Option<RawIdentity>,
    /// Defaults to `cnf: "if_present"`, `actor_must_match_peer: false`.
    pub binding: Option<RawBinding>,
    /// Defaults to empty lists.
    pub revoked: Option<RawRevoked>,
    /// Required; tried in order, the first match decides.
    pub rules: Vec<RawRule>,
    /// Defaults to `deny` (`route_denied`).
    pub on_no_match: Option<RawOnNoMatch>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProvider {
    /// Required, compared exactly with `iss`.
    pub issuer: String,
    /// Required and non-empty.
    pub audiences: Vec<String>,
    /// Exactly one of `local_jwks` and `remote_jwks`.
    pub local_jwks: Option<RawLocalJwks>,
    pub remote_jwks: Option<RawRemoteJwks>,
    /// Defaults to every asymmetric algorithm the keys can verify (all nine for remote
    /// keys). HMAC is never a default.
    pub algorithms: Option<Vec<String>>,
    /// Defaults to `["at+jwt", "jwt"]`.
    pub token_types: Option<Vec<String>>,
    /// Defaults to 60.
    pub clock_skew_s: Option<u64>,
    /// Defaults to 86400.
    pub max_lifetime_s: Option<u64>,
    /// Defaults to `authorization` with prefix `Bearer ` (matched case-insensitively).
    pub from_headers: Option<Vec<RawFromHeader>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLocalJwks {
    pub inline_string: Option<String>,
    pub filename: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRemoteJwks {
    pub http_uri: RawHttpUri,
    /// Defaults to 300.
    pub cache_duration_s: Option<u64>,
    /// Defaults to 86400: how long the last good keys outlive failed refreshes.
    pub max_stale_s: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHttpUri {
    pub uri: String,
    pub cluster: String,
    /// Defaults to 2000.
    pub timeout_ms: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFromHeader {
    pub name: String,
    pub value_prefix: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIdentity {
    /// Defaults to no pinning.
    pub trust_domains: Option<Vec<String>>,
    /// Defaults to `["user"]`.
    pub human_profiles: Option<Vec<String>>,
    /// Defaults to 4.
    pub max_chain_depth: Option<u32>,
    /// Defaults to no allowlist; when present, only these actors may appear in a chain.
    pub actors: Option<BTreeMap<String, RawActor>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawActor {
    /// Defaults to no ceiling.
    pub max_scopes: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBinding {
    /// Defaults to `if_present`.
    pub cnf: Option<RawCnfMode>,
    /// Defaults to false.
    pub actor_must_match_peer: Option<bool>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RawCnfMode {
    IfPresent,
    Required,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRevoked {
    #[serde(default)]
    pub jti: Vec<String>,
    #[serde(default)]
    pub subjects: Vec<String>,
    #[serde(default)]
    pub actors: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    pub id: String,
    #[serde(rename = "match")]
    pub matcher: RawMatch,
    /// Defaults to false: a token is required.
    pub allow_anonymous: Option<bool>,
    /// Defaults to every provider.
    pub providers: Option<Vec<String>>,
    /// Defaults to no requirement beyond a valid token.
    pub require: Option<RawRequire>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMatch {
    /// Exactly one of `path_prefix` and `path_exact`.
    pub path_prefix: Option<String>,
    pub path_exact: Option<String>,
    /// Defaults to any method.
    pub methods: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRequire {
    pub scopes: Option<Vec<String>>,
    pub human_subject: Option<bool>,
    pub delegated: Option<bool>,
    pub actors: Option<Vec<String>>,
    pub max_chain_depth: Option<u32>,
    pub fresh_auth_s: Option<u64>,
    pub claims: Option<BTreeMap<String, Vec<Value>>>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RawOnNoMatch {
    Deny,
    Allow,
}
