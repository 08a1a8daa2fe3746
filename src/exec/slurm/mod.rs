//! The Slurm executor: cegraph decides WHAT is stale, Slurm decides WHERE and WHEN it runs.
//!
//! `submit` walks the DAG like the local scheduler: nodes whose inputs are known are judged
//! here (up to date, restored from the cache, or to run); every node that must run, and every
//! node downstream of one, becomes a job (`cegraph exec-node <id>`) submitted at once with
//! `afterok` dependencies, a matrix stage as one job array. `wait` follows them with one
//! `squeue` per poll. The lock file is then brought up to date by an ordinary local pass that
//! only restores (the jobs put every result in the shared cache).

pub mod cluster;
pub mod ledger;
pub mod reason;
pub mod shared_fs;
pub mod wait;

pub use wait::{Counts, JobEnd, Patience, WaitObserver, slurm_log, wait};

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::error::{Error, Result};
use crate::graph::Dag;
use crate::hash::Hash;
use crate::spec::Pipeline;
use crate::spec::model::{Resources, SlurmSettings};
use crate::store::lock::{LockEntry, LockFile};
use crate::store::{OutputRecord, Store};

use super::handoff::{self, NodeJob, UpstreamSource};
use super::plan::{Verdict, judge, key_inputs};
use cluster::{Cluster, JobState};
use ledger::{Entry, Ledger, job_name_prefix};

pub struct SlurmOptions {
    pub settings: SlurmSettings,
    pub targets: Vec<usize>,
    /// Nodes to run even if cached, by node index (see [`crate::exec::RunOptions::force`]).
    pub force: Vec<bool>,
    /// The `cegraph` binary the jobs run (`exec-node`); must be readable on every node.
    pub exe: PathBuf,
}

/// A node that has a job in the queue (new or already there).
#[derive(Debug, Clone)]
pub struct Tracked {
    pub node: usize,
    pub job: Hash,
    pub slurm_id: String,
}

/// What `submit` did.
pub struct Submission {
    /// Newly submitted, in submission order.
    pub submitted: Vec<Tracked>,
    /// Already queued or running with the same work: not submitted again.
    pub already_queued: Vec<Tracked>,
    /// Queued jobs of earlier submissions that no longer match the pipeline: cancelled.
    pub superseded: Vec<String>,
    pub up_to_date: usize,
    pub restored: usize,
    /// Not submitted: an upstream node cannot run (e.g. needs a missing dep).
    pub blocked: Vec<(usize, String)>,
    /// Number of `sbatch` calls (arrays count once).
    pub sbatch_calls: usize,
    /// The lock file with every node that is up to date now.
    pub lock: LockFile,
    pub elapsed: Duration,
}

impl Submission {
    pub fn tracked(&self) -> impl Iterator<Item = &Tracked> {
        self.submitted.iter().chain(&self.already_queued)
    }
}

/// Where each node's outputs will come from during planning.
#[derive(Clone)]
enum Plan {
    Known(Vec<OutputRecord>),
    Job(Hash),
    Blocked,
}

/// Judge the selected nodes and submit what must run. Holds no lock: the caller takes the
/// pipeline's run lock first.
pub fn submit(
    p: &Pipeline,
    dag: &Dag,
    store: &Store,
    lock: &LockFile,
    opts: &SlurmOptions,
    cluster: &Cluster,
) -> Result<Submission> {
    let clock = Instant::now();
    let patience = Patience::from_env()?;
    let partition = effective_partition(&opts.settings, std::env::var("SBATCH_PARTITION").ok());
    let nodes = cluster.partition_nodes(partition.as_deref())?;
    if !opts.settings.shared_fs {
        shared_fs::check(
            &[
                ("cache", store.root()),
                ("workspace", &p.workspace),
                ("cegraph binary", &opts.exe),
            ],
            &nodes,
            &super::job::hostname(),
        )?;
    }
    let prefix = job_name_prefix(p);
    let mut ledger = Ledger::load(store, p);
    cluster.remember_clusters(ledger.clusters());
    let live = if ledger.nodes.is_empty() {
        cluster::JobStates::default()
    } else {
        cluster.jobs_patiently(&prefix, patience.squeue)?
    };
    let snapshot = handoff::write_snapshot(store, p)?;
    let selected = dag.closure(&opts.targets);
    let stamp = now_ns();

    let mut new_lock = super::plan::carried_over(p, lock);
    let mut plan: Vec<Option<Plan>> = vec![None; p.nodes.len()];
    let mut sub = Submission {
        submitted: Vec::new(),
        already_queued: Vec::new(),
        superseded: Vec::new(),
        up_to_date: 0,
        restored: 0,
        blocked: Vec::new(),
        sbatch_calls: 0,
        lock: LockFile::default(),
        elapsed: Duration::ZERO,
    };
    // Nodes to submit, with their job ids, in topological order.
    let mut fresh: Vec<(usize, Hash)> = Vec::new();
    let mut slurm_ids: HashMap<Hash, String> = HashMap::new();
    let mut snapshots = HashMap::new();

    for &i in &dag.order {
        if !selected[i] {
            continue;
        }
        let node = &p.nodes[i];
        let ups: Vec<Plan> = node
            .upstream
            .iter()
            .map(|&u| plan[u].clone().unwrap_or(Plan::Blocked))
            .collect();
        if let Some(pos) = ups.iter().position(|u| matches!(u, Plan::Blocked)) {
            let why = format!("upstream {} cannot run", p.nodes[node.upstream[pos]].name);
            sub.blocked.push((i, why));
            plan[i] = Some(Plan::Blocked);
            continue;
        }
        let force_stamp = opts.force.get(i).copied().unwrap_or(false).then_some(stamp);
        if ups.iter().all(|u| matches!(u, Plan::Known(_))) && force_stamp.is_none() {
            let known = |u: usize| match &plan[u] {
                Some(Plan::Known(o)) => Some(o.clone()),
                _ => None,
            };
            let inputs = match key_inputs(p, node, store, &known) {
                Ok(x) => x,
                Err(e) => {
                    sub.blocked.push((i, e.to_string()));
                    plan[i] = Some(Plan::Blocked);
                    continue;
                }
            };
            let key = inputs.key();
            match judge(p, store, &inputs, &key, lock.nodes.get(&node.name), false) {
                Verdict::UpToDate => {
                    let outs = lock.nodes[&node.name].outs.clone();
                    sub.up_to_date += 1;
                    plan[i] = Some(Plan::Known(outs));
                    continue;
                }
                Verdict::Restore(rec, _) => {
                    match store.restore_outputs(&p.workspace, &rec.outputs) {
                        Ok(()) => {}
                        // Quarantined: the node is submitted like a stale one.
                        Err(e @ Error::CorruptObject(_)) => {
                            eprintln!("warning: {}: {e}; running the node again", node.name);
                        }
                        Err(e) => return Err(e),
                    }
                    if store.has_outputs(&rec.outputs) {
                        new_lock.nodes.insert(
                            node.name.clone(),
                            LockEntry {
                                key,
                                outs: rec.outputs.clone(),
                            },
                        );
                        sub.restored += 1;
                        plan[i] = Some(Plan::Known(rec.outputs));
                        continue;
                    }
                }
                Verdict::Run(_) => {}
            }
        }
        let job = NodeJob {
            format: handoff::FORMAT,
            pipeline: snapshot,
            node: node.name.clone(),
            upstream: ups
                .iter()
                .map(|u| match u {
                    Plan::Known(o) => UpstreamSource::Known(o.clone()),
                    Plan::Job(id) => UpstreamSource::Job(*id),
                    Plan::Blocked => unreachable!("blocked upstreams were handled above"),
                })
                .collect(),
            threads: node.resources.cpus.max(1) as usize,
            gpus: node.resources.gpus as usize,
            force: force_stamp,
        };
        let id = handoff::write_job(store, &job)?;
        plan[i] = Some(Plan::Job(id));
        // Idempotent resubmission: a queued job doing the same work is reused.
        if let Some(prev) = ledger.nodes.get(&node.name)
            && let Some(state) = live.get(&prev.slurm_id)
            && state.is_active()
        {
            if prev.job == id || handoff::equivalent(store, &prev.job, &job, &mut snapshots) {
                slurm_ids.insert(prev.job, prev.slurm_id.clone());
                sub.already_queued.push(Tracked {
                    node: i,
                    job: prev.job,
                    slurm_id: prev.slurm_id.clone(),
                });
                // Downstream jobs must name the job that will actually run.
                plan[i] = Some(Plan::Job(prev.job));
                continue;
            }
            sub.superseded.push(prev.slurm_id.clone());
        }
        forget_result(store, &id)?;
        fresh.push((i, id));
    }
    cluster.cancel(&sub.superseded)?;

    // Submit in rounds: a group (one stage, one set of resources) goes once every job it
    // depends on has a Slurm id. Stages form a DAG, so every round makes progress.
    // Jobs start in the workspace (--chdir), not here: a relative --cache would point
    // elsewhere for them.
    let cache = std::path::absolute(store.root()).map_err(|e| Error::io(store.root(), e))?;
    let script_dir = cache.join("slurm").join("scripts");
    let log_dir = cache.join("slurm").join("logs");
    fs::create_dir_all(&script_dir).map_err(|e| Error::io(&script_dir, e))?;
    fs::create_dir_all(&log_dir).map_err(|e| Error::io(&log_dir, e))?;
    let mut pending = fresh;
    while !pending.is_empty() {
        let ready = |&(i, _): &(usize, Hash)| {
            upstream_jobs(p, i, &plan)
                .iter()
                .all(|j| slurm_ids.contains_key(j))
        };
        let (now, later): (Vec<_>, Vec<_>) = pending.into_iter().partition(|x| ready(x));
        if now.is_empty() {
            unreachable!("a dependency cycle between Slurm groups");
        }
        let mut groups: BTreeMap<(String, String), Vec<(usize, Hash)>> = BTreeMap::new();
        for (i, id) in now {
            let n = &p.nodes[i];
            let res = serde_json::to_string(&n.resources).expect("resources serialise");
            groups
                .entry((n.stage.clone(), res))
                .or_default()
                .push((i, id));
        }
        for ((stage, _), members) in groups {
            for chunk in members.chunks(cluster.max_array_tasks()) {
                let deps: BTreeSet<String> = chunk
                    .iter()
                    .flat_map(|&(i, _)| upstream_jobs(p, i, &plan))
                    .map(|j| slurm_ids[&j].clone())
                    .collect();
                let resources = &p.nodes[chunk[0].0].resources;
                let ids: Vec<Hash> = chunk.iter().map(|&(_, id)| id).collect();
                let script = write_script(&script_dir, p, &stage, &ids, &opts.exe, &cache)?;
                let args = sbatch_args(
                    &opts.settings,
                    resources,
                    &format!("{prefix}{stage}"),
                    chunk.len(),
                    &deps,
                    &log_dir,
                    &p.workspace,
                );
                let base = cluster
                    .sbatch(&args, &script, patience.squeue)
                    .map_err(|e| partly_submitted(e, sub.submitted.len()))?;
                sub.sbatch_calls += 1;
                let at = now_s();
                for (k, &(i, id)) in chunk.iter().enumerate() {
                    let slurm_id = format!("{}_{k}", base.id);
                    slurm_ids.insert(id, slurm_id.clone());
                    ledger.nodes.insert(
                        p.nodes[i].name.clone(),
                        Entry {
                            job: id,
                            slurm_id: slurm_id.clone(),
                            submitted_at: at,
                            cluster: base.cluster.clone(),
                        },
                    );
                    sub.submitted.push(Tracked {
                        node: i,
                        job: id,
                        slurm_id,
                    });
                }
                // Saved after every sbatch: an error later must not forget submitted jobs.
                ledger.save(store)?;
            }
        }
        pending = later;
    }
    sub.lock = new_lock;
    sub.elapsed = clock.elapsed();
    Ok(sub)
}

/// An sbatch refusal after other jobs of this run went in: those keep running, and a rerun
/// submits only the rest (the ledger has them).
fn partly_submitted(e: Error, submitted: usize) -> Error {
    match e {
        Error::Slurm { message, help } if submitted > 0 => Error::slurm(
            format!(
                "{message} ({submitted} job(s) of this run were submitted before it and stay queued: `cegraph status` shows them; after fixing, a rerun submits only the rest)"
            ),
            help,
        ),
        e => e,
    }
}

/// A job about to be submitted again (same node, same upstream sources: the same id) must
/// not be judged by the result an earlier submission left: the new job writes its own.
fn forget_result(store: &Store, id: &Hash) -> Result<()> {
    let path = store.job_result_path(id);
    match fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(&path, e)),
        _ => Ok(()),
    }
}

/// The partition the jobs will go to, for the shared-filesystem check: an extra sbatch flag
/// wins over `slurm.partition` (it comes later on sbatch's command line), which wins over
/// sbatch's own SBATCH_PARTITION.
fn effective_partition(s: &SlurmSettings, env: Option<String>) -> Option<String> {
    let mut flags = s.sbatch.iter();
    let mut from_flags = None;
    while let Some(f) = flags.next() {
        if let Some(v) = f.strip_prefix("--partition=") {
            from_flags = Some(v.to_string());
        } else if f == "-p" || f == "--partition" {
            from_flags = flags.next().cloned();
        } else if let Some(v) = f.strip_prefix("-p") {
            from_flags = Some(v.to_string());
        }
    }
    from_flags
        .or_else(|| s.partition.clone())
        .or(env)
        .filter(|p| !p.is_empty())
}

/// The jobs a node's job waits for.
fn upstream_jobs(p: &Pipeline, i: usize, plan: &[Option<Plan>]) -> Vec<Hash> {
    p.nodes[i]
        .upstream
        .iter()
        .filter_map(|&u| match &plan[u] {
            Some(Plan::Job(id)) => Some(*id),
            _ => None,
        })
        .collect()
}

fn sbatch_args(
    s: &SlurmSettings,
    r: &Resources,
    name: &str,
    tasks: usize,
    deps: &BTreeSet<String>,
    log_dir: &Path,
    workspace: &Path,
) -> Vec<String> {
    let mut a = vec![
        format!("--job-name={name}"),
        format!("--array=0-{}", tasks - 1),
        format!("--chdir={}", workspace.display()),
        // Slurm expands `%` patterns in this path: a `%` of the path itself is written `%%`.
        format!(
            "--output={}/%A_%a.out",
            log_dir.display().to_string().replace('%', "%%")
        ),
        format!("--cpus-per-task={}", r.cpus.max(1)),
        // A failed upstream makes Slurm cancel the dependents instead of leaving them
        // pending forever.
        "--kill-on-invalid-dep=yes".into(),
    ];
    if !deps.is_empty() {
        a.push(format!(
            "--dependency=afterok:{}",
            deps.iter().cloned().collect::<Vec<_>>().join(":")
        ));
    }
    if r.gpus > 0 {
        a.push(format!("--gres=gpu:{}", r.gpus));
    }
    if let Some(m) = &r.mem {
        a.push(format!("--mem={m}"));
    }
    if let Some(t) = &r.time {
        a.push(format!("--time={t}"));
    }
    for (flag, v) in [
        ("partition", &s.partition),
        ("account", &s.account),
        ("qos", &s.qos),
    ] {
        if let Some(v) = v {
            a.push(format!("--{flag}={v}"));
        }
    }
    a.extend(s.sbatch.iter().cloned());
    a
}

/// The batch script of one array: task k runs the k-th job. Content-addressed, so
/// resubmitting the same jobs reuses the file.
fn write_script(
    dir: &Path,
    p: &Pipeline,
    stage: &str,
    jobs: &[Hash],
    exe: &Path,
    cache: &Path,
) -> Result<PathBuf> {
    let mut s = String::from("#!/bin/sh\n");
    s.push_str(&format!(
        "# cegraph: pipeline {}, stage {stage}, {} node(s). Task k runs the k-th job below.\n",
        p.name,
        jobs.len()
    ));
    s.push_str("set --");
    for id in jobs {
        s.push_str(" \\\n  ");
        s.push_str(&id.to_hex());
    }
    s.push_str("\nshift \"${SLURM_ARRAY_TASK_ID:-0}\"\n");
    s.push_str(&format!(
        "exec {} exec-node --cache {} \"$1\"\n",
        shell_quote(&exe.to_string_lossy()),
        shell_quote(&cache.to_string_lossy())
    ));
    let path = dir.join(format!("{}.sh", Hash::of_bytes(s.as_bytes()).short()));
    if !path.exists() {
        let tmp = dir.join(format!(".{}.tmp", std::process::id()));
        fs::write(&tmp, &s).map_err(|e| Error::io(&tmp, e))?;
        fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))?;
    }
    Ok(path)
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The pipeline's nodes that have a queued or running job: node name → (Slurm id, state).
pub fn queued(
    p: &Pipeline,
    store: &Store,
    cluster: &Cluster,
) -> Result<BTreeMap<String, (String, JobState)>> {
    let ledger = Ledger::load(store, p);
    if ledger.nodes.is_empty() {
        return Ok(BTreeMap::new());
    }
    cluster.remember_clusters(ledger.clusters());
    // `status` and `cancel` are interactive: a short retry, not the long wait's patience.
    let patience = Patience::from_env()?.squeue.min(Duration::from_secs(15));
    let live = cluster.jobs_patiently(&job_name_prefix(p), patience)?;
    Ok(ledger
        .nodes
        .iter()
        .filter_map(|(name, e)| {
            let s = live.get(&e.slurm_id).filter(|s| s.is_active())?;
            Some((name.clone(), (e.slurm_id.clone(), s.clone())))
        })
        .collect())
}

/// Cancel every queued or running job of this pipeline; returns the Slurm ids cancelled.
pub fn cancel(p: &Pipeline, store: &Store, cluster: &Cluster) -> Result<Vec<String>> {
    let ids: Vec<String> = queued(p, store, cluster)?
        .into_values()
        .map(|(id, _)| id)
        .collect();
    cluster.cancel(&ids)?;
    Ok(ids)
}

fn now_s() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_and_settings_become_sbatch_flags() {
        let settings = SlurmSettings {
            partition: Some("gpu".into()),
            account: Some("lab".into()),
            qos: None,
            sbatch: vec!["--constraint=a100".into()],
            shared_fs: false,
        };
        let r = Resources {
            cpus: 8,
            gpus: 2,
            mem: Some("64G".into()),
            time: Some("1-00:00:00".into()),
        };
        let deps: BTreeSet<String> = ["12_0".to_string(), "9_3".to_string()].into();
        let a = sbatch_args(
            &settings,
            &r,
            "cegraph:ab:train",
            3,
            &deps,
            Path::new("/c/slurm/logs"),
            Path::new("/ws"),
        );
        for flag in [
            "--job-name=cegraph:ab:train",
            "--array=0-2",
            "--chdir=/ws",
            "--output=/c/slurm/logs/%A_%a.out",
            "--cpus-per-task=8",
            "--kill-on-invalid-dep=yes",
            "--dependency=afterok:12_0:9_3",
            "--gres=gpu:2",
            "--mem=64G",
            "--time=1-00:00:00",
            "--partition=gpu",
            "--account=lab",
            "--constraint=a100",
        ] {
            assert!(a.contains(&flag.to_string()), "{flag} missing from {a:?}");
        }
        assert!(!a.iter().any(|f| f.starts_with("--qos")));
        let none = sbatch_args(
            &SlurmSettings::default(),
            &Resources::default(),
            "n",
            1,
            &BTreeSet::new(),
            Path::new("/l"),
            Path::new("/w"),
        );
        assert!(
            !none
                .iter()
                .any(|f| f.starts_with("--dependency") || f.starts_with("--gres"))
        );
    }

    #[test]
    fn a_percent_sign_in_the_cache_path_is_escaped_for_slurms_output_pattern() {
        let a = sbatch_args(
            &SlurmSettings::default(),
            &Resources::default(),
            "n",
            1,
            &BTreeSet::new(),
            Path::new("/data/100%/cache/slurm/logs"),
            Path::new("/w"),
        );
        assert!(
            a.contains(&"--output=/data/100%%/cache/slurm/logs/%A_%a.out".to_string()),
            "{a:?}"
        );
    }

    #[test]
    fn the_shared_filesystem_check_asks_about_the_partition_sbatch_will_use() {
        let with = |partition: Option<&str>, flags: &[&str]| SlurmSettings {
            partition: partition.map(String::from),
            sbatch: flags.iter().map(|f| f.to_string()).collect(),
            ..SlurmSettings::default()
        };
        let env = || Some("from-env".to_string());
        assert_eq!(effective_partition(&with(None, &[]), None), None);
        assert_eq!(
            effective_partition(&with(None, &[]), env()).as_deref(),
            Some("from-env")
        );
        assert_eq!(
            effective_partition(&with(Some("gpu"), &[]), env()).as_deref(),
            Some("gpu")
        );
        for flags in [
            &["--partition=big"][..],
            &["-p", "big"],
            &["-pbig"],
            &["--partition", "big"],
        ] {
            assert_eq!(
                effective_partition(&with(Some("gpu"), flags), env()).as_deref(),
                Some("big"),
                "{flags:?}"
            );
        }
    }
}
