//! Order-preserving integer keys of element values (a foundation, beside `dtype`).
//!
//! Two orders, one map: [`Keyed::key`] is the unsigned key statistics select
//! percentiles by (radix digits; NaN has none, so it is left out), and [`f32_key`] is
//! the signed `i32` key the rank filters compare (a total order: NaNs sort beyond the
//! infinities by their sign, as scipy's rank filters place them). For every non-NaN
//! float32, `f32::key` is `f32_key` with its sign bit flipped, as the tests check.

use crate::dtype::Element;

/// An element type with an order-preserving unsigned key of [`Keyed::BITS`] bits:
/// `a < b` exactly when `key(a) < key(b)` (floats: `-0.0` sorts before `0.0`, which
/// compare equal and so make the same percentile). NaN has no key.
pub(crate) trait Keyed: Element {
    /// Bits in a key.
    const BITS: u32;
    /// The key, `None` for NaN.
    fn key(self) -> Option<u64>;
    /// The value of a key, widened to f64 (exact but for 64-bit integers beyond 2^53, which round as
    /// NumPy rounds them).
    fn value(key: u64) -> f64;
    /// `b - a` as numpy's percentile interpolation computes it: in the element type
    /// for floats (float32 rounds), exactly for integers.
    fn diff(a: f64, b: f64) -> f64;
}

macro_rules! unsigned {
    ($t:ty, $bits:expr) => {
        impl Keyed for $t {
            const BITS: u32 = $bits;
            #[inline(always)]
            fn key(self) -> Option<u64> {
                Some(self as u64)
            }
            fn value(key: u64) -> f64 {
                key as f64
            }
            fn diff(a: f64, b: f64) -> f64 {
                b - a
            }
        }
    };
}

macro_rules! signed {
    ($t:ty, $u:ty, $bits:expr) => {
        impl Keyed for $t {
            const BITS: u32 = $bits;
            #[inline(always)]
            fn key(self) -> Option<u64> {
                Some(((self as $u) ^ (1 << ($bits - 1))) as u64)
            }
            fn value(key: u64) -> f64 {
                ((key as $u) ^ (1 << ($bits - 1))) as $t as f64
            }
            fn diff(a: f64, b: f64) -> f64 {
                b - a
            }
        }
    };
}

unsigned!(u8, 8);
unsigned!(u16, 16);
unsigned!(u32, 32);
unsigned!(u64, 64);
signed!(i8, u8, 8);
signed!(i16, u16, 16);
signed!(i32, u32, 32);
signed!(i64, u64, 64);

/// A float32's bits as an order-preserving `i32` key, and a key back to the bits (the
/// map is its own inverse): negative floats get their magnitude bits flipped. NaNs get
/// keys too, beyond the infinities by their sign bit.
#[inline(always)]
pub(crate) fn f32_key(bits: u32) -> i32 {
    let b = bits as i32;
    b ^ (((b >> 31) as u32) >> 1) as i32
}

impl Keyed for f32 {
    const BITS: u32 = 32;
    #[inline(always)]
    fn key(self) -> Option<u64> {
        if self.is_nan() {
            return None;
        }
        Some((f32_key(self.to_bits()) as u32 ^ 1 << 31) as u64)
    }
    fn value(key: u64) -> f64 {
        let k = key as u32;
        f32::from_bits(if k >> 31 == 1 { k & !(1 << 31) } else { !k }) as f64
    }
    fn diff(a: f64, b: f64) -> f64 {
        (b as f32 - a as f32) as f64
    }
}

impl Keyed for f64 {
    const BITS: u32 = 64;
    #[inline(always)]
    fn key(self) -> Option<u64> {
        if self.is_nan() {
            return None;
        }
        let b = self.to_bits();
        Some(if b >> 63 == 1 { !b } else { b | 1 << 63 })
    }
    fn value(key: u64) -> f64 {
        f64::from_bits(if key >> 63 == 1 {
            key & !(1 << 63)
        } else {
            !key
        })
    }
    fn diff(a: f64, b: f64) -> f64 {
        b - a
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check<T: Keyed>(sorted: &[T]) {
        for w in sorted.windows(2) {
            assert!(w[0].key().unwrap() < w[1].key().unwrap(), "{w:?}");
        }
        for &x in sorted {
            assert_eq!(T::value(x.key().unwrap()), x.to_f64());
        }
    }

    #[test]
    fn keys_keep_the_order_and_give_the_value_back() {
        check(&[0u8, 1, 200, 255]);
        check(&[i8::MIN, -1, 0, 1, i8::MAX]);
        check(&[i16::MIN, -300, 0, 7, i16::MAX]);
        check(&[0u32, 5, u32::MAX]);
        check(&[i32::MIN, -1, 0, i32::MAX]);
        check(&[
            f32::NEG_INFINITY,
            -3.5,
            -0.0,
            0.0,
            1e-40,
            2.0,
            f32::INFINITY,
        ]);
        check(&[f64::NEG_INFINITY, -1e300, -0.0, 0.0, 5e-324, f64::INFINITY]);
        assert_eq!(f32::NAN.key(), None);
    }

    #[test]
    fn the_rank_key_is_a_total_order_and_its_own_inverse() {
        let sorted = [
            -f32::NAN,
            f32::NEG_INFINITY,
            -3.5,
            -1e-40,
            -0.0,
            0.0,
            1e-40,
            2.0,
            f32::INFINITY,
            f32::NAN,
        ];
        for w in sorted.windows(2) {
            assert!(f32_key(w[0].to_bits()) < f32_key(w[1].to_bits()), "{w:?}");
        }
        for x in sorted {
            let k = f32_key(x.to_bits());
            assert_eq!(f32_key(k as u32), x.to_bits() as i32);
            if !x.is_nan() {
                assert_eq!(x.key(), Some((k as u32 ^ 1 << 31) as u64));
            }
        }
    }
}
