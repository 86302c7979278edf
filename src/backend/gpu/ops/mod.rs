//! One module per GPU op, named after its shader: the uniform struct (named like its WGSL twin),
//! the shader source and the encode function that fills the uniform and sizes the grid.

use crate::error::{Error, Result};
use crate::plan::{AdamOp, BufId, Op, Plan};

use super::kernels::Kernel;
use super::steps::Step;

/// Declares a `#[repr(C)]` uniform struct and its [`UniformLayout`] from one field list: the
/// WGSL struct is generated from it and prepended to the shader ([`Shader::source`]), so the
/// two are declared once and cannot drift (`tests/uniforms.rs` checks WGSL's layout rules give
/// the same offsets). A member's WGSL type is its Rust type's name, or the literal after `=>`.
macro_rules! uniform {
    ($(#[$doc:meta])* $name:ident {
        $($(#[$fdoc:meta])* $field:ident: $ty:ty $(=> $wgsl:literal)?),* $(,)?
    }) => {
        $(#[$doc])*
        #[repr(C)]
        #[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
        pub struct $name {
            $($(#[$fdoc])* pub $field: $ty),*
        }

        impl $name {
            /// The layout the WGSL struct of the same name is generated from.
            pub const LAYOUT: super::UniformLayout = super::UniformLayout {
                name: stringify!($name),
                size: std::mem::size_of::<$name>(),
                fields: &[$(super::Field {
                    name: stringify!($field),
                    offset: std::mem::offset_of!($name, $field),
                    wgsl: wgsl_type!($ty $(, $wgsl)?),
                }),*],
            };
        }
    };
}

/// The WGSL type of a uniform member: the Rust type's name (`u32`, `f32`) or the one given.
macro_rules! wgsl_type {
    ($ty:ty) => {
        stringify!($ty)
    };
    ($ty:ty, $wgsl:literal) => {
        $wgsl
    };
}

/// A [`Shader`] for `shaders/<name>.wgsl`, whose entry point is also `name`.
macro_rules! shader {
    ($name:literal, $uniform:ty) => {
        super::Shader {
            name: $name,
            body: include_str!(concat!("../../../../shaders/", $name, ".wgsl")),
            uniform: <$uniform>::LAYOUT,
            prelude: "",
            variants: &[&[]],
        }
    };
    // With preludes of shared functions: `shaders/math.wgsl`, `shaders/workgroup.wgsl`.
    ($name:literal, $uniform:ty, $($prelude:ident),+) => {
        super::Shader {
            prelude: concat!($(include_str!(concat!(
                "../../../../shaders/",
                stringify!($prelude),
                ".wgsl"
            ))),+),
            ..shader!($name, $uniform)
        }
    };
}

pub mod activation;
pub mod activation_grad;
pub mod adam;
pub mod gemm;
pub mod loss;
pub mod mask;
pub mod pool;
pub mod pool_grad;
pub mod reduce;
pub mod siren;
pub mod siren_grad;
pub mod stat;
pub mod sum_squares;

/// A WGSL file of `shaders/`: its name (also its entry point), text and uniform layout.
#[derive(Clone, Copy, Debug)]
pub struct Shader {
    /// File stem and entry point.
    pub name: &'static str,
    /// The file's text: everything but the uniform struct.
    pub body: &'static str,
    /// Layout of the uniform struct, declared in Rust.
    pub uniform: UniformLayout,
    /// Shared WGSL placed between the uniform struct and the file (`shaders/math.wgsl`,
    /// `shaders/workgroup.wgsl` or both), or empty.
    pub prelude: &'static str,
    /// One pipeline per entry, compiled with these values of the file's `override` constants
    /// (`Encoded::variant` picks one); a single empty set for shaders without any.
    pub variants: &'static [&'static [(&'static str, f64)]],
}

impl Shader {
    /// The complete WGSL module: the generated uniform struct, the prelude, then the file.
    pub fn source(&self) -> String {
        format!("{}\n{}\n{}", self.uniform.wgsl(), self.prelude, self.body)
    }
}

/// A uniform struct's memory layout: name, size in bytes and members in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UniformLayout {
    /// Struct name, the same in Rust and WGSL.
    pub name: &'static str,
    /// `size_of` the Rust struct.
    pub size: usize,
    /// Each member, in declaration order.
    pub fields: &'static [Field],
}

/// One member of a uniform struct.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field {
    /// Member name, the same in Rust and WGSL.
    pub name: &'static str,
    /// Byte offset in the Rust struct.
    pub offset: usize,
    /// WGSL type.
    pub wgsl: &'static str,
}

impl UniformLayout {
    /// The WGSL declaration of this struct.
    pub fn wgsl(&self) -> String {
        let members: String = self
            .fields
            .iter()
            .map(|f| format!("    {}: {},\n", f.name, f.wgsl))
            .collect();
        format!(
            "// Generated from the Rust declaration (src/backend/gpu/ops/).\nstruct {} {{\n{members}}}\n",
            self.name
        )
    }
}

/// One dispatch, ready to bind: its kernel and pipeline variant, storage buffers in binding
/// order (the uniform binds after them), the uniform's bytes and the workgroup grid (z > 1:
/// the chunks of a split GEMM or sum).
pub struct Encoded {
    pub kernel: Kernel,
    pub variant: usize,
    pub bindings: Vec<BufId>,
    pub uniform: Vec<u8>,
    pub groups: [u32; 3],
}

impl Encoded {
    fn new<U: bytemuck::Pod>(
        kernel: Kernel,
        bindings: Vec<BufId>,
        uniform: &U,
        groups: (u32, u32),
    ) -> Self {
        Encoded {
            kernel,
            variant: 0,
            bindings,
            uniform: bytemuck::bytes_of(uniform).to_vec(),
            groups: [groups.0, groups.1, 1],
        }
    }
}

/// Encodes one step of `plan`; `spare` is bound where a kernel's read-write binding goes unused
/// (a buffer the dispatch also binds read-only cannot stand in: wgpu refuses that).
pub fn encode(step: &Step, plan: &Plan, spare: BufId) -> Result<Encoded> {
    match step {
        Step::GemmSplit {
            g,
            split,
            variant,
            out,
        } => gemm::encode_split(g, split, *variant, *out, spare),
        Step::Then { op, then } => {
            let then = Some(&plan.ops[*then]);
            match &plan.ops[*op] {
                Op::Gemm(g) => gemm::encode(g, then, spare),
                Op::PoolGrad(g) => pool_grad::encode(g, spare, None, then),
                _ => Err(Error::Spec(format!("op {op} takes no epilogue"))),
            }
        }
        Step::ReduceSplit { r, split } => reduce::encode(r, split),
        Step::SirenGrad { g, phase } => siren_grad::encode(g, *phase),
        Step::AdamGroup { op, len, arenas } => match &plan.ops[*op] {
            Op::Adam(a) => {
                let [param, grad, m, v] = *arenas;
                adam::encode(&AdamOp {
                    param,
                    grad,
                    m,
                    v,
                    len: *len,
                    ..a.clone()
                })
            }
            _ => Err(Error::Spec(format!("op {op} is not an Adam op"))),
        },
        Step::PoolGrad { op, rows, then } => match &plan.ops[*op] {
            Op::PoolGrad(g) => pool_grad::encode(g, spare, Some(*rows), then.map(|t| &plan.ops[t])),
            _ => Err(Error::Spec(format!("op {op} is not a pool gradient"))),
        },
        Step::Sum {
            op,
            phase,
            partials,
        } => match &plan.ops[*op] {
            Op::Loss(l) => loss::encode(l, *phase, *partials),
            Op::SumSquares(q) => sum_squares::encode(q, *phase, *partials),
            _ => Err(Error::Spec(format!("op {op} is not a two-phase sum"))),
        },
        Step::Op(i) => match &plan.ops[*i] {
            Op::Gemm(g) => gemm::encode(g, None, spare),
            Op::Activation(a) => activation::encode(a),
            Op::ActivationGrad(a) => activation_grad::encode(a),
            Op::Pool(q) => pool::encode(q),
            Op::PoolGrad(g) => pool_grad::encode(g, spare, None, None),
            Op::Adam(a) => adam::encode(a),
            Op::Stat(q) => stat::encode(q),
            Op::Siren(s) => siren::encode(s),
            Op::Mask(m) => mask::encode(m),
            Op::Reduce(_) | Op::SirenGrad(_) | Op::Loss(_) | Op::SumSquares(_) => Err(Error::Spec(
                format!("op {i} reached dispatch without its steps"),
            )),
        },
    }
}

/// The elementwise op folded into a GEMM's or pool gradient's dispatch (`epilogue::fold`), as
/// the host kernel's epilogue takes it.
pub struct Epilogue {
    /// The pipeline constant EPILOGUE: 0 none, 1 activation, 2 activation gradient.
    pub kind: u32,
    /// `Activation::code` of its function.
    pub act: u32,
    /// The gradient adds to its output.
    pub accumulate: bool,
    /// Bound as `e_out`: its output, or `spare`.
    pub out: BufId,
    /// Bound as `e_in`: the activation gradient's forward input, if any.
    pub input: Option<BufId>,
}

impl Epilogue {
    /// The epilogue of `then` (none when None), with `spare` as the unused output; `host`
    /// names the kernel for the error an op it cannot take gives.
    fn of(then: Option<&Op>, spare: BufId, host: &str) -> Result<Self> {
        let none = Epilogue {
            kind: 0,
            act: 0,
            accumulate: false,
            out: spare,
            input: None,
        };
        Ok(match then {
            None => none,
            Some(Op::Activation(a)) => Epilogue {
                kind: 1,
                act: a.act.code(),
                out: a.y,
                ..none
            },
            Some(Op::ActivationGrad(a)) => Epilogue {
                kind: 2,
                act: a.act.code(),
                accumulate: a.accumulate,
                out: a.dx,
                input: Some(a.x),
            },
            Some(op) => {
                return Err(Error::Spec(format!(
                    "a {} cannot follow a {host} in its dispatch",
                    op.family()
                )))
            }
        })
    }
}

/// Threads per workgroup of the one-dimensional kernels.
const WG: u32 = 256;
/// Most workgroups along one grid axis.
const MAX_GROUPS: u32 = 65_535;

/// Most workgroups a whole-buffer sum (loss, sum of squares) spreads over: one workgroup of
/// `WG` threads then combines their partial sums, four apiece.
const MAX_PARTIALS: usize = 1024;

/// The workgroups of a whole-buffer sum over `items` items (phase 0 of `loss.wgsl` and
/// `sum_squares.wgsl`) and the run of items each takes: a multiple of `WG`, so each thread
/// takes span/WG items. Depends on `items` only, so results are the same bits on every device.
pub fn sum_groups(items: usize) -> (usize, usize) {
    let per_thread = items.div_ceil(WG as usize * MAX_PARTIALS).max(1);
    let span = per_thread * WG as usize;
    (items.div_ceil(span).max(1), span)
}

/// Workgroups for `threads` one-dimensional invocations, split over y past the x limit; returns
/// the grid and the thread count of one grid row.
fn grid(threads: usize) -> Result<((u32, u32), u32)> {
    let groups = threads.div_ceil(WG as usize).max(1);
    let x = groups.min(MAX_GROUPS as usize);
    let y = groups.div_ceil(x);
    if y > MAX_GROUPS as usize {
        return Err(Error::Device(format!(
            "{threads} threads exceed the dispatch limits"
        )));
    }
    Ok(((x as u32, y as u32), x as u32 * WG))
}

fn u32_of(v: usize, what: &str) -> Result<u32> {
    u32::try_from(v).map_err(|_| Error::Device(format!("{what} = {v} does not fit in u32")))
}
