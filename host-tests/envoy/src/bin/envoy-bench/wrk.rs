//! One wrk run (Debian's wrk 4), pinned to its own CPU, driven by bench/wrk/cycle.lua.

use actwarden_envoy_tests::envoy::dies_with_parent;
use actwarden_envoy_tests::{fail, Error, Result};
use serde_json::Value;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

#[derive(Clone, Copy, Debug)]
pub struct Load {
    pub connections: u32,
    pub threads: u32,
    pub cpu: Option<usize>,
}

/// What one run measured.
#[derive(Clone, Debug, Default)]
pub struct Run {
    pub requests: u64,
    pub rps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Responses that were not 2xx/3xx (denials, in `mixed`).
    pub non_2xx: u64,
    /// Connect, read, write errors and timeouts: none in a sound run.
    pub socket_errors: u64,
}

/// The requests' method, path and body file (the `mcp` workload posts a body).
#[derive(Clone, Copy, Debug)]
pub struct Target<'a> {
    pub addr: SocketAddr,
    pub method: &'a str,
    pub path: &'a str,
    pub body_file: Option<&'a Path>,
}

pub fn run(
    script: &Path,
    requests_file: &Path,
    target: Target<'_>,
    load: Load,
    duration: Duration,
) -> Result<Run> {
    let mut cmd = Command::new("wrk");
    cmd.arg("-t")
        .arg(load.threads.to_string())
        .arg("-c")
        .arg(load.connections.to_string())
        .arg("-d")
        .arg(format!("{}s", duration.as_secs().max(1)))
        .arg("--timeout")
        .arg("5s")
        .arg("-s")
        .arg(script)
        .arg(format!("http://{}/", target.addr))
        .arg("--")
        .arg(requests_file)
        .arg(target.method)
        .arg(target.path);
    if let Some(body) = target.body_file {
        cmd.arg(body);
    }
    dies_with_parent(&mut cmd, load.cpu);
    let out = cmd
        .output()
        .map_err(|e| Error(format!("cannot run wrk (apt-get install wrk): {e}")))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return fail!(
            "wrk failed ({}): {}{}",
            out.status,
            stdout,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .ok_or_else(|| Error(format!("no result line from wrk: {stdout}")))?;
    let doc: Value = serde_json::from_str(line)?;
    let num = |v: Option<&Value>| v.and_then(Value::as_u64).unwrap_or_default();
    let requests = num(doc.get("requests"));
    let duration_us = num(doc.get("duration_us")).max(1);
    let errors = doc.get("errors");
    let error = |name: &str| num(errors.and_then(|e| e.get(name)));
    Ok(Run {
        requests,
        rps: requests as f64 * 1e6 / duration_us as f64,
        p50_ms: num(doc.get("p50_us")) as f64 / 1000.0,
        p99_ms: num(doc.get("p99_us")) as f64 / 1000.0,
        non_2xx: error("status"),
        socket_errors: error("connect") + error("read") + error("write") + error("timeout"),
    })
}
