//! What a root context shares with its request contexts (one VM, one thread: `Rc` and
//! `RefCell`): the policy, keys, the token cache, counters, and the requests waiting for a
//! JWKS refetch. `process` is the one path from a request to an answer, used both when a
//! request arrives and when a waiting request is resumed.

use super::abi::{Action, LogLevel};
use super::host::{Host, HostError};
use super::metrics::Metrics;
use super::shared_tokens::SharedTokenTable;
use super::signatures::{self, Backend, EnvoyVerifier};
use crate::core::audit::BindingOutcome;
use crate::core::config::{KeyConfig, Policy, RemoteJwks};
use crate::core::decision::Decision;
use crate::core::keys::remote::{LocalKeys, UnknownKid};
use crate::core::keys::KeySet;
use crate::core::keys::RemoteKeys;
use crate::core::pipeline::{decide, Context};
use crate::core::reasons::{Denial, Reason};
use crate::core::request::Request;
use crate::core::time::UnixTime;
use crate::core::verification::cache::TokenCache;
use std::cell::{Cell, RefCell};
use std::sync::Arc;

/// One `remote_jwks` provider, as this worker sees it.
pub(crate) struct RemoteProvider {
    pub name: String,
    pub config: RemoteJwks,
    /// Shared-data key of its `SharedJwks`: by cluster and URI, so plugins (and workers)
    /// that fetch the same document share one fetch.
    pub shared_key: String,
    pub keys: RefCell<Option<LocalKeys>>,
    /// A request met an unknown `kid`: the next tick asks for a refetch.
    pub kid_refetch_wanted: Cell<bool>,
}

/// A request paused until its provider's refetch reports (or its deadline).
pub(crate) struct Waiter {
    pub context_id: u32,
    pub provider: usize,
    pub request: PendingRequest,
    pub deadline_ms: u64,
}

/// A request as read from Envoy, ready to decide.
pub(crate) struct PendingRequest {
    pub request: Request,
    /// Test builds only: the decision time from `x-actwarden-test-now`.
    pub now_override: Option<UnixTime>,
    /// Whether `request.peer` was read from the connection (or set by a test hook).
    pub peer_known: bool,
}

impl PendingRequest {
    /// Reads the mTLS peer from the connection, once. A failed lookup is an error, not
    /// "no peer": nothing may pass or fail on a certificate the host could not read.
    fn know_peer(&mut self, host: &impl Host) -> Result<(), HostError> {
        if !self.peer_known {
            self.request.peer = super::filter::connection_peer(host)?;
            self.peer_known = true;
        }
        Ok(())
    }
}

/// How a request whose headers the filter held was settled outside its own callbacks
/// (by the root context: a JWKS waiter woken, or an MCP message given up on), for its
/// next body or trailers callback to act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Allowed and resumed: what follows goes on.
    Resumed,
    /// Answered locally: nothing more goes on.
    Answered,
}

/// An MCP message whose headers are held while no body callback has come (yet).
pub(crate) struct HeldMcp {
    pub context_id: u32,
    pub since_ms: u64,
}

/// An allowed `tools/list` whose response the filter must rewrite (SPEC §9): what the
/// decision saw, to decide each tool again when the response arrives.
pub(crate) struct ToolsListJob {
    pub context_id: u32,
    pub request: Request,
    pub now: UnixTime,
    pub facts: crate::core::mcp::McpFacts,
    /// The response's `content-type`, read with its (held) headers.
    pub content_type: String,
    /// Whether the response came with a `content-length` (set again to the rewritten
    /// length; a response without one stays without).
    pub had_length: bool,
}

pub(crate) struct Plugin<H> {
    /// The host this plugin's VM runs in (`ProxyWasmHost`, zero-sized, in Envoy).
    pub host: H,
    pub policy: Policy,
    pub cache: TokenCache,
    pub metrics: Metrics,
    /// Who verifies ES*/RS* signatures, probed once when the plugin starts (SPEC §13).
    pub signature_backend: Backend,
    pub remotes: Vec<RemoteProvider>,
    pub waiters: RefCell<Vec<Waiter>>,
    /// Allowed `tools/list` requests whose responses are still to be filtered.
    pub tools_lists: RefCell<Vec<ToolsListJob>>,
    /// This policy's verified-token table in shared data (`shared_tokens::prefix_for`).
    pub shared_tokens: String,
    /// Requests settled by the root context while their headers were held (`Outcome`).
    pub outcomes: RefCell<Vec<(u32, Outcome)>>,
    /// MCP messages held for their body that have had no body callback yet (see
    /// `mcp::check_held`: a host without `allow_on_headers_stop_iteration` never gives one).
    pub held_mcp: RefCell<Vec<HeldMcp>>,
    /// A body callback came while headers were held: this host passes bodies on to a
    /// filter that holds the headers, so the check above is no longer needed.
    pub body_while_held: Cell<bool>,
    /// The critical line naming the missing flag went out (once per plugin and worker).
    pub hold_warned: Cell<bool>,
}

/// The keys every remote provider may use now, for one decision.
struct KeysNow<'p> {
    entries: Vec<(&'p str, Option<Arc<KeySet>>)>,
}

impl RemoteKeys for KeysNow<'_> {
    fn remote_keys(&self, provider: &str) -> Option<&KeySet> {
        self.entries
            .iter()
            .find(|(name, _)| *name == provider)
            .and_then(|(_, keys)| keys.as_deref())
    }
}

impl<H: Host> Plugin<H> {
    /// `config`: the plugin configuration `policy` was read from (it names the policy's
    /// shared token table).
    pub(crate) fn new(policy: Policy, host: H, config: &[u8]) -> Plugin<H> {
        let remotes = policy
            .providers
            .iter()
            .filter_map(|p| match &p.keys {
                KeyConfig::Remote(config) => Some(RemoteProvider {
                    name: p.name.to_string(),
                    config: config.clone(),
                    shared_key: format!("actwarden.jwks.v1|{}|{}", config.cluster, config.uri),
                    keys: RefCell::new(None),
                    kid_refetch_wanted: Cell::new(false),
                }),
                KeyConfig::Local(_) => None,
            })
            .collect();
        let signature_backend = choose_signature_backend(&host);
        Plugin {
            metrics: Metrics::define(&host),
            signature_backend,
            host,
            policy,
            cache: TokenCache::default(),
            remotes,
            waiters: RefCell::new(Vec::new()),
            tools_lists: RefCell::new(Vec::new()),
            shared_tokens: super::shared_tokens::prefix_for(config),
            outcomes: RefCell::new(Vec::new()),
            held_mcp: RefCell::new(Vec::new()),
            body_while_held: Cell::new(false),
            hold_warned: Cell::new(false),
        }
    }

    fn keys_now(&self, now_ms: u64) -> KeysNow<'_> {
        for remote in &self.remotes {
            super::jwks::adopt_if_newer(&self.host, remote);
        }
        KeysNow {
            entries: self
                .remotes
                .iter()
                .map(|r| {
                    let keys = r.keys.borrow();
                    let usable = keys
                        .as_ref()
                        .and_then(|k| k.usable(&r.config, now_ms).map(|_| Arc::clone(&k.set)));
                    (r.name.as_str(), usable)
                })
                .collect(),
        }
    }

    /// Decides `pending` for the request context `context_id` (the effective context) and
    /// answers it — or, when its token's `kid` is unknown to a remote provider that may
    /// refetch, parks it until the refetch reports. `resumed`: the request was paused
    /// before, so an allow must resume it.
    pub(crate) fn process(
        &self,
        context_id: u32,
        mut pending: PendingRequest,
        resumed: bool,
    ) -> Action {
        // One clock read serves the decision time and the start of `eval_us`.
        let started = self.host.now_nanos();
        let host_now_ms = started / 1_000_000;
        let now = pending
            .now_override
            .unwrap_or(UnixTime::from_millis(host_now_ms));
        let Some(decision) = self.decide(&mut pending, now, host_now_ms) else {
            return self.refuse_unknown_peer();
        };
        if !resumed {
            if let Some((provider, deadline_ms)) = self.refetch_wait(&decision, host_now_ms) {
                self.waiters.borrow_mut().push(Waiter {
                    context_id,
                    provider,
                    request: pending,
                    deadline_ms,
                });
                return Action::Pause;
            }
        }
        // SPEC §5: inbound identity headers never reach the upstream, allowed or not. An
        // MCP message is decided in its body phase with its headers still held, so this
        // holds for it too.
        let mut stripped = true;
        for name in &decision.strip_headers {
            stripped &= self.host.remove_request_header(name);
        }
        if self.log_decision(&mut pending, &decision, started).is_err() {
            return self.refuse_unknown_peer();
        }
        self.metrics.decision(
            &self.host,
            decision.is_allowed(),
            decision.enforced,
            decision.reason(),
        );
        // SPEC §11: a shadow denial is forwarded; its identity headers are empty.
        match decision.enforced_response() {
            None if !stripped => {
                // A caller's identity header the upstream would see is not an allow.
                self.refuse("could not remove an inbound identity header; refusing the request")
            }
            None => self.forward(context_id, pending, &decision, now, resumed),
            Some(response) => {
                send_deny(
                    &self.host,
                    response,
                    pending.request.is_grpc(),
                    decision.reason(),
                );
                Action::Pause
            }
        }
    }

    /// Whether a request denied for a `kid` its remote provider may yet publish waits for
    /// the refetch (within the waiting cap): the provider's index and the deadline.
    fn refetch_wait(&self, decision: &Decision, host_now_ms: u64) -> Option<(usize, u64)> {
        let room = self.waiters.borrow().len() < crate::core::limits::MAX_WAITING_REQUESTS;
        let Some(Denial::KidUnknown { provider }) = decision.denial().filter(|_| room) else {
            return None;
        };
        let index = self.remotes.iter().position(|r| *r.name == **provider)?;
        let deadline_ms = self.may_wait_for_refetch(index, host_now_ms)?;
        Some((index, deadline_ms))
    }

    /// Writes the decision's audit line when the policy logs it. `Err`: the line needs the
    /// mTLS peer and the host could not say.
    fn log_decision(
        &self,
        pending: &mut PendingRequest,
        decision: &Decision,
        started: u64,
    ) -> Result<(), HostError> {
        if !self.policy.audit_log.logs(decision.is_allowed()) {
            return Ok(());
        }
        // The clock is read again only for a line that says how long deciding took.
        let eval_us = self.host.now_nanos().saturating_sub(started) / 1000;
        // The audit `peer` (SPEC §6): read now if the decision did not need it.
        pending.know_peer(&self.host)?;
        let mut audit = decision.audit_record(&pending.request);
        audit.eval_us = Some(eval_us);
        log_audit(&self.host, &audit);
        Ok(())
    }

    /// Lets an allowed (or shadow-denied) request go on with its identity headers; an
    /// allowed `tools/list` is remembered so that its response can be filtered.
    fn forward(
        &self,
        context_id: u32,
        pending: PendingRequest,
        decision: &Decision,
        now: UnixTime,
        resumed: bool,
    ) -> Action {
        for (name, value) in decision.identity_headers() {
            if !self.host.set_request_header(name, value) {
                // An identity the upstream would not see is not an allow.
                return self.refuse(&format!("could not set `{name}`; refusing the request"));
            }
        }
        if let Some(facts) = decision
            .mcp
            .as_ref()
            .filter(|_| decision.filters_tools_list(&self.policy))
        {
            // Its answer is filtered, so it must come unencoded: the upstream is asked
            // for the identity encoding (only now is the method known, and the headers
            // are still held).
            if !self.host.remove_request_header("accept-encoding") {
                return self.refuse("could not remove `accept-encoding`; refusing the request");
            }
            self.tools_lists.borrow_mut().push(ToolsListJob {
                context_id,
                request: pending.request,
                now,
                facts: facts.clone(),
                content_type: String::new(),
                had_length: false,
            });
        }
        if resumed {
            self.host.resume_request();
        }
        Action::Continue
    }

    /// Answers 500 after saying why at error level: a host call failed where going on
    /// could let the request through with the wrong identity.
    fn refuse(&self, why: &str) -> Action {
        self.host.log(LogLevel::Error, &format!("actwarden: {why}"));
        send_error(&self.host, 500);
        Action::Pause
    }

    /// Decides `pending`, reading the mTLS peer only when the decision depends on it: up
    /// front when every token must match it (`actor_must_match_peer`), otherwise only when
    /// a token names a certificate (`cnf`): deciding without a peer then fails the binding
    /// check (`Mismatch`), and the request is decided again with the peer read. `None`:
    /// the peer was needed and the host could not say.
    ///
    /// The second decision must not find the request's own DPoP proof replayed: a
    /// `Mismatch` comes from the binding step, which runs only after the DPoP step accepted
    /// the proof and recorded its `jti` in the shared window. So the second decision gets
    /// a window of its own, empty (as `tools/list` filtering does); everything else it
    /// checks again, on the same request, token and time.
    fn decide(
        &self,
        pending: &mut PendingRequest,
        now: UnixTime,
        host_now_ms: u64,
    ) -> Option<Decision> {
        if self.policy.binding.actor_must_match_peer {
            pending.know_peer(&self.host).ok()?;
        }
        let keys = self.keys_now(host_now_ms);
        let verifier = self.verifier();
        let shared = self.shared_token_table();
        let replay = super::replay::SharedReplay::new(&self.host, &self.metrics);
        let ctx = Context {
            policy: &self.policy,
            remote_keys: &keys,
            crypto: &verifier,
            cache: Some(&self.cache),
            replay: &replay,
            shared: Some(&shared),
        };
        let before = self.cache.stats();
        let mut decision = decide(ctx, &pending.request, now);
        if !pending.peer_known && decision.binding() == BindingOutcome::Mismatch {
            pending.know_peer(&self.host).ok()?;
            // This request's proof, if any, was admitted by the first decision.
            let admitted = crate::core::dpop::MemoryWindow::new();
            let again = Context {
                replay: &admitted,
                ..ctx
            };
            decision = decide(again, &pending.request, now);
        }
        self.count_verifications(&verifier);
        let after = self.cache.stats();
        self.metrics.cache(
            &self.host,
            after.hits.saturating_sub(before.hits),
            after.misses.saturating_sub(before.misses),
        );
        Some(decision)
    }

    /// A peer certificate lookup failed: fail closed (SPEC §8), as for any host failure.
    fn refuse_unknown_peer(&self) -> Action {
        self.refuse("host call failed: could not read the connection's peer certificate")
    }

    /// This policy's verified-token table in shared data, for one decision.
    fn shared_token_table(&self) -> SharedTokenTable<'_, H> {
        SharedTokenTable::new(&self.host, &self.shared_tokens)
    }

    /// The signature backend for one decision (it counts what it verifies).
    pub(crate) fn verifier(&self) -> EnvoyVerifier<'_, H> {
        EnvoyVerifier::new(&self.host, self.signature_backend)
    }

    pub(crate) fn count_verifications(&self, verifier: &EnvoyVerifier<'_, H>) {
        let (by_host, by_wasm) = verifier.counts();
        self.metrics.verifications(&self.host, by_host, by_wasm);
    }

    /// Whether a request whose `kid` is unknown to remote provider `index` waits, and
    /// until when (SPEC §8: at most one refetch per provider per 30 s, bounded by
    /// `timeout_ms`). The refetch itself starts on the next tick (`jwks::tick`).
    fn may_wait_for_refetch(&self, index: usize, now_ms: u64) -> Option<u64> {
        let remote = self.remotes.get(index)?;
        let shared = super::jwks::read_shared(&self.host, remote).0;
        // One tick (jwks::TICK_MS) to start the fetch, then the fetch's own timeout.
        let start_slack = super::jwks::TICK_MS.saturating_mul(2);
        match shared.on_unknown_kid(&remote.config, now_ms) {
            UnknownKid::Refetch => {
                remote.kid_refetch_wanted.set(true);
                Some(
                    now_ms
                        .saturating_add(remote.config.timeout_ms)
                        .saturating_add(start_slack),
                )
            }
            UnknownKid::Wait { until_ms } => Some(until_ms.saturating_add(start_slack)),
            UnknownKid::DecideNow => None,
        }
    }

    /// Whether request context `context_id` is parked for a JWKS refetch.
    pub(crate) fn is_waiting(&self, context_id: u32) -> bool {
        self.waiters
            .borrow()
            .iter()
            .any(|w| w.context_id == context_id)
    }

    /// How the root context settled `context_id` while it was held, taken out.
    pub(crate) fn take_outcome(&self, context_id: u32) -> Option<Outcome> {
        let mut outcomes = self.outcomes.borrow_mut();
        let at = outcomes.iter().position(|(c, _)| *c == context_id)?;
        Some(outcomes.swap_remove(at).1)
    }

    /// The `tools/list` filtering job of request context `context_id`, taken out.
    pub(crate) fn take_tools_list(&self, context_id: u32) -> Option<ToolsListJob> {
        let mut jobs = self.tools_lists.borrow_mut();
        let at = jobs.iter().position(|j| j.context_id == context_id)?;
        Some(jobs.swap_remove(at))
    }

    /// Filters a `tools/list` response body for `job` (SPEC §9).
    pub(crate) fn filter_tools_list(
        &self,
        job: &ToolsListJob,
        content_type: &str,
        body: &[u8],
    ) -> Result<crate::core::mcp::FilteredResponse, crate::core::mcp::Unfilterable> {
        let now_ms = self.host.now_millis();
        let keys = self.keys_now(now_ms);
        let verifier = self.verifier();
        // The request's proof was checked when it was decided; filtering replays none.
        let window = crate::core::dpop::MemoryWindow::new();
        let shared = self.shared_token_table();
        let ctx = Context {
            policy: &self.policy,
            remote_keys: &keys,
            crypto: &verifier,
            cache: Some(&self.cache),
            replay: &window,
            shared: Some(&shared),
        };
        crate::core::mcp::filter_tools_list(
            ctx,
            &job.request,
            &job.facts,
            job.now,
            content_type,
            body,
        )
    }

    /// Decides the waiting requests of `provider` (all when `None`) whose refetch has
    /// reported or whose deadline has passed.
    pub(crate) fn wake_waiters(&self, ready: impl Fn(&Waiter) -> bool, root_context_id: u32) {
        let woken: Vec<Waiter> = {
            let mut waiters = self.waiters.borrow_mut();
            let (woken, waiting) = std::mem::take(&mut *waiters).into_iter().partition(&ready);
            *waiters = waiting;
            woken
        };
        for waiter in woken {
            if self.host.set_effective_context(waiter.context_id) {
                let action = self.process(waiter.context_id, waiter.request, true);
                let outcome = if action == Action::Continue {
                    Outcome::Resumed
                } else {
                    Outcome::Answered
                };
                self.outcomes
                    .borrow_mut()
                    .push((waiter.context_id, outcome));
            }
        }
        self.host.set_effective_context(root_context_id);
    }
}

/// SPEC §13: BoringSSL through the host when the probe passes, else ring; said at info.
fn choose_signature_backend(host: &impl Host) -> Backend {
    match signatures::probe(host) {
        Ok(()) => {
            host.log(
                LogLevel::Info,
                "actwarden: signatures: ES256, ES384, RS256, RS384, RS512 verified by the host (Envoy's BoringSSL, `verify_signature`); PS*, EdDSA, HS* by ring in the module",
            );
            Backend::Host
        }
        Err(why) => {
            host.log(
                LogLevel::Info,
                &format!("actwarden: signatures: all verified by ring in the module ({why})"),
            );
            Backend::Wasm
        }
    }
}

/// The audit line (SPEC §6), built in one buffer.
fn log_audit(host: &impl Host, audit: &crate::core::decision::AuditRecord) {
    const MARKER: &[u8] = b"actwarden.audit ";
    let mut line = Vec::with_capacity(1024 + MARKER.len());
    line.extend_from_slice(MARKER);
    audit.write_json(&mut line);
    // Always UTF-8 (JSON of Rust strings); checked rather than assumed.
    if let Ok(line) = std::str::from_utf8(&line) {
        host.log(LogLevel::Info, line);
    }
}

fn send_deny(
    host: &impl Host,
    response: &crate::core::decision::DenyResponse,
    grpc: bool,
    reason: Reason,
) {
    let details = format!("actwarden_{}", reason.code());
    let sent = if grpc {
        // Envoy builds the gRPC trailers-only reply itself (content-type, grpc-status,
        // grpc-message) from the status passed here; our copies of those would be
        // duplicated, so only the other headers (WWW-Authenticate) go along.
        let status = i32::from(crate::core::decision::grpc_status(
            reason.status().unwrap_or(403),
        ));
        let extra: Vec<(&str, &[u8])> = response
            .headers
            .iter()
            .filter(|(n, _)| !matches!(n.as_str(), "grpc-status" | "grpc-message" | "content-type"))
            .map(|(n, v)| (n.as_str(), v.as_bytes()))
            .collect();
        host.send_local_response(
            200,
            &details,
            &extra,
            reason.code().as_bytes(),
            Some(status),
        )
    } else {
        let headers: Vec<(&str, &[u8])> = response
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_bytes()))
            .collect();
        host.send_local_response(
            u32::from(response.http_status),
            &details,
            &headers,
            response.body.as_bytes(),
            None,
        )
    };
    if !sent {
        host.log(LogLevel::Error, "actwarden: envoy refused the local reply");
    }
}

/// A reply for a host failure (not a policy decision): fail closed, say nothing more.
pub(crate) fn send_error(host: &impl Host, status: u32) {
    host.send_local_response(
        status,
        "actwarden_internal_error",
        &[("content-type", b"application/json")],
        br#"{"error":"internal","detail":"the gateway could not evaluate this request"}"#,
        None,
    );
}
