//! `cegraph pull` and `run --remote`: download what the local cache lacks, every object
//! checked against its name before it is published.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::records::{conflict_line, fetch_record, same_outputs};
use super::transfer::{self, Counters, Failure};
use super::{Entry, PullReport, Quiet, Remote, TransferObserver, log_key, object_key};
use crate::error::{Error, Result};
use crate::hash::Hash;
use crate::store::{ObjectState, RunRecord, Store};

impl Remote {
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
        let manifests: BTreeMap<Hash, (String, Option<u64>)> = entries
            .iter()
            .flat_map(|e| {
                e.outs
                    .iter()
                    .filter(|o| o.cached && o.dir)
                    .map(|o| (o.hash, (format!("{}: {}", e.node, o.path), None)))
            })
            .collect();
        let manifests = lacking(store, manifests, &mut report);
        let manifests = manifests.into_iter().map(|(h, (w, _))| (h, w)).collect();
        self.download_into(store, manifests, "manifests", &mut report, observer)?;
        // Then every file object the cache lacks.
        let mut files: BTreeMap<Hash, (String, Option<u64>)> = BTreeMap::new();
        let mut executable: BTreeSet<Hash> = BTreeSet::new();
        for e in entries {
            for o in e.outs.iter().filter(|o| o.cached) {
                if !o.dir {
                    let what = format!("{}: {}", e.node, o.path);
                    files.insert(o.hash, (what, Some(o.size)));
                    if o.executable == Some(true) {
                        executable.insert(o.hash);
                    }
                } else if let Some(tree) = store.tree(&o.hash) {
                    for t in tree {
                        let what = format!("{}: {}/{}", e.node, o.path, t.rel);
                        files.insert(t.hash, (what, Some(t.size)));
                        if t.executable {
                            executable.insert(t.hash);
                        }
                    }
                }
            }
        }
        let files = lacking(store, files, &mut report);
        let bytes: u64 = files.values().filter_map(|(_, s)| *s).sum();
        observer.begin("objects", files.len() as u64, bytes);
        let named: BTreeMap<Hash, String> = files.into_iter().map(|(h, (w, _))| (h, w)).collect();
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
            let results = self.run_blocking(tasks, &counters, observer);
            for (i, result) in results {
                let (e, key) = (wanted[i], wanted[i].key);
                match result {
                    // A record for the key that names other outputs than the lock file: the
                    // node is nondeterministic; this cache keeps what the lock file names.
                    Ok((rec, _)) if !same_outputs(&rec.outputs, &e.outs) => {
                        report.problems.push(format!(
                            "{}; record not cached",
                            conflict_line(&e.node, &key, &self.conn.name, &rec.outputs, &e.outs)
                        ))
                    }
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
        let results = self.run_blocking(tasks, &counters, observer);
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

    /// `run --remote`: the run record under `key`, checked against its key; `None` when the
    /// remote lacks it.
    pub(super) fn remote_record(&self, key: &Hash) -> Result<Option<RunRecord>> {
        let conn = self.conn.clone();
        let k = *key;
        match self
            .rt
            .block_on(async move { fetch_record(&conn, &k, false).await })
        {
            Ok((rec, _)) => Ok(Some(rec)),
            Err(Failure::Missing) => Ok(None),
            Err(f) => {
                let line = self.describe(&format!("key {}", key.short()), "run record", key, f)?;
                Err(self.corrupt(line))
            }
        }
    }

    /// The run records of `keys` the remote holds (each checked against its key), without
    /// their objects: what `metrics diff` and `params diff` read. Keys the remote lacks are
    /// left out; a corrupt record is reported as an error line and left out too.
    pub fn records(&self, keys: &[Hash]) -> Result<(Vec<RunRecord>, Vec<String>)> {
        let counters = Counters::default();
        let tasks: Vec<_> = keys
            .iter()
            .map(|k| {
                let (conn, k) = (self.conn.clone(), *k);
                async move { (k, fetch_record(&conn, &k, false).await.map(|(r, _)| r)) }
            })
            .collect();
        let mut found = Vec::new();
        let mut problems = Vec::new();
        for (key, got) in self.run_blocking(tasks, &counters, &Quiet) {
            match got {
                Ok(rec) => found.push(rec),
                Err(Failure::Missing) => {}
                Err(f) => problems.push(self.describe(
                    &format!("key {}", key.short()),
                    "run record",
                    &key,
                    f,
                )?),
            }
        }
        Ok((found, problems))
    }

    /// A remote cache hit for `run --remote`: all of `rec`'s objects (verified), then the
    /// record itself and its log, into `store`.
    pub(super) fn fetch_run(&self, store: &Store, rec: &RunRecord) -> Result<()> {
        let entry = Entry {
            node: rec.node.clone(),
            key: rec.key,
            outs: rec.outputs.clone(),
        };
        let report = self.pull_entries(store, &[entry], false, &Quiet)?;
        if let Some(first) = report.problems.first() {
            return Err(self.corrupt(first.clone()));
        }
        let conn = self.conn.clone();
        let key = rec.key;
        // The log is for people: a missing one is fine, a failing store is not.
        let log = self.rt.block_on(async move {
            match transfer::get_bytes(conn.store.as_ref(), &log_key(&conn, &key)).await {
                Ok(l) => Ok(Some(l)),
                Err(Failure::Missing) => Ok(None),
                Err(f) => Err(f),
            }
        });
        let log = match log {
            Ok(log) => log,
            Err(f) => return Err(self.corrupt(self.describe("log", "log", &key, f)?)),
        };
        store.write_record(rec)?;
        if let Some(log) = log {
            store.write_atomic(&store.log_path(&key), &log)?;
        }
        Ok(())
    }

    fn corrupt(&self, line: String) -> Error {
        Error::Remote {
            remote: self.conn.name.clone(),
            message: line,
            // A corrupt object's message already says how to repair the remote.
            help: "run without --remote to compute it here".into(),
        }
    }
}

/// Of `wanted` (object → what it is, its size if known), those to download: the ones the
/// cache lacks, and the ones it holds damaged, which are quarantined as a restore would (and
/// named in `report.quarantined`). Intact ones count as present. Every local object is read
/// and hashed (in parallel): a pull must not vouch for bytes it did not check.
fn lacking(
    store: &Store,
    wanted: BTreeMap<Hash, (String, Option<u64>)>,
    report: &mut PullReport,
) -> BTreeMap<Hash, (String, Option<u64>)> {
    use rayon::prelude::*;
    let states: Vec<ObjectState> = wanted
        .par_iter()
        .map(|(h, (_, size))| store.object_state(h, *size))
        .collect();
    let mut lacking = BTreeMap::new();
    for ((hash, (what, size)), state) in wanted.into_iter().zip(states) {
        match state {
            ObjectState::Intact => report.present += 1,
            ObjectState::Missing => {
                lacking.insert(hash, (what, size));
            }
            ObjectState::Corrupt(actual) => {
                let actual = actual.map_or("other bytes".into(), |a| {
                    format!("bytes hashing to {}", a.short())
                });
                let moved = match store.quarantine(&hash) {
                    Some(to) => format!("moved to {}", to.display()),
                    None => "could not be moved to cache/quarantine".into(),
                };
                report.quarantined.push(format!(
                    "{what}: the cached object {} holds {actual}; {moved}, fetching it again",
                    hash.short()
                ));
                lacking.insert(hash, (what, size));
            }
        }
    }
    lacking
}
