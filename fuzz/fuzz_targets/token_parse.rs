//! `dangerous::split` and `dangerous::parse_unverified` on any text, and decoding for
//! people (`decode_unverified`). Invariants: a split token's signing input is the text
//! before the last dot; a parsed token is a split one whose payload is a JSON object.
#![no_main]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use actwarden::dangerous::{parse_unverified, split};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let split_result = split(text);
    if let Ok(jws) = &split_result {
        assert!(text.starts_with(jws.signing_input));
        assert_eq!(
            text.matches('.').count(),
            2,
            "a compact JWS has exactly two dots"
        );
        assert_eq!(jws.signing_input.matches('.').count(), 1);
    }
    match parse_unverified(text) {
        Ok(token) => {
            let jws = split_result.expect("parse succeeded where split failed");
            assert_eq!(jws.payload, token.jws.payload);
            let again: serde_json::Value = serde_json::from_slice(&token.jws.payload).unwrap();
            assert!(again.is_object());
        }
        Err(problem) => {
            let _ = problem.describe();
        }
    }
    let _ = actwarden::dangerous::decode_unverified(text);
});
