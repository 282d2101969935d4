//! The few DER (X.690) encodings a host-side verifier needs, written out: encoding, not
//! cryptography. A `SubjectPublicKeyInfo` (RFC 5280 §4.1) per key, built once when a JWKS
//! is loaded, and an ECDSA signature as `ECDSA-Sig-Value` (RFC 3279 §2.2.3) from JWS's
//! fixed-width `r || s` (RFC 7518 §3.4).

use super::Curve;

/// `AlgorithmIdentifier { id-ecPublicKey, namedCurve }` for P-256 (RFC 5480 §2.1.1):
/// OID 1.2.840.10045.2.1 with OID 1.2.840.10045.3.1.7, as DER.
const EC_P256_ALGORITHM: &[u8] = &[
    0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48,
    0xce, 0x3d, 0x03, 0x01, 0x07,
];

/// The same for P-384: OID 1.2.840.10045.2.1 with OID 1.3.132.0.34.
const EC_P384_ALGORITHM: &[u8] = &[
    0x30, 0x10, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x05, 0x2b, 0x81, 0x04,
    0x00, 0x22,
];

/// `AlgorithmIdentifier { rsaEncryption, NULL }` (RFC 3279 §2.3.1): OID
/// 1.2.840.113549.1.1.1 and the NULL parameters RFC 3279 requires.
const RSA_ALGORITHM: &[u8] = &[
    0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
];

const INTEGER: u8 = 0x02;
const BIT_STRING: u8 = 0x03;
const SEQUENCE: u8 = 0x30;

/// DER length octets: short form below 128, else the minimal long form.
fn push_length(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        // Fits in seven bits: checked just above.
        out.push(len as u8);
        return;
    }
    let bytes = len.to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count();
    let significant = bytes.get(skip..).unwrap_or_default();
    // At most size_of::<usize>() octets, far below 127.
    out.push(0x80 | significant.len() as u8);
    out.extend_from_slice(significant);
}

fn push_tlv(out: &mut Vec<u8>, tag: u8, content: &[u8]) {
    out.push(tag);
    push_length(out, content.len());
    out.extend_from_slice(content);
}

/// A non-negative INTEGER from big-endian magnitude bytes: leading zeros dropped, one
/// zero added back when the top bit is set (else DER reads it as negative); zero is `00`.
fn push_unsigned_integer(out: &mut Vec<u8>, magnitude: &[u8]) {
    let start = magnitude
        .iter()
        .position(|b| *b != 0)
        .unwrap_or(magnitude.len());
    let minimal = magnitude.get(start..).unwrap_or_default();
    let pad = minimal.first().is_none_or(|top| top & 0x80 != 0);
    let mut content = Vec::with_capacity(minimal.len() + 1);
    if pad {
        content.push(0);
    }
    content.extend_from_slice(minimal);
    push_tlv(out, INTEGER, &content);
}

/// `SubjectPublicKeyInfo` of an EC key from its uncompressed SEC1 point (`04 || x || y`).
pub(crate) fn ec_spki(curve: Curve, point: &[u8]) -> Vec<u8> {
    let algorithm = match curve {
        Curve::P256 => EC_P256_ALGORITHM,
        Curve::P384 => EC_P384_ALGORITHM,
    };
    spki(algorithm, point)
}

/// `SubjectPublicKeyInfo` of an RSA key: `RSAPublicKey { n, e }` (RFC 8017 §A.1.1) in the
/// BIT STRING. `n` and `e` are big-endian magnitudes (a JWK's, leading zeros or not).
pub(crate) fn rsa_spki(n: &[u8], e: &[u8]) -> Vec<u8> {
    let mut integers = Vec::with_capacity(n.len() + e.len() + 16);
    push_unsigned_integer(&mut integers, n);
    push_unsigned_integer(&mut integers, e);
    let mut public_key = Vec::with_capacity(integers.len() + 8);
    push_tlv(&mut public_key, SEQUENCE, &integers);
    spki(RSA_ALGORITHM, &public_key)
}

/// SEQUENCE { algorithm, BIT STRING (no unused bits) subjectPublicKey }.
fn spki(algorithm: &[u8], subject_public_key: &[u8]) -> Vec<u8> {
    let mut bits = Vec::with_capacity(subject_public_key.len() + 1);
    bits.push(0); // unused bits in the last octet
    bits.extend_from_slice(subject_public_key);
    let mut body = Vec::with_capacity(algorithm.len() + bits.len() + 8);
    body.extend_from_slice(algorithm);
    push_tlv(&mut body, BIT_STRING, &bits);
    let mut out = Vec::with_capacity(body.len() + 8);
    push_tlv(&mut out, SEQUENCE, &body);
    out
}

/// Why a JWS ECDSA signature was not converted (each is a signature that cannot verify).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) enum EcdsaSignatureProblem {
    /// Not exactly `2 × scalar_len` bytes (RFC 7518 §3.4 fixes the width).
    WrongLength { expected: usize, actual: usize },
    /// `r` or `s` is zero: never a valid ECDSA signature (SEC 1 §4.1.4 step 1).
    ZeroScalar,
}

/// The DER `ECDSA-Sig-Value` of a JWS ECDSA signature `r || s` (each `scalar_len` bytes,
/// big-endian): minimal INTEGERs, so strict DER parsers (BoringSSL's) accept it. Range
/// checks against the group order are the verifier's.
#[cfg_attr(not(feature = "proxy"), allow(dead_code))]
pub(crate) fn ecdsa_signature_der(
    fixed: &[u8],
    scalar_len: usize,
) -> Result<Vec<u8>, EcdsaSignatureProblem> {
    let expected = scalar_len.saturating_mul(2);
    if fixed.len() != expected || scalar_len == 0 {
        return Err(EcdsaSignatureProblem::WrongLength {
            expected,
            actual: fixed.len(),
        });
    }
    let (r, s) = fixed.split_at(scalar_len);
    if r.iter().all(|b| *b == 0) || s.iter().all(|b| *b == 0) {
        return Err(EcdsaSignatureProblem::ZeroScalar);
    }
    let mut integers = Vec::with_capacity(fixed.len() + 6);
    push_unsigned_integer(&mut integers, r);
    push_unsigned_integer(&mut integers, s);
    let mut out = Vec::with_capacity(integers.len() + 3);
    push_tlv(&mut out, SEQUENCE, &integers);
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;
    use ring::signature::{
        EcdsaKeyPair, KeyPair, UnparsedPublicKey, ECDSA_P256_SHA256_ASN1,
        ECDSA_P256_SHA256_FIXED_SIGNING, ECDSA_P384_SHA384_ASN1, ECDSA_P384_SHA384_FIXED_SIGNING,
    };

    #[test]
    fn lengths_short_and_long_form() {
        let cases: [(usize, &[u8]); 5] = [
            (0, &[0x00]),
            (127, &[0x7f]),
            (128, &[0x81, 0x80]),
            (255, &[0x81, 0xff]),
            (256, &[0x82, 0x01, 0x00]),
        ];
        for (len, want) in cases {
            let mut out = Vec::new();
            push_length(&mut out, len);
            assert_eq!(out, want, "length {len}");
        }
    }

    #[test]
    fn integers_are_minimal_and_non_negative() {
        let cases: [(&[u8], &[u8]); 6] = [
            (&[], &[0x02, 0x01, 0x00]),
            (&[0, 0, 0], &[0x02, 0x01, 0x00]),
            (&[0x01], &[0x02, 0x01, 0x01]),
            (&[0x00, 0x00, 0x7f], &[0x02, 0x01, 0x7f]),
            (&[0x80], &[0x02, 0x02, 0x00, 0x80]),
            (&[0x00, 0xff, 0x01], &[0x02, 0x03, 0x00, 0xff, 0x01]),
        ];
        for (magnitude, want) in cases {
            let mut out = Vec::new();
            push_unsigned_integer(&mut out, magnitude);
            assert_eq!(out, want, "magnitude {magnitude:02x?}");
        }
    }

    #[test]
    fn ecdsa_refuses_wrong_length_and_zero_scalars() {
        assert_eq!(
            ecdsa_signature_der(&[1; 63], 32),
            Err(EcdsaSignatureProblem::WrongLength {
                expected: 64,
                actual: 63
            })
        );
        let mut zero_r = [1u8; 64];
        zero_r[..32].fill(0);
        assert_eq!(
            ecdsa_signature_der(&zero_r, 32),
            Err(EcdsaSignatureProblem::ZeroScalar)
        );
        let mut zero_s = [1u8; 64];
        zero_s[32..].fill(0);
        assert_eq!(
            ecdsa_signature_der(&zero_s, 32),
            Err(EcdsaSignatureProblem::ZeroScalar)
        );
        assert!(ecdsa_signature_der(&[], 0).is_err());
    }

    #[test]
    fn ecdsa_high_bit_and_leading_zero_scalars() {
        let mut fixed = [0u8; 64];
        fixed[0] = 0x80; // r: top bit set → 33-byte INTEGER
        fixed[31] = 1;
        fixed[63] = 0x05; // s: 31 leading zeros → one-byte INTEGER
        let der = ecdsa_signature_der(&fixed, 32).unwrap();
        let mut want = vec![0x30, 2 + 33 + 3, 0x02, 33, 0x00];
        want.extend_from_slice(&fixed[..32]);
        want.extend_from_slice(&[0x02, 0x01, 0x05]);
        assert_eq!(der, want);
    }

    /// Signs many messages with ring (fixed-width), converts, and has ring verify the DER
    /// form: covers r and s with high bits set and with leading zero bytes.
    fn round_trip(
        signing: &'static ring::signature::EcdsaSigningAlgorithm,
        verifying: &'static ring::signature::EcdsaVerificationAlgorithm,
        scalar_len: usize,
    ) {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(signing, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(signing, pkcs8.as_ref(), &rng).unwrap();
        let public = UnparsedPublicKey::new(verifying, pair.public_key().as_ref().to_vec());
        let (mut high_bit, mut leading_zero) = (false, false);
        // At least 400 signatures, and on until both shapes were seen: a leading zero byte
        // in r or s comes once in ~128 signatures, so a fixed count would be flaky.
        for i in 0..20_000u32 {
            if i >= 400 && high_bit && leading_zero {
                break;
            }
            let msg = i.to_be_bytes();
            let sig = pair.sign(&rng, &msg).unwrap();
            let fixed = sig.as_ref();
            high_bit |= fixed[0] & 0x80 != 0 || fixed[scalar_len] & 0x80 != 0;
            leading_zero |= fixed[0] == 0 || fixed[scalar_len] == 0;
            let der = ecdsa_signature_der(fixed, scalar_len).unwrap();
            assert!(public.verify(&msg, &der).is_ok(), "message {i}");
            assert!(public.verify(b"other", &der).is_err());
        }
        assert!(high_bit && leading_zero, "both shapes were exercised");
    }

    #[test]
    fn ecdsa_der_verifies_with_ring_p256() {
        round_trip(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            &ECDSA_P256_SHA256_ASN1,
            32,
        );
    }

    #[test]
    fn ecdsa_der_verifies_with_ring_p384() {
        round_trip(
            &ECDSA_P384_SHA384_FIXED_SIGNING,
            &ECDSA_P384_SHA384_ASN1,
            48,
        );
    }

    /// The EC SPKI's tail is the point ring produced, and its head the fixed prefix of
    /// RFC 5480 (what `openssl ec -pubout -outform DER` writes).
    #[test]
    fn ec_spki_layout() {
        let point = [4u8; 65];
        let der = ec_spki(Curve::P256, &point);
        assert_eq!(der.len(), 91);
        assert_eq!(&der[..4], &[0x30, 0x59, 0x30, 0x13]);
        assert_eq!(&der[23..26], &[0x03, 0x42, 0x00]);
        assert_eq!(&der[26..], &point);
        let der = ec_spki(Curve::P384, &[4u8; 97]);
        assert_eq!(der.len(), 120);
        assert_eq!(&der[..4], &[0x30, 0x76, 0x30, 0x10]);
    }

    /// `RSAPublicKey { n, e }` with `n`'s top bit set (a zero octet added) and leading
    /// zeros in the JWK's bytes (dropped). tests/spki.rs checks real keys against
    /// Wycheproof's `publicKeyDer`.
    #[test]
    fn rsa_spki_layout() {
        let spki = rsa_spki(&[0, 0, 0x80, 1], &[0, 1, 0, 1]);
        let mut want = vec![0x30, 0x1e];
        want.extend_from_slice(RSA_ALGORITHM);
        want.extend_from_slice(&[0x03, 0x0d, 0x00, 0x30, 0x0a]);
        want.extend_from_slice(&[0x02, 0x03, 0x00, 0x80, 0x01]);
        want.extend_from_slice(&[0x02, 0x03, 0x01, 0x00, 0x01]);
        assert_eq!(spki, want);
    }
}
