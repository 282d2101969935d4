#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Adversarial review of actwarden's policy semantics (SPEC §2–§6), through the public
//! JSON entry point (`api::check_json`), exactly as the CLI and the playground decide.
//!
//! Each test states the outcome the SPEC requires, or — where the SPEC is silent — what a
//! demanding security engineer would expect (said so in a comment). The findings this
//! review made were fixed in the core; their tests stay here as guards.

use actwarden::api::check_json;
use actwarden::mint::{delegate, public_jwks, SigningKey};
use actwarden::Alg;
use actwarden::{Decision, Policy, UnixTime};
use actwarden_test_support::b64;
use base64::Engine;
use ring::rand::SystemRandom;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::OnceLock;

const NOW: u64 = 1_700_000_000;
const ISS: &str = "https://sts.example.com";
const PARTNER_ISS: &str = "https://partner.example.net";
const ORCH: &str = "spiffe://prod.example.com/agent/orchestrator";
const BILLING: &str = "spiffe://prod.example.com/agent/billing";
/// In the allowlist with a ceiling of `[]`.
const MUTED: &str = "spiffe://prod.example.com/agent/muted";
/// In the allowlist without a ceiling.
const FREE: &str = "spiffe://prod.example.com/agent/free";

// ---------------------------------------------------------------------------------------
// Fixture

struct Keys {
    rng: SystemRandom,
    corp: SigningKey,
    partner: SigningKey,
    corp_jwks: String,
    partner_jwks: String,
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let rng = SystemRandom::new();
        let corp = SigningKey::generate(Alg::ES256, "k1", &rng).unwrap();
        let partner = SigningKey::generate(Alg::ES256, "p1", &rng).unwrap();
        let corp_jwks = public_jwks(&[&corp]).to_string();
        let partner_jwks = public_jwks(&[&partner]).to_string();
        Keys {
            rng,
            corp,
            partner,
            corp_jwks,
            partner_jwks,
        }
    })
}

/// The SPEC §2 example, plus a generic token-only rule for `/v1/` and an actor allowlist
/// with a `[]` ceiling and a ceiling-less actor.
fn config() -> Value {
    json!({
        "providers": {
            "corp-sts": {
                "issuer": ISS,
                "audiences": ["payments-api"],
                "local_jwks": { "inline_string": keys().corp_jwks },
                "max_lifetime_s": 3600
            }
        },
        "identity": {
            "trust_domains": ["prod.example.com"],
            "human_profiles": ["user"],
            "max_chain_depth": 4,
            "actors": {
                ORCH: { "max_scopes": ["invoices:read", "payments:write"] },
                BILLING: { "max_scopes": ["invoices:read"] },
                MUTED: { "max_scopes": [] },
                FREE: {}
            }
        },
        "rules": [
            { "id": "health", "match": { "path_prefix": "/healthz" }, "allow_anonymous": true },
            { "id": "pay", "match": { "path_prefix": "/v1/payments", "methods": ["POST"] },
              "providers": ["corp-sts"],
              "require": { "scopes": ["payments:write"], "human_subject": true, "delegated": true,
                           "actors": [ORCH], "max_chain_depth": 2, "fresh_auth_s": 300,
                           "claims": { "acr": ["urn:example:acr:approved"] } } },
            { "id": "v1", "match": { "path_prefix": "/v1/" }, "providers": ["corp-sts"] }
        ],
        "on_no_match": "deny"
    })
}

/// `config()` with a second provider that reads `x-partner-token` (no prefix).
fn two_provider_config() -> Value {
    let mut c = config();
    c["providers"]["partner"] = json!({
        "issuer": PARTNER_ISS,
        "audiences": ["payments-api"],
        "local_jwks": { "inline_string": keys().partner_jwks },
        "from_headers": [{ "name": "X-Partner-Token" }]
    });
    c["rules"][2]["providers"] = json!(["corp-sts", "partner"]);
    c
}

/// A human user's token that the `pay` rule allows once delegated to `ORCH`.
fn user_claims() -> Value {
    json!({
        "iss": ISS,
        "sub": "alice@example.com",
        "sub_profile": "user",
        "aud": "payments-api",
        "iat": NOW - 10,
        "exp": NOW + 600,
        "auth_time": NOW - 60,
        "jti": "jti-1",
        "scope": "invoices:read payments:write",
        "acr": "urn:example:acr:approved"
    })
}

fn pay_claims() -> Value {
    delegate(&user_claims(), ORCH, Some("ai_agent"))
}

fn mint(claims: &Value) -> String {
    let k = keys();
    k.corp.mint(Alg::ES256, claims, None, &k.rng).unwrap()
}

fn mint_partner(claims: &Value) -> String {
    let k = keys();
    k.partner.mint(Alg::ES256, claims, None, &k.rng).unwrap()
}

fn with(claims: &Value, name: &str, value: Value) -> Value {
    let mut c = claims.clone();
    c[name] = value;
    c
}

fn without(claims: &Value, name: &str) -> Value {
    let mut c = claims.clone();
    c.as_object_mut().unwrap().remove(name);
    c
}

fn request(method: &str, path: &str, token: Option<&str>) -> Value {
    let mut headers = Map::new();
    if let Some(t) = token {
        headers.insert("authorization".into(), json!(format!("Bearer {t}")));
    }
    json!({ "method": method, "path": path, "authority": "api.example.com", "headers": headers })
}

fn pay_request(token: &str) -> Value {
    request("POST", "/v1/payments", Some(token))
}

fn run(config: &Value, request: &Value) -> (Decision, Value) {
    check_json(
        &config.to_string(),
        &request.to_string(),
        UnixTime::from_secs(NOW),
        &HashMap::new(),
        &|_| Err(actwarden::FileError::NoFiles),
    )
    .unwrap()
}

#[track_caller]
fn expect(config: &Value, request: &Value, reason: &str) -> (Decision, Value) {
    let (d, report) = run(config, request);
    assert_eq!(
        d.reason().code(),
        reason,
        "request {request}\nreport {report:#}"
    );
    assert_eq!(report["reason"], json!(reason));
    (d, report)
}

fn header<'a>(d: &'a Decision, name: &str) -> Option<&'a str> {
    d.identity_headers()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v)
}

fn response_header<'a>(d: &'a Decision, name: &str) -> Option<&'a str> {
    d.response()
        .as_ref()?
        .headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

#[track_caller]
fn load_error(config: &Value) -> String {
    match Policy::from_json(&config.to_string()) {
        Ok(_) => panic!("the loader accepted {config:#}"),
        Err(e) => e.path,
    }
}

#[track_caller]
fn loads(config: &Value) {
    if let Err(e) = Policy::from_json(&config.to_string()) {
        panic!("the loader refused: {e}");
    }
}

// ---------------------------------------------------------------------------------------
// Baseline: the fixture really allows what the tests then perturb.

#[test]
fn baseline_pay_request_is_allowed_with_identity_headers() {
    let (d, report) = expect(&config(), &pay_request(&mint(&pay_claims())), "allowed");
    assert_eq!(header(&d, "x-agent-subject"), Some("alice@example.com"));
    assert_eq!(header(&d, "x-agent-subject-profile"), Some("user"));
    assert_eq!(header(&d, "x-agent-actor"), Some(ORCH));
    assert_eq!(header(&d, "x-agent-chain"), Some(ORCH));
    assert_eq!(
        header(&d, "x-agent-scopes"),
        Some("invoices:read payments:write")
    );
    assert_eq!(header(&d, "x-agent-issuer"), Some(ISS));
    assert_eq!(header(&d, "x-agent-rule"), Some("pay"));
    assert_eq!(report["depth"], json!(1));
    assert_eq!(report["binding"], json!("absent"));
}

// ---------------------------------------------------------------------------------------
// 1. Route matching

#[test]
fn dot_segments_never_ride_on_the_anonymous_rule() {
    for path in [
        "/healthz/../v1/payments",
        "/healthz/./../v1/payments",
        "/healthz/%2e%2e/v1/payments",
        "/healthz/%2E%2E/v1/payments",
        "/healthz/.%2e/v1/payments",
        "/healthz%2f..%2fv1/payments",
        "/healthz%2F..%2Fv1/payments",
        "/healthz\\..\\v1/payments",
        "/healthz%5c..%5cv1/payments",
        "/healthz//v1",
        "/healthz/..",
        "/v1/p%61yments",
        "/healthz/%u002e%u002e/v1",
        "/healthz%",
        "/healthz%2",
    ] {
        expect(&config(), &request("POST", path, None), "route_denied");
    }
}

#[test]
fn request_targets_that_are_not_origin_form_are_refused_even_when_unmatched_is_allowed() {
    let mut c = config();
    c["on_no_match"] = json!("allow");
    for path in [
        "*",
        "",
        "v1/payments",
        "http://api.example.com/v1/payments",
        "?/healthz",
    ] {
        expect(&c, &request("POST", path, None), "route_denied");
    }
}

#[test]
fn query_and_fragment_do_not_choose_the_rule_and_are_not_audited() {
    let (_, report) = expect(
        &config(),
        &request("GET", "/healthz?next=/../v1/payments&token=secret", None),
        "allowed_anonymous",
    );
    assert_eq!(report["path"], json!("/healthz"));
    expect(
        &config(),
        &request("POST", "/v1/payments?/healthz", None),
        "token_missing",
    );
    expect(
        &config(),
        &request("POST", "/v1/payments#/healthz", None),
        "token_missing",
    );
}

#[test]
fn method_and_path_case_fall_through_to_stricter_rules_or_deny() {
    // `post` is not `POST` (RFC 9110 §9.1: methods are case-sensitive); it does not match
    // `pay` but the token-only `v1` rule still needs a token.
    expect(
        &config(),
        &request("post", "/v1/payments", None),
        "token_missing",
    );
    // HEAD is not GET; with no rule for it, on_no_match applies.
    let mut c = config();
    c["rules"] = json!([
        { "id": "get", "match": { "path_prefix": "/r", "methods": ["GET"] },
          "allow_anonymous": true }
    ]);
    expect(&c, &request("HEAD", "/r", None), "route_denied");
    // Case of the path is significant: `/V1/payments` is not `/v1/…`.
    expect(
        &config(),
        &request("POST", "/V1/payments", None),
        "route_denied",
    );
}

#[test]
fn path_prefix_is_a_string_prefix_like_envoy() {
    // Documented behaviour (SPEC silent; Envoy `prefix` has the same semantics): the
    // protected rule also covers `/v1/paymentsX`, so over-matching fails closed here…
    expect(
        &config(),
        &request("POST", "/v1/paymentsX", None),
        "token_missing",
    );
    // …and an anonymous prefix covers `/healthzX`. Policy authors must end anonymous
    // prefixes with `/` or use `path_exact` (noted in the report, not a finding).
    expect(
        &config(),
        &request("GET", "/healthzX", None),
        "allowed_anonymous",
    );
}

#[test]
fn dot_dot_with_path_parameter_is_not_normalized() {
    // The engine's own rule (`path_is_normalized`): a path an upstream may resolve
    // differently from how rules match it is refused. Servlet containers strip `;params`
    // from each segment before resolving dot segments, so `/healthz/..;/v1/payments` is
    // `/v1/payments` upstream, reached anonymously through the `health` rule.
    let mut wrong = Vec::new();
    for path in [
        "/healthz/..;/v1/payments",
        "/healthz/..;x=y/v1/payments",
        "/healthz/.;/v1/payments",
    ] {
        let (d, _) = run(&config(), &request("POST", path, None));
        if d.reason().code() != "route_denied" {
            wrong.push(format!("{path} -> {}", d.reason().code()));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn path_parameters_do_not_skip_a_protected_prefix() {
    // SPEC silent; demanding expectation: a segment with `;` parameters is refused (as
    // `..` is), since Spring/Tomcat route `/v1;x=y/payments` to `/v1/payments` while the
    // rules see a path that `pay` does not match.
    let mut c = config();
    c["rules"] = json!([
        c["rules"][1].clone(),
        { "id": "public", "match": { "path_prefix": "/" }, "allow_anonymous": true }
    ]);
    expect(
        &c,
        &request("POST", "/v1;x=y/payments", None),
        "route_denied",
    );
}

#[test]
fn invalid_utf8_percent_escapes_are_refused() {
    // SPEC silent; demanding expectation: percent-escapes that do not decode to valid
    // UTF-8 are refused like other non-canonical encodings (`%c0%ae` is an overlong `.`
    // that old decoders resolve to `..`).
    expect(
        &config(),
        &request("GET", "/healthz/%c0%ae%c0%ae/v1/payments", None),
        "route_denied",
    );
}

#[test]
fn double_encoding_is_left_to_the_single_decoding_upstream() {
    // Documented behaviour (SPEC silent): `%25` is canonical, so `%252e%252e` is accepted
    // as a literal segment; a single-decoding upstream sees `%2e%2e`, not `..`.
    expect(
        &config(),
        &request("GET", "/healthz/%252e%252e/v1/payments", None),
        "allowed_anonymous",
    );
}

#[test]
fn unmatched_route_with_allow_still_strips_spoofed_identity_headers() {
    let mut c = config();
    c["on_no_match"] = json!("allow");
    let mut r = request("GET", "/elsewhere", Some("not-a-token"));
    r["headers"]["X-Agent-Subject"] = json!("root");
    r["headers"]["x-agent-chain"] = json!(["a", "b"]);
    let (d, report) = expect(&c, &r, "allowed_anonymous");
    assert!(d.identity_headers().next().is_none());
    let mut stripped = d.strip_headers.clone();
    stripped.sort();
    stripped.dedup();
    assert_eq!(stripped, vec!["x-agent-chain", "x-agent-subject"]);
    assert_eq!(report["headers"], json!({}));
}

// ---------------------------------------------------------------------------------------
// 2. Token extraction, anonymous rules, providers

#[test]
fn anonymous_rule_still_verifies_a_present_token() {
    let good = mint(&user_claims());
    // Flip one character well inside the signature (the last one carries padding bits).
    let at = good.len() - 10;
    let flipped = if &good[at..=at] == "A" { "B" } else { "A" };
    let forged = format!("{}{flipped}{}", &good[..at], &good[at + 1..]);
    expect(
        &config(),
        &request("GET", "/healthz", Some(&forged)),
        "signature_invalid",
    );
    expect(
        &config(),
        &request("GET", "/healthz", Some("garbage")),
        "token_malformed",
    );
    expect(
        &config(),
        &request("GET", "/healthz", Some(&"a".repeat(17 * 1024))),
        "token_too_large",
    );
    let stranger = mint(&with(&user_claims(), "iss", json!("https://evil.example")));
    expect(
        &config(),
        &request("GET", "/healthz", Some(&stranger)),
        "issuer_unknown",
    );
    let expired = mint(&with(&user_claims(), "exp", json!(NOW - 1000)));
    expect(
        &config(),
        &request("GET", "/healthz", Some(&expired)),
        "token_expired",
    );
    // An empty bearer value is a present, malformed token.
    let mut r = request("GET", "/healthz", None);
    r["headers"]["authorization"] = json!("Bearer    ");
    expect(&config(), &r, "token_malformed");
    // A valid token on an anonymous route is allowed and identified.
    let (d, _) = expect(
        &config(),
        &request("GET", "/healthz", Some(&good)),
        "allowed",
    );
    assert_eq!(header(&d, "x-agent-rule"), Some("health"));
}

#[test]
fn scheme_is_case_insensitive_and_repeated_credentials_are_malformed() {
    let t = mint(&pay_claims());
    let mut r = request("POST", "/v1/payments", None);
    r["headers"]["authorization"] = json!(format!("bEaReR {t}"));
    expect(&config(), &r, "allowed");
    // A repeated header, also spelled in two cases.
    let mut r = request("POST", "/v1/payments", None);
    r["headers"]["authorization"] = json!([format!("Bearer {t}"), format!("Bearer {t}")]);
    expect(&config(), &r, "token_malformed");
    let mut r = request("POST", "/v1/payments", None);
    r["headers"]["Authorization"] = json!(format!("Bearer {t}"));
    r["headers"]["authorization"] = json!(format!("Bearer {t}"));
    expect(&config(), &r, "token_malformed");
    // Two tokens, the first one bad: still one answer, `token_malformed`.
    let mut r = request("POST", "/v1/payments", None);
    r["headers"]["authorization"] = json!([
        format!("Bearer {}", "x".repeat(20_000)),
        format!("Bearer {t}")
    ]);
    expect(&config(), &r, "token_malformed");
}

#[test]
fn token_in_the_header_of_another_provider_of_the_rule_is_issuer_unknown() {
    // A corp token sent in the partner's header: the rule accepts both providers, but corp
    // does not read `x-partner-token`.
    let c = two_provider_config();
    let mut r = request("GET", "/v1/invoices", None);
    r["headers"]["x-partner-token"] = json!(mint(&user_claims()));
    expect(&c, &r, "issuer_unknown");
    // And a partner token where corp reads.
    let partner = mint_partner(&with(&user_claims(), "iss", json!(PARTNER_ISS)));
    expect(
        &c,
        &request("GET", "/v1/invoices", Some(&partner)),
        "issuer_unknown",
    );
    // The partner token in its own header is fine.
    let mut r = request("GET", "/v1/invoices", None);
    r["headers"]["X-Partner-Token"] = json!(partner);
    let (d, _) = expect(&c, &r, "allowed");
    assert_eq!(header(&d, "x-agent-issuer"), Some(PARTNER_ISS));
}

#[test]
fn tokens_in_two_providers_headers_are_malformed_when_the_rule_reads_both() {
    let c = two_provider_config();
    let mut r = request("GET", "/v1/invoices", Some(&mint(&user_claims())));
    r["headers"]["x-partner-token"] = json!(mint_partner(&with(
        &user_claims(),
        "iss",
        json!(PARTNER_ISS)
    )));
    expect(&c, &r, "token_malformed");
}

#[test]
fn second_identity_in_an_excluded_providers_header_is_token_malformed() {
    // SPEC §4 step 2: "more than one (… tokens in several `from_headers`) →
    // `token_malformed`, since a request carries exactly one identity". The `v1` rule only
    // accepts corp-sts; the partner token in `x-partner-token` is not looked at, and the
    // upstream receives two credentials for two different subjects.
    let mut c = two_provider_config();
    c["rules"][2]["providers"] = json!(["corp-sts"]);
    let mut r = request("GET", "/v1/invoices", Some(&mint(&user_claims())));
    let mallory = with(
        &with(&user_claims(), "iss", json!(PARTNER_ISS)),
        "sub",
        json!("mallory@example.net"),
    );
    r["headers"]["x-partner-token"] = json!(mint_partner(&mallory));
    expect(&c, &r, "token_malformed");
}

#[test]
fn token_of_an_excluded_provider_is_issuer_unknown() {
    // SPEC §4 step 3: `issuer_unknown` "also when the rule's `providers` exclude it".
    let mut c = two_provider_config();
    c["rules"][2]["providers"] = json!(["partner"]);
    expect(
        &c,
        &request("GET", "/v1/invoices", Some(&mint(&user_claims()))),
        "issuer_unknown",
    );
}

#[test]
fn anonymous_rule_with_providers_still_refuses_a_bad_present_token() {
    // SPEC §2: "with [allow_anonymous], a token that is present is still verified and a
    // bad one still denied". The rule names only `partner`; a forged bearer token in
    // `authorization` (corp's header) is silently ignored and forwarded upstream.
    let mut c = two_provider_config();
    c["rules"][0]["providers"] = json!(["partner"]);
    expect(
        &c,
        &request("GET", "/healthz", Some("garbage.garbage.garbage")),
        "token_malformed",
    );
}

#[test]
fn token_presented_with_another_providers_prefix_is_issuer_unknown() {
    // SPEC silent; demanding expectation: `from_headers` is (name, prefix). Provider
    // `partner` reads `Authorization: Token …` only, yet its token is accepted as
    // `Authorization: Bearer …` because only the header name is compared
    // (`verification::verify`, `TokenFromOtherHeader`).
    let mut c = two_provider_config();
    c["providers"]["partner"]["from_headers"] =
        json!([{ "name": "authorization", "value_prefix": "Token " }]);
    let partner = mint_partner(&with(&user_claims(), "iss", json!(PARTNER_ISS)));
    let mut r = request("GET", "/v1/invoices", None);
    r["headers"]["authorization"] = json!(format!("Token {partner}"));
    expect(&c, &r, "allowed");
    expect(
        &c,
        &request("GET", "/v1/invoices", Some(&partner)),
        "issuer_unknown",
    );
}

#[test]
fn bearer_with_other_whitespace_is_not_silently_ignored() {
    // SPEC silent; demanding expectation: a bearer credential the gateway did not verify
    // must not reach the upstream (many parsers split on any whitespace). Either it is
    // read as a token (and verified) or the request is refused.
    let mut r = request("GET", "/healthz", None);
    r["headers"]["authorization"] = json!("Bearer\tgarbage.garbage.garbage");
    let (d, _) = run(&config(), &r);
    assert!(!d.is_allowed(), "unverified bearer credential forwarded");
}

// ---------------------------------------------------------------------------------------
// 3. Verification order and claim shapes (SPEC §4 steps 3–4)

#[test]
fn claim_shapes_are_claim_invalid() {
    let base = pay_claims();
    for (name, value) in [
        ("exp", json!("never")),
        ("exp", json!(null)),
        ("exp", json!(true)),
        ("nbf", json!("0")),
        ("iat", json!([NOW])),
        ("auth_time", json!(format!("{NOW}"))),
        ("sub", json!(42)),
        ("sub", json!("")),
        ("sub", json!("alice\r\nx-agent-subject: root")),
        ("sub", json!("alice\u{0}")),
        ("scope", json!(["payments:write"])),
        ("scope", json!("payments:write\tadmin")),
        ("scope", json!("payments:write\nadmin")),
        ("scope", json!("pay\"ments")),
        ("scp", json!("invoices:read")),
        ("scp", json!([1])),
        ("aud", json!(7)),
        ("aud", json!(["payments-api", 7])),
        ("jti", json!(1)),
        ("sub_profile", json!(["user"])),
        ("sub_profile", json!("user\n")),
        ("may_act", json!("orchestrator")),
        ("may_act", json!({ "iss": ISS })),
        ("cnf", json!("x")),
        ("cnf", json!({ "x5t#S256": "AAAA" })),
        ("cnf", json!({ "x5t#S256": 5 })),
        ("act", json!(ORCH)),
        ("act", json!([{ "sub": ORCH }])),
        ("act", json!({ "sub": 1 })),
        ("act", json!({ "iss": ISS })),
        ("act", json!({ "sub": "" })),
        ("act", json!({ "sub": format!("{ORCH},{BILLING}") })),
        ("act", json!({ "sub": ORCH, "act": "prior" })),
        (
            "act",
            json!({ "sub": ORCH, "act": { "sub": BILLING, "sub_profile": 3 } }),
        ),
        ("act", json!({ "sub": ORCH, "iss": 3 })),
    ] {
        let claims = with(&base, name, value.clone());
        let (d, report) = expect(&config(), &pay_request(&mint(&claims)), "claim_invalid");
        assert!(report["sub"].is_null(), "{name}={value}: {report}");
        assert!(d.identity_headers().next().is_none());
    }
    // `scp` as a string equal to `scope` is tolerated; disagreement is not.
    let both = with(&base, "scp", json!(["payments:write", "invoices:read"]));
    expect(&config(), &pay_request(&mint(&both)), "allowed");
}

#[test]
fn step_four_order_claims_then_audience_then_time() {
    let base = pay_claims();
    // Wrong type beats wrong audience.
    let c = with(&with(&base, "aud", json!("other")), "nbf", json!("x"));
    expect(&config(), &pay_request(&mint(&c)), "claim_invalid");
    // Wrong audience beats expired.
    let c = with(&with(&base, "aud", json!("other")), "exp", json!(NOW - 999));
    expect(&config(), &pay_request(&mint(&c)), "audience_mismatch");
    // No audience at all.
    expect(
        &config(),
        &pay_request(&mint(&without(&base, "aud"))),
        "audience_mismatch",
    );
    expect(
        &config(),
        &pay_request(&mint(&with(&base, "aud", json!([])))),
        "audience_mismatch",
    );
    // Expired beats not-yet-valid.
    let c = with(
        &with(&base, "exp", json!(NOW - 999)),
        "nbf",
        json!(NOW + 999),
    );
    expect(&config(), &pay_request(&mint(&c)), "token_expired");
    // `exp` exactly at now + skew is expired (RFC 7519 §4.1.4: "on or after").
    expect(
        &config(),
        &pay_request(&mint(&with(&base, "exp", json!(NOW + 60 - 600)))),
        "token_expired",
    );
    let c = with(&base, "exp", json!(NOW - 60));
    expect(&config(), &pay_request(&mint(&c)), "token_expired");
    // `iat` in the future beyond skew.
    let c = with(&base, "iat", json!(NOW + 61));
    expect(&config(), &pay_request(&mint(&c)), "token_not_yet_valid");
    // Lifetime bounded by iat, else by now.
    let c = with(&base, "exp", json!(NOW - 10 + 3601));
    expect(&config(), &pay_request(&mint(&c)), "lifetime_too_long");
    let c = with(&without(&base, "iat"), "exp", json!(NOW + 3601));
    expect(&config(), &pay_request(&mint(&c)), "lifetime_too_long");
    let c = with(&base, "exp", json!(1e300));
    expect(&config(), &pay_request(&mint(&c)), "lifetime_too_long");
}

// ---------------------------------------------------------------------------------------
// 4. Delegation chain (SPEC §3, §4 step 5)

#[test]
fn actor_equal_to_subject_or_repeated_anywhere_is_a_cycle() {
    let u = with(&user_claims(), "sub", json!(BILLING));
    let c = delegate(&u, BILLING, None);
    expect(
        &config(),
        &request("GET", "/v1/x", Some(&mint(&c))),
        "actor_cycle",
    );
    let c = delegate(
        &delegate(&delegate(&user_claims(), ORCH, None), FREE, None),
        ORCH,
        None,
    );
    let (_, report) = expect(
        &config(),
        &request("GET", "/v1/x", Some(&mint(&c))),
        "actor_cycle",
    );
    // Identity fields are from the verified token (the record shows the chain it denied).
    assert_eq!(report["chain"], json!([ORCH, FREE, ORCH]));
    // Different spellings are different identities (SPIFFE paths are case-sensitive), but
    // an uppercase trust domain or scheme is refused for being outside the trust domains.
    let c = delegate(
        &with(&user_claims(), "sub", json!(ORCH)),
        "spiffe://PROD.example.com/agent/orchestrator",
        None,
    );
    expect(
        &config(),
        &request("GET", "/v1/x", Some(&mint(&c))),
        "trust_domain_mismatch",
    );
}

#[test]
fn step_five_order() {
    let mut c = config();
    c["identity"]["max_chain_depth"] = json!(2);
    // Too deep beats a cycle.
    let t = delegate(
        &delegate(&delegate(&user_claims(), ORCH, None), BILLING, None),
        ORCH,
        None,
    );
    expect(
        &c,
        &request("GET", "/v1/x", Some(&mint(&t))),
        "chain_too_deep",
    );
    // Cycle beats trust domain.
    let t = delegate(
        &delegate(&user_claims(), "spiffe://evil.example.com/a", None),
        "spiffe://evil.example.com/a",
        None,
    );
    expect(
        &config(),
        &request("GET", "/v1/x", Some(&mint(&t))),
        "actor_cycle",
    );
    // Trust domain beats allowlist (the prior actor is outside, the current one listed).
    let t = delegate(
        &delegate(&user_claims(), "spiffe://evil.example.com/a", None),
        ORCH,
        None,
    );
    expect(
        &config(),
        &request("GET", "/v1/x", Some(&mint(&t))),
        "trust_domain_mismatch",
    );
    // Allowlist applies to prior actors too, and beats may_act.
    let t = delegate(
        &delegate(
            &with(&user_claims(), "may_act", json!({ "sub": BILLING })),
            "spiffe://prod.example.com/agent/unlisted",
            None,
        ),
        ORCH,
        None,
    );
    expect(
        &config(),
        &request("GET", "/v1/x", Some(&mint(&t))),
        "actor_not_allowed",
    );
    // may_act beats revocation.
    let mut c = config();
    c["revoked"] = json!({ "jti": ["jti-1"] });
    let t = delegate(
        &with(&user_claims(), "may_act", json!({ "sub": BILLING })),
        ORCH,
        None,
    );
    expect(
        &c,
        &request("GET", "/v1/x", Some(&mint(&t))),
        "may_act_violation",
    );
}

#[test]
fn spiffe_spellings_outside_the_trust_domain_are_refused() {
    // Without an allowlist, so only the trust-domain check decides.
    let mut c = config();
    c["identity"].as_object_mut().unwrap().remove("actors");
    for actor in [
        "SPIFFE://prod.example.com/agent/orchestrator",
        "Spiffe://prod.example.com/agent/orchestrator",
        "spiffe://Prod.Example.com/agent/orchestrator",
        "spiffe://prod.example.com/",
        "spiffe://prod.example.com/agent/orchestrator/",
        "spiffe://prod.example.com//agent/orchestrator",
        "spiffe://prod.example.com/agent/./orchestrator",
        "spiffe://prod.example.com/agent/../orchestrator",
        "spiffe://prod.example.com/agent/orch%65strator",
        "spiffe://user@prod.example.com/agent/orchestrator",
        "spiffe://prod.example.com:443/agent/orchestrator",
        "spiffe://prod.example.com./agent/orchestrator",
        "spiffe://evilprod.example.com/agent/orchestrator",
        "spiffe://prod.example.com.evil.com/agent/orchestrator",
        "spiffe://prod.example.com/agent/orchestrator?x",
        "spiffe://prod.example.com/agent/orchestrator#x",
        "spiffe://prod.example.com/agent/orchéstrator",
        "spiffe:/prod.example.com/agent/orchestrator",
        "bob@example.com",
    ] {
        let t = delegate(&user_claims(), actor, None);
        expect(
            &c,
            &request("GET", "/v1/x", Some(&mint(&t))),
            "trust_domain_mismatch",
        );
    }
    // A SPIFFE-looking subject outside the trust domains, in any scheme case.
    for sub in [
        "spiffe://evil.example.com/agent/x",
        "SPIFFE://evil.example.com/agent/x",
        "SPIFFE://prod.example.com/agent/x",
        "spiffe://prod.example.com/agent/x/",
    ] {
        let t = with(&user_claims(), "sub", json!(sub));
        expect(
            &c,
            &request("GET", "/v1/x", Some(&mint(&t))),
            "trust_domain_mismatch",
        );
    }
}

#[test]
fn whitespace_padded_spiffe_subject_does_not_escape_trust_domains() {
    // SPEC §2: "every subject that is a SPIFFE ID must be spiffe://<trust domain>/…".
    // ` spiffe://evil.example.com/x` is not recognised as a SPIFFE ID (leading space), is
    // allowed, and `x-agent-subject` carries it; HTTP trims leading whitespace of field
    // values (RFC 9110 §5.5), so the upstream sees `spiffe://evil.example.com/x`.
    let mut wrong = Vec::new();
    for sub in [
        " spiffe://evil.example.com/agent/x",
        "  spiffe://evil.example.com/agent/x",
        "\u{feff}spiffe://evil.example.com/agent/x",
    ] {
        let t = with(&user_claims(), "sub", json!(sub));
        let (d, _) = run(&config(), &request("GET", "/v1/x", Some(&mint(&t))));
        if !["claim_invalid", "trust_domain_mismatch"].contains(&d.reason().code()) {
            wrong.push(format!(
                "{sub:?}: {} with x-agent-subject {:?}",
                d.reason().code(),
                header(&d, "x-agent-subject")
            ));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn trust_domain_id_is_not_a_workload_actor() {
    // SPEC silent; demanding expectation: an actor is a workload, and a SPIFFE ID without
    // a path names the trust domain itself (SPIFFE ID §2.2), not an agent.
    let mut c = config();
    c["identity"].as_object_mut().unwrap().remove("actors");
    let t = delegate(&user_claims(), "spiffe://prod.example.com", None);
    expect(
        &c,
        &request("GET", "/v1/x", Some(&mint(&t))),
        "trust_domain_mismatch",
    );
}

#[test]
fn may_act_must_name_the_current_actor() {
    let base = with(&user_claims(), "may_act", json!({ "sub": ORCH }));
    // Right actor.
    expect(
        &config(),
        &request("GET", "/v1/x", Some(&mint(&delegate(&base, ORCH, None)))),
        "allowed",
    );
    // A prior actor named by may_act does not count.
    let t = delegate(&delegate(&base, ORCH, None), FREE, None);
    expect(
        &config(),
        &request("GET", "/v1/x", Some(&mint(&t))),
        "may_act_violation",
    );
    // Case matters.
    let t = delegate(
        &with(
            &user_claims(),
            "may_act",
            json!({ "sub": ORCH.to_uppercase() }),
        ),
        ORCH,
        None,
    );
    expect(
        &config(),
        &request("GET", "/v1/x", Some(&mint(&t))),
        "may_act_violation",
    );
    // `may_act.iss` compares with the act's own iss, else the token's.
    let with_iss = |iss: &str| {
        with(
            &user_claims(),
            "may_act",
            json!({ "sub": ORCH, "iss": iss }),
        )
    };
    expect(
        &config(),
        &request(
            "GET",
            "/v1/x",
            Some(&mint(&delegate(&with_iss(ISS), ORCH, None))),
        ),
        "allowed",
    );
    expect(
        &config(),
        &request(
            "GET",
            "/v1/x",
            Some(&mint(&delegate(&with_iss("https://other"), ORCH, None))),
        ),
        "may_act_violation",
    );
    let mut t = delegate(&with_iss("https://workload-sts"), ORCH, None);
    t["act"]["iss"] = json!("https://workload-sts");
    expect(
        &config(),
        &request("GET", "/v1/x", Some(&mint(&t))),
        "allowed",
    );
    let mut t = delegate(&with_iss(ISS), ORCH, None);
    t["act"]["iss"] = json!("https://workload-sts");
    expect(
        &config(),
        &request("GET", "/v1/x", Some(&mint(&t))),
        "may_act_violation",
    );
    // may_act without act: nothing to check (SPEC: "when present with an act").
    expect(
        &config(),
        &request("GET", "/v1/x", Some(&mint(&base))),
        "allowed",
    );
}

#[test]
fn nested_act_bomb_is_refused_cleanly() {
    let mut act = json!({ "sub": "spiffe://prod.example.com/agent/x0" });
    for i in 1..300 {
        act = json!({ "sub": format!("spiffe://prod.example.com/agent/x{i}"), "act": act });
    }
    let t = with(&user_claims(), "act", act);
    let token = mint(&t);
    let (d, _) = run(&config(), &request("GET", "/v1/x", Some(&token)));
    assert!(
        ["token_malformed", "token_too_large", "chain_too_deep"].contains(&d.reason().code()),
        "{}",
        d.reason().code()
    );
    // 20 deep fits the JSON budget: decided as too deep, not crashed.
    let mut t = user_claims();
    for i in 0..20 {
        t = delegate(&t, &format!("spiffe://prod.example.com/agent/x{i}"), None);
    }
    expect(
        &config(),
        &request("GET", "/v1/x", Some(&mint(&t))),
        "chain_too_deep",
    );
}

#[test]
fn revocation_covers_jti_subject_and_every_actor() {
    let chain = delegate(&delegate(&user_claims(), BILLING, None), ORCH, None);
    for revoked in [
        json!({ "jti": ["jti-1"] }),
        json!({ "subjects": ["alice@example.com"] }),
        json!({ "actors": [BILLING] }),
        json!({ "actors": [ORCH] }),
    ] {
        let mut c = config();
        c["revoked"] = revoked;
        expect(
            &c,
            &request("GET", "/v1/x", Some(&mint(&chain))),
            "token_revoked",
        );
    }
    // Revocation comes before binding.
    let mut c = config();
    c["revoked"] = json!({ "jti": ["jti-1"] });
    c["binding"] = json!({ "cnf": "required" });
    expect(
        &c,
        &request("GET", "/v1/x", Some(&mint(&chain))),
        "token_revoked",
    );
}

// ---------------------------------------------------------------------------------------
// 5. Scopes and ceilings

#[test]
fn effective_scopes_are_the_intersection_over_the_whole_chain() {
    // orchestrator allows payments:write, billing (prior) does not.
    let t = delegate(&delegate(&user_claims(), BILLING, None), ORCH, None);
    let (d, report) = expect(&config(), &pay_request(&mint(&t)), "actor_scope_exceeded");
    // The rule's max_chain_depth is 2, so depth 2 got as far as scopes.
    assert_eq!(report["scopes"], json!(["invoices:read"]));
    assert_eq!(report["actor"], json!(ORCH));
    let www = response_header(&d, "www-authenticate").unwrap();
    assert!(www.contains("error=\"insufficient_scope\""), "{www}");
    assert!(www.contains("scope=\"payments:write\""), "{www}");
    // A `[]` ceiling empties the effective scopes.
    let t = delegate(&user_claims(), MUTED, None);
    let (d, _) = expect(
        &config(),
        &request("GET", "/v1/x", Some(&mint(&t))),
        "allowed",
    );
    assert_eq!(header(&d, "x-agent-scopes"), Some(""));
    // No ceiling: token scopes pass through; duplicates collapse; odd spacing tolerated.
    let t = delegate(
        &with(
            &user_claims(),
            "scope",
            json!("  invoices:read  invoices:read admin "),
        ),
        FREE,
        None,
    );
    let (d, _) = expect(
        &config(),
        &request("GET", "/v1/x", Some(&mint(&t))),
        "allowed",
    );
    assert_eq!(header(&d, "x-agent-scopes"), Some("invoices:read admin"));
    // A ceiling never adds a scope the token lacks.
    let t = delegate(
        &with(&user_claims(), "scope", json!("invoices:read")),
        ORCH,
        None,
    );
    expect(&config(), &pay_request(&mint(&t)), "scope_insufficient");
    // Empty scope string: no scopes.
    let t = delegate(&with(&user_claims(), "scope", json!("")), ORCH, None);
    expect(&config(), &pay_request(&mint(&t)), "scope_insufficient");
    // `scp` and `scope` disagreeing is refused, not merged.
    let t = with(
        &pay_claims(),
        "scp",
        json!(["invoices:read", "payments:write", "admin"]),
    );
    expect(&config(), &pay_request(&mint(&t)), "claim_invalid");
}

// ---------------------------------------------------------------------------------------
// 6. Rule requirements (SPEC §4 step 8)

#[test]
fn step_eight_order() {
    let rule_only = |require: Value| {
        let mut c = config();
        c["rules"][1]["require"] = require;
        c
    };
    let full = config()["rules"][1]["require"].clone();
    let not_human = with(&user_claims(), "sub_profile", json!("service"));
    // delegated before human_subject.
    expect(
        &config(),
        &pay_request(&mint(&not_human)),
        "delegation_required",
    );
    // human_subject before actors.
    let t = delegate(&not_human, BILLING, None);
    expect(&config(), &pay_request(&mint(&t)), "human_subject_required");
    // actors before max_chain_depth.
    let t = delegate(
        &delegate(&delegate(&user_claims(), FREE, None), MUTED, None),
        BILLING,
        None,
    );
    expect(&config(), &pay_request(&mint(&t)), "actor_not_allowed");
    // max_chain_depth before scopes.
    let t = delegate(
        &delegate(
            &delegate(&with(&user_claims(), "scope", json!("")), FREE, None),
            MUTED,
            None,
        ),
        ORCH,
        None,
    );
    expect(&config(), &pay_request(&mint(&t)), "chain_too_deep");
    // scopes before claims.
    let t = delegate(
        &with(
            &with(&user_claims(), "scope", json!("")),
            "acr",
            json!("low"),
        ),
        ORCH,
        None,
    );
    expect(&config(), &pay_request(&mint(&t)), "scope_insufficient");
    // claims before fresh_auth_s.
    let t = delegate(
        &with(
            &with(&user_claims(), "auth_time", json!(NOW - 9999)),
            "acr",
            json!("low"),
        ),
        ORCH,
        None,
    );
    expect(&config(), &pay_request(&mint(&t)), "claim_mismatch");
    // fresh_auth_s last, with the RFC 9470 challenge.
    let t = delegate(
        &with(&user_claims(), "auth_time", json!(NOW - 301)),
        ORCH,
        None,
    );
    let (d, _) = expect(&config(), &pay_request(&mint(&t)), "stepup_required");
    let www = response_header(&d, "www-authenticate").unwrap();
    assert!(
        www.contains("error=\"insufficient_user_authentication\""),
        "{www}"
    );
    assert!(
        www.contains("max_age=\"300\"") || www.contains("max_age=300"),
        "{www}"
    );
    // delegated: false refuses an act.
    let c = rule_only(json!({ "delegated": false }));
    expect(
        &c,
        &pay_request(&mint(&pay_claims())),
        "delegation_forbidden",
    );
    // Rule actors compare with the current actor only.
    let t = delegate(&delegate(&user_claims(), ORCH, None), FREE, None);
    expect(
        &rule_only(full),
        &pay_request(&mint(&t)),
        "actor_not_allowed",
    );
}

#[test]
fn binding_and_peer_come_before_requirements() {
    let mut c = config();
    c["binding"] = json!({ "cnf": "required" });
    expect(&c, &pay_request(&mint(&user_claims())), "binding_required");
    let mut c = config();
    c["binding"] = json!({ "actor_must_match_peer": true });
    expect(&c, &pay_request(&mint(&user_claims())), "peer_mismatch");
}

#[test]
fn multi_valued_sub_profile_is_not_human_because_one_value_is() {
    // SPEC §3: "A subject is human when its `sub_profile` is in
    // `identity.human_profiles`". "ai_agent user" / "service user" is not in ["user"];
    // `claims::is_human` accepts any space-separated member, so an issuer-side entity
    // that is (also) an agent or a service passes `human_subject: true`.
    for profile in ["ai_agent user", "service user", "user service"] {
        let t = delegate(
            &with(&user_claims(), "sub_profile", json!(profile)),
            ORCH,
            None,
        );
        expect(&config(), &pay_request(&mint(&t)), "human_subject_required");
    }
}

#[test]
fn human_profile_is_exact() {
    for profile in ["User", "USER", "users", "ai_agent"] {
        let t = delegate(
            &with(&user_claims(), "sub_profile", json!(profile)),
            ORCH,
            None,
        );
        expect(&config(), &pay_request(&mint(&t)), "human_subject_required");
    }
    let t = delegate(&without(&user_claims(), "sub_profile"), ORCH, None);
    expect(&config(), &pay_request(&mint(&t)), "human_subject_required");
    // An invisible character is not a different profile but a malformed claim.
    let t = delegate(
        &with(&user_claims(), "sub_profile", json!("user\u{200b}")),
        ORCH,
        None,
    );
    expect(&config(), &pay_request(&mint(&t)), "claim_invalid");
    // The actor's profile does not make the subject human.
    let t = delegate(&without(&user_claims(), "sub_profile"), ORCH, Some("user"));
    expect(&config(), &pay_request(&mint(&t)), "human_subject_required");
}

#[test]
fn claims_requirement_compares_json_values_strictly() {
    let rule = |claims: Value| {
        let mut c = config();
        c["rules"][1]["require"] = json!({ "claims": claims });
        c
    };
    let cases: Vec<(Value, Value, &str)> = vec![
        // (require.claims, token claim value or null for absent, expected)
        (json!({ "acr": ["gold"] }), json!("gold"), "allowed"),
        (
            json!({ "acr": ["gold"] }),
            json!(["silver", "gold"]),
            "allowed",
        ),
        (json!({ "acr": ["gold"] }), json!("Gold"), "claim_mismatch"),
        (
            json!({ "acr": ["gold"] }),
            json!(["gold-ish"]),
            "claim_mismatch",
        ),
        (json!({ "acr": ["gold"] }), json!([]), "claim_mismatch"),
        (
            json!({ "acr": ["gold"] }),
            json!({ "gold": true }),
            "claim_mismatch",
        ),
        (json!({ "acr": ["1"] }), json!(1), "claim_mismatch"),
        (json!({ "acr": [1] }), json!("1"), "claim_mismatch"),
        (json!({ "acr": [true] }), json!("true"), "claim_mismatch"),
        (json!({ "acr": [true] }), json!(true), "allowed"),
        (json!({ "acr": [2] }), json!(2), "allowed"),
        (json!({ "acr": ["gold"] }), Value::Null, "claim_mismatch"),
    ];
    for (require, value, reason) in cases {
        let claims = if value.is_null() {
            without(&pay_claims(), "acr")
        } else {
            with(&pay_claims(), "acr", value.clone())
        };
        let (d, _) = run(&rule(require.clone()), &pay_request(&mint(&claims)));
        assert_eq!(
            d.reason().code(),
            reason,
            "require {require} token acr {value}"
        );
    }
}

#[test]
fn fresh_auth_uses_auth_time_else_iat_and_refuses_bad_types() {
    let t = delegate(
        &with(
            &without(&user_claims(), "auth_time"),
            "iat",
            json!(NOW - 100),
        ),
        ORCH,
        None,
    );
    expect(&config(), &pay_request(&mint(&t)), "allowed");
    let t = delegate(
        &with(
            &without(&user_claims(), "auth_time"),
            "iat",
            json!(NOW - 301),
        ),
        ORCH,
        None,
    );
    expect(&config(), &pay_request(&mint(&t)), "stepup_required");
    let t = delegate(
        &with(
            &without(&without(&user_claims(), "auth_time"), "iat"),
            "exp",
            json!(NOW + 100),
        ),
        ORCH,
        None,
    );
    expect(&config(), &pay_request(&mint(&t)), "stepup_required");
    // auth_time present but old wins over a fresh iat.
    let t = delegate(
        &with(&user_claims(), "auth_time", json!(NOW - 301)),
        ORCH,
        None,
    );
    expect(&config(), &pay_request(&mint(&t)), "stepup_required");
}

#[test]
fn future_auth_time_does_not_satisfy_fresh_auth() {
    // SPEC §2 refuses an `iat` in the future beyond skew; `auth_time` is not checked, and
    // `age = now - auth_time` is negative, so a token with `auth_time: now + 1e6` (clock
    // bug at the STS, or an STS that copies a client-supplied value) passes step-up for as
    // long as it lives. Demanding expectation: beyond skew → `stepup_required` (or
    // `token_not_yet_valid`).
    let t = delegate(
        &with(&user_claims(), "auth_time", json!(NOW + 1_000_000)),
        ORCH,
        None,
    );
    let (d, _) = run(&config(), &pay_request(&mint(&t)));
    assert!(
        ["stepup_required", "token_not_yet_valid", "claim_invalid"].contains(&d.reason().code()),
        "{}",
        d.reason().code()
    );
}

// ---------------------------------------------------------------------------------------
// 7. Binding (SPEC §4 step 7)

fn thumbprint(der: &[u8]) -> (String, String) {
    let digest = ring::digest::digest(&ring::digest::SHA256, der);
    (b64::encode(digest.as_ref()), b64::hex(digest.as_ref()))
}

fn with_peer(mut r: Value, peer: Value) -> Value {
    r["peer"] = peer;
    r
}

#[test]
fn certificate_binding() {
    let der = b"not really a certificate, but the digest is what counts";
    let (x5t, hex) = thumbprint(der);
    let bound = with(&pay_claims(), "cnf", json!({ "x5t#S256": x5t }));
    let token = mint(&bound);
    let (_, report) = expect(
        &config(),
        &with_peer(pay_request(&token), json!({ "sha256_digest_hex": hex })),
        "allowed",
    );
    assert_eq!(report["binding"], json!("ok"));
    // Upper-case hex names the same digest.
    expect(
        &config(),
        &with_peer(
            pay_request(&token),
            json!({ "sha256_digest_hex": hex.to_uppercase() }),
        ),
        "allowed",
    );
    // PEM instead of the digest.
    let pem = format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        base64::engine::general_purpose::STANDARD.encode(der)
    );
    expect(
        &config(),
        &with_peer(pay_request(&token), json!({ "certificate_pem": pem })),
        "allowed",
    );
    // Another certificate, or none.
    let (_, other_hex) = thumbprint(b"another");
    let (_, report) = expect(
        &config(),
        &with_peer(
            pay_request(&token),
            json!({ "sha256_digest_hex": other_hex }),
        ),
        "binding_mismatch",
    );
    assert_eq!(report["binding"], json!("mismatch"));
    expect(&config(), &pay_request(&token), "binding_mismatch");
    expect(
        &config(),
        &with_peer(pay_request(&token), json!({ "uri_san": ORCH })),
        "binding_mismatch",
    );
    // Only a method that cannot be checked here (RFC 7800 `jwk`): refused, never skipped.
    let cnf_jwk = with(
        &pay_claims(),
        "cnf",
        json!({ "jwk": { "kty": "EC", "crv": "P-256", "x": "AA", "y": "AA" } }),
    );
    expect(
        &config(),
        &with_peer(
            pay_request(&mint(&cnf_jwk)),
            json!({ "sha256_digest_hex": hex }),
        ),
        "binding_mismatch",
    );
    // `jkt` is DPoP (SPEC §10): a token bound to a key is never a bearer token, whatever
    // the peer.
    let jkt = with(&pay_claims(), "cnf", json!({ "jkt": "abc" }));
    expect(
        &config(),
        &with_peer(
            pay_request(&mint(&jkt)),
            json!({ "sha256_digest_hex": hex }),
        ),
        "dpop_required",
    );
    let empty = with(&pay_claims(), "cnf", json!({}));
    expect(
        &config(),
        &with_peer(
            pay_request(&mint(&empty)),
            json!({ "sha256_digest_hex": hex }),
        ),
        "binding_mismatch",
    );
    // x5t#S256 and jkt together as a bearer token: DPoP comes first in step 7, and a
    // token with `jkt` needs its proof (SPEC §10) even from the right certificate.
    let both = with(
        &pay_claims(),
        "cnf",
        json!({ "x5t#S256": x5t, "jkt": "abc" }),
    );
    expect(
        &config(),
        &with_peer(
            pay_request(&mint(&both)),
            json!({ "sha256_digest_hex": hex }),
        ),
        "dpop_required",
    );
    // Padded or standard-alphabet thumbprints are not base64url.
    let padded = with(
        &pay_claims(),
        "cnf",
        json!({ "x5t#S256": format!("{x5t}=") }),
    );
    expect(
        &config(),
        &with_peer(
            pay_request(&mint(&padded)),
            json!({ "sha256_digest_hex": hex }),
        ),
        "claim_invalid",
    );
}

#[test]
fn peer_must_be_the_current_actor_or_the_subject() {
    let mut c = config();
    c["binding"] = json!({ "actor_must_match_peer": true });
    // Delegated: the current actor, not a prior one.
    let t = delegate(&delegate(&user_claims(), FREE, None), ORCH, None);
    let mut cc = c.clone();
    cc["rules"][1]["require"]["max_chain_depth"] = json!(3);
    expect(
        &cc,
        &with_peer(pay_request(&mint(&t)), json!({ "uri_san": ORCH })),
        "allowed",
    );
    expect(
        &cc,
        &with_peer(pay_request(&mint(&t)), json!({ "uri_san": FREE })),
        "peer_mismatch",
    );
    expect(
        &cc,
        &with_peer(
            pay_request(&mint(&t)),
            json!({ "uri_san": format!("{ORCH}/") }),
        ),
        "peer_mismatch",
    );
    // Not delegated: the subject.
    let svc = with(&user_claims(), "sub", json!(BILLING));
    expect(
        &c,
        &with_peer(
            request("GET", "/v1/x", Some(&mint(&svc))),
            json!({ "uri_san": BILLING }),
        ),
        "allowed",
    );
    expect(
        &c,
        &with_peer(
            request("GET", "/v1/x", Some(&mint(&svc))),
            json!({ "uri_san": ORCH }),
        ),
        "peer_mismatch",
    );
    expect(
        &c,
        &request("GET", "/v1/x", Some(&mint(&svc))),
        "peer_mismatch",
    );
}

// ---------------------------------------------------------------------------------------
// 8. Headers, responses, audit (SPEC §4–§6)

#[test]
fn identity_headers_are_stripped_in_every_spelling_on_every_outcome() {
    for (path, token) in [
        ("/healthz", None),
        ("/v1/payments", Some(mint(&pay_claims()))),
        ("/v1/payments", None),
        ("/nowhere", None),
    ] {
        let mut r = request("POST", path, token.as_deref());
        r["headers"]["X-AGENT-SUBJECT"] = json!("root");
        r["headers"]["x-Agent-Actor"] = json!([ORCH, BILLING]);
        r["headers"]["x-agent-"] = json!("x");
        let (d, report) = run(&config(), &r);
        let mut stripped = d.strip_headers.clone();
        stripped.sort();
        stripped.dedup();
        assert_eq!(
            stripped,
            vec!["x-agent-", "x-agent-actor", "x-agent-subject"],
            "{path}"
        );
        assert!(report["stripped_headers"].as_array().unwrap().len() >= 3);
        // Whatever is forwarded comes from actwarden.
        if d.is_allowed() && token.is_some() {
            assert_eq!(header(&d, "x-agent-subject"), Some("alice@example.com"));
        }
    }
}

#[test]
fn underscore_spelling_of_identity_headers_is_stripped() {
    // SPEC §5 strips `x-agent-*`; it is silent on `_`. Envoy forwards underscore headers by
    // default (`headers_with_underscores_action: ALLOW`), and CGI/WSGI/PHP/Rack map both
    // `x-agent-subject` and `x_agent_subject` to `HTTP_X_AGENT_SUBJECT`. On an anonymous
    // route (no actwarden header to collide with) the caller then chooses the identity.
    // Demanding expectation: strip (or refuse) names equal to `x-agent-*` after `_` → `-`.
    let mut r = request("GET", "/healthz", None);
    r["headers"]["x_agent_subject"] = json!("root");
    r["headers"]["X_Agent_Actor"] = json!(ORCH);
    let (d, _) = run(&config(), &r);
    let mut stripped = d.strip_headers.clone();
    stripped.sort();
    assert_eq!(stripped, vec!["x_agent_actor", "x_agent_subject"]);
}

#[test]
fn responses_follow_spec_section_four() {
    // 401 without a token: a bare challenge.
    let (d, report) = expect(
        &config(),
        &request("POST", "/v1/payments", None),
        "token_missing",
    );
    assert_eq!(response_header(&d, "www-authenticate"), Some("Bearer"));
    assert_eq!(report["response"]["status"], json!(401));
    let body: Value = serde_json::from_str(report["response"]["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["error"], json!("token_missing"));
    assert!(body["detail"].is_string());
    // 401 invalid_token.
    let (d, _) = expect(
        &config(),
        &request("POST", "/v1/payments", Some("a.b.c")),
        "token_malformed",
    );
    assert_eq!(
        response_header(&d, "www-authenticate"),
        Some("Bearer error=\"invalid_token\", error_description=\"token_malformed\"")
    );
    // gRPC mapping: 16 / 7 / 14, HTTP 200, grpc-message = reason.
    let grpc = |mut r: Value| {
        r["headers"]["content-type"] = json!("application/grpc+proto");
        r
    };
    let (d, _) = expect(
        &config(),
        &grpc(request("POST", "/v1/payments", None)),
        "token_missing",
    );
    let resp = d.response().unwrap();
    assert_eq!(resp.http_status, 200);
    assert_eq!(response_header(&d, "grpc-status"), Some("16"));
    assert_eq!(response_header(&d, "grpc-message"), Some("token_missing"));
    let (d, _) = expect(
        &config(),
        &grpc(request("POST", "/pkg.Service/Method", None)),
        "route_denied",
    );
    assert_eq!(response_header(&d, "grpc-status"), Some("7"));
    let mut c = config();
    c["providers"]["corp-sts"]
        .as_object_mut()
        .unwrap()
        .remove("local_jwks");
    c["providers"]["corp-sts"]["remote_jwks"] =
        json!({ "http_uri": { "uri": "http://sts.internal/jwks", "cluster": "sts" } });
    let (d, _) = expect(
        &c,
        &grpc(pay_request(&mint(&pay_claims()))),
        "jwks_unavailable",
    );
    assert_eq!(response_header(&d, "grpc-status"), Some("14"));
    // Not gRPC when content-type is repeated or only looks alike.
    let mut r = request("POST", "/v1/payments", None);
    r["headers"]["content-type"] = json!("application/json; x=application/grpc");
    let (d, _) = run(&config(), &r);
    assert_eq!(d.response().unwrap().http_status, 401);
}

#[test]
fn challenge_parameters_from_configuration_are_quoted() {
    let mut c = config();
    c["rules"][1]["require"]["claims"]["acr"] = json!(["a\"b\\c\r\nx-injected: 1"]);
    let t = delegate(
        &with(
            &with(&user_claims(), "acr", json!("a\"b\\c\r\nx-injected: 1")),
            "auth_time",
            json!(NOW - 301),
        ),
        ORCH,
        None,
    );
    let (d, _) = expect(&c, &pay_request(&mint(&t)), "stepup_required");
    let www = response_header(&d, "www-authenticate").unwrap();
    assert!(!www.contains('\r') && !www.contains('\n'), "{www:?}");
    assert!(
        www.contains(r#"acr_values="a\"b\\cx-injected: 1""#),
        "{www}"
    );
}

#[test]
fn audit_never_repeats_what_an_unverified_token_claims() {
    let claims = with(
        &with(&pay_claims(), "sub", json!("ceo@example.com")),
        "jti",
        json!("forged-jti"),
    );
    let good = mint(&claims);
    let (header_b64, rest) = good.split_once('.').unwrap();
    let (_, sig) = rest.split_once('.').unwrap();
    let forged_payload = b64::encode(claims.to_string().replace("ceo", "cfo").as_bytes());
    let forged = format!("{header_b64}.{forged_payload}.{sig}");
    let (d, report) = expect(&config(), &pay_request(&forged), "signature_invalid");
    for field in [
        "iss",
        "sub",
        "sub_profile",
        "actor",
        "chain",
        "scopes",
        "jti",
        "depth",
    ] {
        assert!(report[field].is_null(), "{field}: {report}");
    }
    assert_eq!(report["kid"], json!("k1"));
    assert_eq!(report["alg"], json!("ES256"));
    assert_eq!(report["token_id"].as_str().unwrap().len(), 16);
    let text = report.to_string();
    assert!(
        !text.contains(&forged) && !text.contains(sig),
        "token in report"
    );
    assert!(!text.contains("cfo@example.com"));
    assert!(d.identity_headers().next().is_none());
    // Oversized unverified header members are bounded in the record.
    let k = keys();
    let mut extra = Map::new();
    extra.insert("kid".into(), json!("k".repeat(1500)));
    let long_kid = k
        .corp
        .mint(Alg::ES256, &pay_claims(), Some(&extra), &k.rng)
        .unwrap();
    let (_, report) = expect(&config(), &pay_request(&long_kid), "kid_unknown");
    assert!(report["kid"].as_str().unwrap().len() <= 128);
}

#[test]
fn audit_identity_is_recorded_for_verified_but_refused_tokens() {
    let t = delegate(
        &with(&user_claims(), "sub_profile", json!("service")),
        ORCH,
        None,
    );
    let (_, report) = expect(&config(), &pay_request(&mint(&t)), "human_subject_required");
    assert_eq!(report["sub"], json!("alice@example.com"));
    assert_eq!(report["actor"], json!(ORCH));
    assert_eq!(report["chain"], json!([ORCH]));
    assert_eq!(report["jti"], json!("jti-1"));
    assert_eq!(report["rule"], json!("pay"));
    assert_eq!(report["provider"], json!("corp-sts"));
}

// ---------------------------------------------------------------------------------------
// 9. Configuration loader (SPEC §2 last bullet)

#[test]
fn loader_refuses_bad_numbers_with_the_json_path() {
    for (field, value) in [
        ("clock_skew_s", json!(-1)),
        ("clock_skew_s", json!(60.5)),
        ("clock_skew_s", json!(1e30)),
        ("clock_skew_s", json!("60")),
        ("clock_skew_s", json!(3601)),
        ("max_lifetime_s", json!(0)),
        ("max_lifetime_s", json!(18_446_744_073_709_551_615_u64)),
    ] {
        let mut c = config();
        c["providers"]["corp-sts"][field] = value.clone();
        let path = load_error(&c);
        assert!(path.contains(field), "{field}={value}: path {path:?}");
    }
    for (ptr, value) in [
        ("/identity/max_chain_depth", json!(33)),
        ("/identity/max_chain_depth", json!(-1)),
        ("/rules/1/require/max_chain_depth", json!(4_294_967_296_u64)),
        ("/rules/1/require/fresh_auth_s", json!(-300)),
        ("/rules/1/require/fresh_auth_s", json!(300.0)),
    ] {
        let mut c = config();
        *c.pointer_mut(ptr).unwrap() = value.clone();
        let path = load_error(&c);
        let last = ptr.rsplit('/').next().unwrap();
        assert!(path.contains(last), "{ptr}={value}: path {path:?}");
    }
}

/// A change to the base configuration.
type Mutation = Box<dyn Fn(&mut Value)>;

#[test]
fn loader_refuses_structural_mistakes() {
    let cases: Vec<(Mutation, &str)> = vec![
        (
            Box::new(|c| c["rules"][2]["id"] = json!("pay")),
            "rules[2].id",
        ),
        (Box::new(|c| c["rules"][2]["id"] = json!("")), "rules[2].id"),
        (
            Box::new(|c| c["rules"][2]["id"] = json!("v1\r\nx")),
            "rules[2].id",
        ),
        (
            Box::new(|c| c["rules"][2]["providers"] = json!([])),
            "rules[2].providers",
        ),
        (
            Box::new(|c| c["rules"][2]["providers"] = json!(["nope"])),
            "rules[2].providers[0]",
        ),
        (
            Box::new(|c| c["rules"][2]["match"] = json!({})),
            "rules[2].match",
        ),
        (
            Box::new(|c| c["rules"][2]["match"]["path_exact"] = json!("/x")),
            "rules[2].match",
        ),
        (
            Box::new(|c| c["rules"][2]["match"]["path_prefix"] = json!("v1")),
            "rules[2].match.path_prefix",
        ),
        (
            Box::new(|c| c["rules"][2]["match"]["methods"] = json!(["post"])),
            "rules[2].match.methods[0]",
        ),
        (
            Box::new(|c| c["rules"][2]["match"]["methods"] = json!([])),
            "rules[2].match.methods",
        ),
        (
            Box::new(|c| c["rules"][2]["match"]["methods"] = json!(["*"])),
            "rules[2].match.methods[0]",
        ),
        (
            Box::new(|c| c["rules"][0]["require"] = json!({})),
            "rules[0].require",
        ),
        (
            Box::new(|c| c["rules"][1]["require"]["delegated"] = json!(false)),
            "rules[1].require.delegated",
        ),
        (
            Box::new(|c| c["rules"][1]["require"]["scopes"] = json!(["a b"])),
            "rules[1].require.scopes[0]",
        ),
        (
            Box::new(|c| c["rules"][1]["require"]["scopes"] = json!([""])),
            "rules[1].require.scopes[0]",
        ),
        (
            Box::new(|c| c["rules"][1]["require"]["claims"] = json!({ "acr": [] })),
            "rules[1].require.claims.acr",
        ),
        (
            Box::new(|c| c["rules"][1]["require"]["actors"] = json!([])),
            "rules[1].require.actors",
        ),
        (
            Box::new(|c| c["rules"][1]["require"]["scope"] = json!(["x"])),
            "rules[1].require",
        ),
        (
            Box::new(|c| c["identity"]["trust_domains"] = json!(["Prod.example.com"])),
            "identity.trust_domains[0]",
        ),
        (
            Box::new(|c| c["identity"]["trust_domains"] = json!(["spiffe://prod.example.com"])),
            "identity.trust_domains[0]",
        ),
        (
            Box::new(|c| c["identity"]["trust_domains"] = json!([])),
            "identity.trust_domains",
        ),
        (
            Box::new(|c| c["identity"]["actors"]["spiffe://evil.example.com/a"] = json!({})),
            "identity.actors",
        ),
        (
            Box::new(|c| c["identity"]["actors"]["alice"] = json!({})),
            "identity.actors",
        ),
        (
            Box::new(|c| c["identity"]["actors"][ORCH]["max_scopes"] = json!(["a b"])),
            "max_scopes[0]",
        ),
        (
            Box::new(|c| c["providers"]["corp-sts"]["token_types"] = json!([""])),
            "token_types[0]",
        ),
        (
            Box::new(|c| c["providers"]["corp-sts"]["token_types"] = json!(["application/"])),
            "token_types[0]",
        ),
        (
            Box::new(|c| c["providers"]["corp-sts"]["token_types"] = json!([])),
            "token_types",
        ),
        (
            Box::new(|c| {
                c["providers"]["corp-sts"]["from_headers"] = json!([{ "name": "X-Agent-Token" }])
            }),
            "from_headers[0].name",
        ),
        (
            // The underscore spelling is an identity field too (stripped from every request).
            Box::new(|c| {
                c["providers"]["corp-sts"]["from_headers"] = json!([{ "name": "X_Agent_Token" }])
            }),
            "from_headers[0].name",
        ),
        (
            Box::new(|c| {
                c["providers"]["corp-sts"]["from_headers"] = json!([{ "name": ":authority" }])
            }),
            "from_headers[0].name",
        ),
        (
            Box::new(|c| c["providers"]["corp-sts"]["from_headers"] = json!([{ "name": "a b" }])),
            "from_headers[0].name",
        ),
        (
            Box::new(|c| c["providers"]["corp-sts"]["from_headers"] = json!([])),
            "from_headers",
        ),
        (
            Box::new(|c| c["providers"]["corp-sts"]["algorithms"] = json!(["none"])),
            "algorithms[0]",
        ),
        (
            Box::new(|c| c["providers"]["corp-sts"]["algorithms"] = json!(["es256"])),
            "algorithms[0]",
        ),
        (
            Box::new(|c| c["providers"]["corp-sts"]["algorithms"] = json!(["HS256"])),
            "algorithms[0]",
        ),
        (
            Box::new(|c| c["providers"]["corp-sts"]["audiences"] = json!([])),
            "audiences",
        ),
        (
            Box::new(|c| c["providers"]["corp-sts"]["audiences"] = json!([""])),
            "audiences[0]",
        ),
        (
            Box::new(|c| c["providers"]["corp-sts"]["issuer"] = json!("")),
            "issuer",
        ),
        (
            Box::new(|c| c["providers"]["corp-sts"]["local_jwks"] = json!({})),
            "local_jwks",
        ),
        (
            Box::new(|c| {
                c["providers"]["corp-sts"]["local_jwks"] = json!({ "filename": "/etc/jwks.json" })
            }),
            "local_jwks.filename",
        ),
        (
            Box::new(|c| {
                c["providers"]["corp-sts"]["remote_jwks"] =
                    json!({ "http_uri": { "uri": "http://x", "cluster": "c" } })
            }),
            "providers.corp-sts",
        ),
        (
            Box::new(|c| c["providers"]["dup"] = c["providers"]["corp-sts"].clone()),
            "issuer",
        ),
        (
            Box::new(|c| c["on_no_match"] = json!("ALLOW")),
            "on_no_match",
        ),
        (
            Box::new(|c| c["binding"] = json!({ "cnf": "always" })),
            "binding.cnf",
        ),
        (
            Box::new(|c| c["audit"] = json!({ "log": "none" })),
            "audit.log",
        ),
        (
            Box::new(|c| c["audit"] = json!({ "log": null })),
            "audit.log",
        ),
        (
            Box::new(|c| c["audit"] = json!({ "level": "info" })),
            "audit",
        ),
        (
            Box::new(|c| c["rules"][2]["allow_anonymous"] = json!("yes")),
            "rules[2].allow_anonymous",
        ),
    ];
    for (i, (mutate, want)) in cases.into_iter().enumerate() {
        let mut c = config();
        mutate(&mut c);
        let path = load_error(&c);
        assert!(
            path.contains(want),
            "case {i}: path {path:?}, want {want:?}"
        );
    }
    // A rule needing a token with no providers configured at all.
    let c = json!({ "rules": [{ "id": "r", "match": { "path_prefix": "/" } }] });
    assert_eq!(load_error(&c), "rules[0]");
    // Duplicate member names anywhere.
    let text = r#"{"rules":[],"on_no_match":"deny","on_no_match":"allow"}"#;
    assert!(Policy::from_json(text).is_err());
}

#[test]
fn audit_log_setting_defaults_to_every_decision() {
    use actwarden::AuditLog;
    let policy = |c: &Value| Policy::from_json(&c.to_string()).unwrap().audit_log;
    let mut c = config();
    assert_eq!(policy(&c), AuditLog::All);
    assert!(AuditLog::All.logs(true) && AuditLog::All.logs(false));
    c["audit"] = json!({});
    assert_eq!(policy(&c), AuditLog::All);
    c["audit"] = json!({ "log": "denials" });
    assert_eq!(policy(&c), AuditLog::Denials);
    assert!(!AuditLog::Denials.logs(true) && AuditLog::Denials.logs(false));
    // The setting chooses what a host logs, never the decision or its record.
    expect(&c, &pay_request(&mint(&pay_claims())), "allowed");
}

#[test]
fn loader_accepts_what_the_spec_allows() {
    let mut c = config();
    c["providers"]["corp-sts"]["token_types"] = json!(["JWT", "application/AT+JWT"]);
    c["providers"]["corp-sts"]["from_headers"] =
        json!([{ "name": "Authorization", "value_prefix": "Bearer " }]);
    loads(&c);
    // Normalised typ still matches, and the upper-case header name still reads tokens.
    expect(&c, &pay_request(&mint(&pay_claims())), "allowed");
    // An empty allowlist is strict, not open: a rule that requires an actor the allowlist
    // refuses could never pass, so it is a load error; without that rule every delegated
    // token is refused.
    let mut c = config();
    c["identity"]["actors"] = json!({});
    assert!(load_error(&c).contains("require.actors[0]"));
    for rule in c["rules"].as_array_mut().unwrap() {
        if let Some(require) = rule.get_mut("require").and_then(Value::as_object_mut) {
            require.remove("actors");
        }
    }
    loads(&c);
    expect(&c, &pay_request(&mint(&pay_claims())), "actor_not_allowed");
    // `require: {}` means a valid token only.
    let mut c = config();
    c["rules"][1]["require"] = json!({});
    expect(&c, &pay_request(&mint(&user_claims())), "allowed");
    // Anonymous rules need no providers.
    loads(
        &json!({ "rules": [{ "id": "r", "match": { "path_prefix": "/" }, "allow_anonymous": true }] }),
    );
}

#[test]
fn loader_refuses_null_where_a_value_is_expected() {
    // SPEC §2: "wrong type … is refused at load time". `null` is not an array/object; an
    // author (or a templating tool that renders an empty variable as null) who writes
    // `"trust_domains": null` gets no trust-domain pinning, `"actors": null` no
    // allowlist, `"revoked": null` no revocation — all silently.
    let mut accepted = Vec::new();
    for ptr_value in [
        ("/identity/trust_domains", Value::Null),
        ("/identity/actors", Value::Null),
        ("/revoked", Value::Null),
        ("/binding", Value::Null),
        ("/rules/1/require", Value::Null),
        ("/rules/1/require/scopes", Value::Null),
    ] {
        let mut c = config();
        c["revoked"] = json!({ "jti": [] });
        c["binding"] = json!({ "cnf": "required" });
        *c.pointer_mut(ptr_value.0).unwrap() = ptr_value.1;
        if Policy::from_json(&c.to_string()).is_ok() {
            accepted.push(ptr_value.0);
        }
    }
    assert!(accepted.is_empty(), "null accepted at {accepted:?}");
}

#[test]
fn loader_refuses_control_characters_in_values_copied_into_headers() {
    // SPEC silent; demanding expectation: every configured string that ends up in a header
    // (`x-agent-issuer` is the token's `iss`, which must equal the provider's `issuer`) is
    // refused when it holds control characters, as rule ids already are.
    let mut c = config();
    c["providers"]["corp-sts"]["issuer"] =
        json!("https://sts.example.com\r\nx-agent-subject: root");
    assert!(
        Policy::from_json(&c.to_string()).is_err(),
        "issuer with CRLF accepted"
    );
}

#[test]
fn loader_refuses_rule_paths_that_can_never_match() {
    // SPEC silent; demanding expectation: a protective rule that silently never applies is
    // a fail-open misconfiguration (requests fall through to later, weaker rules). E.g.
    // `path_exact: "/v1/pay?op=refund"` never matches because rules see the path without
    // its query, so `/v1/pay?op=refund` reaches the anonymous catch-all.
    let mut accepted = Vec::new();
    for bad in [
        "/v1/pay?op=refund",
        "/v1/pay#frag",
        "/v1/../admin",
        "/v1/./admin",
        "/v1//admin",
        "/v1%2Fadmin",
        "/v1/%61dmin",
        "/v1\\admin",
    ] {
        let mut c = config();
        c["rules"] = json!([
            { "id": "guard", "match": { "path_exact": bad }, "providers": ["corp-sts"] },
            { "id": "public", "match": { "path_prefix": "/" }, "allow_anonymous": true }
        ]);
        if Policy::from_json(&c.to_string()).is_ok() {
            accepted.push(bad);
        }
    }
    assert!(
        accepted.is_empty(),
        "never-matching rule paths accepted: {accepted:?}"
    );
}

#[test]
fn loader_refuses_unsatisfiable_requirements() {
    // SPEC silent; demanding expectation: like `delegated: false` with `actors` (already
    // refused), a rule nobody can ever pass is an authoring error, not a policy.
    let mutations: Vec<(&str, Value)> = vec![
        (
            "/rules/1/require/actors",
            json!(["spiffe://evil.example.com/agent/x"]),
        ),
        (
            "/rules/1/require/actors",
            json!(["spiffe://prod.example.com/agent/unlisted"]),
        ),
        ("/rules/1/require/actors", json!([""])),
        ("/rules/1/require/max_chain_depth", json!(0)),
        ("/identity/human_profiles", json!([""])),
        ("/identity/human_profiles", json!(["service user"])),
    ];
    let mut accepted = Vec::new();
    for (ptr, value) in mutations {
        let mut c = config();
        *c.pointer_mut(ptr).unwrap() = value.clone();
        if Policy::from_json(&c.to_string()).is_ok() {
            accepted.push(format!("{ptr} = {value}"));
        }
    }
    assert!(accepted.is_empty(), "accepted: {accepted:#?}");
}

#[test]
fn empty_human_profile_entry_does_not_make_padded_profiles_human() {
    // Was a finding: `human_profiles: ["", "user"]` loaded, and a trailing space in
    // `sub_profile` made an empty member that matched "". Now the empty profile is a load
    // error and a padded `sub_profile` is a malformed claim.
    let mut c = config();
    c["identity"]["human_profiles"] = json!(["", "user"]);
    assert_eq!(load_error(&c), "identity.human_profiles[0]");
    let t = delegate(
        &with(&user_claims(), "sub_profile", json!("ai_agent ")),
        ORCH,
        None,
    );
    expect(&config(), &pay_request(&mint(&t)), "claim_invalid");
}

#[test]
fn files_are_refused_in_a_host_without_files() {
    let mut c = config();
    c["providers"]["corp-sts"]["local_jwks"] = json!({ "filename": "jwks.json" });
    let err = check_json(
        &c.to_string(),
        &request("GET", "/healthz", None).to_string(),
        UnixTime::from_secs(NOW),
        &HashMap::new(),
        &|_| Err(actwarden::FileError::NoFiles),
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("providers.corp-sts.local_jwks.filename"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------
// 10. Step 3 order and odd inputs

fn mint_with_header(claims: &Value, header: Value) -> String {
    let k = keys();
    let extra: Map<String, Value> = header.as_object().unwrap().clone();
    k.corp
        .mint(Alg::ES256, claims, Some(&extra), &k.rng)
        .unwrap()
}

#[test]
fn step_three_order() {
    let c = config();
    let r = |t: &str| request("GET", "/v1/x", Some(t));
    let stranger = with(&user_claims(), "iss", json!("https://evil.example"));
    // issuer before typ before alg.
    let t = mint_with_header(&stranger, json!({ "typ": "JOSE", "alg": "none" }));
    expect(&c, &r(&t), "issuer_unknown");
    let t = mint_with_header(&user_claims(), json!({ "typ": "JOSE", "alg": "none" }));
    expect(&c, &r(&t), "type_not_allowed");
    let t = mint_with_header(&user_claims(), json!({ "typ": "" }));
    expect(&c, &r(&t), "type_not_allowed");
    let t = mint_with_header(&user_claims(), json!({ "typ": "application/AT+JWT" }));
    expect(&c, &r(&t), "allowed");
    let t = mint_with_header(&user_claims(), json!({ "typ": null }));
    expect(&c, &r(&t), "allowed");
    let t = mint_with_header(&user_claims(), json!({ "alg": "none", "kid": "nope" }));
    expect(&c, &r(&t), "alg_not_allowed");
    let t = mint_with_header(&user_claims(), json!({ "alg": "HS256", "kid": "nope" }));
    expect(&c, &r(&t), "alg_not_allowed");
    // alg before keys: a remote provider without keys.
    let mut remote = config();
    remote["providers"]["corp-sts"]
        .as_object_mut()
        .unwrap()
        .remove("local_jwks");
    remote["providers"]["corp-sts"]["remote_jwks"] =
        json!({ "http_uri": { "uri": "http://sts.internal/jwks", "cluster": "sts" } });
    let t = mint_with_header(&user_claims(), json!({ "alg": "RS256" }));
    expect(&remote, &r(&t), "jwks_unavailable");
    let t = mint_with_header(&user_claims(), json!({ "alg": "none" }));
    expect(&remote, &r(&t), "alg_not_allowed");
    // keys before kid, kid before signature.
    let t = mint_with_header(&user_claims(), json!({ "kid": "nope" }));
    expect(&remote, &r(&t), "jwks_unavailable");
    expect(&c, &r(&t), "kid_unknown");
    // No kid: every fitting key is tried.
    let t = mint_with_header(&user_claims(), json!({ "kid": null }));
    expect(&c, &r(&t), "allowed");
    // Nothing in the claims is looked at before the signature: a forged token with a
    // bad `exp` is `signature_invalid`, not `claim_invalid`.
    let good = mint(&user_claims());
    let (h, rest) = good.split_once('.').unwrap();
    let (_, sig) = rest.split_once('.').unwrap();
    let body = b64::encode(
        with(&user_claims(), "exp", json!("never"))
            .to_string()
            .as_bytes(),
    );
    expect(&c, &r(&format!("{h}.{body}.{sig}")), "signature_invalid");
}

#[test]
fn odd_requests_are_decisions_not_panics() {
    let token = mint(&pay_claims());
    for path in [
        "/%",
        "/%%",
        "/%é",
        "/é%",
        "/a%C3",
        "/\u{10FFFF}",
        "/v1/payments\u{0}",
        "/v1/payments%00",
        "/healthz%0d%0ax-agent-subject:%20root",
        "//",
        "/;",
        "/?",
        "#",
    ] {
        for method in ["POST", "", "P\u{0}ST", "ÉTÉ"] {
            let mut r = request(method, path, Some(&token));
            r["peer"] = json!({ "uri_san": "\u{0}" });
            let (d, report) = run(&config(), &r);
            assert_eq!(
                report["decision"],
                json!(if d.is_allowed() { "allow" } else { "deny" })
            );
            let parsed = actwarden::Request::from_json(&r.to_string()).unwrap();
            assert!(!d.audit_record(&parsed).to_json_line().contains('\n'));
        }
    }
}
