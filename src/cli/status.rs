use std::collections::BTreeMap;
use std::process::ExitCode;

use serde::Serialize;

use crate::error::Result;
use crate::exec::{Outcome, RunOptions};
use crate::kind::Catalog;
use crate::store::lock::LockFile;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pipeline: super::PipelineArgs,
    /// Nodes or stages to show (with what they depend on). Default: all.
    targets: Vec<String>,
    /// Machine-readable output.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct NodeStatus {
    node: String,
    state: &'static str,
    why: Vec<String>,
    /// A queued or running Slurm job for this node.
    #[serde(skip_serializing_if = "Option::is_none")]
    slurm_job: Option<String>,
    /// Where a libtorch node runs, as its key says: device (`auto` resolved now), precision,
    /// GPU, threads, libtorch.
    #[serde(skip_serializing_if = "Option::is_none")]
    runtime: Option<BTreeMap<String, String>>,
}

pub fn run(args: Args, catalog: &Catalog) -> Result<ExitCode> {
    let mut args = args;
    args.pipeline.take_target(&mut args.targets);
    let l = super::load_read_only(&args.pipeline, catalog)?;
    let targets = super::targets(&l.pipeline, &args.targets)?;
    super::end_leftovers_of_dead_run(&l);
    let lock = LockFile::read(&l.pipeline.lock_path())?;
    let opts = planning_options(targets);
    let summary = crate::exec::run(
        &l.pipeline,
        &l.dag,
        &l.store,
        &lock,
        &opts,
        &crate::exec::Silent,
    )?;
    let rows: Vec<NodeStatus> = summary
        .outcomes
        .into_iter()
        .map(|(node, o)| {
            let (state, why) = match o {
                Outcome::UpToDate => ("up-to-date", metrics_note(&l, &lock, &node)),
                Outcome::WouldRestore { mut why } => {
                    why.push("(cached: `cegraph run` restores it without running anything)".into());
                    ("stale", why)
                }
                Outcome::WouldRun { why } if why == ["never run"] => ("never-run", vec![]),
                Outcome::WouldRun { why } => ("stale", why),
                _ => ("stale", vec![]),
            };
            NodeStatus {
                runtime: runtime_of(&l.pipeline, &node),
                node,
                state,
                why,
                slurm_job: None,
            }
        })
        .collect();
    let mut rows = rows;
    mark_slurm_jobs(&l, &mut rows);
    let stale = rows.iter().filter(|r| r.state != "up-to-date").count();
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&rows).expect("status serialises")
        );
    } else {
        for r in &rows {
            let on = r.runtime.as_ref().map(describe_runtime).unwrap_or_default();
            match &r.slurm_job {
                Some(job) => println!("{:<11} {}{on} (Slurm job {job})", r.state, r.node),
                None => println!("{:<11} {}{on}", r.state, r.node),
            }
            for w in &r.why {
                println!("              {w}");
            }
        }
        println!(
            "{} of {} node(s) up to date",
            rows.len() - stale,
            rows.len()
        );
    }
    Ok(if stale > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// An up-to-date node whose `metrics:` declaration changed: not stale (the declaration is not
/// in the key), but its metrics are re-read by the next `run`.
fn metrics_note(l: &super::Loaded, lock: &LockFile, node: &str) -> Vec<String> {
    let n = l.pipeline.node_index(node).map(|i| &l.pipeline.nodes[i]);
    let (Some(n), Some(entry)) = (n, lock.nodes.get(node)) else {
        return vec![];
    };
    if crate::exec::metrics_refresh::declaration_changed(&l.store, n, &entry.key) {
        vec!["metrics: declaration changed (`cegraph run` re-reads them; nothing re-runs)".into()]
    } else {
        vec![]
    }
}

/// The runtime part of a libtorch node's key (resolved now, as a run would), so `status`
/// shows whether a node trains on the GPU and in which precision.
fn runtime_of(p: &crate::spec::Pipeline, node: &str) -> Option<BTreeMap<String, String>> {
    let n = &p.nodes[p.node_index(node)?];
    matches!(n.action, crate::spec::Action::Kind { worker: true, .. })
        .then(|| crate::exec::platform::worker_runtime(n))
}

/// ` (on cuda:0, NVIDIA H200 (sm_90), bf16)`, ` (on cpu, fp32)`.
fn describe_runtime(r: &BTreeMap<String, String>) -> String {
    let parts: Vec<&str> = ["device", "gpu", "precision"]
        .iter()
        .filter_map(|k| r.get(*k).map(String::as_str))
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!(" (on {})", parts.join(", "))
    }
}

/// Stale nodes with a job in the Slurm queue show as `queued` or `running`, with its id.
/// One `squeue` call, and none at all for pipelines never submitted to Slurm.
fn mark_slurm_jobs(l: &super::Loaded, rows: &mut [NodeStatus]) {
    use crate::exec::slurm::{self, cluster::Cluster};
    if rows.iter().all(|r| r.state == "up-to-date") {
        return;
    }
    let queued = match slurm::queued(&l.pipeline, &l.store, &Cluster::new()) {
        Ok(q) => q,
        Err(e) => {
            eprintln!("warning: cannot ask Slurm about this pipeline's jobs: {e}");
            return;
        }
    };
    for r in rows.iter_mut().filter(|r| r.state != "up-to-date") {
        if let Some((id, state)) = queued.get(&r.node) {
            r.state = if state.is_running() {
                "running"
            } else {
                "queued"
            };
            r.slurm_job = Some(id.clone());
        }
    }
}

/// Options for a dry run that only judges the nodes (`status`, `list`).
pub fn planning_options(targets: Vec<usize>) -> RunOptions {
    RunOptions {
        jobs: 1,
        targets,
        dry_run: true,
        force: Vec::new(),
        keep_going: true,
        collect_only: false,
        exe: std::path::PathBuf::new(),
        remote: None,
        push: false,
        locked: false,
    }
}
