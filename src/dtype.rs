//! Element types, the casting rule, and arrays of any supported element type.
//! (Layer: the foundations; see the layer map in `docs/ARCHITECTURE.md`.)

use std::fmt;
use std::str::FromStr;

use ndarray::{ArrayD, ArrayViewD};
use serde::{Deserialize, Serialize};

/// The element types haloflow reads and writes (numpy names in text form).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DType {
    /// `uint8`
    #[serde(rename = "uint8")]
    U8,
    /// `uint16`
    #[serde(rename = "uint16")]
    U16,
    /// `uint32`
    #[serde(rename = "uint32")]
    U32,
    /// `uint64`
    #[serde(rename = "uint64")]
    U64,
    /// `int8`
    #[serde(rename = "int8")]
    I8,
    /// `int16`
    #[serde(rename = "int16")]
    I16,
    /// `int32`
    #[serde(rename = "int32")]
    I32,
    /// `int64`
    #[serde(rename = "int64")]
    I64,
    /// `float32`
    #[serde(rename = "float32")]
    F32,
    /// `float64`
    #[serde(rename = "float64")]
    F64,
}

impl DType {
    /// All supported types, in a stable order.
    pub const ALL: [DType; 10] = [
        DType::U8,
        DType::U16,
        DType::U32,
        DType::U64,
        DType::I8,
        DType::I16,
        DType::I32,
        DType::I64,
        DType::F32,
        DType::F64,
    ];

    /// The numpy name of the type (`"uint16"`, `"float32"`, ...).
    pub fn name(self) -> &'static str {
        match self {
            DType::U8 => "uint8",
            DType::U16 => "uint16",
            DType::U32 => "uint32",
            DType::U64 => "uint64",
            DType::I8 => "int8",
            DType::I16 => "int16",
            DType::I32 => "int32",
            DType::I64 => "int64",
            DType::F32 => "float32",
            DType::F64 => "float64",
        }
    }

    /// Size of one element in bytes.
    pub fn size(self) -> usize {
        match self {
            DType::U8 | DType::I8 => 1,
            DType::U16 | DType::I16 => 2,
            DType::U32 | DType::I32 | DType::F32 => 4,
            DType::U64 | DType::I64 | DType::F64 => 8,
        }
    }

    /// Whether the type is a floating-point type.
    pub fn is_float(self) -> bool {
        matches!(self, DType::F32 | DType::F64)
    }

    /// The lowest and highest values of an integer type (none for a float type).
    pub fn integer_range(self) -> Option<(i128, i128)> {
        Some(match self {
            DType::U8 => (0, u8::MAX.into()),
            DType::U16 => (0, u16::MAX.into()),
            DType::U32 => (0, u32::MAX.into()),
            DType::U64 => (0, u64::MAX.into()),
            DType::I8 => (i8::MIN.into(), i8::MAX.into()),
            DType::I16 => (i16::MIN.into(), i16::MAX.into()),
            DType::I32 => (i32::MIN.into(), i32::MAX.into()),
            DType::I64 => (i64::MIN.into(), i64::MAX.into()),
            DType::F32 | DType::F64 => return None,
        })
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An element type problem, with [`Error`](crate::Error)'s messages; it converts into
/// the matching `Error` variant (so `?` works in functions returning
/// [`Result`](crate::Result)).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DTypeError {
    /// A type name that haloflow does not support.
    #[error(
        "unsupported data type '{0}' (supported: uint8 uint16 uint32 uint64 int8 int16 int32 int64 float32 float64)"
    )]
    Unsupported(String),
    /// An array holds another element type than the one asked for.
    #[error("expected {expected} data, found {found}")]
    Mismatch {
        /// The type asked for.
        expected: DType,
        /// The type found.
        found: DType,
    },
}

impl FromStr for DType {
    type Err = DTypeError;

    fn from_str(s: &str) -> Result<Self, DTypeError> {
        let lower = s.trim().to_ascii_lowercase();
        let found = match lower.as_str() {
            "u8" => Some(DType::U8),
            "u16" => Some(DType::U16),
            "u32" => Some(DType::U32),
            "u64" => Some(DType::U64),
            "i8" => Some(DType::I8),
            "i16" => Some(DType::I16),
            "i32" => Some(DType::I32),
            "i64" => Some(DType::I64),
            "f32" => Some(DType::F32),
            "f64" => Some(DType::F64),
            other => DType::ALL.into_iter().find(|d| d.name() == other),
        };
        found.ok_or_else(|| DTypeError::Unsupported(s.to_string()))
    }
}

mod sealed {
    pub trait Sealed {}
}

/// A supported element type. Implemented for `u8 u16 u32 u64 i8 i16 i32 i64 f32 f64`; sealed.
pub trait Element:
    sealed::Sealed + Copy + Default + PartialOrd + Send + Sync + fmt::Debug + 'static
{
    /// The [`DType`] tag of this type.
    const DTYPE: DType;
    /// Widening to `f64`: exact, but for 64-bit integers beyond 2^53, which round to
    /// nearest as NumPy converts them.
    fn to_f64(self) -> f64;
    /// Conversion to `f32` (rounded for `u32`/`i32` beyond 2^24 and for `f64`).
    fn to_f32(self) -> f32;
    /// The haloflow cast from `f64`: integers round to nearest, ties to even, and
    /// saturate to the type's range (NaN becomes 0); floats convert as usual.
    fn from_f64(v: f64) -> Self;
    /// The haloflow cast from `f32` (same rule as [`Element::from_f64`]).
    fn from_f32(v: f32) -> Self;
    /// An integer count or label as this type: exact for integer types it fits in
    /// (wrapping beyond them, as `as` does), rounded to nearest for floats.
    fn from_u64(v: u64) -> Self;
    /// The value as an integer: exact for integer types, truncated toward zero (and
    /// saturated, NaN to 0) for floats.
    fn to_i128(self) -> i128;
    /// An integer as this type: saturated to an integer type's range, rounded to
    /// nearest for floats.
    fn from_i128(v: i128) -> Self;
    /// The mean of a window: integers in f64 (exact for any realistic window), rounded
    /// half to even; floats summed in their own precision, then divided.
    fn mean(values: &[Self]) -> Self;
    /// `Σ x·w / denominator` for integer weights: exact for integers (then rounded half
    /// to even), in the type's own precision for floats.
    fn weighted_sum(terms: impl Iterator<Item = (Self, i64)>, denominator: i64) -> Self;
    /// Wraps an owned array of this type.
    fn wrap(a: ArrayD<Self>) -> ArrayAny;
    /// Wraps a view of this type.
    fn wrap_view(a: ArrayViewD<'_, Self>) -> ArrayViewAny<'_>;
    /// Takes an owned array of this type out of an [`ArrayAny`], if it holds one.
    fn unwrap(a: ArrayAny) -> Option<ArrayD<Self>>;
}

/// `Element::from_u64`, `from_i128` and `to_i128`: Rust's `as` (saturating from
/// `i128`), for every type.
macro_rules! as_casts {
    ($t:ty) => {
        #[inline(always)]
        fn from_u64(v: u64) -> Self {
            v as $t
        }
        #[inline(always)]
        fn from_i128(v: i128) -> Self {
            // Float bounds saturate to i128's, so floats just round.
            v.clamp(<$t>::MIN as i128, <$t>::MAX as i128) as $t
        }
        #[inline(always)]
        fn to_i128(self) -> i128 {
            self as i128
        }
    };
}

macro_rules! int_element {
    ($t:ty, $d:ident) => {
        impl sealed::Sealed for $t {}
        impl Element for $t {
            const DTYPE: DType = DType::$d;
            #[inline(always)]
            fn to_f64(self) -> f64 {
                self as f64
            }
            #[inline(always)]
            fn to_f32(self) -> f32 {
                self as f32
            }
            #[inline(always)]
            fn from_f64(v: f64) -> Self {
                // `as` saturates and maps NaN to 0.
                v.round_ties_even() as $t
            }
            #[inline(always)]
            fn from_f32(v: f32) -> Self {
                v.round_ties_even() as $t
            }
            as_casts!($t);
            fn mean(values: &[Self]) -> Self {
                let sum: f64 = values.iter().map(|&x| x as f64).sum();
                Self::from_f64(sum / values.len() as f64)
            }
            fn weighted_sum(terms: impl Iterator<Item = (Self, i64)>, denominator: i64) -> Self {
                let num: i128 = terms.map(|(x, w)| x as i128 * w as i128).sum();
                let q = div_round_half_even(num, denominator as i128);
                q.clamp(<$t>::MIN as i128, <$t>::MAX as i128) as $t
            }
            fn wrap(a: ArrayD<Self>) -> ArrayAny {
                ArrayAny::$d(a)
            }
            fn wrap_view(a: ArrayViewD<'_, Self>) -> ArrayViewAny<'_> {
                ArrayViewAny::$d(a)
            }
            fn unwrap(a: ArrayAny) -> Option<ArrayD<Self>> {
                match a {
                    ArrayAny::$d(x) => Some(x),
                    _ => None,
                }
            }
        }
    };
}

macro_rules! float_element {
    ($t:ty, $d:ident) => {
        impl sealed::Sealed for $t {}
        impl Element for $t {
            const DTYPE: DType = DType::$d;
            #[inline(always)]
            fn to_f64(self) -> f64 {
                self as f64
            }
            #[inline(always)]
            fn to_f32(self) -> f32 {
                self as f32
            }
            #[inline(always)]
            fn from_f64(v: f64) -> Self {
                v as $t
            }
            #[inline(always)]
            fn from_f32(v: f32) -> Self {
                v as $t
            }
            as_casts!($t);
            fn mean(values: &[Self]) -> Self {
                let mut sum: $t = 0.0;
                for &x in values {
                    sum += x;
                }
                sum / values.len() as $t
            }
            fn weighted_sum(terms: impl Iterator<Item = (Self, i64)>, denominator: i64) -> Self {
                let mut sum: $t = 0.0;
                for (x, w) in terms {
                    sum += x * (w as $t / denominator as $t);
                }
                sum
            }
            fn wrap(a: ArrayD<Self>) -> ArrayAny {
                ArrayAny::$d(a)
            }
            fn wrap_view(a: ArrayViewD<'_, Self>) -> ArrayViewAny<'_> {
                ArrayViewAny::$d(a)
            }
            fn unwrap(a: ArrayAny) -> Option<ArrayD<Self>> {
                match a {
                    ArrayAny::$d(x) => Some(x),
                    _ => None,
                }
            }
        }
    };
}

/// `num / den` rounded to nearest, ties to even (`den > 0`).
fn div_round_half_even(num: i128, den: i128) -> i128 {
    let (q, r) = (num.div_euclid(den), num.rem_euclid(den));
    match (2 * r).cmp(&den) {
        std::cmp::Ordering::Less => q,
        std::cmp::Ordering::Greater => q + 1,
        std::cmp::Ordering::Equal => q + (q & 1),
    }
}

int_element!(u8, U8);
int_element!(u16, U16);
int_element!(u32, U32);
int_element!(i8, I8);
int_element!(i16, I16);
int_element!(i32, I32);
int_element!(u64, U64);
int_element!(i64, I64);
float_element!(f32, F32);
float_element!(f64, F64);

/// Calls `$body` with `$T` bound to the Rust type of the [`DType`] `$dtype`.
macro_rules! with_dtype {
    ($dtype:expr, $T:ident => $body:expr) => {
        match $dtype {
            $crate::DType::U8 => {
                type $T = u8;
                $body
            }
            $crate::DType::U16 => {
                type $T = u16;
                $body
            }
            $crate::DType::U32 => {
                type $T = u32;
                $body
            }
            $crate::DType::U64 => {
                type $T = u64;
                $body
            }
            $crate::DType::I8 => {
                type $T = i8;
                $body
            }
            $crate::DType::I16 => {
                type $T = i16;
                $body
            }
            $crate::DType::I32 => {
                type $T = i32;
                $body
            }
            $crate::DType::I64 => {
                type $T = i64;
                $body
            }
            $crate::DType::F32 => {
                type $T = f32;
                $body
            }
            $crate::DType::F64 => {
                type $T = f64;
                $body
            }
        }
    };
}
pub(crate) use with_dtype;

/// Declares an enum with one variant per [`DType`], each holding `$inner<T>`.
macro_rules! any_enum {
    ($(#[$m:meta])* $name:ident $(<$lt:lifetime>)?, $inner:ident) => {
        $(#[$m])*
        pub enum $name $(<$lt>)? {
            /// `uint8` data.
            U8($inner<$($lt,)? u8>),
            /// `uint16` data.
            U16($inner<$($lt,)? u16>),
            /// `uint32` data.
            U32($inner<$($lt,)? u32>),
            /// `uint64` data.
            U64($inner<$($lt,)? u64>),
            /// `int8` data.
            I8($inner<$($lt,)? i8>),
            /// `int16` data.
            I16($inner<$($lt,)? i16>),
            /// `int32` data.
            I32($inner<$($lt,)? i32>),
            /// `int64` data.
            I64($inner<$($lt,)? i64>),
            /// `float32` data.
            F32($inner<$($lt,)? f32>),
            /// `float64` data.
            F64($inner<$($lt,)? f64>),
        }
    };
}
pub(crate) use any_enum;

any_enum!(
    /// An owned N-D array of any supported element type.
    #[derive(Clone, Debug, PartialEq)]
    ArrayAny,
    ArrayD
);

any_enum!(
    /// A borrowed N-D array of any supported element type.
    #[derive(Clone, Debug)]
    ArrayViewAny<'a>,
    ArrayViewD
);

/// Applies `$body` to the array inside an any-typed enum, binding it to `$a`.
macro_rules! match_any {
    ($value:expr, $enum:ident, $a:ident => $body:expr) => {
        match $value {
            $enum::U8($a) => $body,
            $enum::U16($a) => $body,
            $enum::U32($a) => $body,
            $enum::U64($a) => $body,
            $enum::I8($a) => $body,
            $enum::I16($a) => $body,
            $enum::I32($a) => $body,
            $enum::I64($a) => $body,
            $enum::F32($a) => $body,
            $enum::F64($a) => $body,
        }
    };
}
pub(crate) use match_any;

impl ArrayAny {
    /// The element type.
    pub fn dtype(&self) -> DType {
        match_any!(self, ArrayAny, a => element_dtype(a))
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        match_any!(self, ArrayAny, a => a.shape())
    }

    /// A borrowed view of the array.
    pub fn view(&self) -> ArrayViewAny<'_> {
        match_any!(self, ArrayAny, a => Element::wrap_view(a.view()))
    }

    /// Takes the array out as element type `T`; an error names both types if it holds another.
    pub fn into_array<T: Element>(self) -> Result<ArrayD<T>, DTypeError> {
        let found = self.dtype();
        T::unwrap(self).ok_or(DTypeError::Mismatch {
            expected: T::DTYPE,
            found,
        })
    }
}

impl ArrayViewAny<'_> {
    /// The element type.
    pub fn dtype(&self) -> DType {
        match_any!(self, ArrayViewAny, a => element_dtype(a))
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        match_any!(self, ArrayViewAny, a => a.shape())
    }
}

fn element_dtype<T: Element, S: ndarray::Data<Elem = T>>(
    _: &ndarray::ArrayBase<S, ndarray::IxDyn>,
) -> DType {
    T::DTYPE
}

impl<T: Element> From<ArrayD<T>> for ArrayAny {
    fn from(a: ArrayD<T>) -> Self {
        T::wrap(a)
    }
}

impl<'a, T: Element> From<ArrayViewD<'a, T>> for ArrayViewAny<'a> {
    fn from(a: ArrayViewD<'a, T>) -> Self {
        T::wrap_view(a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cast_rounds_half_to_even_and_saturates() {
        assert_eq!(u8::from_f64(2.5), 2);
        assert_eq!(u8::from_f64(3.5), 4);
        assert_eq!(u8::from_f64(-3.0), 0);
        assert_eq!(u8::from_f64(300.0), 255);
        assert_eq!(i8::from_f64(-128.5), -128);
        assert_eq!(i16::from_f64(-2.5), -2);
        assert_eq!(u16::from_f64(f64::NAN), 0);
        assert_eq!(i32::from_f32(1e20), i32::MAX);
    }

    #[test]
    fn integer_means_and_weighted_sums_round_half_to_even() {
        assert_eq!(u8::mean(&[1, 2]), 2);
        assert_eq!(u8::mean(&[2, 3]), 2);
        assert_eq!(i16::mean(&[-1, -2]), -2);
        assert_eq!(i16::mean(&[-2, -3]), -2);
        assert_eq!(u16::weighted_sum([(1, 3), (2, 1)].into_iter(), 4), 1);
        assert_eq!(u16::weighted_sum([(0, 2), (3, 2)].into_iter(), 4), 2);
        assert_eq!(f32::weighted_sum([(1.0, 3), (2.0, 1)].into_iter(), 4), 1.25);
    }

    #[test]
    fn dtype_names_round_trip() {
        for d in DType::ALL {
            assert_eq!(d.name().parse::<DType>().unwrap(), d);
        }
        assert_eq!("f32".parse::<DType>().unwrap(), DType::F32);
        assert!("complex64".parse::<DType>().is_err());
    }
}
