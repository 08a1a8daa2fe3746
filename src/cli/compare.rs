//! What `metrics diff`, `params diff` and `exp show` compare: the params and metrics of each
//! node at a revision — `workspace` (the current lock file), an experiment, or a git revision
//! (its committed lock file, then the run records by key from the cache).

use std::collections::BTreeMap;

use serde_json::Value;

use crate::error::{Error, Result};
use crate::hash::Hash;
use crate::store::RunRecord;
use crate::store::lock::LockFile;

/// One node's params and metrics.
#[derive(Debug, Clone, Default)]
pub struct NodeValues {
    pub params: BTreeMap<String, Value>,
    pub metrics: BTreeMap<String, Value>,
}

/// Node name → its values.
pub type Values = BTreeMap<String, NodeValues>;

/// Where records missing from the local cache are looked for: the remote named (`--remote`,
/// `$CEGRAPH_REMOTE`), else the pipeline's only or default one.
#[derive(Clone, Copy, Default)]
pub struct RemoteChoice<'a> {
    pub name: Option<&'a str>,
}

impl<'a> RemoteChoice<'a> {
    /// `$CEGRAPH_REMOTE` (read by the caller into `var`), else the pipeline's default.
    pub fn from_env(var: &'a Option<String>) -> Self {
        RemoteChoice {
            name: var.as_deref(),
        }
    }
}

/// The values of every node a lock file names, from the run records in the cache; records the
/// cache lacks are fetched from the remote (and kept in the cache). Nodes whose record is
/// nowhere are named in a warning and read as empty.
pub fn from_lock(l: &super::Loaded, lock: &LockFile, what: &str, remote: RemoteChoice) -> Values {
    let mut records: BTreeMap<&str, RunRecord> = BTreeMap::new();
    let mut missing: Vec<(&str, Hash)> = Vec::new();
    for (name, entry) in &lock.nodes {
        match l.store.read_record(&entry.key) {
            Some(r) => {
                records.insert(name, r);
            }
            None => missing.push((name, entry.key)),
        }
    }
    let mut where_looked = "this cache".to_string();
    if !missing.is_empty() && !l.pipeline.remotes.is_empty() {
        let keys: Vec<Hash> = missing.iter().map(|(_, k)| *k).collect();
        match fetch_records(l, &keys, remote) {
            Ok((remote_name, fetched)) => {
                where_looked = format!("this cache or on remote `{remote_name}`");
                let by_key: BTreeMap<Hash, RunRecord> =
                    fetched.into_iter().map(|r| (r.key, r)).collect();
                missing.retain(|(name, key)| match by_key.get(key) {
                    Some(r) => {
                        records.insert(name, r.clone());
                        false
                    }
                    None => true,
                });
            }
            Err(e) => eprintln!("warning: {what}: could not read run records from the remote: {e}"),
        }
    }
    if !missing.is_empty() {
        let names: Vec<&str> = missing.iter().map(|(n, _)| *n).take(10).collect();
        let more = missing.len().saturating_sub(names.len());
        let more = if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        };
        let fix = if l.pipeline.remotes.is_empty() {
            "run them here to record them"
        } else {
            "push them from where they ran (`cegraph push`), or run them here"
        };
        eprintln!(
            "warning: {what}: no run record in {where_looked} for {}{more}; {fix}",
            names.join(", ")
        );
    }
    lock.nodes
        .keys()
        .map(|name| {
            let v = match records.remove(name.as_str()) {
                Some(r) => NodeValues {
                    params: r.inputs.params,
                    metrics: r.metrics,
                },
                None => NodeValues::default(),
            };
            (name.clone(), v)
        })
        .collect()
}

/// The records of `keys` on the chosen remote, written into the local cache as they come
/// (best effort: a read-only cache still gets its answer).
fn fetch_records(
    l: &super::Loaded,
    keys: &[Hash],
    remote: RemoteChoice,
) -> Result<(String, Vec<RunRecord>)> {
    let r = crate::remote::Remote::open(&l.pipeline, remote.name, false)?;
    let (found, problems) = r.records(keys)?;
    for p in problems {
        eprintln!("warning: {p}");
    }
    for rec in &found {
        let _ = l.store.write_record(rec);
    }
    Ok((r.name().to_string(), found))
}

/// Resolve `rev`: `workspace`, an experiment name, or a git revision.
pub fn at_revision(l: &super::Loaded, rev: &str, remote: RemoteChoice) -> Result<Values> {
    let lock_path = l.pipeline.lock_path();
    if rev == "workspace" {
        return Ok(from_lock(l, &LockFile::read(&lock_path)?, rev, remote));
    }
    if crate::store::experiments::check_name(rev).is_ok()
        && let Some(exp) = l.store.read_experiment(rev)?
    {
        return Ok(exp
            .nodes
            .into_iter()
            .map(|(n, v)| {
                let values = NodeValues {
                    params: v.params,
                    metrics: v.metrics,
                };
                (n, values)
            })
            .collect());
    }
    let dir = lock_path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    if !crate::store::git::is_revision(dir, rev) {
        return Err(Error::usage(
            format!("`{rev}` is not a git revision, an experiment or `workspace`"),
            "give a commit (HEAD~1, a tag, a hash), an experiment from `cegraph exp list`, or `workspace`",
        ));
    }
    let lock = crate::store::git::lock_at(rev, &lock_path)?;
    Ok(from_lock(l, &lock, rev, remote))
}

/// One changed value of one node.
pub struct Change {
    pub node: String,
    pub name: String,
    pub old: Option<Value>,
    pub new: Option<Value>,
}

impl Change {
    /// `new - old` when both are numbers.
    pub fn absolute(&self) -> Option<f64> {
        let old = super::table::as_f64(self.old.as_ref()?)?;
        let new = super::table::as_f64(self.new.as_ref()?)?;
        Some(new - old)
    }

    /// `(new - old) / |old|`; `None` when `old` is zero or either is not a number, or the
    /// ratio is undefined (from an infinite or NaN `old`).
    pub fn relative(&self) -> Option<f64> {
        let old = super::table::as_f64(self.old.as_ref()?)?;
        let r = (old != 0.0).then(|| self.absolute().map(|d| d / old.abs()))??;
        (!r.is_nan()).then_some(r)
    }
}

/// Every value that differs between `a` and `b` (`pick` chooses params or metrics), the
/// largest relative change first, then the largest absolute one; the rest by name.
pub fn changes(
    a: &Values,
    b: &Values,
    pick: fn(&NodeValues) -> &BTreeMap<String, Value>,
    all: bool,
) -> Vec<Change> {
    let empty = NodeValues::default();
    let nodes: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    let mut out = Vec::new();
    for node in nodes {
        let (va, vb) = (
            pick(a.get(node).unwrap_or(&empty)),
            pick(b.get(node).unwrap_or(&empty)),
        );
        let names: std::collections::BTreeSet<&String> = va.keys().chain(vb.keys()).collect();
        for name in names {
            let (old, new) = (va.get(name), vb.get(name));
            if old == new && !all {
                continue;
            }
            out.push(Change {
                node: node.clone(),
                name: name.clone(),
                old: old.cloned(),
                new: new.cloned(),
            });
        }
    }
    let size = |c: &Change| {
        let r = c.relative().map(f64::abs).filter(|x| !x.is_nan());
        let d = c.absolute().map(f64::abs).filter(|x| !x.is_nan());
        (r.unwrap_or(-1.0), d.unwrap_or(-1.0))
    };
    out.sort_by(|x, y| {
        let (sx, sy) = (size(x), size(y));
        sy.0.total_cmp(&sx.0)
            .then(sy.1.total_cmp(&sx.1))
            .then(x.node.cmp(&y.node))
            .then(x.name.cmp(&y.name))
    });
    out
}

/// The table of `metrics diff` / `params diff`.
pub fn diff_table(changes: &[Change], rev_a: &str, rev_b: &str) -> super::table::Table {
    use super::table::number;
    let mut t = super::table::Table::new(vec![
        "node".into(),
        "name".into(),
        rev_a.into(),
        rev_b.into(),
        "change".into(),
        "relative".into(),
    ]);
    for c in changes {
        let abs = c.absolute().map(|d| {
            let s = number(d);
            if d > 0.0 { format!("+{s}") } else { s }
        });
        let rel = c.relative().map(|r| {
            let s = number(r * 100.0);
            if r > 0.0 {
                format!("+{s}%")
            } else {
                format!("{s}%")
            }
        });
        let text = |v: Option<String>| v.map(Value::String).unwrap_or(Value::Null);
        t.rows.push(vec![
            Value::String(c.node.clone()),
            Value::String(c.name.clone()),
            c.old.clone().unwrap_or(Value::Null),
            c.new.clone().unwrap_or(Value::Null),
            text(abs),
            text(rel),
        ]);
    }
    t
}
