//! Tables of named columns (the object tables of `haloflow objects`), written as CSV or
//! as Parquet (one row group, Snappy-compressed, through the `parquet` crate's
//! low-level writer: no Arrow).

use std::path::Path;
use std::sync::Arc;

use parquet::basic::{Compression, IntType, LogicalType, Repetition, Type as Physical};
use parquet::data_type::{DoubleType, Int64Type};
use parquet::errors::ParquetError;
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::Type;

use crate::error::{Error, Result};

/// One column's values.
#[derive(Clone, Debug, PartialEq)]
pub enum Values {
    /// Unsigned integers (labels, counts, indices): Parquet `INT64` annotated as
    /// unsigned 64-bit, which readers (pyarrow, pandas, polars) read as `uint64`.
    UInt(Vec<u64>),
    /// Floating-point values: Parquet `DOUBLE`.
    Float(Vec<f64>),
}

impl Values {
    fn len(&self) -> usize {
        match self {
            Values::UInt(v) => v.len(),
            Values::Float(v) => v.len(),
        }
    }

    /// Row `i` as CSV text: floats as Rust's shortest round-trip form (`1.0`, `2.5e-7`).
    fn text(&self, i: usize) -> String {
        match self {
            Values::UInt(v) => v[i].to_string(),
            Values::Float(v) => format!("{:?}", v[i]),
        }
    }
}

/// A table: named columns of equal length.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Table {
    /// The columns, in order.
    pub columns: Vec<(String, Values)>,
}

/// The formats a table is written in, chosen by the file's extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TableFormat {
    /// `.csv`: a header line, then one line per row.
    Csv,
    /// `.parquet`: Apache Parquet.
    Parquet,
}

impl TableFormat {
    /// The format of a file named `path` (`.csv` or `.parquet`, any case).
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for any other extension.
    pub fn of(path: &Path) -> Result<TableFormat> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or_default();
        if ext.eq_ignore_ascii_case("csv") {
            Ok(TableFormat::Csv)
        } else if ext.eq_ignore_ascii_case("parquet") || ext.eq_ignore_ascii_case("pq") {
            Ok(TableFormat::Parquet)
        } else {
            Err(Error::InvalidParameter {
                op: "objects",
                message: format!(
                    "{}: a table is written as CSV or Parquet; name it .csv or .parquet",
                    path.display()
                ),
            })
        }
    }
}

impl Table {
    /// The number of rows.
    pub fn rows(&self) -> usize {
        self.columns.first().map_or(0, |(_, v)| v.len())
    }

    /// The table as CSV: the column names, then a line per row.
    pub fn to_csv(&self) -> String {
        let names: Vec<&str> = self.columns.iter().map(|(n, _)| n.as_str()).collect();
        let mut out = names.join(",") + "\n";
        for i in 0..self.rows() {
            let row: Vec<String> = self.columns.iter().map(|(_, v)| v.text(i)).collect();
            out += &(row.join(",") + "\n");
        }
        out
    }

    /// The table as a Parquet file's bytes: every column required, one row group.
    fn to_parquet(&self) -> std::result::Result<Vec<u8>, ParquetError> {
        let fields = self
            .columns
            .iter()
            .map(|(name, values)| {
                let field = match values {
                    Values::UInt(_) => Type::primitive_type_builder(name, Physical::INT64)
                        .with_logical_type(Some(LogicalType::Integer(IntType {
                            bit_width: 64,
                            is_signed: false,
                        }))),
                    Values::Float(_) => Type::primitive_type_builder(name, Physical::DOUBLE),
                };
                field
                    .with_repetition(Repetition::REQUIRED)
                    .build()
                    .map(Arc::new)
            })
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let schema = Type::group_type_builder("table")
            .with_fields(fields)
            .build()?;
        let properties = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_created_by(format!("haloflow {}", env!("CARGO_PKG_VERSION")))
            .build();
        let mut writer =
            SerializedFileWriter::new(Vec::new(), Arc::new(schema), Arc::new(properties))?;
        let mut group = writer.next_row_group()?;
        for (_, values) in &self.columns {
            let mut column = group
                .next_column()?
                .ok_or_else(|| ParquetError::General("a column short".into()))?;
            match values {
                // Unsigned 64-bit values are stored in INT64's bits, as Parquet says.
                Values::UInt(v) => {
                    let bits: Vec<i64> = v.iter().map(|&x| x as i64).collect();
                    column.typed::<Int64Type>().write_batch(&bits, None, None)?;
                }
                Values::Float(v) => {
                    column.typed::<DoubleType>().write_batch(v, None, None)?;
                }
            }
            column.close()?;
        }
        group.close()?;
        writer.into_inner()
    }

    /// Writes the table to `path` in the format its extension names, atomically (a
    /// temporary file beside it, then a rename): a reader never sees half a table.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for an extension other than `.csv` or `.parquet`
    /// (before anything is written); [`Error::Store`] if the file cannot be written.
    pub fn write(&self, path: &Path) -> Result<()> {
        let bytes = match TableFormat::of(path)? {
            TableFormat::Csv => self.to_csv().into_bytes(),
            TableFormat::Parquet => self.to_parquet().map_err(|e| Error::Store {
                path: path.to_path_buf(),
                message: format!("writing Parquet: {e}"),
            })?,
        };
        crate::store::write_file(path, &bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use parquet::file::reader::{FileReader, SerializedFileReader};
    use parquet::record::Field;

    fn sample() -> Table {
        Table {
            columns: vec![
                ("label".into(), Values::UInt(vec![1, u64::MAX - 1])),
                ("centroid-0".into(), Values::Float(vec![0.5, 2.0 / 3.0])),
            ],
        }
    }

    #[test]
    fn csv_has_a_header_and_a_line_per_row() {
        assert_eq!(
            sample().to_csv(),
            "label,centroid-0\n1,0.5\n18446744073709551614,0.6666666666666666\n"
        );
    }

    #[test]
    fn parquet_reads_back_with_every_value_exact() {
        let path =
            std::env::temp_dir().join(format!("haloflow-table-{}.parquet", std::process::id()));
        sample().write(&path).unwrap();
        let reader = SerializedFileReader::new(std::fs::File::open(&path).unwrap()).unwrap();
        assert_eq!(reader.metadata().file_metadata().num_rows(), 2);
        let rows: Vec<Vec<Field>> = reader
            .get_row_iter(None)
            .unwrap()
            .map(|r| {
                r.unwrap()
                    .into_columns()
                    .into_iter()
                    .map(|(_, f)| f)
                    .collect()
            })
            .collect();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(
            rows,
            vec![
                vec![Field::ULong(1), Field::Double(0.5)],
                vec![Field::ULong(u64::MAX - 1), Field::Double(2.0 / 3.0)],
            ]
        );
    }

    #[test]
    fn other_extensions_are_refused_before_writing() {
        let path = std::env::temp_dir().join("haloflow-table.xlsx");
        let e = sample().write(&path).unwrap_err();
        assert!(e.to_string().contains("CSV or Parquet"), "{e}");
        assert!(!path.exists());
    }
}
