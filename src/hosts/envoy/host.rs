//! The proxy-wasm host calls the filter makes, behind a small trait (as Kuadrant's
//! wasm-shim does), so that the filter, the plugin and the JWKS fetches run against a fake
//! host in unit tests. The filter is generic over `H: Host` (static dispatch): in the wasm
//! build `H` is the zero-sized `ProxyWasmHost` and every call inlines to the hostcall.
//!
//! Every host error is a value (`None`, `false`, `Err`): neither the filter's own code nor
//! the binding under it (`abi`, not the SDK's panicking `hostcalls`) panics on one, and
//! the filter decides what a failure means (fail closed).

use super::abi::{self, BufferType, LogLevel, MapType, MetricType};
use std::time::Duration;

/// A host call that failed (the host's status, for the log line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HostError(pub String);

impl std::fmt::Display for HostError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A proxy-wasm status other than `Ok`, as the host returned it (the raw number, so that
/// a status no enum here knows is a value, not undefined behaviour).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HostStatus(pub u32);

impl HostStatus {
    /// The host has no such foreign function (proxy-wasm `NotFound`).
    pub(crate) const NOT_FOUND: HostStatus = HostStatus(1);
    /// Data the host returned does not follow the ABI's serialisation.
    pub(crate) const SERIALIZATION_FAILURE: HostStatus = HostStatus(3);

    /// proxy-wasm ABI 0.2.1 status names.
    pub(crate) fn name(self) -> &'static str {
        match self.0 {
            0 => "Ok",
            1 => "NotFound",
            2 => "BadArgument",
            3 => "SerializationFailure",
            4 => "ParseFailure",
            7 => "Empty",
            8 => "CasMismatch",
            10 => "InternalFailure",
            12 => "Unimplemented",
            _ => "unknown status",
        }
    }
}

impl std::fmt::Display for HostStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.name(), self.0)
    }
}

pub(crate) trait Host {
    fn log(&self, level: LogLevel, message: &str);

    /// The host's wall clock in nanoseconds since the Unix epoch; 0 if the host cannot
    /// say (every freshness check then fails closed).
    fn now_nanos(&self) -> u64;

    fn now_millis(&self) -> u64 {
        self.now_nanos() / 1_000_000
    }

    /// Request headers, pseudo-headers included, values as received. `None`: the host
    /// could not give them.
    fn request_headers(&self) -> Option<Vec<(String, String)>>;

    /// Request trailer names. `None`: the host could not give them.
    fn request_trailer_names(&self) -> Option<Vec<String>>;

    /// Whether the header is gone (removing an absent header succeeds).
    fn remove_request_header(&self, name: &str) -> bool;

    fn set_request_header(&self, name: &str, value: &str) -> bool;

    fn remove_request_trailer(&self, name: &str) -> bool;

    /// A string property (`connection.uri_san_peer_certificate`, …): `Ok(None)` when the
    /// host has none (or an empty one), `Err` when the lookup itself failed.
    fn property(&self, path: &[&str]) -> Result<Option<String>, HostError>;

    fn plugin_configuration(&self) -> Option<Vec<u8>>;

    /// Shared data and its compare-and-swap token; `(None, None)` when absent or unreadable.
    fn shared_data(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>);

    /// Writes shared data if it has not changed since `cas` was read (`None`:
    /// unconditionally). Whether it was written.
    fn set_shared_data(&self, key: &str, value: &[u8], cas: Option<u32>) -> bool;

    /// Starts an HTTP call on `cluster`; its token, or why the host refused it.
    fn dispatch_http_call(
        &self,
        cluster: &str,
        headers: &[(&str, &str)],
        timeout: Duration,
    ) -> Result<u32, HostError>;

    /// The `:status` of the call response being delivered (`None`: no response).
    fn http_call_response_status(&self) -> Option<u16>;

    fn http_call_response_body(&self, size: usize) -> Vec<u8>;

    fn set_effective_context(&self, context_id: u32) -> bool;

    fn resume_request(&self);

    /// Sends a local reply for the effective request context. `grpc_status`: `Some` sends
    /// a gRPC trailers-only reply (HTTP 200, Envoy writes `grpc-status` and `grpc-message`
    /// = `body`). `details` goes to Envoy's `%RESPONSE_CODE_DETAILS%` (no spaces allowed
    /// there). Whether the host accepted it.
    fn send_local_response(
        &self,
        status: u32,
        details: &str,
        headers: &[(&str, &[u8])],
        body: &[u8],
        grpc_status: Option<i32>,
    ) -> bool;

    fn set_tick_period(&self, period: Duration) -> bool;

    // SPEC §9 (MCP): the body of an MCP message, and the response to a `tools/list`.

    /// The first `size` bytes of the buffered request body (`None`: unreadable).
    fn request_body(&self, size: usize) -> Option<Vec<u8>>;

    /// Response headers, `:status` included. `None`: the host could not give them.
    fn response_headers(&self) -> Option<Vec<(String, String)>>;

    fn set_response_header(&self, name: &str, value: &str) -> bool;

    fn remove_response_header(&self, name: &str) -> bool;

    /// The first `size` bytes of the buffered response body (`None`: unreadable).
    fn response_body(&self, size: usize) -> Option<Vec<u8>>;

    /// Replaces the first `replaced` bytes of the buffered response body with `body`.
    fn set_response_body(&self, replaced: usize, body: &[u8]) -> bool;

    fn define_counter(&self, name: &str) -> Option<u32>;

    fn increment_counter(&self, id: u32, n: i64);

    /// Calls a host-provided foreign function (Envoy: `verify_signature`, …); its result
    /// bytes (empty when the host returned none), or the host's status.
    fn call_foreign_function(&self, name: &str, arguments: &[u8]) -> Result<Vec<u8>, HostStatus>;
}

/// The real host: Envoy (or any proxy-wasm 0.2.1 host) through `abi`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ProxyWasmHost;

impl Host for ProxyWasmHost {
    fn log(&self, level: LogLevel, message: &str) {
        let _ = abi::log(level, message);
    }

    fn now_nanos(&self) -> u64 {
        abi::now_nanos().unwrap_or(0)
    }

    fn request_headers(&self) -> Option<Vec<(String, String)>> {
        abi::header_map(MapType::HttpRequestHeaders).ok()
    }

    fn request_trailer_names(&self) -> Option<Vec<String>> {
        abi::header_map(MapType::HttpRequestTrailers)
            .ok()
            .map(|map| map.into_iter().map(|(name, _)| name).collect())
    }

    fn remove_request_header(&self, name: &str) -> bool {
        abi::remove_header(MapType::HttpRequestHeaders, name).is_ok()
    }

    fn set_request_header(&self, name: &str, value: &str) -> bool {
        abi::replace_header(MapType::HttpRequestHeaders, name, value).is_ok()
    }

    fn remove_request_trailer(&self, name: &str) -> bool {
        abi::remove_header(MapType::HttpRequestTrailers, name).is_ok()
    }

    fn property(&self, path: &[&str]) -> Result<Option<String>, HostError> {
        let bytes = abi::property(path)
            .map_err(|status| HostError(format!("property {}: {status}", path.join("."))))?;
        Ok(bytes
            .and_then(|b| String::from_utf8(b).ok())
            .filter(|s| !s.is_empty()))
    }

    fn plugin_configuration(&self) -> Option<Vec<u8>> {
        abi::buffer(BufferType::PluginConfiguration, 0, usize::MAX)
            .ok()
            .flatten()
    }

    fn shared_data(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>) {
        abi::shared_data(key).unwrap_or((None, None))
    }

    fn set_shared_data(&self, key: &str, value: &[u8], cas: Option<u32>) -> bool {
        abi::set_shared_data(key, value, cas).is_ok()
    }

    fn dispatch_http_call(
        &self,
        cluster: &str,
        headers: &[(&str, &str)],
        timeout: Duration,
    ) -> Result<u32, HostError> {
        let headers: Vec<(&str, &[u8])> = headers
            .iter()
            .map(|(name, value)| (*name, value.as_bytes()))
            .collect();
        let timeout_ms = u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX);
        abi::http_call(cluster, &headers, timeout_ms)
            .map_err(|status| HostError(status.to_string()))
    }

    fn http_call_response_status(&self) -> Option<u16> {
        abi::header_value(MapType::HttpCallResponseHeaders, ":status")
            .ok()
            .flatten()
            .and_then(|s| std::str::from_utf8(&s).ok()?.parse().ok())
    }

    fn http_call_response_body(&self, size: usize) -> Vec<u8> {
        abi::buffer(BufferType::HttpCallResponseBody, 0, size)
            .ok()
            .flatten()
            .unwrap_or_default()
    }

    fn set_effective_context(&self, context_id: u32) -> bool {
        abi::set_effective_context(context_id).is_ok()
    }

    fn resume_request(&self) {
        let _ = abi::continue_request();
    }

    fn send_local_response(
        &self,
        status: u32,
        details: &str,
        headers: &[(&str, &[u8])],
        body: &[u8],
        grpc_status: Option<i32>,
    ) -> bool {
        abi::send_local_response(status, details, headers, body, grpc_status).is_ok()
    }

    fn set_tick_period(&self, period: Duration) -> bool {
        let millis = u32::try_from(period.as_millis()).unwrap_or(u32::MAX);
        abi::set_tick_period_ms(millis).is_ok()
    }

    fn define_counter(&self, name: &str) -> Option<u32> {
        abi::define_metric(MetricType::Counter, name).ok()
    }

    fn request_body(&self, size: usize) -> Option<Vec<u8>> {
        abi::buffer(BufferType::HttpRequestBody, 0, size)
            .ok()
            .map(Option::unwrap_or_default)
    }

    fn response_headers(&self) -> Option<Vec<(String, String)>> {
        abi::header_map(MapType::HttpResponseHeaders).ok()
    }

    fn set_response_header(&self, name: &str, value: &str) -> bool {
        abi::replace_header(MapType::HttpResponseHeaders, name, value).is_ok()
    }

    fn remove_response_header(&self, name: &str) -> bool {
        abi::remove_header(MapType::HttpResponseHeaders, name).is_ok()
    }

    fn response_body(&self, size: usize) -> Option<Vec<u8>> {
        abi::buffer(BufferType::HttpResponseBody, 0, size)
            .ok()
            .map(Option::unwrap_or_default)
    }

    fn set_response_body(&self, replaced: usize, body: &[u8]) -> bool {
        abi::set_buffer(BufferType::HttpResponseBody, 0, replaced, body).is_ok()
    }

    fn increment_counter(&self, id: u32, n: i64) {
        let _ = abi::increment_metric(id, n);
    }

    fn call_foreign_function(&self, name: &str, arguments: &[u8]) -> Result<Vec<u8>, HostStatus> {
        abi::call_foreign_function(name, arguments)
    }
}
