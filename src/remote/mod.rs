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

mod check;
pub mod connect;
mod pull;
mod push;
mod records;
mod transfer;

use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use object_store::path::Path as Key;

use crate::error::{Error, Result};
use crate::hash::Hash;
use crate::spec::Pipeline;
use crate::spec::remotes::RemoteDecl;
use crate::store::lock::LockFile;
use crate::store::{OutputRecord, RunRecord, Store};
use connect::{Connection, Scheme};
use transfer::{Counters, Failure};

/// What the scheduler needs from a remote cache (`run --remote`, `--push`).
pub trait RemoteCache: Send + Sync {
    /// The run record stored under `key` (checked to be a record of that key), without its
    /// objects; `None` when the remote does not have it. The scheduler judges it (external
    /// outputs) before anything is downloaded.
    fn record(&self, key: &Hash) -> Result<Option<RunRecord>>;
    /// Download `rec`'s objects (each verified against its name), then the record and its log,
    /// into `store`.
    fn fetch(&self, store: &Store, rec: &RunRecord) -> Result<()>;
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
    /// `push --repair`: remote objects and records that failed their hash and were re-sent.
    pub repaired: usize,
    pub records: usize,
    /// One line per object or record that could not be pushed.
    pub problems: Vec<String>,
    /// One line per node whose run record on the remote names other outputs than this
    /// workspace's for the same key: the node is nondeterministic.
    pub conflicts: Vec<String>,
}

impl PushReport {
    /// Add `other`'s counts and lines to this report.
    pub fn absorb(&mut self, other: PushReport) {
        self.uploaded += other.uploaded;
        self.uploaded_bytes += other.uploaded_bytes;
        self.present += other.present;
        self.repaired += other.repaired;
        self.records += other.records;
        self.problems.extend(other.problems);
        self.conflicts.extend(other.conflicts);
    }
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
    /// One line per damaged local object that was quarantined and fetched again.
    pub quarantined: Vec<String>,
}

/// What `verify --remote` found.
#[derive(Debug, Default)]
pub struct CheckReport {
    pub objects: usize,
    pub bytes: u64,
    pub records: usize,
    /// Missing objects and records, wrong sizes, records naming other outputs.
    pub problems: Vec<String>,
    /// Objects and records whose bytes fail their hash (`push --repair` replaces them).
    pub corrupt: Vec<String>,
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

    /// Run transfers `self.jobs` at a time, reporting progress; the first fatal failure
    /// (credentials, an unreachable endpoint) stops the rest.
    fn run_blocking<K, V, F>(
        &self,
        tasks: Vec<F>,
        counters: &Counters,
        observer: &dyn TransferObserver,
    ) -> Vec<(K, std::result::Result<V, Failure>)>
    where
        F: Future<Output = (K, std::result::Result<V, Failure>)> + Send + 'static,
        K: Send + 'static,
        V: Send + 'static,
    {
        self.rt.block_on(run_all(
            tasks,
            self.jobs,
            counters,
            Some(observer),
            |(_, r)| matches!(r, Err(f) if f.is_fatal()),
        ))
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

    /// A per-object failure as a report line; a fatal one as the error.
    fn describe(&self, what: &str, kind: &str, h: &Hash, f: Failure) -> Result<String> {
        let name = &self.conn.name;
        Ok(match f {
            Failure::Missing => format!("{what}: {kind} {} is not on remote `{name}`", h.short()),
            Failure::Corrupt { actual, bytes } => format!(
                "{}; rejected, not cached ({REPAIR_HINT})",
                corrupt_line(what, kind, h, name, &actual, bytes)
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
}

impl RemoteCache for Remote {
    fn record(&self, key: &Hash) -> Result<Option<RunRecord>> {
        self.remote_record(key)
    }

    fn fetch(&self, store: &Store, rec: &RunRecord) -> Result<()> {
        self.fetch_run(store, rec)
    }

    fn push(&self, store: &Store, key: &Hash) -> Result<()> {
        self.push_in_background(store, key)
    }
}

/// How a corrupt remote object or record is fixed.
pub const REPAIR_HINT: &str =
    "repair the remote with `cegraph push --repair` from a machine that has it";

/// `what: kind H on remote `name` is corrupt (N bytes hashing to A)`.
fn corrupt_line(what: &str, kind: &str, h: &Hash, name: &str, actual: &Hash, bytes: u64) -> String {
    format!(
        "{what}: {kind} {} on remote `{name}` is corrupt ({bytes} bytes hashing to {})",
        h.short(),
        actual.short()
    )
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
