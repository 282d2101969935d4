//! The `wasm_floor` benchmark filter: per request it reads the `authorization` header
//! and continues. Nothing else, so its cost in Envoy is the floor every proxy-wasm filter
//! pays (VM entry, a request context created and destroyed, one host call).
//!
//! Configured with `verify_es256` (the `wasm_floor_es256` bench configuration), each
//! request also asks the host to verify one fixed ES256 signature through the
//! `verify_signature` foreign function, the way actwarden's Envoy build does, and is
//! answered 500 if the host says no. Its cost over the floor's is what one host-verified
//! ES256 verification costs in the same run: the reference of issue 13's DPoP goal.

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};

// actwarden's start-up probe vector (a P-256 key, a message, its signature in DER).
#[path = "../../../src/hosts/envoy/signatures/probe.rs"]
#[allow(dead_code)] // OTHER_MESSAGE: the probe's wrong-message half is not needed here
mod probe;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Warn);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> {
        Box::new(FloorRoot { verify: None })
    });
}}

struct FloorRoot {
    /// The encoded `VerifySignatureArguments` when configured with `verify_es256`.
    verify: Option<std::rc::Rc<Vec<u8>>>,
}

impl Context for FloorRoot {}

impl RootContext for FloorRoot {
    fn on_configure(&mut self, _size: usize) -> bool {
        let configured = self.get_plugin_configuration().unwrap_or_default();
        self.verify = (configured == b"verify_es256").then(|| std::rc::Rc::new(arguments()));
        true
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Floor {
            verify: self.verify.clone(),
        }))
    }
}

struct Floor {
    verify: Option<std::rc::Rc<Vec<u8>>>,
}

impl Context for Floor {}

impl HttpContext for Floor {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        // Read, so the host call and the copy into the VM are not optimized away.
        let authorization = self.get_http_request_header("authorization");
        std::hint::black_box(authorization);
        if let Some(arguments) = &self.verify {
            let answer =
                proxy_wasm::hostcalls::call_foreign_function("verify_signature", Some(arguments));
            // `VerifySignatureResult { result: true }` is the two bytes 08 01.
            if !matches!(
                answer.as_ref().map(|a| a.as_deref()),
                Ok(Some([0x08, 0x01]))
            ) {
                self.send_http_response(500, vec![], Some(b"verify_signature said no"));
                return Action::Pause;
            }
        }
        Action::Continue
    }
}

/// `VerifySignatureArguments { hash_function: "sha256", public_key, signature, text }`.
fn arguments() -> Vec<u8> {
    let mut out = Vec::new();
    let fields: [(u8, &[u8]); 4] = [
        (1, b"sha256"),
        (2, probe::SPKI),
        (3, probe::SIGNATURE_DER),
        (4, probe::MESSAGE),
    ];
    for (field, bytes) in fields {
        out.push(field << 3 | 2);
        let mut len = bytes.len();
        while len >= 0x80 {
            out.push((len as u8 & 0x7f) | 0x80);
            len >>= 7;
        }
        out.push(len as u8);
        out.extend_from_slice(bytes);
    }
    out
}
