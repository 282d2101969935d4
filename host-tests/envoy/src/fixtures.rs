//! What several tests share: tokens minted now, the usual gateway (one actwarden listener
//! before an echo upstream), and one request through Envoy with its audit record and what
//! the upstream saw.

use crate::bootstrap as boot;
use crate::envoy::{Envoy, Options};
use crate::http::{Request, Response};
use crate::paths;
use crate::servers::{echoed, EchoServer};
use crate::{Error, Result};
use actwarden::mint::SigningKey;
use ring::rand::SystemRandom;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Unix seconds now.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// Claims of a token valid for 10 minutes from now.
pub fn claims(iss: &str, aud: &str, sub: &str) -> Value {
    let t = now();
    json!({ "iss": iss, "aud": aud, "sub": sub, "sub_profile": "user",
            "scope": "invoices:read", "iat": t, "exp": t + 600 })
}

/// A token signed by `key` with its default algorithm and its `kid`.
pub fn mint(key: &SigningKey, claims: &Value) -> Result<String> {
    key.mint(key.default_alg(), claims, None, &SystemRandom::new())
        .map_err(|e| Error(format!("mint: {e}")))
}

/// Envoy running the shipped module with `config` on one listener, `main`, in front of an
/// echo upstream: how most end-to-end tests begin. Keep it whole while it is used: its
/// upstream stops when it is dropped.
pub struct Gateway {
    // Declared first, so dropped first: Envoy stops before its upstream does.
    pub envoy: Envoy,
    /// The `main` listener.
    pub addr: SocketAddr,
    _echo: EchoServer,
}

/// The bootstrap of a [`Gateway`]: the shipped module with `config` on listener `main`,
/// routing to `upstream`.
pub fn gateway_bootstrap(config: &str, upstream: SocketAddr) -> Result<Value> {
    let wasm = paths::wasm()?;
    Ok(boot::bootstrap(
        vec![boot::actwarden_listener(
            "main",
            &wasm,
            config,
            "actwarden",
            None,
        )],
        vec![boot::cluster(boot::UPSTREAM_CLUSTER, upstream)],
    ))
}

/// Starts a [`Gateway`] with `workers` worker threads, its files under `target/e2e/<test>`.
pub fn start_gateway(test: &str, config: &str, workers: u32) -> Result<Gateway> {
    let dir = paths::work_dir(test)?;
    let echo = EchoServer::start()?;
    let bootstrap = gateway_bootstrap(config, echo.addr())?;
    let options = Options {
        concurrency: workers,
        ..Options::default()
    };
    let envoy = Envoy::start(&dir, &bootstrap, &options)?;
    let addr = envoy.listener("main")?;
    Ok(Gateway {
        envoy,
        addr,
        _echo: echo,
    })
}

/// A fresh request id: `prefix-N`, unique in this process.
pub fn request_id(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    )
}

/// What Envoy did with one request.
#[derive(Debug, Clone)]
pub struct Decided {
    pub request_id: String,
    pub response: Response,
    /// The filter's audit record for the request.
    pub audit: Value,
    /// The request as the upstream received it; `None` for a local reply.
    pub upstream: Option<Request>,
}

impl Decided {
    pub fn reason(&self) -> &str {
        self.audit
            .get("reason")
            .and_then(Value::as_str)
            .unwrap_or("?")
    }

    pub fn allowed(&self) -> bool {
        self.audit.get("decision").and_then(Value::as_str) == Some("allow")
    }

    /// The upstream's value of a header (any letter case).
    pub fn upstream_header(&self, name: &str) -> Option<&str> {
        self.upstream.as_ref().and_then(|u| u.get(name))
    }

    /// One line for assertion messages.
    pub fn describe(&self) -> String {
        format!(
            "HTTP {} {} | audit {}",
            self.response.status,
            self.response.text(),
            self.audit
        )
    }
}

/// How a request reaches Envoy.
#[derive(Clone)]
pub enum Via {
    Plain(SocketAddr),
    Tls {
        addr: SocketAddr,
        config: Arc<rustls::ClientConfig>,
        server_name: String,
    },
}

/// Sends `req` with a fresh `x-request-id` (and `host: api.example.com` when it has no
/// host), then waits for its audit line.
pub fn decide(envoy: &Envoy, via: &Via, req: Request) -> Result<Decided> {
    let request_id = request_id("e2e");
    let mut req = req.header("x-request-id", &request_id);
    if req.get("host").is_none() {
        req = req.header("host", "api.example.com");
    }
    let response = match via {
        Via::Plain(addr) => crate::http::send(*addr, &req)?,
        Via::Tls {
            addr,
            config,
            server_name,
        } => crate::tls::send(*addr, config, server_name, &req)?,
    };
    let audit = envoy
        .wait_audit(&request_id, Duration::from_secs(10))
        .map_err(|e| {
            Error(format!(
                "{e}; reply {} {}",
                response.status,
                response.text()
            ))
        })?;
    let upstream = echoed(&response);
    Ok(Decided {
        request_id,
        response,
        audit,
        upstream,
    })
}

/// `GET path` with `authorization: Bearer token`.
pub fn bearer_get(path: &str, token: &str) -> Request {
    Request::new("GET", path).header("authorization", &format!("Bearer {token}"))
}
