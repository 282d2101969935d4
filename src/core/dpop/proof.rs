//! One DPoP proof (RFC 9449 §4.3), checked in the order of SPEC §10: shape, `typ`, `alg`,
//! `jwk`, signature, `htm`, `htu`, `iat`, `jti`, `ath`, and the token's `cnf.jkt`. Every
//! failure is a `ProofProblem` (`dpop_invalid`); nothing of the proof is trusted before
//! its signature verified with its own `jwk`, and the key is trusted only through the
//! token's `cnf.jkt`.

use super::{htu, thumbprint};
use crate::core::config::{typ_is_one_of, DpopConfig};
use crate::core::keys::alg::{Alg, AlgName};
use crate::core::keys::{self, KeyKind, PRIVATE_MEMBERS};
use crate::core::limits::{
    MAX_DPOP_CLAIMS_BYTES, MAX_DPOP_HEADER_BYTES, MAX_DPOP_JTI_BYTES, MAX_DPOP_PROOF_BYTES,
    MAX_DPOP_RSA_BITS,
};
use crate::core::token::b64;
use crate::core::token::json::{parse_strict_object, Object};
use crate::core::verification::backend::SignatureVerifier;
use crate::core::verification::cache::TokenCache;
use serde_json::{Map, Value};
use std::rc::Rc;

/// Why a proof is refused (`dpop_invalid`). Texts never repeat proof content: it is
/// unverified and goes into responses and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProofProblem {
    /// `Authorization: DPoP` with no `dpop` header, or with more than one proof.
    ProofCount {
        count: usize,
    },
    /// Over `limits::MAX_DPOP_PROOF_BYTES` (or a part over its budget).
    TooLarge,
    /// Not a compact JWS whose header and claims are JSON objects (no duplicate members,
    /// no `crit`).
    NotCompactJws,
    /// `typ` is not `dpop+jwt`.
    WrongType,
    /// `alg` is `none`, HMAC, or not in `dpop.algorithms`.
    AlgNotAllowed,
    /// No `jwk` object in the header.
    JwkMissing,
    /// The `jwk` holds private key members.
    JwkPrivate,
    /// An RSA `jwk` over `limits::MAX_DPOP_RSA_BITS`.
    JwkTooLarge,
    /// The `jwk` is not a public key actwarden verifies with, or does not fit `alg`.
    JwkInvalid,
    SignatureInvalid,
    HtmMismatch,
    HtuMismatch,
    /// `iat` missing or not a number.
    IatMissing,
    /// `iat` more than `max_age_s` (plus `clock_skew_s`) from now.
    IatOutOfWindow {
        now: u64,
        iat: i64,
        window: u64,
    },
    JtiMissing,
    /// `ath` missing, or not base64url(SHA-256(the access token)).
    AthMismatch,
    /// The token has no `cnf.jkt` (a string).
    TokenNotKeyBound,
    /// `cnf.jkt` is not the thumbprint of the proof's `jwk`.
    ThumbprintMismatch,
}

impl ProofProblem {
    pub fn describe(&self) -> String {
        use ProofProblem::*;
        match self {
            ProofCount { count: 0 } => "the request has no `DPoP` header".into(),
            ProofCount { count } => {
                format!("the request carries {count} DPoP proofs; exactly one is allowed")
            }
            TooLarge => format!(
                "the proof is over {MAX_DPOP_PROOF_BYTES} bytes or a part is over its limit"
            ),
            NotCompactJws => "the proof is not a compact JWS with JSON header and claims".into(),
            WrongType => "the proof `typ` is not `dpop+jwt`".into(),
            AlgNotAllowed => "the proof `alg` is not one this issuer accepts for DPoP".into(),
            JwkMissing => "the proof header has no `jwk` object".into(),
            JwkPrivate => "the proof `jwk` holds private key material".into(),
            JwkTooLarge => format!("the proof `jwk` is an RSA key over {MAX_DPOP_RSA_BITS} bits"),
            JwkInvalid => "the proof `jwk` is not a usable public key for its `alg`".into(),
            SignatureInvalid => "the proof signature does not verify with its `jwk`".into(),
            HtmMismatch => "the proof `htm` is not the request method".into(),
            HtuMismatch => "the proof `htu` is not the request URI".into(),
            IatMissing => "the proof has no numeric `iat`".into(),
            IatOutOfWindow { now, iat, window } => {
                format!("the proof was issued at {iat}, more than {window}s from now ({now})")
            }
            JtiMissing => "the proof has no `jti`".into(),
            AthMismatch => "the proof `ath` is not the hash of this access token".into(),
            TokenNotKeyBound => "the token has no `cnf.jkt`, so no proof can bind it".into(),
            ThumbprintMismatch => {
                "the token's `cnf.jkt` is not the thumbprint of the proof key".into()
            }
        }
    }
}

/// What a proof is checked against.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    pub config: &'a DpopConfig,
    pub clock_skew_s: u64,
    pub method: &'a str,
    /// The request URI in `htu::normalize` form; `None` when the request has no authority.
    pub uri: Option<&'a str>,
    pub now: u64,
    /// SHA-256 of the access token (kept with the verified token: it depends on the
    /// token only), whose base64url `ath` must be.
    pub access_token_sha256: &'a [u8; 32],
    /// The token's `cnf.jkt`, verified with the token.
    pub jkt: Option<&'a str>,
}

/// A proof that passed every check: what the replay window needs.
#[derive(Debug)]
pub struct Accepted {
    pub jti: String,
    pub iat: i64,
}

pub fn verify(
    proof: &str,
    expected: &Expected<'_>,
    crypto: &dyn SignatureVerifier,
) -> Result<Accepted, ProofProblem> {
    verify_remembering(proof, expected, crypto, None)
}

/// `verify`, with the proof headers already checked kept in `memo` (the host's
/// `TokenCache`): an agent sends the same header, key and all, with every proof, and
/// parsing it, its key and its thumbprint were most of a proof's work besides the
/// signature. The result is the same with or without `memo`.
pub(crate) fn verify_remembering(
    proof: &str,
    expected: &Expected<'_>,
    crypto: &dyn SignatureVerifier,
    memo: Option<&TokenCache>,
) -> Result<Accepted, ProofProblem> {
    let parts = split_remembering(proof, memo)?;
    let header = match parts.header {
        HeaderPart::Known(header) => {
            check_alg_allowed(header.alg, expected.config)?;
            header
        }
        HeaderPart::Parsed { text, object } => {
            let header = Rc::new(read_header(&object, expected.config)?);
            if let Some(memo) = memo {
                memo.put_proof_header(text, Rc::clone(&header));
            }
            header
        }
    };
    // The host's backend, as for tokens (SPEC §13: BoringSSL in Envoy where offered).
    let signed = crypto.verify(
        header.alg,
        &header.key,
        parts.signing_input.as_bytes(),
        &parts.signature,
    );
    if !signed.is_valid() {
        return Err(ProofProblem::SignatureInvalid);
    }
    let accepted = check_claims(&parts.claims, expected)?;
    check_binding(&header, expected.jkt)?;
    Ok(accepted)
}

/// What a proof's protected header says, once every check that depends on it alone has
/// passed: `typ`, no `crit`, an `alg` actwarden supports (not HMAC), and a public `jwk`
/// within budget that fits it. Only the provider's `algorithms` allowlist is checked per
/// request.
#[derive(Debug)]
pub(crate) struct ProofHeader {
    alg: Alg,
    key: keys::VerificationKey,
    /// base64url of the key's RFC 7638 thumbprint; `None` when it has none (then a
    /// key-bound token's check fails with `JwkInvalid`).
    thumbprint: Option<String>,
}

/// The header of one proof: remembered, or parsed (not yet checked).
enum HeaderPart<'p> {
    Known(Rc<ProofHeader>),
    Parsed { text: &'p str, object: Object },
}

/// `typ`, `alg` (against `config` too), the key and its thumbprint, in SPEC order.
fn read_header(header: &Object, config: &DpopConfig) -> Result<ProofHeader, ProofProblem> {
    check_typ(header)?;
    let alg = check_alg(header, config)?;
    let (jwk, key) = proof_key(header, alg)?;
    let thumbprint = thumbprint::sha256_thumbprint(jwk).map(|t| b64::encode(&t));
    Ok(ProofHeader {
        alg,
        key,
        thumbprint,
    })
}

struct Parts<'p> {
    header: HeaderPart<'p>,
    claims: Object,
    signing_input: &'p str,
    signature: Vec<u8>,
}

/// Size, the three parts, and the JSON of header and claims: every `NotCompactJws` comes
/// from here, before any other check (a remembered header passed them all before).
fn split_remembering<'p>(
    proof: &'p str,
    memo: Option<&TokenCache>,
) -> Result<Parts<'p>, ProofProblem> {
    if proof.len() > MAX_DPOP_PROOF_BYTES {
        return Err(ProofProblem::TooLarge);
    }
    let mut it = proof.split('.');
    let (Some(h), Some(c), Some(s), None) = (it.next(), it.next(), it.next(), it.next()) else {
        return Err(ProofProblem::NotCompactJws);
    };
    let header = match memo.and_then(|m| m.proof_header(h)) {
        Some(known) => HeaderPart::Known(known),
        None => {
            let object = object(h, MAX_DPOP_HEADER_BYTES)?;
            if object.contains_key("crit") {
                return Err(ProofProblem::NotCompactJws);
            }
            HeaderPart::Parsed { text: h, object }
        }
    };
    let claims = object(c, MAX_DPOP_CLAIMS_BYTES)?;
    let signature = b64::decode(s).ok_or(ProofProblem::NotCompactJws)?;
    let signing_input = proof.get(..h.len() + 1 + c.len()).unwrap_or_default();
    Ok(Parts {
        header,
        claims,
        signing_input,
        signature,
    })
}

fn object(part: &str, max: usize) -> Result<Object, ProofProblem> {
    if part.len() / 4 * 3 > max {
        return Err(ProofProblem::TooLarge);
    }
    let bytes = b64::decode(part).ok_or(ProofProblem::NotCompactJws)?;
    match parse_strict_object(&bytes) {
        Ok(Some(object)) => Ok(object),
        _ => Err(ProofProblem::NotCompactJws),
    }
}

fn check_typ(header: &Object) -> Result<(), ProofProblem> {
    match header.get("typ").and_then(Value::as_str) {
        Some(typ) if typ_is_one_of(typ, &["dpop+jwt".to_owned()]) => Ok(()),
        _ => Err(ProofProblem::WrongType),
    }
}

/// `none` and HMAC cannot be configured, but are refused here by name as well: the
/// allowlist is the only way in.
fn check_alg(header: &Object, config: &DpopConfig) -> Result<Alg, ProofProblem> {
    let name = header.get("alg").and_then(Value::as_str).unwrap_or("none");
    match Alg::classify(name) {
        AlgName::Supported(alg) if !alg.is_hmac() => check_alg_allowed(alg, config),
        _ => Err(ProofProblem::AlgNotAllowed),
    }
}

fn check_alg_allowed(alg: Alg, config: &DpopConfig) -> Result<Alg, ProofProblem> {
    if config.algorithms.contains(&alg) {
        Ok(alg)
    } else {
        Err(ProofProblem::AlgNotAllowed)
    }
}

/// The proof's own key: public only, within the RSA budget, of a type that fits `alg`
/// (no algorithm confusion: an ES256 proof with an RSA `jwk` is refused here).
fn proof_key(
    header: &Object,
    alg: Alg,
) -> Result<(&Map<String, Value>, keys::VerificationKey), ProofProblem> {
    let Some(Value::Object(jwk)) = header.get("jwk") else {
        return Err(ProofProblem::JwkMissing);
    };
    // `k` is an `oct` key's secret: a proof key is never symmetric.
    if PRIVATE_MEMBERS
        .iter()
        .chain(&["k"])
        .any(|m| jwk.contains_key(*m))
    {
        return Err(ProofProblem::JwkPrivate);
    }
    if rsa_modulus_bits(jwk).is_some_and(|bits| bits > MAX_DPOP_RSA_BITS) {
        return Err(ProofProblem::JwkTooLarge);
    }
    let key = match keys::parse_public_jwk(jwk) {
        Ok(Some(key)) if key.fits(alg) => key,
        _ => return Err(ProofProblem::JwkInvalid),
    };
    if matches!(key.kind, KeyKind::Oct { .. }) {
        return Err(ProofProblem::JwkInvalid);
    }
    Ok((jwk, key))
}

/// Bits of an RSA `jwk`'s `n` (leading zero bytes aside, whole bytes), read before the key
/// is parsed, so an oversized modulus is refused without any RSA work (the header budget
/// already bounds the decoding); `None` for other keys.
fn rsa_modulus_bits(jwk: &Map<String, Value>) -> Option<usize> {
    if jwk.get("kty").and_then(Value::as_str) != Some("RSA") {
        return None;
    }
    let n = jwk.get("n").and_then(Value::as_str)?;
    let bytes = b64::decode(n)?;
    let significant = bytes.iter().skip_while(|b| **b == 0).count();
    Some(significant * 8)
}

fn check_claims(claims: &Object, e: &Expected<'_>) -> Result<Accepted, ProofProblem> {
    if claims.get("htm").and_then(Value::as_str) != Some(e.method) {
        return Err(ProofProblem::HtmMismatch);
    }
    // `e.uri` is in comparison form and `normalize` is idempotent (fuzzed), so a proof
    // that carries it verbatim, as agents do, needs no normalizing.
    let htu_matches = match (claims.get("htu").and_then(Value::as_str), e.uri) {
        (Some(htu), Some(uri)) => htu == uri || htu::normalize(htu).as_deref() == Some(uri),
        _ => false,
    };
    if !htu_matches {
        return Err(ProofProblem::HtuMismatch);
    }
    let iat = check_iat(claims, e)?;
    let jti = match claims.get("jti").and_then(Value::as_str) {
        Some(j) if !j.is_empty() && j.len() <= MAX_DPOP_JTI_BYTES => j.to_owned(),
        _ => return Err(ProofProblem::JtiMissing),
    };
    let mut ath = [0u8; 43];
    let ath = b64::encode_into(e.access_token_sha256, &mut ath);
    if ath.is_none() || claims.get("ath").and_then(Value::as_str) != ath {
        return Err(ProofProblem::AthMismatch);
    }
    Ok(Accepted { jti, iat })
}

/// `iat` within `max_age_s + clock_skew_s` of now, either way (a proof from the future is
/// as suspect as an old one: it could be kept and used later).
fn check_iat(claims: &Object, e: &Expected<'_>) -> Result<i64, ProofProblem> {
    let Some(iat) = claims.get("iat").and_then(Value::as_f64) else {
        return Err(ProofProblem::IatMissing);
    };
    let window = e.config.max_age_s.saturating_add(e.clock_skew_s);
    let now = e.now as f64;
    if !iat.is_finite() || (iat - now).abs() > window as f64 {
        return Err(ProofProblem::IatOutOfWindow {
            now: e.now,
            iat: clamp_secs(iat),
            window,
        });
    }
    Ok(clamp_secs(iat))
}

fn clamp_secs(value: f64) -> i64 {
    if value.is_finite() {
        value.floor().clamp(i64::MIN as f64, i64::MAX as f64) as i64
    } else {
        0
    }
}

/// RFC 9449 §6.1: the token's `cnf.jkt` names this key. Compared as text: both are
/// base64url of a SHA-256 (public values, no timing concern).
fn check_binding(header: &ProofHeader, jkt: Option<&str>) -> Result<(), ProofProblem> {
    let jkt = jkt.ok_or(ProofProblem::TokenNotKeyBound)?;
    let thumbprint = header
        .thumbprint
        .as_deref()
        .ok_or(ProofProblem::JwkInvalid)?;
    if thumbprint != jkt {
        return Err(ProofProblem::ThumbprintMismatch);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::verification::crypto::{sha256, RING};
    use crate::tools::mint::{ProofClaims, SigningKey};
    use ring::rand::SystemRandom;
    use serde_json::json;

    const NOW: u64 = 1_800_000_000;
    const HTU: &str = "https://api.example.com/x";
    static TOK_SHA256: std::sync::LazyLock<[u8; 32]> = std::sync::LazyLock::new(|| sha256(b"tok"));

    fn config() -> DpopConfig {
        DpopConfig::default()
    }

    fn expected<'a>(config: &'a DpopConfig, jkt: Option<&'a str>) -> Expected<'a> {
        Expected {
            config,
            clock_skew_s: 60,
            method: "GET",
            uri: Some(HTU),
            now: NOW,
            access_token_sha256: &TOK_SHA256,
            jkt,
        }
    }

    fn key() -> SigningKey {
        SigningKey::generate(Alg::ES256, "k", &SystemRandom::new()).unwrap()
    }

    fn proof(key: &SigningKey) -> String {
        let claims = ProofClaims {
            htm: "GET",
            htu: HTU,
            iat: NOW,
            jti: None,
            access_token: Some("tok"),
        };
        key.dpop_proof(Alg::ES256, &claims, &SystemRandom::new())
            .unwrap()
    }

    /// A proof with this header and claims, signed by `key` (whatever the header says).
    fn forged(key: &SigningKey, header: &Value, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            b64::encode(header.to_string().as_bytes()),
            b64::encode(claims.to_string().as_bytes())
        );
        let sig = key
            .sign(Alg::ES256, input.as_bytes(), &SystemRandom::new())
            .unwrap();
        format!("{input}.{}", b64::encode(&sig))
    }

    fn claims() -> Value {
        json!({ "jti": "j", "htm": "GET", "htu": HTU, "iat": NOW,
                "ath": b64::encode(&sha256(b"tok")) })
    }

    #[test]
    fn a_good_proof_and_the_problem_of_each_bad_one() {
        let k = key();
        let jkt = k.jkt().unwrap();
        let c = config();
        let e = expected(&c, Some(&jkt));
        assert!(verify(&proof(&k), &e, &RING).is_ok());
        assert_eq!(
            verify(&proof(&k), &expected(&c, None), &RING).unwrap_err(),
            ProofProblem::TokenNotKeyBound
        );
        assert_eq!(
            verify(&proof(&key()), &e, &RING).unwrap_err(),
            ProofProblem::ThumbprintMismatch
        );
        let public = k.public_jwk();
        let header = json!({ "typ": "dpop+jwt", "alg": "ES256", "jwk": public });
        let with = |over: Value| {
            let mut h = header.clone();
            for (name, value) in over.as_object().unwrap() {
                h[name] = value.clone();
            }
            verify(&forged(&k, &h, &claims()), &e, &RING).unwrap_err()
        };
        assert_eq!(with(json!({ "crit": ["x"] })), ProofProblem::NotCompactJws);
        assert_eq!(with(json!({ "typ": "JWT" })), ProofProblem::WrongType);
        assert_eq!(with(json!({ "alg": "HS256" })), ProofProblem::AlgNotAllowed);
        assert_eq!(with(json!({ "alg": "none" })), ProofProblem::AlgNotAllowed);
        assert_eq!(with(json!({ "alg": "ES384" })), ProofProblem::AlgNotAllowed);
        assert_eq!(with(json!({ "jwk": "x" })), ProofProblem::JwkMissing);
        assert_eq!(
            with(json!({ "jwk": k.private_jwk() })),
            ProofProblem::JwkPrivate
        );
        assert_eq!(
            with(json!({ "jwk": { "kty": "oct", "k": "c2VjcmV0" } })),
            ProofProblem::JwkPrivate
        );
        let big = b64::encode(&[0xffu8; 513]);
        assert_eq!(
            with(json!({ "jwk": { "kty": "RSA", "n": big, "e": "AQAB" } })),
            ProofProblem::JwkTooLarge
        );
        let ok_rsa = b64::encode(&[0xffu8; 256]);
        assert_eq!(
            with(json!({ "alg": "ES256", "jwk": { "kty": "RSA", "n": ok_rsa, "e": "AQAB" } })),
            ProofProblem::JwkInvalid
        );
        // A duplicate member in the header is not JSON actwarden reads.
        let dup = format!(
            "{}.{}.AA",
            b64::encode(br#"{"typ":"dpop+jwt","typ":"x"}"#),
            b64::encode(b"{}")
        );
        assert_eq!(
            verify(&dup, &e, &RING).unwrap_err(),
            ProofProblem::NotCompactJws
        );
        let flipped = {
            let p = proof(&k);
            let (input, sig) = p.rsplit_once('.').unwrap();
            let mut sig = b64::decode(sig).unwrap();
            sig[0] ^= 1;
            format!("{input}.{}", b64::encode(&sig))
        };
        assert_eq!(
            verify(&flipped, &e, &RING).unwrap_err(),
            ProofProblem::SignatureInvalid
        );
    }

    /// The remembered header changes no answer: every proof gets the same result with a
    /// memo (twice, so the second can come from it) as without; only good headers are
    /// remembered, and the provider's allowlist is still checked on a remembered one.
    #[test]
    fn a_remembered_proof_header_gives_the_same_answers() {
        let k = key();
        let jkt = k.jkt().unwrap();
        let c = config();
        let e = expected(&c, Some(&jkt));
        let memo = TokenCache::default();
        let header = json!({ "typ": "dpop+jwt", "alg": "ES256", "jwk": k.public_jwk() });
        let mut bad_claims = claims();
        bad_claims["htm"] = json!("POST");
        let cases = [
            proof(&k),
            proof(&k),
            forged(&k, &header, &bad_claims),
            forged(&key(), &header, &claims()),
            format!("{}.e30.AA", b64::encode(header.to_string().as_bytes())),
            format!("{}.!!.AA", b64::encode(header.to_string().as_bytes())),
            forged(
                &k,
                &json!({ "typ": "JWT", "alg": "ES256", "jwk": k.public_jwk() }),
                &claims(),
            ),
            proof(&key()),
        ];
        for p in &cases {
            let plain = verify(p, &e, &RING).map(|a| a.jti);
            for round in 0..2 {
                let remembered = verify_remembering(p, &e, &RING, Some(&memo)).map(|a| a.jti);
                assert_eq!(remembered, plain, "round {round}: {p}");
            }
        }
        // The good headers: `k`'s as minted, `k`'s as written above, the other key's as
        // minted; never the `typ: JWT` one.
        assert_eq!(memo.inner_proof_headers(), 3);
        // A remembered ES256 header under a provider that no longer allows ES256.
        let es384_only = DpopConfig {
            algorithms: vec![Alg::ES384],
            ..DpopConfig::default()
        };
        assert_eq!(
            verify_remembering(
                &proof(&k),
                &expected(&es384_only, Some(&jkt)),
                &RING,
                Some(&memo)
            )
            .unwrap_err(),
            ProofProblem::AlgNotAllowed
        );
    }

    #[test]
    fn claims_in_order_and_the_iat_window_edges() {
        let k = key();
        let jkt = k.jkt().unwrap();
        let c = config();
        let e = expected(&c, Some(&jkt));
        let header = json!({ "typ": "dpop+jwt", "alg": "ES256", "jwk": k.public_jwk() });
        let with = |over: Value| {
            let mut cl = claims();
            for (name, value) in over.as_object().unwrap() {
                if value.is_null() {
                    cl.as_object_mut().unwrap().remove(name);
                } else {
                    cl[name] = value.clone();
                }
            }
            verify(&forged(&k, &header, &cl), &e, &RING)
        };
        assert_eq!(
            with(json!({ "htm": "get" })).unwrap_err(),
            ProofProblem::HtmMismatch
        );
        assert_eq!(
            with(json!({ "htu": null })).unwrap_err(),
            ProofProblem::HtuMismatch
        );
        // Verbatim (no normalizing), another spelling of the same URI, and other URIs.
        for same in [
            HTU,
            "HTTPS://API.Example.com:443/x?q#f",
            "https://api.example.com:/x",
        ] {
            assert!(with(json!({ "htu": same })).is_ok(), "{same}");
        }
        for other in [
            "https://api.example.com/x/",
            "http://api.example.com/x",
            "/x",
            "",
        ] {
            assert_eq!(
                with(json!({ "htu": other })).unwrap_err(),
                ProofProblem::HtuMismatch,
                "{other}"
            );
        }
        assert_eq!(
            with(json!({ "htu": 7 })).unwrap_err(),
            ProofProblem::HtuMismatch
        );
        assert_eq!(
            with(json!({ "ath": b64::encode(&sha256(b"tok2")) })).unwrap_err(),
            ProofProblem::AthMismatch
        );
        assert_eq!(
            with(json!({ "iat": "now" })).unwrap_err(),
            ProofProblem::IatMissing
        );
        for ok in [NOW - 120, NOW + 120, NOW] {
            assert!(with(json!({ "iat": ok })).is_ok(), "{ok}");
        }
        for bad in [NOW - 121, NOW + 121] {
            assert!(matches!(
                with(json!({ "iat": bad })).unwrap_err(),
                ProofProblem::IatOutOfWindow { .. }
            ));
        }
        assert_eq!(
            with(json!({ "jti": "" })).unwrap_err(),
            ProofProblem::JtiMissing
        );
        assert_eq!(
            with(json!({ "jti": "j".repeat(257) })).unwrap_err(),
            ProofProblem::JtiMissing
        );
        assert_eq!(
            with(json!({ "ath": null })).unwrap_err(),
            ProofProblem::AthMismatch
        );
        // Two failures: the earlier check of SPEC §10 is the problem.
        assert_eq!(
            with(json!({ "htm": "POST", "ath": null })).unwrap_err(),
            ProofProblem::HtmMismatch
        );
    }

    #[test]
    fn garbage_is_refused_without_panicking() {
        let c = config();
        let e = expected(&c, Some("x"));
        let long = "a".repeat(MAX_DPOP_PROOF_BYTES + 1);
        let header_only = format!("{}..", "A".repeat(MAX_DPOP_HEADER_BYTES * 2));
        for input in [
            "",
            ".",
            "..",
            "...",
            "a.b.c",
            "a.b.c.d",
            "\u{0}.\u{0}.\u{0}",
            "é.é.é",
            long.as_str(),
            header_only.as_str(),
            "e30.e30.",
            "W10.e30.",
            "bnVsbA.e30.AA",
        ] {
            assert!(verify(input, &e, &RING).is_err(), "{input:.40}");
        }
        assert_eq!(
            verify(&long, &e, &RING).unwrap_err(),
            ProofProblem::TooLarge
        );
        assert_eq!(
            verify(&header_only, &e, &RING).unwrap_err(),
            ProofProblem::TooLarge
        );
    }
}
