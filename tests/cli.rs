#![cfg(feature = "cli")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! End-to-end tests of the `actwarden` binary (SPEC §7): keys, JWKS and tokens are made with
//! the CLI itself (`keygen`, `jwks`, `mint`), then `check` runs with a fixed `--now` against
//! `tests/fixtures/cli/policy.json`. Every run also asserts that the binary did not panic.

use base64::Engine as _;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

const BIN: &str = env!("CARGO_BIN_EXE_actwarden");
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/cli");

/// When tokens are minted (`iat`); checks run at `NOW`.
const T0: u64 = 1_700_000_000;
const NOW: u64 = T0 + 60;
const TTL: u64 = 600;

const ISS: &str = "https://sts.example.com";
const PARTNER_ISS: &str = "https://partner.example.net";
const AUD: &str = "payments-api";
const ORCHESTRATOR: &str = "spiffe://prod.example.com/agent/orchestrator";
const BILLING: &str = "spiffe://prod.example.com/agent/billing";
const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// SPEC §6: every audit record carries these members (`null` when unknown).
const AUDIT_FIELDS: [&str; 26] = [
    "ts",
    "decision",
    "reason",
    "status",
    "enforced",
    "rule",
    "provider",
    "iss",
    "sub",
    "sub_profile",
    "actor",
    "chain",
    "depth",
    "scopes",
    "kid",
    "alg",
    "jti",
    "token_id",
    "method",
    "path",
    "authority",
    "request_id",
    "trace_id",
    "peer",
    "binding",
    "eval_us",
];

// ---------------------------------------------------------------------------------------
// Harness

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Out {
    fn json(&self) -> Value {
        serde_json::from_str(self.stdout.trim()).unwrap_or_else(|e| {
            panic!(
                "stdout is not one JSON value ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }
}

fn run<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Out {
    let output = Command::new(BIN)
        .args(args)
        .output()
        .expect("the actwarden binary runs");
    let out = Out {
        code: output
            .status
            .code()
            .expect("exited, not killed by a signal"),
        stdout: String::from_utf8(output.stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8(output.stderr).expect("stderr is UTF-8"),
    };
    assert!(
        !out.stderr.contains("panicked") && !out.stderr.contains("internal error"),
        "actwarden panicked: {}",
        out.stderr
    );
    out
}

/// A fresh directory under the system temp dir, removed on drop.
struct Sandbox {
    dir: PathBuf,
}

impl Sandbox {
    fn new(tag: &str) -> Sandbox {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        let dir = std::env::temp_dir().join(format!(
            "actwarden-cli-{tag}-{}-{}-{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Sandbox { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, contents).unwrap();
        path
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn keygen(sandbox: &Sandbox, alg: &str, kid: &str, file: &str) -> PathBuf {
    let out = run(&["keygen", "--alg", alg, "--kid", kid]);
    assert_eq!(out.code, 0, "keygen {alg}: {}", out.stderr);
    let jwk: Value = out.json();
    assert_eq!(jwk["kid"], kid);
    assert!(
        jwk.get("d").is_some() || jwk.get("k").is_some(),
        "a private JWK: {jwk}"
    );
    sandbox.write(file, &out.stdout)
}

fn public_jwks(sandbox: &Sandbox, keys: &[&Path], file: &str) -> PathBuf {
    let mut args = vec![std::ffi::OsString::from("jwks")];
    args.extend(keys.iter().map(|k| k.as_os_str().to_owned()));
    let out = run(&args);
    assert_eq!(out.code, 0, "jwks: {}", out.stderr);
    let jwks = out.json();
    for key in jwks["keys"].as_array().unwrap() {
        assert!(key.get("d").is_none(), "public JWKS holds a private member");
    }
    sandbox.write(file, &out.stdout)
}

/// A sandbox with `policy.json` (the fixture), `jwks.json` (corp-sts: an ES256 key `corp-1`
/// and an EdDSA key `corp-2`) and `partner-jwks.json` (the remote provider `partner-sts`).
struct Env {
    sb: Sandbox,
    corp_es: PathBuf,
    corp_ed: PathBuf,
    partner: PathBuf,
    policy: PathBuf,
    seq: AtomicUsize,
}

impl Env {
    fn new(tag: &str) -> Env {
        let sb = Sandbox::new(tag);
        let corp_es = keygen(&sb, "ES256", "corp-1", "corp-es.json");
        let corp_ed = keygen(&sb, "EdDSA", "corp-2", "corp-ed.json");
        let partner = keygen(&sb, "ES256", "partner-1", "partner-key.json");
        public_jwks(&sb, &[&corp_es, &corp_ed], "jwks.json");
        public_jwks(&sb, &[&partner], "partner-jwks.json");
        let policy = std::fs::read_to_string(Path::new(FIXTURES).join("policy.json")).unwrap();
        let policy = sb.write("policy.json", &policy);
        Env {
            sb,
            corp_es,
            corp_ed,
            partner,
            policy,
            seq: AtomicUsize::new(0),
        }
    }

    fn next_name(&self, stem: &str) -> String {
        format!("{stem}-{}.json", self.seq.fetch_add(1, Ordering::Relaxed))
    }

    /// `actwarden mint --now T0 --ttl TTL`.
    fn mint_with(&self, key: &Path, claims: &Value) -> String {
        let claims_file = self
            .sb
            .write(&self.next_name("claims"), &claims.to_string());
        let out = run(&[
            "mint".as_ref(),
            "--key".as_ref(),
            key.as_os_str(),
            "--claims".as_ref(),
            claims_file.as_os_str(),
            "--now".as_ref(),
            T0.to_string().as_ref(),
            "--ttl".as_ref(),
            TTL.to_string().as_ref(),
        ]);
        assert_eq!(out.code, 0, "mint: {}", out.stderr);
        let token = out.stdout.trim().to_owned();
        assert_eq!(token.matches('.').count(), 2, "compact JWS: {token}");
        token
    }

    fn mint(&self, claims: &Value) -> String {
        self.mint_with(&self.corp_es, claims)
    }

    fn check_at(&self, request: &Value, now: u64, extra: &[&str]) -> Out {
        let request_file = self
            .sb
            .write(&self.next_name("request"), &request.to_string());
        let mut args: Vec<std::ffi::OsString> = vec![
            "check".into(),
            "--config".into(),
            self.policy.clone().into(),
            "--request".into(),
            request_file.into(),
            "--now".into(),
            now.to_string().into(),
        ];
        args.extend(extra.iter().map(Into::into));
        run(&args)
    }

    fn check(&self, request: &Value) -> Out {
        self.check_at(request, NOW, &[])
    }
}

fn token_id(token: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    digest.as_ref()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn delegated_claims(scope: &str) -> Value {
    json!({
        "iss": ISS,
        "aud": AUD,
        "sub": "alice@example.com",
        "sub_profile": "user",
        "jti": "jti-0001",
        "scope": scope,
        "act": { "sub": ORCHESTRATOR, "sub_profile": "ai_agent" }
    })
}

fn request(method: &str, path: &str, token: Option<&str>) -> Value {
    let mut headers = serde_json::Map::new();
    if let Some(t) = token {
        headers.insert("authorization".into(), json!(format!("Bearer {t}")));
    }
    json!({ "method": method, "path": path, "authority": "api.example.com", "headers": headers })
}

fn grpc_request(path: &str, token: Option<&str>) -> Value {
    let mut r = request("POST", path, token);
    r["headers"]["content-type"] = json!("application/grpc+proto");
    r
}

fn assert_audit_fields(record: &Value) {
    let obj = record.as_object().expect("a JSON object");
    for field in AUDIT_FIELDS {
        assert!(
            obj.contains_key(field),
            "audit field `{field}` missing: {record}"
        );
    }
    assert!(
        record["eval_us"].is_u64(),
        "eval_us is a number: {}",
        record["eval_us"]
    );
    let ts = record["ts"].as_str().expect("ts is a string");
    assert!(
        ts.starts_with("2023-11-14T22:14:20") && ts.ends_with('Z'),
        "ts: {ts}"
    );
}

/// Neither the token nor its signature (nor its payload) appears anywhere in the output.
fn assert_no_token_leak(out: &Out, token: &str) {
    let parts: Vec<&str> = token.split('.').collect();
    for needle in [token, parts[1], parts[2]] {
        assert!(
            !out.stdout.contains(needle) && !out.stderr.contains(needle),
            "output repeats the raw token or signature: {}",
            out.stdout
        );
    }
}

fn assert_deny(out: &Out, reason: &str, status: u64) -> Value {
    assert_eq!(out.code, 1, "deny exits 1: {}{}", out.stdout, out.stderr);
    let v = out.json();
    assert_audit_fields(&v);
    assert_eq!(v["decision"], "deny", "{v}");
    assert_eq!(v["reason"], reason, "{v}");
    assert_eq!(v["status"], status, "{v}");
    let detail = v["detail"].as_str().expect("deny has a detail sentence");
    assert!(!detail.is_empty());
    assert_eq!(v["headers"], json!({}), "no identity headers on deny: {v}");
    v
}

fn challenge(v: &Value) -> &str {
    v["response"]["headers"]["www-authenticate"]
        .as_str()
        .unwrap_or_else(|| panic!("no www-authenticate: {v}"))
}

// ---------------------------------------------------------------------------------------
// Allow

#[test]
fn allowed_delegated_request_prints_the_full_audit_record_and_identity_headers() {
    let env = Env::new("allow");
    let token = env.mint(&delegated_claims("payments:write invoices:read"));
    let mut req = request("POST", "/v1/payments?card=4111111111111111", Some(&token));
    req["headers"]["x-request-id"] = json!("req-7f3a");
    req["headers"]["traceparent"] = json!(TRACEPARENT);
    req["peer"] = json!({ "uri_san": ORCHESTRATOR });
    let out = env.check(&req);
    assert_eq!(out.code, 0, "allow exits 0: {}{}", out.stdout, out.stderr);
    let v = out.json();
    assert_audit_fields(&v);
    assert_eq!(v["decision"], "allow");
    assert_eq!(v["reason"], "allowed");
    assert_eq!(v["status"], Value::Null);
    assert_eq!(v["rule"], "pay");
    assert_eq!(v["provider"], "corp-sts");
    assert_eq!(v["iss"], ISS);
    assert_eq!(v["sub"], "alice@example.com");
    assert_eq!(v["sub_profile"], "user");
    assert_eq!(v["actor"], ORCHESTRATOR);
    assert_eq!(v["chain"], json!([ORCHESTRATOR]));
    assert_eq!(v["depth"], 1);
    let scopes: BTreeSet<&str> = v["scopes"]
        .as_array()
        .expect("scopes is an array")
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert_eq!(scopes, BTreeSet::from(["payments:write", "invoices:read"]));
    assert_eq!(v["kid"], "corp-1");
    assert_eq!(v["alg"], "ES256");
    assert_eq!(v["jti"], "jti-0001");
    assert_eq!(v["token_id"], token_id(&token));
    assert_eq!(v["method"], "POST");
    assert_eq!(v["path"], "/v1/payments", "query stripped");
    assert!(!out.stdout.contains("4111111111111111"), "query leaked");
    assert_eq!(v["authority"], "api.example.com");
    assert_eq!(v["request_id"], "req-7f3a");
    assert_eq!(v["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(v["peer"], ORCHESTRATOR);
    assert_eq!(v["binding"], "absent");
    assert!(
        v.get("detail").is_none_or(Value::is_null),
        "no detail on allow"
    );
    assert_eq!(v["response"], Value::Null);
    let x_scopes = v["headers"]["x-agent-scopes"].as_str().unwrap();
    assert_eq!(
        x_scopes.split(' ').collect::<BTreeSet<_>>(),
        BTreeSet::from(["payments:write", "invoices:read"])
    );
    let mut expected = json!({
        "x-agent-subject": "alice@example.com",
        "x-agent-subject-profile": "user",
        "x-agent-actor": ORCHESTRATOR,
        "x-agent-chain": ORCHESTRATOR,
        "x-agent-issuer": ISS,
        "x-agent-rule": "pay",
    });
    expected["x-agent-scopes"] = json!(x_scopes);
    assert_eq!(v["headers"], expected);
    assert_no_token_leak(&out, &token);
}

#[test]
fn two_hop_chain_effective_scopes_are_intersected_and_chain_is_current_first() {
    let env = Env::new("chain");
    // orchestrator delegated to billing; billing's ceiling drops payments:write.
    let claims = json!({
        "iss": ISS, "aud": AUD, "sub": "alice@example.com", "sub_profile": "user",
        "scope": "invoices:read payments:write",
        "act": { "sub": BILLING, "act": { "sub": ORCHESTRATOR } }
    });
    let token = env.mint(&claims);
    let out = env.check(&request("GET", "/v1/invoices/42", Some(&token)));
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let v = out.json();
    assert_audit_fields(&v);
    assert_eq!(v["rule"], "invoices");
    assert_eq!(v["actor"], BILLING);
    assert_eq!(v["chain"], json!([BILLING, ORCHESTRATOR]));
    assert_eq!(v["depth"], 2);
    assert_eq!(v["scopes"], json!(["invoices:read"]));
    assert_eq!(v["jti"], Value::Null, "no jti in the token");
    assert_eq!(v["request_id"], Value::Null);
    assert_eq!(v["trace_id"], Value::Null);
    assert_eq!(v["peer"], Value::Null);
    assert_eq!(
        v["headers"]["x-agent-chain"],
        format!("{BILLING},{ORCHESTRATOR}")
    );
    assert_eq!(v["headers"]["x-agent-actor"], BILLING);
    assert_eq!(v["headers"]["x-agent-scopes"], "invoices:read");

    // Same chain on a payments:write route: the token has it, a ceiling removes it.
    let out = env.check(&request("POST", "/v1/refunds", Some(&token)));
    let v = assert_deny(&out, "actor_scope_exceeded", 403);
    let c = challenge(&v);
    assert!(c.contains("error=\"insufficient_scope\""), "{c}");
    assert!(c.contains("scope=\"payments:write\""), "{c}");

    // --explain: the same report plus the checks in order and the chain drawn; without it
    // neither member is printed.
    assert!(v.get("explain").is_none());
    let out = env.check_at(
        &request("POST", "/v1/refunds", Some(&token)),
        NOW,
        &["--explain"],
    );
    let x = assert_deny(&out, "actor_scope_exceeded", 403);
    let x_audit_chain = x["chain"].clone();
    assert_eq!(
        x_audit_chain,
        json!([BILLING, ORCHESTRATOR]),
        "the audit's chain is untouched"
    );
    let x = &x["explain"];
    let checks = x["checks"].as_array().unwrap();
    let failed: Vec<_> = checks.iter().filter(|c| c["status"] == "fail").collect();
    assert_eq!(failed.len(), 1, "{checks:?}");
    assert_eq!(failed[0]["id"], "require.scopes");
    assert_eq!(failed[0]["note"], "actor_scope_exceeded");
    let route = checks.iter().find(|c| c["id"] == "route").unwrap();
    assert_eq!(route["status"], "pass");
    assert_eq!(x["chain"]["verified"], true);
    assert_eq!(
        x["chain"]["subject"]["scopes"],
        json!(["invoices:read", "payments:write"])
    );
    // Nearest the subject first: the orchestrator keeps both, billing removes payments:write.
    assert_eq!(x["chain"]["actors"][0]["id"], ORCHESTRATOR);
    assert_eq!(x["chain"]["actors"][1]["id"], BILLING);
    assert_eq!(
        x["chain"]["actors"][1]["removed"],
        json!(["payments:write"])
    );
    assert_eq!(x["chain"]["effective"], json!(["invoices:read"]));
}

#[test]
fn eddsa_token_and_undelegated_token_are_allowed_without_actor_headers() {
    let env = Env::new("eddsa");
    let claims = json!({ "iss": ISS, "aud": AUD, "sub": "svc-reporting", "sub_profile": "service",
                         "scope": "invoices:read" });
    let token = env.mint_with(&env.corp_ed, &claims);
    let out = env.check(&request("GET", "/v1/invoices", Some(&token)));
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let v = out.json();
    assert_eq!(v["alg"], "EdDSA");
    assert_eq!(v["kid"], "corp-2");
    assert_eq!(v["actor"], Value::Null);
    assert_eq!(v["chain"], json!([]));
    assert_eq!(v["depth"], 0);
    assert_eq!(
        v["headers"],
        json!({
            "x-agent-subject": "svc-reporting",
            "x-agent-subject-profile": "service",
            "x-agent-scopes": "invoices:read",
            "x-agent-issuer": ISS,
            "x-agent-rule": "invoices",
        })
    );
}

#[test]
fn certificate_bound_token_checks_the_peer_digest() {
    let env = Env::new("cnf");
    let digest = ring::digest::digest(&ring::digest::SHA256, b"client certificate DER");
    let thumb = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest.as_ref());
    let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    let mut claims = delegated_claims("invoices:read");
    claims["cnf"] = json!({ "x5t#S256": thumb });
    let token = env.mint(&claims);

    let mut req = request("GET", "/v1/invoices", Some(&token));
    req["peer"] = json!({ "uri_san": ORCHESTRATOR, "sha256_digest_hex": hex });
    let out = env.check(&req);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert_eq!(out.json()["binding"], "ok");

    req["peer"]["sha256_digest_hex"] = json!("00".repeat(32));
    let v = assert_deny(&env.check(&req), "binding_mismatch", 401);
    assert_eq!(v["binding"], "mismatch");

    req.as_object_mut().unwrap().remove("peer");
    assert_deny(&env.check(&req), "binding_mismatch", 401);
}

// ---------------------------------------------------------------------------------------
// Deny responses (SPEC §4)

#[test]
fn expired_token_is_401_invalid_token() {
    let env = Env::new("expired");
    let token = env.mint(&delegated_claims("payments:write"));
    // exp = T0 + TTL, skew 60: at exp + 60 it is no longer accepted.
    let out = env.check_at(
        &request("POST", "/v1/payments", Some(&token)),
        T0 + TTL + 60,
        &[],
    );
    assert_eq!(out.code, 1);
    let v = out.json();
    assert_eq!(v["reason"], "token_expired");
    assert_eq!(v["status"], 401);
    assert_eq!(v["response"]["status"], 401);
    assert_eq!(
        challenge(&v),
        r#"Bearer error="invalid_token", error_description="token_expired""#
    );
    let body: Value = serde_json::from_str(v["response"]["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["error"], "token_expired");
    assert!(body["detail"].as_str().is_some_and(|d| !d.is_empty()));
    assert_no_token_leak(&out, &token);

    // One second earlier it is still within the skew.
    let out = env.check_at(
        &request("POST", "/v1/payments", Some(&token)),
        T0 + TTL + 59,
        &[],
    );
    assert_eq!(out.code, 0, "{}", out.stdout);
}

#[test]
fn missing_token_is_401_bare_bearer_challenge() {
    let env = Env::new("missing");
    let out = env.check(&request("POST", "/v1/payments", None));
    let v = assert_deny(&out, "token_missing", 401);
    assert_eq!(v["rule"], "pay");
    assert_eq!(v["token_id"], Value::Null);
    assert_eq!(v["kid"], Value::Null);
    assert_eq!(v["alg"], Value::Null);
    assert_eq!(v["response"]["status"], 401);
    assert_eq!(challenge(&v), "Bearer");
}

#[test]
fn insufficient_scope_is_403_with_scope_parameter() {
    let env = Env::new("scope");
    let token = env.mint(&delegated_claims("invoices:read"));
    let out = env.check(&request("POST", "/v1/payments", Some(&token)));
    let v = assert_deny(&out, "scope_insufficient", 403);
    assert_eq!(v["response"]["status"], 403);
    let c = challenge(&v);
    assert!(c.starts_with("Bearer "), "{c}");
    assert!(c.contains(r#"error="insufficient_scope""#), "{c}");
    assert!(c.contains(r#"scope="payments:write""#), "{c}");
    // The verified identity is in the record even on deny.
    assert_eq!(v["sub"], "alice@example.com");
    assert_eq!(v["scopes"], json!(["invoices:read"]));
}

#[test]
fn step_up_is_401_insufficient_user_authentication_with_max_age() {
    let env = Env::new("stepup");
    let mut claims = json!({ "iss": ISS, "aud": AUD, "sub": "alice@example.com",
                             "acr": "urn:example:acr:approved", "auth_time": NOW - 301 });
    let token = env.mint(&claims);
    let v = assert_deny(
        &env.check(&request("POST", "/v1/approvals", Some(&token))),
        "stepup_required",
        401,
    );
    let c = challenge(&v);
    assert!(
        c.starts_with(
            r#"Bearer error="insufficient_user_authentication", error_description="stepup_required""#
        ),
        "{c}"
    );
    assert!(c.contains(r#"max_age="300""#), "{c}");

    claims["auth_time"] = json!(NOW - 10);
    let token = env.mint(&claims);
    let out = env.check(&request("POST", "/v1/approvals", Some(&token)));
    assert_eq!(out.code, 0, "{}", out.stdout);

    // `claims` is checked before `fresh_auth_s`.
    claims["acr"] = json!("urn:example:acr:weak");
    claims["auth_time"] = json!(NOW - 1000);
    let token = env.mint(&claims);
    let v = assert_deny(
        &env.check(&request("POST", "/v1/approvals", Some(&token))),
        "claim_mismatch",
        403,
    );
    assert!(challenge(&v).contains(r#"error="insufficient_scope""#));
}

#[test]
fn other_denials_follow_the_spec_order() {
    let env = Env::new("order");
    // No rule matches.
    let v = assert_deny(
        &env.check(&request("GET", "/admin", None)),
        "route_denied",
        403,
    );
    assert_eq!(v["rule"], Value::Null);
    // One claim changed from an otherwise allowed token: (what, scope, member, value,
    // method, path, reason, status). A `null` value removes the member.
    let cases = [
        (
            "rule needs delegation; token has no act",
            "payments:write",
            "act",
            Value::Null,
            "POST",
            "/v1/payments",
            "delegation_required",
            403,
        ),
        (
            "revoked jti",
            "payments:write",
            "jti",
            json!("revoked-jti"),
            "POST",
            "/v1/payments",
            "token_revoked",
            401,
        ),
        (
            "wrong audience",
            "payments:write",
            "aud",
            json!("other-api"),
            "POST",
            "/v1/payments",
            "audience_mismatch",
            401,
        ),
        (
            "actor outside the identity allowlist",
            "invoices:read",
            "act",
            json!({ "sub": "spiffe://prod.example.com/agent/rogue" }),
            "GET",
            "/v1/invoices",
            "actor_not_allowed",
            403,
        ),
    ];
    for (what, scope, member, value, method, path, reason, status) in cases {
        let mut claims = delegated_claims(scope);
        if value.is_null() {
            claims.as_object_mut().unwrap().remove(member);
        } else {
            claims[member] = value;
        }
        let out = env.check(&request(method, path, Some(&env.mint(&claims))));
        assert_eq!(out.json()["reason"], reason, "{what}");
        assert_deny(&out, reason, status);
    }
    // Not a JWS at all.
    let v = assert_deny(
        &env.check(&request("GET", "/v1/invoices", Some("not-a-token"))),
        "token_malformed",
        401,
    );
    assert_eq!(v["token_id"], token_id("not-a-token"));
    assert_eq!(
        challenge(&v),
        r#"Bearer error="invalid_token", error_description="token_malformed""#
    );
    // Two tokens (a repeated header), each valid on its own.
    let token = env.mint(&delegated_claims("invoices:read"));
    let mut req = request("GET", "/v1/invoices", None);
    req["headers"]["authorization"] = json!([format!("Bearer {token}"), format!("Bearer {token}")]);
    assert_deny(&env.check(&req), "token_malformed", 401);
}

#[test]
fn grpc_denials_are_http_200_with_grpc_status() {
    let env = Env::new("grpc");
    let path = "/billing.v1.Billing/GetInvoice";

    let out = env.check(&grpc_request(path, None));
    let v = assert_deny(&out, "token_missing", 401);
    assert_eq!(v["response"]["status"], 200);
    assert_eq!(v["response"]["headers"]["grpc-status"], "16");
    assert_eq!(v["response"]["headers"]["grpc-message"], "token_missing");

    let claims =
        json!({ "iss": ISS, "aud": AUD, "sub": "alice@example.com", "scope": "payments:write" });
    let token = env.mint(&claims);
    let v = assert_deny(
        &env.check(&grpc_request(path, Some(&token))),
        "scope_insufficient",
        403,
    );
    assert_eq!(v["response"]["status"], 200);
    assert_eq!(v["response"]["headers"]["grpc-status"], "7");
    assert_eq!(
        v["response"]["headers"]["grpc-message"],
        "scope_insufficient"
    );

    let partner = json!({ "iss": PARTNER_ISS, "aud": AUD, "sub": "partner-app" });
    let token = env.mint_with(&env.partner, &partner);
    let v = assert_deny(
        &env.check(&grpc_request("/partner.v1.Partner/Get", Some(&token))),
        "jwks_unavailable",
        503,
    );
    assert_eq!(v["response"]["status"], 200);
    assert_eq!(v["response"]["headers"]["grpc-status"], "14");
    assert_eq!(v["response"]["headers"]["grpc-message"], "jwks_unavailable");

    // Allowed gRPC call: no response, identity headers set.
    let claims =
        json!({ "iss": ISS, "aud": AUD, "sub": "alice@example.com", "scope": "invoices:read" });
    let token = env.mint(&claims);
    let out = env.check(&grpc_request(path, Some(&token)));
    assert_eq!(out.code, 0, "{}", out.stdout);
    let v = out.json();
    assert_eq!(v["rule"], "billing-grpc");
    assert_eq!(v["path"], path);
    assert_eq!(v["response"], Value::Null);
}

#[test]
fn hostile_tokens_are_decisions_not_crashes() {
    let env = Env::new("hostile");
    let rng = ring::rand::SystemRandom::new();
    let key = actwarden::mint::SigningKey::from_jwk_json(
        &std::fs::read_to_string(&env.corp_es).unwrap(),
        &rng,
    )
    .unwrap();
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let sign = |payload: &str| {
        let header = r#"{"alg":"ES256","kid":"corp-1","typ":"at+jwt"}"#;
        let input = format!("{}.{}", b64(header.as_bytes()), b64(payload.as_bytes()));
        let sig = key
            .sign(actwarden::Alg::ES256, input.as_bytes(), &rng)
            .unwrap();
        format!("{input}.{}", b64(&sig))
    };
    // A nesting bomb: 1500 nested `act`s, properly signed, under the 16 KiB budget.
    let depth = 1500;
    let mut claims = format!(
        r#"{{"iss":"{ISS}","aud":"{AUD}","sub":"alice","scope":"invoices:read","exp":{}"#,
        NOW + 60
    );
    for _ in 0..depth {
        claims.push_str(r#","act":{"sub":"spiffe://prod.example.com/agent/x""#);
    }
    claims.push_str(&"}".repeat(depth + 1));
    let bomb = sign(&claims);
    let out = env.check(&request("GET", "/v1/invoices", Some(&bomb)));
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    let reason = out.json()["reason"].as_str().unwrap().to_owned();
    assert!(
        ["token_malformed", "token_too_large", "chain_too_deep"].contains(&reason.as_str()),
        "{reason}"
    );
    let out = run(&["decode", &bomb]);
    assert_eq!(out.code, 0);
    assert_eq!(out.json()["verified"], false);

    // Over 16 KiB: token_too_large.
    let big = sign(&format!(
        r#"{{"iss":"{ISS}","aud":"{AUD}","sub":"alice","exp":{},"pad":"{}"}}"#,
        NOW + 60,
        "x".repeat(20 * 1024)
    ));
    let v = assert_deny(
        &env.check(&request("GET", "/v1/invoices", Some(&big))),
        "token_too_large",
        401,
    );
    assert_eq!(v["token_id"], token_id(&big));

    // `exp: "never"` signed by the real key: claim_invalid, never "no expiry".
    let never = sign(&format!(
        r#"{{"iss":"{ISS}","aud":"{AUD}","sub":"alice","scope":"invoices:read","exp":"never"}}"#
    ));
    assert_deny(
        &env.check(&request("GET", "/v1/invoices", Some(&never))),
        "claim_invalid",
        401,
    );
    // Duplicate member in the signed claims: token_malformed.
    let dup = sign(&format!(
        r#"{{"iss":"{ISS}","aud":"{AUD}","sub":"alice","sub":"root","scope":"invoices:read","exp":{}}}"#,
        NOW + 60
    ));
    let v = assert_deny(
        &env.check(&request("GET", "/v1/invoices", Some(&dup))),
        "token_malformed",
        401,
    );
    assert_eq!(v["sub"], Value::Null);
}

// ---------------------------------------------------------------------------------------
// Forgery and spoofing

#[test]
fn forged_token_never_writes_its_claims_into_the_audit_record() {
    let env = Env::new("forged");
    let genuine =
        env.mint(&json!({ "iss": ISS, "aud": AUD, "sub": "bob", "scope": "invoices:read" }));
    let genuine_parts: Vec<&str> = genuine.split('.').collect();
    let victim_claims = json!({
        "iss": ISS, "aud": AUD, "sub": "victim@example.com", "sub_profile": "user",
        "jti": "forged-jti", "scope": "payments:write invoices:read",
        "act": { "sub": ORCHESTRATOR, "sub_profile": "ai_agent" },
        "iat": T0, "exp": T0 + TTL
    });
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(victim_claims.to_string().as_bytes());
    // (a) genuine header and signature, victim's claims.
    let spliced = format!("{}.{payload}.{}", genuine_parts[0], genuine_parts[2]);
    // (b) signed by an attacker's key that claims the real kid.
    let attacker = keygen(&env.sb, "ES256", "corp-1", "attacker.json");
    let attacker_token = env.mint_with(&attacker, &victim_claims);

    for forged in [spliced, attacker_token] {
        let out = env.check(&request("POST", "/v1/payments", Some(&forged)));
        let v = assert_deny(&out, "signature_invalid", 401);
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
            assert_eq!(
                v[field],
                Value::Null,
                "`{field}` from an unverified token: {v}"
            );
        }
        assert_eq!(v["token_id"], token_id(&forged));
        assert_eq!(v["kid"], "corp-1");
        assert_eq!(v["alg"], "ES256");
        assert_eq!(v["rule"], "pay");
        assert_eq!(
            challenge(&v),
            r#"Bearer error="invalid_token", error_description="signature_invalid""#
        );
        for secret in ["victim", "forged-jti", ORCHESTRATOR] {
            assert!(
                !out.stdout.contains(secret),
                "`{secret}` leaked: {}",
                out.stdout
            );
        }
        assert_no_token_leak(&out, &forged);
    }
}

#[test]
fn algorithm_confusion_and_header_checks() {
    let env = Env::new("alg");
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let claims = json!({ "iss": ISS, "aud": AUD, "sub": "mallory", "scope": "invoices:read",
                         "iat": T0, "exp": T0 + TTL });
    let payload = b64(claims.to_string().as_bytes());
    let public_jwks = std::fs::read_to_string(env.sb.path("jwks.json")).unwrap();

    // HS256 keyed with the public JWKS text (the classic RS/ES→HS confusion).
    let header = b64(br#"{"alg":"HS256","kid":"corp-1","typ":"at+jwt"}"#);
    let input = format!("{header}.{payload}");
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, public_jwks.as_bytes());
    let hs = format!(
        "{input}.{}",
        b64(ring::hmac::sign(&key, input.as_bytes()).as_ref())
    );
    // alg none, with and without a signature part.
    let none_header = b64(br#"{"alg":"none","kid":"corp-1","typ":"at+jwt"}"#);
    let none_empty = format!("{none_header}.{payload}.");
    let none_upper = format!(
        "{}.{payload}.",
        b64(br#"{"alg":"NONE","kid":"corp-1","typ":"at+jwt"}"#)
    );
    for (token, alg) in [(hs, "HS256"), (none_empty, "none"), (none_upper, "NONE")] {
        let v = assert_deny(
            &env.check(&request("GET", "/v1/invoices", Some(&token))),
            "alg_not_allowed",
            401,
        );
        assert_eq!(v["alg"], alg);
        assert_eq!(v["sub"], Value::Null, "{v}");
    }

    let header_file = |name: &str, h: Value| env.sb.write(name, &h.to_string());
    let mint_h = |key: &Path, header: &Path| {
        let claims_file = env.sb.write(&env.next_name("claims"), &claims.to_string());
        let out = run(&[
            "mint".as_ref(),
            "--key".as_ref(),
            key.as_os_str(),
            "--claims".as_ref(),
            claims_file.as_os_str(),
            "--header".as_ref(),
            header.as_os_str(),
        ]);
        assert_eq!(out.code, 0, "{}", out.stderr);
        out.stdout.trim().to_owned()
    };
    // EdDSA signature presented under the EC key's kid: the key and the alg disagree.
    let h = header_file("h-ed.json", json!({ "kid": "corp-1" }));
    let token = mint_h(&env.corp_ed, &h);
    assert_deny(
        &env.check(&request("GET", "/v1/invoices", Some(&token))),
        "alg_not_allowed",
        401,
    );
    // Unknown kid.
    let h = header_file("h-kid.json", json!({ "kid": "corp-9" }));
    let token = mint_h(&env.corp_es, &h);
    let v = assert_deny(
        &env.check(&request("GET", "/v1/invoices", Some(&token))),
        "kid_unknown",
        401,
    );
    assert_eq!(v["kid"], "corp-9");
    // No kid: every key that fits the alg is tried.
    let h = header_file("h-nokid.json", json!({ "kid": null }));
    let token = mint_h(&env.corp_es, &h);
    let out = env.check(&request("GET", "/v1/invoices", Some(&token)));
    assert_eq!(out.code, 0, "{}", out.stdout);
    assert_eq!(out.json()["kid"], Value::Null);
    // typ: case-insensitive, `application/` tolerated, absent accepted (jwt is listed).
    for (i, typ) in [json!("JWT"), json!("application/AT+JWT"), json!(null)]
        .into_iter()
        .enumerate()
    {
        let h = header_file(&format!("h-typ{i}.json"), json!({ "typ": typ }));
        let token = mint_h(&env.corp_es, &h);
        let out = env.check(&request("GET", "/v1/invoices", Some(&token)));
        assert_eq!(out.code, 0, "typ {typ}: {}", out.stdout);
    }
    let h = header_file("h-dpop.json", json!({ "typ": "dpop+jwt" }));
    let token = mint_h(&env.corp_es, &h);
    assert_deny(
        &env.check(&request("GET", "/v1/invoices", Some(&token))),
        "type_not_allowed",
        401,
    );

    // Scheme matched case-insensitively.
    let token = env.mint(&claims);
    let mut req = request("GET", "/v1/invoices", None);
    req["headers"]["Authorization"] = json!(format!("bearer {token}"));
    let out = env.check(&req);
    assert_eq!(out.code, 0, "{}", out.stdout);

    // Issuer nobody configured, and a configured issuer the rule does not accept.
    let mut other = claims.clone();
    other["iss"] = json!("https://evil.example.org");
    let token = env.mint(&other);
    let v = assert_deny(
        &env.check(&request("GET", "/v1/invoices", Some(&token))),
        "issuer_unknown",
        401,
    );
    assert_eq!(v["iss"], Value::Null);
    assert_eq!(v["provider"], Value::Null);
    let mut partner = claims.clone();
    partner["iss"] = json!(PARTNER_ISS);
    let token = env.mint_with(&env.partner, &partner);
    let jwks_arg = format!("partner-sts={}", env.sb.path("partner-jwks.json").display());
    let out = env.check_at(
        &request("GET", "/v1/invoices", Some(&token)),
        NOW,
        &["--jwks", &jwks_arg],
    );
    let v = assert_deny(&out, "issuer_unknown", 401);
    assert_eq!(v["sub"], Value::Null);
}

#[test]
fn inbound_identity_headers_are_never_forwarded() {
    let env = Env::new("spoof");
    let token = env.mint(&json!({ "iss": ISS, "aud": AUD, "sub": "alice@example.com",
                                  "scope": "invoices:read" }));
    let mut req = request("GET", "/v1/invoices", Some(&token));
    req["headers"]["x-agent-subject"] = json!("mallory");
    req["headers"]["X-Agent-Actor"] = json!("spiffe://prod.example.com/agent/mallory");
    req["headers"]["x-agent-scopes"] = json!("payments:write admin");
    let out = env.check(&req);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let v = out.json();
    assert_eq!(
        v["headers"],
        json!({
            "x-agent-subject": "alice@example.com",
            "x-agent-scopes": "invoices:read",
            "x-agent-issuer": ISS,
            "x-agent-rule": "invoices",
        }),
        "no x-agent-actor (not delegated), no spoofed value"
    );
    assert!(!out.stdout.contains("mallory"), "{}", out.stdout);
    assert!(!out.stdout.contains("admin"), "{}", out.stdout);

    // Anonymous route: spoofed headers, no token → allowed with no identity at all.
    let mut req = request("GET", "/healthz", None);
    req["headers"]["x-agent-subject"] = json!("mallory");
    let out = env.check(&req);
    assert_eq!(out.code, 0, "{}", out.stdout);
    let v = out.json();
    assert_eq!(v["reason"], "allowed_anonymous");
    assert_eq!(v["headers"], json!({}));
    assert_eq!(v["sub"], Value::Null);
    assert!(!out.stdout.contains("mallory"));

    // Anonymous route with a bad token is still denied.
    let out = env.check(&request("GET", "/healthz", Some("a.b.c")));
    assert_deny(&out, "token_malformed", 401);
}

// ---------------------------------------------------------------------------------------
// Remote JWKS offline

#[test]
fn remote_jwks_provider_needs_jwks_flag() {
    let env = Env::new("remote");
    let claims =
        json!({ "iss": PARTNER_ISS, "aud": AUD, "sub": "partner-app", "scope": "orders:read" });
    let token = env.mint_with(&env.partner, &claims);
    let req = request("GET", "/partner/orders", Some(&token));

    let v = assert_deny(&env.check(&req), "jwks_unavailable", 503);
    assert_eq!(v["provider"], "partner-sts");
    assert_eq!(v["sub"], Value::Null);
    assert_eq!(v["response"]["status"], 503);

    let jwks_arg = format!("partner-sts={}", env.sb.path("partner-jwks.json").display());
    let out = env.check_at(&req, NOW, &["--jwks", &jwks_arg]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let v = out.json();
    assert_eq!(v["provider"], "partner-sts");
    assert_eq!(v["sub"], "partner-app");
    assert_eq!(v["kid"], "partner-1");

    // The corp keys do not verify a partner token.
    let wrong = format!("partner-sts={}", env.sb.path("jwks.json").display());
    let out = env.check_at(&req, NOW, &["--jwks", &wrong]);
    assert_eq!(out.code, 1);
    assert_eq!(out.json()["reason"], "kid_unknown");

    // A --jwks without `=`, or a missing file: usage errors.
    let out = env.check_at(&req, NOW, &["--jwks", "partner-sts"]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("NAME=FILE"), "{}", out.stderr);
    assert!(out.stdout.is_empty());
    let out = env.check_at(&req, NOW, &["--jwks", "partner-sts=/nonexistent/jwks.json"]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("/nonexistent/jwks.json"),
        "{}",
        out.stderr
    );

    // A --jwks file with a private key member is refused with its path.
    let private = std::fs::read_to_string(&env.partner).unwrap();
    let bad = env
        .sb
        .write("private-jwks.json", &format!("{{\"keys\":[{private}]}}"));
    let out = env.check_at(
        &req,
        NOW,
        &["--jwks", &format!("partner-sts={}", bad.display())],
    );
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("keys[0].d"), "{}", out.stderr);
}

// ---------------------------------------------------------------------------------------
// Configuration errors

fn lint_fixture(name: &str) -> PathBuf {
    Path::new(FIXTURES).join("lint").join(name)
}

#[test]
fn lint_accepts_the_fixture_configurations() {
    for config in [
        lint_fixture("good.json"),
        Path::new(FIXTURES).join("policy.json"),
    ] {
        if config.ends_with("policy.json") {
            // policy.json reads jwks.json next to it: lint it from a sandbox.
            let env = Env::new("lint-policy");
            let out = run(&["lint".as_ref(), "--config".as_ref(), env.policy.as_os_str()]);
            assert_eq!(out.code, 0, "{}", out.stderr);
            continue;
        }
        let out = run(&["lint".as_ref(), "--config".as_ref(), config.as_os_str()]);
        assert_eq!(out.code, 0, "{}: {}", config.display(), out.stderr);
        assert_eq!(out.stdout.trim(), "ok");
    }
}

/// (fixture, JSON path the message must name, a word the message must contain).
const BAD_CONFIGS: [(&str, &str, &str); 10] = [
    ("unknown-field.json", "rules[0].require.scopez", "scopez"),
    (
        "wrong-type.json",
        "providers.corp-sts.clock_skew_s",
        "invalid type",
    ),
    (
        "wrong-type-rule.json",
        "rules[0].match.methods",
        "invalid type",
    ),
    ("rule-without-id.json", "rules[0]", "id"),
    ("alg-none.json", "providers.corp-sts.algorithms[0]", "none"),
    (
        "alg-es512.json",
        "providers.corp-sts.algorithms[1]",
        "ES512",
    ),
    (
        "unknown-provider.json",
        "rules[0].providers[1]",
        "nobody-sts",
    ),
    (
        "hs256-without-oct.json",
        "providers.corp-sts.algorithms[1]",
        "HS256",
    ),
    (
        "jwks-file-missing.json",
        "providers.corp-sts.local_jwks.filename",
        "no-such-jwks.json",
    ),
    ("not-json.json", "", "JSON"),
];

fn assert_config_error(out: &Out, what: &str, path: &str, word: &str) {
    assert_eq!(out.code, 2, "{what}: exit 2; stdout {}", out.stdout);
    assert!(
        out.stdout.is_empty(),
        "{what}: no decision printed: {}",
        out.stdout
    );
    let expected = if path.is_empty() {
        "actwarden: configuration: ".to_owned()
    } else {
        format!("actwarden: configuration: {path}: ")
    };
    assert!(
        out.stderr.starts_with(&expected),
        "{what}: stderr should start with `{expected}`: {}",
        out.stderr
    );
    assert!(out.stderr.contains(word), "{what}: {}", out.stderr);
}

#[test]
fn lint_and_check_refuse_bad_configurations_naming_the_json_path() {
    let request = Path::new(FIXTURES).join("requests").join("minimal.json");
    for (fixture, path, word) in BAD_CONFIGS {
        let config = lint_fixture(fixture);
        let out = run(&["lint".as_ref(), "--config".as_ref(), config.as_os_str()]);
        assert_config_error(&out, &format!("lint {fixture}"), path, word);
        let out = run(&[
            "check".as_ref(),
            "--config".as_ref(),
            config.as_os_str(),
            "--request".as_ref(),
            request.as_os_str(),
            "--now".as_ref(),
            NOW.to_string().as_ref(),
        ]);
        assert_config_error(&out, &format!("check {fixture}"), path, word);
    }
}

#[test]
fn private_key_in_local_jwks_is_refused_with_its_path() {
    let sb = Sandbox::new("private-jwks");
    let key = keygen(&sb, "ES256", "k", "key.json");
    let private = std::fs::read_to_string(key).unwrap();
    let jwks = format!("{{\"keys\":[{}]}}", private.trim());
    sb.write("private-jwks.json", &jwks);
    let rules = json!([{ "id": "r", "match": { "path_prefix": "/" }, "providers": ["corp-sts"] }]);
    let by_file = json!({
        "providers": { "corp-sts": { "issuer": ISS, "audiences": [AUD],
                                     "local_jwks": { "filename": "private-jwks.json" } } },
        "rules": rules
    });
    let inline = json!({
        "providers": { "corp-sts": { "issuer": ISS, "audiences": [AUD],
                                     "local_jwks": { "inline_string": jwks } } },
        "rules": rules
    });
    for (name, config) in [("by-file.json", by_file), ("inline.json", inline)] {
        let file = sb.write(name, &config.to_string());
        let out = run(&["lint".as_ref(), "--config".as_ref(), file.as_os_str()]);
        assert_config_error(
            &out,
            name,
            "providers.corp-sts.local_jwks.keys[0].d",
            "private",
        );
    }
}

#[test]
fn hs256_with_an_oct_key_is_accepted_and_verifies() {
    let sb = Sandbox::new("hmac");
    let key = keygen(&sb, "HS256", "shared-1", "oct.json");
    let secret = std::fs::read_to_string(&key).unwrap();
    let config = json!({
        "providers": { "corp-sts": { "issuer": ISS, "audiences": [AUD], "algorithms": ["HS256"],
                                     "local_jwks": { "inline_string":
                                         format!("{{\"keys\":[{}]}}", secret.trim()) } } },
        "rules": [{ "id": "r", "match": { "path_prefix": "/" }, "providers": ["corp-sts"] }]
    });
    let config = sb.write("config.json", &config.to_string());
    let out = run(&["lint".as_ref(), "--config".as_ref(), config.as_os_str()]);
    assert_eq!(out.code, 0, "{}", out.stderr);

    let claims = sb.write(
        "claims.json",
        &json!({ "iss": ISS, "aud": AUD, "sub": "alice" }).to_string(),
    );
    let out = run(&[
        "mint".as_ref(),
        "--key".as_ref(),
        key.as_os_str(),
        "--claims".as_ref(),
        claims.as_os_str(),
        "--now".as_ref(),
        T0.to_string().as_ref(),
        "--ttl".as_ref(),
        "300".as_ref(),
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let token = out.stdout.trim().to_owned();
    let req = sb.write(
        "request.json",
        &request("GET", "/anything", Some(&token)).to_string(),
    );
    let out = run(&[
        "check".as_ref(),
        "--config".as_ref(),
        config.as_os_str(),
        "--request".as_ref(),
        req.as_os_str(),
        "--now".as_ref(),
        NOW.to_string().as_ref(),
    ]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let v = out.json();
    assert_eq!(v["alg"], "HS256");
    assert_eq!(v["sub"], "alice");
    // The secret is never printed.
    let k: Value = serde_json::from_str(&secret).unwrap();
    assert!(!out.stdout.contains(k["k"].as_str().unwrap()));
}

// ---------------------------------------------------------------------------------------
// Request and usage errors

#[test]
fn malformed_request_files_are_usage_errors_not_panics() {
    let env = Env::new("badreq");
    let cases = [
        ("not-json.txt", ""),
        ("missing-method.json", "method"),
        ("bad-peer-digest.json", "peer.sha256_digest_hex"),
        ("wrong-header-type.json", "headers.authorization"),
    ];
    for (fixture, mention) in cases {
        let file = Path::new(FIXTURES).join("requests").join(fixture);
        let out = run(&[
            "check".as_ref(),
            "--config".as_ref(),
            env.policy.as_os_str(),
            "--request".as_ref(),
            file.as_os_str(),
            "--now".as_ref(),
            NOW.to_string().as_ref(),
        ]);
        assert_eq!(out.code, 2, "{fixture}: {}{}", out.stdout, out.stderr);
        assert!(out.stdout.is_empty(), "{fixture}: {}", out.stdout);
        assert!(
            out.stderr.starts_with("actwarden: request: "),
            "{fixture}: {}",
            out.stderr
        );
        assert!(out.stderr.contains(mention), "{fixture}: {}", out.stderr);
    }

    // Files that do not exist.
    let missing = env.sb.path("no-such-request.json");
    let out = run(&[
        "check".as_ref(),
        "--config".as_ref(),
        env.policy.as_os_str(),
        "--request".as_ref(),
        missing.as_os_str(),
    ]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("no-such-request.json"),
        "{}",
        out.stderr
    );
    let out = run(&["lint", "--config", "/nonexistent/actwarden/config.json"]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("/nonexistent/actwarden/config.json"),
        "{}",
        out.stderr
    );

    // Usage errors from the argument parser.
    let out = run(&["check", "--config", "x.json"]);
    assert_eq!(out.code, 2, "missing --request: {}", out.stderr);
    let out = run(&["frobnicate"]);
    assert_eq!(out.code, 2);
    let minimal = Path::new(FIXTURES).join("requests").join("minimal.json");
    let out = run(&[
        "check".as_ref(),
        "--config".as_ref(),
        env.policy.as_os_str(),
        "--request".as_ref(),
        minimal.as_os_str(),
        "--now".as_ref(),
        "NaN".as_ref(),
    ]);
    assert_eq!(out.code, 2, "--now NaN: {}{}", out.stdout, out.stderr);
}

#[test]
fn keygen_and_mint_refuse_what_they_cannot_do() {
    let sb = Sandbox::new("keygen");
    for alg in ["none", "ES512", "RS256", "nonsense"] {
        let out = run(&["keygen", "--alg", alg]);
        assert_eq!(out.code, 2, "keygen --alg {alg}: {}", out.stdout);
        assert!(out.stdout.is_empty());
    }
    let key = keygen(&sb, "ES256", "k", "key.json");
    let claims = sb.write("claims.json", "[1, 2, 3]");
    let out = run(&[
        "mint".as_ref(),
        "--key".as_ref(),
        key.as_os_str(),
        "--claims".as_ref(),
        claims.as_os_str(),
    ]);
    assert_eq!(out.code, 2, "claims must be an object: {}", out.stdout);
    let claims = sb.write("claims2.json", "{}");
    let out = run(&[
        "mint".as_ref(),
        "--key".as_ref(),
        key.as_os_str(),
        "--claims".as_ref(),
        claims.as_os_str(),
        "--alg".as_ref(),
        "EdDSA".as_ref(),
    ]);
    assert_eq!(out.code, 2, "EdDSA with an EC key: {}", out.stdout);
    let out = run(&["jwks".as_ref(), claims.as_os_str()]);
    assert_eq!(out.code, 2, "an empty object is not a key: {}", out.stdout);
}

// ---------------------------------------------------------------------------------------
// decode

#[test]
fn decode_shows_header_claims_and_chain_unverified() {
    let env = Env::new("decode");
    let claims = json!({
        "iss": ISS, "aud": AUD, "sub": "alice@example.com", "scope": "invoices:read",
        "act": { "sub": BILLING, "act": { "sub": ORCHESTRATOR } }
    });
    let token = env.mint(&claims);
    let out = run(&["decode", &token]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let v = out.json();
    assert_eq!(v["verified"], false);
    assert_eq!(v["header"]["alg"], "ES256");
    assert_eq!(v["header"]["kid"], "corp-1");
    assert_eq!(v["header"]["typ"], "at+jwt");
    assert_eq!(v["claims"]["sub"], "alice@example.com");
    assert_eq!(v["claims"]["iat"], T0);
    assert_eq!(v["claims"]["exp"], T0 + TTL);
    assert_eq!(v["chain"], json!([BILLING, ORCHESTRATOR]));

    let out = run(&["decode", "definitely not a token"]);
    assert_eq!(out.code, 0);
    let v = out.json();
    assert_eq!(v["verified"], false);
    assert!(v["error"].as_str().is_some_and(|e| !e.is_empty()), "{v}");
}

#[test]
fn lint_notes_skipped_keys_but_still_passes() {
    let sandbox = Sandbox::new("lint-notes");
    let key = keygen(&sandbox, "ES256", "k1", "k1.json");
    let jwks_path = public_jwks(&sandbox, &[&key], "jwks.json");
    let mut jwks: Value =
        serde_json::from_str(&std::fs::read_to_string(jwks_path).unwrap()).unwrap();
    jwks["keys"]
        .as_array_mut()
        .unwrap()
        .push(json!({"kty": "EC", "crv": "P-521", "kid": "old", "x": "AA", "y": "AA"}));
    let config = json!({
        "providers": {"sts": {"issuer": "https://sts", "audiences": ["api"],
            "local_jwks": {"inline_string": jwks.to_string()}}},
        "rules": [{"id": "all", "match": {"path_prefix": "/"}}]
    });
    let path = sandbox.write("config.json", &config.to_string());
    let out = run(&[OsStr::new("lint"), OsStr::new("--config"), path.as_os_str()]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout.trim(), "ok");
    assert!(
        out.stderr
            .contains("providers.sts.local_jwks.keys[1]: skipped: curve `P-521` is not supported"),
        "{}",
        out.stderr
    );
}
