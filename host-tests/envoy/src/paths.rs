//! Locations of the things under test, from the environment `make e2e-envoy` sets.

use crate::{fail, Result};
use std::path::{Path, PathBuf};

/// The repository root (two levels above this crate).
pub fn repo_root() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    root.canonicalize().unwrap_or(root)
}

fn required_file(var: &str, what: &str) -> Result<PathBuf> {
    let how = "run the end-to-end tests with `make e2e-envoy` (it installs Envoy into .venv, \
               builds dist/actwarden.wasm and target/actwarden-test.wasm, and sets ENVOY_BIN, \
               ACTWARDEN_WASM and ACTWARDEN_TEST_WASM)";
    match std::env::var_os(var) {
        None => fail!("{var} is not set: it must name {what}; {how}"),
        Some(p) if p.is_empty() => fail!("{var} is empty: it must name {what}; {how}"),
        Some(p) => {
            let path = PathBuf::from(p);
            if path.is_file() {
                Ok(path)
            } else {
                fail!("{var}={}: no such file ({what}); {how}", path.display())
            }
        }
    }
}

/// The Envoy binary (`ENVOY_BIN`).
pub fn envoy_bin() -> Result<PathBuf> {
    required_file("ENVOY_BIN", "the Envoy binary (.venv/bin/envoy)")
}

/// The filter as shipped (`ACTWARDEN_WASM`, dist/actwarden.wasm): real clock, real peer.
pub fn wasm() -> Result<PathBuf> {
    required_file("ACTWARDEN_WASM", "the filter module dist/actwarden.wasm")
}

/// The filter with test hooks (`ACTWARDEN_TEST_WASM`, target/actwarden-test.wasm).
pub fn test_wasm() -> Result<PathBuf> {
    required_file(
        "ACTWARDEN_TEST_WASM",
        "the test-hooks filter module target/actwarden-test.wasm",
    )
}

/// A fresh directory `target/e2e/<name>` (removed first if it exists).
pub fn work_dir(name: &str) -> Result<PathBuf> {
    let dir = repo_root().join("target").join("e2e").join(name);
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// A file of the repository, read as text.
pub fn read_repo_file(relative: &str) -> Result<String> {
    let path = repo_root().join(relative);
    std::fs::read_to_string(&path).map_err(|e| crate::Error(format!("{}: {e}", path.display())))
}
