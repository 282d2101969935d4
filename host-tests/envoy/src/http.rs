//! A small HTTP/1.1 client and server over `std::net`: enough for Envoy's downstream and
//! upstream sides, with repeated headers, any header letter case and large headers.

use crate::{fail, Error, Result};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Limits of what this code reads (Envoy is configured for 96 KiB of request headers).
const MAX_HEAD_BYTES: usize = 1 << 20;
const MAX_BODY_BYTES: usize = 8 << 20;

/// A request to send, or one a server received.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    /// Request target, sent as is (path and query).
    pub path: String,
    /// In order, with the sender's letter case; a name may repeat.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn new(method: &str, path: &str) -> Request {
        Request {
            method: method.to_owned(),
            path: path.to_owned(),
            ..Request::default()
        }
    }

    /// Adds a header (builder style).
    pub fn header(mut self, name: &str, value: &str) -> Request {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// The first header with this name (any letter case).
    pub fn get(&self, name: &str) -> Option<&str> {
        find(&self.headers, name)
    }
}

/// A response received, or one a server sends.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    /// In order; names as received (a client lowercases nothing).
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status,
            headers: vec![("content-type".to_owned(), content_type.to_owned())],
            body: body.into(),
        }
    }

    /// The first header with this name (any letter case).
    pub fn get(&self, name: &str) -> Option<&str> {
        find(&self.headers, name)
    }

    /// Every value of this header (any letter case).
    pub fn get_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn find<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Writes a request. `content-length` is added when there is a body and none was given.
pub fn write_request(w: &mut impl Write, req: &Request) -> Result<()> {
    let mut head = format!("{} {} HTTP/1.1\r\n", req.method, req.path);
    for (k, v) in &req.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    let has_length = req.get("content-length").is_some() || req.get("transfer-encoding").is_some();
    if !req.body.is_empty() && !has_length {
        head.push_str(&format!("content-length: {}\r\n", req.body.len()));
    }
    head.push_str("\r\n");
    w.write_all(head.as_bytes())?;
    w.write_all(&req.body)?;
    w.flush()?;
    Ok(())
}

/// Writes a response with `content-length`.
pub fn write_response(w: &mut impl Write, resp: &Response) -> Result<()> {
    let mut head = format!("HTTP/1.1 {} X\r\n", resp.status);
    for (k, v) in &resp.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!("content-length: {}\r\n\r\n", resp.body.len()));
    w.write_all(head.as_bytes())?;
    w.write_all(&resp.body)?;
    w.flush()?;
    Ok(())
}

/// Reads one line ending in `\n` (without the line end). `None` at a clean end of stream.
fn read_line(r: &mut impl BufRead, budget: &mut usize) -> Result<Option<String>> {
    let mut buf = Vec::new();
    let n = r.take(*budget as u64 + 1).read_until(b'\n', &mut buf)?;
    if n == 0 {
        return Ok(None);
    }
    if n > *budget {
        return fail!("http: message head over {MAX_HEAD_BYTES} bytes");
    }
    *budget -= n;
    if buf.last() != Some(&b'\n') {
        return fail!("http: connection closed in the middle of a line");
    }
    while matches!(buf.last(), Some(b'\n' | b'\r')) {
        buf.pop();
    }
    String::from_utf8(buf)
        .map(Some)
        .map_err(|_| Error("http: a head line is not UTF-8".into()))
}

/// Reads a start line and headers. `None` at a clean end of stream before anything.
/// A start line and its headers.
type Head = (String, Vec<(String, String)>);

fn read_head(r: &mut impl BufRead) -> Result<Option<Head>> {
    let mut budget = MAX_HEAD_BYTES;
    let Some(start) = read_line(r, &mut budget)? else {
        return Ok(None);
    };
    let mut headers = Vec::new();
    loop {
        let Some(line) = read_line(r, &mut budget)? else {
            return fail!("http: connection closed inside the headers");
        };
        if line.is_empty() {
            break;
        }
        let Some((k, v)) = line.split_once(':') else {
            return fail!("http: bad header line {line:?}");
        };
        headers.push((k.trim().to_owned(), v.trim().to_owned()));
    }
    Ok(Some((start, headers)))
}

/// Reads a body framed by `content-length` or chunked encoding; `until_close` reads to the
/// end of the stream when neither is given (responses only).
fn read_body(
    r: &mut impl BufRead,
    headers: &[(String, String)],
    until_close: bool,
) -> Result<Vec<u8>> {
    let chunked = find(headers, "transfer-encoding")
        .is_some_and(|te| te.to_ascii_lowercase().contains("chunked"));
    if chunked {
        let mut body = Vec::new();
        let mut budget = MAX_HEAD_BYTES;
        loop {
            let Some(size_line) = read_line(r, &mut budget)? else {
                return fail!("http: connection closed inside a chunked body");
            };
            let size_hex = size_line.split(';').next().unwrap_or_default().trim();
            let size = usize::from_str_radix(size_hex, 16)
                .map_err(|_| Error(format!("http: bad chunk size {size_line:?}")))?;
            if size == 0 {
                // Trailers, then the empty line.
                loop {
                    match read_line(r, &mut budget)? {
                        None => return Ok(body),
                        Some(l) if l.is_empty() => return Ok(body),
                        Some(_) => {}
                    }
                }
            }
            if body.len() + size > MAX_BODY_BYTES {
                return fail!("http: body over {MAX_BODY_BYTES} bytes");
            }
            let start = body.len();
            body.resize(start + size, 0);
            r.read_exact(body.get_mut(start..).unwrap_or_default())?;
            let mut crlf = [0u8; 2];
            r.read_exact(&mut crlf)?;
        }
    }
    if let Some(len) = find(headers, "content-length") {
        let len: usize = len
            .parse()
            .map_err(|_| Error(format!("http: bad content-length {len:?}")))?;
        if len > MAX_BODY_BYTES {
            return fail!("http: body over {MAX_BODY_BYTES} bytes");
        }
        let mut body = vec![0u8; len];
        r.read_exact(&mut body)?;
        return Ok(body);
    }
    let mut body = Vec::new();
    if until_close {
        r.take(MAX_BODY_BYTES as u64).read_to_end(&mut body)?;
    }
    Ok(body)
}

/// Reads a response to a request with this method.
pub fn read_response(r: &mut impl BufRead, method: &str) -> Result<Response> {
    let Some((start, headers)) = read_head(r)? else {
        return fail!("http: the connection closed before a response");
    };
    let mut parts = start.splitn(3, ' ');
    let (Some(version), Some(code)) = (parts.next(), parts.next()) else {
        return fail!("http: bad status line {start:?}");
    };
    if !version.starts_with("HTTP/1.") {
        return fail!("http: bad status line {start:?}");
    }
    let status: u16 = code
        .parse()
        .map_err(|_| Error(format!("http: bad status line {start:?}")))?;
    let no_body =
        method.eq_ignore_ascii_case("HEAD") || status == 204 || status == 304 || status < 200;
    let body = if no_body {
        Vec::new()
    } else {
        read_body(r, &headers, true)?
    };
    Ok(Response {
        status,
        headers,
        body,
    })
}

/// Reads a request (server side). `None` when the peer closed the connection cleanly.
pub fn read_request(r: &mut impl BufRead) -> Result<Option<Request>> {
    let Some((start, headers)) = read_head(r)? else {
        return Ok(None);
    };
    let mut parts = start.split(' ');
    let (Some(method), Some(path)) = (parts.next(), parts.next()) else {
        return fail!("http: bad request line {start:?}");
    };
    let body = read_body(r, &headers, false)?;
    Ok(Some(Request {
        method: method.to_owned(),
        path: path.to_owned(),
        headers,
        body,
    }))
}

/// Client timeout for connecting and for each read/write.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(15);

/// Sends one request on a new connection and reads the response.
pub fn send(addr: SocketAddr, req: &Request) -> Result<Response> {
    let stream = TcpStream::connect_timeout(&addr, CLIENT_TIMEOUT)
        .map_err(|e| Error(format!("connect {addr}: {e}")))?;
    stream.set_read_timeout(Some(CLIENT_TIMEOUT))?;
    stream.set_write_timeout(Some(CLIENT_TIMEOUT))?;
    stream.set_nodelay(true)?;
    let mut writer = stream.try_clone()?;
    write_request(&mut writer, req)
        .map_err(|e| Error(format!("{addr} {} {}: {e}", req.method, req.path)))?;
    let mut reader = BufReader::new(stream);
    read_response(&mut reader, &req.method)
        .map_err(|e| Error(format!("{addr} {} {}: {e}", req.method, req.path)))
}

/// `GET path` on a new connection.
pub fn get(addr: SocketAddr, path: &str) -> Result<Response> {
    send(addr, &Request::new("GET", path).header("host", "localhost"))
}

/// What a server answers.
pub type Handler = Arc<dyn Fn(&Request) -> Response + Send + Sync>;

/// A threaded HTTP/1.1 server on a loopback port of its own (keep-alive, a thread per
/// connection). Stops accepting when dropped.
pub struct Server {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
}

impl Server {
    /// On a free loopback port.
    pub fn start(name: &str, handler: Handler) -> Result<Server> {
        Server::start_on(name, "127.0.0.1:0", handler)
    }

    /// On this address (`127.0.0.1:18080`).
    pub fn start_on(name: &str, addr: &str, handler: Handler) -> Result<Server> {
        let listener = TcpListener::bind(addr)
            .map_err(|e| Error(format!("{name}: cannot listen on {addr}: {e}")))?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = Arc::clone(&stop);
        std::thread::Builder::new()
            .name(format!("{name}-accept"))
            .spawn(move || {
                for conn in listener.incoming() {
                    if stop2.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    let handler = Arc::clone(&handler);
                    let stop3 = Arc::clone(&stop2);
                    let _ = std::thread::Builder::new()
                        .name("http-conn".into())
                        .spawn(move || serve_connection(conn, handler, stop3));
                }
            })?;
        Ok(Server { addr, stop })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }
}

fn serve_connection(conn: TcpStream, handler: Handler, stop: Arc<AtomicBool>) {
    let _ = conn.set_nodelay(true);
    let Ok(mut writer) = conn.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(conn);
    while !stop.load(Ordering::SeqCst) {
        match read_request(&mut reader) {
            Ok(Some(req)) => {
                let resp = handler(&req);
                if write_response(&mut writer, &resp).is_err() {
                    return;
                }
            }
            Ok(None) | Err(_) => return,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_chunked_and_repeated_headers() {
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nx-a: 1\r\nX-A: 2\r\n\r\n3\r\nabc\r\n2;ext\r\nde\r\n0\r\n\r\n";
        let resp = read_response(&mut BufReader::new(&raw[..]), "GET").unwrap();
        assert_eq!(resp.status, 200);
        assert_eq!(resp.body, b"abcde");
        assert_eq!(resp.get_all("x-a"), ["1", "2"]);
    }

    #[test]
    fn request_round_trip_keeps_order_and_case() {
        let req = Request::new("POST", "/p?q=1")
            .header("Authorization", "Bearer a")
            .header("authorization", "Bearer b");
        let mut wire = Vec::new();
        write_request(
            &mut wire,
            &Request {
                body: b"xy".to_vec(),
                ..req.clone()
            },
        )
        .unwrap();
        let back = read_request(&mut BufReader::new(&wire[..]))
            .unwrap()
            .unwrap();
        assert_eq!(back.path, "/p?q=1");
        assert_eq!(back.headers[0], ("Authorization".into(), "Bearer a".into()));
        assert_eq!(back.headers[1], ("authorization".into(), "Bearer b".into()));
        assert_eq!(back.body, b"xy");
        assert!(read_request(&mut BufReader::new(&b""[..]))
            .unwrap()
            .is_none());
    }
}
