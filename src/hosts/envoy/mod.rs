//! The Envoy / Istio host (feature `proxy`, target `wasm32-wasip1`): a proxy-wasm HTTP
//! filter over the core. It does I/O only — reading the request, the clock, shared data,
//! JWKS fetches, logs and counters — and holds no policy: every decision is `core::pipeline::decide`.
//!
//! - `root`: one per plugin configuration per worker VM. Loads the `Policy` once in
//!   `on_configure` (fail closed on error), owns keys, the token cache and counters, and
//!   runs the JWKS fetches on its ticks.
//! - `plugin`: what the root shares with its request contexts (same VM, so `Rc`).
//! - `filter`: one per request: reads the request, decides, answers or forwards.
//! - `jwks`: remote JWKS through Envoy shared data, one fetch per interval for all workers.
//! - `host`: the `Host` trait — every host call the filter makes, a host error as a value —
//!   and `ProxyWasmHost`, its zero-sized implementation over `abi`.
//! - `exports`: the callbacks the host calls (`proxy_on_*`), routed to the root or
//!   request context by id; only those the filter uses are exported, and nothing panics
//!   on an id it does not know.
//! - `abi`: the proxy-wasm ABI calls, every status a value, and its numbers; the crate's
//!   only `unsafe`. The filter does not use the `proxy-wasm` SDK crate: its calls and its
//!   dispatcher panic on what they do not expect (see `abi`).
//!   `Root`, `Plugin`, `Filter` and the JWKS code are generic over `H: Host` (static
//!   dispatch: the wasm build calls the host directly, as before).
//! - `replay`: the DPoP replay window (SPEC §10) in shared data, one for all workers.
//! - `metrics`: SPEC §8 counters.
//! - `shared_tokens`: SPEC §8, verified tokens shared by the worker VMs (shared data).
//! - `signatures`: SPEC §13, the signature backend: Envoy's BoringSSL through the
//!   `verify_signature` foreign function when the host offers it (probed at start), ring
//!   otherwise.
//!
//! A host call that fails never turns into an allow: unreadable headers or trailers, a
//! failed peer-certificate lookup, an identity header that cannot be removed or set, each
//! answers 500 (`actwarden_internal_error`).
//!
//! Tests: `fake` (`FakeHost`, test builds only) serves canned requests, properties, shared
//! data and call responses and records every call; `tests` drives the filter through it
//! (stripping, local replies, gRPC, parking for an unknown `kid`, the waiting cap,
//! configuration, host failures). host-tests/envoy runs the same paths in a real Envoy.

mod abi;
#[cfg(test)]
mod dpop_tests;
mod exports;
#[cfg(test)]
mod fake;
mod filter;
mod host;
mod jwks;
mod mcp;
#[cfg(test)]
mod mcp_tests;
mod metrics;
mod plugin;
mod replay;
mod root;
mod shared_tokens;
mod signatures;
#[cfg(feature = "test-hooks")]
mod test_verify;
#[cfg(test)]
mod tests;
