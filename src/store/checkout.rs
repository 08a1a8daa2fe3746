//! `cegraph checkout`: put the lock file's outputs in the workspace from the cache, running
//! nothing (after `cegraph pull`, on a fresh clone).

use std::path::Path;

use super::Store;
use super::lock::LockFile;
use crate::error::{Error, Result};

#[derive(Debug, Default)]
pub struct CheckoutReport {
    /// Outputs written from the cache.
    pub restored: usize,
    /// Outputs the workspace already held, byte for byte.
    pub unchanged: usize,
    /// One line per output that could not be materialised.
    pub problems: Vec<String>,
    /// One line per output whose cache object failed its hash (now quarantined; nothing of
    /// it was written to the workspace).
    pub corrupt: Vec<String>,
}

/// Materialise the outputs of `nodes` (default: every lock entry). Outputs whose objects the
/// cache lacks are reported, not half-written; the rest are still checked out.
pub fn checkout(
    store: &Store,
    workspace: &Path,
    lock: &LockFile,
    nodes: Option<&[String]>,
) -> Result<CheckoutReport> {
    let mut report = CheckoutReport::default();
    for (node, entry) in &lock.nodes {
        if nodes.is_some_and(|n| !n.contains(node)) {
            continue;
        }
        for out in &entry.outs {
            let abs = workspace.join(&out.path);
            if store.stat.hash_path(&abs).is_ok_and(|h| h.hash == out.hash) {
                // A directory's hash covers its files' exec bits; a file's is its bytes only.
                if let (false, Some(x)) = (out.dir, out.executable) {
                    super::restore::set_exec_bits(&abs, x)?;
                }
                report.unchanged += 1;
                continue;
            }
            if !out.cached {
                report.problems.push(format!(
                    "{node}: {} is not cached (it points at data outside the cache) and is missing or changed",
                    out.path
                ));
                continue;
            }
            if !store.has_outputs(std::slice::from_ref(out)) {
                report.problems.push(format!(
                    "{node}: {} is not in the local cache (run `cegraph pull`)",
                    out.path
                ));
                continue;
            }
            match store.restore_output(workspace, out) {
                Ok(()) => report.restored += 1,
                Err(e @ Error::CorruptObject(_)) => report.corrupt.push(format!(
                    "{node}: {e} (rebuild it with `cegraph run --force {node}`, or `cegraph pull` a good copy)"
                )),
                Err(e) => return Err(e),
            }
        }
    }
    let _ = store.stat.save();
    Ok(report)
}
