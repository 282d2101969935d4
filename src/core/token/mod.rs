//! Compact JWS → header, claims and signature, before anything is trusted.
//!
//! Only the compact serialization is accepted (JSON serialization, JWE and unsecured JWTs
//! are refused). Sizes are budgets (`limits`), base64url is strict, both JSON parts must be
//! objects without duplicate members, and `crit` is refused since actwarden understands no
//! extension (RFC 7515 §4.1.11).

pub(crate) mod b64;
pub(crate) mod extract;
pub(crate) mod json;

use crate::core::limits::{MAX_CLAIMS_BYTES, MAX_HEADER_BYTES, MAX_TOKEN_BYTES};
pub(crate) use crate::core::token::json::Object;
use crate::core::token::json::{parse_strict_object, JsonProblem};
use serde_json::Value;

/// Which part of a compact JWS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Header,
    Claims,
    Signature,
}

impl Part {
    pub fn name(self) -> &'static str {
        match self {
            Part::Header => "header",
            Part::Claims => "claims",
            Part::Signature => "signature",
        }
    }
}

/// Why a token could not be read. Each is `token_malformed` except `TooLarge`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenProblem {
    TooLarge {
        part: Option<Part>,
        bytes: usize,
        max: usize,
    },
    NotCompact {
        dots: usize,
    },
    EmptyPart(Part),
    NotBase64url(Part),
    NotJson(Part),
    NotAnObject(Part),
    DuplicateMember {
        part: Part,
        name: String,
    },
    AlgMissing,
    HeaderMemberType(&'static str),
    CriticalExtension,
}

impl TokenProblem {
    pub fn describe(&self) -> String {
        match self {
            TokenProblem::TooLarge { part: None, bytes, max } => {
                format!("the token is {bytes} bytes; the limit is {max}")
            }
            TokenProblem::TooLarge { part: Some(p), bytes, max } => {
                format!("the token {} is {bytes} bytes; the limit is {max}", p.name())
            }
            TokenProblem::NotCompact { dots } => format!(
                "the token is not a compact JWS (three base64url parts joined by two dots; found {dots} dots)"
            ),
            TokenProblem::EmptyPart(p) => format!("the token {} is empty", p.name()),
            TokenProblem::NotBase64url(p) => {
                format!("the token {} is not unpadded base64url", p.name())
            }
            TokenProblem::NotJson(p) => format!(
                "the token {} is not UTF-8 JSON within the nesting limit",
                p.name()
            ),
            TokenProblem::NotAnObject(p) => format!("the token {} is not a JSON object", p.name()),
            // The name is not repeated: it comes from a token nobody has verified, and the
            // sentence goes into the audit record and the response.
            TokenProblem::DuplicateMember { part, .. } => {
                format!("the token {} repeats a member name", part.name())
            }
            TokenProblem::AlgMissing => "the token header has no `alg`".into(),
            TokenProblem::HeaderMemberType(m) => {
                format!("the token header member `{m}` must be a string")
            }
            TokenProblem::CriticalExtension => {
                "the token header lists `crit` extensions, which actwarden does not understand"
                    .into()
            }
        }
    }
}

/// The JOSE header members actwarden reads. `jwk`, `jku`, `x5u` and `x5c` are never used
/// to find a key: keys come only from the provider's configuration.
#[derive(Debug, Clone)]
pub struct Header {
    pub alg: String,
    pub typ: Option<String>,
    pub kid: Option<String>,
}

/// A compact JWS split and decoded, payload as bytes (the JWS layer; Wycheproof's vectors
/// sign payloads that are not JSON).
#[derive(Debug, Clone)]
pub struct Jws<'a> {
    pub header: Header,
    pub payload: Vec<u8>,
    /// `base64url(header) "." base64url(payload)`: what the signature covers.
    pub signing_input: &'a str,
    pub signature: Vec<u8>,
}

/// A token split and decoded, not verified.
#[derive(Debug, Clone)]
pub struct UnverifiedToken<'a> {
    pub jws: Jws<'a>,
    pub claims: Object,
}

/// Splits a compact JWS whose payload is a JSON object (a JWT).
pub fn parse(token: &str) -> Result<UnverifiedToken<'_>, TokenProblem> {
    let jws = split(token)?;
    let claims = json_object(&jws.payload, Part::Claims)?;
    Ok(UnverifiedToken { jws, claims })
}

/// Splits a compact JWS; the payload may be any bytes.
pub fn split(token: &str) -> Result<Jws<'_>, TokenProblem> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(TokenProblem::TooLarge {
            part: None,
            bytes: token.len(),
            max: MAX_TOKEN_BYTES,
        });
    }
    let dots = token.bytes().filter(|b| *b == b'.').count();
    if dots != 2 {
        return Err(TokenProblem::NotCompact { dots });
    }
    let mut parts = token.splitn(3, '.');
    let (Some(h), Some(c), Some(s)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(TokenProblem::NotCompact { dots });
    };
    let signing_input = token.get(..h.len() + 1 + c.len()).unwrap_or_default();

    let header_bytes = decode_part(h, Part::Header, MAX_HEADER_BYTES)?;
    let claims_bytes = decode_part(c, Part::Claims, MAX_CLAIMS_BYTES)?;
    // An empty signature is a well-formed (unsecured, RFC 7519 §6) JWS: it is refused at
    // the `alg` check (`none`) or the signature check, where the reason says why.
    let signature = b64::decode(s).ok_or(TokenProblem::NotBase64url(Part::Signature))?;

    let header = json_object(&header_bytes, Part::Header)?;

    let alg = match header.get("alg") {
        None => return Err(TokenProblem::AlgMissing),
        Some(Value::String(a)) => a.clone(),
        Some(_) => return Err(TokenProblem::HeaderMemberType("alg")),
    };
    let typ = optional_string(&header, "typ")?;
    let kid = optional_string(&header, "kid")?;
    if header.contains_key("crit") {
        return Err(TokenProblem::CriticalExtension);
    }
    Ok(Jws {
        header: Header { alg, typ, kid },
        payload: claims_bytes,
        signing_input,
        signature,
    })
}

fn decode_part(text: &str, part: Part, max: usize) -> Result<Vec<u8>, TokenProblem> {
    // RFC 7515 allows an empty payload; only the header must be present. (A JWT then fails
    // in `parse`, since its claims must be a JSON object.)
    if text.is_empty() && part == Part::Header {
        return Err(TokenProblem::EmptyPart(part));
    }
    // base64url expands by 4/3: refuse before decoding when the result must be too large.
    if text.len() / 4 * 3 > max {
        return Err(TokenProblem::TooLarge {
            part: Some(part),
            bytes: text.len() / 4 * 3,
            max,
        });
    }
    let bytes = b64::decode(text).ok_or(TokenProblem::NotBase64url(part))?;
    if bytes.len() > max {
        return Err(TokenProblem::TooLarge {
            part: Some(part),
            bytes: bytes.len(),
            max,
        });
    }
    Ok(bytes)
}

fn json_object(bytes: &[u8], part: Part) -> Result<Object, TokenProblem> {
    match parse_strict_object(bytes) {
        Ok(Some(object)) => Ok(object),
        Ok(None) => Err(TokenProblem::NotAnObject(part)),
        Err(JsonProblem::DuplicateMember(name)) => {
            Err(TokenProblem::DuplicateMember { part, name })
        }
        Err(JsonProblem::Syntax(_)) => Err(TokenProblem::NotJson(part)),
    }
}

fn optional_string(header: &Object, member: &'static str) -> Result<Option<String>, TokenProblem> {
    match header.get(member) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(TokenProblem::HeaderMemberType(member)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(s: &str) -> String {
        b64::encode(s.as_bytes())
    }

    #[test]
    fn splits_a_compact_token() {
        let t = format!(
            "{}.{}.{}",
            enc(r#"{"alg":"ES256","kid":"k"}"#),
            enc(r#"{"sub":"a"}"#),
            enc("sig")
        );
        let parsed = parse(&t).unwrap();
        assert_eq!(parsed.jws.header.alg, "ES256");
        assert_eq!(parsed.jws.header.kid.as_deref(), Some("k"));
        assert_eq!(parsed.jws.signature, b"sig");
        assert!(t.starts_with(parsed.jws.signing_input));
    }

    #[test]
    fn refuses_shapes_that_are_not_compact_jws() {
        assert_eq!(
            parse("a.b").unwrap_err(),
            TokenProblem::NotCompact { dots: 1 }
        );
        assert_eq!(
            parse("a.b.c.d.e").unwrap_err(),
            TokenProblem::NotCompact { dots: 4 }
        );
        let unsigned = format!("{}.{}.", enc(r#"{"alg":"none"}"#), enc("{}"));
        assert!(parse(&unsigned).unwrap().jws.signature.is_empty());
        let dup = format!(
            "{}.{}.{}",
            enc(r#"{"alg":"ES256","alg":"none"}"#),
            enc("{}"),
            enc("s")
        );
        assert!(matches!(
            parse(&dup).unwrap_err(),
            TokenProblem::DuplicateMember {
                part: Part::Header,
                ..
            }
        ));
        let crit = format!(
            "{}.{}.{}",
            enc(r#"{"alg":"ES256","crit":["b64"],"b64":false}"#),
            enc("{}"),
            enc("s")
        );
        assert_eq!(parse(&crit).unwrap_err(), TokenProblem::CriticalExtension);
    }

    #[test]
    fn size_budget_is_checked_before_any_decoding() {
        let big = "a".repeat(MAX_TOKEN_BYTES + 1);
        assert!(matches!(
            parse(&big).unwrap_err(),
            TokenProblem::TooLarge { part: None, .. }
        ));
    }
}
