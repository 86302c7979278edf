//! State dicts: named tensors in file order, read from a `torch.save` archive (tensor views
//! materialised row-major from their storages) or from a safetensors file.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::path::Path;
use std::rc::Rc;

use super::archive::Archive;
use super::dtype::Dtype;
use super::unpickle::{unpickle, Object, TensorRef, Unpickled, Value};
use crate::error::{Error, Result, TorchProblem};
use crate::tensor::Tensor;

/// One named tensor of a state dict, with the element type it was stored in.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// The state-dict key (`fc1.weight`, `net.0.linear.bias`, ...).
    pub name: String,
    /// The stored element type (values are converted to f64, exactly for every float type).
    pub dtype: Dtype,
    /// The values, contiguous row-major, whatever the stored strides.
    pub tensor: Tensor,
}

/// The tensors of a state dict. The order is the file's for `torch.save` archives (a module's
/// registration order) and the natural order of the names for safetensors files, which keep no
/// order (`layers.2` before `layers.10`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StateDict {
    /// The tensors, in order.
    pub entries: Vec<Entry>,
}

/// The first bytes of the pre-1.6 `torch.save` format (a pickled magic number).
const LEGACY_MAGIC: [u8; 4] = [0x80, 0x02, 0x8a, 0x0a];

impl StateDict {
    /// Reads a `.pth`/`.pt` file written by `torch.save` or a safetensors state dict.
    ///
    /// ```
    /// let sd = monomial_nfn::torchfile::StateDict::read(std::path::Path::new(
    ///     "tests/fixtures/pth/mlp_named.pth",
    /// ))
    /// .unwrap();
    /// assert_eq!(sd.names(), ["fc1.weight", "fc1.bias", "fc2.weight", "fc3.weight", "fc3.bias"]);
    /// assert_eq!(sd.get("fc1.weight").unwrap().tensor.shape, [8, 4]);
    /// ```
    pub fn read(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        Self::from_bytes(path, bytes)
    }

    /// Parses the bytes of a file (`path` names it in errors): a zip archive is read as
    /// `torch.save` output, anything else as safetensors.
    pub fn from_bytes(path: &Path, bytes: Vec<u8>) -> Result<Self> {
        if bytes.starts_with(b"PK") {
            return Self::from_pth(path, bytes);
        }
        if bytes.starts_with(&LEGACY_MAGIC) {
            return Err(Error::torch(
                path,
                TorchProblem::Malformed(
                    "the legacy torch.save format (before PyTorch 1.6) is not read; \
                     save it again with a newer torch"
                        .into(),
                ),
            ));
        }
        Self::from_safetensors(path, &bytes)
    }

    /// The tensor `name`.
    pub fn get(&self, name: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.name == name)
    }

    /// The names, in order.
    pub fn names(&self) -> Vec<&str> {
        self.entries.iter().map(|e| e.name.as_str()).collect()
    }

    /// Names and shapes, for messages (`fc1.weight [8, 4], ...`).
    pub fn describe(&self) -> String {
        let all: Vec<String> = self
            .entries
            .iter()
            .map(|e| format!("{} {:?}", e.name, e.tensor.shape))
            .collect();
        all.join(", ")
    }

    fn from_pth(path: &Path, bytes: Vec<u8>) -> Result<Self> {
        let archive_len = bytes.len();
        let mut archive = Archive::open(path, bytes)?;
        let pickle = archive.pickle()?;
        let u = unpickle(&pickle).map_err(|p| Error::torch(path, p))?;
        let items = tensor_items(&u).map_err(|p| Error::torch(path, p))?;
        let mut storages: HashMap<Rc<str>, Vec<u8>> = HashMap::new();
        let mut sd = StateDict::default();
        let mut index: HashMap<String, usize> = HashMap::new();
        // Views may repeat a storage (tied weights), but a pickle naming one tensor under many
        // keys must not make the output outgrow the file by more than this factor.
        let mut budget = archive_len.saturating_mul(4).saturating_add(1 << 16);
        for (name, view) in items {
            let tensor = materialise(&mut archive, &mut storages, path, &name, view, budget)?;
            budget -= tensor.len();
            let entry = Entry {
                name: name.clone(),
                dtype: view.storage.dtype,
                tensor,
            };
            // A repeated key replaces the value and keeps its place, as in a Python dict.
            match index.get(&name) {
                Some(&i) => sd.entries[i] = entry,
                None => {
                    index.insert(name, sd.entries.len());
                    sd.entries.push(entry);
                }
            }
        }
        Ok(sd)
    }

    fn from_safetensors(path: &Path, bytes: &[u8]) -> Result<Self> {
        let st = safetensors::SafeTensors::deserialize(bytes).map_err(|e| {
            Error::torch(
                path,
                TorchProblem::Malformed(format!(
                    "neither a torch.save zip archive nor a safetensors file ({e})"
                )),
            )
        })?;
        let mut names = st.names();
        names.sort_by(|a, b| natural_cmp(a, b));
        let mut sd = StateDict::default();
        for name in names {
            let view = st
                .tensor(name)
                .map_err(|e| Error::torch(path, TorchProblem::Malformed(e.to_string())))?;
            let dtype = Dtype::from_safetensors(view.dtype()).ok_or_else(|| {
                Error::torch(
                    path,
                    TorchProblem::Dtype(format!("tensor {name} is {}", view.dtype())),
                )
            })?;
            let data = view
                .data()
                .chunks_exact(dtype.size())
                .map(|c| dtype.decode(c))
                .collect();
            let tensor = Tensor::new(view.shape().to_vec(), data)
                .map_err(|e| Error::torch(path, TorchProblem::Malformed(e.to_string())))?;
            sd.entries.push(Entry {
                name: name.to_string(),
                dtype,
                tensor,
            });
        }
        Ok(sd)
    }
}

/// Orders names with their digit runs compared as numbers (`fc2` before `fc10`).
pub(crate) fn natural_cmp(a: &str, b: &str) -> Ordering {
    fn runs(s: &str) -> Vec<(bool, &str)> {
        let mut out = Vec::new();
        let mut start = 0;
        let bytes = s.as_bytes();
        for i in 1..=bytes.len() {
            if i == bytes.len() || bytes[i].is_ascii_digit() != bytes[start].is_ascii_digit() {
                out.push((bytes[start].is_ascii_digit(), &s[start..i]));
                start = i;
            }
        }
        out
    }
    let (ra, rb) = (runs(a), runs(b));
    for (x, y) in ra.iter().zip(&rb) {
        let o = match (x, y) {
            ((true, x), (true, y)) => {
                let (x, y) = (x.trim_start_matches('0'), y.trim_start_matches('0'));
                x.len().cmp(&y.len()).then_with(|| x.cmp(y))
            }
            ((_, x), (_, y)) => x.cmp(y),
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    ra.len().cmp(&rb.len()).then_with(|| a.cmp(b))
}

/// The (name, tensor) items of the pickle's root dict, or of its `state_dict` /
/// `model_state_dict` entry when the root is a training checkpoint holding one.
fn tensor_items(u: &Unpickled) -> std::result::Result<Vec<(String, &TensorRef)>, TorchProblem> {
    let Some(Object::Dict(mut items)) = u.object(&u.root).cloned() else {
        return Err(TorchProblem::Malformed(
            "the pickle's root is not a dict of tensors".into(),
        ));
    };
    let nested = items.iter().find_map(|(k, v)| match (k, u.object(v)) {
        (Value::Str(k), Some(Object::Dict(d)))
            if ["state_dict", "model_state_dict"].contains(&&**k) =>
        {
            Some(d.clone())
        }
        _ => None,
    });
    if let Some(d) = nested {
        items = d;
    }
    items
        .iter()
        .map(|(k, v)| {
            let Value::Str(name) = k else {
                return Err(TorchProblem::Malformed(format!(
                    "a state-dict key is not a string: {k:?}"
                )));
            };
            match u.object(v) {
                Some(Object::Tensor(t)) => Ok((name.to_string(), t)),
                _ => Err(TorchProblem::Malformed(format!(
                    "entry {name:?} is not a tensor"
                ))),
            }
        })
        .collect()
}

/// A non-negative pickle integer as usize, or a storage problem naming `what`.
fn count(v: i64, what: &str) -> std::result::Result<usize, String> {
    usize::try_from(v).map_err(|_| format!("negative {what} {v}"))
}

/// The values of one tensor view, contiguous row-major. The view is checked against its
/// storage's claimed size, that claim against the archive entry, and its element count against
/// `budget`, before anything is read or allocated.
fn materialise(
    archive: &mut Archive,
    storages: &mut HashMap<Rc<str>, Vec<u8>>,
    path: &Path,
    name: &str,
    view: &TensorRef,
    budget: usize,
) -> Result<Tensor> {
    let bad =
        |msg: String| Error::torch(path, TorchProblem::Storage(format!("tensor {name}: {msg}")));
    let s = &view.storage;
    if view.size.len() != view.stride.len() {
        return Err(Error::torch(
            path,
            TorchProblem::Malformed(format!(
                "tensor {name}: {} sizes but {} strides",
                view.size.len(),
                view.stride.len()
            )),
        ));
    }
    let stored = count(s.numel, "storage size").map_err(bad)?;
    let offset = count(view.offset, "storage offset").map_err(bad)?;
    let size: Vec<usize> = view
        .size
        .iter()
        .map(|&v| count(v, "size"))
        .collect::<std::result::Result<_, _>>()
        .map_err(bad)?;
    // A stride of a size-1 axis is never followed: zero it so it cannot overflow below.
    let stride: Vec<usize> = view
        .stride
        .iter()
        .zip(&size)
        .map(|(&v, &n)| if n == 1 { Ok(0) } else { count(v, "stride") })
        .collect::<std::result::Result<_, _>>()
        .map_err(bad)?;
    let numel = size
        .iter()
        .try_fold(1usize, |a, &n| a.checked_mul(n))
        .ok_or_else(|| bad(format!("size {size:?} overflows")))?;
    if numel == 0 {
        return Tensor::new(size, Vec::new());
    }
    let last = size
        .iter()
        .zip(&stride)
        .try_fold(offset, |a, (&n, &st)| {
            (n - 1).checked_mul(st)?.checked_add(a)
        })
        .ok_or_else(|| bad(format!("view {size:?} / {stride:?} overflows")))?;
    if last >= stored {
        return Err(bad(format!(
            "the view (offset {offset}, size {size:?}, stride {stride:?}) reaches element {last} \
             of a storage of {stored}"
        )));
    }
    if numel > budget {
        return Err(bad(format!(
            "{numel} more elements would exceed {budget} left for this file's size (a pickle \
             repeating one tensor under many names?)"
        )));
    }
    if numel > stored {
        return Err(bad(format!(
            "{numel} elements view a storage of {stored} (a broadcast view: save \
             tensor.contiguous())"
        )));
    }
    let es = s.dtype.size();
    let need = (stored as u64)
        .checked_mul(es as u64)
        .ok_or_else(|| bad(format!("a storage of {stored} elements overflows")))?;
    if !storages.contains_key(&s.key) {
        let bytes = archive.storage(&s.key, need)?;
        storages.insert(s.key.clone(), bytes);
    }
    let bytes = &storages[&s.key];
    if (bytes.len() as u64) < need {
        return Err(bad(format!(
            "storage {:?} holds {} bytes, {need} claimed",
            s.key,
            bytes.len()
        )));
    }
    let mut out = Vec::with_capacity(numel);
    let mut idx = vec![0usize; size.len()];
    let mut pos = offset;
    for _ in 0..numel {
        let at = pos * es;
        let Some(b) = bytes.get(at..at + es) else {
            return Err(bad(format!("element {pos} is outside the storage")));
        };
        out.push(s.dtype.decode(b));
        for d in (0..size.len()).rev() {
            idx[d] += 1;
            pos += stride[d];
            if idx[d] < size[d] {
                break;
            }
            pos -= stride[d] * size[d];
            idx[d] = 0;
        }
    }
    Tensor::new(size, out)
}
