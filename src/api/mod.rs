//! JSON in, JSON out: the one entry point the CLI and the playground share (`check`), so
//! that no host holds decision logic of its own (cedar's pattern), and a request is read
//! once whatever the host asks for.
// Safe Rust only (the fuzz targets run without AddressSanitizer on that ground): the
// one `unsafe` of the crate is the proxy-wasm host binding in `hosts/envoy/abi.rs`.
#![forbid(unsafe_code)]

pub mod report;

use crate::core::config::{ConfigError, FileReader, Policy};
use crate::core::decision::Decision;
use crate::core::dpop::{MemoryWindow, ReplayWindow};
use crate::core::keys::KeySet;
use crate::core::pipeline::{decide, decide_traced, Context};
use crate::core::request::{Request, RequestError};
use crate::core::time::UnixTime;
use crate::tools::explain;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ApiError {
    Config(ConfigError),
    Request(RequestError),
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiError::Config(e) => write!(f, "configuration: {e}"),
            ApiError::Request(e) => write!(f, "request: {e}"),
        }
    }
}

impl std::error::Error for ApiError {}

/// The policy to decide under: configuration text (SPEC §2) with a reader for the files it
/// names, or a policy loaded once by a host that decides many requests.
#[derive(Clone, Copy)]
pub enum PolicySource<'a> {
    Text {
        config: &'a str,
        read_file: FileReader<'a>,
    },
    Loaded(&'a Policy),
}

/// One request to decide, as a host has it.
#[derive(Clone, Copy)]
pub struct CheckInput<'a> {
    pub policy: PolicySource<'a>,
    /// SPEC §7 `REQUEST.json`.
    pub request: &'a str,
    pub now: UnixTime,
    /// The keys a gateway would have fetched for `remote_jwks` providers, by provider name.
    pub remote_keys: &'a HashMap<String, KeySet>,
    /// Also render `explain` (from the checks the pipeline records while deciding).
    pub explain: bool,
    /// A monotonic clock in microseconds, for hosts that report `eval_us`: the time from
    /// reading the request to the decision (what a gateway spends per request). The core
    /// has no clock, so the host lends one; `None` leaves `eval_us` null.
    pub clock: Option<&'a dyn Fn() -> u64>,
    /// The DPoP replay window to decide with (SPEC §10): a policy test file's or a
    /// playground session's. `None`: a window of this one decision (the CLI's `check`).
    pub replay: Option<&'a dyn ReplayWindow>,
    /// The upstream's response to this request, when it is a `tools/list` (SPEC §9): the
    /// report then has `filtered_response`. JSON when it starts with `{`, else SSE.
    pub mcp_response: Option<&'a [u8]>,
}

/// What a host prints or shows for one request.
#[derive(Debug, Clone)]
pub struct CheckOutput {
    pub decision: Decision,
    /// The audit record plus `headers`, `response` and `stripped_headers` (`report`).
    pub report: Value,
    /// `{"checks", "chain"}` when asked for: every check of SPEC §4 in order with its
    /// outcome, and the delegation chain with each actor's ceiling.
    pub explain: Option<Value>,
}

/// Decides one request: loads the policy (if given as text), reads the request once,
/// decides, and renders the report (and the explanation, when asked for).
pub fn check(input: CheckInput<'_>) -> Result<CheckOutput, ApiError> {
    let loaded;
    let policy = match input.policy {
        PolicySource::Loaded(policy) => policy,
        PolicySource::Text { config, read_file } => {
            loaded = Policy::from_json_with_files(config, read_file).map_err(ApiError::Config)?;
            &loaded
        }
    };
    let started = input.clock.map(|clock| clock());
    let request = Request::from_json(input.request).map_err(ApiError::Request)?;
    let own_window = MemoryWindow::new();
    let ctx = Context {
        policy,
        remote_keys: input.remote_keys,
        crypto: &crate::core::verification::crypto::RING,
        cache: None,
        replay: input.replay.unwrap_or(&own_window),
        shared: None,
    };
    let decision = if input.explain {
        decide_traced(ctx, &request, input.now)
    } else {
        decide(ctx, &request, input.now)
    };
    let mut audit = decision.audit_record(&request);
    if let (Some(clock), Some(started)) = (input.clock, started) {
        audit.eval_us = Some(clock().saturating_sub(started));
    }
    let mut report = report::decision_json(&decision, &audit);
    if let (Some(body), Value::Object(map)) = (input.mcp_response, &mut report) {
        let filtered = filtered_response(ctx, &request, &decision, input.now, body);
        map.insert("filtered_response".into(), filtered);
    }
    let explain = input
        .explain
        .then(|| explanation(policy, &request, &decision));
    Ok(CheckOutput {
        decision,
        report,
        explain,
    })
}

/// What the gateway would send back for `body` (SPEC §9): `null` unless the request is an
/// allowed `tools/list` with filtering on; else `{"status", "content_type", "body",
/// "kept", "removed"}`, or the 502 that replaces an unfilterable response.
fn filtered_response(
    ctx: Context<'_>,
    request: &Request,
    decision: &Decision,
    now: UnixTime,
    body: &[u8],
) -> Value {
    let Some(facts) = decision
        .mcp
        .as_ref()
        .filter(|_| decision.filters_tools_list(ctx.policy))
    else {
        return Value::Null;
    };
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    let content_type = if first == Some(&b'{') {
        "application/json"
    } else {
        "text/event-stream"
    };
    let out = crate::core::mcp::filter_tools_list(ctx, request, facts, now, content_type, body);
    match out {
        Ok(f) => json!({
            "status": 200,
            "content_type": content_type,
            "body": String::from_utf8_lossy(&f.body),
            "kept": f.kept,
            "removed": f.removed,
        }),
        Err(why) => json!({
            "status": crate::core::mcp::UNFILTERABLE_STATUS,
            "content_type": "application/json",
            "body": crate::core::mcp::UNFILTERABLE_BODY,
            "detail": why.describe(),
        }),
    }
}

fn explanation(policy: &Policy, request: &Request, decision: &Decision) -> Value {
    let token = explain::find_token(policy, request);
    let checks = decision.trace.as_ref().map_or(Value::Null, explain::checks);
    json!({
        "checks": checks,
        "chain": explain::chain(policy, decision, token.as_deref()),
    })
}

/// `check` without explanation or clock, for tests and scripts: the decision and its
/// report for `request` under `config` at `now`.
pub fn check_json(
    config: &str,
    request: &str,
    now: UnixTime,
    remote_keys: &HashMap<String, KeySet>,
    read_file: FileReader<'_>,
) -> Result<(Decision, Value), ApiError> {
    let out = check(CheckInput {
        policy: PolicySource::Text { config, read_file },
        request,
        now,
        remote_keys,
        explain: false,
        clock: None,
        replay: None,
        mcp_response: None,
    })?;
    Ok((out.decision, out.report))
}
