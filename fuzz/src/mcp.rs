//! MCP messages (SPEC §9) for the decision target and the `mcp_message` target: a
//! JSON-RPC body built from fuzz-chosen parts (known methods, tool names and argument
//! keys most of the time), sometimes mangled, padded over `max_body_bytes`, or with
//! `mcp-method` / `mcp-name` headers that agree or not; and the invariants of the MCP
//! checks before step 1 and of `require.arguments`.

use crate::{JsonIn, Str};
use actwarden::mcp::{parse_message, McpFacts};
use actwarden::{Decision, Policy, Reason, Request};
use arbitrary::Arbitrary;
use serde_json::{json, Map, Value};

pub const MCP_METHODS: [&str; 9] = [
    "tools/call",
    "tools/list",
    "prompts/get",
    "resources/read",
    "resources/subscribe",
    "initialize",
    "notifications/initialized",
    "ping",
    "tools/call\u{0}",
];

/// Tool, prompt and resource names the corpus's `mcp` policy has rules for, and a few not.
pub const MCP_NAMES: [&str; 9] = [
    "create_payment",
    "invoices.list",
    "invoices.get",
    "admin_reset",
    "get_invoice",
    "file:///etc/passwd",
    "delete_everything",
    "",
    "create_payment\n",
];

pub const ARG_KEYS: [&str; 6] = ["amount", "currency", "debug", "customer", "note", "nested"];

/// Prefix of argument values that must never reach an audit record (each is unique to
/// its argument: `argsecret-<n>`).
pub const SECRET_PREFIX: &str = "argsecret-";

#[derive(Arbitrary, Debug, Clone)]
pub enum Pick {
    Known(u8),
    Any(String),
}

impl Pick {
    pub fn get(&self, table: &[&str]) -> String {
        match self {
            Pick::Known(i) => table[usize::from(*i) % table.len()].to_owned(),
            Pick::Any(s) => s.clone(),
        }
    }
}

#[derive(Arbitrary, Debug, Clone)]
pub enum ArgValue {
    Num(i32),
    Float(f64),
    Currency(u8),
    /// `argsecret-<n>`: checked never to appear in the audit line.
    Secret(u16),
    Sub(Str),
    Json(JsonIn),
}

impl ArgValue {
    pub fn get(&self) -> Value {
        match self {
            ArgValue::Num(n) => json!(n),
            ArgValue::Float(f) => json!(f),
            ArgValue::Currency(i) => json!(["EUR", "USD", "GBP", "eur"][usize::from(*i) % 4]),
            ArgValue::Secret(n) => json!(format!("{SECRET_PREFIX}{n}")),
            ArgValue::Sub(s) => json!(s.get()),
            ArgValue::Json(j) => j.get(),
        }
    }
}

#[derive(Arbitrary, Debug, Clone)]
pub enum Field<T> {
    Absent,
    Good(T),
    Json(JsonIn),
}

/// An `mcp-method` / `mcp-name` header.
#[derive(Arbitrary, Debug, Clone)]
pub enum McpHeader {
    /// What the body says.
    Same,
    Other(String),
    /// The body's value, twice.
    Twice,
}

#[derive(Arbitrary, Debug, Clone)]
pub enum Mangle {
    Truncate(u16),
    Insert(u16, u8),
    /// A second `"<member>": <value>` just after the opening brace (a duplicate member).
    Duplicate(u8, JsonIn),
    /// `[` … `]` around the message (a batch).
    Batch,
    /// Nest the arguments this many levels deeper (a nesting bomb when large).
    Nest(u16),
}

#[derive(Arbitrary, Debug, Clone)]
pub struct McpIn {
    /// `None`: `"2.0"`.
    pub jsonrpc: Option<JsonIn>,
    pub id: Option<JsonIn>,
    pub method: Field<Pick>,
    pub name: Field<Pick>,
    /// `uri` instead of `name`.
    pub uri: bool,
    pub arguments: Field<Vec<(Pick, ArgValue)>>,
    pub params_extra: Vec<(Str, JsonIn)>,
    pub extra: Vec<(Str, JsonIn)>,
    /// A response object (`result`) instead of a request.
    pub response: bool,
    pub method_header: Option<McpHeader>,
    pub name_header: Option<McpHeader>,
    /// Spaces appended: over `max_body_bytes` when large.
    pub pad: Option<u16>,
    pub mangle: Option<Mangle>,
    /// Sent as `POST /mcp` (else the request's own method and path).
    pub to_endpoint: bool,
}

impl McpIn {
    /// The body and the MCP headers.
    pub fn build(&self) -> (Vec<u8>, Vec<(String, String)>) {
        let mut m = Map::new();
        m.insert(
            "jsonrpc".into(),
            self.jsonrpc.as_ref().map_or(json!("2.0"), JsonIn::get),
        );
        if let Some(id) = &self.id {
            m.insert("id".into(), id.get());
        }
        let method = match &self.method {
            Field::Absent => None,
            Field::Good(p) => Some(json!(p.get(&MCP_METHODS))),
            Field::Json(j) => Some(j.get()),
        };
        let mut params = Map::new();
        let name = match &self.name {
            Field::Absent => None,
            Field::Good(p) => Some(json!(p.get(&MCP_NAMES))),
            Field::Json(j) => Some(j.get()),
        };
        if let Some(n) = &name {
            params.insert(if self.uri { "uri" } else { "name" }.into(), n.clone());
        }
        let mut arguments = match &self.arguments {
            Field::Absent => None,
            Field::Good(args) => Some(Value::Object(
                args.iter()
                    .map(|(k, v)| (k.get(&ARG_KEYS), v.get()))
                    .collect(),
            )),
            Field::Json(j) => Some(j.get()),
        };
        if let (Some(Mangle::Nest(n)), Some(args)) = (&self.mangle, arguments.as_mut()) {
            for _ in 0..(n % 200) {
                // A map built by hand: `json!` would serialize the value each level.
                let mut level = Map::new();
                level.insert("nested".to_owned(), args.take());
                *args = Value::Object(level);
            }
        }
        if let Some(a) = arguments {
            params.insert("arguments".into(), a);
        }
        for (k, v) in &self.params_extra {
            params.insert(k.get(), v.get());
        }
        if self.response {
            m.insert("result".into(), Value::Object(params));
        } else {
            if let Some(method) = &method {
                m.insert("method".into(), method.clone());
            }
            if !params.is_empty() {
                m.insert("params".into(), Value::Object(params));
            }
        }
        for (k, v) in &self.extra {
            m.insert(k.get(), v.get());
        }
        let mut body = Value::Object(m).to_string().into_bytes();
        match &self.mangle {
            Some(Mangle::Truncate(at)) => body.truncate(usize::from(*at) % (body.len() + 1)),
            Some(Mangle::Insert(at, b)) => body.insert(usize::from(*at) % (body.len() + 1), *b),
            Some(Mangle::Duplicate(which, v)) => {
                let member = ["jsonrpc", "method", "params", "id"][usize::from(*which) % 4];
                let dup = format!("\"{member}\":{},", v.get());
                body.splice(1..1, dup.into_bytes());
            }
            Some(Mangle::Batch) => {
                body.insert(0, b'[');
                body.push(b']');
            }
            _ => {}
        }
        if let Some(n) = self.pad {
            body.extend(std::iter::repeat_n(b' ', usize::from(n) % 8192));
        }
        let mut headers = Vec::new();
        let as_text = |v: &Option<Value>| match v {
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
            None => String::new(),
        };
        let method_text = as_text(&method);
        let name_text = as_text(&name);
        for (header, choice, value) in [
            ("mcp-method", &self.method_header, method_text),
            ("mcp-name", &self.name_header, name_text),
        ] {
            match choice {
                None => {}
                Some(McpHeader::Same) => headers.push((header.to_owned(), value)),
                Some(McpHeader::Other(s)) => headers.push((header.to_owned(), s.clone())),
                Some(McpHeader::Twice) => {
                    headers.push((header.to_owned(), value.clone()));
                    headers.push((header.to_owned(), value));
                }
            }
        }
        (body, headers)
    }
}

/// Whether the policy reads this request as an MCP message.
pub fn is_mcp_message(policy: &Policy, request: &Request) -> bool {
    policy.mcp.as_ref().is_some_and(|m| {
        request.method == "POST" && m.endpoints.iter().any(|e| e == request.path_only())
    })
}

/// The MCP invariants of one decision under `policy` (nothing when the request is not an
/// MCP message): the checks before step 1 agree with the parser, the decision's facts are
/// the body's without arguments, `require.arguments` of the corpus's `mcp-payments` rule
/// hold on an allowed call, and no argument value reaches the audit line.
pub fn check_mcp(d: &Decision, policy: &Policy, request: &Request) {
    let audit = d.audit_record(request);
    assert!(
        d.mcp.as_ref().is_none_or(|f| f.arguments.is_none()),
        "a decision keeps MCP arguments"
    );
    if !is_mcp_message(policy, request) {
        assert!(
            d.mcp.is_none(),
            "MCP facts for a request that is no message"
        );
        assert!(
            audit.mcp_method.is_none() && audit.mcp_name.is_none(),
            "MCP audit fields for a request that is no message"
        );
        return;
    }
    let max = policy.mcp.as_ref().map_or(0, |m| m.max_body_bytes);
    let body = request.body.as_deref().unwrap_or_default();
    let reason = d.reason();
    if body.len() > max {
        assert_eq!(reason, Reason::McpBodyTooLarge, "an oversized MCP body");
        return;
    }
    let facts = match parse_message(body) {
        Err(_) => {
            assert_eq!(reason, Reason::McpMalformed, "a malformed MCP body");
            return;
        }
        Ok(facts) => facts,
    };
    assert!(
        !matches!(reason, Reason::McpBodyTooLarge | Reason::McpMalformed),
        "a readable MCP body refused as {reason:?}"
    );
    if let Some(m) = &facts.method {
        assert!(!m.chars().any(char::is_control));
    }
    if let Some(n) = &facts.name {
        assert!(!n.is_empty() && !n.chars().any(char::is_control));
    }
    // The strict reader agrees with serde_json on what it accepts.
    let plain: Value = serde_json::from_slice(body).expect("strict JSON is JSON");
    assert_eq!(
        plain.get("id"),
        facts.id.as_ref(),
        "the id differs from serde's"
    );
    assert_eq!(
        plain.get("method").and_then(Value::as_str),
        facts.method.as_deref()
    );
    if reason == Reason::McpHeaderMismatch {
        return;
    }
    let without_arguments = McpFacts {
        arguments: None,
        ..facts.clone()
    };
    assert_eq!(
        d.mcp.as_ref(),
        Some(&without_arguments),
        "decision MCP facts"
    );
    assert_eq!(audit.mcp_method, facts.method, "audit mcp_method");
    // The corpus's `mcp-payments` rule: an allowed call had arguments in its bounds.
    if reason == Reason::Allowed && audit.rule.as_deref() == Some("mcp-payments") {
        let args = facts.arguments.clone().unwrap_or_default();
        let amount = args.get("amount").and_then(Value::as_f64);
        assert!(
            amount.is_some_and(|a| (1.0..=1000.0).contains(&a)),
            "create_payment allowed with amount {:?}",
            args.get("amount")
        );
        assert!(
            matches!(
                args.get("currency").and_then(Value::as_str),
                Some("EUR" | "USD")
            ),
            "create_payment allowed with currency {:?}",
            args.get("currency")
        );
        assert!(
            args.get("debug").is_none(),
            "create_payment allowed with debug"
        );
    }
    // Argument values never reach the audit line (unless the request says them elsewhere).
    if let Some(args) = &facts.arguments {
        let line = audit.to_json_line();
        let mut secrets = Vec::new();
        args.iter()
            .for_each(|(_, v)| collect_secrets(v, &mut secrets));
        for s in secrets {
            if !said_elsewhere(request, &facts, &s) {
                assert!(!line.contains(&s), "argument value {s} in the audit line");
            }
        }
    }
}

fn collect_secrets(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) if s.starts_with(SECRET_PREFIX) => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|v| collect_secrets(v, out)),
        Value::Object(o) => o.values().for_each(|v| collect_secrets(v, out)),
        _ => {}
    }
}

fn said_elsewhere(r: &Request, facts: &McpFacts, s: &str) -> bool {
    r.path.contains(s)
        || r.method.contains(s)
        || r.authority.as_deref().is_some_and(|a| a.contains(s))
        || r.headers
            .iter()
            .any(|(n, v)| n.contains(s) || v.contains(s))
        || facts.name.as_deref().is_some_and(|n| n.contains(s))
        || facts.method.as_deref().is_some_and(|m| m.contains(s))
}
