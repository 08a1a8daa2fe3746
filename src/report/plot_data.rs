//! Series files for `cegraph plots`: CSV/TSV with a header row, or JSON (a list of records,
//! `{"name": [records]}`, or columns as lists). Empty cells are gaps; NaN and infinities
//! are points that cannot be drawn, skipped and counted; any other text where a number
//! belongs is an error naming the file, the row and the column.

use serde_json::Value;

/// A series file that cannot be plotted: each says what, where, and how to fix it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlotError {
    #[error("{file}: no column `{column}` (columns: {available})")]
    NoColumn {
        file: String,
        column: String,
        available: String,
    },
    #[error("{file}: {place}, column `{column}`: `{value}` is not a number")]
    NotNumeric {
        file: String,
        place: String,
        column: String,
        value: String,
    },
    #[error("{file}: {message}")]
    Unreadable { file: String, message: String },
    #[error("{message}")]
    Missing { message: String, help: String },
    /// A node's series file is not in the workspace (nor its result in the cache): the node
    /// has not run.
    #[error("{message}")]
    NotRun { message: String, help: String },
    #[error("chart `{chart}`: {message}")]
    Render { chart: String, message: String },
}

impl PlotError {
    /// How to fix it, for the CLI's help line.
    pub fn help(&self) -> String {
        match self {
            PlotError::NoColumn { .. } => {
                "fix `x`/`y` of the stage's `plots:` entry, or pass --x/--y with a column the file has"
                    .into()
            }
            PlotError::NotNumeric { .. } => {
                "write numbers (NaN and inf are skipped; leave a cell empty for a gap)".into()
            }
            PlotError::Unreadable { .. } => {
                "write CSV/TSV with a header row, or JSON: a list of records or columns as lists"
                    .into()
            }
            PlotError::Missing { help, .. } | PlotError::NotRun { help, .. } => help.clone(),
            PlotError::Render { .. } => "this is a bug in cegraph; please report it".into(),
        }
    }
}

/// A table read from a series file: column names and, per row, a cell per column (`None`:
/// empty). Rows keep their place in the file for error messages.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesTable {
    pub file: String,
    pub columns: Vec<String>,
    /// (where the row is, e.g. `line 3` or `record 2`; its cells).
    pub rows: Vec<(String, Vec<Option<String>>)>,
}

/// Points of one y column against one x column.
#[derive(Debug, Clone, PartialEq)]
pub struct Points {
    pub points: Vec<(f64, f64)>,
    /// Rows whose x or y is NaN or infinite (not drawn).
    pub skipped: usize,
}

impl SeriesTable {
    /// Parse `bytes` of `file` (its extension picks the format: `.json`, `.tsv`, else CSV).
    pub fn parse(file: &str, bytes: &[u8]) -> Result<SeriesTable, PlotError> {
        let unreadable = |message: String| PlotError::Unreadable {
            file: file.to_string(),
            message,
        };
        let text = std::str::from_utf8(bytes).map_err(|e| unreadable(format!("not UTF-8: {e}")))?;
        let lower = file.to_ascii_lowercase();
        if lower.ends_with(".json") {
            let value: Value = serde_json::from_str(text).map_err(|e| {
                unreadable(format!(
                    "line {} column {}: not JSON: {e}",
                    e.line(),
                    e.column()
                ))
            })?;
            from_json(file, &value).map_err(unreadable)
        } else {
            let sep = if lower.ends_with(".tsv") { '\t' } else { ',' };
            from_delimited(file, text, sep).map_err(unreadable)
        }
    }

    fn column(&self, name: &str) -> Result<usize, PlotError> {
        self.columns
            .iter()
            .position(|c| c == name)
            .ok_or_else(|| PlotError::NoColumn {
                file: self.file.clone(),
                column: name.to_string(),
                available: self.columns.join(", "),
            })
    }

    /// Check that every named column exists (before anything is drawn or written).
    pub fn check_columns<'a>(
        &self,
        names: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), PlotError> {
        names.into_iter().try_for_each(|n| self.column(n).map(drop))
    }

    /// `y` against `x`: rows with an empty cell are gaps; NaN/inf are counted in `skipped`.
    pub fn points(&self, x: &str, y: &str) -> Result<Points, PlotError> {
        let (xi, yi) = (self.column(x)?, self.column(y)?);
        let mut out = Points {
            points: Vec::new(),
            skipped: 0,
        };
        for (place, cells) in &self.rows {
            let (Some(Some(xs)), Some(Some(ys))) = (cells.get(xi), cells.get(yi)) else {
                continue;
            };
            let xv = self.number(place, x, xs)?;
            let yv = self.number(place, y, ys)?;
            if xv.is_finite() && yv.is_finite() {
                out.points.push((xv, yv));
            } else {
                out.skipped += 1;
            }
        }
        Ok(out)
    }

    fn number(&self, place: &str, column: &str, text: &str) -> Result<f64, PlotError> {
        let t = text.trim();
        let parsed = match t.to_ascii_lowercase().as_str() {
            "nan" => Some(f64::NAN),
            "inf" | "+inf" | "infinity" | "+infinity" => Some(f64::INFINITY),
            "-inf" | "-infinity" => Some(f64::NEG_INFINITY),
            _ => t.parse::<f64>().ok(),
        };
        parsed.ok_or_else(|| PlotError::NotNumeric {
            file: self.file.clone(),
            place: place.to_string(),
            column: column.to_string(),
            value: crate::error::bounded(t, 40),
        })
    }
}

fn from_delimited(file: &str, text: &str, sep: char) -> Result<SeriesTable, String> {
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let Some((_, header)) = lines.next() else {
        return Err("empty: no header row".into());
    };
    let columns: Vec<String> = header
        .split(sep)
        .map(|c| c.trim().trim_matches('"').to_string())
        .collect();
    let mut rows = Vec::new();
    for (i, line) in lines {
        let cells: Vec<Option<String>> = line
            .split(sep)
            .map(|c| {
                let c = c.trim().trim_matches('"');
                (!c.is_empty()).then(|| c.to_string())
            })
            .collect();
        if cells.len() != columns.len() {
            return Err(format!(
                "line {}: {} cells, the header has {}",
                i + 1,
                cells.len(),
                columns.len()
            ));
        }
        rows.push((format!("line {}", i + 1), cells));
    }
    Ok(SeriesTable {
        file: file.to_string(),
        columns,
        rows,
    })
}

fn cell(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) if s.trim().is_empty() => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

fn from_json(file: &str, value: &Value) -> Result<SeriesTable, String> {
    let records = match value {
        Value::Array(a) => a,
        // `{"train": [records]}` (DVC's form), one key.
        Value::Object(o) if o.len() == 1 && o.values().all(Value::is_array) => {
            let inner = o.values().next().expect("one value");
            match inner.as_array() {
                Some(a) if a.iter().all(Value::is_object) => a,
                _ => return columns_from_object(file, o),
            }
        }
        Value::Object(o) => return columns_from_object(file, o),
        _ => return Err("expected a list of records or an object of columns".into()),
    };
    let mut columns: Vec<String> = Vec::new();
    for r in records {
        let Some(o) = r.as_object() else {
            return Err("a list whose items are not records ({\"step\": 1, …})".into());
        };
        for k in o.keys() {
            if !columns.contains(k) {
                columns.push(k.clone());
            }
        }
    }
    let rows = records
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let cells = columns.iter().map(|c| r.get(c).and_then(cell)).collect();
            (format!("record {}", i + 1), cells)
        })
        .collect();
    Ok(SeriesTable {
        file: file.to_string(),
        columns,
        rows,
    })
}

fn columns_from_object(
    file: &str,
    o: &serde_json::Map<String, Value>,
) -> Result<SeriesTable, String> {
    let mut columns = Vec::new();
    let mut lists = Vec::new();
    for (k, v) in o {
        let Some(a) = v.as_array() else {
            return Err(format!("`{k}` is not a list (columns must be lists)"));
        };
        columns.push(k.clone());
        lists.push(a);
    }
    let n = lists.iter().map(|l| l.len()).max().unwrap_or(0);
    let rows = (0..n)
        .map(|i| {
            let cells = lists.iter().map(|l| l.get(i).and_then(cell)).collect();
            (format!("item {}", i + 1), cells)
        })
        .collect();
    Ok(SeriesTable {
        file: file.to_string(),
        columns,
        rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_with_gaps_and_nan_is_read_and_nan_skipped() {
        let t =
            SeriesTable::parse("c.csv", b"step,loss,val\n1,2.5,\n2,nan,3\n3,1.5,inf\n").unwrap();
        let p = t.points("step", "loss").unwrap();
        assert_eq!(p.points, [(1.0, 2.5), (3.0, 1.5)]);
        assert_eq!(p.skipped, 1);
        let v = t.points("step", "val").unwrap();
        assert_eq!((v.points, v.skipped), (vec![(2.0, 3.0)], 1));
    }

    #[test]
    fn plot_column_that_does_not_exist_names_the_columns() {
        let t = SeriesTable::parse("c.csv", b"step,loss\n1,2\n").unwrap();
        let e = t.points("step", "los").unwrap_err().to_string();
        assert_eq!(e, "c.csv: no column `los` (columns: step, loss)");
    }

    #[test]
    fn non_numeric_plot_value_names_row_and_column() {
        let t = SeriesTable::parse("c.tsv", b"step\tloss\n1\t2\n2\tlow\n").unwrap();
        let e = t.points("step", "loss").unwrap_err().to_string();
        assert_eq!(e, "c.tsv: line 3, column `loss`: `low` is not a number");
    }

    #[test]
    fn json_records_columns_and_named_records() {
        for text in [
            r#"[{"step": 1, "loss": 2}, {"step": 2, "loss": 1}]"#,
            r#"{"train": [{"step": 1, "loss": 2}, {"step": 2, "loss": 1}]}"#,
            r#"{"step": [1, 2], "loss": [2, 1]}"#,
        ] {
            let t = SeriesTable::parse("s.json", text.as_bytes()).unwrap();
            let p = t.points("step", "loss").unwrap();
            assert_eq!(p.points, [(1.0, 2.0), (2.0, 1.0)], "{text}");
        }
        let e = SeriesTable::parse("s.json", b"{\"a\": 1").unwrap_err();
        assert!(e.to_string().starts_with("s.json: line 1"), "{e}");
        assert!(SeriesTable::parse("s.csv", b"a,b\n1\n").is_err());
    }
}
