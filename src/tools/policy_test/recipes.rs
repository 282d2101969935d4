//! Tokens and DPoP proofs minted when a case runs, at the case's `now`, so that a test
//! file never expires.
//!
//! A header value is a string, an array of strings (a repeated header), or
//! `{"mint": {...}}` / `{"dpop_proof": {...}}`. In claims, a string `"now"`, `"now+N"` or
//! `"now-N"` is that time in Unix seconds; `iat` defaults to now and `exp` to now + 300
//! (`null` removes a claim, to test its absence).

use super::{CaseError, TestCase};
use crate::core::keys::alg::Alg;
use crate::core::time::UnixTime;
use crate::core::token::b64;
use crate::core::verification::crypto::sha256;
use crate::tools::mint::SigningKey;
use ring::rand::SecureRandom;
use serde::{Deserialize, Deserializer};
use serde_json::{json, Map, Value};
use std::collections::HashMap;

/// Default lifetime of a minted token without `exp`.
const DEFAULT_TTL_S: i64 = 300;

/// A header value as written.
#[derive(Debug)]
pub enum HeaderSpec {
    Text(String),
    Repeated(Vec<String>),
    Mint(MintSpec),
    DpopProof(DpopSpec),
}

/// `{"mint": {...}}`: a token signed with a private JWK file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MintSpec {
    /// Private JWK file, relative to the test file.
    pub key: String,
    pub claims: Map<String, Value>,
    /// Defaults to the key's algorithm.
    #[serde(default)]
    pub alg: Option<String>,
    /// Members over the default header `{alg, typ: "at+jwt", kid}`; `null` removes one.
    #[serde(default)]
    pub header: Option<Map<String, Value>>,
    /// Auth scheme before the token; defaults to `Bearer` in `authorization`, none elsewhere.
    #[serde(default)]
    pub scheme: Option<String>,
}

/// `{"dpop_proof": {...}}`: an RFC 9449 proof (`typ: dpop+jwt`, the key's public `jwk`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DpopSpec {
    pub key: String,
    /// Defaults to the request's method.
    #[serde(default)]
    pub htm: Option<String>,
    /// Defaults to `https://<authority><path without query>`.
    #[serde(default)]
    pub htu: Option<String>,
    /// Seconds added to now for `iat` (negative: an old proof).
    #[serde(default)]
    pub iat_offset_s: Option<i64>,
    /// Defaults to a random id.
    #[serde(default)]
    pub jti: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
enum Generated {
    Mint(MintSpec),
    DpopProof(DpopSpec),
}

impl<'de> Deserialize<'de> for HeaderSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<HeaderSpec, D::Error> {
        use serde::de::Error;
        match Value::deserialize(d)? {
            Value::String(s) => Ok(HeaderSpec::Text(s)),
            Value::Array(items) => serde_json::from_value(Value::Array(items))
                .map(HeaderSpec::Repeated)
                .map_err(D::Error::custom),
            object @ Value::Object(_) => {
                // The inner path is kept in the message: serde_path_to_error stops here.
                match serde_path_to_error::deserialize(object) {
                    Ok(Generated::Mint(m)) => Ok(HeaderSpec::Mint(m)),
                    Ok(Generated::DpopProof(p)) => Ok(HeaderSpec::DpopProof(p)),
                    Err(e) => Err(D::Error::custom(format!("{}: {}", e.path(), e.inner()))),
                }
            }
            _ => Err(D::Error::custom(
                "a header value is a string, an array of strings, {\"mint\": …} or {\"dpop_proof\": …}",
            )),
        }
    }
}

impl HeaderSpec {
    /// The key file a minted value is signed with.
    pub(crate) fn key_file(&self) -> Option<&str> {
        match self {
            HeaderSpec::Mint(m) => Some(&m.key),
            HeaderSpec::DpopProof(p) => Some(&p.key),
            HeaderSpec::Text(_) | HeaderSpec::Repeated(_) => None,
        }
    }

    /// The value when nothing needs minting.
    pub(crate) fn literal(&self) -> Option<Value> {
        match self {
            HeaderSpec::Text(s) => Some(Value::String(s.clone())),
            HeaderSpec::Repeated(v) => Some(json!(v)),
            HeaderSpec::Mint(_) | HeaderSpec::DpopProof(_) => None,
        }
    }
}

/// The case's `REQUEST.json` with every token and proof minted at `now`. Tokens first:
/// a proof's `ath` hashes the access token.
pub(crate) fn materialize(
    case: &TestCase,
    keys: &HashMap<String, SigningKey>,
    now: UnixTime,
    rng: &dyn SecureRandom,
) -> Result<Value, CaseError> {
    let mut tokens: HashMap<&str, String> = HashMap::new();
    let mut access_token = None;
    for (name, spec) in &case.request.headers {
        if let HeaderSpec::Mint(m) = spec {
            let token = mint_token(case, m, keys, now, rng)?;
            let value = match m.scheme.as_deref() {
                Some(scheme) => format!("{scheme} {token}"),
                None if name.eq_ignore_ascii_case("authorization") => format!("Bearer {token}"),
                None => token.clone(),
            };
            access_token.get_or_insert(token);
            tokens.insert(name, value);
        }
    }
    for (name, spec) in &case.request.headers {
        if let HeaderSpec::DpopProof(p) = spec {
            let proof = mint_proof(case, p, keys, now, access_token.as_deref(), rng)?;
            tokens.insert(name, proof);
        }
    }
    let mut request = super::request_json(&case.request, |_| Value::Null);
    if let Some(headers) = request.get_mut("headers").and_then(Value::as_object_mut) {
        for (name, value) in tokens {
            headers.insert(name.to_owned(), Value::String(value));
        }
    }
    Ok(request)
}

fn signing_key<'k>(
    case: &TestCase,
    keys: &'k HashMap<String, SigningKey>,
    file: &str,
) -> Result<&'k SigningKey, CaseError> {
    keys.get(file).ok_or_else(|| CaseError::Request {
        case: case.name.clone(),
        message: format!("key `{file}` was not loaded"),
    })
}

fn mint_token(
    case: &TestCase,
    spec: &MintSpec,
    keys: &HashMap<String, SigningKey>,
    now: UnixTime,
    rng: &dyn SecureRandom,
) -> Result<String, CaseError> {
    let key = signing_key(case, keys, &spec.key)?;
    let alg = match &spec.alg {
        None => key.default_alg(),
        Some(name) => Alg::parse(name).map_err(|_| CaseError::UnknownAlgorithm {
            case: case.name.clone(),
            alg: name.clone(),
        })?,
    };
    let claims = claims_at(&spec.claims, now);
    key.mint(alg, &claims, spec.header.as_ref(), rng)
        .map_err(|problem| CaseError::Mint {
            case: case.name.clone(),
            problem,
        })
}

/// The claims with `"now±N"` resolved, `iat` and `exp` defaulted, `null`s removed.
pub(crate) fn claims_at(written: &Map<String, Value>, now: UnixTime) -> Value {
    let now = i64::try_from(now.secs()).unwrap_or(i64::MAX);
    let mut claims = Map::new();
    claims.insert("iat".into(), json!(now));
    claims.insert("exp".into(), json!(now.saturating_add(DEFAULT_TTL_S)));
    for (name, value) in written {
        match value {
            Value::Null => {
                claims.remove(name);
            }
            Value::String(s) => {
                let resolved = relative_time(s, now).map_or_else(|| value.clone(), |t| json!(t));
                claims.insert(name.clone(), resolved);
            }
            other => {
                claims.insert(name.clone(), other.clone());
            }
        }
    }
    Value::Object(claims)
}

/// `now`, `now+N`, `now-N` → Unix seconds.
fn relative_time(text: &str, now: i64) -> Option<i64> {
    let rest = text.strip_prefix("now")?;
    if rest.is_empty() {
        return Some(now);
    }
    let (sign, digits) = rest.split_at_checked(1)?;
    let n: i64 = digits.parse().ok()?;
    match sign {
        "+" => Some(now.saturating_add(n)),
        "-" => Some(now.saturating_sub(n)),
        _ => None,
    }
}

fn mint_proof(
    case: &TestCase,
    spec: &DpopSpec,
    keys: &HashMap<String, SigningKey>,
    now: UnixTime,
    access_token: Option<&str>,
    rng: &dyn SecureRandom,
) -> Result<String, CaseError> {
    let key = signing_key(case, keys, &spec.key)?;
    let now = i64::try_from(now.secs()).unwrap_or(i64::MAX);
    let request = &case.request;
    let path = request.path.split(['?', '#']).next().unwrap_or_default();
    let htu = spec.htu.clone().unwrap_or_else(|| {
        format!(
            "https://{}{path}",
            request.authority.as_deref().unwrap_or("")
        )
    });
    let mut claims = json!({
        "htm": spec.htm.as_deref().unwrap_or(&request.method),
        "htu": htu,
        "iat": now.saturating_add(spec.iat_offset_s.unwrap_or(0)),
        "jti": match &spec.jti { Some(j) => j.clone(), None => random_id(rng) },
    });
    if let (Some(token), Some(obj)) = (access_token, claims.as_object_mut()) {
        obj.insert("ath".into(), json!(b64::encode(&sha256(token.as_bytes()))));
    }
    let mut header = Map::new();
    header.insert("typ".into(), json!("dpop+jwt"));
    header.insert("jwk".into(), key.public_jwk());
    header.insert("kid".into(), Value::Null);
    key.mint(key.default_alg(), &claims, Some(&header), rng)
        .map_err(|problem| CaseError::Mint {
            case: case.name.clone(),
            problem,
        })
}

fn random_id(rng: &dyn SecureRandom) -> String {
    let mut bytes = [0u8; 16];
    // ring's system randomness does not fail in practice; if it did, the id would be
    // all zeroes, which only a replay check (not part of minting) would notice.
    let _ = rng.fill(&mut bytes);
    b64::encode(&bytes)
}
