//! The MCP parts of a configuration (SPEC §9): the top-level `mcp` block, a rule's
//! `match.mcp`, and `require.arguments` — raw (serde, `deny_unknown_fields`, like
//! `config/raw.rs`) and checked. Errors name their JSON path through `ConfigProblem::Mcp`.

use super::arguments::Pointer;
use crate::core::config::{ConfigError, ConfigProblem};
use crate::core::limits::{
    DEFAULT_MCP_MAX_BODY_BYTES, DEFAULT_MCP_MAX_RESPONSE_BYTES, MAX_ARGUMENT_CONDITIONS,
    MAX_MCP_BODY_BYTES, MAX_MCP_RESPONSE_BYTES,
};
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use std::fmt;

fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

// ---------------------------------------------------------------------------------------
// Raw.

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMcp {
    /// Paths of the MCP endpoints; required, non-empty.
    pub endpoints: Vec<String>,
    /// Largest MCP request body. Defaults to `65536` (`DEFAULT_MCP_MAX_BODY_BYTES`).
    #[serde(default, deserialize_with = "present")]
    pub max_body_bytes: Option<u64>,
    /// The protected resource (RFC 8707 / RFC 9728). Defaults to none: no discovery.
    #[serde(default, deserialize_with = "present")]
    pub resource: Option<String>,
    /// Authorization servers in the metadata. Defaults to every provider's issuer.
    #[serde(default, deserialize_with = "present")]
    pub authorization_servers: Option<Vec<String>>,
    /// Human-readable name in the metadata. Defaults to none.
    #[serde(default, deserialize_with = "present")]
    pub resource_name: Option<String>,
    /// Filter allowed `tools/list` responses. Defaults to `true`.
    #[serde(default, deserialize_with = "present")]
    pub filter_tools_list: Option<bool>,
    /// Largest `tools/list` response filtered. Defaults to `1048576`.
    #[serde(default, deserialize_with = "present")]
    pub max_response_bytes: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMcpMatch {
    /// JSON-RPC methods. Defaults to any message with a method.
    #[serde(default, deserialize_with = "present")]
    pub methods: Option<Vec<String>>,
    /// Names (exact, or a prefix before a final `*`). Defaults to any name.
    #[serde(default, deserialize_with = "present")]
    pub names: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawArgument {
    /// RFC 6901 pointer into `arguments`; required.
    pub pointer: String,
    #[serde(default, deserialize_with = "present")]
    pub max: Option<serde_json::Number>,
    #[serde(default, deserialize_with = "present")]
    pub min: Option<serde_json::Number>,
    #[serde(default, deserialize_with = "present")]
    pub one_of: Option<Vec<Value>>,
    #[serde(default, deserialize_with = "present")]
    pub equals_claim: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub absent: Option<bool>,
}

// ---------------------------------------------------------------------------------------
// Checked.

/// The `mcp` block.
#[derive(Debug, Clone)]
pub struct McpConfig {
    /// Request paths (without query) whose `POST`s are MCP messages.
    pub endpoints: Vec<String>,
    /// Largest MCP request body, 1 to 1 MiB. Defaults to 64 KiB.
    pub max_body_bytes: usize,
    /// The protected resource; with it, discovery (RFC 9728) is on.
    pub resource: Option<String>,
    /// Where tokens for this resource come from. Defaults to every provider's issuer.
    pub authorization_servers: Vec<String>,
    pub resource_name: Option<String>,
    /// Whether allowed `tools/list` responses are filtered. Defaults to `true`.
    pub filter_tools_list: bool,
    /// Largest `tools/list` response filtered, 1 to 16 MiB. Defaults to 1 MiB.
    pub max_response_bytes: usize,
    /// With `resource`: the metadata URL and the request path that serves it.
    pub metadata: Option<super::metadata::Location>,
}

/// A rule's `match.mcp`.
#[derive(Debug, Clone, Default)]
pub struct McpMatch {
    /// `None`: any message with a method.
    pub methods: Option<Vec<String>>,
    /// `None`: any name (or none). An entry ending in `*` is a prefix.
    pub names: Option<Vec<String>>,
}

/// One `require.arguments` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct ArgumentCondition {
    /// As written (for details and explanations).
    pub pointer: String,
    pub(crate) tokens: Pointer,
    pub test: ArgumentTest,
}

/// The one test of an argument condition.
#[derive(Debug, Clone, PartialEq)]
pub enum ArgumentTest {
    Max(serde_json::Number),
    Min(serde_json::Number),
    OneOf(Vec<Value>),
    EqualsClaim(String),
    Absent,
}

impl ArgumentTest {
    /// The test's name in the configuration (`max`, `one_of`, …).
    pub fn name(&self) -> &'static str {
        match self {
            ArgumentTest::Max(_) => "max",
            ArgumentTest::Min(_) => "min",
            ArgumentTest::OneOf(_) => "one_of",
            ArgumentTest::EqualsClaim(_) => "equals_claim",
            ArgumentTest::Absent => "absent",
        }
    }
}

/// What is wrong with an MCP setting.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum McpConfigProblem {
    /// `match.mcp` or `require.arguments` without a top-level `mcp` block: no request
    /// would ever be an MCP message, so the rule would silently never apply.
    NoMcpBlock,
    /// An endpoint that is not an absolute, normalized path without query.
    BadEndpoint(String),
    /// `resource` that is not an absolute `https://` or `http://` URI without fragment.
    BadResource(String),
    /// A `names` entry with a `*` that is not its last character.
    BadNamePattern(String),
    /// Not a JSON pointer (RFC 6901).
    BadPointer(String),
    /// Not exactly one test in an argument condition.
    TestCount,
    /// `absent: false` tests nothing.
    AbsentFalse,
    /// `equals_claim` naming no claim.
    BadClaimName(String),
}

impl fmt::Display for McpConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use McpConfigProblem::*;
        match self {
            NoMcpBlock => f.write_str(
                "MCP conditions need the top-level `mcp` block (no request would be an MCP message)",
            ),
            BadEndpoint(p) => write!(
                f,
                "`{p}` must be an absolute, normalized path without query or fragment"
            ),
            BadResource(r) => write!(
                f,
                "`{r}` must be an absolute https:// or http:// URI without fragment"
            ),
            BadNamePattern(n) => write!(f, "`{n}`: `*` is allowed only as the last character"),
            BadPointer(p) => write!(f, "`{p}` is not a JSON pointer (RFC 6901)"),
            TestCount => f.write_str(
                "needs exactly one of `max`, `min`, `one_of`, `equals_claim`, `absent`",
            ),
            AbsentFalse => f.write_str("`absent` can only be `true`"),
            BadClaimName(c) => write!(f, "`{c}` is not a claim name"),
        }
    }
}

impl McpConfigProblem {
    /// The same problem with the user input it carries cut to `limits::MAX_ERROR_INPUT`.
    pub(crate) fn clipped(self) -> McpConfigProblem {
        use crate::core::limits::clip_for_error as c;
        use McpConfigProblem::*;
        match self {
            BadEndpoint(v) => BadEndpoint(c(v)),
            BadResource(v) => BadResource(c(v)),
            BadNamePattern(v) => BadNamePattern(c(v)),
            BadPointer(v) => BadPointer(c(v)),
            BadClaimName(v) => BadClaimName(c(v)),
            other => other,
        }
    }
}

fn mcp_err(path: impl Into<String>, problem: McpConfigProblem) -> ConfigError {
    crate::core::config::config_err(path, ConfigProblem::Mcp(problem))
}

fn range_err(path: &str, value: u64, min: u64, max: u64) -> Result<usize, ConfigError> {
    if (min..=max).contains(&value) {
        return usize::try_from(value).map_err(|_| {
            crate::core::config::config_err(path, ConfigProblem::OutOfRange { value, min, max })
        });
    }
    Err(crate::core::config::config_err(
        path,
        ConfigProblem::OutOfRange { value, min, max },
    ))
}

fn non_empty<T>(path: &str, list: &[T]) -> Result<(), ConfigError> {
    if list.is_empty() {
        return Err(crate::core::config::config_err(path, ConfigProblem::Empty));
    }
    Ok(())
}

fn clean(path: &str, value: &str) -> Result<(), ConfigError> {
    if value.is_empty() || value.trim() != value || value.chars().any(char::is_control) {
        return Err(crate::core::config::config_err(
            path,
            ConfigProblem::NotClean(value.to_owned()),
        ));
    }
    Ok(())
}

/// `mcp` → `McpConfig`. `issuers`: every provider's issuer, the default
/// `authorization_servers`.
pub(crate) fn build_mcp(raw: RawMcp, issuers: &[String]) -> Result<McpConfig, ConfigError> {
    non_empty("mcp.endpoints", &raw.endpoints)?;
    for (i, e) in raw.endpoints.iter().enumerate() {
        let ok = e.starts_with('/')
            && !e.contains(['?', '#'])
            && crate::core::request::path::is_normalized(e);
        if !ok {
            return Err(mcp_err(
                format!("mcp.endpoints[{i}]"),
                McpConfigProblem::BadEndpoint(e.clone()),
            ));
        }
    }
    let max_body_bytes = match raw.max_body_bytes {
        None => DEFAULT_MCP_MAX_BODY_BYTES,
        Some(v) => range_err("mcp.max_body_bytes", v, 1, MAX_MCP_BODY_BYTES as u64)?,
    };
    let max_response_bytes = match raw.max_response_bytes {
        None => DEFAULT_MCP_MAX_RESPONSE_BYTES,
        Some(v) => range_err(
            "mcp.max_response_bytes",
            v,
            1,
            MAX_MCP_RESPONSE_BYTES as u64,
        )?,
    };
    let metadata = match &raw.resource {
        None => None,
        Some(r) => Some(
            super::metadata::Location::of(r)
                .ok_or_else(|| mcp_err("mcp.resource", McpConfigProblem::BadResource(r.clone())))?,
        ),
    };
    let authorization_servers = match raw.authorization_servers {
        None => {
            let mut all = issuers.to_vec();
            all.sort();
            all.dedup();
            all
        }
        Some(list) => {
            non_empty("mcp.authorization_servers", &list)?;
            for (i, s) in list.iter().enumerate() {
                clean(&format!("mcp.authorization_servers[{i}]"), s)?;
            }
            list
        }
    };
    if let Some(name) = &raw.resource_name {
        clean("mcp.resource_name", name)?;
    }
    Ok(McpConfig {
        endpoints: raw.endpoints,
        max_body_bytes,
        resource: raw.resource,
        authorization_servers,
        resource_name: raw.resource_name,
        filter_tools_list: raw.filter_tools_list.unwrap_or(true),
        max_response_bytes,
        metadata,
    })
}

/// `rules[i].match.mcp` → `McpMatch`. `at` is `rules[i]`.
pub(crate) fn build_match(
    at: &str,
    raw: RawMcpMatch,
    has_mcp: bool,
) -> Result<McpMatch, ConfigError> {
    if !has_mcp {
        return Err(mcp_err(
            format!("{at}.match.mcp"),
            McpConfigProblem::NoMcpBlock,
        ));
    }
    if let Some(methods) = &raw.methods {
        let path = format!("{at}.match.mcp.methods");
        non_empty(&path, methods)?;
        for (j, m) in methods.iter().enumerate() {
            clean(&format!("{path}[{j}]"), m)?;
        }
    }
    if let Some(names) = &raw.names {
        let path = format!("{at}.match.mcp.names");
        non_empty(&path, names)?;
        for (j, n) in names.iter().enumerate() {
            let item = format!("{path}[{j}]");
            clean(&item, n)?;
            if n.trim_end_matches('*').contains('*') || n.ends_with("**") {
                return Err(mcp_err(item, McpConfigProblem::BadNamePattern(n.clone())));
            }
        }
    }
    Ok(McpMatch {
        methods: raw.methods,
        names: raw.names,
    })
}

/// `rules[i].require.arguments` → conditions. `at` is `rules[i]`.
pub(crate) fn build_arguments(
    at: &str,
    raw: Vec<RawArgument>,
    has_mcp: bool,
) -> Result<Vec<ArgumentCondition>, ConfigError> {
    let path = format!("{at}.require.arguments");
    if !has_mcp {
        return Err(mcp_err(path, McpConfigProblem::NoMcpBlock));
    }
    non_empty(&path, &raw)?;
    if raw.len() > MAX_ARGUMENT_CONDITIONS {
        return Err(crate::core::config::config_err(
            path,
            ConfigProblem::OutOfRange {
                value: raw.len() as u64,
                min: 1,
                max: MAX_ARGUMENT_CONDITIONS as u64,
            },
        ));
    }
    raw.into_iter()
        .enumerate()
        .map(|(j, a)| condition(&format!("{path}[{j}]"), a))
        .collect()
}

fn condition(at: &str, a: RawArgument) -> Result<ArgumentCondition, ConfigError> {
    let tokens = Pointer::parse(&a.pointer).ok_or_else(|| {
        mcp_err(
            format!("{at}.pointer"),
            McpConfigProblem::BadPointer(a.pointer.clone()),
        )
    })?;
    let mut tests = Vec::new();
    if let Some(n) = a.max {
        tests.push(ArgumentTest::Max(n));
    }
    if let Some(n) = a.min {
        tests.push(ArgumentTest::Min(n));
    }
    if let Some(values) = a.one_of {
        non_empty(&format!("{at}.one_of"), &values)?;
        tests.push(ArgumentTest::OneOf(values));
    }
    if let Some(claim) = a.equals_claim {
        if claim.is_empty() || claim.chars().any(char::is_control) {
            return Err(mcp_err(
                format!("{at}.equals_claim"),
                McpConfigProblem::BadClaimName(claim),
            ));
        }
        tests.push(ArgumentTest::EqualsClaim(claim));
    }
    match a.absent {
        Some(true) => tests.push(ArgumentTest::Absent),
        Some(false) => {
            return Err(mcp_err(
                format!("{at}.absent"),
                McpConfigProblem::AbsentFalse,
            ))
        }
        None => {}
    }
    let mut tests = tests.into_iter();
    match (tests.next(), tests.next()) {
        (Some(test), None) => Ok(ArgumentCondition {
            pointer: a.pointer,
            tokens,
            test,
        }),
        _ => Err(mcp_err(at, McpConfigProblem::TestCount)),
    }
}

/// Things that load but are probably wrong (`actwarden lint` prints them as warnings):
/// SPEC §9 — a token for this resource carries `resource` as its audience (RFC 8707), so
/// some provider's `audiences` should contain it.
pub fn warnings(policy: &crate::core::config::Policy) -> Vec<String> {
    let Some(resource) = policy.mcp.as_ref().and_then(|m| m.resource.as_ref()) else {
        return Vec::new();
    };
    if policy
        .providers
        .iter()
        .any(|p| p.audiences.contains(resource))
    {
        return Vec::new();
    }
    vec![format!(
        "mcp.resource: `{resource}` is in no provider's `audiences`; tokens minted for this resource (RFC 8707) would be refused as audience_mismatch"
    )]
}
