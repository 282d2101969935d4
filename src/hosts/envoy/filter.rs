//! One request: read it from Envoy, hand it to `Plugin::process`.

use super::abi::{Action, LogLevel};
use super::host::{Host, HostError};
use super::mcp::{self, McpPhase};
use super::plugin::{send_error, Outcome, PendingRequest, Plugin};
use crate::core::request::{Peer, Request};
use std::rc::Rc;

pub(crate) struct Filter<H: Host> {
    context_id: u32,
    plugin: Rc<Plugin<H>>,
    /// Whether what follows the request headers may go on.
    gate: Gate,
    /// SPEC §9: an MCP message waiting for its body, or a `tools/list` being filtered.
    mcp: McpPhase,
}

/// Where the request stream stands. With `allow_on_headers_stop_iteration` the host calls
/// the body and trailers callbacks of a request whose headers the filter holds; whatever
/// those return must not let an undecided request go on (a `Continue` there would send
/// the held headers and the body upstream).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Gate {
    /// Headers not seen yet, or decided and released: the rest goes on.
    Open,
    /// Headers held, not decided: an MCP message waiting for its body, or a request
    /// parked for a JWKS refetch (which the root context may settle: `Outcome`).
    Held,
    /// Answered locally: nothing more goes on.
    Answered,
}

impl<H: Host> Filter<H> {
    pub(crate) fn new(context_id: u32, plugin: Rc<Plugin<H>>) -> Filter<H> {
        Filter {
            context_id,
            plugin,
            gate: Gate::Open,
            mcp: McpPhase::Idle,
        }
    }

    /// Refuses the request for a host failure, after saying why.
    fn refuse(&mut self, problem: &ReadProblem) -> Action {
        let host = &self.plugin.host;
        host.log(LogLevel::Error, &format!("actwarden: {problem}"));
        send_error(host, problem.status());
        self.gate = Gate::Answered;
        Action::Pause
    }

    /// Records where a callback that may have decided left the request.
    fn settle(&mut self, action: Action) -> Action {
        self.gate = if action == Action::Continue {
            Gate::Open
        } else if matches!(self.mcp, McpPhase::AwaitingBody { .. })
            || self.plugin.is_waiting(self.context_id)
        {
            Gate::Held
        } else {
            Gate::Answered
        };
        action
    }

    /// A held request whose body or trailers arrive: settled by the root meanwhile?
    fn check_outcome(&mut self) {
        if self.gate == Gate::Held {
            match self.plugin.take_outcome(self.context_id) {
                Some(Outcome::Resumed) => self.gate = Gate::Open,
                Some(Outcome::Answered) => self.gate = Gate::Answered,
                None => {}
            }
        }
    }
}

impl<H: Host> Drop for Filter<H> {
    fn drop(&mut self) {
        // A request that was waiting for a refetch and went away is not decided later.
        let id = self.context_id;
        if let Ok(mut waiters) = self.plugin.waiters.try_borrow_mut() {
            waiters.retain(|w| w.context_id != id);
        }
        if let Ok(mut jobs) = self.plugin.tools_lists.try_borrow_mut() {
            jobs.retain(|j| j.context_id != id);
        }
        if let Ok(mut outcomes) = self.plugin.outcomes.try_borrow_mut() {
            outcomes.retain(|(c, _)| *c != id);
        }
        if let Ok(mut held) = self.plugin.held_mcp.try_borrow_mut() {
            held.retain(|h| h.context_id != id);
        }
    }
}

/// The request's callbacks, as `exports` routes them.
impl<H: Host> Filter<H> {
    pub(crate) fn on_http_request_headers(
        &mut self,
        _num_headers: usize,
        end_of_stream: bool,
    ) -> Action {
        let pending = match read_request(&self.plugin.host) {
            Ok(pending) => pending,
            Err(problem) => return self.refuse(&problem),
        };
        #[cfg(feature = "test-hooks")]
        if super::test_verify::answer(&self.plugin, &pending.request).is_some() {
            self.gate = Gate::Answered;
            return Action::Pause;
        }
        let r = &pending.request;
        let action =
            if !crate::core::mcp::message::needs_body(&self.plugin.policy, &r.method, &r.path) {
                self.plugin.process(self.context_id, pending, false)
            } else if end_of_stream {
                // SPEC §9: an MCP message is decided on its body; this one has none.
                let mut pending = pending;
                pending.request.body = Some(Vec::new());
                mcp::decide(&self.plugin, self.context_id, &mut self.mcp, pending)
            } else {
                mcp::await_body(&self.plugin, self.context_id, &mut self.mcp, pending)
            };
        self.settle(action)
    }

    pub(crate) fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        self.check_outcome();
        match self.gate {
            Gate::Open => Action::Continue,
            // Buffered, never forwarded: the decision (or the answer) has the last word.
            Gate::Answered => Action::Pause,
            Gate::Held if matches!(self.mcp, McpPhase::AwaitingBody { .. }) => {
                let action = mcp::on_request_body(
                    &self.plugin,
                    self.context_id,
                    &mut self.mcp,
                    body_size,
                    end_of_stream,
                );
                self.settle(action)
            }
            // Parked for a JWKS refetch: the body waits with the headers. (A body callback
            // while headers are held also shows that the host passes bodies on.)
            Gate::Held => {
                self.plugin.body_while_held.set(true);
                Action::Pause
            }
        }
    }

    pub(crate) fn on_http_response_headers(
        &mut self,
        _num_headers: usize,
        end_of_stream: bool,
    ) -> Action {
        if self.plugin.tools_lists.borrow().is_empty() && matches!(self.mcp, McpPhase::Idle) {
            return Action::Continue;
        }
        mcp::on_response_headers(&self.plugin, self.context_id, &mut self.mcp, end_of_stream)
    }

    pub(crate) fn on_http_response_body(
        &mut self,
        body_size: usize,
        end_of_stream: bool,
    ) -> Action {
        mcp::on_response_body(&self.plugin, &mut self.mcp, body_size, end_of_stream)
    }

    /// Identity fields are refused in trailers too (SPEC §5): a chunked HTTP/1 request or
    /// any HTTP/2 request (gRPC) can carry trailers, which reach the upstream after the
    /// body. Decisions read headers only, so trailers are stripped, never decided on; a
    /// trailer that cannot be read or removed fails the request closed. Trailers end the
    /// stream: a held MCP message is decided here; a parked request stays held.
    pub(crate) fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        self.check_outcome();
        if self.gate == Gate::Answered {
            return Action::Pause;
        }
        let host = &self.plugin.host;
        let Some(names) = host.request_trailer_names() else {
            return self.refuse(&ReadProblem::NoTrailers);
        };
        for name in names {
            if crate::core::decision::is_identity_header(&name)
                && !host.remove_request_trailer(&name)
            {
                return self.refuse(&ReadProblem::TrailerNotRemoved(name));
            }
        }
        match self.gate {
            Gate::Open => Action::Continue,
            Gate::Held if matches!(self.mcp, McpPhase::AwaitingBody { .. }) => {
                let action = mcp::end_of_message(&self.plugin, self.context_id, &mut self.mcp);
                self.settle(action)
            }
            Gate::Held | Gate::Answered => Action::Pause,
        }
    }
}

/// Why a request could not even be read (a host failure or a bad test hook; never policy).
enum ReadProblem {
    NoHeaders,
    NoTrailers,
    TrailerNotRemoved(String),
    #[cfg_attr(not(feature = "test-hooks"), allow(dead_code))]
    BadTestHook(String),
}

impl ReadProblem {
    fn status(&self) -> u32 {
        match self {
            ReadProblem::NoHeaders
            | ReadProblem::NoTrailers
            | ReadProblem::TrailerNotRemoved(_) => 500,
            ReadProblem::BadTestHook(_) => 400,
        }
    }
}

impl std::fmt::Display for ReadProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadProblem::NoHeaders => write!(f, "could not read the request headers"),
            ReadProblem::NoTrailers => write!(f, "could not read the request trailers"),
            ReadProblem::TrailerNotRemoved(name) => {
                write!(f, "could not remove the request trailer `{name}`")
            }
            ReadProblem::BadTestHook(why) => write!(f, "test hook: {why}"),
        }
    }
}

/// The request view of SPEC §1 from Envoy: pseudo-headers and headers (the mTLS peer
/// comes later, when needed: `Plugin::process`).
fn read_request(host: &impl Host) -> Result<PendingRequest, ReadProblem> {
    let all = host.request_headers().ok_or(ReadProblem::NoHeaders)?;
    let mut request = Request::default();
    for (name, value) in all {
        match name.as_str() {
            ":method" => request.method = value,
            ":path" => request.path = value,
            ":authority" => request.authority = Some(value),
            ":scheme" => request.scheme = Some(value),
            n if n.starts_with(':') => {}
            _ => {
                // Envoy's names are lowercase already (HTTP/2 requires it, HTTP/1 is
                // normalized); lowered in place, without a copy, to be sure.
                let mut name = name;
                name.make_ascii_lowercase();
                request.headers.push((name, value));
            }
        }
    }
    // The mTLS peer is read later, only when the decision or its audit line needs it
    // (`Plugin::process`): two property calls most requests never use.
    #[allow(unused_mut)]
    let mut pending = PendingRequest {
        request,
        now_override: None,
        peer_known: false,
    };
    #[cfg(feature = "test-hooks")]
    test_hooks::apply(host, &mut pending)?;
    Ok(pending)
}

/// The client certificate of this connection, as Envoy exposes it (only on TLS with a
/// client certificate). A failed lookup is an error, not "no peer": a binding check must
/// not pass or fail on a certificate the host could not read.
pub(super) fn connection_peer(host: &impl Host) -> Result<Option<Peer>, HostError> {
    let uri_san = host.property(&["connection", "uri_san_peer_certificate"])?;
    let digest = host
        .property(&["connection", "sha256_peer_certificate_digest"])?
        .and_then(|hex| crate::core::token::b64::unhex(&hex))
        .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok());
    if uri_san.is_none() && digest.is_none() {
        return Ok(None);
    }
    Ok(Some(Peer {
        uri_san,
        certificate_sha256: digest,
    }))
}

/// TEST BUILDS ONLY (feature `test-hooks`, never in `dist/actwarden.wasm`): the corpus
/// runs through Envoy at its fixed time and peers.
#[cfg(feature = "test-hooks")]
mod test_hooks {
    use super::{Host, PendingRequest, ReadProblem};
    use crate::core::request::Peer;
    use crate::core::time::UnixTime;

    const NOW: &str = "x-actwarden-test-now";
    const PEER: &str = "x-actwarden-test-peer";
    /// The request's scheme (SPEC §10 `htu`): the corpus is sent over plain HTTP, but its
    /// requests say `https` (REQUEST.json's default).
    const SCHEME: &str = "x-actwarden-test-scheme";

    pub(crate) fn apply(host: &impl Host, pending: &mut PendingRequest) -> Result<(), ReadProblem> {
        let headers = std::mem::take(&mut pending.request.headers);
        for (name, value) in headers {
            match name.as_str() {
                NOW => {
                    let secs: f64 = value
                        .parse()
                        .map_err(|_| ReadProblem::BadTestHook(format!("`{NOW}: {value}`")))?;
                    pending.now_override = Some(UnixTime::from_secs_f64(secs));
                    host.remove_request_header(NOW);
                }
                SCHEME => {
                    pending.request.scheme = Some(value);
                    host.remove_request_header(SCHEME);
                }
                PEER => {
                    let peer = Peer::from_json(&value)
                        .map_err(|e| ReadProblem::BadTestHook(format!("`{PEER}`: {e}")))?;
                    pending.request.peer = Some(peer);
                    pending.peer_known = true;
                    host.remove_request_header(PEER);
                }
                _ => pending.request.headers.push((name, value)),
            }
        }
        Ok(())
    }
}
