//! proxy-wasm host calls as values: a host error is logged and becomes `None`/`false`,
//! never a panic in the filter's own code.

use proxy_wasm::hostcalls;
use proxy_wasm::types::{BufferType, LogLevel, MapType};

pub(crate) fn log(level: LogLevel, message: &str) {
    let _ = hostcalls::log(level, message);
}

/// Envoy's wall clock (`proxy_get_current_time_nanoseconds`), in nanoseconds since the
/// Unix epoch; 0 if the host cannot say (every freshness check then fails closed).
pub(crate) fn now_nanos() -> u64 {
    hostcalls::get_current_time()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

pub(crate) fn now_millis() -> u64 {
    now_nanos() / 1_000_000
}

/// Request headers, pseudo-headers included, values as received (lossy UTF-8: a token
/// with invalid bytes becomes invalid base64url and is refused as malformed).
pub(crate) fn request_headers() -> Option<Vec<(String, String)>> {
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

/// Request trailer names (HTTP/1 chunked trailers, HTTP/2 trailers).
pub(crate) fn request_trailer_names() -> Vec<String> {
    hostcalls::get_map_bytes(MapType::HttpRequestTrailers)
        .map(|map| map.into_iter().map(|(name, _)| name).collect())
        .unwrap_or_default()
}

pub(crate) fn remove_request_trailer(name: &str) {
    let _ = hostcalls::remove_map_value(MapType::HttpRequestTrailers, name);
}

pub(crate) fn remove_request_header(name: &str) {
    let _ = hostcalls::remove_map_value(MapType::HttpRequestHeaders, name);
}

pub(crate) fn set_request_header(name: &str, value: &str) -> bool {
    hostcalls::set_map_value(MapType::HttpRequestHeaders, name, Some(value)).is_ok()
}

/// A string property (`connection.uri_san_peer_certificate`, …).
pub(crate) fn property(path: &[&str]) -> Option<String> {
    let bytes = hostcalls::get_property(path.to_vec()).ok()??;
    String::from_utf8(bytes).ok().filter(|s| !s.is_empty())
}

pub(crate) fn plugin_configuration() -> Option<Vec<u8>> {
    hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX)
        .ok()
        .flatten()
}

pub(crate) fn http_call_response_status() -> Option<u16> {
    hostcalls::get_map_value(MapType::HttpCallResponseHeaders, ":status")
        .ok()
        .flatten()
        .and_then(|s| s.parse().ok())
}

pub(crate) fn http_call_response_body(size: usize) -> Vec<u8> {
    hostcalls::get_buffer(BufferType::HttpCallResponseBody, 0, size)
        .ok()
        .flatten()
        .unwrap_or_default()
}

pub(crate) fn shared_data(key: &str) -> (Option<Vec<u8>>, Option<u32>) {
    hostcalls::get_shared_data(key).unwrap_or((None, None))
}

/// Writes shared data if it has not changed since `cas` was read (`None`: unconditionally).
pub(crate) fn set_shared_data(key: &str, value: &[u8], cas: Option<u32>) -> bool {
    hostcalls::set_shared_data(key, Some(value), cas).is_ok()
}

pub(crate) fn set_effective_context(context_id: u32) -> bool {
    hostcalls::set_effective_context(context_id).is_ok()
}

pub(crate) fn resume_request() {
    let _ = hostcalls::resume_http_request();
}

#[link(wasm_import_module = "env")]
extern "C" {
    // proxy-wasm ABI 0.2.1 `proxy_send_local_response`. Called directly (not through the
    // SDK's `send_http_response`) to pass `details` — Envoy's %RESPONSE_CODE_DETAILS%,
    // so access logs say which actwarden reason answered — and to get the host status as
    // a value instead of the SDK's panic.
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
}

/// proxy-wasm's header map serialisation: count, then (name length, value length) pairs,
/// then each name and value followed by a NUL.
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

/// Sends a local reply for the effective request context. `grpc_status`: `Some` sends a
/// gRPC trailers-only reply (HTTP 200, Envoy writes `grpc-status` and `grpc-message` =
/// `body`). `details` goes to Envoy's `%RESPONSE_CODE_DETAILS%` (no spaces allowed there).
/// Returns whether the host accepted it.
pub(crate) fn send_local_response(
    status: u32,
    details: &str,
    headers: &[(&str, &[u8])],
    body: &[u8],
    grpc_status: Option<i32>,
) -> bool {
    let serialized = serialize_headers(headers);
    // SAFETY: every pointer/length pair comes from a live slice that outlives the call; the
    // host copies the data before returning.
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
