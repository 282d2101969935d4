//! The decision core: pure (no clock, no I/O, no globals, no panics on input). Its modules
//! are the steps of SPEC §1, declared here in the order a request meets them:
//!
//! ```text
//! config ─► request ─► rules (match) ─► token (extract, parse) ─► keys ─► verification
//!        ─► claims ─► chain ─► revocation ─► dpop ─► binding ─► rules (require)
//!        ─► decision {verdict, response, identity headers} + audit record
//! ```
//!
//! `pipeline::decide` runs them in that order; `reasons` names every way a request can be
//! refused, `limits` every budget on untrusted input, `time` the only notion of "now",
//! `trace` the record of the checks a decision ran (`decide_traced`, for explanations), and
//! `file` how a host that has files lends them to the configuration.
// Safe Rust only (the fuzz targets run without AddressSanitizer on that ground): the
// one `unsafe` of the crate is the proxy-wasm host binding in `hosts/envoy/abi.rs`.
#![forbid(unsafe_code)]

// The steps, in the order a request meets them (rustfmt keeps this order: one group each).
/// 1. The configuration, loaded and checked once.
pub(crate) mod config;

/// 2. The request as the core sees it.
pub(crate) mod request;

/// 3. Which rule applies (match), and later its `require` block.
pub(crate) mod rules;

/// 4. Finding the token and reading it as a compact JWS (nothing trusted yet).
pub(crate) mod token;

/// 5. Key sets and algorithms.
pub(crate) mod keys;

/// 6. Provider, `typ`, `alg`, `kid`, signature (and the verified-token cache).
pub(crate) mod verification;

/// 7. Typed standard claims, audience and time.
pub(crate) mod claims;

/// 8. The delegation chain and effective scopes.
pub(crate) mod chain;

/// 9. Revocation lists.
pub(crate) mod revocation;

/// 8 remembered: a verified token's chain outcome, effective scopes and identity
/// headers, worked out once per cache entry.
pub(crate) mod standing;

pub(crate) mod binding;
/// 10. Binding to the caller: DPoP proofs first (SPEC §10), then certificate and peer.
pub(crate) mod dpop;

/// 11. The verdict, the deny response, the identity headers.
pub(crate) mod decision;

/// 12. The audit record.
pub(crate) mod audit;

/// MCP messages (SPEC §9): read before step 1, matched in 3, argument conditions in
/// step 8; discovery metadata and `tools/list` filtering around the decision.
pub(crate) mod mcp;

/// Runs 1–12 in order.
pub(crate) mod pipeline;

// Around the steps.
pub(crate) mod file;
pub(crate) mod limits;
pub(crate) mod reasons;
pub(crate) mod time;
pub(crate) mod trace;
