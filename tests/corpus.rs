//! The decision corpus (`host-tests/corpus/`), run natively.
//!
//! Every case (and its twin) is materialised and decided through `api::check_json`, exactly
//! as the CLI and the playground decide. All failures are collected and reported together.
//! Besides each case's own expectation, the corpus as a whole must:
//! - reach every reason code of SPEC §4;
//! - give every deny reason at least one case whose twin has a different reason;
//! - never put the token or its signature into the report;
//! - never record identity fields from a token that was refused before (or at) signature
//!   verification;
//! - strip every inbound `x-agent-*` header, and answer every denial with the SPEC §4
//!   response (status, body, `WWW-Authenticate`, gRPC status).
//!
//! See `host-tests/corpus/README.md` for the format and how other hosts run it.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use actwarden::api::check_json;
use actwarden::{parse_jwks, KeySet, KeySource};
use actwarden::{Reason, UnixTime};
use actwarden_test_support::{
    check_expect, corpus_dir, prepare, twin_case, Case, Corpus, Prepared,
};
use ring::rand::SystemRandom;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Reasons decided before (or by) signature verification: no claim is trusted yet.
const PRE_SIGNATURE: [&str; 14] = [
    "mcp_body_too_large",
    "mcp_malformed",
    "mcp_header_mismatch",
    "resource_metadata",
    "route_denied",
    "token_missing",
    "token_malformed",
    "token_too_large",
    "issuer_unknown",
    "type_not_allowed",
    "alg_not_allowed",
    "jwks_unavailable",
    "kid_unknown",
    "signature_invalid",
];

/// Audit fields that only a verified token may fill.
const IDENTITY_FIELDS: [&str; 6] = ["sub", "iss", "actor", "chain", "scopes", "jti"];

fn load() -> Corpus {
    actwarden_test_support::load(&corpus_dir(), &SystemRandom::new()).unwrap()
}

/// Every case followed by its twin, in file order.
fn cases_and_twins(corpus: &Corpus) -> Vec<Case> {
    actwarden_test_support::cases_and_twins(corpus).unwrap()
}

/// The prepared case's remote JWKS, parsed as a host that fetched them would hold them.
fn fetched_keys(p: &Prepared) -> HashMap<String, KeySet> {
    actwarden_test_support::fetched_keys(p).unwrap()
}

fn run_case(corpus: &Corpus, case: &Case, rng: &SystemRandom) -> Result<(), String> {
    let Prepared {
        config,
        request,
        token,
        remote_jwks,
        replay,
        ..
    } = prepare(corpus, case, rng)?;
    let mut remote: HashMap<String, KeySet> = HashMap::new();
    for (provider, jwks) in &remote_jwks {
        let set = parse_jwks(jwks, KeySource::Fetched)
            .map_err(|e| format!("remote_jwks `{provider}`: {e}"))?;
        remote.insert(provider.clone(), set);
    }
    // One replay window per case (SPEC §10); a `replay` case sends its proof twice.
    let window = actwarden::MemoryWindow::new();
    let decide_once = || {
        actwarden::api::check(actwarden::api::CheckInput {
            policy: actwarden::api::PolicySource::Text {
                config: &config,
                read_file: &|_| Err(actwarden::FileError::NoFiles),
            },
            request: &request,
            now: UnixTime::from_secs(case.now),
            remote_keys: &remote,
            explain: false,
            clock: None,
            replay: Some(&window),
            mcp_response: case.mcp_response.as_deref().map(str::as_bytes),
        })
        .map(|out| (out.decision, out.report))
        .map_err(|e| format!("check: {e}"))
    };
    if replay {
        decide_once()?;
    }
    let (decision, report) = decide_once()?;

    let mut problems = Vec::new();
    if let Err(diff) = check_expect(&report, &case.expect) {
        problems.push(diff);
    }
    let reason = decision.reason().code().to_owned();
    if report.get("reason") != Some(&Value::String(reason.clone())) {
        problems.push(format!(
            "report reason {:?} differs from the decision's {reason}",
            report.get("reason")
        ));
    }

    problems.extend(invariants(token.as_deref(), &request, &decision, &report));
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{}\n      report: {}",
            problems.join("\n      "),
            report
        ))
    }
}

/// What every decision must satisfy, whatever the case: SPEC §4 responses, §5 stripping,
/// §6 audit rules.
fn invariants(
    token: Option<&str>,
    request: &str,
    decision: &actwarden::Decision,
    report: &Value,
) -> Vec<String> {
    let mut problems = Vec::new();
    let reason = decision.reason().code();
    let field = |name: &str| report.get(name).cloned().unwrap_or(Value::Null);

    // §6: never the raw token, never a signature.
    if let Some(token) = token {
        let text = report.to_string();
        let signature = token.rsplit('.').next().unwrap_or_default();
        if signature.len() >= 16 && text.contains(signature) {
            problems.push("the report contains the token's signature".to_owned());
        }
        if token.len() >= 16 && text.contains(token) {
            problems.push("the report contains the raw token".to_owned());
        }
        // token_id: the first 16 hex digits of SHA-256 of the token.
        if let Some(id) = field("token_id").as_str() {
            let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
            let want = actwarden_test_support::b64::hex(&digest.as_ref()[..8]);
            if id != want {
                problems.push(format!("audit token_id {id}, expected {want}"));
            }
        }
    }
    // §6: nothing from an unverified token is recorded as identity.
    if PRE_SIGNATURE.contains(&reason) {
        for name in IDENTITY_FIELDS {
            let value = field(name);
            if !value.is_null() {
                problems.push(format!(
                    "{reason} is decided before the token is trusted, but audit {name} is {value}"
                ));
            }
        }
    } else if reason != "allowed_anonymous" && field("token_id").is_null() {
        problems.push(format!(
            "{reason} after verification, but audit token_id is null"
        ));
    }

    // §5: every inbound x-agent-* header is stripped, allowed or not.
    let request: Value = serde_json::from_str(request).unwrap_or(Value::Null);
    for name in request
        .get("headers")
        .and_then(Value::as_object)
        .into_iter()
        .flat_map(|h| h.keys())
    {
        if name.to_ascii_lowercase().starts_with("x-agent-")
            && !decision
                .strip_headers
                .iter()
                .any(|s| s.eq_ignore_ascii_case(name))
        {
            problems.push(format!("inbound header {name} is not stripped"));
        }
    }

    // §4: the response of a denial; nothing of one on allow.
    let response = field("response");
    let headers = field("headers");
    // SPEC §9: the gateway's own answer to the metadata GET: 200 JSON, no identity.
    if reason == "resource_metadata" {
        if response.get("status") != Some(&serde_json::json!(200))
            || headers != serde_json::json!({})
        {
            problems.push(format!(
                "resource metadata must be a 200 answer: {response}"
            ));
        }
        return problems;
    }
    if decision.is_allowed() {
        if !response.is_null() {
            problems.push("an allow carries a deny response".to_owned());
        }
        if report.get("detail").is_some() {
            problems.push("an allow carries a detail".to_owned());
        }
        if let Some(h) = headers.as_object() {
            if h.keys().any(|k| !k.starts_with("x-agent-")) {
                problems.push(format!("identity headers outside x-agent-*: {headers}"));
            }
        }
        return problems;
    }
    if headers != serde_json::json!({}) {
        problems.push(format!("a deny forwards identity headers {headers}"));
    }
    let status = decision.reason().status().unwrap_or_default();
    let detail = field("detail");
    if detail.as_str().is_none_or(str::is_empty) {
        problems.push("a deny without a detail".to_owned());
    }
    let rh = |name: &str| {
        response
            .get("headers")
            .and_then(|h| h.get(name))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let grpc = request
        .get("headers")
        .and_then(|h| h.get("content-type"))
        .and_then(Value::as_str)
        .is_some_and(|ct| ct.to_ascii_lowercase().starts_with("application/grpc"));
    if grpc {
        let code = match status {
            401 => "16",
            403 => "7",
            _ => "14",
        };
        if response.get("status") != Some(&serde_json::json!(200))
            || rh("grpc-status").as_deref() != Some(code)
            || rh("grpc-message").as_deref() != Some(reason)
        {
            problems.push(format!(
                "gRPC deny must be HTTP 200, grpc-status {code}, grpc-message {reason}: {response}"
            ));
        }
    } else {
        if response.get("status") != Some(&serde_json::json!(status)) {
            problems.push(format!("response status is not {status}: {response}"));
        }
        let body: Value = response
            .get("body")
            .and_then(Value::as_str)
            .and_then(|b| serde_json::from_str(b).ok())
            .unwrap_or(Value::Null);
        if body != serde_json::json!({ "error": reason, "detail": detail }) {
            problems.push(format!(
                "response body must be {{error, detail}} of this decision: {body}"
            ));
        }
    }
    let challenge = rh("www-authenticate");
    // SPEC §10: a 401 on a DPoP request, and every DPoP reason, challenges with `DPoP`.
    let dpop_request = request
        .get("headers")
        .and_then(|h| h.get("authorization"))
        .and_then(Value::as_str)
        .is_some_and(|a| a.get(..5).is_some_and(|s| s.eq_ignore_ascii_case("dpop ")));
    let dpop_reason = reason.starts_with("dpop_");
    let ok = match (reason, status) {
        (_, 401) if dpop_reason || dpop_request => challenge.as_deref().is_some_and(|c| {
            let error = match reason {
                _ if dpop_reason => "invalid_dpop_proof",
                "stepup_required" => "insufficient_user_authentication",
                _ => "invalid_token",
            };
            c.starts_with(&format!("DPoP error=\"{error}\""))
                && c.contains(&format!("error_description=\"{reason}\""))
                && c.contains("algs=\"")
        }),
        // SPEC §9: with `mcp.resource`, every 401 also names the resource metadata.
        ("token_missing", _) => challenge
            .as_deref()
            .is_some_and(|c| c == "Bearer" || c.starts_with("Bearer resource_metadata=\"")),
        ("stepup_required", _) => challenge.as_deref().is_some_and(|c| {
            c.starts_with("Bearer error=\"insufficient_user_authentication\"")
                && c.contains("max_age=")
        }),
        (_, 401) => challenge.as_deref().is_some_and(|c| {
            c.starts_with(&format!(
                "Bearer error=\"invalid_token\", error_description=\"{reason}\""
            ))
        }),
        (_, 403) => challenge.as_deref().is_some_and(|c| {
            c.starts_with(&format!(
                "Bearer error=\"insufficient_scope\", error_description=\"{reason}\""
            ))
        }),
        _ => true,
    };
    if !ok {
        problems.push(format!("WWW-Authenticate for {reason}: {challenge:?}"));
    }
    problems
}

fn run_all() {
    let corpus = load();
    let rng = SystemRandom::new();
    let mut failures: Vec<String> = Vec::new();
    let mut names: BTreeSet<String> = BTreeSet::new();
    let mut reached: BTreeSet<String> = BTreeSet::new();
    // deny reason of a case → the reasons its twins expect
    let mut twinned: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut count = 0usize;

    for (file, value) in &corpus.cases {
        let case: Case = match serde_json::from_value(value.clone()) {
            Ok(c) => c,
            Err(e) => {
                let name = value.get("name").and_then(Value::as_str).unwrap_or("?");
                failures.push(format!("{file}: {name}: not a case: {e}"));
                continue;
            }
        };
        if !names.insert(case.name.clone()) {
            failures.push(format!("{file}: {}: duplicate case name", case.name));
        }
        if Reason::from_code(&case.expect.reason).is_none() {
            failures.push(format!(
                "{file}: {}: expect.reason `{}` is not a reason code",
                case.name, case.expect.reason
            ));
        }
        let twin = match twin_case(value) {
            Ok(t) => t,
            Err(e) => {
                failures.push(format!("{file}: {}: {e}", case.name));
                None
            }
        };

        count += 1;
        if let Err(e) = run_case(&corpus, &case, &rng) {
            failures.push(format!("{file}: {}\n      {e}", case.name));
        }
        // Coverage counts what the corpus asserts (the expectation; a case that does not
        // meet it fails above), so a core bug does not also show up as a coverage hole.
        reached.insert(case.expect.reason.clone());

        if let Some(twin) = twin {
            count += 1;
            if let Err(e) = run_case(&corpus, &twin, &rng) {
                failures.push(format!("{file}: {}\n      {e}", twin.name));
            }
            reached.insert(twin.expect.reason.clone());
            if case.expect.decision == "deny" {
                twinned
                    .entry(case.expect.reason.clone())
                    .or_default()
                    .insert(twin.expect.reason.clone());
            }
            if twin.expect.reason == case.expect.reason {
                failures.push(format!(
                    "{file}: {}: the twin expects the same reason ({}); a twin must differ",
                    case.name, case.expect.reason
                ));
            }
        }
    }

    for reason in Reason::ALL {
        let code = reason.code();
        if !reached.contains(code) {
            failures.push(format!("coverage: no case reaches `{code}`"));
        }
        if reason.status().is_some_and(|s| s >= 400)
            && !twinned
                .get(code)
                .is_some_and(|twins| twins.iter().any(|t| t != code))
        {
            failures.push(format!(
                "coverage: no `{code}` case has a twin with another reason"
            ));
        }
    }

    if !failures.is_empty() {
        panic!(
            "{} of {count} corpus checks failed:\n\n  {}\n",
            failures.len(),
            failures.join("\n\n  ")
        );
    }
    eprintln!(
        "corpus: {count} cases (with twins) passed, {} reasons reached",
        reached.len()
    );
}

#[test]
fn corpus() {
    // On an ordinary 2 MiB test thread: neither the materialiser (which builds deep `act`
    // chains as text) nor the core may need a big stack for a nesting bomb.
    run_all();
}

/// Every case and twin once more through the `actwarden check` binary (SPEC §7): the same
/// report on stdout, exit 0 on allow and 1 on deny, nothing on stderr.
#[cfg(feature = "cli")]
#[test]
fn corpus_through_the_cli() {
    let corpus = load();
    let rng = SystemRandom::new();
    let dir = std::env::temp_dir().join(format!("actwarden-corpus-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut failures = Vec::new();
    let mut ran = 0usize;
    for (file, value) in &corpus.cases {
        let case: Case = serde_json::from_value(value.clone()).unwrap();
        let twin = twin_case(value).unwrap();
        for case in std::iter::once(case).chain(twin) {
            let p = prepare(&corpus, &case, &rng).unwrap();
            if p.replay {
                // One request per run: the CLI cannot see a replay (SPEC §10).
                continue;
            }
            let config = dir.join("config.json");
            let request = dir.join("request.json");
            std::fs::write(&config, &p.config).unwrap();
            std::fs::write(&request, &p.request).unwrap();
            let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_actwarden"));
            cmd.arg("check")
                .arg("--config")
                .arg(&config)
                .arg("--request")
                .arg(&request)
                .arg("--now")
                .arg(case.now.to_string());
            for (i, (provider, jwks)) in p.remote_jwks.iter().enumerate() {
                let path = dir.join(format!("jwks-{i}.json"));
                std::fs::write(&path, jwks).unwrap();
                cmd.arg("--jwks")
                    .arg(format!("{provider}={}", path.display()));
            }
            if let Some(response) = &case.mcp_response {
                let path = dir.join("mcp-response");
                std::fs::write(&path, response).unwrap();
                cmd.arg("--mcp-response").arg(&path);
            }
            let out = cmd.output().unwrap();
            ran += 1;
            let stdout = String::from_utf8_lossy(&out.stdout);
            let report: Value = match serde_json::from_str(stdout.trim()) {
                Ok(v) => v,
                Err(e) => {
                    failures.push(format!(
                        "{file}: {}: stdout is not JSON ({e}): {stdout}",
                        case.name
                    ));
                    continue;
                }
            };
            let expected_exit = if case.expect.decision == "allow" {
                0
            } else {
                1
            };
            if out.status.code() != Some(expected_exit) {
                failures.push(format!(
                    "{file}: {}: exit {:?}, expected {expected_exit}",
                    case.name,
                    out.status.code()
                ));
            }
            if !out.stderr.is_empty() {
                failures.push(format!(
                    "{file}: {}: stderr: {}",
                    case.name,
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
            // `eval_us` is the one field a host measures itself.
            let mut expect = case.expect.clone();
            if let Some(audit) = &mut expect.audit {
                audit.remove("eval_us");
            }
            if !report.get("eval_us").is_some_and(Value::is_u64) {
                failures.push(format!("{file}: {}: `eval_us` is not measured", case.name));
            }
            if let Err(diff) = check_expect(&report, &expect) {
                failures.push(format!("{file}: {}: {diff}", case.name));
            }
            if let Some(token) = &p.token {
                if token.len() >= 16 && stdout.contains(token.as_str()) {
                    failures.push(format!(
                        "{file}: {}: the raw token is in the output",
                        case.name
                    ));
                }
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        failures.is_empty(),
        "{} of {ran} CLI runs failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    eprintln!("corpus through the CLI: {ran} runs passed");
}

/// Every case and twin decided through a verified-token cache (SPEC §8), as Envoy decides:
/// one cache per loaded policy, shared by all its cases. Each request is decided three
/// times — cold, warm, and warm again — and every report must equal the uncached one
/// (`eval_us` aside), while the warm decisions hit the cache.
#[test]
fn corpus_with_a_token_cache() {
    use actwarden::TokenCache;
    use actwarden::{decide, Context};
    use actwarden::{Policy, Request};

    let corpus = load();
    let rng = SystemRandom::new();
    let mut policies: HashMap<String, (Policy, TokenCache)> = HashMap::new();
    let mut failures = Vec::new();
    let mut with_token = 0u64;
    for case in cases_and_twins(&corpus) {
        let p = prepare(&corpus, &case, &rng).unwrap();
        let remote = fetched_keys(&p);
        let now = UnixTime::from_secs(case.now);
        let (_, mut uncached) = check_json(&p.config, &p.request, now, &remote, &|_| {
            Err(actwarden::FileError::NoFiles)
        })
        .unwrap();
        uncached["eval_us"] = Value::Null;
        // The remote key set is part of the case: a cache per (config, keys).
        let key = format!("{}|{:?}", case.config, p.remote_jwks);
        let (policy, cache) = policies
            .entry(key)
            .or_insert_with(|| (Policy::from_json(&p.config).unwrap(), TokenCache::default()));
        let request = Request::from_json(&p.request).unwrap();
        for round in ["cold", "warm", "warm again"] {
            let ctx = Context {
                policy,
                remote_keys: &remote,
                crypto: &actwarden::RING,
                cache: Some(cache),
                replay: &actwarden::MemoryWindow::new(),
                shared: None,
            };
            let decision = decide(ctx, &request, now);
            let audit = decision.audit_record(&request);
            let mut report = actwarden::api::report::decision_json(&decision, &audit);
            report["eval_us"] = Value::Null;
            if report != uncached {
                failures.push(format!(
                    "{} ({round}):\n      cached:   {report}\n      uncached: {uncached}",
                    case.name
                ));
            }
        }
        with_token += u64::from(p.token.is_some());
    }
    let hits: u64 = policies.values().map(|(_, c)| c.stats().hits).sum();
    assert!(failures.is_empty(), "{}", failures.join("\n  "));
    // Tokens refused before the cache is consulted (route, shape, size) never reach it,
    // so not every token hits; most must.
    assert!(
        hits >= with_token,
        "only {hits} cache hits for {with_token} tokens decided three times"
    );
}

/// The explanations (`actwarden::explain`, shown by the playground and by
/// `actwarden check --explain`) agree with every decision of the corpus: a deny has exactly
/// one failing check, and that check can give the reason; every check after it is
/// `not_reached`; an allow fails nothing; the chain's effective scopes are the audit's.
#[test]
fn corpus_explained() {
    use actwarden::api::{check, CheckInput, PolicySource};

    let corpus = load();
    let rng = SystemRandom::new();
    let mut failures = Vec::new();
    for case in cases_and_twins(&corpus) {
        let p = prepare(&corpus, &case, &rng).unwrap();
        let remote = fetched_keys(&p);
        let out = check(CheckInput {
            policy: PolicySource::Text {
                config: &p.config,
                read_file: &|_| Err(actwarden::FileError::NoFiles),
            },
            request: &p.request,
            now: UnixTime::from_secs(case.now),
            remote_keys: &remote,
            explain: true,
            clock: None,
            replay: None,
            mcp_response: None,
        })
        .unwrap();
        let (decision, report, explain) = (out.decision, out.report, out.explain.unwrap());
        // Recording the trace changes nothing about the decision, and the trace follows
        // the order of SPEC §4.
        let (plain, _) = check_json(
            &p.config,
            &p.request,
            UnixTime::from_secs(case.now),
            &remote,
            &|_| Err(actwarden::FileError::NoFiles),
        )
        .unwrap();
        let mut problems = Vec::new();
        let request = actwarden::Request::from_json(&p.request).unwrap();
        if plain.verdict != decision.verdict
            || plain.audit_record(&request) != decision.audit_record(&request)
        {
            problems.push("the traced decision differs from the plain one".to_owned());
        }
        let order: Vec<usize> = decision
            .trace
            .as_ref()
            .unwrap()
            .checks()
            .iter()
            .map(|c| {
                actwarden::Step::ALL
                    .iter()
                    .position(|s| *s == c.step)
                    .unwrap()
            })
            .collect();
        if !order.windows(2).all(|w| w[0] < w[1]) {
            problems.push(format!("trace out of SPEC order: {order:?}"));
        }
        let checks = explain["checks"].as_array().unwrap();
        let status = |c: &Value| c["status"].as_str().unwrap().to_owned();
        let failed: Vec<&Value> = checks.iter().filter(|c| status(c) == "fail").collect();
        let reason = decision.reason().code();
        if decision.is_allowed() {
            if !failed.is_empty() || checks.iter().any(|c| status(c) == "not_reached") {
                problems.push("an allow with a failed or unreached check".to_owned());
            }
        } else if failed.len() != 1 {
            problems.push(format!("{} failing checks", failed.len()));
        } else {
            let at = checks
                .iter()
                .position(|c| status(c) == "fail")
                .unwrap_or_default();
            let gives = failed[0]["reasons"].as_array().unwrap();
            if !gives.iter().any(|r| r == reason) {
                problems.push(format!(
                    "failing check {} cannot give {reason}",
                    failed[0]["id"]
                ));
            }
            if checks[at + 1..].iter().any(|c| status(c) != "not_reached") {
                problems.push("a check after the failure was not `not_reached`".to_owned());
            }
        }
        let chain = &explain["chain"];
        if !report["scopes"].is_null() && chain["effective"] != report["scopes"] {
            problems.push(format!(
                "chain effective {} ≠ audit scopes {}",
                chain["effective"], report["scopes"]
            ));
        }
        if !problems.is_empty() {
            failures.push(format!("{} ({reason}): {}", case.name, problems.join("; ")));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n  "));
}
