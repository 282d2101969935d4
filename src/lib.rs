//! actwarden: decides whether an AI agent, acting for someone through a chain of
//! delegations, may make this request. One pure core (no clock, no I/O, no globals) under
//! three hosts: the Envoy proxy-wasm filter, the browser playground, and the CLI.
//!
//! The tree is the design:
//! - `core/`: the pipeline of SPEC §1, one module per step, declared in `core/mod.rs` in
//!   the order a request meets them; `decide` runs the whole of it.
//! - `api/`: JSON in, JSON out — the one entry the CLI and the playground share.
//! - `tools/`: minting, explaining, decoding without verification (not the decision).
//! - `hosts/`: the Envoy filter and the playground bindings; `bin/actwarden.rs` is the CLI.
//!
//! This file is the public facade: the modules are private, and what a library user needs
//! is re-exported here.

#![warn(unreachable_pub)]

mod core;
mod hosts;
mod tools;

pub mod api;

pub use crate::core::config::{
    AuditLog, ConfigError, ConfigProblem, Mode, Policy, ProviderName, RuleId, SyntaxProblem,
};
pub use crate::core::config::{DpopConfig, DpopMode};
pub use crate::core::decision::{
    AuditRecord, BindingOutcome, Decision, DenyResponse, IdentityHeaders, Verdict,
};
pub use crate::core::dpop::{Admission, MemoryWindow, ProofProblem, ReplayEntry, ReplayWindow};
pub use crate::core::file::{FileError, FileReader};
pub use crate::core::keys::alg::{Alg, AlgName, UnknownAlg};
pub use crate::core::keys::{
    parse_jwks, JwksError, KeySet, KeySource, NoRemoteKeys, RemoteKeys, VerificationKey,
};
pub use crate::core::pipeline::{decide, decide_traced, Context};
pub use crate::core::reasons::{Denial, DpopRequiredBecause, Reason};
pub use crate::core::request::{Peer, Request, RequestError};
pub use crate::core::time::UnixTime;
pub use crate::core::trace::{Check, Outcome, Step, Trace};
pub use crate::core::verification::backend::{SignatureVerifier, Verification};
pub use crate::core::verification::cache::TokenCache;
pub use crate::core::verification::crypto::RING;
pub use crate::core::verification::shared::{SharedTokens, SharedVerified};

/// MCP (SPEC §9): which requests need their body read, the RFC 9728 metadata document, and
/// `tools/list` filtering as a pure function over the response.
pub mod mcp {
    pub use crate::core::mcp::config::warnings;
    pub use crate::core::mcp::message::needs_body;
    /// The facts of one MCP message body (the pipeline reads it before step 1; exposed for
    /// fuzzing and tools).
    pub use crate::core::mcp::message::parse as parse_message;
    pub use crate::core::mcp::metadata::{document as metadata_document, Location};
    pub use crate::core::mcp::{
        filter_tools_list, ArgumentCondition, ArgumentTest, BodyKind, FilteredResponse, McpConfig,
        McpConfigProblem, McpFacts, McpMatch, McpProblem, Unfilterable, UNFILTERABLE_BODY,
        UNFILTERABLE_STATUS,
    };
}

/// Making keys and tokens for tests, scripts and demos (`actwarden mint`, the playground).
pub use crate::tools::mint;

/// Views of a decision for people: the checks the pipeline recorded, in order, and the
/// delegation chain.
pub use crate::tools::explain;

/// The auth matrix of a policy (SPEC §12), as data (JSON) and as markdown.
pub use crate::tools::matrix;

/// Policy test files (SPEC §12, `actwarden test`): load, run a case, JUnit XML.
pub use crate::tools::policy_test;

/// Risky on purpose: reading a token without verifying it, and checking one JWS signature
/// outside the pipeline (for external test suites such as Wycheproof). Nothing here may
/// feed a decision.
pub mod dangerous {
    /// One DPoP proof's checks of SPEC §10 (no replay window, no token), and the `htu`
    /// comparison form: for fuzzing and external suites.
    pub use crate::core::dpop::{
        normalize_htu, request_htu, verify_proof as verify_dpop_proof, AcceptedProof, ExpectedProof,
    };
    pub use crate::core::token::{parse as parse_unverified, split, Header, Jws, TokenProblem};
    pub use crate::core::verification::crypto::verify_with;
    pub use crate::core::verification::{candidate_keys, verify_signature, SignatureFailure};
    pub use crate::tools::decode::decode_unverified;
}
