//! `cegraph exp apply`: write overrides into the pipeline file as the smallest textual edit —
//! only the value at its line:col changes; comments, order and layout stay.

use std::path::Path;

use super::model::{At, PipelineFile};
use super::overrides::Override;
use crate::error::{Error, IoContext, Result, SourceFile};

/// The file's text with each override's value replaced; checked by parsing the result and
/// comparing every overridden value with what it should be.
pub fn apply_to_text(src: &SourceFile, overrides: &[Override]) -> Result<String> {
    let mut text = src.text.to_string();
    for o in overrides {
        let mut file = parse(&text, src)?;
        let at = position(&mut file, o)?;
        text = replace_value(&text, at, o)?;
    }
    let file = parse(&text, src)?;
    for o in overrides {
        let got = slot(&file, o).map(|v| v.value().clone());
        if got.as_ref() != Some(&o.value()?) {
            return Err(cannot(
                o,
                "the edited file does not read back as that value",
            ));
        }
    }
    Ok(text)
}

/// The overrides of params-file keys (the rest name the pipeline's params and vars).
pub fn file_key_overrides(src: &SourceFile, overrides: &[Override]) -> Result<Vec<Override>> {
    let mut file = parse(&src.text, src)?;
    super::overrides::apply(&mut file, overrides)
}

/// A YAML params file's text with `key` (dotted, nested block mappings) set to `o`'s value,
/// by the same minimal edit; checked by reading the result back.
pub fn apply_to_params_text(shown: &str, text: &str, key: &str, o: &Override) -> Result<String> {
    use super::params_file::{Format, get, parse as parse_params};
    if Format::of(shown) != Format::Yaml {
        return Err(cannot(o, &format!("{shown} is not YAML: edit it by hand")));
    }
    let at = locate_key(text, key).ok_or_else(|| {
        cannot(
            o,
            &format!("`{key}` is not a one-line value of a block mapping in {shown}"),
        )
    })?;
    let edited = replace_value(text, at, o)?;
    let doc = parse_params(shown, &edited, Format::Yaml)?;
    if get(&doc, key) != Some(&o.value()?) {
        return Err(cannot(
            o,
            "the edited file does not read back as that value",
        ));
    }
    Ok(edited)
}

/// 1-based (line, col) of the value of a dotted key in block-style YAML.
fn locate_key(text: &str, key: &str) -> Option<(u64, u64)> {
    let lines: Vec<&str> = text.lines().collect();
    let indent = |l: &str| l.len() - l.trim_start().len();
    let content = |l: &str| !l.trim().is_empty() && !l.trim_start().starts_with('#');
    let (mut from, mut parent_indent): (usize, Option<usize>) = (0, None);
    let parts: Vec<&str> = key.split('.').collect();
    for (depth, part) in parts.iter().enumerate() {
        let mut found = None;
        for (i, line) in lines.iter().enumerate().skip(from) {
            if !content(line) {
                continue;
            }
            let ind = indent(line);
            if parent_indent.is_some_and(|p| ind <= p) {
                break;
            }
            let body = line.trim_start();
            let rest = [
                format!("{part}:"),
                format!("\"{part}\":"),
                format!("'{part}':"),
            ]
            .into_iter()
            .find_map(|k| body.strip_prefix(k.as_str()).map(|r| (k.len(), r)));
            if let Some((klen, rest)) = rest
                && (rest.is_empty() || rest.starts_with([' ', '\t']))
            {
                found = Some((i, ind, ind + klen + (rest.len() - rest.trim_start().len())));
                break;
            }
        }
        let (i, ind, value_col) = found?;
        if depth + 1 == parts.len() {
            let value = lines[i][value_col..].trim_start();
            if value.is_empty() || value.starts_with('#') {
                return None;
            }
            let col = lines[i][..value_col].chars().count() + 1;
            return Some((i as u64 + 1, col as u64));
        }
        from = i + 1;
        parent_indent = Some(ind);
    }
    None
}

/// Apply and write the file atomically.
pub fn apply_to_file(path: &Path, overrides: &[Override]) -> Result<()> {
    let src = super::yaml::read(path)?;
    let text = apply_to_text(&src, overrides)?;
    write_atomic(path, &text)
}

/// Replace a file's contents atomically, keeping its permissions.
pub fn write_atomic(path: &Path, text: &str) -> Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    let dir = dir.unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir).at(dir)?;
    std::io::Write::write_all(&mut tmp, text.as_bytes()).at(path)?;
    if let Ok(meta) = std::fs::metadata(path) {
        let _ = std::fs::set_permissions(tmp.path(), meta.permissions());
    }
    tmp.persist(path).map_err(|e| Error::io(path, e.error))?;
    Ok(())
}

fn parse(text: &str, src: &SourceFile) -> Result<PipelineFile> {
    super::yaml::parse(&SourceFile {
        display_name: src.display_name.clone(),
        text: text.into(),
    })
}

fn slot<'a>(file: &'a PipelineFile, o: &Override) -> Option<&'a At<serde_json::Value>> {
    let (head, name) = o.parts();
    if head == "vars" {
        file.vars.get(name)
    } else {
        file.stages.get(head)?.value().params.get(name)
    }
}

fn position(file: &mut PipelineFile, o: &Override) -> Result<(u64, u64)> {
    if slot(file, o).is_none() {
        // Names the closest param or var.
        let deferred = super::overrides::apply(file, std::slice::from_ref(o))?;
        if !deferred.is_empty() {
            return Err(cannot(o, "it is a params file's key: edit that file"));
        }
    }
    slot(file, o)
        .map(At::line_col)
        .filter(|&(l, c)| l > 0 && c > 0)
        .ok_or_else(|| cannot(o, "its place in the file is unknown"))
}

fn cannot(o: &Override, why: &str) -> Error {
    Error::usage(
        format!(
            "cannot write -S {}={} into the pipeline file: {why}",
            o.target, o.text
        ),
        "edit the value by hand",
    )
}

/// Replace the one-line scalar or flow collection starting at `(line, col)` (1-based).
fn replace_value(text: &str, (line, col): (u64, u64), o: &Override) -> Result<String> {
    let line_start: usize = text
        .split_inclusive('\n')
        .take(line as usize - 1)
        .map(str::len)
        .sum();
    let line_text = text[line_start..].split('\n').next().unwrap_or("");
    let start = line_text
        .char_indices()
        .nth(col as usize - 1)
        .map(|(i, _)| i)
        .ok_or_else(|| cannot(o, "its place in the file is unknown"))?;
    let len = value_len(&line_text[start..], in_flow(&line_text[..start]))
        .ok_or_else(|| cannot(o, "the value spans several lines"))?;
    let new = o.text.trim();
    let (a, b) = (line_start + start, line_start + start + len);
    Ok(format!("{}{}{}", &text[..a], new, &text[b..]))
}

/// Whether an unclosed `[` or `{` precedes the value on its line.
fn in_flow(before: &str) -> bool {
    let open = before.matches(['[', '{']).count();
    let close = before.matches([']', '}']).count();
    open > close
}

/// Byte length of the value at the start of `s`; `None` when it does not end on this line.
fn value_len(s: &str, flow: bool) -> Option<usize> {
    let first = s.chars().next()?;
    match first {
        '"' | '\'' => {
            let mut escaped = false;
            for (i, c) in s.char_indices().skip(1) {
                match c {
                    '\\' if first == '"' && !escaped => escaped = true,
                    c if c == first && !escaped => return Some(i + 1),
                    _ => escaped = false,
                }
            }
            None
        }
        '[' | '{' => {
            let mut depth = 0i32;
            for (i, c) in s.char_indices() {
                match c {
                    '[' | '{' => depth += 1,
                    ']' | '}' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(i + 1);
                        }
                    }
                    _ => {}
                }
            }
            None
        }
        '|' | '>' | '&' | '*' | '!' => None,
        _ => {
            let mut end = s.len();
            if let Some(i) = s.find(" #") {
                end = end.min(i);
            }
            if flow && let Some(i) = s.find([',', ']', '}']) {
                end = end.min(i);
            }
            Some(s[..end].trim_end().len())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(text: &str, args: &[&str]) -> Result<String> {
        let src = SourceFile::new(Path::new("p.yaml"), text.to_string());
        let o: Vec<Override> = args.iter().map(|a| Override::parse(a).unwrap()).collect();
        apply_to_text(&src, &o)
    }

    #[test]
    fn exp_apply_edits_only_the_value_and_keeps_comments() {
        let text = "# top\nvars:\n  seed: 1 # the seed\nstages:\n  train:\n    cmd: echo ${params.lr}\n    params: {lr: 0.001, layers: [1, 2]}\n";
        let out = apply(
            text,
            &["train.lr=0.003", "vars.seed=2", "train.layers=[4, 8]"],
        )
        .unwrap();
        assert_eq!(
            out,
            "# top\nvars:\n  seed: 2 # the seed\nstages:\n  train:\n    cmd: echo ${params.lr}\n    params: {lr: 0.003, layers: [4, 8]}\n"
        );
    }

    #[test]
    fn exp_apply_edits_a_yaml_params_file_in_place() {
        let text = "# params\ntrain:\n  epochs: 3\n  lr: 0.01 # step\neval:\n  lr: 1\n";
        let o = Override::parse("train.lr=0.05").unwrap();
        let out = apply_to_params_text("params.yaml", text, "train.lr", &o).unwrap();
        assert_eq!(
            out,
            "# params\ntrain:\n  epochs: 3\n  lr: 0.05 # step\neval:\n  lr: 1\n"
        );
        let o = Override::parse("eval.lr=2").unwrap();
        let out = apply_to_params_text("params.yaml", text, "eval.lr", &o).unwrap();
        assert!(out.ends_with("eval:\n  lr: 2\n"), "{out}");
        assert!(apply_to_params_text("p.json", "{}", "a", &o).is_err());
    }

    #[test]
    fn exp_apply_of_block_value_is_refused() {
        let text = "stages:\n  t:\n    cmd: echo\n    params:\n      msg: |\n        hi\n";
        assert!(apply(text, &["t.msg=yo"]).is_err());
        assert!(apply(text, &["t.nope=1"]).is_err());
    }
}
