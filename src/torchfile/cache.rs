//! The one-file cache of a state-dict set: after a folder or list is read file by file, the
//! stacked networks, targets, file names and module names are written as one safetensors file
//! (F64, so every stored float type comes back exactly) under the cache folder, then its
//! manifest (`src/manifest.rs`). The cache lives outside the data folder, so read-only data
//! works; its name comes from the source's canonical path, activation and layer order, and it
//! records a fingerprint of every source file's name, size and modification time (and the
//! target list's): a changed, added or removed file makes it stale, and the set is read again.
//! A cache that fails its manifest or does not parse is removed with a warning and rewritten; a
//! cache that cannot be written is a warning, never an error.

use std::path::{Path, PathBuf};

use super::chain::Chain;
use super::folder::{Listing, StateDictSet};
use crate::error::{Error, Result};
use crate::io::TensorFile;
use crate::spec::NetActivation;
use crate::tensor::Tensor;
use crate::zoo::dataset::activation_name;
use crate::zoo::NetworkFile;

/// The `format` metadata of a cache file.
const FORMAT: &str = "monomial-nfn-state-dict-cache";
/// Metadata keys the cache adds to a network file's (removed again when it is read).
const KEYS: [&str; 5] = [
    "cache.format",
    "cache.fingerprint",
    "cache.modules",
    "cache.has_bias",
    "cache.files",
];

/// FNV-1a (64-bit) over `parts`, each followed by a 0xff separator (never a UTF-8 byte).
fn fnv1a(parts: &[&[u8]]) -> u64 {
    use crate::manifest::{fnv1a_extend, FNV_OFFSET};
    parts
        .iter()
        .fold(FNV_OFFSET, |h, p| fnv1a_extend(fnv1a_extend(h, p), &[0xff]))
}

/// `name size mtime` of a file, `name ?` when it cannot be read (the read then fails on it).
fn stamp(path: &Path) -> String {
    let meta = std::fs::metadata(path);
    let modified = meta.as_ref().ok().and_then(|m| m.modified().ok());
    match (
        meta,
        modified.and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()),
    ) {
        (Ok(m), Some(t)) => format!("{} {} {}", path.display(), m.len(), t.as_nanos()),
        _ => format!("{} ?", path.display()),
    }
}

/// Where a set's cache lives and the fingerprint its files have now.
pub(crate) struct Cache {
    path: PathBuf,
    manifest: PathBuf,
    fingerprint: String,
    root: PathBuf,
}

impl Cache {
    /// The cache of `source` (listed as `list`, read with `activation` and `layers`) under
    /// `dir/state-dicts/`.
    pub fn new(
        dir: &Path,
        source: &Path,
        list: &Listing,
        activation: NetActivation,
        layers: Option<&[&str]>,
    ) -> Self {
        let canonical = std::fs::canonicalize(source).unwrap_or_else(|_| source.to_path_buf());
        let settings = format!(
            "{} {}",
            activation_name(activation),
            layers.map(|l| l.join(",")).unwrap_or_default()
        );
        let key = fnv1a(&[canonical.to_string_lossy().as_bytes(), settings.as_bytes()]);
        let stem: String = canonical
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .take(40)
            .collect();
        let name = format!("{stem}-{key:016x}");
        let stamps: Vec<String> = list
            .files
            .iter()
            .chain(&list.csv)
            .map(|f| stamp(f))
            .collect();
        let parts: Vec<&[u8]> = std::iter::once(settings.as_bytes())
            .chain(stamps.iter().map(|s| s.as_bytes()))
            .collect();
        let dir = dir.join("state-dicts");
        Cache {
            path: dir.join(format!("{name}.safetensors")),
            manifest: dir.join(format!("{name}.manifest.json")),
            fingerprint: format!("{:016x}", fnv1a(&parts)),
            root: list.root.clone(),
        }
    }

    /// The cached set, when the cache exists, verifies and is current. A damaged one is
    /// removed with a warning; a stale one is left to be overwritten.
    pub fn load(&self) -> Option<StateDictSet> {
        let verified =
            crate::manifest::reusable(&self.path, |_| crate::manifest::verify(&self.manifest));
        match verified {
            Ok(true) => {}
            Ok(false) => return None,
            Err(e) => {
                log::warn!("cannot use the cache {}: {e}", self.path.display());
                return None;
            }
        }
        match self.parse() {
            Ok(set) => set,
            Err(e) => {
                log::warn!(
                    "the cached {} is damaged ({e}); reading the files again",
                    self.path.display()
                );
                None
            }
        }
    }

    /// The cache file's set, or None when its fingerprint is not the files' current one.
    fn parse(&self) -> Result<Option<StateDictSet>> {
        let path = &self.path;
        let mut tf = TensorFile::read(path)?;
        let meta = |key: &str| {
            tf.metadata
                .get(key)
                .cloned()
                .ok_or_else(|| Error::format(path, format!("no {key} metadata")))
        };
        if meta("cache.format")? != FORMAT {
            return Err(Error::format(path, "not a state-dict cache"));
        }
        if meta("cache.fingerprint")? != self.fingerprint {
            log::info!("{} is stale: its files changed", path.display());
            return Ok(None);
        }
        fn json<T: serde::de::DeserializeOwned>(path: &Path, key: &str, text: &str) -> Result<T> {
            serde_json::from_str(text).map_err(|e| Error::format(path, format!("{key}: {e}")))
        }
        let modules: Vec<String> = json(path, "modules", &meta("cache.modules")?)?;
        let has_bias: Vec<bool> = json(path, "has_bias", &meta("cache.has_bias")?)?;
        let files: Vec<PathBuf> = json(path, "files", &meta("cache.files")?)?;
        let accuracies = tf.tensors.remove("accuracies").map(|t| t.data);
        for key in KEYS {
            tf.metadata.remove(key);
        }
        let file = NetworkFile::from_tensor_file(path, tf, None)?;
        let n = file.networks.batch();
        let layers = file.spec.num_layers();
        if files.len() != n
            || accuracies.as_ref().is_some_and(|a| a.len() != n)
            || modules.len() != layers
            || has_bias.len() != layers
        {
            return Err(Error::format(
                path,
                "file, accuracy, module and bias counts disagree with the networks",
            ));
        }
        let template = Chain {
            spec: file.spec.clone(),
            network: file.network(0)?,
            modules,
            has_bias,
        };
        Ok(Some(StateDictSet {
            file,
            accuracies,
            root: self.root.clone(),
            files,
            template,
        }))
    }

    /// Writes `set` as the cache; a failure is a warning (the set was read all the same).
    pub fn store(&self, set: &StateDictSet) {
        if let Err(e) = self.try_store(set) {
            log::warn!(
                "could not cache the state dicts as one file ({e}); they are read file by file next time"
            );
        }
    }

    fn try_store(&self, set: &StateDictSet) -> Result<()> {
        let dir = self.path.parent().unwrap_or(Path::new(""));
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let mut tf = set.file.to_tensor_file()?;
        if let Some(a) = &set.accuracies {
            tf.tensors
                .insert("accuracies".into(), Tensor::new(vec![a.len()], a.clone())?);
        }
        let json = |v: serde_json::Result<String>| {
            v.map_err(|e| Error::format(&self.path, format!("JSON: {e}")))
        };
        let t = &set.template;
        for (key, value) in [
            ("cache.format", FORMAT.to_string()),
            ("cache.fingerprint", self.fingerprint.clone()),
            ("cache.modules", json(serde_json::to_string(&t.modules))?),
            ("cache.has_bias", json(serde_json::to_string(&t.has_bias))?),
            ("cache.files", json(serde_json::to_string(&set.files))?),
        ] {
            tf.metadata.insert(key.into(), value);
        }
        crate::io::remove_if_present(&self.manifest)?;
        tf.write(&self.path)?;
        let name = self.path.file_name().unwrap_or_default().to_string_lossy();
        crate::manifest::write(&self.manifest, &[&name])
    }
}
