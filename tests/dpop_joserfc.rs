//! DPoP (SPEC §10) against an independent implementation: `tests/dpop/joserfc_cases.py`
//! makes keys, RFC 7638 thumbprints, access tokens and proofs with joserfc (PyPI), and
//! each case must get the reason it names — through the library (one replay window for
//! all cases, in order, as a policy test file keeps) and, for a few, through the
//! `actwarden` binary.
//!
//! Needs Python with joserfc: `ACTWARDEN_JOSE_PYTHON`, else `.venv/bin/python`
//! (`scripts/setup-jose.sh`, run by `make unit-test`), else `python3`. Without one the test
//! says so and passes, unless `ACTWARDEN_REQUIRE_JOSE=1` (set by `make unit-test`).

use actwarden::api::{check, CheckInput, PolicySource};
use actwarden::{MemoryWindow, UnixTime};
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

fn python_with_joserfc() -> Option<String> {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    let candidates = [
        std::env::var("ACTWARDEN_JOSE_PYTHON").ok(),
        Some(venv.to_string_lossy().into_owned()),
        Some("python3".to_owned()),
    ];
    candidates.into_iter().flatten().find(|python| {
        Command::new(python)
            .args(["-c", "import joserfc"])
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

fn generated() -> Result<Option<Value>, String> {
    let Some(python) = python_with_joserfc() else {
        assert!(
            std::env::var_os("ACTWARDEN_REQUIRE_JOSE").is_none(),
            "ACTWARDEN_REQUIRE_JOSE is set but no Python with joserfc was found (scripts/setup-jose.sh)"
        );
        eprintln!("SKIPPED: no Python with joserfc (run scripts/setup-jose.sh)");
        return Ok(None);
    };
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/dpop/joserfc_cases.py");
    let out = Command::new(&python)
        .arg(script)
        .output()
        .map_err(|e| format!("{python}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "joserfc_cases.py failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    serde_json::from_slice(&out.stdout)
        .map(Some)
        .map_err(|e| e.to_string())
}

#[test]
fn joserfc_thumbprints_and_proofs_are_decided_as_the_spec_says() {
    let Some(doc) = generated().unwrap() else {
        return;
    };
    for t in doc["thumbprints"].as_array().unwrap() {
        assert_eq!(
            actwarden::mint::jwk_thumbprint(&t["jwk"]).as_deref(),
            t["jkt"].as_str(),
            "RFC 7638 thumbprint of {}",
            t["jwk"]
        );
    }
    let config = doc["config"].to_string();
    let now = UnixTime::from_secs(doc["now"].as_u64().unwrap());
    let window = MemoryWindow::new();
    let remote = HashMap::new();
    let mut failures = Vec::new();
    let cases = doc["cases"].as_array().unwrap();
    assert!(cases.len() >= 30, "{} cases", cases.len());
    for case in cases {
        let out = check(CheckInput {
            policy: PolicySource::Text {
                config: &config,
                read_file: &|_| Err(actwarden::FileError::NoFiles),
            },
            request: &case["request"].to_string(),
            now,
            remote_keys: &remote,
            explain: false,
            clock: None,
            replay: Some(&window),
            mcp_response: None,
        })
        .unwrap();
        let got = out.decision.reason().code();
        if got != case["expect"] {
            failures.push(format!(
                "{}: expected {}, got {got} ({})",
                case["name"], case["expect"], out.report["detail"]
            ));
        }
        let dpop_scheme = case["request"]["headers"]["authorization"]
            .as_str()
            .is_some_and(|a| a.starts_with("DPoP "));
        if got == "allowed" {
            let binding = if dpop_scheme { "dpop" } else { "absent" };
            assert_eq!(out.report["binding"], binding, "{}", case["name"]);
        }
        let challenge = &out.report["response"]["headers"]["www-authenticate"];
        if got.starts_with("dpop_") {
            let c = challenge.as_str().unwrap_or_default();
            assert!(
                c.starts_with("DPoP error=\"invalid_dpop_proof\"") && c.contains("algs=\""),
                "{}: {c}",
                case["name"]
            );
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The binary decides one request per run: a proof is fresh in every run (SPEC §10), and
/// it reads `scheme` from REQUEST.json (`http` here, so an `https` `htu` is refused).
#[test]
fn the_cli_decides_joserfc_proofs_and_reads_scheme() {
    let Some(bin) = option_env!("CARGO_BIN_EXE_actwarden") else {
        return; // built without the `cli` feature
    };
    let Some(doc) = generated().unwrap() else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("actwarden-dpop-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("config.json");
    std::fs::write(&config, doc["config"].to_string()).unwrap();
    let first = &doc["cases"][0];
    assert_eq!(first["expect"], "allowed");
    let run = |request: &Value| {
        let path = dir.join("request.json");
        std::fs::write(&path, request.to_string()).unwrap();
        let out = Command::new(bin)
            .args(["check", "--config"])
            .arg(&config)
            .arg("--request")
            .arg(&path)
            .args(["--now", &doc["now"].to_string()])
            .output()
            .unwrap();
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        (
            out.status.code(),
            report["reason"].as_str().unwrap().to_owned(),
        )
    };
    // Twice: each run has its own window.
    assert_eq!(run(&first["request"]), (Some(0), "allowed".to_owned()));
    assert_eq!(run(&first["request"]), (Some(0), "allowed".to_owned()));
    let mut http = first["request"].clone();
    http["scheme"] = "http".into();
    assert_eq!(run(&http), (Some(1), "dpop_invalid".to_owned()));
    let _ = std::fs::remove_dir_all(&dir);
}
