//! Phase one's reader: the parsed configuration (a `serde_json::Value`) read into the raw
//! types of `raw.rs` by their serde derives, with the JSON path of the first error
//! (`rules[2].require.scopes`).
//!
//! serde_path_to_error gives the same paths for any deserializer by wrapping every
//! visitor, map and sequence it meets, once per raw type: in the filter that wrapping cost
//! 33 KB more than this reader (`make wasm`: 689 886 → 656 660 bytes), in a module whose
//! size is a goal (issue 11). This reader knows its input is a tree already, so a path is
//! a chain of borrowed frames that becomes text only for an error. It reads values as
//! serde_json's own `Value` deserializer does, with the same error messages; a unit test
//! holds both to the same paths and messages on ~23 000 broken configurations
//! (`tests::paths_and_messages_match_serde_path_to_error`).
//!
//! Not supported, since no raw type needs them: map keys other than strings, enum
//! variants other than unit variants (both are refused with an error).

use serde::de::{self, DeserializeOwned, DeserializeSeed, Error as _, Unexpected, Visitor};
use serde_json::{Map, Value};
use std::fmt;

/// Reads `value` as `T`; the first error with its path.
pub(crate) fn read<T: DeserializeOwned>(value: &Value) -> Result<T, ShapeError> {
    T::deserialize(At {
        value,
        frame: &Frame::Root,
    })
}

/// Where a value sits in the document.
enum Frame<'a> {
    Root,
    Member(&'a Frame<'a>, &'a str),
    Element(&'a Frame<'a>, usize),
}

impl Frame<'_> {
    /// serde_path_to_error's spelling: members joined by `.`, elements as `[i]`, the
    /// root as the empty string.
    fn render(&self) -> String {
        let mut frames = Vec::new();
        let mut frame = self;
        loop {
            match frame {
                Frame::Root => break,
                Frame::Member(parent, _) | Frame::Element(parent, _) => {
                    frames.push(frame);
                    frame = parent;
                }
            }
        }
        let mut path = String::new();
        for frame in frames.iter().rev() {
            match frame {
                Frame::Member(_, name) => {
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(name);
                }
                Frame::Element(_, index) => {
                    path.push('[');
                    path.push_str(&index.to_string());
                    path.push(']');
                }
                Frame::Root => {}
            }
        }
        path
    }
}

/// A value that does not have the shape its type asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ShapeError {
    /// The JSON path of the innermost value the error passed through (`""`: the root).
    path: Option<String>,
    /// serde's message, as serde_json words it.
    message: String,
}

impl ShapeError {
    pub(crate) fn path(&self) -> &str {
        self.path.as_deref().unwrap_or_default()
    }

    pub(crate) fn message(&self) -> &str {
        &self.message
    }

    /// Sets the path unless a value deeper down set it already.
    fn at(mut self, frame: &Frame<'_>) -> ShapeError {
        if self.path.is_none() {
            self.path = Some(frame.render());
        }
        self
    }
}

impl fmt::Display for ShapeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ShapeError {}

impl de::Error for ShapeError {
    fn custom<T: fmt::Display>(message: T) -> Self {
        ShapeError {
            path: None,
            message: message.to_string(),
        }
    }

    // As serde_json words them: a JSON `null` is "null", not serde's "unit value".
    fn invalid_type(unexpected: Unexpected<'_>, expected: &dyn de::Expected) -> Self {
        match unexpected {
            Unexpected::Unit => {
                de::Error::custom(format_args!("invalid type: null, expected {expected}"))
            }
            _ => de::Error::custom(format_args!(
                "invalid type: {unexpected}, expected {expected}"
            )),
        }
    }

    fn invalid_value(unexpected: Unexpected<'_>, expected: &dyn de::Expected) -> Self {
        match unexpected {
            Unexpected::Unit => {
                de::Error::custom(format_args!("invalid value: null, expected {expected}"))
            }
            _ => de::Error::custom(format_args!(
                "invalid value: {unexpected}, expected {expected}"
            )),
        }
    }
}

fn unexpected(value: &Value) -> Unexpected<'_> {
    match value {
        Value::Null => Unexpected::Unit,
        Value::Bool(b) => Unexpected::Bool(*b),
        Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
            (Some(u), _, _) => Unexpected::Unsigned(u),
            (None, Some(i), _) => Unexpected::Signed(i),
            (None, None, Some(f)) => Unexpected::Float(f),
            (None, None, None) => Unexpected::Other("number"),
        },
        Value::String(s) => Unexpected::Str(s),
        Value::Array(_) => Unexpected::Seq,
        Value::Object(_) => Unexpected::Map,
    }
}

/// serde's "invalid type" error for `value` (one copy, not one per visitor).
#[inline(never)]
fn wrong_type(value: &Value, expected: &dyn de::Expected) -> ShapeError {
    de::Error::invalid_type(unexpected(value), expected)
}

/// One value and where it sits.
struct At<'de, 'f> {
    value: &'de Value,
    frame: &'f Frame<'f>,
}

impl<'de> At<'de, '_> {
    /// Any value, as its JSON type says (a `Value` member, an untagged enum).
    fn any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ShapeError> {
        match self.value {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Number(_) => self.number(visitor),
            Value::String(s) => visitor.visit_borrowed_str(s),
            Value::Array(elements) => self.elements(elements, visitor),
            Value::Object(members) => self.members(members, visitor),
        }
    }

    fn number<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ShapeError> {
        let Value::Number(n) = self.value else {
            return Err(wrong_type(self.value, &visitor));
        };
        match (n.as_u64(), n.as_i64(), n.as_f64()) {
            (Some(u), _, _) => visitor.visit_u64(u),
            (None, Some(i), _) => visitor.visit_i64(i),
            (None, None, Some(f)) => visitor.visit_f64(f),
            (None, None, None) => Err(wrong_type(self.value, &visitor)),
        }
    }

    fn elements<V: Visitor<'de>>(
        self,
        elements: &'de [Value],
        visitor: V,
    ) -> Result<V::Value, ShapeError> {
        let mut access = Elements {
            iter: elements.iter(),
            index: 0,
            frame: self.frame,
        };
        let read = visitor.visit_seq(&mut access)?;
        match access.iter.len() {
            0 => Ok(read),
            _ => Err(de::Error::invalid_length(
                elements.len(),
                &"fewer elements in array",
            )),
        }
    }

    fn members<V: Visitor<'de>>(
        self,
        members: &'de Map<String, Value>,
        visitor: V,
    ) -> Result<V::Value, ShapeError> {
        let mut access = Members {
            iter: members.iter(),
            pending: None,
            frame: self.frame,
        };
        let read = visitor.visit_map(&mut access)?;
        match access.iter.len() {
            0 => Ok(read),
            _ => Err(de::Error::invalid_length(
                members.len(),
                &"fewer elements in map",
            )),
        }
    }

    fn enumeration<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ShapeError> {
        match self.value {
            Value::String(name) => visitor.visit_enum(UnitVariant {
                name,
                value: None,
                frame: self.frame,
            }),
            Value::Object(members) => match single(members) {
                Some((name, value)) => visitor.visit_enum(UnitVariant {
                    name,
                    value: Some(value),
                    frame: self.frame,
                }),
                None => Err(de::Error::invalid_value(
                    Unexpected::Map,
                    &"map with a single key",
                )),
            },
            other => Err(de::Error::invalid_type(unexpected(other), &"string or map")),
        }
    }
}

fn single(members: &Map<String, Value>) -> Option<(&String, &Value)> {
    let mut iter = members.iter();
    match (iter.next(), iter.next()) {
        (Some(only), None) => Some(only),
        _ => None,
    }
}

/// Every numeric `deserialize_*` reads a number as serde_json does: the visitor gets the
/// number's own type (`u64`, `i64` or `f64`) and converts or refuses it.
macro_rules! forward_to_number {
    ($($method:ident)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ShapeError> {
                self.deserialize_u64(visitor)
            }
        )*
    };
}

impl<'de> de::Deserializer<'de> for At<'de, '_> {
    type Error = ShapeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ShapeError> {
        let frame = self.frame;
        self.any(visitor).map_err(|e| e.at(frame))
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ShapeError> {
        let frame = self.frame;
        match self.value {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
        .map_err(|e| e.at(frame))
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, ShapeError> {
        let frame = self.frame;
        visitor.visit_newtype_struct(self).map_err(|e| e.at(frame))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ShapeError> {
        let frame = self.frame;
        self.enumeration(visitor).map_err(|e| e.at(frame))
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ShapeError> {
        visitor.visit_unit()
    }

    // One method per JSON type, as serde_json's `Value` deserializer has: forwarding them
    // all to `deserialize_any` would put every `visit_*` of every raw type in the module.

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ShapeError> {
        match self.value {
            Value::Bool(b) => visitor.visit_bool(*b),
            other => Err(wrong_type(other, &visitor)),
        }
        .map_err(|e| e.at(self.frame))
    }

    fn deserialize_u64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ShapeError> {
        let frame = self.frame;
        self.number(visitor).map_err(|e| e.at(frame))
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ShapeError> {
        match self.value {
            Value::String(s) => visitor.visit_borrowed_str(s),
            other => Err(wrong_type(other, &visitor)),
        }
        .map_err(|e| e.at(self.frame))
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ShapeError> {
        match self.value {
            Value::Null => visitor.visit_unit(),
            other => Err(wrong_type(other, &visitor)),
        }
        .map_err(|e| e.at(self.frame))
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ShapeError> {
        let frame = self.frame;
        match self.value {
            Value::Array(elements) => self.elements(elements, visitor),
            other => Err(wrong_type(other, &visitor)),
        }
        .map_err(|e| e.at(frame))
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ShapeError> {
        let frame = self.frame;
        match self.value {
            Value::Object(members) => self.members(members, visitor),
            other => Err(wrong_type(other, &visitor)),
        }
        .map_err(|e| e.at(frame))
    }

    /// An object, or (as serde_json allows) an array of the fields in order.
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ShapeError> {
        let frame = self.frame;
        match self.value {
            Value::Array(elements) => self.elements(elements, visitor),
            Value::Object(members) => self.members(members, visitor),
            other => Err(wrong_type(other, &visitor)),
        }
        .map_err(|e| e.at(frame))
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ShapeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ShapeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ShapeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, ShapeError> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, ShapeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, ShapeError> {
        self.deserialize_seq(visitor)
    }

    serde::forward_to_deserialize_any! {
        bytes byte_buf
    }

    forward_to_number! {
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u128 deserialize_i8
        deserialize_i16 deserialize_i32 deserialize_i64 deserialize_i128 deserialize_f32
        deserialize_f64
    }
}

struct Elements<'de, 'f> {
    iter: std::slice::Iter<'de, Value>,
    index: usize,
    frame: &'f Frame<'f>,
}

impl<'de> de::SeqAccess<'de> for Elements<'de, '_> {
    type Error = ShapeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, ShapeError> {
        let Some(value) = self.iter.next() else {
            return Ok(None);
        };
        let frame = Frame::Element(self.frame, self.index);
        self.index += 1;
        seed.deserialize(At {
            value,
            frame: &frame,
        })
        .map(Some)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.iter.len())
    }
}

struct Members<'de, 'f> {
    iter: serde_json::map::Iter<'de>,
    /// The member whose name was read last, its value still to read.
    pending: Option<(&'de str, &'de Value)>,
    frame: &'f Frame<'f>,
}

impl<'de> de::MapAccess<'de> for Members<'de, '_> {
    type Error = ShapeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, ShapeError> {
        let Some((name, value)) = self.iter.next() else {
            return Ok(None);
        };
        self.pending = Some((name, value));
        // An unknown member is reported at its own path, as serde_path_to_error does.
        seed.deserialize(Name(name))
            .map(Some)
            .map_err(|e| e.at(&Frame::Member(self.frame, name)))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, ShapeError> {
        let Some((name, value)) = self.pending.take() else {
            return Err(de::Error::custom(
                "a member's value was read before its name",
            ));
        };
        seed.deserialize(At {
            value,
            frame: &Frame::Member(self.frame, name),
        })
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.iter.len())
    }
}

/// A member name, read as a string (a struct's field name, a map's key).
struct Name<'de>(&'de str);

impl<'de> de::Deserializer<'de> for Name<'de> {
    type Error = ShapeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ShapeError> {
        visitor.visit_borrowed_str(self.0)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map struct enum
        identifier ignored_any
    }
}

/// A variant named by a string, or by the only member of an object (serde_json's two
/// spellings); only unit variants are read (an object's value must then be `null`).
struct UnitVariant<'de, 'f> {
    name: &'de str,
    value: Option<&'de Value>,
    /// Where the enum's value sits (an object's member value is at `frame.name`).
    frame: &'f Frame<'f>,
}

impl<'de, 'f> de::EnumAccess<'de> for UnitVariant<'de, 'f> {
    type Error = ShapeError;
    type Variant = Self;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, Self), ShapeError> {
        seed.deserialize(Name(self.name))
            .map(|variant| (variant, self))
    }
}

impl<'de> de::VariantAccess<'de> for UnitVariant<'de, '_> {
    type Error = ShapeError;

    fn unit_variant(self) -> Result<(), ShapeError> {
        match self.value {
            None | Some(Value::Null) => Ok(()),
            Some(other) => Err(ShapeError::invalid_type(unexpected(other), &"unit")
                .at(&Frame::Member(self.frame, self.name))),
        }
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(
        self,
        _seed: T,
    ) -> Result<T::Value, ShapeError> {
        Err(de::Error::invalid_type(
            Unexpected::UnitVariant,
            &"newtype variant",
        ))
    }

    fn tuple_variant<V: Visitor<'de>>(
        self,
        _len: usize,
        _visitor: V,
    ) -> Result<V::Value, ShapeError> {
        Err(de::Error::invalid_type(
            Unexpected::UnitVariant,
            &"tuple variant",
        ))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, ShapeError> {
        Err(de::Error::invalid_type(
            Unexpected::UnitVariant,
            &"struct variant",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::config::raw::RawConfig;

    type Outcome = Result<(), (String, String)>;

    /// What phase one did before this reader: serde_path_to_error over serde_json's
    /// owned `Value` deserializer.
    fn reference(value: &Value) -> Outcome {
        serde_path_to_error::deserialize::<_, RawConfig>(value.clone())
            .map(|_| ())
            .map_err(|e| {
                let path = e.path().to_string();
                let path = if path == "." { String::new() } else { path };
                (path, e.into_inner().to_string())
            })
    }

    fn ours(value: &Value) -> Outcome {
        read::<RawConfig>(value)
            .map(|_| ())
            .map_err(|e| (e.path().to_owned(), e.message().to_owned()))
    }

    /// Every configuration the repository ships or tests with.
    fn seeds() -> Vec<Value> {
        let corpus: Map<String, Value> =
            serde_json::from_str(include_str!("../../../host-tests/corpus/configs.json")).unwrap();
        let mut seeds: Vec<Value> = corpus.into_iter().map(|(_, v)| v).collect();
        for text in [
            include_str!("../../../gateway-configs/envoy/actwarden.json"),
            include_str!("../../../gateway-configs/example/actwarden.json"),
            include_str!("../../../gateway-configs/mcp/actwarden.json"),
            include_str!("../../../tests/fixtures/cli/policy.json"),
        ] {
            seeds.push(serde_json::from_str(text).unwrap());
        }
        seeds
    }

    /// Paths to every value of `value`, as member names and indexes.
    fn every_path(value: &Value, at: Vec<Step>, out: &mut Vec<Vec<Step>>) {
        out.push(at.clone());
        match value {
            Value::Object(members) => {
                for (name, member) in members {
                    let mut next = at.clone();
                    next.push(Step::Member(name.clone()));
                    every_path(member, next, out);
                }
            }
            Value::Array(elements) => {
                for (i, element) in elements.iter().enumerate() {
                    let mut next = at.clone();
                    next.push(Step::Element(i));
                    every_path(element, next, out);
                }
            }
            _ => {}
        }
    }

    #[derive(Clone)]
    enum Step {
        Member(String),
        Element(usize),
    }

    fn node<'v>(value: &'v mut Value, path: &[Step]) -> &'v mut Value {
        path.iter().fold(value, |v, step| match step {
            Step::Member(name) => v.get_mut(name.as_str()).unwrap(),
            Step::Element(i) => v.get_mut(*i).unwrap(),
        })
    }

    /// Each seed, broken one way at one place: every value replaced by values of every JSON
    /// type, every object given an unknown member and each member removed in turn, every
    /// array given one more element and its first one removed.
    fn broken(seed: &Value) -> Vec<Value> {
        let replacements = [
            Value::Null,
            Value::Bool(true),
            serde_json::json!(0),
            serde_json::json!(-1),
            serde_json::json!(1.5),
            serde_json::json!(70000),
            serde_json::json!("x"),
            serde_json::json!(""),
            serde_json::json!("enforce"),
            serde_json::json!([]),
            serde_json::json!(["x"]),
            serde_json::json!({}),
            serde_json::json!({"zz": 1}),
            serde_json::json!({"shadow": null}),
            serde_json::json!({"shadow": 1}),
            serde_json::json!({"a": 1, "b": 2}),
        ];
        let mut paths = Vec::new();
        every_path(seed, Vec::new(), &mut paths);
        let mut out = Vec::new();
        for path in paths {
            for replacement in &replacements {
                let mut doc = seed.clone();
                *node(&mut doc, &path) = replacement.clone();
                out.push(doc);
            }
            let mut doc = seed.clone();
            match node(&mut doc, &path) {
                Value::Object(members) => {
                    members.insert("zz".to_owned(), Value::Null);
                    out.push(doc);
                    let names: Vec<String> = node(&mut seed.clone(), &path)
                        .as_object()
                        .map(|m| m.keys().cloned().collect())
                        .unwrap_or_default();
                    for name in names {
                        let mut doc = seed.clone();
                        if let Value::Object(members) = node(&mut doc, &path) {
                            members.shift_remove(&name);
                        }
                        out.push(doc);
                    }
                }
                Value::Array(elements) => {
                    let first = elements.first().cloned().unwrap_or(Value::Null);
                    elements.push(first);
                    out.push(doc);
                    let mut doc = seed.clone();
                    if let Value::Array(elements) = node(&mut doc, &path) {
                        if !elements.is_empty() {
                            elements.remove(0);
                        }
                    }
                    out.push(doc);
                }
                _ => {}
            }
        }
        out
    }

    #[test]
    fn paths_and_messages_match_serde_path_to_error() {
        let (mut compared, mut refused) = (0, 0);
        for seed in seeds() {
            assert_eq!(ours(&seed), Ok(()), "a shipped configuration reads");
            for doc in broken(&seed) {
                let expected = reference(&doc);
                assert_eq!(ours(&doc), expected, "{doc}");
                compared += 1;
                refused += usize::from(expected.is_err());
            }
        }
        assert!(compared > 10_000, "{compared} documents compared");
        assert!(refused > compared / 2, "{refused} of {compared} refused");
    }

    #[test]
    fn a_path_names_members_and_elements() {
        let doc = serde_json::json!({"rules": [{"id": "a", "match": {}}, {"id": 5}]});
        let error = read::<RawConfig>(&doc).unwrap_err();
        assert_eq!(error.path(), "rules[1].id");
        assert_eq!(
            error.message(),
            "invalid type: integer `5`, expected a string"
        );
        let error = read::<RawConfig>(&serde_json::json!({})).unwrap_err();
        assert_eq!(
            (error.path(), error.message()),
            ("", "missing field `rules`")
        );
    }
}
