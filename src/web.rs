//! The browser playground's binding (feature `web`, wasm-bindgen): JSON in, JSON out.
