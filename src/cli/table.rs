//! Tables for `exp show`, `metrics show/diff` and `params diff`: aligned text that fits a
//! terminal of [`WIDTH`] columns (cells cut with `…`), CSV, Markdown or JSON.

use serde_json::Value;

/// The terminal width tables are fitted to (like `dvc exp show`, no wrapping).
pub const WIDTH: usize = 100;
/// A column is never cut narrower than this.
const MIN_COLUMN: usize = 6;

#[derive(clap::Args, Clone, Copy)]
#[group(multiple = false)]
pub struct Format {
    /// Print JSON (one object per row).
    #[arg(long)]
    pub json: bool,
    /// Print CSV.
    #[arg(long)]
    pub csv: bool,
    /// Print a Markdown table.
    #[arg(long)]
    pub md: bool,
}

pub struct Table {
    pub headers: Vec<String>,
    /// Cells as JSON values (null: empty).
    pub rows: Vec<Vec<Value>>,
}

impl Table {
    pub fn new(headers: Vec<String>) -> Table {
        Table {
            headers,
            rows: Vec::new(),
        }
    }

    fn column(&self, name: &str) -> crate::error::Result<usize> {
        self.headers.iter().position(|h| h == name).ok_or_else(|| {
            crate::error::Error::usage(
                format!("no column `{name}` in this table"),
                format!("columns: {}", self.headers.join(", ")),
            )
        })
    }

    /// Keep the rows whose `column` reads `value` (`node=train`, `lr=0.01`).
    pub fn filter(&mut self, column: &str, value: &str) -> crate::error::Result<()> {
        let i = self.column(column)?;
        self.rows.retain(|r| cell_text(&r[i]) == value);
        Ok(())
    }

    /// Drop the columns from `first` on whose cells all read the same (`--only-changed`).
    pub fn drop_constant_columns(&mut self, first: usize) {
        let keep: Vec<bool> = (0..self.headers.len())
            .map(|i| {
                i < first
                    || self
                        .rows
                        .windows(2)
                        .any(|w| cell_text(&w[0][i]) != cell_text(&w[1][i]))
            })
            .collect();
        retain_masked(&mut self.headers, &keep);
        for r in &mut self.rows {
            retain_masked(r, &keep);
        }
    }

    /// Sort by a column: numbers by value, then text; empty cells and NaN last.
    pub fn sort_by(&mut self, column: &str, descending: bool) -> crate::error::Result<()> {
        let i = self.column(column)?;
        let key = |v: &Value| match as_f64(v) {
            Some(x) if !x.is_nan() => (0, x, String::new()),
            _ if v.is_null() => (2, 0.0, String::new()),
            Some(_) => (2, 0.0, String::new()),
            None => (1, 0.0, cell_text(v)),
        };
        self.rows.sort_by(|a, b| {
            let (ka, kb) = (key(&a[i]), key(&b[i]));
            let order = ka.1.total_cmp(&kb.1).then_with(|| ka.2.cmp(&kb.2));
            let order = if descending { order.reverse() } else { order };
            ka.0.cmp(&kb.0).then(order)
        });
        Ok(())
    }

    pub fn render(&self, f: Format) -> String {
        if f.json {
            self.json()
        } else if f.csv {
            self.csv()
        } else if f.md {
            self.markdown()
        } else {
            self.text(WIDTH)
        }
    }

    /// Every cell's text, made once into one buffer (a table can have 300k cells).
    fn cells(&self) -> Cells {
        let mut c = Cells {
            text: String::new(),
            spans: Vec::with_capacity(self.rows.len() * self.headers.len()),
            columns: self.headers.len(),
        };
        for row in &self.rows {
            for v in row {
                let start = c.text.len();
                push_cell_text(&mut c.text, v);
                let chars = chars(&c.text[start..]);
                c.spans
                    .push((start as u32, c.text.len() as u32, chars as u32));
            }
        }
        c
    }

    /// Aligned columns, cut (widest first) until a line fits in `width`.
    pub fn text(&self, width: usize) -> String {
        let cells = self.cells();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| chars(h)).collect();
        for r in 0..self.rows.len() {
            for (i, w) in widths.iter_mut().enumerate() {
                *w = (*w).max(cells.chars(r, i));
            }
        }
        let line = |w: &[usize]| w.iter().sum::<usize>() + 2 * w.len().saturating_sub(1);
        while line(&widths) > width {
            let (i, &widest) = widths
                .iter()
                .enumerate()
                .max_by_key(|(_, w)| **w)
                .expect("a table has columns");
            if widest <= MIN_COLUMN {
                break;
            }
            widths[i] = widest - 1;
        }
        // Still too wide at the minimum: drop columns from the right, marking the cut.
        let mut shown = widths.len();
        while shown > 1 && line(&widths[..shown]) + 3 > width && line(&widths) > width {
            shown -= 1;
        }
        let cut_columns = shown < widths.len();
        // A column reads right-aligned when all its cells are numbers (an experiment named
        // `inf` does not make its column numeric).
        let numeric: Vec<bool> = (0..widths.len())
            .map(|i| {
                let mut filled = (0..self.rows.len()).filter(|&r| !cells.get(r, i).is_empty());
                filled.clone().next().is_some()
                    && filled.all(|r| self.rows[r][i].is_number() || looks_numeric(cells.get(r, i)))
            })
            .collect();
        let mut out = String::with_capacity(cells.text.len() + self.rows.len() * (width + 1));
        let layout = Layout {
            widths: &widths[..shown],
            numeric: &numeric,
            cut_columns,
        };
        layout.push_line(
            &mut out,
            |i| (self.headers[i].as_str(), chars(&self.headers[i])),
            false,
        );
        for r in 0..self.rows.len() {
            layout.push_line(&mut out, |i| (cells.get(r, i), cells.chars(r, i)), true);
        }
        out
    }

    pub fn csv(&self) -> String {
        let mut out = String::new();
        let push = |out: &mut String, s: &str| {
            if s.contains([',', '"', '\n']) {
                out.push('"');
                out.push_str(&s.replace('"', "\"\""));
                out.push('"');
            } else {
                out.push_str(s);
            }
        };
        for (i, h) in self.headers.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            push(&mut out, h);
        }
        out.push('\n');
        let mut scratch = String::new();
        for row in &self.rows {
            for (i, v) in row.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                match v {
                    Value::String(s) => push(&mut out, s),
                    other => {
                        scratch.clear();
                        push_cell_text(&mut scratch, other);
                        push(&mut out, &scratch);
                    }
                }
            }
            out.push('\n');
        }
        out
    }

    pub fn markdown(&self) -> String {
        let esc = |s: &str| s.replace('|', "\\|");
        let mut out = format!(
            "| {} |\n|{}|\n",
            self.headers
                .iter()
                .map(|h| esc(h))
                .collect::<Vec<_>>()
                .join(" | "),
            self.headers
                .iter()
                .map(|_| "---")
                .collect::<Vec<_>>()
                .join("|")
        );
        let cells = self.cells();
        for r in 0..self.rows.len() {
            out.push_str("| ");
            for i in 0..self.headers.len() {
                if i > 0 {
                    out.push_str(" | ");
                }
                let c = cells.get(r, i);
                if c.contains('|') {
                    out.push_str(&esc(c));
                } else {
                    out.push_str(c);
                }
            }
            out.push_str(" |\n");
        }
        out
    }

    /// One object per row, keys in name order, empty cells left out. Written straight from
    /// the cells (no object built per row).
    pub fn json(&self) -> String {
        let mut order: Vec<usize> = (0..self.headers.len()).collect();
        order.sort_by(|&a, &b| self.headers[a].cmp(&self.headers[b]).then(a.cmp(&b)));
        let rows = JsonRows {
            headers: &self.headers,
            order: &order,
            rows: &self.rows,
        };
        let mut s = serde_json::to_string_pretty(&rows).expect("tables serialise");
        s.push('\n');
        s
    }
}

/// How `text` lays out a line: the columns shown, their widths and alignment.
struct Layout<'a> {
    widths: &'a [usize],
    numeric: &'a [bool],
    cut_columns: bool,
}

impl Layout<'_> {
    /// One line; `cell(i)`: column i's text and its length in characters. Headers
    /// (`body` false) stay left-aligned.
    fn push_line<'c>(
        &self,
        out: &mut String,
        cell: impl Fn(usize) -> (&'c str, usize),
        body: bool,
    ) {
        let start = out.len();
        for (i, (&w, &right)) in self.widths.iter().zip(self.numeric).enumerate() {
            if i > 0 {
                out.push_str("  ");
            }
            let (text, n) = cell(i);
            push_cell(out, text, n, w, right && body);
        }
        if self.cut_columns {
            out.push_str("  …");
        }
        out.truncate(start + out[start..].trim_end().len());
        out.push('\n');
    }
}

/// Each cell's text in one buffer, by (row, column): start, end, characters.
struct Cells {
    text: String,
    spans: Vec<(u32, u32, u32)>,
    columns: usize,
}

impl Cells {
    fn get(&self, row: usize, column: usize) -> &str {
        let (start, end, _) = self.spans[row * self.columns + column];
        &self.text[start as usize..end as usize]
    }

    fn chars(&self, row: usize, column: usize) -> usize {
        self.spans[row * self.columns + column].2 as usize
    }
}

struct JsonRows<'a> {
    headers: &'a [String],
    /// Column indices sorted by header, as a JSON object orders its keys.
    order: &'a [usize],
    rows: &'a [Vec<Value>],
}

impl serde::Serialize for JsonRows<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        struct Row<'b>(&'b JsonRows<'b>, &'b [Value]);
        impl serde::Serialize for Row<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let (t, cells) = (self.0, self.1);
                let mut m = s.serialize_map(None)?;
                let mut k = 0;
                while k < t.order.len() {
                    // Columns of the same name: one key, holding the last non-empty cell.
                    let name = &t.headers[t.order[k]];
                    let mut value = None;
                    while k < t.order.len() && t.headers[t.order[k]] == *name {
                        let v = &cells[t.order[k]];
                        if !v.is_null() {
                            value = Some(v);
                        }
                        k += 1;
                    }
                    if let Some(v) = value {
                        m.serialize_entry(name, v)?;
                    }
                }
                m.end()
            }
        }
        let mut seq = s.serialize_seq(Some(self.rows.len()))?;
        for r in self.rows {
            seq.serialize_element(&Row(self, r))?;
        }
        seq.end()
    }
}

/// How a value reads in a cell: strings bare, numbers as written, null empty.
pub fn cell_text(v: &Value) -> String {
    let mut s = String::new();
    push_cell_text(&mut s, v);
    s
}

/// [`cell_text`], appended to `out`.
fn push_cell_text(out: &mut String, v: &Value) {
    use std::fmt::Write;
    match v {
        Value::Null => {}
        Value::String(s) => out.push_str(s),
        Value::Number(n) => match n.as_f64() {
            Some(x) if n.is_f64() => push_number(out, x),
            _ => write!(out, "{n}").expect("writing to a String"),
        },
        other => write!(out, "{other}").expect("writing to a String"),
    }
}

/// A number in at most 6 significant digits, exponent form when very large or small;
/// NaN and infinities by name.
pub fn number(x: f64) -> String {
    let mut s = String::new();
    push_number(&mut s, x);
    s
}

/// [`number`], appended to `out`.
fn push_number(out: &mut String, x: f64) {
    use std::fmt::Write;
    if x.is_nan() {
        return out.push_str("NaN");
    }
    if x.is_infinite() {
        return out.push_str(if x > 0.0 { "inf" } else { "-inf" });
    }
    if x == 0.0 {
        return out.push('0');
    }
    let a = x.abs();
    if !(1e-4..1e9).contains(&a) {
        return write!(out, "{x:.4e}").expect("writing to a String");
    }
    let decimals = (5 - a.log10().floor() as i32).clamp(0, 9) as usize;
    let start = out.len();
    write!(out, "{x:.decimals$}").expect("writing to a String");
    if out[start..].contains('.') {
        let kept = out[start..]
            .trim_end_matches('0')
            .trim_end_matches('.')
            .len();
        out.truncate(start + kept);
    }
}

/// A metric or param as a number (NaN/inf spelled as strings count); `None` otherwise.
pub fn as_f64(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => match crate::exec::metrics::non_finite(s)? {
            "NaN" => Some(f64::NAN),
            "inf" => Some(f64::INFINITY),
            _ => Some(f64::NEG_INFINITY),
        },
        _ => None,
    }
}

/// Keep the items whose `keep` entry is true.
fn retain_masked<T>(items: &mut Vec<T>, keep: &[bool]) {
    let mut i = 0;
    items.retain(|_| {
        i += 1;
        keep[i - 1]
    });
}

fn chars(s: &str) -> usize {
    s.chars().count()
}

fn cut(s: &str, w: usize) -> String {
    if chars(s) <= w {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(w.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// `s` (of `n` characters) cut to `w` characters (with `…`) and padded to `w`, appended
/// to `out`.
fn push_cell(out: &mut String, s: &str, n: usize, w: usize, right: bool) {
    let shown = if n <= w {
        std::borrow::Cow::Borrowed(s)
    } else {
        std::borrow::Cow::Owned(cut(s, w))
    };
    let fill = w.saturating_sub(n.min(w));
    if right {
        out.extend(std::iter::repeat_n(' ', fill));
    }
    out.push_str(&shown);
    if !right {
        out.extend(std::iter::repeat_n(' ', fill));
    }
}

fn looks_numeric(s: &str) -> bool {
    !s.is_empty()
        && (s.parse::<f64>().is_ok()
            || crate::exec::metrics::non_finite(s).is_some()
            || s.strip_suffix('%')
                .is_some_and(|p| p.parse::<f64>().is_ok()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn wide_table_fits_100_columns_with_ellipsis() {
        let mut t = Table::new(
            (0..12)
                .map(|i| format!("a_rather_long_metric_name_{i}"))
                .collect(),
        );
        t.rows
            .push((0..12).map(|i| json!(i as f64 * 0.123456789)).collect());
        let text = t.text(WIDTH);
        for line in text.lines() {
            assert!(line.chars().count() <= WIDTH, "{line}");
        }
        assert!(text.contains('…'));
    }

    #[test]
    fn sort_puts_nan_and_empty_last_and_filter_matches_text() {
        let mut t = Table::new(vec!["name".into(), "loss".into()]);
        for (n, l) in [
            ("a", json!(2.0)),
            ("b", json!("NaN")),
            ("c", Value::Null),
            ("d", json!(1)),
        ] {
            t.rows.push(vec![json!(n), l]);
        }
        t.sort_by("loss", false).unwrap();
        let order: Vec<String> = t.rows.iter().map(|r| cell_text(&r[0])).collect();
        assert_eq!(order, ["d", "a", "b", "c"]);
        t.sort_by("loss", true).unwrap();
        assert_eq!(cell_text(&t.rows[0][0]), "a");
        assert!(t.sort_by("lost", false).is_err());
        t.filter("name", "d").unwrap();
        assert_eq!(t.rows.len(), 1);
    }

    #[test]
    fn json_rows_read_as_objects_built_from_the_cells() {
        let mut t = Table::new(vec!["b".into(), "a".into(), "b".into(), "c".into()]);
        t.rows
            .push(vec![json!(1), json!("x"), Value::Null, Value::Null]);
        t.rows
            .push(vec![json!(1), Value::Null, json!([2.5]), json!({"k": 1})]);
        let objects: Vec<Value> = t
            .rows
            .iter()
            .map(|r| {
                let cells = t.headers.iter().cloned().zip(r.iter().cloned());
                Value::Object(cells.filter(|(_, v)| !v.is_null()).collect())
            })
            .collect();
        let want = serde_json::to_string_pretty(&objects).unwrap() + "\n";
        assert_eq!(t.json(), want);
        assert_eq!(Table::new(vec!["a".into()]).json(), "[]\n");
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(number(0.0030000001), "0.003");
        assert_eq!(number(2.5), "2.5");
        assert_eq!(number(123456.789), "123457");
        assert_eq!(number(f64::NAN), "NaN");
        assert_eq!(number(1e-7), "1.0000e-7");
    }
}
