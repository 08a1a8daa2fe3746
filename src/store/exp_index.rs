//! The experiments index, `cache/experiments/.index`: every experiment record's name,
//! pipeline, creation time and nodes in one packed file, so `exp show` reads one file with
//! little allocation instead of parsing a thousand JSON records.
//!
//! It is a cache of the records, never trusted blindly: each entry carries the stat
//! (size, mtime, ctime, inode) of the record it was read from and the file carries a blake3
//! checksum. A reader lists the directory and re-reads every record that is new or whose
//! stat differs, drops entries whose record is gone, and ignores an index that is
//! unreadable, of another format or fails its checksum (rebuilding it from the records).
//! Writes go to a temporary file renamed into place, so a crash leaves the old index or
//! the new one; two runs writing at once leave one of them, and the next reader repairs
//! what the other added.

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::Store;
use super::experiments::Experiment;
use super::packed::{Packed, Sym};

pub(super) const MAGIC: &[u8; 8] = b"CEGXIDX\0";
pub(super) const INDEX_FORMAT: u32 = 1;
/// The index's file name: not a valid experiment name, so it cannot clash with one.
pub const INDEX_FILE: &str = ".index";

/// What identifies one version of a record file: any rewrite changes at least one field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub size: u64,
    pub mtime_ns: i128,
    pub ctime_ns: i128,
    pub ino: u64,
}

impl Stamp {
    pub fn of(m: &fs::Metadata) -> Stamp {
        Stamp {
            size: m.size(),
            mtime_ns: m.mtime() as i128 * 1_000_000_000 + m.mtime_nsec() as i128,
            ctime_ns: m.ctime() as i128 * 1_000_000_000 + m.ctime_nsec() as i128,
            ino: m.ino(),
        }
    }
}

/// One experiment as the index holds it (its overrides and git state stay in its record).
#[derive(Debug, Clone, PartialEq)]
pub struct IndexedExperiment {
    /// The record's file name in `cache/experiments/`.
    pub file: Sym,
    pub stamp: Stamp,
    pub name: Sym,
    pub pipeline: Sym,
    pub created_at: f64,
    /// Indices into [`Packed::nodes`].
    pub nodes: std::ops::Range<u32>,
}

/// Every readable experiment, oldest first, with their nodes packed.
#[derive(Debug, Default, Clone)]
pub struct ExperimentIndex {
    pub packed: Packed,
    pub experiments: Vec<IndexedExperiment>,
}

impl ExperimentIndex {
    fn sort(&mut self) {
        let p = &self.packed;
        self.experiments.sort_by(|a, b| {
            a.created_at
                .total_cmp(&b.created_at)
                .then_with(|| p.str(a.name).cmp(p.str(b.name)))
        });
    }

    /// Append an experiment read from its record.
    fn push(&mut self, file: &str, stamp: Stamp, exp: &Experiment) {
        let p = &mut self.packed;
        let start = p.nodes.len() as u32;
        for (name, n) in &exp.nodes {
            p.push_node(name, Some(n.key), &n.params, &n.metrics);
        }
        let end = p.nodes.len() as u32;
        self.experiments.push(IndexedExperiment {
            file: p.intern(file),
            stamp,
            name: p.intern(&exp.name),
            pipeline: p.intern(&exp.pipeline),
            created_at: exp.created_at,
            nodes: start..end,
        });
    }

    /// Append experiment `i` of `old` (an entry still valid) to this index.
    fn copy_from(&mut self, old: &ExperimentIndex, i: usize) {
        let e = &old.experiments[i];
        let start = self.packed.nodes.len() as u32;
        for n in e.nodes.clone() {
            self.packed.copy_node(&old.packed, n);
        }
        let end = self.packed.nodes.len() as u32;
        let p = &mut self.packed;
        self.experiments.push(IndexedExperiment {
            file: p.intern(old.packed.str(e.file)),
            stamp: e.stamp,
            name: p.intern(old.packed.str(e.name)),
            pipeline: p.intern(old.packed.str(e.pipeline)),
            created_at: e.created_at,
            nodes: start..end,
        });
    }
}

impl Store {
    /// The experiments index, brought up to date with the records on disk (and saved when
    /// it changed, where the cache is writable). Damaged records are skipped with a warning.
    pub fn experiment_index(&self) -> ExperimentIndex {
        let dir = self.experiments_dir();
        let on_disk = record_files(&dir);
        let old = read_index(&dir.join(INDEX_FILE)).unwrap_or_default();
        let valid: HashMap<&str, usize> = old
            .experiments
            .iter()
            .enumerate()
            .filter(|(_, e)| on_disk.get(old.packed.str(e.file)) == Some(&e.stamp))
            .map(|(i, e)| (old.packed.str(e.file), i))
            .collect();
        if valid.len() == on_disk.len() && valid.len() == old.experiments.len() {
            return old;
        }
        let mut keep = vec![false; old.experiments.len()];
        for &i in valid.values() {
            keep[i] = true;
        }
        let mut fresh: Vec<(&String, &Stamp)> = on_disk
            .iter()
            .filter(|(f, _)| !valid.contains_key(f.as_str()))
            .collect();
        fresh.sort_by_key(|(f, _)| *f);
        let parsed: Vec<_> = {
            use rayon::prelude::*;
            fresh
                .par_iter()
                .filter_map(|(f, _)| read_record_file(&dir, f))
                .collect()
        };
        // The valid entries stay where they are; the nodes of dropped ones are left unused
        // until they outnumber the used ones, then everything is copied compactly.
        let mut new = old;
        let mut i = 0;
        new.experiments.retain(|_| {
            i += 1;
            keep[i - 1]
        });
        for (file, stamp, exp) in &parsed {
            new.push(file, *stamp, exp);
        }
        let used: usize = new.experiments.iter().map(|e| e.nodes.len()).sum();
        if new.packed.nodes.len() > 2 * used {
            let all = new;
            new = ExperimentIndex::default();
            for i in 0..all.experiments.len() {
                new.copy_from(&all, i);
            }
        }
        new.sort();
        // Best effort: a read-only cache still gets its answer, rebuilt each time.
        let _ = write_index(&dir, &new);
        new
    }
}

/// `name.json` → its stat, for every experiment record in `dir`. Removes the temporary file
/// of an index write whose process died (a crash mid-write).
fn record_files(dir: &Path) -> HashMap<String, Stamp> {
    fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            if name.starts_with(super::tmp::PREFIX) && super::tmp::is_orphaned(&name) {
                let _ = fs::remove_file(e.path());
            }
            if !name.ends_with(".json") || name.starts_with('.') {
                return None;
            }
            let m = e.metadata().ok()?;
            m.is_file().then(|| (name, Stamp::of(&m)))
        })
        .collect()
}

/// The record `file` with its stat, taken before reading it: a record rewritten meanwhile
/// then differs from its stamp and is read again next time.
fn read_record_file(dir: &Path, file: &str) -> Option<(String, Stamp, Experiment)> {
    let path = dir.join(file);
    let stamp = Stamp::of(&fs::metadata(&path).ok()?);
    match super::experiments::read(&path) {
        Ok(Some(exp)) => Some((file.to_string(), stamp, exp)),
        Ok(None) => None,
        Err(e) => {
            eprintln!("warning: skipping {}: {e}", path.display());
            None
        }
    }
}

/// Written beside the records (read-only commands create no directory) under a name that
/// tells its owner, then renamed into place; [`record_files`] removes one whose owner is gone.
fn write_index(dir: &Path, index: &ExperimentIndex) -> std::io::Result<()> {
    use std::io::Write;
    let mut tmp = super::tmp::file_in(dir)?;
    tmp.write_all(&super::exp_index_codec::encode(index))?;
    tmp.persist(dir.join(INDEX_FILE)).map_err(|e| e.error)?;
    Ok(())
}

/// The index file, or `None` when it is missing, damaged or of another format.
fn read_index(path: &Path) -> Option<ExperimentIndex> {
    let bytes = fs::read(path).ok()?;
    super::exp_index_codec::decode(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::Hash;
    use crate::store::experiments::{EXPERIMENT_FORMAT, ExperimentNode};
    use serde_json::{Value, json};

    fn exp(name: &str, loss: f64) -> Experiment {
        let node = ExperimentNode {
            key: Hash::from(blake3::hash(name.as_bytes())),
            params: [("lr".to_string(), json!(0.1))].into(),
            metrics: [("loss".to_string(), json!(loss))].into(),
        };
        Experiment {
            format: EXPERIMENT_FORMAT,
            name: name.into(),
            pipeline: "p.yaml".into(),
            created_at: loss,
            overrides: vec![],
            git: None,
            nodes: [("train".to_string(), node)].into(),
        }
    }

    /// (name, loss) of every indexed experiment, in order.
    fn seen(store: &Store) -> Vec<(String, Value)> {
        let index = store.experiment_index();
        let p = &index.packed;
        index
            .experiments
            .iter()
            .map(|e| {
                let node = &p.nodes[e.nodes.start as usize];
                (p.str(e.name).to_string(), p.unpack(p.metrics(node)[0].1))
            })
            .collect()
    }

    #[test]
    fn corrupt_experiment_index_is_rebuilt_from_the_records() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.write_experiment(&exp("a", 1.0)).unwrap();
        store.write_experiment(&exp("b", 2.0)).unwrap();
        let want = vec![("a".to_string(), json!(1.0)), ("b".to_string(), json!(2.0))];
        let path = store.experiments_dir().join(INDEX_FILE);
        let good = fs::read(&path).unwrap();
        assert_eq!(seen(&store), want);
        let mut flipped = good.clone();
        *flipped.last_mut().unwrap() ^= 1;
        let mut wrong_format = good.clone();
        wrong_format[8] ^= 0xff;
        for bad in [
            flipped,
            wrong_format,
            good[..good.len() / 2].to_vec(),
            b"garbage".to_vec(),
            Vec::new(),
        ] {
            fs::write(&path, &bad).unwrap();
            assert_eq!(seen(&store), want);
            // ...and the repaired index is written back.
            assert_eq!(fs::read(&path).unwrap(), good);
        }
    }

    #[test]
    fn stale_experiment_index_is_repaired_from_the_records() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.write_experiment(&exp("a", 1.0)).unwrap();
        store.write_experiment(&exp("b", 2.0)).unwrap();
        let path = store.experiments_dir().join(INDEX_FILE);
        let old = fs::read(&path).unwrap();
        // A concurrent run's experiment whose index write lost the race.
        store.write_experiment(&exp("c", 3.0)).unwrap();
        fs::write(&path, &old).unwrap();
        // A record removed, and one rewritten in place, behind the index's back.
        fs::remove_file(store.experiments_dir().join("a.json")).unwrap();
        let mut b = exp("b", 2.0);
        b.nodes.get_mut("train").unwrap().metrics = [("loss".into(), json!(20.5))].into();
        let text = serde_json::to_string(&b).unwrap();
        fs::write(store.experiments_dir().join("b.json"), text).unwrap();
        assert_eq!(
            seen(&store),
            [
                ("b".to_string(), json!(20.5)),
                ("c".to_string(), json!(3.0))
            ]
        );
    }

    #[test]
    fn index_write_cut_by_a_crash_is_swept_and_the_index_rebuilt() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.write_experiment(&exp("a", 1.0)).unwrap();
        let dead = i32::MAX - 1;
        let host = crate::store::tmp::host_tag();
        let left = store
            .experiments_dir()
            .join(format!("{}{dead}-1-{host}-x1", crate::store::tmp::PREFIX));
        fs::write(&left, b"CEGXIDX\0half").unwrap();
        fs::remove_file(store.experiments_dir().join(INDEX_FILE)).unwrap();
        assert_eq!(seen(&store), [("a".to_string(), json!(1.0))]);
        assert!(!left.exists());
        assert!(store.experiments_dir().join(INDEX_FILE).exists());
    }

    #[test]
    fn removed_experiments_leave_the_index_and_it_is_compacted() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        for (i, name) in ["a", "b", "c", "d"].into_iter().enumerate() {
            store.write_experiment(&exp(name, i as f64)).unwrap();
        }
        for name in ["a", "c", "d"] {
            store.remove_experiment(name).unwrap();
        }
        assert_eq!(seen(&store), [("b".to_string(), json!(1.0))]);
        let index = store.experiment_index();
        assert_eq!(index.packed.nodes.len(), 1);
        store.write_experiment(&exp("e", 5.0)).unwrap();
        assert_eq!(seen(&store).len(), 2);
    }

    #[test]
    fn index_with_a_valid_checksum_but_bad_references_is_not_trusted() {
        let mut index = ExperimentIndex::default();
        index.push(
            "a.json",
            Stamp::of(&fs::metadata(".").unwrap()),
            &exp("a", 1.0),
        );
        let good = crate::store::exp_index_codec::encode(&index);
        assert!(crate::store::exp_index_codec::decode(&good).is_some());
        let mut dangling = index.clone();
        dangling.experiments[0].nodes = 0..7;
        let mut duplicate = index.clone();
        duplicate.packed.strings.push("a".into());
        let mut bad_symbol = index;
        bad_symbol.packed.entries[0].0 = 999;
        for bad in [dangling, duplicate, bad_symbol] {
            let bytes = crate::store::exp_index_codec::encode(&bad);
            assert!(crate::store::exp_index_codec::decode(&bytes).is_none());
        }
    }

    #[test]
    fn concurrent_experiment_writes_all_reach_the_index() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        std::thread::scope(|s| {
            for t in 0..8 {
                let store = &store;
                s.spawn(move || {
                    for i in 0..5 {
                        let name = format!("e{t}-{i}");
                        store
                            .write_experiment(&exp(&name, (t * 5 + i) as f64))
                            .unwrap();
                    }
                });
            }
        });
        assert_eq!(seen(&store).len(), 40);
        // Now current: read again without any record being parsed, same answer.
        let path = store.experiments_dir().join(INDEX_FILE);
        let decoded = crate::store::exp_index_codec::decode(&fs::read(&path).unwrap()).unwrap();
        assert_eq!(decoded.experiments.len(), 40);
    }
}
