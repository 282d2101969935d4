//! `actwarden`: the core on the command line (SPEC §7). Exit 0 allow, 1 deny, 2 usage or
//! configuration error. All decisions are made by the library; this file only does I/O.

use actwarden::api::{decide_json, ApiError};
use actwarden::mint::{self, SigningKey};
use actwarden::Alg;
use actwarden::{parse_jwks, KeySet, KeySource};
use actwarden::{Policy, UnixTime};
use clap::{Parser, Subcommand};
use ring::rand::SystemRandom;
use std::collections::HashMap;
use std::process::ExitCode;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

// Subcommands of their own live in `src/bin/actwarden/` (not `src/bin/`, where cargo would
// take each file for a binary).
#[path = "actwarden/matrix_command.rs"]
mod matrix_command;
#[path = "actwarden/test_command.rs"]
mod test_command;

#[derive(Parser)]
#[command(
    name = "actwarden",
    version,
    about = "Decide whether an AI agent acting through a delegation chain may make a request."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Decide one request; print the audit record with `headers` and `response`.
    Check {
        #[arg(long)]
        config: String,
        #[arg(long)]
        request: String,
        /// Unix seconds (fractions allowed); defaults to the system clock.
        #[arg(long)]
        now: Option<f64>,
        /// Keys for a `remote_jwks` provider, as NAME=FILE (the CLI never fetches).
        #[arg(long = "jwks", value_name = "NAME=FILE")]
        jwks: Vec<String>,
        /// Also print `explain`: `checks` (every check of SPEC §4 in order, with its outcome)
        /// and `chain` (each actor's ceiling and the scopes it removed), as the playground shows.
        #[arg(long)]
        explain: bool,
    },
    /// Print the policy as an auth matrix: per rule, who may do what with which credential.
    Matrix {
        #[arg(long)]
        config: String,
        #[arg(long, value_enum, default_value = "markdown")]
        format: matrix_command::MatrixFormat,
    },
    /// Run policy test files: exit 0 when every case passes, 1 when one fails, 2 on bad input.
    Test {
        #[arg(long)]
        config: String,
        /// Test files (`{"cases": [...]}`).
        #[arg(required = true)]
        files: Vec<String>,
        /// Also write the results as JUnit XML to this file.
        #[arg(long)]
        junit: Option<String>,
        /// Unix seconds for cases without `now`; defaults to the system clock.
        #[arg(long)]
        now: Option<f64>,
    },
    /// Validate a configuration (exit 0 or 2).
    Lint {
        #[arg(long)]
        config: String,
    },
    /// Generate a private JWK (ES256, ES384, EdDSA, HS256, HS384, HS512).
    Keygen {
        #[arg(long, default_value = "ES256")]
        alg: String,
        #[arg(long, default_value = "key-1")]
        kid: String,
    },
    /// Print the public JWKS of private JWK files.
    Jwks {
        #[arg(required = true)]
        keys: Vec<String>,
    },
    /// Sign claims into a token.
    Mint {
        /// Private JWK file.
        #[arg(long)]
        key: String,
        /// Claims JSON file (`-` for stdin).
        #[arg(long)]
        claims: String,
        /// Defaults to the key's `alg`.
        #[arg(long)]
        alg: Option<String>,
        /// Sets `iat` to now and `exp` to now + TTL seconds when the claims have no `exp`.
        #[arg(long)]
        ttl: Option<u64>,
        #[arg(long)]
        now: Option<f64>,
        /// Extra or overriding header members, as a JSON object file.
        #[arg(long)]
        header: Option<String>,
    },
    /// Show a token's header, claims and actor chain WITHOUT verifying anything.
    Decode { token: String },
}

fn read(path: &str) -> Result<String, String> {
    if path == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
            .map_err(|e| format!("stdin: {e}"))?;
        return Ok(s);
    }
    std::fs::read_to_string(path).map_err(|e| format!("`{path}`: {e}"))
}

fn now_or_clock(now: Option<f64>) -> Result<UnixTime, String> {
    match now {
        Some(secs) if secs.is_finite() && secs >= 0.0 => {
            Ok(UnixTime::from_millis((secs * 1000.0) as u64))
        }
        Some(_) => Err("`--now` must be a non-negative number of seconds".into()),
        None => SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| UnixTime::from_millis(d.as_millis() as u64))
            .map_err(|_| "the system clock is before 1970".into()),
    }
}

/// Writes one line to stdout. A closed pipe (`actwarden check … | head`) is not an error of
/// the decision: the exit code already says allow or deny.
fn emit(line: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}").and_then(|()| out.flush());
}

fn usage_error(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("actwarden: {msg}");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    std::panic::set_hook(Box::new(|info| {
        eprintln!("actwarden: internal error (a bug; please report it): {info}");
    }));
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(code) => code,
        Err(msg) => usage_error(msg),
    }
}

fn run(command: Command) -> Result<ExitCode, String> {
    let rng = SystemRandom::new();
    match command {
        Command::Check {
            config,
            request,
            now,
            jwks,
            explain,
        } => {
            let config_text = read(&config)?;
            let request_text = read(&request)?;
            let now = now_or_clock(now)?;
            let mut remote: HashMap<String, KeySet> = HashMap::new();
            for spec in jwks {
                let (name, file) = spec
                    .split_once('=')
                    .ok_or_else(|| format!("`--jwks {spec}`: expected NAME=FILE"))?;
                let set = parse_jwks(&read(file)?, KeySource::Fetched)
                    .map_err(|e| format!("`--jwks {name}`: {}{e}", path_prefix(&e.path())))?;
                remote.insert(name.to_owned(), set);
            }
            let policy = Policy::from_json_with_files(&config_text, &read_relative(&config))
                .map_err(|e| ApiError::Config(e).to_string())?;
            // `eval_us` covers what a gateway does per request: reading it and deciding.
            let started = Instant::now();
            let (decision, mut report) =
                decide_json(&policy, &request_text, now, &remote).map_err(|e| e.to_string())?;
            let elapsed = started.elapsed().as_micros() as u64;
            if let Some(obj) = report.as_object_mut() {
                obj.insert("eval_us".into(), elapsed.into());
                if explain {
                    let token = actwarden::Request::from_json(&request_text)
                        .ok()
                        .and_then(|r| actwarden::explain::find_token(&policy, &r));
                    // One member of its own: the audit record already has a `chain`.
                    obj.insert(
                        "explain".into(),
                        serde_json::json!({
                            "checks": actwarden::explain::checks(&policy, &decision),
                            "chain": actwarden::explain::chain(&policy, &decision, token.as_deref()),
                        }),
                    );
                }
            }
            emit(&report.to_string());
            Ok(if decision.allowed {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Command::Matrix { config, format } => matrix_command::run(&config, format),
        Command::Test {
            config,
            files,
            junit,
            now,
        } => test_command::run(test_command::TestArgs {
            config,
            files,
            junit,
            now,
        }),
        Command::Lint { config } => {
            let text = read(&config)?;
            let policy = Policy::from_json_with_files(&text, &read_relative(&config))
                .map_err(|e| format!("configuration: {e}"))?;
            for note in policy.notes() {
                eprintln!("actwarden: note: {note}");
            }
            emit("ok");
            Ok(ExitCode::SUCCESS)
        }
        Command::Keygen { alg, kid } => {
            let alg = parse_alg_str(&alg)?;
            let key = SigningKey::generate(alg, &kid, &rng).map_err(|e| e.to_string())?;
            emit(&key.private_jwk().to_string());
            Ok(ExitCode::SUCCESS)
        }
        Command::Jwks { keys } => {
            let loaded = keys
                .iter()
                .map(|k| {
                    SigningKey::from_jwk_json(&read(k)?, &rng).map_err(|e| format!("`{k}`: {e}"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            emit(&mint::public_jwks(&loaded.iter().collect::<Vec<_>>()).to_string());
            Ok(ExitCode::SUCCESS)
        }
        Command::Mint {
            key,
            claims,
            alg,
            ttl,
            now,
            header,
        } => {
            let key = SigningKey::from_jwk_json(&read(&key)?, &rng)
                .map_err(|e| format!("`--key`: {e}"))?;
            let mut claims: serde_json::Value =
                serde_json::from_str(&read(&claims)?).map_err(|e| format!("`--claims`: {e}"))?;
            if let (Some(ttl), Some(obj)) = (ttl, claims.as_object_mut()) {
                if !obj.contains_key("exp") {
                    let now = now_or_clock(now)?.secs();
                    obj.insert("iat".into(), now.into());
                    obj.insert("exp".into(), (now + ttl).into());
                }
            }
            let header = match header {
                None => None,
                Some(h) => match serde_json::from_str(&read(&h)?) {
                    Ok(serde_json::Value::Object(m)) => Some(m),
                    _ => return Err("`--header` must be a JSON object".into()),
                },
            };
            let alg = match alg {
                Some(a) => parse_alg_str(&a)?,
                None => key.default_alg(),
            };
            let token = key
                .mint(alg, &claims, header.as_ref(), &rng)
                .map_err(|e| e.to_string())?;
            emit(&token);
            Ok(ExitCode::SUCCESS)
        }
        Command::Decode { token } => {
            let report = actwarden::dangerous::decode_unverified(&token);
            emit(&serde_json::to_string_pretty(&report).unwrap_or_default());
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn path_prefix(path: &str) -> String {
    if path.is_empty() {
        String::new()
    } else {
        format!("{path}: ")
    }
}

/// `local_jwks.filename` is resolved relative to the configuration file's directory.
fn read_relative(config_path: &str) -> impl Fn(&str) -> Result<String, String> {
    let base = std::path::Path::new(config_path)
        .parent()
        .map(std::path::Path::to_path_buf)
        .unwrap_or_default();
    move |name: &str| {
        let path = base.join(name);
        std::fs::read_to_string(&path).map_err(|e| format!("`{}`: {e}", path.display()))
    }
}

fn parse_alg_str(name: &str) -> Result<Alg, String> {
    Alg::parse(name).map_err(|e| e.to_string())
}
