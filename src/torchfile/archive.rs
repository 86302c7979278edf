//! The zip container `torch.save` writes: `<prefix>/data.pkl` (the pickled index),
//! `<prefix>/data/<key>` (one raw storage each, stored uncompressed), `<prefix>/byteorder` and
//! `<prefix>/version`. Every entry's size is checked against the archive's own length before
//! anything is allocated for it.

use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};

use zip::result::ZipError;
use zip::ZipArchive;

use crate::error::{Error, Result, TorchProblem};

/// An opened `torch.save` archive.
pub(crate) struct Archive {
    zip: ZipArchive<Cursor<Vec<u8>>>,
    /// `<prefix>/`, the folder every entry lives in.
    prefix: String,
    /// Bytes in the whole file: no entry can hold more.
    len: u64,
    path: PathBuf,
}

impl Archive {
    /// Opens the archive in `bytes` (the whole file at `path`) and checks its byte order.
    pub fn open(path: &Path, bytes: Vec<u8>) -> Result<Self> {
        let len = bytes.len() as u64;
        let zip = ZipArchive::new(Cursor::new(bytes)).map_err(|e| {
            let problem = match e {
                ZipError::Io(_) | ZipError::InvalidArchive(_) => TorchProblem::Truncated(format!(
                    "not a complete zip archive ({e}); the file may have been cut short"
                )),
                _ => TorchProblem::Malformed(format!("zip archive: {e}")),
            };
            Error::torch(path, problem)
        })?;
        let pickles: Vec<&str> = zip
            .file_names()
            .filter(|n| *n == "data.pkl" || n.ends_with("/data.pkl"))
            .collect();
        let prefix = match pickles[..] {
            [one] => one.trim_end_matches("data.pkl").to_string(),
            [] => {
                return Err(Error::torch(
                    path,
                    TorchProblem::Malformed("the archive has no data.pkl".into()),
                ))
            }
            _ => {
                return Err(Error::torch(
                    path,
                    TorchProblem::Malformed(format!(
                        "the archive has {} data.pkl entries",
                        pickles.len()
                    )),
                ))
            }
        };
        let mut archive = Archive {
            zip,
            prefix,
            len,
            path: path.into(),
        };
        let name = format!("{}byteorder", archive.prefix);
        if archive.zip.index_for_name(&name).is_some() {
            let order = archive.entry(&name, 0)?;
            if order != b"little" {
                return Err(Error::torch(
                    path,
                    TorchProblem::Malformed(format!(
                        "byte order {:?}: only little-endian archives are read",
                        String::from_utf8_lossy(&order)
                    )),
                ));
            }
        }
        Ok(archive)
    }

    /// The whole entry `name`, which must hold at least `need` bytes and no more than the file.
    fn entry(&mut self, name: &str, need: u64) -> Result<Vec<u8>> {
        let (len, path) = (self.len, &self.path);
        let problem = |p| Error::torch(path, p);
        let mut f = match self.zip.by_name(name) {
            Ok(f) => f,
            Err(ZipError::FileNotFound) => {
                return Err(problem(TorchProblem::Storage(format!(
                    "the archive has no entry {name}"
                ))))
            }
            Err(e) => {
                return Err(problem(TorchProblem::Malformed(format!(
                    "entry {name}: {e}"
                ))))
            }
        };
        let size = f.size();
        if size < need {
            return Err(problem(TorchProblem::Storage(format!(
                "entry {name} holds {size} bytes but {need} are claimed"
            ))));
        }
        if size > len {
            return Err(problem(TorchProblem::Truncated(format!(
                "entry {name} claims {size} bytes; the whole file has {len}"
            ))));
        }
        let mut out = Vec::with_capacity(size as usize);
        if let Err(e) = f.read_to_end(&mut out) {
            return Err(problem(TorchProblem::Truncated(format!(
                "entry {name}: {e}"
            ))));
        }
        Ok(out)
    }

    /// `<prefix>/data.pkl`.
    pub fn pickle(&mut self) -> Result<Vec<u8>> {
        let name = format!("{}data.pkl", self.prefix);
        self.entry(&name, 0)
    }

    /// The bytes of storage `key` (`<prefix>/data/<key>`), which must hold at least `need` bytes.
    pub fn storage(&mut self, key: &str, need: u64) -> Result<Vec<u8>> {
        let name = format!("{}data/{key}", self.prefix);
        self.entry(&name, need)
    }
}
