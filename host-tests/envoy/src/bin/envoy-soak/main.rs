//! `make soak`: the filter in a real Envoy (2 workers) at full rate for `SOAK_SECONDS`
//! (default 600) with a mix of request classes (classes.rs), while the JWKS server of the
//! flapping provider goes down, slow, serves garbage and rotates keys.
//!
//! It asserts: no VM crash or restart (Envoy still runs with the same pid; its log has no
//! panic, `wasm VM failed` or critical line; no wasm failure in its stats), no 5xx but
//! `jwks_unavailable`, every reason (from the response and from the audit line) one its
//! class may get, one audit line per request, and Envoy's RSS flat (final ≤ after warm-up ×
//! (1 + `SOAK_RSS_TOLERANCE_PCT`/100, default 15) + `SOAK_RSS_SLACK_MIB` (default 16)).
//! It ends with one line `soak: N requests, M audit lines, C crashes, U unexpected` and
//! exits 1 when anything is off (2 when it could not run).
//!
//! Loopback only (every server and Envoy bind 127.0.0.1); bounded by `SOAK_SECONDS` and
//! `SOAK_MAX_REQUESTS` (default 50 million); it stops by itself. `SOAK_CONNECTIONS`
//! (default 4) keep-alive client connections. Needs `ENVOY_BIN` and `ACTWARDEN_WASM`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod classes;

use actwarden::mint::{public_jwks, SigningKey};
use actwarden::{decide, Alg, Context, KeySource, Policy, Request as CoreRequest, UnixTime, RING};
use actwarden_envoy_tests::bootstrap as boot;
use actwarden_envoy_tests::envoy::{parse_audit_line, Envoy, Options, AUDIT_MARKER};
use actwarden_envoy_tests::http::{self, Handler, Request, Response, Server};
use actwarden_envoy_tests::servers::{JwksServer, Serve, ECHO_MARK};
use actwarden_envoy_tests::{fixtures, paths, Error, Result};
use classes::{Class, Tokens, SPOOF};
use ring::rand::SystemRandom;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

fn main() {
    match run() {
        Ok(true) => std::process::exit(0),
        Ok(false) => std::process::exit(1),
        Err(e) => {
            eprintln!("soak: error: {e}");
            println!("soak: 0 requests, 0 audit lines, 0 crashes, 1 unexpected");
            std::process::exit(2)
        }
    }
}

/// What one class got, from the client's side and from the audit lines.
#[derive(Default, Clone)]
struct Tally {
    sent: u64,
    by_reason: BTreeMap<String, u64>,
    audit_by_reason: BTreeMap<String, u64>,
    unexpected: u64,
    examples: Vec<String>,
}

impl Tally {
    fn unexpected(&mut self, what: String) {
        self.unexpected += 1;
        if self.examples.len() < 5 {
            self.examples.push(what);
        }
    }
}

struct Shared {
    tallies: Mutex<Vec<Tally>>,
    sent: AtomicU64,
    client_errors: AtomicU64,
    stop: AtomicBool,
    allowed: Vec<BTreeSet<String>>,
}

/// A keep-alive HTTP/1.1 connection to Envoy, reopened after an error or `connection: close`.
struct Conn {
    addr: SocketAddr,
    io: Option<(BufReader<TcpStream>, TcpStream)>,
}

impl Conn {
    fn send(&mut self, req: &Request) -> Result<Response> {
        if self.io.is_none() {
            let s = TcpStream::connect_timeout(&self.addr, http::CLIENT_TIMEOUT)?;
            s.set_read_timeout(Some(http::CLIENT_TIMEOUT))?;
            s.set_nodelay(true)?;
            self.io = Some((BufReader::new(s.try_clone()?), s));
        }
        let (reader, writer) = self
            .io
            .as_mut()
            .ok_or_else(|| Error("no connection".into()))?;
        let result = http::write_request(writer, req)
            .and_then(|()| http::read_response(reader, &req.method));
        match &result {
            Ok(resp)
                if resp
                    .get("connection")
                    .is_some_and(|v| v.eq_ignore_ascii_case("close")) =>
            {
                self.io = None
            }
            Err(_) => self.io = None,
            Ok(_) => {}
        }
        result
    }
}

/// The reason a response shows: an echo from the upstream is an allow; a local reply
/// carries `{"error": reason}`.
fn response_reason(class: Class, resp: &Response) -> std::result::Result<String, String> {
    if resp.get(ECHO_MARK).is_some() {
        let body: Value =
            serde_json::from_slice(&resp.body).map_err(|e| format!("echo body: {e}"))?;
        let agent = body
            .get("x-agent")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        if agent.values().any(|v| v.as_str() == Some(SPOOF))
            || agent.contains_key("x-agent-scopes") && agent["x-agent-scopes"] == "admin"
        {
            return Err(format!("spoofed identity reached the upstream: {body}"));
        }
        return Ok(match class {
            Class::SpoofedAnonymous => {
                if !agent.is_empty() {
                    return Err(format!("identity headers on an anonymous request: {body}"));
                }
                "allowed_anonymous".to_owned()
            }
            _ => {
                // MCP calls too: the filter holds their headers until the body is decided
                // (`allow_on_headers_stop_iteration`), so identity reaches the upstream.
                if agent
                    .get("x-agent-subject")
                    .and_then(Value::as_str)
                    .is_none()
                {
                    return Err(format!("allowed without x-agent-subject: {body}"));
                }
                "allowed".to_owned()
            }
        });
    }
    let body: Value = serde_json::from_slice(&resp.body).map_err(|_| {
        format!(
            "HTTP {} with a body that is not the filter's: {}",
            resp.status,
            resp.text()
        )
    })?;
    body.get("error")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| format!("HTTP {} without error: {body}", resp.status))
}

fn load(
    thread: usize,
    envoy_addr: SocketAddr,
    tokens: Arc<Tokens>,
    shared: Arc<Shared>,
    deadline: Instant,
    max: u64,
) {
    let schedule: Vec<Class> = Class::ALL
        .iter()
        .flat_map(|c| std::iter::repeat_n(*c, c.weight()))
        .collect();
    let mut conn = Conn {
        addr: envoy_addr,
        io: None,
    };
    let mut local: Vec<Tally> = vec![Tally::default(); Class::ALL.len()];
    let mut i = thread;
    // The last DPoP request of this connection that Envoy allowed: a replay sends it again.
    let mut replayable: Option<Request> = None;
    while !shared.stop.load(Ordering::Relaxed) && Instant::now() < deadline {
        if shared.sent.fetch_add(1, Ordering::Relaxed) >= max {
            shared.sent.fetch_sub(1, Ordering::Relaxed);
            break;
        }
        let mut class = schedule[i % schedule.len()];
        i += 1;
        let base = match (class, &replayable) {
            (Class::DpopReplayed, Some(accepted)) => accepted.clone(),
            (Class::DpopReplayed, None) => {
                // Nothing accepted yet on this connection: a fresh proof first.
                class = Class::DpopValid;
                tokens.request(class)
            }
            _ => tokens.request(class),
        };
        let id = format!("soak-{}-{thread}-{i}", class.index());
        let req = base
            .clone()
            .header("host", classes::AUTHORITY)
            .header("x-request-id", &id);
        let t = &mut local[class.index()];
        t.sent += 1;
        match conn.send(&req) {
            Err(e) => {
                shared.client_errors.fetch_add(1, Ordering::Relaxed);
                t.unexpected(format!("{id}: client error {e}"));
            }
            Ok(resp) => match response_reason(class, &resp) {
                Err(what) => t.unexpected(format!("{id}: {what}")),
                Ok(reason) => {
                    if class == Class::DpopValid && reason == "allowed" {
                        replayable = Some(base);
                    }
                    *t.by_reason.entry(reason.clone()).or_default() += 1;
                    if resp.status >= 500 && reason != "jwks_unavailable" {
                        t.unexpected(format!("{id}: HTTP {} ({reason})", resp.status));
                    } else if !shared.allowed[class.index()].contains(&reason) {
                        t.unexpected(format!("{id}: HTTP {} reason {reason}", resp.status));
                    }
                }
            },
        }
    }
    let mut all = shared.tallies.lock().unwrap_or_else(|p| p.into_inner());
    for (into, from) in all.iter_mut().zip(local) {
        into.sent += from.sent;
        into.unexpected += from.unexpected;
        for (k, v) in from.by_reason {
            *into.by_reason.entry(k).or_default() += v;
        }
        for e in from.examples {
            if into.examples.len() < 5 {
                into.examples.push(e);
            }
        }
    }
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// The flapping JWKS server: up, slow, up, garbage, rotate, down, … until `stop`.
/// `first` is the key published (and signing the remote tokens) before Envoy started.
fn flap(
    jwks: Arc<JwksServer>,
    tokens: Arc<Tokens>,
    stop: Arc<AtomicBool>,
    phases: Arc<Mutex<BTreeMap<&'static str, u64>>>,
    first: SigningKey,
) {
    let rng = SystemRandom::new();
    let mut generation = 0u64;
    let mut keys: Vec<SigningKey> = vec![first];
    // The newest two keys are published: old and new overlap through a rotation.
    let doc = |keys: &[SigningKey]| {
        let refs: Vec<&SigningKey> = keys.iter().rev().take(2).collect();
        public_jwks(&refs).to_string()
    };
    let schedule: [(&str, u64); 6] = [
        ("up", 5),
        ("slow", 4),
        ("up", 5),
        ("garbage", 4),
        ("rotate", 5),
        ("down", 6),
    ];
    let sleep = |secs: u64| {
        let until = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < until && !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    'outer: loop {
        for (phase, secs) in schedule {
            if stop.load(Ordering::Relaxed) {
                break 'outer;
            }
            *phases
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .entry(phase)
                .or_default() += 1;
            match phase {
                "up" => jwks.set("/jwks", Serve::Jwks(doc(&keys))),
                "slow" => jwks.set("/jwks", Serve::Slow(1500, doc(&keys))),
                "garbage" => {
                    generation += 1;
                    let body = if generation.is_multiple_of(2) {
                        "{\"keys\": 42}"
                    } else {
                        "<html>not json"
                    };
                    jwks.set("/jwks", Serve::Garbage(body.to_owned()));
                }
                "rotate" => {
                    let kid = format!("rot-{}", keys.len());
                    if let Ok(k) = SigningKey::generate(Alg::ES256, &kid, &rng) {
                        keys.push(k);
                    }
                    // The new key is published (with the previous one) before tokens use it.
                    jwks.set("/jwks", Serve::Jwks(doc(&keys)));
                    sleep(1);
                    if let Some(k) = keys.last() {
                        let _ = tokens.rotate_remote(k, fixtures::now());
                    }
                    sleep(secs.saturating_sub(1));
                    continue;
                }
                _ => jwks.set("/jwks", Serve::Status(503)),
            }
            sleep(secs);
        }
    }
    jwks.set("/jwks", Serve::Jwks(doc(&keys)));
}

/// The lean echo upstream: 200 with the `x-agent-*` headers it received (keeps nothing).
fn echo_server() -> Result<Server> {
    let handler: Handler = Arc::new(|req: &Request| {
        let agent: serde_json::Map<String, Value> = req
            .headers
            .iter()
            .filter(|(k, _)| k.to_ascii_lowercase().starts_with("x-agent-"))
            .map(|(k, v)| (k.to_ascii_lowercase(), json!(v)))
            .collect();
        let mut resp = Response::new(
            200,
            "application/json",
            json!({ "x-agent": agent }).to_string(),
        );
        resp.headers.push((ECHO_MARK.to_owned(), "1".to_owned()));
        resp
    });
    Server::start("soak-echo", handler)
}

/// The reason the core gives a class's request natively, under the soak's configuration
/// (as Envoy hands it over: plain HTTP, the soak's authority, the body). A replayed class
/// is decided twice in one replay window: the second reason.
fn native_reason(
    policy: &Policy,
    remote: &HashMap<String, actwarden::KeySet>,
    class: Class,
    req: &Request,
    now: u64,
) -> String {
    let request = CoreRequest {
        method: req.method.clone(),
        path: req.path.clone(),
        scheme: Some("http".into()),
        authority: Some(classes::AUTHORITY.into()),
        headers: req
            .headers
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
            .collect(),
        body: (!req.body.is_empty()).then(|| req.body.clone()),
        ..CoreRequest::default()
    };
    let window = actwarden::MemoryWindow::new();
    let ctx = Context {
        policy,
        remote_keys: remote,
        crypto: &RING,
        replay: &window,
        cache: None,
        shared: None,
    };
    let mut decision = decide(ctx, &request, UnixTime::from_secs(now));
    if class == Class::DpopReplayed {
        decision = decide(ctx, &request, UnixTime::from_secs(now));
    }
    decision.reason().code().to_owned()
}

/// Sets `allow_on_headers_stop_iteration` on every Wasm filter of the bootstrap: the
/// filter then holds an MCP request's headers until its body is decided.
fn allow_on_headers_stop_iteration(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if map.get("@type").and_then(Value::as_str)
                == Some("type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm")
            {
                if let Some(Value::Object(config)) = map.get_mut("config") {
                    config.insert("allow_on_headers_stop_iteration".into(), json!(true));
                }
            }
            map.values_mut().for_each(allow_on_headers_stop_iteration);
        }
        Value::Array(items) => items.iter_mut().for_each(allow_on_headers_stop_iteration),
        _ => {}
    }
}

fn run() -> Result<bool> {
    let seconds = env_u64("SOAK_SECONDS", 600).max(5);
    let max_requests = env_u64("SOAK_MAX_REQUESTS", 50_000_000);
    let connections = env_u64("SOAK_CONNECTIONS", 4).clamp(1, 64) as usize;
    let tolerance_pct = env_u64("SOAK_RSS_TOLERANCE_PCT", 15);
    let slack_mib = env_u64("SOAK_RSS_SLACK_MIB", 16);
    let wasm = paths::wasm()?;
    let rng = SystemRandom::new();
    let now = fixtures::now();
    let steady = SigningKey::generate(Alg::ES256, "steady-1", &rng)
        .map_err(|e| Error(format!("keygen: {e}")))?;
    let tokens = Arc::new(Tokens::new(&steady, now)?);
    let config = classes::config(&steady, "jwks");
    let policy =
        Policy::from_json(&config.to_string()).map_err(|e| Error(format!("soak config: {e}")))?;

    let jwks = Arc::new(JwksServer::start()?);
    let stop_flap = Arc::new(AtomicBool::new(false));
    let phases: Arc<Mutex<BTreeMap<&'static str, u64>>> = Arc::default();
    // The first key and tokens, before Envoy starts: the first fetch finds keys.
    let rot0 = SigningKey::generate(Alg::ES256, "rot-0", &rng)
        .map_err(|e| Error(format!("keygen: {e}")))?;
    jwks.set("/jwks", Serve::Jwks(public_jwks(&[&rot0]).to_string()));
    tokens.rotate_remote(&rot0, now)?;

    // Each class's reasons: the steady one as the core decides it natively, plus the
    // flapping ones for classes against the remote provider.
    let remote_doc = public_jwks(&[&rot0]).to_string();
    let mut remote = HashMap::new();
    remote.insert(
        "flappy".to_owned(),
        actwarden::parse_jwks(&remote_doc, KeySource::Fetched)
            .map_err(|e| Error(format!("jwks: {e}")))?,
    );
    let mut allowed = Vec::new();
    println!("soak: request classes and the reasons each may get:");
    for class in Class::ALL {
        let native = native_reason(&policy, &remote, class, &tokens.request(class), now);
        let mut set: BTreeSet<String> = BTreeSet::new();
        set.insert(native.clone());
        set.extend(class.flapping_reasons().iter().map(|s| (*s).to_owned()));
        println!(
            "  {:<22} {}",
            class.name(),
            set.iter().cloned().collect::<Vec<_>>().join(", ")
        );
        allowed.push(set);
    }

    let echo = echo_server()?;
    let dir = paths::work_dir("soak")?;
    let mut bootstrap = boot::bootstrap(
        vec![boot::actwarden_listener(
            "main",
            &wasm,
            &config.to_string(),
            "soak",
            None,
        )],
        vec![
            boot::cluster(boot::UPSTREAM_CLUSTER, echo.addr()),
            boot::cluster("jwks", jwks.addr()),
        ],
    );
    allow_on_headers_stop_iteration(&mut bootstrap);
    let options = Options {
        concurrency: 2,
        capture_log: false,
        ..Options::default()
    };
    let mut envoy = Envoy::start(&dir, &bootstrap, &options)?;
    let pid = envoy.pid();
    let addr = envoy.listener("main")?;
    let vms_created = |e: &Envoy| {
        e.stats()
            .ok()
            .and_then(|s| s.get("wasm.envoy.wasm.runtime.v8.created").copied())
            .unwrap_or(0)
    };
    jwks.wait_fetches("/jwks", 1, Duration::from_secs(20))?;
    std::thread::sleep(Duration::from_millis(300));
    let vms_at_start = vms_created(&envoy);
    println!(
        "soak: envoy pid {pid} (--concurrency 2), {seconds} s, {connections} connections, log {}",
        envoy.log_path().display()
    );

    let shared = Arc::new(Shared {
        tallies: Mutex::new(vec![Tally::default(); Class::ALL.len()]),
        sent: AtomicU64::new(0),
        client_errors: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        allowed,
    });
    let flapper = {
        let (j, t, s, p) = (
            Arc::clone(&jwks),
            Arc::clone(&tokens),
            Arc::clone(&stop_flap),
            Arc::clone(&phases),
        );
        std::thread::spawn(move || flap(j, t, s, p, rot0))
    };
    let start = Instant::now();
    let deadline = start + Duration::from_secs(seconds);
    let workers: Vec<_> = (0..connections)
        .map(|t| {
            let (tokens, shared) = (Arc::clone(&tokens), Arc::clone(&shared));
            std::thread::spawn(move || load(t, addr, tokens, shared, deadline, max_requests))
        })
        .collect();
    // RSS: a sample a second; the warm-up mark at a fifth of the run (at least 10 s).
    let warm_at = Duration::from_secs((seconds / 5).max(10).min(seconds));
    let mut warm: Option<u64> = None;
    let mut samples: Vec<(u64, u64)> = Vec::new();
    let mut crashed = String::new();
    while Instant::now() < deadline && !workers.iter().all(|w| w.is_finished()) {
        std::thread::sleep(Duration::from_secs(1));
        match rss_kib(pid) {
            Some(kib) => {
                samples.push((start.elapsed().as_secs(), kib));
                if warm.is_none() && start.elapsed() >= warm_at {
                    warm = Some(kib);
                }
            }
            None => {
                crashed = format!("envoy (pid {pid}) is gone");
                shared.stop.store(true, Ordering::Relaxed);
            }
        }
    }
    for w in workers {
        let _ = w.join();
    }
    let elapsed = start.elapsed().as_secs_f64();
    stop_flap.store(true, Ordering::Relaxed);
    let _ = flapper.join();
    let final_rss = rss_kib(pid);
    let warm = warm.or(samples.first().map(|s| s.1));

    let sent = shared.sent.load(Ordering::Relaxed);
    let mut crashes = 0u64;
    if !crashed.is_empty() || !envoy.running() {
        crashes += 1;
        println!("soak: CRASH: envoy is not running: {crashed}");
    }

    // One audit line per request: wait until Envoy has written them all (or stops adding).
    let mut tallies = shared
        .tallies
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let mut last = (u64::MAX, Instant::now());
    let scan = loop {
        let scan = scan_log(envoy.log_path())?;
        if scan.audits >= sent
            || (scan.audits == last.0 && last.1.elapsed() > Duration::from_secs(5))
        {
            break scan;
        }
        if scan.audits != last.0 {
            last = (scan.audits, Instant::now());
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    let (audit_lines, bad_lines) = (scan.audits, scan.bad_lines);
    for (class, reasons) in scan.by_class {
        let t = &mut tallies[class];
        for (reason, n) in reasons {
            if !shared.allowed[class].contains(&reason) {
                t.unexpected += n;
                if t.examples.len() < 5 {
                    t.examples.push(format!("audit: {n}× {reason}"));
                }
            }
            *t.audit_by_reason.entry(reason).or_default() += n;
        }
    }
    for id in scan.unknown_ids.iter().take(3) {
        println!("soak: audit line with an unknown request id: {id}");
    }
    tallies[0].unexpected += scan.unknown_ids.len() as u64;
    crashes += bad_lines.len() as u64;
    for line in bad_lines.iter().take(5) {
        println!("soak: CRASH line in the envoy log: {line}");
    }
    // Wasm failures in Envoy's stats (VM creation or reload failures, crashes).
    let stats = envoy.stats().unwrap_or_default();
    let wasm_failures: Vec<(String, u64)> = stats
        .iter()
        .filter(|(k, v)| {
            **v > 0
                && k.contains("wasm")
                && !k.starts_with("wasmcustom.")
                && (k.contains("fail")
                    || k.contains("crash")
                    || k.contains("restart")
                    || k.ends_with("vm_reload")
                    || k.ends_with("vm_reload_success"))
        })
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    for (k, v) in &wasm_failures {
        println!("soak: CRASH stat {k} = {v}");
    }
    crashes += wasm_failures.len() as u64;
    // A VM created after start is a VM that was restarted.
    let vms_at_end = vms_created(&envoy);
    if vms_at_end != vms_at_start {
        println!("soak: CRASH: wasm VMs created {vms_at_start} at start, {vms_at_end} at the end (a VM restarted)");
        crashes += 1;
    }
    let wasm_stats: Vec<String> = stats
        .iter()
        .filter(|(k, _)| k.starts_with("wasm.") || k.starts_with("wasm_"))
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let counters = envoy.actwarden_counters().unwrap_or_default();
    let log_path = envoy.log_path().to_owned();
    drop(envoy);

    // Report.
    let mut unexpected: u64 = tallies.iter().map(|t| t.unexpected).sum();
    println!(
        "soak: {:<36} {:>9}  reasons (responses) | unexpected",
        "class", "sent"
    );
    for class in Class::ALL {
        let t = &tallies[class.index()];
        let reasons: Vec<String> = t
            .by_reason
            .iter()
            .map(|(r, n)| format!("{r} {n}"))
            .collect();
        let name = format!(
            "{}{}",
            class.name(),
            if class.flapping() {
                " (jwks faults)"
            } else {
                ""
            }
        );
        println!(
            "  {:<36} {:>9}  {} | {}",
            name,
            t.sent,
            reasons.join(", "),
            t.unexpected
        );
        for e in &t.examples {
            println!("      {e}");
        }
    }
    let fetches = jwks.fetches("/jwks");
    let mut served: BTreeMap<&str, usize> = BTreeMap::new();
    for f in &fetches {
        let kind = match f.served {
            Serve::Jwks(_) => "jwks",
            Serve::Garbage(_) => "garbage",
            Serve::Status(_) => "down (503)",
            Serve::Slow(..) => "slow (1.5 s > timeout 0.5 s)",
        };
        *served.entry(kind).or_default() += 1;
    }
    println!(
        "soak: jwks server phases {:?}; fetches {:?}; counters fetch_ok {} fetch_failed {}",
        phases.lock().unwrap_or_else(|p| p.into_inner()),
        served,
        counters
            .get("actwarden.jwks.fetch_ok")
            .copied()
            .unwrap_or(0),
        counters
            .get("actwarden.jwks.fetch_failed")
            .copied()
            .unwrap_or(0)
    );
    println!(
        "soak: {sent} requests in {elapsed:.1} s ({:.0}/s), {} client errors",
        sent as f64 / elapsed.max(0.001),
        shared.client_errors.load(Ordering::Relaxed)
    );
    println!("soak: wasm stats: {}", wasm_stats.join(" "));
    if audit_lines != sent {
        println!("soak: UNEXPECTED: {audit_lines} audit lines for {sent} requests");
        unexpected += sent.abs_diff(audit_lines);
    }
    // The faults must have happened: failed fetches (slow, garbage, down) in a run long
    // enough for the schedule to reach them.
    let fetch_failed = counters
        .get("actwarden.jwks.fetch_failed")
        .copied()
        .unwrap_or(0);
    if seconds >= 30 && fetch_failed == 0 {
        println!("soak: UNEXPECTED: the JWKS server flapped but no fetch failed");
        unexpected += 1;
    }
    let mib = |kib: u64| kib as f64 / 1024.0;
    match (warm, final_rss) {
        (Some(w), Some(f)) => {
            let limit = w + w * tolerance_pct / 100 + slack_mib * 1024;
            let flat = f <= limit;
            println!(
                "soak: envoy RSS after warm-up ({} s) {:.1} MiB, final {:.1} MiB ({:+.1}%), limit {:.1} MiB (+{tolerance_pct}% +{slack_mib} MiB): {}",
                warm_at.as_secs(),
                mib(w),
                mib(f),
                (f as f64 - w as f64) * 100.0 / w.max(1) as f64,
                mib(limit),
                if flat { "flat" } else { "GROWING" }
            );
            if !flat {
                unexpected += 1;
            }
        }
        _ => {
            println!("soak: UNEXPECTED: no RSS samples");
            unexpected += 1;
        }
    }
    let summary = json!({
        "seconds": seconds, "elapsed_s": elapsed, "requests": sent, "audit_lines": audit_lines,
        "crashes": crashes, "unexpected": unexpected,
        "rate_per_s": sent as f64 / elapsed.max(0.001),
        "rss_warm_kib": warm, "rss_final_kib": final_rss, "rss_samples": samples,
        "classes": Class::ALL.iter().map(|c| {
            let t = &tallies[c.index()];
            json!({ "class": c.name(), "sent": t.sent, "reasons": t.by_reason, "audit_reasons": t.audit_by_reason, "unexpected": t.unexpected })
        }).collect::<Vec<_>>(),
        "jwks_fetches": served,
    });
    let _ = std::fs::write(
        dir.join("summary.json"),
        serde_json::to_string_pretty(&summary)?,
    );
    let ok = crashes == 0 && unexpected == 0 && sent > 0;
    // The log is large (an audit line per request): kept only when something is off.
    if ok && std::env::var_os("SOAK_KEEP_LOG").is_none() {
        let _ = std::fs::remove_file(&log_path);
    }
    println!("soak: {sent} requests, {audit_lines} audit lines, {crashes} crashes, {unexpected} unexpected");
    Ok(ok)
}

struct Scan {
    audits: u64,
    /// Per class index: reason → audit lines.
    by_class: BTreeMap<usize, BTreeMap<String, u64>>,
    unknown_ids: Vec<String>,
    bad_lines: Vec<String>,
}

/// Streams Envoy's log: audit lines by class and reason, and lines that mean a crash.
fn scan_log(path: &std::path::Path) -> Result<Scan> {
    let file = std::fs::File::open(path).map_err(|e| Error(format!("{}: {e}", path.display())))?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut scan = Scan {
        audits: 0,
        by_class: BTreeMap::new(),
        unknown_ids: Vec::new(),
        bad_lines: Vec::new(),
    };
    let mut buf = Vec::new();
    loop {
        buf.clear();
        if reader.read_until(b'\n', &mut buf)? == 0 {
            break;
        }
        let line = String::from_utf8_lossy(&buf);
        if line.contains(AUDIT_MARKER) {
            scan.audits += 1;
            let audit = parse_audit_line(&line);
            let id = audit
                .as_ref()
                .and_then(|a| a.get("request_id"))
                .and_then(Value::as_str)
                .unwrap_or("");
            let reason = audit
                .as_ref()
                .and_then(|a| a.get("reason"))
                .and_then(Value::as_str)
                .unwrap_or("?");
            match Class::of_request_id(id) {
                Some(class) => {
                    *scan
                        .by_class
                        .entry(class.index())
                        .or_default()
                        .entry(reason.to_owned())
                        .or_default() += 1;
                }
                None => scan.unknown_ids.push(id.to_owned()),
            }
            continue;
        }
        let lower = line.to_ascii_lowercase();
        if lower.contains("panic") || lower.contains("vm failed") || lower.contains("[critical]") {
            scan.bad_lines.push(line.trim_end().to_owned());
        }
    }
    Ok(scan)
}
