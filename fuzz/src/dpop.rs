//! DPoP proofs (RFC 9449, SPEC §10) for the decision target and the `dpop` target: a
//! proof over fuzz-chosen header and claims, signed by one of three fixed keys (Ed25519
//! most of the time: deterministic and fast), bound or not by the token's `cnf.jkt`, and
//! what the harness knows about it: whether it is definitely unacceptable.

use crate::{base64_lite, Corrupt, Fixture, JsonIn, Offset, Str};
use actwarden::mint::SigningKey;
use actwarden::Alg;
use arbitrary::Arbitrary;
use ring::digest::{digest, SHA256};
use serde_json::{json, Map, Value};

/// Proof keys by corpus name and the algorithm they sign with. The first is the one a
/// token is bound to most of the time; `partner-sts` of the `dpop` policy accepts ES256
/// proofs only.
pub const PROOF_KEYS: [(&str, Alg); 3] = [
    ("ed-a", Alg::EdDSA),
    ("es256-b", Alg::ES256),
    ("evil-es256", Alg::ES256),
];

/// The authority DPoP requests go to (their `htu` is `https://api.example.com<path>`).
pub const AUTHORITY: &str = "api.example.com";

/// A proof key with what a proof carries of it.
pub struct ProofKey {
    pub key: SigningKey,
    pub alg: Alg,
    /// The public JWK as a proof header carries it (`kty`, `crv`, `x`, `y`, `n`, `e`).
    pub jwk: Value,
    /// Its RFC 7638 thumbprint, as `cnf.jkt`.
    pub jkt: String,
}

pub fn proof_keys() -> Vec<ProofKey> {
    PROOF_KEYS
        .iter()
        .map(|(name, alg)| {
            let key = crate::corpus_key(name);
            let public = key.public_jwk();
            let jwk: Map<String, Value> = public
                .as_object()
                .unwrap()
                .iter()
                .filter(|(k, _)| ["kty", "crv", "x", "y", "n", "e"].contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let jkt = key.jkt().unwrap();
            ProofKey {
                key,
                alg: *alg,
                jwk: Value::Object(jwk),
                jkt,
            }
        })
        .collect()
}

/// Which key signs: `0..=5` the first, `6` the second, `7` the third (mod 8).
fn key_index(k: u8) -> usize {
    match k % 8 {
        6 => 1,
        7 => 2,
        _ => 0,
    }
}

/// The token's `cnf.jkt`.
#[derive(Arbitrary, Debug, Clone)]
pub enum JktIn {
    /// The thumbprint of a proof key (`key_index`).
    Key(u8),
    Absent,
    Json(JsonIn),
}

#[derive(Arbitrary, Debug, Clone)]
pub enum HtuIn {
    /// `https://api.example.com<path>`.
    Good,
    /// The same URI spelled otherwise (case, default port, query, fragment): still good.
    Equivalent(u8),
    /// Another path, host, port or scheme: bad.
    Other(u8),
    Any(String),
    Absent,
}

#[derive(Arbitrary, Debug, Clone)]
pub enum AthIn {
    Good,
    Absent,
    Other(String),
}

/// The `dpop` header(s).
#[derive(Arbitrary, Debug, Clone)]
pub enum CountIn {
    One,
    None,
    /// The proof twice, in two headers or one comma-joined.
    Two(bool),
}

#[derive(Arbitrary, Debug, Clone)]
pub struct ProofIn {
    pub key: u8,
    pub jkt: JktIn,
    /// `None`: the request method.
    pub htm: Option<Str>,
    pub htu: HtuIn,
    /// From the request's time.
    pub iat: Offset,
    /// `None`: `proof-<n>` (a fixed jti: the replay check sees it again).
    pub jti: Option<Str>,
    pub jti_n: u8,
    pub ath: AthIn,
    /// Header `typ` (`None`: `dpop+jwt`).
    pub typ: Option<Option<Str>>,
    /// Header `alg` by name (`None`: the key's).
    pub alg: Option<u8>,
    /// Header `jwk` replaced (`None`: the key's public JWK).
    pub jwk: Option<JsonIn>,
    pub header_extra: Vec<(Str, JsonIn)>,
    pub claims_extra: Vec<(Str, JsonIn)>,
    pub corrupt: Option<Corrupt>,
    pub count: CountIn,
    /// `0 mod 4`: `Authorization: Bearer` (a bound token must then be refused);
    /// `1 mod 4`: `dpop ` (the scheme in lower case); else `DPoP `.
    pub scheme: u8,
}

/// A proof as sent, and what the harness knows.
pub struct BuiltProof {
    /// Values of `dpop` headers.
    pub headers: Vec<String>,
    /// The authorization scheme, with its trailing space.
    pub scheme: &'static str,
    /// Something the harness did makes the proof unacceptable for certain (wrong key,
    /// broken signature, another method, another `htu`, a wrong `ath`, an `iat` far out,
    /// no or two proofs, no `cnf.jkt`): the request must not be allowed.
    pub must_fail: bool,
    /// The proof alone is unacceptable for certain, whatever the scheme.
    pub proof_must_fail: bool,
    /// The token carries a string `cnf.jkt`.
    pub bound: bool,
}

impl ProofIn {
    /// Patches the token's claims (`cnf.jkt`).
    pub fn patch_claims(&self, f: &Fixture, claims: &mut Value) {
        let jkt = match &self.jkt {
            JktIn::Key(k) => Some(json!(f.proof_keys[key_index(*k)].jkt)),
            JktIn::Absent => None,
            JktIn::Json(j) => Some(j.get()),
        };
        if let (Some(jkt), Some(m)) = (jkt, claims.as_object_mut()) {
            m.insert("cnf".into(), json!({ "jkt": jkt }));
        }
    }

    pub fn scheme(&self) -> &'static str {
        match self.scheme % 4 {
            0 => "Bearer ",
            1 => "dpop ",
            _ => "DPoP ",
        }
    }

    /// The proof for `method` and `path_only` with `token`, at `now` (Unix seconds).
    pub fn build(
        &self,
        f: &Fixture,
        method: &str,
        path_only: &str,
        token: &str,
        now: u64,
    ) -> BuiltProof {
        let ki = key_index(self.key);
        let pk = &f.proof_keys[ki];
        let mut must_fail = false;
        let bound_jkt = match &self.jkt {
            JktIn::Key(k) => Some(f.proof_keys[key_index(*k)].jkt.clone()),
            JktIn::Absent => None,
            JktIn::Json(j) => j.get().as_str().map(str::to_owned),
        };
        let bound = bound_jkt.is_some();
        if bound_jkt.as_deref() != Some(pk.jkt.as_str()) {
            must_fail = true;
        }
        // Header.
        let mut header = Map::new();
        match &self.typ {
            None => {
                header.insert("typ".into(), json!("dpop+jwt"));
            }
            Some(t) => {
                header.insert(
                    "typ".into(),
                    t.as_ref().map_or(Value::Null, |s| json!(s.get())),
                );
            }
        }
        let alg_name = match self.alg {
            None => pk.alg.name().to_owned(),
            Some(i) => crate::ALG_NAMES[usize::from(i) % crate::ALG_NAMES.len()].to_owned(),
        };
        header.insert("alg".into(), json!(alg_name));
        header.insert(
            "jwk".into(),
            self.jwk.as_ref().map_or(pk.jwk.clone(), JsonIn::get),
        );
        for (k, v) in &self.header_extra {
            header.insert(k.get(), v.get());
        }
        // Claims.
        let mut claims = Map::new();
        let htm = self.htm.as_ref().map_or(method.to_owned(), Str::get);
        if htm != method {
            must_fail = true;
        }
        claims.insert("htm".into(), json!(htm));
        let good = format!("https://{AUTHORITY}{path_only}");
        let htu = match &self.htu {
            HtuIn::Good => Some(good),
            HtuIn::Equivalent(i) => Some(match i % 5 {
                0 => format!("HTTPS://API.Example.COM{path_only}"),
                1 => format!("https://{AUTHORITY}:443{path_only}"),
                2 => format!("https://{AUTHORITY}{path_only}?q=1"),
                3 => format!("https://{AUTHORITY}{path_only}#frag"),
                _ => format!("https://{AUTHORITY}:{path_only}"),
            }),
            HtuIn::Other(i) => {
                must_fail = true;
                Some(match i % 5 {
                    0 => format!("http://{AUTHORITY}{path_only}"),
                    1 => format!("https://{AUTHORITY}:8443{path_only}"),
                    2 => format!("https://evil.example.com{path_only}"),
                    3 => format!("https://{AUTHORITY}{path_only}/x"),
                    _ => format!("https://user@{AUTHORITY}{path_only}"),
                })
            }
            HtuIn::Any(s) => Some(s.clone()),
            HtuIn::Absent => {
                must_fail = true;
                None
            }
        };
        if let Some(htu) = htu {
            claims.insert("htu".into(), json!(htu));
        }
        let iat = now as i64 + i64::from(self.iat.0);
        // Beyond any corpus provider's max_age_s + clock_skew_s.
        if i64::from(self.iat.0).abs() > 4000 {
            must_fail = true;
        }
        claims.insert("iat".into(), json!(iat));
        let jti = self
            .jti
            .as_ref()
            .map_or(format!("proof-{}", self.jti_n), Str::get);
        if jti.is_empty() {
            must_fail = true;
        }
        claims.insert("jti".into(), json!(jti));
        let ath = base64_lite::encode(digest(&SHA256, token.as_bytes()).as_ref());
        match &self.ath {
            AthIn::Good => {
                claims.insert("ath".into(), json!(ath));
            }
            AthIn::Absent => must_fail = true,
            AthIn::Other(s) => {
                if *s != ath {
                    must_fail = true;
                }
                claims.insert("ath".into(), json!(s));
            }
        }
        for (k, v) in &self.claims_extra {
            let k = k.get();
            // Only members the checks do not read, so `must_fail` stays what it says.
            if !["htm", "htu", "iat", "jti", "ath"].contains(&k.as_str()) {
                claims.insert(k, v.get());
            }
        }
        let input = format!(
            "{}.{}",
            base64_lite::encode(Value::Object(header).to_string().as_bytes()),
            base64_lite::encode(Value::Object(claims).to_string().as_bytes())
        );
        let sig = pk
            .key
            .sign(pk.alg, input.as_bytes(), &f.rng)
            .unwrap_or_default();
        let mut proof = format!("{input}.{}", base64_lite::encode(&sig));
        if let Some(c) = &self.corrupt {
            if matches!(c, Corrupt::SignatureBit(_)) {
                must_fail = true;
            }
            proof = crate::corrupt(&proof, c);
        }
        let headers = match self.count {
            CountIn::One => vec![proof],
            CountIn::None => {
                must_fail = true;
                vec![]
            }
            CountIn::Two(true) => {
                must_fail = true;
                vec![proof.clone(), proof]
            }
            CountIn::Two(false) => {
                must_fail = true;
                vec![format!("{proof}, {proof}")]
            }
        };
        BuiltProof {
            headers,
            scheme: self.scheme(),
            // A bearer token: the proof is not read at all, and a bound one is refused.
            must_fail: if self.scheme % 4 == 0 {
                bound
            } else {
                must_fail
            },
            proof_must_fail: must_fail,
            bound,
        }
    }
}
