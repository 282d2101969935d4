//! A proof's claims, read in one pass from their JSON: the members SPEC §10 checks
//! (`htm`, `htu`, `iat`, `jti`, `ath`) are kept, borrowed from the decoded text where it
//! has no escapes; every other member is checked as strictly as `parse_strict` checks a
//! token (no duplicate names at any depth, serde_json's nesting limit) and dropped. A proof
//! arrives with every request, and building a `serde_json::Map` of it was most of its cost
//! besides the signature.

use crate::core::token::json::StrictValue;
use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};
use std::borrow::Cow;
use std::fmt;

/// One claim as the checks read it; a type they do not expect reads as absent, as
/// `Value::as_str` and `Value::as_f64` do.
#[derive(Debug, Default, PartialEq)]
pub(super) enum Claim<'c> {
    #[default]
    Absent,
    Str(Cow<'c, str>),
    Num(f64),
    /// `true`, `null`, an array or an object: present, never what a check wants.
    Other,
}

impl Claim<'_> {
    pub(super) fn as_str(&self) -> Option<&str> {
        match self {
            Claim::Str(s) => Some(s),
            _ => None,
        }
    }

    pub(super) fn as_f64(&self) -> Option<f64> {
        match self {
            Claim::Num(n) => Some(*n),
            _ => None,
        }
    }
}

#[derive(Debug, Default, PartialEq)]
pub(super) struct ProofClaims<'c> {
    pub htm: Claim<'c>,
    pub htu: Claim<'c>,
    pub iat: Claim<'c>,
    pub jti: Claim<'c>,
    pub ath: Claim<'c>,
}

/// The claims of `json`; `None` unless it is one strict JSON object.
pub(super) fn read(json: &[u8]) -> Option<ProofClaims<'_>> {
    serde_json::from_slice(json).ok()
}

impl<'de> Deserialize<'de> for ProofClaims<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(ClaimsVisitor)
    }
}

struct ClaimsVisitor;

impl<'de> Visitor<'de> for ClaimsVisitor {
    type Value = ProofClaims<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut claims = ProofClaims::default();
        // Every name, to refuse a duplicate (sorted once at the end: no quadratic scan of
        // a proof stuffed with members).
        let mut names: Vec<Cow<'de, str>> = Vec::new();
        while let Some(Text(name)) = map.next_key::<Text<'de>>()? {
            let slot = match name.as_ref() {
                "htm" => Some(&mut claims.htm),
                "htu" => Some(&mut claims.htu),
                "iat" => Some(&mut claims.iat),
                "jti" => Some(&mut claims.jti),
                "ath" => Some(&mut claims.ath),
                _ => None,
            };
            match slot {
                Some(slot) => *slot = map.next_value::<Claim<'de>>()?,
                None => {
                    map.next_value::<StrictValue>()?;
                }
            }
            names.push(name);
        }
        names.sort_unstable();
        if names.windows(2).any(|w| matches!(w, [a, b] if a == b)) {
            return Err(de::Error::custom("duplicate member"));
        }
        Ok(claims)
    }
}

/// A JSON string, borrowed when it has no escapes.
struct Text<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(TextVisitor).map(Text)
    }
}

struct TextVisitor;

impl<'de> Visitor<'de> for TextVisitor {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }
}

impl<'de> Deserialize<'de> for Claim<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ClaimVisitor)
    }
}

struct ClaimVisitor;

impl<'de> Visitor<'de> for ClaimVisitor {
    type Value = Claim<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Claim::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Claim::Str(Cow::Owned(v.to_owned())))
    }
    // As `Value::as_f64` reads a number.
    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Claim::Num(v as f64))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Claim::Num(v as f64))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Claim::Num(v))
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Claim::Other)
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Claim::Other)
    }
    // Nested values are checked as strictly as any (`StrictValue`), then dropped.
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<StrictValue>()?.is_some() {}
        Ok(Claim::Other)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        StrictValue::deserialize(de::value::MapAccessDeserializer::new(map))?;
        Ok(Claim::Other)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::token::json::parse_strict;

    #[test]
    fn the_five_claims_borrowed_or_owned() {
        let c = read(
            br#"{"htm":"GET","htu":"https://a/\u0078","iat":17,"jti":"j","ath":"h","x":[{"y":1}]}"#,
        )
        .unwrap();
        assert!(matches!(c.htm, Claim::Str(Cow::Borrowed("GET"))));
        assert!(matches!(&c.htu, Claim::Str(Cow::Owned(s)) if s == "https://a/x"));
        assert_eq!(c.iat.as_f64(), Some(17.0));
        assert_eq!((c.jti.as_str(), c.ath.as_str()), (Some("j"), Some("h")));
        assert_eq!(c.htm.as_f64(), None);
        assert_eq!(c.iat.as_str(), None);
    }

    #[test]
    fn other_types_read_as_absent_but_present() {
        let c = read(br#"{"htm":1,"iat":"1","jti":null,"ath":{"a":1},"htu":[true]}"#).unwrap();
        assert_eq!(c.htm.as_str(), None);
        assert_eq!(c.iat.as_f64(), None);
        assert_eq!(c.jti, Claim::Other);
        assert_eq!(c.ath, Claim::Other);
        assert_eq!(c.htu, Claim::Other);
        assert_eq!(read(b"{}").unwrap(), ProofClaims::default());
        assert_eq!(read(br#"{"iat":-2.5}"#).unwrap().iat.as_f64(), Some(-2.5));
    }

    /// What `parse_strict` accepts, `read` reads the same (`Value::as_str`, `as_f64`).
    #[test]
    fn reads_what_parse_strict_reads() {
        let accepted: &[&[u8]] = &[
            br#"{"htm":"P\u004fST","htu":"h\"t","iat":1.0,"jti":"\ud83d\ude00","ath":""}"#,
            br#"{"iat":18446744073709551615,"jti":-0,"htm":true,"other":{"iat":1}}"#,
            br#"{"iat":-9223372036854775808,"ath":1e3,"htu":null}"#,
            br#"{"iat":1e-300,"x":[1,"a",{"b":[]}],"y":{}}"#,
        ];
        for json in accepted {
            let value = parse_strict(json).unwrap();
            let c = read(json).unwrap();
            let claims = [
                ("htm", &c.htm),
                ("htu", &c.htu),
                ("iat", &c.iat),
                ("jti", &c.jti),
                ("ath", &c.ath),
            ];
            for (name, claim) in claims {
                let member = value.get(name);
                assert_eq!(claim.as_str(), member.and_then(|v| v.as_str()), "{name}");
                assert_eq!(claim.as_f64(), member.and_then(|v| v.as_f64()), "{name}");
                assert_eq!(*claim == Claim::Absent, member.is_none(), "{name}");
            }
        }
    }

    /// Whatever `parse_strict` refuses or does not read as an object, so does `read`.
    #[test]
    fn as_strict_as_parse_strict() {
        let refused: &[&[u8]] = &[
            br#"{"jti":"a","jti":"b"}"#,
            br#"{"x":1,"y":2,"x":3}"#,
            br#"{"x":{"a":1,"a":2}}"#,
            br#"{"x":[{"a":1,"a":2}]}"#,
            br#"{"jti":{"a":1,"a":2}}"#,
            br#"{"htu":[{"a":1,"a":2}]}"#,
            br#"{"\u006a\u0074\u0069":"a","jti":"b"}"#,
            br#"[]"#,
            br#""jti""#,
            br#"{"jti":"a"} x"#,
            br#"{"jti":"a""#,
            br#"{"iat":1e400}"#,
            b"{\"jti\":\"\xff\"}",
        ];
        for json in refused {
            assert!(read(json).is_none(), "{}", String::from_utf8_lossy(json));
            assert!(!matches!(
                parse_strict(json),
                Ok(serde_json::Value::Object(_))
            ));
        }
        let bomb = r#"{"x":"#.to_owned() + &"[".repeat(100_000) + &"]".repeat(100_000) + "}";
        assert!(read(bomb.as_bytes()).is_none());
    }
}
