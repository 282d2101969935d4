//! What is not the decision: minting tokens for tests and demos, explaining a decision to
//! people, and looking inside a token without verifying it. Nothing here feeds `decide`.

pub(crate) mod decode;
pub mod explain;
pub mod matrix;
pub mod mint;
pub mod policy_test;
