//! Re-reading a node's metrics when only its `metrics:` declaration changed. The declaration
//! is not in the node's key (it does not determine the outputs), so such a node is up to date
//! and does not run; its metrics are read again from its outputs — already checked against
//! their hashes (up to date) or restored byte-checked from the cache — and its run record
//! rewritten, so `metrics show`, `exp show` and experiments report the new selection.
//! Only nodes that declare `metrics:` are looked at (a no-op run reads no other record): a
//! declaration removed altogether leaves the recorded metrics until the node next runs.

use super::metrics;
use crate::hash::Hash;
use crate::spec::{Node, Pipeline};
use crate::store::{MetricsFrom, Store};

/// Bring the metrics of `key`'s record in line with `node`'s declaration; `Ok(true)` when the
/// record was rewritten. An error (the file fails the new selection, or no longer matches
/// its recorded hash) is one line for the node's failure.
pub fn refresh(p: &Pipeline, store: &Store, node: &Node, key: &Hash) -> Result<bool, String> {
    if node.metrics.is_none() {
        return Ok(false);
    }
    let Some(mut rec) = store.read_record(key) else {
        return Ok(false);
    };
    if !declaration_differs(node, &rec) {
        return Ok(false);
    }
    let declared = node.metrics.as_ref().map(|f| (f, &node.metrics_columns));
    let mut values = rec.metrics.clone();
    // The old file's metrics go; those the run itself produced (a kind's) stay. A record from
    // before `metrics_from` was kept cannot tell them apart: all stay, the new ones on top.
    for name in rec.metrics_from.iter().flat_map(|m| &m.names) {
        values.remove(name);
    }
    let mut from = None;
    if let Some((file, columns)) = declared {
        let path = p.workspace.join(file);
        if let Some(out) = rec.outputs.iter().find(|o| o.path == *file) {
            let now = store
                .stat
                .hash_path(&path)
                .map_err(|e| format!("metrics file {file} cannot be read: {e}"))?;
            if now.hash != out.hash {
                return Err(format!(
                    "metrics file {file} changed since it was checked (blake3 {} recorded, {} \
                     now): another process wrote it; rerun once it has finished",
                    out.hash.short(),
                    now.hash.short()
                ));
            }
        }
        let read = metrics::read_as(&path, file, columns)?;
        from = Some(MetricsFrom {
            file: file.clone(),
            columns: columns.clone(),
            names: read.keys().cloned().collect(),
        });
        values.extend(read);
    }
    rec.metrics = values;
    rec.metrics_from = from;
    store.write_record(&rec).map_err(|e| e.to_string())?;
    Ok(true)
}

/// Whether `node` declares `metrics:` other than those `key`'s record was read with (what
/// `status` reports: the next `run` re-reads them, nothing re-runs).
pub fn declaration_changed(store: &Store, node: &Node, key: &Hash) -> bool {
    node.metrics.is_some()
        && store
            .read_record(key)
            .is_some_and(|rec| declaration_differs(node, &rec))
}

fn declaration_differs(node: &Node, rec: &crate::store::RunRecord) -> bool {
    let declared = node.metrics.as_ref().map(|f| (f, &node.metrics_columns));
    let recorded = rec.metrics_from.as_ref().map(|m| (&m.file, &m.columns));
    declared != recorded
}
