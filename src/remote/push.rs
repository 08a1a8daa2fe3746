//! `cegraph push` and `run --push`: upload what the remote lacks, objects before records.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;

use futures::StreamExt;

use super::connect::Connection;
use super::transfer::{self, Counters, Failure};
use super::{
    Entry, PushReport, Remote, TransferObserver, log_key, object_key, record_key, run_all,
};
use crate::error::{Error, IoContext, Result};
use crate::hash::Hash;
use crate::store::Store;

impl Remote {
    /// Upload the objects and run records behind `entries` that the remote lacks.
    pub fn push(
        &self,
        store: &Store,
        entries: &[Entry],
        observer: &dyn TransferObserver,
    ) -> Result<PushReport> {
        let plan = PushPlan::new(store, entries);
        self.rt.block_on(push_plan(
            self.conn.clone(),
            plan,
            self.jobs,
            Some(observer),
        ))
    }

    /// Start uploading the run under `key` (`run --push`); [`Remote::wait_background`] waits.
    pub(super) fn push_in_background(&self, store: &Store, key: &Hash) -> Result<()> {
        let Some(rec) = store.read_record(key) else {
            return Err(Error::Cache {
                path: store.record_path(key),
                message: "the run record to push is missing".into(),
            });
        };
        let plan = PushPlan::new(
            store,
            &[Entry {
                node: rec.node.clone(),
                key: *key,
                outs: rec.outputs,
            }],
        );
        let handle = self
            .rt
            .spawn(push_plan(self.conn.clone(), plan, self.jobs, None));
        self.background.lock().unwrap().push(handle);
        Ok(())
    }

    /// Wait for the uploads started by `run --push`; their combined report.
    pub fn wait_background(&self) -> Result<PushReport> {
        let handles: Vec<_> = std::mem::take(&mut *self.background.lock().unwrap());
        let mut total = PushReport::default();
        for h in handles {
            let r = self
                .rt
                .block_on(h)
                .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))?;
            total.uploaded += r.uploaded;
            total.uploaded_bytes += r.uploaded_bytes;
            total.present += r.present;
            total.records += r.records;
            total.problems.extend(r.problems);
        }
        Ok(total)
    }
}

/// Everything a push needs from the local cache, gathered up front so the upload can run
/// without borrowing the store (in the background, for `run --push`).
struct PushPlan {
    /// Object → its file in the local cache.
    objects: BTreeMap<Hash, PathBuf>,
    records: Vec<RecordPush>,
    problems: Vec<String>,
}

/// One entry's run record, pushed once all of `objects` are on the remote.
struct RecordPush {
    key: Hash,
    objects: Vec<Hash>,
    /// The record's and the log's bytes; `None` when the local cache lacks part of the entry
    /// (its record is then not pushed).
    payload: Option<(Vec<u8>, Option<Vec<u8>>)>,
}

impl PushPlan {
    fn new(store: &Store, entries: &[Entry]) -> PushPlan {
        let mut plan = PushPlan {
            objects: BTreeMap::new(),
            records: Vec::new(),
            problems: Vec::new(),
        };
        for e in entries {
            let mut complete = true;
            let mut mine = Vec::new();
            let mut want = |h: Hash, what: String, plan: &mut PushPlan| {
                if store.has_object(&h) {
                    plan.objects.insert(h, store.object_path(&h));
                    mine.push(h);
                    true
                } else {
                    plan.problems.push(format!(
                        "{}: {what}: object {} is not in the local cache (nothing to push; `cegraph run` or `cegraph pull` it)",
                        e.node,
                        h.short()
                    ));
                    false
                }
            };
            for o in e.outs.iter().filter(|o| o.cached) {
                complete &= want(o.hash, o.path.clone(), &mut plan);
                if o.dir {
                    match store.tree(&o.hash) {
                        Some(tree) => {
                            for t in tree {
                                complete &=
                                    want(t.hash, format!("{}/{}", o.path, t.rel), &mut plan);
                            }
                        }
                        None => complete = false,
                    }
                }
            }
            let record = std::fs::read(store.record_path(&e.key)).ok();
            if record.is_none() {
                plan.problems.push(format!(
                    "{}: run record {} is not in the local cache",
                    e.node,
                    e.key.short()
                ));
            }
            let payload = record
                .filter(|_| complete)
                .map(|r| (r, std::fs::read(store.log_path(&e.key)).ok()));
            plan.records.push(RecordPush {
                key: e.key,
                objects: mine,
                payload,
            });
        }
        plan
    }
}

/// Upload what the remote lacks of `plan`: objects first, then the records of the entries
/// whose objects all arrived.
async fn push_plan(
    conn: Arc<Connection>,
    plan: PushPlan,
    jobs: usize,
    observer: Option<&dyn TransferObserver>,
) -> Result<PushReport> {
    let mut report = PushReport {
        problems: plan.problems,
        ..PushReport::default()
    };
    let mut sizes = BTreeMap::new();
    for (h, path) in &plan.objects {
        sizes.insert(*h, std::fs::metadata(path).at(path)?.len());
    }
    // What the remote has: one listing per shard beats one HEAD per object for large pushes.
    let listed = if sizes.len() > LIST_ABOVE {
        let shards: BTreeSet<String> = sizes.keys().map(|h| h.to_hex()[..2].to_string()).collect();
        Some(Arc::new(list_objects(&conn, shards, jobs).await.map_err(
            |e| conn.explain("listing the remote's objects", &e),
        )?))
    } else {
        None
    };
    if let Some(o) = observer {
        o.begin("objects", sizes.len() as u64, sizes.values().sum());
    }
    let counters = Arc::new(Counters::default());
    let tasks: Vec<_> = plan
        .objects
        .iter()
        .map(|(&h, path)| {
            let (conn, path, counters) = (conn.clone(), path.clone(), counters.clone());
            let size = sizes[&h];
            let listed = listed.clone();
            async move {
                let key = object_key(&conn, &h);
                // Content-addressed: an object of the right size under its name is this object.
                let found = match &listed {
                    Some(listed) => Ok(listed.get(&h).copied()),
                    None => transfer::head(conn.store.as_ref(), &key).await,
                };
                match found {
                    Ok(Some(found)) if found == size => {
                        counters.add_bytes(size);
                        return (h, Ok(None));
                    }
                    Ok(_) => {}
                    Err(f) => return (h, Err(f)),
                }
                let up = transfer::upload(conn.store.clone(), key, path, h, counters).await;
                (h, up.map(Some))
            }
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
    let mut failed = BTreeSet::new();
    let mut arrived = BTreeSet::new();
    for (h, r) in results {
        match r {
            Ok(Some(bytes)) => {
                report.uploaded += 1;
                report.uploaded_bytes += bytes;
                arrived.insert(h);
            }
            Ok(None) => {
                report.present += 1;
                arrived.insert(h);
            }
            Err(Failure::Store(e)) => {
                return Err(conn.explain(&format!("uploading object {}", h.short()), &e));
            }
            Err(Failure::Io(p, e)) => return Err(Error::io(p, e)),
            Err(Failure::LocalCorrupt { actual }) => {
                failed.insert(h);
                report.problems.push(format!(
                    "local object {} is damaged (hashes to {}); not pushed (run `cegraph gc`, then rerun its node)",
                    h.short(),
                    actual.short()
                ));
            }
            Err(f) => {
                failed.insert(h);
                report.problems.push(format!("object {}: {f:?}", h.short()));
            }
        }
    }
    // Records last, and only for entries whose objects are all on the remote now.
    let ready: Vec<_> = plan
        .records
        .into_iter()
        .filter_map(|r| {
            let payload = r.payload?;
            r.objects
                .iter()
                .all(|h| arrived.contains(h) && !failed.contains(h))
                .then_some((r.key, payload))
        })
        .collect();
    if let Some(o) = observer {
        o.begin("run records", ready.len() as u64, 0);
    }
    let counters = Arc::new(Counters::default());
    let tasks: Vec<_> = ready
        .into_iter()
        .map(|(key, (record, log))| {
            let conn = conn.clone();
            async move {
                let store = conn.store.as_ref();
                // The first record pushed for a key stays: records are never overwritten.
                if transfer::head(store, &record_key(&conn, &key))
                    .await?
                    .is_some()
                {
                    return Ok(false);
                }
                if let Some(log) = log {
                    transfer::put_bytes(store, &log_key(&conn, &key), log).await?;
                }
                transfer::put_bytes(store, &record_key(&conn, &key), record).await?;
                Ok::<_, Failure>(true)
            }
        })
        .collect();
    let results = run_all(
        tasks,
        jobs,
        &counters,
        observer,
        |r| matches!(r, Err(f) if f.is_fatal()),
    )
    .await;
    for r in results {
        match r {
            Ok(true) => report.records += 1,
            Ok(false) => {}
            Err(Failure::Store(e)) => return Err(conn.explain("uploading a run record", &e)),
            Err(f) => report.problems.push(format!("run record: {f:?}")),
        }
    }
    Ok(report)
}

/// Above this many objects a push lists the remote's shards (`objects/ab/`, at most 256
/// listings) instead of asking for each object.
const LIST_ABOVE: usize = 256;

/// Sizes of the objects the remote holds in `shards`.
async fn list_objects(
    conn: &Arc<Connection>,
    shards: BTreeSet<String>,
    jobs: usize,
) -> std::result::Result<BTreeMap<Hash, u64>, object_store::Error> {
    let listings = futures::stream::iter(shards.into_iter().map(|shard| {
        let conn = conn.clone();
        tokio::spawn(async move {
            let prefix = conn.key(&format!("objects/{shard}"));
            let mut found = Vec::new();
            let mut stream = conn.store.list(Some(&prefix));
            while let Some(meta) = stream.next().await {
                let meta = meta?;
                let name = meta.location.filename().unwrap_or_default();
                if let Some(h) = Hash::from_hex(&format!("{shard}{name}")) {
                    found.push((h, meta.size));
                }
            }
            Ok::<_, object_store::Error>(found)
        })
    }))
    .buffer_unordered(jobs)
    .collect::<Vec<_>>()
    .await;
    let mut sizes = BTreeMap::new();
    for listing in listings {
        let listing = listing.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
        sizes.extend(listing?);
    }
    Ok(sizes)
}
