//! `layout.csv` of the Small CNN Zoo: where each TensorFlow variable lives in a flat weight row,
//! and the conversion of rows between TensorFlow layouts and the engine's (out, in, kh, kw).

use std::path::Path;

use crate::error::{DatasetProblem, Error, Result};
use crate::scalar::Scalar;
use crate::space::WeightSpace;
use crate::spec::{LayerShape, NetActivation, NetworkSpec};

/// One variable of a flat row: `row[start..end]` holds a tensor of `shape` (C order).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayoutEntry {
    /// TensorFlow variable name, e.g. `sequential/conv2d/kernel:0`.
    pub varname: String,
    /// First index in the row.
    pub start: usize,
    /// One past the last index in the row.
    pub end: usize,
    /// TensorFlow shape: conv kernels (kh, kw, in, out), dense kernels (in, out), biases (out,).
    pub shape: Vec<usize>,
}

/// Where a layer's kernel and bias sit in a row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct LayerSlots {
    kernel: usize,
    bias: usize,
}

/// The variables of a flat weight row, validated against each other and a [`NetworkSpec`].
#[derive(Clone, Debug, PartialEq)]
pub struct Layout {
    entries: Vec<LayoutEntry>,
    slots: Vec<LayerSlots>,
    spec: NetworkSpec,
}

const COLUMNS: [&str; 4] = ["varname", "start_idx", "end_idx", "shape"];

impl Layout {
    /// The Small CNN Zoo's naming and order for `spec`: per layer `bias:0` then `kernel:0`, convs
    /// named `conv2d`, `conv2d_1`, ..., dense layers `dense`, `dense_1`, ... under `sequential/`.
    pub fn for_spec(spec: &NetworkSpec) -> Self {
        let (mut convs, mut denses) = (0, 0);
        let mut entries = Vec::new();
        let mut at = 0;
        for l in &spec.layers {
            let (kind, count) = if l.conv {
                ("conv2d", &mut convs)
            } else {
                ("dense", &mut denses)
            };
            let name = match *count {
                0 => format!("sequential/{kind}"),
                k => format!("sequential/{kind}_{k}"),
            };
            *count += 1;
            let kernel = if l.conv {
                vec![l.kh, l.kw, l.n_in, l.n_out]
            } else {
                vec![l.n_in, l.n_out]
            };
            for (var, shape) in [("bias", vec![l.n_out]), ("kernel", kernel)] {
                let n: usize = shape.iter().product();
                entries.push(LayoutEntry {
                    varname: format!("{name}/{var}:0"),
                    start: at,
                    end: at + n,
                    shape,
                });
                at += n;
            }
        }
        Self::from_entries(entries, spec.activation, Path::new("<generated layout>"))
            .expect("a layout built from a valid spec is consistent")
    }

    /// Validates entries and infers the spec: kernels in row order define the layers, each paired
    /// with the bias of the same variable scope; every index of the row is covered exactly once.
    pub fn from_entries(
        mut entries: Vec<LayoutEntry>,
        activation: NetActivation,
        path: &Path,
    ) -> Result<Self> {
        let bad = |msg: String| Error::dataset(path, DatasetProblem::Mismatch(msg));
        if entries.is_empty() {
            return Err(Error::dataset(
                path,
                DatasetProblem::Empty("the layout lists no variables".into()),
            ));
        }
        for e in &entries {
            let Some(n) = e.shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)) else {
                return Err(bad(format!("{}: shape {:?} overflows", e.varname, e.shape)));
            };
            if e.end < e.start || e.end - e.start != n {
                return Err(bad(format!(
                    "{}: [{}, {}) holds {} values, shape {:?} needs {n}",
                    e.varname,
                    e.start,
                    e.end,
                    e.end.saturating_sub(e.start),
                    e.shape
                )));
            }
        }
        let mut order: Vec<usize> = (0..entries.len()).collect();
        order.sort_by_key(|&i| entries[i].start);
        let mut at = 0;
        for &i in &order {
            if entries[i].start != at {
                return Err(bad(format!(
                    "{} starts at {} but the previous variable ends at {at} (gap or overlap)",
                    entries[i].varname, entries[i].start
                )));
            }
            at = entries[i].end;
        }
        entries = order.into_iter().map(|i| entries[i].clone()).collect();
        let mut slots = Vec::new();
        let mut layers = Vec::new();
        for (k, e) in entries.iter().enumerate() {
            let Some(scope) = e.varname.strip_suffix("kernel:0") else {
                if !e.varname.ends_with("bias:0") {
                    return Err(bad(format!(
                        "variable {} is neither a kernel:0 nor a bias:0",
                        e.varname
                    )));
                }
                continue;
            };
            let layer = match e.shape[..] {
                [kh, kw, n_in, n_out] => LayerShape::conv(n_out, n_in, kh, kw),
                [n_in, n_out] => LayerShape::dense(n_out, n_in),
                ref s => {
                    return Err(bad(format!(
                        "kernel {} has shape {s:?}; expected (kh, kw, in, out) or (in, out)",
                        e.varname
                    )))
                }
            };
            let bias_name = format!("{scope}bias:0");
            let b = entries
                .iter()
                .position(|x| x.varname == bias_name)
                .ok_or_else(|| bad(format!("kernel {} has no {bias_name}", e.varname)))?;
            if entries[b].shape != [layer.n_out] {
                return Err(bad(format!(
                    "{bias_name} has shape {:?}, its kernel has {} outputs",
                    entries[b].shape, layer.n_out
                )));
            }
            slots.push(LayerSlots { kernel: k, bias: b });
            layers.push(layer);
        }
        if slots.len() * 2 != entries.len() {
            return Err(bad(format!(
                "{} variables for {} kernels: every variable must be one layer's kernel or bias",
                entries.len(),
                slots.len()
            )));
        }
        let spec = NetworkSpec::new(layers, activation).map_err(|e| bad(e.to_string()))?;
        Ok(Layout {
            entries,
            slots,
            spec,
        })
    }

    /// The variables, in row order.
    pub fn entries(&self) -> &[LayoutEntry] {
        &self.entries
    }

    /// The architecture the layout describes.
    pub fn spec(&self) -> &NetworkSpec {
        &self.spec
    }

    /// P: the length of one flat row.
    pub fn row_len(&self) -> usize {
        self.entries.last().map_or(0, |e| e.end)
    }

    /// Reads `layout.csv` (columns varname, start_idx, end_idx, shape; others ignored).
    pub fn read(path: &Path, activation: NetActivation) -> Result<Self> {
        let table = super::metrics::Table::read_csv(path)?;
        let cols: Vec<Vec<&str>> = COLUMNS
            .iter()
            .map(|c| table.column(path, c))
            .collect::<Result<_>>()?;
        let int = |row: usize, col: usize| -> Result<usize> {
            cols[col][row].trim().parse().map_err(|_| {
                Error::dataset(
                    path,
                    DatasetProblem::Malformed(format!(
                        "row {}: {} = {:?} is not an index",
                        row + 1,
                        COLUMNS[col],
                        cols[col][row]
                    )),
                )
            })
        };
        let entries = (0..table.len())
            .map(|r| {
                Ok(LayoutEntry {
                    varname: cols[0][r].to_string(),
                    start: int(r, 1)?,
                    end: int(r, 2)?,
                    shape: parse_shape(cols[3][r]).ok_or_else(|| {
                        Error::dataset(
                            path,
                            DatasetProblem::Malformed(format!(
                                "row {}: shape {:?} is not like (3, 3, 1, 16)",
                                r + 1,
                                cols[3][r]
                            )),
                        )
                    })?,
                })
            })
            .collect::<Result<_>>()?;
        Self::from_entries(entries, activation, path)
    }

    /// Writes `layout.csv` with shapes as Python tuples, like the original.
    pub fn write(&self, path: &Path) -> Result<()> {
        let rows = self
            .entries
            .iter()
            .map(|e| {
                vec![
                    e.varname.clone(),
                    e.start.to_string(),
                    e.end.to_string(),
                    format_shape(&e.shape),
                ]
            })
            .collect();
        super::metrics::Table::new(COLUMNS.iter().map(|c| c.to_string()).collect(), rows)
            .write_csv(path)
    }

    /// Errors unless `spec` has this layout's layers (the activation may differ).
    pub fn expect_spec(&self, spec: &NetworkSpec, path: &Path) -> Result<()> {
        if spec.layers != self.spec.layers {
            return Err(Error::dataset(
                path,
                DatasetProblem::Mismatch(format!(
                    "layout describes layers {}, expected {}",
                    self.spec.layers_in_words(),
                    spec.layers_in_words()
                )),
            ));
        }
        Ok(())
    }

    /// Converts rows (each of length P, TensorFlow layouts) to a weight space of batch
    /// `rows.len() / P` and one channel in the engine's (out, in[, kh, kw]) layout (SPEC §1.4).
    pub fn to_weight_space(&self, rows: &[f32]) -> Result<WeightSpace> {
        let p = self.row_len();
        if p == 0 || rows.len() % p != 0 {
            return Err(Error::shape(
                "zoo rows (multiple of P)",
                &[p],
                &[rows.len()],
            ));
        }
        let b = rows.len() / p;
        let mut ws = WeightSpace::zeros(&self.spec, b, 1);
        for (i, (l, s)) in self.spec.layers.iter().zip(&self.slots).enumerate() {
            let (k, bias) = (&self.entries[s.kernel], &self.entries[s.bias]);
            let (wlen, blen) = (ws.weights[i].len() / b, l.n_out);
            for (n, row) in rows.chunks_exact(p).enumerate() {
                let dst = &mut ws.weights[i].data[n * wlen..(n + 1) * wlen];
                tf_to_engine(l, &row[k.start..k.end], dst);
                for (d, &v) in ws.biases[i].data[n * blen..(n + 1) * blen]
                    .iter_mut()
                    .zip(&row[bias.start..bias.end])
                {
                    *d = v as f64;
                }
            }
        }
        Ok(ws)
    }

    /// Converts a one-channel weight space back to flat TensorFlow-layout rows (f32 to store,
    /// f64 to run exactly).
    pub fn to_rows<T: Scalar>(&self, ws: &WeightSpace) -> Result<Vec<T>> {
        ws.validate_shapes(&self.spec)?;
        if ws.channels() != 1 {
            return Err(Error::shape(
                "zoo weight space channels",
                &[1],
                &[ws.channels()],
            ));
        }
        let (b, p) = (ws.batch(), self.row_len());
        let mut rows = vec![T::default(); b * p];
        for (i, (l, s)) in self.spec.layers.iter().zip(&self.slots).enumerate() {
            let (k, bias) = (&self.entries[s.kernel], &self.entries[s.bias]);
            let wlen = ws.weights[i].len() / b.max(1);
            for (n, row) in rows.chunks_exact_mut(p).enumerate() {
                engine_to_tf(
                    l,
                    &ws.weights[i].data[n * wlen..(n + 1) * wlen],
                    &mut row[k.start..k.end],
                );
                for (d, &v) in row[bias.start..bias.end]
                    .iter_mut()
                    .zip(&ws.biases[i].data[n * l.n_out..(n + 1) * l.n_out])
                {
                    *d = T::from_f64(v);
                }
            }
        }
        Ok(rows)
    }

    /// One layer's kernel as the (kh·kw·in, out) matrix of the TensorFlow layout (a row slice).
    pub fn kernel<'a, T>(&self, row: &'a [T], layer: usize) -> &'a [T] {
        let e = &self.entries[self.slots[layer].kernel];
        &row[e.start..e.end]
    }

    /// One layer's bias (a row slice).
    pub fn bias<'a, T>(&self, row: &'a [T], layer: usize) -> &'a [T] {
        let e = &self.entries[self.slots[layer].bias];
        &row[e.start..e.end]
    }

    /// Mutable access to one layer's kernel and bias within a row.
    pub fn kernel_bias_mut<'a, T>(
        &self,
        row: &'a mut [T],
        layer: usize,
    ) -> (&'a mut [T], &'a mut [T]) {
        let (k, b) = (
            &self.entries[self.slots[layer].kernel],
            &self.entries[self.slots[layer].bias],
        );
        if k.start < b.start {
            let (lo, hi) = row.split_at_mut(b.start);
            (&mut lo[k.start..k.end], &mut hi[..b.end - b.start])
        } else {
            let (lo, hi) = row.split_at_mut(k.start);
            (&mut hi[..k.end - k.start], &mut lo[b.start..b.end])
        }
    }
}

/// TensorFlow (kh, kw, in, out) or (in, out) → engine (out, in, kh, kw) or (out, in).
fn tf_to_engine(l: &LayerShape, src: &[f32], dst: &mut [f64]) {
    let f = l.f();
    for t in 0..f {
        for c in 0..l.n_in {
            for o in 0..l.n_out {
                dst[(o * l.n_in + c) * f + t] = src[(t * l.n_in + c) * l.n_out + o] as f64;
            }
        }
    }
}

/// Engine (out, in, kh, kw) or (out, in) → TensorFlow (kh, kw, in, out) or (in, out).
fn engine_to_tf<T: Scalar>(l: &LayerShape, src: &[f64], dst: &mut [T]) {
    let f = l.f();
    for t in 0..f {
        for c in 0..l.n_in {
            for o in 0..l.n_out {
                dst[(t * l.n_in + c) * l.n_out + o] = T::from_f64(src[(o * l.n_in + c) * f + t]);
            }
        }
    }
}

/// Parses `(3, 3, 1, 16)`, `(16,)` or `[16, 10]`.
pub fn parse_shape(s: &str) -> Option<Vec<usize>> {
    let s = s.trim();
    let inner = s
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .or_else(|| s.strip_prefix('[').and_then(|r| r.strip_suffix(']')))?;
    inner
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| t.parse().ok())
        .collect::<Option<Vec<usize>>>()
        .filter(|v| !v.is_empty())
}

/// Formats a shape as a Python tuple: `(3, 3, 1, 16)`, `(16,)`.
pub fn format_shape(shape: &[usize]) -> String {
    match shape {
        [d] => format!("({d},)"),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}
