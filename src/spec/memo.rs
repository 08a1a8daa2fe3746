//! Memoised pipeline resolution, in the user's cache directory
//! (`$CEGRAPH_SPEC_CACHE`, else `$XDG_CACHE_HOME/cegraph/specs`, else `~/.cache/cegraph/specs`).
//!
//! Entries are keyed by everything resolution reads, so a stale entry is never used; they are
//! written atomically and a damaged or unreadable one is simply ignored.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::hash::{Hash, KeyHasher};
use crate::kind::Catalog;

/// How many entries to keep; older ones are pruned when a new one is written.
const KEEP: usize = 64;

/// The key of a resolution: cegraph's version, the file's absolute path and text, and every
/// registered kind's name and version (kinds decide their outputs).
pub fn key(abs_path: &Path, text: &str, catalog: &Catalog) -> Hash {
    let mut h = KeyHasher::new("cegraph spec memo v3");
    h.item(env!("CARGO_PKG_VERSION"))
        .item(abs_path.to_string_lossy().as_ref())
        .item(text);
    for name in catalog.names() {
        h.item(name);
        if let Some(k) = catalog.get(name) {
            h.item(&k.version());
        }
    }
    h.finish()
}

fn dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("CEGRAPH_SPEC_CACHE") {
        return (!d.is_empty()).then(|| PathBuf::from(d));
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("cegraph").join("specs"))
}

pub fn get<T: DeserializeOwned>(key: &Hash) -> Option<T> {
    let bytes = fs::read(dir()?.join(format!("{key}.json"))).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Best effort: a cache that cannot be written only costs a re-parse next time.
pub fn put<T: Serialize>(key: &Hash, value: &T) {
    let Some(dir) = dir() else { return };
    if fs::create_dir_all(&dir).is_err() {
        return;
    }
    let Ok(bytes) = serde_json::to_vec(value) else {
        return;
    };
    let Ok(mut tmp) = tempfile::NamedTempFile::new_in(&dir) else {
        return;
    };
    if tmp.write_all(&bytes).is_ok() {
        let _ = tmp.persist(dir.join(format!("{key}.json")));
    }
    prune(&dir);
}

fn prune(dir: &Path) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    let mut entries: Vec<(std::time::SystemTime, PathBuf)> = rd
        .flatten()
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .collect();
    if entries.len() <= KEEP {
        return;
    }
    entries.sort();
    for (_, path) in &entries[..entries.len() - KEEP] {
        let _ = fs::remove_file(path);
    }
}
