//! Why Slurm stopped a job, from the job's own output file: slurmstepd writes a line there
//! when it kills a job, which works where `squeue` has forgotten the job and no accounting
//! database (sacct) is kept.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// Only the end of a log is read: slurmstepd's line comes last, training logs can be large.
const TAIL_BYTES: u64 = 64 * 1024;

/// slurmstepd's messages, most specific first, and what they mean for people.
const MARKERS: &[(&str, &str)] = &[
    ("DUE TO TIME LIMIT", "hit its time limit (resources.time)"),
    ("DUE TO PREEMPTION", "pre-empted"),
    ("DUE TO NODE FAILURE", "its node failed"),
    ("oom_kill event", "ran out of memory (resources.mem)"),
    ("oom-kill event", "ran out of memory (resources.mem)"),
    (
        "Exceeded job memory limit",
        "ran out of memory (resources.mem)",
    ),
    ("CANCELLED AT", "cancelled (scancel)"),
];

/// The reason slurmstepd gave in the log for stopping the job, if it gave one.
pub fn from_log(log: &Path) -> Option<String> {
    let tail = tail(log)?;
    MARKERS
        .iter()
        .find(|(m, _)| tail.contains(m))
        .map(|(_, why)| why.to_string())
}

/// The log's last non-empty line (what a job that died early last said).
pub fn last_line(log: &Path) -> Option<String> {
    let tail = tail(log)?;
    let line = tail.lines().rev().map(str::trim).find(|l| !l.is_empty())?;
    let mut short: String = line.chars().take(300).collect();
    if short.len() < line.len() {
        short.push('…');
    }
    Some(short)
}

fn tail(log: &Path) -> Option<String> {
    let mut f = File::open(log).ok()?;
    let len = f.metadata().ok()?.len();
    f.seek(SeekFrom::Start(len.saturating_sub(TAIL_BYTES)))
        .ok()?;
    let mut bytes = Vec::new();
    f.read_to_end(&mut bytes).ok()?;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log_with(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("1_0.out");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn slurmstepd_kill_lines_name_the_reason() {
        for (line, want) in [
            (
                "slurmstepd: error: *** JOB 12 ON n1 CANCELLED AT 2026-01-01T00:00:00 DUE TO TIME LIMIT ***",
                "time limit",
            ),
            (
                "slurmstepd: error: Detected 1 oom_kill event in StepId=12.batch. Some of the step tasks have been OOM Killed.",
                "out of memory",
            ),
            (
                "slurmstepd: error: *** JOB 12 ON n1 CANCELLED AT 2026-01-01T00:00:00 DUE TO PREEMPTION ***",
                "pre-empted",
            ),
            (
                "slurmstepd: error: *** JOB 12 ON n1 CANCELLED AT 2026-01-01T00:00:00 ***",
                "cancelled",
            ),
        ] {
            let (_d, log) = log_with(&format!("step 1\nloss 2.3\n{line}\n"));
            let why = from_log(&log).unwrap();
            assert!(why.contains(want), "{line} → {why}");
        }
        let (_d, log) = log_with("all fine\n");
        assert_eq!(from_log(&log), None);
        assert_eq!(last_line(&log).as_deref(), Some("all fine"));
        assert_eq!(from_log(Path::new("/nonexistent/log")), None);
    }
}
