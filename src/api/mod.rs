//! JSON in, JSON out: the one entry point the CLI and the playground share, so that no host
//! holds decision logic of its own (cedar's pattern).

pub mod report;

use crate::core::config::{ConfigError, FileReader, Policy};
use crate::core::keys::KeySet;
use crate::core::pipeline::{decide, Context};
use crate::core::request::{Request, RequestError};
use crate::core::time::UnixTime;
use std::collections::HashMap;
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    Config(ConfigError),
    Request(RequestError),
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiError::Config(e) => write!(f, "configuration: {e}"),
            ApiError::Request(e) => write!(f, "request: {e}"),
        }
    }
}

impl std::error::Error for ApiError {}

/// Decides `request` (SPEC §7 `REQUEST.json`) under `config` (SPEC §2) at `now`, with
/// `remote_keys` standing in for fetched JWKS. Returns the decision and its JSON report.
pub fn check_json(
    config: &str,
    request: &str,
    now: UnixTime,
    remote_keys: &HashMap<String, KeySet>,
    read_file: FileReader<'_>,
) -> Result<(crate::Decision, serde_json::Value), ApiError> {
    let policy = Policy::from_json_with_files(config, read_file).map_err(ApiError::Config)?;
    decide_json(&policy, request, now, remote_keys)
}

/// Decides `request` under a policy loaded once (what a host that decides many requests,
/// or measures `eval_us`, calls).
pub fn decide_json(
    policy: &Policy,
    request: &str,
    now: UnixTime,
    remote_keys: &HashMap<String, KeySet>,
) -> Result<(crate::Decision, serde_json::Value), ApiError> {
    let request = Request::from_json(request).map_err(ApiError::Request)?;
    let ctx = Context {
        policy,
        remote_keys,
        crypto: &crate::core::verification::crypto::RING,
        cache: None,
    };
    let decision = decide(ctx, &request, now);
    let report = crate::api::report::decision_json(&decision);
    Ok((decision, report))
}
