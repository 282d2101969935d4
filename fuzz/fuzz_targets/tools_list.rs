//! `tools/list` response filtering (SPEC §9, `actwarden::mcp::filter_tools_list`, a pure
//! function) under the corpus's `mcp` policy (the HS256 twin), for a caller with no token,
//! a token allowed every tool, one allowed the invoice tools only, or a fuzz-built one. The
//! response is JSON or an SSE stream built from parts — the answer's JSON split over
//! `data:` lines at any byte, LF / CRLF / CR line ends, `data:` with or without its space,
//! comments, other fields, notifications, answers to other ids, a byte-order mark, no final
//! blank line — or raw bytes.
//!
//! The oracle: whether a tool `name` may stay is what the same filter says of a JSON
//! answer listing that one tool. Invariants:
//! - over `max_response_bytes` is `TooLarge`, another content type `ContentType`; a
//!   well-formed JSON answer to the request's id is filtered (never refused);
//! - JSON: the output is the input with `result.tools` reduced to a subsequence of the
//!   original, exactly the tools the oracle keeps; `kept`/`removed` count them;
//! - SSE (read as a client does, WHATWG HTML §9.2): the output dispatches as many events
//!   as the input, each the same data except answers to the request's id; no dispatched
//!   event that a client takes for the answer (a response whose `id` equals the request's
//!   as JSON numbers compare in JavaScript) lists a tool the oracle removes — never an
//!   unfiltered passthrough;
//! - no token: no tool is kept.
#![no_main]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use actwarden::mcp::{filter_tools_list, parse_message, McpFacts, Unfilterable};
use actwarden::{Context, NoRemoteKeys, Request, UnixTime, RING};
use actwarden_fuzz::mcp::{Pick, MCP_NAMES};
use actwarden_fuzz::{fixture, JsonIn, Str, TokenIn, NOW, POLICY_NAMES};
use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::OnceLock;

#[derive(Arbitrary, Debug)]
enum TokIn {
    None,
    /// Every scope, delegated by the orchestrator.
    Full,
    /// `invoices:read` only.
    Invoices,
    Any(Box<TokenIn>),
}

#[derive(Arbitrary, Debug, Clone)]
enum IdIn {
    Int(i64),
    Small(u8),
    Float(f64),
    Str(Str),
    Null,
    Json(JsonIn),
}

impl IdIn {
    fn get(&self) -> Value {
        match self {
            IdIn::Int(i) => json!(i),
            IdIn::Small(i) => json!(i),
            IdIn::Float(f) => json!(f),
            IdIn::Str(s) => json!(s.get()),
            IdIn::Null => Value::Null,
            IdIn::Json(j) => j.get(),
        }
    }
}

#[derive(Arbitrary, Debug, Clone)]
struct ToolIn {
    name: Option<Pick>,
    extra: Option<(Str, JsonIn)>,
}

#[derive(Arbitrary, Debug, Clone)]
struct ListIn {
    tools: Vec<ToolIn>,
    /// `None`: the request's id.
    id: Option<IdIn>,
    /// An error answer instead of a result.
    error: bool,
    result_extra: Vec<(Str, JsonIn)>,
    /// `method` added (a request or notification of the server).
    method: Option<Str>,
}

impl ListIn {
    fn get(&self, request_id: &Option<Value>) -> Value {
        let mut m = Map::new();
        m.insert("jsonrpc".into(), json!("2.0"));
        match (&self.id, request_id) {
            (Some(id), _) => {
                m.insert("id".into(), id.get());
            }
            (None, Some(id)) => {
                m.insert("id".into(), id.clone());
            }
            (None, None) => {}
        }
        if let Some(method) = &self.method {
            m.insert("method".into(), json!(method.get()));
        }
        if self.error {
            m.insert("error".into(), json!({"code": -32601, "message": "no"}));
        } else {
            let tools: Vec<Value> = self
                .tools
                .iter()
                .map(|t| {
                    let mut o = Map::new();
                    if let Some(n) = &t.name {
                        o.insert("name".into(), json!(n.get(&MCP_NAMES)));
                    }
                    if let Some((k, v)) = &t.extra {
                        o.insert(k.get(), v.get());
                    }
                    Value::Object(o)
                })
                .collect();
            let mut result = Map::new();
            result.insert("tools".into(), Value::Array(tools));
            for (k, v) in &self.result_extra {
                result.insert(k.get(), v.get());
            }
            m.insert("result".into(), Value::Object(result));
        }
        Value::Object(m)
    }
}

#[derive(Arbitrary, Debug, Clone)]
enum EventIn {
    /// A JSON-RPC message as `data:` lines, split at these byte offsets.
    Message(ListIn, Vec<u16>),
    Notification,
    Comment(String),
    Field(String, String),
    Line(String),
    /// A `data:` line as is.
    Data(String),
}

#[derive(Arbitrary, Debug, Clone)]
struct SseIn {
    events: Vec<EventIn>,
    /// 0: LF, 1: CRLF, 2: CR, 3: mixed.
    eol: u8,
    no_space: bool,
    bom: bool,
    /// No blank line after the last event.
    unterminated: bool,
    event_field: bool,
}

#[derive(Arbitrary, Debug)]
enum BodyIn {
    Json(ListIn),
    Sse(SseIn),
    Raw(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
struct Input {
    token: TokIn,
    id: Option<IdIn>,
    content_type: u8,
    body: BodyIn,
}

const CONTENT_TYPES: [&str; 6] = [
    "application/json",
    "text/event-stream",
    "application/json; charset=utf-8",
    "Text/Event-Stream; charset=utf-8",
    "text/html",
    "",
];

fn sse(s: &SseIn, request_id: &Option<Value>) -> String {
    let mut out = String::new();
    if s.bom {
        out.push('\u{feff}');
    }
    let mut n = 0usize;
    let mut eol = |out: &mut String| {
        n += 1;
        out.push_str(match (s.eol % 4, n % 3) {
            (0, _) | (3, 0) => "\n",
            (1, _) | (3, 1) => "\r\n",
            _ => "\r",
        });
    };
    let data = if s.no_space { "data:" } else { "data: " };
    for (i, e) in s.events.iter().enumerate() {
        if s.event_field {
            out.push_str("event: message");
            eol(&mut out);
        }
        match e {
            EventIn::Message(list, splits) => {
                let text = list.get(request_id).to_string();
                let mut cuts: Vec<usize> = splits
                    .iter()
                    .map(|c| usize::from(*c) % (text.len() + 1))
                    .filter(|c| text.is_char_boundary(*c))
                    .collect();
                cuts.sort_unstable();
                cuts.dedup();
                let mut last = 0;
                for c in cuts.into_iter().chain([text.len()]) {
                    out.push_str(data);
                    out.push_str(&text[last..c]);
                    eol(&mut out);
                    last = c;
                }
            }
            EventIn::Notification => {
                out.push_str(data);
                out.push_str(r#"{"jsonrpc":"2.0","method":"notifications/progress","params":{}}"#);
                eol(&mut out);
            }
            EventIn::Comment(c) => {
                out.push(':');
                out.push_str(c);
                eol(&mut out);
            }
            EventIn::Field(k, v) => {
                out.push_str(k);
                out.push(':');
                out.push_str(v);
                eol(&mut out);
            }
            EventIn::Line(l) => {
                out.push_str(l);
                eol(&mut out);
            }
            EventIn::Data(d) => {
                out.push_str(data);
                out.push_str(d);
                eol(&mut out);
            }
        }
        if !(s.unterminated && i + 1 == s.events.len()) {
            eol(&mut out);
        }
    }
    out
}

/// The events a client dispatches (WHATWG HTML §9.2.6): their data.
fn client_events(text: &str) -> Vec<String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut events = Vec::new();
    let mut buffer = String::new();
    let mut rest = text;
    while let Some(i) = rest.find(['\r', '\n']) {
        let line = &rest[..i];
        let skip = if rest[i..].starts_with("\r\n") { 2 } else { 1 };
        rest = &rest[i + skip..];
        if line.is_empty() {
            if !buffer.is_empty() {
                buffer.pop();
                events.push(std::mem::take(&mut buffer));
            }
            continue;
        }
        if line.starts_with(':') {
            continue;
        }
        let (field, value) = match line.find(':') {
            Some(c) => {
                let v = &line[c + 1..];
                (&line[..c], v.strip_prefix(' ').unwrap_or(v))
            }
            None => (line, ""),
        };
        if field == "data" {
            buffer.push_str(value);
            buffer.push('\n');
        }
    }
    events
}

/// Whether a client takes `message` for the answer to `id`: a response (no `method`) whose
/// `id` equals it, numbers compared as JavaScript does (as doubles).
fn client_answer(message: &Value, id: &Option<Value>) -> bool {
    let Some(m) = message.as_object() else {
        return false;
    };
    if m.contains_key("method") || !(m.contains_key("result") || m.contains_key("error")) {
        return false;
    }
    match (m.get("id"), id) {
        (Some(Value::Number(a)), Some(Value::Number(b))) => a.as_f64() == b.as_f64(),
        (a, b) => a == b.as_ref(),
    }
}

/// How deep JSON text nests (`limits::MAX_MCP_JSON_DEPTH` is 64).
fn depth(v: &[u8]) -> usize {
    fn of(v: &Value) -> usize {
        match v {
            Value::Array(a) => 1 + a.iter().map(of).max().unwrap_or(0),
            Value::Object(o) => 1 + o.values().map(of).max().unwrap_or(0),
            _ => 0,
        }
    }
    serde_json::from_slice::<Value>(v).map_or(usize::MAX, |v| of(&v))
}

fn tools_of(message: &Value) -> Option<&Vec<Value>> {
    message.get("result")?.get("tools")?.as_array()
}

fn tokens() -> &'static [String; 2] {
    static T: OnceLock<[String; 2]> = OnceLock::new();
    T.get_or_init(|| {
        let f = fixture();
        let mint = |scope: &str| {
            let claims = json!({
                "iss": "https://sts.example.com", "sub": "user:alice", "sub_profile": "user",
                "aud": "payments-api", "iat": NOW - 60, "exp": NOW + 600, "jti": "jti-list",
                "scope": scope,
                "act": {"sub": "spiffe://prod.example.com/agent/orchestrator"}
            });
            f.hs_keys[0]
                .mint(actwarden::Alg::HS256, &claims, None, &f.rng)
                .unwrap()
        };
        [
            mint("invoices:read payments:write admin"),
            mint("invoices:read"),
        ]
    })
}

fuzz_target!(|input: Input| {
    let f = fixture();
    let policy_index = POLICY_NAMES.iter().position(|n| *n == "mcp").unwrap();
    let policy = &f.hs_policies[policy_index];
    let max = policy.mcp.as_ref().unwrap().max_response_bytes;
    let token = match &input.token {
        TokIn::None => None,
        TokIn::Full => Some(tokens()[0].clone()),
        TokIn::Invoices => Some(tokens()[1].clone()),
        TokIn::Any(t) => Some(t.mint(f, false).token),
    };
    let mut headers = vec![("content-type".to_owned(), "application/json".to_owned())];
    if let Some(t) = &token {
        headers.push(("authorization".into(), format!("Bearer {t}")));
    }
    let request = Request {
        method: "POST".into(),
        path: "/mcp".into(),
        authority: Some("api.example.com".into()),
        headers,
        ..Request::default()
    };
    // The request's id as the gateway read it from the tools/list request.
    let id = match &input.id {
        None => None,
        Some(i) => {
            let request_body = json!({"jsonrpc": "2.0", "id": i.get(), "method": "tools/list"});
            match parse_message(request_body.to_string().as_bytes()) {
                Ok(facts) => facts.id,
                Err(_) => return,
            }
        }
    };
    let facts = McpFacts {
        method: Some("tools/list".into()),
        name: None,
        arguments: None,
        id: id.clone(),
    };
    let window = actwarden::MemoryWindow::new();
    let ctx = Context {
        policy,
        remote_keys: &NoRemoteKeys,
        crypto: &RING,
        replay: &window,
        cache: None,
        shared: None,
    };
    let now = UnixTime::from_secs(NOW);
    let content_type = match input.content_type % 8 {
        i @ 0..=5 => CONTENT_TYPES[usize::from(i)],
        // Mostly the kind of the body.
        _ => match input.body {
            BodyIn::Sse(_) => "text/event-stream",
            _ => "application/json",
        },
    };
    let body = match &input.body {
        BodyIn::Json(list) => list.get(&id).to_string().into_bytes(),
        BodyIn::Sse(s) => sse(s, &id).into_bytes(),
        BodyIn::Raw(b) => b.clone(),
    };
    // The oracle, per name.
    let mut verdicts: HashMap<String, bool> = HashMap::new();
    let mut allowed = |name: &str| -> bool {
        if let Some(v) = verdicts.get(name) {
            return *v;
        }
        let one = json!({"jsonrpc": "2.0", "id": 1, "result": {"tools": [{"name": name}]}});
        let one_facts = McpFacts {
            id: Some(json!(1)),
            ..facts.clone()
        };
        let out = filter_tools_list(
            ctx,
            &request,
            &one_facts,
            now,
            "application/json",
            one.to_string().as_bytes(),
        )
        .expect("a one-tool answer filters");
        assert_eq!(out.kept + out.removed, 1);
        let keep = out.kept == 1;
        if token.is_none() {
            assert!(!keep, "tool {name:?} kept without a token");
        }
        verdicts.insert(name.to_owned(), keep);
        keep
    };
    let result = filter_tools_list(ctx, &request, &facts, now, content_type, &body);
    let kind = actwarden::mcp::BodyKind::of(content_type);
    if body.len() > max {
        assert_eq!(result, Err(Unfilterable::TooLarge));
        return;
    }
    if kind.is_none() {
        assert_eq!(result, Err(Unfilterable::ContentType));
        return;
    }
    // A well-formed JSON answer to the request's id is always filtered (a fractional id
    // too: serde_json's `float_roundtrip` reads back the double it wrote).
    if let (BodyIn::Json(list), Some(actwarden::mcp::BodyKind::Json)) = (&input.body, kind) {
        let well_formed = list.id.is_none()
            && id.is_some()
            && list.method.is_none()
            && list.tools.iter().all(|t| {
                t.name.is_some() && t.extra.as_ref().is_none_or(|(k, _)| k.get() != "name")
            })
            && list.result_extra.iter().all(|(k, _)| k.get() != "tools")
            && depth(&body) <= 64;
        if well_formed {
            assert!(result.is_ok(), "a well-formed answer refused: {result:?}");
        }
    }
    let Ok(out) = result else { return };
    match kind.unwrap() {
        actwarden::mcp::BodyKind::Json => {
            let before: Value = serde_json::from_slice(&body).expect("filtered JSON was JSON");
            let after: Value = serde_json::from_slice(&out.body).expect("output is JSON");
            assert_eq!(
                after.get("id"),
                id.as_ref(),
                "the output answers another id"
            );
            let (mut b, mut a) = (before.clone(), after.clone());
            let (tb, ta) = (
                tools_of(&before).cloned().unwrap_or_default(),
                tools_of(&after).cloned().unwrap_or_default(),
            );
            if let Some(r) = b.get_mut("result").and_then(Value::as_object_mut) {
                r.remove("tools");
            }
            if let Some(r) = a.get_mut("result").and_then(Value::as_object_mut) {
                r.remove("tools");
            }
            assert_eq!(a, b, "the filter changed more than result.tools");
            let expected: Vec<Value> = tb
                .iter()
                .filter(|t| allowed(t["name"].as_str().expect("a kept list has names")))
                .cloned()
                .collect();
            assert_eq!(ta, expected, "result.tools is not the allowed subsequence");
            assert_eq!(out.kept, ta.len());
            assert_eq!(out.removed, tb.len() - ta.len());
        }
        actwarden::mcp::BodyKind::EventStream => {
            let text = String::from_utf8(out.body.clone()).expect("SSE output is UTF-8");
            let input_text = std::str::from_utf8(&body).unwrap();
            let (before, after) = (client_events(input_text), client_events(&text));
            assert_eq!(
                before.len(),
                after.len(),
                "events dispatched differ: {input_text:?} -> {text:?}"
            );
            let mut kept = 0;
            for (b, a) in before.iter().zip(&after) {
                let parsed: Option<Value> = serde_json::from_str(a).ok();
                if let Some(message) = parsed.as_ref().filter(|m| client_answer(m, &id)) {
                    if let Some(tools) = tools_of(message) {
                        for t in tools {
                            let name = t.get("name").and_then(Value::as_str);
                            assert!(
                                name.is_some_and(&mut allowed),
                                "a client reads tool {name:?} the filter removes: {input_text:?} -> {text:?}"
                            );
                            kept += 1;
                        }
                    }
                } else {
                    assert_eq!(b, a, "an event that is not the answer changed");
                }
            }
            assert!(kept <= out.kept, "more tools read than kept");
        }
    }
});
