//! `Policy::from_json` on any text. Invariants: an error names a JSON path or a message;
//! a loaded policy decides a fixed request without a token (no panic, a valid reason).
#![no_main]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use actwarden::{decide, Context, NoRemoteKeys, Policy, Reason, Request, UnixTime, RING};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Policy::from_json(text) {
        Err(e) => {
            assert!(!e.to_string().is_empty());
        }
        Ok(policy) => {
            let _ = policy.notes();
            let _ = actwarden::matrix::to_markdown(&actwarden::matrix::matrix(&policy));
            for (method, path) in [("GET", "/healthz"), ("POST", "/v1/payments"), ("GET", "/")] {
                let request = Request {
                    method: method.into(),
                    path: path.into(),
                    ..Request::default()
                };
                let ctx = Context {
                    policy: &policy,
                    remote_keys: &NoRemoteKeys,
                    crypto: &RING,
                    replay: &actwarden::MemoryWindow::new(),
                    cache: None,
                    shared: None,
                };
                let d = decide(ctx, &request, UnixTime::from_secs(1_800_000_000));
                assert!(Reason::ALL.contains(&d.reason()));
                assert_eq!(d.is_allowed(), d.response().is_none());
            }
        }
    }
});
