//! A plain host tensor: a shape and row-major data, in the reference implementation's layouts.

use crate::error::{Error, Result};

/// Row-major host tensor used at the public boundary (files, weight spaces, outputs).
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    /// Extent of each axis, outermost first.
    pub shape: Vec<usize>,
    /// `shape.iter().product()` values, row-major.
    pub data: Vec<f64>,
}

impl Tensor {
    /// Wraps data, checking that its length matches the shape.
    pub fn new(shape: Vec<usize>, data: Vec<f64>) -> Result<Self> {
        let n: usize = shape.iter().product();
        if n != data.len() {
            return Err(Error::shape("tensor data", &[n], &[data.len()]));
        }
        Ok(Tensor { shape, data })
    }

    /// `parts` stacked along the first axis (their other axes must agree).
    pub fn concat_rows(parts: &[Tensor]) -> Result<Tensor> {
        let first = parts
            .first()
            .ok_or_else(|| Error::Input("nothing to concatenate".into()))?;
        let mut shape = first.shape.clone();
        if shape.is_empty() {
            return Err(Error::Input(
                "scalar tensors have no rows to concatenate".into(),
            ));
        }
        shape[0] = 0;
        for p in parts {
            if p.shape.get(1..) != first.shape.get(1..) {
                return Err(Error::shape("rows to concatenate", &first.shape, &p.shape));
            }
            shape[0] += p.shape[0];
        }
        Tensor::new(
            shape,
            parts.iter().flat_map(|p| p.data.iter().copied()).collect(),
        )
    }

    /// The rows (first-axis entries) at `idx`, in that order.
    pub fn select_rows(&self, idx: &[usize]) -> Result<Tensor> {
        let Some(&n) = self.shape.first() else {
            return Err(Error::Input("a scalar tensor has no rows".into()));
        };
        let row = self.len() / n.max(1);
        let mut shape = self.shape.clone();
        shape[0] = idx.len();
        let mut data = Vec::with_capacity(idx.len() * row);
        for &i in idx {
            if i >= n {
                return Err(Error::Input(format!("row {i} of a tensor with {n} rows")));
            }
            data.extend_from_slice(&self.data[i * row..(i + 1) * row]);
        }
        Tensor::new(shape, data)
    }

    /// All zeros.
    pub fn zeros(shape: Vec<usize>) -> Self {
        let n = shape.iter().product();
        Tensor {
            shape,
            data: vec![0.0; n],
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// True when the tensor has no elements.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Largest absolute value (0 for an empty tensor).
    pub fn max_abs(&self) -> f64 {
        self.data.iter().fold(0.0, |m, v| m.max(v.abs()))
    }

    /// Errors unless the shape equals `expected` and the data fills it (the fields are public,
    /// so a tensor can be built with too little data; indexing it later would panic).
    pub fn expect_shape(&self, what: &str, expected: &[usize]) -> Result<()> {
        if self.shape != expected {
            return Err(Error::shape(what, expected, &self.shape));
        }
        let n: usize = expected.iter().product();
        if self.data.len() != n {
            return Err(Error::shape(
                format!("{what}: data length"),
                &[n],
                &[self.data.len()],
            ));
        }
        Ok(())
    }
}
