//! A node's `metrics:` file: JSON, YAML (by extension `.yaml`/`.yml`) or CSV (`.csv`/`.tsv`:
//! the last row, one metric per column). Nested mappings are flattened with dots
//! (`{val: {loss: 1}}` → `val.loss`). Every value must be a number; NaN and ±inf (which Python's
//! `json.dump` writes as `NaN`/`Infinity`) are kept as the strings `NaN`, `inf`, `-inf`.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

/// Read a metrics file; the error says what is wrong and where.
pub fn read(path: &Path) -> Result<BTreeMap<String, Value>, String> {
    let shown = path.display();
    let text = std::fs::read_to_string(path).map_err(|e| {
        format!("metrics file {shown}: {e} (the command must write it; it is one of `outs`)")
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
    let Value::Object(map) = doc else {
        return Err(format!(
            "metrics file {shown}: expected a mapping of names to numbers"
        ));
    };
    let mut out = BTreeMap::new();
    flatten("", &Value::Object(map), &mut out).map_err(|e| format!("metrics file {shown}: {e}"))?;
    Ok(out)
}

fn flatten(prefix: &str, v: &Value, out: &mut BTreeMap<String, Value>) -> Result<(), String> {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                let name = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&name, v, out)?;
            }
            Ok(())
        }
        Value::Number(_) => {
            out.insert(prefix.to_string(), v.clone());
            Ok(())
        }
        Value::String(s) => match non_finite(s) {
            Some(s) => {
                out.insert(prefix.to_string(), Value::String(s.into()));
                Ok(())
            }
            None => Err(format!(
                "metric `{prefix}` is `{s}`, not a number (write numbers only)"
            )),
        },
        other => Err(format!(
            "metric `{prefix}` is `{other}`, not a number (write numbers only)"
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

/// The header and last non-empty row of a CSV file, as name → number.
fn last_csv_row(text: &str, sep: char) -> Result<Value, String> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header = lines.next().ok_or("empty CSV: expected a header row")?;
    let last = lines.next_back().ok_or("CSV has a header but no rows")?;
    let names: Vec<&str> = header
        .split(sep)
        .map(|s| s.trim().trim_matches('"'))
        .collect();
    let cells: Vec<&str> = last
        .split(sep)
        .map(|s| s.trim().trim_matches('"'))
        .collect();
    if names.len() != cells.len() {
        return Err(format!(
            "the last row has {} cells, the header {}",
            cells.len(),
            names.len()
        ));
    }
    let mut map = serde_json::Map::new();
    for (name, cell) in names.iter().zip(cells) {
        let v = match cell.parse::<f64>() {
            Ok(x) if x.is_finite() => serde_json::Number::from_f64(x)
                .map(Value::Number)
                .expect("finite"),
            _ => Value::String(cell.to_string()),
        };
        map.insert(name.to_string(), v);
    }
    Ok(Value::Object(map))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read_text(name: &str, text: &str) -> Result<BTreeMap<String, Value>, String> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        read(&p)
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
        let e = read(&dir.path().join("none.json")).unwrap_err();
        assert!(e.contains("none.json"), "{e}");
        let e = read_text("m.json", r#"{"loss": "low"}"#).unwrap_err();
        assert!(e.contains("`loss`") && e.contains("not a number"), "{e}");
        let e = read_text("m.json", "{oops").unwrap_err();
        assert!(e.contains("line 1"), "{e}");
        assert!(read_text("m.csv", "a,b\n1\n").is_err());
    }
}
