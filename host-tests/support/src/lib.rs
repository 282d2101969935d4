//! The shared test corpus format (`host-tests/corpus/`): one set of JSON cases that the
//! native tests, the Envoy end-to-end tests and the browser tests all run unchanged.
//!
//! A case names a configuration, a time, a request and a token *recipe*; tokens are minted
//! when the case runs (signatures need private keys, and a recipe says in words what the
//! token is: "ES256 with the RSA key's kid", "exp as a string"). This module turns recipes
//! into tokens and applies twin patches, so every host materialises cases identically.

use actwarden::Alg;

use actwarden::mint::{MintError, SigningKey};
use ring::rand::SecureRandom;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::collections::HashMap;

/// How to make the token of a case.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenSpec {
    /// A literal token; nothing else applies.
    pub raw: Option<String>,
    /// Key whose `kid` goes in the header (and that signs, unless `signer` is given).
    pub key: Option<String>,
    /// Header `alg` and signing algorithm; defaults to the signer's.
    pub alg: Option<String>,
    /// Algorithm actually used to sign when it differs from the header `alg`.
    pub sign_alg: Option<String>,
    /// Key that signs, when it is not `key` (forgeries, algorithm confusion).
    pub signer: Option<String>,
    /// Members merged over the default header `{alg, typ: "at+jwt", kid}`; `null` removes.
    pub header: Option<Map<String, Value>>,
    /// Literal header JSON text (e.g. with duplicate members), replacing `header`.
    pub header_json: Option<String>,
    pub claims: Option<Value>,
    /// Literal claims JSON text, replacing `claims`.
    pub claims_json: Option<String>,
    /// Literal base64url payload, replacing `claims` (invalid UTF-8, not JSON).
    pub payload_b64: Option<String>,
    /// Adds a `pad` claim so that the claims JSON is at least this many bytes.
    pub pad_claims_to: Option<usize>,
    /// Replaces `act` with a chain of this many nested actors
    /// `spiffe://prod.example.com/agent/hop-N`.
    pub act_depth: Option<usize>,
    /// `valid` (default), `empty`, or `flipped` (last byte changed).
    pub signature: Option<String>,
    /// HMAC secret = these bytes (UTF-8) instead of a key: the "sign HS256 with the RSA
    /// public key" confusion attack. Requires `sign_alg`/`alg` HS*.
    pub hmac_secret: Option<String>,
    /// Binds the token to this key for DPoP: `cnf.jkt` = its RFC 7638 thumbprint (set
    /// over any `cnf` of `claims`).
    pub cnf_jkt_of: Option<String>,
}

/// How to make the DPoP proof of a case (SPEC §10). Minted at the case's `now`, for its
/// request and token unless a member says otherwise.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProofSpec {
    /// A literal proof; nothing else applies.
    pub raw: Option<String>,
    /// The agent's private key, whose public part goes in `jwk` and that signs.
    pub key: Option<String>,
    /// Signs instead of `key` (the `jwk` still names `key`: a forged proof).
    pub signer: Option<String>,
    /// Header `alg`; defaults to the signer's.
    pub alg: Option<String>,
    /// Members merged over the header `{typ: "dpop+jwt", alg, jwk}`; `null` removes one.
    pub header: Option<Map<String, Value>>,
    /// Defaults to the request method.
    pub htm: Option<String>,
    /// Defaults to `https://<authority><path without query>`.
    pub htu: Option<String>,
    /// `iat` = `now` + this (negative: in the past). Defaults to 0.
    pub iat_offset_s: Option<i64>,
    /// Defaults to a random value (so every run, and every host, sends a fresh proof).
    pub jti: Option<String>,
    /// `ath` as given; defaults to base64url(SHA-256(token)).
    pub ath: Option<String>,
    /// Members merged over the claims; `null` removes one (`{"jti": null}`).
    pub claims: Option<Map<String, Value>>,
    /// `flipped`: the last signature byte changed.
    pub signature: Option<String>,
    /// The host decides the request once before the decision the case expects: the
    /// second use of the same proof (`dpop_replayed`). A host that keeps no window between
    /// decisions (the CLI, one request per run) cannot run such a case.
    #[serde(default)]
    pub replay: bool,
}

/// One corpus case (see `host-tests/corpus/README.md`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub name: String,
    #[serde(default)]
    pub about: Option<String>,
    pub config: String,
    pub now: u64,
    /// Public keys (by key name) standing in for each `remote_jwks` provider's fetched set.
    #[serde(default)]
    pub remote_jwks: HashMap<String, Vec<String>>,
    /// SPEC §7 REQUEST.json; the string `{token}` in a header value is replaced by the
    /// token. Without any `{token}`, a token goes in `authorization: Bearer`.
    pub request: Value,
    pub token: Option<TokenSpec>,
    /// The DPoP proof recipe; `{dpop}` in a header value is replaced by the proof, else
    /// it goes in the `dpop` header.
    pub dpop: Option<ProofSpec>,
    /// SPEC §9: the upstream's response to this (`tools/list`) request; the host filters
    /// it and `expect.filtered_tools` says what must remain.
    #[serde(default)]
    pub mcp_response: Option<String>,
    pub expect: Expect,
    /// A near-identical case (this case with a JSON merge patch) and what it gives.
    pub twin: Option<Twin>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Twin {
    pub patch: Value,
    pub expect: Expect,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// `allow` or `deny`.
    pub decision: String,
    pub reason: String,
    /// HTTP status of the reason (`null` on allow).
    #[serde(default)]
    pub status: Option<u16>,
    /// Exactly the identity headers forwarded (checked when present).
    pub headers: Option<Map<String, Value>>,
    /// Response headers that must be present with these values (deny).
    pub response_headers: Option<Map<String, Value>>,
    /// HTTP status of the local reply (200 for gRPC).
    pub response_status: Option<u16>,
    /// Audit fields that must have these values.
    pub audit: Option<Map<String, Value>>,
    /// SPEC §9: the tool names left in the filtered `tools/list` response, in order, or
    /// `"unfilterable"` (the 502). Checked against `filtered_response` when present.
    pub filtered_tools: Option<Value>,
}

/// The body of a REQUEST.json (`body` as text, or `body_base64`), if it has one.
pub fn request_body(request: &Value) -> Option<Vec<u8>> {
    if let Some(text) = request.get("body").and_then(Value::as_str) {
        return Some(text.as_bytes().to_vec());
    }
    request
        .get("body_base64")
        .and_then(Value::as_str)
        .and_then(b64::decode_standard)
}

/// The tool names of a filtered `tools/list` body (JSON, or the SSE `data:` event with a
/// `result`), or `"unfilterable"` for the 502 that replaces it.
pub fn filtered_tools(status: u16, body: &str) -> Value {
    if status == 502 {
        return json!("unfilterable");
    }
    let message: Value = if body.trim_start().starts_with('{') {
        serde_json::from_str(body).unwrap_or(Value::Null)
    } else {
        body.lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .filter_map(|d| serde_json::from_str::<Value>(d.trim()).ok())
            .find(|m| m.get("result").is_some())
            .unwrap_or(Value::Null)
    };
    let names: Vec<Value> = message
        .pointer("/result/tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| t.get("name").cloned())
        .collect();
    Value::Array(names)
}

/// RFC 7396 JSON merge patch.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(p) => {
            if !target.is_object() {
                *target = Value::Object(Map::new());
            }
            if let Value::Object(t) = target {
                for (k, v) in p {
                    if v.is_null() {
                        t.remove(k);
                    } else {
                        merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
                    }
                }
            }
        }
        other => *target = other.clone(),
    }
}

/// The twin of a case (given as the case's JSON), as a full case: the case with the
/// twin's merge patch applied, the twin's expectation, and `(twin)` appended to the name.
pub fn twin_case(case: &Value) -> Result<Option<Case>, String> {
    let Some(twin) = case.get("twin") else {
        return Ok(None);
    };
    let mut value = case.clone();
    if let Value::Object(m) = &mut value {
        m.remove("twin");
    }
    if let Some(patch) = twin.get("patch") {
        merge_patch(&mut value, patch);
    }
    if let Value::Object(m) = &mut value {
        let name = case.get("name").and_then(Value::as_str).unwrap_or_default();
        m.insert("name".into(), json!(format!("{name} (twin)")));
        m.insert(
            "expect".into(),
            twin.get("expect").cloned().unwrap_or(Value::Null),
        );
    }
    serde_json::from_value(value)
        .map(Some)
        .map_err(|e| format!("twin: {e}"))
}

fn parse_alg(name: &str) -> Result<Alg, MintError> {
    Alg::parse(name).map_err(|e| MintError::UnsupportedAlgorithm(e.0))
}

/// `{"sub":"spiffe://prod.example.com/agent/hop-1","act":{…hop-2…}}` as JSON text. Built
/// as text, not as a `serde_json::Value`: a 5000-deep `Value` overflows small stacks when it
/// is serialised or dropped (browsers, test threads).
fn nested_act_json(depth: usize) -> String {
    let mut out = String::new();
    for hop in 1..=depth {
        out.push_str(&format!(
            "{{\"sub\":\"spiffe://prod.example.com/agent/hop-{hop}\""
        ));
        if hop < depth {
            out.push_str(",\"act\":");
        }
    }
    out.push_str(&"}".repeat(depth));
    out
}

/// Makes the token a recipe describes.
pub fn materialize(
    spec: &TokenSpec,
    keys: &HashMap<String, SigningKey>,
    rng: &dyn SecureRandom,
) -> Result<String, MintError> {
    if let Some(raw) = &spec.raw {
        return Ok(raw.clone());
    }
    let key_of = |name: &str| {
        keys.get(name)
            .ok_or(MintError::NotAPrivateKey("no such key in keys.json"))
    };
    let header_key = spec.key.as_deref().map(key_of).transpose()?;
    let signer = match (&spec.signer, header_key) {
        (Some(name), _) => Some(key_of(name)?),
        (None, k) => k,
    };
    let header_alg_name = match (&spec.alg, signer) {
        (Some(a), _) => a.clone(),
        (None, Some(k)) => k.default_alg().name().to_owned(),
        (None, None) => "HS256".to_owned(),
    };
    let header_json = match &spec.header_json {
        Some(text) => text.clone(),
        None => {
            let mut header = Map::new();
            header.insert("alg".into(), json!(header_alg_name));
            header.insert("typ".into(), json!("at+jwt"));
            if let Some(kid) = header_key.and_then(SigningKey::kid) {
                header.insert("kid".into(), json!(kid));
            }
            for (k, v) in spec.header.iter().flatten() {
                if v.is_null() {
                    header.remove(k);
                } else {
                    header.insert(k.clone(), v.clone());
                }
            }
            Value::Object(header).to_string()
        }
    };
    let payload = match (&spec.payload_b64, &spec.claims_json) {
        (Some(p), _) => p.clone(),
        (None, Some(text)) => b64_encode(text.as_bytes()),
        (None, None) => {
            let mut claims = spec.claims.clone().unwrap_or_else(|| json!({}));
            if let (Some(name), Value::Object(m)) = (&spec.cnf_jkt_of, &mut claims) {
                let jkt = key_of(name)?
                    .jkt()
                    .ok_or(MintError::NotAPrivateKey("no thumbprint for this key type"))?;
                m.insert("cnf".into(), json!({ "jkt": jkt }));
            }
            if let (Some(target), Value::Object(m)) = (spec.pad_claims_to, &mut claims) {
                let len = Value::Object(m.clone()).to_string().len();
                m.insert("pad".into(), json!("x".repeat(target.saturating_sub(len))));
            }
            let mut text = claims.to_string();
            if let (Some(depth @ 1..), Value::Object(m)) = (spec.act_depth, &claims) {
                // Splice the chain in as text, replacing any `act` of the recipe.
                let mut without_act = m.clone();
                without_act.remove("act");
                let rest = Value::Object(without_act).to_string();
                let inner = rest.strip_prefix('{').unwrap_or("}");
                let sep = if inner == "}" { "" } else { "," };
                text = format!("{{\"act\":{}{sep}{inner}", nested_act_json(depth));
            }
            b64_encode(text.as_bytes())
        }
    };
    let input = format!("{}.{}", b64_encode(header_json.as_bytes()), payload);
    let sign_alg = parse_alg(spec.sign_alg.as_deref().unwrap_or(&header_alg_name));
    let mut signature = match spec.signature.as_deref() {
        Some("empty") => Vec::new(),
        _ => match (&spec.hmac_secret, signer) {
            (Some(secret), _) => {
                let hmac = match sign_alg? {
                    Alg::HS384 => ring::hmac::HMAC_SHA384,
                    Alg::HS512 => ring::hmac::HMAC_SHA512,
                    _ => ring::hmac::HMAC_SHA256,
                };
                ring::hmac::sign(
                    &ring::hmac::Key::new(hmac, secret.as_bytes()),
                    input.as_bytes(),
                )
                .as_ref()
                .to_vec()
            }
            (None, Some(k)) => k.sign(sign_alg?, input.as_bytes(), rng)?,
            (None, None) => {
                return Err(MintError::NotAPrivateKey(
                    "a token recipe needs `key`, `signer`, `hmac_secret` or `raw`",
                ))
            }
        },
    };
    if spec.signature.as_deref() == Some("flipped") {
        if let Some(last) = signature.last_mut() {
            *last ^= 0x01;
        }
    }
    Ok(format!("{input}.{}", b64_encode(&signature)))
}

/// Makes the DPoP proof a recipe describes, for `request` (SPEC §7 JSON) and `token`.
pub fn materialize_proof(
    spec: &ProofSpec,
    keys: &HashMap<String, SigningKey>,
    request: &Value,
    token: Option<&str>,
    now: u64,
    rng: &dyn SecureRandom,
) -> Result<String, MintError> {
    if let Some(raw) = &spec.raw {
        return Ok(raw.clone());
    }
    let key_of = |name: &str| {
        keys.get(name)
            .ok_or(MintError::NotAPrivateKey("no such key in keys.json"))
    };
    let key = key_of(spec.key.as_deref().ok_or(MintError::NotAPrivateKey(
        "a proof recipe needs `key` or `raw`",
    ))?)?;
    let signer = match &spec.signer {
        Some(name) => key_of(name)?,
        None => key,
    };
    let alg = match &spec.alg {
        Some(a) => a.clone(),
        None => signer.default_alg().name().to_owned(),
    };
    let mut jwk = key.public_jwk();
    if let Value::Object(m) = &mut jwk {
        m.retain(|k, _| ["kty", "crv", "x", "y", "n", "e"].contains(&k.as_str()));
    }
    let mut header = Map::new();
    header.insert("typ".into(), json!("dpop+jwt"));
    header.insert("alg".into(), json!(alg));
    header.insert("jwk".into(), jwk);
    merge_members(&mut header, spec.header.as_ref());
    let claims = proof_claims(spec, request, token, now, rng)?;
    let input = format!(
        "{}.{}",
        b64_encode(Value::Object(header).to_string().as_bytes()),
        b64_encode(Value::Object(claims).to_string().as_bytes())
    );
    let mut signature = signer.sign(parse_alg(&alg)?, input.as_bytes(), rng)?;
    if spec.signature.as_deref() == Some("flipped") {
        if let Some(last) = signature.last_mut() {
            *last ^= 0x01;
        }
    }
    Ok(format!("{input}.{}", b64_encode(&signature)))
}

fn proof_claims(
    spec: &ProofSpec,
    request: &Value,
    token: Option<&str>,
    now: u64,
    rng: &dyn SecureRandom,
) -> Result<Map<String, Value>, MintError> {
    let field = |name: &str| {
        request
            .get(name)
            .and_then(Value::as_str)
            .unwrap_or_default()
    };
    let path = field("path");
    let path = path.split(['?', '#']).next().unwrap_or_default();
    let htu = match &spec.htu {
        Some(h) => h.clone(),
        None => format!("https://{}{path}", field("authority")),
    };
    let jti = match &spec.jti {
        Some(j) => j.clone(),
        None => {
            let mut bytes = [0u8; 16];
            rng.fill(&mut bytes).map_err(|_| MintError::Random)?;
            b64_encode(&bytes)
        }
    };
    let iat = now as i64 + spec.iat_offset_s.unwrap_or(0);
    let mut claims = Map::new();
    claims.insert("jti".into(), json!(jti));
    claims.insert(
        "htm".into(),
        json!(spec
            .htm
            .clone()
            .unwrap_or_else(|| field("method").to_owned())),
    );
    claims.insert("htu".into(), json!(htu));
    claims.insert("iat".into(), json!(iat));
    let ath = match (&spec.ath, token) {
        (Some(a), _) => Some(a.clone()),
        (None, Some(t)) => Some(b64_encode(
            ring::digest::digest(&ring::digest::SHA256, t.as_bytes()).as_ref(),
        )),
        (None, None) => None,
    };
    if let Some(ath) = ath {
        claims.insert("ath".into(), json!(ath));
    }
    merge_members(&mut claims, spec.claims.as_ref());
    Ok(claims)
}

/// `over`'s members set on `target`; a `null` removes one.
fn merge_members(target: &mut Map<String, Value>, over: Option<&Map<String, Value>>) {
    for (k, v) in over.into_iter().flatten() {
        if v.is_null() {
            target.remove(k);
        } else {
            target.insert(k.clone(), v.clone());
        }
    }
}

/// Puts the proof in the request: in place of `{dpop}` in header values, else in `dpop`.
pub fn request_with_proof(request: &str, proof: &str) -> String {
    let Ok(mut value) = serde_json::from_str::<Value>(request) else {
        return request.to_owned();
    };
    let mut placed = false;
    if let Some(Value::Object(headers)) = value.get_mut("headers") {
        for v in headers.values_mut() {
            placed |= replace_text(v, "{dpop}", proof);
        }
        if !placed {
            headers.insert("dpop".into(), json!(proof));
        }
    }
    value.to_string()
}

fn replace_text(value: &mut Value, placeholder: &str, text: &str) -> bool {
    match value {
        Value::String(s) if s.contains(placeholder) => {
            *s = s.replace(placeholder, text);
            true
        }
        Value::Array(items) => items
            .iter_mut()
            .fold(false, |acc, v| replace_text(v, placeholder, text) | acc),
        _ => false,
    }
}

/// Loads `keys.json` (`{"name": private JWK, …}`).
pub fn load_keys(
    text: &str,
    rng: &dyn SecureRandom,
) -> Result<HashMap<String, SigningKey>, String> {
    let map: Map<String, Value> =
        serde_json::from_str(text).map_err(|e| format!("keys.json: {e}"))?;
    map.into_iter()
        .map(|(name, jwk)| match jwk {
            Value::Object(j) => SigningKey::from_jwk(j, rng)
                .map(|k| (name.clone(), k))
                .map_err(|e| format!("keys.json `{name}`: {e}")),
            _ => Err(format!("keys.json `{name}`: not an object")),
        })
        .collect()
}

/// REQUEST.json text of a case with its token in place.
pub fn request_with_token(request: &Value, token: Option<&str>) -> String {
    let mut request = request.clone();
    if let Some(token) = token {
        let mut placed = false;
        if let Some(Value::Object(headers)) = request.get_mut("headers") {
            for value in headers.values_mut() {
                placed |= replace_placeholder(value, token);
            }
        }
        if !placed {
            if let Value::Object(r) = &mut request {
                let headers = r.entry("headers").or_insert_with(|| json!({}));
                if let Value::Object(h) = headers {
                    h.insert("authorization".into(), json!(format!("Bearer {token}")));
                }
            }
        }
    }
    request.to_string()
}

fn replace_placeholder(value: &mut Value, token: &str) -> bool {
    match value {
        Value::String(s) if s.contains("{token}") => {
            *s = s.replace("{token}", token);
            true
        }
        Value::Array(items) => items
            .iter_mut()
            .fold(false, |acc, v| replace_placeholder(v, token) | acc),
        _ => false,
    }
}

/// Checks a decision report (the CLI's JSON) against an expectation; `Err` says what differs.
pub fn check_expect(report: &Value, expect: &Expect) -> Result<(), String> {
    let mut problems = Vec::new();
    let field = |name: &str| report.get(name).cloned().unwrap_or(Value::Null);
    if field("decision") != json!(expect.decision) {
        problems.push(format!(
            "decision: expected {}, got {}",
            expect.decision,
            field("decision")
        ));
    }
    if field("reason") != json!(expect.reason) {
        problems.push(format!(
            "reason: expected {}, got {} ({})",
            expect.reason,
            field("reason"),
            field("detail")
        ));
    }
    if field("status") != json!(expect.status) {
        problems.push(format!(
            "status: expected {:?}, got {}",
            expect.status,
            field("status")
        ));
    }
    if let Some(headers) = &expect.headers {
        if field("headers") != Value::Object(headers.clone()) {
            problems.push(format!(
                "headers: expected {}, got {}",
                Value::Object(headers.clone()),
                field("headers")
            ));
        }
    }
    let response = field("response");
    if let Some(status) = expect.response_status {
        if response.get("status") != Some(&json!(status)) {
            problems.push(format!(
                "response status: expected {status}, got {}",
                response.get("status").unwrap_or(&Value::Null)
            ));
        }
    }
    for (name, value) in expect.response_headers.iter().flatten() {
        let got = response
            .get("headers")
            .and_then(|h| h.get(name))
            .unwrap_or(&Value::Null);
        if got != value {
            problems.push(format!(
                "response header {name}: expected {value}, got {got}"
            ));
        }
    }
    if let Some(want) = &expect.filtered_tools {
        let filtered = field("filtered_response");
        let got = match (
            filtered.get("status").and_then(Value::as_u64),
            filtered.get("body").and_then(Value::as_str),
        ) {
            (Some(status), Some(body)) => filtered_tools(status as u16, body),
            _ => Value::Null,
        };
        if &got != want {
            problems.push(format!(
                "filtered tools: expected {want}, got {got} ({filtered})"
            ));
        }
    }
    for (name, value) in expect.audit.iter().flatten() {
        if &field(name) != value {
            problems.push(format!(
                "audit {name}: expected {value}, got {}",
                field(name)
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

fn b64_encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

// ---------------------------------------------------------------------------------------
// Loading the corpus from disk, and preparing a case for a host.

/// The corpus directory of this repository (`host-tests/corpus/`).
pub fn corpus_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpus")
}

/// The whole corpus: signing keys, named configurations, and every case in file order.
pub struct Corpus {
    pub keys: HashMap<String, SigningKey>,
    pub configs: Map<String, Value>,
    /// (file name, case JSON) in file order.
    pub cases: Vec<(String, Value)>,
}

fn read(path: &std::path::Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// Reads `keys.json`, `configs.json` and `cases/*.json` under `dir`.
pub fn load(dir: &std::path::Path, rng: &dyn SecureRandom) -> Result<Corpus, String> {
    let keys = load_keys(&read(&dir.join("keys.json"))?, rng)?;
    let configs: Map<String, Value> = serde_json::from_str(&read(&dir.join("configs.json"))?)
        .map_err(|e| format!("configs.json: {e}"))?;
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(dir.join("cases"))
        .map_err(|e| format!("{}/cases: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(format!("no case files in {}/cases", dir.display()));
    }
    let mut cases = Vec::new();
    for file in files {
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let list: Vec<Value> = serde_json::from_str(&read(&file)?)
            .map_err(|e| format!("{name}: not a JSON array of cases: {e}"))?;
        cases.extend(list.into_iter().map(|c| (name.clone(), c)));
    }
    Ok(Corpus {
        keys,
        configs,
        cases,
    })
}

/// Every case followed by its twin, in file order.
pub fn cases_and_twins(corpus: &Corpus) -> Result<Vec<Case>, String> {
    let mut out = Vec::new();
    for (file, value) in &corpus.cases {
        out.push(serde_json::from_value(value.clone()).map_err(|e| format!("{file}: {e}"))?);
        out.extend(twin_case(value).map_err(|e| format!("{file}: {e}"))?);
    }
    Ok(out)
}

/// A case ready to decide: configuration text, REQUEST.json text with its token, and the
/// public JWKS text standing in for each remote provider.
pub struct Prepared {
    pub config: String,
    pub request: String,
    pub token: Option<String>,
    pub remote_jwks: Vec<(String, String)>,
    /// The DPoP proof (already in `request`), if the case has one.
    pub proof: Option<String>,
    /// Decide `request` once before the decision the case expects (`ProofSpec::replay`).
    pub replay: bool,
}

/// Mints the case's token and builds its request and remote key sets.
pub fn prepare(corpus: &Corpus, case: &Case, rng: &dyn SecureRandom) -> Result<Prepared, String> {
    let config = corpus
        .configs
        .get(&case.config)
        .ok_or_else(|| format!("no config `{}` in configs.json", case.config))?
        .to_string();
    let token = case
        .token
        .as_ref()
        .map(|spec| materialize(spec, &corpus.keys, rng))
        .transpose()
        .map_err(|e| format!("cannot materialise the token: {e}"))?;
    let mut request = request_with_token(&case.request, token.as_deref());
    let proof = case
        .dpop
        .as_ref()
        .map(|spec| {
            materialize_proof(
                spec,
                &corpus.keys,
                &case.request,
                token.as_deref(),
                case.now,
                rng,
            )
        })
        .transpose()
        .map_err(|e| format!("cannot materialise the DPoP proof: {e}"))?;
    if let Some(proof) = &proof {
        request = request_with_proof(&request, proof);
    }
    let mut remote_jwks = Vec::new();
    for (provider, names) in &case.remote_jwks {
        let keys: Vec<&SigningKey> = names
            .iter()
            .map(|n| {
                corpus
                    .keys
                    .get(n)
                    .ok_or_else(|| format!("remote_jwks: no key `{n}` in keys.json"))
            })
            .collect::<Result<_, _>>()?;
        remote_jwks.push((
            provider.clone(),
            actwarden::mint::public_jwks(&keys).to_string(),
        ));
    }
    Ok(Prepared {
        config,
        request,
        token,
        remote_jwks,
        replay: case.dpop.as_ref().is_some_and(|d| d.replay),
        proof,
    })
}

/// The prepared case's remote JWKS, parsed as a host that fetched them would hold them.
pub fn fetched_keys(p: &Prepared) -> Result<HashMap<String, actwarden::KeySet>, String> {
    p.remote_jwks
        .iter()
        .map(|(provider, jwks)| {
            actwarden::parse_jwks(jwks, actwarden::KeySource::Fetched)
                .map(|set| (provider.clone(), set))
                .map_err(|e| format!("remote_jwks `{provider}`: {e}"))
        })
        .collect()
}

/// base64url without padding and hex, for tests that build or take apart tokens by hand.
pub mod b64 {
    use base64::Engine as _;

    pub fn encode(bytes: &[u8]) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }

    pub fn decode(text: &str) -> Option<Vec<u8>> {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(text)
            .ok()
    }

    /// Standard base64 (REQUEST.json `body_base64`).
    pub fn decode_standard(text: &str) -> Option<Vec<u8>> {
        base64::engine::general_purpose::STANDARD.decode(text).ok()
    }

    pub fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// A decision with its audit record, built as a host builds it (`Decision::audit_record`
/// from the request decided), for tests that read both.
pub struct Decided {
    pub decision: actwarden::Decision,
    pub audit: actwarden::AuditRecord,
}

impl Decided {
    pub fn new(decision: actwarden::Decision, request: &actwarden::Request) -> Self {
        let audit = decision.audit_record(request);
        Decided { decision, audit }
    }
}

impl std::ops::Deref for Decided {
    type Target = actwarden::Decision;
    fn deref(&self) -> &actwarden::Decision {
        &self.decision
    }
}
