//! The facts of one MCP message (SPEC §9), read from the request body with the strict
//! JSON parser (no duplicate members: a body that means two things to two parsers is how
//! a `tools/call` slips past a gateway), within the size and nesting budgets.

use crate::core::config::Policy;
use crate::core::limits::{MAX_MCP_JSON_DEPTH, MAX_MCP_METHOD_BYTES, MAX_MCP_NAME_BYTES};
use crate::core::reasons::Denial;
use crate::core::request::Request;
use crate::core::token::json::{duplicate, parse_strict_as, JsonProblem};
use crate::core::token::json::{Object, StrictValue, StrictVisitor, TopObject};
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use std::collections::HashSet;
use std::marker::PhantomData;

/// What one MCP message says. `method` is `None` for a JSON-RPC response object.
#[derive(Debug, Clone, PartialEq)]
pub struct McpFacts {
    pub method: Option<String>,
    /// `params.name` (`tools/call`, `prompts/get`) or `params.uri` (`resources/read`,
    /// `resources/subscribe`, `resources/unsubscribe`).
    pub name: Option<String>,
    /// `params.arguments` of `tools/call` and `prompts/get`: never logged.
    pub arguments: Option<Object>,
    /// The JSON-RPC `id` (a `tools/list` response is matched to its request by it).
    pub id: Option<Value>,
}

/// Why a body is not one MCP message (`mcp_malformed`). Carries no body content: a
/// denial's detail reaches logs, and a body may hold secrets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum McpProblem {
    NotUtf8Json,
    DuplicateMember,
    TooDeep,
    NotAnObject,
    NotJsonRpc2,
    NeitherRequestNorResponse,
    MethodNotString,
    MethodTooLong,
    ParamsNotObject,
    NameMissing,
    NameNotString,
    /// Control characters, or longer than `MAX_MCP_NAME_BYTES`.
    NameUnacceptable,
    ArgumentsNotObject,
}

impl McpProblem {
    pub fn describe(self) -> &'static str {
        use McpProblem::*;
        match self {
            NotUtf8Json => "the MCP body is not UTF-8 JSON",
            DuplicateMember => "the MCP body has a duplicate member name",
            TooDeep => "the MCP body nests deeper than allowed",
            NotAnObject => "the MCP body is not one JSON-RPC object (batches are not MCP)",
            NotJsonRpc2 => "the MCP body lacks \"jsonrpc\": \"2.0\"",
            NeitherRequestNorResponse => "the MCP body has neither `method` nor `result`/`error`",
            MethodNotString => "the MCP `method` is not a string",
            MethodTooLong => "the MCP `method` is too long or has control characters",
            ParamsNotObject => "the MCP `params` is not an object",
            NameMissing => "the MCP message names no tool, prompt or resource",
            NameNotString => "the MCP tool, prompt or resource name is not a string",
            NameUnacceptable => {
                "the MCP tool, prompt or resource name is too long or has control characters"
            }
            ArgumentsNotObject => "the MCP `arguments` is not an object",
        }
    }
}

/// Whether this request is an MCP message: a `POST` whose path (without query) is one of
/// `mcp.endpoints`.
pub(crate) fn is_mcp_message(policy: &Policy, request: &Request) -> bool {
    policy.mcp.as_ref().is_some_and(|mcp| {
        request.method == "POST" && mcp.endpoints.iter().any(|e| e == request.path_only())
    })
}

/// Whether the host must hand the core this request's body (the Envoy filter buffers it
/// only then; every other route keeps the header-only path).
pub fn needs_body(policy: &Policy, method: &str, path: &str) -> bool {
    let path = path.split(['?', '#']).next().unwrap_or(path);
    policy
        .mcp
        .as_ref()
        .is_some_and(|mcp| method == "POST" && mcp.endpoints.iter().any(|e| e == path))
}

/// The checks before step 1 of SPEC §4, for an MCP message: size, shape, headers.
pub(crate) fn read(policy: &Policy, request: &Request) -> Result<McpFacts, Denial> {
    let max = policy.mcp.as_ref().map_or(0, |m| m.max_body_bytes);
    let body = request.body.as_deref().unwrap_or_default();
    if body.len() > max {
        return Err(Denial::McpBodyTooLarge {
            size: body.len(),
            max,
        });
    }
    let facts = parse(body).map_err(Denial::McpMalformed)?;
    check_headers(request, &facts)?;
    Ok(facts)
}

/// One JSON-RPC 2.0 object, strictly.
pub fn parse(body: &[u8]) -> Result<McpFacts, McpProblem> {
    if nesting_exceeds(body, MAX_MCP_JSON_DEPTH) {
        return Err(McpProblem::TooDeep);
    }
    let message = parse_strict_as::<Read<Message>>(body).map_err(|e| match e {
        JsonProblem::DuplicateMember(_) => McpProblem::DuplicateMember,
        JsonProblem::Syntax(_) => McpProblem::NotUtf8Json,
    })?;
    let Read::Object(message) = message else {
        return Err(McpProblem::NotAnObject);
    };
    if !matches!(&message.jsonrpc, Some(StrictValue(Value::String(v))) if v == "2.0") {
        return Err(McpProblem::NotJsonRpc2);
    }
    let id = message.id.map(|v| v.0);
    let method = match message.method.map(|v| v.0) {
        None if message.result_or_error => {
            return Ok(McpFacts {
                method: None,
                name: None,
                arguments: None,
                id,
            })
        }
        None => return Err(McpProblem::NeitherRequestNorResponse),
        Some(Value::String(m)) => m,
        Some(_) => return Err(McpProblem::MethodNotString),
    };
    if method.len() > MAX_MCP_METHOD_BYTES || method.chars().any(char::is_control) {
        return Err(McpProblem::MethodTooLong);
    }
    let (name, arguments) = named(&method, message.params)?;
    Ok(McpFacts {
        method: Some(method),
        name,
        arguments,
        id,
    })
}

/// `name` and `arguments` for the methods that carry them.
type Named = (Option<String>, Option<Object>);

fn named(method: &str, params: Option<Read<Params>>) -> Result<Named, McpProblem> {
    let (by_uri, has_arguments) = match method {
        "tools/call" | "prompts/get" => (false, true),
        "resources/read" | "resources/subscribe" | "resources/unsubscribe" => (true, false),
        _ => return Ok((None, None)),
    };
    let params = match params {
        Some(Read::Object(p)) => p,
        None => return Err(McpProblem::NameMissing),
        Some(Read::NotObject) => return Err(McpProblem::ParamsNotObject),
    };
    let name = if by_uri { params.uri } else { params.name };
    let name = match name.map(|v| v.0) {
        None => return Err(McpProblem::NameMissing),
        Some(Value::String(n)) => n,
        Some(_) => return Err(McpProblem::NameNotString),
    };
    if name.is_empty() || name.len() > MAX_MCP_NAME_BYTES || name.chars().any(char::is_control) {
        return Err(McpProblem::NameUnacceptable);
    }
    let arguments = match params.arguments.map(|v| v.0) {
        Some(Some(a)) if has_arguments => Some(a),
        Some(None) if has_arguments => return Err(McpProblem::ArgumentsNotObject),
        _ => None,
    };
    Ok((Some(name), arguments))
}

/// A JSON value read strictly (no duplicate names at any depth) that keeps, when it is an
/// object, only the members `M` takes; every other member is read as strictly and
/// dropped. A message is read this way in one pass: reading the body into a `Value` first
/// built a map for the message, one for `params` and one for `arguments`, each hashing
/// its keys, and then took the members out again — most of an MCP decision's time.
// One per message and one for its `params`, on the stack: boxing the large variant would
// only add an allocation.
#[allow(clippy::large_enum_variant)]
enum Read<M> {
    Object(M),
    /// Valid JSON that is not an object (a batch, a scalar).
    NotObject,
}

/// The members of one object a reader keeps.
trait Members: Default {
    /// Reads member `name`'s value from `map` if this reader keeps it; `Ok(false)` when it
    /// does not (the caller reads and drops it).
    fn take<'de, A: MapAccess<'de>>(&mut self, name: &str, map: &mut A) -> Result<bool, A::Error>;
}

/// A message's top level.
#[derive(Default)]
struct Message {
    jsonrpc: Option<StrictValue>,
    id: Option<StrictValue>,
    method: Option<StrictValue>,
    params: Option<Read<Params>>,
    /// A `result` or an `error` member: a JSON-RPC response.
    result_or_error: bool,
}

impl Members for Message {
    fn take<'de, A: MapAccess<'de>>(&mut self, name: &str, map: &mut A) -> Result<bool, A::Error> {
        match name {
            "jsonrpc" => keep(map, &mut self.jsonrpc, name)?,
            "id" => keep(map, &mut self.id, name)?,
            "method" => keep(map, &mut self.method, name)?,
            "params" => keep(map, &mut self.params, name)?,
            "result" | "error" => {
                self.result_or_error = true;
                return Ok(false);
            }
            _ => return Ok(false),
        }
        Ok(true)
    }
}

/// `params`: the members a name and arguments come from. `arguments` is read into an
/// `Object` (its members found by comparison, as a token's claims are), not a map that
/// hashes every name.
#[derive(Default)]
struct Params {
    name: Option<StrictValue>,
    uri: Option<StrictValue>,
    arguments: Option<TopObject>,
}

impl Members for Params {
    fn take<'de, A: MapAccess<'de>>(&mut self, name: &str, map: &mut A) -> Result<bool, A::Error> {
        match name {
            "name" => keep(map, &mut self.name, name)?,
            "uri" => keep(map, &mut self.uri, name)?,
            "arguments" => keep(map, &mut self.arguments, name)?,
            _ => return Ok(false),
        }
        Ok(true)
    }
}

/// Keeps a member's value in `slot`, refusing a second one (after reading it, as the
/// `Value` reader does).
fn keep<'de, A: MapAccess<'de>, T: Deserialize<'de>>(
    map: &mut A,
    slot: &mut Option<T>,
    name: &str,
) -> Result<(), A::Error> {
    if slot.replace(map.next_value()?).is_some() {
        return Err(duplicate(name));
    }
    Ok(())
}

/// Member names already read in one object that no field keeps (a set made only when one
/// appears), so that a duplicate is refused whatever its name.
#[derive(Default)]
struct OtherNames(Option<HashSet<String>>);

impl OtherNames {
    fn first_time<E: de::Error>(&mut self, name: String) -> Result<(), E> {
        let names = self.0.get_or_insert_with(HashSet::new);
        if names.contains(&name) {
            return Err(duplicate(&name));
        }
        names.insert(name);
        Ok(())
    }
}

impl<'de, M: Members> Deserialize<'de> for Read<M> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ReadVisitor(PhantomData))
    }
}

struct ReadVisitor<M>(PhantomData<M>);

/// A value that is not an object is checked as strictly as any (`StrictVisitor`), then
/// read as `NotObject`.
impl<'de, M: Members> Visitor<'de> for ReadVisitor<M> {
    type Value = Read<M>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Read<M>, E> {
        StrictVisitor.visit_bool::<E>(v).map(|_| Read::NotObject)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Read<M>, E> {
        StrictVisitor.visit_i64::<E>(v).map(|_| Read::NotObject)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Read<M>, E> {
        StrictVisitor.visit_u64::<E>(v).map(|_| Read::NotObject)
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Read<M>, E> {
        StrictVisitor.visit_f64::<E>(v).map(|_| Read::NotObject)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Read<M>, E> {
        StrictVisitor.visit_str::<E>(v).map(|_| Read::NotObject)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Read<M>, E> {
        StrictVisitor.visit_unit::<E>().map(|_| Read::NotObject)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Read<M>, A::Error> {
        StrictVisitor.visit_seq(seq).map(|_| Read::NotObject)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Read<M>, A::Error> {
        let mut out = M::default();
        let mut others = OtherNames::default();
        while let Some(name) = map.next_key::<String>()? {
            if !out.take(&name, &mut map)? {
                // The value first, as the `Value` reader does: a broken value is a syntax
                // error even under a repeated name.
                map.next_value::<StrictValue>()?;
                others.first_time(name)?;
            }
        }
        Ok(Read::Object(out))
    }
}

/// SEP-2243: `mcp-method` and `mcp-name`, when sent, say what the body says (a repeated
/// header says two things, so it disagrees).
fn check_headers(request: &Request, facts: &McpFacts) -> Result<(), Denial> {
    for (header, body) in [
        ("mcp-method", facts.method.as_deref()),
        ("mcp-name", facts.name.as_deref()),
    ] {
        let mut values = request.header_values(header);
        let Some(first) = values.next() else { continue };
        if values.next().is_some() || Some(first) != body {
            return Err(Denial::McpHeaderMismatch { header });
        }
    }
    Ok(())
}

/// Whether JSON text nests deeper than `max` arrays/objects: a linear scan before parsing,
/// so depth is a budget of its own and not serde_json's recursion limit.
pub(crate) fn nesting_exceeds(text: &[u8], max: usize) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in text {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::core::token::json::parse_strict;

    fn problem(body: &[u8]) -> McpProblem {
        parse(body).unwrap_err()
    }

    /// The reader as first written: the whole body into a `Value`, then members taken out.
    fn reference(body: &[u8]) -> Result<McpFacts, McpProblem> {
        if nesting_exceeds(body, MAX_MCP_JSON_DEPTH) {
            return Err(McpProblem::TooDeep);
        }
        let value = parse_strict(body).map_err(|e| match e {
            JsonProblem::DuplicateMember(_) => McpProblem::DuplicateMember,
            JsonProblem::Syntax(_) => McpProblem::NotUtf8Json,
        })?;
        let Value::Object(mut object) = value else {
            return Err(McpProblem::NotAnObject);
        };
        if object.get("jsonrpc") != Some(&Value::String("2.0".into())) {
            return Err(McpProblem::NotJsonRpc2);
        }
        let id = object.remove("id");
        let method = match object.remove("method") {
            None if object.contains_key("result") || object.contains_key("error") => {
                return Ok(McpFacts {
                    method: None,
                    name: None,
                    arguments: None,
                    id,
                })
            }
            None => return Err(McpProblem::NeitherRequestNorResponse),
            Some(Value::String(m)) => m,
            Some(_) => return Err(McpProblem::MethodNotString),
        };
        if method.len() > MAX_MCP_METHOD_BYTES || method.chars().any(char::is_control) {
            return Err(McpProblem::MethodTooLong);
        }
        let (member, has_arguments) = match method.as_str() {
            "tools/call" | "prompts/get" => ("name", true),
            "resources/read" | "resources/subscribe" | "resources/unsubscribe" => ("uri", false),
            _ => {
                return Ok(McpFacts {
                    method: Some(method),
                    name: None,
                    arguments: None,
                    id,
                })
            }
        };
        let mut params = match object.remove("params") {
            Some(Value::Object(p)) => p,
            None => return Err(McpProblem::NameMissing),
            Some(_) => return Err(McpProblem::ParamsNotObject),
        };
        let name = match params.remove(member) {
            None => return Err(McpProblem::NameMissing),
            Some(Value::String(n)) => n,
            Some(_) => return Err(McpProblem::NameNotString),
        };
        if name.is_empty() || name.len() > MAX_MCP_NAME_BYTES || name.chars().any(char::is_control)
        {
            return Err(McpProblem::NameUnacceptable);
        }
        let arguments = match params.remove("arguments") {
            Some(Value::Object(a)) if has_arguments => Some(a.into()),
            Some(_) if has_arguments => return Err(McpProblem::ArgumentsNotObject),
            _ => None,
        };
        Ok(McpFacts {
            method: Some(method),
            name: Some(name),
            arguments,
            id,
        })
    }

    /// Bodies made of every kind of member (right, wrong type, repeated, nested repeats),
    /// in shuffled orders and combinations: the one-pass reader answers as the reference.
    #[test]
    fn one_pass_reader_agrees_with_the_value_reader() {
        const TOP: &[&str] = &[
            r#""jsonrpc":"2.0""#,
            r#""jsonrpc":"1.0""#,
            r#""jsonrpc":2"#,
            r#""id":7"#,
            r#""id":"x""#,
            r#""id":null"#,
            r#""method":"tools/call""#,
            r#""method":"resources/read""#,
            r#""method":"prompts/get""#,
            r#""method":"ping""#,
            r#""method":1"#,
            r#""method":"a\u0001""#,
            r#""result":{}"#,
            r#""error":{"code":1,"code":2}"#,
            r#""error":{"code":1}"#,
            r#""params":{"name":"t","arguments":{"a":1}}"#,
            r#""params":{"uri":"file:///x","name":"n"}"#,
            r#""params":{"name":"t","arguments":[1]}"#,
            r#""params":{"name":"t","name":"u"}"#,
            r#""params":{"arguments":{"a":{"b":1,"b":2}},"name":"t"}"#,
            r#""params":{"name":"","x":1,"x":2}"#,
            r#""params":{"name":"","z":1}"#,
            r#""params":{"uri":"b\u0002","z":1}"#,
            r#""params":{"name":5,"y":[{"z":1}]}"#,
            r#""params":[1,2]"#,
            r#""params":"s""#,
            r#""params":null"#,
            r#""other":{"k":1}"#,
            r#""other":2"#,
            r#""more":[{"d":1,"d":1}]"#,
            r#""other":tru"#,
            r#""params":{"name":"t","x":1,"x":[}"#,
        ];
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = |bound: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % bound as u64) as usize
        };
        let mut agreed = 0;
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..40_000 {
            let members: Vec<&str> = (0..1 + next(6)).map(|_| TOP[next(TOP.len())]).collect();
            let body = format!("{{{}}}", members.join(","));
            let outcome = parse(body.as_bytes());
            assert_eq!(outcome, reference(body.as_bytes()), "{body}");
            seen.insert(format!("{:?}", outcome.map(|f| f.method.is_some())));
            agreed += 1;
        }
        // Every outcome occurred, so the agreement covers each.
        for outcome in [
            "Ok(true)",
            "Ok(false)",
            "Err(DuplicateMember)",
            "Err(NotJsonRpc2)",
            "Err(NeitherRequestNorResponse)",
            "Err(MethodNotString)",
            "Err(MethodTooLong)",
            "Err(ParamsNotObject)",
            "Err(NameMissing)",
            "Err(NameNotString)",
            "Err(NameUnacceptable)",
            "Err(ArgumentsNotObject)",
            "Err(NotUtf8Json)",
        ] {
            assert!(seen.contains(outcome), "{outcome} never occurred: {seen:?}");
        }
        for body in [
            "",
            "[]",
            "[{}]",
            "1",
            "\"s\"",
            "null",
            "true",
            "{",
            "{}",
            "{\"a\":1}x",
            "[1,{\"a\":1,\"a\":1}]",
            "{\"jsonrpc\":\"2.0\",\"method\":\"tools/call\",\"params\":{\"name\":\"t\"}}",
        ] {
            assert_eq!(parse(body.as_bytes()), reference(body.as_bytes()), "{body}");
        }
        assert_eq!(agreed, 40_000);
    }

    #[test]
    fn reads_a_tool_call() {
        let f = parse(br#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"create_payment","arguments":{"amount":5}}}"#).unwrap();
        assert_eq!(f.method.as_deref(), Some("tools/call"));
        assert_eq!(f.name.as_deref(), Some("create_payment"));
        assert_eq!(f.arguments.unwrap().get("amount"), Some(&5.into()));
        assert_eq!(f.id, Some(Value::from(7)));
    }

    #[test]
    fn resources_are_named_by_uri_and_responses_have_no_method() {
        let f = parse(
            br#"{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"file:///a"}}"#,
        )
        .unwrap();
        assert_eq!(f.name.as_deref(), Some("file:///a"));
        let r = parse(br#"{"jsonrpc":"2.0","id":1,"result":{}}"#).unwrap();
        assert_eq!(r.method, None);
        let n = parse(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).unwrap();
        assert_eq!(n.name, None);
    }

    #[test]
    fn malformed_bodies() {
        use McpProblem::*;
        assert_eq!(problem(b""), NotUtf8Json);
        assert_eq!(
            problem(b"{\"jsonrpc\":\"2.0\",\"method\":\"\xff\"}"),
            NotUtf8Json
        );
        assert_eq!(
            problem(br#"{"jsonrpc":"2.0","method":"tools/ca"#),
            NotUtf8Json
        );
        assert_eq!(
            problem(br#"[{"jsonrpc":"2.0","method":"ping"}]"#),
            NotAnObject
        );
        assert_eq!(problem(br#"{"method":"ping"}"#), NotJsonRpc2);
        assert_eq!(
            problem(br#"{"jsonrpc":"2.0","id":1}"#),
            NeitherRequestNorResponse
        );
        assert_eq!(problem(br#"{"jsonrpc":"2.0","method":1}"#), MethodNotString);
        assert_eq!(
            problem(br#"{"jsonrpc":"2.0","method":"tools/call","params":{"name":1}}"#),
            NameNotString
        );
        assert_eq!(
            problem(br#"{"jsonrpc":"2.0","method":"tools/call","params":{"name":"a\u0000b"}}"#),
            NameUnacceptable
        );
        assert_eq!(
            problem(br#"{"jsonrpc":"2.0","method":"tools/call","params":{"name":"a","name":"b"}}"#),
            DuplicateMember
        );
        assert_eq!(
            problem(
                br#"{"jsonrpc":"2.0","method":"tools/call","params":{"name":"a","arguments":[]}}"#
            ),
            ArgumentsNotObject
        );
        assert_eq!(
            problem(br#"{"jsonrpc":"2.0","method":"tools/call"}"#),
            NameMissing
        );
    }

    #[test]
    fn nesting_is_a_budget() {
        let deep = format!(
            r#"{{"jsonrpc":"2.0","method":"tools/call","params":{{"name":"a","arguments":{{"x":{}1{}}}}}}}"#,
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        assert_eq!(problem(deep.as_bytes()), McpProblem::TooDeep);
        // Brackets inside strings do not count.
        let quoted = format!(
            r#"{{"jsonrpc":"2.0","method":"ping","params":{{"s":"{}"}}}}"#,
            "[".repeat(1000)
        );
        assert!(parse(quoted.as_bytes()).is_ok());
    }
}
