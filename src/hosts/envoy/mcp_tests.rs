//! SPEC §9 through the Envoy filter against `FakeHost`: the headers of an MCP message are
//! held while its body is buffered and decided at the end of the stream (an allow sets the
//! identity headers), an oversized one is refused at once, a host that withholds the body
//! is noticed, the metadata GET is answered locally, and an allowed `tools/list` response
//! is held and rewritten (JSON, SSE split over chunks) or replaced with a 502.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use super::abi::{Action, LogLevel};
use super::fake::FakeHost;
use super::filter::Filter;
use super::root::Root;
use crate::core::keys::alg::Alg;
use crate::tools::mint::{public_jwks, SigningKey};
use ring::rand::SystemRandom;
use serde_json::{json, Value};
use std::sync::OnceLock;

const ROOT: u32 = 1;
const NOW_S: u64 = 1_800_000_000;

fn key() -> &'static SigningKey {
    static KEY: OnceLock<SigningKey> = OnceLock::new();
    KEY.get_or_init(|| SigningKey::generate(Alg::ES256, "k", &SystemRandom::new()).unwrap())
}

fn config() -> Value {
    json!({
        "providers": { "sts": { "issuer": "https://sts.example.com",
            "audiences": ["https://api.example.com/mcp"],
            "local_jwks": { "inline_string": public_jwks(&[key()]).to_string() } } },
        "mcp": { "endpoints": ["/mcp"], "max_body_bytes": 256,
                 "resource": "https://api.example.com/mcp", "max_response_bytes": 4096 },
        "rules": [
            { "id": "pay", "match": { "mcp": { "methods": ["tools/call"], "names": ["pay"] } },
              "require": { "scopes": ["pay"], "arguments": [{ "pointer": "/amount", "max": 10 }] } },
            { "id": "mcp", "match": { "path_exact": "/mcp" } }
        ]
    })
}

fn token(scope: &str) -> String {
    let claims = json!({ "iss": "https://sts.example.com", "sub": "alice",
        "aud": "https://api.example.com/mcp", "iat": NOW_S - 10, "exp": NOW_S + 300,
        "scope": scope });
    key()
        .mint(Alg::ES256, &claims, None, &SystemRandom::new())
        .unwrap()
}

fn configured() -> (FakeHost, Root<FakeHost>) {
    let fake = FakeHost::default();
    {
        let mut state = fake.state();
        state.now_ms = NOW_S * 1000;
        state.effective = ROOT;
        state.plugin_configuration = Some(config().to_string().into_bytes());
    }
    let mut root = Root::new(ROOT, fake.clone());
    assert!(root.on_configure(0), "{:?}", fake.logs(LogLevel::Critical));
    fake.clear_calls();
    (fake, root)
}

/// A POST to /mcp whose body arrives in `chunks`; the action of each callback.
fn post(
    fake: &FakeHost,
    root: &Root<FakeHost>,
    id: u32,
    scope: &str,
    chunks: &[&[u8]],
) -> (Filter<FakeHost>, Vec<Action>) {
    let auth = format!("Bearer {}", token(scope));
    let headers = [
        (":method", "POST"),
        (":path", "/mcp"),
        (":authority", "api.example.com"),
        ("authorization", auth.as_str()),
        ("accept-encoding", "gzip"),
    ];
    fake.enter_request(id, &headers);
    let mut filter = root.filter(id).unwrap();
    let mut actions = vec![filter.on_http_request_headers(headers.len(), chunks.is_empty())];
    for (i, chunk) in chunks.iter().enumerate() {
        fake.with_request(id, |r| r.body.extend_from_slice(chunk));
        let size = fake.request(id).body.len();
        actions.push(filter.on_http_request_body(size, i + 1 == chunks.len()));
    }
    (filter, actions)
}

const CALL_OK: &[u8] =
    br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"pay","arguments":{"amount":5}}}"#;
const LIST: &[u8] = br#"{"jsonrpc":"2.0","id":7,"method":"tools/list"}"#;
const TOOLS: &str =
    r#"{"jsonrpc":"2.0","id":7,"result":{"tools":[{"name":"pay"},{"name":"echo"}]}}"#;

#[test]
fn the_headers_are_held_and_an_allow_sets_the_identity_headers_after_the_body() {
    let (fake, root) = configured();
    let (a, b) = CALL_OK.split_at(20);
    let (_f, actions) = post(&fake, &root, 2, "pay", &[a, b]);
    // Headers held, first chunk buffered, released with the decision at the end.
    assert_eq!(
        actions,
        vec![Action::Pause, Action::Pause, Action::Continue]
    );
    assert!(fake.replies().is_empty());
    assert_eq!(fake.header(2, "x-agent-rule").as_deref(), Some("pay"));
    assert_eq!(fake.header(2, "x-agent-subject").as_deref(), Some("alice"));
    assert_eq!(fake.header(2, "x-agent-scopes").as_deref(), Some("pay"));
    // Only a `tools/list` answer is filtered, so only it is asked for the identity encoding.
    assert_eq!(fake.header(2, "accept-encoding").as_deref(), Some("gzip"));
    let audit = fake.logs(LogLevel::Info).join("\n");
    assert!(
        audit.contains(r#""mcp_method":"tools/call","mcp_name":"pay""#),
        "{audit}"
    );
    assert!(
        !audit.contains("amount"),
        "argument values never logged: {audit}"
    );
}

#[test]
fn an_argument_over_its_cap_is_a_403() {
    let (fake, root) = configured();
    let body = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"pay","arguments":{"amount":50}}}"#;
    let (_f, actions) = post(&fake, &root, 2, "pay", &[body]);
    assert_eq!(actions.last(), Some(&Action::Pause));
    let reply = &fake.replies()[0];
    assert_eq!(reply.status, 403);
    assert!(reply.body.contains("argument_denied"));
}

#[test]
fn an_oversized_body_is_refused_at_once_and_never_forwarded() {
    let (fake, root) = configured();
    let big = [b' '; 300];
    let (_f, actions) = post(
        &fake,
        &root,
        2,
        "pay",
        &[&big[..100], &big[100..], &big[..10]],
    );
    // Decided on the second chunk (300 > 256), without waiting for the end of the stream;
    // the headers were never released.
    assert_eq!(
        actions,
        [Action::Pause, Action::Pause, Action::Pause, Action::Pause]
    );
    let replies = fake.replies();
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0].status, 413);
    assert!(replies[0].body.contains("mcp_body_too_large"));
}

#[test]
fn malformed_and_empty_bodies_are_400() {
    for (i, body) in [&b"{\"jsonrpc\":\"2.0\",\"method\":\"tools/call\",\"params\":{\"name\":\"a\",\"name\":\"b\"}}"[..], b"\xff\xfe", b"[1]"].iter().enumerate() {
        let (fake, root) = configured();
        post(&fake, &root, 2 + i as u32, "pay", &[body]);
        assert_eq!(fake.replies()[0].status, 400, "{body:?}");
    }
    let (fake, root) = configured();
    post(&fake, &root, 2, "pay", &[]);
    assert_eq!(fake.replies()[0].status, 400);
}

#[test]
fn the_metadata_get_is_answered_locally_and_401s_point_to_it() {
    let (fake, root) = configured();
    let headers = [
        (":method", "GET"),
        (":path", "/.well-known/oauth-protected-resource/mcp"),
        (":authority", "api.example.com"),
    ];
    fake.enter_request(2, &headers);
    let mut filter = root.filter(2).unwrap();
    assert_eq!(filter.on_http_request_headers(3, true), Action::Pause);
    assert_eq!(fake.replies().len(), 1);
    let reply = &fake.replies()[0];
    assert_eq!(reply.status, 200);
    let doc: Value = serde_json::from_str(&reply.body).unwrap();
    assert_eq!(doc["resource"], "https://api.example.com/mcp");
    assert_eq!(doc["scopes_supported"], json!(["pay"]));

    let (fake, root) = configured();
    fake.enter_request(3, &[(":method", "POST"), (":path", "/mcp")]);
    let mut filter = root.filter(3).unwrap();
    filter.on_http_request_headers(2, false);
    fake.with_request(3, |r| r.body = LIST.to_vec());
    filter.on_http_request_body(LIST.len(), true);
    let reply = &fake.replies()[0];
    assert_eq!(reply.status, 401);
    assert_eq!(
        reply.header("www-authenticate"),
        Some("Bearer resource_metadata=\"https://api.example.com/.well-known/oauth-protected-resource/mcp\"")
    );
}

#[test]
fn a_tools_list_whose_accept_encoding_cannot_be_removed_is_refused() {
    let (fake, root) = configured();
    fake.state().fail.remove_header = true;
    let (_f, actions) = post(&fake, &root, 2, "read", &[LIST]);
    // Its answer might come encoded, so unfilterable: it is not forwarded.
    assert_eq!(actions, vec![Action::Pause, Action::Pause]);
    assert_eq!(fake.replies()[0].status, 500);
    // A tools/call's answer is not filtered: the same failing host lets it through.
    let (fake, root) = configured();
    fake.state().fail.remove_header = true;
    let (_f, actions) = post(&fake, &root, 3, "pay", &[CALL_OK]);
    assert_eq!(actions, vec![Action::Pause, Action::Continue]);
    assert!(fake.replies().is_empty());
}

/// Runs an allowed tools/list and feeds `response` back in `chunks`.
fn list_response(scope: &str, content_type: &str, chunks: &[&str]) -> (FakeHost, Vec<Action>) {
    let (fake, root) = configured();
    let (mut filter, actions) = post(&fake, &root, 2, scope, &[LIST]);
    assert_eq!(actions, vec![Action::Pause, Action::Continue]);
    assert_eq!(
        fake.header(2, "accept-encoding"),
        None,
        "identity encoding asked for"
    );
    fake.with_request(2, |r| {
        r.response_headers = vec![
            (":status".into(), "200".into()),
            ("content-type".into(), content_type.into()),
            ("content-length".into(), "999".into()),
            ("mcp-session-id".into(), "s-1".into()),
        ];
    });
    let mut out = vec![filter.on_http_response_headers(3, false)];
    // As Envoy does, a `Continue` passes the buffered body on: the next callback sees only
    // what came after it. The response as sent goes back into `response_body` at the end.
    let mut sent = Vec::new();
    for (i, chunk) in chunks.iter().enumerate() {
        fake.with_request(2, |r| r.response_body.extend_from_slice(chunk.as_bytes()));
        let size = fake.request(2).response_body.len();
        let action = filter.on_http_response_body(size, i + 1 == chunks.len());
        if action == Action::Continue {
            fake.with_request(2, |r| sent.append(&mut r.response_body));
        }
        out.push(action);
    }
    fake.with_request(2, |r| {
        sent.append(&mut r.response_body);
        r.response_body = sent;
    });
    (fake, out)
}

fn response_header(fake: &FakeHost, name: &str) -> Option<String> {
    fake.request(2)
        .response_headers
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v)
}

#[test]
fn a_json_tools_list_is_filtered_per_caller() {
    for (scope, kept) in [("pay", json!(["pay", "echo"])), ("read", json!(["echo"]))] {
        let (fake, actions) = list_response(scope, "application/json", &[TOOLS]);
        // The response headers are held until the body is filtered.
        assert_eq!(actions, vec![Action::Pause, Action::Continue]);
        let body: Value = serde_json::from_slice(&fake.request(2).response_body).unwrap();
        let names: Vec<&Value> = body["result"]["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| &t["name"])
            .collect();
        assert_eq!(json!(names), kept);
        let length = fake.request(2).response_body.len().to_string();
        assert_eq!(response_header(&fake, "content-length"), Some(length));
        assert_eq!(response_header(&fake, ":status").as_deref(), Some("200"));
        assert_eq!(
            response_header(&fake, "mcp-session-id").as_deref(),
            Some("s-1")
        );
    }
}

#[test]
fn an_sse_tools_list_split_across_chunks_is_filtered() {
    let stream = format!("event: message\ndata: {TOOLS}\n\n");
    let (a, rest) = stream.split_at(25);
    let (b, c) = rest.split_at(30);
    let (fake, actions) = list_response("read", "text/event-stream", &[a, b, c]);
    assert_eq!(
        actions,
        vec![
            Action::Pause,
            Action::Pause,
            Action::Pause,
            Action::Continue
        ]
    );
    let body = String::from_utf8(fake.request(2).response_body).unwrap();
    assert_eq!(
        response_header(&fake, "content-length"),
        Some(body.len().to_string())
    );
    assert!(body.starts_with("event: message\ndata: "), "{body}");
    assert!(body.contains("echo") && !body.contains("\"pay\""), "{body}");
}

/// The response is the SPEC's 502, whole.
fn assert_unfilterable(fake: &FakeHost) {
    assert_eq!(response_header(fake, ":status").as_deref(), Some("502"));
    assert_eq!(
        response_header(fake, "content-type").as_deref(),
        Some("application/json")
    );
    let body = crate::core::mcp::UNFILTERABLE_BODY;
    assert_eq!(
        response_header(fake, "content-length"),
        Some(body.len().to_string())
    );
    assert_eq!(response_header(fake, "mcp-session-id"), None);
    assert_eq!(
        String::from_utf8(fake.request(2).response_body).unwrap(),
        body
    );
}

#[test]
fn an_unfilterable_response_is_never_passed_on() {
    // Judged from the headers: held, made the 502's; the first chunk becomes its body.
    let (fake, actions) = list_response("read", "text/html", &[TOOLS]);
    assert_eq!(actions, vec![Action::Pause, Action::Continue]);
    assert_unfilterable(&fake);
    // Judged from the body: the status line is still held, so it is a real 502 too.
    let (fake, actions) = list_response("read", "application/json", &[&TOOLS[..20]]);
    assert_eq!(actions, vec![Action::Pause, Action::Continue]);
    assert_unfilterable(&fake);
    // Over budget mid-stream: refused at once, the rest dropped.
    let big = "x".repeat(5000);
    let (fake, actions) = list_response("read", "application/json", &[&big, "more"]);
    assert_eq!(
        actions,
        vec![Action::Pause, Action::Continue, Action::Continue],
        "decided as soon as it is over budget"
    );
    assert_unfilterable(&fake);
}

#[test]
fn spoofed_identity_is_replaced_before_the_headers_go_on() {
    let (fake, root) = configured();
    let auth = format!("Bearer {}", token("pay"));
    let headers = [
        (":method", "POST"),
        (":path", "/mcp"),
        ("authorization", auth.as_str()),
        ("x-agent-subject", "admin"),
        ("X_Agent_Rule", "pay"),
        ("x-agent-chain", "spiffe://evil"),
    ];
    fake.enter_request(2, &headers);
    let mut filter = root.filter(2).unwrap();
    assert_eq!(
        filter.on_http_request_headers(headers.len(), false),
        Action::Pause
    );
    fake.with_request(2, |r| r.body = CALL_OK.to_vec());
    assert_eq!(
        filter.on_http_request_body(CALL_OK.len(), true),
        Action::Continue
    );
    assert_eq!(fake.header(2, "x-agent-subject").as_deref(), Some("alice"));
    assert_eq!(fake.header(2, "x_agent_rule"), None);
    assert_eq!(fake.header(2, "x-agent-chain"), None, "not delegated");
    // A refused message: spoofed headers gone too, nothing released.
    let (fake, root) = configured();
    fake.enter_request(3, &headers);
    let mut filter = root.filter(3).unwrap();
    assert_eq!(filter.on_http_request_headers(6, false), Action::Pause);
    let over = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"pay","arguments":{"amount":50}}}"#;
    fake.with_request(3, |r| r.body = over.to_vec());
    assert_eq!(filter.on_http_request_body(over.len(), true), Action::Pause);
    assert_eq!(fake.replies()[0].status, 403);
    assert_eq!(fake.header(3, "x-agent-subject"), None);
    // Later callbacks of the answered request never release it.
    assert_eq!(filter.on_http_request_body(over.len(), true), Action::Pause);
    assert_eq!(filter.on_http_request_trailers(0), Action::Pause);
}

#[test]
fn trailers_end_a_held_message_and_decide_it() {
    let (fake, root) = configured();
    let (_f, actions) = post(&fake, &root, 2, "pay", &[]);
    assert_eq!(actions, vec![Action::Pause]);
    assert_eq!(fake.replies()[0].status, 400, "no body at all: malformed");

    let auth = format!("Bearer {}", token("pay"));
    let headers = [
        (":method", "POST"),
        (":path", "/mcp"),
        ("authorization", auth.as_str()),
    ];
    fake.enter_request(3, &headers);
    let mut filter = root.filter(3).unwrap();
    assert_eq!(filter.on_http_request_headers(3, false), Action::Pause);
    fake.with_request(3, |r| {
        r.body = CALL_OK.to_vec();
        r.trailers = Some(vec![("x-agent-subject".into(), "admin".into())]);
    });
    assert_eq!(
        filter.on_http_request_body(CALL_OK.len(), false),
        Action::Pause
    );
    assert_eq!(filter.on_http_request_trailers(1), Action::Continue);
    assert_eq!(fake.header(3, "x-agent-subject").as_deref(), Some("alice"));
    assert!(fake.trailers(3).is_empty(), "identity trailer stripped");
}

/// A host without `allow_on_headers_stop_iteration` never calls the body callback of a
/// message whose headers are held: the root's tick answers it 500 after the hold limit
/// and says, once, which flag is missing.
#[test]
fn a_host_that_withholds_the_body_is_answered_and_named() {
    let (fake, mut root) = configured();
    // MCP without remote JWKS still ticks (for this check only).
    let mut again = Root::new(ROOT, fake.clone());
    assert!(again.on_configure(0));
    assert!(fake.calls().contains(&super::fake::Call::SetTickPeriod(
        std::time::Duration::from_secs(1)
    )));
    fake.clear_calls();
    let auth = format!("Bearer {}", token("pay"));
    let headers = [
        (":method", "POST"),
        (":path", "/mcp"),
        ("authorization", auth.as_str()),
    ];
    let mut filters = Vec::new();
    for id in [2, 3] {
        fake.enter_request(id, &headers);
        let mut filter = root.filter(id).unwrap();
        assert_eq!(filter.on_http_request_headers(3, false), Action::Pause);
        filters.push(filter);
    }
    fake.enter(ROOT);
    fake.state().now_ms += super::mcp::HOLD_LIMIT_MS - 1;
    root.on_tick();
    assert!(fake.replies().is_empty(), "within the limit");
    fake.state().now_ms += 1;
    root.on_tick();
    let replies = fake.replies();
    assert_eq!(
        replies
            .iter()
            .map(|r| (r.context, r.status))
            .collect::<Vec<_>>(),
        vec![(2, 500), (3, 500)]
    );
    assert_eq!(replies[0].details, "actwarden_internal_error");
    let critical = fake.logs(LogLevel::Critical);
    assert_eq!(critical.len(), 1, "{critical:?}");
    assert!(critical[0].contains("allow_on_headers_stop_iteration: true"));
    assert_eq!(
        fake.calls().last(),
        Some(&super::fake::Call::SetEffectiveContext(ROOT))
    );
    // Should a body come after all, the answered message stays unforwarded.
    fake.enter(2);
    fake.with_request(2, |r| r.body = CALL_OK.to_vec());
    assert_eq!(
        filters[0].on_http_request_body(CALL_OK.len(), true),
        Action::Pause
    );
    // Another held message: answered too, the critical line not repeated.
    fake.enter_request(4, &headers);
    let mut filter = root.filter(4).unwrap();
    filter.on_http_request_headers(3, false);
    fake.enter(ROOT);
    fake.state().now_ms += super::mcp::HOLD_LIMIT_MS;
    root.on_tick();
    assert_eq!(fake.replies().len(), 3);
    assert_eq!(fake.logs(LogLevel::Critical).len(), 1);
}

#[test]
fn once_a_body_came_while_held_slow_bodies_are_not_answered() {
    let (fake, mut root) = configured();
    let (_f, actions) = post(&fake, &root, 2, "pay", &[CALL_OK]);
    assert_eq!(actions, vec![Action::Pause, Action::Continue]);
    let auth = format!("Bearer {}", token("pay"));
    let headers = [
        (":method", "POST"),
        (":path", "/mcp"),
        ("authorization", auth.as_str()),
    ];
    fake.enter_request(3, &headers);
    let mut filter = root.filter(3).unwrap();
    assert_eq!(filter.on_http_request_headers(3, false), Action::Pause);
    fake.enter(ROOT);
    fake.state().now_ms += 10 * super::mcp::HOLD_LIMIT_MS;
    root.on_tick();
    assert!(fake.replies().is_empty());
    assert!(fake.logs(LogLevel::Critical).is_empty());
    fake.enter(3);
    fake.with_request(3, |r| r.body = CALL_OK.to_vec());
    assert_eq!(
        filter.on_http_request_body(CALL_OK.len(), true),
        Action::Continue
    );
}
