//! The Envoy side of SPEC §9 (MCP). Only a `POST` to an MCP endpoint takes this path; every
//! other route keeps the header-only path. The metadata `GET` needs nothing here: it is a
//! decision whose answer the plugin sends (`Verdict::Answer`).
//!
//! **Request.** The headers of an MCP message are held (`Pause`) while its body is
//! buffered (up to `mcp.max_body_bytes`; one byte more is refused with 413 at once, never
//! forwarded). At the end of the stream (last body chunk, or trailers) the message is
//! decided with its headers still held: an allow strips spoofed `x-agent-*`, sets the
//! identity headers of SPEC §5 (and, for a `tools/list`, removes `accept-encoding`, so its
//! answer comes filterable) and lets headers and body go on together; a refusal is the
//! local reply, and the upstream sees nothing of the message.
//!
//! This needs the Wasm filter's `allow_on_headers_stop_iteration: true` (Envoy ≥ 1.35,
//! proxy-wasm-cpp-host#434). Without it the host turns a headers `Pause` into
//! `StopAllIterationAndWatermark` and withholds the body from the filter (#143): the
//! message would wait forever. So until a body callback has come while headers were held
//! (the proof that the host passes bodies on), each held message is watched: one held
//! [`HOLD_LIMIT_MS`] with no body callback is answered 500 (`actwarden_internal_error`)
//! from the root context's tick, and a critical log line names the missing flag, once.
//!
//! **Response.** An allowed `tools/list` has its response headers held while its body is
//! buffered (up to `mcp.max_response_bytes`), then filtered, `content-length` set to the
//! rewritten length (when the upstream sent one). A response that cannot be filtered — not
//! JSON or SSE, content-encoded, unreadable, over budget — becomes HTTP 502
//! `{"error":"tools_list_unfilterable"}` (`content-encoding`, `mcp-session-id` and `etag`
//! dropped); it is never passed on unfiltered.

use super::abi::{Action, LogLevel};
use super::host::Host;
use super::plugin::{HeldMcp, Outcome, PendingRequest, Plugin, ToolsListJob};
use crate::core::mcp::{UNFILTERABLE_BODY, UNFILTERABLE_STATUS};

/// How long an MCP message's headers may be held with no body callback at all before
/// the filter concludes that the host withholds the body (no
/// `allow_on_headers_stop_iteration`), while no body callback has proven otherwise.
pub(crate) const HOLD_LIMIT_MS: u64 = 5_000;

/// The critical line for a host that withholds bodies (logged once per plugin and worker).
pub(crate) const NO_BODY_HINT: &str = "actwarden: MCP: no request body reached the filter within 5 s of holding the headers: this host withholds the body from a filter that holds them. Set `allow_on_headers_stop_iteration: true` in the Wasm filter's `config` (Envoy >= 1.35; in Istio use the EnvoyFilter of gateway-configs/mcp/). Until then every MCP message is answered 500";

/// Where a request stands on the MCP path.
#[derive(Default)]
pub(crate) enum McpPhase {
    /// Not an MCP message, or already decided.
    #[default]
    Idle,
    /// Headers held; deciding waits for the end of the body (`buffered` bytes so far).
    AwaitingBody {
        pending: Box<PendingRequest>,
        buffered: usize,
    },
    /// An allowed `tools/list`: its response headers are held, its body buffered.
    Filtering(Box<ToolsListJob>),
    /// The response headers, held, are the 502's (unfilterable): the first body chunk
    /// becomes the 502's body.
    Replaced,
    /// The 502 went out: later chunks are dropped.
    Dropping,
}

/// Headers of an MCP message: hold them until the body has been read and decided.
pub(crate) fn await_body<H: Host>(
    plugin: &Plugin<H>,
    context_id: u32,
    phase: &mut McpPhase,
    pending: PendingRequest,
) -> Action {
    if !plugin.body_while_held.get() {
        plugin.held_mcp.borrow_mut().push(HeldMcp {
            context_id,
            since_ms: plugin.host.now_millis(),
        });
    }
    *phase = McpPhase::AwaitingBody {
        pending: Box::new(pending),
        buffered: 0,
    };
    Action::Pause
}

/// Request body of a held MCP message: buffer until the end of the stream, or refuse an
/// oversized body at once. Only called in `AwaitingBody`.
pub(crate) fn on_request_body<H: Host>(
    plugin: &Plugin<H>,
    context_id: u32,
    phase: &mut McpPhase,
    body_size: usize,
    end_of_stream: bool,
) -> Action {
    // The host passes bodies on while headers are held: no need to watch for one that
    // withholds them any more.
    plugin.body_while_held.set(true);
    plugin.held_mcp.borrow_mut().clear();
    let max = plugin.policy.mcp.as_ref().map_or(0, |m| m.max_body_bytes);
    if let McpPhase::AwaitingBody { buffered, .. } = phase {
        *buffered = body_size;
    }
    if body_size <= max && !end_of_stream {
        return Action::Pause; // StopIterationAndBuffer
    }
    end_of_message(plugin, context_id, phase)
}

/// The end of a held MCP message (its last body chunk, its trailers, or one byte over
/// budget): read what is buffered and decide.
pub(crate) fn end_of_message<H: Host>(
    plugin: &Plugin<H>,
    context_id: u32,
    phase: &mut McpPhase,
) -> Action {
    let McpPhase::AwaitingBody {
        mut pending,
        buffered,
    } = std::mem::take(phase)
    else {
        return Action::Pause;
    };
    plugin
        .held_mcp
        .borrow_mut()
        .retain(|h| h.context_id != context_id);
    let max = plugin.policy.mcp.as_ref().map_or(0, |m| m.max_body_bytes);
    // Over budget: one byte more than allowed is enough for the core to say 413.
    let body = if buffered == 0 {
        Some(Vec::new())
    } else {
        plugin
            .host
            .request_body(buffered.min(max.saturating_add(1)))
    };
    let Some(body) = body else {
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

/// Root context, on its tick: answers the MCP messages held [`HOLD_LIMIT_MS`] with no
/// body callback, as long as none has ever come on this worker (see the module docs).
pub(crate) fn check_held<H: Host>(plugin: &Plugin<H>, now_ms: u64, root_context_id: u32) {
    if plugin.body_while_held.get() {
        return;
    }
    let expired: Vec<u32> = {
        let mut held = plugin.held_mcp.borrow_mut();
        let (expired, waiting): (Vec<HeldMcp>, Vec<HeldMcp>) = std::mem::take(&mut *held)
            .into_iter()
            .partition(|h| now_ms >= h.since_ms.saturating_add(HOLD_LIMIT_MS));
        *held = waiting;
        expired.into_iter().map(|h| h.context_id).collect()
    };
    if expired.is_empty() {
        return;
    }
    let host = &plugin.host;
    if !plugin.hold_warned.replace(true) {
        host.log(LogLevel::Critical, NO_BODY_HINT);
    }
    for context_id in expired {
        if host.set_effective_context(context_id) {
            super::plugin::send_error(host, 500);
            plugin
                .outcomes
                .borrow_mut()
                .push((context_id, Outcome::Answered));
        }
    }
    host.set_effective_context(root_context_id);
}

/// Response headers of an allowed `tools/list`: held while the body is read, or made the
/// 502's when they already show that the response cannot be filtered.
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
            Some(job) => *phase = McpPhase::Filtering(Box::new(job)),
            None => return Action::Continue,
        }
    }
    let headers = plugin.host.response_headers();
    let get = |name: &str| headers.as_deref().and_then(|h| header(h, name));
    let status = get(":status").and_then(|s| s.parse::<u16>().ok());
    if headers.is_some() && !status.is_some_and(|s| (200..300).contains(&s)) {
        // An HTTP error carries no tool list; it passes as it is.
        *phase = McpPhase::Idle;
        return Action::Continue;
    }
    let max = plugin
        .policy
        .mcp
        .as_ref()
        .map_or(0, |m| m.max_response_bytes);
    let readable =
        get("content-type").is_some_and(|ct| crate::core::mcp::BodyKind::of(&ct).is_some());
    let encoded = get("content-encoding").is_some_and(|e| !e.eq_ignore_ascii_case("identity"));
    let too_long = get("content-length")
        .and_then(|l| l.parse::<usize>().ok())
        .is_some_and(|l| l > max);
    if !readable || encoded || too_long || end_of_stream {
        unfilterable(plugin, "the response headers show it cannot be filtered");
        if end_of_stream {
            // No body to carry the 502's: the status and headers say it.
            plugin.host.set_response_header("content-length", "0");
            *phase = McpPhase::Idle;
            return Action::Continue;
        }
        *phase = McpPhase::Replaced;
        return Action::Pause;
    }
    if let McpPhase::Filtering(job) = phase {
        job.content_type = get("content-type").unwrap_or_default();
        job.had_length = get("content-length").is_some();
    }
    Action::Pause
}

/// Response body of an allowed `tools/list`: buffer, then rewrite (or replace with the
/// 502's), and let the held headers go on with it.
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
            plugin
                .host
                .set_response_body(body_size, UNFILTERABLE_BODY.as_bytes());
            *phase = if end_of_stream {
                McpPhase::Idle
            } else {
                McpPhase::Dropping
            };
            return Action::Continue;
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
    let outcome = match plugin
        .host
        .response_body(body_size.min(max.saturating_add(1)))
    {
        Some(body) => plugin.filter_tools_list(&job, &job.content_type, &body),
        None => Err(crate::core::mcp::Unfilterable::NotJson),
    };
    let body = match outcome {
        Ok(filtered) => {
            if job.had_length {
                plugin
                    .host
                    .set_response_header("content-length", &filtered.body.len().to_string());
            }
            filtered.body
        }
        Err(why) => {
            unfilterable(plugin, why.describe());
            UNFILTERABLE_BODY.as_bytes().to_vec()
        }
    };
    plugin.host.set_response_body(body_size, &body);
    if !end_of_stream {
        // Over budget mid-stream: what follows is dropped.
        *phase = McpPhase::Dropping;
    }
    Action::Continue
}

/// Makes the held response headers the 502's (SPEC §9), after saying why.
fn unfilterable<H: Host>(plugin: &Plugin<H>, why: &str) {
    let host = &plugin.host;
    host.log(
        LogLevel::Warn,
        &format!("actwarden: tools/list answered 502: {why}"),
    );
    host.set_response_header(":status", &UNFILTERABLE_STATUS.to_string());
    host.set_response_header("content-type", "application/json");
    host.set_response_header("content-length", &UNFILTERABLE_BODY.len().to_string());
    for name in ["content-encoding", "mcp-session-id", "etag"] {
        host.remove_response_header(name);
    }
}

fn header(headers: &[(String, String)], name: &str) -> Option<String> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.clone())
}
