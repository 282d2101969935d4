//! Harness for the actwarden end-to-end tests against a real Envoy.
//!
//! - [`paths`]: where Envoy and the wasm modules are (`ENVOY_BIN`, `ACTWARDEN_WASM`,
//!   `ACTWARDEN_TEST_WASM`, set by `make e2e-envoy`; a missing one is an error, never a
//!   skip) and a clean work directory per test under `target/e2e/`.
//! - [`bootstrap`]: Envoy bootstrap documents (JSON, which is YAML) with the actwarden filter.
//! - [`envoy`]: Envoy as a child process: readiness via admin `/ready`, listener ports via
//!   admin `/listeners`, its log captured to a file and parsed (`actwarden.audit {…}`
//!   lines), counters from `/stats`. Killed when dropped (also on panic) and when the thread
//!   that started it dies.
//! - [`http`]: a small HTTP/1.1 client and server over `std::net`.
//! - [`servers`]: the echo upstream (answers with the headers it received) and a
//!   controllable JWKS server (swap the document, serve garbage or an error, count fetches).
//! - [`fixtures`]: tokens minted now; one request through Envoy with its audit record.
//! - [`tls`]: the mTLS client (rustls, ring provider) and certificate digests.

pub mod bootstrap;
pub mod envoy;
pub mod fixtures;
pub mod http;
pub mod paths;
pub mod raw;
pub mod servers;
pub mod tls;

use std::fmt;

/// A harness failure, with enough context to act on it (which file, which port, the log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(pub String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error(format!("i/o: {e}"))
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error(format!("json: {e}"))
    }
}

impl From<rustls::Error> for Error {
    fn from(e: rustls::Error) -> Self {
        Error(format!("tls: {e}"))
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// `Err(Error(format!(…)))`.
#[macro_export]
macro_rules! fail {
    ($($arg:tt)*) => { Err($crate::Error(format!($($arg)*))) };
}
