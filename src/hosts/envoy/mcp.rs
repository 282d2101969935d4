//! The Envoy side of SPEC §9 (MCP). Only a `POST` to an MCP endpoint takes this path:
//! its body is buffered (up to `mcp.max_body_bytes`; one byte more is refused with 413 at
//! once, never forwarded) and the request is decided at the end of the stream. An allowed
//! `tools/list` has its response buffered (up to `mcp.max_response_bytes`) and rewritten.
//! Every other route keeps the header-only path. The metadata `GET` needs nothing here:
//! it is a decision whose answer the plugin sends (`Verdict::Answer`).
//!
//! Envoy's proxy-wasm host turns a `Pause` from a headers callback into
//! `StopAllIterationAndWatermark`, which withholds the body from the filter until it
//! resumes (proxy-wasm-cpp-host#143): a filter cannot hold headers *and* read the body.
//! So for a body-phase decision the headers go on first (spoofed `x-agent-*` removed);
//! the upstream sees them but never the body of a refused message (the local reply resets
//! its stream), and an allowed one carries no identity headers (they can no longer be set).
//! Likewise a `tools/list` response's headers go on before its body is read: what can be
//! judged from them (status, content type, encoding, a `content-length` over budget)
//! becomes the 502; `content-length` is removed so the rewritten body may differ in
//! length; a body that turns out unreadable is replaced by a JSON-RPC error answer to the
//! request's `id` with message `tools_list_unfilterable` (in the response's own framing,
//! JSON or one SSE event), since the status line has gone out.

use super::host::Host;
use super::plugin::{PendingRequest, Plugin, ToolsListJob};
use crate::core::mcp::{UNFILTERABLE_BODY, UNFILTERABLE_STATUS};
use proxy_wasm::types::{Action, LogLevel};

/// Where a request stands on the MCP path.
#[derive(Default)]
pub(crate) enum McpPhase {
    /// Not an MCP message, or already decided.
    #[default]
    Idle,
    /// Headers read; deciding waits for the body.
    AwaitingBody(Box<PendingRequest>),
    /// An allowed `tools/list`: its response is buffered and filtered.
    Filtering(Box<ToolsListJob>),
    /// The response headers said 502 (unfilterable): the body becomes the 502's.
    Replaced,
    /// The refusal went out mid-stream: later chunks are dropped.
    Dropping,
}

/// Headers of an MCP message: remove spoofed identity now (they go on before the body).
pub(crate) fn await_body<H: Host>(
    plugin: &Plugin<H>,
    phase: &mut McpPhase,
    mut pending: PendingRequest,
) -> Action {
    for (name, _) in &pending.request.headers {
        if crate::core::decision::is_identity_header(name)
            && !plugin.host.remove_request_header(name)
        {
            plugin.host.log(
                LogLevel::Error,
                "actwarden: could not remove an inbound identity header; refusing the request",
            );
            super::plugin::send_error(&plugin.host, 500);
            return Action::Pause;
        }
    }
    // A compressed answer could not be filtered: ask every MCP upstream for an identity
    // encoding now, while the headers can still change (the method is in the body).
    // Never touch request headers after this callback: they are gone, and the SDK panics
    // on the host's refusal.
    if !plugin.host.remove_request_header("accept-encoding") {
        super::plugin::send_error(&plugin.host, 500);
        return Action::Pause;
    }
    pending.headers_sent = true;
    *phase = McpPhase::AwaitingBody(Box::new(pending));
    Action::Continue
}

/// Request body: buffer until the end of the stream, or refuse an oversized body at once.
pub(crate) fn on_request_body<H: Host>(
    plugin: &Plugin<H>,
    context_id: u32,
    phase: &mut McpPhase,
    body_size: usize,
    end_of_stream: bool,
) -> Action {
    let max = plugin.policy.mcp.as_ref().map_or(0, |m| m.max_body_bytes);
    if !matches!(phase, McpPhase::AwaitingBody(_)) {
        return Action::Continue;
    }
    if body_size <= max && !end_of_stream {
        return Action::Pause; // StopIterationAndBuffer
    }
    let McpPhase::AwaitingBody(mut pending) = std::mem::take(phase) else {
        return Action::Continue;
    };
    // Over budget: one byte more than allowed is enough for the core to say 413.
    let Some(body) = plugin
        .host
        .request_body(body_size.min(max.saturating_add(1)))
    else {
        plugin.host.log(
            LogLevel::Error,
            "actwarden: could not read the request body",
        );
        super::plugin::send_error(&plugin.host, 500);
        return Action::Pause;
    };
    pending.request.body = Some(body);
    decide(plugin, context_id, phase, *pending)
}

/// Decides an MCP message and, for an allowed `tools/list`, arms the response filter.
pub(crate) fn decide<H: Host>(
    plugin: &Plugin<H>,
    context_id: u32,
    phase: &mut McpPhase,
    pending: PendingRequest,
) -> Action {
    let action = plugin.process(context_id, pending, false);
    if let Some(job) = plugin.take_tools_list(context_id) {
        *phase = McpPhase::Filtering(Box::new(job));
    }
    action
}

/// Response headers of a filtered `tools/list`. They go on now (see the module docs):
/// what they show decides a 502 here; otherwise `content-length` goes, for the rewrite.
pub(crate) fn on_response_headers<H: Host>(
    plugin: &Plugin<H>,
    context_id: u32,
    phase: &mut McpPhase,
    _end_of_stream: bool,
) -> Action {
    if !matches!(phase, McpPhase::Filtering(_)) {
        // A request paused for a JWKS refetch is decided later by the plugin: its job
        // is still there.
        match plugin.take_tools_list(context_id) {
            Some(job) => *phase = McpPhase::Filtering(Box::new(job)),
            None => return Action::Continue,
        }
    }
    let headers = plugin.host.response_headers().unwrap_or_default();
    let status = header(&headers, ":status").and_then(|s| s.parse::<u16>().ok());
    if !status.is_some_and(|s| (200..300).contains(&s)) {
        // An HTTP error carries no tool list; it passes as it is.
        *phase = McpPhase::Idle;
        return Action::Continue;
    }
    let max = plugin
        .policy
        .mcp
        .as_ref()
        .map_or(0, |m| m.max_response_bytes);
    let readable = header(&headers, "content-type")
        .is_some_and(|ct| crate::core::mcp::BodyKind::of(&ct).is_some());
    let encoded =
        header(&headers, "content-encoding").is_some_and(|e| !e.eq_ignore_ascii_case("identity"));
    let too_long = header(&headers, "content-length")
        .and_then(|l| l.parse::<usize>().ok())
        .is_some_and(|l| l > max);
    if !readable || encoded || too_long {
        plugin.host.log(
            LogLevel::Warn,
            "actwarden: tools/list answered 502: the response cannot be filtered",
        );
        replace_headers(plugin);
        plugin
            .host
            .set_response_header("content-length", &UNFILTERABLE_BODY.len().to_string());
        *phase = McpPhase::Replaced;
        return Action::Continue;
    }
    plugin.host.remove_response_header("content-length");
    if let McpPhase::Filtering(job) = phase {
        job.content_type = header(&headers, "content-type").unwrap_or_default();
    }
    Action::Continue
}

/// Response body of a filtered `tools/list`: buffer, then rewrite (or refuse).
pub(crate) fn on_response_body<H: Host>(
    plugin: &Plugin<H>,
    phase: &mut McpPhase,
    body_size: usize,
    end_of_stream: bool,
) -> Action {
    let max = plugin
        .policy
        .mcp
        .as_ref()
        .map_or(0, |m| m.max_response_bytes);
    match phase {
        McpPhase::Replaced => {
            // Headers said 502: the body is the 502's, whatever the upstream sends.
            let body: &[u8] = if end_of_stream {
                UNFILTERABLE_BODY.as_bytes()
            } else {
                b""
            };
            plugin.host.set_response_body(body_size, body);
            return if end_of_stream {
                Action::Continue
            } else {
                Action::Pause
            };
        }
        McpPhase::Dropping => {
            plugin.host.set_response_body(body_size, b"");
            return Action::Continue;
        }
        McpPhase::Filtering(_) if body_size <= max && !end_of_stream => return Action::Pause,
        McpPhase::Filtering(_) => {}
        _ => return Action::Continue,
    }
    let McpPhase::Filtering(job) = std::mem::take(phase) else {
        return Action::Continue;
    };
    let content_type = job.content_type.clone();
    let outcome = match plugin
        .host
        .response_body(body_size.min(max.saturating_add(1)))
    {
        Some(body) => plugin.filter_tools_list(&job, &content_type, &body),
        None => Err(crate::core::mcp::Unfilterable::NotJson),
    };
    let body = match outcome {
        Ok(filtered) => filtered.body,
        Err(why) => {
            plugin.host.log(
                LogLevel::Warn,
                &format!("actwarden: tools/list refused: {}", why.describe()),
            );
            let error = json_rpc_error(job.facts.id.as_ref());
            if content_type.to_ascii_lowercase().contains("event-stream") {
                format!("event: message\ndata: {error}\n\n").into_bytes()
            } else {
                error.into_bytes()
            }
        }
    };
    plugin.host.set_response_body(body_size, &body);
    if !end_of_stream {
        // Over budget mid-stream: what follows is dropped.
        *phase = McpPhase::Dropping;
    }
    Action::Continue
}

/// The JSON-RPC error answer that replaces an unreadable `tools/list` result.
fn json_rpc_error(id: Option<&serde_json::Value>) -> String {
    serde_json::json!({
        "jsonrpc": "2.0",
        "id": id.cloned().unwrap_or(serde_json::Value::Null),
        "error": { "code": -32603, "message": "tools_list_unfilterable" }
    })
    .to_string()
}

/// The headers of the 502 that replaces an unfilterable response.
fn replace_headers<H: Host>(plugin: &Plugin<H>) {
    let host = &plugin.host;
    host.set_response_header(":status", &UNFILTERABLE_STATUS.to_string());
    host.set_response_header("content-type", "application/json");
    for name in [
        "content-encoding",
        "content-length",
        "mcp-session-id",
        "etag",
    ] {
        host.remove_response_header(name);
    }
}

fn header(headers: &[(String, String)], name: &str) -> Option<String> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.clone())
}
