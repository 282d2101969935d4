//! `make demo`: the demo story through a real Envoy running dist/actwarden.wasm.
//!
//! Starts the echo upstream (127.0.0.1:18080) and the demo STS's JWKS (127.0.0.1:18081,
//! `/jwks`), then Envoy with the committed `gateway-configs/envoy/envoy.yaml`, mints the
//! story's tokens with the DEMO-ONLY key, and walks the story through Envoy, printing each
//! request, its decision and its audit line. Then it leaves Envoy running until Ctrl-C.
//!
//! Environment: `ENVOY_BIN` (required; `make demo` sets it), `DEMO_EXIT=1` (exit after the
//! story, status 0 when every decision was the expected one), `DEMO_PORTS=auto` (free ports
//! instead of 9901/10000/10443/18080/18081; the rewritten YAML goes under target/).

use actwarden::mint::{public_jwks, ProofClaims, SigningKey};
use actwarden::Reason;
use actwarden_envoy_tests::envoy::{Envoy, Options, READY_TIMEOUT};
use actwarden_envoy_tests::http::{self, Request, Response};
use actwarden_envoy_tests::paths::{read_repo_file, repo_root};
use actwarden_envoy_tests::servers::{echoed, EchoServer, JwksServer, Serve};
use actwarden_envoy_tests::tls::{self, ClientIdentity};
use actwarden_envoy_tests::{fail, Error, Result};
use ring::rand::SystemRandom;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const YAML: &str = "gateway-configs/envoy/envoy.yaml";
const CERTS: &str = "gateway-configs/envoy/certs";
const KEY: &str = "gateway-configs/example/demo/keys/DEMO-ONLY-corp-sts.private.jwk.json";
/// The orchestrator's own DPoP key when it runs outside the mesh (steps e and f).
const AGENT_KEY: &str = "gateway-configs/example/demo/keys/DEMO-ONLY-agent-dpop.private.jwk.json";
const CLAIMS: &str = "gateway-configs/example/demo/claims";
const WASM: &str = "dist/actwarden.wasm";
const OUT: &str = "target/demo-envoy";
const TTL_S: u64 = 300;

/// The ports of the committed YAML, by role.
const DEFAULT_PORTS: [(&str, u16); 5] = [
    ("admin", 9901),
    ("http", 10000),
    ("mtls", 10443),
    ("upstream", 18080),
    ("sts", 18081),
];

struct Ports {
    http: u16,
    mtls: u16,
    upstream: u16,
    sts: u16,
    admin: u16,
}

fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// The YAML to run and its ports: the committed file, or with `DEMO_PORTS=auto` a copy
/// under target/ whose five ports are free ones.
fn configuration(out: &std::path::Path) -> Result<(std::path::PathBuf, Ports)> {
    let auto = std::env::var("DEMO_PORTS").is_ok_and(|v| v == "auto");
    let mut chosen = Vec::new();
    for (role, port) in DEFAULT_PORTS {
        chosen.push((role, port, if auto { free_port()? } else { port }));
    }
    let port_of = |role: &str| {
        chosen
            .iter()
            .find(|(r, _, _)| *r == role)
            .map(|(_, _, p)| *p)
            .unwrap_or_default()
    };
    let ports = Ports {
        http: port_of("http"),
        mtls: port_of("mtls"),
        upstream: port_of("upstream"),
        sts: port_of("sts"),
        admin: port_of("admin"),
    };
    if !auto {
        return Ok((repo_root().join(YAML), ports));
    }
    let mut text = read_repo_file(YAML)?;
    for (role, from, to) in &chosen {
        let needle = format!("port_value: {from} ");
        let count = text.matches(&needle).count();
        if count != 1 {
            return fail!("{YAML}: expected one `{needle}` ({role}), found {count}");
        }
        text = text.replace(&needle, &format!("port_value: {to} "));
    }
    let path = out.join("envoy.yaml");
    std::fs::write(&path, text)?;
    Ok((path, ports))
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// One step of the story.
struct Step {
    letter: char,
    title: &'static str,
    claims: &'static str,
    /// Bind the token to the orchestrator's certificate (`cnf.x5t#S256`).
    bound: bool,
    /// `None`: plain HTTP listener; `Some(name)`: mTLS with `certs/<name>.pem`.
    client_cert: Option<&'static str>,
    /// Bind the token to the agent's DPoP key (`cnf.jkt`) and send it with the `DPoP`
    /// scheme and a proof signed by that key (SPEC §10).
    dpop: bool,
    expected: Reason,
}

const STORY: [Step; 6] = [
    Step {
        letter: 'a',
        title: "alice → orchestrator pays an invoice (token bound to the orchestrator's certificate)",
        claims: "alice-via-orchestrator",
        bound: true,
        client_cert: Some("orchestrator"),
        dpop: false,
        expected: Reason::Allowed,
    },
    Step {
        letter: 'b',
        title: "alice → orchestrator → billing: the billing sub-agent tries to pay (over its ceiling)",
        claims: "alice-via-orchestrator-via-billing",
        bound: false,
        client_cert: Some("billing"),
        dpop: false,
        expected: Reason::ActorScopeExceeded,
    },
    Step {
        letter: 'c',
        title: "alice → a staging orchestrator (spiffe://staging.example.com/...) calls production",
        claims: "alice-via-staging-orchestrator",
        bound: false,
        client_cert: None,
        dpop: false,
        expected: Reason::TrustDomainMismatch,
    },
    Step {
        letter: 'd',
        title: "the token of (a), stolen and replayed from billing's connection (without the orchestrator's certificate)",
        claims: "alice-via-orchestrator",
        bound: true,
        client_cert: Some("billing"),
        dpop: false,
        expected: Reason::BindingMismatch,
    },
    Step {
        letter: 'e',
        title: "the orchestrator, outside the mesh (no certificate), pays with a DPoP-bound token and a proof of its key",
        claims: "alice-via-dpop-agent",
        bound: false,
        client_cert: None,
        dpop: true,
        expected: Reason::Allowed,
    },
    Step {
        letter: 'f',
        title: "the DPoP-bound token of (e), copied and sent as a bearer token without the agent's key",
        claims: "alice-via-dpop-agent",
        bound: false,
        client_cert: None,
        dpop: false,
        expected: Reason::DpopRequired,
    },
];

/// "billing acting for alice@example.com (alice@example.com → orchestrator → billing)".
fn who(claims: &Value) -> String {
    let short = |id: &str| id.rsplit('/').next().unwrap_or(id).to_owned();
    let subject = claims["sub"].as_str().unwrap_or("?").to_owned();
    let mut chain = Vec::new();
    let mut act = claims.get("act");
    while let Some(a) = act {
        chain.push(a["sub"].as_str().unwrap_or("?").to_owned());
        act = a.get("act");
    }
    let Some(current) = chain.first() else {
        return subject;
    };
    let mut path = vec![subject.clone()];
    path.extend(chain.iter().rev().map(|a| short(a)));
    format!("{current} acting for {subject} ({})", path.join(" → "))
}

struct Demo {
    envoy: Envoy,
    ports: Ports,
    key: SigningKey,
    agent: SigningKey,
    ca_pem: String,
    orchestrator_x5t: String,
    rng: SystemRandom,
    out: std::path::PathBuf,
}

impl Demo {
    fn mint(&self, claims_name: &str, bound: bool, dpop: bool) -> Result<(String, Value)> {
        let text = read_repo_file(&format!("{CLAIMS}/{claims_name}.json"))?;
        let mut claims: Value = serde_json::from_str(&text)?;
        let t = now();
        claims["iat"] = json!(t);
        claims["exp"] = json!(t + TTL_S);
        if bound {
            claims["cnf"] = json!({ "x5t#S256": self.orchestrator_x5t });
        } else if dpop {
            claims["cnf"] = json!({ "jkt": self.agent.jkt().unwrap_or_default() });
        } else if let Some(m) = claims.as_object_mut() {
            m.remove("cnf");
        }
        let token = self
            .key
            .mint(self.key.default_alg(), &claims, None, &self.rng)
            .map_err(|e| Error(format!("mint: {e}")))?;
        Ok((token, claims))
    }

    fn send(&self, step: &Step, req: &Request) -> Result<Response> {
        match step.client_cert {
            None => http::send(SocketAddr::from(([127, 0, 0, 1], self.ports.http)), req),
            Some(name) => {
                let identity = ClientIdentity::from_pem(
                    &read_repo_file(&format!("{CERTS}/{name}.pem"))?,
                    &read_repo_file(&format!("{CERTS}/{name}.DEMO-ONLY.key.pem"))?,
                )?;
                let config = tls::client_config(&self.ca_pem, Some(identity))?;
                let addr = SocketAddr::from(([127, 0, 0, 1], self.ports.mtls));
                tls::send(addr, &config, "localhost", req)
            }
        }
    }

    /// Runs one step with `stolen` (a token of an earlier step) or a fresh token; returns
    /// whether the decision is the expected one, and the token.
    fn step(
        &self,
        step: &Step,
        stolen: Option<(String, Value)>,
    ) -> Result<(bool, (String, Value))> {
        let (token, claims) = match stolen {
            Some(t) => t,
            None => self.mint(step.claims, step.bound, step.dpop)?,
        };
        std::fs::write(self.out.join(format!("{}.jwt", step.letter)), &token)?;
        let request_id = format!("demo-{}-{}", step.letter, now());
        let scheme = if step.dpop { "DPoP" } else { "Bearer" };
        let mut req = Request::new("POST", "/v1/payments")
            .header("host", "api.example.com")
            .header("authorization", &format!("{scheme} {token}"))
            .header("content-type", "application/json")
            .header("x-request-id", &request_id)
            .header("x-agent-subject", "spoofed@example.com");
        if step.dpop {
            // The plain-HTTP listener: Envoy's `:scheme` is `http`, so is the proof's `htu`.
            let proof = self
                .agent
                .dpop_proof(
                    self.agent.default_alg(),
                    &ProofClaims {
                        htm: "POST",
                        htu: "http://api.example.com/v1/payments",
                        iat: now(),
                        jti: None,
                        access_token: Some(&token),
                    },
                    &self.rng,
                )
                .map_err(|e| Error(format!("dpop proof: {e}")))?;
            req = req.header("dpop", &proof);
        }
        println!("({}) {}", step.letter, step.title);
        let via = match step.client_cert {
            None => format!("http://127.0.0.1:{} (plain HTTP, no client certificate)", self.ports.http),
            Some(c) => format!(
                "https://127.0.0.1:{} (mTLS, client certificate spiffe://prod.example.com/agent/{c})",
                self.ports.mtls
            ),
        };
        println!("    POST /v1/payments via {via}");
        println!("    who: {}", who(&claims));
        println!(
            "    token: scope \"{}\", jti {}{}",
            claims["scope"].as_str().unwrap_or_default(),
            claims["jti"].as_str().unwrap_or_default(),
            if step.bound {
                ", bound to the orchestrator's certificate (cnf.x5t#S256)"
            } else if claims["cnf"].get("jkt").is_some() {
                ", bound to the agent's DPoP key (cnf.jkt)"
            } else {
                ""
            }
        );
        let resp = self.send(step, &req)?;
        let audit = self
            .envoy
            .wait_audit(&request_id, Duration::from_secs(10))?;
        let reason = audit["reason"].as_str().unwrap_or("?").to_owned();
        match echoed(&resp) {
            Some(up) => {
                println!("    => HTTP {} from the upstream: {}", resp.status, reason);
                let ids: Vec<String> = up
                    .headers
                    .iter()
                    .filter(|(k, _)| k.starts_with("x-agent-"))
                    .map(|(k, v)| format!("{k}: {v}"))
                    .collect();
                println!("       the upstream saw: {}", ids.join(" | "));
            }
            None => {
                println!("    => HTTP {} {}", resp.status, resp.text());
                if let Some(challenge) = resp.get("www-authenticate") {
                    println!("       www-authenticate: {challenge}");
                }
            }
        }
        println!("    audit: {audit}");
        let ok = reason == step.expected.code();
        if ok {
            println!("    expected {}: ok", step.expected.code());
        } else {
            println!("    EXPECTED {}, GOT {reason}", step.expected.code());
        }
        println!();
        Ok((ok, (token, claims)))
    }
}

fn run() -> Result<bool> {
    let root = repo_root();
    let out = root.join(OUT);
    std::fs::create_dir_all(&out)?;
    if !root.join(WASM).is_file() {
        return fail!("{WASM} not found: run `make demo` (it builds the module first)");
    }
    let (yaml, ports) = configuration(&out)?;
    let rng = SystemRandom::new();
    let key = SigningKey::from_jwk_json(&read_repo_file(KEY)?, &rng)
        .map_err(|e| Error(format!("{KEY}: {e}")))?;
    let agent = SigningKey::from_jwk_json(&read_repo_file(AGENT_KEY)?, &rng)
        .map_err(|e| Error(format!("{AGENT_KEY}: {e}")))?;
    let echo = EchoServer::start_on(&format!("127.0.0.1:{}", ports.upstream))?;
    let sts = JwksServer::start_on(&format!("127.0.0.1:{}", ports.sts))?;
    sts.set("/jwks", Serve::Jwks(public_jwks(&[&key]).to_string()));
    let ca_pem = read_repo_file(&format!("{CERTS}/ca.pem"))?;
    let orchestrator_der =
        tls::cert_der_from_pem(&read_repo_file(&format!("{CERTS}/orchestrator.pem"))?)?;

    println!("actwarden demo through Envoy — {}", yaml.display());
    println!(
        "  echo upstream 127.0.0.1:{}, demo STS JWKS http://127.0.0.1:{}/jwks (DEMO-ONLY key)",
        ports.upstream, ports.sts
    );
    let mut envoy = Envoy::spawn_file(&out, &yaml, &Options::default(), Some(&root))?;
    envoy.wait_ready(READY_TIMEOUT)?;
    println!(
        "  Envoy ready: http 127.0.0.1:{}, mTLS 127.0.0.1:{}, admin 127.0.0.1:{} (log {})",
        ports.http,
        ports.mtls,
        ports.admin,
        envoy.log_path().display()
    );
    // The filter fetches the JWKS on its first tick.
    sts.wait_fetches("/jwks", 1, Duration::from_secs(15))?;
    envoy.wait_log("fetch ok", 0, Duration::from_secs(15))?;
    println!("  the filter fetched the STS's keys");
    println!("  rule `pay`: POST /v1/payments needs scope payments:write, a human subject, a");
    println!(
        "  delegated token (chain depth <= 2) and acr=urn:example:acr:approved. Actor ceilings:"
    );
    println!("  orchestrator may hold invoices:read payments:write; billing only invoices:read.");
    println!("  Every request also carries a spoofed `x-agent-subject`, which never reaches the upstream.");
    println!();

    let demo = Demo {
        envoy,
        ports,
        key,
        agent,
        ca_pem,
        orchestrator_x5t: tls::x5t_s256(&orchestrator_der),
        rng,
        out,
    };
    let mut failures = 0;
    let mut first_token = None;
    let mut dpop_token = None;
    for step in &STORY {
        // (d) replays the very token of (a); (f) copies the token of (e).
        let stolen = match step.letter {
            'd' => first_token.clone(),
            'f' => dpop_token.clone(),
            _ => None,
        };
        let (ok, token) = demo.step(step, stolen)?;
        match step.letter {
            'a' => first_token = Some(token),
            'e' => dpop_token = Some(token),
            _ => {}
        }
        if !ok {
            failures += 1;
        }
    }
    if echo.count() != 2 {
        println!(
            "demo: the upstream saw {} requests, expected 2 (only (a) and (e) are allowed)",
            echo.count()
        );
        failures += 1;
    }
    if failures == 0 {
        println!("demo: all {} decisions as expected", STORY.len());
    } else {
        println!("demo: {failures} decision(s) differed from the story");
    }
    if std::env::var("DEMO_EXIT").is_ok_and(|v| v == "1") {
        return Ok(failures == 0);
    }
    println!();
    println!("Envoy keeps running; try it (tokens in {OUT}/, valid {TTL_S} s):");
    println!(
        "  curl -si http://127.0.0.1:{}/v1/payments -X POST -H \"authorization: Bearer $(cat {OUT}/c.jwt)\"",
        demo.ports.http
    );
    println!(
        "  curl -si https://localhost:{}/v1/payments -X POST --cacert {CERTS}/ca.pem \\\n      --cert {CERTS}/orchestrator.pem --key {CERTS}/orchestrator.DEMO-ONLY.key.pem \\\n      -H \"authorization: Bearer $(cat {OUT}/a.jwt)\"",
        demo.ports.mtls
    );
    println!(
        "  curl -s http://127.0.0.1:{}/stats | grep actwarden",
        demo.ports.admin
    );
    println!("Ctrl-C to stop.");
    // Envoy (owned by `demo`) dies with this process: Ctrl-C reaches the whole process
    // group, and Envoy was started with PR_SET_PDEATHSIG.
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("demo: {e}");
            ExitCode::from(2)
        }
    }
}
