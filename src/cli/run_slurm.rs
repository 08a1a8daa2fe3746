//! `cegraph run --executor slurm [--wait]`: submit the stale part of the DAG as Slurm jobs,
//! optionally follow them, then bring the lock file up to date from the shared cache.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use indicatif::ProgressBar;

use crate::error::{Error, Result};
use crate::exec::slurm::cluster::Cluster;
use crate::exec::slurm::{self, Counts, JobEnd, SlurmOptions, WaitObserver};
use crate::exec::{Outcome, RunOptions};
use crate::spec::model::SlurmSettings;
use crate::store::lock::LockFile;

use super::{Loaded, check_locked};

/// The `run` flags that matter here.
pub struct How {
    pub force: Vec<bool>,
    pub locked: bool,
    pub quiet: bool,
}

/// Slurm flags; each overrides the pipeline's `slurm:` block.
#[derive(clap::Args)]
pub struct SlurmArgs {
    /// With --executor slurm: wait for the jobs (with progress), then update the lock file.
    /// Without it the jobs are submitted and cegraph returns.
    #[arg(long)]
    wait: bool,
    /// Slurm partition (`--partition`).
    #[arg(long, value_name = "NAME")]
    partition: Option<String>,
    /// Slurm account (`--account`).
    #[arg(long, value_name = "NAME")]
    account: Option<String>,
    /// Slurm quality of service (`--qos`).
    #[arg(long, value_name = "NAME")]
    qos: Option<String>,
    /// An extra sbatch flag, e.g. --sbatch-arg=--constraint=a100 (repeatable).
    #[arg(long, value_name = "FLAG", allow_hyphen_values = true)]
    sbatch_arg: Vec<String>,
    /// Longest pause between two polls of the queue while waiting, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0)]
    poll_max: f64,
}

pub fn run(l: &Loaded, targets: Vec<usize>, args: How, s: &SlurmArgs) -> Result<ExitCode> {
    let p = &l.pipeline;
    let _guard = super::pipeline_lock(&l.store, p)?;
    let lock_path = p.lock_path();
    let lock = LockFile::read(&lock_path)?;
    let file = &p.slurm;
    let settings = SlurmSettings {
        partition: s.partition.clone().or_else(|| file.partition.clone()),
        account: s.account.clone().or_else(|| file.account.clone()),
        qos: s.qos.clone().or_else(|| file.qos.clone()),
        sbatch: file.sbatch.iter().chain(&s.sbatch_arg).cloned().collect(),
        shared_fs: file.shared_fs,
    };
    let exe = std::env::current_exe().map_err(|e| Error::io("current executable", e))?;
    let opts = SlurmOptions {
        settings,
        targets: targets.clone(),
        force: args.force.clone(),
        exe,
    };
    let cluster = Cluster::new();
    let sub = slurm::submit(p, &l.dag, &l.store, &lock, &opts, &cluster)?;
    let say = |line: String| {
        if !args.quiet {
            sayln!("{line}");
        }
    };
    // Report the submission, stage by stage.
    let mut by_stage: Vec<(String, Vec<String>)> = Vec::new();
    for t in &sub.submitted {
        let stage = &p.nodes[t.node].stage;
        let base = t
            .slurm_id
            .split('_')
            .next()
            .unwrap_or(&t.slurm_id)
            .to_string();
        match by_stage.last_mut() {
            Some((s, ids)) if s == stage => {
                if !ids.contains(&base) {
                    ids.push(base)
                }
            }
            _ => by_stage.push((stage.clone(), vec![base])),
        }
    }
    for (stage, ids) in &by_stage {
        let n = sub
            .submitted
            .iter()
            .filter(|t| &p.nodes[t.node].stage == stage)
            .count();
        say(format!(
            "submitted {stage}: {n} node(s) as Slurm job {}",
            ids.join(", ")
        ));
    }
    if !sub.already_queued.is_empty() {
        say(format!(
            "{} node(s) already queued or running, not submitted again: {}",
            sub.already_queued.len(),
            sub.already_queued
                .iter()
                .map(|t| format!("{} ({})", p.nodes[t.node].name, t.slurm_id))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if !sub.superseded.is_empty() {
        say(format!(
            "cancelled {} queued job(s) the edited pipeline no longer needs: {}",
            sub.superseded.len(),
            sub.superseded.join(", ")
        ));
    }
    for (i, why) in &sub.blocked {
        eprintln!("not submitted {}: {why}", p.nodes[*i].name);
    }
    sayln!(
        "{} submitted ({} sbatch call(s)), {} already queued, {} restored, {} up to date, {} blocked in {:.2}s",
        sub.submitted.len(),
        sub.sbatch_calls,
        sub.already_queued.len(),
        sub.restored,
        sub.up_to_date,
        sub.blocked.len(),
        sub.elapsed.as_secs_f64()
    );
    let tracked: Vec<slurm::Tracked> = sub.tracked().cloned().collect();
    if tracked.is_empty() || !s.wait {
        check_locked(args.locked, &lock, &sub.lock, &lock_path)?;
        super::write_lock(&l.store, &sub.lock, &lock_path)?;
        if !tracked.is_empty() {
            sayln!(
                "the jobs run without cegraph: `cegraph status` shows them, `cegraph run --executor slurm --wait` follows them and updates {}, `cegraph cancel` cancels them",
                lock_path.display()
            );
        }
        return blocked_result(&sub.blocked, p);
    }

    let clock = Instant::now();
    let progress = WaitProgress::new(tracked.len(), args.quiet);
    let ended = slurm::wait(
        p,
        &l.store,
        &tracked,
        &cluster,
        Duration::from_secs_f64(s.poll_max.max(0.5)),
        &progress,
    )?;
    progress.bar.finish_and_clear();
    let interrupted = crate::exec::INTERRUPTED.load(std::sync::atomic::Ordering::Relaxed);

    // The jobs wrote their results into the shared cache: restore into the workspace and
    // record them in the lock file, running nothing here.
    let collect = RunOptions {
        jobs: 1,
        targets,
        dry_run: false,
        force: Vec::new(),
        keep_going: true,
        collect_only: true,
        remote: None,
        push: false,
        locked: args.locked,
        exe: super::kind_runner()?,
    };
    let summary = crate::exec::run(p, &l.dag, &l.store, &lock, &collect, &crate::exec::Silent)?;
    check_locked(args.locked, &lock, &summary.lock, &lock_path)?;
    super::write_lock(&l.store, &summary.lock, &lock_path)?;

    let ran = ended
        .iter()
        .filter(|(_, e)| matches!(e, JobEnd::Ran { .. }))
        .count();
    let hits = ended
        .iter()
        .filter(|(_, e)| matches!(e, JobEnd::CacheHit { .. }))
        .count();
    let failed: Vec<String> = ended
        .iter()
        .filter_map(|(i, e)| match e {
            JobEnd::Failed { why, log } => Some(format!(
                "{}: {why} (log: {})",
                p.nodes[*i].name,
                log.display()
            )),
            _ => None,
        })
        .collect();
    let missing = summary.count(|o| matches!(o, Outcome::Skipped));
    sayln!(
        "{ran} ran on Slurm, {hits} cache hit(s), {} failed, {missing} not done; waited {:.1}s with {} squeue call(s)",
        failed.len(),
        clock.elapsed().as_secs_f64(),
        cluster.squeue_calls()
    );
    if interrupted {
        eprintln!(
            "stopped waiting; the jobs keep running (`cegraph cancel` cancels them, `cegraph run --executor slurm --wait` follows them again)"
        );
        return Err(Error::Interrupted { done: ran + hits });
    }
    if let Some(first) = failed.first() {
        return Err(Error::NodesFailed {
            count: failed.len(),
            first: first.clone(),
        });
    }
    blocked_result(&sub.blocked, p)
}

fn blocked_result(blocked: &[(usize, String)], p: &crate::spec::Pipeline) -> Result<ExitCode> {
    match blocked.first() {
        None => Ok(ExitCode::SUCCESS),
        Some((i, why)) => Err(Error::NodesFailed {
            count: blocked.len(),
            first: format!("{}: {why}", p.nodes[*i].name),
        }),
    }
}

/// A bar over the tracked jobs, and one line per job as it ends.
struct WaitProgress {
    bar: ProgressBar,
    quiet: bool,
}

impl WaitProgress {
    fn new(total: usize, quiet: bool) -> Self {
        let bar = super::progress_bar(total);
        WaitProgress { bar, quiet }
    }

    fn say(&self, line: String) {
        if self.bar.is_hidden() {
            sayln!("{line}");
        } else {
            self.bar.println(line);
        }
    }
}

impl WaitObserver for WaitProgress {
    fn poll(&self, c: Counts) {
        self.bar.set_position((c.done + c.failed) as u64);
        self.bar.set_message(format!(
            "{} pending, {} running, {} done, {} failed",
            c.pending, c.running, c.done, c.failed
        ));
    }

    fn ended(&self, node: &str, slurm_id: &str, end: &JobEnd) {
        let line = match end {
            JobEnd::Ran { seconds, host } => {
                format!("ran       {node} ({seconds:.2}s on {host}, job {slurm_id})")
            }
            JobEnd::CacheHit { host } => {
                format!(
                    "cached    {node} (job {slurm_id} on {host}: its key was already in the cache)"
                )
            }
            JobEnd::Failed { why, log } => format!(
                "FAILED    {node} (job {slurm_id}): {why}\n          log: {}",
                log.display()
            ),
        };
        if !self.quiet || matches!(end, JobEnd::Failed { .. }) {
            self.say(line);
        }
    }
}
