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

#[inline(always)]
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

#[inline(always)]
pub(super) fn sub(a: &Fe, b: &Fe) -> Fe {
    let (d, borrow) = sub_raw(&a.0, &b.0);
    if borrow == 1 {
        Fe(add_raw(&d, &P).0)
    } else {
        Fe(d)
    }
}

#[inline(always)]
pub(super) fn neg(a: &Fe) -> Fe {
    sub(&ZERO, a)
}

#[inline(always)]
pub(super) fn dbl(a: &Fe) -> Fe {
    add(a, a)
}

#[inline(always)]
fn widen(a: &[u32; 8]) -> [u64; 8] {
    let [a0, a1, a2, a3, a4, a5, a6, a7] = *a;
    [
        u64::from(a0),
        u64::from(a1),
        u64::from(a2),
        u64::from(a3),
        u64::from(a4),
        u64::from(a5),
        u64::from(a6),
        u64::from(a7),
    ]
}

#[inline(always)]
fn lo(p: u64) -> u64 {
    p & 0xffff_ffff
}

#[inline(always)]
fn hi(p: u64) -> u64 {
    p >> 32
}

// The product as unnormalized columns: column k is the sum of the low halves of the
// products a_i b_j with i + j = k and the high halves of those with i + j = k - 1, so that
// the value is sum(c_k 2^(32k)) with every c_k < 2^37. No carry chain runs through the
// product (independent additions, which V8 schedules freely); the reduction below is
// linear, so it takes the columns as they are and one carry pass follows it.

/// The 512-bit product as 16 column sums (64 multiplications).
#[inline(always)]
fn mul_wide(a: &[u32; 8], b: &[u32; 8]) -> [u64; 16] {
    let [a0, a1, a2, a3, a4, a5, a6, a7] = widen(a);
    let [b0, b1, b2, b3, b4, b5, b6, b7] = widen(b);
    let p00 = a0 * b0;
    let p01 = a0 * b1;
    let p02 = a0 * b2;
    let p03 = a0 * b3;
    let p04 = a0 * b4;
    let p05 = a0 * b5;
    let p06 = a0 * b6;
    let p07 = a0 * b7;
    let p10 = a1 * b0;
    let p11 = a1 * b1;
    let p12 = a1 * b2;
    let p13 = a1 * b3;
    let p14 = a1 * b4;
    let p15 = a1 * b5;
    let p16 = a1 * b6;
    let p17 = a1 * b7;
    let p20 = a2 * b0;
    let p21 = a2 * b1;
    let p22 = a2 * b2;
    let p23 = a2 * b3;
    let p24 = a2 * b4;
    let p25 = a2 * b5;
    let p26 = a2 * b6;
    let p27 = a2 * b7;
    let p30 = a3 * b0;
    let p31 = a3 * b1;
    let p32 = a3 * b2;
    let p33 = a3 * b3;
    let p34 = a3 * b4;
    let p35 = a3 * b5;
    let p36 = a3 * b6;
    let p37 = a3 * b7;
    let p40 = a4 * b0;
    let p41 = a4 * b1;
    let p42 = a4 * b2;
    let p43 = a4 * b3;
    let p44 = a4 * b4;
    let p45 = a4 * b5;
    let p46 = a4 * b6;
    let p47 = a4 * b7;
    let p50 = a5 * b0;
    let p51 = a5 * b1;
    let p52 = a5 * b2;
    let p53 = a5 * b3;
    let p54 = a5 * b4;
    let p55 = a5 * b5;
    let p56 = a5 * b6;
    let p57 = a5 * b7;
    let p60 = a6 * b0;
    let p61 = a6 * b1;
    let p62 = a6 * b2;
    let p63 = a6 * b3;
    let p64 = a6 * b4;
    let p65 = a6 * b5;
    let p66 = a6 * b6;
    let p67 = a6 * b7;
    let p70 = a7 * b0;
    let p71 = a7 * b1;
    let p72 = a7 * b2;
    let p73 = a7 * b3;
    let p74 = a7 * b4;
    let p75 = a7 * b5;
    let p76 = a7 * b6;
    let p77 = a7 * b7;
    [
        lo(p00),
        lo(p01) + lo(p10) + hi(p00),
        lo(p02) + lo(p11) + lo(p20) + hi(p01) + hi(p10),
        lo(p03) + lo(p12) + lo(p21) + lo(p30) + hi(p02) + hi(p11) + hi(p20),
        lo(p04) + lo(p13) + lo(p22) + lo(p31) + lo(p40) + hi(p03) + hi(p12) + hi(p21) + hi(p30),
        lo(p05)
            + lo(p14)
            + lo(p23)
            + lo(p32)
            + lo(p41)
            + lo(p50)
            + hi(p04)
            + hi(p13)
            + hi(p22)
            + hi(p31)
            + hi(p40),
        lo(p06)
            + lo(p15)
            + lo(p24)
            + lo(p33)
            + lo(p42)
            + lo(p51)
            + lo(p60)
            + hi(p05)
            + hi(p14)
            + hi(p23)
            + hi(p32)
            + hi(p41)
            + hi(p50),
        lo(p07)
            + lo(p16)
            + lo(p25)
            + lo(p34)
            + lo(p43)
            + lo(p52)
            + lo(p61)
            + lo(p70)
            + hi(p06)
            + hi(p15)
            + hi(p24)
            + hi(p33)
            + hi(p42)
            + hi(p51)
            + hi(p60),
        lo(p17)
            + lo(p26)
            + lo(p35)
            + lo(p44)
            + lo(p53)
            + lo(p62)
            + lo(p71)
            + hi(p07)
            + hi(p16)
            + hi(p25)
            + hi(p34)
            + hi(p43)
            + hi(p52)
            + hi(p61)
            + hi(p70),
        lo(p27)
            + lo(p36)
            + lo(p45)
            + lo(p54)
            + lo(p63)
            + lo(p72)
            + hi(p17)
            + hi(p26)
            + hi(p35)
            + hi(p44)
            + hi(p53)
            + hi(p62)
            + hi(p71),
        lo(p37)
            + lo(p46)
            + lo(p55)
            + lo(p64)
            + lo(p73)
            + hi(p27)
            + hi(p36)
            + hi(p45)
            + hi(p54)
            + hi(p63)
            + hi(p72),
        lo(p47) + lo(p56) + lo(p65) + lo(p74) + hi(p37) + hi(p46) + hi(p55) + hi(p64) + hi(p73),
        lo(p57) + lo(p66) + lo(p75) + hi(p47) + hi(p56) + hi(p65) + hi(p74),
        lo(p67) + lo(p76) + hi(p57) + hi(p66) + hi(p75),
        lo(p77) + hi(p67) + hi(p76),
        hi(p77),
    ]
}

/// The 512-bit square as 16 column sums: 28 cross products doubled plus 8 squares.
#[inline(always)]
fn sqr_wide(a: &[u32; 8]) -> [u64; 16] {
    let [a0, a1, a2, a3, a4, a5, a6, a7] = widen(a);
    let p00 = a0 * a0;
    let p01 = a0 * a1;
    let p02 = a0 * a2;
    let p03 = a0 * a3;
    let p04 = a0 * a4;
    let p05 = a0 * a5;
    let p06 = a0 * a6;
    let p07 = a0 * a7;
    let p11 = a1 * a1;
    let p12 = a1 * a2;
    let p13 = a1 * a3;
    let p14 = a1 * a4;
    let p15 = a1 * a5;
    let p16 = a1 * a6;
    let p17 = a1 * a7;
    let p22 = a2 * a2;
    let p23 = a2 * a3;
    let p24 = a2 * a4;
    let p25 = a2 * a5;
    let p26 = a2 * a6;
    let p27 = a2 * a7;
    let p33 = a3 * a3;
    let p34 = a3 * a4;
    let p35 = a3 * a5;
    let p36 = a3 * a6;
    let p37 = a3 * a7;
    let p44 = a4 * a4;
    let p45 = a4 * a5;
    let p46 = a4 * a6;
    let p47 = a4 * a7;
    let p55 = a5 * a5;
    let p56 = a5 * a6;
    let p57 = a5 * a7;
    let p66 = a6 * a6;
    let p67 = a6 * a7;
    let p77 = a7 * a7;
    [
        lo(p00),
        2 * (lo(p01)) + hi(p00),
        2 * (lo(p02) + hi(p01)) + lo(p11),
        2 * (lo(p03) + lo(p12) + hi(p02)) + hi(p11),
        2 * (lo(p04) + lo(p13) + hi(p03) + hi(p12)) + lo(p22),
        2 * (lo(p05) + lo(p14) + lo(p23) + hi(p04) + hi(p13)) + hi(p22),
        2 * (lo(p06) + lo(p15) + lo(p24) + hi(p05) + hi(p14) + hi(p23)) + lo(p33),
        2 * (lo(p07) + lo(p16) + lo(p25) + lo(p34) + hi(p06) + hi(p15) + hi(p24)) + hi(p33),
        2 * (lo(p17) + lo(p26) + lo(p35) + hi(p07) + hi(p16) + hi(p25) + hi(p34)) + lo(p44),
        2 * (lo(p27) + lo(p36) + lo(p45) + hi(p17) + hi(p26) + hi(p35)) + hi(p44),
        2 * (lo(p37) + lo(p46) + hi(p27) + hi(p36) + hi(p45)) + lo(p55),
        2 * (lo(p47) + lo(p56) + hi(p37) + hi(p46)) + hi(p55),
        2 * (lo(p57) + hi(p47) + hi(p56)) + lo(p66),
        2 * (lo(p67) + hi(p57)) + hi(p66),
        2 * (hi(p67)) + lo(p77),
        hi(p77),
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

/// Reduces sum(c_k 2^(32k)) mod p, for columns c_k < 2^37 (FIPS 186-4 D.2.3, applied to
/// unnormalized words: the identity is linear). Every word sum stays below 2^41 in
/// magnitude.
#[inline(always)]
fn reduce(c: [u64; 16]) -> Fe {
    // Each column is below 2^37, so the conversions to i64 are exact. (No `array::map`
    // here or below: at opt-level "s" it stays a loop through memory.)
    let [c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12, c13, c14, c15] = c;
    let (c0, c1, c2, c3, c4, c5, c6, c7) = (
        c0 as i64, c1 as i64, c2 as i64, c3 as i64, c4 as i64, c5 as i64, c6 as i64, c7 as i64,
    );
    let (c8, c9, c10, c11, c12, c13, c14, c15) = (
        c8 as i64, c9 as i64, c10 as i64, c11 as i64, c12 as i64, c13 as i64, c14 as i64,
        c15 as i64,
    );
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

/// r + top * 2^256 (|top| < 2^12 from `reduce`) to a reduced element, using
/// 2^256 = 2^224 - 2^192 - 2^96 + 1 (mod p). Each pass keeps the value mod p and shrinks
/// |top|: from |top| < 2^31 one pass leaves top in {-1, 0, 1}, a second leaves 0.
#[inline(always)]
fn finish(r: [u32; 8], top: i64) -> Fe {
    let (mut r, mut top) = (r, top);
    while top != 0 {
        let [r0, r1, r2, r3, r4, r5, r6, r7] = r;
        (r, top) = propagate([
            i64::from(r0) + top,
            i64::from(r1),
            i64::from(r2),
            i64::from(r3) - top,
            i64::from(r4),
            i64::from(r5),
            i64::from(r6) - top,
            i64::from(r7) + top,
        ]);
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

/// a^-1 = a^(p-2) (a nonzero), square-and-multiply: used once per prepared key.
pub(super) fn invert(a: &Fe) -> Fe {
    let (p_minus_2, _) = sub_raw(&P, &[2, 0, 0, 0, 0, 0, 0, 0]);
    let mut acc = ONE;
    for limb in p_minus_2.iter().rev() {
        for bit in (0..32).rev() {
            acc = sqr(&acc);
            if (limb >> bit) & 1 == 1 {
                acc = mul(&acc, a);
            }
        }
    }
    acc
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
            if !a.is_zero() {
                prop_assert_eq!(mul(&invert(&a), &a), ONE);
            }
        }
    }
}
