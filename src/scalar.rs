//! The float types the CPU backend is generic over (f64: reference, f32: fast path).

use std::fmt::Debug;
use std::ops::{Add, AddAssign, Div, Mul, Sub};

/// A CPU float: f32 or f64, with the GEMM this engine's layers reduce to.
pub trait Scalar:
    Copy
    + Send
    + Sync
    + Debug
    + Default
    + PartialOrd
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + AddAssign
    + 'static
{
    /// Name used in reports ("f32" / "f64").
    const NAME: &'static str;
    /// Converts from f64 (rounding for f32).
    fn from_f64(x: f64) -> Self;
    /// Widens to f64.
    fn to_f64(self) -> f64;
    /// |x|.
    fn abs(self) -> Self;
    /// e^x.
    fn exp(self) -> Self;
    /// sin(x).
    fn sin(self) -> Self;
    /// 1 for x > 0, −1 for x < 0 (and ±0 kept as 0 by callers multiplying by |x| terms).
    fn signum(self) -> Self;
    /// The larger of two values (NaN-ignoring, as `f32::max`).
    fn max(self, other: Self) -> Self;
    /// `C = A·B + beta·C` for row-major contiguous A (m×k), B (k×n), C (m×n), single-threaded.
    fn gemm(m: usize, k: usize, n: usize, a: &[Self], b: &[Self], beta: Self, c: &mut [Self]);
}

impl Scalar for f64 {
    fn abs(self) -> Self {
        f64::abs(self)
    }
    fn exp(self) -> Self {
        f64::exp(self)
    }
    fn sin(self) -> Self {
        f64::sin(self)
    }
    fn signum(self) -> Self {
        f64::signum(self)
    }
    fn max(self, other: Self) -> Self {
        f64::max(self, other)
    }
    const NAME: &'static str = "f64";
    fn from_f64(x: f64) -> Self {
        x
    }
    fn to_f64(self) -> f64 {
        self
    }
    fn gemm(m: usize, k: usize, n: usize, a: &[f64], b: &[f64], beta: f64, c: &mut [f64]) {
        // SAFETY: slice lengths are checked by the caller (`backend::cpu::gemm`) to cover m×k, k×n, m×n.
        unsafe {
            matrixmultiply::dgemm(
                m,
                k,
                n,
                1.0,
                a.as_ptr(),
                k as isize,
                1,
                b.as_ptr(),
                n as isize,
                1,
                beta,
                c.as_mut_ptr(),
                n as isize,
                1,
            )
        }
    }
}

impl Scalar for f32 {
    fn abs(self) -> Self {
        f32::abs(self)
    }
    fn exp(self) -> Self {
        f32::exp(self)
    }
    fn sin(self) -> Self {
        f32::sin(self)
    }
    fn signum(self) -> Self {
        f32::signum(self)
    }
    fn max(self, other: Self) -> Self {
        f32::max(self, other)
    }
    const NAME: &'static str = "f32";
    fn from_f64(x: f64) -> Self {
        x as f32
    }
    fn to_f64(self) -> f64 {
        self as f64
    }
    fn gemm(m: usize, k: usize, n: usize, a: &[f32], b: &[f32], beta: f32, c: &mut [f32]) {
        // SAFETY: slice lengths are checked by the caller (`backend::cpu::gemm`) to cover m×k, k×n, m×n.
        unsafe {
            matrixmultiply::sgemm(
                m,
                k,
                n,
                1.0,
                a.as_ptr(),
                k as isize,
                1,
                b.as_ptr(),
                n as isize,
                1,
                beta,
                c.as_mut_ptr(),
                n as isize,
                1,
            )
        }
    }
}
