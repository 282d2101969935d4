//! What `verify-bench` and `decide-bench` share: the corpus keys, the fixed time, the
//! environment knobs and the exit path.

use actwarden::mint::SigningKey;
use ring::rand::SystemRandom;
use serde_json::Value;
use std::process::ExitCode;

pub const KEYS: &str = include_str!("../../corpus/keys.json");
pub const NOW: u64 = 1_800_000_000;

/// A positive integer from the environment, or `default` when unset.
pub fn env_number(name: &str, default: u64) -> Result<u64, String> {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("`{name}` must be a positive integer, not `{v}`")),
        Err(_) => Ok(default),
    }
}

/// The corpus key `name` (host-tests/corpus/keys.json), able to sign.
pub fn signing_key(keys: &Value, name: &str, rng: &SystemRandom) -> Result<SigningKey, String> {
    let jwk = keys
        .get(name)
        .and_then(Value::as_object)
        .ok_or_else(|| format!("no key `{name}` in keys.json"))?;
    SigningKey::from_jwk(jwk.clone(), rng).map_err(|e| format!("key `{name}`: {e}"))
}

/// Runs a benchmark's body; an error is one line on stderr and a failing exit.
pub fn exit(program: &str, result: Result<(), String>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{program}: {e}");
            ExitCode::FAILURE
        }
    }
}
