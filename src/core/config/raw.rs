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
    /// Who may appear in a token. Defaults to no trust-domain pinning, no actor
    /// allowlist, `human_profiles` `["user"]`, `max_chain_depth` `4` (`Identity::default`).
    #[serde(default, deserialize_with = "present")]
    pub identity: Option<RawIdentity>,
    /// Ties between token and TLS peer. Defaults to `cnf: "if_present"`,
    /// `actor_must_match_peer: false` (`Binding::default`).
    #[serde(default, deserialize_with = "present")]
    pub binding: Option<RawBinding>,
    /// Tokens refused whatever their signature. Defaults to empty lists.
    #[serde(default, deserialize_with = "present")]
    pub revoked: Option<RawRevoked>,
    /// Required; tried in order, the first match decides.
    pub rules: Vec<RawRule>,
    /// What a request no rule matches gets. Defaults to `"deny"` (`route_denied`).
    #[serde(default, deserialize_with = "present")]
    pub on_no_match: Option<RawOnNoMatch>,
    /// Audit settings, an extension of SPEC §6. Defaults to `{"log": "all"}`.
    #[serde(default, deserialize_with = "present")]
    pub audit: Option<RawAudit>,
    /// SPEC §11. Defaults to `enforce`.
    #[serde(default, deserialize_with = "present")]
    pub mode: Option<RawMode>,
    /// MCP endpoints, discovery and tools/list filtering (SPEC §9). Defaults to none.
    #[serde(default, deserialize_with = "present")]
    pub mcp: Option<crate::core::mcp::config::RawMcp>,
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
    /// `"all"`: every decision.
    All,
    /// `"denials"`: denials only.
    Denials,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawProvider {
    /// Compared exactly with `iss`; required, unique across providers.
    pub issuer: String,
    /// `aud` must contain one of these; required and non-empty.
    pub audiences: Vec<String>,
    /// Keys in the configuration. Exactly one of `local_jwks` and `remote_jwks`.
    #[serde(default, deserialize_with = "present")]
    pub local_jwks: Option<RawLocalJwks>,
    /// Keys the host fetches. Exactly one of `local_jwks` and `remote_jwks`.
    #[serde(default, deserialize_with = "present")]
    pub remote_jwks: Option<RawRemoteJwks>,
    /// The `alg` allowlist. Defaults to every asymmetric algorithm the keys can verify
    /// (all nine for remote keys). HMAC is never a default.
    #[serde(default, deserialize_with = "present")]
    pub algorithms: Option<Vec<String>>,
    /// Accepted `typ` values. Defaults to `["at+jwt", "jwt"]` (`DEFAULT_TOKEN_TYPES`).
    #[serde(default, deserialize_with = "present")]
    pub token_types: Option<Vec<String>>,
    /// Leeway on `exp`, `nbf`, future `iat`. Defaults to `60` (`DEFAULT_CLOCK_SKEW_S`).
    #[serde(default, deserialize_with = "present")]
    pub clock_skew_s: Option<u64>,
    /// Longest accepted token lifetime. Defaults to `86400` (`DEFAULT_MAX_LIFETIME_S`).
    #[serde(default, deserialize_with = "present")]
    pub max_lifetime_s: Option<u64>,
    /// Where tokens are read from. Defaults to `authorization` with prefix `Bearer `
    /// (matched case-insensitively; `DEFAULT_TOKEN_HEADER`, `DEFAULT_TOKEN_PREFIX`).
    #[serde(default, deserialize_with = "present")]
    pub from_headers: Option<Vec<RawFromHeader>>,
    /// DPoP (RFC 9449, SPEC §10). Defaults to `{"mode": "off"}` (`DpopConfig::default`).
    #[serde(default, deserialize_with = "present")]
    pub dpop: Option<RawDpop>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDpop {
    /// `off`, `allowed` or `required`. Defaults to `"off"`.
    #[serde(default, deserialize_with = "present")]
    pub mode: Option<RawDpopMode>,
    /// Proof `alg` allowlist. Defaults to `["ES256", "EdDSA"]` (`DEFAULT_DPOP_ALGORITHMS`).
    #[serde(default, deserialize_with = "present")]
    pub algorithms: Option<Vec<String>>,
    /// How far a proof's `iat` may be from now. Defaults to `60` (`DEFAULT_DPOP_MAX_AGE_S`).
    #[serde(default, deserialize_with = "present")]
    pub max_age_s: Option<u64>,
    /// Live proofs remembered per provider. Defaults to `65536`
    /// (`DEFAULT_DPOP_REPLAY_WINDOW_ENTRIES`).
    #[serde(default, deserialize_with = "present")]
    pub replay_window_entries: Option<u64>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum RawDpopMode {
    /// `"off"`: no `DPoP` scheme; a `cnf.jkt` token is still refused as a bearer token.
    Off,
    /// `"allowed"`: `DPoP` or `Bearer` (unbound tokens only).
    Allowed,
    /// `"required"`: `DPoP` only.
    Required,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLocalJwks {
    /// The JWKS itself, as a string. Exactly one of `inline_string` and `filename`.
    #[serde(default, deserialize_with = "present")]
    pub inline_string: Option<String>,
    /// A JWKS file, for hosts that read files (the CLI). Exactly one of the two.
    #[serde(default, deserialize_with = "present")]
    pub filename: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRemoteJwks {
    /// Where the keys are fetched; required.
    pub http_uri: RawHttpUri,
    /// Seconds fetched keys are used before a refresh. Defaults to `300`
    /// (`DEFAULT_CACHE_DURATION_S`).
    #[serde(default, deserialize_with = "present")]
    pub cache_duration_s: Option<u64>,
    /// How long the last good keys outlive failed refreshes. Defaults to `86400`
    /// (`DEFAULT_MAX_STALE_S`).
    #[serde(default, deserialize_with = "present")]
    pub max_stale_s: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHttpUri {
    /// The JWKS url, `http://` or `https://`; required.
    pub uri: String,
    /// The Envoy cluster that reaches `uri`; required.
    pub cluster: String,
    /// How long one fetch may take. Defaults to `2000` (`DEFAULT_TIMEOUT_MS`).
    #[serde(default, deserialize_with = "present")]
    pub timeout_ms: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFromHeader {
    /// The header name (any case); required.
    pub name: String,
    /// What precedes the token in the value. Defaults to none: the whole value.
    #[serde(default, deserialize_with = "present")]
    pub value_prefix: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawIdentity {
    /// Trust domains every actor and SPIFFE subject must be in. Defaults to no pinning.
    #[serde(default, deserialize_with = "present")]
    pub trust_domains: Option<Vec<String>>,
    /// `sub_profile` values of a human. Defaults to `["user"]` (`DEFAULT_HUMAN_PROFILES`).
    #[serde(default, deserialize_with = "present")]
    pub human_profiles: Option<Vec<String>>,
    /// Longest delegation chain. Defaults to `4` (`DEFAULT_MAX_CHAIN_DEPTH`).
    #[serde(default, deserialize_with = "present")]
    pub max_chain_depth: Option<u32>,
    /// Defaults to no allowlist; when present, only these actors may appear in a chain.
    #[serde(default, deserialize_with = "present")]
    pub actors: Option<BTreeMap<String, RawActor>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawActor {
    /// The most this actor's scopes can be. Defaults to no ceiling.
    #[serde(default, deserialize_with = "present")]
    pub max_scopes: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBinding {
    /// How `cnf` is enforced. Defaults to `"if_present"` (`CnfMode::IfPresent`).
    #[serde(default, deserialize_with = "present")]
    pub cnf: Option<RawCnfMode>,
    /// Whether the innermost actor must be the TLS peer. Defaults to `false`.
    #[serde(default, deserialize_with = "present")]
    pub actor_must_match_peer: Option<bool>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum RawCnfMode {
    /// `"if_present"`: checked when the token has `cnf`.
    IfPresent,
    /// `"required"`: every token must have a matching `cnf`.
    Required,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRevoked {
    /// Revoked token ids. Defaults to none.
    #[serde(default)]
    pub jti: Vec<String>,
    /// Revoked subjects. Defaults to none.
    #[serde(default)]
    pub subjects: Vec<String>,
    /// Revoked actors. Defaults to none.
    #[serde(default)]
    pub actors: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRule {
    /// Names the rule in headers, audit records and metrics; required, unique.
    pub id: String,
    /// Which requests the rule is for; required.
    #[serde(rename = "match")]
    pub matcher: RawMatch,
    /// Whether a request without a token passes. Defaults to `false`: a token is required.
    #[serde(default, deserialize_with = "present")]
    pub allow_anonymous: Option<bool>,
    /// Providers whose tokens the rule accepts. Defaults to every provider.
    #[serde(default, deserialize_with = "present")]
    pub providers: Option<Vec<String>>,
    /// What a valid token must also show. Defaults to nothing beyond a valid token.
    #[serde(default, deserialize_with = "present")]
    pub require: Option<RawRequire>,
    /// SPEC §11. Defaults to the top-level `mode`.
    #[serde(default, deserialize_with = "present")]
    pub mode: Option<RawMode>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMatch {
    /// Request paths starting with this. Exactly one of `path_prefix` and `path_exact`.
    #[serde(default, deserialize_with = "present")]
    pub path_prefix: Option<String>,
    /// The one request path. Exactly one of `path_prefix` and `path_exact`.
    #[serde(default, deserialize_with = "present")]
    pub path_exact: Option<String>,
    /// Upper-case methods. Defaults to any method.
    #[serde(default, deserialize_with = "present")]
    pub methods: Option<Vec<String>>,
    /// MCP methods and names (SPEC §9). Defaults to none: the rule is not about MCP.
    #[serde(default, deserialize_with = "present")]
    pub mcp: Option<crate::core::mcp::config::RawMcpMatch>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRequire {
    /// Scopes that must all be effective. Defaults to none.
    #[serde(default, deserialize_with = "present")]
    pub scopes: Option<Vec<String>>,
    /// The subject must be human. Defaults to `false`.
    #[serde(default, deserialize_with = "present")]
    pub human_subject: Option<bool>,
    /// There must (`true`) or must not (`false`) be a chain. Defaults to either.
    #[serde(default, deserialize_with = "present")]
    pub delegated: Option<bool>,
    /// The innermost actor must be one of these. Defaults to any actor.
    #[serde(default, deserialize_with = "present")]
    pub actors: Option<Vec<String>>,
    /// A tighter chain depth for this rule. Defaults to `identity.max_chain_depth`.
    #[serde(default, deserialize_with = "present")]
    pub max_chain_depth: Option<u32>,
    /// Longest accepted age of `auth_time`. Defaults to no limit.
    #[serde(default, deserialize_with = "present")]
    pub fresh_auth_s: Option<u64>,
    /// Claims that must hold one of the listed values. Defaults to none.
    #[serde(default, deserialize_with = "present")]
    pub claims: Option<BTreeMap<String, Vec<Value>>>,
    /// Conditions on MCP tool-call arguments (SPEC §9). Defaults to none.
    #[serde(default, deserialize_with = "present")]
    pub arguments: Option<Vec<crate::core::mcp::config::RawArgument>>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum RawOnNoMatch {
    /// `"deny"`: refuse with `route_denied`.
    Deny,
    /// `"allow"`: pass the request on unchecked.
    Allow,
}
