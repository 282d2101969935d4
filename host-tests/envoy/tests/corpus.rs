//! The decision corpus (`host-tests/corpus/`) through a real Envoy, unchanged.
//!
//! One Envoy runs the test-hooks filter (`target/actwarden-test.wasm`) with one listener per
//! configuration of `configs.json` (all in the same VM, `vm_id` shared), and, for a
//! configuration with `remote_jwks` providers, one listener per distinct set of fetched keys
//! the cases name, its provider pointed at a path of the JWKS server serving exactly those
//! public keys (503 for a provider the case leaves out: never fetched). Every case and twin
//! is sent as HTTP/1.1 with the case's `now` and `peer` in the test-hook headers and a unique
//! `x-request-id`, and checked three ways:
//!
//! 1. `check_expect` on a report rebuilt from what Envoy did: the audit line (matched by
//!    `request_id`), the identity headers the echo upstream received, and the local reply
//!    (status, `WWW-Authenticate` / gRPC headers, body);
//! 2. the Envoy audit record equals the native report (`api::check_json`, what the CLI
//!    prints) field by field except `ts` and `eval_us`; the reply equals the native
//!    `response`; the upstream's `x-agent-*` headers equal the native `headers`;
//! 3. invariants: no inbound `x-agent-*` and no test-hook header reaches the upstream, a
//!    denied request never does, no token or signature in the log.
//!
//! Then the counters of admin `/stats` must equal the audit lines' tally, and every reason
//! of SPEC §4 must have been seen through Envoy. Cases Envoy changes before the filter sees
//! them are listed in `host-tests/envoy/DIVERGENCES.md` and asserted here explicitly.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use actwarden::api::{check, CheckInput, PolicySource};
use actwarden::mint::{public_jwks, SigningKey};
use actwarden::{parse_jwks, KeySet, KeySource};
use actwarden::{Reason, UnixTime};
use actwarden_envoy_tests::bootstrap as boot;
use actwarden_envoy_tests::envoy::{Envoy, Options};
use actwarden_envoy_tests::http::{self, Request};
use actwarden_envoy_tests::paths;
use actwarden_envoy_tests::servers::{echoed, EchoServer, JwksServer, Serve};
use actwarden_test_support::{
    check_expect, corpus_dir, materialize, materialize_proof, request_with_proof,
    request_with_token, twin_case, Case,
};
use ring::rand::SystemRandom;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const JWKS_CLUSTER: &str = "jwks";
const VM_ID: &str = "actwarden-corpus";
/// `max_request_headers_kb` of the corpus listeners.
const CORPUS_HEADERS_KB: u32 = 1024;
/// A listener with configuration `main` and Envoy's usual 96 KiB header limit.
const LISTENER_96K: &str = "main-96k";
/// The time of the canary requests (the corpus's `now`).
const CANARY_NOW: u64 = 1_800_000_000;
const CANARY_ID: &str = "e2e-canary-";
const AUDIT_TIMEOUT: Duration = Duration::from_secs(10);
/// Report members that are not audit fields (the CLI's extensions).
const NOT_AUDIT: [&str; 3] = ["headers", "response", "stripped_headers"];
/// Audit fields that differ between two evaluations of the same request.
const VOLATILE: [&str; 2] = ["ts", "eval_us"];

/// Cases Envoy cannot hand to the filter unchanged (`host-tests/envoy/DIVERGENCES.md`).
/// The list is empty since the core reads a comma-joined header as several tokens and a
/// bare `Bearer` as an empty one; the kinds stay so that a new divergence is named, not
/// skipped.
#[allow(dead_code)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Divergence {
    /// Envoy's HTTP codec drops leading and trailing whitespace of header values
    /// (RFC 9110 §5.5): `authorization: "Bearer "` arrives as `Bearer`.
    TrimmedValue,
    /// Envoy joins a repeated `authorization` header into one value, comma-separated
    /// (RFC 9110 §5.3).
    JoinedAuthorization,
}

const DIVERGENCES: &[(&str, Divergence)] = &[];

fn divergence(name: &str) -> Option<Divergence> {
    DIVERGENCES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, d)| *d)
}

/// REQUEST.json as the filter receives it from Envoy: header values trimmed, a repeated
/// `authorization` joined with `,` (what Envoy's HTTP/1 codec and header map do).
fn as_envoy_delivers(request: &Value) -> Value {
    let mut out = request.clone();
    let Some(headers) = out.get_mut("headers").and_then(Value::as_object_mut) else {
        return out;
    };
    let trim = |v: &Value| json!(v.as_str().unwrap_or_default().trim_matches([' ', '\t']));
    let mut joined: Vec<String> = Vec::new();
    let mut auth_names: Vec<String> = Vec::new();
    for (name, value) in headers.iter_mut() {
        let trimmed = match &*value {
            Value::Array(items) => Value::Array(items.iter().map(trim).collect()),
            other => trim(other),
        };
        if name.eq_ignore_ascii_case("authorization") {
            auth_names.push(name.clone());
            match &trimmed {
                Value::Array(items) => joined.extend(
                    items
                        .iter()
                        .map(|i| i.as_str().unwrap_or_default().to_owned()),
                ),
                other => joined.push(other.as_str().unwrap_or_default().to_owned()),
            }
        }
        *value = trimmed;
    }
    if auth_names.len() > 1 || joined.len() > 1 {
        for name in &auth_names {
            headers.remove(name);
        }
        headers.insert("authorization".into(), json!(joined.join(",")));
    }
    out
}

struct Corpus {
    keys: HashMap<String, SigningKey>,
    configs: Map<String, Value>,
    /// (file, case) for every case and twin, in file order.
    runs: Vec<(String, Case)>,
}

fn load() -> Corpus {
    let corpus = actwarden_test_support::load(&corpus_dir(), &SystemRandom::new()).unwrap();
    let mut runs = Vec::new();
    for (file, value) in &corpus.cases {
        let case: Case = serde_json::from_value(value.clone())
            .unwrap_or_else(|e| panic!("{file}: not a case: {e}: {value}"));
        runs.push((file.clone(), case));
        if let Some(twin) = twin_case(value).unwrap() {
            runs.push((file.clone(), twin));
        }
    }
    Corpus {
        keys: corpus.keys,
        configs: corpus.configs,
        runs,
    }
}

/// The providers of a configuration that fetch their keys (`remote_jwks`).
fn remote_providers(config: &Value) -> Vec<String> {
    config
        .get("providers")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter(|(_, p)| p.get("remote_jwks").is_some())
        .map(|(name, _)| name.clone())
        .collect()
}

/// One listener of the corpus Envoy.
struct Listener {
    name: String,
    /// The configuration as Envoy loads it (remote providers pointed at the JWKS server).
    config: String,
    /// JWKS server path → what it serves.
    jwks: Vec<(String, Serve)>,
    /// For a remote provider with keys: a token of one of them, to see that every worker
    /// has adopted the fetched keys before the cases run.
    canary: Option<String>,
}

/// The listener of a case: its configuration, and for a configuration with remote
/// providers, the keys each has fetched (sorted, so the order of names does not matter).
fn listener_key(corpus: &Corpus, case: &Case) -> String {
    let config = &corpus.configs[&case.config];
    let remote = remote_providers(config);
    if remote.is_empty() {
        return case.config.clone();
    }
    let sets: Vec<String> = remote
        .iter()
        .map(|p| match case.remote_jwks.get(p) {
            None => format!("{p}=none"),
            Some(names) => {
                let mut names = names.clone();
                names.sort();
                names.dedup();
                format!("{p}={}", names.join("+"))
            }
        })
        .collect();
    format!("{}/{}", case.config, sets.join(","))
}

fn build_listener(corpus: &Corpus, index: usize, key: &str, case: &Case) -> Listener {
    let name = format!("l{index}-{}", key.replace(['/', '=', '+', ','], "_"));
    let mut config = corpus.configs[&case.config].clone();
    let mut jwks = Vec::new();
    let mut canary = None;
    for provider in remote_providers(&config) {
        let path = format!("/{name}/{provider}");
        let remote = &mut config["providers"][&provider]["remote_jwks"];
        remote["http_uri"]["uri"] = json!(format!("http://jwks.e2e{path}"));
        remote["http_uri"]["cluster"] = json!(JWKS_CLUSTER);
        let serve = match case.remote_jwks.get(&provider) {
            None => Serve::Status(503),
            Some(names) => {
                let keys: Vec<&SigningKey> = names.iter().map(|n| &corpus.keys[n]).collect();
                Serve::Jwks(public_jwks(&keys).to_string())
            }
        };
        if let (Some(first), None) = (
            case.remote_jwks.get(&provider).and_then(|n| n.first()),
            &canary,
        ) {
            let p = &config["providers"][&provider];
            let claims = json!({ "iss": p["issuer"], "aud": p["audiences"][0], "sub": "user:canary",
                                 "iat": CANARY_NOW - 60, "exp": CANARY_NOW + 600 });
            let key = &corpus.keys[first];
            canary = Some(
                key.mint(key.default_alg(), &claims, None, &SystemRandom::new())
                    .unwrap(),
            );
        }
        jwks.push((path, serve));
    }
    Listener {
        name,
        config: config.to_string(),
        jwks,
        canary,
    }
}

/// A case ready to send.
struct Prepared {
    token: Option<String>,
    /// REQUEST.json with the token and the request id in place (what the CLI decides).
    request: Value,
    request_id: String,
    /// The request id came from the case itself (not unique: such cases run one at a time).
    own_request_id: bool,
    /// Send the request once before (same DPoP proof): the case expects the second answer.
    replay: bool,
}

fn prepare(
    corpus: &Corpus,
    case: &Case,
    seq: usize,
    rng: &SystemRandom,
) -> Result<Prepared, String> {
    let token = case
        .token
        .as_ref()
        .map(|spec| materialize(spec, &corpus.keys, rng))
        .transpose()
        .map_err(|e| format!("cannot materialise the token: {e}"))?;
    let mut text = request_with_token(&case.request, token.as_deref());
    if let Some(spec) = &case.dpop {
        let proof = materialize_proof(
            spec,
            &corpus.keys,
            &case.request,
            token.as_deref(),
            case.now,
            rng,
        )
        .map_err(|e| format!("cannot materialise the DPoP proof: {e}"))?;
        text = request_with_proof(&text, &proof);
    }
    let mut request: Value = serde_json::from_str(&text).map_err(|e| format!("request: {e}"))?;
    let headers = request
        .as_object_mut()
        .ok_or("request is not an object")?
        .entry("headers")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .ok_or("request.headers is not an object")?;
    let own = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("x-request-id"))
        .and_then(|(_, v)| v.as_str())
        .map(str::to_owned);
    let (request_id, own_request_id) = match own {
        Some(id) => (id, true),
        None => {
            let id = format!("e2e-corpus-{seq}");
            headers.insert("x-request-id".into(), json!(id));
            (id, false)
        }
    };
    Ok(Prepared {
        token,
        request,
        request_id,
        own_request_id,
        replay: case.dpop.as_ref().is_some_and(|d| d.replay),
    })
}

/// The HTTP/1.1 request for REQUEST.json: `host` = authority, the headers in order (an
/// array is a repeated header), and the test hooks for `now` and `peer`.
fn http_request(request: &Value, now: u64) -> Request {
    let s = |k: &str| request.get(k).and_then(Value::as_str).unwrap_or_default();
    let mut req = Request::new(s("method"), s("path"));
    if let Some(authority) = request.get("authority").and_then(Value::as_str) {
        req = req.header("host", authority);
    }
    for (name, value) in request
        .get("headers")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        match value {
            Value::Array(items) => {
                for item in items {
                    req = req.header(name, item.as_str().unwrap_or_default());
                }
            }
            other => req = req.header(name, other.as_str().unwrap_or_default()),
        }
    }
    // SPEC §9: an MCP message's body (text, or base64 for bytes that are not UTF-8).
    if let Some(body) = actwarden_test_support::request_body(request) {
        req.body = body;
    }
    req = req.header("x-actwarden-test-now", &now.to_string());
    // Sent over plain HTTP (Envoy's `:scheme` is `http`); the request's own scheme decides.
    let scheme = request
        .get("scheme")
        .and_then(Value::as_str)
        .unwrap_or("https");
    req = req.header("x-actwarden-test-scheme", scheme);
    if let Some(peer) = request.get("peer") {
        req = req.header("x-actwarden-test-peer", &peer.to_string());
    }
    req
}

fn remote_keys(corpus: &Corpus, case: &Case) -> HashMap<String, KeySet> {
    case.remote_jwks
        .iter()
        .map(|(provider, names)| {
            let keys: Vec<&SigningKey> = names.iter().map(|n| &corpus.keys[n]).collect();
            let set = parse_jwks(&public_jwks(&keys).to_string(), KeySource::Fetched).unwrap();
            (provider.clone(), set)
        })
        .collect()
}

/// What one case did through Envoy.
struct Outcome {
    reason: String,
    /// Problems found; empty when the case passed.
    problems: Vec<String>,
}

struct Env<'a> {
    corpus: &'a Corpus,
    envoy: &'a Envoy,
    echo: &'a EchoServer,
    /// listener key → address.
    addrs: HashMap<String, SocketAddr>,
}

fn lower_map(headers: &[(String, String)], keep: impl Fn(&str) -> bool) -> Map<String, Value> {
    let mut out = Map::new();
    for (k, v) in headers {
        let k = k.to_ascii_lowercase();
        if keep(&k) {
            out.insert(k, json!(v));
        }
    }
    out
}

fn run_case(env: &Env<'_>, case: &Case, p: &Prepared) -> Outcome {
    let mut problems = Vec::new();
    let key = listener_key(env.corpus, case);
    let addr = env.addrs[&key];
    // The native decision: what the CLI prints for the same REQUEST.json, and for the
    // request as Envoy hands it to the filter (they differ only for a listed divergence).
    // A `replay` case is decided twice through one window (SPEC §10), as Envoy sees it.
    let native_of = |request: &Value| {
        let config = env.corpus.configs[&case.config].to_string();
        let request = request.to_string();
        let remote = remote_keys(env.corpus, case);
        let window = actwarden::MemoryWindow::new();
        let once = || {
            check(CheckInput {
                policy: PolicySource::Text {
                    config: &config,
                    read_file: &|_| Err(actwarden::FileError::NoFiles),
                },
                request: &request,
                now: UnixTime::from_secs(case.now),
                remote_keys: &remote,
                explain: false,
                clock: None,
                replay: Some(&window),
                // Envoy's filtering of tools/list is tests/mcp.rs's.
                mcp_response: None,
            })
            .map(|out| out.report)
            .map_err(|e| format!("native check: {e}"))
        };
        if p.replay {
            once()?;
        }
        once()
    };
    let (original, native) = match (
        native_of(&p.request),
        native_of(&as_envoy_delivers(&p.request)),
    ) {
        (Ok(o), Ok(d)) => (o, d),
        (Err(e), _) | (_, Err(e)) => {
            return Outcome {
                reason: "?".into(),
                problems: vec![e],
            }
        }
    };
    // `filtered_tools` is the native filter's (Envoy's filtering: tests/mcp.rs).
    let mut expect = case.expect.clone();
    expect.filtered_tools = None;
    if let Err(e) = check_expect(&original, &expect) {
        problems.push(format!(
            "NATIVE (core, not Envoy) differs from the case: {e}"
        ));
    }
    let diverges = ["reason", "detail", "token_id"]
        .iter()
        .any(|k| original[*k] != native[*k]);
    let listed = divergence(&case.name);
    match listed {
        Some(Divergence::TrimmedValue | Divergence::JoinedAuthorization) if !diverges => problems
            .push(
            "listed in DIVERGENCES.md, but Envoy's normalisation no longer changes the decision: \
             remove it from the list"
                .into(),
        ),
        None if diverges => problems.push(format!(
            "Envoy's normalisation changes the decision ({} → {}), and the case is not listed in \
             DIVERGENCES.md",
            original["reason"], native["reason"]
        )),
        _ => {}
    }

    if p.replay {
        // The first use of the proof, under its own request id; the case is the second.
        let first_id = format!("{}-first", p.request_id);
        let mut first = http_request(&p.request, case.now);
        for (k, v) in first.headers.iter_mut() {
            if k == "x-request-id" {
                *v = first_id.clone();
            }
        }
        let sent = http::send(addr, &first).map_err(|e| e.to_string());
        if let Err(e) = sent.and_then(|_| {
            env.envoy
                .wait_audit(&first_id, AUDIT_TIMEOUT)
                .map_err(|e| e.to_string())
        }) {
            problems.push(format!("first use of the proof: {e}"));
        }
    }
    let req = http_request(&p.request, case.now);
    let resp = match http::send(addr, &req) {
        Ok(r) => r,
        Err(e) => {
            return Outcome {
                reason: "?".into(),
                problems: vec![format!("request failed: {e}")],
            }
        }
    };
    let audit = match env.envoy.wait_audit(&p.request_id, AUDIT_TIMEOUT) {
        Ok(a) => a,
        Err(e) => {
            return Outcome {
                reason: "?".into(),
                problems: vec![format!(
                    "{e}; reply {} {:?} {}",
                    resp.status,
                    resp.headers,
                    resp.text()
                )],
            }
        }
    };
    let reason = audit
        .get("reason")
        .and_then(Value::as_str)
        .unwrap_or("?")
        .to_owned();
    let upstream = echoed(&resp);
    let received = env.echo.received(&p.request_id);
    // An allowed tools/list reached the echo upstream, whose answer is no tool list: the
    // filter must never pass it on (HTTP 502 `tools_list_unfilterable` instead).
    let filtered_list =
        native["decision"] == json!("allow") && native["mcp_method"] == json!("tools/list");
    if filtered_list {
        if received.is_empty() {
            problems.push("an allowed tools/list did not reach the upstream".into());
        }
        if resp.status != 502 || !resp.text().contains("tools_list_unfilterable") {
            problems.push(format!(
                "the echo answer passed unfiltered: {} {}",
                resp.status,
                resp.text()
            ));
        }
    }
    // Its identity headers are what the upstream received (the answer is the 502's).
    let upstream = if filtered_list {
        received.first().cloned()
    } else {
        upstream
    };

    // The report as Envoy gave it.
    let mut report = audit.as_object().cloned().unwrap_or_default();
    let (headers, response) = match &upstream {
        Some(up) => (
            Value::Object(lower_map(&up.headers, |k| k.starts_with("x-agent-"))),
            Value::Null,
        ),
        None => (
            json!({}),
            json!({ "status": resp.status, "headers": lower_map(&resp.headers, |_| true), "body": resp.text() }),
        ),
    };
    // SPEC §9: an MCP message is decided on its body with its headers held, so an allowed
    // one carries its identity headers like any other request. The filtering of
    // `tools/list` responses is tested through Envoy by tests/mcp.rs (a real MCP server),
    // not by the echo upstream.
    report.insert("headers".into(), headers.clone());
    report.insert("response".into(), response.clone());
    // The filter measures every decision (the native report leaves `eval_us` to the host).
    if !audit["eval_us"].is_u64() {
        problems.push(format!("eval_us is not a number: {}", audit["eval_us"]));
    }
    match listed {
        None => {
            if let Err(e) = check_expect(&Value::Object(report), &expect) {
                problems.push(format!("expectation: {e}"));
            }
        }
        Some(_) => {
            // The reason may differ as documented; the decision and status may not.
            if audit["decision"] != json!(case.expect.decision)
                || audit["status"] != json!(case.expect.status)
            {
                problems.push(format!(
                    "divergent case changed decision or status: expected {} {:?}",
                    case.expect.decision, case.expect.status
                ));
            }
        }
    }

    // The audit record equals the native one, field by field.
    let audit_keys: BTreeSet<&String> = audit
        .as_object()
        .map(|m| m.keys().collect())
        .unwrap_or_default();
    let native_keys: BTreeSet<&String> = native
        .as_object()
        .map(|m| {
            m.keys()
                .filter(|k| !NOT_AUDIT.contains(&k.as_str()))
                .collect()
        })
        .unwrap_or_default();
    if audit_keys != native_keys {
        problems.push(format!(
            "audit fields differ: only in Envoy {:?}, only native {:?}",
            audit_keys.difference(&native_keys).collect::<Vec<_>>(),
            native_keys.difference(&audit_keys).collect::<Vec<_>>()
        ));
    }
    for k in native_keys.intersection(&audit_keys) {
        if VOLATILE.contains(&k.as_str()) {
            continue;
        }
        if audit[k.as_str()] != native[k.as_str()] {
            problems.push(format!(
                "audit {k}: Envoy {} ≠ native {}",
                audit[k.as_str()],
                native[k.as_str()]
            ));
        }
    }

    // Upstream and reply.
    // A shadow denial (SPEC §11) is forwarded like an allow, with no identity headers.
    let forwarded = native["decision"] == json!("allow") || native["enforced"] == json!(false);
    match (&upstream, forwarded) {
        (Some(up), true) => {
            if headers != native["headers"] {
                problems.push(format!(
                    "identity headers upstream {headers} ≠ native {}",
                    native["headers"]
                ));
            }
            for (k, v) in &up.headers {
                let k = k.to_ascii_lowercase();
                if k.starts_with("x-actwarden-test-") {
                    problems.push(format!("test-hook header {k} reached the upstream"));
                }
                if k.starts_with("x_agent_") {
                    problems.push(format!("inbound {k}: {v} reached the upstream"));
                }
            }
        }
        // SPEC §9: the metadata GET is the gateway's own answer, compared like a reply.
        (None, _)
            if native["decision"] == json!("allow")
                && native["reason"] == json!("resource_metadata") =>
        {
            let nr = &native["response"];
            if json!(resp.status) != nr["status"]
                || resp.text() != nr["body"].as_str().unwrap_or_default()
            {
                problems.push(format!(
                    "metadata answer {} {:?} ≠ native {nr}",
                    resp.status,
                    resp.text()
                ));
            }
        }
        (None, false) => {
            if !received.is_empty() {
                problems.push("a denied request reached the upstream".into());
            }
            let nr = &native["response"];
            if json!(resp.status) != nr["status"] {
                problems.push(format!(
                    "reply status {} ≠ native {}",
                    resp.status, nr["status"]
                ));
            }
            for (k, v) in nr["headers"].as_object().into_iter().flatten() {
                let got = resp.get(k);
                if got != v.as_str() {
                    problems.push(format!("reply header {k}: {got:?} ≠ native {v}"));
                }
            }
            if resp.text() != nr["body"].as_str().unwrap_or_default() {
                problems.push(format!(
                    "reply body {:?} ≠ native {}",
                    resp.text(),
                    nr["body"]
                ));
            }
        }
        (up, _) => problems.push(format!(
            "native decision {} but the request {} the upstream (reply {} {})",
            native["decision"],
            if up.is_some() {
                "reached"
            } else {
                "did not reach"
            },
            resp.status,
            resp.text()
        )),
    }

    // No token, no signature in the log line.
    if let Some(token) = &p.token {
        let line = audit.to_string();
        let sig = token.rsplit('.').next().unwrap_or_default();
        if (token.len() >= 16 && line.contains(token.as_str()))
            || (sig.len() >= 16 && line.contains(sig))
        {
            problems.push("the audit line contains the token or its signature".into());
        }
    }
    if !problems.is_empty() {
        problems.push(format!("Envoy audit: {audit}"));
        problems.push(format!("native report: {native}"));
    }
    Outcome { reason, problems }
}

#[test]
fn corpus_through_envoy() {
    let started = Instant::now();
    let wasm = paths::test_wasm().unwrap();
    let corpus = load();
    let dir = paths::work_dir("corpus").unwrap();

    // One listener per configuration / remote key set.
    let mut listeners: Vec<(String, Listener)> = Vec::new();
    for (_, case) in &corpus.runs {
        let key = listener_key(&corpus, case);
        if !listeners.iter().any(|(k, _)| *k == key) {
            let l = build_listener(&corpus, listeners.len(), &key, case);
            listeners.push((key, l));
        }
    }
    let echo = EchoServer::start().unwrap();
    let jwks = JwksServer::start().unwrap();
    for (_, l) in &listeners {
        for (path, serve) in &l.jwks {
            jwks.set(path, serve.clone());
        }
    }
    // Request headers up to 1 MiB, so that even the nesting bomb (~380 KB of token) reaches
    // the filter; plus the `main` configuration behind the usual 96 KiB limit.
    let mut envoy_listeners: Vec<Value> = listeners
        .iter()
        .map(|(_, l)| {
            boot::with_max_request_headers_kb(
                boot::actwarden_listener(&l.name, &wasm, &l.config, VM_ID, None),
                CORPUS_HEADERS_KB,
            )
        })
        .collect();
    envoy_listeners.push(boot::actwarden_listener(
        LISTENER_96K,
        &wasm,
        &corpus.configs["main"].to_string(),
        VM_ID,
        None,
    ));
    let bootstrap = boot::bootstrap(
        envoy_listeners,
        vec![
            boot::cluster(boot::UPSTREAM_CLUSTER, echo.addr()),
            boot::cluster(JWKS_CLUSTER, jwks.addr()),
        ],
    );
    let envoy = Envoy::start(&dir, &bootstrap, &Options::default()).unwrap();
    let ready_at = started.elapsed();

    // Remote providers: wait for the first fetch of every served key set.
    let served: Vec<&String> = listeners
        .iter()
        .flat_map(|(_, l)| l.jwks.iter())
        .filter(|(_, s)| matches!(s, Serve::Jwks(_)))
        .map(|(p, _)| p)
        .collect();
    for path in &served {
        jwks.wait_fetches(path, 1, Duration::from_secs(15)).unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    while envoy.counter("actwarden.jwks.fetch_ok").unwrap() < served.len() as u64 {
        assert!(
            Instant::now() < deadline,
            "fetch_ok stays below {} (log {})",
            served.len(),
            envoy.log_path().display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    let addrs: HashMap<String, SocketAddr> = listeners
        .iter()
        .map(|(k, l)| (k.clone(), envoy.listener(&l.name).unwrap()))
        .collect();
    // Each worker adopts the fetched keys on its next tick: wait until a token of the
    // fetched keys is no longer jwks_unavailable, several times in a row (either worker).
    let mut canaries = 0usize;
    for (key, l) in &listeners {
        let Some(token) = &l.canary else { continue };
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut in_a_row = 0;
        while in_a_row < 6 {
            assert!(
                Instant::now() < deadline,
                "{}: keys not adopted (log {})",
                l.name,
                envoy.log_path().display()
            );
            canaries += 1;
            let id = format!("{CANARY_ID}{canaries}");
            let req = Request::new("GET", "/canary")
                .header("host", "api.example.com")
                .header("authorization", &format!("Bearer {token}"))
                .header("x-request-id", &id)
                .header("x-actwarden-test-now", &CANARY_NOW.to_string());
            http::send(addrs[key], &req).unwrap();
            let audit = envoy.wait_audit(&id, AUDIT_TIMEOUT).unwrap();
            if audit["reason"] == json!("jwks_unavailable") {
                in_a_row = 0;
                std::thread::sleep(Duration::from_millis(20));
            } else {
                in_a_row += 1;
            }
        }
    }
    let env = Env {
        corpus: &corpus,
        envoy: &envoy,
        echo: &echo,
        addrs,
    };

    let rng = SystemRandom::new();
    let prepared: Vec<Prepared> = corpus
        .runs
        .iter()
        .enumerate()
        .map(|(i, (file, case))| {
            prepare(&corpus, case, i, &rng).unwrap_or_else(|e| panic!("{file}: {}: {e}", case.name))
        })
        .collect();

    // Cases with a unique request id run on a few threads; the rest one at a time after.
    let results: Mutex<Vec<(usize, Outcome)>> = Mutex::new(Vec::new());
    let next = AtomicUsize::new(0);
    let parallel: Vec<usize> = (0..prepared.len())
        .filter(|&i| !prepared[i].own_request_id)
        .collect();
    let serial: Vec<usize> = (0..prepared.len())
        .filter(|&i| prepared[i].own_request_id)
        .collect();
    std::thread::scope(|s| {
        for _ in 0..4 {
            std::thread::Builder::new()
                .stack_size(64 << 20)
                .spawn_scoped(s, || loop {
                    let n = next.fetch_add(1, Ordering::SeqCst);
                    let Some(&i) = parallel.get(n) else { break };
                    let outcome = run_case(&env, &corpus.runs[i].1, &prepared[i]);
                    results.lock().unwrap().push((i, outcome));
                })
                .unwrap();
        }
    });
    for &i in &serial {
        let outcome = run_case(&env, &corpus.runs[i].1, &prepared[i]);
        results.lock().unwrap().push((i, outcome));
    }
    let mut results = results.into_inner().unwrap();
    results.sort_by_key(|(i, _)| *i);
    assert_eq!(results.len(), corpus.runs.len());

    let mut failures = Vec::new();

    // With the usual 96 KiB limit, Envoy itself refuses the nesting bomb (431) before the
    // filter: no audit line, nothing upstream (DIVERGENCES.md).
    let bomb = corpus
        .runs
        .iter()
        .position(|(_, c)| c.name == "token-nesting-bomb")
        .expect("the corpus has token-nesting-bomb");
    let mut req = http_request(&prepared[bomb].request, corpus.runs[bomb].1.now);
    for (k, v) in req.headers.iter_mut() {
        if k == "x-request-id" {
            *v = "e2e-bomb-96k".into();
        }
    }
    let audits_before = envoy.audits().len();
    let resp = http::send(envoy.listener(LISTENER_96K).unwrap(), &req).unwrap();
    if resp.status != 431 || echoed(&resp).is_some() || !echo.received("e2e-bomb-96k").is_empty() {
        failures.push(format!(
            "nesting bomb at 96 KiB: expected Envoy's 431, got {} {}",
            resp.status,
            resp.text()
        ));
    }
    std::thread::sleep(Duration::from_millis(200));
    if envoy.audits().len() != audits_before {
        failures.push("nesting bomb at 96 KiB: an audit line was written".into());
    }

    let mut reached: BTreeSet<String> = BTreeSet::new();
    for (i, outcome) in &results {
        let (file, case) = &corpus.runs[*i];
        if outcome.problems.is_empty() {
            reached.insert(outcome.reason.clone());
        } else {
            failures.push(format!(
                "{file}: {}\n      {}",
                case.name,
                outcome.problems.join("\n      ")
            ));
        }
    }

    // SPEC §6: no token and no signature anywhere in Envoy's log (not only audit lines).
    let log = envoy.log_lines();
    for (i, p) in prepared.iter().enumerate() {
        let Some(token) = &p.token else { continue };
        let signature = token.rsplit('.').next().unwrap_or_default();
        let needle = if signature.len() >= 16 {
            signature
        } else {
            token.as_str()
        };
        if needle.len() >= 16 && log.iter().any(|l| l.contains(needle)) {
            failures.push(format!(
                "{}: Envoy's log contains the token or its signature",
                corpus.runs[i].1.name
            ));
        }
    }

    // Every reason of SPEC §4 seen through Envoy.
    for reason in Reason::ALL {
        if !reached.contains(reason.code()) {
            failures.push(format!(
                "reason {} never seen (correctly) through Envoy",
                reason.code()
            ));
        }
    }

    // Counters: exactly the tally of the audit lines.
    let audits = envoy.audits();
    let mut tally: BTreeMap<String, u64> = BTreeMap::new();
    for a in &audits {
        let name = match (a["decision"].as_str(), a["reason"].as_str()) {
            (Some("allow"), _) => "actwarden.allow".to_owned(),
            (_, Some(r)) if a["enforced"] == json!(false) => format!("actwarden.shadow_deny.{r}"),
            (_, Some(r)) => format!("actwarden.deny.{r}"),
            _ => "?".to_owned(),
        };
        *tally.entry(name).or_insert(0) += 1;
        if a["enforced"] == json!(false) && a["decision"] == json!("deny") {
            *tally.entry("actwarden.shadow_deny".to_owned()).or_insert(0) += 1;
        }
    }
    let counters = envoy.actwarden_counters().unwrap();
    for (name, want) in &tally {
        let got = counters.get(name).copied().unwrap_or(0);
        if got != *want {
            failures.push(format!("counter {name}: {got}, but {want} audit lines"));
        }
    }
    for (name, got) in &counters {
        if (name == "actwarden.allow"
            || name == "actwarden.shadow_deny"
            || name.starts_with("actwarden.deny.")
            || name.starts_with("actwarden.shadow_deny."))
            && !tally.contains_key(name)
            && *got != 0
        {
            failures.push(format!("counter {name}: {got}, but no audit line"));
        }
    }
    let case_audits = audits
        .iter()
        .filter(|a| {
            !a["request_id"]
                .as_str()
                .is_some_and(|id| id.starts_with(CANARY_ID))
        })
        .count();
    // A DPoP `replay` case sends its request twice (the first use of the proof, then the
    // replay the case expects): two audit lines.
    let replays = prepared.iter().filter(|p| p.replay).count();
    let expected_lines = corpus.runs.len() + replays;
    if case_audits != expected_lines || audits.len() != expected_lines + canaries {
        failures.push(format!(
            "{case_audits} audit lines for {} cases and {replays} first uses of replayed proofs \
             ({} lines with {canaries} canaries)",
            corpus.runs.len(),
            audits.len()
        ));
    }
    // Every counter of SPEC §8 is defined (shown even at 0).
    let mut spec_counters: Vec<String> = Reason::ALL
        .iter()
        .filter(|r| r.status().is_some())
        .map(|r| format!("actwarden.deny.{}", r.code()))
        .collect();
    spec_counters.extend(
        [
            "allow",
            "shadow_deny",
            "jwks.fetch_ok",
            "jwks.fetch_failed",
            "cache.hit",
            "cache.miss",
        ]
        .iter()
        .map(|n| format!("actwarden.{n}")),
    );
    for name in &spec_counters {
        if !counters.contains_key(name) {
            failures.push(format!("counter {name} is not in /stats"));
        }
    }
    let cache = counters.get("actwarden.cache.hit").copied().unwrap_or(0)
        + counters.get("actwarden.cache.miss").copied().unwrap_or(0);
    if cache == 0 {
        failures.push("counters actwarden.cache.hit + miss are 0".into());
    }
    eprintln!(
        "corpus through Envoy: {} runs, {} failed; Envoy ready after {:?}, total {:?}; counters {:?}",
        corpus.runs.len(),
        failures.len(),
        ready_at,
        started.elapsed(),
        counters
    );
    assert!(
        failures.is_empty(),
        "{} problem(s) (log {}):\n{}",
        failures.len(),
        envoy.log_path().display(),
        failures.join("\n")
    );
}
