//! `make demo`, as a test: the envoy-demo binary on free ports (`DEMO_PORTS=auto`), exiting
//! after the story (`DEMO_EXIT=1`). The story's six decisions must appear in its output.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use actwarden_envoy_tests::paths;
use std::process::Command;

#[test]
fn demo_story_through_envoy() {
    // Fail, not skip, without Envoy or the module (the demo reads dist/actwarden.wasm).
    let envoy = paths::envoy_bin().unwrap();
    let wasm = paths::wasm().unwrap();
    assert!(
        paths::repo_root().join("dist/actwarden.wasm").is_file(),
        "the demo loads dist/actwarden.wasm ({} given)",
        wasm.display()
    );
    let out = Command::new(env!("CARGO_BIN_EXE_envoy-demo"))
        .env("ENVOY_BIN", &envoy)
        .env("DEMO_PORTS", "auto")
        .env("DEMO_EXIT", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "envoy-demo exited with {}:\n{stdout}\n{stderr}",
        out.status
    );
    // Each step's verdict, in story order.
    let verdicts: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.trim().strip_prefix("expected "))
        .collect();
    assert_eq!(
        verdicts,
        [
            "allowed: ok",
            "actor_scope_exceeded: ok",
            "trust_domain_mismatch: ok",
            "binding_mismatch: ok",
            "allowed: ok",
            "dpop_required: ok"
        ],
        "{stdout}"
    );
    // The decisions as Envoy made them: status lines and audit lines.
    for needle in [
        "=> HTTP 200 from the upstream: allowed",
        "=> HTTP 403 {\"error\":\"actor_scope_exceeded\"",
        "=> HTTP 403 {\"error\":\"trust_domain_mismatch\"",
        "=> HTTP 401 {\"error\":\"binding_mismatch\"",
        "\"reason\":\"actor_scope_exceeded\"",
        "\"binding\":\"mismatch\"",
        "=> HTTP 401 {\"error\":\"dpop_required\"",
        "www-authenticate: DPoP error=\"invalid_dpop_proof\"",
        "\"binding\":\"dpop\"",
        "demo: all 6 decisions as expected",
    ] {
        assert!(stdout.contains(needle), "missing {needle:?} in:\n{stdout}");
    }
    // (d) replays the very token of (a): same token_id in the audit lines.
    let audits: Vec<serde_json::Value> = stdout
        .lines()
        .filter_map(|l| l.trim().strip_prefix("audit: "))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(audits.len(), 6, "{stdout}");
    // (f) copies the very token of (e).
    assert_eq!(audits[4]["token_id"], audits[5]["token_id"]);
    assert_eq!(audits[0]["token_id"], audits[3]["token_id"]);
    assert_eq!(
        audits[0]["peer"],
        "spiffe://prod.example.com/agent/orchestrator"
    );
    assert_eq!(audits[3]["peer"], "spiffe://prod.example.com/agent/billing");
    // The spoofed identity header never reaches the upstream.
    assert!(
        !stdout.contains("spoofed@example.com |") && !stdout.contains("x-agent-subject: spoofed")
    );
    assert!(
        stdout.contains("x-agent-subject: alice@example.com"),
        "{stdout}"
    );
}
