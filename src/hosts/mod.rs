//! The hosts: thin adapters that translate between a runtime and the core. They read
//! requests, clocks and keys, and write responses, logs and counters; they hold no policy.
//! The CLI (`src/bin/actwarden.rs`) is the third host.

#[cfg(feature = "proxy")]
mod envoy;
#[cfg(feature = "web")]
// wasm-bindgen exports are the JS API, public whatever Rust sees.
#[allow(unreachable_pub)]
pub mod web;
