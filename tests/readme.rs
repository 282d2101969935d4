//! The README's CLI walkthrough, run as written: a newcomer's first check must work.
#![cfg(feature = "cli")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::Path;
use std::process::Command;

#[test]
fn readme_cli_walkthrough_runs_and_allows() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let start = readme
        .find("# a key pair and its JWKS")
        .expect("walkthrough start in README");
    let end_marker = "actwarden check --config actwarden.json --request request.json";
    let end = readme[start..]
        .find(end_marker)
        .expect("walkthrough end in README")
        + start
        + end_marker.len();
    let script = &readme[start..end];

    let dir = std::env::temp_dir().join(format!("actwarden-readme-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_actwarden")).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("bash")
        .arg("-euo")
        .arg("pipefail")
        .arg("-c")
        .arg(script)
        .current_dir(&dir)
        .env("PATH", path)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "README walkthrough failed ({:?}):\n{stdout}\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    let last = stdout.lines().last().unwrap_or_default();
    let report: serde_json::Value = serde_json::from_str(last).unwrap();
    assert_eq!(report["decision"], "allow");
    assert_eq!(report["reason"], "allowed");
    assert_eq!(
        report["headers"]["x-agent-actor"],
        "spiffe://prod.example.com/agent/orchestrator"
    );
    assert_eq!(report["scopes"], serde_json::json!(["payments:write"]));
}
