//! Discovery (SPEC §9, RFC 9728 and RFC 8707): the protected-resource metadata document,
//! the local answer to its `GET`, and `resource_metadata="…"` in every 401 challenge, so
//! an MCP client that gets a 401 finds where to get a token.

use super::config::McpConfig;
use crate::core::config::{CnfMode, Policy};
use crate::core::decision::DenyResponse;
use crate::core::request::Request;
use serde_json::{json, Map, Value};

/// RFC 9728 §3: the well-known path segment.
const WELL_KNOWN: &str = "/.well-known/oauth-protected-resource";

/// Where the metadata of a `resource` lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// `resource` with the well-known segment between authority and path.
    pub url: String,
    /// The request path the gateway answers (`/.well-known/oauth-protected-resource/mcp`).
    pub path: String,
}

impl Location {
    /// `None` unless `resource` is an absolute `https`/`http` URI with an authority and
    /// no query or fragment (RFC 8707 §2).
    pub(crate) fn of(resource: &str) -> Option<Location> {
        let (scheme, rest) = resource.split_once("://")?;
        if !(scheme.eq_ignore_ascii_case("https") || scheme.eq_ignore_ascii_case("http")) {
            return None;
        }
        let clean = !resource.contains(['?', '#'])
            && !resource
                .chars()
                .any(|c| c.is_control() || c.is_whitespace() || c == '"');
        let (authority, path) = match rest.find('/') {
            Some(i) => (rest.get(..i)?, rest.get(i..)?),
            None => (rest, ""),
        };
        if !clean || authority.is_empty() {
            return None;
        }
        let path = if path == "/" { "" } else { path };
        Some(Location {
            url: format!("{scheme}://{authority}{WELL_KNOWN}{path}"),
            path: format!("{WELL_KNOWN}{path}"),
        })
    }
}

/// The RFC 9728 document for this policy (`actwarden metadata` prints it); `None` without
/// `mcp.resource`.
pub fn document(policy: &Policy) -> Option<Value> {
    let mcp: &McpConfig = policy.mcp.as_ref()?;
    let resource = mcp.resource.as_ref()?;
    let mut scopes: Vec<&String> = policy
        .rules
        .iter()
        .flat_map(|r| r.require.scopes.iter())
        .collect();
    scopes.sort();
    scopes.dedup();
    let mut doc = Map::new();
    doc.insert("resource".into(), json!(resource));
    doc.insert(
        "authorization_servers".into(),
        json!(mcp.authorization_servers),
    );
    doc.insert("scopes_supported".into(), json!(scopes));
    doc.insert("bearer_methods_supported".into(), json!(["header"]));
    if let Some(name) = &mcp.resource_name {
        doc.insert("resource_name".into(), json!(name));
    }
    let dpop_algs: Vec<&str> = policy
        .dpop_signing_algs()
        .iter()
        .map(|a| a.name())
        .collect();
    if !dpop_algs.is_empty() {
        doc.insert("dpop_signing_alg_values_supported".into(), json!(dpop_algs));
    }
    if policy.binding.cnf == CnfMode::Required {
        doc.insert(
            "tls_client_certificate_bound_access_tokens".into(),
            Value::Bool(true),
        );
    }
    Some(Value::Object(doc))
}

/// The local answer to `GET <metadata path>`; `None` for every other request.
pub(crate) fn answer(policy: &Policy, request: &Request) -> Option<DenyResponse> {
    let location = policy.mcp.as_ref()?.metadata.as_ref()?;
    if request.method != "GET" || request.path_only() != location.path {
        return None;
    }
    Some(DenyResponse {
        http_status: 200,
        headers: vec![
            ("content-type".to_owned(), "application/json".to_owned()),
            ("cache-control".to_owned(), "max-age=300".to_owned()),
        ],
        body: document(policy)?.to_string(),
    })
}

/// Adds `resource_metadata="<url>"` to the `WWW-Authenticate` of a 401 (RFC 9728 §5.1).
pub(crate) fn challenge(policy: &Policy, status: Option<u16>, response: &mut DenyResponse) {
    let Some(location) = policy.mcp.as_ref().and_then(|m| m.metadata.as_ref()) else {
        return;
    };
    if status != Some(401) {
        return;
    }
    for (name, value) in &mut response.headers {
        if name == "www-authenticate" {
            // `Bearer` alone (token_missing) takes the parameter after a space; a
            // challenge with parameters after a comma.
            let sep = if value.contains(' ') { ", " } else { " " };
            value.push_str(&format!("{sep}resource_metadata=\"{}\"", location.url));
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn well_known_goes_between_authority_and_path() {
        let l = Location::of("https://api.example.com/mcp").unwrap();
        assert_eq!(
            l.url,
            "https://api.example.com/.well-known/oauth-protected-resource/mcp"
        );
        assert_eq!(l.path, "/.well-known/oauth-protected-resource/mcp");
        let root = Location::of("https://api.example.com").unwrap();
        assert_eq!(root.path, WELL_KNOWN);
        assert_eq!(Location::of("https://api.example.com/").unwrap(), root);
        assert!(Location::of("ftp://x/y").is_none());
        assert!(Location::of("https://x/y#f").is_none());
        assert!(Location::of("https:///y").is_none());
        assert!(Location::of("/mcp").is_none());
    }
}
