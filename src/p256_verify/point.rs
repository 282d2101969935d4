//! Points on P-256 (y^2 = x^3 - 3x + b) and the double-scalar multiplication u1*G + u2*Q.
//!
//! Jacobian coordinates (x = X/Z^2, y = Y/Z^3), infinity is Z = 0. The formulas are the
//! incomplete ones (EFD dbl-2001-b for a = -3, madd-2007-bl, add-2007-bl); every special
//! case they miss is handled explicitly: an operand at infinity, P + P (doubling) and
//! P + (-P) (infinity). Doubling needs no special case on P-256 (no point of order 2).
//! Interleaved wNAF (Shamir's trick): one chain of 256 doublings shared by both scalars,
//! with a width-8 wNAF over the constant affine table of odd multiples of G (g_table.rs)
//! and a width-5 wNAF over odd multiples of Q computed per call.
//!
//! A prepared key (`QTables`, computed once per key) also holds affine odd multiples of
//! 2^64 Q, 2^128 Q and 2^192 Q; with the matching constant tables of G, both scalars are
//! split into four 64-bit quarters and the shared doubling chain is 64 long instead of 256.

use super::field::{add, dbl, invert, mul, neg, sqr, sub, Fe, B, ONE, ZERO};
use super::g_table::{G_SPLIT_TABLES, G_SPLIT_WNAF_WIDTH, G_TABLE, G_WNAF_WIDTH};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) struct Affine {
    pub(super) x: Fe,
    pub(super) y: Fe,
}

#[derive(Clone, Copy, Debug)]
pub(super) struct Jacobian {
    pub(super) x: Fe,
    pub(super) y: Fe,
    pub(super) z: Fe,
}

/// wNAF width for the public key's multiples (2^(W-2) = 8 points per call).
const Q_WNAF_WIDTH: u32 = 5;
const Q_TABLE_LEN: usize = 1 << (Q_WNAF_WIDTH - 2);

/// Most digits a width-w NAF of a 256-bit scalar can have.
const NAF_LEN: usize = 257;

/// Most digits a width-w NAF of a 64-bit scalar can have.
const QUARTER_NAF_LEN: usize = 65;

const INFINITY: Jacobian = Jacobian {
    x: ONE,
    y: ONE,
    z: ZERO,
};

impl Affine {
    /// Whether y^2 = x^3 - 3x + b.
    pub(super) fn is_on_curve(&self) -> bool {
        let x2 = sqr(&self.x);
        let x3 = mul(&x2, &self.x);
        let three_x = add(&dbl(&self.x), &self.x);
        sqr(&self.y) == add(&sub(&x3, &three_x), &B)
    }

    fn neg(&self) -> Affine {
        Affine {
            x: self.x,
            y: neg(&self.y),
        }
    }

    pub(super) fn to_jacobian(self) -> Jacobian {
        Jacobian {
            x: self.x,
            y: self.y,
            z: ONE,
        }
    }
}

impl Jacobian {
    pub(super) fn is_infinity(&self) -> bool {
        self.z.is_zero()
    }

    fn neg(&self) -> Jacobian {
        Jacobian {
            x: self.x,
            y: neg(&self.y),
            z: self.z,
        }
    }

    /// 2P (dbl-2001-b, a = -3): 3M + 5S.
    pub(super) fn double(&self) -> Jacobian {
        if self.is_infinity() {
            return *self;
        }
        let delta = sqr(&self.z);
        let gamma = sqr(&self.y);
        let beta = mul(&self.x, &gamma);
        let t = mul(&sub(&self.x, &delta), &add(&self.x, &delta));
        let alpha = add(&dbl(&t), &t);
        let beta4 = dbl(&dbl(&beta));
        let x3 = sub(&sqr(&alpha), &dbl(&beta4));
        let z3 = sub(&sub(&sqr(&add(&self.y, &self.z)), &gamma), &delta);
        let gamma2_8 = dbl(&dbl(&dbl(&sqr(&gamma))));
        let y3 = sub(&mul(&alpha, &sub(&beta4, &x3)), &gamma2_8);
        Jacobian {
            x: x3,
            y: y3,
            z: z3,
        }
    }

    /// P + Q for affine Q (madd-2007-bl): 7M + 4S.
    pub(super) fn add_affine(&self, q: &Affine) -> Jacobian {
        if self.is_infinity() {
            return q.to_jacobian();
        }
        let z1z1 = sqr(&self.z);
        let u2 = mul(&q.x, &z1z1);
        let s2 = mul(&q.y, &mul(&self.z, &z1z1));
        let h = sub(&u2, &self.x);
        let r = dbl(&sub(&s2, &self.y));
        if h.is_zero() {
            // Same x: P = Q or P = -Q.
            return if r.is_zero() { self.double() } else { INFINITY };
        }
        let hh = sqr(&h);
        let i = dbl(&dbl(&hh));
        let j = mul(&h, &i);
        let v = mul(&self.x, &i);
        let x3 = sub(&sub(&sqr(&r), &j), &dbl(&v));
        let y3 = sub(&mul(&r, &sub(&v, &x3)), &dbl(&mul(&self.y, &j)));
        let z3 = sub(&sub(&sqr(&add(&self.z, &h)), &z1z1), &hh);
        Jacobian {
            x: x3,
            y: y3,
            z: z3,
        }
    }

    /// P + Q (add-2007-bl): 11M + 5S.
    pub(super) fn add(&self, q: &Jacobian) -> Jacobian {
        if self.is_infinity() {
            return *q;
        }
        if q.is_infinity() {
            return *self;
        }
        let z1z1 = sqr(&self.z);
        let z2z2 = sqr(&q.z);
        let u1 = mul(&self.x, &z2z2);
        let u2 = mul(&q.x, &z1z1);
        let s1 = mul(&self.y, &mul(&q.z, &z2z2));
        let s2 = mul(&q.y, &mul(&self.z, &z1z1));
        let h = sub(&u2, &u1);
        let r = dbl(&sub(&s2, &s1));
        if h.is_zero() {
            return if r.is_zero() { self.double() } else { INFINITY };
        }
        let i = sqr(&dbl(&h));
        let j = mul(&h, &i);
        let v = mul(&u1, &i);
        let x3 = sub(&sub(&sqr(&r), &j), &dbl(&v));
        let y3 = sub(&mul(&r, &sub(&v, &x3)), &dbl(&mul(&s1, &j)));
        let z3 = mul(&sub(&sub(&sqr(&add(&self.z, &q.z)), &z1z1), &z2z2), &h);
        Jacobian {
            x: x3,
            y: y3,
            z: z3,
        }
    }
}

/// The width-`w` NAF of a scalar, least significant digit first: every nonzero digit is
/// odd with |d| < 2^(w-1), and any w consecutive digits hold at most one nonzero. `L` must
/// be at least the scalar's bit length + 1 (257 for any 256-bit scalar, 65 for a 64-bit one).
fn wnaf<const L: usize>(scalar: &[u32; 8], w: u32) -> [i8; L] {
    let mut out = [0i8; L];
    // One spare limb: k + 2^(w-1) may carry past 2^256 for k close to 2^256.
    let mut k = [0u32; 9];
    for (dst, src) in k.iter_mut().zip(scalar.iter()) {
        *dst = *src;
    }
    let window = 1u32 << w;
    for digit in out.iter_mut() {
        if k == [0; 9] {
            break;
        }
        let low = k.first().copied().unwrap_or(0);
        if low & 1 == 1 {
            let m = low & (window - 1);
            if m >= window / 2 {
                // Negative digit m - 2^w: k += 2^w - m.
                *digit = (i64::from(m) - i64::from(window)) as i8;
                let mut carry = u64::from(window - m);
                for limb in k.iter_mut() {
                    let t = u64::from(*limb) + carry;
                    *limb = t as u32;
                    carry = t >> 32;
                }
            } else {
                *digit = m as i8;
                if let Some(l) = k.first_mut() {
                    *l -= m; // m equals the low bits, no borrow
                }
            }
        }
        // k >>= 1
        let mut carry = 0u32;
        for limb in k.iter_mut().rev() {
            let next = *limb & 1;
            *limb = (*limb >> 1) | (carry << 31);
            carry = next;
        }
    }
    out
}

/// u1*G + u2*Q (interleaved wNAF). Scalars below 2^256 (callers pass values mod n).
pub(super) fn mul_g_plus_q(u1: &[u32; 8], u2: &[u32; 8], q: &Affine) -> Jacobian {
    // Odd multiples Q, 3Q, ..., 15Q. Q has prime order n, so no entry is infinity and
    // no addition below hits a special case.
    let q1 = q.to_jacobian();
    let q2 = q1.double();
    let mut q_table = [q1; Q_TABLE_LEN];
    let mut prev = q1;
    for slot in q_table.iter_mut().skip(1) {
        prev = prev.add(&q2);
        *slot = prev;
    }

    let naf_g: [i8; NAF_LEN] = wnaf(u1, G_WNAF_WIDTH);
    let naf_q: [i8; NAF_LEN] = wnaf(u2, Q_WNAF_WIDTH);
    let mut acc = INFINITY;
    for (&dg, &dq) in naf_g.iter().zip(naf_q.iter()).rev() {
        acc = acc.double();
        if dq != 0 {
            let idx = usize::from(dq.unsigned_abs() / 2);
            if let Some(p) = q_table.get(idx) {
                acc = if dq > 0 {
                    acc.add(p)
                } else {
                    acc.add(&p.neg())
                };
            }
        }
        if dg != 0 {
            let idx = usize::from(dg.unsigned_abs() / 2);
            if let Some(p) = G_TABLE.get(idx) {
                acc = if dg > 0 {
                    acc.add_affine(p)
                } else {
                    acc.add_affine(&p.neg())
                };
            }
        }
    }
    acc
}

/// Per-key tables: `0[j][i]` is (2i+1) 2^(64j) Q, affine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct QTables([[Affine; Q_TABLE_LEN]; 4]);

impl QTables {
    /// 192 doublings, 32 additions and one inversion (Montgomery's batch trick): about the
    /// cost of one unprepared verification.
    pub(super) fn new(q: &Affine) -> QTables {
        let mut jac = [INFINITY; 4 * Q_TABLE_LEN];
        let mut base = q.to_jacobian();
        for (j, table) in jac.chunks_exact_mut(Q_TABLE_LEN).enumerate() {
            if j > 0 {
                for _ in 0..64 {
                    base = base.double();
                }
            }
            let twice = base.double();
            let mut prev = base;
            for (i, slot) in table.iter_mut().enumerate() {
                if i > 0 {
                    prev = prev.add(&twice);
                }
                *slot = prev;
            }
        }
        // No entry is infinity: k 2^(64j) with odd k < 16 is never a multiple of the
        // prime order n. Batch inversion of the 32 Z coordinates.
        let mut prefix = [ONE; 4 * Q_TABLE_LEN];
        let mut running = ONE;
        for (slot, p) in prefix.iter_mut().zip(jac.iter()) {
            *slot = running; // product of the Z before this one
            running = mul(&running, &p.z);
        }
        let mut inv = invert(&running); // 1 / (product of all Z)
        let mut flat = [Affine { x: ZERO, y: ZERO }; 4 * Q_TABLE_LEN];
        for ((target, p), before) in flat.iter_mut().zip(jac.iter()).zip(prefix.iter()).rev() {
            let z_inv = mul(&inv, before);
            inv = mul(&inv, &p.z); // now 1 / (product of the Z before this one)
            let z_inv2 = sqr(&z_inv);
            *target = Affine {
                x: mul(&p.x, &z_inv2),
                y: mul(&p.y, &mul(&z_inv2, &z_inv)),
            };
        }
        let mut out = [[Affine { x: ZERO, y: ZERO }; Q_TABLE_LEN]; 4];
        for (dst, src) in out.iter_mut().flatten().zip(flat.iter()) {
            *dst = *src;
        }
        QTables(out)
    }
}

/// The four 64-bit quarters of a scalar, each as a scalar of its own.
fn quarters(s: &[u32; 8]) -> [[u32; 8]; 4] {
    let mut out = [[0u32; 8]; 4];
    for (quarter, pair) in out.iter_mut().zip(s.chunks_exact(2)) {
        for (dst, src) in quarter.iter_mut().zip(pair.iter()) {
            *dst = *src;
        }
    }
    out
}

/// u1*G + u2*Q with a prepared key: eight interleaved wNAF streams over 64-bit quarters.
pub(super) fn mul_g_plus_q_prepared(u1: &[u32; 8], u2: &[u32; 8], q: &QTables) -> Jacobian {
    let naf_g: [[i8; QUARTER_NAF_LEN]; 4] = quarters(u1).map(|s| wnaf(&s, G_SPLIT_WNAF_WIDTH));
    let naf_q: [[i8; QUARTER_NAF_LEN]; 4] = quarters(u2).map(|s| wnaf(&s, Q_WNAF_WIDTH));
    let mut acc = INFINITY;
    for pos in (0..QUARTER_NAF_LEN).rev() {
        acc = acc.double();
        for (naf, table) in naf_q.iter().zip(q.0.iter()) {
            acc = add_digit(&acc, naf.get(pos).copied().unwrap_or(0), table);
        }
        for (naf, table) in naf_g.iter().zip(G_SPLIT_TABLES.iter()) {
            acc = add_digit(&acc, naf.get(pos).copied().unwrap_or(0), table);
        }
    }
    acc
}

/// acc + d P for a wNAF digit d over a table of odd multiples of P.
fn add_digit(acc: &Jacobian, digit: i8, table: &[Affine]) -> Jacobian {
    match table.get(usize::from(digit.unsigned_abs() / 2)) {
        Some(p) if digit > 0 => acc.add_affine(p),
        Some(p) if digit < 0 => acc.add_affine(&p.neg()),
        _ => *acc,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    fn to_affine(p: &Jacobian) -> Affine {
        // z^(p-2) by square-and-multiply on the exponent bits.
        let p_minus_2 =
            super::super::field::sub_raw(&super::super::field::P, &[2, 0, 0, 0, 0, 0, 0, 0]).0;
        let mut inv = ONE;
        for i in (0..256).rev() {
            inv = sqr(&inv);
            if (p_minus_2[i / 32] >> (i % 32)) & 1 == 1 {
                inv = mul(&inv, &p.z);
            }
        }
        let inv2 = sqr(&inv);
        Affine {
            x: mul(&p.x, &inv2),
            y: mul(&p.y, &mul(&inv2, &inv)),
        }
    }

    #[test]
    fn g_table_is_odd_multiples_of_g() {
        let g = G_TABLE[0];
        assert!(g.is_on_curve());
        let g2 = g.to_jacobian().double();
        let mut acc = g.to_jacobian();
        for (i, entry) in G_TABLE.iter().enumerate() {
            assert!(entry.is_on_curve(), "entry {i}");
            assert_eq!(to_affine(&acc), *entry, "entry {i}");
            // Also exercise the mixed and the full addition against each other.
            let via_mixed = g2.add_affine(entry);
            acc = acc.add(&g2);
            assert_eq!(to_affine(&via_mixed), to_affine(&acc), "entry {i}");
        }
    }

    #[test]
    fn special_cases_of_addition() {
        let g = G_TABLE[0];
        let gj = g.to_jacobian();
        assert!(gj.add_affine(&g.neg()).is_infinity());
        assert!(gj.add(&gj.neg()).is_infinity());
        assert_eq!(to_affine(&gj.add_affine(&g)), to_affine(&gj.double()));
        assert_eq!(to_affine(&gj.add(&gj)), to_affine(&gj.double()));
        assert_eq!(to_affine(&INFINITY.add_affine(&g)), g);
        assert_eq!(to_affine(&INFINITY.add(&gj)), g);
        assert_eq!(to_affine(&gj.add(&INFINITY)), g);
        assert!(INFINITY.double().is_infinity());
    }

    #[test]
    fn wnaf_reconstructs_the_scalar() {
        let scalars: [[u32; 8]; 4] = [
            [0; 8],
            [1, 0, 0, 0, 0, 0, 0, 0],
            [0xffff_ffff; 8],
            [
                0x1234_5678,
                0x9abc_def0,
                0xffff_ffff,
                0x8000_0000,
                7,
                0,
                0xdead_beef,
                0xffff_fff0,
            ],
        ];
        for s in scalars {
            for w in [2, 5, 8] {
                let naf: [i8; NAF_LEN] = wnaf(&s, w);
                // Rebuild as a 9-limb signed accumulation.
                let mut acc = [0i128; 9];
                for (i, &d) in naf.iter().enumerate() {
                    if d != 0 {
                        assert_eq!(d & 1, 1, "odd digit");
                        assert!(i32::from(d).abs() < 1 << (w - 1));
                        acc[i / 32] += i128::from(d) << (i % 32);
                    }
                }
                let mut carry = 0i128;
                let mut limbs = [0u32; 9];
                for (l, a) in limbs.iter_mut().zip(acc) {
                    let t = a + carry;
                    *l = t as u32;
                    carry = t >> 32;
                }
                assert_eq!(carry, 0);
                assert_eq!(&limbs[..8], &s[..], "w {w}");
                assert_eq!(limbs[8], 0);
            }
        }
    }

    #[test]
    fn split_g_tables_are_odd_multiples() {
        let mut base = G_TABLE[0].to_jacobian();
        for (j, table) in G_SPLIT_TABLES.iter().enumerate() {
            if j > 0 {
                for _ in 0..64 {
                    base = base.double();
                }
            }
            let twice = base.double();
            let mut acc = base;
            for (i, entry) in table.iter().enumerate() {
                assert_eq!(to_affine(&acc), *entry, "table {j} entry {i}");
                acc = acc.add(&twice);
            }
        }
    }

    #[test]
    fn prepared_matches_unprepared() {
        let q = to_affine(&G_TABLE[5].to_jacobian().add_affine(&G_TABLE[40]).double());
        let tables = QTables::new(&q);
        let scalars: [[u32; 8]; 5] = [
            [0; 8],
            [1, 0, 0, 0, 0, 0, 0, 0],
            [
                0xfc63_2550,
                0xf3b9_cac2,
                0xa717_9e84,
                0xbce6_faad,
                0xffff_ffff,
                0xffff_ffff,
                0,
                0xffff_ffff,
            ],
            [
                0xffff_ffff,
                0xffff_ffff,
                0,
                0x8000_0000,
                0xffff_ffff,
                0,
                0xdead_beef,
                0x7fff_ffff,
            ],
            [
                0x1234_5678,
                0x9abc_def0,
                0x0fed_cba9,
                0x8765_4321,
                1,
                2,
                3,
                4,
            ],
        ];
        for u1 in &scalars {
            for u2 in &scalars {
                let a = mul_g_plus_q(u1, u2, &q);
                let b = mul_g_plus_q_prepared(u1, u2, &tables);
                assert_eq!(a.is_infinity(), b.is_infinity());
                if !a.is_infinity() {
                    assert_eq!(to_affine(&a), to_affine(&b), "{u1:x?} {u2:x?}");
                }
            }
        }
    }

    #[test]
    fn small_multiples_agree() {
        // u1*G + u2*G for small u1, u2 equals (u1 + u2)*G from the table.
        let g = G_TABLE[0];
        for (u1, u2) in [(1u32, 2u32), (3, 0), (0, 5), (10, 17), (63, 64), (100, 28)] {
            let r = mul_g_plus_q(&[u1, 0, 0, 0, 0, 0, 0, 0], &[u2, 0, 0, 0, 0, 0, 0, 0], &g);
            let k = (u1 + u2) as usize;
            let expected = if k % 2 == 1 {
                G_TABLE[k / 2]
            } else {
                to_affine(&G_TABLE[k / 2 - 1].to_jacobian().add_affine(&g))
            };
            assert_eq!(to_affine(&r), expected, "{u1} {u2}");
        }
    }
}
