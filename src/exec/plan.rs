//! Deciding what a node needs: its key from its current inputs, and whether it is
//! up to date, restorable from the cache, or has to run — and why.

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::{Error, Result};
use crate::hash::{Hash, KeyInputs};
use crate::kind::Input;
use crate::spec::{Action, Node, Pipeline};
use crate::store::lock::{LockEntry, LockFile};
use crate::store::{OutputRecord, RunRecord, Store};

/// Where a node stands before a run.
#[derive(Debug, Clone)]
pub enum Verdict {
    /// Key unchanged and every output in the workspace still hashes to its lock entry.
    UpToDate,
    /// A run with this key is in the cache: restore its outputs, run nothing. The reasons
    /// say why the workspace is not already up to date.
    Restore(Box<RunRecord>, Vec<String>),
    /// Must run; the reasons are for people.
    Run(Vec<String>),
}

/// Compute a node's key inputs from its deps and its upstream nodes' outputs.
pub fn key_inputs(
    p: &Pipeline,
    node: &Node,
    store: &Store,
    upstream_outs: &dyn Fn(usize) -> Option<Vec<OutputRecord>>,
) -> Result<KeyInputs> {
    let mut deps = BTreeMap::new();
    for (k, d) in node.deps.iter().enumerate() {
        let abs = p.workspace.join(d);
        let hashed = store.stat.hash_path(&abs).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                let hint = match closest_stage(p, d) {
                    Some(s) => format!("did you mean the stage `{s}`?"),
                    None => "create it, fix the path (relative to the workspace root), or name the stage that makes it".into(),
                };
                let at = node.deps_at.get(k).copied().unwrap_or(node.line_col);
                p.source.error(at, format!("{}: dep `{d}` does not exist", node.name), Some(hint))
            } else {
                Error::io(&abs, e)
            }
        })?;
        deps.insert(d.clone(), hashed.hash);
    }
    let mut upstream = BTreeMap::new();
    for &u in &node.upstream {
        let outs = upstream_outs(u).unwrap_or_default();
        upstream.insert(
            p.nodes[u].name.clone(),
            outs.into_iter().map(|o| (o.path, o.hash)).collect(),
        );
    }
    let (action, kind_fingerprint, cmd, runtime) = match &node.action {
        // A command gets `OMP_NUM_THREADS`/`CEGRAPH_THREADS`, which can change its numerics, as
        // can the numerics variables it inherits.
        Action::Cmd(c) => {
            let threads = super::platform::node_threads(node).to_string();
            let mut runtime = BTreeMap::from([("threads".to_string(), threads)]);
            let env = |n: &str| super::cpu_numerics::node_env(&node.env, n);
            if let Some(set) = super::cpu_numerics::cmd_env_entry(&env) {
                runtime.insert("env".to_string(), set);
            }
            ("cmd".to_string(), None, Some(c.clone()), runtime)
        }
        Action::Kind {
            name,
            fingerprint,
            worker,
        } => {
            let runtime = if *worker {
                super::platform::worker_runtime(node)
            } else {
                BTreeMap::new()
            };
            (name.clone(), Some(*fingerprint), None, runtime)
        }
    };
    Ok(KeyInputs {
        action,
        kind_fingerprint,
        cmd,
        runtime,
        params: key_params(node),
        env: node.env.clone(),
        deps,
        upstream,
        outs: node.outs.iter().map(|o| o.path.clone()).collect(),
    })
}

/// The node's params and its params-file values (named `params.yaml:train.lr`).
fn key_params(node: &crate::spec::Node) -> BTreeMap<String, serde_json::Value> {
    let mut params = node.params.clone();
    for f in &node.file_params {
        for (k, v) in &f.values {
            params.insert(f.param_name(k), v.clone());
        }
    }
    params
}

/// The lock entries of nodes the pipeline still has: where a run's new lock file starts.
pub fn carried_over(p: &Pipeline, lock: &LockFile) -> LockFile {
    LockFile {
        version: lock.version,
        nodes: lock
            .nodes
            .iter()
            .filter(|(name, _)| p.node_index(name).is_some())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    }
}

/// The upstream nodes as a stage sees them: names, matrix values and output paths.
pub fn upstream_inputs(
    p: &Pipeline,
    node: &Node,
    outputs: &[Option<Vec<OutputRecord>>],
) -> Vec<Input> {
    node.upstream
        .iter()
        .map(|&u| Input {
            stage: p.nodes[u].stage.clone(),
            node: p.nodes[u].name.clone(),
            matrix: p.nodes[u].matrix.clone(),
            outs: outputs[u]
                .iter()
                .flatten()
                .map(|o| p.workspace.join(&o.path))
                .collect(),
        })
        .collect()
}

/// Outputs in the workspace that no longer match their recorded hashes.
pub fn damaged_outputs(workspace: &Path, store: &Store, outs: &[OutputRecord]) -> Vec<String> {
    outs.iter()
        .filter_map(|o| {
            let abs = workspace.join(&o.path);
            match store.stat.hash_path(&abs) {
                Ok(h) if h.hash == o.hash => None,
                Ok(_) => Some(format!("output {} was modified", o.path)),
                Err(_) => Some(format!("output {} is missing", o.path)),
            }
        })
        .collect()
}

/// Decide what `node` needs, given its key inputs and its lock entry.
pub fn judge(
    p: &Pipeline,
    store: &Store,
    inputs: &KeyInputs,
    key: &Hash,
    locked: Option<&LockEntry>,
    force: bool,
) -> Verdict {
    if force {
        return Verdict::Run(vec!["--force".into()]);
    }
    if let Some(entry) = locked
        && entry.key == *key
    {
        let damaged = damaged_outputs(&p.workspace, store, &entry.outs);
        if damaged.is_empty() {
            return Verdict::UpToDate;
        }
        if let Some(rec) = restorable(p, store, key) {
            return Verdict::Restore(Box::new(rec), damaged);
        }
        return Verdict::Run(damaged);
    }
    let why = why_changed(store, inputs, locked);
    match restorable(p, store, key) {
        Some(rec) => Verdict::Restore(Box::new(rec), why),
        None => Verdict::Run(why),
    }
}

/// The reasons a node's key differs from its locked one.
pub fn why_changed(store: &Store, inputs: &KeyInputs, locked: Option<&LockEntry>) -> Vec<String> {
    let Some(entry) = locked else {
        return vec!["never run".into()];
    };
    match store.read_record(&entry.key) {
        Some(old) => {
            let why = inputs.changes_since(&old.inputs);
            if why.is_empty() {
                vec!["key changed".into()]
            } else {
                why
            }
        }
        None => vec!["inputs changed (the previous run's record is not in the cache)".into()],
    }
}

/// A cached run for `key` whose objects are all present (and whose uncached outputs,
/// such as a source's external file, still match).
fn restorable(p: &Pipeline, store: &Store, key: &Hash) -> Option<RunRecord> {
    let rec = store.read_record(key)?;
    if !store.has_outputs(&rec.outputs) {
        return None;
    }
    let external: Vec<OutputRecord> = rec.outputs.iter().filter(|o| !o.cached).cloned().collect();
    damaged_outputs(&p.workspace, store, &external)
        .is_empty()
        .then_some(rec)
}

/// A stage whose name is within two edits of `dep` (a typo'd stage reference).
fn closest_stage<'p>(p: &'p Pipeline, dep: &str) -> Option<&'p str> {
    let name = dep.split('[').next().unwrap_or(dep);
    p.stages
        .keys()
        .map(|s| (strsim::levenshtein(s, name), s.as_str()))
        .filter(|(d, _)| *d <= 2 && *d < name.len())
        .min()
        .map(|(_, s)| s)
}
