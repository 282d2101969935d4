//! The `wasm_floor` benchmark filter: per request it reads the `authorization` header
//! and continues. Nothing else, so its cost in Envoy is the floor every proxy-wasm filter
//! pays (VM entry, a request context created and destroyed, one host call).

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Warn);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(FloorRoot) });
}}

struct FloorRoot;

impl Context for FloorRoot {}

impl RootContext for FloorRoot {
    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Floor))
    }
}

struct Floor;

impl Context for Floor {}

impl HttpContext for Floor {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        // Read, so the host call and the copy into the VM are not optimized away.
        let authorization = self.get_http_request_header("authorization");
        std::hint::black_box(authorization);
        Action::Continue
    }
}
