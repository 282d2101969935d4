//! Verify-only ECDSA P-256 / SHA-256 written for wasm32: actwarden's ES256 verifier in
//! wasm builds (`crypto::OWN_ES256`), where ring 0.17 runs portable 32-bit fiat-crypto C
//! and costs 3.5× (6× with a prepared key) more in V8 (bench/README.md). Natively ring
//! verifies, as for every other algorithm. It passes every Wycheproof P-256 vector and
//! agrees with ring on every differential test (`tests/p256_verify.rs`); the Envoy and
//! browser corpus runs compare its decisions with the native CLI's (ring) case by case.
//!
//! Variable time throughout: verification handles only public data (key, message,
//! signature). Pure Rust, no `unsafe`, no panics; no allocation except a prepared key's tables.
//!
//! - `field`: mod p in eight 32-bit limbs, 32x32->64 products, NIST fast reduction.
//! - `scalar`: u1 = e/s, u2 = r/s mod n by binary extended Euclid (no mod-n multiply).
//! - `point`: Jacobian coordinates, explicit special cases, interleaved wNAF
//!   (width 8 over a constant table of G's odd multiples, width 5 over Q's). A
//!   `PreparedKey` adds per-key tables of 2^64 Q, 2^128 Q, 2^192 Q (constant ones for G):
//!   both scalars split in four quarters, 64 doublings instead of 256.
//! - The final check needs no inversion: x(R) mod n = r iff X = r Z^2, or X = (r + n) Z^2
//!   when r + n < p (x(R) in [n, p) reduces to x - n).

mod field;
#[rustfmt::skip]
mod g_table;
mod point;
mod scalar;

use field::{add_raw, lt, mul, sqr, Fe, P};
use point::Affine;

/// Why a signature does not verify.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rejected {
    /// The public key is not 65 bytes `04 || x || y` with x, y < p.
    KeyEncoding,
    /// The public key's point is not on P-256.
    KeyNotOnCurve,
    /// The digest is not 32 bytes.
    DigestLength,
    /// The signature is not 64 bytes `r || s`.
    SignatureLength,
    /// r or s is 0 or at least n.
    ScalarOutOfRange,
    /// The equation does not hold (including u1 G + u2 Q at infinity).
    Mismatch,
}

/// A P-256 public key, checked to be on the curve.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PublicKey(Affine);

impl PublicKey {
    /// From the SEC1 uncompressed encoding `04 || x || y` (65 bytes).
    pub fn from_sec1(bytes: &[u8]) -> Result<PublicKey, Rejected> {
        match bytes.split_first() {
            Some((&4, xy)) if xy.len() == 64 => {
                let (x, y) = xy.split_at_checked(32).ok_or(Rejected::KeyEncoding)?;
                PublicKey::from_coordinates(x, y)
            }
            _ => Err(Rejected::KeyEncoding),
        }
    }

    /// From big-endian 32-byte affine coordinates (a JWK's `x` and `y`).
    pub fn from_coordinates(x: &[u8], y: &[u8]) -> Result<PublicKey, Rejected> {
        let x = Fe::from_be(x).ok_or(Rejected::KeyEncoding)?;
        let y = Fe::from_be(y).ok_or(Rejected::KeyEncoding)?;
        let point = Affine { x, y };
        // On the curve implies not infinity (which has no affine form) and, the cofactor
        // being 1, in the group of order n.
        if point.is_on_curve() {
            Ok(PublicKey(point))
        } else {
            Err(Rejected::KeyNotOnCurve)
        }
    }

    /// The SEC1 uncompressed encoding.
    pub fn to_sec1(&self) -> [u8; 65] {
        let mut out = [4u8; 65];
        let (x, y) = (self.0.x.to_be(), self.0.y.to_be());
        for (dst, src) in out.iter_mut().skip(1).zip(x.iter().chain(y.iter())) {
            *dst = *src;
        }
        out
    }

    /// ECDSA verification of `signature` (`r || s`, 64 bytes) over SHA-256(`message`).
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), Rejected> {
        let digest = ring::digest::digest(&ring::digest::SHA256, message);
        self.verify_digest(digest.as_ref(), signature)
    }

    /// ECDSA verification over a 32-byte digest (SEC1 4.1.4 with a 256-bit hash).
    pub fn verify_digest(&self, digest: &[u8], signature: &[u8]) -> Result<(), Rejected> {
        verify_with(digest, signature, |u1, u2| {
            point::mul_g_plus_q(u1, u2, &self.0)
        })
    }

    /// Precomputes the key's tables (about the cost of one verification) for faster
    /// verifications with it: for keys that are held and reused, as a key set is.
    pub fn prepare(&self) -> PreparedKey {
        PreparedKey(Box::new(point::QTables::new(&self.0)))
    }
}

/// A public key with precomputed multiples of Q, 2^64 Q, 2^128 Q and 2^192 Q (2 KiB):
/// verification then runs 64 doublings instead of 256.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreparedKey(Box<point::QTables>);

impl PreparedKey {
    /// ECDSA verification of `signature` (`r || s`, 64 bytes) over SHA-256(`message`).
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), Rejected> {
        let digest = ring::digest::digest(&ring::digest::SHA256, message);
        self.verify_digest(digest.as_ref(), signature)
    }

    /// ECDSA verification over a 32-byte digest.
    pub fn verify_digest(&self, digest: &[u8], signature: &[u8]) -> Result<(), Rejected> {
        verify_with(digest, signature, |u1, u2| {
            point::mul_g_plus_q_prepared(u1, u2, &self.0)
        })
    }
}

/// The checks and arithmetic around the double-scalar multiplication `mul_g_plus_q`.
fn verify_with(
    digest: &[u8],
    signature: &[u8],
    mul_g_plus_q: impl FnOnce(&[u32; 8], &[u32; 8]) -> point::Jacobian,
) -> Result<(), Rejected> {
    let e = field::limbs_from_be(digest).ok_or(Rejected::DigestLength)?;
    if signature.len() != 64 {
        return Err(Rejected::SignatureLength);
    }
    let (r, s) = signature
        .split_at_checked(32)
        .ok_or(Rejected::SignatureLength)?;
    let r = field::limbs_from_be(r).ok_or(Rejected::SignatureLength)?;
    let s = field::limbs_from_be(s).ok_or(Rejected::SignatureLength)?;
    if !scalar::in_range(&r) || !scalar::in_range(&s) {
        return Err(Rejected::ScalarOutOfRange);
    }
    let e = scalar::reduce_once(&e);
    let u1 = scalar::div_mod_n(&e, &s);
    let u2 = scalar::div_mod_n(&r, &s);
    let point = mul_g_plus_q(&u1, &u2);
    if point.is_infinity() {
        return Err(Rejected::Mismatch);
    }
    // x(R) = X / Z^2 in [0, p); accept iff x(R) mod n = r, i.e. x(R) = r or x(R) = r + n.
    let z2 = sqr(&point.z);
    // r < n < p: r is a field element as it is.
    if mul(&Fe(r), &z2) == point.x {
        return Ok(());
    }
    let (r_plus_n, carry) = add_raw(&r, &scalar::N);
    if carry == 0 && lt(&r_plus_n, &P) && mul(&Fe(r_plus_n), &z2) == point.x {
        return Ok(());
    }
    Err(Rejected::Mismatch)
}

/// Verifies an ES256 signature (`r || s`) over `message` with an uncompressed SEC1 key.
pub fn verify(public_key_sec1: &[u8], message: &[u8], signature: &[u8]) -> Result<(), Rejected> {
    PublicKey::from_sec1(public_key_sec1)?.verify(message, signature)
}
