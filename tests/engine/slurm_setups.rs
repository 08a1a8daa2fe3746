//! `--executor slurm` against Slurm set-ups unlike the one-node test cluster, simulated by a
//! fake `sbatch`/`squeue`/`sacct`/`scancel`/`sinfo` (tests/engine/fake_slurm.sh) put first on
//! PATH: no accounting database, squeue forgetting ended jobs or failing while slurmctld
//! restarts, requeued jobs, results late on a shared filesystem, multi-cluster `sbatch`, site
//! wrappers that print extra lines, policy refusals, and Slurm before 20.11. They run
//! everywhere, without a cluster.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::project::{Project, Run};

const FAKE: &str = include_str!("fake_slurm.sh");

struct FakeSlurm {
    dir: tempfile::TempDir,
}

impl FakeSlurm {
    fn new() -> FakeSlurm {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::create_dir_all(dir.path().join("state")).unwrap();
        let script = bin.join("fake_slurm");
        std::fs::write(&script, FAKE).unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        for name in ["sbatch", "squeue", "sacct", "scancel", "sinfo"] {
            std::os::unix::fs::symlink(&script, bin.join(name)).unwrap();
        }
        FakeSlurm { dir }
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// `cegraph <args>` with the fake first on PATH and `env` set.
    fn cegraph(&self, p: &Project, args: &[&str], env: &[(&str, &str)]) -> Run {
        self.cegraph_in(p, p.path(), args, env)
    }

    fn cegraph_in(&self, p: &Project, cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut c = self.command(p, args, env);
        c.current_dir(cwd);
        c.output().unwrap().into()
    }

    fn command(&self, p: &Project, args: &[&str], env: &[(&str, &str)]) -> Command {
        let path = format!(
            "{}:{}",
            self.dir.path().join("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut c = p.command(args);
        c.env("PATH", path)
            .env("FAKE_SLURM_DIR", self.state())
            .env_remove("SLURM_CONF")
            .env("CEGRAPH_SLURM_RESULT_WAIT", "20");
        for (k, v) in env {
            c.env(k, v);
        }
        c
    }

    /// `run --executor slurm --wait`; Err with what it printed if it had not ended after
    /// `limit` (then it is killed).
    fn run_wait_bounded(
        &self,
        p: &Project,
        env: &[(&str, &str)],
        limit: Duration,
    ) -> Result<Run, Run> {
        let mut c = self.command(
            p,
            &["run", "--executor", "slurm", "--wait", "--poll-max", "0.5"],
            env,
        );
        let mut child = c
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + limit;
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                return Err(child.wait_with_output().unwrap().into());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(child.wait_with_output().unwrap().into())
    }

    fn run_wait(&self, p: &Project, env: &[(&str, &str)]) -> Run {
        self.cegraph(
            p,
            &["run", "--executor", "slurm", "--wait", "--poll-max", "0.5"],
            env,
        )
    }

    /// Every call the fake received, one per line (`squeue --user=0 -h ...`).
    fn calls(&self) -> String {
        std::fs::read_to_string(self.state().join("calls.log")).unwrap_or_default()
    }
}

/// a → b, each writing a file.
const CHAIN: &str = r#"
stages:
  a:
    cmd: echo 1 > ${outs[0]}
    outs: [out/a.txt]
  b:
    deps: [a]
    cmd: "{ cat ${deps}; echo 2; } > ${outs[0]}"
    outs: [out/b.txt]
"#;

/// `train`, whose command fails until `go` exists in the fake's directory, then `eval`.
fn flaky(fake: &Path) -> Project {
    Project::with_pipeline(&format!(
        r#"
stages:
  train:
    cmd: "test -e {go} || {{ echo 'no go yet'; exit 3; }}; echo model > ${{outs[0]}}"
    outs: [out/model.txt]
  eval:
    deps: [train]
    cmd: cat ${{deps}} > ${{outs[0]}}
    outs: [out/eval.txt]
"#,
        go = fake.join("go").display()
    ))
}

fn all(r: &Run) -> String {
    format!("{}{}", r.stdout, r.stderr)
}

#[test]
fn a_squeue_timeout_while_waiting_is_retried_not_a_failure() {
    let fake = FakeSlurm::new();
    let p = Project::with_pipeline(CHAIN);
    // The jobs run at the third squeue call; the first two time out like a restarting slurmctld.
    let out = fake
        .run_wait(&p, &[("FAKE_DEFER", "3"), ("FAKE_SQUEUE_FAIL", "1-2")])
        .ok();
    assert!(out.stdout.contains("2 ran on Slurm"), "{}", all(&out));
    assert!(
        out.stderr
            .contains("squeue failed (slurm_load_jobs error: Socket timed out"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("squeue answers again"),
        "{}",
        out.stderr
    );
    assert_eq!(p.read("out/b.txt"), "1\n2\n");
}

#[test]
fn an_unreachable_controller_while_waiting_gives_up_after_a_bounded_time_with_the_way_back() {
    let fake = FakeSlurm::new();
    let p = Project::with_pipeline(CHAIN);
    let out = fake
        .run_wait(
            &p,
            &[
                ("FAKE_DEFER", "1000"),
                ("FAKE_SQUEUE_FAIL", "all"),
                ("CEGRAPH_SLURM_SQUEUE_WAIT", "2"),
            ],
        )
        .code(2);
    assert!(
        out.stderr.contains("squeue has failed for 2s"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("--executor slurm --wait` follows them again"),
        "{}",
        out.stderr
    );
    assert!(
        !all(&out).contains("FAILED"),
        "no job is failed: {}",
        all(&out)
    );
    let polls = fake
        .calls()
        .lines()
        .filter(|l| l.starts_with("squeue"))
        .count();
    assert!(polls >= 2, "retried: {}", fake.calls());
}

#[test]
fn a_failed_result_from_an_earlier_submission_is_not_taken_for_the_new_jobs_result() {
    let fake = FakeSlurm::new();
    let p = flaky(&fake.state());
    let first = fake.run_wait(&p, &[]).code(1);
    assert!(
        all(&first).contains("exited with status 3"),
        "{}",
        all(&first)
    );
    std::fs::write(fake.state().join("go"), "").unwrap();
    // The same jobs again (same ids): this time they run a few polls after submission.
    let second = fake.run_wait(&p, &[("FAKE_DEFER", "2")]).ok();
    assert!(second.stdout.contains("2 ran on Slurm"), "{}", all(&second));
    assert_eq!(p.read("out/eval.txt"), "model\n");
}

#[test]
fn a_requeued_job_whose_first_attempt_failed_is_followed_to_its_second() {
    let fake = FakeSlurm::new();
    let p = flaky(&fake.state());
    // train's first attempt fails and writes its result; Slurm requeues it and it succeeds.
    let out = fake
        .run_wait(&p, &[("FAKE_REQUEUE_STAGE", "train"), ("FAKE_DEFER", "0")])
        .ok();
    assert!(out.stdout.contains("2 ran on Slurm"), "{}", all(&out));
    assert!(!all(&out).contains("FAILED"), "{}", all(&out));
    assert_eq!(p.read("out/eval.txt"), "model\n");
}

#[test]
fn a_job_killed_by_slurm_after_squeue_forgot_it_is_reported_with_the_reason_from_its_log() {
    let fake = FakeSlurm::new();
    let p = flaky(&fake.state());
    std::fs::write(fake.state().join("go"), "").unwrap();
    // No accounting (the fake's sacct says so) and squeue lists no ended job.
    let out = fake
        .run_wait(
            &p,
            &[
                ("FAKE_KILL_STAGE", "train:TIMEOUT"),
                ("FAKE_FORGET", "1"),
                ("CEGRAPH_SLURM_RESULT_WAIT", "1"),
            ],
        )
        .code(1);
    let text = all(&out);
    assert!(text.contains("FAILED    train"), "{text}");
    assert!(text.contains("hit its time limit"), "{text}");
    // eval never ran (Slurm cancelled it), left no log and no record: failed after the grace.
    assert!(text.contains("FAILED    eval"), "{text}");
    assert!(text.contains("no result after 1s"), "{text}");
    assert!(!p.join("out/eval.txt").exists());
    assert!(fake.calls().contains("sacct"), "accounting was asked");
}

#[test]
fn an_oom_killed_node_is_reported_with_slurms_out_of_memory_not_only_as_killed() {
    let fake = FakeSlurm::new();
    let p = Project::with_pipeline(
        r#"
stages:
  train:
    cmd: kill -9 $$
    outs: [out/model.txt]
"#,
    );
    let out = fake.run_wait(&p, &[("FAKE_OOM_STAGE", "train")]).code(1);
    let text = all(&out);
    assert!(text.contains("FAILED    train"), "{text}");
    assert!(
        text.contains("Slurm: ran out of memory (resources.mem)"),
        "{text}"
    );
}

#[test]
fn a_result_late_on_the_shared_filesystem_is_waited_for_not_a_failure() {
    let fake = FakeSlurm::new();
    let p = Project::with_pipeline(CHAIN);
    // Each result reaches other machines 1.5 s after its job wrote it: b's job (next in line)
    // and the waiting cegraph, to whom Slurm already shows the jobs COMPLETED.
    let out = fake.run_wait(&p, &[("FAKE_HIDE_SECONDS", "1.5")]).ok();
    assert!(out.stdout.contains("2 ran on Slurm"), "{}", all(&out));
    assert_eq!(p.read("out/b.txt"), "1\n2\n");
}

#[test]
fn a_result_that_never_appears_fails_after_the_grace_saying_what_to_check() {
    let fake = FakeSlurm::new();
    let p = Project::with_pipeline(CHAIN);
    let out = fake
        .run_wait(
            &p,
            &[
                ("FAKE_HIDE_RESULTS", "100000"),
                ("CEGRAPH_SLURM_RESULT_WAIT", "1"),
            ],
        )
        .code(1);
    let text = all(&out);
    assert!(text.contains("Slurm says it completed"), "{text}");
    assert!(text.contains("shared filesystem"), "{text}");
}

#[test]
fn sbatch_naming_another_cluster_is_followed_on_that_cluster() {
    let fake = FakeSlurm::new();
    let p = Project::with_pipeline(CHAIN);
    let env = [("FAKE_SBATCH_CLUSTER", "gpu2"), ("FAKE_DEFER", "2")];
    let out = fake.run_wait(&p, &env).ok();
    assert!(out.stdout.contains("2 ran on Slurm"), "{}", all(&out));
    assert!(fake.calls().contains("--clusters=gpu2"), "{}", fake.calls());
    // A later process (status, cancel) asks the same cluster, from the ledger.
    std::fs::remove_dir_all(p.join("out")).unwrap();
    let queued = fake.cegraph(
        &p,
        &["run", "--executor", "slurm", "--force-all"],
        &[("FAKE_SBATCH_CLUSTER", "gpu2"), ("FAKE_DEFER", "1000")],
    );
    let queued = queued.ok();
    assert!(queued.stdout.contains("2 submitted"), "{}", all(&queued));
    let cancel = fake.cegraph(&p, &["cancel"], &[]).ok();
    assert!(
        cancel.stdout.contains("cancelled 2 Slurm job(s)"),
        "{}",
        all(&cancel)
    );
    assert!(
        fake.calls()
            .lines()
            .any(|l| l.starts_with("scancel --clusters=gpu2")),
        "{}",
        fake.calls()
    );
}

#[test]
fn sbatch_warnings_and_extra_stdout_lines_do_not_break_submission() {
    let fake = FakeSlurm::new();
    let p = Project::with_pipeline(CHAIN);
    let out = fake
        .run_wait(
            &p,
            &[
                (
                    "FAKE_SBATCH_STDOUT_BEFORE",
                    "Your job will be charged to account lab",
                ),
                (
                    "FAKE_SBATCH_STDERR",
                    "sbatch: warning: --mem is ignored here",
                ),
            ],
        )
        .ok();
    assert!(out.stdout.contains("2 ran on Slurm"), "{}", all(&out));
    let relayed = out
        .stderr
        .matches("sbatch said: sbatch: warning: --mem is ignored here")
        .count();
    assert_eq!(relayed, 1, "shown once: {}", out.stderr);
}

#[test]
fn a_refused_submission_shows_slurms_own_reason_and_where_to_change_it() {
    let fake = FakeSlurm::new();
    let p = Project::with_pipeline(CHAIN);
    let out = fake
        .run_wait(
            &p,
            &[(
                "FAKE_SBATCH_FAIL",
                "sbatch: error: QOSMaxSubmitJobPerUserLimit\nsbatch: error: Batch job submission failed: Job violates accounting/QOS policy (job submit limit, user's size and/or time limits)",
            )],
        )
        .code(2);
    assert!(
        out.stderr.contains("QOSMaxSubmitJobPerUserLimit"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("violates accounting/QOS policy"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("SBATCH_QOS"), "{}", out.stderr);
    assert!(
        out.stderr.contains("slurm: {account, qos, partition}"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_submission_refused_halfway_says_what_was_queued_and_a_rerun_submits_the_rest() {
    let fake = FakeSlurm::new();
    let p = Project::with_pipeline(CHAIN);
    let limit = "sbatch: error: AssocMaxSubmitJobLimit\nsbatch: error: Batch job submission failed: Job violates accounting/QOS policy (job submit limit, user's size and/or time limits)";
    let env = [
        ("FAKE_DEFER", "1000"),
        ("FAKE_SBATCH_FAIL", limit),
        ("FAKE_SBATCH_FAIL_AFTER", "1"),
    ];
    let out = fake
        .cegraph(&p, &["run", "--executor", "slurm"], &env)
        .code(2);
    assert!(
        out.stderr
            .contains("1 job(s) of this run were submitted before it and stay queued"),
        "{}",
        out.stderr
    );
    let rerun = fake
        .cegraph(
            &p,
            &["run", "--executor", "slurm"],
            &[("FAKE_DEFER", "1000")],
        )
        .ok();
    assert!(
        rerun
            .stdout
            .contains("1 submitted (1 sbatch call(s)), 1 already queued"),
        "{}",
        all(&rerun)
    );
}

#[test]
fn a_relative_cache_path_reaches_the_jobs_that_start_in_the_workspace() {
    let fake = FakeSlurm::new();
    let p = Project::with_pipeline(CHAIN);
    std::fs::create_dir_all(p.join("sub")).unwrap();
    let yaml = p.join("cegraph.yaml");
    let args = [
        "run",
        yaml.to_str().unwrap(),
        "--cache",
        "relcache",
        "--executor",
        "slurm",
        "--wait",
    ];
    let out = fake.cegraph_in(&p, &p.join("sub"), &args, &[]).ok();
    assert!(out.stdout.contains("2 ran on Slurm"), "{}", all(&out));
    assert!(p.join("sub/relcache/slurm/logs/101_0.out").exists());
}

#[test]
fn a_job_left_pending_on_a_dependency_that_can_never_be_satisfied_is_failed_not_waited_for() {
    let fake = FakeSlurm::new();
    let p = Project::with_pipeline(CHAIN);
    // A Slurm that does not cancel such jobs (--kill-on-invalid-dep not honoured).
    let env = [
        ("FAKE_DEFER", "1000000"),
        ("FAKE_PENDING_REASON", "DependencyNeverSatisfied"),
    ];
    let out = fake
        .run_wait_bounded(&p, &env, Duration::from_secs(60))
        .unwrap_or_else(|r| panic!("the wait never ended: {}", all(&r)));
    let out = out.code(1);
    assert!(
        all(&out).contains("an upstream job failed"),
        "{}",
        all(&out)
    );
    assert!(
        fake.calls().lines().any(|l| l.starts_with("scancel")),
        "cancelled: {}",
        fake.calls()
    );
}

#[test]
fn a_held_job_is_named_with_its_reason_while_waiting() {
    let fake = FakeSlurm::new();
    let p = Project::with_pipeline(CHAIN);
    let env = [
        ("FAKE_DEFER", "1000000"),
        ("FAKE_PENDING_REASON", "JobHeldAdmin"),
        ("CEGRAPH_SLURM_SQUEUE_WAIT", "1"),
    ];
    // It waits (a person may release it): stopped here after a few polls.
    let Err(out) = fake.run_wait_bounded(&p, &env, Duration::from_secs(3)) else {
        panic!("a held job is waited for");
    };
    assert!(
        out.stderr
            .contains("(job 101_0) is pending with reason JobHeldAdmin: Slurm will not start it"),
        "{}",
        all(&out)
    );
    assert_eq!(
        out.stderr.matches("JobHeldAdmin").count(),
        2,
        "said once per job"
    );
    let mut c = fake.command(&p, &["status"], &[]);
    let status: Run = c.output().unwrap().into();
    assert!(status.stdout.contains("queued"), "{}", all(&status));
}

#[test]
fn cancelling_jobs_that_just_ended_is_not_an_error() {
    let fake = FakeSlurm::new();
    let p = Project::with_pipeline(CHAIN);
    fake.cegraph(
        &p,
        &["run", "--executor", "slurm"],
        &[("FAKE_DEFER", "1000")],
    )
    .ok();
    let out = fake
        .cegraph(&p, &["cancel"], &[("FAKE_SCANCEL_ENDED", "1")])
        .ok();
    assert!(
        out.stdout.contains("cancelled 2 Slurm job(s)"),
        "{}",
        all(&out)
    );
}

#[test]
fn squeue_without_me_works_on_slurm_before_20_11() {
    let fake = FakeSlurm::new();
    let p = Project::with_pipeline(CHAIN);
    let out = fake
        .run_wait(&p, &[("FAKE_OLD_SLURM", "1"), ("FAKE_DEFER", "2")])
        .ok();
    assert!(out.stdout.contains("2 ran on Slurm"), "{}", all(&out));
}
