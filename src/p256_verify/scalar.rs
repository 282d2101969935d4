//! Integers mod n (the order of G) for verification: only what ECDSA verify needs,
//! u1 = e / s and u2 = r / s (mod n). Both are a binary extended-Euclid division
//! (Guide to Elliptic Curve Cryptography, Algorithm 2.22, started at x1 = numerator
//! instead of 1): no multiplication mod n at all. Variable time: all inputs are public.

use super::field::{add_raw, lt, sub_raw};

/// n, little-endian limbs.
pub(super) const N: [u32; 8] = [
    0xfc63_2551,
    0xf3b9_cac2,
    0xa717_9e84,
    0xbce6_faad,
    0xffff_ffff,
    0xffff_ffff,
    0x0000_0000,
    0xffff_ffff,
];

/// a >> 1, with `top` (0 or 1) shifted in as bit 255.
fn shr1(a: &[u32; 8], top: u32) -> [u32; 8] {
    let mut out = [0u32; 8];
    let mut carry = top;
    for (o, &limb) in out.iter_mut().zip(a.iter()).rev() {
        *o = (limb >> 1) | (carry << 31);
        carry = limb & 1;
    }
    out
}

fn is_even(a: &[u32; 8]) -> bool {
    a.first().is_some_and(|l| l & 1 == 0)
}

fn is_one(a: &[u32; 8]) -> bool {
    *a == [1, 0, 0, 0, 0, 0, 0, 0]
}

/// x / 2 mod n for x < n.
fn half_mod_n(x: &[u32; 8]) -> [u32; 8] {
    if is_even(x) {
        shr1(x, 0)
    } else {
        // (x + n) / 2: x + n < 2^257, the carry is bit 256.
        let (s, carry) = add_raw(x, &N);
        shr1(&s, carry)
    }
}

/// a - b mod n for a, b < n.
fn sub_mod_n(a: &[u32; 8], b: &[u32; 8]) -> [u32; 8] {
    let (d, borrow) = sub_raw(a, b);
    if borrow == 1 {
        add_raw(&d, &N).0
    } else {
        d
    }
}

/// Whether 0 < a < n.
pub(super) fn in_range(a: &[u32; 8]) -> bool {
    *a != [0; 8] && lt(a, &N)
}

/// a mod n for any 256-bit a (a < 2^256 < 2n).
pub(super) fn reduce_once(a: &[u32; 8]) -> [u32; 8] {
    if lt(a, &N) {
        *a
    } else {
        sub_raw(a, &N).0
    }
}

/// num / den mod n, for num < n and 0 < den < n (n is prime, so den is invertible).
pub(super) fn div_mod_n(num: &[u32; 8], den: &[u32; 8]) -> [u32; 8] {
    // Invariants: den * x1 = num * u, den * x2 = num * v (mod n); gcd(u, v) = 1.
    let (mut u, mut v) = (*den, N);
    let (mut x1, mut x2) = (*num, [0u32; 8]);
    while !is_one(&u) && !is_one(&v) {
        // u and v are never both even (their gcd is 1) and neither is 0 here: a zero
        // would need u = v, which a subtraction turns into 0 only when both are 1.
        while is_even(&u) {
            u = shr1(&u, 0);
            x1 = half_mod_n(&x1);
        }
        while is_even(&v) {
            v = shr1(&v, 0);
            x2 = half_mod_n(&x2);
        }
        if lt(&u, &v) {
            v = sub_raw(&v, &u).0;
            x2 = sub_mod_n(&x2, &x1);
        } else {
            u = sub_raw(&u, &v).0;
            x1 = sub_mod_n(&x1, &x2);
        }
    }
    if is_one(&u) {
        x1
    } else {
        x2
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use proptest::prelude::*;

    fn add_mod_n(a: &[u32; 8], b: &[u32; 8]) -> [u32; 8] {
        let (s, carry) = add_raw(a, b);
        if carry == 1 || !lt(&s, &N) {
            sub_raw(&s, &N).0
        } else {
            s
        }
    }

    /// a * b mod n by double-and-add.
    fn mul_slow(a: &[u32; 8], b: &[u32; 8]) -> [u32; 8] {
        let mut acc = [0u32; 8];
        for i in (0..256).rev() {
            acc = add_mod_n(&acc, &acc);
            if (b[i / 32] >> (i % 32)) & 1 == 1 {
                acc = add_mod_n(&acc, a);
            }
        }
        acc
    }

    fn scalar() -> impl Strategy<Value = [u32; 8]> {
        prop_oneof![
            any::<[u32; 8]>().prop_map(|a| reduce_once(&a)),
            (1u32..64).prop_map(|k| [k, 0, 0, 0, 0, 0, 0, 0]),
            (1u32..64).prop_map(|k| sub_raw(&N, &[k, 0, 0, 0, 0, 0, 0, 0]).0),
        ]
    }

    #[test]
    fn division_edges() {
        let one = [1, 0, 0, 0, 0, 0, 0, 0];
        let nm1 = sub_raw(&N, &one).0;
        assert_eq!(div_mod_n(&one, &one), one);
        assert_eq!(div_mod_n(&nm1, &nm1), one);
        assert_eq!(div_mod_n(&one, &nm1), nm1);
        assert_eq!(div_mod_n(&[0; 8], &nm1), [0; 8]);
    }

    proptest! {
        #[test]
        fn division_inverts_multiplication(num in scalar(), den in scalar()) {
            prop_assume!(den != [0; 8]);
            let q = div_mod_n(&num, &den);
            prop_assert!(lt(&q, &N));
            prop_assert_eq!(mul_slow(&q, &den), num);
        }
    }
}
