//! The whole decision: a request built with `arbitrary` (method, path, headers with
//! spoofed `x-agent-*`, an authorization with a token over fuzz-chosen claims signed by a
//! fixed corpus key — or forged, altered, repeated —, peer, time) under the corpus's fixed
//! policies. Invariants: `actwarden_fuzz::check_decision` (reason in `Reason::ALL`, deny ⇒
//! response, identity in the audit only from a verified token, x-agent-* stripped, the
//! audit line one line of JSON as serde writes it, never the raw token; the cache never
//! changes a decision).
#![no_main]

use actwarden_fuzz::{decide_and_check, RequestIn};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: RequestIn| {
    decide_and_check(&input);
});
