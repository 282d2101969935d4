//! The proxy-wasm ABI 0.2.1 in both directions, for `ProxyWasmHost` and `exports`: the
//! host calls, declared here with `u32` statuses and called directly; the ABI's numbers
//! (`Action`, `LogLevel`, buffer, map and metric kinds); and the two pieces of the module's
//! own side that need `unsafe` (the memory the host allocates in this VM, the constructors
//! run at start). This file holds the crate's only `unsafe`.
//!
//! Why not the SDK (`proxy-wasm` crate): each of its `hostcalls` `panic!`s on a status it
//! does not expect (a trap that takes the worker's VM down with every request on it), its
//! `Status` return type makes a number the enum does not know undefined behaviour, its
//! header map reader unwraps every name as UTF-8, and its dispatcher panics on a context
//! or call it does not know and exports every callback, each one the host then enters the
//! VM for on every request (`exports` says which the filter exports). Here every status is
//! a value (`HostStatus`) and the bytes the host returns are read by code that checks every
//! length (`parse_header_map`).

use super::host::HostStatus;

/// proxy-wasm `StreamType::HttpRequest`, for `proxy_continue_stream`.
const HTTP_REQUEST_STREAM: u32 = 0;

/// What a stream callback tells the host: go on, or hold the stream here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub(crate) enum Action {
    Continue = 0,
    Pause = 1,
}

/// proxy-wasm log levels (Envoy drops lines below its own level).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
#[allow(dead_code)] // the ABI's whole scale; the filter logs nothing below `Info`
pub(crate) enum LogLevel {
    Trace = 0,
    Debug = 1,
    Info = 2,
    Warn = 3,
    Error = 4,
    Critical = 5,
}

/// The proxy-wasm buffers the filter reads or writes.
#[derive(Debug, Clone, Copy)]
#[repr(u32)]
pub(super) enum BufferType {
    HttpRequestBody = 0,
    HttpResponseBody = 1,
    HttpCallResponseBody = 4,
    PluginConfiguration = 7,
}

/// The proxy-wasm header maps the filter reads or writes.
#[derive(Debug, Clone, Copy)]
#[repr(u32)]
#[allow(clippy::enum_variant_names)] // the ABI's own names
pub(super) enum MapType {
    HttpRequestHeaders = 0,
    HttpRequestTrailers = 1,
    HttpResponseHeaders = 2,
    HttpCallResponseHeaders = 6,
}

/// The proxy-wasm metric kinds the filter defines.
#[derive(Debug, Clone, Copy)]
#[repr(u32)]
pub(super) enum MetricType {
    Counter = 0,
}

#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_log(level: u32, message_data: *const u8, message_size: usize) -> u32;
    fn proxy_get_current_time_nanoseconds(return_time: *mut u64) -> u32;
    fn proxy_set_tick_period_milliseconds(period: u32) -> u32;
    fn proxy_get_buffer_bytes(
        buffer_type: u32,
        start: usize,
        max_size: usize,
        return_buffer_data: *mut *mut u8,
        return_buffer_size: *mut usize,
    ) -> u32;
    fn proxy_set_buffer_bytes(
        buffer_type: u32,
        start: usize,
        size: usize,
        buffer_data: *const u8,
        buffer_size: usize,
    ) -> u32;
    fn proxy_get_header_map_pairs(
        map_type: u32,
        return_map_data: *mut *mut u8,
        return_map_size: *mut usize,
    ) -> u32;
    fn proxy_get_header_map_value(
        map_type: u32,
        key_data: *const u8,
        key_size: usize,
        return_value_data: *mut *mut u8,
        return_value_size: *mut usize,
    ) -> u32;
    fn proxy_replace_header_map_value(
        map_type: u32,
        key_data: *const u8,
        key_size: usize,
        value_data: *const u8,
        value_size: usize,
    ) -> u32;
    fn proxy_remove_header_map_value(map_type: u32, key_data: *const u8, key_size: usize) -> u32;
    fn proxy_get_property(
        path_data: *const u8,
        path_size: usize,
        return_value_data: *mut *mut u8,
        return_value_size: *mut usize,
    ) -> u32;
    fn proxy_get_shared_data(
        key_data: *const u8,
        key_size: usize,
        return_value_data: *mut *mut u8,
        return_value_size: *mut usize,
        return_cas: *mut u32,
    ) -> u32;
    fn proxy_set_shared_data(
        key_data: *const u8,
        key_size: usize,
        value_data: *const u8,
        value_size: usize,
        cas: u32,
    ) -> u32;
    fn proxy_continue_stream(stream_type: u32) -> u32;
    fn proxy_set_effective_context(context_id: u32) -> u32;
    fn proxy_define_metric(
        metric_type: u32,
        name_data: *const u8,
        name_size: usize,
        return_id: *mut u32,
    ) -> u32;
    fn proxy_increment_metric(metric_id: u32, offset: i64) -> u32;
    // Called directly (not through the SDK's `send_http_response`) also to pass `details`:
    // Envoy's %RESPONSE_CODE_DETAILS%, so access logs say which actwarden reason answered.
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
    fn proxy_http_call(
        upstream_data: *const u8,
        upstream_size: usize,
        headers_data: *const u8,
        headers_size: usize,
        body_data: *const u8,
        body_size: usize,
        trailers_data: *const u8,
        trailers_size: usize,
        timeout_ms: u32,
        return_token: *mut u32,
    ) -> u32;
    fn proxy_call_foreign_function(
        function_name_data: *const u8,
        function_name_size: usize,
        arguments_data: *const u8,
        arguments_size: usize,
        results_data: *mut *mut u8,
        results_size: *mut usize,
    ) -> u32;
}

fn checked(status: u32) -> Result<(), HostStatus> {
    if status == 0 {
        Ok(())
    } else {
        Err(HostStatus(status))
    }
}

/// The bytes a call returned: allocated in this VM by the host through
/// `proxy_on_memory_allocate` (`allocate`: exactly `size` bytes), owned from here on.
/// `None` when the host returned no buffer.
///
/// # Safety
/// `data` is null, or the pointer a host call just returned with `size`.
unsafe fn take(data: *mut u8, size: usize) -> Option<Vec<u8>> {
    if data.is_null() {
        None
    } else {
        // SAFETY: see above: an allocation of `size` initialised bytes, owned by nobody else.
        Some(unsafe { Vec::from_raw_parts(data, size, size) })
    }
}

pub(super) fn log(level: LogLevel, message: &str) -> Result<(), HostStatus> {
    // SAFETY: the message is a live slice for the duration of the call.
    checked(unsafe { proxy_log(level as u32, message.as_ptr(), message.len()) })
}

pub(super) fn now_nanos() -> Result<u64, HostStatus> {
    let mut nanos = 0u64;
    // SAFETY: the out-pointer points to the local above.
    checked(unsafe { proxy_get_current_time_nanoseconds(&mut nanos) })?;
    Ok(nanos)
}

pub(super) fn set_tick_period_ms(period: u32) -> Result<(), HostStatus> {
    // SAFETY: no pointers.
    checked(unsafe { proxy_set_tick_period_milliseconds(period) })
}

/// Up to `max` bytes of a buffer from `start`; `None` when the host has none
/// (`NotFound`, or no data).
pub(super) fn buffer(
    kind: BufferType,
    start: usize,
    max: usize,
) -> Result<Option<Vec<u8>>, HostStatus> {
    let (mut data, mut size) = (std::ptr::null_mut(), 0usize);
    // SAFETY: the out-pointers point to the locals above.
    let status = unsafe { proxy_get_buffer_bytes(kind as u32, start, max, &mut data, &mut size) };
    match status {
        // SAFETY: what the call just returned.
        0 => Ok(unsafe { take(data, size) }),
        1 => Ok(None),
        other => Err(HostStatus(other)),
    }
}

/// Replaces `size` bytes of a buffer from `start` with `bytes`.
pub(super) fn set_buffer(
    kind: BufferType,
    start: usize,
    size: usize,
    bytes: &[u8],
) -> Result<(), HostStatus> {
    // SAFETY: `bytes` is a live slice; the host copies it before returning.
    checked(unsafe {
        proxy_set_buffer_bytes(kind as u32, start, size, bytes.as_ptr(), bytes.len())
    })
}

/// Every (name, value) of a header map, in the host's order, repeated names once per value.
/// Bytes that are not UTF-8 read as U+FFFD: such a value is no token, and such a name is no
/// identity header. A map the host serialised wrongly is `SerializationFailure`.
pub(super) fn header_map(kind: MapType) -> Result<Vec<(String, String)>, HostStatus> {
    let (mut data, mut size) = (std::ptr::null_mut(), 0usize);
    // SAFETY: the out-pointers point to the locals above.
    checked(unsafe { proxy_get_header_map_pairs(kind as u32, &mut data, &mut size) })?;
    // SAFETY: what the call just returned.
    match unsafe { take(data, size) } {
        None => Ok(Vec::new()),
        Some(bytes) => parse_header_map(&bytes).ok_or(HostStatus::SERIALIZATION_FAILURE),
    }
}

/// One header's (first) value; `None` when absent.
pub(super) fn header_value(kind: MapType, name: &str) -> Result<Option<Vec<u8>>, HostStatus> {
    let (mut data, mut size) = (std::ptr::null_mut(), 0usize);
    // SAFETY: the name is a live slice; the out-pointers point to the locals above.
    let status = unsafe {
        proxy_get_header_map_value(kind as u32, name.as_ptr(), name.len(), &mut data, &mut size)
    };
    match status {
        // SAFETY: what the call just returned.
        0 => Ok(unsafe { take(data, size) }),
        1 => Ok(None),
        other => Err(HostStatus(other)),
    }
}

/// Sets a header to one value, replacing every value it had.
pub(super) fn replace_header(kind: MapType, name: &str, value: &str) -> Result<(), HostStatus> {
    // SAFETY: live slices; the host copies them before returning.
    checked(unsafe {
        proxy_replace_header_map_value(
            kind as u32,
            name.as_ptr(),
            name.len(),
            value.as_ptr(),
            value.len(),
        )
    })
}

/// Removes every value of a header (an absent header is removed already).
pub(super) fn remove_header(kind: MapType, name: &str) -> Result<(), HostStatus> {
    // SAFETY: a live slice; the host copies it before returning.
    checked(unsafe { proxy_remove_header_map_value(kind as u32, name.as_ptr(), name.len()) })
}

/// A property by path (`["connection", "uri_san_peer_certificate"]`); `None` when the host
/// has none.
pub(super) fn property(path: &[&str]) -> Result<Option<Vec<u8>>, HostStatus> {
    // proxy-wasm's path serialisation: the segments joined by NUL.
    let serialized = path.join("\0");
    let (mut data, mut size) = (std::ptr::null_mut(), 0usize);
    // SAFETY: the path is a live slice; the out-pointers point to the locals above.
    let status =
        unsafe { proxy_get_property(serialized.as_ptr(), serialized.len(), &mut data, &mut size) };
    match status {
        // SAFETY: what the call just returned.
        0 => Ok(unsafe { take(data, size) }),
        1 => Ok(None),
        other => Err(HostStatus(other)),
    }
}

/// Shared data and its compare-and-swap version; `(None, None)` when the key is absent.
pub(super) fn shared_data(key: &str) -> Result<(Option<Vec<u8>>, Option<u32>), HostStatus> {
    let (mut data, mut size, mut cas) = (std::ptr::null_mut(), 0usize, 0u32);
    // SAFETY: the key is a live slice; the out-pointers point to the locals above.
    let status =
        unsafe { proxy_get_shared_data(key.as_ptr(), key.len(), &mut data, &mut size, &mut cas) };
    match status {
        // SAFETY: what the call just returned.
        0 => Ok((unsafe { take(data, size) }, (cas != 0).then_some(cas))),
        1 => Ok((None, None)),
        other => Err(HostStatus(other)),
    }
}

/// Writes shared data if its version is still `cas` (`None`: unconditionally); another
/// worker's write in between is `CasMismatch`.
pub(super) fn set_shared_data(key: &str, value: &[u8], cas: Option<u32>) -> Result<(), HostStatus> {
    // SAFETY: live slices; the host copies them before returning.
    checked(unsafe {
        proxy_set_shared_data(
            key.as_ptr(),
            key.len(),
            value.as_ptr(),
            value.len(),
            cas.unwrap_or(0),
        )
    })
}

/// Lets the effective context's request go on.
pub(super) fn continue_request() -> Result<(), HostStatus> {
    // SAFETY: no pointers.
    checked(unsafe { proxy_continue_stream(HTTP_REQUEST_STREAM) })
}

pub(super) fn set_effective_context(context_id: u32) -> Result<(), HostStatus> {
    // SAFETY: no pointers.
    checked(unsafe { proxy_set_effective_context(context_id) })
}

pub(super) fn define_metric(kind: MetricType, name: &str) -> Result<u32, HostStatus> {
    let mut id = 0u32;
    // SAFETY: the name is a live slice; the out-pointer points to the local above.
    checked(unsafe { proxy_define_metric(kind as u32, name.as_ptr(), name.len(), &mut id) })?;
    Ok(id)
}

pub(super) fn increment_metric(id: u32, by: i64) -> Result<(), HostStatus> {
    // SAFETY: no pointers.
    checked(unsafe { proxy_increment_metric(id, by) })
}

/// Calls a foreign function of the host (`verify_signature`); its result bytes, empty
/// when the host returned none.
pub(super) fn call_foreign_function(name: &str, arguments: &[u8]) -> Result<Vec<u8>, HostStatus> {
    let (mut data, mut size) = (std::ptr::null_mut(), 0usize);
    // SAFETY: name and arguments are live slices for the duration of the call; the
    // out-pointers point to the locals above.
    checked(unsafe {
        proxy_call_foreign_function(
            name.as_ptr(),
            name.len(),
            arguments.as_ptr(),
            arguments.len(),
            &mut data,
            &mut size,
        )
    })?;
    // SAFETY: what the call just returned.
    Ok(unsafe { take(data, size) }.unwrap_or_default())
}

/// Starts an HTTP call to `cluster` (no body, no trailers); its token. The answer comes to
/// the calling context's `proxy_on_http_call_response` with that token.
pub(super) fn http_call(
    cluster: &str,
    headers: &[(&str, &[u8])],
    timeout_ms: u32,
) -> Result<u32, HostStatus> {
    let serialized = serialize_header_map(headers);
    let trailers = serialize_header_map(&[]);
    let mut token = 0u32;
    // SAFETY: every pointer/length pair comes from a live slice that outlives the call
    // (an empty body is a null pointer with length 0, as the ABI allows); the host copies
    // the data before returning; the out-pointer points to the local above.
    checked(unsafe {
        proxy_http_call(
            cluster.as_ptr(),
            cluster.len(),
            serialized.as_ptr(),
            serialized.len(),
            std::ptr::null(),
            0,
            trailers.as_ptr(),
            trailers.len(),
            timeout_ms,
            &mut token,
        )
    })?;
    Ok(token)
}

/// `proxy_on_memory_allocate`: `size` bytes the host fills and hands back through a call
/// (`take` owns them from then on): a boxed slice of exactly that size, so that its
/// allocation is the one `Vec::from_raw_parts(data, size, size)` takes over.
pub(super) fn allocate(size: usize) -> *mut u8 {
    Box::into_raw(Box::<[u8]>::new_uninit_slice(size)).cast::<u8>()
}

/// Runs the module's static constructors: a WASI reactor's `_initialize` must, before
/// anything else runs (wasi-libc's own reactor start does the same).
pub(super) fn call_constructors() {
    #[cfg(target_os = "wasi")]
    {
        extern "C" {
            fn __wasm_call_ctors();
        }
        // SAFETY: called once, from `_initialize`, before any other code of the module.
        unsafe { __wasm_call_ctors() }
    }
}

pub(super) fn send_local_response(
    status: u32,
    details: &str,
    headers: &[(&str, &[u8])],
    body: &[u8],
    grpc_status: Option<i32>,
) -> Result<(), HostStatus> {
    let serialized = serialize_header_map(headers);
    // SAFETY: every pointer/length pair comes from a live slice that outlives the call;
    // the host copies the data before returning.
    checked(unsafe {
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
    })
}

/// proxy-wasm's header map serialisation: a little-endian `u32` count, a (name length,
/// value length) `u32` pair per header, then each name and each value followed by a NUL.
fn serialize_header_map(headers: &[(&str, &[u8])]) -> Vec<u8> {
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

/// Reads `serialize_header_map`'s layout back; `None` unless the bytes follow it exactly
/// (every length within the buffer, every NUL in place, nothing after the last value).
fn parse_header_map(bytes: &[u8]) -> Option<Vec<(String, String)>> {
    let u32_at = |at: usize| -> Option<usize> {
        let word: [u8; 4] = bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
        usize::try_from(u32::from_le_bytes(word)).ok()
    };
    let count = u32_at(0)?;
    let mut text = count.checked_mul(8)?.checked_add(4)?;
    // Each header takes at least 10 bytes: refuse a count the buffer cannot hold before
    // reserving room for it.
    if count > bytes.len() / 10 {
        return None;
    }
    let mut pairs = Vec::with_capacity(count);
    for i in 0..count {
        let lengths = 4 + i * 8;
        let name = nul_terminated(bytes, &mut text, u32_at(lengths)?)?;
        let value = nul_terminated(bytes, &mut text, u32_at(lengths + 4)?)?;
        pairs.push((
            String::from_utf8_lossy(name).into_owned(),
            String::from_utf8_lossy(value).into_owned(),
        ));
    }
    (text == bytes.len()).then_some(pairs)
}

/// `len` bytes at `*at` followed by a NUL; moves `*at` past the NUL.
fn nul_terminated<'b>(bytes: &'b [u8], at: &mut usize, len: usize) -> Option<&'b [u8]> {
    let end = at.checked_add(len)?;
    let field = bytes.get(*at..end)?;
    if bytes.get(end) != Some(&0) {
        return None;
    }
    *at = end + 1;
    Some(field)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_header_map_reads_back_as_written() {
        let headers: [(&str, &[u8]); 4] = [
            (":path", b"/api"),
            ("authorization", b"Bearer a.b.c"),
            ("empty", b""),
            ("authorization", b"Bearer second"),
        ];
        let parsed = parse_header_map(&serialize_header_map(&headers)).unwrap();
        let expected: Vec<(String, String)> = headers
            .iter()
            .map(|(n, v)| (n.to_string(), String::from_utf8(v.to_vec()).unwrap()))
            .collect();
        assert_eq!(parsed, expected, "order and repeated names kept");
        assert_eq!(parse_header_map(&serialize_header_map(&[])), Some(vec![]));
    }

    #[test]
    fn bytes_that_are_not_utf8_read_as_replacement_characters() {
        let headers: [(&str, &[u8]); 1] = [("x", b"a\xffb")];
        let mut bytes = serialize_header_map(&headers);
        // The name's only byte (after the count and one length pair) becomes 0xfe.
        bytes[12] = 0xfe;
        let parsed = parse_header_map(&bytes).unwrap();
        assert_eq!(
            parsed,
            vec![("\u{fffd}".to_owned(), "a\u{fffd}b".to_owned())]
        );
    }

    #[test]
    fn a_damaged_header_map_is_refused_whole_and_never_panics() {
        let headers: [(&str, &[u8]); 2] = [("authorization", b"Bearer t"), ("b", b"2")];
        let good = serialize_header_map(&headers);
        // Cut anywhere short of the end.
        for len in 0..good.len() {
            assert_eq!(parse_header_map(&good[..len]), None, "cut at {len}");
        }
        // One byte too many.
        let mut longer = good.clone();
        longer.push(0);
        assert_eq!(parse_header_map(&longer), None);
        // A NUL missing after a name.
        let mut no_nul = good.clone();
        no_nul[4 + 16 + "authorization".len()] = b'!';
        assert_eq!(parse_header_map(&no_nul), None);
        // Every byte of the lengths set to its largest value, one at a time.
        for at in 0..4 + 16 {
            let mut big = good.clone();
            big[at] = 0xff;
            assert_eq!(parse_header_map(&big), None, "byte {at}");
        }
    }
}
