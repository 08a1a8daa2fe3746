//! Lock files registered with a cache (`cache/roots/`): every pipeline that writes a lock
//! file using this cache says so here, so `gc` run from any of them keeps what all of them
//! need, even when the cache is shared between projects (`CEGRAPH_CACHE`).

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::Store;
use crate::error::{IoContext, Result};
use crate::hash::Hash;

/// One registration: `cache/roots/<blake3 of the lock's absolute path>.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootEntry {
    /// The lock file's absolute path.
    pub lock: PathBuf,
    /// blake3 of the lock file's bytes when it was registered (absent: it did not exist yet).
    pub lock_hash: Option<Hash>,
}

impl Store {
    fn roots_dir(&self) -> PathBuf {
        self.root().join("roots")
    }

    /// Register the lock file at `lock_path` as a root of this cache (atomically; the same
    /// lock path always maps to the same registration).
    pub fn register_root(&self, lock_path: &Path) -> Result<()> {
        let lock = absolute(lock_path);
        let entry = RootEntry {
            lock_hash: fs::read(&lock).ok().map(|b| Hash::of_bytes(&b)),
            lock,
        };
        let name = Hash::of_bytes(entry.lock.as_os_str().as_bytes()).to_hex();
        let path = self.roots_dir().join(format!("{name}.json"));
        let bytes = serde_json::to_vec_pretty(&entry).expect("root entries serialise");
        if fs::read(&path).ok().as_deref() == Some(bytes.as_slice()) {
            return Ok(());
        }
        self.write_atomic(&path, &bytes)
    }

    /// Every registration: its file, and the entry when it parses.
    pub fn roots(&self) -> Result<Vec<(PathBuf, Option<RootEntry>)>> {
        let dir = self.roots_dir();
        let rd = match fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e).at(&dir),
        };
        let mut out: Vec<_> = rd
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .map(|p| {
                let entry = fs::read(&p)
                    .ok()
                    .and_then(|b| serde_json::from_slice(&b).ok());
                (p, entry)
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }
}

/// `path` made absolute without requiring it to exist (its directory is canonicalised, so
/// two spellings of one lock file register once).
pub fn absolute(path: &Path) -> PathBuf {
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    match (abs.parent(), abs.file_name()) {
        (Some(dir), Some(name)) => fs::canonicalize(dir)
            .map(|d| d.join(name))
            .unwrap_or(abs.clone()),
        _ => abs,
    }
}
