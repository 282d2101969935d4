//! The decision core: pure (no clock, no I/O, no globals, no panics on input). Its modules
//! are the steps of SPEC §1, declared here in the order a request meets them:
//!
//! ```text
//! config ─► request ─► rules (match) ─► token (extract, parse) ─► keys ─► verification
//!        ─► claims ─► chain ─► revocation ─► binding ─► rules (require)
//!        ─► decision {verdict, response, identity headers} + audit record
//! ```
//!
//! `pipeline::decide` runs them in that order; `reasons` names every way a request can be
//! refused, `limits` every budget on untrusted input, `time` the only notion of "now",
//! `trace` the record of the checks a decision ran (`decide_traced`, for explanations), and
//! `file` how a host that has files lends them to the configuration.

pub(crate) mod audit;
pub(crate) mod binding;
pub(crate) mod chain;
pub(crate) mod claims;
pub(crate) mod config;
pub(crate) mod decision;
pub(crate) mod file;
pub(crate) mod keys;
pub(crate) mod pipeline;
pub(crate) mod request;
pub(crate) mod revocation;
pub(crate) mod rules;
pub(crate) mod token;
pub(crate) mod verification;

pub(crate) mod limits;
pub(crate) mod reasons;
pub(crate) mod time;
pub(crate) mod trace;
