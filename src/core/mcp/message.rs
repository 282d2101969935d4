//! The facts of one MCP message (SPEC §9), read from the request body with the strict
//! JSON parser (no duplicate members: a body that means two things to two parsers is how
//! a `tools/call` slips past a gateway), within the size and nesting budgets.

use crate::core::config::Policy;
use crate::core::limits::{MAX_MCP_JSON_DEPTH, MAX_MCP_METHOD_BYTES, MAX_MCP_NAME_BYTES};
use crate::core::reasons::Denial;
use crate::core::request::Request;
use crate::core::token::json::{parse_strict, JsonProblem};
use serde_json::{Map, Value};

/// What one MCP message says. `method` is `None` for a JSON-RPC response object.
#[derive(Debug, Clone, PartialEq)]
pub struct McpFacts {
    pub method: Option<String>,
    /// `params.name` (`tools/call`, `prompts/get`) or `params.uri` (`resources/read`,
    /// `resources/subscribe`, `resources/unsubscribe`).
    pub name: Option<String>,
    /// `params.arguments` of `tools/call` and `prompts/get`: never logged.
    pub arguments: Option<Map<String, Value>>,
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
    let (name, arguments) = named(&method, object.remove("params"))?;
    Ok(McpFacts {
        method: Some(method),
        name,
        arguments,
        id,
    })
}

/// `name` and `arguments` for the methods that carry them.
type Named = (Option<String>, Option<Map<String, Value>>);

fn named(method: &str, params: Option<Value>) -> Result<Named, McpProblem> {
    let (name_member, has_arguments) = match method {
        "tools/call" | "prompts/get" => ("name", true),
        "resources/read" | "resources/subscribe" | "resources/unsubscribe" => ("uri", false),
        _ => return Ok((None, None)),
    };
    let mut params = match params {
        Some(Value::Object(p)) => p,
        None => return Err(McpProblem::NameMissing),
        Some(_) => return Err(McpProblem::ParamsNotObject),
    };
    let name = match params.remove(name_member) {
        None => return Err(McpProblem::NameMissing),
        Some(Value::String(n)) => n,
        Some(_) => return Err(McpProblem::NameNotString),
    };
    if name.is_empty() || name.len() > MAX_MCP_NAME_BYTES || name.chars().any(char::is_control) {
        return Err(McpProblem::NameUnacceptable);
    }
    let arguments = match params.remove("arguments") {
        Some(Value::Object(a)) if has_arguments => Some(a),
        Some(_) if has_arguments => return Err(McpProblem::ArgumentsNotObject),
        _ => None,
    };
    Ok((Some(name), arguments))
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

    fn problem(body: &[u8]) -> McpProblem {
        parse(body).unwrap_err()
    }

    #[test]
    fn reads_a_tool_call() {
        let f = parse(br#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"create_payment","arguments":{"amount":5}}}"#).unwrap();
        assert_eq!(f.method.as_deref(), Some("tools/call"));
        assert_eq!(f.name.as_deref(), Some("create_payment"));
        assert_eq!(f.arguments.unwrap()["amount"], 5);
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
