//! `cegraph push` and `run --push`: upload what the remote lacks, objects before records.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;

use futures::StreamExt;

use super::connect::Connection;
use super::records::{RecordPush, push_records};
use super::transfer::{self, Counters, Failure};
use super::{Entry, PushReport, Remote, TransferObserver, object_key, run_all};
use crate::error::{Error, IoContext, Result};
use crate::hash::Hash;
use crate::store::Store;

impl Remote {
    /// Upload the objects and run records behind `entries` that the remote lacks. With
    /// `repair`, what the remote has is downloaded and hashed too, and re-sent where it fails.
    pub fn push(
        &self,
        store: &Store,
        entries: &[Entry],
        repair: bool,
        observer: &dyn TransferObserver,
    ) -> Result<PushReport> {
        let plan = PushPlan::new(store, entries, repair);
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
            false,
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
            total.absorb(r);
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
    /// `push --repair`: download and hash what the remote has instead of trusting its size.
    repair: bool,
}

impl PushPlan {
    fn new(store: &Store, entries: &[Entry], repair: bool) -> PushPlan {
        let mut plan = PushPlan {
            objects: BTreeMap::new(),
            records: Vec::new(),
            problems: Vec::new(),
            repair,
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
                node: e.node.clone(),
                key: e.key,
                outs: e.outs.clone(),
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
            let found = listed.as_ref().map(|l| l.get(&h).copied());
            let repair = plan.repair;
            async move {
                (
                    h,
                    push_object(conn, h, path, size, found, repair, counters).await,
                )
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
            Ok(Sent::Uploaded { bytes, repaired }) => {
                report.uploaded += 1;
                report.uploaded_bytes += bytes;
                report.repaired += repaired as usize;
                arrived.insert(h);
            }
            Ok(Sent::Present) => {
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
    let records: Vec<RecordPush> = plan
        .records
        .into_iter()
        .map(|mut r| {
            if !r
                .objects
                .iter()
                .all(|h| arrived.contains(h) && !failed.contains(h))
            {
                r.payload = None;
            }
            r
        })
        .collect();
    push_records(&conn, records, plan.repair, jobs, observer, &mut report).await?;
    Ok(report)
}

/// What became of one object.
enum Sent {
    /// The remote had it (with `--repair`: and it hashes to its name).
    Present,
    /// Uploaded (`bytes`); `repaired`: over a remote copy of the wrong size or (with
    /// `--repair`) the wrong hash.
    Uploaded { bytes: u64, repaired: bool },
}

/// Upload the object `h` unless the remote has it. `listed`: its size on the remote from a
/// listing (`Some(None)`: absent), else a HEAD asks.
async fn push_object(
    conn: Arc<Connection>,
    h: Hash,
    path: PathBuf,
    size: u64,
    listed: Option<Option<u64>>,
    repair: bool,
    counters: Arc<Counters>,
) -> std::result::Result<Sent, Failure> {
    let key = object_key(&conn, &h);
    let found = match listed {
        Some(found) => found,
        None => transfer::head(conn.store.as_ref(), &key).await?,
    };
    let damaged = match found {
        // Content-addressed: an object of the right size under its name is this object,
        // unless the remote's copy was damaged in place; `--repair` reads it to find out.
        Some(found) if found == size && !repair => {
            counters.add_bytes(size);
            return Ok(Sent::Present);
        }
        Some(found) if found == size => {
            let check =
                transfer::download(conn.store.clone(), key.clone(), h, None, counters.clone());
            match check.await {
                Ok(_) => return Ok(Sent::Present),
                Err(Failure::Corrupt { .. }) => true,
                // Deleted since the HEAD: send it.
                Err(Failure::Missing) => false,
                Err(f) => return Err(f),
            }
        }
        Some(_) => true,
        None => false,
    };
    // The bytes were counted while checking; the re-upload is not counted twice.
    let counters = if damaged {
        Arc::new(Counters::default())
    } else {
        counters
    };
    let bytes = transfer::upload(conn.store.clone(), key, path, h, counters).await?;
    Ok(Sent::Uploaded {
        bytes,
        repaired: damaged,
    })
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
