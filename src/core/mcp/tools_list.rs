//! `tools/list` filtering (SPEC §9): the response to an allowed `tools/list` keeps only
//! the tools this caller could call now. A pure function over the response bytes — JSON
//! (`application/json`) or an SSE stream (`text/event-stream`), where each `data:` event
//! that is the JSON-RPC response to the request's `id` is rewritten and every other event
//! passes byte for byte.
//!
//! Fail closed: a response that cannot be read (not UTF-8, not strict JSON, another
//! content type or encoding, an answer to another id, a tool without a string name) or
//! that is over `max_response_bytes` is never passed on unfiltered — the host answers
//! 502 `UNFILTERABLE_BODY` instead.

use super::message::nesting_exceeds;
use crate::core::limits::MAX_MCP_JSON_DEPTH;
use crate::core::token::json::parse_strict;
use serde_json::{Map, Value};

/// The body of the 502 that replaces an unfilterable response.
pub const UNFILTERABLE_BODY: &str = r#"{"error":"tools_list_unfilterable"}"#;

/// The HTTP status of that reply.
pub const UNFILTERABLE_STATUS: u16 = 502;

/// A filtered response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilteredResponse {
    pub body: Vec<u8>,
    /// Tools kept and removed (over every response event).
    pub kept: usize,
    pub removed: usize,
}

/// Why a response could not be filtered (it becomes a 502).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Unfilterable {
    TooLarge,
    /// Neither `application/json` nor `text/event-stream`, or content-encoded.
    ContentType,
    NotUtf8,
    NotJson,
    NotJsonRpc,
    /// A JSON response whose `id` is not the request's.
    OtherId,
    /// `result.tools` missing or not an array, or a tool without a string `name`.
    NoToolList,
}

impl Unfilterable {
    pub fn describe(self) -> &'static str {
        use Unfilterable::*;
        match self {
            TooLarge => "the tools/list response is over mcp.max_response_bytes",
            ContentType => "the tools/list response is neither JSON nor SSE (or is encoded)",
            NotUtf8 => "the tools/list response is not UTF-8",
            NotJson => "the tools/list response is not strict JSON",
            NotJsonRpc => "the tools/list response is not a JSON-RPC 2.0 object",
            OtherId => "the tools/list response answers another request id",
            NoToolList => "the tools/list result has no readable tool list",
        }
    }
}

/// The kinds of body the filter reads, from a `content-type` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    Json,
    EventStream,
}

impl BodyKind {
    pub fn of(content_type: &str) -> Option<BodyKind> {
        let media = content_type.split(';').next().unwrap_or_default().trim();
        if media.eq_ignore_ascii_case("application/json") {
            Some(BodyKind::Json)
        } else if media.eq_ignore_ascii_case("text/event-stream") {
            Some(BodyKind::EventStream)
        } else {
            None
        }
    }
}

/// Filters `body`, the response to the `tools/list` with JSON-RPC id `id`. `keep(name)`
/// says whether a tool stays.
pub(crate) fn filter(
    body: &[u8],
    kind: BodyKind,
    id: Option<&Value>,
    max: usize,
    keep: &mut dyn FnMut(&str) -> bool,
) -> Result<FilteredResponse, Unfilterable> {
    if body.len() > max {
        return Err(Unfilterable::TooLarge);
    }
    let mut out = FilteredResponse {
        body: Vec::with_capacity(body.len()),
        kept: 0,
        removed: 0,
    };
    match kind {
        BodyKind::Json => {
            let value = parse(body)?;
            match rewrite(value, id, keep, &mut out)? {
                Some(v) => out.body = serde_json::to_vec(&v).map_err(|_| Unfilterable::NotJson)?,
                None => return Err(Unfilterable::OtherId),
            }
        }
        BodyKind::EventStream => {
            let text = std::str::from_utf8(body).map_err(|_| Unfilterable::NotUtf8)?;
            out.body = event_stream(text, id, keep, &mut out)?.into_bytes();
        }
    }
    Ok(out)
}

fn parse(text: &[u8]) -> Result<Value, Unfilterable> {
    if nesting_exceeds(text, MAX_MCP_JSON_DEPTH) {
        return Err(Unfilterable::NotJson);
    }
    parse_strict(text).map_err(|_| Unfilterable::NotJson)
}

/// The filtered form of a JSON-RPC message that answers `id`; `Ok(None)` when `value` is
/// a valid message that is not a response (a notification or a request of the server).
/// A response to another id is refused (`OtherId`): one POST carries one request, so its
/// stream answers nothing else, and a client may match ids the gateway does not (`1.0`
/// sent, `1` echoed by a JavaScript server): passed on, it would be an unfiltered list.
fn rewrite(
    value: Value,
    id: Option<&Value>,
    keep: &mut dyn FnMut(&str) -> bool,
    out: &mut FilteredResponse,
) -> Result<Option<Value>, Unfilterable> {
    let Value::Object(mut object) = value else {
        return Err(Unfilterable::NotJsonRpc);
    };
    if object.get("jsonrpc") != Some(&Value::String("2.0".into())) {
        return Err(Unfilterable::NotJsonRpc);
    }
    let is_response = !object.contains_key("method")
        && (object.contains_key("result") || object.contains_key("error"));
    if !is_response {
        return Ok(None);
    }
    if object.get("id") != id {
        return Err(Unfilterable::OtherId);
    }
    match object.get_mut("result") {
        // An error answer lists no tools: nothing to remove.
        None => {}
        Some(Value::Object(result)) => filter_tools(result, keep, out)?,
        Some(_) => return Err(Unfilterable::NoToolList),
    }
    Ok(Some(Value::Object(object)))
}

fn filter_tools(
    result: &mut Map<String, Value>,
    keep: &mut dyn FnMut(&str) -> bool,
    out: &mut FilteredResponse,
) -> Result<(), Unfilterable> {
    let Some(Value::Array(tools)) = result.get_mut("tools") else {
        return Err(Unfilterable::NoToolList);
    };
    let mut kept = Vec::with_capacity(tools.len());
    for tool in std::mem::take(tools) {
        let name = tool.get("name").and_then(Value::as_str);
        let Some(name) = name else {
            return Err(Unfilterable::NoToolList);
        };
        if keep(name) {
            out.kept += 1;
            kept.push(tool);
        } else {
            out.removed += 1;
        }
    }
    *tools = kept;
    Ok(())
}

/// An SSE stream, event by event (WHATWG HTML §9.2: lines end in CRLF, LF or CR; a blank
/// line ends an event; `data` fields join with LF).
fn event_stream(
    text: &str,
    id: Option<&Value>,
    keep: &mut dyn FnMut(&str) -> bool,
    out: &mut FilteredResponse,
) -> Result<String, Unfilterable> {
    let mut result = String::with_capacity(text.len());
    // A stream may start with a byte-order mark, which clients drop before reading the
    // first field (§9.2.6): read past it, or `\u{feff}data: …` would pass as a field of
    // another name, unfiltered. It stays in the output.
    let text = match text.strip_prefix('\u{feff}') {
        Some(rest) => {
            result.push('\u{feff}');
            rest
        }
        None => text,
    };
    let mut event: Vec<&str> = Vec::new();
    for line in lines(text) {
        let blank = line.trim_end_matches(['\r', '\n']).is_empty();
        event.push(line);
        if blank {
            result.push_str(&one_event(&event, id, keep, out)?);
            event.clear();
        }
    }
    if !event.is_empty() {
        result.push_str(&one_event(&event, id, keep, out)?);
    }
    Ok(result)
}

/// `text` in lines, each with its terminator.
fn lines(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let end = match rest.find(['\r', '\n']) {
            None => rest.len(),
            Some(i) if rest.get(i..i + 2) == Some("\r\n") => i + 2,
            Some(i) => i + 1,
        };
        let (line, tail) = rest.split_at(end);
        rest = tail;
        Some(line)
    })
}

/// One event: unchanged unless its data is the answer to `id`, then with that data
/// filtered and written as one `data:` line where the first was.
fn one_event(
    event: &[&str],
    id: Option<&Value>,
    keep: &mut dyn FnMut(&str) -> bool,
    out: &mut FilteredResponse,
) -> Result<String, Unfilterable> {
    let data: Vec<&str> = event.iter().filter_map(|l| data_field(l)).collect();
    let unchanged = || event.concat();
    if data.is_empty() || data.iter().all(|d| d.is_empty()) {
        return Ok(unchanged());
    }
    let joined = data.join("\n");
    let Some(filtered) = rewrite(parse(joined.as_bytes())?, id, keep, out)? else {
        return Ok(unchanged());
    };
    let json = serde_json::to_string(&filtered).map_err(|_| Unfilterable::NotJson)?;
    let mut written = false;
    let mut rebuilt = String::new();
    for line in event {
        if data_field(line).is_none() {
            rebuilt.push_str(line);
        } else if !written {
            rebuilt.push_str("data: ");
            rebuilt.push_str(&json);
            rebuilt.push('\n');
            written = true;
        }
    }
    Ok(rebuilt)
}

/// The value of a `data` field line (`data:x`, `data: x`, or a bare `data`).
fn data_field(line: &str) -> Option<&str> {
    let line = line.trim_end_matches(['\r', '\n']);
    if line == "data" {
        return Some("");
    }
    let value = line.strip_prefix("data:")?;
    Some(value.strip_prefix(' ').unwrap_or(value))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    const LIST: &str = r#"{"jsonrpc":"2.0","id":3,"result":{"tools":[{"name":"get_invoice","inputSchema":{}},{"name":"create_payment"}],"nextCursor":"c"}}"#;

    fn only_invoices(name: &str) -> bool {
        name.starts_with("get_")
    }

    fn run(body: &str, kind: BodyKind) -> Result<FilteredResponse, Unfilterable> {
        filter(
            body.as_bytes(),
            kind,
            Some(&json!(3)),
            1 << 20,
            &mut only_invoices,
        )
    }

    #[test]
    fn json_keeps_callable_tools_and_everything_else() {
        let out = run(LIST, BodyKind::Json).unwrap();
        let v: Value = serde_json::from_slice(&out.body).unwrap();
        assert_eq!(
            v["result"]["tools"],
            json!([{"name":"get_invoice","inputSchema":{}}])
        );
        assert_eq!(v["result"]["nextCursor"], "c");
        assert_eq!((out.kept, out.removed), (1, 1));
    }

    #[test]
    fn sse_rewrites_only_the_answer() {
        let stream = format!(
            "event: message\r\ndata: {{\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\"}}\r\n\r\nid: 9\ndata:\n\nevent: message\ndata: {LIST}\n\n"
        );
        let out = run(&stream, BodyKind::EventStream).unwrap();
        let text = String::from_utf8(out.body).unwrap();
        assert!(text.starts_with("event: message\r\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\"}\r\n\r\nid: 9\ndata:\n\n"));
        assert!(
            text.contains("get_invoice") && !text.contains("create_payment"),
            "{text}"
        );
        assert!(text.ends_with("}\n\n"));
    }

    #[test]
    fn sse_data_split_over_lines_is_joined() {
        let (a, b) = LIST.split_at(40);
        let stream = format!("data: {a}\ndata: {b}\n\n");
        // LF inside JSON text between tokens is whitespace only where it falls between
        // tokens; here it falls inside a string, so this is not JSON: fail closed.
        let split_in_string = run(&stream, BodyKind::EventStream);
        let whole = "data: {\"jsonrpc\":\"2.0\",\ndata: \"id\":3,\"result\":{\"tools\":[{\"name\":\"create_payment\"}]}}\n\n";
        let out = run(whole, BodyKind::EventStream).unwrap();
        assert_eq!(out.removed, 1);
        assert!(
            split_in_string.is_err()
                || !String::from_utf8(split_in_string.unwrap().body)
                    .unwrap()
                    .contains("create_payment")
        );
    }

    #[test]
    fn unreadable_responses_fail_closed() {
        use Unfilterable::*;
        assert_eq!(run("{", BodyKind::Json).unwrap_err(), NotJson);
        assert_eq!(run("[]", BodyKind::Json).unwrap_err(), NotJsonRpc);
        let other = LIST.replace("\"id\":3", "\"id\":4");
        assert_eq!(run(&other, BodyKind::Json).unwrap_err(), OtherId);
        let dup = LIST.replace("\"nextCursor\":\"c\"", "\"tools\":[]");
        assert_eq!(run(&dup, BodyKind::Json).unwrap_err(), NotJson);
        let no_name = LIST.replace("{\"name\":\"create_payment\"}", "{\"title\":\"x\"}");
        assert_eq!(run(&no_name, BodyKind::Json).unwrap_err(), NoToolList);
        assert_eq!(
            filter(
                LIST.as_bytes(),
                BodyKind::Json,
                Some(&json!(3)),
                10,
                &mut only_invoices
            )
            .unwrap_err(),
            TooLarge
        );
        assert_eq!(
            filter(
                b"data: \xff\n\n",
                BodyKind::EventStream,
                None,
                100,
                &mut only_invoices
            )
            .unwrap_err(),
            NotUtf8
        );
        assert_eq!(
            run("data: {oops\n\n", BodyKind::EventStream).unwrap_err(),
            NotJson
        );
        assert!(BodyKind::of("text/html").is_none());
        assert_eq!(
            BodyKind::of("application/json; charset=utf-8"),
            Some(BodyKind::Json)
        );
    }

    #[test]
    fn sse_answers_to_another_id_fail_closed() {
        // Asked with id 3.0, answered with 3 (a JavaScript server): not passed on.
        let stream = format!("data: {LIST}\n\n");
        let asked = filter(
            stream.as_bytes(),
            BodyKind::EventStream,
            Some(&json!(3.0)),
            1 << 20,
            &mut only_invoices,
        );
        assert_eq!(asked.unwrap_err(), Unfilterable::OtherId);
        let other = format!("data: {}\n\n", LIST.replace("\"id\":3", "\"id\":4"));
        assert_eq!(
            run(&other, BodyKind::EventStream).unwrap_err(),
            Unfilterable::OtherId
        );
    }

    #[test]
    fn sse_byte_order_mark_is_read_past() {
        let stream = format!("\u{feff}data: {LIST}\n\n");
        let out = run(&stream, BodyKind::EventStream).unwrap();
        let text = String::from_utf8(out.body).unwrap();
        assert!(text.starts_with("\u{feff}data: "), "{text}");
        assert!(!text.contains("create_payment"), "{text}");
        assert_eq!((out.kept, out.removed), (1, 1));
    }

    #[test]
    fn an_error_answer_passes() {
        let err = r#"{"jsonrpc":"2.0","id":3,"error":{"code":-32601,"message":"no"}}"#;
        let out = run(err, BodyKind::Json).unwrap();
        assert_eq!(
            serde_json::from_slice::<Value>(&out.body).unwrap(),
            serde_json::from_str::<Value>(err).unwrap()
        );
    }
}

/// Arbitrary bytes never panic the MCP readers, and an answer that is not a readable tool
/// list is never passed on unchanged with tools in it.
#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod fuzz {
    use super::*;

    #[test]
    fn random_and_mutated_inputs_never_panic() {
        let seeds: [&[u8]; 3] = [
            br#"{"jsonrpc":"2.0","id":7,"result":{"tools":[{"name":"a"},{"name":"b"}]}}"#,
            b"event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{\"tools\":[]}}\n\n",
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","arguments":{"a":[1,{"b":2}]}}}"#,
        ];
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for round in 0..1500 {
            let seed = seeds[round % seeds.len()];
            let mut input = seed.to_vec();
            for _ in 0..(next() % 6) {
                let at = (next() as usize) % input.len().max(1);
                match next() % 3 {
                    0 => input.insert(at, (next() % 256) as u8),
                    1 if !input.is_empty() => {
                        input.remove(at.min(input.len() - 1));
                    }
                    _ => {
                        if let Some(b) = input.get_mut(at) {
                            *b = (next() % 256) as u8;
                        }
                    }
                }
            }
            let _ = super::super::message::parse(&input);
            for kind in [BodyKind::Json, BodyKind::EventStream] {
                let mut keep = |n: &str| n == "a";
                if let Ok(out) = filter(&input, kind, Some(&Value::from(7)), 1 << 16, &mut keep) {
                    // Whatever passed was read: a "b" tool in the answer to id 7 is gone.
                    let text = String::from_utf8_lossy(&out.body);
                    assert!(!text.contains(r#"{"name":"b"}"#) || out.removed == 0 && out.kept == 0);
                }
            }
        }
    }
}
