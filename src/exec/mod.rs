//! The scheduler: walks the DAG, skips what is up to date, restores what the cache
//! has, and runs the rest in parallel within each node's resources.

pub mod cpu_numerics;
pub mod handoff;
pub mod job;
pub mod metrics;
pub mod metrics_refresh;
pub mod plan;
pub mod platform;
pub mod procs;
pub mod slurm;
pub mod verify;

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::graph::Dag;
use crate::hash::Hash;
use crate::remote::RemoteCache;
use crate::spec::Pipeline;
use crate::store::lock::{LockEntry, LockFile};
use crate::store::{OutputRecord, Store};
use job::{JobFailure, JobRequest, run_node};
use plan::{Verdict, judge, key_inputs, upstream_inputs};

/// Set on SIGINT/SIGTERM/SIGHUP ([`procs::interrupt`]): start no more nodes; running ones
/// are being terminated.
pub static INTERRUPTED: AtomicBool = AtomicBool::new(false);

pub struct RunOptions {
    /// CPU slots shared by running nodes.
    pub jobs: usize,
    pub targets: Vec<usize>,
    pub dry_run: bool,
    /// Nodes to run even if up to date, by node index (`run --force…`); missing = not forced.
    /// Their consumers run only if the outputs change (early cutoff).
    pub force: Vec<bool>,
    pub keep_going: bool,
    /// Restore what the cache has but run nothing: after a Slurm run, whose jobs put their
    /// results in the cache, this brings the workspace and lock file up to date.
    pub collect_only: bool,
    /// The binary that runs kind nodes (`exec-node`).
    pub exe: PathBuf,
    /// `run --remote`: a stale node is downloaded from here instead of run when it has the key.
    pub remote: Option<Arc<dyn RemoteCache>>,
    /// `run --push`: each node that ran is uploaded to `remote`.
    pub push: bool,
    /// `run --locked`: a corrupt cache object fails the run instead of re-running its node.
    pub locked: bool,
}

impl RunOptions {
    /// Whether node `i` is to run even if up to date.
    pub fn forced(&self, i: usize) -> bool {
        self.force.get(i).copied().unwrap_or(false)
    }
}

/// What happened to one node in a run.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    UpToDate,
    Restored,
    /// Downloaded from the remote cache (`run --remote`) instead of run.
    Fetched,
    Ran {
        seconds: f64,
    },
    Failed {
        message: String,
        log: PathBuf,
    },
    /// Running when cegraph was interrupted (SIGINT, SIGTERM, SIGHUP), and stopped.
    Interrupted {
        log: PathBuf,
    },
    /// An upstream failed or the run stopped first.
    Skipped,
    /// `--dry-run`: would run, for these reasons.
    WouldRun {
        why: Vec<String>,
    },
    WouldRestore {
        why: Vec<String>,
    },
}

/// Events for a progress display.
pub trait Observer: Sync {
    fn started(&self, _node: &str) {}
    fn finished(&self, _node: &str, _outcome: &Outcome) {}
    /// A chunk of a running node's combined stdout and stderr (not split at lines).
    fn output(&self, _node: &str, _bytes: &[u8]) {}
    /// Something the user must know that does not stop the run (a corrupt cache object).
    fn warning(&self, node: &str, message: &str) {
        eprintln!("warning: {node}: {message}");
    }
}

/// An observer that shows nothing (`status`, collecting Slurm results).
pub struct Silent;
impl Observer for Silent {}

/// What a run did. A failed or interrupted run still reports what finished (in `lock`),
/// with the failure in `error`.
pub struct RunSummary {
    pub outcomes: Vec<(String, Outcome)>,
    pub lock: LockFile,
    pub elapsed: Duration,
    pub error: Option<Error>,
}

impl RunSummary {
    pub fn count(&self, f: impl Fn(&Outcome) -> bool) -> usize {
        self.outcomes.iter().filter(|(_, o)| f(o)).count()
    }
}

enum Done {
    Ok(usize, Vec<OutputRecord>, Hash, Outcome),
    Failed(usize, JobFailure),
}

/// Run (or, with `dry_run`, plan) the pipeline's stale nodes. The returned lock file holds
/// every node that is now up to date; the caller decides whether to write it.
pub fn run(
    p: &Pipeline,
    dag: &Dag,
    store: &Store,
    lock: &LockFile,
    opts: &RunOptions,
    observer: &dyn Observer,
) -> Result<RunSummary> {
    let clock = Instant::now();
    let n = p.nodes.len();
    let selected = dag.closure(&opts.targets);
    let gpu_total = if p.nodes.iter().any(|x| x.resources.gpus > 0) {
        count_gpus()
    } else {
        0
    };
    let mut new_lock = plan::carried_over(p, lock);
    let mut outputs: Vec<Option<Vec<OutputRecord>>> = vec![None; n];
    let mut outcome: Vec<Option<Outcome>> = vec![None; n];
    let mut waiting: Vec<usize> = p.nodes.iter().map(|x| x.upstream.len()).collect();
    let mut ready: VecDeque<usize> = dag
        .order
        .iter()
        .copied()
        .filter(|&i| waiting[i] == 0)
        .collect();
    let mut runnable: VecDeque<(usize, JobRequest)> = VecDeque::new();
    let (tx, rx) = mpsc::channel::<Done>();
    let mut free_cpus = opts.jobs.max(1);
    let mut free_gpus = gpu_total;
    let mut running = 0usize;
    let mut stop = false;
    let mut failures: Vec<String> = Vec::new();

    std::thread::scope(|scope| -> Result<()> {
        loop {
            // Judge every ready node; up-to-date ones release their consumers at once.
            while let Some(i) = ready.pop_front() {
                if !selected[i] {
                    continue;
                }
                let node = &p.nodes[i];
                if let Some(&u) = node.upstream.iter().find(|&&u| outputs[u].is_none()) {
                    // In a dry run an upstream that would run leaves this node's key unknown.
                    let o = if opts.dry_run && matches!(outcome[u], Some(Outcome::WouldRun { .. }))
                    {
                        Outcome::WouldRun {
                            why: vec![format!("upstream {} will run", p.nodes[u].name)],
                        }
                    } else {
                        Outcome::Skipped
                    };
                    observer.finished(&node.name, &o);
                    outcome[i] = Some(o);
                    release(i, dag, &mut waiting, &mut ready);
                    continue;
                }
                if stop {
                    outcome[i] = Some(Outcome::Skipped);
                    continue;
                }
                let inputs = key_inputs(p, node, store, &|u| outputs[u].clone())?;
                let key = inputs.key();
                let verdict = judge(
                    p,
                    store,
                    &inputs,
                    &key,
                    lock.nodes.get(&node.name),
                    opts.forced(i),
                );
                let forced = opts.forced(i);
                let (verdict, fetched) = fetch_from_remote(p, opts, forced, store, &key, verdict)?;
                if let Verdict::Restore(rec, _) = &verdict
                    && !opts.dry_run
                {
                    let from = if fetched {
                        "the remote's"
                    } else {
                        "the cache's"
                    };
                    let locked = lock.nodes.get(&node.name);
                    warn_if_rewritten(observer, &node.name, locked, &key, &rec.outputs, from);
                }
                // From here on a non-dry-run Restore verdict means "restored".
                let was_restore = matches!(verdict, Verdict::Restore(..));
                let verdict = restore_checked(p, store, node, verdict, opts, observer)?;
                // A restore that met a corrupt object (quarantined by now) asks the remote for
                // a good copy before computing the node again.
                let (verdict, fetched) = match verdict {
                    Verdict::Run(why) if was_restore && !fetched => {
                        let (v, f) =
                            fetch_from_remote(p, opts, forced, store, &key, Verdict::Run(why))?;
                        (restore_checked(p, store, node, v, opts, observer)?, f)
                    }
                    v => (v, fetched),
                };
                let declared_metrics_failed = match &verdict {
                    Verdict::UpToDate | Verdict::Restore(..) if !opts.dry_run => {
                        metrics_refresh::refresh(p, store, node, &key).err()
                    }
                    _ => None,
                };
                if let Some(message) = declared_metrics_failed {
                    outcome[i] = Some(failed_before_running(
                        node,
                        message,
                        &mut failures,
                        observer,
                    ));
                    stop |= !opts.keep_going;
                    continue;
                }
                match verdict {
                    Verdict::UpToDate => {
                        outputs[i] = lock.nodes.get(&node.name).map(|e| e.outs.clone());
                        observer.finished(&node.name, &Outcome::UpToDate);
                        outcome[i] = Some(Outcome::UpToDate);
                        release(i, dag, &mut waiting, &mut ready);
                    }
                    Verdict::Restore(..) | Verdict::Run(_) if opts.dry_run => {
                        let (o, outs) = match verdict {
                            Verdict::Restore(rec, why) => {
                                (Outcome::WouldRestore { why }, Some(rec.outputs))
                            }
                            Verdict::Run(why) => (Outcome::WouldRun { why }, None),
                            Verdict::UpToDate => unreachable!(),
                        };
                        observer.finished(&node.name, &o);
                        outcome[i] = Some(o);
                        // Downstream keys are unknown until this node has run.
                        outputs[i] = outs;
                        release(i, dag, &mut waiting, &mut ready);
                    }
                    Verdict::Restore(rec, _) => {
                        new_lock.nodes.insert(
                            node.name.clone(),
                            LockEntry {
                                key,
                                outs: rec.outputs.clone(),
                            },
                        );
                        outputs[i] = Some(rec.outputs);
                        let o = if fetched {
                            Outcome::Fetched
                        } else {
                            Outcome::Restored
                        };
                        observer.finished(&node.name, &o);
                        outcome[i] = Some(o);
                        release(i, dag, &mut waiting, &mut ready);
                    }
                    Verdict::Run(_) if opts.collect_only => {
                        outcome[i] = Some(Outcome::Skipped);
                        release(i, dag, &mut waiting, &mut ready);
                    }
                    Verdict::Run(_) => {
                        let gpus = node.resources.gpus as usize;
                        if gpus > gpu_total {
                            let message =
                                format!("needs {gpus} GPU(s) but this machine has {gpu_total}");
                            outcome[i] = Some(failed_before_running(
                                node,
                                message,
                                &mut failures,
                                observer,
                            ));
                            stop |= !opts.keep_going;
                            continue;
                        }
                        let upstream = upstream_inputs(p, node, &outputs);
                        runnable.push_back((
                            i,
                            JobRequest {
                                pipeline: p,
                                node,
                                inputs,
                                key,
                                upstream,
                                threads: platform::node_threads(node),
                                gpus,
                                exe: &opts.exe,
                                observer,
                            },
                        ));
                    }
                }
            }
            // Start what fits in the free slots, in order.
            if INTERRUPTED.load(Ordering::Relaxed) {
                stop = true;
            }
            while !stop
                && let Some(pos) = runnable
                    .iter()
                    .position(|(_, r)| slots(r.threads, opts) <= free_cpus && r.gpus <= free_gpus)
            {
                let (i, req) = runnable.remove(pos).unwrap();
                free_cpus -= slots(req.threads, opts);
                free_gpus -= req.gpus;
                running += 1;
                observer.started(&p.nodes[i].name);
                let tx = tx.clone();
                scope.spawn(move || {
                    let key = req.key;
                    let started = Instant::now();
                    let done = match run_node(store, req) {
                        Ok(rec) => Done::Ok(
                            i,
                            rec.outputs,
                            key,
                            Outcome::Ran {
                                seconds: started.elapsed().as_secs_f64(),
                            },
                        ),
                        Err(f) => Done::Failed(i, f),
                    };
                    let _ = tx.send(done);
                });
            }
            if stop {
                for (i, _) in runnable.drain(..) {
                    outcome[i] = Some(Outcome::Skipped);
                }
            }
            if running == 0 && ready.is_empty() && (runnable.is_empty() || stop) {
                break;
            }
            if running == 0 && !runnable.is_empty() {
                // Only possible if a node asks for more than exists; resources are clamped.
                unreachable!("runnable nodes but nothing running");
            }
            // Wait for a node to finish (waking now and then to notice Ctrl-C).
            let done = match rx.recv_timeout(Duration::from_millis(200)) {
                Ok(d) => d,
                Err(mpsc::RecvTimeoutError::Timeout) => continue,
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            };
            running -= 1;
            let i = match &done {
                Done::Ok(i, ..) | Done::Failed(i, _) => *i,
            };
            let node = &p.nodes[i];
            free_cpus += slots(platform::node_threads(node), opts);
            free_gpus += node.resources.gpus as usize;
            match done {
                Done::Ok(i, outs, key, o) => {
                    let locked = lock.nodes.get(&node.name);
                    warn_if_rewritten(observer, &node.name, locked, &key, &outs, "this run's");
                    if opts.push
                        && let Some(remote) = &opts.remote
                    {
                        remote.push(store, &key)?;
                    }
                    new_lock.nodes.insert(
                        node.name.clone(),
                        LockEntry {
                            key,
                            outs: outs.clone(),
                        },
                    );
                    outputs[i] = Some(outs);
                    observer.finished(&node.name, &o);
                    outcome[i] = Some(o);
                    release(i, dag, &mut waiting, &mut ready);
                }
                Done::Failed(i, f) if INTERRUPTED.load(Ordering::SeqCst) => {
                    // Killed by the interrupt (or ending as it came): not a failure of the node.
                    let o = Outcome::Interrupted { log: f.log };
                    observer.finished(&node.name, &o);
                    outcome[i] = Some(o);
                    stop = true;
                    release(i, dag, &mut waiting, &mut ready);
                }
                Done::Failed(i, f) => {
                    failures.push(format!(
                        "{}: {} (log: {})",
                        node.name,
                        f.message,
                        f.log.display()
                    ));
                    let o = Outcome::Failed {
                        message: f.message,
                        log: f.log,
                    };
                    observer.finished(&node.name, &o);
                    outcome[i] = Some(o);
                    stop |= !opts.keep_going;
                    // Consumers are released too, and skip themselves: their upstream has no outputs.
                    release(i, dag, &mut waiting, &mut ready);
                }
            }
        }
        Ok(())
    })?;

    let outcomes: Vec<(String, Outcome)> = (0..n)
        .filter(|&i| selected[i])
        .map(|i| {
            (
                p.nodes[i].name.clone(),
                outcome[i].clone().unwrap_or(Outcome::Skipped),
            )
        })
        .collect();
    let summary = RunSummary {
        outcomes,
        lock: new_lock,
        elapsed: clock.elapsed(),
        error: None,
    };
    let _ = store.stat.save();
    let mut summary = summary;
    if INTERRUPTED.load(Ordering::Relaxed) {
        summary.error = Some(Error::Interrupted {
            done: summary.count(|o| {
                matches!(
                    o,
                    Outcome::Ran { .. } | Outcome::Restored | Outcome::Fetched
                )
            }),
        });
    } else if !failures.is_empty() {
        summary.error = Some(Error::NodesFailed {
            count: failures.len(),
            first: failures[0].clone(),
        });
    }
    Ok(summary)
}

/// A node that fails before any command runs (nothing logged): reported, counted, its outcome.
fn failed_before_running(
    node: &crate::spec::Node,
    message: String,
    failures: &mut Vec<String>,
    observer: &dyn Observer,
) -> Outcome {
    failures.push(format!("{}: {message}", node.name));
    let failed = Outcome::Failed {
        message,
        log: PathBuf::new(),
    };
    observer.finished(&node.name, &failed);
    failed
}

/// `run --remote`: a node that would run is downloaded instead when the remote has its key
/// (turning the verdict into a restore); `true` when that happened. The remote's run is judged
/// as a local restore is: its external (uncached) outputs, such as a `source`'s file, must
/// hash here to what they were there, else the node runs here.
fn fetch_from_remote(
    p: &Pipeline,
    opts: &RunOptions,
    forced: bool,
    store: &Store,
    key: &Hash,
    verdict: Verdict,
) -> Result<(Verdict, bool)> {
    match (verdict, &opts.remote) {
        (Verdict::Run(mut why), Some(remote)) if !opts.dry_run && !forced => {
            let Some(rec) = remote.record(key)? else {
                return Ok((Verdict::Run(why), false));
            };
            let external: Vec<OutputRecord> =
                rec.outputs.iter().filter(|o| !o.cached).cloned().collect();
            let differ = plan::damaged_outputs(&p.workspace, store, &external);
            if !differ.is_empty() {
                why.push(format!(
                    "the remote's result was made from other external data ({})",
                    differ.join(", ")
                ));
                return Ok((Verdict::Run(why), false));
            }
            remote.fetch(store, &rec)?;
            Ok((Verdict::Restore(rec.into(), why), true))
        }
        (verdict, _) => Ok((verdict, false)),
    }
}

/// Outputs that give a node other hashes than its lock entry under the same key rewrite the
/// lock file: say so, naming old → new (the node is nondeterministic, or the lock file came
/// from a machine whose result never reached this cache or remote).
fn warn_if_rewritten(
    observer: &dyn Observer,
    node: &str,
    locked: Option<&LockEntry>,
    key: &Hash,
    outs: &[OutputRecord],
    from: &str,
) {
    let Some(entry) = locked.filter(|e| e.key == *key) else {
        return;
    };
    // An external output (a `source`'s file) is the user's data, outside the key: that it
    // changed is not the node's doing.
    let changed: Vec<String> = outs
        .iter()
        .filter(|o| o.cached)
        .filter_map(|o| {
            let old = entry.outs.iter().find(|e| e.path == o.path);
            match old {
                Some(e) if e.hash == o.hash => None,
                Some(e) => Some(format!(
                    "{} {} → {}",
                    o.path,
                    e.hash.short(),
                    o.hash.short()
                )),
                None => Some(format!("{} (new) → {}", o.path, o.hash.short())),
            }
        })
        .collect();
    if changed.is_empty() {
        return;
    }
    observer.warning(
        node,
        &format!(
            "the lock file's hashes for key {} are replaced by {from} ({}): the node gave \
         different outputs for the same inputs (nondeterministic)",
            key.short(),
            changed.join("; ")
        ),
    );
}

/// Carry out a Restore verdict, checking every byte. A corrupt cache object (now quarantined)
/// turns the verdict into Run, with a warning; with `--locked` it fails the run instead.
fn restore_checked(
    p: &Pipeline,
    store: &Store,
    node: &crate::spec::Node,
    verdict: Verdict,
    opts: &RunOptions,
    observer: &dyn Observer,
) -> Result<Verdict> {
    let Verdict::Restore(rec, why) = verdict else {
        return Ok(verdict);
    };
    if opts.dry_run {
        return Ok(Verdict::Restore(rec, why));
    }
    match store.restore_outputs(&p.workspace, &rec.outputs) {
        Ok(()) => Ok(Verdict::Restore(rec, why)),
        Err(e @ Error::CorruptObject(_)) if !opts.locked => {
            let next = if opts.remote.is_some() {
                "fetching a good copy from the remote (or, if it lacks one, running the node again)"
            } else {
                "running the node again"
            };
            observer.warning(&node.name, &format!("{e}; {next}"));
            let mut why = why;
            why.push("a cache object was corrupt".into());
            Ok(Verdict::Run(why))
        }
        Err(e) => Err(e),
    }
}

/// The `-j` slots a node holds while it runs. A node always runs with `resources.cpus`
/// threads (its key says so; `-j` must not change results), so one asking for more than `-j`
/// takes every slot and runs alone, with its own thread count.
fn slots(threads: usize, opts: &RunOptions) -> usize {
    threads.clamp(1, opts.jobs.max(1))
}

fn release(i: usize, dag: &Dag, waiting: &mut [usize], ready: &mut VecDeque<usize>) {
    for d in dag.downstream(i) {
        waiting[d] -= 1;
        if waiting[d] == 0 {
            ready.push_back(d);
        }
    }
}

/// GPUs this process may use: `CUDA_VISIBLE_DEVICES`, else what `nvidia-smi -L` lists.
pub fn count_gpus() -> usize {
    if let Ok(v) = std::env::var("CUDA_VISIBLE_DEVICES") {
        return v
            .split(',')
            .filter(|s| !s.trim().is_empty() && s.trim() != "-1")
            .count();
    }
    std::process::Command::new("nvidia-smi")
        .arg("-L")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .filter(|l| l.starts_with("GPU"))
                .count()
        })
        .unwrap_or(0)
}
