//! `cegraph verify --remote`: is everything the lock file names on the remote?

use std::collections::BTreeMap;
use std::sync::Arc;

use super::records::fetch_record;
use super::records::{conflict_line, same_outputs};
use super::transfer::{self, Counters, Failure};
use super::{CheckReport, Entry, Remote, TransferObserver, corrupt_line, object_key};
use crate::error::Result;
use crate::hash::Hash;
use crate::hash::files::parse_tree_manifest;

impl Remote {
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
        let fetched = self.run_blocking(tasks, &counters, observer);
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
                Ok(bytes) => self.failed(
                    &mut report,
                    &what,
                    "manifest",
                    &h,
                    Failure::Corrupt {
                        actual: Hash::of_bytes(&bytes),
                        bytes: bytes.len() as u64,
                    },
                )?,
                Err(f) => self.failed(&mut report, &what, "manifest", &h, f)?,
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
        let results = self.run_blocking(tasks, &counters, observer);
        for (h, got) in results {
            let (what, size) = &files[&h];
            let h = &h;
            report.objects += 1;
            match got {
                Ok(found) if found == *size => report.bytes += found,
                Ok(found) => report.problems.push(format!(
                    "{what}: object {} on remote `{}` has {found} bytes, expected {size} (`cegraph push` re-sends it)",
                    h.short(),
                    self.conn.name
                )),
                Err(f) => self.failed(&mut report, what, "object", h, f)?,
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
        let results = self.run_blocking(tasks, &counters, observer);
        for (i, got) in results {
            let e = &entries[i];
            report.records += 1;
            match got {
                Ok(rec) if same_outputs(&rec.outputs, &e.outs) => {}
                Ok(rec) => report.problems.push(conflict_line(
                    &e.node,
                    &e.key,
                    &self.conn.name,
                    &rec.outputs,
                    &e.outs,
                )),
                Err(f) => self.failed(&mut report, &e.node, "run record", &e.key, f)?,
            }
        }
        Ok(report)
    }

    /// File a per-object failure: corrupt bytes apart from the rest (they need a repair, not
    /// a push); a fatal one is the error.
    fn failed(
        &self,
        report: &mut CheckReport,
        what: &str,
        kind: &str,
        h: &Hash,
        f: Failure,
    ) -> Result<()> {
        match f {
            Failure::Corrupt { actual, bytes } => {
                report
                    .corrupt
                    .push(corrupt_line(what, kind, h, &self.conn.name, &actual, bytes))
            }
            f => report.problems.push(self.describe(what, kind, h, f)?),
        }
        Ok(())
    }
}
