//! `Request::from_json` (SPEC §7 `REQUEST.json`) on any text. Invariants: header names
//! come out lower-cased; an error has a message; the request then decides under the
//! corpus's `main` policy without a panic.
#![no_main]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use actwarden::{decide, Context, NoRemoteKeys, Reason, Request, UnixTime, RING};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Request::from_json(text) {
        Ok(request) => {
            for (name, _) in &request.headers {
                assert_eq!(*name, name.to_ascii_lowercase());
            }
            let _ = request.path_only();
            let _ = request.is_grpc();
            let f = actwarden_fuzz::fixture();
            let ctx = Context {
                policy: &f.policies[0],
                remote_keys: &NoRemoteKeys,
                crypto: &RING,
                replay: &actwarden::MemoryWindow::new(),
                cache: None,
                shared: None,
            };
            let d = decide(ctx, &request, UnixTime::from_secs(actwarden_fuzz::NOW));
            assert!(Reason::ALL.contains(&d.reason()));
        }
        Err(e) => {
            assert!(!e.message().is_empty());
        }
    }
});
