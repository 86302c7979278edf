//! CSV tables (`layout.csv`, `metrics.csv.gz`): a header and string cells, gzip by file extension;
//! reading and writing them needs the `zoo-csv` feature (csv, flate2).

use std::path::Path;

use crate::error::{DatasetProblem, Error, Result};

/// A CSV table held as strings; typed access goes through [`Table::column`] and friends.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

#[cfg(feature = "zoo-csv")]
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
        parse(path, raw)
    }

    /// Writes the table as CSV, gzipped when the name ends in `.gz`, through a temporary name.
    pub fn write_csv(&self, path: &Path) -> Result<()> {
        crate::io::write_file(path, &format(self, path)?)
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

/// The table in `raw`, the bytes of `path` (csv and flate2, feature `zoo-csv`).
#[cfg(feature = "zoo-csv")]
fn parse(path: &Path, raw: Vec<u8>) -> Result<Table> {
    use std::io::Read;
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
    let malformed = |e: csv::Error| Error::dataset(path, DatasetProblem::Malformed(e.to_string()));
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

/// The bytes of `table` as the CSV file `path`.
#[cfg(feature = "zoo-csv")]
fn format(table: &Table, path: &Path) -> Result<Vec<u8>> {
    use std::io::Write;
    let io = |source| Error::Io {
        path: path.into(),
        source,
    };
    let mut w = csv::Writer::from_writer(Vec::new());
    let csv_err = |e: csv::Error| Error::format(path, e.to_string());
    w.write_record(&table.header).map_err(csv_err)?;
    for r in &table.rows {
        w.write_record(r).map_err(csv_err)?;
    }
    let text = w
        .into_inner()
        .map_err(|e| Error::format(path, e.to_string()))?;
    if !is_gz(path) {
        return Ok(text);
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&text).map_err(io)?;
    gz.finish().map_err(io)
}

#[cfg(not(feature = "zoo-csv"))]
fn parse(path: &Path, _raw: Vec<u8>) -> Result<Table> {
    Err(without_feature(path))
}

#[cfg(not(feature = "zoo-csv"))]
fn format(_table: &Table, path: &Path) -> Result<Vec<u8>> {
    Err(without_feature(path))
}

/// Zoo tables need the csv and flate2 crates, which a lean library build leaves out.
#[cfg(not(feature = "zoo-csv"))]
fn without_feature(path: &Path) -> Error {
    Error::Input(format!(
        "{}: reading and writing zoo tables (layout.csv, metrics.csv.gz) needs the crate feature \
         `zoo-csv` (on by default)",
        path.display()
    ))
}
