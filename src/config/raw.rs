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
    #[serde(default)]
    pub providers: BTreeMap<String, RawProvider>,
    pub identity: Option<RawIdentity>,
    pub binding: Option<RawBinding>,
    pub revoked: Option<RawRevoked>,
    pub rules: Vec<RawRule>,
    pub on_no_match: Option<RawOnNoMatch>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProvider {
    pub issuer: String,
    pub audiences: Vec<String>,
    pub local_jwks: Option<RawLocalJwks>,
    pub remote_jwks: Option<RawRemoteJwks>,
    pub algorithms: Option<Vec<String>>,
    pub token_types: Option<Vec<String>>,
    pub clock_skew_s: Option<u64>,
    pub max_lifetime_s: Option<u64>,
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
    pub cache_duration_s: Option<u64>,
    pub max_stale_s: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHttpUri {
    pub uri: String,
    pub cluster: String,
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
    pub trust_domains: Option<Vec<String>>,
    pub human_profiles: Option<Vec<String>>,
    pub max_chain_depth: Option<u32>,
    pub actors: Option<BTreeMap<String, RawActor>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawActor {
    pub max_scopes: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBinding {
    pub cnf: Option<RawCnfMode>,
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
    pub allow_anonymous: Option<bool>,
    pub providers: Option<Vec<String>>,
    pub require: Option<RawRequire>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMatch {
    pub path_prefix: Option<String>,
    pub path_exact: Option<String>,
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
