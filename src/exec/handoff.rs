//! Nodes handed to another machine (a Slurm job): the job file the submitter writes into the
//! shared cache, and the `cegraph exec-node <id>` side that runs it and writes its result.
//!
//! A downstream node's key depends on its upstream's output bytes, which do not exist yet
//! when the whole DAG is submitted. So a job names the node and where each upstream's outputs
//! will come from (known now, or another job's result); the job computes its key when it
//! starts and exits as a cache hit if that key is already in the cache (early cutoff).

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::error::{Error, IoContext, Result};
use crate::hash::Hash;
use crate::spec::{Pipeline, Snapshot};
use crate::store::{OutputRecord, Store};

use super::job::{JobRequest, hostname, run_node};
use super::plan::{Verdict, judge, key_inputs, upstream_inputs};

/// Bumped when [`NodeJob`] or [`JobResult`] change incompatibly.
pub const FORMAT: u32 = 1;

/// One node to run elsewhere. Its id is the hash of its JSON: the same node with the same
/// upstream sources is the same job (which makes resubmission idempotent).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeJob {
    pub format: u32,
    /// The pipeline snapshot (see [`Store::snapshot_path`]).
    pub pipeline: Hash,
    pub node: String,
    /// One per `node.upstream`, in the same order.
    pub upstream: Vec<UpstreamSource>,
    pub threads: usize,
    pub gpus: usize,
    /// `--force`: run even if the key is cached; the stamp makes the job new.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force: Option<u64>,
}

/// Where an upstream node's outputs come from.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UpstreamSource {
    /// Already up to date when the job was submitted.
    Known(Vec<OutputRecord>),
    /// Produced by another job (which the scheduler makes this one wait for).
    Job(Hash),
}

/// What a handed-over node did, written by the job itself (so cegraph never needs Slurm's
/// accounting database to know how a job ended).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobResult {
    pub format: u32,
    pub job: Hash,
    pub node: String,
    pub outcome: JobOutcome,
    pub host: String,
    /// Seconds since the Unix epoch.
    pub started_at: f64,
    pub finished_at: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum JobOutcome {
    Ran {
        key: Hash,
        outputs: Vec<OutputRecord>,
        seconds: f64,
    },
    /// The key was already in the cache (an upstream reproduced identical bytes).
    CacheHit {
        key: Hash,
        outputs: Vec<OutputRecord>,
    },
    Failed {
        message: String,
        log: Option<PathBuf>,
    },
}

impl JobResult {
    pub fn outputs(&self) -> Option<&[OutputRecord]> {
        match &self.outcome {
            JobOutcome::Ran { outputs, .. } | JobOutcome::CacheHit { outputs, .. } => Some(outputs),
            JobOutcome::Failed { .. } => None,
        }
    }
}

/// Store the pipeline snapshot once; returns its id.
pub fn write_snapshot(store: &Store, p: &Pipeline) -> Result<Hash> {
    let bytes = serde_json::to_vec(&p.snapshot()).expect("snapshots serialise");
    let id = Hash::of_bytes(&bytes);
    let path = store.snapshot_path(&id);
    if !path.exists() {
        store.write_atomic(&path, &bytes)?;
    }
    Ok(id)
}

/// Store a job file; returns its id. A job already stored is not rewritten.
pub fn write_job(store: &Store, job: &NodeJob) -> Result<Hash> {
    let bytes = serde_json::to_vec(job).expect("jobs serialise");
    let id = Hash::of_bytes(&bytes);
    let path = store.job_path(&id);
    if !path.exists() {
        store.write_atomic(&path, &bytes)?;
    }
    Ok(id)
}

pub fn read_job(store: &Store, id: &Hash) -> Option<NodeJob> {
    let bytes = fs::read(store.job_path(id)).ok()?;
    serde_json::from_slice::<NodeJob>(&bytes)
        .ok()
        .filter(|j| j.format == FORMAT)
}

/// Whether the queued job `prev` does the same work as `new`: the same node definition and,
/// for each upstream, the same source — or a finished upstream job whose outputs are what
/// `new` now knows. (The pipeline file may have been saved again with no change to this node.)
pub fn equivalent(
    store: &Store,
    prev: &Hash,
    new: &NodeJob,
    snapshots: &mut HashMap<Hash, Option<Pipeline>>,
) -> bool {
    let Some(old) = read_job(store, prev) else {
        return false;
    };
    if (&old.node, old.threads, old.gpus, old.force)
        != (&new.node, new.threads, new.gpus, new.force)
        || old.upstream.len() != new.upstream.len()
    {
        return false;
    }
    if old.pipeline != new.pipeline {
        let mut fingerprint = |id: &Hash| {
            snapshots
                .entry(*id)
                .or_insert_with(|| load_snapshot(store, id).ok())
                .as_ref()
                .and_then(|p| node_fingerprint(p, &new.node))
        };
        let (a, b) = (fingerprint(&old.pipeline), fingerprint(&new.pipeline));
        if a.is_none() || a != b {
            return false;
        }
    }
    old.upstream
        .iter()
        .zip(&new.upstream)
        .all(|pair| match pair {
            (UpstreamSource::Job(a), UpstreamSource::Job(b)) => a == b,
            (UpstreamSource::Known(a), UpstreamSource::Known(b)) => a == b,
            (UpstreamSource::Job(a), UpstreamSource::Known(b)) => {
                read_result(store, a).is_some_and(|r| r.outputs() == Some(b.as_slice()))
            }
            (UpstreamSource::Known(_), UpstreamSource::Job(_)) => false,
        })
}

/// A node's definition with its upstream named rather than numbered (numbers shift when
/// other stages are added).
fn node_fingerprint(p: &Pipeline, name: &str) -> Option<serde_json::Value> {
    let node = &p.nodes[p.node_index(name)?];
    let mut v = serde_json::to_value(node).ok()?;
    let names: Vec<&str> = node
        .upstream
        .iter()
        .map(|&u| p.nodes[u].name.as_str())
        .collect();
    v["upstream"] = serde_json::json!(names);
    v["line_col"] = serde_json::Value::Null;
    Some(v)
}

pub fn read_result(store: &Store, id: &Hash) -> Option<JobResult> {
    let bytes = fs::read(store.job_result_path(id)).ok()?;
    serde_json::from_slice::<JobResult>(&bytes)
        .ok()
        .filter(|r| r.format == FORMAT)
}

/// `cegraph exec-node <id>`: run a handed-over node and write its result. Returns the exit
/// code: 0 when the node's outputs are in the cache, 1 when it failed, 2 when the job
/// itself is unreadable.
pub fn execute(store: &Store, id: &Hash, exe: &Path) -> i32 {
    let started_at = now();
    let (job, p) = match load_job(store, id) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("cegraph exec-node: {e}");
            return 2;
        }
    };
    if let Some(done) = read_result(store, id).filter(|r| r.outputs().is_some()) {
        // A requeued job whose first attempt finished: nothing to do.
        eprintln!(
            "cegraph exec-node: {} already finished on {}",
            done.node, done.host
        );
        return 0;
    }
    let outcome = match run_job(store, &job, &p, exe) {
        Ok(o) => o,
        Err(message) => JobOutcome::Failed { message, log: None },
    };
    // Stopped from outside (scancel, a time limit, pre-emption): Slurm's own state says which,
    // so the job leaves no result of its own that would call it a failure of the node.
    let stopped = super::INTERRUPTED.load(std::sync::atomic::Ordering::SeqCst)
        || matches!(&outcome, JobOutcome::Failed { message, .. } if message == super::job::TERMINATED);
    if stopped {
        eprintln!(
            "cegraph exec-node: {}: stopped by a signal (cancelled, timed out or pre-empted)",
            job.node
        );
        return 143;
    }
    let failed = matches!(outcome, JobOutcome::Failed { .. });
    if let JobOutcome::Failed { message, log } = &outcome {
        eprintln!("cegraph exec-node: {}: {message}", job.node);
        if let Some(log) = log {
            eprintln!("cegraph exec-node: log: {}", log.display());
        }
    }
    let result = JobResult {
        format: FORMAT,
        job: *id,
        node: job.node.clone(),
        outcome,
        host: hostname(),
        started_at,
        finished_at: now(),
    };
    let bytes = serde_json::to_vec_pretty(&result).expect("results serialise");
    if let Err(e) = store.write_atomic(&store.job_result_path(id), &bytes) {
        eprintln!("cegraph exec-node: cannot write the result: {e}");
        return 2;
    }
    let _ = store.stat.save();
    i32::from(failed)
}

fn load_job(store: &Store, id: &Hash) -> Result<(NodeJob, Pipeline)> {
    let path = store.job_path(id);
    let bytes = fs::read(&path).at(&path)?;
    let job: NodeJob = serde_json::from_slice(&bytes).map_err(|e| Error::Cache {
        path: path.clone(),
        message: format!("not a job file: {e}"),
    })?;
    if job.format != FORMAT {
        return Err(Error::Cache {
            path,
            message: format!(
                "job format {} (this cegraph reads {FORMAT}); resubmit with this version",
                job.format
            ),
        });
    }
    let p = load_snapshot(store, &job.pipeline)?;
    Ok((job, p))
}

fn load_snapshot(store: &Store, id: &Hash) -> Result<Pipeline> {
    let path = store.snapshot_path(id);
    let bytes = fs::read(&path).at(&path)?;
    let snap: Snapshot = serde_json::from_slice(&bytes).map_err(|e| Error::Cache {
        path,
        message: format!("not a pipeline snapshot: {e}"),
    })?;
    Ok(Pipeline::from_snapshot(snap))
}

fn run_job(
    store: &Store,
    job: &NodeJob,
    p: &Pipeline,
    exe: &Path,
) -> std::result::Result<JobOutcome, String> {
    let i = p
        .node_index(&job.node)
        .ok_or_else(|| format!("the pipeline snapshot has no node {}", job.node))?;
    let node = &p.nodes[i];
    if node.upstream.len() != job.upstream.len() {
        return Err("the job file does not match its pipeline snapshot".into());
    }
    // Upstream outputs: known at submission, or from the upstream job's result.
    let mut outs: Vec<Option<Vec<OutputRecord>>> = vec![None; p.nodes.len()];
    for (&u, source) in node.upstream.iter().zip(&job.upstream) {
        outs[u] = Some(match source {
            UpstreamSource::Known(o) => o.clone(),
            UpstreamSource::Job(up) => await_result(store, up)
                .and_then(|r| r.outputs().map(<[_]>::to_vec))
                .ok_or_else(|| {
                    format!(
                        "upstream {} has no successful result (it failed or was cancelled)",
                        p.nodes[u].name
                    )
                })?,
        });
    }
    let inputs = key_inputs(p, node, store, &|u| outs[u].clone()).map_err(|e| e.to_string())?;
    let key = inputs.key();
    if job.force.is_none()
        && let Verdict::Restore(rec, _) = judge(p, store, &inputs, &key, None, false)
    {
        match store.restore_outputs(&p.workspace, &rec.outputs) {
            Ok(()) => {
                return Ok(JobOutcome::CacheHit {
                    key,
                    outputs: rec.outputs,
                });
            }
            // Quarantined: run the node, which stores good bytes under the name again.
            Err(e @ crate::error::Error::CorruptObject(_)) => {
                eprintln!("warning: {}: {e}; running the node again", node.name);
            }
            Err(e) => return Err(e.to_string()),
        }
    }
    let upstream = upstream_inputs(p, node, &outs);
    let clock = Instant::now();
    let req = JobRequest {
        pipeline: p,
        node,
        inputs,
        key,
        upstream,
        threads: job.threads,
        gpus: job.gpus,
        exe,
        observer: &super::Silent,
    };
    match run_node(store, req) {
        Ok(rec) => Ok(JobOutcome::Ran {
            key,
            outputs: rec.outputs,
            seconds: clock.elapsed().as_secs_f64(),
        }),
        Err(f) => Ok(JobOutcome::Failed {
            message: f.message,
            log: Some(f.log).filter(|l| l.exists()),
        }),
    }
}

/// An upstream job's result. Slurm starts this job only once that one succeeded (afterok),
/// but a result written on another node can reach this one late through a shared filesystem
/// (NFS caches a missing name for up to a minute): a missing one is waited for, bounded by
/// `CEGRAPH_SLURM_RESULT_WAIT`.
fn await_result(store: &Store, id: &Hash) -> Option<JobResult> {
    let patience = super::slurm::Patience::from_env()
        .map(|p| p.result)
        .unwrap_or(Duration::from_secs(60));
    let deadline = Instant::now() + patience;
    loop {
        let found = read_result(store, id);
        if found.is_some() || Instant::now() >= deadline {
            return found;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}
