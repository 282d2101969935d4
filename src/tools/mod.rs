//! What is not the decision: minting tokens for tests and demos, explaining a decision to
//! people, and looking inside a token without verifying it. Nothing here feeds `decide`.
// Safe Rust only (the fuzz targets run without AddressSanitizer on that ground): the
// one `unsafe` of the crate is the proxy-wasm host binding in `hosts/envoy/abi.rs`.
#![forbid(unsafe_code)]

pub(crate) mod decode;
pub mod explain;
pub mod matrix;
pub mod mint;
pub mod policy_test;
