//! Strict JSON for untrusted input: RFC 8259 text with no duplicate member names at any
//! depth (RFC 7515 §5.2 lets a JWS parser reject them, and a parser that keeps the first
//! or the last is how one token means two things to two systems). Nesting is bounded by
//! serde_json's recursion limit (see `limits::MAX_JSON_DEPTH`).

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::map::Entry;
use serde_json::{Map, Value};
use std::fmt;

/// Why a JSON document was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum JsonProblem {
    /// A member name appears twice in one object.
    DuplicateMember(String),
    /// Not JSON, invalid UTF-8, or nested deeper than the budget: serde_json's message,
    /// with its line and column (what `serde_json::from_slice::<Value>` says of the same
    /// text: the strict visitor refuses nothing else).
    Syntax(String),
}

/// A JSON value read strictly (`parse_strict`'s rules), for use inside other strict
/// readers (`mcp::message` reads an envelope member by member with it).
pub(crate) struct StrictValue(pub Value);

impl<'de> Deserialize<'de> for StrictValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(StrictValue)
    }
}

pub(crate) struct StrictVisitor;

/// Members an object has room for before its map grows.
const OBJECT_CAPACITY: usize = 8;

/// Marker prefix that lets `parse_strict` tell a duplicate member from a syntax error
/// without matching on free text from serde_json.
const DUPLICATE_MARKER: &str = "\u{0}actwarden-duplicate:";

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        serde_json::Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("non-finite number"))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(StrictValue(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        // Room for a typical object (a token's claims, an MCP message's members) from the
        // start: growing a map member by member rehashes every key at each step.
        let mut out = Map::with_capacity(OBJECT_CAPACITY);
        while let Some(key) = map.next_key::<String>()? {
            let StrictValue(value) = map.next_value()?;
            // One lookup per member: the entry tells a duplicate and takes a new one.
            match out.entry(key) {
                Entry::Occupied(dup) => return Err(duplicate(dup.key())),
                Entry::Vacant(slot) => {
                    slot.insert(value);
                }
            }
        }
        Ok(Value::Object(out))
    }
}

/// The error a strict reader returns for a member name seen twice in one object
/// (`parse_strict_as` turns it into `JsonProblem::DuplicateMember`).
pub(crate) fn duplicate<E: de::Error>(name: &str) -> E {
    E::custom(format!("{DUPLICATE_MARKER}{name}"))
}

/// Parses untrusted JSON, refusing duplicate member names and excessive nesting.
pub(crate) fn parse_strict(bytes: &[u8]) -> Result<Value, JsonProblem> {
    parse_strict_as::<StrictValue>(bytes).map(|v| v.0)
}

/// Parses untrusted JSON into `T`, whose reader must be as strict as `StrictValue` (it
/// refuses a duplicate member with `duplicate`).
pub(crate) fn parse_strict_as<T: de::DeserializeOwned>(bytes: &[u8]) -> Result<T, JsonProblem> {
    serde_json::from_slice::<T>(bytes).map_err(|e| {
        let text = e.to_string();
        match text.split_once(DUPLICATE_MARKER) {
            Some((_, rest)) => {
                // serde_json appends " at line L column C"; the name is before it.
                let name = rest.rsplit_once(" at line ").map_or(rest, |(n, _)| n);
                JsonProblem::DuplicateMember(name.to_owned())
            }
            None => JsonProblem::Syntax(text),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_member_is_refused_at_any_depth() {
        assert_eq!(
            parse_strict(br#"{"alg":"ES256","alg":"none"}"#),
            Err(JsonProblem::DuplicateMember("alg".into()))
        );
        assert_eq!(
            parse_strict(br#"{"act":{"sub":"a","sub":"b"}}"#),
            Err(JsonProblem::DuplicateMember("sub".into()))
        );
    }

    #[test]
    fn nesting_bomb_is_a_syntax_error_not_a_crash() {
        let bomb = "[".repeat(100_000) + &"]".repeat(100_000);
        assert!(matches!(
            parse_strict(bomb.as_bytes()),
            Err(JsonProblem::Syntax(_))
        ));
        let objs = r#"{"a":"#.repeat(50_000) + "1" + &"}".repeat(50_000);
        assert!(matches!(
            parse_strict(objs.as_bytes()),
            Err(JsonProblem::Syntax(_))
        ));
    }

    #[test]
    fn syntax_message_is_what_serde_json_says_of_the_text() {
        let bomb = "[".repeat(200) + &"]".repeat(200);
        let texts: [&[u8]; 12] = [
            b"",
            b"{",
            b"{\"a\":1,}",
            b"[1,2",
            b"{\"a\" 1}",
            b"tru",
            b"1e400",
            b"-",
            b"{\"a\":\"\xff\"}",
            b"\"\\x\"",
            b"{} x",
            bomb.as_bytes(),
        ];
        for text in texts {
            let serde = serde_json::from_slice::<Value>(text)
                .unwrap_err()
                .to_string();
            assert_eq!(
                parse_strict(text),
                Err(JsonProblem::Syntax(serde)),
                "{text:?}"
            );
        }
    }

    #[test]
    fn invalid_utf8_is_a_syntax_error() {
        assert!(matches!(
            parse_strict(b"{\"a\":\"\xff\"}"),
            Err(JsonProblem::Syntax(_))
        ));
    }

    #[test]
    fn ordinary_documents_parse() {
        let v = parse_strict(br#"{"a":[1,2.5,true,null,"x"],"b":{"c":{}}}"#);
        assert!(matches!(v, Ok(Value::Object(_))));
    }
}
