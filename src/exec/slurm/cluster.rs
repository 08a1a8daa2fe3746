//! Slurm's client commands (`sbatch`, `squeue`, `scancel`, `sinfo`), each called as few times
//! as possible: one `squeue` per poll for all of a pipeline's jobs, never one per job.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// A job's (or array task's) state as `squeue` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobState {
    /// PENDING, RUNNING, COMPLETED, FAILED, CANCELLED, TIMEOUT, PREEMPTED, ...
    pub state: String,
    /// Why it is pending or how it ended (`Dependency`, `DependencyNeverSatisfied`, ...).
    pub reason: String,
    /// The node it runs or ran on.
    pub host: String,
}

impl JobState {
    /// Still queued or running: a node with such a job must not be submitted again.
    pub fn is_active(&self) -> bool {
        matches!(
            self.state.as_str(),
            "PENDING"
                | "RUNNING"
                | "CONFIGURING"
                | "COMPLETING"
                | "REQUEUED"
                | "REQUEUE_HOLD"
                | "REQUEUE_FED"
                | "RESIZING"
                | "SUSPENDED"
                | "STAGE_OUT"
                | "SIGNALING"
                | "STOPPED"
                | "RESV_DEL_HOLD"
                // Requeued and held by the site's epilog until someone releases it.
                | "SPECIAL_EXIT"
        )
    }

    /// Ended because Slurm stopped it (cancel, limit, node, pre-emption): `exec-node` writes
    /// no result then, so there is nothing to wait for.
    pub fn stopped_by_slurm(&self) -> bool {
        matches!(
            self.state.as_str(),
            "CANCELLED"
                | "TIMEOUT"
                | "OUT_OF_MEMORY"
                | "NODE_FAIL"
                | "PREEMPTED"
                | "BOOT_FAIL"
                | "DEADLINE"
                | "REVOKED"
        )
    }

    pub fn is_running(&self) -> bool {
        matches!(
            self.state.as_str(),
            "RUNNING" | "COMPLETING" | "CONFIGURING"
        )
    }

    /// For people: `CANCELLED (an upstream job failed)`, `TIMEOUT`, ...
    pub fn describe(&self) -> String {
        match (self.state.as_str(), self.reason.as_str()) {
            ("CANCELLED", "DependencyNeverSatisfied") => {
                "cancelled by Slurm: an upstream job failed".into()
            }
            ("TIMEOUT", _) => "hit its time limit (resources.time)".into(),
            ("PREEMPTED", _) => "pre-empted".into(),
            ("OUT_OF_MEMORY", _) => "ran out of memory (resources.mem)".into(),
            ("NODE_FAIL", _) => "its node failed".into(),
            ("BOOT_FAIL", _) => "its node failed to boot".into(),
            ("DEADLINE", _) => "missed its deadline (--deadline)".into(),
            ("CANCELLED", _) => "cancelled (scancel)".into(),
            (s, "None" | "") => s.to_lowercase(),
            (s, r) => format!("{} ({r})", s.to_lowercase()),
        }
    }
}

/// What one `squeue` call showed, by job id (`12_3` for an array task).
#[derive(Debug, Default)]
pub struct JobStates(HashMap<String, JobState>);

impl JobStates {
    /// The state of `12_3`; Slurm sometimes shows an array's not-yet-split pending tasks, or
    /// a cancelled one, under the array's bare id `12`, which then stands for the task.
    pub fn get(&self, id: &str) -> Option<&JobState> {
        self.0.get(id).or_else(|| {
            let (base, _) = id.split_once('_')?;
            self.0.get(base)
        })
    }
}

/// The Slurm client. Counts its `squeue` calls so the polling load can be reported.
#[derive(Default)]
pub struct Cluster {
    squeue_calls: AtomicUsize,
    /// Clusters that `sbatch --parsable` named (`id;cluster`: jobs sent elsewhere with `-M`):
    /// `squeue` and `scancel` only see those jobs when asked with the same `--clusters`.
    clusters: Mutex<BTreeSet<String>>,
    /// `sbatch` messages already relayed, so a warning is shown once, not once per array.
    relayed: Mutex<BTreeSet<String>>,
    /// `sacct` failed once (no slurmdbd: "accounting storage is disabled"): not asked again.
    no_accounting: AtomicBool,
    max_array: OnceLock<usize>,
}

/// What one `sbatch` call gave back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submitted {
    pub id: String,
    /// The cluster the job went to, when `sbatch` named one (multi-cluster set-ups).
    pub cluster: Option<String>,
}

impl Cluster {
    pub fn new() -> Cluster {
        Cluster::default()
    }

    pub fn squeue_calls(&self) -> usize {
        self.squeue_calls.load(Ordering::Relaxed)
    }

    /// Jobs recorded earlier on these clusters: later queries must ask there too.
    pub fn remember_clusters<'a>(&self, names: impl IntoIterator<Item = &'a str>) {
        let mut set = self.clusters.lock().unwrap_or_else(|e| e.into_inner());
        set.extend(names.into_iter().map(String::from));
    }

    /// `--clusters=a,b` when jobs went to named clusters, else nothing (the default cluster).
    fn cluster_flag(&self) -> Option<String> {
        let set = self.clusters.lock().unwrap_or_else(|e| e.into_inner());
        (!set.is_empty()).then(|| {
            format!(
                "--clusters={}",
                set.iter().cloned().collect::<Vec<_>>().join(",")
            )
        })
    }

    /// Submit a batch script; returns the job id. A controller that cannot be reached is
    /// retried for up to `patience` (nothing was submitted then); any other refusal is an
    /// error carrying every line Slurm printed and what to change.
    pub fn sbatch(&self, args: &[String], script: &Path, patience: Duration) -> Result<Submitted> {
        let mut all: Vec<String> = vec!["--parsable".into()];
        all.extend(args.iter().cloned());
        all.push(script.to_string_lossy().into_owned());
        let out = retry(patience, || run_raw("sbatch", &all), |f| f.unreachable())
            .map_err(CmdFailure::into_error)?;
        self.relay(&out.stderr);
        let Some(sub) = parse_sbatch(&out.stdout) else {
            return Err(Error::slurm(
                format!("sbatch printed `{}` instead of a job id", out.stdout.trim()),
                "check the sbatch flags in the pipeline's `slurm:` block and --sbatch-arg (cegraph passes --parsable and reads the job id from the output)",
            ));
        };
        if let Some(c) = &sub.cluster {
            self.remember_clusters([c.as_str()]);
        }
        Ok(sub)
    }

    /// `sbatch` succeeded but said something (a site's submit filter, a deprecated flag):
    /// shown once on stderr, since it may explain what happens to the jobs later.
    fn relay(&self, stderr: &str) {
        let mut seen = self.relayed.lock().unwrap_or_else(|e| e.into_inner());
        for line in stderr.lines().map(str::trim).filter(|l| !l.is_empty()) {
            if seen.insert(line.to_string()) {
                eprintln!("sbatch said: {line}");
            }
        }
    }

    /// Every job of this user whose name starts with `prefix`, one line per array task,
    /// including jobs that ended recently (Slurm keeps them for MinJobAge seconds). One try:
    /// [`Cluster::jobs_patiently`] retries, and `wait` keeps polling across failures.
    pub fn jobs(&self, prefix: &str) -> std::result::Result<JobStates, CmdFailure> {
        self.squeue_calls.fetch_add(1, Ordering::Relaxed);
        // `--user=<uid>`, not `--me` (Slurm 20.11+ only).
        let uid = unsafe { libc::getuid() };
        let mut args: Vec<String> = vec![format!("--user={uid}")];
        args.extend(["-h", "-r", "-t", "all", "-o", "%i|%j|%T|%r|%N"].map(String::from));
        args.extend(self.cluster_flag());
        let out = run_raw("squeue", &args)?;
        Ok(JobStates(parse_squeue(&out.stdout, prefix)))
    }

    /// [`Cluster::jobs`], retrying failures that a restarting controller causes for up to
    /// `patience`.
    pub fn jobs_patiently(&self, prefix: &str, patience: Duration) -> Result<JobStates> {
        retry(patience, || self.jobs(prefix), CmdFailure::transient).map_err(CmdFailure::into_error)
    }

    /// The most tasks one job array may have here: the cluster's MaxArraySize less one
    /// (indices start at 0); Slurm's default 1001 where `scontrol` does not say.
    pub fn max_array_tasks(&self) -> usize {
        *self.max_array.get_or_init(|| {
            let args = ["show", "config"].map(String::from);
            run_raw("scontrol", &args)
                .ok()
                .and_then(|out| parse_max_array_size(&out.stdout))
                .unwrap_or(1001)
                .saturating_sub(1)
                .max(1)
        })
    }

    /// How jobs Slurm no longer lists ended, from its accounting database; None where there
    /// is none (many clusters run without slurmdbd) or it did not answer.
    pub fn accounting(&self, ids: &[&str]) -> Option<HashMap<String, JobState>> {
        if ids.is_empty() || self.no_accounting.load(Ordering::Relaxed) {
            return None;
        }
        let mut args: Vec<String> = ["-n", "-P", "-X", "-o", "JobID,State,NodeList"]
            .map(String::from)
            .to_vec();
        args.push(format!("--jobs={}", ids.join(",")));
        args.extend(self.cluster_flag());
        match run_raw("sacct", &args) {
            Ok(out) => Some(parse_sacct(&out.stdout)),
            Err(_) => {
                self.no_accounting.store(true, Ordering::Relaxed);
                None
            }
        }
    }

    /// Cancel jobs. A job that ended meanwhile is not an error (it is what cancelling wants).
    pub fn cancel(&self, ids: &[String]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut args: Vec<String> = self.cluster_flag().into_iter().collect();
        args.extend(ids.iter().cloned());
        match run_raw("scancel", &args) {
            Ok(_) => Ok(()),
            Err(f) if f.only_already_ended() => Ok(()),
            Err(f) => Err(f.into_error()),
        }
    }

    /// The names of the nodes a partition (or the default one) can run jobs on.
    pub fn partition_nodes(&self, partition: Option<&str>) -> Result<Vec<String>> {
        let mut args: Vec<String> = ["-h", "-N", "-o", "%N"].map(String::from).to_vec();
        if let Some(p) = partition {
            args.push(format!("--partition={p}"));
        }
        let out = run_raw("sinfo", &args).map_err(CmdFailure::into_error)?;
        let mut nodes: Vec<String> = out
            .stdout
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect();
        nodes.sort();
        nodes.dedup();
        Ok(nodes)
    }
}

/// The job id in `sbatch --parsable`'s output: `id` or `id;cluster` on a line of its own;
/// a site's wrapper may print other lines around it, or ignore --parsable altogether
/// (`Submitted batch job 12`).
fn parse_sbatch(stdout: &str) -> Option<Submitted> {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let lines: Vec<&str> = stdout.lines().map(str::trim).collect();
    let parsable = lines.iter().rev().find_map(|l| {
        let (id, cluster) = match l.split_once(';') {
            Some((id, c)) => (id, Some(c.trim()).filter(|c| !c.is_empty())),
            None => (*l, None),
        };
        digits(id).then(|| Submitted {
            id: id.to_string(),
            cluster: cluster.map(String::from),
        })
    });
    parsable.or_else(|| {
        lines.iter().rev().find_map(|l| {
            let rest = l.split("Submitted batch job ").nth(1)?;
            let id = rest.split_whitespace().next()?;
            digits(id).then(|| Submitted {
                id: id.to_string(),
                cluster: rest
                    .split(" on cluster ")
                    .nth(1)
                    .map(|c| c.trim().to_string()),
            })
        })
    })
}

/// `MaxArraySize           = 1001` in `scontrol show config`.
fn parse_max_array_size(config: &str) -> Option<usize> {
    config.lines().find_map(|l| {
        let (k, v) = l.split_once('=')?;
        (k.trim() == "MaxArraySize").then(|| v.trim().parse().ok())?
    })
}

fn parse_sacct(out: &str) -> HashMap<String, JobState> {
    out.lines()
        .filter_map(|line| {
            let mut f = line.trim().split('|');
            let (id, state, host) = (f.next()?, f.next()?, f.next().unwrap_or(""));
            let state = state.split_whitespace().next()?.to_string();
            Some((
                id.to_string(),
                JobState {
                    state,
                    reason: String::new(),
                    host: host.to_string(),
                },
            ))
        })
        .collect()
}

fn parse_squeue(out: &str, prefix: &str) -> HashMap<String, JobState> {
    out.lines()
        .filter_map(|line| {
            let mut f = line.trim().splitn(5, '|');
            let (id, name, state, reason, host) = (
                f.next()?,
                f.next()?,
                f.next()?,
                f.next()?,
                f.next().unwrap_or(""),
            );
            name.starts_with(prefix).then(|| {
                (
                    id.to_string(),
                    JobState {
                        // `CANCELLED by 0` → `CANCELLED`
                        state: state.split_whitespace().next().unwrap_or("").to_string(),
                        reason: reason.to_string(),
                        host: host.to_string(),
                    },
                )
            })
        })
        .collect()
}

/// What a Slurm client command printed.
pub struct CmdOutput {
    pub stdout: String,
    pub stderr: String,
}

/// A Slurm client command that did not succeed: kept raw so callers can tell a controller
/// that is restarting (retry) from a refusal (report).
#[derive(Debug, Clone)]
pub struct CmdFailure {
    program: String,
    /// Not installed (`NotFound`), or could not be started at all.
    not_run: Option<std::io::ErrorKind>,
    start_error: String,
    stderr: String,
}

impl CmdFailure {
    /// Slurm's lines, without blank ones; at most a few (the first say what was refused).
    pub fn message(&self) -> String {
        if self.not_run.is_some() {
            return self.start_error.clone();
        }
        let lines: Vec<&str> = self
            .stderr
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        if lines.is_empty() {
            return "no message".into();
        }
        let mut text = lines.iter().take(6).copied().collect::<Vec<_>>().join("; ");
        if lines.len() > 6 {
            text.push_str(&format!("; … ({} more line(s))", lines.len() - 6));
        }
        text
    }

    /// The controller did not answer: the command did nothing, trying again is safe.
    fn unreachable(&self) -> bool {
        self.not_run.is_none()
            && [
                "Unable to contact slurm controller",
                "Connection refused",
                "connect failure",
            ]
            .iter()
            .any(|m| self.stderr.contains(m))
    }

    /// Worth another try for a read-only query: anything but a missing or misconfigured
    /// client or a flag this Slurm does not know (slurmctld restarting or failing over shows
    /// as timeouts, refused connections, "Zero Bytes were transmitted" and the like).
    pub fn transient(&self) -> bool {
        match self.not_run {
            Some(std::io::ErrorKind::NotFound) | Some(std::io::ErrorKind::PermissionDenied) => {
                false
            }
            Some(_) => true,
            None => ![
                "configuration source",
                "unrecognized option",
                "invalid option",
                "Invalid user",
                "Usage:",
            ]
            .iter()
            .any(|m| self.stderr.contains(m)),
        }
    }

    /// `scancel` complaining only about jobs that already ended or are gone.
    fn only_already_ended(&self) -> bool {
        let errors: Vec<&str> = self
            .stderr
            .lines()
            .filter(|l| l.contains("error"))
            .collect();
        self.not_run.is_none()
            && !errors.is_empty()
            && errors.iter().all(|l| {
                l.contains("already completing or completed")
                    || l.contains("Invalid job id specified")
                    || l.contains("Job has already finished")
            })
    }

    pub fn into_error(self) -> Error {
        let program = &self.program;
        if self.not_run == Some(std::io::ErrorKind::NotFound) {
            return Error::slurm(
                format!(
                    "`{program}` was not found: Slurm's client commands are not installed here"
                ),
                "run on a Slurm login node, or start a local one-node cluster: eval \"$(bash scripts/slurm.sh start)\"",
            );
        }
        if self.not_run.is_some() {
            return Error::slurm(
                format!("could not run `{program}`: {}", self.start_error),
                "check the Slurm installation",
            );
        }
        Error::slurm(
            format!("`{program}` failed: {}", self.message()),
            help_for(&self.stderr),
        )
    }
}

/// What to change, from what Slurm said. Settings go in the pipeline's `slurm:` block, on the
/// command line, or in sbatch's own environment variables.
fn help_for(stderr: &str) -> String {
    let has = |m: &str| stderr.contains(m);
    let lower = stderr.to_lowercase();
    let help = if has("configuration source")
        || has("Unable to contact slurm controller")
        || has("Connection refused")
    {
        "cannot reach the Slurm controller: set SLURM_CONF to the cluster's slurm.conf and check `sinfo` works (for a local test cluster: eval \"$(bash scripts/slurm.sh start)\")"
    } else if has("Socket timed out") || has("Zero Bytes were transmitted") {
        "the Slurm controller did not answer in time (busy or restarting): try again in a minute; if an sbatch timed out, `cegraph status` shows what was queued and a rerun submits only what is missing"
    } else if lower.contains("violates accounting/qos policy")
        || has("QOSMax")
        || has("AssocMax")
        || has("MaxSubmit")
        || has("QOSGrp")
        || has("AssocGrp")
    {
        "Slurm's limits for your account or QOS refused the job (too many jobs, too long, too big): lower `resources` (time, cpus, gpus, mem) or submit elsewhere with `slurm: {account, qos, partition}` in the pipeline, --account/--qos/--partition, or SBATCH_ACCOUNT/SBATCH_QOS/SBATCH_PARTITION; `sacctmgr show assoc user=$USER` and `sacctmgr show qos` list the limits"
    } else if lower.contains("time limit") {
        "`resources.time` exceeds the partition's limit or is missing where one is required: set or lower it (`sinfo -o '%P %l'` lists each partition's MaxTime), or pick another partition with `slurm: {partition: ...}` / --partition / SBATCH_PARTITION"
    } else if lower.contains("account") || has("association") {
        "set an account you may charge (on that partition): `slurm: {account: ...}` in the pipeline, --account or SBATCH_ACCOUNT; `sacctmgr show assoc user=$USER` lists yours"
    } else if lower.contains("partition") {
        "check `slurm: {partition: ...}` in the pipeline, --partition or SBATCH_PARTITION; `sinfo -s` lists the partitions"
    } else if lower.contains("qos") {
        "check `slurm: {qos: ...}` in the pipeline, --qos or SBATCH_QOS; `sacctmgr show qos` lists them"
    } else if has("Requested node configuration is not available")
        || lower.contains("memory")
        || lower.contains("gres")
    {
        "no node offers the requested resources (cpus, gpus, mem): lower `resources`, or pick another partition with `slurm: {partition: ...}` / --partition"
    } else if has("dependency") {
        "an upstream job left Slurm's queue before its dependent was submitted: rerun, which submits only what is missing"
    } else {
        "see Slurm's message above; `man sbatch` lists the flags (extra ones go in `slurm: {sbatch: [...]}` or --sbatch-arg)"
    };
    help.to_string()
}

fn run_raw(program: &str, args: &[String]) -> std::result::Result<CmdOutput, CmdFailure> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| CmdFailure {
            program: program.to_string(),
            not_run: Some(e.kind()),
            start_error: e.to_string(),
            stderr: String::new(),
        })?;
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if out.status.success() {
        return Ok(CmdOutput {
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr,
        });
    }
    // Some clients print their error on stdout (sacct's "accounting storage is disabled").
    let stderr = if stderr.trim().is_empty() {
        String::from_utf8_lossy(&out.stdout).into_owned()
    } else {
        stderr
    };
    Err(CmdFailure {
        program: program.to_string(),
        not_run: None,
        start_error: String::new(),
        stderr,
    })
}

/// Call `f` until it succeeds, fails in a way `worth_retry` rejects, `patience` has passed,
/// or Ctrl-C: pauses of 0.5 s doubling to 8 s.
fn retry<T>(
    patience: Duration,
    mut f: impl FnMut() -> std::result::Result<T, CmdFailure>,
    worth_retry: impl Fn(&CmdFailure) -> bool,
) -> std::result::Result<T, CmdFailure> {
    let start = Instant::now();
    let mut pause = Duration::from_millis(500);
    loop {
        match f() {
            Ok(x) => return Ok(x),
            Err(e) => {
                let left = patience.saturating_sub(start.elapsed());
                if !worth_retry(&e)
                    || left.is_zero()
                    || crate::exec::INTERRUPTED.load(Ordering::Relaxed)
                {
                    return Err(e);
                }
                std::thread::sleep(pause.min(left));
                pause = (pause * 2).min(Duration::from_secs(8));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn squeue_lines_are_filtered_by_name_and_split() {
        let out = "12_0|cegraph:ab12:train|RUNNING|None|vm\n\
                   12_1|cegraph:ab12:train|PENDING|Resources|\n\
                   13|other|RUNNING|None|vm\n\
                   14_0|cegraph:ab12:eval|CANCELLED by 0|DependencyNeverSatisfied|\n";
        let jobs = JobStates(parse_squeue(out, "cegraph:ab12:"));
        assert_eq!(jobs.0.len(), 3);
        let get = |id| jobs.get(id).unwrap();
        assert!(get("12_0").is_running());
        assert!(get("12_1").is_active() && !get("12_1").is_running());
        assert_eq!(get("14_0").state, "CANCELLED");
        assert!(!get("14_0").is_active());
        assert!(get("14_0").describe().contains("upstream"));
        // A bare array id stands for its tasks.
        let bare = JobStates(parse_squeue(
            "15|cegraph:ab12:x|PENDING|Dependency|\n",
            "cegraph:ab12:",
        ));
        assert!(bare.get("15_0").unwrap().is_active());
        assert!(bare.get("16_0").is_none());
    }

    #[test]
    fn sbatch_output_with_a_cluster_name_or_extra_lines_still_gives_the_job_id() {
        let sub = |id: &str, c: Option<&str>| Submitted {
            id: id.into(),
            cluster: c.map(String::from),
        };
        assert_eq!(parse_sbatch("12\n"), Some(sub("12", None)));
        assert_eq!(
            parse_sbatch("12;gpu-cluster\n"),
            Some(sub("12", Some("gpu-cluster")))
        );
        assert_eq!(
            parse_sbatch("Charging account lab\nsbatch: warning: ignoring --mem\n34\n"),
            Some(sub("34", None))
        );
        assert_eq!(
            parse_sbatch("Submitted batch job 56 on cluster c2\n"),
            Some(sub("56", Some("c2")))
        );
        assert_eq!(parse_sbatch("error: nope\n"), None);
        assert_eq!(parse_sbatch(""), None);
    }

    fn failure(program: &str, stderr: &str) -> CmdFailure {
        CmdFailure {
            program: program.into(),
            not_run: None,
            start_error: String::new(),
            stderr: stderr.into(),
        }
    }

    #[test]
    fn a_policy_refusal_keeps_every_line_slurm_printed_and_says_where_to_set_things() {
        let f = failure(
            "sbatch",
            "sbatch: error: QOSMaxSubmitJobPerUserLimit\nsbatch: error: Batch job submission failed: Job violates accounting/QOS policy (job submit limit, user's size and/or time limits)\n",
        );
        let Error::Slurm { message, help } = f.into_error() else {
            panic!("a Slurm error")
        };
        assert!(message.contains("QOSMaxSubmitJobPerUserLimit"), "{message}");
        assert!(
            message.contains("violates accounting/QOS policy"),
            "{message}"
        );
        assert!(help.contains("slurm: {account, qos, partition}"), "{help}");
        assert!(help.contains("SBATCH_QOS"), "{help}");
        for (stderr, want) in [
            (
                "sbatch: error: Batch job submission failed: Invalid account or account/partition combination specified",
                "SBATCH_ACCOUNT",
            ),
            (
                "sbatch: error: invalid partition specified: gpux",
                "SBATCH_PARTITION",
            ),
            (
                "sbatch: error: Batch job submission failed: Requested time limit is invalid (missing or exceeds some limit)",
                "resources.time",
            ),
            (
                "sbatch: error: Batch job submission failed: Invalid qos specification",
                "SBATCH_QOS",
            ),
        ] {
            let Error::Slurm { help, .. } = failure("sbatch", stderr).into_error() else {
                panic!()
            };
            assert!(help.contains(want), "{stderr} → {help}");
        }
    }

    #[test]
    fn a_restarting_controller_is_transient_a_missing_or_misconfigured_client_is_not() {
        assert!(
            failure(
                "squeue",
                "slurm_load_jobs error: Socket timed out on send/recv operation"
            )
            .transient()
        );
        assert!(
            failure(
                "squeue",
                "slurm_load_jobs error: Unable to contact slurm controller (connect failure)"
            )
            .transient()
        );
        assert!(!failure("squeue", "squeue: unrecognized option '--bogus'").transient());
        assert!(
            !failure(
                "squeue",
                "sbatch: fatal: Could not establish a configuration source"
            )
            .transient()
        );
        let missing = CmdFailure {
            not_run: Some(std::io::ErrorKind::NotFound),
            ..failure("squeue", "")
        };
        assert!(!missing.transient());
        assert!(failure("sbatch", "sbatch: error: Batch job submission failed: Unable to contact slurm controller (connect failure)").unreachable());
        assert!(!failure("sbatch", "sbatch: error: Batch job submission failed: Socket timed out on send/recv operation").unreachable());
    }

    #[test]
    fn scancel_of_jobs_that_already_ended_is_not_a_failure() {
        assert!(failure("scancel", "scancel: error: Kill job error on job id 12_0: Job/step already completing or completed\n").only_already_ended());
        assert!(
            failure(
                "scancel",
                "scancel: error: Kill job error on job id 99: Invalid job id specified"
            )
            .only_already_ended()
        );
        assert!(
            !failure(
                "scancel",
                "scancel: error: Kill job error on job id 12: Access/permission denied"
            )
            .only_already_ended()
        );
        assert!(!failure("scancel", "").only_already_ended());
    }

    #[test]
    fn a_cluster_with_a_small_max_array_size_gets_smaller_arrays() {
        let config = "MailProg                = /bin/mail\nMaxArraySize            = 100\nMaxJobCount = 10000\n";
        assert_eq!(parse_max_array_size(config), Some(100));
        assert_eq!(parse_max_array_size("MaxJobCount = 10000\n"), None);
    }
}
