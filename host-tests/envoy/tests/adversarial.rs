//! The filter attacked through a real Envoy 1.40 (dist/actwarden.wasm: real clock, real
//! peer, no test hooks). Every test asserts the secure outcome — the decision and status,
//! what reaches the upstream, the audit line — and that Envoy still serves afterwards.
//!
//! Three groups, each sharing one Envoy so that the file stays fast:
//! - `gate` (local JWKS): spoofed identity headers in every spelling and in trailers,
//!   smuggled and doubled tokens, raw bytes in token headers, path and request-target
//!   tricks, method case, oversized tokens, HTTP/2 (h2c prior knowledge) and gRPC replies.
//! - `keys` (remote JWKS): hostile JWKS documents (10 MB, empty, private key, `oct`,
//!   duplicate `kid`, redirect), a JWKS server that never answers, bad refreshes after a
//!   good fetch, a flood of made-up `kid`s with clients hanging up while paused, and a
//!   request body that arrives while its request waits for a refetch.
//! - hostile plugin configurations (each refused; Envoy exits cleanly, never crashes).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use actwarden::api::check_json;
use actwarden::mint::{public_jwks, SigningKey};
use actwarden::Alg;
use actwarden::UnixTime;
use actwarden_envoy_tests::bootstrap as boot;
use actwarden_envoy_tests::envoy::{Envoy, Options};
use actwarden_envoy_tests::fixtures::{self, bearer_get, decide, mint, now, Decided, Via};
use actwarden_envoy_tests::http::{self, Handler, Request, Response, Server};
use actwarden_envoy_tests::paths;
use actwarden_envoy_tests::raw::{self, RawEchoServer, SilentServer};
use actwarden_envoy_tests::servers::{echoed, EchoServer, ECHO_MARK};
use ring::rand::SystemRandom;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

const ISS: &str = "https://sts.e2e";
const ALT_ISS: &str = "https://alt.e2e";
const AUD: &str = "api";
const AUDIT_WAIT: Duration = Duration::from_secs(10);

fn key(kid: &str) -> SigningKey {
    SigningKey::generate(Alg::ES256, kid, &SystemRandom::new()).unwrap()
}

fn claims(iss: &str, sub: &str, scope: &str) -> Value {
    let t = now();
    json!({ "iss": iss, "aud": AUD, "sub": sub, "sub_profile": "user",
            "scope": scope, "iat": t, "exp": t + 600 })
}

/// Runs `start` on a thread that lives as long as the test process: Envoy is started with
/// `PR_SET_PDEATHSIG`, so it must not be started by a test thread that ends before the
/// other tests sharing it.
fn shared<T: Send + 'static>(start: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("adversarial-envoy".into())
        .spawn(move || {
            let value = start();
            if tx.send(value).is_ok() {
                loop {
                    std::thread::park();
                }
            }
        })
        .unwrap();
    rx.recv().expect("the shared Envoy did not start")
}

/// `raw` request bytes: request line, `host`, the headers (bytes as given), then `tail`
/// (everything after the header block's last header: the empty line and a body).
fn raw_request(start_line: &str, headers: &[(&str, &[u8])], tail: &[u8]) -> Vec<u8> {
    let mut out = format!("{start_line}\r\n").into_bytes();
    for (name, value) in headers {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(tail);
    out
}

/// Asserts a reply is a local reply (never the upstream's).
fn assert_not_forwarded(resp: &Response, what: &str) {
    assert!(
        resp.get(ECHO_MARK).is_none(),
        "{what}: reached the upstream: HTTP {} {}",
        resp.status,
        resp.text()
    );
}

/// Every header name the upstream received that an upstream could read as an identity
/// header (`x-agent-*`, any case, `_` for `-`).
fn identity_like(headers: &[(String, String)]) -> Vec<(String, String)> {
    headers
        .iter()
        .filter(|(n, _)| {
            n.to_ascii_lowercase()
                .replace('_', "-")
                .starts_with("x-agent-")
        })
        .cloned()
        .collect()
}

// ───────────────────────────── group 1: the gate (local JWKS) ─────────────────────────────

struct Gate {
    envoy: Envoy,
    echo: EchoServer,
    raw_echo: RawEchoServer,
    corp: SigningKey,
    alt: SigningKey,
    config: String,
    addr: SocketAddr,
}

fn gate_config(corp: &SigningKey, alt: &SigningKey) -> Value {
    json!({
        "providers": {
            "corp": { "issuer": ISS, "audiences": [AUD], "algorithms": ["ES256"],
                      "local_jwks": { "inline_string": public_jwks(&[corp]).to_string() } },
            "alt": { "issuer": ALT_ISS, "audiences": [AUD], "algorithms": ["ES256"],
                     "local_jwks": { "inline_string": public_jwks(&[alt]).to_string() },
                     "from_headers": [{ "name": "x-api-token" }] }
        },
        "rules": [
            { "id": "health", "match": { "path_prefix": "/healthz" }, "allow_anonymous": true },
            { "id": "pay", "match": { "path_prefix": "/v1/payments", "methods": ["POST"] },
              "providers": ["corp"], "require": { "scopes": ["payments:write"] } },
            { "id": "read", "match": { "path_prefix": "/v1", "methods": ["GET", "HEAD"] },
              "require": { "scopes": ["invoices:read"] } },
            { "id": "raw", "match": { "path_prefix": "/raw" },
              "require": { "scopes": ["invoices:read"] } }
        ]
    })
}

fn gate() -> &'static Gate {
    static GATE: OnceLock<Gate> = OnceLock::new();
    GATE.get_or_init(|| {
        shared(|| {
            let corp = key("corp-1");
            let alt = key("alt-1");
            let config = gate_config(&corp, &alt).to_string();
            let wasm = paths::wasm().unwrap();
            let dir = paths::work_dir("adversarial-gate").unwrap();
            let echo = EchoServer::start().unwrap();
            let raw_echo = RawEchoServer::start().unwrap();
            let mut hcm = boot::http_connection_manager(
                "gate",
                vec![boot::wasm_filter(&wasm, &config, "actwarden")],
            );
            // Trailers on: HTTP/1.1 downstream trailers are parsed and forwarded (as they
            // are for gRPC over HTTP/2), so a trailer can try to smuggle an identity.
            let tc = &mut hcm["typed_config"];
            tc["http_protocol_options"] = json!({ "enable_trailers": true });
            tc["route_config"]["virtual_hosts"][0]["routes"] = json!([
                { "match": { "prefix": "/raw" }, "route": { "cluster": "raw", "timeout": "10s" } },
                { "match": { "prefix": "/" },
                  "route": { "cluster": boot::UPSTREAM_CLUSTER, "timeout": "10s" } }
            ]);
            let mut raw_cluster = boot::cluster("raw", raw_echo.addr());
            raw_cluster["typed_extension_protocol_options"] = json!({
                "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                    "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                    "explicit_http_config": { "http_protocol_options": { "enable_trailers": true } }
                }
            });
            let bootstrap = boot::bootstrap(
                vec![boot::listener("gate", hcm, None)],
                vec![boot::cluster(boot::UPSTREAM_CLUSTER, echo.addr()), raw_cluster],
            );
            let envoy = Envoy::start(&dir, &bootstrap, &Options::default()).unwrap();
            let addr = envoy.listener("gate").unwrap();
            Gate {
                envoy,
                echo,
                raw_echo,
                corp,
                alt,
                config,
                addr,
            }
        })
    })
}

impl Gate {
    fn via(&self) -> Via {
        Via::Plain(self.addr)
    }

    fn token(&self, sub: &str, scope: &str) -> String {
        mint(&self.corp, &claims(ISS, sub, scope)).unwrap()
    }

    fn decide(&self, req: Request) -> Decided {
        decide(&self.envoy, &self.via(), req).unwrap()
    }

    /// Sends raw bytes that carry `x-request-id: <id>`; returns the reply and, when the
    /// filter decided, its audit record.
    fn raw(&self, bytes: &[u8], method: &str, id: &str) -> (Response, Option<Value>) {
        let resp = raw::exchange(self.addr, bytes, method).unwrap();
        let audit = if resp.status == 400 || resp.status == 431 {
            // Envoy's own codec errors never reach the filter: no audit line to wait for.
            self.envoy.wait_audit(id, Duration::from_millis(300)).ok()
        } else {
            self.envoy.wait_audit(id, AUDIT_WAIT).ok()
        };
        (resp, audit)
    }

    /// The native decision (what the CLI prints) for a request as the filter reads it.
    fn native(&self, method: &str, path: &str, headers: Value) -> Value {
        let request = json!({ "method": method, "path": path,
                              "authority": "api.example.com", "headers": headers });
        check_json(
            &self.config,
            &request.to_string(),
            UnixTime::from_secs(now()),
            &HashMap::new(),
            &|_| Err(actwarden::FileError::NoFiles),
        )
        .unwrap()
        .1
    }

    /// Envoy is alive and still decides: a good token is allowed, a missing one refused.
    fn assert_serving(&self) {
        assert!(self.envoy.admin_get("/ready").unwrap().status == 200);
        let d = self.decide(bearer_get(
            "/v1/invoices",
            &self.token("user:alive", "invoices:read"),
        ));
        assert_eq!(d.reason(), "allowed", "{}", d.describe());
        let d = self.decide(Request::new("GET", "/v1/invoices"));
        assert_eq!(d.reason(), "token_missing", "{}", d.describe());
        assert!(self.envoy.log_grep("actwarden: panic").is_empty());
    }
}

fn assert_denied(d: &Decided, reason: &str, status: u16) {
    assert_eq!(d.reason(), reason, "{}", d.describe());
    assert_eq!(d.response.status, status, "{}", d.describe());
    assert!(
        d.upstream.is_none(),
        "denied but forwarded: {}",
        d.describe()
    );
    let body: Value = serde_json::from_slice(&d.response.body).unwrap_or(Value::Null);
    assert_eq!(body["error"], json!(reason), "{}", d.describe());
}

#[test]
fn spoofed_identity_headers_never_reach_the_upstream_in_any_spelling() {
    let g = gate();
    let long = "x".repeat(30 * 1024);
    let spoofs: Vec<(&str, &str)> = vec![
        ("x-agent-subject", "user:admin"),
        ("X-Agent-Subject", "user:admin2"),
        ("X-AGENT-ACTOR", "spiffe://prod.example.com/agent/root"),
        ("x-agent-chain", "spiffe://a,spiffe://b"),
        ("x-Agent-Scopes", "payments:write admin"),
        ("x-agent-scopes", "payments:write again"),
        ("x_agent_subject", "user:underscore"),
        ("X_Agent_Issuer", "https://evil"),
        ("x-agent_rule", "pay"),
        ("x_agent-subject-profile", "service"),
        ("x-agent-anything-else", "1"),
        ("x-agent-long", &long),
    ];
    let with_spoofs = |mut req: Request| {
        for (n, v) in &spoofs {
            req = req.header(n, v);
        }
        req
    };

    // An allow: the upstream sees exactly the filter's identity headers, once each.
    let token = g.token("user:alice", "invoices:read");
    let d = g.decide(with_spoofs(bearer_get("/v1/invoices", &token)));
    assert_eq!(d.reason(), "allowed", "{}", d.describe());
    let upstream = d.upstream.as_ref().expect("allowed but not forwarded");
    let mut got = identity_like(&upstream.headers);
    got.sort();
    let mut want: Vec<(String, String)> = [
        ("x-agent-issuer", ISS),
        ("x-agent-rule", "read"),
        ("x-agent-scopes", "invoices:read"),
        ("x-agent-subject", "user:alice"),
        ("x-agent-subject-profile", "user"),
    ]
    .iter()
    .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
    .collect();
    want.sort();
    assert_eq!(got, want, "identity headers at the upstream");
    // The native decision sets the same identity headers.
    let native = g.native(
        "GET",
        "/v1/invoices",
        json!({ "authorization": format!("Bearer {token}") }),
    );
    let mut native_headers: Vec<(String, String)> = native["headers"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
        .collect();
    native_headers.sort();
    assert_eq!(
        got, native_headers,
        "Envoy and the CLI forward different identities"
    );

    // An anonymous route: every spoof stripped, none set.
    let d = g.decide(with_spoofs(Request::new("GET", "/healthz")));
    assert_eq!(d.reason(), "allowed_anonymous", "{}", d.describe());
    let upstream = d.upstream.as_ref().expect("anonymous but not forwarded");
    assert_eq!(identity_like(&upstream.headers), vec![]);
    // The audit record never repeats a spoofed identity.
    for field in ["sub", "actor", "chain", "scopes", "iss"] {
        assert_eq!(d.audit[field], Value::Null, "{field}: {}", d.audit);
    }
    g.assert_serving();
}

#[test]
fn spoofed_identity_in_request_trailers_never_reaches_the_upstream() {
    let g = gate();
    let token = g.token("user:alice", "invoices:read");
    let id = fixtures::request_id("trailers");
    let auth = format!("Bearer {token}");
    let bytes = raw_request(
        "POST /raw/upload HTTP/1.1",
        &[
            ("host", b"api.example.com"),
            ("x-request-id", id.as_bytes()),
            ("authorization", auth.as_bytes()),
            ("transfer-encoding", b"chunked"),
            ("trailer", b"x-agent-subject"),
        ],
        b"\r\n5\r\nhello\r\n0\r\nx-agent-subject: user:admin\r\nX_Agent_Scopes: payments:write\r\nx-other-trailer: kept\r\n\r\n",
    );
    let (resp, audit) = g.raw(&bytes, "POST", &id);
    let audit = audit.expect("no audit line");
    assert_eq!(audit["reason"], "allowed", "{audit}");
    assert!(
        resp.get(ECHO_MARK).is_some(),
        "HTTP {} {}",
        resp.status,
        resp.text()
    );
    let seen = String::from_utf8_lossy(&resp.body).to_ascii_lowercase();
    // Trailers do reach this upstream (the control: the route forwards them) …
    assert!(
        seen.contains("x-other-trailer: kept"),
        "trailers not forwarded at all:\n{seen}"
    );
    // … but never one an upstream could read as an identity.
    let mut problems = Vec::new();
    if seen.contains("user:admin") || seen.contains("x_agent_scopes") {
        problems.push(format!("HTTP/1.1: spoofed trailers forwarded:\n{seen}"));
    }
    assert!(seen.contains("x-agent-subject: user:alice"), "{seen}");
    assert!(!g.raw_echo.seen().is_empty());
    // HTTP/2 request trailers (as gRPC clients send them) on the same allowed route.
    let id = fixtures::request_id("h2-trailers");
    let reply = raw::h2c_exchange(
        g.addr,
        &[
            (":method", b"POST"),
            (":scheme", b"http"),
            (":path", b"/raw/upload"),
            (":authority", b"api.example.com"),
            ("authorization", auth.as_bytes()),
            ("x-request-id", id.as_bytes()),
        ],
        b"hello",
        &[
            ("x-agent-subject", b"user:admin-h2"),
            ("x-other-trailer", b"kept"),
        ],
    )
    .unwrap();
    let audit = g.envoy.wait_audit(&id, AUDIT_WAIT).unwrap();
    assert_eq!(audit["reason"], "allowed", "{audit}");
    let seen = String::from_utf8_lossy(&reply.data).to_ascii_lowercase();
    assert!(seen.contains("x-other-trailer: kept"), "{reply:?}");
    if seen.contains("user:admin-h2") {
        problems.push(format!("HTTP/2: spoofed trailer forwarded:\n{seen}"));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    g.assert_serving();
}

#[test]
fn two_tokens_are_token_malformed_however_they_arrive() {
    let g = gate();
    let a = g.token("user:alice", "invoices:read");
    let b = g.token("user:bob", "invoices:read");
    let other = mint(&g.alt, &claims(ALT_ISS, "user:carol", "invoices:read")).unwrap();
    let cases: Vec<(&str, Request)> = vec![
        (
            "repeated authorization",
            bearer_get("/v1/invoices", &a).header("authorization", &format!("Bearer {b}")),
        ),
        (
            "repeated authorization, same token",
            bearer_get("/v1/invoices", &a).header("Authorization", &format!("Bearer {a}")),
        ),
        (
            "two tokens in one value",
            bearer_get("/v1/invoices", &format!("{a}, Bearer {b}")),
        ),
        (
            "a token and an empty element",
            bearer_get("/v1/invoices", &format!("{a},")),
        ),
        (
            "authorization and a custom from_headers",
            bearer_get("/v1/invoices", &a).header("x-api-token", &other),
        ),
        (
            "repeated custom header",
            Request::new("GET", "/v1/invoices")
                .header("x-api-token", &other)
                .header("X-Api-Token", &other),
        ),
    ];
    for (what, req) in cases {
        let d = g.decide(req);
        assert_denied(&d, "token_malformed", 401);
        assert_eq!(d.audit["sub"], Value::Null, "{what}: {}", d.describe());
    }
    g.assert_serving();
}

#[test]
fn tokens_outside_the_token_headers_are_never_read() {
    let g = gate();
    let t = g.token("user:alice", "invoices:read");
    let cases: Vec<(&str, Request)> = vec![
        (
            "cookie",
            Request::new("GET", "/v1/invoices").header("cookie", &format!("access_token={t}")),
        ),
        (
            "query",
            Request::new("GET", &format!("/v1/invoices?access_token={t}")),
        ),
        (
            "proxy-authorization",
            Request::new("GET", "/v1/invoices")
                .header("proxy-authorization", &format!("Bearer {t}")),
        ),
        (
            "x-agent-token",
            Request::new("GET", "/v1/invoices").header("x-agent-token", &t),
        ),
        (
            "basic scheme",
            Request::new("GET", "/v1/invoices").header("authorization", &format!("Basic {t}")),
        ),
        (
            "scheme glued to token",
            Request::new("GET", "/v1/invoices").header("authorization", &format!("Bearer{t}")),
        ),
        (
            "scheme with a suffix",
            Request::new("GET", "/v1/invoices").header("authorization", &format!("Bearerx {t}")),
        ),
    ];
    for (what, req) in cases {
        let d = g.decide(req);
        assert_eq!(d.reason(), "token_missing", "{what}: {}", d.describe());
        assert_eq!(d.response.status, 401, "{what}");
        assert!(d.upstream.is_none(), "{what}: forwarded");
        assert_eq!(
            d.response.get("www-authenticate"),
            Some("Bearer"),
            "{what}: {}",
            d.describe()
        );
    }
    // The scheme is matched case-insensitively and separated by spaces or a tab (SPEC §2).
    for value in [
        format!("BEARER {t}"),
        format!("bearer\t{t}"),
        format!("Bearer    {t}"),
    ] {
        let d = g.decide(Request::new("GET", "/v1/invoices").header("authorization", &value));
        assert_eq!(d.reason(), "allowed", "{value:?}: {}", d.describe());
        assert_eq!(d.upstream_header("x-agent-subject"), Some("user:alice"));
    }
    // A bare scheme is an empty token, not a missing one.
    let d = g.decide(Request::new("GET", "/v1/invoices").header("authorization", "Bearer "));
    assert_denied(&d, "token_malformed", 401);
    g.assert_serving();
}

#[test]
fn raw_bytes_in_the_token_header_are_refused_never_allowed() {
    let g = gate();
    let t = g.token("user:alice", "invoices:read");
    let (head, rest) = t.split_at(20);
    // The token with `bytes` spliced in after its 20th character.
    let spliced = |bytes: &[u8]| [head.as_bytes(), bytes, rest.as_bytes()].concat();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("non-UTF-8 byte in the token", spliced(b"\xff\xfe")),
        ("latin-1 byte", spliced(b"\xe9")),
        ("NUL byte", spliced(b"\x00")),
        ("DEL byte", spliced(b"\x7f")),
        ("vertical tab", spliced(b"\x0b")),
        ("bare CR", spliced(b"\r")),
        ("obs-fold", spliced(b"\r\n ")),
    ];
    let mut problems = Vec::new();
    for (what, token_bytes) in cases {
        let id = fixtures::request_id("bytes");
        let value = [b"Bearer ".as_slice(), &token_bytes].concat();
        let bytes = raw_request(
            "GET /v1/invoices HTTP/1.1",
            &[
                ("host", b"api.example.com"),
                ("x-request-id", id.as_bytes()),
                ("authorization", &value),
            ],
            b"\r\n",
        );
        let (resp, audit) = g.raw(&bytes, "GET", &id);
        let reason = audit.as_ref().map(|a| a["reason"].clone());
        eprintln!("{what}: HTTP {} reason {reason:?}", resp.status);
        match (audit, echoed(&resp)) {
            // Envoy refused the request itself (400): the filter never saw it.
            (None, None) if resp.status == 400 => {}
            // A malformed token, never an allow.
            (Some(a), None) if a["reason"] == "token_malformed" && resp.status == 401 => {}
            // Envoy dropped the stray byte before the filter (a bare CR): then the filter
            // allowed exactly the token the upstream received, nothing else.
            (Some(a), Some(up))
                if a["reason"] == "allowed"
                    && up.get("authorization") == Some(format!("Bearer {t}").as_str())
                    && up.get("x-agent-subject") == Some("user:alice") => {}
            (audit, up) => problems.push(format!(
                "{what}: HTTP {} audit {audit:?} upstream {:?}",
                resp.status,
                up.map(|u| u.headers)
            )),
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
    g.assert_serving();
}

#[test]
fn path_tricks_never_ride_on_the_anonymous_rule() {
    let g = gate();
    // (request target, how the filter must decide; None: Envoy itself refuses with 4xx)
    let cases: &[&str] = &[
        "/healthz/../v1/invoices",
        "/healthz/./../v1/invoices",
        "/healthz/%2e%2e/v1/invoices",
        "/healthz/%2E%2E/v1/invoices",
        "/healthz%2f..%2fv1/invoices",
        "/healthz/..;/v1/invoices",
        "/healthz;/../v1/invoices",
        "/healthz\\..\\v1\\invoices",
        "//healthz/../v1/invoices",
        "/healthz//../v1/invoices",
        "/healthz/%c0%ae%c0%ae/v1/invoices",
        "/healthz/%00/../v1/invoices",
        "/%68ealthz",
    ];
    for target in cases {
        let id = fixtures::request_id("path");
        let bytes = raw_request(
            &format!("GET {target} HTTP/1.1"),
            &[
                ("host", b"api.example.com"),
                ("x-request-id", id.as_bytes()),
            ],
            b"\r\n",
        );
        let (resp, audit) = g.raw(&bytes, "GET", &id);
        assert_not_forwarded(&resp, target);
        match audit {
            Some(audit) => {
                assert_eq!(audit["reason"], "route_denied", "{target}: {audit}");
                assert_eq!(resp.status, 403, "{target}");
            }
            None => assert!(
                (400..500).contains(&resp.status),
                "{target}: no decision and HTTP {}",
                resp.status
            ),
        }
    }
    // A double-encoded dot-segment is not a dot-segment (`%25` is `%`): allowed on the
    // anonymous rule, and Envoy forwards it byte for byte (no decoding that would turn it
    // into `%2e%2e` … or `..` for an upstream that decodes twice).
    let id = fixtures::request_id("double");
    let target = "/healthz/%252e%252e/v1/invoices";
    let bytes = raw_request(
        &format!("GET {target} HTTP/1.1"),
        &[
            ("host", b"api.example.com"),
            ("x-request-id", id.as_bytes()),
        ],
        b"\r\n",
    );
    let (resp, audit) = g.raw(&bytes, "GET", &id);
    assert_eq!(audit.unwrap()["reason"], "allowed_anonymous");
    assert_eq!(echoed(&resp).unwrap().path, target);

    // A fragment: whatever Envoy does with it, no `..` reaches the upstream unchecked.
    let id = fixtures::request_id("fragment");
    let bytes = raw_request(
        "GET /healthz#/../v1/invoices HTTP/1.1",
        &[
            ("host", b"api.example.com"),
            ("x-request-id", id.as_bytes()),
        ],
        b"\r\n",
    );
    let (resp, _) = g.raw(&bytes, "GET", &id);
    if let Some(up) = echoed(&resp) {
        assert_eq!(up.path, "/healthz", "fragment forwarded: {}", up.path);
    }
    g.assert_serving();
}

#[test]
fn odd_request_targets_and_methods() {
    let g = gate();
    let read = g.token("user:alice", "invoices:read");
    let auth = format!("Bearer {read}");

    // Absolute-form: the filter sees the origin-form path and the authority of the URI.
    let id = fixtures::request_id("absolute");
    let bytes = raw_request(
        "POST http://api.example.com/v1/payments HTTP/1.1",
        &[
            ("host", b"api.example.com"),
            ("x-request-id", id.as_bytes()),
            ("authorization", auth.as_bytes()),
            ("content-length", b"0"),
        ],
        b"\r\n",
    );
    let (resp, audit) = g.raw(&bytes, "POST", &id);
    let audit = audit.expect("absolute-form: no decision");
    assert_eq!(audit["path"], "/v1/payments", "{audit}");
    assert_eq!(audit["reason"], "scope_insufficient", "{audit}");
    assert_eq!(resp.status, 403);
    assert_not_forwarded(&resp, "absolute-form");

    // Absolute-form with a dot-segment after an anonymous prefix.
    let id = fixtures::request_id("absolute-dots");
    let bytes = raw_request(
        "GET http://api.example.com/healthz/../v1/invoices HTTP/1.1",
        &[
            ("host", b"api.example.com"),
            ("x-request-id", id.as_bytes()),
        ],
        b"\r\n",
    );
    let (resp, audit) = g.raw(&bytes, "GET", &id);
    assert_not_forwarded(&resp, "absolute-form dots");
    if let Some(audit) = audit {
        assert_eq!(audit["reason"], "route_denied", "{audit}");
    }

    // Neither `OPTIONS *` nor CONNECT reaches the upstream without a decision.
    for (start, method) in [
        ("OPTIONS * HTTP/1.1", "OPTIONS"),
        ("CONNECT api.example.com:443 HTTP/1.1", "CONNECT"),
    ] {
        let id = fixtures::request_id("odd");
        let bytes = raw_request(
            start,
            &[
                ("host", b"api.example.com"),
                ("x-request-id", id.as_bytes()),
                ("x-agent-subject", b"user:admin"),
            ],
            b"\r\n",
        );
        let (resp, audit) = g.raw(&bytes, method, &id);
        assert_not_forwarded(&resp, start);
        assert!(resp.status >= 400, "{start}: HTTP {}", resp.status);
        if let Some(audit) = audit {
            assert_eq!(audit["decision"], "deny", "{start}: {audit}");
        }
    }

    // HEAD: decided like GET (the rule lists it), no body in the deny.
    let d = g.decide(Request::new("HEAD", "/v1/invoices"));
    assert_eq!(d.reason(), "token_missing", "{}", d.describe());
    assert_eq!(d.response.status, 401);
    assert!(d.response.body.is_empty());
    let d = g.decide(bearer_get("/v1/invoices", &read).clone_with_method("HEAD"));
    assert_eq!(d.reason(), "allowed", "{}", d.describe());

    // Method names are case-sensitive (RFC 9110 §9.1): `post` is not `POST`. A token
    // without payments:write must not reach /v1/payments with any spelling of POST.
    for method in ["post", "Post", "pOST", "P\u{d3}ST"] {
        let id = fixtures::request_id("method");
        let bytes = raw_request(
            &format!("{method} /v1/payments HTTP/1.1"),
            &[
                ("host", b"api.example.com"),
                ("x-request-id", id.as_bytes()),
                ("authorization", auth.as_bytes()),
                ("content-length", b"2"),
            ],
            b"\r\n{}",
        );
        let (resp, audit) = g.raw(&bytes, "POST", &id);
        assert_not_forwarded(&resp, method);
        match audit {
            Some(a) => assert_eq!(a["decision"], "deny", "{method}: {a}"),
            None => assert_eq!(resp.status, 400, "{method}: HTTP {}", resp.status),
        }
    }
    g.assert_serving();
}

trait WithMethod {
    fn clone_with_method(&self, method: &str) -> Request;
}

impl WithMethod for Request {
    fn clone_with_method(&self, method: &str) -> Request {
        Request {
            method: method.to_owned(),
            ..self.clone()
        }
    }
}

#[test]
fn oversized_tokens_are_refused_before_any_verification() {
    let g = gate();
    // Thousands of scopes in a token just under 16 KiB: decided as the CLI decides, never
    // allowed with an unbounded scope list.
    let scopes: Vec<String> = (0..1800).map(|i| format!("s{i}")).collect();
    let scope = format!("invoices:read {}", scopes.join(" "));
    let big = mint(&g.corp, &claims(ISS, "user:alice", &scope)).unwrap();
    assert!(
        big.len() > 12 * 1024 && big.len() < 16 * 1024,
        "{}",
        big.len()
    );
    let d = g.decide(bearer_get("/v1/invoices", &big));
    let native = g.native(
        "GET",
        "/v1/invoices",
        json!({ "authorization": format!("Bearer {big}") }),
    );
    assert_eq!(d.audit["reason"], native["reason"], "{}", d.describe());
    if d.allowed() {
        let forwarded = d.upstream_header("x-agent-scopes").unwrap_or_default();
        assert!(
            forwarded.split(' ').count() <= 256,
            "{} scopes forwarded",
            forwarded.split(' ').count()
        );
    } else {
        assert!(d.upstream.is_none());
    }

    // Over 16 KiB: token_too_large.
    let scope = format!("invoices:read {}", "x".repeat(13 * 1024));
    let huge = mint(&g.corp, &claims(ISS, "user:alice", &scope)).unwrap();
    assert!(huge.len() > 16 * 1024);
    assert_denied(
        &g.decide(bearer_get("/v1/invoices", &huge)),
        "token_too_large",
        401,
    );

    // Over the listener's header limit (96 KiB): Envoy's 431, never forwarded.
    let id = fixtures::request_id("431");
    let auth = format!("Bearer {}", "a".repeat(100 * 1024));
    let bytes = raw_request(
        "GET /v1/invoices HTTP/1.1",
        &[
            ("host", b"api.example.com"),
            ("x-request-id", id.as_bytes()),
            ("authorization", auth.as_bytes()),
        ],
        b"\r\n",
    );
    let (resp, _) = g.raw(&bytes, "GET", &id);
    assert_eq!(resp.status, 431, "{}", resp.text());
    g.assert_serving();
}

#[test]
fn many_distinct_valid_tokens_keep_being_decided() {
    let g = gate();
    let before = g.echo.count();
    // 400 distinct tokens over 8 connections at once: every one allowed with its own
    // identity (the cache holds tokens by hash, never mixes them up).
    let tokens: Vec<(String, String)> = (0..400)
        .map(|i| {
            let sub = format!("user:u{i}");
            (sub.clone(), g.token(&sub, "invoices:read"))
        })
        .collect();
    let tokens = Arc::new(tokens);
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let workers: Vec<_> = (0..8)
        .map(|w| {
            let tokens = Arc::clone(&tokens);
            let failures = Arc::clone(&failures);
            let addr = g.addr;
            std::thread::spawn(move || {
                for (sub, token) in tokens.iter().skip(w).step_by(8) {
                    let req = bearer_get("/v1/invoices", token).header("host", "api.example.com");
                    match http::send(addr, &req) {
                        Ok(resp) => match echoed(&resp) {
                            Some(up) if up.get("x-agent-subject") == Some(sub.as_str()) => {}
                            other => failures
                                .lock()
                                .unwrap()
                                .push(format!("{sub}: HTTP {} {:?}", resp.status, other)),
                        },
                        Err(e) => failures.lock().unwrap().push(format!("{sub}: {e}")),
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let failures = failures.lock().unwrap();
    assert!(
        failures.is_empty(),
        "{} failures: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert!(g.echo.count() >= before + 400);
    g.assert_serving();
}

#[test]
fn grpc_denials_are_grpc_replies_over_http1_and_http2() {
    let g = gate();
    let read = g.token("user:alice", "invoices:read");
    // HTTP/1.1: HTTP 200 with grpc-status (16 for 401, 7 for 403) and grpc-message.
    for (req, reason, grpc) in [
        (Request::new("POST", "/v1/payments"), "token_missing", "16"),
        (
            bearer_get("/v1/payments", &read).clone_with_method("POST"),
            "scope_insufficient",
            "7",
        ),
        (
            bearer_get("/v1/payments", "x.y.z").clone_with_method("POST"),
            "token_malformed",
            "16",
        ),
    ] {
        let d = g.decide(Request {
            body: vec![0, 0, 0, 0, 0],
            ..req
                .header("content-type", "application/grpc+proto")
                .header("te", "trailers")
        });
        assert_eq!(d.reason(), reason, "{}", d.describe());
        assert_eq!(d.response.status, 200, "{}", d.describe());
        assert_eq!(
            d.response.get("grpc-status"),
            Some(grpc),
            "{:?}",
            d.response.headers
        );
        assert_eq!(
            d.response.get("grpc-message"),
            Some(reason),
            "{:?}",
            d.response.headers
        );
        assert_eq!(
            d.response.get_all("grpc-status").len(),
            1,
            "{:?}",
            d.response.headers
        );
        assert!(d.upstream.is_none());
    }
    // HTTP/2 (h2c prior knowledge): a trailers-only reply, nothing forwarded.
    let id = fixtures::request_id("h2-grpc");
    let reply = raw::h2c_exchange(
        g.addr,
        &[
            (":method", b"POST"),
            (":scheme", b"http"),
            (":path", b"/v1/payments"),
            (":authority", b"api.example.com"),
            ("content-type", b"application/grpc"),
            ("te", b"trailers"),
            ("x-request-id", id.as_bytes()),
        ],
        &[0, 0, 0, 0, 0],
        &[],
    )
    .unwrap();
    let audit = g.envoy.wait_audit(&id, AUDIT_WAIT).unwrap();
    assert_eq!(audit["reason"], "token_missing", "{audit}");
    assert!(reply.trailers_only, "{reply:?}");
    assert!(reply.data.is_empty(), "{reply:?}");
    assert!(g.echo.received(&id).is_empty());
    g.assert_serving();
}

#[test]
fn http2_requests_are_seen_and_stripped_like_http1() {
    let g = gate();
    let t = g.token("user:alice", "invoices:read");
    let auth = format!("Bearer {t}");
    let h2 = |path: &str, extra: &[(&str, &[u8])]| {
        let id = fixtures::request_id("h2");
        let mut headers: Vec<(&str, &[u8])> = vec![
            (":method", b"GET"),
            (":scheme", b"http"),
            (":path", path.as_bytes()),
            (":authority", b"api.example.com"),
            ("x-request-id", id.as_bytes()),
        ];
        headers.extend_from_slice(extra);
        let reply = raw::h2c_exchange(g.addr, &headers, &[], &[]).unwrap();
        let audit = g.envoy.wait_audit(&id, AUDIT_WAIT).unwrap();
        (reply, audit, g.echo.received(&id))
    };
    // Allowed, with spoofs in every spelling HTTP/2 allows (names are lower case there).
    let (reply, audit, seen) = h2(
        "/v1/invoices",
        &[
            ("authorization", auth.as_bytes()),
            ("x-agent-subject", b"user:admin"),
            ("x_agent_subject", b"user:admin"),
            ("x-agent-actor", b"spiffe://evil"),
            ("x-agent-subject", b"user:admin-again"),
        ],
    );
    assert_eq!(audit["reason"], "allowed", "{audit}");
    assert_eq!(audit["path"], "/v1/invoices");
    assert_eq!(audit["authority"], "api.example.com");
    assert_eq!(seen.len(), 1, "{reply:?}");
    let mut ids = identity_like(&seen[0].headers);
    ids.sort();
    let names: Vec<&str> = ids.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "x-agent-issuer",
            "x-agent-rule",
            "x-agent-scopes",
            "x-agent-subject",
            "x-agent-subject-profile"
        ]
    );
    assert_eq!(seen[0].get("x-agent-subject"), Some("user:alice"));
    // Two authorization fields (HTTP/2 keeps them apart): one identity too many.
    let (reply, audit, seen) = h2(
        "/v1/invoices",
        &[
            ("authorization", auth.as_bytes()),
            ("authorization", auth.as_bytes()),
        ],
    );
    assert_eq!(audit["reason"], "token_malformed", "{audit}");
    assert!(seen.is_empty(), "{reply:?}");
    // A cookie split over several fields is still not a token source.
    let cookie = format!("access_token={t}");
    let (_, audit, seen) = h2(
        "/v1/invoices",
        &[("cookie", b"a=1"), ("cookie", cookie.as_bytes())],
    );
    assert_eq!(audit["reason"], "token_missing", "{audit}");
    assert!(seen.is_empty());
    // Dot-segments in :path.
    let (_, audit, seen) = h2("/healthz/../v1/invoices", &[]);
    assert_eq!(audit["reason"], "route_denied", "{audit}");
    assert!(seen.is_empty());
    g.assert_serving();
}

// ──────────────────────────── group 2: keys (remote JWKS) ────────────────────────────

/// A JWKS server: per path a document, and a delay for every answer after the first
/// (a slow refetch, so that a request paused for it stays paused long enough to probe).
struct SlowJwks {
    server: Server,
    state: Arc<Mutex<HashMap<String, (Response, Duration)>>>,
    fetches: Arc<Mutex<Vec<(String, Instant)>>>,
}

impl SlowJwks {
    fn start() -> SlowJwks {
        let state: Arc<Mutex<HashMap<String, (Response, Duration)>>> = Arc::default();
        let fetches: Arc<Mutex<Vec<(String, Instant)>>> = Arc::default();
        let (state2, fetches2) = (Arc::clone(&state), Arc::clone(&fetches));
        let handler: Handler = Arc::new(move |req: &Request| {
            let earlier = {
                let mut f = fetches2.lock().unwrap();
                let earlier = f.iter().filter(|(p, _)| *p == req.path).count();
                f.push((req.path.clone(), Instant::now()));
                earlier
            };
            let (resp, delay) = state2
                .lock()
                .unwrap()
                .get(&req.path)
                .cloned()
                .unwrap_or((Response::new(404, "text/plain", ""), Duration::ZERO));
            if earlier > 0 {
                std::thread::sleep(delay);
            }
            resp
        });
        SlowJwks {
            server: Server::start("slow-jwks", handler).unwrap(),
            state,
            fetches,
        }
    }

    fn set(&self, path: &str, resp: Response, refetch_delay: Duration) {
        self.state
            .lock()
            .unwrap()
            .insert(path.to_owned(), (resp, refetch_delay));
    }

    fn count(&self, path: &str) -> usize {
        self.fetches
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _)| p == path)
            .count()
    }
}

fn jwks_doc(keys: &[&SigningKey]) -> Response {
    Response::new(200, "application/json", public_jwks(keys).to_string())
}

struct Keys {
    envoy: Envoy,
    echo: EchoServer,
    jwks: SlowJwks,
    silent: SilentServer,
    addr: SocketAddr,
    /// Keys published by the providers that have good documents, by provider.
    good: HashMap<&'static str, SigningKey>,
    /// Keys no provider publishes at first.
    extra: HashMap<&'static str, SigningKey>,
}

/// (provider, cache_duration_s, timeout_ms, uses the silent server)
const KEY_PROVIDERS: &[(&str, u64, u64, bool)] = &[
    ("big", 300, 2000, false),
    ("empty", 300, 1000, false),
    ("private", 300, 1000, false),
    ("oct", 300, 1000, false),
    ("dupkid", 300, 1000, false),
    ("redirect", 300, 1000, false),
    ("slow", 300, 400, true),
    ("rotbad", 1, 1000, false),
    ("flood", 300, 3000, false),
    ("pdeny", 300, 3000, false),
    ("pallow", 300, 3000, false),
];

fn iss_of(provider: &str) -> String {
    format!("https://{provider}.e2e")
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        shared(|| {
            let wasm = paths::wasm().unwrap();
            let dir = paths::work_dir("adversarial-keys").unwrap();
            let echo = EchoServer::start().unwrap();
            let jwks = SlowJwks::start();
            let silent = SilentServer::start().unwrap();
            let mut good = HashMap::new();
            for name in ["rotbad", "flood", "pdeny", "pallow"] {
                good.insert(name, key(&format!("{name}-1")));
            }
            let mut extra = HashMap::new();
            extra.insert("pallow-new", key("pallow-2"));
            extra.insert("private", key("private-1"));
            let refetch = Duration::from_millis(700);
            for name in ["rotbad", "flood", "pdeny", "pallow"] {
                jwks.set(&format!("/{name}"), jwks_doc(&[&good[name]]), refetch);
            }
            // 10 MB of JSON that is not a JWKS.
            let big = format!("{{\"keys\":[],\"pad\":\"{}\"}}", "A".repeat(10 << 20));
            jwks.set("/big", Response::new(200, "application/json", big), Duration::ZERO);
            jwks.set("/empty", Response::new(200, "application/json", r#"{"keys":[]}"#), Duration::ZERO);
            let private = json!({ "keys": [extra["private"].private_jwk()] });
            jwks.set("/private", Response::new(200, "application/json", private.to_string()), Duration::ZERO);
            let oct = json!({ "keys": [{ "kty": "oct", "kid": "h1", "alg": "HS256",
                                         "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA" }] });
            jwks.set("/oct", Response::new(200, "application/json", oct.to_string()), Duration::ZERO);
            let a = key("dup");
            let b = key("dup");
            jwks.set("/dupkid", jwks_doc(&[&a, &b]), Duration::ZERO);
            let mut redirect = Response::new(302, "text/plain", "");
            redirect.headers.push(("location".into(), "http://sts.e2e/rotbad".into()));
            jwks.set("/redirect", redirect, Duration::ZERO);

            let providers: serde_json::Map<String, Value> = KEY_PROVIDERS
                .iter()
                .map(|(name, cache, timeout, silent)| {
                    let cluster = if *silent { "silent" } else { "jwks" };
                    (
                        (*name).to_owned(),
                        json!({ "issuer": iss_of(name), "audiences": [AUD], "algorithms": ["ES256"],
                                "remote_jwks": {
                                    "http_uri": { "uri": format!("http://sts.e2e/{name}"),
                                                  "cluster": cluster, "timeout_ms": timeout },
                                    "cache_duration_s": cache, "max_stale_s": 3600 } }),
                    )
                })
                .collect();
            let config = json!({
                "providers": providers,
                "rules": [{ "id": "any", "match": { "path_prefix": "/" } }]
            });
            let bootstrap = boot::bootstrap(
                vec![boot::actwarden_listener("keys", &wasm, &config.to_string(), "actwarden", None)],
                vec![
                    boot::cluster(boot::UPSTREAM_CLUSTER, echo.addr()),
                    boot::cluster("jwks", jwks.server.addr()),
                    boot::cluster("silent", silent.addr()),
                ],
            );
            let envoy = Envoy::start(&dir, &bootstrap, &Options::default()).unwrap();
            let addr = envoy.listener("keys").unwrap();
            Keys {
                envoy,
                echo,
                jwks,
                silent,
                addr,
                good,
                extra,
            }
        })
    })
}

impl Keys {
    fn token(&self, provider: &str, key: &SigningKey, sub: &str) -> String {
        mint(key, &claims(&iss_of(provider), sub, "invoices:read")).unwrap()
    }

    fn decide(&self, req: Request) -> Decided {
        decide(&self.envoy, &Via::Plain(self.addr), req).unwrap()
    }

    fn wait_log(&self, needle: &str, timeout: Duration) -> String {
        self.envoy.wait_log(needle, 0, timeout).unwrap()
    }

    /// Waits until a good token of `provider` is allowed on every worker.
    fn wait_allowed(&self, provider: &str) {
        let token = self.token(provider, &self.good[provider], "user:alice");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if (0..4).all(|_| self.decide(bearer_get("/v1/x", &token)).allowed()) {
                return;
            }
            assert!(Instant::now() < deadline, "{provider}: keys never usable");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn assert_serving(&self) {
        assert_eq!(self.envoy.admin_get("/ready").unwrap().status, 200);
        let token = self.token("flood", &self.good["flood"], "user:alive");
        let d = self.decide(bearer_get("/v1/x", &token));
        assert_eq!(d.reason(), "allowed", "{}", d.describe());
        assert!(self.envoy.log_grep("actwarden: panic").is_empty());
    }
}

#[test]
fn hostile_jwks_documents_never_become_keys() {
    let k = keys();
    let signer = key("any");
    for (provider, why) in [
        ("big", "the document is"),
        ("empty", "not a valid jwks"),
        ("private", "not a valid jwks"),
        ("oct", "not a valid jwks"),
        ("dupkid", "not a valid jwks"),
        ("redirect", "http status 302"),
    ] {
        let line = k.wait_log(
            &format!("actwarden: jwks {provider} fetch failed"),
            Duration::from_secs(10),
        );
        assert!(
            line.contains(why) || provider == "big",
            "{provider}: {line}"
        );
        assert!(
            line.contains("no keys yet: jwks_unavailable"),
            "{provider}: {line}"
        );
        // A token — even one signed by the private key the document leaked — is 503.
        let signer = if provider == "private" {
            &k.extra["private"]
        } else {
            &signer
        };
        let d = k.decide(bearer_get(
            "/v1/x",
            &k.token(provider, signer, "user:alice"),
        ));
        assert_denied(&d, "jwks_unavailable", 503);
        assert_eq!(d.audit["provider"], json!(provider), "{}", d.describe());
    }
    // The 10 MB answer was not followed by a retry storm, and the redirect not followed.
    assert!(
        k.jwks.count("/big") <= 2,
        "{} fetches of /big",
        k.jwks.count("/big")
    );
    assert!(k.envoy.counter("actwarden.jwks.fetch_failed").unwrap() >= 6);
    k.assert_serving();
}

#[test]
fn grpc_jwks_unavailable_is_grpc_status_14() {
    let k = keys();
    k.wait_log(
        "actwarden: jwks empty fetch failed",
        Duration::from_secs(10),
    );
    let token = k.token("empty", &key("e"), "user:alice");
    let d = k.decide(Request {
        body: vec![0, 0, 0, 0, 0],
        ..bearer_get("/pkg.Service/Method", &token)
            .clone_with_method("POST")
            .header("content-type", "application/grpc")
    });
    assert_eq!(d.reason(), "jwks_unavailable", "{}", d.describe());
    assert_eq!(d.response.status, 200);
    assert_eq!(
        d.response.get("grpc-status"),
        Some("14"),
        "{:?}",
        d.response.headers
    );
    assert_eq!(d.response.get("grpc-message"), Some("jwks_unavailable"));
    assert!(d.upstream.is_none());
}

#[test]
fn a_jwks_server_that_never_answers_costs_at_most_timeout_ms() {
    let k = keys();
    let line = k.wait_log("actwarden: jwks slow fetch failed", Duration::from_secs(10));
    // Envoy's async client reports its own timeout as a 504.
    assert!(
        line.contains("no response") || line.contains("http status 504"),
        "{line}"
    );
    assert!(
        k.silent.accepted() >= 1,
        "the fetch never reached the silent server"
    );
    // Decided (not left hanging on the silent server): speed is for `make bench`, not
    // for assertions here.
    let d = k.decide(bearer_get(
        "/v1/x",
        &k.token("slow", &key("s"), "user:alice"),
    ));
    assert_denied(&d, "jwks_unavailable", 503);
    k.assert_serving();
}

#[test]
fn bad_refreshes_keep_the_last_good_keys() {
    let k = keys();
    k.wait_allowed("rotbad");
    let token = k.token("rotbad", &k.good["rotbad"], "user:alice");
    let leaked = k.extra["private"].private_jwk();
    let bad: Vec<(&str, Response)> = vec![
        (
            "empty",
            Response::new(200, "application/json", r#"{"keys":[]}"#),
        ),
        (
            "private",
            Response::new(
                200,
                "application/json",
                json!({ "keys": [leaked] }).to_string(),
            ),
        ),
        (
            "oct",
            Response::new(
                200,
                "application/json",
                r#"{"keys":[{"kty":"oct","kid":"rotbad-1","alg":"HS256","k":"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0"}]}"#,
            ),
        ),
        ("redirect", Response::new(302, "text/plain", "")),
    ];
    for (what, doc) in bad {
        let mark = k.envoy.log_len();
        let fetched = k.jwks.count("/rotbad");
        k.jwks.set("/rotbad", doc, Duration::ZERO);
        k.envoy
            .wait_log(
                "actwarden: jwks rotbad fetch failed",
                mark,
                Duration::from_secs(5),
            )
            .unwrap();
        assert!(k.jwks.count("/rotbad") > fetched);
        for _ in 0..4 {
            let d = k.decide(bearer_get("/v1/x", &token));
            assert_eq!(
                d.reason(),
                "allowed",
                "after a bad refresh ({what}): {}",
                d.describe()
            );
        }
        // The leaked private key never verifies anything.
        let forged = k.token("rotbad", &k.extra["private"], "user:mallory");
        let d = k.decide(bearer_get("/v1/x", &forged));
        assert!(!d.allowed(), "{what}: {}", d.describe());
    }
    k.assert_serving();
}

#[test]
fn a_flood_of_unknown_kids_pauses_no_one_for_long_and_refetches_once() {
    let k = keys();
    k.wait_allowed("flood");
    let fetched = k.jwks.count("/flood");
    let good = k.token("flood", &k.good["flood"], "user:alice");
    let addr = k.addr;
    // 24 clients × 6 requests with made-up kids; every other client hangs up at once,
    // while its request is paused for the refetch.
    let clients: Vec<_> = (0..24)
        .map(|c| {
            let attacker = key(&format!("made-up-{c}"));
            let token = k.token("flood", &attacker, "user:mallory");
            std::thread::spawn(move || {
                let mut statuses = Vec::new();
                for i in 0..6 {
                    let req = raw_request(
                        "GET /v1/x HTTP/1.1",
                        &[
                            ("host", b"api.example.com"),
                            ("authorization", format!("Bearer {token}").as_bytes()),
                            ("x-agent-subject", b"user:admin"),
                            ("x-request-id", format!("flood-{c}-{i}").as_bytes()),
                        ],
                        b"\r\n",
                    );
                    if c % 2 == 0 {
                        raw::send_and_close(addr, &req).unwrap();
                    } else {
                        let resp = raw::exchange(addr, &req, "GET").unwrap();
                        statuses.push((resp.status, resp.get(ECHO_MARK).is_some()));
                    }
                }
                statuses
            })
        })
        .collect();
    // Meanwhile a good token is decided at once, again and again.
    for _ in 0..10 {
        let d = k.decide(bearer_get("/v1/x", &good));
        assert_eq!(d.reason(), "allowed", "{}", d.describe());
    }
    for c in clients {
        for (status, forwarded) in c.join().unwrap() {
            assert_eq!(status, 401);
            assert!(!forwarded);
        }
    }
    // At most one refetch for the whole flood (SPEC §8: one per provider per 30 s).
    assert!(
        k.jwks.count("/flood") <= fetched + 1,
        "{} refetches during the flood",
        k.jwks.count("/flood") - fetched
    );
    // Every answered flood request (the odd clients') was decided kid_unknown: wait for
    // each audit line, since Envoy's log may trail its replies on a loaded machine.
    for c in (1..24).step_by(2) {
        for i in 0..6 {
            let audit = k
                .envoy
                .wait_audit(&format!("flood-{c}-{i}"), AUDIT_WAIT)
                .unwrap();
            assert_eq!(audit["reason"], "kid_unknown", "{audit}");
        }
    }
    // Requests of clients that hung up are decided kid_unknown too, or never decided.
    let audits = k.envoy.audits();
    assert!(audits
        .iter()
        .filter(|a| a["request_id"]
            .as_str()
            .is_some_and(|r| r.starts_with("flood-")))
        .all(|a| a["reason"] == "kid_unknown"));
    k.assert_serving();
}

#[test]
fn a_body_arriving_while_the_request_waits_does_not_release_it() {
    let k = keys();
    k.wait_allowed("pdeny");
    let forged = k.token("pdeny", &key("pdeny-evil"), "user:mallory");
    let id = fixtures::request_id("paused-body");
    let head = raw_request(
        "POST /v1/transfer HTTP/1.1",
        &[
            ("host", b"api.example.com"),
            ("authorization", format!("Bearer {forged}").as_bytes()),
            ("x-agent-subject", b"user:admin"),
            ("x-request-id", id.as_bytes()),
            ("transfer-encoding", b"chunked"),
        ],
        b"\r\n",
    );
    // Headers first; the body and its trailers while the request waits for the refetch
    // (the JWKS server answers refetches after 700 ms).
    let resp = raw::exchange_parts(
        k.addr,
        &[
            &head,
            b"8\r\n{\"a\":10}\r\n",
            b"0\r\nx-agent-actor: spiffe://evil\r\n\r\n",
        ],
        Duration::from_millis(150),
        "POST",
    )
    .unwrap();
    assert_eq!(resp.status, 401, "{}", resp.text());
    assert_not_forwarded(&resp, "paused request with a body");
    let audit = k.envoy.wait_audit(&id, AUDIT_WAIT).unwrap();
    assert_eq!(audit["reason"], "kid_unknown", "{audit}");
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        k.echo.received(&id).is_empty(),
        "the upstream saw the paused request"
    );
    k.assert_serving();
}

#[test]
fn a_paused_request_allowed_after_the_refetch_carries_only_the_filters_identity() {
    let k = keys();
    k.wait_allowed("pallow");
    // The new key is published now; the first token signed with it waits for the refetch.
    let new_key = &k.extra["pallow-new"];
    k.jwks.set(
        "/pallow",
        jwks_doc(&[&k.good["pallow"], new_key]),
        Duration::from_millis(700),
    );
    let token = k.token("pallow", new_key, "user:alice");
    let id = fixtures::request_id("paused-allow");
    let head = raw_request(
        "POST /v1/transfer HTTP/1.1",
        &[
            ("host", b"api.example.com"),
            ("authorization", format!("Bearer {token}").as_bytes()),
            ("x-agent-subject", b"user:admin"),
            ("X_Agent_Actor", b"spiffe://evil"),
            ("x-request-id", id.as_bytes()),
            ("content-length", b"8"),
        ],
        b"\r\n",
    );
    let started = Instant::now();
    let resp = raw::exchange_parts(
        k.addr,
        &[&head, b"{\"a\":10}"],
        Duration::from_millis(150),
        "POST",
    )
    .unwrap();
    let waited = started.elapsed();
    let audit = k.envoy.wait_audit(&id, AUDIT_WAIT).unwrap();
    assert_eq!(audit["reason"], "allowed", "{audit}");
    assert!(
        waited >= Duration::from_millis(500),
        "did not wait for the refetch: {waited:?}"
    );
    let up = echoed(&resp).expect("allowed but not forwarded");
    let mut ids = identity_like(&up.headers);
    ids.sort();
    assert_eq!(
        ids,
        vec![
            ("x-agent-issuer".to_owned(), iss_of("pallow")),
            ("x-agent-rule".to_owned(), "any".to_owned()),
            ("x-agent-scopes".to_owned(), "invoices:read".to_owned()),
            ("x-agent-subject".to_owned(), "user:alice".to_owned()),
            ("x-agent-subject-profile".to_owned(), "user".to_owned()),
        ]
    );
    let got = k.echo.received(&id);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body, b"{\"a\":10}");
    k.assert_serving();
}

// ─────────────────────────── group 3: hostile configurations ───────────────────────────

#[test]
fn hostile_plugin_configurations_are_refused_and_envoy_exits_cleanly() {
    let k1 = key("k1");
    let base = json!({
        "providers": { "sts": { "issuer": ISS, "audiences": [AUD],
            "local_jwks": { "inline_string": public_jwks(&[&k1]).to_string() } } },
        "rules": [{ "id": "r", "match": { "path_prefix": "/" } }]
    });
    let text = base.to_string();
    let open = text.strip_suffix('}').unwrap().to_owned();
    let mut null = base.clone();
    null["on_no_match"] = Value::Null;
    let mut null_audience = base.clone();
    null_audience["providers"]["sts"]["audiences"] = json!([null]);
    refuse_all(vec![
        (
            "duplicate",
            format!("{open},\"rules\":[]}}"),
            "appears twice",
        ),
        (
            "deep",
            format!(
                "{open},\"x\":{}{}}}",
                "[".repeat(100_000),
                "]".repeat(100_000)
            ),
            "recursion limit",
        ),
        ("null", null.to_string(), "on_no_match"),
        (
            "null-audience",
            null_audience.to_string(),
            "providers.sts.audiences[0]",
        ),
        (
            "not-json",
            "\u{feff}{\"providers\":{}}\0".to_owned(),
            "actwarden: configuration",
        ),
    ]);
}

/// A configuration with a 1 MB rule id is refused; the critical log line must not repeat
/// the megabyte (an operator's log pipeline, and Envoy's, truncate or drop such lines).
#[test]
fn a_megabyte_rule_id_is_refused_with_a_short_message() {
    let k1 = key("k1");
    let config = json!({
        "providers": { "sts": { "issuer": ISS, "audiences": [AUD],
            "local_jwks": { "inline_string": public_jwks(&[&k1]).to_string() } } },
        "rules": [{ "id": "a".repeat(1 << 20), "match": { "path_prefix": "/" } }]
    });
    refuse_all(vec![("big-id", config.to_string(), "rules[0].id")]);
}

/// Starts one Envoy per configuration (in parallel); each must exit with status 1 and a
/// critical line `actwarden: configuration: …` containing its needle.
fn refuse_all(cases: Vec<(&'static str, String, &'static str)>) {
    let wasm = paths::wasm().unwrap();
    let runs: Vec<_> = cases
        .into_iter()
        .map(|(name, config, needle)| {
            let wasm = wasm.clone();
            std::thread::spawn(move || {
                let dir = paths::work_dir(&format!("adversarial-config-{name}")).unwrap();
                let echo = EchoServer::start().unwrap();
                let bootstrap = boot::bootstrap(
                    vec![boot::actwarden_listener(
                        "main",
                        &wasm,
                        &config,
                        "actwarden",
                        None,
                    )],
                    vec![boot::cluster(boot::UPSTREAM_CLUSTER, echo.addr())],
                );
                let mut envoy = Envoy::spawn(&dir, &bootstrap, &Options::default()).unwrap();
                let status = envoy.wait_exit(Duration::from_secs(30)).unwrap();
                let status = status.unwrap_or_else(|| {
                    panic!(
                        "{name}: Envoy still runs (log {})",
                        envoy.log_path().display()
                    )
                });
                // Refused, not crashed: exit status 1, no signal, no panic in the VM.
                assert_eq!(
                    status.code(),
                    Some(1),
                    "{name}: {status}\n{}",
                    envoy.log_tail(20)
                );
                let lines = envoy.log_grep("actwarden: configuration");
                let line = lines
                    .iter()
                    .find(|l| l.contains(needle))
                    .unwrap_or_else(|| {
                        panic!(
                            "{name}: no configuration error naming {needle:?}:\n{}",
                            envoy.log_tail(20)
                        )
                    });
                assert!(line.contains("[critical]"), "{name}: {line}");
                assert!(
                    line.len() < 64 * 1024,
                    "{name}: a {} byte log line",
                    line.len()
                );
                assert!(envoy.log_grep("actwarden: panic").is_empty(), "{name}");
                assert_eq!(echo.count(), 0);
            })
        })
        .collect();
    let mut failed = Vec::new();
    for r in runs {
        if let Err(e) = r.join() {
            failed.push(
                e.downcast_ref::<String>()
                    .cloned()
                    .unwrap_or_else(|| "panic".to_owned()),
            );
        }
    }
    assert!(failed.is_empty(), "{failed:#?}");
}
