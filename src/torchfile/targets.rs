//! Target lists: a CSV whose header is `file,label` (classification) or `file,accuracy`
//! (regression), one row per state-dict file, paths relative to the CSV's folder. The rows
//! define the data set and its order; files of the folder that no row names are not read.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::error::{DatasetProblem, Error, Result};
use crate::zoo::Table;

/// What a target list gives each file.
#[derive(Clone, Debug, PartialEq)]
pub enum Targets {
    /// Class indices (`file,label`).
    Labels(Vec<usize>),
    /// Accuracies in [0, 1] (`file,accuracy`).
    Accuracies(Vec<f64>),
}

/// The files a target list names, in its row order, and their targets.
#[derive(Clone, Debug, PartialEq)]
pub struct TargetList {
    /// Each row's file, joined to the CSV's folder.
    pub files: Vec<PathBuf>,
    /// One target per file.
    pub targets: Targets,
}

/// True for a file named `*.csv`.
pub(crate) fn is_csv(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"))
}

impl TargetList {
    /// Reads the CSV `path` (needs the `zoo-csv` feature). Every error names the CSV and the
    /// row: a file that does not exist, a file named twice, a label that is not a non-negative
    /// integer (or is not below `classes`, when given), an accuracy that is not a number in
    /// [0, 1], a header with both `label` and `accuracy` or neither, no rows.
    ///
    /// ```
    /// use monomial_nfn::torchfile::{TargetList, Targets};
    /// let dir = std::env::temp_dir().join("mnfn-doc-targets");
    /// std::fs::create_dir_all(&dir).unwrap();
    /// std::fs::write(dir.join("a.pth"), b"").unwrap();
    /// std::fs::write(dir.join("labels.csv"), "file,label\na.pth,3\n").unwrap();
    /// let list = TargetList::read(&dir.join("labels.csv"), Some(10)).unwrap();
    /// assert_eq!(list.files, [dir.join("a.pth")]);
    /// assert_eq!(list.targets, Targets::Labels(vec![3]));
    /// ```
    pub fn read(path: &Path, classes: Option<usize>) -> Result<Self> {
        let table = Table::read_csv(path)?;
        let bad = |p: DatasetProblem| Error::dataset(path, p);
        let header = table.header();
        let has = |name: &str| header.iter().any(|h| h.trim() == name);
        let kind = match (has("label"), has("accuracy")) {
            (true, true) => {
                return Err(bad(DatasetProblem::Header(format!(
                "{header:?} has both label and accuracy columns; a list holds one kind of target"
            ))))
            }
            (false, false) => {
                return Err(bad(DatasetProblem::MissingColumn(
                    "label or accuracy".into(),
                )))
            }
            (true, false) => "label",
            (false, true) => "accuracy",
        };
        let column = |name: &str| -> Result<Vec<&str>> {
            let c = header
                .iter()
                .position(|h| h.trim() == name)
                .ok_or_else(|| bad(DatasetProblem::MissingColumn(name.into())))?;
            table.column(path, &header[c])
        };
        let (names, cells) = (column("file")?, column(kind)?);
        if names.is_empty() {
            return Err(bad(DatasetProblem::Empty("the list has no rows".into())));
        }
        let dir = path.parent().unwrap_or(Path::new(""));
        let mut seen: HashMap<&str, usize> = HashMap::new();
        let mut files = Vec::with_capacity(names.len());
        for (r, name) in names.iter().map(|n| n.trim()).enumerate() {
            // Rows count from 2: the header is line 1.
            let row = r + 2;
            if let Some(first) = seen.insert(name, row) {
                return Err(bad(DatasetProblem::DuplicateRow(format!(
                    "row {row} names {name:?}, as row {first} does"
                ))));
            }
            let file = dir.join(name);
            if name.is_empty() || !file.is_file() {
                return Err(bad(DatasetProblem::MissingFile(format!(
                    "row {row} names {name:?}: no such file {}",
                    file.display()
                ))));
            }
            files.push(file);
        }
        let targets = if kind == "label" {
            let labels = cells
                .iter()
                .enumerate()
                .map(|(r, s)| {
                    let l: usize = s.trim().parse().map_err(|_| {
                        bad(DatasetProblem::BadValue(format!(
                            "row {}: label {s:?} is not a class index (a non-negative integer)",
                            r + 2
                        )))
                    })?;
                    match classes {
                        Some(c) if l >= c => Err(bad(DatasetProblem::OutOfRange(format!(
                            "row {}: label {l}, but the models have {c} classes (0..{c})",
                            r + 2
                        )))),
                        _ => Ok(l),
                    }
                })
                .collect::<Result<_>>()?;
            Targets::Labels(labels)
        } else {
            let accuracies = cells
                .iter()
                .enumerate()
                .map(|(r, s)| {
                    let a: f64 = s.trim().parse().map_err(|_| {
                        bad(DatasetProblem::BadValue(format!(
                            "row {}: accuracy {s:?} is not a number",
                            r + 2
                        )))
                    })?;
                    if !(0.0..=1.0).contains(&a) {
                        return Err(bad(DatasetProblem::OutOfRange(format!(
                            "row {}: accuracy {s:?} is not in [0, 1]",
                            r + 2
                        ))));
                    }
                    Ok(a)
                })
                .collect::<Result<_>>()?;
            Targets::Accuracies(accuracies)
        };
        Ok(TargetList { files, targets })
    }
}
