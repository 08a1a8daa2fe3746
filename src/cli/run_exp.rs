//! `cegraph run -S stage.param=value [--name NAME] [--lock]`: a run recorded as an experiment
//! in the cache rather than in the committed lock file.

use crate::error::{Error, Result};
use crate::spec::overrides::Override;
use crate::store::Store;
use crate::store::experiments::{EXPERIMENT_FORMAT, Experiment, ExperimentNode};
use crate::store::lock::LockFile;

#[derive(clap::Args)]
pub struct ExpArgs {
    /// Override a param for this run without editing the file: `-S train.lr=0.003`,
    /// `-S vars.seed=2` (a YAML value; repeatable). The run is recorded as an experiment
    /// (`cegraph exp show`) and the lock file is left as it was, unless --lock.
    #[arg(short = 'S', long = "set", value_name = "STAGE.PARAM=VALUE")]
    pub set: Vec<String>,
    /// Record this run as the experiment NAME (default with -S: exp-1, exp-2, …).
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Also write the experiment's results into the lock file (promote it).
    #[arg(long)]
    pub lock: bool,
}

impl ExpArgs {
    pub fn overrides(&self) -> Result<Vec<Override>> {
        self.set.iter().map(|s| Override::parse(s)).collect()
    }

    fn is_experiment(&self) -> bool {
        !self.set.is_empty() || self.name.is_some()
    }

    /// The experiment's name, checked before anything runs; `None` for a plain run.
    pub fn check(&self, store: &Store, dry_run: bool, slurm: bool) -> Result<Option<String>> {
        if !self.is_experiment() {
            if self.lock {
                return Err(Error::usage(
                    "--lock promotes an experiment, and this run is none",
                    "use it with -S or --name; a plain run writes the lock file anyway",
                ));
            }
            return Ok(None);
        }
        if slurm && !dry_run {
            return Err(Error::usage(
                "experiments (-S, --name) are not recorded from --executor slurm yet",
                "run the experiment locally, or edit the pipeline file for a Slurm run",
            ));
        }
        let name = match &self.name {
            Some(n) => n.clone(),
            None => store.next_experiment_name(),
        };
        store.check_new_experiment(&name)?;
        Ok(Some(name))
    }
}

/// Record the finished run as experiment `name`: every node's key, params and metrics.
pub fn record(
    l: &super::Loaded,
    name: &str,
    generated: bool,
    overrides: Vec<Override>,
    lock: &LockFile,
    promoted: bool,
) -> Result<()> {
    let nodes = lock
        .nodes
        .iter()
        .map(|(node, entry)| {
            let rec = l.store.read_record(&entry.key);
            let (params, metrics) = rec
                .map(|r| (r.inputs.params, r.metrics))
                .unwrap_or_default();
            let n = ExperimentNode {
                key: entry.key,
                params,
                metrics,
            };
            (node.clone(), n)
        })
        .collect();
    let exp = Experiment {
        format: EXPERIMENT_FORMAT,
        name: name.to_string(),
        pipeline: pipeline_id(&l.pipeline),
        created_at: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0),
        overrides,
        git: crate::store::git::state(&l.pipeline.workspace),
        nodes,
    };
    let mut exp = exp;
    // A generated name taken meanwhile (another run sharing the cache) moves to the next one.
    while let Err(e) = l.store.write_experiment(&exp) {
        if !generated || !l.store.has_experiment(&exp.name) {
            return Err(e);
        }
        exp.name = l.store.next_experiment_name();
    }
    let name = exp.name.as_str();
    if promoted {
        sayln!("experiment {name} recorded and written into the lock file");
    } else {
        sayln!(
            "experiment {name} recorded; the lock file is unchanged (`cegraph exp apply {name}` writes its overrides into the pipeline or params file)"
        );
    }
    Ok(())
}

/// How experiments name their pipeline: its path inside the workspace.
pub fn pipeline_id(p: &crate::spec::Pipeline) -> String {
    let abs = std::fs::canonicalize(&p.path).unwrap_or_else(|_| p.path.clone());
    abs.strip_prefix(&p.workspace)
        .unwrap_or(&abs)
        .display()
        .to_string()
}
