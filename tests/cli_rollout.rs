#![cfg(feature = "cli")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! The `actwarden` binary for rolling a policy out (SPEC §11, §12): `check` under shadow
//! mode, `matrix`, and `test` (policy test files).

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

const BIN: &str = env!("CARGO_BIN_EXE_actwarden");
const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/gateway-configs/example");

fn run(args: &[&str]) -> Output {
    let out = Command::new(BIN).args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("internal error"), "panicked: {stderr}");
    out
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A fresh directory for one test's files, removed when the test ends.
struct Scratch(PathBuf);

impl std::ops::Deref for Scratch {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn scratch(name: &str) -> Scratch {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "actwarden-cli-rollout-{}-{}-{name}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    Scratch(dir)
}

fn write(dir: &Path, name: &str, value: &Value) -> String {
    let path = dir.join(name);
    std::fs::write(&path, value.to_string()).unwrap();
    path.to_str().unwrap().to_owned()
}

fn example_config() -> Value {
    let text = std::fs::read_to_string(format!("{EXAMPLE}/actwarden.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

// ---------------------------------------------------------------------------------------
// check under shadow mode

#[test]
fn check_prints_enforced_and_still_exits_1_on_a_shadow_denial() {
    let dir = scratch("shadow-check");
    let mut config = example_config();
    config["rules"][1]["mode"] = json!("shadow");
    let config = write(&dir, "config.json", &config);
    let request = json!({ "method": "POST", "path": "/v1/payments",
                          "headers": { "x-agent-subject": "spoof" } });
    let request = write(&dir, "request.json", &request);
    let out = run(&[
        "check",
        "--config",
        &config,
        "--request",
        &request,
        "--now",
        "1800000000",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let report: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(report["decision"], json!("deny"));
    assert_eq!(report["reason"], json!("token_missing"));
    assert_eq!(report["enforced"], json!(false));
    assert_eq!(report["headers"], json!({}));
    assert_eq!(report["stripped_headers"], json!(["x-agent-subject"]));

    let health = write(
        &dir,
        "health.json",
        &json!({ "method": "GET", "path": "/healthz" }),
    );
    let out = run(&[
        "check",
        "--config",
        &config,
        "--request",
        &health,
        "--now",
        "1800000000",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let report: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(report["enforced"], json!(true));
}

#[test]
fn a_bad_mode_is_a_configuration_error_naming_its_path() {
    let dir = scratch("bad-mode");
    let mut config = example_config();
    config["rules"][0]["mode"] = json!("dry-run");
    let config = write(&dir, "config.json", &config);
    let out = run(&["lint", "--config", &config]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("rules[0].mode"), "{}", stderr(&out));
}

// ---------------------------------------------------------------------------------------
// matrix

#[test]
fn matrix_markdown_shows_every_rule_and_what_it_takes() {
    let config = format!("{EXAMPLE}/actwarden.json");
    let out = run(&["matrix", "--config", &config]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let md = stdout(&out);
    let rows: Vec<&str> = md.lines().filter(|l| l.starts_with("| `")).collect();
    assert_eq!(rows.len(), 2, "{md}");
    assert!(rows[0].starts_with("| `health` | prefix `/healthz`<br>any method | enforce |"));
    assert!(rows[0].contains("| anyone |"), "{md}");
    let pay = rows[1];
    for needle in [
        "prefix `/v1/payments`<br>POST",
        "`corp-sts` (https://sts.example.com) aud payments-api; alg ES256, RS256, PS256, EdDSA; typ at+jwt, jwt",
        "cert binding: if_present",
        "subject: human<br>delegation: required",
        "`spiffe://prod.example.com/agent/billing` ≤ {invoices:read}",
        "depth ≤ 2",
        "trust domains: prod.example.com",
        "| `payments:write` |",
        "`acr` ∈ [\"urn:example:acr:approved\"]",
        "auth within 300 s",
        "jti: 0, subjects: 0, actors: 0",
        "`corp-sts`: 1 local key(s)",
        "no keys: 503 jwks_unavailable<br>never a fallback",
    ] {
        assert!(pay.contains(needle), "`{needle}` not in {pay}");
    }
    assert!(md.contains("No rule matches: deny (`route_denied`, 403), mode enforce."));
}

#[test]
fn matrix_json_is_the_same_data() {
    let dir = scratch("matrix-json");
    let mut config = example_config();
    config["mode"] = json!("shadow");
    config["revoked"]["jti"] = json!(["a", "b", "c"]);
    config["providers"]["remote-sts"] = json!({
        "issuer": "https://remote.example.com", "audiences": ["payments-api"],
        "remote_jwks": { "http_uri": { "uri": "https://remote.example.com/jwks",
                                       "cluster": "remote" },
                         "cache_duration_s": 600, "max_stale_s": 7200 } });
    let config = write(&dir, "config.json", &config);
    let out = run(&["matrix", "--config", &config, "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let m: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(m["mode"], json!("shadow"));
    let pay = &m["rules"][1];
    assert_eq!(pay["rule"], json!("pay"));
    assert_eq!(pay["mode"], json!("shadow"));
    assert_eq!(pay["on_failure"]["on_deny"], json!("forward"));
    assert_eq!(
        pay["on_failure"]["keys_unavailable"],
        json!("503 jwks_unavailable")
    );
    assert_eq!(pay["on_failure"]["fallback"], json!(false));
    assert_eq!(pay["who"]["max_chain_depth"], json!(2));
    assert_eq!(
        pay["who"]["actors"][0]["max_scopes"],
        json!(["invoices:read", "payments:write"])
    );
    assert_eq!(
        pay["revocation"],
        json!({ "jti": 3, "subjects": 0, "actors": 0 })
    );
    // `pay` names corp-sts only; `health` accepts every provider, the remote one included.
    assert_eq!(pay["credential"]["providers"].as_array().unwrap().len(), 1);
    let remote = &m["rules"][0]["credential"]["providers"][1];
    assert_eq!(remote["keys"]["source"], json!("remote"));
    assert_eq!(remote["keys"]["refresh_s"], json!(600));
    assert_eq!(remote["keys"]["max_stale_s"], json!(7200));
    assert_eq!(
        m["on_no_match"],
        json!({ "action": "deny", "reason": "route_denied",
                                          "status": 403, "mode": "shadow" })
    );
}

#[test]
fn matrix_refuses_a_bad_configuration() {
    let dir = scratch("matrix-bad");
    let mut config = example_config();
    config["rules"][1]["require"]["scopez"] = json!([]);
    let config = write(&dir, "config.json", &config);
    let out = run(&["matrix", "--config", &config]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("rules[1].require.scopez"),
        "{}",
        stderr(&out)
    );
}

// ---------------------------------------------------------------------------------------
// test

const EXAMPLE_KEY: &str = "demo/keys/DEMO-ONLY-corp-sts.private.jwk.json";

fn example_paths() -> (String, String) {
    (
        format!("{EXAMPLE}/actwarden.json"),
        format!("{EXAMPLE}/policy.test.json"),
    )
}

/// A test dir with the demo key at `keys/demo.json` and `cases` in `policy.test.json`.
fn test_dir(name: &str, cases: Value) -> (Scratch, String) {
    let dir = scratch(name);
    std::fs::create_dir_all(dir.join("keys")).unwrap();
    std::fs::copy(
        format!("{EXAMPLE}/{EXAMPLE_KEY}"),
        dir.join("keys/demo.json"),
    )
    .unwrap();
    let file = write(&dir, "policy.test.json", &json!({ "cases": cases }));
    (dir, file)
}

fn paying(name: &str, actor: &str, expect: Value) -> Value {
    json!({
        "name": name,
        "request": { "method": "POST", "path": "/v1/payments", "authority": "api.example.com",
            "headers": { "authorization": { "mint": { "key": "keys/demo.json", "claims": {
                "iss": "https://sts.example.com", "aud": "payments-api", "sub": "alice",
                "sub_profile": "user", "acr": "urn:example:acr:approved",
                "scope": "invoices:read payments:write",
                "act": { "sub": actor } } } } } },
        "expect": expect
    })
}

const ORCHESTRATOR: &str = "spiffe://prod.example.com/agent/orchestrator";
const BILLING: &str = "spiffe://prod.example.com/agent/billing";

#[test]
fn the_example_policy_passes_its_tests() {
    let (config, tests) = example_paths();
    let out = run(&["test", "--config", &config, &tests]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert_eq!(stdout(&out), "8 passed, 0 failed\n");
}

#[test]
fn failing_cases_print_expected_and_got_and_exit_1() {
    let (config, _) = example_paths();
    let (_dir, file) = test_dir(
        "fail",
        json!([
            paying(
                "orchestrator pays",
                ORCHESTRATOR,
                json!({ "reason": "allowed",
                "headers": { "x-agent-actor": ORCHESTRATOR } })
            ),
            paying(
                "billing pays",
                BILLING,
                json!({ "reason": "allowed", "status": null,
                "headers": { "x-agent-rule": "pay" }, "audit": { "enforced": true } })
            ),
        ]),
    );
    let out = run(&["test", "--config", &config, &file]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert_eq!(
        lines[0],
        format!(
            "FAIL {file} › billing pays: reason: expected \"allowed\", got \"actor_scope_exceeded\"; \
             status: expected null, got 403; headers.x-agent-rule: expected \"pay\", got null"
        )
    );
    assert_eq!(lines[1], "1 passed, 1 failed");
}

#[test]
fn junit_reports_every_case() {
    let (config, _) = example_paths();
    let (dir, file) = test_dir(
        "junit",
        json!([
            paying(
                "orchestrator pays",
                ORCHESTRATOR,
                json!({ "reason": "allowed" })
            ),
            paying("billing <pays>", BILLING, json!({ "reason": "allowed" })),
        ]),
    );
    let junit = dir.join("out.xml");
    let junit = junit.to_str().unwrap();
    let out = run(&["test", "--config", &config, &file, "--junit", junit]);
    assert_eq!(out.status.code(), Some(1));
    let xml = std::fs::read_to_string(junit).unwrap();
    assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"));
    assert!(xml.contains(r#"<testsuites name="actwarden policy tests" tests="2" failures="1">"#));
    assert!(xml.contains(&format!(
        r#"<testsuite name="{file}" tests="2" failures="1">"#
    )));
    assert!(xml.contains(&format!(
        r#"<testcase classname="{file}" name="orchestrator pays"/>"#
    )));
    assert!(xml.contains(&format!(
        r#"<testcase classname="{file}" name="billing &lt;pays&gt;">"#
    )));
    assert!(xml.contains(
        r#"<failure message="reason: expected &quot;allowed&quot;, got &quot;actor_scope_exceeded&quot;">"#
    ), "{xml}");
}

/// Runs `test` on `file` and expects exit 2 with `needle` in the message.
fn refused(file: &str, needles: &[&str]) {
    let (config, _) = example_paths();
    let out = run(&["test", "--config", &config, file]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(stdout(&out).is_empty(), "nothing runs: {}", stdout(&out));
    for needle in needles {
        assert!(
            stderr(&out).contains(needle),
            "`{needle}` not in {}",
            stderr(&out)
        );
    }
}

#[test]
fn an_unknown_field_is_refused_with_file_and_path() {
    let mut case = paying("x", ORCHESTRATOR, json!({ "reason": "allowed" }));
    case["expect"]["reasons"] = json!([]);
    let (_dir, file) = test_dir("unknown-field", json!([case]));
    refused(
        &file,
        &[&format!(
            "`{file}`: cases[0].expect.reasons: unknown field `reasons`"
        )],
    );
}

#[test]
fn unparsable_json_is_refused_with_the_file() {
    let dir = scratch("unparsable");
    let file = dir.join("broken.test.json");
    std::fs::write(&file, "{\"cases\": [ {\"name\": ").unwrap();
    let file = file.to_str().unwrap();
    refused(file, &[&format!("`{file}`: "), "EOF"]);
}

#[test]
fn a_missing_key_file_is_refused_with_file_and_path() {
    let mut case = paying("x", ORCHESTRATOR, json!({ "reason": "allowed" }));
    case["request"]["headers"]["authorization"]["mint"]["key"] = json!("keys/nope.json");
    let (_dir, file) = test_dir("missing-key", json!([case]));
    refused(
        &file,
        &[&format!(
            "`{file}`: cases[0].request.headers.authorization: cannot read `keys/nope.json`"
        )],
    );
}

#[test]
fn a_token_that_cannot_be_minted_is_refused_naming_the_case() {
    let mut case = paying(
        "rsa with an EC key",
        ORCHESTRATOR,
        json!({ "reason": "allowed" }),
    );
    case["request"]["headers"]["authorization"]["mint"]["alg"] = json!("RS256");
    let (_dir, file) = test_dir("unmintable", json!([case]));
    refused(
        &file,
        &[&format!(
            "`{file}`: case `rsa with an EC key`: cannot mint the token: `RS256` cannot be signed with this key"
        )],
    );
}

#[test]
fn a_missing_test_file_is_refused() {
    refused(
        "/nonexistent/policy.test.json",
        &["/nonexistent/policy.test.json"],
    );
}
