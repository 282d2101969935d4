//! The echo upstream and the controllable JWKS server.

use crate::http::{Handler, Request, Response, Server};
use crate::{fail, Result};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The response header by which a test knows an answer came from the echo upstream (and
/// not from a local reply of Envoy or the filter).
pub const ECHO_MARK: &str = "x-e2e-echo";

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Answers every request with 200 and `{"method", "path", "headers": [[name, value], …]}`:
/// the request exactly as Envoy forwarded it. Keeps every request it saw.
pub struct EchoServer {
    server: Server,
    seen: Arc<Mutex<Vec<Request>>>,
}

impl EchoServer {
    pub fn start() -> Result<EchoServer> {
        EchoServer::start_on("127.0.0.1:0")
    }

    pub fn start_on(addr: &str) -> Result<EchoServer> {
        let seen: Arc<Mutex<Vec<Request>>> = Arc::default();
        let seen2 = Arc::clone(&seen);
        let handler: Handler = Arc::new(move |req: &Request| {
            lock(&seen2).push(req.clone());
            let headers: Vec<Value> = req.headers.iter().map(|(k, v)| json!([k, v])).collect();
            let body = json!({ "method": req.method, "path": req.path, "headers": headers });
            let mut resp = Response::new(200, "application/json", body.to_string());
            resp.headers.push((ECHO_MARK.to_owned(), "1".to_owned()));
            resp
        });
        Ok(EchoServer {
            server: Server::start_on("echo", addr, handler)?,
            seen,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    pub fn port(&self) -> u16 {
        self.server.port()
    }

    /// Requests the upstream received with this `x-request-id`.
    pub fn received(&self, request_id: &str) -> Vec<Request> {
        lock(&self.seen)
            .iter()
            .filter(|r| r.get("x-request-id") == Some(request_id))
            .cloned()
            .collect()
    }

    pub fn count(&self) -> usize {
        lock(&self.seen).len()
    }
}

/// The request the echo upstream received, from its answer: `None` when the response did
/// not come from the echo server.
pub fn echoed(resp: &Response) -> Option<Request> {
    resp.get(ECHO_MARK)?;
    let body: Value = serde_json::from_slice(&resp.body).ok()?;
    let headers = body
        .get("headers")?
        .as_array()?
        .iter()
        .filter_map(|pair| {
            let k = pair.get(0)?.as_str()?;
            let v = pair.get(1)?.as_str()?;
            Some((k.to_owned(), v.to_owned()))
        })
        .collect();
    Some(Request {
        method: body.get("method")?.as_str()?.to_owned(),
        path: body.get("path")?.as_str()?.to_owned(),
        headers,
        body: Vec::new(),
    })
}

/// What the JWKS server answers on a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Serve {
    /// 200 with this JWKS document.
    Jwks(String),
    /// 200 `application/json` with this body that is not a usable JWKS.
    Garbage(String),
    /// This status, empty body.
    Status(u16),
    /// 200 with this JWKS document after this many milliseconds (a slow key server).
    Slow(u64, String),
}

/// One fetch the JWKS server answered.
#[derive(Debug, Clone)]
pub struct Fetch {
    pub at: Instant,
    pub path: String,
    pub authority: Option<String>,
    pub served: Serve,
}

#[derive(Default)]
struct JwksState {
    routes: HashMap<String, Serve>,
    fetches: Vec<Fetch>,
}

/// A JWKS server whose answers a test controls, path by path; it counts every fetch.
pub struct JwksServer {
    server: Server,
    state: Arc<Mutex<JwksState>>,
}

impl JwksServer {
    pub fn start() -> Result<JwksServer> {
        JwksServer::start_on("127.0.0.1:0")
    }

    pub fn start_on(addr: &str) -> Result<JwksServer> {
        let state: Arc<Mutex<JwksState>> = Arc::default();
        let state2 = Arc::clone(&state);
        let handler: Handler = Arc::new(move |req: &Request| {
            let mut st = lock(&state2);
            let path = req.path.split('?').next().unwrap_or_default().to_owned();
            let served = st.routes.get(&path).cloned().unwrap_or(Serve::Status(404));
            st.fetches.push(Fetch {
                at: Instant::now(),
                path,
                authority: req.get("host").map(str::to_owned),
                served: served.clone(),
            });
            match served {
                Serve::Jwks(doc) => Response::new(200, "application/json", doc),
                Serve::Garbage(body) => Response::new(200, "application/json", body),
                Serve::Status(code) => Response::new(code, "text/plain", ""),
                Serve::Slow(ms, doc) => {
                    // Not under the lock: other fetches go on while this one waits.
                    drop(st);
                    std::thread::sleep(Duration::from_millis(ms));
                    Response::new(200, "application/json", doc)
                }
            }
        });
        Ok(JwksServer {
            server: Server::start_on("jwks", addr, handler)?,
            state,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    pub fn port(&self) -> u16 {
        self.server.port()
    }

    /// From now on, answer `path` with `serve`.
    pub fn set(&self, path: &str, serve: Serve) {
        lock(&self.state).routes.insert(path.to_owned(), serve);
    }

    /// Every fetch of `path` so far, oldest first.
    pub fn fetches(&self, path: &str) -> Vec<Fetch> {
        lock(&self.state)
            .fetches
            .iter()
            .filter(|f| f.path == path)
            .cloned()
            .collect()
    }

    pub fn count(&self, path: &str) -> usize {
        lock(&self.state)
            .fetches
            .iter()
            .filter(|f| f.path == path)
            .count()
    }

    /// Waits until `path` has been fetched at least `n` times in all.
    pub fn wait_fetches(&self, path: &str, n: usize, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let got = self.count(path);
            if got >= n {
                return Ok(());
            }
            if Instant::now() > deadline {
                return fail!("jwks server: {path} fetched {got} times within {timeout:?}, expected at least {n}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
