//! `actwarden`: the core on the command line (SPEC §7). Exit 0 allow, 1 deny, 2 usage or
//! configuration error. All decisions are made by the library; this file only does I/O.

use actwarden::api::{self, ApiError, CheckInput, PolicySource};
use actwarden::mint::{self, MintError, SigningKey};
use actwarden::{parse_jwks, JwksError, KeySet, KeySource};
use actwarden::{Alg, FileError, UnknownAlg};
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
        /// The upstream's response to this request (a `tools/list`; JSON, or SSE when it
        /// does not start with `{`): adds `filtered_response`, what the gateway passes on.
        #[arg(long = "mcp-response", value_name = "FILE")]
        mcp_response: Option<String>,
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
    /// Print the RFC 9728 protected-resource metadata the gateway serves (SPEC §9).
    Metadata {
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
        /// Binds the token to this key for DPoP: sets `cnf.jkt` to the RFC 7638 thumbprint
        /// of the JWK in this file (public or private).
        #[arg(long, value_name = "KEYFILE")]
        cnf_jkt_of: Option<String>,
    },
    /// Print a DPoP proof (RFC 9449) for one request, signed with a private JWK.
    DpopProof {
        /// Private JWK file: the agent's DPoP key.
        #[arg(long)]
        key: String,
        /// The request method (`htm`).
        #[arg(long)]
        htm: String,
        /// The request URI (`htu`), e.g. `https://api.example.com/v1/payments`.
        #[arg(long)]
        htu: String,
        /// The access token the proof goes with (its hash becomes `ath`).
        #[arg(long)]
        token: Option<String>,
        /// `iat`, Unix seconds; defaults to the system clock.
        #[arg(long)]
        now: Option<f64>,
        /// Defaults to a random 128-bit value.
        #[arg(long)]
        jti: Option<String>,
        /// Defaults to the key's `alg`.
        #[arg(long)]
        alg: Option<String>,
    },
    /// Show a token's header, claims and actor chain WITHOUT verifying anything.
    Decode { token: String },
}

fn read(path: &str) -> Result<String, CliError> {
    if path == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s).map_err(|e| {
            FileError::StdinUnreadable {
                kind: e.kind(),
                message: e.to_string(),
            }
        })?;
        return Ok(s);
    }
    Ok(std::fs::read_to_string(path).map_err(|e| FileError::io(path, &e))?)
}

fn now_or_clock(now: Option<f64>) -> Result<UnixTime, CliError> {
    match now {
        Some(secs) if secs.is_finite() && secs >= 0.0 => Ok(UnixTime::from_secs_f64(secs)),
        Some(_) => Err(CliError::NowInvalid),
        None => SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| UnixTime::from_millis(d.as_millis() as u64))
            .map_err(|_| CliError::ClockBeforeEpoch),
    }
}

/// Why the CLI stops with exit 2: each says what was wrong and where (the file, the flag,
/// the JSON path), as the message on stderr does.
#[derive(Debug)]
#[non_exhaustive]
enum CliError {
    File(FileError),
    /// The configuration (`check`: or the request) cannot be used.
    Api(ApiError),
    NowInvalid,
    ClockBeforeEpoch,
    /// `--jwks` without `NAME=FILE`.
    JwksSpec {
        spec: String,
    },
    Jwks {
        name: String,
        error: JwksError,
    },
    UnknownAlg(UnknownAlg),
    /// A private JWK that cannot be used; `source` says where it came from.
    Key {
        source: String,
        error: MintError,
    },
    Mint(MintError),
    ClaimsNotJson(String),
    HeaderNotObject,
    /// `matrix --format json` could not render (serde_json's error).
    Render(serde_json::Error),
    /// `test`: a test file refused as a whole before any case runs.
    TestFile {
        file: String,
        error: Box<actwarden::policy_test::LoadError>,
    },
    /// `test`: a loaded case that cannot run (its token cannot be minted, …).
    TestCase {
        file: String,
        error: actwarden::policy_test::CaseError,
    },
    /// `test --junit OUT`: the report cannot be written.
    Junit {
        out: String,
        error: std::io::Error,
    },
    /// `metadata` for a configuration without `mcp.resource`.
    NoResource,
}

impl From<CliError> for String {
    fn from(e: CliError) -> Self {
        e.to_string()
    }
}

impl From<FileError> for CliError {
    fn from(e: FileError) -> Self {
        CliError::File(e)
    }
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CliError::File(e) => e.fmt(f),
            CliError::Api(e) => e.fmt(f),
            CliError::NowInvalid => f.write_str("`--now` must be a non-negative number of seconds"),
            CliError::ClockBeforeEpoch => f.write_str("the system clock is before 1970"),
            CliError::JwksSpec { spec } => write!(f, "`--jwks {spec}`: expected NAME=FILE"),
            CliError::Jwks { name, error } => {
                write!(f, "`--jwks {name}`: {}{error}", path_prefix(&error.path()))
            }
            CliError::UnknownAlg(e) => e.fmt(f),
            CliError::Key { source, error } => write!(f, "{source}: {error}"),
            CliError::Mint(e) => e.fmt(f),
            CliError::ClaimsNotJson(e) => write!(f, "`--claims`: {e}"),
            CliError::HeaderNotObject => f.write_str("`--header` must be a JSON object"),
            CliError::Render(e) => write!(f, "cannot render the matrix: {e}"),
            CliError::TestFile { file, error } => write!(f, "`{file}`: {error}"),
            CliError::TestCase { file, error } => write!(f, "`{file}`: {error}"),
            CliError::Junit { out, error } => write!(f, "`--junit {out}`: {error}"),
            CliError::NoResource => f.write_str(
                "the configuration has no `mcp.resource`: there is no metadata to serve",
            ),
        }
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

fn run(command: Command) -> Result<ExitCode, CliError> {
    match command {
        Command::Check {
            config,
            request,
            now,
            jwks,
            explain,
            mcp_response,
        } => check(
            &config,
            &request,
            now,
            &jwks,
            explain,
            mcp_response.as_deref(),
        ),
        Command::Lint { config } => lint(&config),
        Command::Metadata { config } => metadata(&config),
        Command::Keygen { alg, kid } => keygen(&alg, &kid),
        Command::Jwks { keys } => public_jwks(&keys),
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
        Command::Mint {
            key,
            claims,
            alg,
            ttl,
            now,
            header,
            cnf_jkt_of,
        } => mint_token(
            &key,
            &claims,
            alg.as_deref(),
            ttl,
            now,
            header.as_deref(),
            cnf_jkt_of.as_deref(),
        ),
        Command::DpopProof {
            key,
            htm,
            htu,
            token,
            now,
            jti,
            alg,
        } => dpop_proof(
            &key,
            &mint::ProofClaims {
                htm: &htm,
                htu: &htu,
                iat: now_or_clock(now)?.secs(),
                jti: jti.as_deref(),
                access_token: token.as_deref(),
            },
            alg.as_deref(),
        ),
        Command::Decode { token } => {
            let report = actwarden::dangerous::decode_unverified(&token);
            emit(&serde_json::to_string_pretty(&report).unwrap_or_default());
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `check`: one request decided by `api::check`, printed as one line; exit 0 or 1.
fn check(
    config: &str,
    request: &str,
    now: Option<f64>,
    jwks: &[String],
    explain: bool,
    mcp_response: Option<&str>,
) -> Result<ExitCode, CliError> {
    let config_text = read(config)?;
    let request_text = read(request)?;
    let mcp_response = match mcp_response {
        None => None,
        Some(path) => Some(std::fs::read(path).map_err(|e| FileError::io(path, &e))?),
    };
    let now = now_or_clock(now)?;
    let remote = remote_keys(jwks)?;
    let origin = Instant::now();
    let clock = move || origin.elapsed().as_micros() as u64;
    let out = api::check(CheckInput {
        policy: PolicySource::Text {
            config: &config_text,
            read_file: &read_relative(config),
        },
        request: &request_text,
        now,
        remote_keys: &remote,
        explain,
        clock: Some(&clock),
        // One request per run: the window of this decision only (SPEC §10).
        replay: None,
        mcp_response: mcp_response.as_deref(),
    })
    .map_err(CliError::Api)?;
    let mut report = out.report;
    if let (Some(obj), Some(explain)) = (report.as_object_mut(), out.explain) {
        // One member of its own: the audit record already has a `chain`.
        obj.insert("explain".into(), explain);
    }
    emit(&report.to_string());
    Ok(if out.decision.is_allowed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `--jwks NAME=FILE`…: the keys a gateway would have fetched (the CLI never fetches).
fn remote_keys(specs: &[String]) -> Result<HashMap<String, KeySet>, CliError> {
    let mut remote = HashMap::new();
    for spec in specs {
        let (name, file) = spec
            .split_once('=')
            .ok_or_else(|| CliError::JwksSpec { spec: spec.clone() })?;
        let set = parse_jwks(&read(file)?, KeySource::Fetched).map_err(|error| CliError::Jwks {
            name: name.to_owned(),
            error,
        })?;
        remote.insert(name.to_owned(), set);
    }
    Ok(remote)
}

fn lint(config: &str) -> Result<ExitCode, CliError> {
    let text = read(config)?;
    let policy = Policy::from_json_with_files(&text, &read_relative(config))
        .map_err(|e| CliError::Api(ApiError::Config(e)))?;
    for note in policy.notes() {
        eprintln!("actwarden: note: {note}");
    }
    for warning in actwarden::mcp::warnings(&policy) {
        eprintln!("actwarden: warning: {warning}");
    }
    emit("ok");
    Ok(ExitCode::SUCCESS)
}

/// `metadata`: the RFC 9728 document (exit 2 without `mcp.resource`).
fn metadata(config: &str) -> Result<ExitCode, CliError> {
    let text = read(config)?;
    let policy = Policy::from_json_with_files(&text, &read_relative(config))
        .map_err(|e| CliError::Api(ApiError::Config(e)))?;
    match actwarden::mcp::metadata_document(&policy) {
        Some(doc) => {
            emit(&serde_json::to_string_pretty(&doc).unwrap_or_default());
            Ok(ExitCode::SUCCESS)
        }
        None => Err(CliError::NoResource),
    }
}

fn keygen(alg: &str, kid: &str) -> Result<ExitCode, CliError> {
    let alg = Alg::parse(alg).map_err(CliError::UnknownAlg)?;
    let key = SigningKey::generate(alg, kid, &SystemRandom::new()).map_err(CliError::Mint)?;
    emit(&key.private_jwk().to_string());
    Ok(ExitCode::SUCCESS)
}

fn public_jwks(keys: &[String]) -> Result<ExitCode, CliError> {
    let rng = SystemRandom::new();
    let loaded = keys
        .iter()
        .map(|k| {
            SigningKey::from_jwk_json(&read(k)?, &rng).map_err(|error| CliError::Key {
                source: format!("`{k}`"),
                error,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    emit(&mint::public_jwks(&loaded.iter().collect::<Vec<_>>()).to_string());
    Ok(ExitCode::SUCCESS)
}

fn mint_token(
    key: &str,
    claims: &str,
    alg: Option<&str>,
    ttl: Option<u64>,
    now: Option<f64>,
    header: Option<&str>,
    cnf_jkt_of: Option<&str>,
) -> Result<ExitCode, CliError> {
    let rng = SystemRandom::new();
    let key = SigningKey::from_jwk_json(&read(key)?, &rng).map_err(|error| CliError::Key {
        source: "`--key`".to_owned(),
        error,
    })?;
    let mut claims: serde_json::Value =
        serde_json::from_str(&read(claims)?).map_err(|e| CliError::ClaimsNotJson(e.to_string()))?;
    if let (Some(ttl), Some(obj)) = (ttl, claims.as_object_mut()) {
        if !obj.contains_key("exp") {
            let now = now_or_clock(now)?.secs();
            obj.insert("iat".into(), now.into());
            obj.insert("exp".into(), (now + ttl).into());
        }
    }
    if let Some(file) = cnf_jkt_of {
        let jwk: serde_json::Value =
            serde_json::from_str(&read(file)?).map_err(|_| CliError::Key {
                source: "`--cnf-jkt-of`".to_owned(),
                error: MintError::NotJson,
            })?;
        let jkt = mint::jwk_thumbprint(&jwk).ok_or(CliError::Key {
            source: "`--cnf-jkt-of`".to_owned(),
            error: MintError::NotAPrivateKey("an EC, OKP or RSA JWK is needed for a thumbprint"),
        })?;
        let obj = claims
            .as_object_mut()
            .ok_or(CliError::Mint(MintError::ClaimsNotAnObject))?;
        let cnf = obj.entry("cnf").or_insert_with(|| serde_json::json!({}));
        match cnf.as_object_mut() {
            Some(cnf) => cnf.insert("jkt".into(), jkt.into()),
            None => return Err(CliError::Mint(MintError::ClaimsNotAnObject)),
        };
    }
    let header = match header {
        None => None,
        Some(h) => match serde_json::from_str(&read(h)?) {
            Ok(serde_json::Value::Object(m)) => Some(m),
            _ => return Err(CliError::HeaderNotObject),
        },
    };
    let alg = match alg {
        Some(a) => Alg::parse(a).map_err(CliError::UnknownAlg)?,
        None => key.default_alg(),
    };
    let token = key
        .mint(alg, &claims, header.as_ref(), &rng)
        .map_err(CliError::Mint)?;
    emit(&token);
    Ok(ExitCode::SUCCESS)
}

/// `dpop-proof`: one proof on stdout.
fn dpop_proof(
    key: &str,
    claims: &mint::ProofClaims<'_>,
    alg: Option<&str>,
) -> Result<ExitCode, CliError> {
    let rng = SystemRandom::new();
    let key = SigningKey::from_jwk_json(&read(key)?, &rng).map_err(|error| CliError::Key {
        source: "`--key`".to_owned(),
        error,
    })?;
    let alg = match alg {
        Some(a) => Alg::parse(a).map_err(CliError::UnknownAlg)?,
        None => key.default_alg(),
    };
    let proof = key.dpop_proof(alg, claims, &rng).map_err(CliError::Mint)?;
    emit(&proof);
    Ok(ExitCode::SUCCESS)
}

fn path_prefix(path: &str) -> String {
    if path.is_empty() {
        String::new()
    } else {
        format!("{path}: ")
    }
}

/// `local_jwks.filename` is resolved relative to the configuration file's directory.
fn read_relative(config_path: &str) -> impl Fn(&str) -> Result<String, FileError> {
    let base = std::path::Path::new(config_path)
        .parent()
        .map(std::path::Path::to_path_buf)
        .unwrap_or_default();
    move |name: &str| {
        let path = base.join(name);
        std::fs::read_to_string(&path).map_err(|e| FileError::io(path, &e))
    }
}
