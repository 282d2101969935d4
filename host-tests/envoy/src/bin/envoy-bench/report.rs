//! Medians over repeats, the goals of issue 5 as ratios from this run, and the two outputs:
//! a markdown table (printed, bench/results/latest.md) and JSON (bench/results/latest.json,
//! `{"envoy": {CONFIG: {WORKLOAD: {"rps", "p99_ms"}}}, "native": {...}, "wasm_bytes": N}`
//! plus the members documented in bench/README.md).

use crate::configs::Config;
use crate::workloads::Workload;
use crate::wrk::Run;
use crate::Settings;
use actwarden_envoy_tests::Result;
use serde_json::{json, Map, Value};
use std::fmt::Write as _;

pub struct Point {
    pub config: Config,
    pub workload: Workload,
    pub repeat: u32,
    pub run: Run,
    pub rss_kib: Option<u64>,
}

pub struct Results {
    settings: Value,
    configs: Vec<Config>,
    workloads: Vec<Workload>,
    points: Vec<Point>,
    soak: Vec<(Config, Vec<u64>)>,
    native: Value,
    wasm_bytes: u64,
    floor_bytes: u64,
    machine: Value,
}

/// The `.wasm` size goal (issue 5).
const WASM_GOAL_BYTES: u64 = 450 * 1024;
/// What a DPoP proof may cost besides its signature (issue 13).
const DPOP_SLACK_US: f64 = 10.0;
/// RSS may move this much between soak rounds without counting as growth: allocator and
/// V8 bookkeeping, not retained requests (a leak of one token per request would be
/// hundreds of MiB over a soak).
const RSS_NOISE_KIB: u64 = 1024;

fn median(mut values: Vec<f64>) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n == 0 {
        return None;
    }
    let mid = n / 2;
    if n % 2 == 1 {
        values.get(mid).copied()
    } else {
        Some((values.get(mid - 1)? + values.get(mid)?) / 2.0)
    }
}

impl Results {
    pub fn new(settings: &Settings) -> Results {
        Results {
            settings: json!({
                "seconds_per_point": settings.seconds,
                "repeats": settings.repeats,
                "warmup_seconds": settings.warmup_seconds,
                "connections": settings.connections,
                "wrk_threads": 1,
                "envoy_concurrency": 1,
                "envoy_cpu": 0,
                "wrk_cpu": 1,
                "cold_tokens": crate::workloads::COLD_TOKENS,
            }),
            configs: settings.configs.clone(),
            workloads: settings.workloads.clone(),
            points: Vec::new(),
            soak: Vec::new(),
            native: Value::Null,
            wasm_bytes: 0,
            floor_bytes: 0,
            machine: Value::Null,
        }
    }

    pub fn add(&mut self, point: Point) {
        self.points.push(point);
    }

    pub fn add_soak(&mut self, config: Config, rss_kib: Vec<u64>) {
        self.soak.push((config, rss_kib));
    }

    pub fn set_native(&mut self, text: Option<&str>) -> Result<()> {
        self.native = match text {
            Some(t) => serde_json::from_str(t)?,
            None => Value::Null,
        };
        Ok(())
    }

    pub fn set_wasm_bytes(&mut self, actwarden: u64, floor: u64) {
        self.wasm_bytes = actwarden;
        self.floor_bytes = floor;
    }

    pub fn set_machine(&mut self, machine: Value) {
        self.machine = machine;
    }

    fn runs(&self, config: Config, workload: Workload) -> impl Iterator<Item = &Point> {
        self.points
            .iter()
            .filter(move |p| p.config == config && p.workload == workload)
    }

    fn rps(&self, config: Config, workload: Workload) -> Option<f64> {
        median(self.runs(config, workload).map(|p| p.run.rps).collect())
    }

    fn p99(&self, config: Config, workload: Workload) -> Option<f64> {
        median(self.runs(config, workload).map(|p| p.run.p99_ms).collect())
    }

    fn denied_share(&self, config: Config, workload: Workload) -> Option<f64> {
        median(
            self.runs(config, workload)
                .map(|p| p.run.non_2xx as f64 / p.run.requests.max(1) as f64)
                .collect(),
        )
    }

    /// RSS after the last point of the configuration, median over repeats.
    fn rss_mib(&self, config: Config) -> Option<f64> {
        let last = *self.workloads.iter().rev().find(|w| config.runs(**w))?;
        median(
            self.runs(config, last)
                .filter_map(|p| p.rss_kib)
                .map(|k| k as f64 / 1024.0)
                .collect(),
        )
    }

    /// Per-request cost over `no_filter` in µs, from `hot` throughput on one worker.
    fn overhead_us(&self, config: Config) -> Option<f64> {
        self.cost_us(config, Workload::Hot)
    }

    /// Per-request cost over `no_filter` running the same workload, in µs.
    fn cost_us(&self, config: Config, workload: Workload) -> Option<f64> {
        let base = self.rps(Config::NoFilter, workload)?;
        let this = self.rps(config, workload)?;
        Some(1e6 / this - 1e6 / base)
    }

    /// What one host-verified ES256 verification costs in this run: `wasm_floor_es256`
    /// (the floor plus one `verify_signature` call per request, arguments prepared once)
    /// minus `wasm_floor`, on `hot`. The verification alone: nothing of a token or a proof.
    fn es256_verify_us(&self) -> Option<f64> {
        Some(self.overhead_us(Config::WasmFloorEs256)? - self.overhead_us(Config::WasmFloor)?)
    }

    /// What a DPoP proof adds to a cached token's request (issue 13): `dpop` minus `hot`,
    /// each over `no_filter` with the same requests.
    fn dpop_extra_us(&self) -> Option<f64> {
        Some(
            self.cost_us(Config::Actwarden, Workload::Dpop)?
                - self.overhead_us(Config::Actwarden)?,
        )
    }

    fn goals(&self) -> Vec<Value> {
        let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) if b > 0.0 => Some(a / b),
            _ => None,
        };
        let goal = |name: &str, what: &str, value: Option<f64>, target: f64, at_least: bool| {
            let met = value.map(|v| if at_least { v >= target } else { v <= target });
            json!({ "goal": name, "what": what, "value": value.map(round3),
                    "target": target, "at_least": at_least, "met": met })
        };
        let mut goals = vec![
            goal(
                "hot",
                "actwarden rps / jwt_authn_cache rps (hot)",
                ratio(
                    self.rps(Config::Actwarden, Workload::Hot),
                    self.rps(Config::JwtAuthnCache, Workload::Hot),
                ),
                0.85,
                true,
            ),
            goal(
                "overhead",
                "actwarden per-request cost over no_filter / wasm_floor's (hot)",
                ratio(
                    self.overhead_us(Config::Actwarden),
                    self.overhead_us(Config::WasmFloor),
                ),
                1.5,
                false,
            ),
            goal(
                "cold",
                "actwarden rps / jwt_authn rps (cold, ES256)",
                ratio(
                    self.rps(Config::Actwarden, Workload::Cold),
                    self.rps(Config::JwtAuthn, Workload::Cold),
                ),
                0.9,
                true,
            ),
            goal(
                "cold_rs256",
                "actwarden rps / jwt_authn rps (cold, RS256)",
                ratio(
                    self.rps(Config::Actwarden, Workload::ColdRs256),
                    self.rps(Config::JwtAuthn, Workload::ColdRs256),
                ),
                0.9,
                true,
            ),
            goal(
                "dpop",
                "actwarden dpop cost over hot, µs (target: one host ES256 verification, wasm_floor_es256 − wasm_floor, + 10 µs)",
                self.dpop_extra_us(),
                round3(self.es256_verify_us().unwrap_or(f64::NAN) + DPOP_SLACK_US),
                false,
            ),
            goal(
                "mcp",
                "actwarden mcp cost over no_filter / hot cost over no_filter",
                ratio(
                    self.cost_us(Config::Actwarden, Workload::Mcp),
                    self.overhead_us(Config::Actwarden),
                ),
                2.0,
                false,
            ),
            goal(
                "wasm_size",
                "dist/actwarden.wasm KiB",
                Some(self.wasm_bytes as f64 / 1024.0),
                (WASM_GOAL_BYTES / 1024) as f64,
                false,
            ),
        ];
        for (config, samples) in &self.soak {
            let growth = match (samples.first(), samples.last()) {
                (Some(first), Some(last)) => Some(last.saturating_sub(*first) as f64),
                _ => None,
            };
            goals.push(goal(
                &format!("memory_{}", config.name()),
                &format!(
                    "{} RSS growth across the soak, KiB (cold and mixed alternating)",
                    config.name()
                ),
                growth,
                RSS_NOISE_KIB as f64,
                false,
            ));
        }
        goals
    }

    pub fn render(&self) -> (String, String) {
        let goals = self.goals();
        (self.markdown(&goals), self.json(&goals))
    }

    fn json(&self, goals: &[Value]) -> String {
        let mut envoy = Map::new();
        let mut rss = Map::new();
        let mut runs = Map::new();
        for &config in &self.configs {
            let mut per = Map::new();
            let mut per_runs = Map::new();
            for &workload in &self.workloads {
                let (Some(rps), Some(p99)) =
                    (self.rps(config, workload), self.p99(config, workload))
                else {
                    continue;
                };
                per.insert(
                    workload.name().into(),
                    json!({ "rps": rps.round(), "p99_ms": round3(p99) }),
                );
                per_runs.insert(
                    workload.name().into(),
                    self.runs(config, workload)
                        .map(|p| {
                            json!({
                                "repeat": p.repeat, "rps": p.run.rps.round(),
                                "p50_ms": round3(p.run.p50_ms), "p99_ms": round3(p.run.p99_ms),
                                "requests": p.run.requests, "non_2xx": p.run.non_2xx,
                                "envoy_rss_kib": p.rss_kib,
                            })
                        })
                        .collect::<Vec<_>>()
                        .into(),
                );
            }
            envoy.insert(config.name().into(), per.into());
            runs.insert(config.name().into(), per_runs.into());
            rss.insert(
                config.name().into(),
                json!(self.rss_mib(config).map(round3)),
            );
        }
        let soak: Map<String, Value> = self
            .soak
            .iter()
            .map(|(c, s)| (c.name().to_owned(), json!(s)))
            .collect();
        let doc = json!({
            "envoy": envoy,
            "native": self.native,
            "wasm_bytes": self.wasm_bytes,
            "wasm_floor_bytes": self.floor_bytes,
            "envoy_rss_mib": rss,
            "soak_rss_kib": soak,
            "goals": goals,
            "runs": runs,
            "settings": self.settings,
            "machine": self.machine,
        });
        serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n"
    }

    fn markdown(&self, goals: &[Value]) -> String {
        let mut md = String::new();
        let m = |k: &str| {
            self.machine
                .get(k)
                .map(|v| {
                    v.as_str()
                        .map(str::to_owned)
                        .unwrap_or_else(|| v.to_string())
                })
                .unwrap_or_default()
        };
        let _ = writeln!(md, "## actwarden benchmark ({})\n", m("date"));
        let _ = writeln!(
            md,
            "Machine: {} ({} CPUs), Linux {}; Envoy {} (`--concurrency 1`, CPU 0; the `_2w` rows `--concurrency 2` with Envoy and wrk unpinned); wrk {} (1 thread, {} connections, CPU 1). \
             Medians of {} interleaved repeats, {} s per point after {} s warm-up.\n",
            m("cpu"),
            m("cpus"),
            m("kernel"),
            m("envoy"),
            m("wrk"),
            self.settings["connections"],
            self.settings["repeats"],
            self.settings["seconds_per_point"],
            self.settings["warmup_seconds"],
        );
        let _ = write!(md, "| configuration |");
        for w in &self.workloads {
            let _ = write!(md, " {} rps | {} p99 ms |", w.name(), w.name());
        }
        let _ = writeln!(md, " denied in mixed | Envoy RSS MiB |");
        let _ = write!(md, "|---|");
        for _ in &self.workloads {
            let _ = write!(md, "---:|---:|");
        }
        let _ = writeln!(md, "---:|---:|");
        for &config in &self.configs {
            let _ = write!(md, "| `{}` |", config.name());
            for &w in &self.workloads {
                match (self.rps(config, w), self.p99(config, w)) {
                    (Some(r), Some(p)) => {
                        let _ = write!(md, " {r:.0} | {p:.2} |");
                    }
                    _ => {
                        let _ = write!(md, " – | – |");
                    }
                }
            }
            let denied = self
                .denied_share(config, Workload::Mixed)
                .map(|d| format!("{:.0} %", d * 100.0))
                .unwrap_or_else(|| "–".into());
            let rss = self
                .rss_mib(config)
                .map(|r| format!("{r:.1}"))
                .unwrap_or_else(|| "–".into());
            let _ = writeln!(md, " {denied} | {rss} |");
        }
        let _ = writeln!(md);
        let _ = writeln!(
            md,
            "| goal | measured | target | met |\n|---|---:|---:|:-:|"
        );
        for g in goals {
            let value = g["value"]
                .as_f64()
                .map(|v| format!("{v:.2}"))
                .unwrap_or_else(|| "–".into());
            let op = if g["at_least"].as_bool() == Some(true) {
                "≥"
            } else {
                "≤"
            };
            let met = match g["met"].as_bool() {
                Some(true) => "yes",
                Some(false) => "**no**",
                None => "–",
            };
            let _ = writeln!(
                md,
                "| {} | {value} | {op} {} | {met} |",
                g["what"].as_str().unwrap_or_default(),
                g["target"]
            );
        }
        let _ = writeln!(
            md,
            "\n`.wasm`: actwarden {} bytes ({:.0} KiB), wasm_floor {} bytes.",
            self.wasm_bytes,
            self.wasm_bytes as f64 / 1024.0,
            self.floor_bytes
        );
        if let Some(o) = self.overhead_us(Config::Actwarden) {
            let floor = self.overhead_us(Config::WasmFloor).unwrap_or_default();
            let _ = writeln!(
                md,
                "Per-request cost over `no_filter` (hot, one worker): actwarden {o:.1} µs, wasm_floor {floor:.1} µs{}.",
                self.overhead_us(Config::JwtAuthnCache)
                    .map(|j| format!(", jwt_authn_cache {j:.1} µs"))
                    .unwrap_or_default()
            );
        }
        if let (Some(extra), Some(verify)) = (self.dpop_extra_us(), self.es256_verify_us()) {
            let _ = writeln!(
                md,
                "DPoP (issue 13): a fresh proof on a cached token adds {extra:.1} µs to the hot path; one host-verified ES256 verification (`wasm_floor_es256` − `wasm_floor`) costs {verify:.1} µs here, so the proof's other work costs {:.1} µs (allowed: 10).",
                extra - verify
            );
        }
        if let (Some(mcp), Some(hot)) = (
            self.cost_us(Config::Actwarden, Workload::Mcp),
            self.overhead_us(Config::Actwarden),
        ) {
            let _ = writeln!(
                md,
                "MCP (issue 12): a `tools/call` costs {mcp:.1} µs over `no_filter` posting the same body, {:.2} × the hot request's {hot:.1} µs (allowed: 2 ×).",
                mcp / hot
            );
        }
        md.push_str(&native_markdown(&self.native));
        md
    }
}

/// The native part (`make bench-native`, target/bench/native.json), when present.
fn native_markdown(native: &Value) -> String {
    let mut md = String::new();
    let Some(verify) = native.get("verify").and_then(Value::as_object) else {
        let _ = writeln!(md, "\nNative measurements: not run (`make bench-native`).");
        return md;
    };
    let _ = writeln!(
        md,
        "\nSignature verification per algorithm (µs per verify, the filter's code path; V8 = the same wasm32-wasip1 build run by Node's V8):\n"
    );
    let _ = writeln!(
        md,
        "| alg | native µs | V8 µs | V8 / native | verified in V8 by |\n|---|---:|---:|---:|---|"
    );
    for (alg, v) in verify {
        let f = |k: &str| {
            v.get(k)
                .and_then(Value::as_f64)
                .map(|x| format!("{x:.1}"))
                .unwrap_or_else(|| "–".into())
        };
        let _ = writeln!(
            md,
            "| {alg} | {} | {} | {} | {} |",
            f("native_us"),
            f("v8_us"),
            f("v8_over_native"),
            v.get("v8_by").and_then(Value::as_str).unwrap_or("ring")
        );
    }
    if let Some(decision) = native.get("decision").and_then(Value::as_object) {
        let _ = writeln!(
            md,
            "\nNative `decide` (criterion median, µs):\n\n| case | alg | µs |\n|---|---|---:|"
        );
        for (case, per_alg) in decision {
            for (alg, v) in per_alg.as_object().into_iter().flatten() {
                if let Some(us) = v.get("median_us").and_then(Value::as_f64) {
                    let _ = writeln!(md, "| {case} | {alg} | {us:.2} |");
                }
            }
        }
    }
    md
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

/// What this ran on: CPU model and count, kernel, Envoy and wrk versions, the date.
pub fn machine() -> Result<Value> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).trim().to_owned())
        .unwrap_or_default();
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .unwrap_or_default()
        .trim()
        .to_owned();
    let version_of = |cmd: &std::path::Path, arg: &str| {
        std::process::Command::new(cmd)
            .arg(arg)
            .output()
            .map(|o| {
                let text = String::from_utf8_lossy(&o.stdout).to_string()
                    + &String::from_utf8_lossy(&o.stderr);
                // The first line that says something (Envoy starts with an empty one).
                text.lines()
                    .map(str::trim)
                    .find(|l| !l.is_empty())
                    .unwrap_or_default()
                    .to_owned()
            })
            .unwrap_or_default()
    };
    let envoy_line = version_of(&actwarden_envoy_tests::paths::envoy_bin()?, "--version");
    // "envoy  version: <sha>/1.40.0/Clean/RELEASE/BoringSSL" → "1.40.0"
    let envoy = envoy_line
        .split('/')
        .nth(1)
        .map(str::to_owned)
        .unwrap_or(envoy_line);
    let wrk_line = version_of(std::path::Path::new("wrk"), "--version");
    let wrk = wrk_line
        .split_whitespace()
        .nth(1)
        .map(|v| v.trim_start_matches("debian/").to_owned())
        .unwrap_or_default();
    let date = std::process::Command::new("date")
        .arg("-u")
        .arg("+%Y-%m-%d %H:%M UTC")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    Ok(
        json!({ "cpu": cpu, "cpus": cpus, "kernel": kernel, "envoy": envoy, "wrk": wrk, "date": date }),
    )
}
