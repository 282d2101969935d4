//! Making tokens, for tests, scripts and the playground: key generation, private JWKs,
//! signing, and simulated token exchange (nesting a subject into `act`).
//!
//! Not on the decision path. Randomness comes in as an argument like time does; hosts pass
//! `ring::rand::SystemRandom`.

use crate::core::keys::alg::{Alg, AlgName};
use crate::core::token::b64;
use ring::rand::SecureRandom;
use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair};
use serde_json::{json, Map, Value};
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MintError {
    NotJson,
    NotAPrivateKey(&'static str),
    BadMember(&'static str),
    KeyRejected(&'static str),
    AlgDoesNotFitKey(String),
    UnsupportedAlgorithm(String),
    Random,
    ClaimsNotAnObject,
}

impl fmt::Display for MintError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MintError::NotJson => f.write_str("the key is not a JSON object"),
            MintError::NotAPrivateKey(why) => write!(f, "not a private JWK: {why}"),
            MintError::BadMember(m) => write!(f, "member `{m}` is missing or not base64url"),
            MintError::KeyRejected(why) => write!(f, "the key was rejected: {why}"),
            MintError::AlgDoesNotFitKey(a) => write!(f, "`{a}` cannot be signed with this key"),
            MintError::UnsupportedAlgorithm(a) => write!(f, "cannot generate or sign `{a}`"),
            MintError::Random => f.write_str("no randomness available"),
            MintError::ClaimsNotAnObject => f.write_str("claims must be a JSON object"),
        }
    }
}

impl std::error::Error for MintError {}

enum Signer {
    Ec(EcdsaKeyPair, Alg),
    Ed(Ed25519KeyPair),
    Rsa(RsaKeyPair),
    Hmac(Vec<u8>, Alg),
}

/// A private key that can sign, with its private JWK.
pub struct SigningKey {
    jwk: Map<String, Value>,
    signer: Signer,
}

fn member(jwk: &Map<String, Value>, name: &'static str) -> Result<Vec<u8>, MintError> {
    jwk.get(name)
        .and_then(Value::as_str)
        .and_then(b64::decode)
        .ok_or(MintError::BadMember(name))
}

impl SigningKey {
    pub fn from_jwk_json(text: &str, rng: &dyn SecureRandom) -> Result<SigningKey, MintError> {
        match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(jwk)) => SigningKey::from_jwk(jwk, rng),
            _ => Err(MintError::NotJson),
        }
    }

    pub fn from_jwk(
        jwk: Map<String, Value>,
        rng: &dyn SecureRandom,
    ) -> Result<SigningKey, MintError> {
        let kty = jwk
            .get("kty")
            .and_then(Value::as_str)
            .ok_or(MintError::NotAPrivateKey("no `kty`"))?;
        let signer = match kty {
            "EC" => {
                let (alg, signing) = match jwk.get("crv").and_then(Value::as_str) {
                    Some("P-256") => (Alg::ES256, &signature::ECDSA_P256_SHA256_FIXED_SIGNING),
                    Some("P-384") => (Alg::ES384, &signature::ECDSA_P384_SHA384_FIXED_SIGNING),
                    _ => return Err(MintError::NotAPrivateKey("EC keys must be P-256 or P-384")),
                };
                let mut point = vec![4u8];
                point.extend(member(&jwk, "x")?);
                point.extend(member(&jwk, "y")?);
                let d = member(&jwk, "d")?;
                let pair = EcdsaKeyPair::from_private_key_and_public_key(signing, &d, &point, rng)
                    .map_err(|_| {
                        MintError::KeyRejected("ec private and public parts do not match")
                    })?;
                Signer::Ec(pair, alg)
            }
            "OKP" => {
                let d = member(&jwk, "d")?;
                let x = member(&jwk, "x")?;
                Signer::Ed(
                    Ed25519KeyPair::from_seed_and_public_key(&d, &x).map_err(|_| {
                        MintError::KeyRejected("ed25519 seed and public key do not match")
                    })?,
                )
            }
            "RSA" => {
                let parts = ["n", "e", "d", "p", "q", "dp", "dq", "qi"].map(|m| member(&jwk, m));
                let [n, e, d, p, q, dp, dq, qi] = parts;
                let components = ring::rsa::KeyPairComponents {
                    public_key: ring::rsa::PublicKeyComponents { n: n?, e: e? },
                    d: d?,
                    p: p?,
                    q: q?,
                    dP: dp?,
                    dQ: dq?,
                    qInv: qi?,
                };
                Signer::Rsa(
                    RsaKeyPair::from_components(&components)
                        .map_err(|_| MintError::KeyRejected("inconsistent rsa components"))?,
                )
            }
            "oct" => {
                let alg = match jwk.get("alg").and_then(Value::as_str).map(Alg::classify) {
                    Some(AlgName::Supported(a)) if a.is_hmac() => a,
                    _ => return Err(MintError::NotAPrivateKey("an `oct` key needs an HS `alg`")),
                };
                Signer::Hmac(member(&jwk, "k")?, alg)
            }
            _ => return Err(MintError::NotAPrivateKey("unsupported `kty`")),
        };
        Ok(SigningKey { jwk, signer })
    }

    /// Generates a key: ES256, ES384, EdDSA, or an HS256/384/512 secret.
    pub fn generate(alg: Alg, kid: &str, rng: &dyn SecureRandom) -> Result<SigningKey, MintError> {
        let mut jwk = Map::new();
        match alg {
            Alg::ES256 | Alg::ES384 => {
                let (signing, crv, len, marker): (_, _, usize, &[u8]) = if alg == Alg::ES256 {
                    (
                        &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                        "P-256",
                        32,
                        &[0x02, 0x01, 0x01, 0x04, 0x20],
                    )
                } else {
                    (
                        &signature::ECDSA_P384_SHA384_FIXED_SIGNING,
                        "P-384",
                        48,
                        &[0x02, 0x01, 0x01, 0x04, 0x30],
                    )
                };
                let doc =
                    EcdsaKeyPair::generate_pkcs8(signing, rng).map_err(|_| MintError::Random)?;
                // ring's PKCS#8 template: ECPrivateKey { version 1, privateKey OCTET STRING }.
                let der = doc.as_ref();
                let at = der
                    .windows(marker.len())
                    .position(|w| w == marker)
                    .ok_or(MintError::KeyRejected("unexpected pkcs8 layout"))?
                    + marker.len();
                let d = der
                    .get(at..at + len)
                    .ok_or(MintError::KeyRejected("unexpected pkcs8 layout"))?;
                let pair = EcdsaKeyPair::from_pkcs8(signing, der, rng)
                    .map_err(|_| MintError::KeyRejected("generated key"))?;
                let point = pair.public_key().as_ref();
                let (x, y) = point.get(1..).unwrap_or_default().split_at(len);
                jwk.insert("kty".into(), json!("EC"));
                jwk.insert("crv".into(), json!(crv));
                jwk.insert("x".into(), json!(b64::encode(x)));
                jwk.insert("y".into(), json!(b64::encode(y)));
                jwk.insert("d".into(), json!(b64::encode(d)));
            }
            Alg::EdDSA => {
                let mut seed = [0u8; 32];
                rng.fill(&mut seed).map_err(|_| MintError::Random)?;
                let pair = Ed25519KeyPair::from_seed_unchecked(&seed)
                    .map_err(|_| MintError::KeyRejected("generated key"))?;
                jwk.insert("kty".into(), json!("OKP"));
                jwk.insert("crv".into(), json!("Ed25519"));
                jwk.insert("x".into(), json!(b64::encode(pair.public_key().as_ref())));
                jwk.insert("d".into(), json!(b64::encode(&seed)));
            }
            Alg::HS256 | Alg::HS384 | Alg::HS512 => {
                let mut secret = vec![0u8; alg.hmac_min_key_bytes().unwrap_or(64)];
                rng.fill(&mut secret).map_err(|_| MintError::Random)?;
                jwk.insert("kty".into(), json!("oct"));
                jwk.insert("k".into(), json!(b64::encode(&secret)));
            }
            other => return Err(MintError::UnsupportedAlgorithm(other.name().to_owned())),
        }
        jwk.insert("alg".into(), json!(alg.name()));
        jwk.insert("kid".into(), json!(kid));
        jwk.insert("use".into(), json!("sig"));
        SigningKey::from_jwk(jwk, rng)
    }

    pub fn private_jwk(&self) -> Value {
        Value::Object(self.jwk.clone())
    }

    /// The public JWK (private members removed). For `oct` keys this is the secret itself.
    pub fn public_jwk(&self) -> Value {
        // Only registered public members: comments or private members never leak out.
        let mut public = vec![
            "kty", "kid", "use", "key_ops", "alg", "crv", "x", "y", "n", "e",
        ];
        if matches!(self.signer, Signer::Hmac(..)) {
            public.push("k");
        }
        let jwk: Map<String, Value> = self
            .jwk
            .iter()
            .filter(|(k, _)| public.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Value::Object(jwk)
    }

    pub fn kid(&self) -> Option<&str> {
        self.jwk.get("kid").and_then(Value::as_str)
    }

    /// The algorithm this key signs with by default (its `alg`, else the natural one).
    pub fn default_alg(&self) -> Alg {
        if let Some(AlgName::Supported(a)) = self
            .jwk
            .get("alg")
            .and_then(Value::as_str)
            .map(Alg::classify)
        {
            return a;
        }
        match &self.signer {
            Signer::Ec(_, a) | Signer::Hmac(_, a) => *a,
            Signer::Ed(_) => Alg::EdDSA,
            Signer::Rsa(_) => Alg::RS256,
        }
    }

    /// Signs `input` with `alg`, which must fit the key.
    pub fn sign(
        &self,
        alg: Alg,
        input: &[u8],
        rng: &dyn SecureRandom,
    ) -> Result<Vec<u8>, MintError> {
        let misfit = || MintError::AlgDoesNotFitKey(alg.name().to_owned());
        match &self.signer {
            Signer::Ec(pair, a) if *a == alg => pair
                .sign(rng, input)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| MintError::Random),
            Signer::Ed(pair) if alg == Alg::EdDSA => Ok(pair.sign(input).as_ref().to_vec()),
            Signer::Rsa(pair) => {
                let padding: &dyn signature::RsaEncoding = match alg {
                    Alg::RS256 => &signature::RSA_PKCS1_SHA256,
                    Alg::RS384 => &signature::RSA_PKCS1_SHA384,
                    Alg::RS512 => &signature::RSA_PKCS1_SHA512,
                    Alg::PS256 => &signature::RSA_PSS_SHA256,
                    Alg::PS384 => &signature::RSA_PSS_SHA384,
                    Alg::PS512 => &signature::RSA_PSS_SHA512,
                    _ => return Err(misfit()),
                };
                let mut sig = vec![0u8; pair.public().modulus_len()];
                pair.sign(padding, rng, input, &mut sig)
                    .map_err(|_| MintError::Random)?;
                Ok(sig)
            }
            Signer::Hmac(secret, a) if *a == alg => {
                let hmac_alg = match alg {
                    Alg::HS256 => ring::hmac::HMAC_SHA256,
                    Alg::HS384 => ring::hmac::HMAC_SHA384,
                    _ => ring::hmac::HMAC_SHA512,
                };
                Ok(
                    ring::hmac::sign(&ring::hmac::Key::new(hmac_alg, secret), input)
                        .as_ref()
                        .to_vec(),
                )
            }
            _ => Err(misfit()),
        }
    }

    /// A compact JWS over `claims` with `typ` `at+jwt` (or `typ` as given) and this key's
    /// `kid`. `extra_header` members are added (or override) as given.
    pub fn mint(
        &self,
        alg: Alg,
        claims: &Value,
        extra_header: Option<&Map<String, Value>>,
        rng: &dyn SecureRandom,
    ) -> Result<String, MintError> {
        if !claims.is_object() {
            return Err(MintError::ClaimsNotAnObject);
        }
        let mut header = Map::new();
        header.insert("alg".into(), json!(alg.name()));
        header.insert("typ".into(), json!("at+jwt"));
        if let Some(kid) = self.kid() {
            header.insert("kid".into(), json!(kid));
        }
        if let Some(extra) = extra_header {
            for (k, v) in extra {
                if v.is_null() {
                    header.remove(k);
                } else {
                    header.insert(k.clone(), v.clone());
                }
            }
        }
        let input = format!(
            "{}.{}",
            b64::encode(Value::Object(header).to_string().as_bytes()),
            b64::encode(claims.to_string().as_bytes())
        );
        let sig = self.sign(alg, input.as_bytes(), rng)?;
        Ok(format!("{input}.{}", b64::encode(&sig)))
    }
}

/// The RFC 7638 SHA-256 thumbprint of a JWK (public or private: only the public members
/// count), base64url: the `cnf.jkt` of a token bound to that key (RFC 9449 §6.1). `None`
/// for a key type without a thumbprint here (`oct`) or a JWK missing a member.
pub fn jwk_thumbprint(jwk: &Value) -> Option<String> {
    let Value::Object(map) = jwk else {
        return None;
    };
    crate::core::dpop::sha256_thumbprint(map).map(|t| b64::encode(&t))
}

/// What a DPoP proof (RFC 9449 §4.2) says: the request it is for and, when it goes with
/// an access token, that token (its hash becomes `ath`).
#[derive(Debug, Clone, Default)]
pub struct ProofClaims<'a> {
    pub htm: &'a str,
    pub htu: &'a str,
    /// Unix seconds.
    pub iat: u64,
    /// Random (128 bits, base64url) when `None`.
    pub jti: Option<&'a str>,
    pub access_token: Option<&'a str>,
}

/// Public members a proof's `jwk` carries (RFC 9449 §4.2: the public key, nothing more).
const PROOF_JWK_MEMBERS: [&str; 6] = ["kty", "crv", "x", "y", "n", "e"];

impl SigningKey {
    /// `cnf.jkt` of a token bound to this key (`jwk_thumbprint` of its public JWK).
    pub fn jkt(&self) -> Option<String> {
        jwk_thumbprint(&self.public_jwk())
    }

    /// A DPoP proof signed with this key under `alg` (`typ` `dpop+jwt`, the public key in
    /// `jwk`). An `oct` key cannot make one.
    pub fn dpop_proof(
        &self,
        alg: Alg,
        claims: &ProofClaims<'_>,
        rng: &dyn SecureRandom,
    ) -> Result<String, MintError> {
        if matches!(self.signer, Signer::Hmac(..)) {
            return Err(MintError::AlgDoesNotFitKey(alg.name().to_owned()));
        }
        let jwk: Map<String, Value> = self
            .jwk
            .iter()
            .filter(|(k, _)| PROOF_JWK_MEMBERS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let header = json!({ "typ": "dpop+jwt", "alg": alg.name(), "jwk": jwk });
        let jti = match claims.jti {
            Some(j) => j.to_owned(),
            None => {
                let mut bytes = [0u8; 16];
                rng.fill(&mut bytes).map_err(|_| MintError::Random)?;
                b64::encode(&bytes)
            }
        };
        let mut body = json!({
            "jti": jti, "htm": claims.htm, "htu": claims.htu, "iat": claims.iat,
        });
        if let (Some(token), Value::Object(m)) = (claims.access_token, &mut body) {
            let ath = crate::core::verification::crypto::sha256(token.as_bytes());
            m.insert("ath".into(), json!(b64::encode(&ath)));
        }
        let input = format!(
            "{}.{}",
            b64::encode(header.to_string().as_bytes()),
            b64::encode(body.to_string().as_bytes())
        );
        let sig = self.sign(alg, input.as_bytes(), rng)?;
        Ok(format!("{input}.{}", b64::encode(&sig)))
    }
}

/// Simulated token exchange (RFC 8693): the new token's subject stays the same, and the
/// new actor wraps the previous `act` (the previous actor becomes a prior actor).
pub fn delegate(claims: &Value, actor: &str, actor_profile: Option<&str>) -> Value {
    let mut out = claims.clone();
    if let Value::Object(map) = &mut out {
        let mut act = Map::new();
        act.insert("sub".into(), json!(actor));
        if let Some(p) = actor_profile {
            act.insert("sub_profile".into(), json!(p));
        }
        if let Some(prior) = map.remove("act") {
            act.insert("act".into(), prior);
        }
        map.insert("act".into(), Value::Object(act));
    }
    out
}

/// A JWKS document with the public keys of `keys`.
pub fn public_jwks(keys: &[&SigningKey]) -> Value {
    json!({ "keys": keys.iter().map(|k| k.public_jwk()).collect::<Vec<_>>() })
}
