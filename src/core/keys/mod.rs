//! JWK sets → verification keys, checked once when they are loaded (configuration or
//! fetch), never on the request path.
//!
//! Refused outright (the whole set is invalid): bad JSON, missing or mistyped members,
//! bad base64url, wrong coordinate lengths, RSA outside 2048–8192 bits, a bad exponent, a
//! ROCA-weak modulus, private key material, duplicate `kid`s, symmetric keys mixed with
//! asymmetric ones, `oct` keys without an HMAC `alg` or shorter than the hash, and `oct`
//! keys from a remote source. Skipped (kept out of the set, reported): keys that are not
//! for signature verification (`use` ≠ `sig`, `key_ops` without `verify`) and keys of a
//! type, curve or algorithm actwarden does not verify (P-521, X25519, `RSA-OAEP`, …).

pub(crate) mod alg;
pub(crate) mod der;
// The fetch state machine serves hosts that fetch keys themselves (Envoy).
#[cfg_attr(not(feature = "proxy"), allow(dead_code))]
pub(crate) mod remote;

use crate::core::keys::alg::{Alg, AlgName};
use crate::core::limits::{MAX_JWKS_BYTES, MAX_JWKS_KEYS};
use crate::core::token::b64;
use jsonwebtoken::DecodingKey;
use serde_json::{Map, Value};
use std::fmt;
use std::sync::Arc;

/// Where a JWKS came from: `oct` (shared-secret) keys are only accepted from configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySource {
    Configured,
    Fetched,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Curve {
    P256,
    P384,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Rsa { bits: usize },
    Ec(Curve),
    Ed25519,
    Oct { bytes: usize },
}

/// A key that may verify signatures, with what it may verify.
#[derive(Clone)]
pub struct VerificationKey {
    pub kid: Option<String>,
    /// The JWK's `alg`, when it states one: then it is the only algorithm the key verifies.
    pub alg: Option<Alg>,
    pub kind: KeyKind,
    pub decoding: DecodingKey,
    /// SHA-256 over the key type and public material (plus `alg` when stated): the same
    /// key gives the same fingerprint in every fetch of a JWKS, so a cached verification
    /// can tell whether the key that verified it is still published.
    pub fingerprint: [u8; 32],
    /// The key as DER `SubjectPublicKeyInfo` (EC and RSA keys; `None` for Ed25519 and
    /// `oct`), built once here so that a host verifier that takes DER keys (Envoy's
    /// BoringSSL, `verify_signature`) does not re-encode it per signature.
    pub spki: Option<Arc<[u8]>>,
}

impl fmt::Debug for VerificationKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerificationKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl VerificationKey {
    /// Whether this key may verify a token signed with `alg`: the key type and curve must
    /// be the algorithm's, and a stated `alg` must be this one.
    pub fn fits(&self, alg: Alg) -> bool {
        if self.alg.is_some_and(|stated| stated != alg) {
            return false;
        }
        match (self.kind, alg) {
            (
                KeyKind::Rsa { .. },
                Alg::RS256 | Alg::RS384 | Alg::RS512 | Alg::PS256 | Alg::PS384 | Alg::PS512,
            ) => true,
            (KeyKind::Ec(Curve::P256), Alg::ES256) => true,
            (KeyKind::Ec(Curve::P384), Alg::ES384) => true,
            (KeyKind::Ed25519, Alg::EdDSA) => true,
            (KeyKind::Oct { bytes }, Alg::HS256 | Alg::HS384 | Alg::HS512) => {
                // Loading guarantees `alg` is stated for oct keys; check length again anyway.
                self.alg == Some(alg) && alg.hmac_min_key_bytes().is_some_and(|min| bytes >= min)
            }
            _ => false,
        }
    }
}

/// Why a key was left out of a set without making the set invalid.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SkipReason {
    /// `use` other than `sig`, or `key_ops` without `verify`.
    NotForSignatures,
    /// A `kty` actwarden does not verify with (as written).
    UnsupportedKeyType(String),
    /// A `crv` actwarden does not verify with (as written), e.g. P-521, X25519.
    UnsupportedCurve(String),
    /// An `alg` actwarden does not verify with (as written), e.g. `RSA-OAEP`.
    UnsupportedAlgorithm(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedKey {
    pub index: usize,
    pub kid: Option<String>,
    pub reason: SkipReason,
}

/// A checked JWK set.
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    pub keys: Vec<VerificationKey>,
    pub skipped: Vec<SkippedKey>,
}

/// A member problem inside one key.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MemberProblem {
    /// A required member is absent.
    Missing,
    /// The member is not a string (for `key_ops`: not an array).
    NotAString,
    /// The member is not unpadded base64url.
    NotBase64url,
    /// A coordinate or key of the wrong size for its curve, in bytes.
    WrongLength { expected: usize, actual: usize },
}

/// Why a JWK set is invalid. `path` methods give the JSON path inside the set.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum JwksError {
    TooLarge {
        bytes: usize,
        max: usize,
    },
    NotJson,
    NotAnObject,
    KeysMissing,
    KeysNotAnArray,
    NoKeys,
    TooManyKeys {
        count: usize,
        max: usize,
    },
    KeyNotAnObject {
        index: usize,
    },
    Member {
        index: usize,
        member: &'static str,
        problem: MemberProblem,
    },
    PrivateKeyMaterial {
        index: usize,
        member: &'static str,
    },
    RsaModulusSize {
        index: usize,
        bits: usize,
    },
    RsaExponent {
        index: usize,
    },
    RsaRocaWeak {
        index: usize,
    },
    AlgDoesNotFitKey {
        index: usize,
        alg: Alg,
    },
    DuplicateKid {
        index: usize,
        kid: String,
    },
    MixedSymmetricAndAsymmetric {
        index: usize,
    },
    HmacKeyWithoutAlg {
        index: usize,
    },
    HmacKeyTooShort {
        index: usize,
        bytes: usize,
        min: usize,
    },
    SymmetricKeyFetched {
        index: usize,
    },
    Ed25519SmallOrder {
        index: usize,
    },
}

impl JwksError {
    /// JSON path of the problem relative to the set (`keys[2].x`), empty for the whole set.
    pub fn path(&self) -> String {
        use JwksError::*;
        match self {
            TooLarge { .. } | NotJson | NotAnObject | NoKeys => String::new(),
            KeysMissing | KeysNotAnArray | TooManyKeys { .. } => "keys".into(),
            Member { index, member, .. } | PrivateKeyMaterial { index, member } => {
                format!("keys[{index}].{member}")
            }
            RsaModulusSize { index, .. } | RsaRocaWeak { index } => format!("keys[{index}].n"),
            RsaExponent { index } => format!("keys[{index}].e"),
            AlgDoesNotFitKey { index, .. } | HmacKeyWithoutAlg { index } => {
                format!("keys[{index}].alg")
            }
            DuplicateKid { index, .. } => format!("keys[{index}].kid"),
            HmacKeyTooShort { index, .. } => format!("keys[{index}].k"),
            KeyNotAnObject { index }
            | MixedSymmetricAndAsymmetric { index }
            | SymmetricKeyFetched { index } => format!("keys[{index}]"),
            Ed25519SmallOrder { index } => format!("keys[{index}].x"),
        }
    }
}

impl fmt::Display for JwksError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use JwksError::*;
        match self {
            TooLarge { bytes, max } => write!(f, "jwks is {bytes} bytes; the limit is {max}"),
            NotJson => f.write_str("jwks is not valid JSON"),
            NotAnObject => f.write_str("jwks must be a JSON object with a `keys` array"),
            KeysMissing => f.write_str("jwks has no `keys` member"),
            KeysNotAnArray => f.write_str("`keys` must be an array"),
            NoKeys => f.write_str("jwks has no key usable for signature verification"),
            TooManyKeys { count, max } => write!(f, "jwks has {count} keys; the limit is {max}"),
            KeyNotAnObject { .. } => f.write_str("a key must be a JSON object"),
            Member { member, problem, .. } => match problem {
                MemberProblem::Missing => write!(f, "`{member}` is required"),
                MemberProblem::NotAString => write!(f, "`{member}` must be a string"),
                MemberProblem::NotBase64url => {
                    write!(f, "`{member}` is not unpadded base64url")
                }
                MemberProblem::WrongLength { expected, actual } => write!(
                    f,
                    "`{member}` is {actual} bytes; this curve needs {expected}"
                ),
            },
            PrivateKeyMaterial { member, .. } => write!(
                f,
                "private key member `{member}` in a verification key set: publish only public keys"
            ),
            RsaModulusSize { bits, .. } => {
                write!(f, "rsa modulus is {bits} bits; 2048 to 8192 are accepted")
            }
            RsaExponent { .. } => f.write_str("rsa exponent must be odd and at least 3"),
            RsaRocaWeak { .. } => {
                f.write_str("rsa modulus has the ROCA fingerprint (CVE-2017-15361)")
            }
            AlgDoesNotFitKey { alg, .. } => write!(f, "`alg` `{alg}` does not fit this key type"),
            DuplicateKid { kid, .. } => write!(f, "`kid` `{kid}` appears more than once"),
            MixedSymmetricAndAsymmetric { .. } => {
                f.write_str("symmetric (`oct`) and asymmetric keys are mixed in one set")
            }
            HmacKeyWithoutAlg { .. } => {
                f.write_str("an `oct` key must state its HMAC `alg` (HS256, HS384 or HS512)")
            }
            HmacKeyTooShort { bytes, min, .. } => {
                write!(f, "hmac key is {bytes} bytes; its algorithm needs at least {min}")
            }
            Ed25519SmallOrder { .. } => f.write_str(
                "ed25519 public key is a small-order point: signatures under it can be forged",
            ),
            SymmetricKeyFetched { .. } => f.write_str(
                "an `oct` (shared secret) key in a fetched jwks is refused: anyone who can read it could sign tokens",
            ),
        }
    }
}

impl std::error::Error for JwksError {}

/// Parses and checks a JWK set. An empty usable set is an error: a provider with no key
/// it can use is a configuration mistake, not a provider that accepts nothing.
pub fn parse_jwks(text: &str, source: KeySource) -> Result<KeySet, JwksError> {
    if text.len() > MAX_JWKS_BYTES {
        return Err(JwksError::TooLarge {
            bytes: text.len(),
            max: MAX_JWKS_BYTES,
        });
    }
    let value =
        crate::core::token::json::parse_strict(text.as_bytes()).map_err(|_| JwksError::NotJson)?;
    let Value::Object(set) = value else {
        return Err(JwksError::NotAnObject);
    };
    let keys = match set.get("keys") {
        None => return Err(JwksError::KeysMissing),
        Some(Value::Array(keys)) => keys,
        Some(_) => return Err(JwksError::KeysNotAnArray),
    };
    if keys.len() > MAX_JWKS_KEYS {
        return Err(JwksError::TooManyKeys {
            count: keys.len(),
            max: MAX_JWKS_KEYS,
        });
    }
    let mut out = KeySet::default();
    for (index, key) in keys.iter().enumerate() {
        let Value::Object(jwk) = key else {
            return Err(JwksError::KeyNotAnObject { index });
        };
        match parse_key(index, jwk, source)? {
            Parsed::Key(k) => admit(&mut out, index, k)?,
            Parsed::Skipped(reason) => out.skipped.push(SkippedKey {
                index,
                kid: jwk.get("kid").and_then(Value::as_str).map(str::to_owned),
                reason,
            }),
        }
    }
    if out.keys.is_empty() {
        return Err(JwksError::NoKeys);
    }
    Ok(out)
}

/// One public JWK on its own, checked like a fetched key (no private material, no `oct`,
/// RSA 2048–8192 bits, …): a DPoP proof's `jwk` (SPEC §10). `Ok(None)`: a key type, curve
/// or algorithm actwarden does not verify with, or a key not for signatures.
pub(crate) fn parse_public_jwk(
    jwk: &Map<String, Value>,
) -> Result<Option<VerificationKey>, JwksError> {
    match parse_key(0, jwk, KeySource::Fetched)? {
        Parsed::Key(key) => Ok(Some(key)),
        Parsed::Skipped(_) => Ok(None),
    }
}

/// Adds a key to the set: all keys shared secrets or none (one set, one kind of trust),
/// and each `kid` once (a token's `kid` must name one key).
fn admit(set: &mut KeySet, index: usize, key: VerificationKey) -> Result<(), JwksError> {
    let symmetric = |k: &VerificationKey| matches!(k.kind, KeyKind::Oct { .. });
    if set
        .keys
        .first()
        .is_some_and(|first| symmetric(first) != symmetric(&key))
    {
        return Err(JwksError::MixedSymmetricAndAsymmetric { index });
    }
    if let Some(kid) = &key.kid {
        if set.keys.iter().any(|other| other.kid.as_ref() == Some(kid)) {
            return Err(JwksError::DuplicateKid {
                index,
                kid: kid.clone(),
            });
        }
    }
    set.keys.push(key);
    Ok(())
}

/// What reading one part of a key found: a usable value, or why the key is left out.
enum Parsed<T = VerificationKey> {
    Key(T),
    Skipped(SkipReason),
}

fn string_member<'a>(
    index: usize,
    jwk: &'a Map<String, Value>,
    member: &'static str,
) -> Result<Option<&'a str>, JwksError> {
    match jwk.get(member) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(JwksError::Member {
            index,
            member,
            problem: MemberProblem::NotAString,
        }),
    }
}

fn bytes_member(
    index: usize,
    jwk: &Map<String, Value>,
    member: &'static str,
) -> Result<Vec<u8>, JwksError> {
    let text = string_member(index, jwk, member)?.ok_or(JwksError::Member {
        index,
        member,
        problem: MemberProblem::Missing,
    })?;
    b64::decode(text).ok_or(JwksError::Member {
        index,
        member,
        problem: MemberProblem::NotBase64url,
    })
}

/// Members only a private key has (RFC 7518 §6.2.2, §6.3.2): a verification set
/// publishes none of them.
pub(crate) const PRIVATE_MEMBERS: [&str; 7] = ["d", "p", "q", "dp", "dq", "qi", "oth"];

/// One key, checked in the order its members are read: type and id, usage, stated
/// algorithm, no private material, then the public material of its type.
fn parse_key(
    index: usize,
    jwk: &Map<String, Value>,
    source: KeySource,
) -> Result<Parsed, JwksError> {
    let kty = required_string(index, jwk, "kty")?;
    let kid = string_member(index, jwk, "kid")?.map(str::to_owned);
    if !for_signatures(index, jwk)? {
        return Ok(Parsed::Skipped(SkipReason::NotForSignatures));
    }
    let alg = match stated_alg(index, jwk)? {
        Parsed::Key(alg) => alg,
        Parsed::Skipped(why) => return Ok(Parsed::Skipped(why)),
    };
    if kty != "oct" {
        if let Some(member) = PRIVATE_MEMBERS.into_iter().find(|m| jwk.contains_key(*m)) {
            return Err(JwksError::PrivateKeyMaterial { index, member });
        }
    }
    let material = match kty {
        "RSA" => Parsed::Key(rsa_material(index, jwk)?),
        "EC" => ec_material(index, jwk)?,
        "OKP" => okp_material(index, jwk)?,
        "oct" => Parsed::Key(oct_material(index, jwk, source, alg)?),
        other => Parsed::Skipped(SkipReason::UnsupportedKeyType(other.to_owned())),
    };
    let Material {
        kind,
        decoding,
        spki,
    } = match material {
        Parsed::Key(m) => m,
        Parsed::Skipped(why) => return Ok(Parsed::Skipped(why)),
    };
    let key = VerificationKey {
        kid,
        alg,
        kind,
        fingerprint: fingerprint(&decoding, alg),
        decoding,
        spki,
    };
    match alg {
        Some(alg) if !key.fits(alg) => Err(JwksError::AlgDoesNotFitKey { index, alg }),
        _ => Ok(Parsed::Key(key)),
    }
}

/// A string member that must be there.
fn required_string<'a>(
    index: usize,
    jwk: &'a Map<String, Value>,
    member: &'static str,
) -> Result<&'a str, JwksError> {
    string_member(index, jwk, member)?.ok_or(JwksError::Member {
        index,
        member,
        problem: MemberProblem::Missing,
    })
}

/// `use` and `key_ops` (RFC 7517 §4.2, §4.3): absent, or saying the key verifies.
fn for_signatures(index: usize, jwk: &Map<String, Value>) -> Result<bool, JwksError> {
    if string_member(index, jwk, "use")?.is_some_and(|u| u != "sig") {
        return Ok(false);
    }
    match jwk.get("key_ops") {
        None => Ok(true),
        Some(Value::Array(ops)) => Ok(ops.iter().any(|op| op.as_str() == Some("verify"))),
        Some(_) => Err(JwksError::Member {
            index,
            member: "key_ops",
            problem: MemberProblem::NotAString,
        }),
    }
}

/// The JWK's `alg`, when it states one actwarden verifies; a key for another algorithm
/// is skipped (it is not ours to use), not an error.
fn stated_alg(index: usize, jwk: &Map<String, Value>) -> Result<Parsed<Option<Alg>>, JwksError> {
    let Some(name) = string_member(index, jwk, "alg")? else {
        return Ok(Parsed::Key(None));
    };
    Ok(match Alg::classify(name) {
        AlgName::Supported(a) => Parsed::Key(Some(a)),
        AlgName::None | AlgName::Unsupported | AlgName::Unknown => {
            Parsed::Skipped(SkipReason::UnsupportedAlgorithm(name.to_owned()))
        }
    })
}

/// The public material of one key, by type.
struct Material {
    kind: KeyKind,
    decoding: DecodingKey,
    spki: Option<Arc<[u8]>>,
}

impl Material {
    fn of(kind: KeyKind, decoding: DecodingKey) -> Material {
        Material {
            kind,
            decoding,
            spki: None,
        }
    }
}

/// `kty: "RSA"`: 2048 to 8192 bits, an odd modulus without the ROCA fingerprint, and an
/// exponent ring accepts.
fn rsa_material(index: usize, jwk: &Map<String, Value>) -> Result<Material, JwksError> {
    let n = bytes_member(index, jwk, "n")?;
    let e = bytes_member(index, jwk, "e")?;
    let n = strip_leading_zeros(&n);
    let e = strip_leading_zeros(&e);
    let bits = bit_length(n);
    if !(RSA_BITS.contains(&bits)) || n.last().is_some_and(|b| b & 1 == 0) {
        return Err(JwksError::RsaModulusSize { index, bits });
    }
    // ring accepts 3 ≤ e < 2^33, odd; say so at load time rather than at verify.
    let e_ok = e.len() <= 5
        && e.last().is_some_and(|b| b & 1 == 1)
        && be_value(e) >= 3
        && be_value(e) < (1u64 << 33);
    if !e_ok {
        return Err(JwksError::RsaExponent { index });
    }
    if is_roca_weak(n) {
        return Err(JwksError::RsaRocaWeak { index });
    }
    let mut material = Material::of(
        KeyKind::Rsa { bits },
        DecodingKey::from_rsa_raw_components(n, e),
    );
    material.spki = Some(der::rsa_spki(n, e).into());
    Ok(material)
}

/// RSA modulus sizes accepted: below 2048 is breakable, above 8192 a verification cost.
const RSA_BITS: std::ops::RangeInclusive<usize> = 2048..=8192;

/// `kty: "EC"`: P-256 or P-384 (others are skipped), coordinates of the curve's size.
fn ec_material(index: usize, jwk: &Map<String, Value>) -> Result<Parsed<Material>, JwksError> {
    let (curve, size) = match required_string(index, jwk, "crv")? {
        "P-256" => (Curve::P256, 32),
        "P-384" => (Curve::P384, 48),
        other => {
            return Ok(Parsed::Skipped(SkipReason::UnsupportedCurve(
                other.to_owned(),
            )))
        }
    };
    let x = bytes_member(index, jwk, "x")?;
    let y = bytes_member(index, jwk, "y")?;
    for (member, coord) in [("x", &x), ("y", &y)] {
        check_length(index, member, coord, size)?;
    }
    let mut point = Vec::with_capacity(1 + 2 * size);
    point.push(0x04);
    point.extend_from_slice(&x);
    point.extend_from_slice(&y);
    let mut material = Material::of(KeyKind::Ec(curve), DecodingKey::from_ec_der(&point));
    material.spki = Some(der::ec_spki(curve, &point).into());
    Ok(Parsed::Key(material))
}

/// `kty: "OKP"`: Ed25519 (others are skipped), not a small-order point.
fn okp_material(index: usize, jwk: &Map<String, Value>) -> Result<Parsed<Material>, JwksError> {
    let crv = required_string(index, jwk, "crv")?;
    if crv != "Ed25519" {
        return Ok(Parsed::Skipped(SkipReason::UnsupportedCurve(
            crv.to_owned(),
        )));
    }
    let x = bytes_member(index, jwk, "x")?;
    check_length(index, "x", &x, 32)?;
    if is_small_order_ed25519(&x) {
        return Err(JwksError::Ed25519SmallOrder { index });
    }
    Ok(Parsed::Key(Material::of(
        KeyKind::Ed25519,
        DecodingKey::from_ed_der(&x),
    )))
}

/// `kty: "oct"`: only from configuration, with a stated HMAC `alg` and a secret at least
/// as long as its hash.
fn oct_material(
    index: usize,
    jwk: &Map<String, Value>,
    source: KeySource,
    alg: Option<Alg>,
) -> Result<Material, JwksError> {
    if source == KeySource::Fetched {
        return Err(JwksError::SymmetricKeyFetched { index });
    }
    let Some(alg) = alg else {
        return Err(JwksError::HmacKeyWithoutAlg { index });
    };
    let Some(min) = alg.hmac_min_key_bytes() else {
        return Err(JwksError::AlgDoesNotFitKey { index, alg });
    };
    let secret = bytes_member(index, jwk, "k")?;
    if secret.len() < min {
        return Err(JwksError::HmacKeyTooShort {
            index,
            bytes: secret.len(),
            min,
        });
    }
    Ok(Material::of(
        KeyKind::Oct {
            bytes: secret.len(),
        },
        DecodingKey::from_secret(&secret),
    ))
}

fn check_length(
    index: usize,
    member: &'static str,
    bytes: &[u8],
    expected: usize,
) -> Result<(), JwksError> {
    if bytes.len() == expected {
        return Ok(());
    }
    Err(JwksError::Member {
        index,
        member,
        problem: MemberProblem::WrongLength {
            expected,
            actual: bytes.len(),
        },
    })
}

/// Ed25519 public keys of small order (the identity, points of order 2, 4 and 8, and the
/// non-canonical encodings of 0 and 1), compared with the sign bit cleared: with such a
/// key the verification equation holds for forged signatures (R = identity, S = 0). The
/// list is libsodium's `ge25519_has_small_order` blocklist.
fn is_small_order_ed25519(x: &[u8]) -> bool {
    const BLOCKLIST: [[u8; 32]; 7] = [
        [0; 32],
        [
            1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            0, 0, 0,
        ],
        [
            0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef,
            0x98, 0xf0, 0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88,
            0x6d, 0x53, 0xfc, 0x05,
        ],
        [
            0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10,
            0x67, 0x0f, 0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77,
            0x92, 0xac, 0x03, 0x7a,
        ],
        [
            0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            0xff, 0xff, 0xff, 0x7f,
        ],
        [
            0xed, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            0xff, 0xff, 0xff, 0x7f,
        ],
        [
            0xee, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            0xff, 0xff, 0xff, 0x7f,
        ],
    ];
    let Ok(key) = <[u8; 32]>::try_from(x) else {
        return false;
    };
    BLOCKLIST.iter().any(|bad| {
        key.iter()
            .zip(bad.iter())
            .enumerate()
            .all(|(i, (k, b))| if i == 31 { k & 0x7f == *b } else { k == b })
    })
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    bytes.get(start..).unwrap_or_default()
}

fn bit_length(be: &[u8]) -> usize {
    match be.first() {
        None => 0,
        Some(top) => (be.len() - 1) * 8 + (8 - top.leading_zeros() as usize),
    }
}

fn be_value(be: &[u8]) -> u64 {
    be.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b))
}

/// ROCA (CVE-2017-15361) fingerprint: moduli generated by the vulnerable Infineon library
/// are, modulo each small prime below, in the subgroup generated by 65537. A random modulus
/// passes all 38 tests with negligible probability. Primes from the ROCA paper's detector.
fn is_roca_weak(n: &[u8]) -> bool {
    const PRIMES: [u32; 38] = [
        3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89,
        97, 101, 103, 107, 109, 113, 127, 131, 137, 139, 149, 151, 157, 163, 167,
    ];
    PRIMES.iter().all(|&p| {
        let residue = n
            .iter()
            .fold(0u32, |acc, b| (acc * 256 + u32::from(*b)) % p);
        let generator = 65537 % p;
        let mut element = 1u32;
        for _ in 0..p {
            if element == residue {
                return true;
            }
            element = element * generator % p;
        }
        false
    })
}

fn fingerprint(key: &DecodingKey, alg: Option<Alg>) -> [u8; 32] {
    use jsonwebtoken::DecodingKeyKind;
    let mut data = Vec::new();
    let mut part = |tag: &[u8], bytes: &[u8]| {
        data.extend_from_slice(tag);
        data.extend_from_slice(&(bytes.len() as u64).to_be_bytes());
        data.extend_from_slice(bytes);
    };
    part(format!("{:?}", key.family()).as_bytes(), b"");
    match key.kind() {
        DecodingKeyKind::RsaModulusExponent { n, e } => {
            part(b"n", n);
            part(b"e", e);
        }
        DecodingKeyKind::SecretOrDer(b) => part(b"k", b),
    }
    part(b"alg", alg.map(|a| a.name()).unwrap_or_default().as_bytes());
    crate::core::verification::crypto::sha256(&data)
}

/// Keys that are not in the configuration: what a host fetched for `remote_jwks`
/// providers. `None` means the provider has no usable keys now (`jwks_unavailable`).
pub trait RemoteKeys {
    fn remote_keys(&self, provider: &str) -> Option<&KeySet>;
}

/// A host without fetched keys (every remote provider is unavailable).
pub struct NoRemoteKeys;

impl RemoteKeys for NoRemoteKeys {
    fn remote_keys(&self, _: &str) -> Option<&KeySet> {
        None
    }
}

impl RemoteKeys for std::collections::HashMap<String, KeySet> {
    fn remote_keys(&self, provider: &str) -> Option<&KeySet> {
        self.get(provider)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EC_KEY: &str = r#"{"keys":[{"kty":"EC","crv":"P-256","kid":"a","x":"04N0xi21hshyvBp7I167sbE_bXqyqkAPfefdklMO7wY","y":"UI8exy-C06a7DUnjIdENkxeFtHM4-l_41LqEw9nVgmw"}]}"#;

    #[test]
    fn ec_key_loads_and_fits_only_es256() {
        let set = parse_jwks(EC_KEY, KeySource::Fetched).unwrap();
        let key = &set.keys[0];
        assert!(key.fits(Alg::ES256));
        assert!(!key.fits(Alg::ES384));
        assert!(!key.fits(Alg::HS256));
        assert!(!key.fits(Alg::RS256));
    }

    #[test]
    fn private_members_are_refused_with_a_path() {
        let jwks = EC_KEY.replace(
            r#""kid":"a","#,
            r#""kid":"a","d":"yy49oPcINGK2ps0LmtxpB6UTEOiITghHBif6wDqmJ3c","#,
        );
        let err = parse_jwks(&jwks, KeySource::Configured).unwrap_err();
        assert_eq!(err.path(), "keys[0].d");
    }

    #[test]
    fn oct_keys_need_an_alg_and_length_and_never_come_from_a_fetch() {
        let k32 = b64::encode(&[7u8; 32]);
        let ok = format!(r#"{{"keys":[{{"kty":"oct","alg":"HS256","k":"{k32}"}}]}}"#);
        assert!(parse_jwks(&ok, KeySource::Configured).is_ok());
        assert_eq!(
            parse_jwks(&ok, KeySource::Fetched).unwrap_err(),
            JwksError::SymmetricKeyFetched { index: 0 }
        );
        let no_alg = format!(r#"{{"keys":[{{"kty":"oct","k":"{k32}"}}]}}"#);
        assert_eq!(
            parse_jwks(&no_alg, KeySource::Configured).unwrap_err(),
            JwksError::HmacKeyWithoutAlg { index: 0 }
        );
        let short = format!(r#"{{"keys":[{{"kty":"oct","alg":"HS512","k":"{k32}"}}]}}"#);
        assert_eq!(
            parse_jwks(&short, KeySource::Configured).unwrap_err(),
            JwksError::HmacKeyTooShort {
                index: 0,
                bytes: 32,
                min: 64
            }
        );
    }

    #[test]
    fn encryption_and_unsupported_keys_are_skipped_not_fatal() {
        let jwks = EC_KEY.replace(
            r#"{"keys":["#,
            r#"{"keys":[{"kty":"EC","crv":"P-521","x":"AA","y":"AA"},{"kty":"RSA","use":"enc","n":"AQAB","e":"AQAB"},"#,
        );
        let set = parse_jwks(&jwks, KeySource::Fetched).unwrap();
        assert_eq!(set.keys.len(), 1);
        assert_eq!(set.skipped.len(), 2);
    }

    #[test]
    fn duplicate_kid_is_refused() {
        let jwks = EC_KEY.replace(
            r#"]}"#,
            r#",{"kty":"EC","crv":"P-256","kid":"a","x":"04N0xi21hshyvBp7I167sbE_bXqyqkAPfefdklMO7wY","y":"UI8exy-C06a7DUnjIdENkxeFtHM4-l_41LqEw9nVgmw"}]}"#,
        );
        assert!(matches!(
            parse_jwks(&jwks, KeySource::Fetched),
            Err(JwksError::DuplicateKid { index: 1, .. })
        ));
    }

    #[test]
    fn wrong_coordinate_length_names_the_member() {
        let jwks = EC_KEY.replace("P-256", "P-384");
        let err = parse_jwks(&jwks, KeySource::Fetched).unwrap_err();
        assert_eq!(err.path(), "keys[0].x");
    }

    /// Each canonical blocklisted point really is weak: ring accepts the forged signature
    /// (R = identity, S = 0) for some of 64 messages (always for order 1, with probability
    /// 1 - (7/8)^64 for order 8). Guards the constants against a typo.
    #[test]
    fn ed25519_blocklist_entries_admit_forgeries() {
        use ring::signature::{UnparsedPublicKey, ED25519};
        let mut forged = [0u8; 64];
        forged[0] = 1; // R = identity, S = 0
        let canonical: [&str; 4] = [
            "0100000000000000000000000000000000000000000000000000000000000000",
            "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
            "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
            "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        ];
        for hex in canonical {
            let key = crate::core::token::b64::unhex(hex).unwrap();
            assert!(is_small_order_ed25519(&key), "{hex}");
            let weak = (0u8..64).any(|m| {
                UnparsedPublicKey::new(&ED25519, &key)
                    .verify(&[m], &forged)
                    .is_ok()
            });
            assert!(weak, "{hex} admits no forgery: not a small-order point?");
        }
        let jwks = format!(
            r#"{{"keys":[{{"kty":"OKP","crv":"Ed25519","kid":"weak","x":"{}"}}]}}"#,
            crate::core::token::b64::encode(&crate::core::token::b64::unhex(canonical[0]).unwrap())
        );
        assert_eq!(
            parse_jwks(&jwks, KeySource::Fetched).unwrap_err(),
            JwksError::Ed25519SmallOrder { index: 0 }
        );
    }
}
