//! CSV tables (`layout.csv`, `metrics.csv.gz`): a header and string cells, gzip by file extension.

use std::io::{Read, Write};
use std::path::Path;

use crate::error::{DatasetProblem, Error, Result};

/// A CSV table held as strings; typed access goes through [`Table::column`] and friends.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

fn is_gz(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "gz")
}

impl Table {
    /// A table from a header and rows of the same width.
    pub fn new(header: Vec<String>, rows: Vec<Vec<String>>) -> Self {
        Table { header, rows }
    }

    /// Reads a CSV file, gunzipping it first when its name ends in `.gz`.
    pub fn read_csv(path: &Path) -> Result<Self> {
        let raw = std::fs::read(path).map_err(|source| Error::Io {
            path: path.into(),
            source,
        })?;
        let text = if is_gz(path) {
            let mut out = Vec::new();
            flate2::read::MultiGzDecoder::new(&raw[..])
                .read_to_end(&mut out)
                .map_err(|e| Error::dataset(path, DatasetProblem::Gzip(e.to_string())))?;
            out
        } else {
            raw
        };
        let mut reader = csv::ReaderBuilder::new().from_reader(&text[..]);
        let malformed =
            |e: csv::Error| Error::dataset(path, DatasetProblem::Malformed(e.to_string()));
        let header: Vec<String> = reader
            .headers()
            .map_err(malformed)?
            .iter()
            .map(str::to_string)
            .collect();
        if header.iter().all(|h| h.is_empty()) {
            return Err(Error::dataset(
                path,
                DatasetProblem::Empty("no header row".into()),
            ));
        }
        let rows = reader
            .records()
            .map(|r| r.map(|r| r.iter().map(str::to_string).collect()))
            .collect::<std::result::Result<_, _>>()
            .map_err(malformed)?;
        Ok(Table { header, rows })
    }

    /// Writes the table as CSV, gzipped when the name ends in `.gz`.
    pub fn write_csv(&self, path: &Path) -> Result<()> {
        let io = |source| Error::Io {
            path: path.into(),
            source,
        };
        let mut w = csv::Writer::from_writer(Vec::new());
        let csv_err = |e: csv::Error| Error::format(path, e.to_string());
        w.write_record(&self.header).map_err(csv_err)?;
        for r in &self.rows {
            w.write_record(r).map_err(csv_err)?;
        }
        let text = w
            .into_inner()
            .map_err(|e| Error::format(path, e.to_string()))?;
        let bytes = if is_gz(path) {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            gz.write_all(&text).map_err(io)?;
            gz.finish().map_err(io)?
        } else {
            text
        };
        std::fs::write(path, bytes).map_err(io)
    }

    /// Number of data rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// True when there are no data rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Column names.
    pub fn header(&self) -> &[String] {
        &self.header
    }

    /// True when the table has column `name`.
    pub fn has_column(&self, name: &str) -> bool {
        self.header.iter().any(|h| h == name)
    }

    /// The cells of column `name`, or a missing-column error naming `path`.
    pub fn column(&self, path: &Path, name: &str) -> Result<Vec<&str>> {
        let c = self
            .header
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| Error::dataset(path, DatasetProblem::MissingColumn(name.into())))?;
        Ok(self.rows.iter().map(|r| r[c].as_str()).collect())
    }

    /// Column `name` parsed as numbers (`nan` allowed, as pandas writes missing values).
    pub fn f64_column(&self, path: &Path, name: &str) -> Result<Vec<f64>> {
        self.column(path, name)?
            .iter()
            .enumerate()
            .map(|(r, s)| {
                let s = s.trim();
                if s.is_empty() {
                    return Ok(f64::NAN);
                }
                s.parse().map_err(|_| {
                    Error::dataset(
                        path,
                        DatasetProblem::Malformed(format!(
                            "row {}: {name} = {s:?} is not a number",
                            r + 1
                        )),
                    )
                })
            })
            .collect()
    }

    /// The rows at `indices`, in that order.
    pub fn select(&self, indices: &[usize]) -> Table {
        Table {
            header: self.header.clone(),
            rows: indices.iter().map(|&i| self.rows[i].clone()).collect(),
        }
    }
}
