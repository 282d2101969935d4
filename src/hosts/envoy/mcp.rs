//! The Envoy side of SPEC §9 (MCP). Only a `POST` to an MCP endpoint takes this path:
//! its body is buffered (up to `mcp.max_body_bytes`; one byte more is refused with 413 at
//! once, never forwarded) and the request is decided at the end of the stream. An allowed
//! `tools/list` has its response buffered (up to `mcp.max_response_bytes`) and rewritten;
//! a response that cannot be filtered becomes 502 `{"error":"tools_list_unfilterable"}`.
//! Every other route keeps the header-only path. The metadata `GET` needs nothing here:
//! it is a decision whose answer the plugin sends (`Verdict::Answer`).

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
    AwaitingBody(PendingRequest),
    /// An allowed `tools/list`: its response is buffered and filtered.
    Filtering(ToolsListJob),
    /// The response could not be filtered and was replaced: later chunks are dropped.
    Replaced,
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
    decide(plugin, context_id, phase, pending)
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
        // Compressed answers cannot be read: ask the upstream for an identity encoding.
        plugin.host.remove_request_header("accept-encoding");
        *phase = McpPhase::Filtering(job);
    }
    action
}

/// Response headers of a filtered `tools/list`: hold them until the body is rewritten.
pub(crate) fn on_response_headers<H: Host>(
    plugin: &Plugin<H>,
    context_id: u32,
    phase: &mut McpPhase,
    end_of_stream: bool,
) -> Action {
    if !matches!(phase, McpPhase::Filtering(_)) {
        // A request paused for a JWKS refetch is decided later by the plugin: its job
        // is still there.
        match plugin.take_tools_list(context_id) {
            Some(job) => *phase = McpPhase::Filtering(job),
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
    if end_of_stream {
        // A successful tools/list with no body at all cannot be filtered.
        replace_headers(plugin);
        plugin.host.send_local_response(
            u32::from(UNFILTERABLE_STATUS),
            "actwarden_tools_list_unfilterable",
            &[("content-type", b"application/json")],
            UNFILTERABLE_BODY.as_bytes(),
            None,
        );
        *phase = McpPhase::Replaced;
        return Action::Pause;
    }
    Action::Pause // StopIteration: the headers wait for the filtered body
}

/// Response body of a filtered `tools/list`: buffer, then rewrite (or replace with 502).
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
            // The 502 body went out with the first chunk; drop what follows.
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
    let headers = plugin.host.response_headers().unwrap_or_default();
    let encoded =
        header(&headers, "content-encoding").is_some_and(|e| !e.eq_ignore_ascii_case("identity"));
    let content_type = header(&headers, "content-type").unwrap_or_default();
    let outcome = match plugin
        .host
        .response_body(body_size.min(max.saturating_add(1)))
    {
        Some(_) if encoded => Err(crate::core::mcp::Unfilterable::ContentType),
        Some(body) => plugin.filter_tools_list(&job, &content_type, &body),
        None => Err(crate::core::mcp::Unfilterable::NotJson),
    };
    match outcome {
        Ok(filtered) => {
            plugin.host.set_response_body(body_size, &filtered.body);
            plugin
                .host
                .set_response_header("content-length", &filtered.body.len().to_string());
            Action::Continue
        }
        Err(why) => {
            plugin.host.log(
                LogLevel::Warn,
                &format!("actwarden: tools/list answered 502: {}", why.describe()),
            );
            replace_headers(plugin);
            plugin
                .host
                .set_response_header("content-length", &UNFILTERABLE_BODY.len().to_string());
            plugin
                .host
                .set_response_body(body_size, UNFILTERABLE_BODY.as_bytes());
            if !end_of_stream {
                *phase = McpPhase::Replaced;
            }
            Action::Continue
        }
    }
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
