//! The Envoy / Istio host (feature `proxy`): a proxy-wasm HTTP filter over the core.
