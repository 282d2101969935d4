//! Signature verification per algorithm, through the filter's own code path:
//! `actwarden::dangerous::verify_signature` with `actwarden::RING` (the `alg`
//! allowlist, the `kid` lookup in the provider's key set, the key/`alg` fit, then the
//! signature by ring through jsonwebtoken's `CryptoProvider` — exactly what `decide` runs
//! without a cache hit in the CLI, the playground, and in Envoy when the host does not
//! offer `verify_signature` (SPEC §13). The token is split once outside the loop (`decide`
//! parses it separately); only the verification is timed.
//!
//! For each of ES256, ES384, RS256, PS256 and EdDSA: mint a token with the corpus test
//! key, warm up, calibrate the iterations of a round to about `VERIFY_BENCH_ROUND_MS`
//! (default 100 ms), run `VERIFY_BENCH_ROUNDS` rounds (default 11) and print the median
//! µs per verify as JSON on stdout: `{"ES256": {"us": N, "min_us": N}, ...}` (`min_us`:
//! the fastest round, the least disturbed by other load). Per-round details go to stderr.
//!
//! Built natively and for wasm32-wasip1 with the release profile (the one of
//! dist/actwarden.wasm); `run-v8.mjs` runs the wasm build under Node's WASI (V8). The
//! clock is `std::time::Instant` (WASI `clock_time_get` monotonic under wasm).

use actwarden::dangerous as token;
use actwarden::dangerous::verify_signature;
use actwarden::mint::{public_jwks, SigningKey};
use actwarden::Alg;
use actwarden::RING;
use actwarden::{parse_jwks, KeySet, KeySource};
use ring::rand::SystemRandom;
use serde_json::{json, Map, Value};
use std::hint::black_box;
use std::process::ExitCode;
use std::time::{Duration, Instant};

mod common;

use common::{env_number, signing_key, KEYS, NOW};

/// (alg, name of the corpus key that signs it)
const ALGS: [(Alg, &str); 5] = [
    (Alg::ES256, "es256-a"),
    (Alg::ES384, "es384-a"),
    (Alg::RS256, "rsa-a"),
    (Alg::PS256, "rsa-a"),
    (Alg::EdDSA, "ed-a"),
];

/// The provider's allowlist in the bench policy (benches/decision.rs).
const ALLOWED: [Alg; 5] = [Alg::ES256, Alg::ES384, Alg::RS256, Alg::PS256, Alg::EdDSA];

struct Settings {
    rounds: usize,
    round: Duration,
    warmup: Duration,
}

fn settings() -> Result<Settings, String> {
    Ok(Settings {
        rounds: usize::try_from(env_number("VERIFY_BENCH_ROUNDS", 11)?)
            .map_err(|e| format!("VERIFY_BENCH_ROUNDS: {e}"))?,
        round: Duration::from_millis(env_number("VERIFY_BENCH_ROUND_MS", 100)?),
        warmup: Duration::from_millis(env_number("VERIFY_BENCH_WARMUP_MS", 200)?),
    })
}

fn claims() -> Value {
    json!({
        "iss": "https://sts.example.com",
        "sub": "user:alice",
        "sub_profile": "user",
        "aud": "payments-api",
        "iat": NOW - 60,
        "exp": NOW + 600,
        "auth_time": NOW - 60,
        "jti": "bench-7f3a9c",
        "scope": "invoices:read payments:write",
        "acr": "urn:example:acr:approved",
        "act": { "sub": "spiffe://prod.example.com/agent/orchestrator" }
    })
}

/// One verification; an error if it does not verify (never time a failure).
fn verify_once(jws: &token::Jws<'_>, keys: &KeySet, alg: Alg) -> Result<(), String> {
    match verify_signature(black_box(jws), Some(keys), &ALLOWED, &RING) {
        Ok(a) if a == alg => Ok(()),
        Ok(a) => Err(format!("{}: verified as `{}`", alg.name(), a.name())),
        Err(e) => Err(format!("{}: did not verify ({e:?})", alg.name())),
    }
}

/// Runs `n` verifications, returns the elapsed time.
fn run(jws: &token::Jws<'_>, keys: &KeySet, alg: Alg, n: u64) -> Result<Duration, String> {
    let start = Instant::now();
    for _ in 0..n {
        verify_once(jws, keys, alg)?;
    }
    Ok(start.elapsed())
}

fn micros_per_op(elapsed: Duration, n: u64) -> f64 {
    elapsed.as_secs_f64() * 1e6 / n as f64
}

fn median(values: &mut [f64]) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values.get(mid).copied()
    } else {
        Some((values.get(mid.checked_sub(1)?)? + values.get(mid)?) / 2.0)
    }
}

/// The median µs per verify of `alg`.
fn bench(
    alg: Alg,
    token: &str,
    keys: &KeySet,
    settings: &Settings,
) -> Result<(f64, Vec<f64>, u64), String> {
    let jws = token::split(token).map_err(|e| format!("{}: {}", alg.name(), e.describe()))?;
    verify_once(&jws, keys, alg)?;
    // Warm-up, which also measures the cost for calibration.
    let mut warm_n = 0u64;
    let warm_start = Instant::now();
    while warm_start.elapsed() < settings.warmup || warm_n < 10 {
        verify_once(&jws, keys, alg)?;
        warm_n += 1;
    }
    let per_op = warm_start.elapsed().as_secs_f64() / warm_n as f64;
    let n = ((settings.round.as_secs_f64() / per_op.max(1e-9)) as u64).max(10);
    let mut rounds = Vec::with_capacity(settings.rounds);
    for _ in 0..settings.rounds {
        rounds.push(micros_per_op(run(&jws, keys, alg, n)?, n));
    }
    let shown = rounds.clone();
    let med = median(&mut rounds).ok_or("no rounds")?;
    Ok((med, shown, n))
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

fn main_result() -> Result<(), String> {
    let settings = settings()?;
    let rng = SystemRandom::new();
    let keys: Value = serde_json::from_str(KEYS).map_err(|e| format!("keys.json: {e}"))?;
    let mut signers = Vec::new();
    for name in ["es256-a", "es384-a", "rsa-a", "ed-a"] {
        signers.push((name, signing_key(&keys, name, &rng)?));
    }
    // The provider's key set, as the filter holds it: every public key, parsed once.
    let public: Vec<&SigningKey> = signers.iter().map(|(_, k)| k).collect();
    let set = parse_jwks(&public_jwks(&public).to_string(), KeySource::Configured)
        .map_err(|e| format!("jwks: {e}"))?;

    let mut out = Map::new();
    for (alg, key_name) in ALGS {
        let key = signers
            .iter()
            .find(|(n, _)| *n == key_name)
            .map(|(_, k)| k)
            .ok_or_else(|| format!("no signer `{key_name}`"))?;
        let token = key
            .mint(alg, &claims(), None, &rng)
            .map_err(|e| format!("mint {}: {e}", alg.name()))?;
        let (us, rounds, n) = bench(alg, &token, &set, &settings)?;
        let min = rounds.iter().copied().fold(f64::INFINITY, f64::min);
        let shown: Vec<String> = rounds.iter().map(|r| format!("{r:.2}")).collect();
        eprintln!(
            "{:<6} median {us:.2} µs/verify ({} rounds of {n}: {})",
            alg.name(),
            rounds.len(),
            shown.join(" ")
        );
        out.insert(
            alg.name().to_owned(),
            json!({ "us": round3(us), "min_us": round3(min) }),
        );
    }
    println!("{}", Value::Object(out));
    Ok(())
}

fn main() -> ExitCode {
    common::exit("verify-bench", main_result())
}
