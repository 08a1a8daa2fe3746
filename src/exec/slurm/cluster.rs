//! Slurm's client commands (`sbatch`, `squeue`, `scancel`, `sinfo`), each called as few times
//! as possible: one `squeue` per poll for all of a pipeline's jobs, never one per job.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

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
}

impl Cluster {
    pub fn new() -> Cluster {
        Cluster::default()
    }

    pub fn squeue_calls(&self) -> usize {
        self.squeue_calls.load(Ordering::Relaxed)
    }

    /// Submit a batch script; returns the job id.
    pub fn sbatch(&self, args: &[String], script: &Path) -> Result<String> {
        let mut all: Vec<String> = vec!["--parsable".into()];
        all.extend(args.iter().cloned());
        all.push(script.to_string_lossy().into_owned());
        let out = run("sbatch", &all)?;
        // `--parsable` prints `id` or `id;cluster`.
        let id = out.trim().split(';').next().unwrap_or("").to_string();
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Error::slurm(
                format!("sbatch printed `{}` instead of a job id", out.trim()),
                "check the sbatch flags in the pipeline's `slurm:` block and --sbatch-arg",
            ));
        }
        Ok(id)
    }

    /// Every job of this user whose name starts with `prefix`, one line per array task,
    /// including jobs that ended recently (Slurm keeps them for MinJobAge seconds).
    pub fn jobs(&self, prefix: &str) -> Result<JobStates> {
        self.squeue_calls.fetch_add(1, Ordering::Relaxed);
        let args: Vec<String> = ["--me", "-h", "-r", "-t", "all", "-o", "%i|%j|%T|%r|%N"]
            .map(String::from)
            .to_vec();
        let out = run("squeue", &args)?;
        Ok(JobStates(parse_squeue(&out, prefix)))
    }

    pub fn cancel(&self, ids: &[String]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        run("scancel", ids).map(drop)
    }

    /// The names of the nodes a partition (or the default one) can run jobs on.
    pub fn partition_nodes(&self, partition: Option<&str>) -> Result<Vec<String>> {
        let mut args: Vec<String> = ["-h", "-N", "-o", "%N"].map(String::from).to_vec();
        if let Some(p) = partition {
            args.push(format!("--partition={p}"));
        }
        let out = run("sinfo", &args)?;
        let mut nodes: Vec<String> = out
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

/// Run a Slurm client command; its errors become one clear message with what to fix.
fn run(program: &str, args: &[String]) -> Result<String> {
    let out = Command::new(program).args(args).output().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::slurm(
                format!("`{program}` was not found: Slurm's client commands are not installed here"),
                "run on a Slurm login node, or start a local one-node cluster: eval \"$(bash scripts/slurm.sh start)\"",
            )
        } else {
            Error::slurm(format!("could not run `{program}`: {e}"), "check the Slurm installation")
        }
    })?;
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let last = stderr
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("no message")
        .trim();
    let help = if stderr.contains("configuration source")
        || stderr.contains("Unable to contact slurm controller")
        || stderr.contains("Connection refused")
    {
        "cannot reach the Slurm controller: set SLURM_CONF to the cluster's slurm.conf and check `sinfo` works (for a local test cluster: eval \"$(bash scripts/slurm.sh start)\")"
    } else if stderr.contains("nvalid partition") {
        "check `slurm.partition` in the pipeline or --partition; `sinfo -s` lists the partitions"
    } else if stderr.contains("nvalid account") || stderr.contains("association") {
        "check `slurm.account` / --account; `sacctmgr show assoc user=$USER` lists yours"
    } else if stderr.contains("qos") || stderr.contains("QOS") {
        "check `slurm.qos` / --qos"
    } else if stderr.contains("Requested node configuration is not available") {
        "no node has the requested resources (cpus, gpus, mem): lower `resources` or pick another partition"
    } else {
        "see the message above; `man sbatch` lists the flags"
    };
    Err(Error::slurm(format!("`{program}` failed: {last}"), help))
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
}
