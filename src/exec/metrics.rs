//! A node's `metrics:` file: JSON, YAML (by extension `.yaml`/`.yml`) or CSV (`.csv`/`.tsv`:
//! the last row, one metric per column). Nested mappings are flattened with dots
//! (`{val: {loss: 1}}` → `val.loss`). `columns` (from `metrics: {file, columns}`) keeps only
//! the named metrics; every metric kept must be a number, and there must be at least one.
//! NaN and ±inf (which Python's `json.dump` writes as `NaN`/`Infinity`) are kept as the
//! strings `NaN`, `inf`, `-inf`.
//!
//! Any problem fails the node: a script that forgot to write its metrics, or wrote text where
//! a number belongs, is a failed run, not a result to record.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

/// Read a metrics file (all its metrics when `columns` is empty); the error is one line that
/// names the file, what is wrong and how to fix it.
pub fn read(path: &Path, columns: &[String]) -> Result<BTreeMap<String, Value>, String> {
    read_as(path, &path.display().to_string(), columns)
}

/// [`read`], naming the file `shown` (as the pipeline writes it) in errors.
pub fn read_as(
    path: &Path,
    shown: &str,
    columns: &[String],
) -> Result<BTreeMap<String, Value>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        format!(
            "metrics file {shown} could not be read ({e}): the command must write it before it exits"
        )
    })?;
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    let doc = match ext.as_str() {
        "csv" => last_csv_row(&text, ','),
        "tsv" => last_csv_row(&text, '\t'),
        "yaml" | "yml" => {
            serde_saphyr::from_str::<Value>(&text).map_err(|e| format!("not YAML: {e}"))
        }
        _ => parse_json(&text),
    }
    .map_err(|e| format!("metrics file {shown}: {e}"))?;
    if !doc.is_object() {
        return Err(format!(
            "metrics file {shown}: expected a mapping of names to numbers, e.g. {{\"loss\": 0.5}}"
        ));
    }
    let mut leaves = BTreeMap::new();
    flatten("", &doc, &mut leaves);
    let picked = pick(leaves, columns).map_err(|e| format!("metrics file {shown}: {e}"))?;
    let mut out = BTreeMap::new();
    for (name, v) in picked {
        let v = numeric(&name, v).map_err(|e| format!("metrics file {shown}: {e}"))?;
        out.insert(name, v);
    }
    if out.is_empty() {
        return Err(format!(
            "metrics file {shown} holds no metric: write at least one number, e.g. {{\"loss\": 0.5}}"
        ));
    }
    Ok(out)
}

/// Every leaf of `v` by its dotted name.
fn flatten(prefix: &str, v: &Value, out: &mut BTreeMap<String, Value>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                let name = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&name, v, out);
            }
        }
        other => {
            out.insert(prefix.to_string(), other.clone());
        }
    }
}

/// The leaves named by `columns` (all when empty); a missing one is named with the nearest.
fn pick(
    mut leaves: BTreeMap<String, Value>,
    columns: &[String],
) -> Result<BTreeMap<String, Value>, String> {
    if columns.is_empty() {
        return Ok(leaves);
    }
    let mut out = BTreeMap::new();
    for c in columns {
        match leaves.remove(c) {
            Some(v) => {
                out.insert(c.clone(), v);
            }
            None => {
                let near = leaves
                    .keys()
                    .chain(out.keys())
                    .min_by_key(|k| strsim::levenshtein(k, c))
                    .map(|k| format!(" (did you mean `{k}`?)"))
                    .unwrap_or_default();
                return Err(format!(
                    "no metric `{c}`{near}: fix `columns:` under `metrics:` or write it"
                ));
            }
        }
    }
    Ok(out)
}

/// A number, or NaN/±inf by name; anything else is an error naming the metric.
fn numeric(name: &str, v: Value) -> Result<Value, String> {
    match &v {
        Value::Number(_) => Ok(v),
        Value::String(s) => match non_finite(s) {
            Some(s) => Ok(Value::String(s.into())),
            None => Err(format!(
                "metric `{name}` is `{s}`, not a number (write numbers only, or pick numeric columns with `metrics: {{file: ..., columns: [...]}}`)"
            )),
        },
        other => Err(format!(
            "metric `{name}` is `{other}`, not a number (write numbers only, or pick numeric columns with `metrics: {{file: ..., columns: [...]}}`)"
        )),
    }
}

/// `NaN`, `inf`, `-Infinity`, … in their one spelling; `None` for other text.
pub fn non_finite(s: &str) -> Option<&'static str> {
    match s.trim().to_ascii_lowercase().as_str() {
        "nan" | ".nan" => Some("NaN"),
        "inf" | "+inf" | "infinity" | "+infinity" | ".inf" => Some("inf"),
        "-inf" | "-infinity" | "-.inf" => Some("-inf"),
        _ => None,
    }
}

/// JSON, also as Python writes it: bare `NaN`, `Infinity`, `-Infinity` become strings.
fn parse_json(text: &str) -> Result<Value, String> {
    match serde_json::from_str(text) {
        Ok(v) => Ok(v),
        Err(first) => serde_json::from_str(&quote_non_finite(text)).map_err(|_| {
            format!(
                "not JSON: line {} column {}: {first}",
                first.line(),
                first.column()
            )
        }),
    }
}

/// Quote the bare words `NaN`, `Infinity` and `-Infinity` outside strings.
fn quote_non_finite(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    let mut in_string = false;
    let mut escaped = false;
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if in_string {
            out.push(c);
            rest = &rest[c.len_utf8()..];
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            continue;
        }
        let word = ["-Infinity", "Infinity", "NaN"]
            .into_iter()
            .find(|w| rest.starts_with(w));
        if let Some(w) = word {
            out.push('"');
            out.push_str(w);
            out.push('"');
            rest = &rest[w.len()..];
            continue;
        }
        in_string = c == '"';
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// The header and last non-empty row of a CSV file, as name → number (or the cell's text).
fn last_csv_row(text: &str, sep: char) -> Result<Value, String> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header = lines.next().ok_or("empty CSV: expected a header row")?;
    let last = lines.next_back().ok_or("CSV has a header but no rows")?;
    let names = split_csv_line(header, sep);
    let cells = split_csv_line(last, sep);
    if names.len() != cells.len() {
        return Err(format!(
            "the last row has {} cells, the header {}",
            cells.len(),
            names.len()
        ));
    }
    let mut map = serde_json::Map::new();
    for (name, cell) in names.into_iter().zip(cells) {
        let v = match cell.parse::<f64>() {
            Ok(x) if x.is_finite() => serde_json::Number::from_f64(x)
                .map(Value::Number)
                .expect("finite"),
            _ => Value::String(cell),
        };
        map.insert(name, v);
    }
    Ok(Value::Object(map))
}

/// One CSV line's cells, trimmed; `"a,b"` is one cell and `""` inside quotes is `"`.
fn split_csv_line(line: &str, sep: char) -> Vec<String> {
    let mut cells = Vec::new();
    let mut cell = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                cell.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            c if c == sep && !quoted => cells.push(std::mem::take(&mut cell).trim().to_string()),
            c => cell.push(c),
        }
    }
    cells.push(cell.trim().to_string());
    cells
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read_text(name: &str, text: &str) -> Result<BTreeMap<String, Value>, String> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        read(&p, &[])
    }

    #[test]
    fn metrics_in_json_yaml_and_csv_last_row() {
        let j = read_text("m.json", r#"{"loss": 1.5, "val": {"acc": 0.9}}"#).unwrap();
        assert_eq!(j["val.acc"], json!(0.9));
        let y = read_text("m.yaml", "loss: 2\nval:\n  acc: 0.5\n").unwrap();
        assert_eq!(y["loss"], json!(2));
        let c = read_text("m.csv", "step,loss\n1,3.0\n2,2.5\n\n").unwrap();
        assert_eq!(c["loss"], json!(2.5));
        assert_eq!(c["step"], json!(2.0));
    }

    #[test]
    fn nan_and_inf_metrics_are_kept_as_such() {
        let j = read_text("m.json", r#"{"loss": NaN, "x": -Infinity, "s": "NaN"}"#).unwrap();
        assert_eq!(j["loss"], json!("NaN"));
        assert_eq!(j["x"], json!("-inf"));
        let c = read_text("m.csv", "loss\nnan\n").unwrap();
        assert_eq!(c["loss"], json!("NaN"));
    }

    #[test]
    fn metrics_file_missing_or_not_numeric_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let e = read(&dir.path().join("none.json"), &[]).unwrap_err();
        assert!(e.contains("none.json"), "{e}");
        let e = read_text("m.json", r#"{"loss": "low"}"#).unwrap_err();
        assert!(e.contains("`loss`") && e.contains("not a number"), "{e}");
        let e = read_text("m.json", "{oops").unwrap_err();
        assert!(e.contains("line 1"), "{e}");
        assert!(read_text("m.csv", "a,b\n1\n").is_err());
    }

    fn read_columns(
        name: &str,
        text: &str,
        cols: &[&str],
    ) -> Result<BTreeMap<String, Value>, String> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        let cols: Vec<String> = cols.iter().map(|c| c.to_string()).collect();
        read(&p, &cols)
    }

    #[test]
    fn metrics_columns_keep_only_the_named_ones_and_skip_text_columns() {
        let csv = "run,step,loss,acc\n\"a,b\",1,3.0,0.1\nlast,2,2.5,0.2\n";
        let m = read_columns("m.csv", csv, &["loss", "acc"]).unwrap();
        assert_eq!(m.keys().collect::<Vec<_>>(), ["acc", "loss"]);
        assert_eq!(m["loss"], json!(2.5));
        // Without columns the text column `run` is an error that says how to pick.
        let e = read_columns("m.csv", csv, &[]).unwrap_err();
        assert!(
            e.contains("`run` is `last`") && e.contains("columns:"),
            "{e}"
        );
        let j = read_columns(
            "m.json",
            r#"{"val": {"loss": 1}, "note": "x"}"#,
            &["val.loss"],
        );
        assert_eq!(j.unwrap()["val.loss"], json!(1));
    }

    #[test]
    fn metrics_column_that_does_not_exist_is_named_with_the_nearest() {
        let e = read_columns("m.csv", "loss,acc\n1,2\n", &["los"]).unwrap_err();
        assert!(e.contains("m.csv") && e.contains("no metric `los`"), "{e}");
        assert!(e.contains("did you mean `loss`?"), "{e}");
    }

    #[test]
    fn metrics_file_with_no_numeric_value_is_an_error() {
        let e = read_text("m.json", "{}").unwrap_err();
        assert!(e.contains("m.json holds no metric"), "{e}");
        let e = read_text("m.json", "[1, 2]").unwrap_err();
        assert!(e.contains("expected a mapping"), "{e}");
        let e = read_text("m.csv", "loss\n").unwrap_err();
        assert!(e.contains("no rows"), "{e}");
    }

    #[test]
    fn csv_cells_may_be_quoted() {
        assert_eq!(
            split_csv_line(r#" a ,"b,c","d""e""#, ','),
            ["a", "b,c", "d\"e"]
        );
    }
}
