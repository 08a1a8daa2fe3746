//! `cegraph verify`: does the lock file match what the pipeline and its inputs would
//! produce now, and does every recorded artefact still hash to its lock entry?

use std::fs;

use crate::error::Result;
use crate::graph::Dag;
use crate::hash::Hash;
use crate::hash::files::{hash_file, parse_tree_manifest};
use crate::spec::Pipeline;
use crate::store::lock::LockFile;
use crate::store::{OutputRecord, Store};

use super::plan::{key_inputs, why_changed};

#[derive(Debug, Default)]
pub struct VerifyReport {
    pub nodes: usize,
    pub artefacts: usize,
    /// Cache objects read and hashed, and their bytes.
    pub objects: usize,
    pub object_bytes: u64,
    /// One line per mismatch; empty means verified.
    pub problems: Vec<String>,
}

/// Check the lock file against the pipeline, the workspace and the cache. Every dep,
/// workspace artefact and cache object the lock names is re-read, unless `fast`, which trusts
/// the stat cache for deps and workspace files (the cache's objects are always hashed).
pub fn verify(
    p: &Pipeline,
    dag: &Dag,
    store: &Store,
    lock: &LockFile,
    fast: bool,
) -> Result<VerifyReport> {
    let mut report = VerifyReport::default();
    // Re-read every byte: a stat cache could be fooled by a tampered file with an old mtime.
    let rereading = store.rereading();
    let keys_from = if fast { store } else { &rereading };
    for name in lock.nodes.keys().filter(|n| p.node_index(n).is_none()) {
        report
            .problems
            .push(format!("{name}: in the lock file but not in the pipeline (run `cegraph run` to update the lock)"));
    }
    for &i in &dag.order {
        let node = &p.nodes[i];
        report.nodes += 1;
        let Some(entry) = lock.nodes.get(&node.name) else {
            report.problems.push(format!(
                "{}: not in the lock file (run `cegraph run`)",
                node.name
            ));
            continue;
        };
        if node
            .upstream
            .iter()
            .all(|&u| lock.nodes.contains_key(&p.nodes[u].name))
        {
            let inputs = key_inputs(p, node, keys_from, &|u| {
                lock.nodes.get(&p.nodes[u].name).map(|e| e.outs.clone())
            })?;
            let key = inputs.key();
            if key != entry.key {
                let why = why_changed(store, &inputs, Some(entry));
                report.problems.push(format!(
                    "{}: lock has key {}, the pipeline now gives {} ({})",
                    node.name,
                    entry.key.short(),
                    key.short(),
                    why.join("; ")
                ));
            }
        }
        for out in &entry.outs {
            report.artefacts += 1;
            for problem in check_artefact(p, keys_from, out, &mut report) {
                report.problems.push(format!("{}: {problem}", node.name));
            }
        }
    }
    Ok(report)
}

enum Workspace {
    Matches,
    Missing,
    Differs(String),
}

enum Cached {
    Intact,
    Missing,
    /// One line per damaged object.
    Corrupt(Vec<String>),
}

fn check_artefact(
    p: &Pipeline,
    store: &Store,
    out: &OutputRecord,
    report: &mut VerifyReport,
) -> Vec<String> {
    let abs = p.workspace.join(&out.path);
    let workspace = if !abs.exists() {
        Workspace::Missing
    } else {
        match store.stat.hash_path(&abs) {
            Ok(h) if h.hash == out.hash => Workspace::Matches,
            Ok(h) => Workspace::Differs(format!(
                "{} hashes to {}, the lock file says {}",
                out.path,
                h.hash.short(),
                out.hash.short()
            )),
            Err(e) => Workspace::Differs(format!("{}: cannot read: {e}", out.path)),
        }
    };
    if !out.cached {
        return match workspace {
            Workspace::Matches => vec![],
            Workspace::Missing => vec![format!("{} is missing", out.path)],
            Workspace::Differs(m) => vec![m],
        };
    }
    let cached = check_cached(store, out, report);
    let mut problems = Vec::new();
    match workspace {
        Workspace::Differs(m) => problems.push(m),
        Workspace::Missing if matches!(cached, Cached::Missing) => problems.push(format!(
            "{} is in neither the workspace nor the cache",
            out.path
        )),
        // A cache without the object is fine while the workspace holds it (a wiped cache).
        _ => {}
    }
    if let Cached::Corrupt(lines) = cached {
        problems.extend(lines);
    }
    problems
}

/// Size and hash of every object behind a cached output: a file's object, or a directory's
/// manifest and each of its files.
fn check_cached(store: &Store, out: &OutputRecord, report: &mut VerifyReport) -> Cached {
    let mut objects: Vec<(Hash, Option<u64>, String)> = Vec::new();
    if out.dir {
        match fs::read(store.object_path(&out.hash)) {
            Err(_) => return Cached::Missing,
            Ok(bytes) => {
                report.objects += 1;
                report.object_bytes += bytes.len() as u64;
                let actual = Hash::of_bytes(&bytes);
                if actual != out.hash {
                    return Cached::Corrupt(vec![corrupt_line(
                        store,
                        &out.hash,
                        &out.path,
                        &format!("hashes to {actual}"),
                    )]);
                }
                let Some(entries) = parse_tree_manifest(&bytes) else {
                    return Cached::Corrupt(vec![corrupt_line(
                        store,
                        &out.hash,
                        &out.path,
                        "does not parse as a directory manifest",
                    )]);
                };
                objects.extend(
                    entries
                        .into_iter()
                        .map(|e| (e.hash, Some(e.size), format!("{}/{}", out.path, e.rel))),
                );
            }
        }
    } else {
        objects.push((out.hash, Some(out.size), out.path.clone()));
    }
    let mut corrupt = Vec::new();
    let mut missing = false;
    for (hash, size, shown) in objects {
        let path = store.object_path(&hash);
        let Ok(meta) = fs::metadata(&path) else {
            missing = true;
            continue;
        };
        if let Some(size) = size
            && meta.len() != size
        {
            let how = format!("holds {} bytes, the lock file says {size}", meta.len());
            corrupt.push(corrupt_line(store, &hash, &shown, &how));
            continue;
        }
        report.objects += 1;
        report.object_bytes += meta.len();
        match hash_file(&path) {
            Ok(actual) if actual == hash => {}
            Ok(actual) => corrupt.push(corrupt_line(
                store,
                &hash,
                &shown,
                &format!("hashes to {actual}"),
            )),
            Err(e) => corrupt.push(corrupt_line(
                store,
                &hash,
                &shown,
                &format!("cannot be read: {e}"),
            )),
        }
    }
    match (corrupt.is_empty(), missing) {
        (false, _) => Cached::Corrupt(corrupt),
        (true, true) => Cached::Missing,
        (true, false) => Cached::Intact,
    }
}

fn corrupt_line(store: &Store, hash: &Hash, shown: &str, how: &str) -> String {
    format!(
        "cache object {} ({shown}) is corrupt: it {how}, expected {hash} (`cegraph run --force` on this node stores good bytes again)",
        store.object_path(hash).display()
    )
}
