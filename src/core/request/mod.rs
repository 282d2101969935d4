//! The request as the core sees it, and its JSON form (SPEC §7 `REQUEST.json`), which the
//! CLI, the playground and the test corpus share.

pub(crate) mod path;

use crate::core::token::b64;
use serde::Deserialize;
use std::collections::BTreeMap;

/// The mTLS peer, as Envoy reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Peer {
    /// First URI SAN of the client certificate (`connection.uri_san_peer_certificate`).
    pub uri_san: Option<String>,
    /// SHA-256 of the client certificate DER (`connection.sha256_peer_certificate_digest`).
    pub certificate_sha256: Option<[u8; 32]>,
}

#[derive(Debug, Clone, Default)]
pub struct Request {
    pub method: String,
    /// The `:scheme` pseudo-header (`http`/`https`); `None` reads as `https`
    /// (`scheme_or_default`). DPoP compares it with a proof's `htu` (SPEC §10).
    pub scheme: Option<String>,
    /// The `:path` pseudo-header, query included.
    pub path: String,
    pub authority: Option<String>,
    /// Header names in lower case; a repeated header appears once per value.
    pub headers: Vec<(String, String)>,
    /// `None`: no TLS client certificate on this connection.
    pub peer: Option<Peer>,
    /// The request body, when the host read it: only for MCP messages (SPEC §9), which
    /// hosts detect with `mcp::needs_body`. `None` on every other route.
    pub body: Option<Vec<u8>>,
}

impl Request {
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The only value of a header, `None` when absent or repeated.
    pub fn single_header<'a>(&'a self, name: &'a str) -> Option<&'a str> {
        let mut values = self.header_values(name);
        match (values.next(), values.next()) {
            (Some(v), None) => Some(v),
            _ => None,
        }
    }

    /// The request's scheme: `scheme`, else `https` (SPEC §10).
    pub fn scheme_or_default(&self) -> &str {
        self.scheme.as_deref().unwrap_or("https")
    }

    /// Path without query or fragment: what rules match and audit records show (a query
    /// may carry secrets).
    pub fn path_only(&self) -> &str {
        // A byte search: `?` and `#` are ASCII, and this runs several times per request.
        let end = self
            .path
            .bytes()
            .position(|b| b == b'?' || b == b'#')
            .unwrap_or(self.path.len());
        self.path.get(..end).unwrap_or(&self.path)
    }

    pub fn is_grpc(&self) -> bool {
        self.single_header("content-type")
            .is_some_and(|ct| ct.to_ascii_lowercase().starts_with("application/grpc"))
    }
}

#[derive(Debug, Deserialize)]
#[serde(untagged, expecting = "a string or an array of strings")]
enum HeaderValueJson {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PeerJson {
    uri_san: Option<String>,
    sha256_digest_hex: Option<String>,
    certificate_pem: Option<String>,
}

impl PeerJson {
    fn check(self) -> Result<Peer, RequestError> {
        let digest = match (self.sha256_digest_hex, self.certificate_pem) {
            (Some(_), Some(_)) => return Err(RequestError::PeerDigestAndCertificate),
            (Some(hex), None) => Some(
                b64::unhex(&hex)
                    .and_then(|b| <[u8; 32]>::try_from(b).ok())
                    .ok_or(RequestError::PeerDigestNotHex { value: hex })?,
            ),
            (None, Some(pem)) => Some(crate::core::verification::crypto::sha256(
                &pem_to_der(&pem).ok_or(RequestError::PeerCertificateNotPem)?,
            )),
            (None, None) => None,
        };
        Ok(Peer {
            uri_san: self.uri_san,
            certificate_sha256: digest,
        })
    }
}

impl Peer {
    /// Reads the `peer` object of SPEC §7 `REQUEST.json` on its own (errors name paths
    /// under `peer`).
    pub fn from_json(text: &str) -> Result<Peer, RequestError> {
        let de = &mut serde_json::Deserializer::from_str(text);
        let raw: PeerJson = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            RequestError::Invalid {
                path: if path == "." {
                    "peer".to_owned()
                } else {
                    format!("peer.{path}")
                },
                message: e.into_inner().to_string(),
            }
        })?;
        raw.check()
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RequestJson {
    method: String,
    scheme: Option<String>,
    path: String,
    authority: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, HeaderValueJson>,
    peer: Option<PeerJson>,
    /// The body as text (SPEC §9: what an MCP message says).
    body: Option<String>,
    /// The body as standard base64, for bodies that are not UTF-8 (tests of bad input).
    body_base64: Option<String>,
}

/// A request file (SPEC §7 `REQUEST.json`) that cannot be used. Its text starts with the
/// JSON path of the problem (`path()`), as the CLI prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RequestError {
    /// Not JSON, or not the shape of `REQUEST.json` at `path` (the parser's `message`).
    Invalid { path: String, message: String },
    /// `peer` gives both `sha256_digest_hex` and `certificate_pem`.
    PeerDigestAndCertificate,
    /// `peer.sha256_digest_hex` is not 64 hex digits.
    PeerDigestNotHex { value: String },
    /// `peer.certificate_pem` holds no PEM `CERTIFICATE` block.
    PeerCertificateNotPem,
    /// Both `body` and `body_base64`, or `body_base64` that is not base64.
    Body,
}

impl RequestError {
    /// The JSON path of the problem, e.g. `peer.sha256_digest_hex`; empty for the document.
    pub fn path(&self) -> &str {
        match self {
            RequestError::Invalid { path, .. } => path,
            RequestError::PeerDigestAndCertificate => "peer",
            RequestError::PeerDigestNotHex { .. } => "peer.sha256_digest_hex",
            RequestError::PeerCertificateNotPem => "peer.certificate_pem",
            RequestError::Body => "body",
        }
    }

    /// What is wrong there, without the path.
    pub fn message(&self) -> String {
        match self {
            RequestError::Invalid { message, .. } => message.clone(),
            RequestError::PeerDigestAndCertificate => {
                "give `sha256_digest_hex` or `certificate_pem`, not both".to_owned()
            }
            RequestError::PeerDigestNotHex { value } => {
                format!("`{value}` is not 64 hex digits")
            }
            RequestError::PeerCertificateNotPem => "not a PEM `CERTIFICATE` block".to_owned(),
            RequestError::Body => {
                "give `body` (text) or `body_base64` (standard base64), not both".to_owned()
            }
        }
    }
}

impl std::fmt::Display for RequestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.path() {
            "" => f.write_str(&self.message()),
            path => write!(f, "{path}: {}", self.message()),
        }
    }
}

impl std::error::Error for RequestError {}

impl Request {
    /// Reads SPEC §7 `REQUEST.json`. Header names are lower-cased; an array value is a
    /// repeated header.
    pub fn from_json(text: &str) -> Result<Request, RequestError> {
        let de = &mut serde_json::Deserializer::from_str(text);
        let raw: RequestJson = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            RequestError::Invalid {
                path: if path == "." { String::new() } else { path },
                message: e.into_inner().to_string(),
            }
        })?;
        let mut headers = Vec::new();
        for (name, value) in raw.headers {
            let name = name.to_ascii_lowercase();
            match value {
                HeaderValueJson::One(v) => headers.push((name, v)),
                HeaderValueJson::Many(vs) => {
                    headers.extend(vs.into_iter().map(|v| (name.clone(), v)))
                }
            }
        }
        let peer = raw.peer.map(PeerJson::check).transpose()?;
        let body = match (raw.body, raw.body_base64) {
            (Some(_), Some(_)) => return Err(RequestError::Body),
            (Some(text), None) => Some(text.into_bytes()),
            (None, Some(b64)) => Some(b64::decode_standard(&b64).ok_or(RequestError::Body)?),
            (None, None) => None,
        };
        Ok(Request {
            method: raw.method,
            scheme: raw.scheme,
            path: raw.path,
            authority: raw.authority,
            headers,
            peer,
            body,
        })
    }
}

/// The DER of the first `CERTIFICATE` block of a PEM text.
pub(crate) fn pem_to_der(pem: &str) -> Option<Vec<u8>> {
    let begin = "-----BEGIN CERTIFICATE-----";
    let end = "-----END CERTIFICATE-----";
    let start = pem.find(begin)? + begin.len();
    let stop = start + pem.get(start..)?.find(end)?;
    let body: String = pem
        .get(start..stop)?
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    b64::decode_standard(&body)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    #[test]
    fn peer_alone_and_inside_a_request_read_the_same() {
        let peer = format!(r#"{{"uri_san":"spiffe://d/a","sha256_digest_hex":"{DIGEST}"}}"#);
        let alone = Peer::from_json(&peer).unwrap();
        let inside = Request::from_json(&format!(r#"{{"method":"GET","path":"/","peer":{peer}}}"#))
            .unwrap()
            .peer
            .unwrap();
        assert_eq!(alone, inside);
        assert_eq!(alone.uri_san.as_deref(), Some("spiffe://d/a"));
        assert_eq!(b64::hex(&alone.certificate_sha256.unwrap()), DIGEST);
    }

    #[test]
    fn peer_errors_name_their_path() {
        let e = Peer::from_json(r#"{"sha256_digest_hex":"abc"}"#).unwrap_err();
        assert_eq!(e.path(), "peer.sha256_digest_hex");
        let e = Peer::from_json(r#"{"uri_san":1}"#).unwrap_err();
        assert_eq!(e.path(), "peer.uri_san");
        let both = format!(r#"{{"sha256_digest_hex":"{DIGEST}","certificate_pem":"x"}}"#);
        assert_eq!(Peer::from_json(&both).unwrap_err().path(), "peer");
        assert!(Peer::from_json(r#"{"other":1}"#).is_err());
    }
}
