//! Experiments: runs made with `-S` overrides (or `--name`), recorded in
//! `cache/experiments/<name>.json` instead of the committed lock file.
//!
//! Each record names its overrides, the git commit and whether the tree was dirty, and every
//! node's key, params and metrics (copied from its run record, so `exp show` reads one file
//! per experiment).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Store;
use crate::error::{Error, IoContext, Result};
use crate::hash::Hash;
use crate::spec::overrides::Override;

pub const EXPERIMENT_FORMAT: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Experiment {
    pub format: u32,
    pub name: String,
    /// The pipeline file, as given on the command line.
    pub pipeline: String,
    /// Seconds since the Unix epoch.
    pub created_at: f64,
    pub overrides: Vec<Override>,
    /// `None` outside a git repository.
    pub git: Option<GitState>,
    pub nodes: BTreeMap<String, ExperimentNode>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitState {
    pub commit: String,
    pub dirty: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExperimentNode {
    pub key: Hash,
    #[serde(default)]
    pub params: BTreeMap<String, Value>,
    #[serde(default)]
    pub metrics: BTreeMap<String, Value>,
}

/// A name users can type and that is safe as a file name.
pub fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 100
        && !name.starts_with(['.', '-'])
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if ok {
        Ok(())
    } else {
        Err(Error::usage(
            format!("experiment name `{name}` is not allowed"),
            "use letters, digits, `_`, `-` and `.` (not first), e.g. --name lr-3e-3",
        ))
    }
}

impl Store {
    pub fn experiments_dir(&self) -> PathBuf {
        self.root().join("experiments")
    }

    fn experiment_path(&self, name: &str) -> PathBuf {
        self.experiments_dir().join(format!("{name}.json"))
    }

    pub fn has_experiment(&self, name: &str) -> bool {
        self.experiment_path(name).exists()
    }

    /// Fail (usage error) when `name` is taken, before anything runs.
    pub fn check_new_experiment(&self, name: &str) -> Result<()> {
        check_name(name)?;
        if self.has_experiment(name) {
            return Err(Error::usage(
                format!("experiment `{name}` exists already"),
                format!("choose another --name, or `cegraph exp remove {name}` first"),
            ));
        }
        Ok(())
    }

    /// `exp-1`, `exp-2`, …: the first free one.
    pub fn next_experiment_name(&self) -> String {
        (1..)
            .map(|i| format!("exp-{i}"))
            .find(|n| !self.has_experiment(n))
            .expect("some name is free")
    }

    /// Publish a new experiment; never replaces one of the same name (published by a hard
    /// link, which fails when the name exists, so two runs cannot overwrite each other).
    pub fn write_experiment(&self, exp: &Experiment) -> Result<()> {
        check_name(&exp.name)?;
        let dir = self.experiments_dir();
        fs::create_dir_all(&dir).at(&dir)?;
        let dest = self.experiment_path(&exp.name);
        let mut text = serde_json::to_string_pretty(exp).expect("experiments serialise");
        text.push('\n');
        let tmp = dir.join(format!(".{}.{}.tmp", exp.name, std::process::id()));
        fs::write(&tmp, text).at(&tmp)?;
        let linked = fs::hard_link(&tmp, &dest);
        let _ = fs::remove_file(&tmp);
        match linked {
            Ok(()) => {
                self.refresh_experiment_index();
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                self.check_new_experiment(&exp.name)
            }
            Err(e) => Err(Error::io(&dest, e)),
        }
    }

    pub fn read_experiment(&self, name: &str) -> Result<Option<Experiment>> {
        check_name(name)?;
        read(&self.experiment_path(name))
    }

    /// Every readable experiment, oldest first; damaged files are skipped with a warning.
    pub fn experiments(&self) -> Vec<Experiment> {
        use rayon::prelude::*;
        let paths: Vec<PathBuf> = fs::read_dir(self.experiments_dir())
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        let mut all: Vec<Experiment> = paths
            .par_iter()
            .filter_map(|p| match read(p) {
                Ok(e) => e,
                Err(e) => {
                    eprintln!("warning: skipping {}: {e}", p.display());
                    None
                }
            })
            .collect();
        all.sort_by(|a, b| {
            a.created_at
                .total_cmp(&b.created_at)
                .then(a.name.cmp(&b.name))
        });
        all
    }

    pub fn remove_experiment(&self, name: &str) -> Result<()> {
        check_name(name)?;
        let path = self.experiment_path(name);
        match fs::remove_file(&path) {
            Ok(()) => {
                self.refresh_experiment_index();
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(no_such(self, name)),
            Err(e) => Err(Error::io(&path, e)),
        }
    }
}

impl Store {
    /// Bring the index up to date now, so the next `exp show` reads no record (best effort:
    /// a reader repairs whatever this misses, e.g. a concurrent run's experiment).
    fn refresh_experiment_index(&self) {
        let _ = self.experiment_index();
    }
}

/// The usage error for an unknown experiment, listing the known ones.
pub fn no_such(store: &Store, name: &str) -> Error {
    let names: Vec<String> = store.experiments().into_iter().map(|e| e.name).collect();
    Error::usage(
        format!("no experiment named `{name}`"),
        if names.is_empty() {
            "there are none yet: `cegraph run -S stage.param=value` records one".to_string()
        } else {
            format!("known: {} (see `cegraph exp list`)", names.join(", "))
        },
    )
}

pub(super) fn read(path: &Path) -> Result<Option<Experiment>> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(path, e)),
    };
    serde_json::from_slice(&bytes).map(Some).map_err(|e| {
        Error::usage(
            format!("{}: not a valid experiment record: {e}", path.display()),
            "remove it with `cegraph exp remove NAME`",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exp(name: &str) -> Experiment {
        Experiment {
            format: EXPERIMENT_FORMAT,
            name: name.into(),
            pipeline: "p.yaml".into(),
            created_at: 1.0,
            overrides: vec![],
            git: None,
            nodes: BTreeMap::new(),
        }
    }

    #[test]
    fn experiment_name_that_exists_is_refused_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.write_experiment(&exp("a")).unwrap();
        let mut other = exp("a");
        other.created_at = 2.0;
        assert!(store.write_experiment(&other).is_err());
        assert_eq!(store.read_experiment("a").unwrap().unwrap().created_at, 1.0);
        assert_eq!(store.next_experiment_name(), "exp-1");
        assert!(store.check_new_experiment("a").is_err());
        assert!(check_name("../x").is_err());
    }
}
