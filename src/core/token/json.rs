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

/// A JSON object read strictly, its members in document order: a token's header or its
/// claims. A token has a dozen members or so, and a name is found by comparing it with
/// each: a `serde_json::Map` hashed every name with SipHash, on insertion and on every
/// lookup, a fifth of what a cold token cost besides its signature. Past `SCAN_MEMBERS`
/// members the object becomes such a map, so that a crafted token with thousands of
/// members costs what it did (never a quadratic scan).
#[derive(Debug, Clone)]
pub struct Object(Members);

#[derive(Debug, Clone)]
enum Members {
    Few(Vec<(String, Value)>),
    Many(Map<String, Value>),
}

/// The most members an `Object` scans (each new member is compared with every earlier
/// one, so at most 32·31/2 comparisons) before it moves them into a hash map.
const SCAN_MEMBERS: usize = 32;

impl Object {
    pub fn get(&self, name: &str) -> Option<&Value> {
        match &self.0 {
            Members::Few(members) => members.iter().find(|(n, _)| n == name).map(|(_, v)| v),
            Members::Many(map) => map.get(name),
        }
    }

    pub fn contains_key(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    pub fn len(&self) -> usize {
        match &self.0 {
            Members::Few(members) => members.len(),
            Members::Many(map) => map.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The members in document order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        let (few, many) = match &self.0 {
            Members::Few(members) => (Some(members.iter().map(|(n, v)| (n.as_str(), v))), None),
            Members::Many(map) => (None, Some(map.iter().map(|(n, v)| (n.as_str(), v)))),
        };
        few.into_iter().flatten().chain(many.into_iter().flatten())
    }

    /// Adds a member; `Err` with the name when the object has it already.
    fn insert_new(&mut self, name: String, value: Value) -> Result<(), String> {
        match &mut self.0 {
            Members::Few(members) if members.iter().any(|(n, _)| *n == name) => Err(name),
            Members::Few(members) if members.len() < SCAN_MEMBERS => {
                members.push((name, value));
                Ok(())
            }
            Members::Few(members) => {
                let mut map: Map<String, Value> = std::mem::take(members).into_iter().collect();
                map.insert(name, value);
                self.0 = Members::Many(map);
                Ok(())
            }
            Members::Many(map) => match map.entry(name) {
                Entry::Occupied(dup) => Err(dup.key().clone()),
                Entry::Vacant(slot) => {
                    slot.insert(value);
                    Ok(())
                }
            },
        }
    }
}

impl Default for Object {
    /// No members.
    fn default() -> Self {
        Object(Members::Few(Vec::new()))
    }
}

impl PartialEq for Object {
    /// The same members, in any order (as `serde_json::Map` compares), whether each object
    /// holds them scanned or hashed: names are distinct within an object, so equal counts
    /// and every member found in the other make the same set.
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len()
            && self
                .iter()
                .all(|(name, value)| other.get(name) == Some(value))
    }
}

impl From<Map<String, Value>> for Object {
    /// A map's names are distinct already.
    fn from(map: Map<String, Value>) -> Self {
        if map.len() <= SCAN_MEMBERS {
            Object(Members::Few(map.into_iter().collect()))
        } else {
            Object(Members::Many(map))
        }
    }
}

/// A document (or a member's value) read as strictly as `StrictValue`: the object it is,
/// or `None` for any other JSON value (read and checked all the same: a repeated name
/// inside an array is refused).
pub(crate) struct TopObject(pub(crate) Option<Object>);

impl<'de> Deserialize<'de> for TopObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(TopObjectVisitor)
    }
}

struct TopObjectVisitor;

impl<'de> Visitor<'de> for TopObjectVisitor {
    type Value = TopObject;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<TopObject, E> {
        Ok(TopObject(None))
    }
    fn visit_i64<E>(self, _: i64) -> Result<TopObject, E> {
        Ok(TopObject(None))
    }
    fn visit_u64<E>(self, _: u64) -> Result<TopObject, E> {
        Ok(TopObject(None))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<TopObject, E> {
        StrictVisitor.visit_f64(v).map(|_| TopObject(None))
    }
    fn visit_str<E>(self, _: &str) -> Result<TopObject, E> {
        Ok(TopObject(None))
    }
    fn visit_unit<E>(self) -> Result<TopObject, E> {
        Ok(TopObject(None))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<TopObject, A::Error> {
        StrictVisitor.visit_seq(seq).map(|_| TopObject(None))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TopObject, A::Error> {
        let mut out = Object(Members::Few(Vec::with_capacity(OBJECT_CAPACITY * 2)));
        while let Some(key) = map.next_key::<String>()? {
            let StrictValue(value) = map.next_value()?;
            out.insert_new(key, value)
                .map_err(|name| duplicate(&name))?;
        }
        Ok(TopObject(Some(out)))
    }
}

/// Parses untrusted JSON that should be an object: `Ok(None)` for any other value.
pub(crate) fn parse_strict_object(bytes: &[u8]) -> Result<Option<Object>, JsonProblem> {
    parse_strict_as::<TopObject>(bytes).map(|top| top.0)
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

    /// Documents of every shape an attacker might send as a token part: objects of 0 to
    /// 80 members (across `SCAN_MEMBERS`), names repeated near and far, nested objects
    /// with repeats, arrays, scalars, broken text.
    fn documents() -> Vec<Vec<u8>> {
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let mut out: Vec<Vec<u8>> = [
            "1",
            "\"x\"",
            "null",
            "[]",
            "[{\"a\":1,\"a\":2}]",
            "{",
            "{} x",
            "{\"a\":1,}",
        ]
        .iter()
        .map(|t| t.as_bytes().to_vec())
        .collect();
        for _ in 0..3000 {
            let members = next(81);
            // Half the objects have distinct names, the others draw from a small set.
            let names = if next(2) == 0 {
                u64::MAX
            } else {
                1 + next(100)
            };
            let mut doc = String::from("{");
            for i in 0..members {
                if i > 0 {
                    doc.push(',');
                }
                let value = match next(6) {
                    0 => "1".to_owned(),
                    1 => "\"v\"".to_owned(),
                    2 => "[1,{\"k\":2}]".to_owned(),
                    3 => format!("{{\"n{}\":1,\"n{}\":2}}", next(20), next(20)),
                    4 => "null".to_owned(),
                    _ => "{\"act\":{\"sub\":\"a\"}}".to_owned(),
                };
                let name = if names == u64::MAX { i } else { next(names) };
                doc.push_str(&format!("\"m{name}\":{value}"));
            }
            doc.push('}');
            if next(10) == 0 {
                doc.truncate(doc.len().saturating_sub(1 + next(3) as usize));
            }
            out.push(doc.into_bytes());
        }
        out
    }

    #[test]
    fn an_object_reads_as_the_map_did() {
        let (mut objects, mut large, mut duplicates) = (0, 0, 0);
        for doc in documents() {
            let expected = parse_strict(&doc);
            let got = parse_strict_object(&doc);
            match (&expected, &got) {
                (Ok(Value::Object(map)), Ok(Some(object))) => {
                    objects += 1;
                    large += usize::from(map.len() > SCAN_MEMBERS);
                    let in_order: Vec<(&str, &Value)> =
                        map.iter().map(|(n, v)| (n.as_str(), v)).collect();
                    assert_eq!(object.iter().collect::<Vec<_>>(), in_order);
                    assert_eq!(object.len(), map.len());
                    for (name, value) in map {
                        assert_eq!(object.get(name), Some(value));
                    }
                    assert_eq!(object.get("absent"), None);
                    assert_eq!(
                        Object::from(map.clone()).iter().collect::<Vec<_>>(),
                        in_order
                    );
                }
                (Ok(other), Ok(None)) => assert!(!other.is_object()),
                (Err(e), Err(g)) => {
                    assert_eq!(e, g, "{}", String::from_utf8_lossy(&doc));
                    duplicates += usize::from(matches!(e, JsonProblem::DuplicateMember(_)));
                }
                _ => panic!("{expected:?} vs {got:?}: {}", String::from_utf8_lossy(&doc)),
            }
        }
        assert!(
            objects > 300 && large > 50 && duplicates > 500,
            "{objects} objects ({large} large), {duplicates} repeats"
        );
    }

    #[test]
    fn a_large_object_becomes_a_map_and_still_refuses_a_repeat() {
        let members: Vec<String> = (0..SCAN_MEMBERS + 8)
            .map(|i| format!("\"m{i}\":{i}"))
            .collect();
        let doc = format!("{{{}}}", members.join(","));
        let object = parse_strict_object(doc.as_bytes()).unwrap().unwrap();
        assert!(matches!(object.0, Members::Many(_)));
        assert_eq!(object.get("m39"), Some(&Value::from(39)));
        let repeated = format!("{{{},\"m3\":0}}", members.join(","));
        assert_eq!(
            parse_strict_object(repeated.as_bytes()).unwrap_err(),
            JsonProblem::DuplicateMember("m3".into())
        );
        let few = parse_strict_object(br#"{"b":1,"a":2}"#).unwrap().unwrap();
        assert!(matches!(few.0, Members::Few(_)));
        let order: Vec<&str> = few.iter().map(|(name, _)| name).collect();
        assert_eq!(order, ["b", "a"]);
    }

    #[test]
    fn ordinary_documents_parse() {
        let v = parse_strict(br#"{"a":[1,2.5,true,null,"x"],"b":{"c":{}}}"#);
        assert!(matches!(v, Ok(Value::Object(_))));
    }

    /// Equal members make equal objects whatever their order and whether an object scans
    /// or hashes them (`McpFacts` compares `arguments` this way); a missing, extra or
    /// different member does not.
    #[test]
    fn objects_are_equal_by_their_members_alone() {
        let few = |text: &str| parse_strict_object(text.as_bytes()).unwrap().unwrap();
        assert_eq!(few(r#"{"a":1,"b":[2]}"#), few(r#"{"b":[2],"a":1}"#));
        assert_ne!(few(r#"{"a":1,"b":[2]}"#), few(r#"{"a":1,"b":[3]}"#));
        assert_ne!(few(r#"{"a":1}"#), few(r#"{"a":1,"b":2}"#));
        assert_ne!(few(r#"{"a":1,"b":2}"#), few(r#"{"a":1}"#));
        assert_eq!(Object::default(), few("{}"));
        let members: Vec<String> = (0..40).map(|i| format!("\"m{i}\":{i}")).collect();
        let many = few(&format!("{{{}}}", members.join(",")));
        let reversed: Vec<String> = members.iter().rev().cloned().collect();
        let from_map: Object =
            serde_json::from_str::<Map<String, Value>>(&format!("{{{}}}", reversed.join(",")))
                .unwrap()
                .into();
        assert_eq!(many, from_map);
        let fewer = few(&format!("{{{}}}", members[..32].join(",")));
        assert_ne!(many, fewer);
        assert_ne!(fewer, many);
    }
}
