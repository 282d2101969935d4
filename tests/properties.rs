#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Property tests: the core never panics on untrusted input (SPEC §8: "The filter never
//! panics on input"), and a properly signed token whose claims have the wrong types is
//! never silently allowed (SPEC §2 "Time", §4 step 4).
//!
//! (a) arbitrary tokens, (b) arbitrary configurations, (c) arbitrary signed claims,
//! (d) arbitrary REQUEST.json, (e) arbitrary requests built directly.

use actwarden::api::check_json;
use actwarden::mint::{self, SigningKey};
use actwarden::Alg;
use actwarden::Peer;
use actwarden::{decide, Context, NoRemoteKeys, Policy, Reason, Request, UnixTime};
use actwarden::{parse_jwks, KeySet, KeySource};
use actwarden_test_support::Decided;
use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;
use ring::rand::SystemRandom;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::OnceLock;

const NOW: u64 = 1_700_000_000;
const ISS: &str = "https://sts.example.com";
const AUD: &str = "api";
const MAX_LIFETIME: u64 = 3600;
const MAX_CHAIN_DEPTH: usize = 4;

/// `n` cases, or `PROPTEST_CASES` when set (for a longer soak).
fn cases(n: u32) -> ProptestConfig {
    let n = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(n);
    ProptestConfig {
        cases: n,
        // Do not write regression files into the working tree; failures print the input.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------------------
// Fixture: two signing keys and a policy that trusts them.

struct Fixture {
    es256: SigningKey,
    eddsa: SigningKey,
    jwks: Value,
    config: Value,
    policy: Policy,
    /// The same policy with trust-domain pinning and an actor allowlist with ceilings.
    strict: Policy,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let rng = SystemRandom::new();
        let es256 = SigningKey::generate(Alg::ES256, "es-1", &rng).unwrap();
        let eddsa = SigningKey::generate(Alg::EdDSA, "ed-1", &rng).unwrap();
        let jwks = mint::public_jwks(&[&es256, &eddsa]);
        let config = base_config(&jwks);
        let policy = Policy::from_json(&config.to_string()).expect("the base policy loads");
        let mut strict = config.clone();
        strict["identity"]["trust_domains"] = json!(["prod.example.com"]);
        strict["identity"]["actors"] = json!({
            "spiffe://prod.example.com/agent/a": { "max_scopes": ["read", "write"] },
            "spiffe://prod.example.com/agent/b": { "max_scopes": ["read"] },
            "spiffe://prod.example.com/agent/c": { "max_scopes": ["write"] },
            "spiffe://prod.example.com/agent/d": {}
        });
        let strict = Policy::from_json(&strict.to_string()).expect("the strict policy loads");
        Fixture {
            es256,
            eddsa,
            jwks,
            config,
            policy,
            strict,
        }
    })
}

fn base_config(jwks: &Value) -> Value {
    json!({
        "providers": {
            "corp": {
                "issuer": ISS,
                "audiences": [AUD],
                "local_jwks": { "inline_string": jwks.to_string() },
                "algorithms": ["ES256", "EdDSA"],
                "token_types": ["at+jwt", "jwt"],
                "clock_skew_s": 0,
                "max_lifetime_s": MAX_LIFETIME,
                "from_headers": [{ "name": "authorization", "value_prefix": "Bearer " }]
            }
        },
        "identity": {
            "human_profiles": ["user"],
            "max_chain_depth": MAX_CHAIN_DEPTH
        },
        "binding": { "cnf": "if_present", "actor_must_match_peer": false },
        "revoked": { "jti": ["revoked"], "subjects": ["revoked-sub"], "actors": ["revoked-actor"] },
        "rules": [
            { "id": "anon", "match": { "path_prefix": "/anon" }, "allow_anonymous": true },
            { "id": "any", "match": { "path_prefix": "/any" }, "providers": ["corp"] },
            { "id": "scoped", "match": { "path_prefix": "/scoped", "methods": ["GET", "POST"] },
              "providers": ["corp"], "require": { "scopes": ["read"] } },
            { "id": "deleg", "match": { "path_prefix": "/deleg" }, "providers": ["corp"],
              "require": { "delegated": true, "human_subject": true, "max_chain_depth": 3 } },
            { "id": "fresh", "match": { "path_exact": "/fresh" }, "providers": ["corp"],
              "require": { "fresh_auth_s": 300, "claims": { "acr": ["gold"] } } }
        ],
        "on_no_match": "deny"
    })
}

fn decide_with(policy: &Policy, request: &Request) -> Decided {
    let ctx = Context {
        policy,
        remote_keys: &NoRemoteKeys,
        crypto: &actwarden::RING,
        cache: None,
        replay: &actwarden::MemoryWindow::new(),
        shared: None,
    };
    Decided::new(decide(ctx, request, UnixTime::from_secs(NOW)), request)
}

fn bearer_request(path: &str, token: &str) -> Request {
    Request {
        method: "GET".into(),
        path: path.into(),
        authority: Some("api.example.com".into()),
        headers: vec![("authorization".into(), format!("Bearer {token}"))],
        peer: None,
        scheme: None,
        body: None,
    }
}

/// What must hold for every decision, whatever the input.
fn assert_well_formed(d: &Decided) {
    assert_eq!(d.is_allowed(), d.audit.decision == "allow");
    assert_eq!(d.reason(), d.audit.reason);
    if d.is_allowed() {
        assert!(matches!(
            d.reason(),
            Reason::Allowed | Reason::AllowedAnonymous
        ));
        assert!(d.response().is_none());
        assert!(d.audit.status.is_none());
    } else {
        let response = d.response().expect("a deny has a response");
        assert!(d.identity_headers().next().is_none());
        assert!(d.audit.detail.is_some());
        let status = d.audit.status.expect("a deny has a status");
        assert!([401, 403, 503].contains(&status), "status {status}");
        assert!(response.http_status == status || response.http_status == 200);
    }
    for (name, _) in d.identity_headers() {
        assert!(name.starts_with("x-agent-"), "{name}");
    }
    assert!(!d.audit.path.contains('?'));
    // The audit record always serializes to one line.
    let line = d.audit.to_json_line();
    assert!(!line.contains('\n'));
    assert!(serde_json::from_str::<Value>(&line).is_ok());
}

/// Identity fields come only from a verified token (SPEC §6).
fn assert_no_unverified_identity(d: &Decided) {
    let a = &d.audit;
    assert!(
        a.iss.is_none()
            && a.sub.is_none()
            && a.sub_profile.is_none()
            && a.actor.is_none()
            && a.chain.is_none()
            && a.scopes.is_none()
            && a.jti.is_none(),
        "identity from an unverified token: {}",
        a.to_json_line()
    );
}

// ---------------------------------------------------------------------------------------
// Arbitrary JSON

const KNOWN_KEYS: &[&str] = &[
    "providers",
    "issuer",
    "audiences",
    "local_jwks",
    "inline_string",
    "filename",
    "remote_jwks",
    "http_uri",
    "uri",
    "cluster",
    "timeout_ms",
    "cache_duration_s",
    "max_stale_s",
    "algorithms",
    "token_types",
    "clock_skew_s",
    "max_lifetime_s",
    "from_headers",
    "name",
    "value_prefix",
    "identity",
    "trust_domains",
    "human_profiles",
    "max_chain_depth",
    "actors",
    "max_scopes",
    "binding",
    "cnf",
    "actor_must_match_peer",
    "revoked",
    "jti",
    "subjects",
    "rules",
    "id",
    "match",
    "path_prefix",
    "path_exact",
    "methods",
    "allow_anonymous",
    "require",
    "scopes",
    "human_subject",
    "delegated",
    "fresh_auth_s",
    "claims",
    "on_no_match",
    "keys",
    "kty",
    "crv",
    "x",
    "y",
    "d",
    "k",
    "n",
    "e",
    "kid",
    "alg",
    "use",
    "key_ops",
    "iss",
    "sub",
    "aud",
    "exp",
    "nbf",
    "iat",
    "scope",
    "scp",
    "act",
    "may_act",
    "sub_profile",
    "auth_time",
    "acr",
    "x5t#S256",
    "method",
    "path",
    "authority",
    "headers",
    "peer",
    "uri_san",
    "sha256_digest_hex",
    "certificate_pem",
    "typ",
    "crit",
    "corp",
];

const INTERESTING_STRINGS: &[&str] = &[
    "",
    "none",
    "None",
    "ES256",
    "EdDSA",
    "HS256",
    "RS256",
    "ES512",
    "at+jwt",
    "jwt",
    "application/at+jwt",
    "JWT",
    ISS,
    AUD,
    "alice",
    "user",
    "ai_agent",
    "service",
    "spiffe://prod.example.com/agent/a",
    "spiffe://prod.example.com/agent/b",
    "/",
    "/any",
    "/anon/../any",
    "/any%2e%2e",
    "//any",
    "deny",
    "allow",
    "required",
    "if_present",
    "read",
    "write",
    "read write",
    "1700000300",
    "EC",
    "OKP",
    "oct",
    "RSA",
    "P-256",
    "Ed25519",
    "never",
    "Bearer ",
    "authorization",
    "x-agent-subject",
    "revoked",
    "revoked-sub",
    "revoked-actor",
    "gold",
    "es-1",
    "ed-1",
    "a,b",
    "\u{0}",
    "\n",
    "é",
    "GET",
    "POST",
];

fn arb_key() -> impl Strategy<Value = String> {
    prop_oneof![
        5 => prop::sample::select(KNOWN_KEYS).prop_map(str::to_owned),
        1 => "[a-z_#]{0,8}",
        1 => any::<String>(),
    ]
}

fn arb_number() -> BoxedStrategy<Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f)
            .map(Value::Number)),
        (NOW - 5000..NOW + 5000).prop_map(Value::from),
        (-5000.0f64..5000.0).prop_map(|d| json!(NOW as f64 + d)),
        prop::sample::select(&[0.0, -0.0, 1e300, -1e300, 5e-324, 1.5, 4_294_967_296.0][..])
            .prop_map(|f| json!(f)),
    ]
    .boxed()
}

fn arb_leaf() -> BoxedStrategy<Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        arb_number(),
        prop::sample::select(INTERESTING_STRINGS).prop_map(Value::from),
        "[ -~]{0,16}".prop_map(Value::from),
        any::<String>().prop_map(Value::from),
    ]
    .boxed()
}

fn arb_json() -> BoxedStrategy<Value> {
    arb_leaf()
        .prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::vec((arb_key(), inner), 0..6)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
        .boxed()
}

// ---------------------------------------------------------------------------------------
// Structured mutation of a valid document: replace, remove or add at a random place.

#[derive(Debug, Clone)]
enum Edit {
    Replace(usize, Value),
    Remove(usize),
    Insert(usize, String, Value),
}

fn arb_edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        3 => (any::<usize>(), arb_json()).prop_map(|(i, v)| Edit::Replace(i, v)),
        1 => any::<usize>().prop_map(Edit::Remove),
        1 => (any::<usize>(), arb_key(), arb_json()).prop_map(|(i, k, v)| Edit::Insert(i, k, v)),
    ]
}

fn pointer_token(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

fn pointers(v: &Value, at: String, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                pointers(child, format!("{at}/{}", pointer_token(k)), out);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                pointers(child, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
    out.push(at);
}

fn apply(doc: &mut Value, edit: &Edit) {
    let mut all = Vec::new();
    pointers(doc, String::new(), &mut all);
    let pick = |i: usize| all[i % all.len()].clone();
    match edit {
        Edit::Replace(i, v) => {
            if let Some(slot) = doc.pointer_mut(&pick(*i)) {
                *slot = v.clone();
            }
        }
        Edit::Remove(i) => {
            let at = pick(*i);
            let Some((parent, last)) = at.rsplit_once('/') else {
                return;
            };
            let last = last.replace("~1", "/").replace("~0", "~");
            match doc.pointer_mut(parent) {
                Some(Value::Object(m)) => {
                    m.remove(&last);
                }
                Some(Value::Array(a)) => {
                    if let Ok(i) = last.parse::<usize>() {
                        if i < a.len() {
                            a.remove(i);
                        }
                    }
                }
                _ => {}
            }
        }
        Edit::Insert(i, k, v) => match doc.pointer_mut(&pick(*i)) {
            Some(Value::Object(m)) => {
                m.insert(k.clone(), v.clone());
            }
            Some(Value::Array(a)) => a.push(v.clone()),
            _ => {}
        },
    }
}

// ---------------------------------------------------------------------------------------
// (a) arbitrary tokens

fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn arb_dotted_token() -> impl Strategy<Value = String> {
    let part = prop_oneof![
        "[A-Za-z0-9_-]{0,60}",
        "[A-Za-z0-9_=+/.-]{0,40}",
        arb_json().prop_map(|v| b64(v.to_string().as_bytes())),
        prop::collection::vec(any::<u8>(), 0..80).prop_map(|b| b64(&b)),
    ];
    (part.clone(), part.clone(), part).prop_map(|(h, p, s)| format!("{h}.{p}.{s}"))
}

/// A real header, claims that would pass, and a signature that is not theirs.
fn arb_resigned_token() -> impl Strategy<Value = String> {
    (
        prop::sample::select(
            &[
                r#"{"alg":"ES256","kid":"es-1","typ":"at+jwt"}"#,
                r#"{"alg":"EdDSA","kid":"ed-1","typ":"at+jwt"}"#,
                r#"{"alg":"ES256","typ":"at+jwt"}"#,
                r#"{"alg":"HS256","kid":"es-1","typ":"at+jwt"}"#,
                r#"{"alg":"none","typ":"at+jwt"}"#,
                r#"{"alg":"EdDSA","kid":"es-1"}"#,
            ][..],
        ),
        prop::collection::vec(any::<u8>(), 0..96),
    )
        .prop_map(|(header, sig)| {
            let claims = json!({ "iss": ISS, "aud": AUD, "sub": "victim", "exp": NOW + 100,
                                 "scope": "read", "jti": "forged" });
            format!(
                "{}.{}.{}",
                b64(header.as_bytes()),
                b64(claims.to_string().as_bytes()),
                b64(&sig)
            )
        })
}

proptest! {
    #![proptest_config(cases(512))]

    #[test]
    fn a_arbitrary_string_token_never_panics_nor_allows(
        token in prop_oneof![
            any::<String>(),
            prop::collection::vec(any::<u8>(), 0..600)
                .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
            arb_dotted_token(),
            arb_resigned_token(),
        ],
        path in prop::sample::select(&["/any", "/scoped", "/deleg", "/fresh", "/anon"][..]),
    ) {
        let f = fixture();
        let d = decide_with(&f.policy, &bearer_request(path, &token));
        assert_well_formed(&d);
        // No string that is not a token signed by a configured key can be accepted — except
        // on the anonymous route when the header carries no token at all.
        if d.is_allowed() {
            prop_assert_eq!(path, "/anon");
            prop_assert_eq!(d.reason(), Reason::AllowedAnonymous);
            prop_assert!(token.trim().is_empty(), "allowed with token {:?}", token);
        }
        assert_no_unverified_identity(&d);
        prop_assert!(d.identity_headers().next().is_none());
        // Nor in the detail or anywhere else in the record (the re-signed tokens claim
        // `sub: victim`, `jti: forged`).
        let line = d.audit.to_json_line();
        prop_assert!(!line.contains("victim") && !line.contains("forged"), "{}", line);
    }

    #[test]
    fn a_arbitrary_token_in_any_header_never_panics(
        headers in prop::collection::vec(
            (prop_oneof![
                Just("authorization".to_owned()),
                Just("Authorization".to_owned()),
                Just("x-agent-subject".to_owned()),
                Just("content-type".to_owned()),
                Just("traceparent".to_owned()),
                Just("x-request-id".to_owned()),
                any::<String>(),
            ],
            prop_oneof![
                any::<String>(),
                arb_dotted_token().prop_map(|t| format!("Bearer {t}")),
                arb_dotted_token().prop_map(|t| format!("bEaReR   {t}  ")),
            ]),
            0..5,
        ),
    ) {
        let f = fixture();
        let request = Request {
            scheme: None,
            method: "GET".into(),
            path: "/any".into(),
            authority: None,
            headers,
            peer: None,
            body: None,
        };
        let d = decide_with(&f.policy, &request);
        assert_well_formed(&d);
        prop_assert!(!d.is_allowed());
        assert_no_unverified_identity(&d);
    }
}

// ---------------------------------------------------------------------------------------
// (b) arbitrary configurations

fn probe_requests(f: &Fixture) -> Vec<Request> {
    let rng = SystemRandom::new();
    let claims = json!({ "iss": ISS, "aud": AUD, "sub": "alice", "sub_profile": "user",
                         "exp": NOW + 100, "iat": NOW - 10, "scope": "read",
                         "acr": "gold", "act": { "sub": "spiffe://prod.example.com/agent/a" } });
    let token = f.es256.mint(Alg::ES256, &claims, None, &rng).unwrap();
    ["/any", "/scoped", "/deleg", "/fresh", "/anon", "/other"]
        .iter()
        .map(|p| bearer_request(p, &token))
        .chain(std::iter::once(Request {
            method: "POST".into(),
            path: "/any".into(),
            ..Request::default()
        }))
        .collect()
}

fn file_reader(name: &str) -> Result<String, actwarden::FileError> {
    match name {
        "jwks.json" => Ok(fixture().jwks.to_string()),
        "empty.json" => Ok(String::new()),
        "garbage.json" => Ok("{\"keys\": [".into()),
        _ => Err(actwarden::FileError::Unreadable {
            path: name.into(),
            kind: std::io::ErrorKind::NotFound,
            message: "no such file".into(),
        }),
    }
}

proptest! {
    #![proptest_config(cases(512))]

    #[test]
    fn b_arbitrary_json_config_is_ok_or_err(config in arb_json()) {
        let text = config.to_string();
        let _ = Policy::from_json(&text);
        let _ = Policy::from_json_with_files(&text, &file_reader);
        let _ = Policy::from_value_with_files(config, &file_reader);
    }

    #[test]
    fn b_arbitrary_config_text_is_ok_or_err(text in prop_oneof![
        any::<String>(),
        "[\\[\\]{}\":,0-9a-z ]{0,64}",
    ]) {
        let loaded = Policy::from_json(&text);
        // Anything that is not a JSON object cannot be a configuration.
        if serde_json::from_str::<Value>(&text).map_or(true, |v| !v.is_object()) {
            prop_assert!(loaded.is_err());
        }
    }

    #[test]
    fn b_mutated_valid_config_is_ok_or_err_and_then_decides(
        edits in prop::collection::vec(arb_edit(), 1..4),
        mutate_jwks in any::<bool>(),
        use_file in any::<bool>(),
    ) {
        let f = fixture();
        let mut config = f.config.clone();
        let mut jwks = f.jwks.clone();
        for edit in &edits {
            if mutate_jwks {
                apply(&mut jwks, edit);
            } else {
                apply(&mut config, edit);
            }
        }
        if mutate_jwks {
            let _ = parse_jwks(&jwks.to_string(), KeySource::Configured);
            let _ = parse_jwks(&jwks.to_string(), KeySource::Fetched);
            if let Some(slot) = config.pointer_mut("/providers/corp/local_jwks") {
                *slot = json!({ "inline_string": jwks.to_string() });
            }
        } else if use_file {
            if let Some(slot) = config.pointer_mut("/providers/corp/local_jwks") {
                *slot = json!({ "filename": "jwks.json" });
            }
        }
        let loaded = Policy::from_json_with_files(&config.to_string(), &file_reader);
        if let Ok(policy) = loaded {
            for request in probe_requests(f) {
                assert_well_formed(&decide_with(&policy, &request));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// (c) signed tokens with arbitrary claims

const ACTORS: &[&str] = &[
    "spiffe://prod.example.com/agent/a",
    "spiffe://prod.example.com/agent/b",
    "spiffe://prod.example.com/agent/c",
    "spiffe://prod.example.com/agent/d",
];

/// Claims that are well-formed, in many shapes (the policy may still deny them: a cycle in
/// the chain, a missing scope, a revoked `jti`, …).
fn arb_valid_claims() -> impl Strategy<Value = Value> {
    let who = (
        prop::sample::select(
            &[
                "alice",
                "bob",
                "revoked-sub",
                "spiffe://prod.example.com/agent/a",
            ][..],
        ),
        prop_oneof![
            Just(json!(AUD)),
            Just(json!(["other", AUD])),
            Just(json!([AUD]))
        ],
        prop::option::of(prop::sample::select(&["user", "ai_agent", "service"][..])),
        prop::option::of(prop::sample::select(&["jti-1", "revoked"][..])),
    );
    let when = (
        1..MAX_LIFETIME,
        0u64..900,
        any::<bool>(),
        prop::option::of(0u64..900),
    );
    let what = (
        prop_oneof![
            Just(None),
            prop::sample::select(&["read", "read write", "write", "write read"][..])
                .prop_map(|s| Some(("scope", json!(s)))),
            Just(Some(("scp", json!(["read", "write"])))),
        ],
        prop::collection::vec(
            (
                prop::sample::select(ACTORS),
                prop::option::of(prop::sample::select(&["ai_agent", "service"][..])),
            ),
            0..6,
        ),
        prop_oneof![3 => Just(None), 1 => Just(Some(0usize)), 1 => Just(Some(1usize))],
        any::<bool>(),
    );
    (who, when, what).prop_map(
        |(
            (sub, aud, profile, jti),
            (ttl, age, with_iat, auth_age),
            (scope, hops, may_act, acr),
        )| {
            let iat = NOW - age % ttl;
            let mut m = Map::new();
            m.insert("iss".into(), json!(ISS));
            m.insert("sub".into(), json!(sub));
            m.insert("aud".into(), aud);
            m.insert("exp".into(), json!(iat + ttl));
            if with_iat {
                m.insert("iat".into(), json!(iat));
            }
            if let Some(a) = auth_age {
                m.insert("auth_time".into(), json!(NOW - a));
            }
            if let Some(p) = profile {
                m.insert("sub_profile".into(), json!(p));
            }
            if let Some(j) = jti {
                m.insert("jti".into(), json!(j));
            }
            if let Some((name, value)) = scope {
                m.insert(name.into(), value);
            }
            if acr {
                m.insert("acr".into(), json!("gold"));
            }
            let mut act: Option<Value> = None;
            for (actor, profile) in hops.iter().rev() {
                let mut hop = Map::new();
                hop.insert("sub".into(), json!(actor));
                if let Some(p) = profile {
                    hop.insert("sub_profile".into(), json!(p));
                }
                if let Some(prior) = act {
                    hop.insert("act".into(), prior);
                }
                act = Some(Value::Object(hop));
            }
            if let Some(a) = act {
                m.insert("act".into(), a);
            }
            if let Some(i) = may_act {
                let named = hops.get(i).map_or(ACTORS[3], |(a, _)| *a);
                m.insert("may_act".into(), json!({ "sub": named }));
            }
            Value::Object(m)
        },
    )
}

const CLAIM_NAMES: &[&str] = &[
    "iss",
    "sub",
    "aud",
    "exp",
    "nbf",
    "iat",
    "auth_time",
    "jti",
    "scope",
    "scp",
    "act",
    "may_act",
    "cnf",
    "sub_profile",
    "acr",
];

/// Values chosen to have the wrong type or shape for some claim, or to sit on a boundary.
fn arb_claim_value() -> BoxedStrategy<Value> {
    prop_oneof![
        3 => arb_json(),
        2 => arb_number(),
        1 => prop::sample::select(vec![
            json!("never"), json!("1700000300"), json!(null), json!(true), json!([]), json!({}),
            json!(NOW), json!(NOW + 1), json!(NOW - 1), json!(NOW as f64 + 0.5),
            json!(NOW as f64 - 0.5), json!(1e300), json!(-1), json!(["read"]), json!("read"),
            json!({ "sub": "spiffe://prod.example.com/agent/a" }),
            json!({ "sub": 42 }), json!({ "sub": "" }), json!({ "sub": "a,b" }),
            json!({ "sub": "x\u{7}y" }), json!({ "x5t#S256": "AAAA" }),
            json!({ "x5t#S256": b64(&[7u8; 32]) }), json!({ "jkt": "abc" }),
            json!(AUD), json!([AUD, 7]), json!(ISS), json!("alice"), json!(""),
        ]),
    ]
    .boxed()
}

#[derive(Debug, Clone)]
enum ClaimEdit {
    /// Set (or, with `None`, remove) a top-level claim.
    Set(&'static str, Option<Value>),
    /// Anywhere in the claims, including inside `act` chains.
    Anywhere(Edit),
}

fn arb_claim_edit() -> impl Strategy<Value = ClaimEdit> {
    prop_oneof![
        3 => (prop::sample::select(CLAIM_NAMES), prop::option::of(arb_claim_value()))
            .prop_map(|(k, v)| ClaimEdit::Set(k, v)),
        1 => arb_edit().prop_map(ClaimEdit::Anywhere),
    ]
}

/// Valid claims with 0 to 3 edits: about a third are left untouched, so allows happen and
/// the invariants checked on allow are exercised.
fn arb_claims() -> impl Strategy<Value = Value> {
    (
        arb_valid_claims(),
        prop::collection::vec(arb_claim_edit(), 0..3),
    )
        .prop_map(|(mut claims, edits)| {
            for edit in edits {
                match edit {
                    ClaimEdit::Set(k, Some(v)) => {
                        if let Some(m) = claims.as_object_mut() {
                            m.insert(k.to_owned(), v);
                        }
                    }
                    ClaimEdit::Set(k, None) => {
                        if let Some(m) = claims.as_object_mut() {
                            m.remove(k);
                        }
                    }
                    ClaimEdit::Anywhere(e) => apply(&mut claims, &e),
                }
            }
            if !claims.is_object() {
                // `mint` signs only objects; keep the case instead of discarding it.
                claims = json!({ "iss": ISS, "sub": "alice", "exp": NOW + 1, "aud": AUD,
                                 "wrapped": claims });
            }
            claims
        })
}

fn arb_extra_header() -> impl Strategy<Value = Option<Map<String, Value>>> {
    prop_oneof![
        4 => Just(None),
        1 => prop::collection::vec(
            (
                prop::sample::select(&["typ", "kid", "crit", "b64", "jku", "x5u", "zip", "cty", "alg"][..])
                    .prop_map(str::to_owned),
                prop_oneof![
                    prop::sample::select(&[
                        "at+jwt", "JWT", "application/at+jwt", "application/jwt", "dpop+jwt",
                        "es-1", "ed-1", "HS256", "none", "EdDSA", "ES256",
                    ][..]).prop_map(Value::from),
                    arb_json(),
                ],
            ),
            1..3,
        )
        .prop_map(|kv| Some(kv.into_iter().collect())),
    ]
}

fn as_number(v: Option<&Value>) -> Option<f64> {
    v.and_then(Value::as_f64)
}

/// What an allow implies about the signed claims (SPEC §2, §3, §4 step 4–8).
fn check_allowed_claims(
    d: &Decided,
    claims: &Value,
    header_alg: Option<&Value>,
    signed_with: Alg,
    path: &str,
) -> Result<(), TestCaseError> {
    let now = NOW as f64;
    let exp = claims.get("exp");
    prop_assert!(
        exp.is_some_and(Value::is_number),
        "allowed with exp {:?}",
        exp
    );
    let exp = as_number(exp).unwrap();
    prop_assert!(exp > now, "allowed with exp {} <= now {}", exp, now);
    let sub = claims.get("sub").and_then(Value::as_str);
    prop_assert!(
        sub.is_some_and(|s| !s.is_empty()),
        "allowed with sub {:?}",
        claims.get("sub")
    );
    prop_assert_eq!(d.audit.sub.as_deref(), sub);
    prop_assert_eq!(
        d.identity_headers()
            .find(|(n, _)| *n == "x-agent-subject")
            .map(|(_, v)| v),
        sub
    );
    prop_assert_eq!(claims.get("iss"), Some(&json!(ISS)));
    prop_assert_eq!(
        header_alg,
        Some(&json!(signed_with.name())),
        "alg confusion"
    );
    let aud_ok = match claims.get("aud") {
        Some(Value::String(a)) => a == AUD,
        Some(Value::Array(items)) => {
            items.iter().all(Value::is_string) && items.contains(&json!(AUD))
        }
        _ => false,
    };
    prop_assert!(aud_ok, "allowed with aud {:?}", claims.get("aud"));
    for name in ["nbf", "iat"] {
        if let Some(v) = claims.get(name) {
            prop_assert!(v.is_number(), "allowed with {} {:?}", name, v);
            prop_assert!(
                v.as_f64().unwrap() <= now,
                "allowed with {} in the future",
                name
            );
        }
    }
    if let Some(v) = claims.get("auth_time") {
        prop_assert!(v.is_number(), "allowed with auth_time {:?}", v);
    }
    let start = as_number(claims.get("iat")).unwrap_or(now);
    prop_assert!(
        exp - start <= MAX_LIFETIME as f64,
        "lifetime over max_lifetime_s"
    );
    if let Some(v) = claims.get("scope") {
        prop_assert!(v.is_string(), "allowed with scope {:?}", v);
    }
    if let Some(v) = claims.get("scp") {
        prop_assert!(
            v.is_string() || v.as_array().is_some_and(|a| a.iter().all(Value::is_string)),
            "allowed with scp {:?}",
            v
        );
    }
    if let Some(v) = claims.get("jti") {
        prop_assert!(v.is_string(), "allowed with jti {:?}", v);
        prop_assert_ne!(v, &json!("revoked"));
    }
    prop_assert_ne!(sub, Some("revoked-sub"));
    prop_assert!(
        claims.get("cnf").is_none(),
        "allowed with cnf but no peer certificate"
    );
    // The chain: every act an object with a string sub, depth within the identity limit.
    let mut chain = Vec::new();
    let mut next = claims.get("act");
    while let Some(act) = next {
        let hop = act.as_object();
        prop_assert!(hop.is_some(), "allowed with act {:?}", act);
        let hop_sub = hop.and_then(|h| h.get("sub")).and_then(Value::as_str);
        prop_assert!(
            hop_sub.is_some_and(|s| !s.is_empty()),
            "allowed with act.sub {:?}",
            act
        );
        chain.push(hop_sub.unwrap().to_owned());
        next = act.get("act");
    }
    prop_assert!(
        chain.len() <= MAX_CHAIN_DEPTH,
        "chain of {} allowed",
        chain.len()
    );
    prop_assert!(!chain.iter().any(|a| a == "revoked-actor"));
    prop_assert!(
        !chain.iter().any(|a| Some(a.as_str()) == sub),
        "actor equals subject"
    );
    prop_assert_eq!(d.audit.chain.as_ref(), Some(&chain));
    prop_assert_eq!(d.audit.depth, Some(chain.len()));
    if let (Some(may_act), Some(current)) = (claims.get("may_act"), chain.first()) {
        prop_assert_eq!(
            may_act.get("sub").and_then(Value::as_str),
            Some(current.as_str())
        );
    }
    if let Some(may_act) = claims.get("may_act") {
        prop_assert!(may_act.is_object(), "allowed with may_act {:?}", may_act);
        if let (Some(Value::String(want)), Some(current)) = (may_act.get("iss"), claims.get("act"))
        {
            let actor_iss = current.get("iss").and_then(Value::as_str).unwrap_or(ISS);
            prop_assert_eq!(want.as_str(), actor_iss, "may_act.iss names another issuer");
        }
    }
    let scopes = d.audit.scopes.clone().unwrap_or_default();
    match path {
        "/scoped" => prop_assert!(scopes.iter().any(|s| s == "read"), "scopes {:?}", scopes),
        "/deleg" => {
            prop_assert!(!chain.is_empty() && chain.len() <= 3);
            prop_assert_eq!(claims.get("sub_profile"), Some(&json!("user")));
        }
        "/fresh" => {
            let at = as_number(claims.get("auth_time")).or(as_number(claims.get("iat")));
            prop_assert!(at.is_some_and(|t| now - t <= 300.0), "not fresh: {:?}", at);
            prop_assert!(claims.get("acr").is_some());
        }
        _ => {}
    }
    Ok(())
}

/// Under the strict policy an allow also implies: every actor is allowlisted and in the
/// trust domain, a SPIFFE subject is in the trust domain, and the effective scopes are the
/// token's scopes within every ceiling in the chain (SPEC §3).
fn check_allowed_strict(d: &Decided, claims: &Value, path: &str) -> Result<(), TestCaseError> {
    let ceiling = |actor: &str| -> Option<Vec<&str>> {
        match actor {
            "spiffe://prod.example.com/agent/a" => Some(vec!["read", "write"]),
            "spiffe://prod.example.com/agent/b" => Some(vec!["read"]),
            "spiffe://prod.example.com/agent/c" => Some(vec!["write"]),
            _ => None,
        }
    };
    let chain = d.audit.chain.clone().unwrap_or_default();
    for actor in &chain {
        prop_assert!(
            ACTORS.contains(&actor.as_str()),
            "actor {} not allowlisted",
            actor
        );
    }
    if let Some(sub) = claims.get("sub").and_then(Value::as_str) {
        if sub.starts_with("spiffe://") {
            prop_assert!(
                sub.starts_with("spiffe://prod.example.com/"),
                "subject {}",
                sub
            );
        }
    }
    let token_scopes: Vec<String> = match (claims.get("scope"), claims.get("scp")) {
        (Some(Value::String(s)), _) => s
            .split(' ')
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .collect(),
        (None, Some(Value::Array(a))) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        (None, Some(Value::String(s))) => s
            .split(' ')
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    };
    let effective = d.audit.scopes.clone().unwrap_or_default();
    for s in &effective {
        prop_assert!(
            token_scopes.contains(s),
            "effective scope {} not in the token",
            s
        );
        for actor in &chain {
            if let Some(c) = ceiling(actor) {
                prop_assert!(c.contains(&s.as_str()), "{} exceeds {}'s ceiling", s, actor);
            }
        }
    }
    for s in &token_scopes {
        let within = chain
            .iter()
            .all(|a| ceiling(a).is_none_or(|c| c.contains(&s.as_str())));
        prop_assert_eq!(
            effective.contains(s),
            within,
            "scope {} wrongly kept or dropped",
            s
        );
    }
    if path == "/scoped" {
        prop_assert!(effective.iter().any(|s| s == "read"));
    }
    Ok(())
}

proptest! {
    #![proptest_config(cases(512))]

    #[test]
    fn c_signed_arbitrary_claims_never_panic_nor_allow_broken_types(
        claims in arb_claims(),
        use_eddsa in any::<bool>(),
        header in arb_extra_header(),
        path in prop::sample::select(&["/any", "/any", "/scoped", "/deleg", "/fresh", "/anon"][..]),
        strict in any::<bool>(),
    ) {
        let f = fixture();
        let policy = if strict { &f.strict } else { &f.policy };
        let rng = SystemRandom::new();
        let (key, alg) = if use_eddsa { (&f.eddsa, Alg::EdDSA) } else { (&f.es256, Alg::ES256) };
        let token = key.mint(alg, &claims, header.as_ref(), &rng).unwrap();
        let d = decide_with(policy, &bearer_request(path, &token));
        assert_well_formed(&d);
        // What the header ended up as (the extra members may override `alg`).
        let header_alg = header
            .as_ref()
            .and_then(|h| h.get("alg"))
            .filter(|v| !v.is_null())
            .cloned()
            .unwrap_or_else(|| json!(alg.name()));
        if d.is_allowed() {
            prop_assert_eq!(d.reason(), Reason::Allowed, "a token was present and verified");
            check_allowed_claims(&d, &claims, Some(&header_alg), alg, path)?;
            if strict {
                check_allowed_strict(&d, &claims, path)?;
            }
            if let Some(h) = &header {
                prop_assert!(!h.contains_key("crit") || h["crit"].is_null(), "crit accepted");
            }
        }
        // A token that failed before or at the signature leaves no identity in the record.
        if matches!(
            d.reason(),
            Reason::TokenMalformed | Reason::TokenTooLarge | Reason::IssuerUnknown
                | Reason::TypeNotAllowed | Reason::AlgNotAllowed | Reason::KidUnknown
                | Reason::SignatureInvalid | Reason::JwksUnavailable
        ) {
            assert_no_unverified_identity(&d);
        }
        // A claim of the wrong type is never an allow (SPEC §4 step 4: claim_invalid).
        let exp = claims.get("exp");
        if !exp.is_some_and(Value::is_number) || !claims.get("sub").is_some_and(Value::is_string) {
            prop_assert!(!d.is_allowed());
        }
    }

    #[test]
    fn c_valid_claims_are_allowed(
        ttl in 1..MAX_LIFETIME,
        age in 0u64..600,
        use_eddsa in any::<bool>(),
    ) {
        // The control: without mutation, a well-formed token is allowed, so the property
        // above is not vacuous.
        let f = fixture();
        let rng = SystemRandom::new();
        let (key, alg) = if use_eddsa { (&f.eddsa, Alg::EdDSA) } else { (&f.es256, Alg::ES256) };
        let iat = NOW - age.min(ttl - 1).min(MAX_LIFETIME - ttl);
        let claims = json!({ "iss": ISS, "aud": AUD, "sub": "alice", "scope": "read",
                             "iat": iat, "exp": iat + ttl });
        let token = key.mint(alg, &claims, None, &rng).unwrap();
        let d = decide_with(&f.policy, &bearer_request("/scoped", &token));
        prop_assert!(d.is_allowed(), "{}", d.audit.to_json_line());
        check_allowed_claims(&d, &claims, Some(&json!(alg.name())), alg, "/scoped")?;
    }
}

// ---------------------------------------------------------------------------------------
// (d) arbitrary REQUEST.json, (e) arbitrary requests

fn base_request_json() -> Value {
    json!({
        "method": "GET",
        "path": "/any?x=1",
        "authority": "api.example.com",
        "headers": {
            "authorization": "Bearer a.b.c",
            "x-agent-subject": "mallory",
            "x-request-id": "r-1",
            "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "content-type": ["application/grpc", "text/plain"]
        },
        "peer": { "uri_san": "spiffe://prod.example.com/agent/a",
                  "sha256_digest_hex": "00".repeat(32) }
    })
}

proptest! {
    #![proptest_config(cases(256))]

    #[test]
    fn d_arbitrary_request_json_is_ok_or_err(
        doc in prop_oneof![
            arb_json(),
            prop::collection::vec(arb_edit(), 1..4).prop_map(|edits| {
                let mut doc = base_request_json();
                for e in &edits {
                    apply(&mut doc, e);
                }
                doc
            }),
        ],
    ) {
        let text = doc.to_string();
        if let Ok(request) = Request::from_json(&text) {
            let d = decide_with(&fixture().policy, &request);
            assert_well_formed(&d);
            prop_assert!(!d.is_allowed() || d.reason() == Reason::AllowedAnonymous);
        }
        let f = fixture();
        let _ = check_json(
            &f.config.to_string(),
            &text,
            UnixTime::from_secs(NOW),
            &HashMap::<String, KeySet>::new(),
            &file_reader,
        );
    }

    #[test]
    fn d_arbitrary_request_text_is_ok_or_err(text in any::<String>()) {
        let _ = Request::from_json(&text);
    }

    #[test]
    fn e_arbitrary_request_never_panics_and_strips_identity_headers(
        method in prop_oneof![
            prop::sample::select(&["GET", "POST", "get", ""][..]).prop_map(str::to_owned),
            any::<String>(),
        ],
        path in prop_oneof![
            prop::sample::select(&[
                "/any", "/anon", "/anon/../any", "/anon/%2e%2e/any", "/anon//any", "/anon\\..",
                "/fresh", "/fresh?x", "/fresh#y", "", "any", "/scoped?a=b?c", "/.", "/anon/.",
            ][..]).prop_map(str::to_owned),
            any::<String>(),
        ],
        headers in prop::collection::vec(
            (
                prop_oneof![
                    prop::sample::select(&[
                        "x-agent-subject", "X-Agent-Actor", "x-agent-", "x-agent", "traceparent",
                        "x-request-id", "content-type", "authorization",
                    ][..]).prop_map(str::to_owned),
                    any::<String>(),
                ],
                any::<String>(),
            ),
            0..6,
        ),
        peer in prop::option::of((prop::option::of(any::<String>()), prop::option::of(any::<[u8; 32]>()))),
    ) {
        let request = Request {
            scheme: None,
            method,
            path,
            authority: None,
            headers,
            peer: peer.map(|(uri_san, certificate_sha256)| Peer { uri_san, certificate_sha256 }),
            body: None,
        };
        let d = decide_with(&fixture().policy, &request);
        assert_well_formed(&d);
        for (name, _) in &request.headers {
            if name.len() >= 8 && name.as_bytes()[..8].eq_ignore_ascii_case(b"x-agent-") {
                prop_assert!(d.strip_headers.contains(name), "{} not stripped", name);
            }
        }
        for stripped in &d.strip_headers {
            prop_assert!(stripped.to_ascii_lowercase().starts_with("x-agent-"));
        }
        if let Some(trace) = &d.audit.trace_id {
            prop_assert_eq!(trace.len(), 32);
            prop_assert!(trace.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        }
        // Whatever arrives, the only way through here is the anonymous route without a token.
        if d.is_allowed() {
            prop_assert_eq!(d.reason(), Reason::AllowedAnonymous);
            prop_assert!(d.identity_headers().next().is_none());
        }
    }
}

// ---------------------------------------------------------------------------------------
// (f) nesting bombs and arbitrary clocks

/// Signs `payload` (JSON text, not re-serialized: a deep `Value` would itself be a hazard
/// in the test) with the ES256 fixture key.
fn sign_raw(header: &str, payload: &str) -> String {
    let rng = SystemRandom::new();
    let input = format!("{}.{}", b64(header.as_bytes()), b64(payload.as_bytes()));
    let sig = fixture()
        .es256
        .sign(Alg::ES256, input.as_bytes(), &rng)
        .unwrap();
    format!("{input}.{}", b64(&sig))
}

const ES_HEADER: &str = r#"{"alg":"ES256","kid":"es-1","typ":"at+jwt"}"#;

/// Claims with `depth` nested `act`s, each a different actor.
fn nested_act_claims(depth: usize) -> String {
    let mut s = format!(
        r#"{{"iss":"{ISS}","aud":"{AUD}","sub":"alice","exp":{}"#,
        NOW + 60
    );
    for i in 0..depth {
        s.push_str(&format!(
            r#","act":{{"sub":"spiffe://prod.example.com/agent/{i}""#
        ));
    }
    s.push_str(&"}".repeat(depth + 1));
    s
}

#[test]
fn f_nesting_bomb_in_act_is_refused_cleanly() {
    let f = fixture();
    for depth in [
        0, 1, 4, 5, 10, 100, 120, 126, 127, 128, 129, 200, 1_000, 1_500, 5_000, 50_000,
    ] {
        let token = sign_raw(ES_HEADER, &nested_act_claims(depth));
        let d = decide_with(&f.policy, &bearer_request("/any", &token));
        assert_well_formed(&d);
        match depth {
            0..=MAX_CHAIN_DEPTH => {
                assert!(d.is_allowed(), "depth {depth}: {}", d.audit.to_json_line())
            }
            5..=100 => assert_eq!(d.reason(), Reason::ChainTooDeep, "depth {depth}"),
            _ => assert!(
                matches!(
                    d.reason(),
                    Reason::ChainTooDeep | Reason::TokenMalformed | Reason::TokenTooLarge
                ),
                "depth {depth}: {:?}",
                d.reason()
            ),
        }
        let _ = actwarden::dangerous::decode_unverified(&token);
    }
}

#[test]
fn f_nesting_bomb_in_header_and_other_claims_is_refused_cleanly() {
    let f = fixture();
    for depth in [10, 127, 128, 129, 1_000, 3_000] {
        let deep = format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
        let header = format!(r#"{{"alg":"ES256","kid":"es-1","typ":"at+jwt","x":{deep}}}"#);
        let claims = format!(
            r#"{{"iss":"{ISS}","aud":"{AUD}","sub":"alice","exp":{},"x":{deep}}}"#,
            NOW + 60
        );
        for (h, c) in [
            (header.as_str(), nested_act_claims(1)),
            (ES_HEADER, claims.clone()),
        ] {
            let token = sign_raw(h, &c);
            let d = decide_with(&f.policy, &bearer_request("/any", &token));
            assert_well_formed(&d);
            if depth >= 128 {
                assert!(!d.is_allowed(), "depth {depth} accepted");
            }
            let _ = actwarden::dangerous::decode_unverified(&token);
        }
        // The same bombs as configuration and request documents.
        assert!(Policy::from_json(&deep).is_err());
        assert!(Request::from_json(&deep).is_err());
    }
}

proptest! {
    #![proptest_config(cases(256))]

    #[test]
    fn f_any_clock_never_panics_and_decides_by_exp(
        millis in prop_oneof![
            any::<u64>(),
            (NOW - 1000..NOW + 1000).prop_map(|s| s * 1000),
            Just(u64::MAX),
            Just(0u64),
        ],
        ttl in 1..MAX_LIFETIME,
    ) {
        let f = fixture();
        let rng = SystemRandom::new();
        let claims = json!({ "iss": ISS, "aud": AUD, "sub": "alice", "scope": "read",
                             "iat": NOW, "exp": NOW + ttl });
        let token = f.es256.mint(Alg::ES256, &claims, None, &rng).unwrap();
        let ctx = Context { policy: &f.policy, remote_keys: &NoRemoteKeys, crypto: &actwarden::RING, cache: None, replay: &actwarden::MemoryWindow::new(), shared: None };
        let now = UnixTime::from_millis(millis);
        let request = bearer_request("/scoped", &token);
        let d = Decided::new(decide(ctx, &request, now), &request);
        assert_well_formed(&d);
        let now_s = millis as f64 / 1000.0;
        // Skew is 0: allowed exactly while iat <= now < exp.
        let expected = (NOW as f64) <= now_s && now_s < (NOW + ttl) as f64;
        prop_assert_eq!(d.is_allowed(), expected, "{}", d.audit.to_json_line());
        if !expected {
            prop_assert!(matches!(d.reason(), Reason::TokenExpired | Reason::TokenNotYetValid));
        }
        prop_assert!(d.audit.ts.ends_with('Z'));
    }
}
