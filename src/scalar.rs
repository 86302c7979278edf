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
    /// Below this |x|, tanh uses its odd Taylor series instead of 1 − 2/(e^{2|x|} + 1), which
    /// cancels catastrophically near 0 (relative error ε/|x|).
    const TANH_SERIES_BELOW: f64;
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
    /// Cosine.
    fn cos(self) -> Self;
    /// (sin x, cos x) together: libm in f64 (the reference); in f32 one Cody–Waite reduction by
    /// π/2 and two short polynomials, branch-free so loops over slices vectorise (SIREN fits
    /// spend most of their time here). Accurate to a few ulp for |x| < 1e5.
    fn sin_cos(self) -> (Self, Self);
    /// 1 for x > 0, −1 for x < 0 (and ±0 kept as 0 by callers multiplying by |x| terms).
    fn signum(self) -> Self;
    /// The larger of two values (NaN-ignoring, as `f32::max`).
    fn max(self, other: Self) -> Self;
    /// C = A·B + beta·C for strided A (m×k) and B (k×n) views, single-threaded; C is m×n
    /// row-major. Strides are (row, column) in elements, so a transposed operand is a swap of
    /// its strides.
    #[allow(clippy::too_many_arguments)]
    fn gemm(
        m: usize,
        k: usize,
        n: usize,
        a: &[Self],
        sa: (usize, usize),
        b: &[Self],
        sb: (usize, usize),
        beta: Self,
        c: &mut [Self],
    );
}

/// Whether a slice of `len` holds every element of a rows×cols view with strides `s`.
fn covers(len: usize, rows: usize, cols: usize, s: (usize, usize)) -> bool {
    rows == 0 || cols == 0 || (rows - 1) * s.0 + (cols - 1) * s.1 < len
}

/// `Scalar::gemm` through matrixmultiply's `dgemm`/`sgemm` for the element type `$t`.
macro_rules! strided_gemm {
    ($t:ty, $gemm:path) => {
        fn gemm(
            m: usize,
            k: usize,
            n: usize,
            a: &[$t],
            sa: (usize, usize),
            b: &[$t],
            sb: (usize, usize),
            beta: $t,
            c: &mut [$t],
        ) {
            assert!(covers(a.len(), m, k, sa) && covers(b.len(), k, n, sb) && c.len() >= m * n);
            // SAFETY: the assertion above keeps every strided element of A, B and C in bounds.
            unsafe {
                $gemm(
                    m,
                    k,
                    n,
                    1.0,
                    a.as_ptr(),
                    sa.0 as isize,
                    sa.1 as isize,
                    b.as_ptr(),
                    sb.0 as isize,
                    sb.1 as isize,
                    beta,
                    c.as_mut_ptr(),
                    n as isize,
                    1,
                )
            }
        }
    };
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
    fn cos(self) -> Self {
        f64::cos(self)
    }
    fn sin_cos(self) -> (Self, Self) {
        f64::sin_cos(self)
    }
    fn signum(self) -> Self {
        f64::signum(self)
    }
    fn max(self, other: Self) -> Self {
        f64::max(self, other)
    }
    const NAME: &'static str = "f64";
    const TANH_SERIES_BELOW: f64 = 1e-2;
    fn from_f64(x: f64) -> Self {
        x
    }
    fn to_f64(self) -> f64 {
        self
    }
    strided_gemm!(f64, matrixmultiply::dgemm);
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
    fn cos(self) -> Self {
        f32::cos(self)
    }
    fn sin_cos(self) -> (Self, Self) {
        // Round x·2/π to the nearest integer q by the 1.5·2²³ trick (vectorises, unlike round).
        const MAGIC: f32 = 12_582_912.0;
        let q = (self * std::f32::consts::FRAC_2_PI + MAGIC) - MAGIC;
        // π/2 in three parts, the first two exact in few bits, so q·part is exact.
        let r = ((self - q * 1.570_312_5) - q * 4.837_513e-4) - q * 7.549_79e-8;
        let z = r * r;
        // Cephes' minimax polynomials on [−π/4, π/4].
        let s = ((-1.951_529_6e-4 * z + 8.332_161e-3) * z - 1.666_665_5e-1) * z * r + r;
        let c =
            ((2.443_315_7e-5 * z - 1.388_731_6e-3) * z + 4.166_664_6e-2) * z * z - 0.5 * z + 1.0;
        let quadrant = (q as i32) & 3;
        let (s, c) = if quadrant & 1 == 0 { (s, c) } else { (c, s) };
        let sin = if quadrant & 2 == 0 { s } else { -s };
        let cos = if (quadrant + 1) & 2 == 0 { c } else { -c };
        (sin, cos)
    }
    fn signum(self) -> Self {
        f32::signum(self)
    }
    fn max(self, other: Self) -> Self {
        f32::max(self, other)
    }
    const NAME: &'static str = "f32";
    const TANH_SERIES_BELOW: f64 = 0.25;
    fn from_f64(x: f64) -> Self {
        x as f32
    }
    fn to_f64(self) -> f64 {
        self as f64
    }
    strided_gemm!(f32, matrixmultiply::sgemm);
}
