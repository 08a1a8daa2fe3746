//! Type errors and unknown keys in a pipeline's words: what each field takes, with an
//! example, and the nearest known key for a typo.

use serde_saphyr::Error as YamlError;

use super::errors::Described;

/// Where the field list is: a command the user has, not a path in cegraph's repository.
pub const SCHEMA_HINT: &str = "`cegraph schema` prints every field";

/// What each field takes, and an example.
fn expectation(key: &str) -> Option<(&'static str, &'static str)> {
    Some(match key {
        "stages" => (
            "stages must be a mapping of stage name → stage",
            "e.g. stages: {prepare: {cmd: ..., outs: [out/data.txt]}}",
        ),
        "vars" => (
            "vars must be a mapping of name → value",
            "e.g. vars: {seeds: [1, 2]}",
        ),
        "matrix" => (
            "matrix must be a mapping of name → list of values",
            "e.g. matrix: {seed: [1, 2]}",
        ),
        "params" => (
            "params must be a mapping of name → value",
            "e.g. params: {lr: 0.001}",
        ),
        "env" => (
            "env must be a mapping of variable name → text",
            "e.g. env: {PYTHONHASHSEED: \"0\"}",
        ),
        "deps" => (
            "deps must be a list of paths or stage names",
            "e.g. deps: [data/raw.csv, prepare]",
        ),
        "outs" => ("outs must be a list of paths", "e.g. outs: [out/model.pt]"),
        "exclude" => (
            "exclude must be a list of matrix combinations to leave out",
            "e.g. exclude: [{variant: rope, seed: 2}]",
        ),
        "resources" => (
            "resources must be a mapping of cpus and gpus (whole numbers)",
            "e.g. resources: {cpus: 4, gpus: 1}",
        ),
        "remotes" => (
            "remotes must be a mapping of name → URL",
            "e.g. remotes: {shared: s3://bucket/cache}",
        ),
        "cmd" => (
            "this field takes one value (text)",
            "e.g. cmd: python train.py --lr ${params.lr}",
        ),
        "kind" => ("this field takes one value (text)", "e.g. kind: train"),
        "out_dir" => (
            "this field takes one value (text)",
            "e.g. out_dir: out/${stage}",
        ),
        "metrics" => (
            "this field takes one value (text)",
            "e.g. metrics: out/metrics.json",
        ),
        "workspace" | "name" => (
            "this field takes one value (text)",
            "e.g. name: my-pipeline",
        ),
        _ => return None,
    })
}

/// Rewrite a type error as what its field takes, add "did you mean" to an unknown key, and
/// name a `[`/`{` left open on an earlier line (the parser reports where it noticed).
pub fn refine(d: Described, e: &YamlError, text: &str) -> Described {
    let mut d = refine_words(d, e, text);
    if d.at.0 > 0
        && let Some((open, (line, col))) = unclosed_before(text, d.at)
        && line < d.at.0
    {
        let note = format!("the `{open}` at {line}:{col} is not closed before this point");
        d.help = Some(match d.help {
            Some(h) => format!("{note}; {h}"),
            None => note,
        });
    }
    d
}

/// The innermost `[` or `{` still open at `at`, outside quotes and comments.
fn unclosed_before(text: &str, at: (u64, u64)) -> Option<(char, (u64, u64))> {
    let mut open: Vec<(char, (u64, u64))> = Vec::new();
    for (l, line) in text.lines().enumerate().take(at.0 as usize) {
        let lineno = l as u64 + 1;
        let mut quote: Option<char> = None;
        let mut prev = ' ';
        for (c, ch) in line.chars().enumerate() {
            let colno = c as u64 + 1;
            if lineno == at.0 && colno >= at.1 {
                break;
            }
            match (quote, ch) {
                (Some(q), _) if ch == q => quote = None,
                (Some(_), _) => {}
                (None, '\'' | '"') if matches!(prev, ' ' | '[' | '{' | ',' | ':') => {
                    quote = Some(ch)
                }
                (None, '#') if prev == ' ' || c == 0 => break,
                (None, '[' | '{') => open.push((ch, (lineno, colno))),
                (None, ']' | '}') => {
                    open.pop();
                }
                _ => {}
            }
            prev = ch;
        }
    }
    open.pop()
}

fn refine_words(mut d: Described, e: &YamlError, text: &str) -> Described {
    if let Some((field, expected)) = unknown_field(e) {
        let nearest = expected
            .iter()
            .map(|k| (strsim::levenshtein(field, k), *k))
            .filter(|&(dist, _)| dist <= 2.max(field.len() / 3))
            .min();
        d.help = Some(match nearest {
            Some((_, k)) => format!("did you mean `{k}`? {SCHEMA_HINT}"),
            None => format!("check the spelling; {SCHEMA_HINT}"),
        });
        return d;
    }
    if is_type_error(e)
        && let Some((what, example)) = key_at(text, d.at).and_then(|k| expectation(&k))
    {
        if !what.starts_with("this field") {
            d.message = format!("{what} ({})", d.message);
        }
        d.help = Some(format!("{example} ({SCHEMA_HINT})"));
    }
    d
}

fn unknown_field(e: &YamlError) -> Option<(&str, &[&'static str])> {
    match e {
        YamlError::WithSnippet { error, .. } | YamlError::AliasError { error, .. } => {
            unknown_field(error)
        }
        YamlError::SerdeUnknownField {
            field, expected, ..
        } => Some((field.as_str(), expected)),
        _ => None,
    }
}

fn is_type_error(e: &YamlError) -> bool {
    use YamlError as E;
    match e {
        E::WithSnippet { error, .. } | E::AliasError { error, .. } => is_type_error(error),
        E::Unexpected { .. }
        | E::SerdeInvalidType { .. }
        | E::SerdeInvalidValue { .. }
        | E::InvalidScalar { .. }
        | E::Message { .. } => true,
        _ => false,
    }
}

/// The key whose value starts at `at` (1-based line, column): the nearest `key:` before it
/// on its line, else a previous line that ends in `key:`.
fn key_at(text: &str, at: (u64, u64)) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let line = lines.get((at.0 as usize).checked_sub(1)?)?;
    let col = (at.1 as usize).saturating_sub(1);
    let prefix: String = line.chars().take(col).collect();
    if let Some(k) = last_key(&prefix) {
        return Some(k);
    }
    lines[..at.0 as usize - 1]
        .iter()
        .rev()
        .map(|l| l.trim_end())
        .find(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .filter(|l| l.ends_with(':'))
        .and_then(last_key)
}

/// The identifier before the last `:` of `s`, when `:` ends it or is followed by a space.
fn last_key(s: &str) -> Option<String> {
    let s = s.trim_end();
    let colon = s.rfind(':')?;
    if !s[colon + 1..].trim().is_empty() {
        return None;
    }
    let key: String = s[..colon]
        .chars()
        .rev()
        .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '-')
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    (!key.is_empty()).then_some(key)
}
