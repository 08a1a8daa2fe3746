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
    /// Of `removed`: temporary files and directories whose owner process is dead.
    pub temp_files: usize,
    pub temp_bytes: u64,
}

/// Keep what `locks` reference plus runs recorded within `keep_recent`; remove the rest
/// (only list it when `dry_run`).
pub fn collect(
    store: &Store,
    locks: &[LockFile],
    keep_recent: Duration,
    dry_run: bool,
) -> Result<GcReport> {
    let now = SystemTime::now();
    let mut live_keys: HashSet<Hash> = HashSet::new();
    let mut live_objects: HashSet<Hash> = HashSet::new();
    for lock in locks {
        for entry in lock.nodes.values() {
            live_keys.insert(entry.key);
        }
        live_objects.extend(lock.hashes().copied());
    }
    let mut report = GcReport::default();
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
    // Directory outputs keep their files alive.
    for h in live_objects.clone() {
        if let Some(entries) = store.tree(&h) {
            live_objects.extend(entries.iter().map(|e| e.hash));
        }
    }
    for (path, key) in sharded_files(&store.root().join("logs"), ".log") {
        if !live_keys.contains(&key) {
            doomed.push(path);
        }
    }
    for (path, hash) in sharded_files(&store.root().join("objects"), "") {
        if live_objects.contains(&hash) {
            report.kept_objects += 1;
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
    for dir in ["slurm/scripts", "slurm/logs"] {
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

fn modified_within(path: &Path, now: SystemTime, window: Duration) -> bool {
    fs::metadata(path)
        .and_then(|m| m.modified())
        .map(|t| now.duration_since(t).unwrap_or_default() < window)
        .unwrap_or(false)
}

/// Files under `dir/ab/cdef…{ext}` with the hash their name spells.
fn sharded_files(dir: &Path, ext: &str) -> Vec<(PathBuf, Hash)> {
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
