//! SPEC §9 end to end: the official MCP Python SDK (PyPI `mcp`, installed into `.venv` by
//! scripts/setup-envoy.sh) runs a real MCP server (streamable HTTP) on 127.0.0.1 behind
//! Envoy with the filter, and the SDK's real client talks to it through Envoy with tokens
//! minted here: initialize; tools/list filtered differently for two callers; a tool call
//! allowed and one refused (403) by an argument cap; a 401 naming the resource metadata;
//! the metadata GET answered by the gateway. Runs once with SSE answers and once with
//! JSON answers (`json_response`), so both tools/list forms are filtered.
//!
//! The server records what reaches it (`GET /_record`, asked directly): an allowed call
//! arrives with the identity headers of SPEC §5 (the filter holds the headers until the
//! body is decided, `allow_on_headers_stop_iteration`), a spoofed `x-agent-*` never
//! arrives, and a refused call never reaches it at all. A tools/list answer that cannot be
//! filtered (not JSON, over `max_response_bytes`) is a real HTTP 502.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use actwarden::mint::{public_jwks, SigningKey};
use actwarden::Alg;
use actwarden_envoy_tests::bootstrap as boot;
use actwarden_envoy_tests::envoy::{dies_with_parent, Envoy, Options};
use actwarden_envoy_tests::http::{self, Request};
use actwarden_envoy_tests::paths;
use ring::rand::SystemRandom;
use serde_json::{json, Value};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const RESOURCE: &str = "https://mcp.example.com/mcp";
const METADATA_PATH: &str = "/.well-known/oauth-protected-resource/mcp";

fn python() -> std::path::PathBuf {
    paths::repo_root().join(".venv/bin/python")
}

fn script(name: &str) -> std::path::PathBuf {
    paths::repo_root().join("host-tests/envoy/mcp").join(name)
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The Python MCP server on a free port, once it accepts connections.
fn start_server(json_response: bool) -> (Server, SocketAddr) {
    let port = free_port();
    let mut cmd = Command::new(python());
    cmd.arg(script("server.py")).arg(port.to_string());
    if json_response {
        cmd.arg("json");
    }
    cmd.stdout(Stdio::null()).stderr(Stdio::null());
    dies_with_parent(&mut cmd, None);
    let server = Server(cmd.spawn().expect("python MCP server"));
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "the MCP server did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    (server, addr)
}

fn config(key: &SigningKey) -> String {
    json!({
        "providers": { "sts": { "issuer": "https://sts.e2e", "audiences": [RESOURCE],
            "local_jwks": { "inline_string": public_jwks(&[key]).to_string() } } },
        "mcp": { "endpoints": ["/mcp"], "resource": RESOURCE, "resource_name": "Payments MCP",
                 "max_response_bytes": 8192 },
        "rules": [
            { "id": "pay", "match": { "mcp": { "methods": ["tools/call"], "names": ["create_payment"] } },
              "require": { "scopes": ["payments:write"],
                           "arguments": [{ "pointer": "/amount", "max": 1000 }] } },
            { "id": "admin", "match": { "mcp": { "methods": ["tools/call"], "names": ["admin_*"] } },
              "require": { "scopes": ["admin"] } },
            { "id": "session", "match": { "path_prefix": "/mcp" } }
        ]
    })
    .to_string()
}

fn token(key: &SigningKey, scope: &str) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = json!({ "iss": "https://sts.e2e", "sub": "user:alice", "aud": RESOURCE,
        "iat": now - 10, "exp": now + 600, "scope": scope });
    key.mint(Alg::ES256, &claims, None, &SystemRandom::new())
        .unwrap()
}

/// The SDK client through Envoy: its JSON report.
fn client(envoy: SocketAddr, token: &str) -> Value {
    let mut cmd = Command::new(python());
    cmd.arg(script("client.py"))
        .arg(format!("http://{envoy}/mcp"))
        .arg(token);
    dies_with_parent(&mut cmd, None);
    let out = cmd.output().expect("python MCP client");
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "client output is not JSON ({e}): {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn run(json_response: bool) {
    let key = SigningKey::generate(Alg::ES256, "k1", &SystemRandom::new()).unwrap();
    let (_server, upstream) = start_server(json_response);
    let wasm = paths::test_wasm().unwrap();
    let dir = paths::work_dir(if json_response { "mcp-json" } else { "mcp-sse" }).unwrap();
    let bootstrap = boot::bootstrap(
        vec![boot::actwarden_listener(
            "main",
            &wasm,
            &config(&key),
            "actwarden",
            None,
        )],
        vec![boot::cluster(boot::UPSTREAM_CLUSTER, upstream)],
    );
    let envoy = Envoy::start(&dir, &bootstrap, &Options::default()).unwrap();
    let addr = envoy.listener("main").unwrap();

    // A payments agent sees and calls create_payment within its cap; over the cap it is
    // refused before the server sees the call.
    let payer = client(addr, &token(&key, "payments:write"));
    assert_eq!(payer.get("server"), Some(&json!("payments")), "{payer}");
    assert_eq!(
        payer["tools"],
        json!(["create_payment", "get_invoice"]),
        "{payer}"
    );
    assert_eq!(payer["small"]["ok"], json!(true), "{payer}");
    assert_eq!(payer["small"]["text"], json!("paid 50.0 EUR"), "{payer}");
    // The SDK reports the gateway's 403 as an error response (the audit below has the 403).
    assert_eq!(payer["large"]["ok"], json!(false), "{payer}");

    // A reader sees neither create_payment nor admin_reset, and cannot call it.
    let reader = client(addr, &token(&key, "invoices:read"));
    assert_eq!(reader["tools"], json!(["get_invoice"]), "{reader}");
    assert_eq!(reader["small"]["ok"], json!(false), "{reader}");

    // No token: 401 naming the metadata; the metadata itself from the gateway.
    let init = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}"#;
    let mut post = Request::new("POST", "/mcp")
        .header("host", "mcp.example.com")
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream");
    post.body = init.as_bytes().to_vec();
    let r = http::send(addr, &post).unwrap();
    assert_eq!(r.status, 401, "{}", r.text());
    assert_eq!(
        r.get("www-authenticate"),
        Some("Bearer resource_metadata=\"https://mcp.example.com/.well-known/oauth-protected-resource/mcp\"")
    );
    let meta = http::send(
        addr,
        &Request::new("GET", METADATA_PATH).header("host", "mcp.example.com"),
    )
    .unwrap();
    assert_eq!(meta.status, 200, "{}", meta.text());
    let doc: Value = serde_json::from_slice(&meta.body).unwrap();
    assert_eq!(doc["resource"], RESOURCE);
    assert_eq!(doc["authorization_servers"], json!(["https://sts.e2e"]));
    assert_eq!(doc["scopes_supported"], json!(["admin", "payments:write"]));
    assert_eq!(doc["resource_name"], "Payments MCP");

    let record = record(upstream);
    // What reached the server: the payer's small call, with its identity; nothing of the
    // refused calls (the payer's large one, the reader's), not even their headers.
    let calls: Vec<&Value> = record.iter().filter(|r| r["rpc"] == "tools/call").collect();
    assert_eq!(calls.len(), 1, "{record:#?}");
    assert_eq!(
        calls[0]["agent"]["x-agent-subject"], "user:alice",
        "{record:#?}"
    );
    assert_eq!(calls[0]["agent"]["x-agent-rule"], "pay", "{record:#?}");
    assert_eq!(
        calls[0]["agent"]["x-agent-scopes"], "payments:write",
        "{record:#?}"
    );
    assert_eq!(
        calls[0]["agent"]["x-agent-issuer"], "https://sts.e2e",
        "{record:#?}"
    );
    // Every MCP message that reached it carries the identity of its caller.
    for r in record.iter().filter(|r| r["method"] == "POST") {
        assert_eq!(r["agent"]["x-agent-subject"], "user:alice", "{r}");
    }

    // Spoofed identity headers never arrive; a refused message never arrives at all.
    let raw = |mark: &str, body: &str, token: &str| {
        let mut post = Request::new("POST", "/mcp")
            .header("host", "mcp.example.com")
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("authorization", &format!("Bearer {token}"))
            .header("x-agent-subject", "admin")
            .header("x-agent-chain", "spiffe://evil.example.com/agent")
            .header("X-Agent-Rule", "pay")
            .header("x-test-mark", mark);
        post.body = body.as_bytes().to_vec();
        http::send(addr, &post).unwrap()
    };
    let payer_token = token(&key, "payments:write");
    let call = |amount: u32| {
        format!(
            r#"{{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{{"name":"create_payment","arguments":{{"amount":{amount},"currency":"EUR"}}}}}}"#
        )
    };
    // No session: the server answers 4xx itself, after recording what it got.
    let r = raw("spoofed", &call(10), &payer_token);
    assert_ne!(
        r.get("x-envoy-upstream-service-time"),
        None,
        "reached the server"
    );
    let r = raw("refused", &call(5000), &payer_token);
    assert_eq!(r.status, 403, "{}", r.text());
    let record = self::record(upstream);
    let spoofed: Vec<&Value> = record.iter().filter(|r| r["mark"] == "spoofed").collect();
    assert_eq!(spoofed.len(), 1, "{record:#?}");
    assert_eq!(
        spoofed[0]["agent"],
        json!({ "x-agent-subject": "user:alice", "x-agent-rule": "pay",
                "x-agent-scopes": "payments:write", "x-agent-issuer": "https://sts.e2e" }),
        "only the gateway's identity headers"
    );
    assert!(
        !record.iter().any(|r| r["mark"] == "refused"),
        "a refused message reached the server: {record:#?}"
    );

    // A tools/list answer that cannot be filtered is a real 502, never passed on.
    let list = r#"{"jsonrpc":"2.0","id":7,"method":"tools/list"}"#;
    for answer in ["garbage", "big"] {
        let mut post = Request::new("POST", "/mcp")
            .header("host", "mcp.example.com")
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("authorization", &format!("Bearer {payer_token}"))
            .header("x-test-answer", answer);
        post.body = list.as_bytes().to_vec();
        let r = http::send(addr, &post).unwrap();
        assert_eq!(r.status, 502, "{answer}: {}", r.text());
        assert_eq!(
            r.text(),
            r#"{"error":"tools_list_unfilterable"}"#,
            "{answer}"
        );
        assert_eq!(r.get("content-type"), Some("application/json"), "{answer}");
    }

    let refused = |audits: &[Value], reason: &str| {
        audits.iter().any(|a| {
            a["mcp_method"] == "tools/call"
                && a["mcp_name"] == "create_payment"
                && a["reason"] == reason
                && a["status"] == 403
        })
    };
    // Each caller's tools/list was allowed (and then filtered), and the two answered 502
    // (allowed, then unfilterable).
    let lists = |audits: &[Value]| {
        audits
            .iter()
            .filter(|a| a["mcp_method"] == "tools/list" && a["reason"] == "allowed")
            .count()
    };
    let audits = envoy.wait_audits(Duration::from_secs(10), |audits| {
        refused(audits, "argument_denied")
            && refused(audits, "scope_insufficient")
            && lists(audits) >= 4
    });
    assert!(refused(&audits, "argument_denied"), "{audits:?}");
    assert!(refused(&audits, "scope_insufficient"), "{audits:?}");
    assert_eq!(lists(&audits), 4, "{audits:?}");
    assert!(
        !audits.iter().any(|a| a.to_string().contains("5000")),
        "argument values never logged"
    );
}

/// What reached the MCP server so far (asked directly, not through Envoy).
fn record(upstream: SocketAddr) -> Vec<Value> {
    let r = http::get(upstream, "/_record").unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    serde_json::from_slice(&r.body).unwrap()
}

#[test]
fn the_python_sdk_through_envoy_with_sse_answers() {
    run(false);
}

#[test]
fn the_python_sdk_through_envoy_with_json_answers() {
    run(true);
}

/// Removes every `key` from a JSON document (here: the flag from the bootstrap).
fn without_key(value: &mut Value, key: &str) {
    match value {
        Value::Object(map) => {
            map.remove(key);
            map.values_mut().for_each(|v| without_key(v, key));
        }
        Value::Array(items) => items.iter_mut().for_each(|v| without_key(v, key)),
        _ => {}
    }
}

/// A host without `allow_on_headers_stop_iteration` (an older Envoy, Istio's WasmPlugin)
/// withholds the body of a request whose headers the filter holds. An MCP message then
/// never hangs silently and is never forwarded undecided: it is answered 500 after the
/// hold limit, and Envoy's log names the missing flag at critical. Header-only routes keep
/// working.
#[test]
fn without_the_flag_an_mcp_message_is_answered_500_and_the_log_names_the_fix() {
    let key = SigningKey::generate(Alg::ES256, "k1", &SystemRandom::new()).unwrap();
    let (_server, upstream) = start_server(true);
    let wasm = paths::wasm().unwrap();
    let dir = paths::work_dir("mcp-no-flag").unwrap();
    let mut bootstrap = boot::bootstrap(
        vec![boot::actwarden_listener(
            "main",
            &wasm,
            &config(&key),
            "actwarden",
            None,
        )],
        vec![boot::cluster(boot::UPSTREAM_CLUSTER, upstream)],
    );
    without_key(&mut bootstrap, "allow_on_headers_stop_iteration");
    assert!(!bootstrap
        .to_string()
        .contains("allow_on_headers_stop_iteration"));
    let envoy = Envoy::start(&dir, &bootstrap, &Options::default()).unwrap();
    let addr = envoy.listener("main").unwrap();
    let token = token(&key, "payments:write");

    let mut post = Request::new("POST", "/mcp")
        .header("host", "mcp.example.com")
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("authorization", &format!("Bearer {token}"));
    post.body = br#"{"jsonrpc":"2.0","id":7,"method":"tools/list"}"#.to_vec();
    let started = Instant::now();
    let r = http::send(addr, &post).unwrap();
    let took = started.elapsed();
    assert_eq!(r.status, 500, "{}", r.text());
    assert!(
        took >= Duration::from_secs(4) && took < Duration::from_secs(12),
        "answered after {took:?}"
    );
    let line = envoy
        .wait_log(
            "allow_on_headers_stop_iteration: true",
            0,
            Duration::from_secs(5),
        )
        .unwrap();
    assert!(line.contains("critical"), "{line}");
    assert!(
        !record(upstream).iter().any(|r| r["method"] == "POST"),
        "an undecided MCP message reached the server"
    );

    // Not an MCP message (a GET on the endpoint): decided on its headers, forwarded.
    let get = Request::new("GET", "/mcp")
        .header("host", "mcp.example.com")
        .header("accept", "text/event-stream")
        .header("authorization", &format!("Bearer {token}"));
    let r = http::send(addr, &get).unwrap();
    assert!(
        r.get("x-envoy-upstream-service-time").is_some(),
        "{} {}",
        r.status,
        r.text()
    );
    let gets: Vec<Value> = record(upstream)
        .into_iter()
        .filter(|r| r["method"] == "GET")
        .collect();
    assert_eq!(gets.len(), 1, "{gets:?}");
    assert_eq!(gets[0]["agent"]["x-agent-subject"], "user:alice");
}
