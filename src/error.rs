//! The crate's error type: every fallible public function returns [`Result`].

use std::path::PathBuf;

/// Everything that can go wrong in the engine, with the offending shape, file or value.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A tensor had a shape other than the one the spec or layer requires.
    #[error("shape mismatch for {what}: expected {expected:?}, got {got:?}")]
    Shape {
        what: String,
        expected: Vec<usize>,
        got: Vec<usize>,
    },
    /// A network spec (or a layer configuration) is not one the engine supports.
    #[error("invalid network spec: {0}")]
    Spec(String),
    /// Input data is unusable (empty batch, non-finite values, ...).
    #[error("invalid input: {0}")]
    Input(String),
    /// A file could not be parsed or lacks a required entry.
    #[error("format error in {path}: {msg}")]
    Format { path: PathBuf, msg: String },
    /// Reading or writing a file failed.
    #[error("i/o error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// No GPU adapter, or the device rejected something.
    #[error("gpu: {0}")]
    Device(String),
    /// Training produced a non-finite loss or parameter: no result is reported.
    #[error("training diverged: {0}")]
    Diverged(String),
    /// A setting is outside its accepted range (named, with the value and the range).
    #[error("{what} = {value} is out of range: expected {range}")]
    Setting {
        what: String,
        value: String,
        range: String,
    },
    /// A weight-space dataset file (zoo weights, layout, metrics, split) is unusable.
    #[error("dataset file {path}: {problem}")]
    Dataset {
        path: PathBuf,
        problem: DatasetProblem,
    },
    /// A PyTorch `.pth`/`.pt` file or state dict is unusable or unsafe (see [`crate::torchfile`]).
    #[error("PyTorch file {path}: {problem}")]
    Torch {
        path: PathBuf,
        problem: TorchProblem,
    },
}

/// What was wrong with a PyTorch file (see [`Error::Torch`]).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TorchProblem {
    /// The pickle names a global outside the whitelist (only tensors and plain containers are
    /// rebuilt; nothing else a pickle asks for is ever executed).
    #[error("the pickle asks for global {0}, which is not allowed (only tensors, storages and OrderedDict are rebuilt)")]
    UnsafeGlobal(String),
    /// The pickle uses an opcode the reader does not implement.
    #[error("unsupported pickle opcode 0x{opcode:02x} at byte {offset} of data.pkl")]
    Opcode { opcode: u8, offset: usize },
    /// The archive or pickle ends before the data it announces.
    #[error("truncated: {0}")]
    Truncated(String),
    /// The archive or pickle is not what `torch.save` writes.
    #[error("malformed: {0}")]
    Malformed(String),
    /// A tensor's storage is missing or too small for the view the pickle claims.
    #[error("storage: {0}")]
    Storage(String),
    /// A storage of an element type the reader does not decode.
    #[error("unsupported dtype: {0}")]
    Dtype(String),
    /// The tensors do not form a chain of dense/conv layers (with the names found).
    #[error("not a chain of dense/conv layers: {0}")]
    NotAChain(String),
}

/// What was wrong with a dataset file (see [`Error::Dataset`]).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DatasetProblem {
    /// The file ends before the data its header announces.
    #[error("truncated: {0}")]
    Truncated(String),
    /// The file is not of the expected format (bad magic, unparsable header or cell).
    #[error("malformed: {0}")]
    Malformed(String),
    /// The array holds another element type than the one required.
    #[error("dtype {got} where {expected} is required")]
    Dtype { expected: String, got: String },
    /// Shapes or sizes disagree (array vs layout, layout vs architecture, rows vs metrics).
    #[error("mismatch: {0}")]
    Mismatch(String),
    /// A required CSV column is absent.
    #[error("missing column {0:?}")]
    MissingColumn(String),
    /// The gzip stream is corrupt.
    #[error("corrupt gzip: {0}")]
    Gzip(String),
    /// No network is left (empty file, or nothing passes the filter).
    #[error("empty: {0}")]
    Empty(String),
    /// A file a list names (a row of a `file,label` CSV) does not exist.
    #[error("missing file: {0}")]
    MissingFile(String),
    /// A list names one file twice.
    #[error("duplicate row: {0}")]
    DuplicateRow(String),
    /// A cell that must be a number or a class index is not one.
    #[error("unparsable value: {0}")]
    BadValue(String),
    /// A label or accuracy outside the accepted range.
    #[error("out of range: {0}")]
    OutOfRange(String),
    /// A header that names what cannot go together (both `label` and `accuracy`).
    #[error("header: {0}")]
    Header(String),
}

/// The crate's result type.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// Shorthand for a [`Error::Setting`] error.
    pub fn setting(what: &str, value: impl std::fmt::Display, range: &str) -> Self {
        Error::Setting {
            what: what.to_string(),
            value: value.to_string(),
            range: range.to_string(),
        }
    }

    /// Shorthand for a [`Error::Shape`] error.
    pub fn shape(what: impl Into<String>, expected: &[usize], got: &[usize]) -> Self {
        Error::Shape {
            what: what.into(),
            expected: expected.to_vec(),
            got: got.to_vec(),
        }
    }

    /// Shorthand for an [`Error::Io`] error.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// Shorthand for a [`Error::Dataset`] error.
    pub fn dataset(path: impl Into<PathBuf>, problem: DatasetProblem) -> Self {
        Error::Dataset {
            path: path.into(),
            problem,
        }
    }

    /// Shorthand for a [`Error::Torch`] error.
    pub fn torch(path: impl Into<PathBuf>, problem: TorchProblem) -> Self {
        Error::Torch {
            path: path.into(),
            problem,
        }
    }

    /// Shorthand for a [`Error::Format`] error.
    pub fn format(path: impl Into<PathBuf>, msg: impl Into<String>) -> Self {
        Error::Format {
            path: path.into(),
            msg: msg.into(),
        }
    }
}
