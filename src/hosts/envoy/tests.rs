//! The Envoy filter against `FakeHost`: stripping, identity headers, local replies, gRPC,
//! parking for an unknown-`kid` refetch, the waiting cap, configuration and host failures.
//! The end-to-end suite (host-tests/envoy) runs the same paths in a real Envoy.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use super::fake::{Call, FakeHost};
use super::filter::Filter;
use super::root::Root;
use crate::core::keys::alg::Alg;
use crate::core::keys::remote::{SharedDocument, SharedJwks};
use crate::core::limits::MAX_WAITING_REQUESTS;
use crate::tools::mint::{delegate, public_jwks, SigningKey};
// Called statically on concrete types: see `Root::filter`.
use super::abi::{Action, LogLevel};
use ring::rand::SystemRandom;
use serde_json::{json, Value};
use std::sync::OnceLock;
use std::time::Duration;

const ROOT: u32 = 1;
const NOW_S: u64 = 1_800_000_000;
const STS_STATE: &str = "actwarden.jwks.v1|sts|http://sts.internal/jwks";
const STS_DOCUMENT: &str = "actwarden.jwks.v1|sts|http://sts.internal/jwks|document";
const BILLING: &str = "spiffe://prod.example.com/agent/billing";

struct Keys {
    local: SigningKey,
    /// Published by the remote provider from the start.
    remote_a: SigningKey,
    /// Published only after a refetch.
    remote_b: SigningKey,
}

/// Key generation is the slow part: once per test binary.
fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let rng = SystemRandom::new();
        Keys {
            local: SigningKey::generate(Alg::ES256, "local-1", &rng).unwrap(),
            remote_a: SigningKey::generate(Alg::ES256, "a", &rng).unwrap(),
            remote_b: SigningKey::generate(Alg::ES256, "b", &rng).unwrap(),
        }
    })
}

fn config() -> Value {
    json!({
        "providers": {
            "local": { "issuer": "https://local.example.com", "audiences": ["api"],
                       "local_jwks": { "inline_string": public_jwks(&[&keys().local]).to_string() } },
            "sts": { "issuer": "https://sts.example.com", "audiences": ["api"],
                     "remote_jwks": { "http_uri": { "uri": "http://sts.internal/jwks",
                                                    "cluster": "sts", "timeout_ms": 2000 },
                                      "cache_duration_s": 300 } }
        },
        "rules": [
            { "id": "pay", "match": { "path_prefix": "/pay" }, "providers": ["local"],
              "require": { "scopes": ["payments:write"] } },
            { "id": "api", "match": { "path_prefix": "/api" }, "providers": ["local"] },
            { "id": "remote", "match": { "path_prefix": "/remote" }, "providers": ["sts"] }
        ]
    })
}

fn token(key: &SigningKey, iss: &str) -> String {
    let claims = json!({ "iss": iss, "sub": "alice", "aud": "api", "iat": NOW_S - 10,
                         "exp": NOW_S + 300, "scope": "read" });
    let claims = delegate(&claims, BILLING, None);
    key.mint(Alg::ES256, &claims, None, &SystemRandom::new())
        .unwrap()
}

fn local_token() -> String {
    token(&keys().local, "https://local.example.com")
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// A configured root context on a fresh fake host at `NOW_S`.
fn configured(config: &Value) -> (FakeHost, Root<FakeHost>) {
    let fake = FakeHost::default();
    {
        let mut state = fake.state();
        state.now_ms = NOW_S * 1000;
        state.effective = ROOT;
        state.plugin_configuration = Some(config.to_string().into_bytes());
    }
    let mut root = Root::new(ROOT, fake.clone());
    assert!(root.on_configure(0), "{:?}", fake.logs(LogLevel::Critical));
    fake.clear_calls();
    (fake, root)
}

/// Runs `on_http_request_headers` for a new request context, as `exports` would.
fn request(
    fake: &FakeHost,
    root: &Root<FakeHost>,
    context_id: u32,
    headers: &[(&str, &str)],
) -> (Filter<FakeHost>, Action) {
    fake.enter_request(context_id, headers);
    let mut filter = root.filter(context_id).unwrap();
    let action = filter.on_http_request_headers(headers.len(), true);
    (filter, action)
}

fn get(path: &str) -> Vec<(&str, &str)> {
    vec![
        (":method", "GET"),
        (":path", path),
        (":authority", "api.example.com"),
    ]
}

#[test]
fn allow_strips_spoofed_identity_headers_and_sets_the_real_ones() {
    let (fake, root) = configured(&config());
    let auth = bearer(&local_token());
    let mut headers = get("/api/items");
    headers.extend([
        ("authorization", auth.as_str()),
        ("x-agent-subject", "admin"),
        ("X-Agent-Chain", "spiffe://evil"),
        ("x_agent_actor", "spiffe://evil"),
        ("x-request-id", "r-1"),
    ]);
    let (_filter, action) = request(&fake, &root, 2, &headers);

    assert_eq!(action, Action::Continue);
    assert!(fake.replies().is_empty());
    let calls = fake.calls();
    for name in ["x-agent-subject", "x-agent-chain", "x_agent_actor"] {
        assert!(
            calls.contains(&Call::RemoveHeader(name.into())),
            "{name} not removed"
        );
    }
    // Removed before the real identity is set, so the real one is what remains.
    let last_remove = calls
        .iter()
        .rposition(|c| matches!(c, Call::RemoveHeader(_)))
        .unwrap();
    let first_set = calls
        .iter()
        .position(|c| matches!(c, Call::SetHeader(..)))
        .unwrap();
    assert!(last_remove < first_set);
    assert_eq!(fake.header(2, "x-agent-subject").as_deref(), Some("alice"));
    assert_eq!(fake.header(2, "x-agent-actor").as_deref(), Some(BILLING));
    assert_eq!(fake.header(2, "x-agent-chain").as_deref(), Some(BILLING));
    assert_eq!(fake.header(2, "x-agent-scopes").as_deref(), Some("read"));
    assert_eq!(
        fake.header(2, "x-agent-issuer").as_deref(),
        Some("https://local.example.com")
    );
    assert_eq!(fake.header(2, "x_agent_actor"), None);
    // Not a resumed request: nothing to resume.
    assert!(!calls.iter().any(|c| matches!(c, Call::Resume(_))));
    assert_eq!(fake.counter("actwarden.allow"), 1);
    let audit = fake.logs(LogLevel::Info);
    assert_eq!(audit.len(), 1);
    assert!(audit[0].starts_with("actwarden.audit {"), "{}", audit[0]);
    assert!(audit[0].contains(r#""decision":"allow""#), "{}", audit[0]);
    assert!(audit[0].contains(r#""request_id":"r-1""#), "{}", audit[0]);
}

fn call_kinds(fake: &FakeHost) -> Vec<String> {
    fake.calls()
        .iter()
        .map(|c| match c {
            Call::SetHeader(name, _) => format!("SetHeader({name})"),
            Call::Log(level, _) => format!("Log({level:?})"),
            Call::IncrementCounter(..) => "IncrementCounter".to_owned(),
            other => format!("{other:?}"),
        })
        .collect()
}

/// The host calls of a request, in order: headers, the clock, the remote provider's
/// shared state, (first use of a token: the shared token table, read, then written after
/// the signature verified), the counters, removals, the clock and the peer properties for
/// the audit line (this policy logs every decision), the audit line, the decision counter,
/// the identity headers. A token seen before: no shared table, no signature.
#[test]
fn the_hot_path_calls_the_host_in_a_fixed_order() {
    let (fake, root) = configured(&config());
    let auth = bearer(&local_token());
    let mut headers = get("/api/items");
    headers.extend([("authorization", auth.as_str()), ("x-agent-rule", "x")]);
    request(&fake, &root, 2, &headers);
    let slot = fake
        .calls()
        .iter()
        .find_map(|c| match c {
            Call::SetSharedData { key, .. } => Some(key.clone()),
            _ => None,
        })
        .unwrap();
    assert!(slot.starts_with("actwarden.tokens.v1|"), "{slot}");
    let tail = [
        "RemoveHeader(\"x-agent-rule\")",
        "Now",
        "Property(\"connection.uri_san_peer_certificate\")",
        "Property(\"connection.sha256_peer_certificate_digest\")",
        "Log(Info)",
        "IncrementCounter",
        "SetHeader(x-agent-subject)",
        "SetHeader(x-agent-actor)",
        "SetHeader(x-agent-chain)",
        "SetHeader(x-agent-scopes)",
        "SetHeader(x-agent-issuer)",
        "SetHeader(x-agent-rule)",
    ];
    let jwks = format!("SharedData({STS_STATE:?})");
    let slot_read = format!("SharedData({slot:?})");
    let slot_write = format!("SetSharedData {{ key: {slot:?}, written: true }}");
    // The miss reads the shared slot once and writes against the version it read.
    let mut cold = vec!["RequestHeaders", "Now", &jwks, &slot_read, &slot_write];
    // One signature verified (`actwarden.verify.wasm`: this fake has no
    // `verify_signature`), then the first use of this token: a cache miss.
    cold.extend(["IncrementCounter", "IncrementCounter"]);
    cold.extend(tail);
    assert_eq!(call_kinds(&fake), cold);

    fake.clear_calls();
    request(&fake, &root, 3, &headers);
    // A cache hit: one counter (`actwarden.cache.hit`), nothing shared, no signature.
    let mut hot = vec!["RequestHeaders", "Now", &jwks, "IncrementCounter"];
    hot.extend(tail);
    assert_eq!(call_kinds(&fake), hot);
}

fn denials_only() -> Value {
    let mut config = config();
    config["audit"] = json!({ "log": "denials" });
    config
}

/// With `audit.log: denials`, an allow that does not depend on the peer never reads it
/// (nor the clock a second time); a denial reads it for its audit line.
#[test]
fn the_peer_is_read_only_when_needed() {
    let (fake, root) = configured(&denials_only());
    let auth = bearer(&local_token());
    let mut headers = get("/api/items");
    headers.push(("authorization", auth.as_str()));
    let (_filter, action) = request(&fake, &root, 2, &headers);
    assert_eq!(action, Action::Continue);
    let properties = |fake: &FakeHost| {
        fake.calls()
            .iter()
            .filter(|c| matches!(c, Call::Property(_)))
            .count()
    };
    assert_eq!(properties(&fake), 0);
    // No audit line, so no second clock read for its `eval_us`.
    let clock = fake
        .calls()
        .iter()
        .filter(|c| matches!(c, Call::Now))
        .count();
    assert_eq!(clock, 1);

    fake.state()
        .properties
        .insert("connection.uri_san_peer_certificate".into(), BILLING.into());
    let (_filter, action) = request(&fake, &root, 3, &get("/api/items"));
    assert_eq!(action, Action::Pause);
    assert_eq!(properties(&fake), 2);
    let audit = fake.logs(LogLevel::Info);
    let line = audit
        .iter()
        .find(|l| l.starts_with("actwarden.audit"))
        .unwrap();
    assert!(line.contains(&format!(r#""peer":"{BILLING}""#)), "{line}");
}

/// A token bound to a certificate (`cnf`) is decided with the peer, read when the
/// decision needs it: the right certificate allows, another denies, and a failed lookup
/// fails closed.
#[test]
fn a_certificate_bound_token_reads_the_peer() {
    let digest = [7u8; 32];
    let claims = json!({ "iss": "https://local.example.com", "sub": "alice", "aud": "api",
                         "iat": NOW_S - 10, "exp": NOW_S + 300, "scope": "read",
                         "cnf": { "x5t#S256": crate::core::token::b64::encode(&digest) } });
    let bound = keys()
        .local
        .mint(Alg::ES256, &claims, None, &SystemRandom::new())
        .unwrap();
    let auth = bearer(&bound);
    let mut headers = get("/api/items");
    headers.push(("authorization", auth.as_str()));
    for (peer, expected) in [(digest, Action::Continue), ([8u8; 32], Action::Pause)] {
        let (fake, root) = configured(&denials_only());
        fake.state().properties.insert(
            "connection.sha256_peer_certificate_digest".into(),
            crate::core::token::b64::hex(&peer),
        );
        let (_filter, action) = request(&fake, &root, 2, &headers);
        assert_eq!(action, expected);
    }
    let (fake, root) = configured(&denials_only());
    fake.state().fail.property = true;
    let (_filter, action) = request(&fake, &root, 2, &headers);
    assert_eq!(action, Action::Pause);
    assert_eq!(fake.replies()[0].status, 500);
    assert_eq!(fake.counter("actwarden.allow"), 0);
}

/// A token verified by one worker VM is not verified again by another (one `FakeHost`
/// shared data, two roots: two workers).
#[test]
fn a_token_verified_on_one_worker_is_not_verified_on_another() {
    let (fake, worker1) = configured(&config());
    let mut worker2 = Root::new(ROOT, fake.clone());
    assert!(worker2.on_configure(0));
    let auth = bearer(&local_token());
    let mut headers = get("/api/items");
    headers.push(("authorization", auth.as_str()));
    request(&fake, &worker1, 2, &headers);
    assert_eq!(fake.counter("actwarden.verify.wasm"), 1);
    let (_filter, action) = request(&fake, &worker2, 3, &headers);
    assert_eq!(action, Action::Continue);
    assert_eq!(
        fake.counter("actwarden.verify.wasm"),
        1,
        "no second verification"
    );
    assert_eq!(fake.counter("actwarden.allow"), 2);
}

#[test]
fn deny_strips_too_and_answers_with_reason_status_challenge_body_and_details() {
    let (fake, root) = configured(&config());
    let mut headers = get("/api/items");
    headers.extend([("x-agent-subject", "admin"), ("x_agent_scopes", "all")]);
    let (_filter, action) = request(&fake, &root, 2, &headers);

    assert_eq!(action, Action::Pause);
    let calls = fake.calls();
    assert!(calls.contains(&Call::RemoveHeader("x-agent-subject".into())));
    assert!(calls.contains(&Call::RemoveHeader("x_agent_scopes".into())));
    assert!(!calls.iter().any(|c| matches!(c, Call::SetHeader(..))));
    let replies = fake.replies();
    assert_eq!(replies.len(), 1);
    let reply = &replies[0];
    assert_eq!(reply.context, 2);
    assert_eq!(reply.status, 401);
    assert_eq!(reply.details, "actwarden_token_missing");
    assert_eq!(reply.grpc_status, None);
    assert_eq!(reply.header("www-authenticate"), Some("Bearer"));
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let body: Value = serde_json::from_str(&reply.body).unwrap();
    assert_eq!(body["error"], "token_missing");
    assert!(body["detail"].is_string());
    assert_eq!(fake.counter("actwarden.deny.token_missing"), 1);
    assert_eq!(fake.counter("actwarden.allow"), 0);
}

#[test]
fn a_missing_scope_is_a_403_naming_the_scope() {
    let (fake, root) = configured(&config());
    let auth = bearer(&local_token());
    let mut headers = get("/pay");
    headers.push(("authorization", auth.as_str()));
    request(&fake, &root, 2, &headers);

    let reply = &fake.replies()[0];
    assert_eq!(reply.status, 403);
    assert_eq!(reply.details, "actwarden_scope_insufficient");
    let challenge = reply.header("www-authenticate").unwrap();
    assert!(
        challenge.contains(r#"error="insufficient_scope""#),
        "{challenge}"
    );
    assert!(
        challenge.contains(r#"scope="payments:write""#),
        "{challenge}"
    );
}

#[test]
fn grpc_denials_are_trailers_only_with_the_grpc_status() {
    let (fake, root) = configured(&config());
    let mut headers = vec![
        (":method", "POST"),
        (":path", "/api.Items/List"),
        (":authority", "api.example.com"),
        ("content-type", "application/grpc"),
    ];
    headers.push(("x-agent-subject", "admin"));
    let (_filter, action) = request(&fake, &root, 2, &headers);

    assert_eq!(action, Action::Pause);
    assert!(fake
        .calls()
        .contains(&Call::RemoveHeader("x-agent-subject".into())));
    let reply = &fake.replies()[0];
    assert_eq!(reply.status, 200);
    assert_eq!(reply.grpc_status, Some(16)); // UNAUTHENTICATED for a 401
    assert_eq!(reply.body, "token_missing"); // Envoy's grpc-message
    assert_eq!(reply.details, "actwarden_token_missing");
    // Envoy writes these itself; copies would be duplicated.
    for name in ["content-type", "grpc-status", "grpc-message"] {
        assert_eq!(reply.header(name), None, "{name}");
    }
    assert_eq!(reply.header("www-authenticate"), Some("Bearer"));
}

#[test]
fn a_grpc_403_maps_to_permission_denied() {
    let (fake, root) = configured(&config());
    let auth = bearer(&local_token());
    let headers = [
        (":method", "POST"),
        (":path", "/pay.Payments/Create"),
        ("content-type", "application/grpc+proto"),
        ("authorization", auth.as_str()),
    ];
    request(&fake, &root, 2, &headers);
    let reply = &fake.replies()[0];
    assert_eq!((reply.status, reply.grpc_status), (200, Some(7)));
    assert_eq!(reply.body, "scope_insufficient");
}

#[test]
fn identity_trailers_are_stripped_others_kept() {
    let (fake, root) = configured(&config());
    let auth = bearer(&local_token());
    let mut headers = get("/api/items");
    headers.push(("authorization", auth.as_str()));
    let (mut filter, _) = request(&fake, &root, 2, &headers);
    fake.state().requests.get_mut(&2).unwrap().trailers = Some(vec![
        ("x-agent-subject".into(), "admin".into()),
        ("X_Agent_Actor".into(), "spiffe://evil".into()),
        ("grpc-timeout".into(), "1S".into()),
    ]);
    fake.clear_calls();

    assert_eq!(filter.on_http_request_trailers(3), Action::Continue);
    assert_eq!(
        fake.trailers(2),
        vec![("grpc-timeout".to_owned(), "1S".to_owned())]
    );
    assert!(fake.replies().is_empty());
}

#[test]
fn trailers_that_cannot_be_read_or_removed_fail_closed() {
    let (fake, root) = configured(&config());
    let auth = bearer(&local_token());
    let mut headers = get("/api/items");
    headers.push(("authorization", auth.as_str()));

    let (mut filter, _) = request(&fake, &root, 2, &headers);
    fake.state().requests.get_mut(&2).unwrap().trailers = None;
    assert_eq!(filter.on_http_request_trailers(1), Action::Pause);
    let reply = fake.replies().pop().unwrap();
    assert_eq!(
        (reply.status, reply.details.as_str()),
        (500, "actwarden_internal_error")
    );

    let (mut filter, _) = request(&fake, &root, 3, &headers);
    fake.state().requests.get_mut(&3).unwrap().trailers =
        Some(vec![("x-agent-subject".into(), "admin".into())]);
    fake.state().fail.remove_trailer = true;
    assert_eq!(filter.on_http_request_trailers(1), Action::Pause);
    let reply = fake.replies().pop().unwrap();
    assert_eq!((reply.context, reply.status), (3, 500));
    assert!(fake
        .logs(LogLevel::Error)
        .iter()
        .any(|l| l.contains("x-agent-subject")));
}

#[test]
fn unreadable_headers_fail_closed() {
    let (fake, root) = configured(&config());
    fake.enter_request(2, &[]);
    fake.state().requests.get_mut(&2).unwrap().headers = None;
    let mut filter = root.filter(2).unwrap();
    assert_eq!(filter.on_http_request_headers(0, true), Action::Pause);
    let reply = &fake.replies()[0];
    assert_eq!(reply.status, 500);
    assert_eq!(reply.details, "actwarden_internal_error");
    assert!(fake
        .logs(LogLevel::Error)
        .iter()
        .any(|l| l.contains("could not read the request headers")));
}

#[test]
fn a_failed_property_lookup_fails_closed_even_for_a_good_token() {
    let (fake, root) = configured(&config());
    fake.state().fail.property = true;
    let auth = bearer(&local_token());
    let mut headers = get("/api/items");
    headers.push(("authorization", auth.as_str()));
    let (_filter, action) = request(&fake, &root, 2, &headers);

    assert_eq!(action, Action::Pause);
    assert_eq!(fake.replies()[0].status, 500);
    assert!(!fake
        .calls()
        .iter()
        .any(|c| matches!(c, Call::SetHeader(..))));
    assert_eq!(fake.counter("actwarden.allow"), 0);
}

#[test]
fn the_peer_certificate_is_read_from_connection_properties() {
    let (fake, root) = configured(&config());
    fake.state()
        .properties
        .insert("connection.uri_san_peer_certificate".into(), BILLING.into());
    let auth = bearer(&local_token());
    let mut headers = get("/api/items");
    headers.push(("authorization", auth.as_str()));
    request(&fake, &root, 2, &headers);
    let audit = fake.logs(LogLevel::Info);
    assert!(
        audit[0].contains(&format!(r#""peer":"{BILLING}""#)),
        "{}",
        audit[0]
    );
}

#[test]
fn an_identity_header_that_cannot_be_set_or_removed_is_not_an_allow() {
    let auth = bearer(&local_token());
    let mut headers = get("/api/items");
    headers.push(("authorization", auth.as_str()));
    headers.push(("x-agent-subject", "admin"));

    let (fake, root) = configured(&config());
    fake.state().fail.set_header = true;
    let (_filter, action) = request(&fake, &root, 2, &headers);
    assert_eq!(action, Action::Pause);
    assert_eq!(fake.replies()[0].status, 500);

    let (fake, root) = configured(&config());
    fake.state().fail.remove_header = true;
    let (_filter, action) = request(&fake, &root, 2, &headers);
    assert_eq!(action, Action::Pause);
    assert_eq!(fake.replies()[0].status, 500);
    // The spoofed value is still there, so nothing may be forwarded.
    assert!(!fake
        .calls()
        .iter()
        .any(|c| matches!(c, Call::SetHeader(..))));
}

#[test]
fn a_bad_configuration_is_refused_naming_the_json_path() {
    let fake = FakeHost::default();
    let mut bad = config();
    bad["rules"][1]["id"] = json!("");
    fake.state().plugin_configuration = Some(bad.to_string().into_bytes());
    let mut root = Root::new(ROOT, fake.clone());
    assert!(!root.on_configure(0));
    let critical = fake.logs(LogLevel::Critical);
    assert_eq!(critical.len(), 1);
    assert!(critical[0].contains("rules[1].id"), "{}", critical[0]);
    // Fail closed: no plugin, so Envoy refuses it and no request context is made.
    assert!(root.filter(2).is_none());

    let fake = FakeHost::default();
    let mut root = Root::new(ROOT, fake.clone());
    assert!(!root.on_configure(0));
    assert!(fake.logs(LogLevel::Critical)[0].contains("missing"));
}

#[test]
fn configuring_prepares_remote_jwks_and_ticks() {
    let fake = FakeHost::default();
    fake.state().plugin_configuration = Some(config().to_string().into_bytes());
    let mut root = Root::new(ROOT, fake.clone());
    assert!(root.on_configure(0));
    let calls = fake.calls();
    assert!(calls.contains(&Call::SetSharedData {
        key: STS_STATE.into(),
        written: true
    }));
    assert!(calls.contains(&Call::SetTickPeriod(Duration::from_millis(100))));
    // No fetch while configuring (Envoy cannot dispatch then): the first tick starts it.
    assert!(fake.dispatches().is_empty());
    root.on_tick();
    let dispatches = fake.dispatches();
    assert_eq!(dispatches.len(), 1);
    let d = &dispatches[0];
    assert_eq!(d.cluster, "sts");
    assert_eq!(d.timeout, Duration::from_millis(2000));
    for (name, value) in [
        (":method", "GET"),
        (":path", "/jwks"),
        (":authority", "sts.internal"),
        (":scheme", "http"),
    ] {
        assert!(
            d.headers.contains(&(name.to_owned(), value.to_owned())),
            "{name}"
        );
    }
}

/// Shared state as if another worker fetched the remote JWKS (key `a` only) a second ago.
fn remote_keys_published(fake: &FakeHost, signers: &[&SigningKey]) {
    let fetched_at_ms = NOW_S * 1000 - 1000;
    let state = SharedJwks {
        fetched_at_ms,
        attempt_at_ms: fetched_at_ms,
        ..SharedJwks::default()
    };
    fake.set_shared(STS_STATE, &state.to_bytes());
    let document = SharedDocument {
        fetched_at_ms,
        jwks: public_jwks(signers).to_string(),
    };
    fake.set_shared(STS_DOCUMENT, &document.to_bytes());
}

/// A request whose token has `kid` `b`. Keep the filter: dropping it is the stream going
/// away, which forgets a waiting request.
fn remote_request(
    fake: &FakeHost,
    root: &Root<FakeHost>,
    context_id: u32,
) -> (Filter<FakeHost>, Action) {
    let auth = bearer(&token(&keys().remote_b, "https://sts.example.com"));
    let mut headers = get("/remote/x");
    headers.push(("authorization", auth.as_str()));
    headers.push(("x-agent-subject", "admin"));
    request(fake, root, context_id, &headers)
}

#[test]
fn an_unknown_kid_waits_for_the_refetch_then_is_decided_and_resumed() {
    let (fake, mut root) = configured(&config());
    remote_keys_published(&fake, &[&keys().remote_a]);

    let (_filter, action) = remote_request(&fake, &root, 2);
    assert_eq!(action, Action::Pause);
    // Parked: not answered, not yet stripped, not counted.
    assert!(fake.replies().is_empty());
    assert!(!fake
        .calls()
        .iter()
        .any(|c| matches!(c, Call::RemoveHeader(_))));
    assert_eq!(root.plugin().unwrap().waiters.borrow().len(), 1);

    // The next tick starts the refetch for the kid; the request keeps waiting.
    fake.enter(ROOT);
    fake.state().now_ms += 100;
    root.on_tick();
    let dispatches = fake.dispatches();
    assert_eq!(dispatches.len(), 1, "{:#?}", fake.calls());
    assert_eq!(root.plugin().unwrap().waiters.borrow().len(), 1);
    let state = SharedJwks::from_bytes(&fake.shared(STS_STATE).unwrap()).unwrap();
    assert!(state.in_flight);
    assert_eq!(state.kid_refetch_at_ms, NOW_S * 1000 + 100);

    // The JWKS now has key b: the waiting request is decided in its own context.
    let body = public_jwks(&[&keys().remote_a, &keys().remote_b])
        .to_string()
        .into_bytes();
    fake.state().call_response = (Some(200), body.clone());
    fake.clear_calls();
    root.on_http_call_response(dispatches[0].token, 1, body.len(), 0);

    let calls = fake.calls();
    let enter = calls
        .iter()
        .position(|c| *c == Call::SetEffectiveContext(2))
        .unwrap();
    let resume = calls.iter().position(|c| *c == Call::Resume(2)).unwrap();
    assert!(enter < resume);
    assert_eq!(calls.last(), Some(&Call::SetEffectiveContext(ROOT)));
    assert!(fake.replies().is_empty());
    assert_eq!(fake.header(2, "x-agent-subject").as_deref(), Some("alice"));
    assert_eq!(
        fake.header(2, "x-agent-issuer").as_deref(),
        Some("https://sts.example.com")
    );
    assert!(root.plugin().unwrap().waiters.borrow().is_empty());
    assert_eq!(fake.counter("actwarden.jwks.fetch_ok"), 1);
    assert_eq!(fake.counter("actwarden.allow"), 1);
    let state = SharedJwks::from_bytes(&fake.shared(STS_STATE).unwrap()).unwrap();
    assert!(!state.in_flight);
}

#[test]
fn a_failed_refetch_answers_the_waiting_request() {
    let (fake, mut root) = configured(&config());
    remote_keys_published(&fake, &[&keys().remote_a]);
    let (_filter, action) = remote_request(&fake, &root, 2);
    assert_eq!(action, Action::Pause);
    fake.enter(ROOT);
    root.on_tick();
    let token = fake.dispatches()[0].token;

    fake.state().call_response = (Some(500), Vec::new());
    root.on_http_call_response(token, 0, 0, 0);

    let replies = fake.replies();
    assert_eq!(replies.len(), 1);
    // Keys exist, just not this kid: after the refetch, the answer is kid_unknown.
    assert_eq!(replies[0].context, 2);
    assert_eq!(replies[0].status, 401);
    assert_eq!(replies[0].details, "actwarden_kid_unknown");
    assert!(fake
        .calls()
        .contains(&Call::RemoveHeader("x-agent-subject".into())));
    assert!(!fake.calls().iter().any(|c| matches!(c, Call::Resume(_))));
    assert_eq!(fake.counter("actwarden.jwks.fetch_failed"), 1);
    assert!(fake
        .logs(LogLevel::Warn)
        .iter()
        .any(|l| l.contains("jwks sts fetch failed: http status 500")));
    assert!(root.plugin().unwrap().waiters.borrow().is_empty());
}

#[test]
fn a_refetch_that_never_reports_answers_the_waiting_request_at_its_deadline() {
    let (fake, mut root) = configured(&config());
    remote_keys_published(&fake, &[&keys().remote_a]);
    let (_filter, action) = remote_request(&fake, &root, 2);
    assert_eq!(action, Action::Pause);
    fake.enter(ROOT);
    root.on_tick();
    assert_eq!(fake.dispatches().len(), 1);

    // Still within timeout_ms (2000) plus the start slack: waiting.
    fake.state().now_ms += 2000;
    root.on_tick();
    assert!(fake.replies().is_empty());

    fake.state().now_ms += 1000;
    root.on_tick();
    let replies = fake.replies();
    assert_eq!(replies.len(), 1);
    assert_eq!((replies[0].context, replies[0].status), (2, 401));
    assert_eq!(replies[0].details, "actwarden_kid_unknown");
    assert!(root.plugin().unwrap().waiters.borrow().is_empty());
}

#[test]
fn a_provider_without_keys_answers_jwks_unavailable_at_once() {
    let (fake, root) = configured(&config());
    let (_filter, action) = remote_request(&fake, &root, 2);
    assert_eq!(action, Action::Pause);
    let replies = fake.replies();
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0].status, 503);
    assert_eq!(replies[0].details, "actwarden_jwks_unavailable");
    assert!(root.plugin().unwrap().waiters.borrow().is_empty());
}

/// Publishes only `remote_a` and returns a bearer token signed by `remote_b`: a `kid` the
/// worker does not know, so the request waits for a refetch.
fn unknown_kid_auth(fake: &FakeHost) -> String {
    remote_keys_published(fake, &[&keys().remote_a]);
    bearer(&token(&keys().remote_b, "https://sts.example.com"))
}

#[test]
fn a_request_that_goes_away_while_waiting_is_forgotten() {
    let (fake, root) = configured(&config());
    let auth = unknown_kid_auth(&fake);
    let mut headers = get("/remote/x");
    headers.push(("authorization", auth.as_str()));
    let (filter, action) = request(&fake, &root, 2, &headers);
    assert_eq!(action, Action::Pause);
    assert_eq!(root.plugin().unwrap().waiters.borrow().len(), 1);
    drop(filter);
    assert!(root.plugin().unwrap().waiters.borrow().is_empty());
}

#[test]
fn past_the_waiting_cap_an_unknown_kid_is_decided_at_once() {
    let (fake, root) = configured(&config());
    let auth = unknown_kid_auth(&fake);
    let mut headers = get("/remote/x");
    headers.push(("authorization", auth.as_str()));

    let mut parked = Vec::new();
    for i in 0..MAX_WAITING_REQUESTS {
        let context_id = 2 + u32::try_from(i).unwrap();
        let (filter, action) = request(&fake, &root, context_id, &headers);
        assert_eq!(action, Action::Pause);
        parked.push(filter);
    }
    assert!(fake.replies().is_empty());
    let waiting = || root.plugin().unwrap().waiters.borrow().len();
    assert_eq!(waiting(), MAX_WAITING_REQUESTS);

    let extra = 2 + u32::try_from(MAX_WAITING_REQUESTS).unwrap();
    let (_filter, action) = request(&fake, &root, extra, &headers);
    assert_eq!(action, Action::Pause);
    let replies = fake.replies();
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0].context, extra);
    assert_eq!(replies[0].status, 401);
    assert_eq!(replies[0].details, "actwarden_kid_unknown");
    assert_eq!(waiting(), MAX_WAITING_REQUESTS);
}

/// A POST with a body whose token's `kid` is unknown: parked at its headers. Keep the
/// filter (dropping it is the stream going away).
fn parked_post(fake: &FakeHost, root: &Root<FakeHost>, context_id: u32) -> Filter<FakeHost> {
    let auth = unknown_kid_auth(fake);
    let headers = [
        (":method", "POST"),
        (":path", "/remote/x"),
        (":authority", "api.example.com"),
        ("authorization", auth.as_str()),
    ];
    fake.enter_request(context_id, &headers);
    let mut filter = root.filter(context_id).unwrap();
    assert_eq!(
        filter.on_http_request_headers(headers.len(), false),
        Action::Pause
    );
    assert_eq!(root.plugin().unwrap().waiters.borrow().len(), 1);
    // With `allow_on_headers_stop_iteration` the host calls the body and trailers
    // callbacks of a parked request: none may let it go on before the decision.
    fake.with_request(context_id, |r| r.body = b"{\"a\":1}".to_vec());
    assert_eq!(filter.on_http_request_body(4, false), Action::Pause);
    assert_eq!(filter.on_http_request_body(7, true), Action::Pause);
    assert_eq!(filter.on_http_request_trailers(0), Action::Pause);
    assert!(fake.replies().is_empty());
    assert!(root.plugin().unwrap().body_while_held.get());
    filter
}

#[test]
fn a_body_arriving_while_parked_for_a_refetch_waits_for_the_allow() {
    let (fake, mut root) = configured(&config());
    let mut filter = parked_post(&fake, &root, 2);
    fake.enter(ROOT);
    root.on_tick();
    let token = fake.dispatches()[0].token;
    let body = public_jwks(&[&keys().remote_a, &keys().remote_b])
        .to_string()
        .into_bytes();
    fake.state().call_response = (Some(200), body.clone());
    root.on_http_call_response(token, 1, body.len(), 0);
    assert!(fake.calls().contains(&Call::Resume(2)));
    assert_eq!(fake.header(2, "x-agent-subject").as_deref(), Some("alice"));
    // Resumed: what arrives from now on goes on.
    fake.enter(2);
    assert_eq!(filter.on_http_request_body(7, true), Action::Continue);
    assert!(root.plugin().unwrap().outcomes.borrow().is_empty());
}

#[test]
fn a_body_arriving_while_parked_for_a_refetch_is_never_forwarded_on_deny() {
    let (fake, mut root) = configured(&config());
    let mut filter = parked_post(&fake, &root, 2);
    fake.enter(ROOT);
    root.on_tick();
    let token = fake.dispatches()[0].token;
    fake.state().call_response = (Some(500), Vec::new());
    root.on_http_call_response(token, 0, 0, 0);
    assert_eq!(fake.replies()[0].status, 401);
    assert!(!fake.calls().iter().any(|c| matches!(c, Call::Resume(_))));
    fake.enter(2);
    assert_eq!(filter.on_http_request_body(7, true), Action::Pause);
    assert_eq!(filter.on_http_request_trailers(0), Action::Pause);
}

#[test]
fn a_decided_request_passes_its_body_and_trailers_on() {
    let (fake, root) = configured(&config());
    let auth = bearer(&local_token());
    let headers = [
        (":method", "POST"),
        (":path", "/api/items"),
        ("authorization", auth.as_str()),
    ];
    fake.enter_request(2, &headers);
    let mut filter = root.filter(2).unwrap();
    assert_eq!(filter.on_http_request_headers(3, false), Action::Continue);
    assert_eq!(filter.on_http_request_body(10, false), Action::Continue);
    assert_eq!(filter.on_http_request_trailers(0), Action::Continue);
    // A denied one does not.
    fake.enter_request(3, &[(":method", "POST"), (":path", "/api/items")]);
    let mut filter = root.filter(3).unwrap();
    assert_eq!(filter.on_http_request_headers(2, false), Action::Pause);
    assert_eq!(filter.on_http_request_body(10, true), Action::Pause);
}

/// The exports' routing (`exports::Contexts`), as Envoy drives it: roots by id, a request
/// context per stream under its root, each callback to its own filter, deleted contexts
/// forgotten.
#[test]
fn contexts_route_every_callback_to_its_own_request_and_forget_deleted_ones() {
    use super::exports::Contexts;
    let fake = FakeHost::default();
    {
        let mut state = fake.state();
        state.now_ms = NOW_S * 1000;
        state.plugin_configuration = Some(config().to_string().into_bytes());
    }
    let mut contexts = Contexts::new(fake.clone());
    contexts.on_context_create(ROOT, 0);
    assert!(contexts.on_configure(ROOT, 0));

    let token = bearer(&local_token());
    let mut allowed = get("/api/x");
    allowed.push(("authorization", &token));
    fake.enter_request(2, &allowed);
    contexts.on_context_create(2, ROOT);
    fake.enter_request(3, &get("/api/x"));
    contexts.on_context_create(3, ROOT);
    assert_eq!(contexts.request_count(), 2);

    // Interleaved, as a worker's streams are: each answer is its own request's.
    fake.enter(3);
    assert_eq!(contexts.on_request_headers(3, 3, true), Action::Pause);
    fake.enter(2);
    assert_eq!(contexts.on_request_headers(2, 4, true), Action::Continue);
    assert_eq!(fake.header(2, "x-agent-subject").as_deref(), Some("alice"));
    assert_eq!(fake.header(3, "x-agent-subject"), None);
    let replies = fake.replies();
    assert_eq!(replies.len(), 1);
    assert_eq!((replies[0].context, replies[0].status), (3, 401));
    // A decided request's body and response go on; a refused one's body never does.
    assert_eq!(contexts.on_request_body(2, 10, true), Action::Continue);
    assert_eq!(contexts.on_response_headers(2, 2, false), Action::Continue);
    assert_eq!(contexts.on_request_body(3, 10, true), Action::Pause);

    contexts.on_delete(2);
    contexts.on_delete(3);
    assert_eq!(contexts.request_count(), 0);
    assert_eq!(contexts.root_count(), 1);
    contexts.on_delete(ROOT);
    assert_eq!(contexts.root_count(), 0);
}

/// A request under a root that has no configuration (its `on_configure` failed) or under
/// no known root is refused at its headers with a 500, and never let through after; a
/// callback for an id never created is a no-op, not a panic.
#[test]
fn contexts_refuse_a_request_no_configured_root_can_decide() {
    use super::exports::Contexts;
    let fake = FakeHost::default();
    fake.state().plugin_configuration = Some(br#"{"providers": 7}"#.to_vec());
    let mut contexts = Contexts::new(fake.clone());
    contexts.on_context_create(ROOT, 0);
    assert!(!contexts.on_configure(ROOT, 0));

    for (id, parent) in [(4, ROOT), (5, 99)] {
        fake.enter_request(id, &get("/api/x"));
        contexts.on_context_create(id, parent);
        assert_eq!(contexts.on_request_headers(id, 3, false), Action::Pause);
        assert_eq!(contexts.on_request_body(id, 10, false), Action::Pause);
        assert_eq!(contexts.on_request_trailers(id, 1), Action::Pause);
        // The refusal's own response goes out.
        assert_eq!(contexts.on_response_headers(id, 2, false), Action::Continue);
        assert_eq!(contexts.on_response_body(id, 10, true), Action::Continue);
    }
    let replies = fake.replies();
    assert_eq!(
        replies
            .iter()
            .map(|r| (r.context, r.status, r.details.as_str()))
            .collect::<Vec<_>>(),
        [
            (4, 500, "actwarden_internal_error"),
            (5, 500, "actwarden_internal_error")
        ]
    );
    assert_eq!(contexts.request_count(), 0);

    assert!(!contexts.on_configure(42, 0));
    contexts.on_context_create(ROOT, 0);
    assert_eq!(contexts.root_count(), 1);
    contexts.on_tick(42);
    contexts.on_http_call_response(42, 1, 0, 0, 0);
    contexts.on_delete(42);
    assert_eq!(contexts.root_count(), 1);
}

/// The exports against a host that sends anything in any order: ids created twice or
/// never, callbacks after a delete, roots deleted under live requests, requests under
/// unconfigured or unknown roots. Nothing panics, and a request the filter cannot decide
/// never goes on: every request-side callback of a request with no filter holds it, and
/// its headers are answered 500.
#[test]
fn contexts_survive_any_order_of_callbacks_and_never_pass_an_undecided_request() {
    use super::exports::Contexts;
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    // How often a request with a filter was decided: the sequences reach that state.
    let mut decided = 0;
    let mut next = |bound: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % bound
    };
    for _ in 0..1000 {
        let fake = FakeHost::default();
        {
            let mut state = fake.state();
            state.now_ms = NOW_S * 1000;
            state.plugin_configuration = Some(config().to_string().into_bytes());
        }
        let mut contexts = Contexts::new(fake.clone());
        // What the sequence has made so far: live requests that have a filter.
        let mut filtered: Vec<u32> = Vec::new();
        let mut configured_roots: Vec<u32> = Vec::new();
        for _ in 0..60 {
            let id = 1 + u32::try_from(next(4)).unwrap();
            match next(10) {
                0 => {
                    let parent = u32::try_from(next(3)).unwrap();
                    contexts.on_context_create(id, parent);
                    if parent == 0 {
                        configured_roots.retain(|r| *r != id);
                    } else {
                        filtered.retain(|r| *r != id);
                        if configured_roots.contains(&parent) {
                            filtered.push(id);
                        }
                    }
                }
                1 => {
                    if contexts.on_configure(id, 0) {
                        configured_roots.push(id);
                    }
                }
                2 => {
                    fake.enter_request(id, &get("/api/x"));
                    let replies = fake.replies().len();
                    let action = contexts.on_request_headers(id, 3, false);
                    if filtered.contains(&id) {
                        decided += 1;
                    } else {
                        assert_eq!(action, Action::Pause);
                        let sent = fake.replies();
                        assert_eq!(sent.len(), replies + 1);
                        assert_eq!(sent.last().unwrap().status, 500);
                    }
                }
                3 => {
                    let action = contexts.on_request_body(id, 4, next(2) == 0);
                    assert!(filtered.contains(&id) || action == Action::Pause);
                }
                4 => {
                    let action = contexts.on_request_trailers(id, 1);
                    assert!(filtered.contains(&id) || action == Action::Pause);
                }
                5 => {
                    contexts.on_response_headers(id, 2, false);
                }
                6 => {
                    contexts.on_response_body(id, 4, true);
                }
                7 => {
                    // A request's id deletes the request; any other, the root.
                    contexts.on_delete(id);
                    if filtered.contains(&id) {
                        filtered.retain(|r| *r != id);
                    } else {
                        configured_roots.retain(|r| *r != id);
                    }
                }
                8 => contexts.on_tick(id),
                _ => contexts.on_http_call_response(id, 1, 0, 0, 0),
            }
        }
    }
    assert!(
        decided > 20,
        "only {decided} requests with a filter decided"
    );
}
