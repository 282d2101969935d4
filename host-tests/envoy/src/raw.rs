//! Raw-socket tools for the adversarial tests: requests written byte for byte (line folding,
//! control bytes, non-UTF-8 values, absolute-form targets, chunked trailers), an upstream
//! that answers with the exact bytes it received (so a test sees trailers too), and a
//! server that accepts connections and never answers (a slow-loris JWKS endpoint).

use crate::http::{read_response, Response, CLIENT_TIMEOUT};
use crate::servers::ECHO_MARK;
use crate::{fail, Error, Result};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn connect(addr: SocketAddr) -> Result<TcpStream> {
    let stream = TcpStream::connect_timeout(&addr, CLIENT_TIMEOUT)
        .map_err(|e| Error(format!("connect {addr}: {e}")))?;
    stream.set_read_timeout(Some(CLIENT_TIMEOUT))?;
    stream.set_write_timeout(Some(CLIENT_TIMEOUT))?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Writes `parts` on a new connection, pausing `gap` between two parts (a body that
/// arrives after the headers), then reads one response to a request with `method`.
pub fn exchange_parts(
    addr: SocketAddr,
    parts: &[&[u8]],
    gap: Duration,
    method: &str,
) -> Result<Response> {
    let stream = connect(addr)?;
    let mut writer = stream.try_clone()?;
    for (i, part) in parts.iter().enumerate() {
        if i > 0 && !gap.is_zero() {
            std::thread::sleep(gap);
        }
        writer.write_all(part)?;
        writer.flush()?;
    }
    let mut reader = BufReader::new(stream);
    read_response(&mut reader, method).map_err(|e| Error(format!("{addr} raw {method}: {e}")))
}

/// Writes `bytes` on a new connection and reads one response to a request with `method`.
pub fn exchange(addr: SocketAddr, bytes: &[u8], method: &str) -> Result<Response> {
    exchange_parts(addr, &[bytes], Duration::ZERO, method)
}

/// Writes `bytes`, then closes the connection at once without reading anything (a client
/// that goes away while its request is being decided).
pub fn send_and_close(addr: SocketAddr, bytes: &[u8]) -> Result<()> {
    let mut stream = connect(addr)?;
    stream.write_all(bytes)?;
    stream.flush()?;
    let _ = stream.shutdown(std::net::Shutdown::Both);
    Ok(())
}

/// Reads one line including its `\n` into `raw`; returns it without the line end.
fn raw_line(r: &mut impl BufRead, raw: &mut Vec<u8>) -> Result<Option<Vec<u8>>> {
    let mut buf = Vec::new();
    let n = r.take(1 << 20).read_until(b'\n', &mut buf)?;
    if n == 0 {
        return Ok(None);
    }
    raw.extend_from_slice(&buf);
    while matches!(buf.last(), Some(b'\n' | b'\r')) {
        buf.pop();
    }
    Ok(Some(buf))
}

/// Reads one request and returns its exact bytes (head, body, chunk framing, trailers).
fn read_raw_request(r: &mut impl BufRead) -> Result<Option<Vec<u8>>> {
    let mut raw = Vec::new();
    let mut length = 0usize;
    let mut chunked = false;
    let mut first = true;
    loop {
        let Some(line) = raw_line(r, &mut raw)? else {
            return if first {
                Ok(None)
            } else {
                fail!("raw upstream: closed inside the head")
            };
        };
        first = false;
        if line.is_empty() {
            break;
        }
        let text = String::from_utf8_lossy(&line).to_ascii_lowercase();
        if let Some(v) = text.strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
        if text.starts_with("transfer-encoding:") && text.contains("chunked") {
            chunked = true;
        }
    }
    if chunked {
        loop {
            let Some(size) = raw_line(r, &mut raw)? else {
                return fail!("raw upstream: closed inside a chunked body");
            };
            let size = String::from_utf8_lossy(&size);
            let size = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16)
                .map_err(|_| Error(format!("raw upstream: bad chunk size {size:?}")))?;
            if size == 0 {
                // Trailers up to the empty line.
                loop {
                    match raw_line(r, &mut raw)? {
                        Some(l) if !l.is_empty() => {}
                        _ => return Ok(Some(raw)),
                    }
                }
            }
            let mut chunk = vec![0u8; size + 2];
            r.read_exact(&mut chunk)?;
            raw.extend_from_slice(&chunk);
        }
    }
    let mut body = vec![0u8; length];
    r.read_exact(&mut body)?;
    raw.extend_from_slice(&body);
    Ok(Some(raw))
}

/// An HTTP/1.1 upstream that answers every request with 200 and, as the body, the exact
/// bytes Envoy sent it (request line, headers, chunked body and trailers). Answers carry
/// [`ECHO_MARK`] like the echo server's.
pub struct RawEchoServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl RawEchoServer {
    pub fn start() -> Result<RawEchoServer> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let seen: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
        let (stop2, seen2) = (Arc::clone(&stop), Arc::clone(&seen));
        std::thread::Builder::new()
            .name("raw-echo-accept".into())
            .spawn(move || {
                for conn in listener.incoming() {
                    if stop2.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    let seen3 = Arc::clone(&seen2);
                    let _ = std::thread::Builder::new()
                        .name("raw-echo-conn".into())
                        .spawn(move || serve_raw(conn, &seen3));
                }
            })?;
        Ok(RawEchoServer { addr, stop, seen })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every request received so far, as raw bytes.
    pub fn seen(&self) -> Vec<Vec<u8>> {
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

fn serve_raw(conn: TcpStream, seen: &Mutex<Vec<Vec<u8>>>) {
    let Ok(mut writer) = conn.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(conn);
    while let Ok(Some(raw)) = read_raw_request(&mut reader) {
        if let Ok(mut s) = seen.lock() {
            s.push(raw.clone());
        }
        let head = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\n{ECHO_MARK}: 1\r\ncontent-length: {}\r\n\r\n",
            raw.len()
        );
        if writer.write_all(head.as_bytes()).is_err() || writer.write_all(&raw).is_err() {
            return;
        }
    }
}

impl Drop for RawEchoServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
    }
}

/// A server that accepts every connection, reads what it is sent, and never answers: a
/// JWKS endpoint that hangs (slow loris).
pub struct SilentServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    accepted: Arc<AtomicUsize>,
}

impl SilentServer {
    pub fn start() -> Result<SilentServer> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let accepted = Arc::new(AtomicUsize::new(0));
        let (stop2, accepted2) = (Arc::clone(&stop), Arc::clone(&accepted));
        std::thread::Builder::new()
            .name("silent-accept".into())
            .spawn(move || {
                for conn in listener.incoming() {
                    if stop2.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(mut conn) = conn else { continue };
                    accepted2.fetch_add(1, Ordering::SeqCst);
                    let stop3 = Arc::clone(&stop2);
                    let _ = std::thread::Builder::new()
                        .name("silent-conn".into())
                        .spawn(move || {
                            let _ = conn.set_read_timeout(Some(Duration::from_millis(200)));
                            let mut buf = [0u8; 4096];
                            while !stop3.load(Ordering::SeqCst) {
                                if let Ok(0) = conn.read(&mut buf) {
                                    return;
                                }
                            }
                        });
                }
            })?;
        Ok(SilentServer {
            addr,
            stop,
            accepted,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for SilentServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
    }
}

/// What an HTTP/2 exchange returned for stream 1.
#[derive(Debug, Default)]
pub struct H2Reply {
    /// Each HEADERS block received (HPACK-encoded, not decoded), in order.
    pub header_blocks: Vec<Vec<u8>>,
    /// Whether the first HEADERS frame ended the stream (a trailers-only reply).
    pub trailers_only: bool,
    pub data: Vec<u8>,
    /// The stream was reset (RST_STREAM) or the connection closed (GOAWAY).
    pub reset: bool,
}

/// HPACK "literal header field without indexing, new name", no Huffman coding.
fn hpack_literal(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    fn int7(out: &mut Vec<u8>, n: usize) {
        if n < 127 {
            out.push(n as u8);
        } else {
            out.push(127);
            let mut rest = n - 127;
            while rest >= 128 {
                out.push((rest % 128) as u8 | 0x80);
                rest /= 128;
            }
            out.push(rest as u8);
        }
    }
    out.push(0x00);
    int7(out, name.len());
    out.extend_from_slice(name.as_bytes());
    int7(out, value.len());
    out.extend_from_slice(value);
}

fn h2_frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len();
    let mut out = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// One request on stream 1 of an HTTP/2 prior-knowledge (h2c) connection: `headers`
/// (pseudo-headers first, sent in this order and spelling), then `body` as one DATA
/// frame, then `trailers` as a second HEADERS frame. Returns what came back on stream 1.
pub fn h2c_exchange(
    addr: SocketAddr,
    headers: &[(&str, &[u8])],
    body: &[u8],
    trailers: &[(&str, &[u8])],
) -> Result<H2Reply> {
    const DATA: u8 = 0;
    const HEADERS: u8 = 1;
    const RST_STREAM: u8 = 3;
    const SETTINGS: u8 = 4;
    const GOAWAY: u8 = 7;
    const END_STREAM: u8 = 1;
    const END_HEADERS: u8 = 4;
    let mut stream = connect(addr)?;
    let mut out = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    out.extend(h2_frame(SETTINGS, 0, 0, &[]));
    let mut block = Vec::new();
    for (n, v) in headers {
        hpack_literal(&mut block, n, v);
    }
    let last = body.is_empty() && trailers.is_empty();
    out.extend(h2_frame(
        HEADERS,
        END_HEADERS | if last { END_STREAM } else { 0 },
        1,
        &block,
    ));
    if !body.is_empty() {
        out.extend(h2_frame(
            DATA,
            if trailers.is_empty() { END_STREAM } else { 0 },
            1,
            body,
        ));
    }
    if !trailers.is_empty() {
        let mut block = Vec::new();
        for (n, v) in trailers {
            hpack_literal(&mut block, n, v);
        }
        out.extend(h2_frame(HEADERS, END_HEADERS | END_STREAM, 1, &block));
    }
    stream.write_all(&out)?;
    stream.flush()?;
    let mut reply = H2Reply::default();
    loop {
        let mut head = [0u8; 9];
        if stream.read_exact(&mut head).is_err() {
            reply.reset = true;
            return Ok(reply);
        }
        let len = (usize::from(head[0]) << 16) | (usize::from(head[1]) << 8) | usize::from(head[2]);
        let (kind, flags) = (head[3], head[4]);
        let id = u32::from_be_bytes([head[5] & 0x7f, head[6], head[7], head[8]]);
        let mut payload = vec![0u8; len];
        stream.read_exact(&mut payload)?;
        match kind {
            SETTINGS if flags & 1 == 0 => {
                stream.write_all(&h2_frame(SETTINGS, 1, 0, &[]))?;
            }
            HEADERS if id == 1 => {
                if reply.header_blocks.is_empty() && flags & END_STREAM != 0 {
                    reply.trailers_only = true;
                }
                // No padding or priority from Envoy; CONTINUATION is not expected for the
                // small replies these tests read.
                reply.header_blocks.push(payload);
                if flags & END_STREAM != 0 {
                    return Ok(reply);
                }
            }
            DATA if id == 1 => {
                reply.data.extend_from_slice(&payload);
                if flags & END_STREAM != 0 {
                    return Ok(reply);
                }
            }
            RST_STREAM if id == 1 => {
                reply.reset = true;
                return Ok(reply);
            }
            GOAWAY => {
                reply.reset = true;
                return Ok(reply);
            }
            _ => {}
        }
    }
}
