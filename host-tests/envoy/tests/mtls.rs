//! mTLS through a real Envoy (dist/actwarden.wasm, no test hooks): the peer the filter sees
//! is the client certificate of the TLS connection.
//!
//! The test makes its own PKI with rcgen: a CA, Envoy's server certificate (localhost), and
//! client certificates with SPIFFE URI SANs for the orchestrator and billing agents. It checks
//! `cnf.x5t#S256` bound and matching, bound and mismatching, bound without a client
//! certificate (TLS without one, and plain HTTP), `actor_must_match_peer` both ways, and
//! that the shipped module ignores the test-hook headers. Every decision is also compared
//! field by field with the native decision (`api::check_json`) on the same request with
//! the same peer (URI SAN and certificate digest).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use actwarden::api::check_json;
use actwarden::mint::{delegate, public_jwks, SigningKey};
use actwarden::Alg;
use actwarden::UnixTime;
use actwarden_envoy_tests::bootstrap as boot;
use actwarden_envoy_tests::envoy::{Envoy, Options};
use actwarden_envoy_tests::fixtures::{claims, decide, mint, now, Decided, Via};
use actwarden_envoy_tests::http::Request;
use actwarden_envoy_tests::paths;
use actwarden_envoy_tests::servers::EchoServer;
use actwarden_envoy_tests::tls::{self, ClientIdentity};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use ring::rand::SystemRandom;
use serde_json::{json, Value};
use std::collections::HashMap;

const ISS: &str = "https://sts.e2e";
const AUD: &str = "api";
const ORCHESTRATOR: &str = "spiffe://prod.example.com/agent/orchestrator";
const BILLING: &str = "spiffe://prod.example.com/agent/billing";

/// A client certificate made by the test CA.
struct Client {
    uri: &'static str,
    cert_pem: String,
    key_pem: String,
    der: Vec<u8>,
}

struct Pki {
    ca_pem: String,
    server_cert_pem: String,
    server_key_pem: String,
    clients: HashMap<&'static str, Client>,
}

fn pki() -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "actwarden e2e test CA");
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);

    let server_key = KeyPair::generate().unwrap();
    let mut server = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    server
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    let server_cert = server.signed_by(&server_key, &issuer).unwrap();

    let mut clients = HashMap::new();
    for (name, uri) in [("orchestrator", ORCHESTRATOR), ("billing", BILLING)] {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.subject_alt_names = vec![SanType::URI(uri.try_into().unwrap())];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params
            .distinguished_name
            .push(DnType::CommonName, format!("{name} agent"));
        let cert = params.signed_by(&key, &issuer).unwrap();
        clients.insert(
            name,
            Client {
                uri,
                cert_pem: cert.pem(),
                key_pem: key.serialize_pem(),
                der: cert.der().to_vec(),
            },
        );
    }
    Pki {
        ca_pem: ca_cert.pem(),
        server_cert_pem: server_cert.pem(),
        server_key_pem: server_key.serialize_pem(),
        clients,
    }
}

fn config(jwks: &str, actor_must_match_peer: bool) -> String {
    json!({
        "providers": { "sts": { "issuer": ISS, "audiences": [AUD],
                                "local_jwks": { "inline_string": jwks }, "algorithms": ["ES256"] } },
        "identity": { "trust_domains": ["prod.example.com"] },
        "binding": { "cnf": "if_present", "actor_must_match_peer": actor_must_match_peer },
        "rules": [{ "id": "any", "match": { "path_prefix": "/" } }]
    })
    .to_string()
}

struct Rig {
    envoy: Envoy,
    _echo: EchoServer,
    pki: Pki,
    key: SigningKey,
    configs: HashMap<&'static str, String>,
}

/// A request scenario.
struct Scenario {
    name: &'static str,
    listener: &'static str,
    /// Client certificate presented (`None`: none).
    cert: Option<&'static str>,
    token: String,
    /// Extra request headers.
    headers: Vec<(&'static str, String)>,
    reason: &'static str,
    status: u16,
    /// Expected audit `binding` and `peer`.
    binding: &'static str,
    peer: Option<&'static str>,
}

impl Rig {
    fn via(&self, listener: &str, cert: Option<&str>) -> Via {
        let addr = self.envoy.listener(listener).unwrap();
        if listener == "plain" {
            return Via::Plain(addr);
        }
        let identity = cert.map(|c| {
            let c = &self.pki.clients[c];
            ClientIdentity::from_pem(&c.cert_pem, &c.key_pem).unwrap()
        });
        Via::Tls {
            addr,
            config: tls::client_config(&self.pki.ca_pem, identity).unwrap(),
            server_name: "localhost".to_owned(),
        }
    }

    /// Runs a scenario; returns the problems found.
    fn run(&self, s: &Scenario) -> Vec<String> {
        let mut req = Request::new("GET", "/v1/x")
            .header("host", "api.example.com")
            .header("authorization", &format!("Bearer {}", s.token));
        for (k, v) in &s.headers {
            req = req.header(k, v);
        }
        let d = match decide(&self.envoy, &self.via(s.listener, s.cert), req.clone()) {
            Ok(d) => d,
            Err(e) => return vec![format!("{}: {e}", s.name)],
        };
        let mut problems = Vec::new();
        let mut expect = |what: &str, got: Value, want: Value| {
            if got != want {
                problems.push(format!("{}: {what} {got}, expected {want}", s.name));
            }
        };
        expect("reason", json!(d.reason()), json!(s.reason));
        expect("binding", d.audit["binding"].clone(), json!(s.binding));
        expect("peer", d.audit["peer"].clone(), json!(s.peer));
        if s.reason == "allowed" {
            expect("upstream reached", json!(d.upstream.is_some()), json!(true));
        } else {
            expect("status", json!(d.response.status), json!(s.status));
            expect(
                "upstream reached",
                json!(d.upstream.is_some()),
                json!(false),
            );
        }
        problems.extend(self.same_as_native(s, &req, &d));
        problems
    }

    /// The native decision on the same request with the same peer equals Envoy's.
    fn same_as_native(&self, s: &Scenario, req: &Request, d: &Decided) -> Vec<String> {
        let mut headers = serde_json::Map::new();
        for (k, v) in &req.headers {
            if k != "host" {
                headers.insert(k.clone(), json!(v));
            }
        }
        headers.insert("x-request-id".into(), json!(d.request_id));
        let mut request = json!({ "method": "GET", "path": "/v1/x", "authority": "api.example.com",
                                  "headers": headers });
        if let Some(c) = s.cert {
            let c = &self.pki.clients[c];
            request["peer"] =
                json!({ "uri_san": c.uri, "sha256_digest_hex": tls::sha256_hex(&c.der) });
        }
        let config = &self.configs[s.listener];
        let (_, native) = check_json(
            config,
            &request.to_string(),
            UnixTime::from_secs(now()),
            &HashMap::new(),
            &|_| Err(actwarden::FileError::NoFiles),
        )
        .unwrap();
        let mut problems = Vec::new();
        for (k, v) in d.audit.as_object().unwrap() {
            if k == "ts" || k == "eval_us" {
                continue;
            }
            if native.get(k) != Some(v) {
                problems.push(format!(
                    "{}: audit {k}: Envoy {v} ≠ native {}",
                    s.name,
                    native.get(k).unwrap_or(&Value::Null)
                ));
            }
        }
        if d.allowed() {
            let upstream_ids: serde_json::Map<String, Value> = d
                .upstream
                .as_ref()
                .map(|u| {
                    u.headers
                        .iter()
                        .filter(|(k, _)| k.starts_with("x-agent-"))
                        .map(|(k, v)| (k.clone(), json!(v)))
                        .collect()
                })
                .unwrap_or_default();
            if Value::Object(upstream_ids.clone()) != native["headers"] {
                problems.push(format!(
                    "{}: identity headers upstream {upstream_ids:?} ≠ native {}",
                    s.name, native["headers"]
                ));
            }
        }
        problems
    }
}

fn rig() -> Rig {
    let wasm = paths::wasm().unwrap();
    let dir = paths::work_dir("mtls").unwrap();
    let pki = pki();
    let key = SigningKey::generate(Alg::ES256, "k1", &SystemRandom::new()).unwrap();
    let jwks = public_jwks(&[&key]).to_string();
    let echo = EchoServer::start().unwrap();
    let tls_required = || {
        Some(boot::downstream_tls(
            &pki.server_cert_pem,
            &pki.server_key_pem,
            Some(&pki.ca_pem),
            true,
        ))
    };
    let mut configs = HashMap::new();
    configs.insert("mtls", config(&jwks, false));
    configs.insert("mtls-optional", config(&jwks, false));
    configs.insert("plain", config(&jwks, false));
    configs.insert("mtls-peer", config(&jwks, true));
    let listeners = vec![
        boot::actwarden_listener("mtls", &wasm, &configs["mtls"], "actwarden", tls_required()),
        boot::actwarden_listener(
            "mtls-optional",
            &wasm,
            &configs["mtls-optional"],
            "actwarden",
            Some(boot::downstream_tls(
                &pki.server_cert_pem,
                &pki.server_key_pem,
                Some(&pki.ca_pem),
                false,
            )),
        ),
        boot::actwarden_listener("plain", &wasm, &configs["plain"], "actwarden", None),
        boot::actwarden_listener(
            "mtls-peer",
            &wasm,
            &configs["mtls-peer"],
            "actwarden",
            tls_required(),
        ),
    ];
    let bootstrap = boot::bootstrap(
        listeners,
        vec![boot::cluster(boot::UPSTREAM_CLUSTER, echo.addr())],
    );
    let envoy = Envoy::start(&dir, &bootstrap, &Options::default()).unwrap();
    Rig {
        envoy,
        _echo: echo,
        pki,
        key,
        configs,
    }
}

#[test]
fn mtls_binding_and_peer_through_envoy() {
    let rig = rig();
    let digest_of = |name: &str| tls::x5t_s256(&rig.pki.clients[name].der);
    let alice_via_orchestrator = delegate(
        &claims(ISS, AUD, "alice@example.com"),
        ORCHESTRATOR,
        Some("ai_agent"),
    );
    let mut bound = alice_via_orchestrator.clone();
    bound["cnf"] = json!({ "x5t#S256": digest_of("orchestrator") });
    let bound = mint(&rig.key, &bound).unwrap();
    let unbound = mint(&rig.key, &alice_via_orchestrator).unwrap();
    let mut billing_itself = claims(ISS, AUD, BILLING);
    billing_itself["sub_profile"] = json!("ai_agent");
    let billing_itself = mint(&rig.key, &billing_itself).unwrap();
    let orchestrator_peer = json!({ "uri_san": ORCHESTRATOR,
        "sha256_digest_hex": tls::sha256_hex(&rig.pki.clients["orchestrator"].der) })
    .to_string();

    let scenarios = vec![
        Scenario {
            name: "bound, matching certificate",
            listener: "mtls",
            cert: Some("orchestrator"),
            token: bound.clone(),
            headers: vec![],
            reason: "allowed",
            status: 200,
            binding: "ok",
            peer: Some(ORCHESTRATOR),
        },
        Scenario {
            name: "bound, another agent's certificate",
            listener: "mtls",
            cert: Some("billing"),
            token: bound.clone(),
            headers: vec![],
            reason: "binding_mismatch",
            status: 401,
            binding: "mismatch",
            peer: Some(BILLING),
        },
        Scenario {
            name: "bound, TLS without a client certificate",
            listener: "mtls-optional",
            cert: None,
            token: bound.clone(),
            headers: vec![],
            reason: "binding_mismatch",
            status: 401,
            binding: "mismatch",
            peer: None,
        },
        Scenario {
            name: "bound, plain HTTP",
            listener: "plain",
            cert: None,
            token: bound.clone(),
            headers: vec![],
            reason: "binding_mismatch",
            status: 401,
            binding: "mismatch",
            peer: None,
        },
        Scenario {
            name: "bound, plain HTTP, forged test-hook peer header (ignored by the shipped module)",
            listener: "plain",
            cert: None,
            token: bound.clone(),
            headers: vec![("x-actwarden-test-peer", orchestrator_peer.clone())],
            reason: "binding_mismatch",
            status: 401,
            binding: "mismatch",
            peer: None,
        },
        Scenario {
            name: "unbound, with a certificate",
            listener: "mtls",
            cert: Some("billing"),
            token: unbound.clone(),
            headers: vec![],
            reason: "allowed",
            status: 200,
            binding: "absent",
            peer: Some(BILLING),
        },
        Scenario {
            name: "bound, optional-certificate listener, matching certificate",
            listener: "mtls-optional",
            cert: Some("orchestrator"),
            token: bound.clone(),
            headers: vec![],
            reason: "allowed",
            status: 200,
            binding: "ok",
            peer: Some(ORCHESTRATOR),
        },
        Scenario {
            name: "actor_must_match_peer, the actor's certificate",
            listener: "mtls-peer",
            cert: Some("orchestrator"),
            token: unbound.clone(),
            headers: vec![],
            reason: "allowed",
            status: 200,
            binding: "absent",
            peer: Some(ORCHESTRATOR),
        },
        Scenario {
            name: "actor_must_match_peer, another agent's certificate",
            listener: "mtls-peer",
            cert: Some("billing"),
            token: unbound.clone(),
            headers: vec![],
            reason: "peer_mismatch",
            status: 403,
            binding: "absent",
            peer: Some(BILLING),
        },
        Scenario {
            name: "actor_must_match_peer, no actor: the SPIFFE subject's own certificate",
            listener: "mtls-peer",
            cert: Some("billing"),
            token: billing_itself.clone(),
            headers: vec![],
            reason: "allowed",
            status: 200,
            binding: "absent",
            peer: Some(BILLING),
        },
        Scenario {
            name: "actor_must_match_peer, no actor: another certificate than the subject's",
            listener: "mtls-peer",
            cert: Some("orchestrator"),
            token: billing_itself.clone(),
            headers: vec![],
            reason: "peer_mismatch",
            status: 403,
            binding: "absent",
            peer: Some(ORCHESTRATOR),
        },
    ];
    let mut problems = Vec::new();
    for s in &scenarios {
        problems.extend(rig.run(s));
    }

    // The shipped module has no test hooks: the headers are ordinary headers there, they
    // change nothing and reach the upstream unchanged.
    let hooks = [
        ("x-actwarden-test-now", "4102444800".to_owned()),
        ("x-actwarden-test-peer", orchestrator_peer),
    ];
    let mut req =
        Request::new("GET", "/v1/x").header("authorization", &format!("Bearer {unbound}"));
    for (k, v) in &hooks {
        req = req.header(k, v);
    }
    let d = decide(&rig.envoy, &rig.via("plain", None), req).unwrap();
    if d.reason() != "allowed" || !d.audit["peer"].is_null() {
        problems.push(format!(
            "test hooks in the shipped module: {}",
            d.describe()
        ));
    }
    for (k, v) in &hooks {
        if d.upstream_header(k) != Some(v.as_str()) {
            problems.push(format!(
                "shipped module: {k} should reach the upstream unchanged, got {:?}",
                d.upstream_header(k)
            ));
        }
    }

    // A required client certificate is enforced by Envoy's TLS handshake already.
    let no_cert = rig.via("mtls", None);
    let refused = decide(
        &rig.envoy,
        &no_cert,
        Request::new("GET", "/v1/x").header("authorization", &format!("Bearer {bound}")),
    );
    if refused.is_ok() {
        problems
            .push("the mTLS listener accepted a connection without a client certificate".into());
    }
    assert!(
        problems.is_empty(),
        "log {}:\n{}",
        rig.envoy.log_path().display(),
        problems.join("\n")
    );
}
