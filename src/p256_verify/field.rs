//! Arithmetic modulo p = 2^256 - 2^224 + 2^192 + 2^96 - 1, for wasm32.
//!
//! An element is eight little-endian 32-bit limbs, always fully reduced (< p), so equality
//! is limb equality. Products are 32x32->64 (`i64.mul` in wasm); the 512-bit product is
//! reduced with NIST's fast reduction for P-256 (FIPS 186-4 D.2.3: additions and
//! subtractions of 32-bit words, no multiplication). Everything is straight-line code
//! (macros unroll the limb loops) because the release profile is `opt-level = "s"`, where
//! LLVM does not unroll loops, and wasm locals are much cheaper than linear memory.
//! Nothing here is constant time: verification handles only public data.

/// A field element: little-endian u32 limbs, value < p.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) struct Fe(pub(super) [u32; 8]);

/// p, little-endian limbs.
pub(super) const P: [u32; 8] = [
    0xffff_ffff,
    0xffff_ffff,
    0xffff_ffff,
    0,
    0,
    0,
    1,
    0xffff_ffff,
];

/// The curve's b (y^2 = x^3 - 3x + b).
pub(super) const B: Fe = Fe([
    0x27d2_604b,
    0x3bce_3c3e,
    0xcc53_b0f6,
    0x651d_06b0,
    0x7698_86bc,
    0xb3eb_bd55,
    0xaa3a_93e7,
    0x5ac6_35d8,
]);

pub(super) const ZERO: Fe = Fe([0; 8]);
pub(super) const ONE: Fe = Fe([1, 0, 0, 0, 0, 0, 0, 0]);

#[inline(always)]
fn adc(a: u32, b: u32, carry: u32) -> (u32, u32) {
    let t = u64::from(a) + u64::from(b) + u64::from(carry);
    (t as u32, (t >> 32) as u32)
}

/// a - b - borrow (borrow is 0 or 1); returns (difference, borrow out).
#[inline(always)]
fn sbb(a: u32, b: u32, borrow: u32) -> (u32, u32) {
    let t = u64::from(a)
        .wrapping_sub(u64::from(b))
        .wrapping_sub(u64::from(borrow));
    (t as u32, ((t >> 32) as u32) & 1)
}

/// 256-bit a + b: (sum mod 2^256, carry).
#[inline(always)]
pub(super) fn add_raw(a: &[u32; 8], b: &[u32; 8]) -> ([u32; 8], u32) {
    let [a0, a1, a2, a3, a4, a5, a6, a7] = *a;
    let [b0, b1, b2, b3, b4, b5, b6, b7] = *b;
    let (r0, c) = adc(a0, b0, 0);
    let (r1, c) = adc(a1, b1, c);
    let (r2, c) = adc(a2, b2, c);
    let (r3, c) = adc(a3, b3, c);
    let (r4, c) = adc(a4, b4, c);
    let (r5, c) = adc(a5, b5, c);
    let (r6, c) = adc(a6, b6, c);
    let (r7, c) = adc(a7, b7, c);
    ([r0, r1, r2, r3, r4, r5, r6, r7], c)
}

/// 256-bit a - b: (difference mod 2^256, borrow).
#[inline(always)]
pub(super) fn sub_raw(a: &[u32; 8], b: &[u32; 8]) -> ([u32; 8], u32) {
    let [a0, a1, a2, a3, a4, a5, a6, a7] = *a;
    let [b0, b1, b2, b3, b4, b5, b6, b7] = *b;
    let (r0, c) = sbb(a0, b0, 0);
    let (r1, c) = sbb(a1, b1, c);
    let (r2, c) = sbb(a2, b2, c);
    let (r3, c) = sbb(a3, b3, c);
    let (r4, c) = sbb(a4, b4, c);
    let (r5, c) = sbb(a5, b5, c);
    let (r6, c) = sbb(a6, b6, c);
    let (r7, c) = sbb(a7, b7, c);
    ([r0, r1, r2, r3, r4, r5, r6, r7], c)
}

/// Big-endian 32 bytes to limbs; `None` unless exactly 32 bytes.
pub(super) fn limbs_from_be(bytes: &[u8]) -> Option<[u32; 8]> {
    if bytes.len() != 32 {
        return None;
    }
    let mut limbs = [0u32; 8];
    for (limb, chunk) in limbs.iter_mut().zip(bytes.rchunks_exact(4)) {
        *limb = chunk.iter().fold(0u32, |acc, &b| (acc << 8) | u32::from(b));
    }
    Some(limbs)
}

/// Limbs to big-endian 32 bytes.
pub(super) fn limbs_to_be(limbs: &[u32; 8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (chunk, limb) in out.rchunks_exact_mut(4).zip(limbs.iter()) {
        chunk.copy_from_slice(&limb.to_be_bytes());
    }
    out
}

/// a < b as 256-bit integers.
pub(super) fn lt(a: &[u32; 8], b: &[u32; 8]) -> bool {
    sub_raw(a, b).1 == 1
}

impl Fe {
    /// A canonical big-endian encoding (< p), else `None`.
    pub(super) fn from_be(bytes: &[u8]) -> Option<Fe> {
        let limbs = limbs_from_be(bytes)?;
        lt(&limbs, &P).then_some(Fe(limbs))
    }

    pub(super) fn to_be(self) -> [u8; 32] {
        limbs_to_be(&self.0)
    }

    pub(super) fn is_zero(&self) -> bool {
        self.0 == [0; 8]
    }
}

pub(super) fn add(a: &Fe, b: &Fe) -> Fe {
    let (s, carry) = add_raw(&a.0, &b.0);
    let (d, borrow) = sub_raw(&s, &P);
    // a + b < 2p: the result is s - p when the sum reached 2^256 or is at least p.
    if carry == 1 || borrow == 0 {
        Fe(d)
    } else {
        Fe(s)
    }
}

pub(super) fn sub(a: &Fe, b: &Fe) -> Fe {
    let (d, borrow) = sub_raw(&a.0, &b.0);
    if borrow == 1 {
        Fe(add_raw(&d, &P).0)
    } else {
        Fe(d)
    }
}

pub(super) fn neg(a: &Fe) -> Fe {
    sub(&ZERO, a)
}

#[inline(always)]
pub(super) fn dbl(a: &Fe) -> Fe {
    add(a, a)
}

/// One row of the schoolbook product: r[j..] += a * b[..], the top word a fresh binding.
macro_rules! row {
    ($a:expr, [$($b:ident => $r:ident),+], let $top:ident) => {
        let a = u64::from($a);
        let mut c: u64 = 0;
        $(
            let t = u64::from($r) + a * u64::from($b) + c;
            $r = t as u32;
            c = t >> 32;
        )+
        let $top = c as u32;
    };
    ($a:expr, [$($b:ident => $r:ident),+], let mut $top:ident) => {
        let a = u64::from($a);
        let mut c: u64 = 0;
        $(
            let t = u64::from($r) + a * u64::from($b) + c;
            $r = t as u32;
            c = t >> 32;
        )+
        let mut $top = c as u32;
    };
}

/// The 512-bit product, little-endian limbs.
#[inline(always)]
fn mul_wide(a: &[u32; 8], b: &[u32; 8]) -> [u32; 16] {
    let [a0, a1, a2, a3, a4, a5, a6, a7] = *a;
    let [b0, b1, b2, b3, b4, b5, b6, b7] = *b;
    let (mut r0, mut r1, mut r2, mut r3, mut r4, mut r5, mut r6, mut r7) =
        (0u32, 0u32, 0u32, 0u32, 0u32, 0u32, 0u32, 0u32);
    row!(a0, [b0 => r0, b1 => r1, b2 => r2, b3 => r3, b4 => r4, b5 => r5, b6 => r6, b7 => r7], let mut r8);
    row!(a1, [b0 => r1, b1 => r2, b2 => r3, b3 => r4, b4 => r5, b5 => r6, b6 => r7, b7 => r8], let mut r9);
    row!(a2, [b0 => r2, b1 => r3, b2 => r4, b3 => r5, b4 => r6, b5 => r7, b6 => r8, b7 => r9], let mut r10);
    row!(a3, [b0 => r3, b1 => r4, b2 => r5, b3 => r6, b4 => r7, b5 => r8, b6 => r9, b7 => r10], let mut r11);
    row!(a4, [b0 => r4, b1 => r5, b2 => r6, b3 => r7, b4 => r8, b5 => r9, b6 => r10, b7 => r11], let mut r12);
    row!(a5, [b0 => r5, b1 => r6, b2 => r7, b3 => r8, b4 => r9, b5 => r10, b6 => r11, b7 => r12], let mut r13);
    row!(a6, [b0 => r6, b1 => r7, b2 => r8, b3 => r9, b4 => r10, b5 => r11, b6 => r12, b7 => r13], let mut r14);
    row!(a7, [b0 => r7, b1 => r8, b2 => r9, b3 => r10, b4 => r11, b5 => r12, b6 => r13, b7 => r14], let r15);
    [
        r0, r1, r2, r3, r4, r5, r6, r7, r8, r9, r10, r11, r12, r13, r14, r15,
    ]
}

/// The 512-bit square: 28 cross products doubled plus 8 squares (36 multiplications).
#[inline(always)]
fn sqr_wide(a: &[u32; 8]) -> [u32; 16] {
    let [a0, a1, a2, a3, a4, a5, a6, a7] = *a;
    let (mut r1, mut r2, mut r3, mut r4, mut r5, mut r6, mut r7) =
        (0u32, 0u32, 0u32, 0u32, 0u32, 0u32, 0u32);
    row!(a0, [a1 => r1, a2 => r2, a3 => r3, a4 => r4, a5 => r5, a6 => r6, a7 => r7], let mut r8);
    row!(a1, [a2 => r3, a3 => r4, a4 => r5, a5 => r6, a6 => r7, a7 => r8], let mut r9);
    row!(a2, [a3 => r5, a4 => r6, a5 => r7, a6 => r8, a7 => r9], let mut r10);
    row!(a3, [a4 => r7, a5 => r8, a6 => r9, a7 => r10], let mut r11);
    row!(a4, [a5 => r9, a6 => r10, a7 => r11], let mut r12);
    row!(a5, [a6 => r11, a7 => r12], let mut r13);
    row!(a6, [a7 => r13], let mut r14);
    // Double the cross products (r0 = 0).
    let mut r15 = r14 >> 31;
    r14 = (r14 << 1) | (r13 >> 31);
    r13 = (r13 << 1) | (r12 >> 31);
    r12 = (r12 << 1) | (r11 >> 31);
    r11 = (r11 << 1) | (r10 >> 31);
    r10 = (r10 << 1) | (r9 >> 31);
    r9 = (r9 << 1) | (r8 >> 31);
    r8 = (r8 << 1) | (r7 >> 31);
    r7 = (r7 << 1) | (r6 >> 31);
    r6 = (r6 << 1) | (r5 >> 31);
    r5 = (r5 << 1) | (r4 >> 31);
    r4 = (r4 << 1) | (r3 >> 31);
    r3 = (r3 << 1) | (r2 >> 31);
    r2 = (r2 << 1) | (r1 >> 31);
    r1 <<= 1;
    let mut r0 = 0u32;
    // Add the squares a_i^2 at word 2i.
    let mut c: u64 = 0;
    macro_rules! diag {
        ($a:ident, $lo:ident, $hi:ident) => {
            let sq = u64::from($a) * u64::from($a);
            let t = u64::from($lo) + (sq & 0xffff_ffff) + c;
            $lo = t as u32;
            let t = u64::from($hi) + (sq >> 32) + (t >> 32);
            $hi = t as u32;
            c = t >> 32;
        };
    }
    diag!(a0, r0, r1);
    diag!(a1, r2, r3);
    diag!(a2, r4, r5);
    diag!(a3, r6, r7);
    diag!(a4, r8, r9);
    diag!(a5, r10, r11);
    diag!(a6, r12, r13);
    diag!(a7, r14, r15);
    let _ = c; // zero: a^2 < 2^512
    [
        r0, r1, r2, r3, r4, r5, r6, r7, r8, r9, r10, r11, r12, r13, r14, r15,
    ]
}

/// Signed words to limbs with carries: (low 256 bits, signed carry out).
#[inline(always)]
fn propagate(w: [i64; 8]) -> ([u32; 8], i64) {
    let [w0, w1, w2, w3, w4, w5, w6, w7] = w;
    let t = w0;
    let r0 = t as u32;
    let t = w1 + (t >> 32);
    let r1 = t as u32;
    let t = w2 + (t >> 32);
    let r2 = t as u32;
    let t = w3 + (t >> 32);
    let r3 = t as u32;
    let t = w4 + (t >> 32);
    let r4 = t as u32;
    let t = w5 + (t >> 32);
    let r5 = t as u32;
    let t = w6 + (t >> 32);
    let r6 = t as u32;
    let t = w7 + (t >> 32);
    let r7 = t as u32;
    ([r0, r1, r2, r3, r4, r5, r6, r7], t >> 32)
}

/// Reduces a 512-bit value mod p (FIPS 186-4 D.2.3).
#[inline(always)]
fn reduce(c: [u32; 16]) -> Fe {
    let [c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12, c13, c14, c15] = c.map(i64::from);
    // s1 + 2 s2 + 2 s3 + s4 + s5 - s6 - s7 - s8 - s9, word by word.
    let w0 = c0 + c8 + c9 - c11 - c12 - c13 - c14;
    let w1 = c1 + c9 + c10 - c12 - c13 - c14 - c15;
    let w2 = c2 + c10 + c11 - c13 - c14 - c15;
    let w3 = c3 + 2 * c11 + 2 * c12 + c13 - c15 - c8 - c9;
    let w4 = c4 + 2 * c12 + 2 * c13 + c14 - c9 - c10;
    let w5 = c5 + 2 * c13 + 2 * c14 + c15 - c10 - c11;
    let w6 = c6 + 3 * c14 + 2 * c15 + c13 - c8 - c9;
    let w7 = c7 + 3 * c15 + c8 - c10 - c11 - c12 - c13;
    let (r, top) = propagate([w0, w1, w2, w3, w4, w5, w6, w7]);
    finish(r, top)
}

/// r + top * 2^256 (|top| small) to a reduced element, using
/// 2^256 = 2^224 - 2^192 - 2^96 + 1 (mod p). Each pass keeps the value mod p and shrinks
/// |top|: from |top| <= 8 one pass leaves top in {-1, 0, 1}, a second leaves 0.
#[inline(always)]
fn finish(r: [u32; 8], top: i64) -> Fe {
    let (mut r, mut top) = (r, top);
    while top != 0 {
        let [r0, r1, r2, r3, r4, r5, r6, r7] = r.map(i64::from);
        (r, top) = propagate([r0 + top, r1, r2, r3 - top, r4, r5, r6 - top, r7 + top]);
    }
    let (d, borrow) = sub_raw(&r, &P);
    if borrow == 0 {
        Fe(d)
    } else {
        Fe(r)
    }
}

pub(super) fn mul(a: &Fe, b: &Fe) -> Fe {
    reduce(mul_wide(&a.0, &b.0))
}

pub(super) fn sqr(a: &Fe) -> Fe {
    reduce(sqr_wide(&a.0))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use proptest::prelude::*;

    /// a * b mod p by double-and-add on the (separately tested) add: an independent path.
    fn mul_slow(a: &Fe, b: &Fe) -> Fe {
        let mut acc = ZERO;
        for i in (0..256).rev() {
            acc = add(&acc, &acc);
            if (b.0[i / 32] >> (i % 32)) & 1 == 1 {
                acc = add(&acc, a);
            }
        }
        acc
    }

    fn fe_strategy() -> impl Strategy<Value = Fe> {
        prop_oneof![
            any::<[u32; 8]>().prop_map(|l| if lt(&l, &P) {
                Fe(l)
            } else {
                Fe(sub_raw(&l, &P).0)
            }),
            // Near p and near 0, and limbs of all ones: where carries go far.
            (0u32..64).prop_map(|k| Fe(sub_raw(&P, &[k + 1, 0, 0, 0, 0, 0, 0, 0]).0)),
            (0u32..64).prop_map(|k| Fe([k, 0, 0, 0, 0, 0, 0, 0])),
            Just(Fe([
                0xffff_ffff,
                0xffff_ffff,
                0xffff_ffff,
                0xffff_ffff,
                0xffff_ffff,
                0xffff_ffff,
                0,
                0xffff_fffe
            ])),
        ]
    }

    #[test]
    fn add_sub_edges() {
        let pm1 = Fe(sub_raw(&P, &ONE.0).0);
        assert_eq!(add(&pm1, &ONE), ZERO);
        assert_eq!(add(&pm1, &pm1), Fe(sub_raw(&pm1.0, &ONE.0).0));
        assert_eq!(sub(&ZERO, &ONE), pm1);
        assert_eq!(neg(&ZERO), ZERO);
        assert_eq!(mul(&pm1, &pm1), ONE);
        assert_eq!(sqr(&pm1), ONE);
    }

    proptest! {
        #[test]
        fn mul_and_sqr_match_double_and_add(a in fe_strategy(), b in fe_strategy()) {
            let m = mul(&a, &b);
            prop_assert!(lt(&m.0, &P));
            prop_assert_eq!(m, mul_slow(&a, &b));
            prop_assert_eq!(sqr(&a), mul_slow(&a, &a));
            prop_assert_eq!(sub(&add(&a, &b), &b), a);
        }
    }
}
