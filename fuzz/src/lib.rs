//! What the fuzz targets share: the corpus keys and configurations (compiled in, so a
//! target needs no files at run time), the fixed policies and key sets, a structured
//! request built with `arbitrary` (method, path, headers, a token over fuzz-chosen claims
//! signed by a fixed key, peer), and the invariants every decision must keep.
//!
//! Adding a target: a file in `fuzz_targets/`, a `[[bin]]` in `Cargo.toml`, a seed folder
//! `seeds/<name>/`, and the name in `TARGETS` of `scripts/fuzz.sh`. Request classes for
//! the decision target: a variant of [`AuthIn`] / [`BodyIn`] here (MCP messages in
//! [`mcp`], DPoP proofs in [`dpop`]).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod dpop;
pub mod mcp;

use actwarden::mint::SigningKey;
use actwarden::{
    decide, Alg, Context, Decision, KeySet, KeySource, Peer, Policy, Reason, Request, TokenCache,
    UnixTime, Verdict, RING,
};
use arbitrary::Arbitrary;
use ring::rand::SystemRandom;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::OnceLock;

pub const KEYS_JSON: &str = include_str!("../../host-tests/corpus/keys.json");
pub const CONFIGS_JSON: &str = include_str!("../../host-tests/corpus/configs.json");

/// The corpus's fixed time (every case's `now`).
pub const NOW: u64 = 1_800_000_000;

/// Policies the decision target chooses from, by name in `configs.json`. Each comes twice:
/// as is, and with every local key set replaced by the `hs-a` secret (HS256 only): the
/// same rules and identity checks at a fraction of the cost of asymmetric signatures under
/// the sanitizer, so most executions use the HS256 twin (see [`RequestIn::asymmetric`]).
pub const POLICY_NAMES: [&str; 13] = [
    "main",
    "binding-required",
    "peer-match",
    "hs",
    "remote",
    "open",
    "custom-headers",
    "types",
    "strict-time",
    "shadow-rule",
    "shadow-policy",
    "mcp",
    "dpop",
];

/// Signing keys by corpus name; `evil-es256` is in no configured key set (forgeries).
pub const KEY_NAMES: [&str; 6] = [
    "hs-a",
    "ed-a",
    "es256-a",
    "es256-b",
    "es384-a",
    "evil-es256",
];

/// An HS256 key with `hs-a`'s kid and another secret: the attacker's, for the HS twins.
pub const EVIL_HS: &str = r#"{"kty":"oct","alg":"HS256","kid":"hs-a","k":"ZXZpbC1zZWNyZXQtZXZpbC1zZWNyZXQtZXZpbC1zZWNyZXQ"}"#;

pub struct Fixture {
    pub policies: Vec<Policy>,
    /// The same policies with HS256 keys only (`hs_twin`).
    pub hs_policies: Vec<Policy>,
    pub keys: Vec<SigningKey>,
    /// `hs-a`, then the attacker's HS key.
    pub hs_keys: Vec<SigningKey>,
    /// The fetched keys of the `remote` configuration's `remote-sts`.
    pub remote: HashMap<String, KeySet>,
    pub no_remote: HashMap<String, KeySet>,
    pub rng: SystemRandom,
    /// DPoP proof keys ([`dpop::PROOF_KEYS`]).
    pub proof_keys: Vec<dpop::ProofKey>,
}

fn configs() -> Map<String, Value> {
    match serde_json::from_str(CONFIGS_JSON) {
        Ok(Value::Object(m)) => m,
        _ => panic!("configs.json is not an object"),
    }
}

pub fn corpus_key(name: &str) -> SigningKey {
    let keys: Value = serde_json::from_str(KEYS_JSON).unwrap();
    SigningKey::from_jwk_json(&keys[name].to_string(), &SystemRandom::new()).unwrap()
}

/// A configuration of `configs.json` by name, as JSON text.
pub fn config_text(name: &str) -> String {
    configs()[name].to_string()
}

/// The configuration with every `local_jwks` provider on the `hs-a` secret, HS256 only.
pub fn hs_twin(name: &str) -> String {
    let configs = configs();
    let mut config = configs[name].clone();
    let hs_jwks = configs["hs"]["providers"]["hs-sts"]["local_jwks"].clone();
    for provider in config["providers"].as_object_mut().unwrap().values_mut() {
        if provider.get("local_jwks").is_some() {
            provider["local_jwks"] = hs_jwks.clone();
            provider["algorithms"] = json!(["HS256"]);
        }
    }
    config.to_string()
}

pub fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let policies = POLICY_NAMES
            .iter()
            .map(|n| Policy::from_json(&config_text(n)).unwrap())
            .collect();
        let hs_policies = POLICY_NAMES
            .iter()
            .map(|n| Policy::from_json(&hs_twin(n)).unwrap())
            .collect();
        let rng = SystemRandom::new();
        let hs_keys = vec![
            corpus_key("hs-a"),
            SigningKey::from_jwk_json(EVIL_HS, &rng).unwrap(),
        ];
        let keys: Vec<SigningKey> = KEY_NAMES.iter().map(|n| corpus_key(n)).collect();
        let remote_jwks =
            actwarden::mint::public_jwks(&[&corpus_key("es256-a"), &corpus_key("ed-a")]);
        let remote_set =
            actwarden::parse_jwks(&remote_jwks.to_string(), KeySource::Fetched).unwrap();
        let mut remote = HashMap::new();
        remote.insert("remote-sts".to_owned(), remote_set);
        Fixture {
            policies,
            hs_policies,
            hs_keys,
            keys,
            remote,
            no_remote: HashMap::new(),
            rng: SystemRandom::new(),
            proof_keys: dpop::proof_keys(),
        }
    })
}

// --- Arbitrary inputs ------------------------------------------------------------------

/// Strings a policy cares about, so the fuzzer reaches deep checks without guessing them.
pub const KNOWN: [&str; 28] = [
    "https://sts.example.com",
    "https://partner.example.com",
    "https://hs.example.com",
    "https://remote.example.com",
    "payments-api",
    "user:alice",
    "user:mallory",
    "user",
    "ai_agent",
    "service",
    "spiffe://prod.example.com/agent/orchestrator",
    "spiffe://prod.example.com/agent/billing",
    "spiffe://prod.example.com/agent/reader",
    "spiffe://prod.example.com/agent/rogue",
    "spiffe://prod.example.com/agent/hop-1",
    "spiffe://prod.example.com/agent/hop-2",
    "spiffe://evil.example.com/agent/x",
    "invoices:read",
    "payments:write",
    "payments:read",
    "invoices:read payments:write",
    "urn:example:acr:approved",
    "jti-revoked",
    "at+jwt",
    "application/at+jwt",
    "JWT",
    "es256-a",
    "ed-a",
];

pub const PATHS: [&str; 11] = [
    "/healthz",
    "/v1/payments",
    "/v1/transfers",
    "/v1/admin",
    "/pkg.Service/Method",
    "/v1/invoices",
    "/v1/profile",
    "/v1/partner",
    "/v1/secure",
    "/any",
    "/mcp",
];

#[derive(Arbitrary, Debug, Clone)]
pub enum Str {
    Known(u8),
    Any(String),
}

impl Str {
    pub fn get(&self) -> String {
        match self {
            Str::Known(i) => KNOWN[usize::from(*i) % KNOWN.len()].to_owned(),
            Str::Any(s) => s.clone(),
        }
    }
}

/// Any JSON value, biased toward the strings above.
#[derive(Arbitrary, Debug, Clone)]
pub enum JsonIn {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Str),
    Arr(Vec<JsonIn>),
    Obj(Vec<(Str, JsonIn)>),
}

impl JsonIn {
    pub fn get(&self) -> Value {
        match self {
            JsonIn::Null => Value::Null,
            JsonIn::Bool(b) => json!(b),
            JsonIn::Int(i) => json!(i),
            JsonIn::Float(f) => json!(f),
            JsonIn::Str(s) => json!(s.get()),
            JsonIn::Arr(a) => Value::Array(a.iter().map(JsonIn::get).collect()),
            JsonIn::Obj(o) => Value::Object(o.iter().map(|(k, v)| (k.get(), v.get())).collect()),
        }
    }
}

/// A claim: absent, a fuzz-chosen value, or (most often) a well-formed one.
#[derive(Arbitrary, Debug, Clone)]
pub enum Claim<T> {
    Absent,
    Good(T),
    Json(JsonIn),
}

/// A time relative to [`NOW`].
#[derive(Arbitrary, Debug, Clone, Copy)]
pub struct Offset(pub i16);

#[derive(Arbitrary, Debug, Clone)]
pub struct ActIn {
    pub sub: Claim<Str>,
    pub sub_profile: Option<Str>,
    pub iss: Option<Str>,
    pub extra: Option<(Str, JsonIn)>,
}

#[derive(Arbitrary, Debug, Clone)]
pub struct ClaimsIn {
    pub iss: Claim<Str>,
    pub sub: Claim<Str>,
    pub sub_profile: Option<Str>,
    pub aud: Claim<Vec<Str>>,
    pub iat: Claim<Offset>,
    pub exp: Claim<Offset>,
    pub nbf: Option<Claim<Offset>>,
    pub auth_time: Option<Offset>,
    pub jti: Option<Str>,
    pub scope: Claim<Vec<Str>>,
    pub scp: Option<Claim<Vec<Str>>>,
    pub act: Vec<ActIn>,
    /// Wrap the chain this many more times (a nesting bomb when large).
    pub bomb: Option<u16>,
    pub may_act: Option<Claim<(Str, Option<Str>)>>,
    pub cnf: Option<Claim<Option<[u8; 32]>>>,
    pub acr: Option<Str>,
    pub extra: Vec<(Str, JsonIn)>,
}

fn time(o: Offset) -> Value {
    json!(NOW as i64 + i64::from(o.0))
}

impl ClaimsIn {
    pub fn get(&self) -> Value {
        let mut m = Map::new();
        let mut put = |k: &str, v: Option<Value>| {
            if let Some(v) = v {
                m.insert(k.to_owned(), v);
            }
        };
        fn claim<T>(c: &Claim<T>, good: impl Fn(&T) -> Value) -> Option<Value> {
            match c {
                Claim::Absent => None,
                Claim::Good(t) => Some(good(t)),
                Claim::Json(j) => Some(j.get()),
            }
        }
        put("iss", claim(&self.iss, |s| json!(s.get())));
        put("sub", claim(&self.sub, |s| json!(s.get())));
        put(
            "sub_profile",
            self.sub_profile.as_ref().map(|s| json!(s.get())),
        );
        put(
            "aud",
            claim(&self.aud, |v| match v.as_slice() {
                [one] => json!(one.get()),
                many => json!(many.iter().map(Str::get).collect::<Vec<_>>()),
            }),
        );
        put("iat", claim(&self.iat, |o| time(*o)));
        put("exp", claim(&self.exp, |o| time(*o)));
        put(
            "nbf",
            self.nbf.as_ref().and_then(|c| claim(c, |o| time(*o))),
        );
        put("auth_time", self.auth_time.map(time));
        put("jti", self.jti.as_ref().map(|s| json!(s.get())));
        let joined = |v: &Vec<Str>| json!(v.iter().map(Str::get).collect::<Vec<_>>().join(" "));
        put("scope", claim(&self.scope, joined));
        put(
            "scp",
            self.scp
                .as_ref()
                .and_then(|c| claim(c, |v| json!(v.iter().map(Str::get).collect::<Vec<_>>()))),
        );
        put(
            "may_act",
            self.may_act.as_ref().and_then(|c| {
                claim(c, |(sub, iss)| {
                    let mut o = json!({ "sub": sub.get() });
                    if let Some(iss) = iss {
                        o["iss"] = json!(iss.get());
                    }
                    o
                })
            }),
        );
        put(
            "cnf",
            self.cnf.as_ref().and_then(|c| {
                claim(c, |d| match d {
                    Some(d) => json!({ "x5t#S256": actwarden_b64(d) }),
                    None => json!({}),
                })
            }),
        );
        put("acr", self.acr.as_ref().map(|s| json!(s.get())));
        // The chain, innermost (oldest) actor last in `act`, outermost first.
        let mut act: Option<Value> = None;
        for a in self.act.iter().rev() {
            let mut o = Map::new();
            if let Some(sub) = claim(&a.sub, |s| json!(s.get())) {
                o.insert("sub".into(), sub);
            }
            if let Some(p) = &a.sub_profile {
                o.insert("sub_profile".into(), json!(p.get()));
            }
            if let Some(i) = &a.iss {
                o.insert("iss".into(), json!(i.get()));
            }
            if let Some((k, v)) = &a.extra {
                o.insert(k.get(), v.get());
            }
            if let Some(inner) = act.take() {
                o.insert("act".into(), inner);
            }
            act = Some(Value::Object(o));
        }
        if let Some(n) = self.bomb {
            // A nesting bomb kept under the token size limit most of the time.
            for i in 0..(n % 300) {
                let mut o = Map::new();
                o.insert(
                    "sub".into(),
                    json!(format!("spiffe://prod.example.com/agent/b{i}")),
                );
                if let Some(inner) = act.take() {
                    o.insert("act".into(), inner);
                }
                act = Some(Value::Object(o));
            }
        }
        if let Some(act) = act {
            m.insert("act".into(), act);
        }
        for (k, v) in &self.extra {
            m.insert(k.get(), v.get());
        }
        Value::Object(m)
    }
}

fn actwarden_b64(bytes: &[u8]) -> String {
    use base64_lite::encode;
    encode(bytes)
}

/// base64url without padding (no extra dependency for one function).
pub mod base64_lite {
    pub const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    pub fn encode(bytes: &[u8]) -> String {
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let b = [
                chunk[0],
                *chunk.get(1).unwrap_or(&0),
                *chunk.get(2).unwrap_or(&0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..=chunk.len() {
                out.push(char::from(A[((n >> (18 - 6 * i)) & 63) as usize]));
            }
        }
        out
    }
}

#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum AlgIn {
    /// The key's own algorithm.
    Own,
    Name(u8),
}

pub const ALG_NAMES: [&str; 12] = [
    "HS256", "ES256", "EdDSA", "ES384", "RS256", "PS256", "none", "None", "HS512", "ES512",
    "RS384", "",
];

#[derive(Arbitrary, Debug, Clone)]
pub enum Corrupt {
    /// Flip one bit of the signature.
    SignatureBit(u16),
    /// Replace the signature part with this text.
    Signature(String),
    /// Replace the header part with base64url of this JSON.
    Header(JsonIn),
    /// Insert a character at a position.
    Insert(u16, char),
    /// Cut the token at a position.
    Truncate(u16),
}

#[derive(Arbitrary, Debug, Clone)]
pub struct TokenIn {
    pub key: u8,
    pub alg: AlgIn,
    pub typ: Option<Option<Str>>,
    pub kid: Option<Option<Str>>,
    pub header_extra: Vec<(Str, JsonIn)>,
    pub claims: ClaimsIn,
    pub corrupt: Option<Corrupt>,
}

/// A token as the decision target sends it, with what the fuzzer knows about it.
pub struct Minted {
    pub token: String,
    /// Signed, unaltered, by a key some configured key set holds. Only such a token may
    /// put identity into an audit record.
    pub genuine: bool,
}

impl TokenIn {
    pub fn mint(&self, f: &Fixture, asymmetric: bool) -> Minted {
        self.mint_with(f, asymmetric, |_| {})
    }

    /// Mints with the claims patched first (a DPoP proof's `cnf.jkt`).
    pub fn mint_with(
        &self,
        f: &Fixture,
        asymmetric: bool,
        patch: impl FnOnce(&mut Value),
    ) -> Minted {
        let (keys, evil) = if asymmetric {
            (&f.keys, KEY_NAMES.len() - 1)
        } else {
            (&f.hs_keys, 1)
        };
        let ki = usize::from(self.key) % keys.len();
        let key = &keys[ki];
        let alg = match self.alg {
            AlgIn::Own => key.default_alg(),
            AlgIn::Name(i) => {
                Alg::parse(ALG_NAMES[usize::from(i) % ALG_NAMES.len()]).unwrap_or(key.default_alg())
            }
        };
        let mut header = Map::new();
        if let Some(typ) = &self.typ {
            header.insert(
                "typ".into(),
                typ.as_ref().map_or(Value::Null, |s| json!(s.get())),
            );
        }
        if let Some(kid) = &self.kid {
            header.insert(
                "kid".into(),
                kid.as_ref().map_or(Value::Null, |s| json!(s.get())),
            );
        }
        for (k, v) in &self.header_extra {
            let k = k.get();
            if k != "alg" {
                header.insert(k, v.get());
            }
        }
        let mut claims = self.claims.get();
        patch(&mut claims);
        let token = match key.mint(alg, &claims, Some(&header), &f.rng) {
            Ok(t) => t,
            // The alg does not fit the key: sign with the key's own.
            Err(_) => match key.mint(key.default_alg(), &claims, Some(&header), &f.rng) {
                Ok(t) => t,
                Err(_) => {
                    return Minted {
                        token: String::new(),
                        genuine: false,
                    }
                }
            },
        };
        let mut genuine = ki != evil;
        let token = match &self.corrupt {
            None => token,
            Some(c) => {
                let altered = corrupt(&token, c);
                // A cut at the very end (or a space the header's reader trims) leaves the
                // token as it was signed: still genuine.
                if altered.trim() != token {
                    genuine = false;
                }
                altered
            }
        };
        Minted { token, genuine }
    }
}

pub fn corrupt(token: &str, c: &Corrupt) -> String {
    let parts: Vec<&str> = token.splitn(3, '.').collect();
    match (c, parts.as_slice()) {
        (Corrupt::SignatureBit(bit), [h, p, s]) => {
            let mut sig: Vec<u8> = s.as_bytes().to_vec();
            if !sig.is_empty() {
                let i = usize::from(*bit) % sig.len();
                // Stay in the base64url alphabet: swap for another of its characters.
                let pos = base64_lite::A
                    .iter()
                    .position(|&a| a == sig[i])
                    .unwrap_or(0);
                sig[i] = base64_lite::A[(pos + 1 + usize::from(*bit >> 8) % 63) % 64];
            }
            format!("{h}.{p}.{}", String::from_utf8_lossy(&sig))
        }
        (Corrupt::Signature(s), [h, p, _]) => format!("{h}.{p}.{s}"),
        (Corrupt::Header(j), [_, p, s]) => {
            format!(
                "{}.{p}.{s}",
                base64_lite::encode(j.get().to_string().as_bytes())
            )
        }
        (Corrupt::Insert(at, ch), _) => {
            let mut t = token.to_owned();
            let mut i = usize::from(*at) % (t.len() + 1);
            while !t.is_char_boundary(i) {
                i -= 1;
            }
            t.insert(i, *ch);
            t
        }
        (Corrupt::Truncate(at), _) => {
            let mut i = usize::from(*at) % (token.len() + 1);
            while !token.is_char_boundary(i) {
                i -= 1;
            }
            token[..i].to_owned()
        }
        _ => token.to_owned(),
    }
}

#[derive(Arbitrary, Debug, Clone)]
pub enum Scheme {
    Bearer,
    Lower,
    Token,
    DPoP,
    Any(String),
}

#[derive(Arbitrary, Debug, Clone)]
pub enum AuthIn {
    None,
    /// A header value as is.
    Raw(String),
    Token(Scheme, Box<TokenIn>),
    /// Two credentials: a repeated header, or another `from_headers` name.
    Two(Box<TokenIn>, Box<TokenIn>, bool),
    /// A token bound (or not) by `cnf.jkt` to a proof key, with a DPoP proof in the `dpop`
    /// header (SPEC §10); the request goes to `https://api.example.com`.
    DPoP(Box<TokenIn>, Box<dpop::ProofIn>),
}

/// A request body.
#[derive(Arbitrary, Debug, Clone)]
pub enum BodyIn {
    None,
    /// An MCP message (SPEC §9), `POST /mcp` when `to_endpoint`.
    JsonRpc(Box<mcp::McpIn>),
    Raw(Vec<u8>),
}

#[derive(Arbitrary, Debug, Clone)]
pub enum HeaderIn {
    XAgent(String, String),
    ContentType(Str),
    RequestId(String),
    Traceparent(String),
    Host(String),
    Any(String, String),
}

#[derive(Arbitrary, Debug, Clone)]
pub struct PeerIn {
    pub uri_san: Option<Str>,
    pub digest: Option<[u8; 32]>,
}

#[derive(Arbitrary, Debug, Clone)]
pub struct RequestIn {
    pub policy: u8,
    /// `0 mod 8`: the corpus policy as is with asymmetric keys (ES256, ES384, EdDSA);
    /// otherwise its HS256 twin.
    pub asymmetric: u8,
    /// The `remote` configuration's fetched keys are there (else `jwks_unavailable`).
    pub remote_up: bool,
    pub method: Str,
    pub path: (u8, String),
    pub raw_path: Option<String>,
    pub authority: Option<String>,
    pub headers: Vec<HeaderIn>,
    pub auth: AuthIn,
    pub peer: Option<PeerIn>,
    pub body: BodyIn,
    pub now: Offset,
    /// `0 mod 8`: also decide through a fresh verified-token cache, twice (miss, then hit).
    pub check_cache: u8,
}

/// The request, and the tokens it carries that a configured key signed, unaltered.
pub struct Built {
    pub request: Request,
    pub tokens: Vec<Minted>,
    /// The DPoP proof it carries (`AuthIn::DPoP`).
    pub proof: Option<dpop::BuiltProof>,
}

impl RequestIn {
    pub fn is_asymmetric(&self) -> bool {
        self.asymmetric.is_multiple_of(8)
    }

    pub fn build(&self, f: &Fixture) -> Built {
        let asym = self.is_asymmetric();
        let mut method = match &self.method {
            Str::Known(i) => {
                ["GET", "POST", "PUT", "DELETE", "PATCH"][usize::from(*i) % 5].to_owned()
            }
            Str::Any(s) => s.clone(),
        };
        let mut path = match &self.raw_path {
            Some(p) => p.clone(),
            None => format!(
                "{}{}",
                PATHS[usize::from(self.path.0) % PATHS.len()],
                self.path.1
            ),
        };
        let mut headers = Vec::new();
        let mut body = None;
        match &self.body {
            BodyIn::None => {}
            BodyIn::JsonRpc(m) => {
                let (b, h) = m.build();
                if m.to_endpoint {
                    method = "POST".into();
                    path = "/mcp".into();
                }
                body = Some(b);
                headers.extend(h);
            }
            BodyIn::Raw(b) => body = Some(b.clone()),
        }
        for h in &self.headers {
            let (n, v) = match h {
                HeaderIn::XAgent(n, v) => (format!("x-agent-{n}"), v.clone()),
                HeaderIn::ContentType(s) => (
                    "content-type".into(),
                    match s {
                        Str::Known(i) if i % 2 == 0 => "application/grpc".into(),
                        other => other.get(),
                    },
                ),
                HeaderIn::RequestId(v) => ("x-request-id".into(), v.clone()),
                HeaderIn::Traceparent(v) => ("traceparent".into(), v.clone()),
                HeaderIn::Host(v) => ("host".into(), v.clone()),
                HeaderIn::Any(n, v) => (n.to_ascii_lowercase(), v.clone()),
            };
            headers.push((n, v));
        }
        let scheme = |s: &Scheme| match s {
            Scheme::Bearer => "Bearer ".to_owned(),
            Scheme::Lower => "bearer ".to_owned(),
            Scheme::Token => "Token ".to_owned(),
            Scheme::DPoP => "DPoP ".to_owned(),
            Scheme::Any(s) => s.clone(),
        };
        let mut tokens = Vec::new();
        let mut proof = None;
        let mut authority = self.authority.clone();
        match &self.auth {
            AuthIn::None => {}
            AuthIn::Raw(v) => headers.push(("authorization".into(), v.clone())),
            AuthIn::Token(s, t) => {
                let m = t.mint(f, asym);
                headers.push(("authorization".into(), format!("{}{}", scheme(s), m.token)));
                tokens.push(m);
            }
            AuthIn::Two(a, b, same_header) => {
                let (a, b) = (a.mint(f, asym), b.mint(f, asym));
                headers.push(("authorization".into(), format!("Bearer {}", a.token)));
                let name = if *same_header {
                    "authorization"
                } else {
                    "x-api-token"
                };
                headers.push((name.into(), format!("Bearer {}", b.token)));
                tokens.push(a);
                tokens.push(b);
            }
            AuthIn::DPoP(t, p) => {
                let m = t.mint_with(f, asym, |c| p.patch_claims(f, c));
                let path_only = path.split('?').next().unwrap_or_default();
                let now = NOW.saturating_add_signed(i64::from(self.now.0));
                let built = p.build(f, &method, path_only, &m.token, now);
                headers.push((
                    "authorization".into(),
                    format!("{}{}", built.scheme, m.token),
                ));
                for v in &built.headers {
                    headers.push(("dpop".into(), v.clone()));
                }
                authority = Some(dpop::AUTHORITY.to_owned());
                tokens.push(m);
                proof = Some(built);
            }
        }
        let peer = self.peer.as_ref().map(|p| Peer {
            uri_san: p.uri_san.as_ref().map(Str::get),
            certificate_sha256: p.digest,
        });
        Built {
            request: Request {
                method,
                path,
                authority,
                headers,
                peer,
                body,
                ..Request::default()
            },
            tokens,
            proof,
        }
    }

    pub fn policy<'f>(&self, f: &'f Fixture) -> &'f Policy {
        let set = if self.is_asymmetric() {
            &f.policies
        } else {
            &f.hs_policies
        };
        &set[usize::from(self.policy) % set.len()]
    }

    pub fn remote<'f>(&self, f: &'f Fixture) -> &'f HashMap<String, KeySet> {
        if self.remote_up {
            &f.remote
        } else {
            &f.no_remote
        }
    }

    pub fn now(&self) -> UnixTime {
        UnixTime::from_secs((NOW as i64 + i64::from(self.now.0)) as u64)
    }
}

/// Decides a built request and checks every invariant; returns the decision.
pub fn decide_and_check(input: &RequestIn) -> Decision {
    let f = fixture();
    let built = input.build(f);
    let policy = input.policy(f);
    let remote = input.remote(f);
    let window = actwarden::MemoryWindow::new();
    let ctx = Context {
        policy,
        remote_keys: remote,
        crypto: &RING,
        replay: &window,
        cache: None,
        shared: None,
    };
    let d = decide(ctx, &built.request, input.now());
    check_decision(&d, &built);
    mcp::check_mcp(&d, policy, &built.request);
    if let Some(proof) = &built.proof {
        check_dpop(&d, proof, &built.request);
        // The same proof again, in the same window: a replay.
        let again = decide(ctx, &built.request, input.now());
        check_decision(&again, &built);
        if d.binding() == actwarden::BindingOutcome::Dpop {
            assert_eq!(
                again.reason(),
                Reason::DpopReplayed,
                "a replayed proof passed"
            );
        }
    }
    if input.check_cache.is_multiple_of(8) {
        let cache = TokenCache::default();
        for _ in 0..2 {
            // A window of its own: the same proof is fresh to it.
            let window = actwarden::MemoryWindow::new();
            let ctx = Context {
                cache: Some(&cache),
                replay: &window,
                ..ctx
            };
            let c = decide(ctx, &built.request, input.now());
            check_decision(&c, &built);
            assert_eq!(c.reason(), d.reason(), "the cache changed the decision");
            assert_eq!(c.verdict, d.verdict, "the cache changed the verdict");
        }
    }
    d
}

/// DPoP invariants: a proof the harness broke for certain never lets the request through,
/// and a decision that used a proof (`binding: dpop`) came with one, with the DPoP scheme.
pub fn check_dpop(d: &Decision, proof: &dpop::BuiltProof, request: &Request) {
    let audit = d.audit_record(request);
    let allowed = d.reason() == Reason::Allowed;
    if proof.must_fail {
        assert!(
            !allowed,
            "allowed with a proof that must fail: {}",
            audit.to_json_line()
        );
        assert_ne!(audit.binding, actwarden::BindingOutcome::Dpop);
    }
    if audit.binding == actwarden::BindingOutcome::Dpop {
        assert!(proof.bound, "binding dpop without cnf.jkt");
        assert_ne!(proof.scheme, "Bearer ", "binding dpop for a bearer token");
        assert_eq!(proof.headers.len(), 1);
    }
}

/// The invariants of SPEC §4–§6 that hold for every decision.
pub fn check_decision(d: &Decision, built: &Built) {
    let audit = d.audit_record(&built.request);
    assert_eq!(audit.binding, d.binding());
    assert_eq!(audit.scopes.as_deref(), d.effective_scopes());
    assert_eq!(audit.sub.is_some(), d.verified());
    let reason = d.reason();
    assert!(
        Reason::ALL.contains(&reason),
        "reason {reason:?} not in Reason::ALL"
    );
    assert_eq!(
        audit.reason, reason,
        "audit reason differs from the verdict"
    );
    assert_eq!(Reason::from_code(reason.code()), Some(reason));
    match &d.verdict {
        Verdict::Deny { response, .. } => {
            assert_eq!(audit.decision, "deny");
            let status = reason.status().expect("a denial has a status");
            assert_eq!(audit.status, Some(status));
            assert!(response.http_status == status || response.http_status == 200);
            assert!(d.identity_headers().next().is_none());
            if response.http_status != 200 {
                let body: Value = serde_json::from_str(&response.body).expect("deny body is JSON");
                assert_eq!(body["error"], reason.code());
            }
            assert!(audit.detail.is_some(), "a denial's audit has a detail");
        }
        Verdict::Allow { identity_headers } => {
            assert_eq!(reason, Reason::Allowed);
            assert_eq!(audit.decision, "allow");
            assert!(audit.sub.is_some(), "allowed with a token but no subject");
            assert!(identity_headers
                .iter()
                .all(|(n, _)| n.starts_with("x-agent-")));
            assert!(
                built.tokens.iter().any(|t| t.genuine),
                "allowed without a genuine token"
            );
        }
        Verdict::AllowAnonymous => {
            assert_eq!(reason, Reason::AllowedAnonymous);
            assert_eq!(audit.decision, "allow");
        }
        // The gateway's own answer (MCP resource metadata): no identity is forwarded.
        Verdict::Answer { .. } => {
            assert!(d.identity_headers().next().is_none());
        }
    }
    // Identity only from a verified token: with no genuine token, none at all.
    if !built.tokens.iter().any(|t| t.genuine) {
        let a = &audit;
        assert!(
            a.iss.is_none()
                && a.sub.is_none()
                && a.sub_profile.is_none()
                && a.actor.is_none()
                && a.chain.is_none()
                && a.scopes.is_none()
                && a.jti.is_none(),
            "identity in the audit record of an unverified token: {}",
            a.to_json_line()
        );
    }
    // Every inbound x-agent-* header is stripped.
    for (name, _) in &built.request.headers {
        if name.to_ascii_lowercase().starts_with("x-agent-") {
            assert!(
                d.strip_headers.iter().any(|s| s == name),
                "x-agent header {name} not stripped"
            );
        }
    }
    // The audit line: one line of JSON, what serde would write, never the token.
    let line = audit.to_json_line();
    assert!(!line.contains('\n'));
    let parsed: Value = serde_json::from_str(&line).expect("audit line is JSON");
    assert_eq!(
        line,
        serde_json::to_string(&audit).unwrap(),
        "hand-written audit JSON differs from serde's"
    );
    assert_eq!(parsed["reason"], reason.code());
    for t in &built.tokens {
        if t.token.len() >= 24 && !request_mentions(&built.request, &t.token) {
            assert!(!line.contains(&t.token), "raw token in the audit line");
        }
    }
}

fn request_mentions(r: &Request, needle: &str) -> bool {
    r.path.contains(needle)
        || r.authority.as_deref().is_some_and(|a| a.contains(needle))
        || r.method.contains(needle)
        || ["x-request-id", "traceparent"]
            .iter()
            .any(|h| r.header_values(h).any(|v| v.contains(needle)))
}
