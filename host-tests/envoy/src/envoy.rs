//! Envoy as a child process of a test.

use crate::http;
use crate::{fail, Error, Result};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The marker of an audit line in the log (SPEC §6).
pub const AUDIT_MARKER: &str = "actwarden.audit ";

/// How long Envoy may take to be ready (V8 compiles the module per worker).
pub const READY_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Default)]
struct LogInner {
    lines: Vec<String>,
    /// Audit records in log order.
    audits: Vec<Value>,
    closed: bool,
}

#[derive(Default)]
struct Log {
    inner: Mutex<LogInner>,
    changed: Condvar,
}

impl Log {
    fn lock(&self) -> MutexGuard<'_, LogInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The audit record of a log line, if it is one: the JSON object after `actwarden.audit `.
pub fn parse_audit_line(line: &str) -> Option<Value> {
    let at = line.find(AUDIT_MARKER)?;
    let rest = line.get(at + AUDIT_MARKER.len()..)?.trim_start();
    let mut stream = serde_json::Deserializer::from_str(rest).into_iter::<Value>();
    match stream.next() {
        Some(Ok(v @ Value::Object(_))) => Some(v),
        _ => None,
    }
}

/// How to run Envoy.
#[derive(Debug, Clone)]
pub struct Options {
    /// Worker threads (`--concurrency`).
    pub concurrency: u32,
    /// `--component-log-level`; the wasm component at info shows the audit lines.
    pub component_log_level: String,
    pub log_level: String,
    /// Pin Envoy (every thread) to this CPU (benchmarks: Envoy on one core, the load
    /// generator on the other).
    pub cpu: Option<usize>,
    /// Read the log into memory (audit lines, `wait_audit`, `log_grep`). Benchmarks turn it
    /// off: Envoy then writes straight to the log file, and no reader thread competes with
    /// Envoy for the CPU.
    pub capture_log: bool,
    /// Envoy writes its log to `log_path` itself (`--log-path`: buffered, flushed by
    /// Envoy's own thread) instead of to stderr. Implies no capture.
    pub envoy_writes_log: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            concurrency: 2,
            component_log_level: "wasm:info".to_owned(),
            log_level: "warning".to_owned(),
            cpu: None,
            capture_log: true,
            envoy_writes_log: false,
        }
    }
}

/// A running Envoy. Killed (SIGKILL) when dropped, including while a failing test unwinds;
/// started with `PR_SET_PDEATHSIG` so it also dies with the thread that started it.
pub struct Envoy {
    child: Child,
    dir: PathBuf,
    log_path: PathBuf,
    log: Arc<Log>,
    admin: Option<SocketAddr>,
    listeners: HashMap<String, SocketAddr>,
}

impl Envoy {
    /// Writes `bootstrap` to `dir/envoy.yaml` and starts Envoy on it; does not wait.
    pub fn spawn(dir: &Path, bootstrap: &Value, options: &Options) -> Result<Envoy> {
        let config = dir.join("envoy.yaml");
        // JSON is YAML: Envoy reads it as is, and no escaping of embedded configs is needed.
        let text = serde_json::to_string_pretty(bootstrap)?;
        std::fs::write(&config, text)?;
        Envoy::spawn_file(dir, &config, options, None)
    }

    /// Starts Envoy on a configuration file (in working directory `cwd` when given, for
    /// configurations with relative paths); its log and admin address go to `dir`.
    pub fn spawn_file(
        dir: &Path,
        config: &Path,
        options: &Options,
        cwd: Option<&Path>,
    ) -> Result<Envoy> {
        let bin = crate::paths::envoy_bin()?;
        let admin_file = dir.join("admin-address.txt");
        let _ = std::fs::remove_file(&admin_file);
        let log_path = dir.join("envoy.log");
        let mut cmd = Command::new(&bin);
        if let Some(cwd) = cwd {
            cmd.current_dir(cwd);
        }
        cmd.arg("-c")
            .arg(config)
            .arg("--concurrency")
            .arg(options.concurrency.to_string())
            .arg("--disable-hot-restart")
            .arg("--admin-address-path")
            .arg(&admin_file)
            .arg("--log-level")
            .arg(&options.log_level)
            .arg("--component-log-level")
            .arg(&options.component_log_level)
            .stdin(Stdio::null());
        let file = std::fs::File::create(&log_path)?;
        if options.envoy_writes_log {
            cmd.arg("--log-path").arg(&log_path);
            cmd.stdout(Stdio::null()).stderr(Stdio::null());
        } else if options.capture_log {
            cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        } else {
            cmd.stdout(Stdio::from(file.try_clone()?))
                .stderr(Stdio::from(file.try_clone()?));
        }
        dies_with_parent(&mut cmd, options.cpu);
        let mut child = cmd
            .spawn()
            .map_err(|e| Error(format!("cannot start {}: {e}", bin.display())))?;
        let log = Arc::new(Log::default());
        let file = Arc::new(Mutex::new(file));
        if let Some(stderr) = child.stderr.take() {
            capture(stderr, Arc::clone(&log), Arc::clone(&file), true)?;
        }
        if let Some(stdout) = child.stdout.take() {
            capture(stdout, Arc::clone(&log), file, false)?;
        }
        Ok(Envoy {
            child,
            dir: dir.to_owned(),
            log_path,
            log,
            admin: None,
            listeners: HashMap::new(),
        })
    }

    /// [`Envoy::spawn`], then [`Envoy::wait_ready`].
    pub fn start(dir: &Path, bootstrap: &Value, options: &Options) -> Result<Envoy> {
        let mut envoy = Envoy::spawn(dir, bootstrap, options)?;
        envoy.wait_ready(READY_TIMEOUT)?;
        Ok(envoy)
    }

    /// Waits until admin `/ready` answers 200, then learns the listeners' ports.
    pub fn wait_ready(&mut self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let admin_file = self.dir.join("admin-address.txt");
        loop {
            if let Some(status) = self.child.try_wait()? {
                // Let the log reader drain what Envoy wrote last.
                self.wait_log_closed(Duration::from_secs(2));
                return fail!(
                    "envoy exited ({status}) before it was ready; log {}:\n{}",
                    self.log_path.display(),
                    self.log_tail(40)
                );
            }
            if self.admin.is_none() {
                if let Ok(text) = std::fs::read_to_string(&admin_file) {
                    self.admin = text.trim().parse().ok();
                }
            }
            if let Some(admin) = self.admin {
                if let Ok(resp) = http::get(admin, "/ready") {
                    if resp.status == 200 {
                        break;
                    }
                }
            }
            if Instant::now() > deadline {
                return fail!(
                    "envoy not ready within {timeout:?}; log {}:\n{}",
                    self.log_path.display(),
                    self.log_tail(40)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let listeners = self.admin_get("/listeners?format=json")?;
        let doc: Value = serde_json::from_slice(&listeners.body)?;
        for status in doc
            .get("listener_statuses")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let name = status.get("name").and_then(Value::as_str);
            let sock = status
                .get("local_address")
                .and_then(|a| a.get("socket_address"));
            let ip = sock.and_then(|s| s.get("address")).and_then(Value::as_str);
            let port = sock
                .and_then(|s| s.get("port_value"))
                .and_then(Value::as_u64);
            if let (Some(name), Some(ip), Some(port)) = (name, ip, port) {
                let addr: SocketAddr = format!("{ip}:{port}")
                    .parse()
                    .map_err(|e| Error(format!("listener {name}: {e}")))?;
                self.listeners.insert(name.to_owned(), addr);
            }
        }
        Ok(())
    }

    /// Waits for Envoy to exit on its own; `None` if it still runs after `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<Option<ExitStatus>> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                self.wait_log_closed(Duration::from_secs(2));
                return Ok(Some(status));
            }
            if Instant::now() > deadline {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn wait_log_closed(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let mut inner = self.log.lock();
        while !inner.closed {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            inner = match self.log.changed.wait_timeout(inner, left) {
                Ok((g, _)) => g,
                Err(p) => p.into_inner().0,
            };
        }
    }

    /// The address of a listener by its name in the bootstrap.
    pub fn listener(&self, name: &str) -> Result<SocketAddr> {
        self.listeners.get(name).copied().ok_or_else(|| {
            Error(format!(
                "envoy has no listener `{name}` (has {:?})",
                self.listeners.keys()
            ))
        })
    }

    pub fn admin(&self) -> Result<SocketAddr> {
        self.admin
            .ok_or_else(|| Error("envoy's admin address is not known yet".into()))
    }

    pub fn admin_get(&self, path: &str) -> Result<http::Response> {
        http::get(self.admin()?, path)
    }

    /// Every stat of admin `/stats` with an integer value (counters and gauges).
    pub fn stats(&self) -> Result<BTreeMap<String, u64>> {
        let resp = self.admin_get("/stats")?;
        if resp.status != 200 {
            return fail!("admin /stats: HTTP {}", resp.status);
        }
        Ok(resp
            .text()
            .lines()
            .filter_map(|line| {
                let (name, value) = line.split_once(": ")?;
                Some((name.to_owned(), value.trim().parse().ok()?))
            })
            .collect())
    }

    /// The actwarden counter `name` (e.g. `actwarden.allow`). Envoy shows custom wasm
    /// metrics under a prefix (`wasmcustom.`), so a stat matches when it is `name` or ends
    /// in `.name`; the values of all matches are added (0 when none).
    pub fn counter(&self, name: &str) -> Result<u64> {
        let suffix = format!(".{name}");
        Ok(self
            .stats()?
            .iter()
            .filter(|(k, _)| *k == name || k.ends_with(&suffix))
            .map(|(_, v)| *v)
            .sum())
    }

    /// Every actwarden counter, keyed by its SPEC name (`actwarden.allow`, …). Envoy 1.40
    /// shows proxy-wasm metrics as `wasmcustom.<name>`; the plugin's own Envoy stats
    /// (`wasm.actwarden.vm_reload`, …) are not actwarden counters and are left out.
    pub fn actwarden_counters(&self) -> Result<BTreeMap<String, u64>> {
        let mut out = BTreeMap::new();
        for (k, v) in self.stats()? {
            let short = k.strip_prefix("wasmcustom.").unwrap_or(&k);
            if short.starts_with("actwarden.") {
                *out.entry(short.to_owned()).or_insert(0) += v;
            }
        }
        Ok(out)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// Every log line so far.
    pub fn log_lines(&self) -> Vec<String> {
        self.log.lock().lines.clone()
    }

    /// The last `n` log lines, as one string.
    pub fn log_tail(&self, n: usize) -> String {
        let inner = self.log.lock();
        if inner.lines.is_empty() {
            // Not captured (`Options::capture_log` off): the file has it.
            let text = std::fs::read_to_string(&self.log_path).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let start = lines.len().saturating_sub(n);
            return lines.get(start..).unwrap_or_default().join("\n");
        }
        let start = inner.lines.len().saturating_sub(n);
        inner.lines.get(start..).unwrap_or_default().join("\n")
    }

    /// Every audit record so far, in log order.
    pub fn audits(&self) -> Vec<Value> {
        self.log.lock().audits.clone()
    }

    /// The audit records read so far once `complete` says they are (or `timeout` passed):
    /// Envoy writes its log on its own schedule, so records of requests already answered
    /// can still be on their way.
    pub fn wait_audits(
        &self,
        timeout: Duration,
        complete: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        self.wait_until(timeout, |inner| {
            complete(&inner.audits).then(|| inner.audits.clone())
        })
        .unwrap_or_else(|| self.audits())
    }

    /// Waits for the audit record whose `request_id` is `request_id`.
    pub fn wait_audit(&self, request_id: &str, timeout: Duration) -> Result<Value> {
        let found = self.wait_until(timeout, |inner| {
            inner
                .audits
                .iter()
                .find(|a| a.get("request_id").and_then(Value::as_str) == Some(request_id))
                .cloned()
        });
        found.ok_or_else(|| {
            Error(format!(
                "no audit line with request_id {request_id} within {timeout:?} (log {})",
                self.log_path.display()
            ))
        })
    }

    /// Waits for a log line containing `needle` (counting from line `from`); returns it.
    pub fn wait_log(&self, needle: &str, from: usize, timeout: Duration) -> Result<String> {
        self.wait_until(timeout, |inner| {
            inner
                .lines
                .iter()
                .skip(from)
                .find(|l| l.contains(needle))
                .cloned()
        })
        .ok_or_else(|| {
            Error(format!(
                "no log line containing {needle:?} within {timeout:?}; log {}:\n{}",
                self.log_path.display(),
                self.log_tail(20)
            ))
        })
    }

    /// The number of log lines so far (a mark for [`Envoy::wait_log`]).
    pub fn log_len(&self) -> usize {
        self.log.lock().lines.len()
    }

    /// Log lines containing `needle`.
    pub fn log_grep(&self, needle: &str) -> Vec<String> {
        self.log
            .lock()
            .lines
            .iter()
            .filter(|l| l.contains(needle))
            .cloned()
            .collect()
    }

    fn wait_until<T>(
        &self,
        timeout: Duration,
        mut f: impl FnMut(&LogInner) -> Option<T>,
    ) -> Option<T> {
        let deadline = Instant::now() + timeout;
        let mut inner = self.log.lock();
        loop {
            if let Some(v) = f(&inner) {
                return Some(v);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || inner.closed {
                return None;
            }
            inner = match self.log.changed.wait_timeout(inner, left) {
                Ok((g, _)) => g,
                Err(p) => p.into_inner().0,
            };
        }
    }
}

impl Drop for Envoy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `cmd`'s process dies with the thread that starts it (`PR_SET_PDEATHSIG`), and runs on
/// `cpu` only when given.
pub fn dies_with_parent(cmd: &mut Command, cpu: Option<usize>) {
    // SAFETY: prctl and sched_setaffinity are async-signal-safe; the cpu set is built on
    // the stack; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if let Some(cpu) = cpu {
                let mut set: libc::cpu_set_t = std::mem::zeroed();
                libc::CPU_SET(cpu, &mut set);
                if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
}

/// Reads an output stream of Envoy line by line into the log file and the in-memory log.
fn capture(
    stream: impl std::io::Read + Send + 'static,
    log: Arc<Log>,
    file: Arc<Mutex<std::fs::File>>,
    marks_close: bool,
) -> Result<()> {
    std::thread::Builder::new()
        .name("envoy-log".into())
        .spawn(move || {
            let mut reader = BufReader::new(stream);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match reader.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let line = String::from_utf8_lossy(&buf).trim_end().to_owned();
                        if let Ok(mut f) = file.lock() {
                            let _ = writeln!(f, "{line}");
                        }
                        let mut inner = log.lock();
                        if let Some(audit) = parse_audit_line(&line) {
                            inner.audits.push(audit);
                        }
                        inner.lines.push(line);
                        drop(inner);
                        log.changed.notify_all();
                    }
                }
            }
            if marks_close {
                log.lock().closed = true;
                log.changed.notify_all();
            }
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_audit_line;

    #[test]
    fn audit_line_as_envoy_1_40_prints_it() {
        let line = r#"[2026-11-23 08:39:21.842][2171][info][wasm] [source/extensions/common/wasm/context.cc:1151] wasm log actwarden actwarden-corpus: actwarden.audit {"decision":"deny","reason":"token_missing","request_id":"r-1"}"#;
        let audit = parse_audit_line(line).unwrap();
        assert_eq!(audit["reason"], "token_missing");
        assert_eq!(audit["request_id"], "r-1");
        assert!(
            parse_audit_line("[info][wasm] actwarden: jwks sts fetch ok (1 keys, 5 ms)").is_none()
        );
        assert!(parse_audit_line("actwarden.audit not json").is_none());
    }
}
