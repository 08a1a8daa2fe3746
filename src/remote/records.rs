//! Pushing run records: the first record pushed for a key stays, and a push whose record
//! names other outputs than the remote's for the same key is a conflict, reported loudly:
//! the node gave different bytes for the same inputs (it is nondeterministic).
//!
//! Where the store supports it (S3 with conditional writes, GCS, Azure, `file://`), the record
//! is created with "only if absent", so of two machines pushing the same key at once exactly
//! one wins and the other is told. Stores that refuse conditional writes get a plain PUT after
//! the existence check. Either way the record is read back after the write, so that on
//! servers that accept "only if absent" and ignore it (s3rver, older MinIO) the machine whose
//! record was overwritten is still told in most interleavings (a narrow race remains there).

use std::sync::Arc;

use object_store::{ObjectStore, PutMode, PutOptions, PutPayload};

use super::connect::Connection;
use super::transfer::{self, Counters, Failure};
use super::{
    PushReport, REPAIR_HINT, TransferObserver, corrupt_line, log_key, record_key, run_all,
};
use crate::error::Result;
use crate::hash::Hash;
use crate::store::{OutputRecord, RECORD_FORMAT, RunRecord};

/// One entry's run record.
pub(super) struct RecordPush {
    pub node: String,
    pub key: Hash,
    /// The outputs this workspace's lock file (or record) names for the key.
    pub outs: Vec<OutputRecord>,
    /// The objects that must be on the remote before the record is.
    pub objects: Vec<Hash>,
    /// The record's and the log's bytes; `None` when the entry cannot be pushed (the local
    /// cache lacks part of it, or an object did not arrive). Its remote record is still
    /// checked for a conflict.
    pub payload: Option<(Vec<u8>, Option<Vec<u8>>)>,
}

/// What became of one record.
enum RecordSent {
    Pushed,
    /// The remote has a record naming the same outputs, or none and there is nothing to send.
    Present,
    /// `--repair`: a corrupt remote record was replaced.
    Repaired,
    /// The remote's record for the key names these other outputs.
    Conflict(Vec<OutputRecord>),
    /// The remote's record fails its check (and was not replaced).
    Corrupt {
        actual: Hash,
        bytes: u64,
    },
}

/// Push (or check) every record of `records`, filing the outcome in `report`.
pub(super) async fn push_records(
    conn: &Arc<Connection>,
    records: Vec<RecordPush>,
    repair: bool,
    jobs: usize,
    observer: Option<&dyn TransferObserver>,
    report: &mut PushReport,
) -> Result<()> {
    if let Some(o) = observer {
        o.begin("run records", records.len() as u64, 0);
    }
    let counters = Arc::new(Counters::default());
    let records: Vec<Arc<RecordPush>> = records.into_iter().map(Arc::new).collect();
    let tasks: Vec<_> = records
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let (conn, r) = (conn.clone(), r.clone());
            async move { (i, push_record(&conn, &r, repair).await) }
        })
        .collect();
    let results = run_all(
        tasks,
        jobs,
        &counters,
        observer,
        |(_, r)| matches!(r, Err(f) if f.is_fatal()),
    )
    .await;
    for (i, r) in results {
        let rec = &records[i];
        match r {
            Ok(RecordSent::Pushed) => report.records += 1,
            Ok(RecordSent::Present) => {}
            Ok(RecordSent::Repaired) => {
                report.records += 1;
                report.repaired += 1;
            }
            Ok(RecordSent::Conflict(theirs)) => report.conflicts.push(conflict_line(
                &rec.node, &rec.key, &conn.name, &theirs, &rec.outs,
            )),
            Ok(RecordSent::Corrupt { actual, bytes }) => report.problems.push(format!(
                "{}; not replaced ({})",
                corrupt_line(
                    &rec.node,
                    "run record",
                    &rec.key,
                    &conn.name,
                    &actual,
                    bytes
                ),
                if rec.payload.is_some() {
                    "`cegraph push --repair` replaces it"
                } else {
                    REPAIR_HINT
                }
            )),
            Err(Failure::Store(e)) => return Err(conn.explain("uploading a run record", &e)),
            Err(f) => report
                .problems
                .push(format!("{}: run record: {f:?}", rec.node)),
        }
    }
    Ok(())
}

/// Push one record unless the remote has one for its key; compare when it has.
async fn push_record(
    conn: &Connection,
    rec: &RecordPush,
    repair: bool,
) -> std::result::Result<RecordSent, Failure> {
    let store = conn.store.as_ref();
    match compare(conn, rec).await? {
        Some(RecordSent::Corrupt { .. }) if repair && rec.payload.is_some() => {
            let (record, log) = rec.payload.clone().expect("checked");
            transfer::put_bytes(store, &record_key(conn, &rec.key), record).await?;
            put_log(conn, &rec.key, log).await?;
            return Ok(RecordSent::Repaired);
        }
        Some(found) => return Ok(found),
        None => {}
    }
    let Some((record, log)) = rec.payload.clone() else {
        return Ok(RecordSent::Present);
    };
    let key = record_key(conn, &rec.key);
    match create(store, &key, record.clone()).await {
        Ok(()) => {}
        // Another machine pushed this key since we looked: theirs stays; do they agree?
        Err(object_store::Error::AlreadyExists { .. }) => {
            // (Gone again already: someone deleted it; ours is not there either.)
            return Ok(compare(conn, rec).await?.unwrap_or(RecordSent::Present));
        }
        // No conditional writes here (an older S3-compatible server, a file system without
        // hard links): a plain PUT, after the existence check above.
        Err(_) => transfer::put_bytes(store, &key, record).await?,
    }
    // Some S3-compatible servers (s3rver, older MinIO and Ceph RGW) accept If-None-Match
    // and ignore it, and the fallback above has no guard at all: a rival's PUT may have
    // replaced ours. Read it back; whoever's record is not there lost, and is told.
    match compare(conn, rec).await? {
        Some(RecordSent::Present) | None => {}
        Some(theirs) => return Ok(theirs),
    }
    // The log after the record: only the machine whose record won writes it.
    put_log(conn, &rec.key, log).await?;
    Ok(RecordSent::Pushed)
}

/// The remote's record for `rec.key` against ours: `Present` when it names the same outputs,
/// `Conflict` when not, `Corrupt` when it fails its check; `None` when there is none.
async fn compare(
    conn: &Connection,
    rec: &RecordPush,
) -> std::result::Result<Option<RecordSent>, Failure> {
    Ok(Some(match fetch_record(conn, &rec.key, false).await {
        Ok((theirs, _)) if same_outputs(&theirs.outputs, &rec.outs) => RecordSent::Present,
        Ok((theirs, _)) => RecordSent::Conflict(theirs.outputs),
        Err(Failure::Missing) => return Ok(None),
        Err(Failure::Corrupt { actual, bytes }) => RecordSent::Corrupt { actual, bytes },
        Err(f) => return Err(f),
    }))
}

/// Write `bytes` to `key` only if nothing is there.
async fn create(
    store: &dyn ObjectStore,
    key: &object_store::path::Path,
    bytes: Vec<u8>,
) -> std::result::Result<(), object_store::Error> {
    let opts = PutOptions {
        mode: PutMode::Create,
        ..PutOptions::default()
    };
    store
        .put_opts(key, PutPayload::from(bytes), opts)
        .await
        .map(|_| ())
}

async fn put_log(
    conn: &Connection,
    key: &Hash,
    log: Option<Vec<u8>>,
) -> std::result::Result<(), Failure> {
    match log {
        Some(log) => transfer::put_bytes(conn.store.as_ref(), &log_key(conn, key), log).await,
        None => Ok(()),
    }
}

/// Whether two records name the same bytes at the same paths.
pub(super) fn same_outputs(a: &[OutputRecord], b: &[OutputRecord]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| x.path == y.path && x.hash == y.hash)
}

/// `node: nondeterministic: …`, naming each output whose hash differs on the two sides.
pub(super) fn conflict_line(
    node: &str,
    key: &Hash,
    remote: &str,
    theirs: &[OutputRecord],
    ours: &[OutputRecord],
) -> String {
    let mut diffs = Vec::new();
    for o in ours {
        match theirs.iter().find(|t| t.path == o.path) {
            Some(t) if t.hash == o.hash => {}
            Some(t) => diffs.push(format!(
                "{}: remote {}, here {}",
                o.path,
                t.hash.short(),
                o.hash.short()
            )),
            None => diffs.push(format!("{}: only here ({})", o.path, o.hash.short())),
        }
    }
    for t in theirs
        .iter()
        .filter(|t| !ours.iter().any(|o| o.path == t.path))
    {
        diffs.push(format!(
            "{}: only on the remote ({})",
            t.path,
            t.hash.short()
        ));
    }
    format!(
        "{node}: nondeterministic: remote `{remote}` holds another result for the same key {} ({})",
        key.short(),
        diffs.join("; ")
    )
}

/// The run record under `key` on the remote (checked to be a record of that key), and with
/// `with_log` its log when there is one.
pub(super) async fn fetch_record(
    conn: &Connection,
    key: &Hash,
    with_log: bool,
) -> std::result::Result<(RunRecord, Option<Vec<u8>>), Failure> {
    let bytes = transfer::get_bytes(conn.store.as_ref(), &record_key(conn, key)).await?;
    let rec: Option<RunRecord> = serde_json::from_slice(&bytes).ok();
    // A record is checked against its name like an object: its inputs must hash to its key.
    let rec = rec.filter(|r| r.format == RECORD_FORMAT && r.key == *key && r.inputs.key() == *key);
    let Some(rec) = rec else {
        return Err(Failure::Corrupt {
            actual: Hash::of_bytes(&bytes),
            bytes: bytes.len() as u64,
        });
    };
    if !with_log {
        return Ok((rec, None));
    }
    let log = match transfer::get_bytes(conn.store.as_ref(), &log_key(conn, key)).await {
        Ok(l) => Some(l),
        Err(Failure::Missing) => None,
        Err(f) => return Err(f),
    };
    Ok((rec, log))
}

#[cfg(test)]
#[path = "records_tests.rs"]
mod tests;
