//! Remote caches: the local cache's objects and run records, shared through an object store
//! (S3 or any S3-compatible endpoint, GCS, Azure, a shared directory; HTTP read-only).
//!
//! The remote mirrors the local layout under its prefix, so it can be a dumb object store:
//!
//! ```text
//! <prefix>/objects/ab/cdef…    file contents and directory manifests, named by blake3
//! <prefix>/runs/ab/cdef….json  run record of node key abcdef…
//! <prefix>/logs/ab/cdef….log   the node's log
//! ```
//!
//! Objects are immutable, so "does the remote have it" is a HEAD with a size check, and every
//! download is verified against its name before it enters the cache. A run record is uploaded
//! only after all of its objects are on the remote: a record there promises its objects.

pub mod connect;
mod transfer;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use object_store::path::Path as Key;

use crate::error::{Error, IoContext, Result};
use crate::hash::Hash;
use crate::hash::files::parse_tree_manifest;
use crate::spec::Pipeline;
use crate::spec::remotes::RemoteDecl;
use crate::store::lock::LockFile;
use crate::store::{OutputRecord, RECORD_FORMAT, RunRecord, Store};
use connect::{Connection, Scheme};
use transfer::{Counters, Failure};

/// What the scheduler needs from a remote cache (`run --remote`, `--push`).
pub trait RemoteCache: Send + Sync {
    /// Download the run stored under `key` with all its objects (verified) into `store`;
    /// `None` when the remote does not have it.
    fn fetch(&self, store: &Store, key: &Hash) -> Result<Option<RunRecord>>;
    /// Start uploading the run recorded under `key`; it may finish in the background
    /// (see [`Remote::wait_background`]).
    fn push(&self, store: &Store, key: &Hash) -> Result<()>;
}

/// Progress of a transfer, for a display.
pub trait TransferObserver: Sync {
    /// A phase starts: `what` is moving `objects` objects of `bytes` bytes in all.
    fn begin(&self, _what: &str, _objects: u64, _bytes: u64) {}
    /// So far in this phase.
    fn progress(&self, _objects: u64, _bytes: u64) {}
}

/// No display.
pub struct Quiet;
impl TransferObserver for Quiet {}

/// One node's result: what a lock entry (or a run record) names.
#[derive(Debug, Clone)]
pub struct Entry {
    pub node: String,
    pub key: Hash,
    pub outs: Vec<OutputRecord>,
}

impl Entry {
    /// The lock file's entries, or only those of `nodes`; a named node the lock file lacks is a
    /// usage error.
    pub fn from_lock(lock: &LockFile, nodes: Option<&[String]>) -> Result<Vec<Entry>> {
        let entry = |(node, e): (&String, &crate::store::lock::LockEntry)| Entry {
            node: node.clone(),
            key: e.key,
            outs: e.outs.clone(),
        };
        let Some(nodes) = nodes else {
            return Ok(lock.nodes.iter().map(entry).collect());
        };
        let mut out = Vec::new();
        for n in nodes {
            match lock.nodes.get_key_value(n) {
                Some(kv) => out.push(entry(kv)),
                None => {
                    return Err(Error::usage(
                        format!("{n} is not in the lock file"),
                        "run it first (`cegraph run`), or pull the lock file from version control",
                    ));
                }
            }
        }
        Ok(out)
    }
}

/// What `push` did.
#[derive(Debug, Default)]
pub struct PushReport {
    pub uploaded: usize,
    pub uploaded_bytes: u64,
    /// Objects the remote already had.
    pub present: usize,
    pub records: usize,
    /// One line per object or record that could not be pushed.
    pub problems: Vec<String>,
}

/// What `pull` (or a remote cache hit) did.
#[derive(Debug, Default)]
pub struct PullReport {
    pub downloaded: usize,
    pub downloaded_bytes: u64,
    /// Objects the local cache already had.
    pub present: usize,
    pub records: usize,
    /// One line per object or record that could not be pulled (missing, corrupt).
    pub problems: Vec<String>,
}

/// What `verify --remote` found.
#[derive(Debug, Default)]
pub struct CheckReport {
    pub objects: usize,
    pub bytes: u64,
    pub records: usize,
    pub problems: Vec<String>,
}

/// An opened remote cache.
pub struct Remote {
    conn: Arc<Connection>,
    rt: tokio::runtime::Runtime,
    jobs: usize,
    /// Uploads started by [`RemoteCache::push`], awaited by [`Remote::wait_background`].
    background: Mutex<Vec<tokio::task::JoinHandle<Result<PushReport>>>>,
}

/// The remote named `name`, else `$CEGRAPH_REMOTE` (handled by the CLI), else the only
/// remote or the one marked `default: true`.
pub fn select<'p>(p: &'p Pipeline, name: Option<&str>) -> Result<(&'p str, &'p RemoteDecl)> {
    let known = || {
        p.remotes
            .keys()
            .map(|k| format!("`{k}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if p.remotes.is_empty() {
        return Err(Error::usage(
            format!("{} declares no remotes", p.path.display()),
            "add one to the pipeline file, e.g. `remotes: {shared: s3://bucket/prefix}`",
        ));
    }
    if let Some(name) = name {
        return p
            .remotes
            .get_key_value(name)
            .map(|(k, v)| (k.as_str(), v))
            .ok_or_else(|| {
                Error::usage(
                    format!("unknown remote `{name}`"),
                    format!("the pipeline declares: {}", known()),
                )
            });
    }
    if p.remotes.len() == 1 {
        let (k, v) = p.remotes.first().expect("one remote");
        return Ok((k.as_str(), v));
    }
    p.remotes
        .iter()
        .find(|(_, d)| d.default)
        .map(|(k, v)| (k.as_str(), v))
        .ok_or_else(|| {
            Error::usage(
                "several remotes are declared and none was chosen",
                format!(
                    "pass --remote NAME (one of {}), set CEGRAPH_REMOTE, or mark one `default: true`",
                    known()
                ),
            )
        })
}

impl Remote {
    /// Open and probe the remote `name` (see [`select`]). `writing`: a push will follow
    /// (a missing `file://` directory is created; `http(s)://` remotes refuse).
    pub fn open(p: &Pipeline, name: Option<&str>, writing: bool) -> Result<Remote> {
        let (name, decl) = select(p, name)?;
        let conn = connect::connect(name, &decl.url, writing)?;
        if writing && conn.scheme == Scheme::Http {
            return Err(Error::Remote {
                remote: name.into(),
                message: format!("{} is read-only (http remotes can be pulled from, not pushed to)", decl.url),
                help: "push to an s3://, gs://, az:// or file:// remote; serve it over http for readers".into(),
            });
        }
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(
                std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(2)
                    .clamp(2, 8),
            )
            .thread_name("cegraph-remote")
            .enable_all()
            .build()
            .map_err(|e| Error::io("tokio runtime", e))?;
        let remote = Remote {
            conn: Arc::new(conn),
            rt,
            jobs: 32,
            background: Mutex::new(Vec::new()),
        };
        remote.probe()?;
        Ok(remote)
    }

    /// Transfers in flight at once (default 32).
    pub fn with_jobs(mut self, jobs: usize) -> Remote {
        self.jobs = jobs.max(1);
        self
    }

    pub fn name(&self) -> &str {
        &self.conn.name
    }

    pub fn url(&self) -> &str {
        &self.conn.url
    }

    /// One cheap request, so a missing bucket, missing credentials or an unreachable endpoint
    /// is reported as such rather than as thousands of missing objects.
    fn probe(&self) -> Result<()> {
        if matches!(self.conn.scheme, Scheme::File | Scheme::Http) {
            return Ok(());
        }
        let conn = self.conn.clone();
        self.rt.block_on(async move {
            let prefix = (!conn.prefix.as_ref().is_empty()).then_some(&conn.prefix);
            conn.store
                .list_with_delimiter(prefix)
                .await
                .map(|_| ())
                .map_err(|e| conn.explain("listing the bucket", &e))
        })
    }

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

    /// Download what the local cache lacks of `entries`, verifying every object.
    pub fn pull(
        &self,
        store: &Store,
        entries: &[Entry],
        observer: &dyn TransferObserver,
    ) -> Result<PullReport> {
        self.pull_entries(store, entries, true, observer)
    }

    fn pull_entries(
        &self,
        store: &Store,
        entries: &[Entry],
        records: bool,
        observer: &dyn TransferObserver,
    ) -> Result<PullReport> {
        let mut report = PullReport::default();
        // Directory manifests first: they name the files to fetch.
        let manifests: BTreeMap<Hash, String> = entries
            .iter()
            .flat_map(|e| {
                e.outs
                    .iter()
                    .filter(|o| o.cached && o.dir && !store.has_object(&o.hash))
                    .map(|o| (o.hash, format!("{}: {}", e.node, o.path)))
            })
            .collect();
        self.download_into(store, manifests, "manifests", &mut report, observer)?;
        // Then every file object the cache lacks.
        let mut files: BTreeMap<Hash, (String, u64, bool)> = BTreeMap::new();
        for e in entries {
            for o in e.outs.iter().filter(|o| o.cached) {
                if !o.dir {
                    files.insert(o.hash, (format!("{}: {}", e.node, o.path), o.size, false));
                } else if let Some(tree) = store.tree(&o.hash) {
                    for t in tree {
                        let what = format!("{}: {}/{}", e.node, o.path, t.rel);
                        files.insert(t.hash, (what, t.size, t.executable));
                    }
                }
            }
        }
        let before = files.len();
        files.retain(|h, _| !store.has_object(h));
        report.present += before - files.len();
        let executable: BTreeSet<Hash> = files
            .iter()
            .filter(|(_, (_, _, x))| *x)
            .map(|(h, _)| *h)
            .collect();
        let bytes: u64 = files.values().map(|(_, s, _)| s).sum();
        observer.begin("objects", files.len() as u64, bytes);
        let named: BTreeMap<Hash, String> = files.into_iter().map(|(h, (w, ..))| (h, w)).collect();
        self.download_objects(store, named, &executable, &mut report, observer)?;
        if records {
            let wanted: Vec<&Entry> = entries
                .iter()
                .filter(|e| store.read_record(&e.key).is_none())
                .collect();
            observer.begin("run records", wanted.len() as u64, 0);
            let conn = self.conn.clone();
            let tasks: Vec<_> = wanted
                .iter()
                .enumerate()
                .map(|(i, e)| {
                    let conn = conn.clone();
                    let key = e.key;
                    async move { (i, fetch_record(&conn, &key, true).await) }
                })
                .collect();
            let counters = Arc::new(Counters::default());
            let results = self.rt.block_on(run_all(
                tasks,
                self.jobs,
                &counters,
                Some(observer),
                |(_, r)| matches!(r, Err(f) if f.is_fatal()),
            ));
            for (i, result) in results {
                let (e, key) = (wanted[i], wanted[i].key);
                match result {
                    Ok((rec, log)) => {
                        store.write_record(&rec)?;
                        if let Some(log) = log {
                            store.write_atomic(&store.log_path(&key), &log)?;
                        }
                        report.records += 1;
                    }
                    Err(f) => {
                        report
                            .problems
                            .push(self.describe(&e.node, "run record", &key, f)?)
                    }
                }
            }
        }
        Ok(report)
    }

    /// Download `objects` (hash → what it is, for messages) into the cache, verified.
    fn download_into(
        &self,
        store: &Store,
        objects: BTreeMap<Hash, String>,
        phase: &str,
        report: &mut PullReport,
        observer: &dyn TransferObserver,
    ) -> Result<()> {
        observer.begin(phase, objects.len() as u64, 0);
        self.download_objects(store, objects, &BTreeSet::new(), report, observer)
    }

    fn download_objects(
        &self,
        store: &Store,
        objects: BTreeMap<Hash, String>,
        executable: &BTreeSet<Hash>,
        report: &mut PullReport,
        observer: &dyn TransferObserver,
    ) -> Result<()> {
        let counters = Arc::new(Counters::default());
        let tmp = store.tmp_dir();
        let tasks: Vec<_> = objects
            .keys()
            .map(|&h| {
                let conn = self.conn.clone();
                let tmp = tmp.clone();
                let counters = counters.clone();
                async move {
                    let key = object_key(&conn, &h);
                    let got =
                        transfer::download(conn.store.clone(), key, h, Some(tmp), counters).await;
                    (h, got)
                }
            })
            .collect();
        let results = self.rt.block_on(run_all(
            tasks,
            self.jobs,
            &counters,
            Some(observer),
            |(_, r)| matches!(r, Err(f) if f.is_fatal()),
        ));
        for (h, result) in results {
            match result {
                Ok(Some(file)) => {
                    let size = file.as_file().metadata().map(|m| m.len()).unwrap_or(0);
                    store.publish_object(file, &h, executable.contains(&h))?;
                    report.downloaded += 1;
                    report.downloaded_bytes += size;
                }
                Ok(None) => unreachable!("downloads into the cache keep their file"),
                Err(f) => {
                    let what = objects.get(&h).map(String::as_str).unwrap_or("object");
                    report.problems.push(self.describe(what, "object", &h, f)?);
                }
            }
        }
        Ok(())
    }

    /// A per-object failure as a report line; a fatal one as the error.
    fn describe(&self, what: &str, kind: &str, h: &Hash, f: Failure) -> Result<String> {
        let name = &self.conn.name;
        Ok(match f {
            Failure::Missing => format!("{what}: {kind} {} is not on remote `{name}`", h.short()),
            Failure::Corrupt { actual, bytes } => format!(
                "{what}: {kind} {} on remote `{name}` is corrupt ({bytes} bytes hashing to {}); rejected, not cached",
                h.short(),
                actual.short()
            ),
            Failure::LocalCorrupt { actual } => format!(
                "{what}: local {kind} {} is damaged (hashes to {}); not pushed (run `cegraph gc`, then rerun the node)",
                h.short(),
                actual.short()
            ),
            Failure::Store(e) => {
                return Err(self.conn.explain(&format!("{kind} {}", h.short()), &e));
            }
            Failure::Io(path, e) => return Err(Error::io(path, e)),
        })
    }

    /// Check that everything `entries` name is on the remote: objects by size (and, with
    /// `deep`, by downloading and hashing them), directory manifests and run records by content.
    pub fn check(
        &self,
        entries: &[Entry],
        deep: bool,
        observer: &dyn TransferObserver,
    ) -> Result<CheckReport> {
        let mut report = CheckReport::default();
        let conn = self.conn.clone();
        // Manifests: fetched and hashed (they are small), so their entries can be checked.
        let dirs: Vec<(String, Hash)> = entries
            .iter()
            .flat_map(|e| {
                e.outs
                    .iter()
                    .filter(|o| o.cached && o.dir)
                    .map(|o| (format!("{}: {}", e.node, o.path), o.hash))
            })
            .collect();
        observer.begin("manifests", dirs.len() as u64, 0);
        let counters = Arc::new(Counters::default());
        let tasks: Vec<_> = dirs
            .iter()
            .enumerate()
            .map(|(i, (_, h))| {
                let (conn, h) = (conn.clone(), *h);
                async move {
                    let key = object_key(&conn, &h);
                    (i, transfer::get_bytes(conn.store.as_ref(), &key).await)
                }
            })
            .collect();
        let fetched = self.rt.block_on(run_all(
            tasks,
            self.jobs,
            &counters,
            Some(observer),
            |(_, r)| matches!(r, Err(f) if f.is_fatal()),
        ));
        // hash → (what, expected size)
        let mut files: BTreeMap<Hash, (String, u64)> = BTreeMap::new();
        for (i, got) in fetched {
            let (what, h) = dirs[i].clone();
            report.objects += 1;
            match got {
                Ok(bytes) if Hash::of_bytes(&bytes) == h => match parse_tree_manifest(&bytes) {
                    Some(tree) => {
                        for t in tree {
                            files.insert(t.hash, (format!("{what}/{}", t.rel), t.size));
                        }
                    }
                    None => report.problems.push(format!(
                        "{what}: manifest {} is not a directory manifest",
                        h.short()
                    )),
                },
                Ok(bytes) => report.problems.push(self.describe(
                    &what,
                    "manifest",
                    &h,
                    Failure::Corrupt {
                        actual: Hash::of_bytes(&bytes),
                        bytes: bytes.len() as u64,
                    },
                )?),
                Err(f) => report
                    .problems
                    .push(self.describe(&what, "manifest", &h, f)?),
            }
        }
        for e in entries {
            for o in e.outs.iter().filter(|o| o.cached && !o.dir) {
                files.insert(o.hash, (format!("{}: {}", e.node, o.path), o.size));
            }
        }
        let total: u64 = files.values().map(|(_, s)| s).sum();
        observer.begin(
            if deep {
                "objects (download and hash)"
            } else {
                "objects"
            },
            files.len() as u64,
            if deep { total } else { 0 },
        );
        let counters = Arc::new(Counters::default());
        let tasks: Vec<_> = files
            .iter()
            .map(|(&h, &(_, size))| {
                let conn = conn.clone();
                let counters = counters.clone();
                async move {
                    let key = object_key(&conn, &h);
                    let got = if deep {
                        transfer::download(conn.store.clone(), key, h, None, counters)
                            .await
                            .map(|_| size)
                    } else {
                        match transfer::head(conn.store.as_ref(), &key).await {
                            Ok(Some(found)) => Ok(found),
                            Ok(None) => Err(Failure::Missing),
                            Err(f) => Err(f),
                        }
                    };
                    (h, got)
                }
            })
            .collect();
        let results = self.rt.block_on(run_all(
            tasks,
            self.jobs,
            &counters,
            Some(observer),
            |(_, r)| matches!(r, Err(f) if f.is_fatal()),
        ));
        for (h, got) in results {
            let (what, size) = &files[&h];
            let h = &h;
            report.objects += 1;
            match got {
                Ok(found) if found == *size => report.bytes += found,
                Ok(found) => report.problems.push(format!(
                    "{what}: object {} on remote `{}` has {found} bytes, expected {size}",
                    h.short(),
                    self.conn.name
                )),
                Err(f) => report.problems.push(self.describe(what, "object", h, f)?),
            }
        }
        // Run records: fetched and checked against their key.
        observer.begin("run records", entries.len() as u64, 0);
        let tasks: Vec<_> = entries
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let (conn, key) = (conn.clone(), e.key);
                async move {
                    (
                        i,
                        fetch_record(&conn, &key, false).await.map(|(rec, _)| rec),
                    )
                }
            })
            .collect();
        let counters = Arc::new(Counters::default());
        let results = self.rt.block_on(run_all(
            tasks,
            self.jobs,
            &counters,
            Some(observer),
            |(_, r)| matches!(r, Err(f) if f.is_fatal()),
        ));
        for (i, got) in results {
            let e = &entries[i];
            report.records += 1;
            match got {
                Ok(rec) if rec.outputs == e.outs => {}
                Ok(_) => report.problems.push(format!(
                    "{}: run record {} on remote `{}` names other outputs than the lock file",
                    e.node,
                    e.key.short(),
                    self.conn.name
                )),
                Err(f) => report
                    .problems
                    .push(self.describe(&e.node, "run record", &e.key, f)?),
            }
        }
        Ok(report)
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

impl RemoteCache for Remote {
    fn fetch(&self, store: &Store, key: &Hash) -> Result<Option<RunRecord>> {
        let conn = self.conn.clone();
        let k = *key;
        let (rec, log) = match self
            .rt
            .block_on(async move { fetch_record(&conn, &k, true).await })
        {
            Ok(found) => found,
            Err(Failure::Missing) => return Ok(None),
            Err(f) => {
                let line = self.describe(&format!("key {}", key.short()), "run record", key, f)?;
                return Err(self.corrupt(line));
            }
        };
        let entry = Entry {
            node: rec.node.clone(),
            key: *key,
            outs: rec.outputs.clone(),
        };
        let report = self.pull_entries(store, &[entry], false, &Quiet)?;
        if let Some(first) = report.problems.first() {
            return Err(self.corrupt(first.clone()));
        }
        store.write_record(&rec)?;
        if let Some(log) = log {
            store.write_atomic(&store.log_path(key), &log)?;
        }
        Ok(Some(rec))
    }

    fn push(&self, store: &Store, key: &Hash) -> Result<()> {
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
}

impl Remote {
    fn corrupt(&self, line: String) -> Error {
        Error::Remote {
            remote: self.conn.name.clone(),
            message: line,
            help: "run without --remote to compute it here, or push it again from a machine that has it"
                .into(),
        }
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

/// The run record under `key` on the remote (checked to be a record of that key), and with
/// `with_log` its log when there is one.
async fn fetch_record(
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

fn sharded(conn: &Connection, dir: &str, h: &Hash, ext: &str) -> Key {
    let hex = h.to_hex();
    conn.key(&format!("{dir}/{}/{}{ext}", &hex[..2], &hex[2..]))
}

fn object_key(conn: &Connection, h: &Hash) -> Key {
    sharded(conn, "objects", h, "")
}

fn record_key(conn: &Connection, key: &Hash) -> Key {
    sharded(conn, "runs", key, ".json")
}

fn log_key(conn: &Connection, key: &Hash) -> Key {
    sharded(conn, "logs", key, ".log")
}

/// Run `tasks` on the runtime, `jobs` at a time, reporting progress every 100 ms; stops
/// early (leaving the rest undone) at the first result `fatal` says ends the transfer.
async fn run_all<T, F>(
    tasks: Vec<F>,
    jobs: usize,
    counters: &Counters,
    observer: Option<&dyn TransferObserver>,
    fatal: impl Fn(&T) -> bool,
) -> Vec<T>
where
    F: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let mut stream =
        futures::stream::iter(tasks.into_iter().map(tokio::spawn)).buffer_unordered(jobs);
    let mut out = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let report = |o: Option<&dyn TransferObserver>| {
        if let Some(o) = o {
            o.progress(
                counters.objects.load(Ordering::Relaxed),
                counters.bytes.load(Ordering::Relaxed),
            );
        }
    };
    loop {
        tokio::select! {
            next = stream.next() => match next {
                None => break,
                Some(Ok(t)) => {
                    counters.objects.fetch_add(1, Ordering::Relaxed);
                    let stop = fatal(&t);
                    out.push(t);
                    if stop {
                        break;
                    }
                }
                Some(Err(e)) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                Some(Err(_)) => break,
            },
            _ = tick.tick() => report(observer),
        }
    }
    report(observer);
    out
}
