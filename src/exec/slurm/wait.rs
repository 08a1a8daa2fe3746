//! Following submitted jobs until each has ended (`run --executor slurm --wait`).
//!
//! A job's own result file says how it ended; Slurm's state says whether that result is
//! final (a requeued job will write another) and why a job that wrote none stopped. Neither
//! is trusted alone: `squeue` may fail for a while (a controller restarting), forget finished
//! jobs quickly (a short MinJobAge), and a result written on another node may show up here
//! late (NFS attribute caching). Each of these is waited out for a bounded time.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::spec::Pipeline;
use crate::store::Store;

use super::Tracked;
use super::cluster::{Cluster, JobState, JobStates};
use super::ledger::job_name_prefix;
use super::reason;
use crate::exec::handoff::{self, JobOutcome, JobResult};

/// How tolerant waiting is, in seconds: from the environment, for clusters slower than usual.
#[derive(Debug, Clone, Copy)]
pub struct Patience {
    /// How long `squeue` (and an unreachable controller at `sbatch`) may keep failing before
    /// cegraph gives up waiting (`CEGRAPH_SLURM_SQUEUE_WAIT`, default 120 s: Slurm's own
    /// SlurmctldTimeout for a backup controller to take over).
    pub squeue: Duration,
    /// How long a job that ended may take to have its result seen here
    /// (`CEGRAPH_SLURM_RESULT_WAIT`, default 60 s: NFS's longest default attribute cache time).
    pub result: Duration,
}

pub const SQUEUE_WAIT_VAR: &str = "CEGRAPH_SLURM_SQUEUE_WAIT";
pub const RESULT_WAIT_VAR: &str = "CEGRAPH_SLURM_RESULT_WAIT";

impl Patience {
    pub fn from_env() -> Result<Patience> {
        Ok(Patience {
            squeue: seconds_from_env(SQUEUE_WAIT_VAR, 120.0)?,
            result: seconds_from_env(RESULT_WAIT_VAR, 60.0)?,
        })
    }
}

fn seconds_from_env(var: &str, default: f64) -> Result<Duration> {
    match std::env::var_os(var) {
        None => Ok(Duration::from_secs_f64(default)),
        Some(v) => parse_seconds(var, &v.to_string_lossy(), default),
    }
}

fn parse_seconds(var: &str, v: &str, default: f64) -> Result<Duration> {
    v.trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64)
        .ok_or_else(|| {
            Error::usage(
                format!("{var}=`{v}` is not a number of seconds"),
                format!("set {var} to a number of seconds, e.g. {var}={default}, or unset it"),
            )
        })
}

/// How a tracked job ended.
#[derive(Debug, Clone)]
pub enum JobEnd {
    Ran { seconds: f64, host: String },
    CacheHit { host: String },
    Failed { why: String, log: PathBuf },
}

/// Live counts for a progress display.
#[derive(Debug, Default, Clone, Copy)]
pub struct Counts {
    pub pending: usize,
    pub running: usize,
    pub done: usize,
    pub failed: usize,
}

pub trait WaitObserver {
    fn poll(&self, _counts: Counts) {}
    fn ended(&self, _node: &str, _slurm_id: &str, _end: &JobEnd) {}
    /// Something worth knowing that is not a job ending (Slurm not answering, ...).
    fn note(&self, line: &str) {
        eprintln!("{line}");
    }
}

/// Slurm's own output file of an array task (`--output=%A_%a.out`).
pub fn slurm_log(log_dir: &Path, slurm_id: &str) -> PathBuf {
    log_dir.join(format!("{slurm_id}.out"))
}

/// What Slurm says about one job at this poll.
enum Seen<'a> {
    /// `squeue` did not answer this time.
    Unknown,
    Listed(&'a JobState),
    /// Not in `squeue` (ended more than MinJobAge ago); accounting's record, if any.
    Gone(Option<&'a JobState>),
}

enum Step {
    Waiting { running: bool },
    Ended(JobEnd),
}

/// One job being followed.
struct Watch<'a> {
    t: &'a Tracked,
    log: PathBuf,
    /// Since when Slurm has shown it ended while no result is visible here.
    unseen_since: Option<Instant>,
    /// A state after which Slurm may still requeue the job, seen at the last poll.
    may_requeue: Option<String>,
    /// Told the user why it cannot start.
    warned: bool,
}

/// Pending reasons that do not clear by themselves: the job waits for a person (a hold, a
/// limit or partition setting to change). Said once; the wait goes on.
const STUCK: &[&str] = &[
    "JobHeldUser",
    "JobHeldAdmin",
    "PartitionTimeLimit",
    "PartitionNodeLimit",
    "PartitionConfig",
    "PartitionDown",
    "PartitionInactive",
    "BadConstraints",
    "InvalidAccount",
    "InvalidQOS",
    "QOSMaxWallDurationPerJobLimit",
    "AssocMaxWallDurationPerJobLimit",
    "launch failed requeued held",
];

/// Follow the tracked jobs until each has ended: one `squeue` call per poll, backing off
/// from 0.5 s towards `max_interval` while nothing changes. Returns each node's end, in the order
/// they ended; stops early (returning what ended) on Ctrl-C. A `squeue` that keeps failing for
/// longer than [`Patience::squeue`] is an error that leaves the jobs running.
pub fn wait(
    p: &Pipeline,
    store: &Store,
    tracked: &[Tracked],
    cluster: &Cluster,
    max_interval: Duration,
    observer: &dyn WaitObserver,
) -> Result<Vec<(usize, JobEnd)>> {
    let patience = Patience::from_env()?;
    let prefix = job_name_prefix(p);
    let log_dir = store.root().join("slurm").join("logs");
    let mut open: Vec<Watch> = tracked
        .iter()
        .map(|t| Watch {
            t,
            log: slurm_log(&log_dir, &t.slurm_id),
            unseen_since: None,
            may_requeue: None,
            warned: false,
        })
        .collect();
    let mut ended = Vec::new();
    let min_interval = Duration::from_millis(500);
    let mut interval = min_interval;
    let started = Instant::now();
    let mut outage: Option<Instant> = None;
    loop {
        let states = match cluster.jobs(&prefix) {
            Ok(s) => {
                if outage.take().is_some() {
                    observer.note("squeue answers again");
                }
                Some(s)
            }
            Err(f) if f.transient() => {
                let since = *outage.get_or_insert_with(|| {
                    observer.note(&format!(
                        "warning: squeue failed ({}); retrying for up to {:.0}s ({SQUEUE_WAIT_VAR}), no job is taken as failed meanwhile",
                        f.message(),
                        patience.squeue.as_secs_f64()
                    ));
                    Instant::now()
                });
                if since.elapsed() >= patience.squeue {
                    return Err(gave_up(&f.message(), since.elapsed(), open.len()));
                }
                None
            }
            Err(f) => return Err(f.into_error()),
        };
        let results: Vec<Option<JobResult>> = open
            .iter()
            .map(|w| handoff::read_result(store, &w.t.job))
            .collect();
        let accounting = ask_accounting(cluster, states.as_ref(), &open, &results);
        let before = open.len();
        let mut counts = Counts::default();
        let now = Instant::now();
        let mut never = Vec::new();
        let mut k = 0;
        open.retain_mut(|w| {
            let result = results[k].as_ref();
            k += 1;
            let seen = match &states {
                None => Seen::Unknown,
                Some(s) => match s.get(&w.t.slurm_id) {
                    Some(state) => Seen::Listed(state),
                    None => Seen::Gone(accounting.as_ref().and_then(|a| a.get(&w.t.slurm_id))),
                },
            };
            if let Seen::Listed(s) = &seen
                && s.is_active()
                && !s.is_running()
            {
                if s.reason == "DependencyNeverSatisfied" {
                    never.push(w.t.slurm_id.clone());
                } else if !w.warned && STUCK.contains(&s.reason.as_str()) {
                    w.warned = true;
                    observer.note(&format!(
                        "warning: {} (job {}) is pending with reason {}: Slurm will not start it until that changes (`scontrol show job {}`); `cegraph cancel` cancels it",
                        p.nodes[w.t.node].name, w.t.slurm_id, s.reason, w.t.slurm_id
                    ));
                }
            }
            match step(result, seen, w, now, patience.result) {
                Step::Waiting { running } => {
                    if running {
                        counts.running += 1;
                    } else {
                        counts.pending += 1;
                    }
                    true
                }
                Step::Ended(e) => {
                    observer.ended(&p.nodes[w.t.node].name, &w.t.slurm_id, &e);
                    ended.push((w.t.node, e));
                    false
                }
            }
        });
        // Failed already (see `step`); cancelled so they do not sit in the queue for ever.
        if !never.is_empty() {
            let _ = cluster.cancel(&never);
        }
        counts.done = ended
            .iter()
            .filter(|(_, e)| !matches!(e, JobEnd::Failed { .. }))
            .count();
        counts.failed = ended.len() - counts.done;
        observer.poll(counts);
        if open.is_empty() || crate::exec::INTERRUPTED.load(Ordering::Relaxed) {
            return Ok(ended);
        }
        // Back off while nothing changes and come halfway back when something does, but
        // never poll more often than 20 times over the time waited so far: quick feedback
        // at first, a light load on the controller for long waits.
        let floor = (started.elapsed() / 20).clamp(min_interval, max_interval);
        interval = if open.len() < before {
            (interval / 2).max(floor)
        } else {
            interval.mul_f64(1.5).clamp(floor, max_interval)
        };
        let until = Instant::now() + interval;
        while Instant::now() < until && !crate::exec::INTERRUPTED.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(100).min(interval));
        }
    }
}

/// One `sacct` call for the jobs `squeue` no longer lists, have no result and whose log
/// does not say why they stopped; None without accounting.
fn ask_accounting(
    cluster: &Cluster,
    states: Option<&JobStates>,
    open: &[Watch],
    results: &[Option<JobResult>],
) -> Option<std::collections::HashMap<String, JobState>> {
    let states = states?;
    let ids: Vec<&str> = open
        .iter()
        .zip(results)
        .filter(|(w, r)| {
            r.is_none() && states.get(&w.t.slurm_id).is_none() && reason::from_log(&w.log).is_none()
        })
        .map(|(w, _)| w.t.slurm_id.as_str())
        .collect();
    cluster.accounting(&ids)
}

/// Where one job stands, from its result (if visible) and what Slurm shows.
fn step(
    result: Option<&JobResult>,
    seen: Seen,
    w: &mut Watch,
    now: Instant,
    grace: Duration,
) -> Step {
    // A node failure or pre-emption is followed by a requeue where the cluster allows it:
    // such a state is final only when the next poll still shows it.
    if let Seen::Listed(s) = seen
        && matches!(s.state.as_str(), "NODE_FAIL" | "PREEMPTED" | "BOOT_FAIL")
        && w.may_requeue.replace(s.state.clone()).as_ref() != Some(&s.state)
        && !matches!(
            result.map(|r| &r.outcome),
            Some(JobOutcome::Ran { .. } | JobOutcome::CacheHit { .. })
        )
    {
        return Step::Waiting { running: false };
    }
    if let Some(r) = result {
        return match (&r.outcome, seen) {
            (JobOutcome::Ran { seconds, .. }, _) => Step::Ended(JobEnd::Ran {
                seconds: *seconds,
                host: r.host.clone(),
            }),
            (JobOutcome::CacheHit { .. }, _) => Step::Ended(JobEnd::CacheHit {
                host: r.host.clone(),
            }),
            // A failure is final only once Slurm shows the job ended: a requeued job
            // (node failure, pre-emption, `scontrol requeue`) runs again and rewrites it.
            (JobOutcome::Failed { .. }, Seen::Unknown) => Step::Waiting { running: false },
            (JobOutcome::Failed { .. }, Seen::Listed(s)) if s.is_active() => Step::Waiting {
                running: s.is_running(),
            },
            (JobOutcome::Failed { message, log }, seen) => {
                let slurm = match seen {
                    Seen::Listed(s) | Seen::Gone(Some(s)) if s.stopped_by_slurm() => {
                        Some(s.describe())
                    }
                    _ => reason::from_log(&w.log),
                };
                let why = match slurm {
                    Some(s) => format!("{message}; Slurm: {s}"),
                    None => message.clone(),
                };
                Step::Ended(JobEnd::Failed {
                    why,
                    log: log.clone().unwrap_or_else(|| w.log.clone()),
                })
            }
        };
    }
    let state = match seen {
        Seen::Unknown => return Step::Waiting { running: false },
        Seen::Listed(s) => s,
        Seen::Gone(acct) => match (reason::from_log(&w.log), acct) {
            (Some(why), _) => return failed(w, format!("{why} (said its Slurm log)")),
            (None, Some(s)) => s,
            (None, None) => {
                return late_or_failed(w, now, grace, || {
                    "Slurm no longer lists it (it ended more than MinJobAge ago) and it left no result; without accounting (sacct) Slurm cannot say why".into()
                });
            }
        },
    };
    if state.is_active() && state.reason == "DependencyNeverSatisfied" && !state.is_running() {
        // Where --kill-on-invalid-dep is not honoured such a job stays pending for ever.
        return failed(w, "cancelled by Slurm: an upstream job failed".into());
    }
    if state.is_active() {
        w.unseen_since = None;
        return Step::Waiting {
            running: state.is_running(),
        };
    }
    if state.stopped_by_slurm() || state.state != "COMPLETED" {
        // exec-node writes a result for every failure of the node itself, so one that ended
        // without any died before it could (not installed on the node, killed outright).
        let mut why = state.describe();
        if !state.stopped_by_slurm()
            && let Some(tail) = reason::last_line(&w.log)
        {
            why.push_str(&format!(": {tail}"));
        }
        return failed(w, why);
    }
    late_or_failed(w, now, grace, || {
        format!(
            "Slurm says it completed, but its result never appeared here: is the cache at the same path on a shared filesystem on {} and this machine?",
            if state.host.is_empty() {
                "the node"
            } else {
                &state.host
            }
        )
    })
}

fn failed(w: &Watch, why: String) -> Step {
    Step::Ended(JobEnd::Failed {
        why,
        log: w.log.clone(),
    })
}

/// A job that ended without a visible result: the result may still be on its way through
/// the shared filesystem, so it is a failure only after `grace`.
fn late_or_failed(w: &mut Watch, now: Instant, grace: Duration, why: impl Fn() -> String) -> Step {
    let since = *w.unseen_since.get_or_insert(now);
    if now.duration_since(since) < grace {
        return Step::Waiting { running: true };
    }
    let why = format!(
        "{}; no result after {:.0}s ({RESULT_WAIT_VAR})",
        why(),
        grace.as_secs_f64()
    );
    failed(w, why)
}

fn gave_up(message: &str, for_how_long: Duration, open: usize) -> Error {
    Error::slurm(
        format!(
            "squeue has failed for {:.0}s ({message}); stopped waiting for {open} job(s)",
            for_how_long.as_secs_f64()
        ),
        format!(
            "the jobs keep running without cegraph: once Slurm answers, `cegraph run --executor slurm --wait` follows them again (submitting nothing twice) and updates the lock file; `cegraph status` shows them. {SQUEUE_WAIT_VAR} sets how long to retry (seconds)"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::Hash;

    fn state(s: &str) -> JobState {
        JobState {
            state: s.into(),
            reason: String::new(),
            host: "n1".into(),
        }
    }

    fn result(outcome: JobOutcome) -> JobResult {
        JobResult {
            format: handoff::FORMAT,
            job: Hash::of_bytes(b"j"),
            node: "n".into(),
            outcome,
            host: "n1".into(),
            started_at: 0.0,
            finished_at: 1.0,
        }
    }

    fn watch(t: &Tracked) -> Watch<'_> {
        Watch {
            t,
            log: PathBuf::from("/nonexistent/1_0.out"),
            unseen_since: None,
            may_requeue: None,
            warned: false,
        }
    }

    fn tracked() -> Tracked {
        Tracked {
            node: 0,
            job: Hash::of_bytes(b"j"),
            slurm_id: "1_0".into(),
        }
    }

    #[test]
    fn a_failed_result_of_a_requeued_job_is_not_final_while_slurm_runs_it_again() {
        let t = tracked();
        let mut w = watch(&t);
        let failed = result(JobOutcome::Failed {
            message: "exited with status 3".into(),
            log: None,
        });
        let now = Instant::now();
        for s in ["PENDING", "REQUEUED", "RUNNING"] {
            let st = state(s);
            let r = step(
                Some(&failed),
                Seen::Listed(&st),
                &mut w,
                now,
                Duration::ZERO,
            );
            assert!(matches!(r, Step::Waiting { .. }), "{s}");
        }
        let unknown = step(Some(&failed), Seen::Unknown, &mut w, now, Duration::ZERO);
        assert!(matches!(unknown, Step::Waiting { .. }));
        let st = state("FAILED");
        let done = step(
            Some(&failed),
            Seen::Listed(&st),
            &mut w,
            now,
            Duration::ZERO,
        );
        assert!(matches!(done, Step::Ended(JobEnd::Failed { .. })));
    }

    #[test]
    fn a_completed_job_whose_result_is_late_waits_then_fails_with_the_cause() {
        let t = tracked();
        let mut w = watch(&t);
        let st = state("COMPLETED");
        let t0 = Instant::now();
        let grace = Duration::from_secs(60);
        assert!(matches!(
            step(None, Seen::Listed(&st), &mut w, t0, grace),
            Step::Waiting { running: true }
        ));
        let later = t0 + Duration::from_secs(61);
        match step(None, Seen::Listed(&st), &mut w, later, grace) {
            Step::Ended(JobEnd::Failed { why, .. }) => {
                assert!(why.contains("shared filesystem"), "{why}");
                assert!(why.contains("no result after 60s"), "{why}");
            }
            _ => panic!("a result that never comes is a failure"),
        }
    }

    #[test]
    fn a_job_slurm_stopped_without_a_result_fails_at_once_with_slurms_reason() {
        let t = tracked();
        let mut w = watch(&t);
        let grace = Duration::from_secs(60);
        // Slurm may requeue after a node failure: final only if the next poll agrees.
        let st = state("NODE_FAIL");
        let first = step(None, Seen::Listed(&st), &mut w, Instant::now(), grace);
        assert!(matches!(first, Step::Waiting { .. }));
        let second = step(None, Seen::Listed(&st), &mut w, Instant::now(), grace);
        assert!(matches!(second, Step::Ended(JobEnd::Failed { .. })));
        let st = state("OUT_OF_MEMORY");
        match step(None, Seen::Listed(&st), &mut w, Instant::now(), grace) {
            Step::Ended(JobEnd::Failed { why, .. }) => assert!(why.contains("memory"), "{why}"),
            _ => panic!("OOM is a failure"),
        }
        // Forgotten by squeue, known to accounting.
        let st = state("TIMEOUT");
        match step(None, Seen::Gone(Some(&st)), &mut w, Instant::now(), grace) {
            Step::Ended(JobEnd::Failed { why, .. }) => assert!(why.contains("time limit"), "{why}"),
            _ => panic!("a timeout is a failure"),
        }
    }

    #[test]
    fn a_job_squeue_forgot_without_accounting_or_log_fails_only_after_the_grace() {
        let t = tracked();
        let mut w = watch(&t);
        let t0 = Instant::now();
        let grace = Duration::from_secs(5);
        assert!(matches!(
            step(None, Seen::Gone(None), &mut w, t0, grace),
            Step::Waiting { .. }
        ));
        match step(None, Seen::Gone(None), &mut w, t0 + grace, grace) {
            Step::Ended(JobEnd::Failed { why, .. }) => {
                assert!(why.contains("no longer lists it"), "{why}")
            }
            _ => panic!("bounded"),
        }
    }

    #[test]
    fn bad_patience_settings_are_refused_by_name() {
        assert_eq!(
            parse_seconds(RESULT_WAIT_VAR, " 2.5 ", 60.0).unwrap(),
            Duration::from_millis(2500)
        );
        for bad in ["", "soon", "-1", "inf"] {
            let e = parse_seconds(RESULT_WAIT_VAR, bad, 60.0).unwrap_err();
            assert!(e.to_string().contains(RESULT_WAIT_VAR), "{e}");
        }
    }
}
