//! `cegraph gc`: drop cache entries that no lock file and no recent run refers to.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::Store;
use super::lock::LockFile;
use crate::error::Result;
use crate::hash::Hash;

#[derive(Debug, Default)]
pub struct GcReport {
    pub kept_objects: usize,
    pub removed: Vec<PathBuf>,
    pub freed_bytes: u64,
    /// Per root: its lock file, how many objects it keeps and their bytes.
    pub roots: Vec<(PathBuf, usize, u64)>,
    /// Objects kept only because they are younger than the grace period.
    pub young_objects: usize,
    /// Of `removed`: temporary files and directories whose owner process is dead.
    pub temp_files: usize,
    pub temp_bytes: u64,
}

/// A lock file whose entries must survive.
pub struct Root {
    pub path: PathBuf,
    pub lock: LockFile,
}

/// How long to keep things no lock file names.
#[derive(Debug, Clone, Copy)]
pub struct Keep {
    /// Runs recorded within this window stay, with their objects.
    pub recent_runs: Duration,
    /// Nothing younger than this is ever removed: a run in progress may have published
    /// objects and records that no lock file names yet.
    pub grace: Duration,
}

/// Keep what `roots` reference, runs recorded within `keep.recent_runs` and everything
/// younger than `keep.grace`; remove the rest (only list it when `dry_run`).
pub fn collect(store: &Store, roots: &[Root], keep: Keep, dry_run: bool) -> Result<GcReport> {
    let now = SystemTime::now();
    let keep_recent = keep.recent_runs.max(keep.grace);
    let mut live_keys: HashSet<Hash> = HashSet::new();
    let mut live_objects: HashSet<Hash> = HashSet::new();
    let mut report = GcReport::default();
    for root in roots {
        for entry in root.lock.nodes.values() {
            live_keys.insert(entry.key);
        }
        let objects = with_tree_entries(store, root.lock.hashes().copied());
        let bytes = objects
            .iter()
            .filter_map(|h| fs::metadata(store.object_path(h)).ok())
            .map(|m| m.len())
            .sum();
        report.roots.push((root.path.clone(), objects.len(), bytes));
        live_objects.extend(objects);
    }
    // Recorded experiments are roots too: `exp show` and `metrics diff` read their runs.
    for exp in store.experiments() {
        live_keys.extend(exp.nodes.values().map(|n| n.key));
    }
    let mut doomed: Vec<PathBuf> = Vec::new();
    for (path, key) in sharded_files(&store.root().join("runs"), ".json") {
        let recent = modified_within(&path, now, keep_recent);
        if live_keys.contains(&key) || recent {
            if let Some(rec) = store.read_record(&key) {
                live_keys.insert(key);
                live_objects.extend(rec.outputs.iter().filter(|o| o.cached).map(|o| o.hash));
            }
        } else {
            doomed.push(path);
        }
    }
    let live_objects = with_tree_entries(store, live_objects);
    for (path, key) in sharded_files(&store.root().join("logs"), ".log") {
        if !live_keys.contains(&key) && !modified_within(&path, now, keep.grace) {
            doomed.push(path);
        }
    }
    for (path, hash) in sharded_files(&store.root().join("objects"), "") {
        if live_objects.contains(&hash) {
            report.kept_objects += 1;
        } else if modified_within(&path, now, keep.grace) {
            report.kept_objects += 1;
            report.young_objects += 1;
        } else {
            doomed.push(path);
        }
    }
    // Handed-over jobs (Slurm) and their scripts and logs matter while the jobs are queued
    // and for a look afterwards: they go with the recent-runs window.
    for dir in ["jobs/specs", "jobs/results", "jobs/pipelines"] {
        for (path, _) in sharded_files(&store.root().join(dir), ".json") {
            if !modified_within(&path, now, keep_recent) {
                doomed.push(path);
            }
        }
    }
    // Quarantined objects are kept for a look, like Slurm logs.
    for dir in ["slurm/scripts", "slurm/logs", "quarantine"] {
        if let Ok(rd) = fs::read_dir(store.root().join(dir)) {
            for e in rd.flatten() {
                if !modified_within(&e.path(), now, keep_recent) {
                    doomed.push(e.path());
                }
            }
        }
    }
    // Staging left by killed processes: at once when the name says its owner here is dead;
    // names without an owner on this host (older versions, other machines sharing the cache)
    // after an hour, since a live process may still be writing them.
    for t in super::tmp::sweep(&store.tmp_dir(), dry_run) {
        report.temp_files += 1;
        report.temp_bytes += t.bytes;
        report.freed_bytes += t.bytes;
        report.removed.push(t.path);
    }
    if let Ok(rd) = fs::read_dir(store.tmp_dir()) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let ours =
                super::tmp::owner_of(&name).is_some_and(|(h, _)| h == super::tmp::host_tag());
            if !ours && !modified_within(&e.path(), now, Duration::from_secs(3600)) {
                doomed.push(e.path());
            }
        }
    }
    for path in doomed {
        report.freed_bytes += fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        if !dry_run {
            let _ = super::remove_path(&path);
        }
        report.removed.push(path);
    }
    Ok(report)
}

/// `objects` plus the files of those that are directory manifests.
fn with_tree_entries(store: &Store, objects: impl IntoIterator<Item = Hash>) -> HashSet<Hash> {
    let mut all: HashSet<Hash> = objects.into_iter().collect();
    for h in all.clone() {
        if let Some(entries) = store.tree(&h) {
            all.extend(entries.iter().map(|e| e.hash));
        }
    }
    all
}

fn modified_within(path: &Path, now: SystemTime, window: Duration) -> bool {
    fs::metadata(path)
        .and_then(|m| m.modified())
        .map(|t| now.duration_since(t).unwrap_or_default() < window)
        .unwrap_or(false)
}

/// Files under `dir/ab/cdef…{ext}` with the hash their name spells.
pub(crate) fn sharded_files(dir: &Path, ext: &str) -> Vec<(PathBuf, Hash)> {
    let mut out = Vec::new();
    let Ok(shards) = fs::read_dir(dir) else {
        return out;
    };
    for shard in shards.flatten() {
        let prefix = shard.file_name().to_string_lossy().into_owned();
        let Ok(files) = fs::read_dir(shard.path()) else {
            continue;
        };
        for f in files.flatten() {
            let name = f.file_name().to_string_lossy().into_owned();
            let Some(stem) = name.strip_suffix(ext) else {
                continue;
            };
            if let Some(h) = Hash::from_hex(&format!("{prefix}{stem}")) {
                out.push((f.path(), h));
            }
        }
    }
    out
}
