//! `params_files:` on a stage — params read per key from a YAML, JSON or TOML file that the
//! user's own script also reads:
//!
//! ```yaml
//! params_files:
//!   - file: params.yaml
//!     keys: [train.lr, train.batch]
//! ```
//!
//! Only the listed keys' values enter the node's key (as params named `params.yaml:train.lr`),
//! so editing another key of the file re-runs nothing. `${params.train.lr}` reads them. A `-S
//! train.lr=…` (or `-S params.yaml:train.lr=…`) override changes the value without editing the
//! file: the command then reads an overridden copy, written to its temp dir; `$CEGRAPH_PARAMS_FILE`
//! (and `${params_file}` in `cmd`) always names the file to read.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Resolver;
use super::model::{At, ParamsFileSpec};
use super::overrides::Override;
use crate::error::{Error, Result};
use crate::hash::Hash;

/// The values one node reads from one params file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileParams {
    /// Workspace-relative path.
    pub file: String,
    /// Key (`train.lr`) → value, overrides applied.
    pub values: BTreeMap<String, Value>,
    /// The whole file with the overrides applied, when any applies to this node: the command
    /// reads this copy instead of the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overridden: Option<String>,
}

impl FileParams {
    /// How the values are named among the node's params (and in `status`).
    pub fn param_name(&self, key: &str) -> String {
        format!("{}:{key}", self.file)
    }

    /// File name for the overridden copy (keeps the extension, so readers pick the format).
    pub fn copy_name(&self) -> String {
        let name = Path::new(&self.file)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "params".into());
        format!("overridden-{name}")
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Format {
    Yaml,
    Json,
    Toml,
}

impl Format {
    pub fn of(path: &str) -> Format {
        let lower = path.to_ascii_lowercase();
        if lower.ends_with(".json") {
            Format::Json
        } else if lower.ends_with(".toml") {
            Format::Toml
        } else {
            Format::Yaml
        }
    }
}

/// Parse a params file; a syntax error names file:line:col.
pub fn parse(shown: &str, text: &str, format: Format) -> Result<Value> {
    let fail = |line: usize, col: usize, msg: String| {
        Error::usage(
            format!("params file {shown}:{line}:{col}: {msg}"),
            "fix the file's syntax (it is read as YAML, JSON or TOML by its extension)",
        )
    };
    let doc = match format {
        Format::Json => serde_json::from_str::<Value>(text)
            .map_err(|e| fail(e.line(), e.column(), strip_position(&e.to_string())))?,
        Format::Toml => match text.parse::<toml::Table>() {
            Ok(t) => serde_json::to_value(t).map_err(|e| fail(1, 1, e.to_string()))?,
            Err(e) => {
                let (line, col) = e.span().map(|s| line_col(text, s.start)).unwrap_or((1, 1));
                return Err(fail(line, col, e.message().to_string()));
            }
        },
        Format::Yaml => serde_saphyr::from_str::<Value>(text).map_err(|e| {
            let (line, col) = e
                .location()
                .map(|l| (l.line() as usize, l.column() as usize))
                .unwrap_or((1, 1));
            fail(line, col, first_line(&e.to_string()))
        })?,
    };
    if !doc.is_object() {
        return Err(fail(1, 1, "expected a mapping of names to values".into()));
    }
    Ok(doc)
}

fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

fn first_line(msg: &str) -> String {
    msg.lines().next().unwrap_or("").to_string()
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// The value at a dotted key (`train.lr`): a top-level key spelled with dots first, else
/// nested mappings.
pub fn get<'v>(doc: &'v Value, key: &str) -> Option<&'v Value> {
    if let Some(v) = doc.get(key) {
        return Some(v);
    }
    key.split('.').try_fold(doc, |cur, part| cur.get(part))
}

/// Set the value at a dotted key that [`get`] finds.
pub fn set(doc: &mut Value, key: &str, value: Value) {
    if let Some(slot) = doc.get_mut(key) {
        *slot = value;
        return;
    }
    let slot = key.split('.').try_fold(doc, |cur, part| cur.get_mut(part));
    if let Some(slot) = slot {
        *slot = value;
    }
}

/// The document written back in its own format (for the overridden copy).
pub fn to_text(doc: &Value, format: Format) -> Result<String> {
    let fail = |e: String| Error::usage(format!("cannot write the overridden params: {e}"), "");
    match format {
        Format::Json => serde_json::to_string_pretty(doc).map_err(|e| fail(e.to_string())),
        Format::Toml => toml::to_string(doc).map_err(|e| fail(e.to_string())),
        Format::Yaml => serde_saphyr::to_string(doc).map_err(|e| fail(e.to_string())),
    }
}

/// `{train: {lr: 1}}` from `train.lr → 1`, for `${params.train.lr}`.
pub fn as_tree(values: &BTreeMap<String, Value>) -> serde_json::Map<String, Value> {
    let mut root = serde_json::Map::new();
    for (key, v) in values {
        let parts: Vec<&str> = key.split('.').collect();
        let mut cur = &mut root;
        for p in &parts[..parts.len() - 1] {
            let next = cur
                .entry(p.to_string())
                .or_insert_with(|| Value::Object(Default::default()));
            if !next.is_object() {
                *next = Value::Object(Default::default());
            }
            cur = next.as_object_mut().expect("just made an object");
        }
        cur.insert(parts[parts.len() - 1].to_string(), v.clone());
        // A key spelled with dots at the top level is reachable as written too.
        if parts.len() > 1 {
            root.entry(key.clone()).or_insert_with(|| v.clone());
        }
    }
    root
}

/// Reads each params file once per resolution and applies the `-S` overrides of its keys.
pub(super) struct Reader<'a> {
    workspace: PathBuf,
    overrides: &'a [Override],
    used: RefCell<Vec<bool>>,
    docs: RefCell<BTreeMap<String, (Value, Format)>>,
    read: RefCell<Vec<(PathBuf, Hash)>>,
}

impl<'a> Reader<'a> {
    pub(super) fn new(workspace: &Path, overrides: &'a [Override]) -> Self {
        Reader {
            workspace: workspace.to_path_buf(),
            overrides,
            used: RefCell::new(vec![false; overrides.len()]),
            docs: RefCell::new(BTreeMap::new()),
            read: RefCell::new(Vec::new()),
        }
    }

    /// The file's document; `Err(None)` when it cannot be read (the caller points at the
    /// pipeline file), `Err(Some(e))` when it is not valid.
    fn doc(&self, rel: &str) -> std::result::Result<(Value, Format), Option<Error>> {
        if let Some(d) = self.docs.borrow().get(rel) {
            return Ok(d.clone());
        }
        let path = self.workspace.join(rel);
        let bytes = std::fs::read(&path).map_err(|_| None)?;
        let text = String::from_utf8_lossy(&bytes);
        let format = Format::of(rel);
        let doc = parse(rel, &text, format).map_err(Some)?;
        self.read.borrow_mut().push((path, Hash::of_bytes(&bytes)));
        self.docs
            .borrow_mut()
            .insert(rel.to_string(), (doc.clone(), format));
        Ok((doc, format))
    }

    /// The files read, with their hashes; an error for an override no node used.
    pub(super) fn finish(&self) -> Result<Vec<(PathBuf, Hash)>> {
        let used = self.used.borrow();
        if let Some(i) = used.iter().position(|u| !u) {
            let o = &self.overrides[i];
            return Err(Error::usage(
                format!("-S {}: no stage reads that params-file key", o.target),
                "list the key under a stage's `params_files: [{file: ..., keys: [...]}]`",
            ));
        }
        Ok(self.read.borrow().clone())
    }
}

/// Whether every params file still has the bytes a memoised resolution read.
pub(super) fn unchanged(files: &[(PathBuf, Hash)]) -> bool {
    files
        .iter()
        .all(|(p, h)| std::fs::read(p).is_ok_and(|b| Hash::of_bytes(&b) == *h))
}

/// All of a node's params-file values as one tree, for `${params.train.lr}`.
pub(super) fn tree_of(files: &[FileParams]) -> Value {
    let all: BTreeMap<String, Value> = files
        .iter()
        .flat_map(|f| f.values.iter().map(|(k, v)| (k.clone(), v.clone())))
        .collect();
    Value::Object(as_tree(&all))
}

/// Every leaf's dotted key, for suggestions.
fn leaf_keys(v: &Value, prefix: &str, out: &mut Vec<String>) {
    match v.as_object() {
        Some(m) if !m.is_empty() => {
            for (k, x) in m {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                leaf_keys(x, &key, out);
            }
        }
        _ => out.push(prefix.to_string()),
    }
}

impl Resolver<'_> {
    pub(super) fn read_params_files(
        &self,
        specs: &[At<ParamsFileSpec>],
    ) -> Result<Vec<FileParams>> {
        specs
            .iter()
            .map(|s| self.read_params_file(s.value()))
            .collect()
    }

    fn read_params_file(&self, spec: &ParamsFileSpec) -> Result<FileParams> {
        let rel =
            super::normalize_inside(spec.file.value()).unwrap_or_else(|| spec.file.value().clone());
        let (doc, format) = match self.files.doc(&rel) {
            Ok(d) => d,
            Err(Some(e)) => return Err(e),
            Err(None) => {
                return self.err(
                    spec.file.line_col(),
                    format!("params file `{rel}` cannot be read"),
                    Some("create it, or give its path relative to the workspace"),
                );
            }
        };
        let mut copy = doc.clone();
        let mut values = BTreeMap::new();
        let mut overridden = false;
        for key in &spec.keys {
            let k = key.value();
            let Some(v) = get(&doc, k) else {
                let mut known = Vec::new();
                leaf_keys(&doc, "", &mut known);
                let best = known
                    .iter()
                    .map(|c| (strsim::jaro_winkler(k, c), c))
                    .max_by(|a, b| a.0.total_cmp(&b.0));
                let help = match best {
                    Some((score, c)) if score > 0.7 => format!("did you mean `{c}`?"),
                    _ => format!("its keys: {}", known.join(", ")),
                };
                return self.err(
                    key.line_col(),
                    format!("params file `{rel}` has no key `{k}`"),
                    Some(&help),
                );
            };
            let mut value = v.clone();
            for (i, o) in self.files.overrides.iter().enumerate() {
                if o.target == *k || o.target == format!("{rel}:{k}") {
                    value = o.value()?;
                    self.files.used.borrow_mut()[i] = true;
                    set(&mut copy, k, value.clone());
                    overridden = true;
                }
            }
            values.insert(k.clone(), value);
        }
        let overridden = match overridden {
            true => Some(to_text(&copy, format)?),
            false => None,
        };
        Ok(FileParams {
            file: rel,
            values,
            overridden,
        })
    }

    /// `${params_file}` in `cmd`: the file the command must read (see the module doc).
    pub(super) fn params_file_ref(&self, scope: &super::Scope, at: (u64, u64)) -> Result<String> {
        let has_files = scope
            .file_params
            .and_then(Value::as_object)
            .is_some_and(|m| !m.is_empty());
        if !has_files {
            return self.err(
                at,
                "`${params_file}`: this stage has no `params_files`",
                Some("add `params_files: [{file: params.yaml, keys: [...]}]` to the stage"),
            );
        }
        Ok("\"$CEGRAPH_PARAMS_FILE\"".to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn params_in_yaml_json_and_toml() {
        let y = parse("p.yaml", "train:\n  lr: 0.001\n", Format::Yaml).unwrap();
        assert_eq!(get(&y, "train.lr"), Some(&json!(0.001)));
        let j = parse("p.json", r#"{"train": {"lr": 2}}"#, Format::Json).unwrap();
        assert_eq!(get(&j, "train.lr"), Some(&json!(2)));
        let t = parse("p.toml", "[train]\nlr = 0.5\n", Format::Toml).unwrap();
        assert_eq!(get(&t, "train.lr"), Some(&json!(0.5)));
        let mut t = t;
        set(&mut t, "train.lr", json!(0.25));
        assert!(to_text(&t, Format::Toml).unwrap().contains("lr = 0.25"));
    }

    #[test]
    fn invalid_params_file_names_file_line_col() {
        let e = parse("p.json", "{\n  \"a\": 1,,\n}", Format::Json).unwrap_err();
        assert!(e.to_string().contains("p.json:2:"), "{e}");
        let e = parse("p.toml", "a = 1\nb = \n", Format::Toml).unwrap_err();
        assert!(e.to_string().contains("p.toml:2:"), "{e}");
        let e = parse("p.yaml", "a: 1\nb: [1, 2\n", Format::Yaml).unwrap_err();
        assert!(e.to_string().starts_with("params file p.yaml:"), "{e}");
    }
}
