//! The NumPy `.npy` format (versions 1–3): header parsing and writing, and row-selective reads of
//! 2-D float32 arrays, so a zoo far larger than memory can be filtered before it is read.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::error::{DatasetProblem, Error, Result};

const MAGIC: &[u8; 6] = b"\x93NUMPY";

/// Element type of an array, as the header's `descr` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dtype {
    /// `<f4` / `>f4`.
    F32,
    /// `<f8` / `>f8`.
    F64,
    /// `<i4` / `>i4`.
    I32,
    /// `<i8` / `>i8`.
    I64,
}

impl Dtype {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Dtype::F32 | Dtype::I32 => 4,
            Dtype::F64 | Dtype::I64 => 8,
        }
    }
}

/// A parsed `.npy` header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NpyHeader {
    /// Element type.
    pub dtype: Dtype,
    /// True for big-endian data (`>`).
    pub big_endian: bool,
    /// C-order shape.
    pub shape: Vec<usize>,
    /// Byte offset of the data from the start of the file.
    pub data_offset: usize,
}

impl NpyHeader {
    /// Number of elements (checked against overflow when parsed).
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// True when the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of data the header announces.
    pub fn data_bytes(&self) -> usize {
        self.len() * self.dtype.size()
    }
}

fn malformed(msg: impl Into<String>) -> DatasetProblem {
    DatasetProblem::Malformed(msg.into())
}

/// Checks the magic bytes, version and length field; returns (header text start, header end).
fn header_span(prefix: &[u8]) -> std::result::Result<(usize, usize), DatasetProblem> {
    if prefix.len() < 8 {
        return Err(DatasetProblem::Truncated(format!(
            "{} bytes, shorter than the 8-byte npy preamble",
            prefix.len()
        )));
    }
    if &prefix[..6] != MAGIC {
        return Err(malformed("not an npy file (bad magic bytes)"));
    }
    let (len_bytes, start) = match prefix[6] {
        1 => (2, 10),
        2 | 3 => (4, 12),
        v => {
            return Err(malformed(format!(
                "unsupported npy version {v}.{}",
                prefix[7]
            )))
        }
    };
    if prefix.len() < start {
        return Err(DatasetProblem::Truncated(
            "header length field cut off".into(),
        ));
    }
    let mut n = [0u8; 4];
    n[..len_bytes].copy_from_slice(&prefix[8..8 + len_bytes]);
    Ok((start, start + u32::from_le_bytes(n) as usize))
}

/// Parses the header at the start of `prefix`, which must hold the whole header.
pub fn parse_header(prefix: &[u8]) -> std::result::Result<NpyHeader, DatasetProblem> {
    let (start, end) = header_span(prefix)?;
    if prefix.len() < end {
        return Err(DatasetProblem::Truncated(format!(
            "header announces {} bytes, only {} present",
            end - start,
            prefix.len() - start
        )));
    }
    let text = std::str::from_utf8(&prefix[start..end])
        .map_err(|_| malformed("header is not UTF-8 text"))?;
    let dict = parse_dict(text)?;
    let descr = dict
        .descr
        .ok_or_else(|| malformed("header lacks 'descr'"))?;
    if dict.fortran_order.unwrap_or(false) {
        return Err(malformed(
            "Fortran-order arrays are not supported (save a C-contiguous copy)",
        ));
    }
    let shape = dict
        .shape
        .ok_or_else(|| malformed("header lacks 'shape'"))?;
    let (big_endian, dtype) = parse_descr(&descr)?;
    let mut count: usize = dtype.size();
    for &d in &shape {
        count = count
            .checked_mul(d)
            .ok_or_else(|| malformed(format!("shape {shape:?} overflows")))?;
    }
    Ok(NpyHeader {
        dtype,
        big_endian,
        shape,
        data_offset: end,
    })
}

fn parse_descr(descr: &str) -> std::result::Result<(bool, Dtype), DatasetProblem> {
    let (order, code) = descr.split_at(descr.len().min(1));
    let big = match order {
        "<" | "|" | "=" => false,
        ">" => true,
        _ => return Err(unsupported_dtype(descr)),
    };
    let dtype = match code {
        "f4" => Dtype::F32,
        "f8" => Dtype::F64,
        "i4" => Dtype::I32,
        "i8" => Dtype::I64,
        _ => return Err(unsupported_dtype(descr)),
    };
    Ok((big, dtype))
}

fn unsupported_dtype(descr: &str) -> DatasetProblem {
    DatasetProblem::Dtype {
        expected: "one of <f4, <f8, <i4, <i8 (either byte order)".into(),
        got: descr.into(),
    }
}

fn descr_name(dtype: Dtype, big_endian: bool) -> String {
    let code = match dtype {
        Dtype::F32 => "f4",
        Dtype::F64 => "f8",
        Dtype::I32 => "i4",
        Dtype::I64 => "i8",
    };
    format!("{}{code}", if big_endian { '>' } else { '<' })
}

#[derive(Default)]
struct HeaderDict {
    descr: Option<String>,
    fortran_order: Option<bool>,
    shape: Option<Vec<usize>>,
}

/// Parses the Python dict literal numpy writes: `{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }`.
fn parse_dict(text: &str) -> std::result::Result<HeaderDict, DatasetProblem> {
    let mut p = Cursor {
        s: text.as_bytes(),
        i: 0,
    };
    let mut dict = HeaderDict::default();
    p.expect(b'{')?;
    loop {
        p.skip_ws();
        if p.eat(b'}') {
            break;
        }
        let key = p.string()?;
        p.skip_ws();
        p.expect(b':')?;
        p.skip_ws();
        match key.as_str() {
            "descr" => dict.descr = Some(p.string()?),
            "fortran_order" => dict.fortran_order = Some(p.boolean()?),
            "shape" => dict.shape = Some(p.tuple()?),
            other => return Err(malformed(format!("unknown header key '{other}'"))),
        }
        p.skip_ws();
        if !p.eat(b',') {
            p.skip_ws();
            p.expect(b'}')?;
            break;
        }
    }
    p.skip_ws();
    if p.i != p.s.len() {
        return Err(malformed("text after the header dict"));
    }
    Ok(dict)
}

struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn skip_ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.s.get(self.i) == Some(&c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: u8) -> std::result::Result<(), DatasetProblem> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(malformed(format!(
                "header: expected '{}' at byte {}",
                c as char, self.i
            )))
        }
    }

    fn string(&mut self) -> std::result::Result<String, DatasetProblem> {
        let q = match self.s.get(self.i) {
            Some(&q @ (b'\'' | b'"')) => q,
            _ => {
                return Err(malformed(format!(
                    "header: expected a string at byte {}",
                    self.i
                )))
            }
        };
        let start = self.i + 1;
        let len = self.s[start..]
            .iter()
            .position(|&c| c == q)
            .ok_or_else(|| malformed("header: unterminated string"))?;
        self.i = start + len + 1;
        Ok(String::from_utf8_lossy(&self.s[start..start + len]).into_owned())
    }

    fn boolean(&mut self) -> std::result::Result<bool, DatasetProblem> {
        for (word, v) in [(&b"True"[..], true), (&b"False"[..], false)] {
            if self.s[self.i..].starts_with(word) {
                self.i += word.len();
                return Ok(v);
            }
        }
        Err(malformed("header: expected True or False"))
    }

    fn tuple(&mut self) -> std::result::Result<Vec<usize>, DatasetProblem> {
        self.expect(b'(')?;
        let mut dims = Vec::new();
        loop {
            self.skip_ws();
            if self.eat(b')') {
                return Ok(dims);
            }
            let start = self.i;
            while self.i < self.s.len() && self.s[self.i].is_ascii_digit() {
                self.i += 1;
            }
            let digits = std::str::from_utf8(&self.s[start..self.i]).unwrap_or("");
            let d = digits
                .parse::<usize>()
                .map_err(|_| malformed(format!("header: bad shape entry at byte {start}")))?;
            dims.push(d);
            self.skip_ws();
            if !self.eat(b',') {
                self.skip_ws();
                self.expect(b')')?;
                return Ok(dims);
            }
        }
    }
}

/// Serialises a version-1.0 header (padded to 64 bytes, as numpy does) for a C-order array.
pub fn header_bytes(dtype: Dtype, shape: &[usize]) -> Vec<u8> {
    let dims = super::layout::format_shape(shape);
    let mut dict = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': {dims}, }}",
        descr_name(dtype, false)
    );
    let unpadded = MAGIC.len() + 4 + dict.len() + 1;
    dict.push_str(&" ".repeat((64 - unpadded % 64) % 64));
    dict.push('\n');
    let mut out = MAGIC.to_vec();
    out.extend([1, 0]);
    out.extend((dict.len() as u16).to_le_bytes());
    out.extend(dict.as_bytes());
    out
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.into(),
        source,
    }
}

/// An open `.npy` file whose header has been checked against the file's size.
pub struct NpyFile {
    path: PathBuf,
    file: BufReader<File>,
    /// The parsed header.
    pub header: NpyHeader,
}

impl NpyFile {
    /// Opens `path`, parses the header and checks that the file holds exactly the announced data.
    pub fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(io_err(path))?;
        let size = file.metadata().map_err(io_err(path))?.len() as usize;
        let mut file = BufReader::new(file);
        let mut prefix = vec![0u8; size.min(12)];
        file.read_exact(&mut prefix).map_err(io_err(path))?;
        let (_, end) = header_span(&prefix).map_err(|p| Error::dataset(path, p))?;
        if end > prefix.len() {
            let have = prefix.len();
            prefix.resize(end.min(size), 0);
            file.read_exact(&mut prefix[have..]).map_err(io_err(path))?;
        }
        let header = parse_header(&prefix).map_err(|p| Error::dataset(path, p))?;
        let have = size - header.data_offset;
        if have < header.data_bytes() {
            return Err(Error::dataset(
                path,
                DatasetProblem::Truncated(format!(
                    "shape {:?} needs {} data bytes, the file has {have}",
                    header.shape,
                    header.data_bytes()
                )),
            ));
        }
        if have > header.data_bytes() {
            return Err(Error::dataset(
                path,
                malformed(format!(
                    "{} bytes after the {} data bytes of shape {:?}",
                    have - header.data_bytes(),
                    header.data_bytes(),
                    header.shape
                )),
            ));
        }
        Ok(NpyFile {
            path: path.into(),
            file,
            header,
        })
    }

    /// (rows, columns) of a 2-D float32 array, or the error that says why this is not one.
    pub fn f32_matrix_dims(&self) -> Result<(usize, usize)> {
        if self.header.dtype != Dtype::F32 {
            return Err(Error::dataset(
                &self.path,
                DatasetProblem::Dtype {
                    expected: "<f4 (float32)".into(),
                    got: descr_name(self.header.dtype, self.header.big_endian),
                },
            ));
        }
        match self.header.shape[..] {
            [r, c] => Ok((r, c)),
            ref s => Err(Error::dataset(
                &self.path,
                DatasetProblem::Mismatch(format!("expected a 2-D array (N, P), got shape {s:?}")),
            )),
        }
    }

    /// Reads the given rows (ascending, in range) of a 2-D float32 array, seeking over the rest.
    pub fn read_f32_rows(&mut self, rows: &[usize]) -> Result<Vec<f32>> {
        let (n, cols) = self.f32_matrix_dims()?;
        if let Some(w) = rows.windows(2).find(|w| w[0] >= w[1]) {
            return Err(Error::Input(format!(
                "row selection must ascend, got {} then {}",
                w[0], w[1]
            )));
        }
        if let Some(&r) = rows.iter().find(|&&r| r >= n) {
            return Err(Error::Input(format!(
                "row {r} out of range for {} rows of {}",
                n,
                self.path.display()
            )));
        }
        let row_bytes = cols * 4;
        let mut out = Vec::with_capacity(rows.len() * cols);
        let mut buf = vec![0u8; row_bytes];
        let mut pos = self.header.data_offset;
        self.file
            .seek(SeekFrom::Start(pos as u64))
            .map_err(io_err(&self.path))?;
        for &r in rows {
            let at = self.header.data_offset + r * row_bytes;
            self.file
                .seek_relative(at as i64 - pos as i64)
                .map_err(io_err(&self.path))?;
            self.file.read_exact(&mut buf).map_err(io_err(&self.path))?;
            pos = at + row_bytes;
            let big = self.header.big_endian;
            out.extend(buf.chunks_exact(4).map(|c| {
                let b = [c[0], c[1], c[2], c[3]];
                if big {
                    f32::from_be_bytes(b)
                } else {
                    f32::from_le_bytes(b)
                }
            }));
        }
        Ok(out)
    }

    /// Reads a 1-D integer array (a split-index file) as indices.
    pub fn read_indices(mut self) -> Result<Vec<usize>> {
        let path = self.path.clone();
        let bad = |p| Error::dataset(&path, p);
        if self.header.shape.len() != 1 {
            return Err(bad(DatasetProblem::Mismatch(format!(
                "expected a 1-D index array, got shape {:?}",
                self.header.shape
            ))));
        }
        let size = self.header.dtype.size();
        if !matches!(self.header.dtype, Dtype::I32 | Dtype::I64) {
            return Err(bad(DatasetProblem::Dtype {
                expected: "<i4 or <i8 (integers)".into(),
                got: descr_name(self.header.dtype, self.header.big_endian),
            }));
        }
        let mut raw = vec![0u8; self.header.data_bytes()];
        self.file
            .seek(SeekFrom::Start(self.header.data_offset as u64))
            .map_err(io_err(&path))?;
        self.file.read_exact(&mut raw).map_err(io_err(&path))?;
        raw.chunks_exact(size)
            .map(|c| {
                let mut b = [0u8; 8];
                let v = if self.header.big_endian {
                    b[8 - size..].copy_from_slice(c);
                    i64::from_be_bytes(b) >> (64 - 8 * size)
                } else {
                    b[..size].copy_from_slice(c);
                    i64::from_le_bytes(b) << (64 - 8 * size) >> (64 - 8 * size)
                };
                usize::try_from(v)
                    .map_err(|_| bad(DatasetProblem::Mismatch(format!("negative index {v}"))))
            })
            .collect()
    }
}

/// Writes a row-major (rows, cols) float32 matrix as a version-1.0 `.npy` file.
pub fn write_f32_matrix(path: &Path, rows: usize, cols: usize, data: &[f32]) -> Result<()> {
    if data.len() != rows * cols {
        return Err(Error::shape(
            "npy matrix data",
            &[rows * cols],
            &[data.len()],
        ));
    }
    let file = File::create(path).map_err(io_err(path))?;
    let mut w = BufWriter::new(file);
    w.write_all(&header_bytes(Dtype::F32, &[rows, cols]))
        .map_err(io_err(path))?;
    for v in data {
        w.write_all(&v.to_le_bytes()).map_err(io_err(path))?;
    }
    w.flush().map_err(io_err(path))
}

/// Writes indices as a 1-D int64 `.npy` file (a split-index file).
pub fn write_indices(path: &Path, indices: &[usize]) -> Result<()> {
    let mut bytes = header_bytes(Dtype::I64, &[indices.len()]);
    for &i in indices {
        bytes.extend((i as i64).to_le_bytes());
    }
    std::fs::write(path, bytes).map_err(io_err(path))
}
