//! Which of a pipeline's nodes were submitted, as which cegraph job and which Slurm job:
//! what makes resubmission idempotent, `cegraph status` show job ids and `cegraph cancel` work.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::hash::Hash;
use crate::spec::Pipeline;
use crate::store::Store;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// The handed-over job (see `exec::handoff`).
    pub job: Hash,
    /// `1234_5`: an array task.
    pub slurm_id: String,
    /// Seconds since the Unix epoch.
    pub submitted_at: f64,
    /// The cluster `sbatch` sent it to, when it named one (`-M`, multi-cluster set-ups).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Ledger {
    /// Node name → its latest submission.
    pub nodes: BTreeMap<String, Entry>,
    #[serde(skip)]
    path: PathBuf,
}

/// The prefix of every Slurm job name of this pipeline: `cegraph:<id>:`, the id naming the
/// pipeline's lock file (two checkouts of one pipeline are two pipelines).
pub fn job_name_prefix(p: &Pipeline) -> String {
    format!("cegraph:{}:", pipeline_id(p).short())
}

fn pipeline_id(p: &Pipeline) -> Hash {
    let lock = std::path::absolute(p.lock_path()).unwrap_or_else(|_| p.lock_path());
    Hash::of_bytes(lock.to_string_lossy().as_bytes())
}

impl Ledger {
    pub fn load(store: &Store, p: &Pipeline) -> Ledger {
        let path =
            store
                .root()
                .join("slurm")
                .join(format!("{}-{}.json", p.name, pipeline_id(p).short()));
        let mut ledger: Ledger = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        ledger.path = path;
        ledger
    }

    /// The named clusters this pipeline's jobs went to.
    pub fn clusters(&self) -> impl Iterator<Item = &str> {
        self.nodes.values().filter_map(|e| e.cluster.as_deref())
    }

    pub fn save(&self, store: &Store) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(self).expect("ledgers serialise");
        store.write_atomic(&self.path, &bytes)
    }
}
