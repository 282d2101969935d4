//! Policy tests (SPEC §12, `actwarden test`): files of cases — a request, a time, what
//! must come out — run against one policy, so a policy change is reviewed like code.
//!
//! A file is `{"cases": [{"name", "request", "now"?, "remote_jwks"?, "expect"}]}`, every
//! object with `deny_unknown_fields`. Tokens in a request's headers may be literal or
//! minted when the case runs (`recipes`), so test files never expire. Two phases, so that
//! bad input is refused before anything runs: `load` parses a file and reads every key it
//! names (errors carry the JSON path), `run_case` mints, decides and compares (`expect`).
//! The host does the I/O: it passes a `FileReader` that resolves key paths.

mod expect;
mod junit;
mod recipes;

pub use expect::{Expectation, Mismatch};
pub use junit::{junit_xml, FileReport};
pub use recipes::{DpopSpec, HeaderSpec, MintSpec};

use crate::core::config::{FileReader, Policy};
use crate::core::dpop::MemoryWindow;
use crate::core::file::FileError;
use crate::core::keys::{parse_jwks, KeySet, KeySource};
use crate::core::request::Request;
use crate::core::time::UnixTime;
use crate::tools::mint::{self, MintError, SigningKey};
use ring::rand::SecureRandom;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::fmt;

/// A policy test file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestFile {
    pub cases: Vec<TestCase>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestCase {
    pub name: String,
    pub request: TestRequest,
    /// Unix seconds; defaults to the runner's time (`--now`, else the clock).
    #[serde(default)]
    pub now: Option<f64>,
    /// Keys a gateway would have fetched, per `remote_jwks` provider.
    #[serde(default)]
    pub remote_jwks: BTreeMap<String, JwksSpec>,
    pub expect: Expectation,
}

/// SPEC §7 `REQUEST.json`, with header values that may be minted.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestRequest {
    pub method: String,
    pub path: String,
    #[serde(default)]
    pub authority: Option<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, HeaderSpec>,
    #[serde(default)]
    pub peer: Option<Value>,
    /// SPEC §10: the request scheme (`REQUEST.json` default `https`).
    #[serde(default)]
    pub scheme: Option<String>,
    /// SPEC §9: an MCP message body, as text or (`body_base64`) as bytes.
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub body_base64: Option<String>,
}

/// A provider's fetched keys: a JWKS file, the public halves of private JWK files, or an
/// inline JWKS.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum JwksSpec {
    File(String),
    PrivateKeyFiles(Vec<String>),
    Inline(Map<String, Value>),
}

/// Input that cannot be used: the test file is refused before any case runs.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LoadError {
    /// Not JSON, a wrong type, an unknown or missing field (serde's message).
    Json { path: String, message: String },
    /// A key or JWKS file that cannot be read.
    File {
        path: String,
        file: String,
        why: FileError,
    },
    /// A key file that is not a private JWK this tool can sign with.
    Key {
        path: String,
        file: String,
        problem: MintError,
    },
    /// A JWKS (file or inline) that does not parse.
    Jwks { path: String, message: String },
    /// The request (with placeholder tokens) is not a valid `REQUEST.json`.
    Request { path: String, message: String },
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Json { path, message } => write!(f, "{}{message}", at(path)),
            LoadError::File { path, file, why } => {
                // The reader's error names the file itself; say it once.
                let why = match why {
                    FileError::Unreadable { message, .. } => message.clone(),
                    other => other.to_string(),
                };
                write!(f, "{}cannot read `{file}`: {why}", at(path))
            }
            LoadError::Key {
                path,
                file,
                problem,
            } => write!(f, "{}`{file}`: {problem}", at(path)),
            LoadError::Jwks { path, message } | LoadError::Request { path, message } => {
                write!(f, "{}{message}", at(path))
            }
        }
    }
}

impl std::error::Error for LoadError {}

fn at(path: &str) -> String {
    if path.is_empty() || path == "." {
        String::new()
    } else {
        format!("{path}: ")
    }
}

/// A case that was loaded but cannot run: named by the case.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CaseError {
    Mint { case: String, problem: MintError },
    UnknownAlgorithm { case: String, alg: String },
    Request { case: String, message: String },
}

impl fmt::Display for CaseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CaseError::Mint { case, problem } => {
                write!(f, "case `{case}`: cannot mint the token: {problem}")
            }
            CaseError::UnknownAlgorithm { case, alg } => {
                write!(
                    f,
                    "case `{case}`: cannot mint the token: `{alg}` is not an algorithm"
                )
            }
            CaseError::Request { case, message } => write!(f, "case `{case}`: {message}"),
        }
    }
}

impl std::error::Error for CaseError {}

/// A parsed file whose keys are read: ready to run.
pub struct LoadedFile {
    pub cases: Vec<TestCase>,
    /// Private keys by the path written in the file.
    keys: HashMap<String, SigningKey>,
    /// Fetched keys per case (index) and provider.
    remote: Vec<HashMap<String, KeySet>>,
    /// SPEC §10/§12: one DPoP replay window for all the cases of a file, in order.
    replay: MemoryWindow,
}

/// Parses a test file and reads every file it names through `read_file`.
pub fn load(
    text: &str,
    read_file: FileReader<'_>,
    rng: &dyn SecureRandom,
) -> Result<LoadedFile, LoadError> {
    let de = &mut serde_json::Deserializer::from_str(text);
    let file: TestFile = serde_path_to_error::deserialize(de).map_err(|e| LoadError::Json {
        path: e.path().to_string(),
        message: e.into_inner().to_string(),
    })?;
    let mut keys = HashMap::new();
    let mut remote = Vec::with_capacity(file.cases.len());
    for (i, case) in file.cases.iter().enumerate() {
        let path = format!("cases[{i}]");
        for (name, header) in &case.request.headers {
            let at = format!("{path}.request.headers.{name}");
            if let Some(key) = header.key_file() {
                load_key(&mut keys, &at, key, read_file, rng)?;
            }
        }
        check_request(&path, &case.request)?;
        remote.push(load_remote(&path, case, read_file, rng)?);
    }
    Ok(LoadedFile {
        cases: file.cases,
        keys,
        remote,
        replay: MemoryWindow::new(),
    })
}

fn load_key(
    keys: &mut HashMap<String, SigningKey>,
    path: &str,
    file: &str,
    read_file: FileReader<'_>,
    rng: &dyn SecureRandom,
) -> Result<(), LoadError> {
    if keys.contains_key(file) {
        return Ok(());
    }
    let key = read_signing_key(path, file, read_file, rng)?;
    keys.insert(file.to_owned(), key);
    Ok(())
}

fn read_signing_key(
    path: &str,
    file: &str,
    read_file: FileReader<'_>,
    rng: &dyn SecureRandom,
) -> Result<SigningKey, LoadError> {
    let text = read_file(file).map_err(|why| LoadError::File {
        path: path.to_owned(),
        file: file.to_owned(),
        why,
    })?;
    SigningKey::from_jwk_json(&text, rng).map_err(|problem| LoadError::Key {
        path: path.to_owned(),
        file: file.to_owned(),
        problem,
    })
}

/// The request must be a valid `REQUEST.json` once its tokens are minted: checked now,
/// with a placeholder for each minted value.
fn check_request(path: &str, request: &TestRequest) -> Result<(), LoadError> {
    let json = request_json(request, |_| Value::String("placeholder".into()));
    Request::from_json(&json.to_string()).map_err(|e| LoadError::Request {
        path: if e.path().is_empty() {
            format!("{path}.request")
        } else {
            format!("{path}.request.{}", e.path())
        },
        message: e.message(),
    })?;
    Ok(())
}

/// `REQUEST.json` with each minted header value replaced by `minted(header)`.
fn request_json(request: &TestRequest, mut minted: impl FnMut(&HeaderSpec) -> Value) -> Value {
    let headers: Map<String, Value> = request
        .headers
        .iter()
        .map(|(name, spec)| (name.clone(), spec.literal().unwrap_or_else(|| minted(spec))))
        .collect();
    let mut out = Map::new();
    out.insert("method".into(), Value::String(request.method.clone()));
    out.insert("path".into(), Value::String(request.path.clone()));
    if let Some(authority) = &request.authority {
        out.insert("authority".into(), Value::String(authority.clone()));
    }
    out.insert("headers".into(), Value::Object(headers));
    if let Some(peer) = &request.peer {
        out.insert("peer".into(), peer.clone());
    }
    for (name, value) in [
        ("scheme", &request.scheme),
        ("body", &request.body),
        ("body_base64", &request.body_base64),
    ] {
        if let Some(v) = value {
            out.insert(name.into(), Value::String(v.clone()));
        }
    }
    Value::Object(out)
}

fn load_remote(
    path: &str,
    case: &TestCase,
    read_file: FileReader<'_>,
    rng: &dyn SecureRandom,
) -> Result<HashMap<String, KeySet>, LoadError> {
    let mut out = HashMap::new();
    for (provider, spec) in &case.remote_jwks {
        let at = format!("{path}.remote_jwks.{provider}");
        let text = match spec {
            JwksSpec::Inline(jwks) => Value::Object(jwks.clone()).to_string(),
            JwksSpec::File(file) => read_file(file).map_err(|why| LoadError::File {
                path: at.clone(),
                file: file.clone(),
                why,
            })?,
            JwksSpec::PrivateKeyFiles(files) => {
                let keys = files
                    .iter()
                    .enumerate()
                    .map(|(j, f)| read_signing_key(&format!("{at}[{j}]"), f, read_file, rng))
                    .collect::<Result<Vec<_>, _>>()?;
                mint::public_jwks(&keys.iter().collect::<Vec<_>>()).to_string()
            }
        };
        let set = parse_jwks(&text, KeySource::Fetched).map_err(|e| LoadError::Jwks {
            path: at.clone(),
            message: e.to_string(),
        })?;
        out.insert(provider.clone(), set);
    }
    Ok(out)
}

/// What one case gave: its name and every way it differed from `expect` (empty: passed).
#[derive(Debug, Clone)]
pub struct CaseReport {
    pub name: String,
    pub mismatches: Vec<Mismatch>,
    /// The decision report (what `actwarden check` prints), for people debugging a case.
    pub report: Value,
}

impl CaseReport {
    pub fn passed(&self) -> bool {
        self.mismatches.is_empty()
    }
}

/// Runs case `index` of `file` under `policy` at its `now` (else `default_now`).
pub fn run_case(
    policy: &Policy,
    file: &LoadedFile,
    index: usize,
    default_now: UnixTime,
    rng: &dyn SecureRandom,
) -> Result<CaseReport, CaseError> {
    let (Some(case), Some(remote)) = (file.cases.get(index), file.remote.get(index)) else {
        return Err(CaseError::Request {
            case: format!("#{index}"),
            message: "no such case".into(),
        });
    };
    let now = case
        .now
        .filter(|n| n.is_finite() && *n >= 0.0)
        .map_or(default_now, UnixTime::from_secs_f64);
    let request = recipes::materialize(case, &file.keys, now, rng)?;
    let request_text = request.to_string();
    let out = crate::api::check(crate::api::CheckInput {
        policy: crate::api::PolicySource::Loaded(policy),
        request: &request_text,
        now,
        remote_keys: remote,
        explain: false,
        clock: None,
        replay: Some(&file.replay),
        mcp_response: None,
    })
    .map_err(|e| CaseError::Request {
        case: case.name.clone(),
        message: e.to_string(),
    })?;
    let report = out.report;
    Ok(CaseReport {
        name: case.name.clone(),
        mismatches: expect::compare(&case.expect, &report),
        report,
    })
}

#[cfg(test)]
mod tests;
