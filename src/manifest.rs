//! Completeness manifests of generated outputs (zoo directories, INR sets): every file's size
//! and FNV-1a hash, written last. A cache whose manifest is missing or disagrees with its files
//! (an interrupted write, a damaged disk) is never reused as if it were complete.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{DatasetProblem, Error, Result};

/// The `format` field of a manifest.
pub const FORMAT: &str = "monomial-nfn-manifest";

#[derive(Serialize, Deserialize)]
struct Manifest {
    format: String,
    files: Vec<Entry>,
}

#[derive(Serialize, Deserialize)]
struct Entry {
    name: String,
    bytes: u64,
    fnv1a64: String,
}

/// FNV-1a's 64-bit offset basis: the hash of nothing.
pub(crate) const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// FNV-1a (64-bit) of `hash`'s input followed by `bytes`.
pub(crate) fn fnv1a_extend(hash: u64, bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .fold(hash, |h, &b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3))
}

/// Size and FNV-1a (64-bit, hex) of a file, read in blocks (a zoo's weights may be large).
/// FNV-1a is cheap, dependency-free, and enough to catch truncation and corruption (not an
/// adversary).
fn size_and_hash(path: &Path) -> Result<(u64, String)> {
    use std::io::Read;
    let io = |e| Error::io(path, e);
    let mut file = std::io::BufReader::new(std::fs::File::open(path).map_err(io)?);
    let (mut hash, mut size) = (FNV_OFFSET, 0u64);
    let mut block = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut block).map_err(io)?;
        if n == 0 {
            return Ok((size, format!("{hash:016x}")));
        }
        size += n as u64;
        hash = fnv1a_extend(hash, &block[..n]);
    }
}

/// Writes the manifest `manifest` of `files` (names in the manifest's directory, already
/// complete on disk), through a temporary name.
pub fn write(manifest: &Path, files: &[&str]) -> Result<()> {
    let dir = manifest.parent().unwrap_or(Path::new(""));
    let files = files
        .iter()
        .map(|&name| {
            let (bytes, fnv1a64) = size_and_hash(&dir.join(name))?;
            Ok(Entry {
                name: name.into(),
                bytes,
                fnv1a64,
            })
        })
        .collect::<Result<_>>()?;
    let m = Manifest {
        format: FORMAT.into(),
        files,
    };
    let text = serde_json::to_string_pretty(&m)
        .map_err(|e| Error::format(manifest, format!("JSON: {e}")))?;
    crate::io::write_file(manifest, text.as_bytes())
}

/// Checks every file the manifest `manifest` lists against its size and hash; the error names
/// the first file that is missing, truncated or changed (or the manifest's own problem).
pub fn verify(manifest: &Path) -> Result<()> {
    let problem = |path: &Path, p: DatasetProblem| Err(Error::dataset(path, p));
    let text = match std::fs::read(manifest) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return problem(
                manifest,
                DatasetProblem::Truncated(
                    "no manifest: the write was interrupted or the files predate it".into(),
                ),
            )
        }
        other => other.map_err(|e| Error::io(manifest, e))?,
    };
    let m: Manifest = match serde_json::from_slice(&text) {
        Ok(m) => m,
        Err(e) => return problem(manifest, DatasetProblem::Malformed(e.to_string())),
    };
    if m.format != FORMAT {
        return problem(
            manifest,
            DatasetProblem::Malformed(format!("format {:?}, expected {FORMAT:?}", m.format)),
        );
    }
    let dir = manifest.parent().unwrap_or(Path::new(""));
    for e in &m.files {
        let path = dir.join(&e.name);
        let (bytes, hash) = size_and_hash(&path)?;
        if bytes != e.bytes {
            return problem(
                &path,
                DatasetProblem::Truncated(format!(
                    "{bytes} bytes where the manifest records {}",
                    e.bytes
                )),
            );
        }
        if hash != e.fnv1a64 {
            return problem(
                &path,
                DatasetProblem::Mismatch(format!(
                    "content hash {hash} where the manifest records {}",
                    e.fnv1a64
                )),
            );
        }
    }
    Ok(())
}

/// Whether the cached `path` (a zoo directory, an INR set, a state-dict set's cache file)
/// exists and passes `verify`. One that fails is removed, with a warning naming why, so that it
/// is generated afresh.
pub(crate) fn reusable(path: &Path, verify: impl Fn(&Path) -> Result<()>) -> Result<bool> {
    if !path.exists() {
        return Ok(false);
    }
    let Err(why) = verify(path) else {
        return Ok(true);
    };
    log::warn!(
        "the cached {} is incomplete or damaged ({why}); making it again",
        path.display()
    );
    let removed = if path.is_dir() {
        std::fs::remove_dir_all(path)
    } else {
        std::fs::remove_file(path)
    };
    removed.map_err(|e| Error::io(path, e))?;
    Ok(false)
}
