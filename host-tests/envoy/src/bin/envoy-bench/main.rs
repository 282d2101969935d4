//! `make bench`: actwarden against Envoy's `jwt_authn` (+RBAC), the wasm floor and no
//! filter at all, through one real Envoy, measured in one run on this machine.
//!
//! Envoy runs one worker (`--concurrency 1`) pinned to CPU 0; wrk runs pinned to CPU 1.
//! Every configuration (configs.rs) listens on the same port with a direct-response route.
//! For each repeat, configurations are started in turn, and each runs every workload
//! (workloads.rs) after a warm-up; the report takes medians over repeats (report.rs).
//! Before timing, every distinct request is sent once and its status checked (valid →
//! 200, invalid → not 200), so a misconfigured baseline can never look fast.
//!
//! Environment (defaults are what the issue asks for; anything less writes to
//! target/bench/ instead of bench/results/):
//! `BENCH_SECONDS` (10 per point), `BENCH_REPEATS` (3), `BENCH_WARMUP_SECONDS` (2),
//! `BENCH_CONNECTIONS` (32), `BENCH_PORT` (18900), `BENCH_CONFIGS` / `BENCH_WORKLOADS`
//! (comma lists, all by default), `BENCH_SOAK_ROUNDS` (4), `ENVOY_BIN`, `ACTWARDEN_WASM`,
//! `WASM_FLOOR`, `NATIVE_JSON` (target/bench/native.json from `make bench-native`),
//! `BENCH_DPOP_RPS` (the most requests per second a `dpop` point is expected to reach:
//! proofs are minted for warm-up and run at that rate, 20000 by default; a point that
//! outruns them would replay proofs, and is reported with its non-2xx share).

mod configs;
mod report;
mod workloads;
mod wrk;

use actwarden_envoy_tests::envoy::{Envoy, Options, READY_TIMEOUT};
use actwarden_envoy_tests::http::{self, Request};
use actwarden_envoy_tests::paths::repo_root;
use actwarden_envoy_tests::{fail, Error, Result};
use configs::{Config, Modules};
use report::{Point, Results};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use workloads::{to_lines, BenchRequest, Family, Tokens, Workload};

pub struct Settings {
    pub seconds: u64,
    pub repeats: u32,
    pub warmup_seconds: u64,
    pub connections: u32,
    pub port: u16,
    pub configs: Vec<Config>,
    pub workloads: Vec<Workload>,
    pub soak_rounds: u32,
    pub dpop_rps: u64,
}

impl Settings {
    fn from_env() -> Result<Settings> {
        let num = |name: &str, default: u64| -> Result<u64> {
            match std::env::var(name) {
                Ok(v) => v
                    .parse()
                    .map_err(|_| Error(format!("{name}: `{v}` is not a number"))),
                Err(_) => Ok(default),
            }
        };
        let pick = |name: &str, all: &[&'static str]| -> Result<Vec<&'static str>> {
            match std::env::var(name) {
                Err(_) => Ok(all.to_vec()),
                Ok(list) => list
                    .split(',')
                    .map(|item| {
                        all.iter()
                            .find(|n| **n == item.trim())
                            .copied()
                            .ok_or_else(|| Error(format!("{name}: unknown `{item}`")))
                    })
                    .collect(),
            }
        };
        let config_names: Vec<&str> = Config::ALL.iter().map(|c| c.name()).collect();
        let workload_names: Vec<&str> = Workload::ALL.iter().map(|w| w.name()).collect();
        let configs = pick("BENCH_CONFIGS", &config_names)?
            .into_iter()
            .filter_map(|n| Config::ALL.into_iter().find(|c| c.name() == n))
            .collect();
        let workloads = pick("BENCH_WORKLOADS", &workload_names)?
            .into_iter()
            .filter_map(|n| Workload::ALL.into_iter().find(|w| w.name() == n))
            .collect();
        Ok(Settings {
            seconds: num("BENCH_SECONDS", 10)?,
            repeats: u32::try_from(num("BENCH_REPEATS", 3)?.max(1)).unwrap_or(3),
            warmup_seconds: num("BENCH_WARMUP_SECONDS", 2)?,
            connections: u32::try_from(num("BENCH_CONNECTIONS", 32)?.max(1)).unwrap_or(32),
            port: u16::try_from(num("BENCH_PORT", 18900)?).unwrap_or(18900),
            configs,
            workloads,
            soak_rounds: u32::try_from(num("BENCH_SOAK_ROUNDS", 4)?).unwrap_or(4),
            dpop_rps: num("BENCH_DPOP_RPS", 20_000)?,
        })
    }

    /// Whether this run is the one the issue asks for (and may replace bench/results/).
    pub fn is_full(&self) -> bool {
        self.seconds >= 10
            && self.repeats >= 3
            && self.configs.len() == Config::ALL.len()
            && self.workloads.len() == Workload::ALL.len()
    }
}

fn path_from_env(name: &str, default: &str) -> PathBuf {
    std::env::var_os(name)
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(default))
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<()> {
    let settings = Settings::from_env()?;
    let actwarden_wasm = path_from_env("ACTWARDEN_WASM", "dist/actwarden.wasm");
    let floor_wasm = path_from_env("WASM_FLOOR", "target/wasm-floor.wasm");
    for module in [&actwarden_wasm, &floor_wasm] {
        if !module.is_file() {
            return fail!("{} is missing (make bench builds it)", module.display());
        }
    }
    let out = repo_root().join("target/bench");
    std::fs::create_dir_all(&out)?;

    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    eprintln!(
        "bench: minting tokens ({} cold per family)",
        workloads::COLD_TOKENS
    );
    let tokens = Tokens::new(now)?;
    let jwks = tokens.jwks();
    let mut files: Vec<(Family, Workload, Vec<BenchRequest>, PathBuf)> = Vec::new();
    for family in [Family::Simple, Family::Chain] {
        if !settings.configs.iter().any(|c| c.family() == family) {
            continue;
        }
        for &workload in &settings.workloads {
            let requests = tokens.requests(family, workload)?;
            let file = out.join(format!("{family:?}-{}.txt", workload.name()).to_lowercase());
            std::fs::write(&file, to_lines(&requests))?;
            files.push((family, workload, requests, file));
        }
    }

    let mcp_body = out.join("mcp-body.json");
    std::fs::write(&mcp_body, workloads::mcp_body())?;

    let modules = Modules {
        actwarden: &actwarden_wasm,
        floor: &floor_wasm,
    };
    let script = repo_root().join("bench/wrk/cycle.lua");
    let load = wrk::Load {
        connections: settings.connections,
        threads: 1,
        cpu: Some(1),
    };
    let mut results = Results::new(&settings);
    let points: usize = settings
        .configs
        .iter()
        .map(|c| settings.workloads.iter().filter(|w| c.runs(**w)).count())
        .sum();
    eprintln!(
        "bench: {} configurations × {} workloads × {} repeats, {} s each (+{} s warm-up)",
        settings.configs.len(),
        settings.workloads.len(),
        settings.repeats,
        settings.seconds,
        settings.warmup_seconds
    );
    let mut done = 0;
    for repeat in 0..settings.repeats {
        for &config in &settings.configs {
            let dir = out.join(format!("{}-{repeat}", config.name()));
            std::fs::create_dir_all(&dir)?;
            let bootstrap = configs::bootstrap(config, settings.port, &modules, &jwks);
            let one = config.concurrency() == 1;
            let load = wrk::Load {
                cpu: if one { load.cpu } else { None },
                ..load
            };
            let options = Options {
                concurrency: config.concurrency(),
                cpu: if one { Some(0) } else { None },
                capture_log: false,
                envoy_writes_log: std::env::var("BENCH_LOG_PATH").is_ok(),
                ..Options::default()
            };
            let mut envoy = Envoy::spawn(&dir, &bootstrap, &options)?;
            envoy.wait_ready(READY_TIMEOUT)?;
            let addr = envoy.listener("bench")?;
            for (family, workload, requests, file) in &files {
                if *family != config.family() || !config.runs(*workload) {
                    continue;
                }
                let shape = workload.shape();
                let target = wrk::Target {
                    addr,
                    method: shape.method,
                    path: shape.path,
                    body_file: shape.body.is_some().then_some(mcp_body.as_path()),
                };
                // The warm-up's requests: the workload's own, but `dpop` proofs are used
                // once, so the warm-up gets proofs of its own.
                let mut warmup_file = file.clone();
                if *workload == Workload::Dpop {
                    // Fresh proofs (iat now, jti unused in this Envoy's window), enough for
                    // the warm-up and the run at `dpop_rps`; the first few for the precheck.
                    let count = |seconds: u64| {
                        usize::try_from(settings.dpop_rps.saturating_mul(seconds))
                            .unwrap_or(usize::MAX)
                            .max(1)
                    };
                    let (warm, timed) = (count(settings.warmup_seconds), count(settings.seconds));
                    let now = SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .map(|d| d.as_secs())
                        .unwrap_or_default();
                    eprintln!("bench: minting {} DPoP proofs", 4 + warm + timed);
                    let mut minted = tokens.dpop_requests(4 + warm + timed, now)?;
                    let mut warmup = minted.split_off(4);
                    let fresh = warmup.split_off(warm);
                    precheck(config, *workload, &minted, target)?;
                    warmup_file = file.with_extension("warmup.txt");
                    std::fs::write(&warmup_file, to_lines(&warmup))?;
                    std::fs::write(file, to_lines(&fresh))?;
                } else if repeat == 0 {
                    precheck(config, *workload, requests, target)?;
                    if *workload == Workload::Mcp {
                        // The body is read and decided before the answer.
                        let mismatch = tokens.mcp_request(*family, Some("tools/list"))?;
                        precheck(config, *workload, &[mismatch], target)?;
                    }
                }
                if settings.warmup_seconds > 0 {
                    wrk::run(
                        &script,
                        &warmup_file,
                        target,
                        load,
                        Duration::from_secs(settings.warmup_seconds),
                    )?;
                }
                let run = wrk::run(
                    &script,
                    file,
                    target,
                    load,
                    Duration::from_secs(settings.seconds),
                )?;
                let rss_kib = rss_kib(envoy.pid());
                done += 1;
                eprintln!(
                    "bench: [{done}/{}] {:<16} {:<6} {:>9.0} rps  p99 {:>6.2} ms  non-2xx {:>5.1} %  rss {} KiB",
                    points * settings.repeats as usize,
                    config.name(),
                    workload.name(),
                    run.rps,
                    run.p99_ms,
                    100.0 * run.non_2xx as f64 / run.requests.max(1) as f64,
                    rss_kib.unwrap_or_default()
                );
                if run.socket_errors > 0 {
                    return fail!(
                        "{} {}: {} socket errors; log {}:\n{}",
                        config.name(),
                        workload.name(),
                        run.socket_errors,
                        envoy.log_path().display(),
                        envoy.log_tail(20)
                    );
                }
                results.add(Point {
                    config,
                    workload: *workload,
                    repeat,
                    run,
                    rss_kib,
                });
            }
            let soaks = config.decides() && config.concurrency() == 1;
            if repeat + 1 == settings.repeats && soaks && settings.soak_rounds > 0 {
                soak(
                    &mut results,
                    config,
                    &envoy,
                    &files,
                    &script,
                    load,
                    &settings,
                )?;
            }
            if !envoy.running() {
                return fail!(
                    "envoy exited during {}: {}",
                    config.name(),
                    envoy.log_tail(20)
                );
            }
        }
    }

    let native_json = path_from_env("NATIVE_JSON", "target/bench/native.json");
    results.set_native(std::fs::read_to_string(&native_json).ok().as_deref())?;
    results.set_wasm_bytes(file_len(&actwarden_wasm), file_len(&floor_wasm));
    results.set_machine(report::machine()?);
    let (markdown, json) = results.render();
    println!("{markdown}");
    let dest = if settings.is_full() {
        repo_root().join("bench/results")
    } else {
        eprintln!("bench: a partial run (settings below the defaults): results in target/bench/");
        out.clone()
    };
    std::fs::create_dir_all(&dest)?;
    std::fs::write(dest.join("latest.md"), &markdown)?;
    std::fs::write(dest.join("latest.json"), json)?;
    eprintln!("bench: wrote {}/latest.{{md,json}}", dest.display());
    Ok(())
}

/// Memory under sustained traffic: `cold` and `mixed` alternate for `soak_rounds` rounds
/// after the timed points (every cache is full by then); the RSS after each round is kept.
fn soak(
    results: &mut Results,
    config: Config,
    envoy: &Envoy,
    files: &[(Family, Workload, Vec<BenchRequest>, PathBuf)],
    script: &Path,
    load: wrk::Load,
    settings: &Settings,
) -> Result<()> {
    let mut samples = Vec::new();
    for round in 0..settings.soak_rounds {
        let workload = if round % 2 == 0 {
            Workload::Cold
        } else {
            Workload::Mixed
        };
        let Some((_, _, _, file)) = files
            .iter()
            .find(|(f, w, _, _)| *f == config.family() && *w == workload)
        else {
            continue;
        };
        let target = wrk::Target {
            addr: envoy.listener("bench")?,
            method: "GET",
            path: workloads::PATH,
            body_file: None,
        };
        wrk::run(
            script,
            file,
            target,
            load,
            Duration::from_secs(settings.seconds),
        )?;
        samples.extend(rss_kib(envoy.pid()));
    }
    eprintln!("bench: soak {}: rss {samples:?} KiB", config.name());
    results.add_soak(config, samples);
    Ok(())
}

/// Sends every distinct request once: valid ones must get 200 where the configuration
/// decides, invalid ones anything else; where it does not decide, everything gets 200.
fn precheck(
    config: Config,
    workload: Workload,
    requests: &[BenchRequest],
    target: wrk::Target<'_>,
) -> Result<()> {
    let mut seen = std::collections::HashSet::new();
    let body = workload.shape().body;
    for r in requests
        .iter()
        .filter(|r| seen.insert((r.authorization.clone(), r.headers.clone())))
        .take(32)
    {
        let mut req = Request::new(target.method, target.path).header("host", workloads::AUTHORITY);
        if let Some(a) = &r.authorization {
            req = req.header("authorization", a);
        }
        for (name, value) in &r.headers {
            req = req.header(name, value);
        }
        if let Some(body) = &body {
            req.body = body.clone().into_bytes();
        }
        let status = http::send(target.addr, &req)?.status;
        let expect_ok = r.valid || !config.decides();
        if (status == 200) != expect_ok {
            return fail!(
                "precheck {} {}: a `{}` request got HTTP {status}",
                config.name(),
                workload.name(),
                r.kind
            );
        }
    }
    Ok(())
}

/// Resident set size of a process, from /proc.
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or_default()
}
