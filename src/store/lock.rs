//! The lock file (`pipelines/<name>.lock`): every node's key and every artefact's
//! hash, in a deterministic, diff-friendly order. Meant to be committed.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::OutputRecord;
use crate::error::{Error, IoContext, Result};
use crate::hash::Hash;

pub const LOCK_VERSION: u32 = 1;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LockFile {
    pub version: u32,
    pub nodes: BTreeMap<String, LockEntry>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LockEntry {
    pub key: Hash,
    pub outs: Vec<OutputRecord>,
}

impl LockFile {
    /// Read a lock file; a missing one is empty.
    pub fn read(path: &Path) -> Result<LockFile> {
        let text = match fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(LockFile {
                    version: LOCK_VERSION,
                    nodes: BTreeMap::new(),
                });
            }
            Err(e) => return Err(Error::io(path, e)),
        };
        Self::from_text(&text, path)
    }

    /// Parse a lock file's text (`path` names it in errors).
    pub fn from_text(text: &str, path: &Path) -> Result<LockFile> {
        let lock: LockFile = serde_json::from_str(text).map_err(|e| Error::Lock {
            path: path.to_path_buf(),
            message: format!("line {} column {}: {e}", e.line(), e.column()),
        })?;
        if lock.version != LOCK_VERSION {
            return Err(Error::Lock {
                path: path.to_path_buf(),
                message: format!(
                    "version {} (this cegraph reads version {LOCK_VERSION})",
                    lock.version
                ),
            });
        }
        Ok(lock)
    }

    pub fn to_text(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("lock files serialise");
        s.push('\n');
        s
    }

    /// Write atomically, and only when the content changed (keeps mtimes quiet for tools).
    pub fn write(&self, path: &Path) -> Result<()> {
        let text = self.to_text();
        if fs::read_to_string(path).ok().as_deref() == Some(text.as_str()) {
            return Ok(());
        }
        let dir = path.parent().unwrap_or(Path::new("."));
        let mut tmp = tempfile::NamedTempFile::new_in(dir).at(dir)?;
        tmp.write_all(text.as_bytes()).at(path)?;
        tmp.persist(path).map_err(|e| Error::io(path, e.error))?;
        Ok(())
    }

    /// All object hashes the lock file refers to (directory manifests included).
    pub fn hashes(&self) -> impl Iterator<Item = &Hash> {
        self.nodes
            .values()
            .flat_map(|e| e.outs.iter().filter(|o| o.cached).map(|o| &o.hash))
    }
}
