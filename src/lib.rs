//! actwarden: decides whether an AI agent, acting for someone through a chain of
//! delegations, may make this request. One pure core (no clock, no I/O, no globals) under
//! three hosts: the Envoy proxy-wasm filter, the browser playground, and the CLI.
//!
//! Pipeline (SPEC §1) and where each step lives:
//! `config` (load + check) → `request` → `engine` (rule, token, verify, claims, chain,
//! revocation, binding, requirements) → `decision` (response, headers, audit).
//! Support: `token` (compact JWS), `jwk` (key sets), `crypto` (ring provider), `claims`,
//! `spiffe`, `json` (strict JSON), `limits` (every budget), `time`.

pub mod alg;
pub mod api;
pub mod b64;
pub mod claims;
pub mod config;
pub mod corpus;
pub mod crypto;
pub mod dangerous;
pub mod decision;
pub mod engine;
pub mod explain;
pub mod json;
pub mod jwk;
pub mod limits;
pub mod mint;
// Exploration for issue 5, not used by verification (see its module docs).
pub mod p256_verify;
pub mod path;
#[cfg(feature = "proxy")]
mod proxy;
pub mod reason;
pub mod remote_jwks;
pub mod report;
pub mod request;
pub mod spiffe;
pub mod time;
pub mod token;
pub mod token_cache;
#[cfg(feature = "web")]
pub mod web;

pub use config::{ConfigError, Policy};
pub use decision::{AuditRecord, Decision};
pub use engine::{decide, Context, NoRemoteKeys, RemoteKeys};
pub use reason::{Denial, Reason};
pub use request::Request;
pub use time::UnixTime;
