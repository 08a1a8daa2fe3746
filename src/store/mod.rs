//! The content-addressed cache: objects by blake3, one run record per node key,
//! node logs, and the stat cache. Everything is published by rename, so a crash
//! or a concurrent run never leaves a half-written entry under its final name.
//!
//! ```text
//! cache/objects/ab/cdef…   file contents (directories: their manifest, see hash::files)
//! cache/runs/ab/cdef….json run record of node key abcdef…
//! cache/logs/ab/cdef….log  the node's stdout+stderr
//! cache/tmp/               staging for the above
//! cache/stat.bin           stat cache
//! ```

pub mod checkout;
pub mod exp_index;
mod exp_index_codec;
pub mod experiments;
pub mod gc;
pub mod git;
pub mod lock;
pub mod packed;
mod restore;
pub mod roots;
pub mod tmp;

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, IoContext, Result};
use crate::hash::files::{StatCache, TreeEntry, hash_file, parse_tree_manifest, tree_manifest};
use crate::hash::{Hash, KeyInputs};

/// Bumped when the run record format changes incompatibly.
pub const RECORD_FORMAT: u32 = 1;

/// One output as recorded.
#[derive(Debug, Clone, Eq, Serialize, Deserialize)]
pub struct OutputRecord {
    pub path: String,
    pub hash: Hash,
    pub size: u64,
    /// A directory: `hash` names its manifest object.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dir: bool,
    /// `false` for outputs that are only pointed at (a `source` over user data): not in the cache.
    #[serde(default = "yes", skip_serializing_if = "Clone::clone")]
    pub cached: bool,
    /// A cached file output: whether it was executable when produced, so a restore gives it
    /// that mode whatever the shared cache object's bits. `None` in entries written before
    /// cegraph kept it (the object's bits are used then) and for directories, whose manifest
    /// holds each file's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executable: Option<bool>,
}

/// Equal outputs: same bytes at the same path, and the same exec bit where both entries
/// record one (an entry from before the bit was recorded agrees with either).
impl PartialEq for OutputRecord {
    fn eq(&self, other: &Self) -> bool {
        self.path == other.path
            && self.hash == other.hash
            && self.size == other.size
            && self.dir == other.dir
            && self.cached == other.cached
            && match (self.executable, other.executable) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            }
    }
}

fn yes() -> bool {
    true
}

/// What one successful run of a node produced, stored under its key.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRecord {
    pub format: u32,
    pub key: Hash,
    pub node: String,
    pub inputs: KeyInputs,
    pub outputs: Vec<OutputRecord>,
    #[serde(default)]
    pub metrics: BTreeMap<String, Value>,
    /// The `metrics:` declaration the file's metrics were read with, and their names: when
    /// only the declaration changes (it is not in the key), `run` re-reads them from the
    /// outputs without running the node. Absent in records from before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_from: Option<MetricsFrom>,
    /// Seconds since the Unix epoch.
    pub started_at: f64,
    pub duration_s: f64,
    pub host: String,
    pub tool_version: String,
}

/// Where a run record's file metrics came from (see [`RunRecord::metrics_from`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetricsFrom {
    /// The metrics file, workspace-relative, as the node declares it.
    pub file: String,
    /// `metrics: {file, columns}`'s columns (empty: all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub columns: Vec<String>,
    /// The metrics read from the file (the rest came from the run itself).
    pub names: Vec<String>,
}

pub struct Store {
    root: PathBuf,
    pub stat: StatCache,
}

impl Store {
    /// Open (creating if needed) the cache at `root`.
    pub fn open(root: &Path) -> Result<Store> {
        for sub in ["objects", "runs", "logs", "tmp"] {
            let d = root.join(sub);
            fs::create_dir_all(&d).at(&d)?;
        }
        Ok(Store {
            root: root.to_path_buf(),
            stat: StatCache::load(&root.join("stat.bin")),
        })
    }

    /// The same cache with a stat cache that trusts nothing: every file is re-read
    /// (`verify`).
    pub fn rereading(&self) -> Store {
        Store {
            root: self.root.clone(),
            stat: StatCache::ephemeral(),
        }
    }

    /// Open the cache at `root` to read it only (`status`, `dag`, `show`, `verify`): nothing
    /// is created. A cache that does not exist yet reads as empty.
    pub fn open_read_only(root: &Path) -> Store {
        let stat = if root.is_dir() {
            StatCache::load(&root.join("stat.bin"))
        } else {
            StatCache::ephemeral()
        };
        Store {
            root: root.to_path_buf(),
            stat,
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn sharded(&self, dir: &str, hash: &Hash, ext: &str) -> PathBuf {
        let hex = hash.to_hex();
        self.root
            .join(dir)
            .join(&hex[..2])
            .join(format!("{}{ext}", &hex[2..]))
    }

    pub fn object_path(&self, hash: &Hash) -> PathBuf {
        self.sharded("objects", hash, "")
    }
    pub fn record_path(&self, key: &Hash) -> PathBuf {
        self.sharded("runs", key, ".json")
    }
    pub fn log_path(&self, key: &Hash) -> PathBuf {
        self.sharded("logs", key, ".log")
    }
    /// A node handed to another process or machine (`exec-node <id>`), and its result.
    pub fn job_path(&self, id: &Hash) -> PathBuf {
        self.sharded("jobs/specs", id, ".json")
    }
    pub fn job_result_path(&self, id: &Hash) -> PathBuf {
        self.sharded("jobs/results", id, ".json")
    }
    /// A resolved pipeline the handed-over jobs refer to.
    pub fn snapshot_path(&self, id: &Hash) -> PathBuf {
        self.sharded("jobs/pipelines", id, ".json")
    }
    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    pub fn has_object(&self, hash: &Hash) -> bool {
        self.object_path(hash).exists()
    }

    /// Write `bytes` to `dest` atomically (temp file beside it, then rename).
    pub fn write_atomic(&self, dest: &Path, bytes: &[u8]) -> Result<()> {
        let parent = dest.parent().unwrap_or(Path::new("."));
        let mut tmp = temp_in(parent)?;
        tmp.write_all(bytes).at(dest)?;
        tmp.persist(dest).map_err(|e| Error::io(dest, e.error))?;
        Ok(())
    }

    /// Copy a workspace file into the cache; returns the hash of the bytes actually stored.
    pub fn put_file(&self, src: &Path) -> Result<(Hash, u64)> {
        self.put_file_with_mode(src)
            .map(|(hash, size, _)| (hash, size))
    }

    /// [`Store::put_file`], also saying whether `src` was executable when it was read.
    fn put_file_with_mode(&self, src: &Path) -> Result<(Hash, u64, bool)> {
        let meta_before = fs::metadata(src).at(src)?;
        let exec_bits = meta_before.permissions().mode() & 0o111;
        let (hash, size) = if meta_before.len() < SMALL_FILE {
            // Small: hash the bytes in memory; nothing to write when the object exists.
            let bytes = fs::read(src).at(src)?;
            let hash = Hash::of_bytes(&bytes);
            let dest = self.object_path(&hash);
            if !self.keep_existing(&dest, &hash, bytes.len() as u64) {
                let mut tmp = temp_in(&self.tmp_dir())?;
                tmp.write_all(&bytes).at(tmp.path())?;
                publish(tmp, &dest, exec_bits)?;
            }
            (hash, bytes.len() as u64)
        } else {
            // Large: hash the copy, so the object's name always matches what it holds.
            let tmp = temp_in(&self.tmp_dir())?;
            if let Err(e) = fs::copy(src, tmp.path()) {
                if e.kind() != io::ErrorKind::StorageFull {
                    return Err(Error::io(src, e));
                }
                // The cache's disk is full, not the workspace's: report the space left once
                // the partial copy is gone.
                let at = tmp.path().to_path_buf();
                drop(tmp);
                return Err(Error::io(at, e));
            }
            let hash = hash_file(tmp.path()).at(tmp.path())?;
            let size = fs::metadata(tmp.path()).at(tmp.path())?.len();
            let dest = self.object_path(&hash);
            if !self.keep_existing(&dest, &hash, size) {
                publish(tmp, &dest, exec_bits)?;
            }
            (hash, size)
        };
        // The copy's hash describes the workspace file only if it did not change meanwhile.
        if let Ok(after) = fs::metadata(src)
            && same_stat(&meta_before, &after)
        {
            self.stat.remember(src, &meta_before, hash);
        }
        Ok((hash, size, exec_bits != 0))
    }

    /// Whether the object at `dest` exists and holds exactly `hash` (then its mtime is
    /// refreshed, so `gc`'s grace period protects it until the run that reuses it records
    /// it). A damaged object returns `false` and is replaced by the caller's good copy.
    fn keep_existing(&self, dest: &Path, hash: &Hash, size: u64) -> bool {
        let intact = fs::metadata(dest).is_ok_and(|m| m.len() == size)
            && hash_file(dest).is_ok_and(|h| h == *hash);
        if intact {
            touch(dest);
        }
        intact
    }

    /// Store a workspace file or directory; returns its output record.
    pub fn put_output(&self, workspace: &Path, rel: &str) -> Result<OutputRecord> {
        let abs = workspace.join(rel);
        let meta = fs::metadata(&abs).at(&abs)?;
        if !meta.is_dir() {
            let (hash, size, executable) = self.put_file_with_mode(&abs)?;
            return Ok(OutputRecord {
                path: rel.to_string(),
                hash,
                size,
                dir: false,
                cached: true,
                executable: Some(executable),
            });
        }
        let mut entries = Vec::new();
        for item in walkdir::WalkDir::new(&abs)
            .sort_by_file_name()
            .follow_links(true)
        {
            let item = item.map_err(|e| Error::io(&abs, io::Error::other(e)))?;
            if !item.file_type().is_file() {
                continue;
            }
            let rel = item.path().strip_prefix(&abs).unwrap_or(item.path());
            let executable = item
                .metadata()
                .map(|m| m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false);
            let (hash, size) = self.put_file(item.path())?;
            entries.push(TreeEntry {
                rel: rel.to_string_lossy().into_owned(),
                hash,
                size,
                executable,
            });
        }
        entries.sort_by(|a, b| a.rel.cmp(&b.rel));
        let manifest = tree_manifest(&entries);
        let hash = Hash::of_bytes(&manifest);
        let dest = self.object_path(&hash);
        if !self.keep_existing(&dest, &hash, manifest.len() as u64) {
            let mut tmp = temp_in(&self.tmp_dir())?;
            tmp.write_all(&manifest).at(tmp.path())?;
            publish(tmp, &dest, 0)?;
        }
        Ok(OutputRecord {
            path: rel.to_string(),
            hash,
            size: entries.iter().map(|e| e.size).sum(),
            dir: true,
            cached: true,
            executable: None,
        })
    }

    /// Whether every object behind these outputs is in the cache.
    pub fn has_outputs(&self, outs: &[OutputRecord]) -> bool {
        outs.iter().filter(|o| o.cached).all(|o| {
            if !o.dir {
                return self.has_object(&o.hash);
            }
            match self.tree(&o.hash) {
                Some(entries) => entries.iter().all(|e| self.has_object(&e.hash)),
                None => false,
            }
        })
    }

    /// A directory output's file list, from its manifest object.
    pub fn tree(&self, hash: &Hash) -> Option<Vec<TreeEntry>> {
        parse_tree_manifest(&fs::read(self.object_path(hash)).ok()?)
    }

    /// Publish a temporary file in [`Store::tmp_dir`] that the caller has checked holds exactly
    /// the bytes named `hash` (a verified download).
    pub fn publish_object(
        &self,
        tmp: tempfile::NamedTempFile,
        hash: &Hash,
        executable: bool,
    ) -> Result<()> {
        publish(
            tmp,
            &self.object_path(hash),
            if executable { 0o111 } else { 0 },
        )
    }

    pub fn read_record(&self, key: &Hash) -> Option<RunRecord> {
        let bytes = fs::read(self.record_path(key)).ok()?;
        let rec: RunRecord = serde_json::from_slice(&bytes).ok()?;
        (rec.format == RECORD_FORMAT && rec.key == *key).then_some(rec)
    }

    /// Every readable run record in the cache (one per key that ran), in no order.
    pub fn records(&self) -> Vec<RunRecord> {
        gc::sharded_files(&self.root.join("runs"), ".json")
            .into_iter()
            .filter_map(|(_, key)| self.read_record(&key))
            .collect()
    }

    pub fn write_record(&self, rec: &RunRecord) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(rec).expect("run records serialise");
        self.write_atomic(&self.record_path(&rec.key), &bytes)
    }

    /// A damaged object is one whose bytes no longer hash to its name.
    pub fn check_object(&self, hash: &Hash) -> io::Result<bool> {
        Ok(hash_file(&self.object_path(hash))? == *hash)
    }

    /// What the cache holds under `hash`: nothing, exactly those bytes, or other bytes (a
    /// `size` given is checked first, which spares reading a truncated or grown object).
    /// Every byte is read: a stat cannot tell a flipped bit.
    pub fn object_state(&self, hash: &Hash, size: Option<u64>) -> ObjectState {
        let path = self.object_path(hash);
        let Ok(meta) = fs::metadata(&path) else {
            return ObjectState::Missing;
        };
        if size.is_some_and(|s| s != meta.len()) {
            return ObjectState::Corrupt(None);
        }
        match hash_file(&path) {
            Ok(h) if h == *hash => ObjectState::Intact,
            Ok(h) => ObjectState::Corrupt(Some(h)),
            // Unreadable: as good as missing to a reader; a download replaces it.
            Err(_) => ObjectState::Corrupt(None),
        }
    }
}

/// See [`Store::object_state`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectState {
    Missing,
    Intact,
    /// Other bytes than the name says: their hash, when they were read whole.
    Corrupt(Option<Hash>),
}

/// Files below this size are read whole rather than copied through a temporary file.
const SMALL_FILE: u64 = 1 << 20;

/// A temporary file in `dir` named after this process (see [`tmp`]), creating `dir` only when it is missing (mkdir is not free).
fn temp_in(dir: &Path) -> Result<tempfile::NamedTempFile> {
    match tmp::file_in(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs::create_dir_all(dir).at(dir)?;
            tmp::file_in(dir).at(dir)
        }
        other => other.at(dir),
    }
}

/// Rename a finished temporary file to its object name (read-only), creating the shard.
fn publish(tmp: tempfile::NamedTempFile, dest: &Path, exec_bits: u32) -> Result<()> {
    let _ = fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o444 | exec_bits));
    match tmp.persist(dest) {
        Ok(_) => Ok(()),
        Err(e) if e.error.kind() == io::ErrorKind::NotFound => {
            let parent = dest.parent().unwrap_or(Path::new("."));
            fs::create_dir_all(parent).at(parent)?;
            e.file
                .persist(dest)
                .map(|_| ())
                .map_err(|e| Error::io(dest, e.error))
        }
        Err(e) => Err(Error::io(dest, e.error)),
    }
}

/// Set a file's mtime to now (best effort): `gc` never collects objects younger than its
/// grace period, so an object a run is using stays until the run's lock file names it.
fn touch(path: &Path) {
    if let Ok(f) = fs::File::open(path) {
        let _ = f.set_modified(std::time::SystemTime::now());
    }
}

fn same_stat(a: &fs::Metadata, b: &fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    a.len() == b.len()
        && a.mtime() == b.mtime()
        && a.mtime_nsec() == b.mtime_nsec()
        && a.ino() == b.ino()
}

/// Remove a file or directory if it exists.
pub fn remove_path(p: &Path) -> Result<()> {
    match fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(p).at(p),
        Ok(_) => fs::remove_file(p).at(p),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(p, e)),
    }
}
