//! A fake proxy-wasm host for unit tests: serves canned request headers, trailers,
//! properties, shared data and call responses per request context, and records every call
//! the filter makes, in order, so tests can say what Envoy would have seen.

use super::abi::LogLevel;
use super::host::{Host, HostError, HostStatus};
use std::cell::{RefCell, RefMut};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

/// One host call, as the fake saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Call {
    Log(LogLevel, String),
    Now,
    RequestHeaders,
    RequestTrailers,
    RemoveHeader(String),
    SetHeader(String, String),
    RemoveTrailer(String),
    Property(String),
    PluginConfiguration,
    SharedData(String),
    SetSharedData { key: String, written: bool },
    Dispatch(Dispatch),
    HttpCallResponse,
    SetEffectiveContext(u32),
    Resume(u32),
    LocalReply(LocalReply),
    SetTickPeriod(Duration),
    DefineCounter(String),
    IncrementCounter(u32, i64),
    Foreign(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Dispatch {
    pub cluster: String,
    pub headers: Vec<(String, String)>,
    pub timeout: Duration,
    pub token: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LocalReply {
    /// The effective context when it was sent.
    pub context: u32,
    pub status: u32,
    pub details: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub grpc_status: Option<i32>,
}

impl LocalReply {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What one request context holds: `None` maps are ones the host cannot give.
#[derive(Debug, Clone, Default)]
pub(crate) struct FakeRequest {
    pub headers: Option<Fields>,
    pub trailers: Option<Fields>,
    /// The request body buffered so far (SPEC §9).
    pub body: Vec<u8>,
    pub response_headers: Fields,
    pub response_body: Vec<u8>,
}

/// Host calls the fake refuses, to drive the error paths.
#[derive(Debug, Clone, Default)]
pub(crate) struct Failures {
    pub property: bool,
    pub remove_header: bool,
    pub set_header: bool,
    pub remove_trailer: bool,
    pub dispatch: bool,
    pub set_effective_context: bool,
}

/// How the fake answers `call_foreign_function`.
#[derive(Debug, Clone, Default)]
pub(crate) enum Foreign {
    /// No foreign functions (what a host without them, or Envoy for an unknown name, says).
    #[default]
    NotFound,
    /// This status, for every call.
    Status(u32),
    /// These bytes, for every call.
    Bytes(Vec<u8>),
    /// Envoy's `verify_signature`, with ring standing in for BoringSSL.
    VerifyWithRing,
}

/// One compare-and-swap race another worker wins (`State::races`).
#[derive(Debug, Clone)]
pub(crate) struct Race {
    pub key_prefix: String,
    /// What the rival writes; `None` rewrites the current value (only the token changes).
    pub value: Option<Vec<u8>>,
}

#[derive(Debug, Default)]
pub(crate) struct State {
    pub now_ms: u64,
    /// The context the host is running (what `set_effective_context` changes).
    pub effective: u32,
    pub requests: HashMap<u32, FakeRequest>,
    /// By property path joined with `.`.
    pub properties: HashMap<String, String>,
    pub plugin_configuration: Option<Vec<u8>>,
    /// Value and compare-and-swap token.
    pub shared: HashMap<String, (Vec<u8>, u32)>,
    pub call_response: (Option<u16>, Vec<u8>),
    pub fail: Failures,
    pub counters: Vec<(String, i64)>,
    pub foreign: Foreign,
    /// Other workers winning compare-and-swap races, in order: each compare-and-swap write
    /// to a key starting with the race's prefix first lets the rival write (bumping the
    /// token), then fails, as when another worker wrote between our read and our write.
    pub races: std::collections::VecDeque<Race>,
    next_token: u32,
    next_cas: u32,
    pub calls: Vec<Call>,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct FakeHost(Rc<RefCell<State>>);

impl FakeHost {
    pub(crate) fn state(&self) -> RefMut<'_, State> {
        self.0.borrow_mut()
    }

    fn record(&self, call: Call) {
        self.state().calls.push(call);
    }

    /// A new request context with these headers, made the effective one (as the host does
    /// before calling `on_http_request_headers`).
    pub(crate) fn enter_request(&self, context_id: u32, headers: &[(&str, &str)]) {
        let mut state = self.state();
        let headers = headers
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect();
        state.requests.insert(
            context_id,
            FakeRequest {
                headers: Some(headers),
                trailers: Some(Vec::new()),
                ..FakeRequest::default()
            },
        );
        state.effective = context_id;
    }

    /// The effective request, to set its body or response (tests only).
    pub(crate) fn with_request(&self, context_id: u32, f: impl FnOnce(&mut FakeRequest)) {
        if let Some(r) = self.state().requests.get_mut(&context_id) {
            f(r);
        }
    }

    pub(crate) fn request(&self, context_id: u32) -> FakeRequest {
        self.0
            .borrow()
            .requests
            .get(&context_id)
            .cloned()
            .unwrap_or_default()
    }

    pub(crate) fn enter(&self, context_id: u32) {
        self.state().effective = context_id;
    }

    pub(crate) fn calls(&self) -> Vec<Call> {
        self.0.borrow().calls.clone()
    }

    pub(crate) fn clear_calls(&self) {
        self.state().calls.clear();
    }

    pub(crate) fn replies(&self) -> Vec<LocalReply> {
        self.calls()
            .into_iter()
            .filter_map(|c| match c {
                Call::LocalReply(r) => Some(r),
                _ => None,
            })
            .collect()
    }

    pub(crate) fn dispatches(&self) -> Vec<Dispatch> {
        self.calls()
            .into_iter()
            .filter_map(|c| match c {
                Call::Dispatch(d) => Some(d),
                _ => None,
            })
            .collect()
    }

    pub(crate) fn logs(&self, level: LogLevel) -> Vec<String> {
        self.calls()
            .into_iter()
            .filter_map(|c| match c {
                Call::Log(l, m) if l == level => Some(m),
                _ => None,
            })
            .collect()
    }

    /// The request headers of `context_id` as they now stand (what the upstream would get).
    pub(crate) fn headers(&self, context_id: u32) -> Vec<(String, String)> {
        self.0
            .borrow()
            .requests
            .get(&context_id)
            .and_then(|r| r.headers.clone())
            .unwrap_or_default()
    }

    pub(crate) fn header(&self, context_id: u32, name: &str) -> Option<String> {
        self.headers(context_id)
            .into_iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    pub(crate) fn trailers(&self, context_id: u32) -> Vec<(String, String)> {
        self.0
            .borrow()
            .requests
            .get(&context_id)
            .and_then(|r| r.trailers.clone())
            .unwrap_or_default()
    }

    pub(crate) fn counter(&self, name: &str) -> i64 {
        self.0
            .borrow()
            .counters
            .iter()
            .find(|(n, _)| n == name)
            .map_or(0, |(_, v)| *v)
    }

    pub(crate) fn set_shared(&self, key: &str, value: &[u8]) {
        let mut state = self.state();
        state.next_cas += 1;
        let cas = state.next_cas;
        state.shared.insert(key.to_owned(), (value.to_vec(), cas));
    }

    pub(crate) fn shared(&self, key: &str) -> Option<Vec<u8>> {
        self.0.borrow().shared.get(key).map(|(v, _)| v.clone())
    }
}

type Fields = Vec<(String, String)>;

impl State {
    /// The effective request's headers (`trailers`: its trailers), if the host has them.
    fn fields(&mut self, trailers: bool) -> Option<&mut Fields> {
        let request = self.requests.get_mut(&self.effective)?;
        if trailers {
            request.trailers.as_mut()
        } else {
            request.headers.as_mut()
        }
    }
}

impl Host for FakeHost {
    fn log(&self, level: LogLevel, message: &str) {
        self.record(Call::Log(level, message.to_owned()));
    }

    fn now_nanos(&self) -> u64 {
        self.record(Call::Now);
        self.0.borrow().now_ms * 1_000_000
    }

    fn request_headers(&self) -> Option<Vec<(String, String)>> {
        self.record(Call::RequestHeaders);
        self.state().fields(false).map(|h| h.clone())
    }

    fn request_trailer_names(&self) -> Option<Vec<String>> {
        self.record(Call::RequestTrailers);
        self.state()
            .fields(true)
            .map(|t| t.iter().map(|(n, _)| n.clone()).collect())
    }

    fn remove_request_header(&self, name: &str) -> bool {
        self.record(Call::RemoveHeader(name.to_owned()));
        let mut state = self.state();
        if state.fail.remove_header {
            return false;
        }
        match state.fields(false) {
            Some(h) => {
                h.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
                true
            }
            None => false,
        }
    }

    fn set_request_header(&self, name: &str, value: &str) -> bool {
        self.record(Call::SetHeader(name.to_owned(), value.to_owned()));
        let mut state = self.state();
        if state.fail.set_header {
            return false;
        }
        match state.fields(false) {
            Some(h) => {
                h.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
                h.push((name.to_owned(), value.to_owned()));
                true
            }
            None => false,
        }
    }

    fn remove_request_trailer(&self, name: &str) -> bool {
        self.record(Call::RemoveTrailer(name.to_owned()));
        let mut state = self.state();
        if state.fail.remove_trailer {
            return false;
        }
        match state.fields(true) {
            Some(t) => {
                t.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
                true
            }
            None => false,
        }
    }

    fn property(&self, path: &[&str]) -> Result<Option<String>, HostError> {
        let key = path.join(".");
        self.record(Call::Property(key.clone()));
        let state = self.0.borrow();
        if state.fail.property {
            return Err(HostError(format!("property {key}: InternalFailure")));
        }
        Ok(state.properties.get(&key).cloned())
    }

    fn plugin_configuration(&self) -> Option<Vec<u8>> {
        self.record(Call::PluginConfiguration);
        self.0.borrow().plugin_configuration.clone()
    }

    fn shared_data(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>) {
        self.record(Call::SharedData(key.to_owned()));
        match self.0.borrow().shared.get(key) {
            Some((value, cas)) => (Some(value.clone()), Some(*cas)),
            None => (None, None),
        }
    }

    fn set_shared_data(&self, key: &str, value: &[u8], cas: Option<u32>) -> bool {
        let written = {
            let mut state = self.state();
            let race = match state.races.front() {
                Some(r) if cas.is_some() && key.starts_with(&r.key_prefix) => {
                    state.races.pop_front()
                }
                _ => None,
            };
            if let Some(race) = race {
                let rival = race
                    .value
                    .or_else(|| state.shared.get(key).map(|(v, _)| v.clone()))
                    .unwrap_or_default();
                state.next_cas += 1;
                let next = state.next_cas;
                state.shared.insert(key.to_owned(), (rival, next));
            }
            let current = state.shared.get(key).map(|(_, c)| *c);
            // Envoy's rule: a CAS of 0 (`None`) always writes; otherwise it must match.
            if cas.is_some() && cas != current {
                false
            } else {
                state.next_cas += 1;
                let next = state.next_cas;
                state.shared.insert(key.to_owned(), (value.to_vec(), next));
                true
            }
        };
        self.record(Call::SetSharedData {
            key: key.to_owned(),
            written,
        });
        written
    }

    fn dispatch_http_call(
        &self,
        cluster: &str,
        headers: &[(&str, &str)],
        timeout: Duration,
    ) -> Result<u32, HostError> {
        let token = {
            let mut state = self.state();
            if state.fail.dispatch {
                None
            } else {
                state.next_token += 1;
                Some(state.next_token)
            }
        };
        let Some(token) = token else {
            return Err(HostError("BadArgument".to_owned()));
        };
        self.record(Call::Dispatch(Dispatch {
            cluster: cluster.to_owned(),
            headers: headers
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect(),
            timeout,
            token,
        }));
        Ok(token)
    }

    fn http_call_response_status(&self) -> Option<u16> {
        self.record(Call::HttpCallResponse);
        self.0.borrow().call_response.0
    }

    fn http_call_response_body(&self, size: usize) -> Vec<u8> {
        let body = &self.0.borrow().call_response.1;
        body.get(..size.min(body.len()))
            .unwrap_or_default()
            .to_vec()
    }

    fn set_effective_context(&self, context_id: u32) -> bool {
        self.record(Call::SetEffectiveContext(context_id));
        let mut state = self.state();
        if state.fail.set_effective_context {
            return false;
        }
        state.effective = context_id;
        true
    }

    fn resume_request(&self) {
        let context = self.0.borrow().effective;
        self.record(Call::Resume(context));
    }

    fn send_local_response(
        &self,
        status: u32,
        details: &str,
        headers: &[(&str, &[u8])],
        body: &[u8],
        grpc_status: Option<i32>,
    ) -> bool {
        let context = self.0.borrow().effective;
        self.record(Call::LocalReply(LocalReply {
            context,
            status,
            details: details.to_owned(),
            headers: headers
                .iter()
                .map(|(n, v)| ((*n).to_owned(), String::from_utf8_lossy(v).into_owned()))
                .collect(),
            body: String::from_utf8_lossy(body).into_owned(),
            grpc_status,
        }));
        true
    }

    fn set_tick_period(&self, period: Duration) -> bool {
        self.record(Call::SetTickPeriod(period));
        true
    }

    fn request_body(&self, size: usize) -> Option<Vec<u8>> {
        let state = self.0.borrow();
        let body = &state.requests.get(&state.effective)?.body;
        Some(
            body.get(..size.min(body.len()))
                .unwrap_or_default()
                .to_vec(),
        )
    }

    fn response_headers(&self) -> Option<Vec<(String, String)>> {
        let state = self.0.borrow();
        Some(
            state
                .requests
                .get(&state.effective)?
                .response_headers
                .clone(),
        )
    }

    fn set_response_header(&self, name: &str, value: &str) -> bool {
        let mut state = self.state();
        let effective = state.effective;
        let Some(r) = state.requests.get_mut(&effective) else {
            return false;
        };
        r.response_headers
            .retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        r.response_headers.push((name.to_owned(), value.to_owned()));
        true
    }

    fn remove_response_header(&self, name: &str) -> bool {
        let mut state = self.state();
        let effective = state.effective;
        let Some(r) = state.requests.get_mut(&effective) else {
            return false;
        };
        r.response_headers
            .retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        true
    }

    fn response_body(&self, size: usize) -> Option<Vec<u8>> {
        let state = self.0.borrow();
        let body = &state.requests.get(&state.effective)?.response_body;
        Some(
            body.get(..size.min(body.len()))
                .unwrap_or_default()
                .to_vec(),
        )
    }

    fn set_response_body(&self, replaced: usize, body: &[u8]) -> bool {
        let mut state = self.state();
        let effective = state.effective;
        let Some(r) = state.requests.get_mut(&effective) else {
            return false;
        };
        let end = replaced.min(r.response_body.len());
        r.response_body.splice(..end, body.iter().copied());
        true
    }

    fn define_counter(&self, name: &str) -> Option<u32> {
        self.record(Call::DefineCounter(name.to_owned()));
        let mut state = self.state();
        // As in Envoy, a name defined again (by another worker's VM) is the same metric.
        if let Some(id) = state.counters.iter().position(|(n, _)| n == name) {
            return u32::try_from(id).ok();
        }
        state.counters.push((name.to_owned(), 0));
        u32::try_from(state.counters.len() - 1).ok()
    }

    fn increment_counter(&self, id: u32, n: i64) {
        self.record(Call::IncrementCounter(id, n));
        if let Some((_, v)) = self.state().counters.get_mut(id as usize) {
            *v += n;
        }
    }

    fn call_foreign_function(&self, name: &str, arguments: &[u8]) -> Result<Vec<u8>, HostStatus> {
        self.record(Call::Foreign(name.to_owned()));
        let foreign = self.0.borrow().foreign.clone();
        match foreign {
            Foreign::NotFound => Err(HostStatus::NOT_FOUND),
            Foreign::Status(status) => Err(HostStatus(status)),
            Foreign::Bytes(bytes) => Ok(bytes),
            Foreign::VerifyWithRing if name == "verify_signature" => {
                super::signatures::fake_boringssl::verify_signature(arguments)
            }
            Foreign::VerifyWithRing => Err(HostStatus::NOT_FOUND),
        }
    }
}
