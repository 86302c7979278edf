//! `.npy` files through the `npyz` crate: row-selective reads of 2-D float32 arrays (so a zoo far
//! larger than memory can be filtered before it is read), integer index arrays, and writing.

use std::fmt::Display;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use npyz::{DType, NpyHeader, Order, TypeChar, TypeStr, WriteOptions, WriterBuilder};

use crate::error::{DatasetProblem, Error, Result};

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.into(),
        source,
    }
}

/// Little-endian scalar dtype, e.g. `le('f', 4)` is `<f4`.
fn le(code: char, size: u8) -> DType {
    let ty: TypeStr = format!("<{code}{size}")
        .parse()
        .expect("a little-endian numeric type string is valid");
    DType::new_scalar(ty)
}

/// The dtype as numpy spells it (`<f8`, not `'<f8'`).
fn descr(dtype: &DType) -> String {
    match dtype {
        DType::Plain(ty) => ty.to_string(),
        other => other.descr(),
    }
}

/// Notes whether a read found the end of the input, so a header cut short reads as truncated
/// (`npyz` reports a file shorter than the magic bytes as a bad magic).
struct EofAware<R> {
    inner: R,
    hit_eof: bool,
}

impl<R: Read> Read for EofAware<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hit_eof |= n == 0 && !buf.is_empty();
        Ok(n)
    }
}

/// Parses the header at the reader's position with `npyz`, leaving the reader at the data.
fn read_header(r: impl Read) -> std::result::Result<NpyHeader, DatasetProblem> {
    let mut r = EofAware {
        inner: r,
        hit_eof: false,
    };
    NpyHeader::from_reader(&mut r).map_err(|e| {
        if r.hit_eof {
            DatasetProblem::Truncated(format!("the file ends inside the npy header ({e})"))
        } else {
            DatasetProblem::Malformed(format!("bad npy header: {e}"))
        }
    })
}

/// Refuses a preamble whose header length runs past the end of the file (`npyz` allocates the
/// claimed length, up to 4 GiB, before reading it); leaves the file at its start.
fn check_header_len(file: &mut File, size: u64, path: &Path) -> Result<()> {
    let mut pre = Vec::with_capacity(12);
    file.take(12).read_to_end(&mut pre).map_err(io_err(path))?;
    file.seek(SeekFrom::Start(0)).map_err(io_err(path))?;
    if pre.len() < 10 || !pre.starts_with(b"\x93NUMPY") {
        return Ok(());
    }
    let (start, len) = match pre[6] {
        1 => (10, u64::from(u16::from_le_bytes([pre[8], pre[9]]))),
        _ if pre.len() == 12 => (
            12,
            u64::from(u32::from_le_bytes([pre[8], pre[9], pre[10], pre[11]])),
        ),
        _ => return Ok(()),
    };
    if start + len > size {
        return Err(Error::dataset(
            path,
            DatasetProblem::Truncated(format!(
                "the npy header claims {len} bytes, the file has {size} in all"
            )),
        ));
    }
    Ok(())
}

/// An open `.npy` file whose header has been checked against the file's size.
pub struct NpyFile {
    path: PathBuf,
    file: BufReader<File>,
    header: NpyHeader,
    shape: Vec<usize>,
    data_offset: u64,
}

impl NpyFile {
    /// Opens `path`, parses the header and checks that the file holds exactly the announced data.
    pub fn open(path: &Path) -> Result<Self> {
        let bad = |p| Error::dataset(path, p);
        let file = File::open(path).map_err(io_err(path))?;
        let size = file.metadata().map_err(io_err(path))?.len();
        let mut file = file;
        check_header_len(&mut file, size, path)?;
        let mut file = BufReader::new(file);
        let header = read_header(&mut file).map_err(bad)?;
        let data_offset = file.stream_position().map_err(io_err(path))?;
        if header.order() == Order::Fortran {
            return Err(bad(DatasetProblem::Malformed(
                "Fortran-order arrays are not supported (save a C-contiguous copy)".into(),
            )));
        }
        let dtype = header.dtype();
        let item = dtype.num_bytes().filter(|_| !header.uses_pickled_array());
        let item = item.ok_or_else(|| {
            bad(DatasetProblem::Dtype {
                expected: "a fixed-size numeric dtype".into(),
                got: descr(&dtype),
            })
        })?;
        // Checked here: npyz does not check its own element count (see Cargo.toml).
        let overflow = || {
            bad(DatasetProblem::Malformed(format!(
                "shape {:?} overflows",
                header.shape()
            )))
        };
        let shape = header
            .shape()
            .iter()
            .map(|&d| usize::try_from(d).map_err(|_| overflow()))
            .collect::<Result<Vec<usize>>>()?;
        let data_bytes = shape
            .iter()
            .try_fold(item, |a, &d| a.checked_mul(d))
            .and_then(|b| u64::try_from(b).ok())
            .ok_or_else(overflow)?;
        let have = size.saturating_sub(data_offset);
        if have < data_bytes {
            return Err(bad(DatasetProblem::Truncated(format!(
                "shape {shape:?} needs {data_bytes} data bytes, the file has {have}"
            ))));
        }
        if have > data_bytes {
            return Err(bad(DatasetProblem::Malformed(format!(
                "{} bytes after the {data_bytes} data bytes of shape {shape:?}",
                have - data_bytes
            ))));
        }
        Ok(NpyFile {
            path: path.into(),
            file,
            header,
            shape,
            data_offset,
        })
    }

    /// (rows, columns) of a 2-D little-endian float32 array, or the error that says why this is not one.
    pub fn f32_matrix_dims(&self) -> Result<(usize, usize)> {
        let dtype = self.header.dtype();
        if dtype != le('f', 4) {
            return Err(Error::dataset(
                &self.path,
                DatasetProblem::Dtype {
                    expected: "<f4 (little-endian float32)".into(),
                    got: descr(&dtype),
                },
            ));
        }
        match self.shape[..] {
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
        let mut pos = self.data_offset;
        self.file
            .seek(SeekFrom::Start(pos))
            .map_err(io_err(&self.path))?;
        for &r in rows {
            let at = self.data_offset + (r * row_bytes) as u64;
            self.file
                .seek_relative(at as i64 - pos as i64)
                .map_err(io_err(&self.path))?;
            self.file.read_exact(&mut buf).map_err(io_err(&self.path))?;
            pos = at + row_bytes as u64;
            out.extend(
                buf.chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
            );
        }
        Ok(out)
    }

    /// Reads a 1-D integer array (a split-index file) of any integer dtype as indices.
    pub fn read_indices(mut self) -> Result<Vec<usize>> {
        let path = self.path;
        if self.shape.len() != 1 {
            return Err(Error::dataset(
                &path,
                DatasetProblem::Mismatch(format!(
                    "expected a 1-D index array, got shape {:?}",
                    self.shape
                )),
            ));
        }
        self.file
            .seek(SeekFrom::Start(self.data_offset))
            .map_err(io_err(&path))?;
        let dtype = self.header.dtype();
        let int = match &dtype {
            DType::Plain(ty) => Some((ty.type_char(), ty.size_field())),
            _ => None,
        };
        let npy = npyz::NpyFile::with_header(self.header, self.file);
        match int {
            Some((TypeChar::Int, 1)) => indices::<i8>(npy, &path),
            Some((TypeChar::Int, 2)) => indices::<i16>(npy, &path),
            Some((TypeChar::Int, 4)) => indices::<i32>(npy, &path),
            Some((TypeChar::Int, 8)) => indices::<i64>(npy, &path),
            Some((TypeChar::Uint, 1)) => indices::<u8>(npy, &path),
            Some((TypeChar::Uint, 2)) => indices::<u16>(npy, &path),
            Some((TypeChar::Uint, 4)) => indices::<u32>(npy, &path),
            Some((TypeChar::Uint, 8)) => indices::<u64>(npy, &path),
            _ => Err(Error::dataset(
                &path,
                DatasetProblem::Dtype {
                    expected: "an integer dtype (e.g. <i8)".into(),
                    got: descr(&dtype),
                },
            )),
        }
    }
}

/// Decodes every element of `npy` as `T` (npyz handles the byte order) and converts it to an index.
fn indices<T>(npy: npyz::NpyFile<BufReader<File>>, path: &Path) -> Result<Vec<usize>>
where
    T: npyz::Deserialize + Copy + Display,
    usize: TryFrom<T>,
{
    let got = descr(&npy.dtype());
    let data = npy.data::<T>().map_err(|e| {
        Error::dataset(
            path,
            DatasetProblem::Dtype {
                expected: format!("an integer dtype ({e})"),
                got,
            },
        )
    })?;
    data.map(|v| {
        let v = v.map_err(io_err(path))?;
        usize::try_from(v).map_err(|_| {
            Error::dataset(
                path,
                DatasetProblem::Mismatch(format!("negative index {v}")),
            )
        })
    })
    .collect()
}

/// Writes `data` as a C-order `.npy` array of the given shape and little-endian dtype, through
/// a temporary name ([`crate::io::write_atomic`]).
fn write<T: npyz::Serialize>(
    path: &Path,
    dtype: DType,
    shape: &[usize],
    data: impl IntoIterator<Item = T>,
) -> Result<()> {
    crate::io::write_atomic(path, |path| {
        let file = File::create(path).map_err(io_err(path))?;
        let shape: Vec<u64> = shape.iter().map(|&d| d as u64).collect();
        let mut w = WriteOptions::new()
            .dtype(dtype)
            .shape(&shape)
            .writer(BufWriter::new(file))
            .begin_nd()
            .map_err(io_err(path))?;
        w.extend(data).map_err(io_err(path))?;
        w.finish().map_err(io_err(path))
    })
}

/// Writes a row-major (rows, cols) float32 matrix as a `.npy` file.
pub fn write_f32_matrix(path: &Path, rows: usize, cols: usize, data: &[f32]) -> Result<()> {
    if data.len() != rows * cols {
        return Err(Error::shape(
            "npy matrix data",
            &[rows * cols],
            &[data.len()],
        ));
    }
    write(path, le('f', 4), &[rows, cols], data.iter().copied())
}

/// Writes indices as a 1-D int64 `.npy` file (a split-index file).
pub fn write_indices(path: &Path, indices: &[usize]) -> Result<()> {
    write(
        path,
        le('i', 8),
        &[indices.len()],
        indices.iter().map(|&i| i as i64),
    )
}
