//! The proxy-wasm host calls the filter makes, behind a small trait (as Kuadrant's
//! wasm-shim does), so that the filter, the plugin and the JWKS fetches run against a fake
//! host in unit tests. The filter is generic over `H: Host` (static dispatch): in the wasm
//! build `H` is the zero-sized `ProxyWasmHost` and every call inlines to the hostcall.
//!
//! Every host error is a value (`None`, `false`, `Err`): the filter's own code never
//! panics on one, and decides what a failure means (fail closed).

use proxy_wasm::hostcalls;
use proxy_wasm::types::{BufferType, LogLevel, MapType, MetricType};
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
/// a status the SDK's `Status` enum does not know is a value, not undefined behaviour).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HostStatus(pub u32);

impl HostStatus {
    /// The host has no such foreign function (proxy-wasm `NotFound`).
    pub(crate) const NOT_FOUND: HostStatus = HostStatus(1);

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

/// The real host: Envoy (or any proxy-wasm 0.2.1 host) through `proxy_wasm::hostcalls`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ProxyWasmHost;

impl Host for ProxyWasmHost {
    fn log(&self, level: LogLevel, message: &str) {
        let _ = hostcalls::log(level, message);
    }

    fn now_nanos(&self) -> u64 {
        hostcalls::get_current_time()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
            .unwrap_or(0)
    }

    /// Lossy UTF-8: a token with invalid bytes becomes invalid base64url and is refused as
    /// malformed.
    fn request_headers(&self) -> Option<Vec<(String, String)>> {
        let map = hostcalls::get_map_bytes(MapType::HttpRequestHeaders).ok()?;
        Some(
            map.into_iter()
                .map(|(name, value)| {
                    // Valid UTF-8 (nearly always) is taken as is, without a copy.
                    let value = String::from_utf8(value)
                        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
                    (name, value)
                })
                .collect(),
        )
    }

    fn request_trailer_names(&self) -> Option<Vec<String>> {
        hostcalls::get_map_bytes(MapType::HttpRequestTrailers)
            .ok()
            .map(|map| map.into_iter().map(|(name, _)| name).collect())
    }

    fn remove_request_header(&self, name: &str) -> bool {
        hostcalls::remove_map_value(MapType::HttpRequestHeaders, name).is_ok()
    }

    fn set_request_header(&self, name: &str, value: &str) -> bool {
        hostcalls::set_map_value(MapType::HttpRequestHeaders, name, Some(value)).is_ok()
    }

    fn remove_request_trailer(&self, name: &str) -> bool {
        hostcalls::remove_map_value(MapType::HttpRequestTrailers, name).is_ok()
    }

    fn property(&self, path: &[&str]) -> Result<Option<String>, HostError> {
        let bytes = hostcalls::get_property(path.to_vec())
            .map_err(|status| HostError(format!("property {}: {status:?}", path.join("."))))?;
        Ok(bytes
            .and_then(|b| String::from_utf8(b).ok())
            .filter(|s| !s.is_empty()))
    }

    fn plugin_configuration(&self) -> Option<Vec<u8>> {
        hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX)
            .ok()
            .flatten()
    }

    fn shared_data(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>) {
        hostcalls::get_shared_data(key).unwrap_or((None, None))
    }

    fn set_shared_data(&self, key: &str, value: &[u8], cas: Option<u32>) -> bool {
        hostcalls::set_shared_data(key, Some(value), cas).is_ok()
    }

    fn dispatch_http_call(
        &self,
        cluster: &str,
        headers: &[(&str, &str)],
        timeout: Duration,
    ) -> Result<u32, HostError> {
        // Through the SDK (not the ABI directly): it registers the callout, so that the
        // response reaches this root context's `on_http_call_response`.
        hostcalls::dispatch_http_call(cluster, headers.to_vec(), None, vec![], timeout)
            .map_err(|status| HostError(format!("{status:?}")))
    }

    fn http_call_response_status(&self) -> Option<u16> {
        hostcalls::get_map_value(MapType::HttpCallResponseHeaders, ":status")
            .ok()
            .flatten()
            .and_then(|s| s.parse().ok())
    }

    fn http_call_response_body(&self, size: usize) -> Vec<u8> {
        hostcalls::get_buffer(BufferType::HttpCallResponseBody, 0, size)
            .ok()
            .flatten()
            .unwrap_or_default()
    }

    fn set_effective_context(&self, context_id: u32) -> bool {
        hostcalls::set_effective_context(context_id).is_ok()
    }

    fn resume_request(&self) {
        let _ = hostcalls::resume_http_request();
    }

    fn send_local_response(
        &self,
        status: u32,
        details: &str,
        headers: &[(&str, &[u8])],
        body: &[u8],
        grpc_status: Option<i32>,
    ) -> bool {
        abi::send_local_response(status, details, headers, body, grpc_status)
    }

    fn set_tick_period(&self, period: Duration) -> bool {
        // Not `RootContext::set_tick_period`, which unwraps the host's status.
        hostcalls::set_tick_period(period).is_ok()
    }

    fn define_counter(&self, name: &str) -> Option<u32> {
        hostcalls::define_metric(MetricType::Counter, name).ok()
    }

    fn request_body(&self, size: usize) -> Option<Vec<u8>> {
        match hostcalls::get_buffer(BufferType::HttpRequestBody, 0, size) {
            Ok(body) => Some(body.unwrap_or_default()),
            Err(_) => None,
        }
    }

    fn response_headers(&self) -> Option<Vec<(String, String)>> {
        let map = hostcalls::get_map_bytes(MapType::HttpResponseHeaders).ok()?;
        Some(
            map.into_iter()
                .map(|(n, v)| (n, String::from_utf8_lossy(&v).into_owned()))
                .collect(),
        )
    }

    fn set_response_header(&self, name: &str, value: &str) -> bool {
        hostcalls::set_map_value(MapType::HttpResponseHeaders, name, Some(value)).is_ok()
    }

    fn remove_response_header(&self, name: &str) -> bool {
        hostcalls::remove_map_value(MapType::HttpResponseHeaders, name).is_ok()
    }

    fn response_body(&self, size: usize) -> Option<Vec<u8>> {
        match hostcalls::get_buffer(BufferType::HttpResponseBody, 0, size) {
            Ok(body) => Some(body.unwrap_or_default()),
            Err(_) => None,
        }
    }

    fn set_response_body(&self, replaced: usize, body: &[u8]) -> bool {
        hostcalls::set_buffer(BufferType::HttpResponseBody, 0, replaced, body).is_ok()
    }

    fn increment_counter(&self, id: u32, n: i64) {
        let _ = hostcalls::increment_metric(id, n);
    }

    fn call_foreign_function(&self, name: &str, arguments: &[u8]) -> Result<Vec<u8>, HostStatus> {
        abi::call_foreign_function(name, arguments)
    }
}

mod abi {
    #[link(wasm_import_module = "env")]
    extern "C" {
        // proxy-wasm ABI 0.2.1 `proxy_send_local_response`. Called directly (not through
        // the SDK's `send_http_response`) to pass `details` — Envoy's
        // %RESPONSE_CODE_DETAILS%, so access logs say which actwarden reason answered —
        // and to get the host status as a value instead of the SDK's panic.
        fn proxy_send_local_response(
            status_code: u32,
            status_code_details_data: *const u8,
            status_code_details_size: usize,
            body_data: *const u8,
            body_size: usize,
            headers_data: *const u8,
            headers_size: usize,
            grpc_status: i32,
        ) -> u32;

        // proxy-wasm ABI 0.2.1 `proxy_call_foreign_function`, declared with a `u32` status:
        // the SDK's `call_foreign_function` panics on a status it does not expect, and its
        // `Status` return type would make an unknown number undefined behaviour.
        fn proxy_call_foreign_function(
            function_name_data: *const u8,
            function_name_size: usize,
            arguments_data: *const u8,
            arguments_size: usize,
            results_data: *mut *mut u8,
            results_size: *mut usize,
        ) -> u32;
    }

    /// The foreign function's result, taken over from the host: the host allocated it
    /// through this module's `proxy_on_memory_allocate` (the SDK's, a boxed byte slice of
    /// exactly `size` bytes), so it is freed as a `Vec` of that capacity, as the SDK does.
    pub(super) fn call_foreign_function(
        name: &str,
        arguments: &[u8],
    ) -> Result<Vec<u8>, super::HostStatus> {
        let mut data: *mut u8 = std::ptr::null_mut();
        let mut size: usize = 0;
        // SAFETY: name and arguments are live slices for the duration of the call; the
        // out-pointers point to the locals above.
        let status = unsafe {
            proxy_call_foreign_function(
                name.as_ptr(),
                name.len(),
                arguments.as_ptr(),
                arguments.len(),
                &mut data,
                &mut size,
            )
        };
        if status != 0 {
            return Err(super::HostStatus(status));
        }
        if data.is_null() {
            return Ok(Vec::new());
        }
        // SAFETY: see above; `data` is non-null and owns `size` initialised bytes.
        Ok(unsafe { Vec::from_raw_parts(data, size, size) })
    }

    /// proxy-wasm's header map serialisation: count, then (name length, value length)
    /// pairs, then each name and value followed by a NUL.
    fn serialize_headers(headers: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        let count = u32::try_from(headers.len()).unwrap_or(0);
        out.extend_from_slice(&count.to_le_bytes());
        for (name, value) in headers {
            let name_len = u32::try_from(name.len()).unwrap_or(0);
            let value_len = u32::try_from(value.len()).unwrap_or(0);
            out.extend_from_slice(&name_len.to_le_bytes());
            out.extend_from_slice(&value_len.to_le_bytes());
        }
        for (name, value) in headers {
            out.extend_from_slice(name.as_bytes());
            out.push(0);
            out.extend_from_slice(value);
            out.push(0);
        }
        out
    }

    pub(super) fn send_local_response(
        status: u32,
        details: &str,
        headers: &[(&str, &[u8])],
        body: &[u8],
        grpc_status: Option<i32>,
    ) -> bool {
        let serialized = serialize_headers(headers);
        // SAFETY: every pointer/length pair comes from a live slice that outlives the
        // call; the host copies the data before returning.
        let status = unsafe {
            proxy_send_local_response(
                status,
                details.as_ptr(),
                details.len(),
                body.as_ptr(),
                body.len(),
                serialized.as_ptr(),
                serialized.len(),
                grpc_status.unwrap_or(-1),
            )
        };
        status == 0
    }
}
