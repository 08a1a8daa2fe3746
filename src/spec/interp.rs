//! `${...}` interpolation: parsing templates and expressions, and rendering values.

use serde_json::Value;

/// A piece of a template string.
#[derive(Debug, Clone, PartialEq)]
pub enum Piece {
    Text(String),
    /// The text between `${` and `}`, trimmed.
    Expr(String),
}

/// Split a template into text and `${expr}` pieces. `$${` is a literal `${`.
pub fn parse_template(s: &str) -> Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        let after = &rest[i + 1..];
        if let Some(escaped) = after.strip_prefix("${") {
            text.push_str(&rest[..i]);
            text.push_str("${");
            rest = escaped;
        } else if let Some(body) = after.strip_prefix('{') {
            text.push_str(&rest[..i]);
            let end = body.find('}').ok_or_else(|| {
                format!("unclosed `${{` in {s:?}: add the closing `}}` (or write `$${{` for a literal `${{`)")
            })?;
            let expr = body[..end].trim();
            if expr.is_empty() {
                return Err(format!("empty `${{}}` in {s:?}"));
            }
            if !text.is_empty() {
                pieces.push(Piece::Text(std::mem::take(&mut text)));
            }
            pieces.push(Piece::Expr(expr.to_string()));
            rest = &body[end + 1..];
        } else {
            text.push_str(&rest[..=i]);
            rest = after;
        }
    }
    text.push_str(rest);
    if !text.is_empty() {
        pieces.push(Piece::Text(text));
    }
    Ok(pieces)
}

/// One step of an expression path: `stages.train[variant=rope].outs[0]`.
#[derive(Debug, Clone, PartialEq)]
pub enum Segment {
    Name(String),
    Index(usize),
    Filter(Vec<(String, String)>),
}

pub fn parse_expr(expr: &str) -> Result<Vec<Segment>, String> {
    let mut segs = Vec::new();
    let mut rest = expr;
    let bad = |why: &str| format!("cannot read `${{{expr}}}`: {why}");
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            if segs.is_empty() {
                return Err(bad("starts with `.`"));
            }
            rest = r;
            continue;
        }
        if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']').ok_or_else(|| bad("unclosed `[`"))?;
            let inner = r[..end].trim();
            if let Ok(i) = inner.parse::<usize>() {
                segs.push(Segment::Index(i));
            } else {
                segs.push(Segment::Filter(parse_filter(inner).map_err(|e| bad(&e))?));
            }
            rest = &r[end + 1..];
            continue;
        }
        let end = rest.find(['.', '[']).unwrap_or(rest.len());
        let name = &rest[..end];
        if !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(bad(&format!("`{name}` is not a name")));
        }
        segs.push(Segment::Name(name.to_string()));
        rest = &rest[end..];
    }
    Ok(segs)
}

/// `k=v,k2=v2` (the selector of a matrix stage's nodes).
pub fn parse_filter(s: &str) -> Result<Vec<(String, String)>, String> {
    s.split(',')
        .map(|kv| {
            let (k, v) = kv
                .split_once('=')
                .ok_or_else(|| format!("`{kv}` should be `key=value`"))?;
            Ok((k.trim().to_string(), v.trim().to_string()))
        })
        .collect()
}

/// A value as it appears inside a larger string: strings bare, lists space-separated.
pub fn render(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        Value::Array(items) => items.iter().map(render).collect::<Vec<_>>().join(" "),
        other => other.to_string(),
    }
}

/// The separate words a value stands for in a command: a list is one word per item
/// (nested lists flattened); anything else is one word (`null` an empty one).
pub fn words(v: &Value) -> Vec<String> {
    match v {
        Value::Array(items) => items.iter().flat_map(words).collect(),
        other => vec![render(other)],
    }
}

/// `raw:params.flags` → (true, `params.flags`): the opt-out of quoting in `cmd`.
pub fn split_raw(expr: &str) -> (bool, &str) {
    match expr.strip_prefix("raw:") {
        Some(rest) => (true, rest.trim()),
        None => (false, expr),
    }
}

/// A matrix value as it appears in a node name and a filter (`rope`, `1`, `0.5`).
pub fn matrix_label(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_split_into_text_and_exprs() {
        assert_eq!(
            parse_template("a ${x} b $${y} ${ stages.t.outs[0] }").unwrap(),
            vec![
                Piece::Text("a ".into()),
                Piece::Expr("x".into()),
                Piece::Text(" b ${y} ".into()),
                Piece::Expr("stages.t.outs[0]".into()),
            ]
        );
        assert_eq!(
            parse_template("cost $5").unwrap(),
            vec![Piece::Text("cost $5".into())]
        );
        assert!(parse_template("oops ${x").unwrap_err().contains("unclosed"));
    }

    #[test]
    fn expressions_parse_names_indexes_and_filters() {
        assert_eq!(
            parse_expr("stages.train[variant=rope, seed=1].outs[2]").unwrap(),
            vec![
                Segment::Name("stages".into()),
                Segment::Name("train".into()),
                Segment::Filter(vec![
                    ("variant".into(), "rope".into()),
                    ("seed".into(), "1".into())
                ]),
                Segment::Name("outs".into()),
                Segment::Index(2),
            ]
        );
        assert!(parse_expr("a b").is_err());
    }

    #[test]
    fn values_split_into_words_and_raw_is_an_opt_out() {
        let v: Value = serde_json::json!(["a b", 1, [true, null]]);
        assert_eq!(words(&v), vec!["a b", "1", "true", ""]);
        assert_eq!(words(&Value::String("x y".into())), vec!["x y"]);
        assert_eq!(split_raw("raw: params.f"), (true, "params.f"));
        assert_eq!(split_raw("params.f"), (false, "params.f"));
    }
}
