//! RFC 7638 JWK thumbprint (SHA-256): the hash of the key's required public members, in
//! lexicographic order, as JSON without whitespace. `cnf.jkt` (RFC 9449 §6.1) is its
//! base64url. The hash is ring's; only the canonical JSON is built here.

use crate::core::verification::crypto::sha256;
use serde_json::{Map, Value};

/// The required members of each key type (RFC 7638 §3.2, RFC 8037 §2 for OKP), sorted.
fn required_members(kty: &str) -> Option<&'static [&'static str]> {
    match kty {
        "EC" => Some(&["crv", "kty", "x", "y"]),
        "OKP" => Some(&["crv", "kty", "x"]),
        "RSA" => Some(&["e", "kty", "n"]),
        _ => None,
    }
}

/// The SHA-256 thumbprint of a public JWK, or `None` when a required member is missing
/// or not a string (the key is then refused before this point anyway).
pub(crate) fn sha256_thumbprint(jwk: &Map<String, Value>) -> Option<[u8; 32]> {
    let kty = jwk.get("kty")?.as_str()?;
    let mut canonical = String::from("{");
    for (i, member) in required_members(kty)?.iter().enumerate() {
        let value = jwk.get(*member)?.as_str()?;
        if i > 0 {
            canonical.push(',');
        }
        // serde_json writes the member name and value as JSON strings (RFC 7638 §3.3: the
        // members are already base64url or short names, so escaping never changes them).
        canonical.push_str(&Value::from(*member).to_string());
        canonical.push(':');
        canonical.push_str(&Value::from(value).to_string());
    }
    canonical.push('}');
    Some(sha256(canonical.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::token::b64;

    fn jwk(text: &str) -> Map<String, Value> {
        serde_json::from_str(text).unwrap()
    }

    /// RFC 7638 §3.1, the worked example.
    #[test]
    fn rfc7638_example() {
        let key = jwk(
            r#"{"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB","alg":"RS256","kid":"2011-04-29"}"#,
        );
        let t = sha256_thumbprint(&key).unwrap();
        assert_eq!(
            b64::encode(&t),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    /// RFC 8037 Appendix A.3, the Ed25519 thumbprint.
    #[test]
    fn rfc8037_okp_example() {
        let key = jwk(
            r#"{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#,
        );
        let t = sha256_thumbprint(&key).unwrap();
        assert_eq!(
            b64::encode(&t),
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
        );
    }

    #[test]
    fn optional_members_and_order_do_not_matter_missing_ones_do() {
        let a = jwk(r#"{"kty":"EC","crv":"P-256","x":"AA","y":"AQ"}"#);
        let b = jwk(r#"{"y":"AQ","use":"sig","x":"AA","kid":"k","crv":"P-256","kty":"EC"}"#);
        assert_eq!(sha256_thumbprint(&a), sha256_thumbprint(&b));
        assert_eq!(
            sha256_thumbprint(&jwk(r#"{"kty":"EC","crv":"P-256","x":"AA"}"#)),
            None
        );
        assert_eq!(sha256_thumbprint(&jwk(r#"{"kty":"oct","k":"AA"}"#)), None);
        assert_eq!(
            sha256_thumbprint(&jwk(r#"{"kty":"EC","crv":1,"x":"AA","y":"AQ"}"#)),
            None
        );
    }
}
