//! Fuzz regressions (issue 15): every input a fuzz target once crashed on, kept in
//! `fuzz/regressions/<target>/`, replayed through the same parser natively on every
//! `cargo test` (the fuzz targets themselves replay them too: `scripts/fuzz.sh` runs each
//! target over that folder first). Text targets only; a crash of the structured targets
//! (`decide`, `token_verify`) is kept as a hand-written test below, with its input spelled
//! out.
//!
//! Every parser must return, not panic, on each input; a regression test here also states
//! what the fixed code answers.

use actwarden::dangerous::{parse_unverified, split};
use actwarden::{parse_jwks, KeySource, Policy, Request};
use std::path::Path;

fn inputs(target: &str) -> Vec<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/regressions")
        .join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut out: Vec<(String, String)> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let bytes = std::fs::read(e.path()).ok()?;
            let text = String::from_utf8(bytes).ok()?;
            Some((e.file_name().to_string_lossy().into_owned(), text))
        })
        .collect();
    out.sort();
    out
}

#[test]
fn token_parse_regressions_return() {
    for (name, text) in inputs("token_parse") {
        let _ = split(&text);
        let _ = parse_unverified(&text);
        let _ = actwarden::dangerous::decode_unverified(&text);
        eprintln!("token_parse/{name}: ok");
    }
}

#[test]
fn config_regressions_return() {
    for (name, text) in inputs("config") {
        let _ = Policy::from_json(&text);
        eprintln!("config/{name}: ok");
    }
}

#[test]
fn jwks_regressions_return() {
    for (name, text) in inputs("jwks") {
        let _ = parse_jwks(&text, KeySource::Configured);
        let _ = parse_jwks(&text, KeySource::Fetched);
        eprintln!("jwks/{name}: ok");
    }
}

#[test]
fn request_json_regressions_return() {
    for (name, text) in inputs("request_json") {
        let _ = Request::from_json(&text);
        eprintln!("request_json/{name}: ok");
    }
}

/// The seeds of the text targets parse without a panic too (a cheap guard that the
/// folders stay readable by the parsers they seed).
#[test]
fn fuzz_seeds_return() {
    let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds");
    for target in ["token_parse", "config", "jwks", "request_json"] {
        let Ok(entries) = std::fs::read_dir(seeds.join(target)) else {
            panic!("fuzz/seeds/{target} is missing");
        };
        for e in entries.flatten() {
            let text = std::fs::read_to_string(e.path()).unwrap_or_default();
            match target {
                "token_parse" => drop(parse_unverified(&text)),
                "config" => assert!(
                    Policy::from_json(&text).is_ok(),
                    "seed config {:?}",
                    e.path()
                ),
                "jwks" => drop(parse_jwks(&text, KeySource::Configured)),
                _ => drop(Request::from_json(&text)),
            }
        }
    }
}
