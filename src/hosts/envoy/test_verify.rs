//! TEST BUILDS ONLY (feature `test-hooks`, never in `dist/actwarden.wasm`): the
//! differential check of SPEC §13 through a real Envoy. A request to `PATH` carrying
//! `HEADER: {"alg", "jwk", "message", "signature"}` (message and signature base64url) is
//! verified by the backend the plugin chose at start — exactly the path a token takes —
//! and answered `{"valid", "backend"}`, or `{"loaded": false, "why"}` when the JWK is not
//! one actwarden loads. host-tests/envoy/tests/verify_backend.rs compares every answer
//! with ring's.

use super::abi::Action;
use super::host::Host;
use super::plugin::Plugin;
use crate::core::keys::alg::Alg;
use crate::core::keys::{parse_jwks, KeySource};
use crate::core::request::Request;
use crate::core::token::b64;
use serde_json::{json, Value};

const PATH: &str = "/__actwarden/test/verify";
const HEADER: &str = "x-actwarden-test-verify";

/// `Some` when this request was for the test route (and has been answered). Reads the
/// request the filter already read, so a test build's hot path makes no extra host call.
pub(crate) fn answer<H: Host>(plugin: &Plugin<H>, request: &Request) -> Option<Action> {
    if request.path != PATH {
        return None;
    }
    let body = request
        .single_header(HEADER)
        .map_or_else(|| json!({"error": "no test header"}), |v| verify(plugin, v));
    plugin.host.send_local_response(
        200,
        "actwarden_test_verify",
        &[("content-type", b"application/json")],
        body.to_string().as_bytes(),
        None,
    );
    Some(Action::Pause)
}

fn verify<H: Host>(plugin: &Plugin<H>, header: &str) -> Value {
    let request: Value = match serde_json::from_str(header) {
        Ok(v) => v,
        Err(e) => return json!({"error": e.to_string()}),
    };
    let field = |name: &str| {
        request
            .get(name)
            .and_then(Value::as_str)
            .unwrap_or_default()
    };
    let (Ok(alg), Some(message), Some(signature)) = (
        Alg::parse(field("alg")),
        b64::decode(field("message")),
        b64::decode(field("signature")),
    ) else {
        return json!({"error": "alg, message or signature"});
    };
    let jwks = json!({"keys": [request.get("jwk").cloned().unwrap_or_default()]});
    let key = match parse_jwks(&jwks.to_string(), KeySource::Configured) {
        Ok(set) => set.keys.into_iter().next(),
        Err(e) => return json!({"loaded": false, "why": e.to_string()}),
    };
    let Some(key) = key.filter(|k| k.fits(alg)) else {
        return json!({"loaded": false, "why": "skipped, or does not fit alg"});
    };
    let verifier = plugin.verifier();
    let (answer, backend) = verifier.verify_with_backend(alg, &key, &message, &signature);
    plugin.count_verifications(&verifier);
    json!({"valid": answer.is_valid(), "backend": backend.name()})
}
