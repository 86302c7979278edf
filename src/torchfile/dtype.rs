//! Element types of stored tensors and their little-endian decoding.

/// The element type of a stored tensor (torch storage classes, safetensors dtypes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dtype {
    /// float64 (`DoubleStorage`).
    F64,
    /// float32 (`FloatStorage`).
    F32,
    /// IEEE half (`HalfStorage`).
    F16,
    /// bfloat16 (`BFloat16Storage`).
    BF16,
    /// int64 (`LongStorage`; batch-norm counters); values beyond 2^53 round.
    I64,
    /// int32 (`IntStorage`).
    I32,
    /// int16 (`ShortStorage`).
    I16,
    /// int8 (`CharStorage`).
    I8,
    /// uint8 (`ByteStorage`, `UntypedStorage`).
    U8,
    /// bool (`BoolStorage`).
    Bool,
}

impl Dtype {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Dtype::F64 | Dtype::I64 => 8,
            Dtype::F32 | Dtype::I32 => 4,
            Dtype::F16 | Dtype::BF16 | Dtype::I16 => 2,
            Dtype::I8 | Dtype::U8 | Dtype::Bool => 1,
        }
    }

    /// The torch name (`float32`, ...), for messages.
    pub fn name(self) -> &'static str {
        match self {
            Dtype::F64 => "float64",
            Dtype::F32 => "float32",
            Dtype::F16 => "float16",
            Dtype::BF16 => "bfloat16",
            Dtype::I64 => "int64",
            Dtype::I32 => "int32",
            Dtype::I16 => "int16",
            Dtype::I8 => "int8",
            Dtype::U8 => "uint8",
            Dtype::Bool => "bool",
        }
    }

    /// True for the floating-point types (the ones a network's weights may have).
    pub fn is_float(self) -> bool {
        matches!(self, Dtype::F64 | Dtype::F32 | Dtype::F16 | Dtype::BF16)
    }

    /// The type of a `torch.<Class>` storage global, as `torch.save` names it.
    pub(crate) fn from_storage_class(class: &str) -> Option<Dtype> {
        Some(match class {
            "DoubleStorage" => Dtype::F64,
            "FloatStorage" => Dtype::F32,
            "HalfStorage" => Dtype::F16,
            "BFloat16Storage" => Dtype::BF16,
            "LongStorage" => Dtype::I64,
            "IntStorage" => Dtype::I32,
            "ShortStorage" => Dtype::I16,
            "CharStorage" => Dtype::I8,
            "ByteStorage" | "UntypedStorage" => Dtype::U8,
            "BoolStorage" => Dtype::Bool,
            _ => return None,
        })
    }

    /// The type of a safetensors tensor, when it is one of ours.
    pub(crate) fn from_safetensors(d: safetensors::Dtype) -> Option<Dtype> {
        use safetensors::Dtype as S;
        Some(match d {
            S::F64 => Dtype::F64,
            S::F32 => Dtype::F32,
            S::F16 => Dtype::F16,
            S::BF16 => Dtype::BF16,
            S::I64 => Dtype::I64,
            S::I32 => Dtype::I32,
            S::I16 => Dtype::I16,
            S::I8 => Dtype::I8,
            S::U8 => Dtype::U8,
            S::BOOL => Dtype::Bool,
            _ => return None,
        })
    }

    /// Decodes one little-endian element (`bytes.len() == self.size()`); float types convert
    /// to f64 exactly.
    pub(crate) fn decode(self, bytes: &[u8]) -> f64 {
        let mut b = [0u8; 8];
        let n = self.size().min(bytes.len());
        b[..n].copy_from_slice(&bytes[..n]);
        let [b0, b1, b2, b3, ..] = b;
        match self {
            Dtype::F64 => f64::from_le_bytes(b),
            Dtype::F32 => f32::from_le_bytes([b0, b1, b2, b3]) as f64,
            Dtype::F16 => half::f16::from_le_bytes([b0, b1]).to_f64(),
            Dtype::BF16 => half::bf16::from_le_bytes([b0, b1]).to_f64(),
            Dtype::I64 => i64::from_le_bytes(b) as f64,
            Dtype::I32 => i32::from_le_bytes([b0, b1, b2, b3]) as f64,
            Dtype::I16 => i16::from_le_bytes([b0, b1]) as f64,
            Dtype::I8 => b0 as i8 as f64,
            Dtype::U8 => b0 as f64,
            Dtype::Bool => (b0 != 0) as u8 as f64,
        }
    }
}
