//! `--executor slurm` against a real Slurm cluster: the one-node cluster of
//! `scripts/slurm.sh start` (SLURM_CONF must point at it). Without a cluster these tests say
//! SKIPPED on stderr and return; with CEGRAPH_REQUIRE_SLURM=1 (CI) they fail instead.

use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::project::{Project, Run, matrix_project};

/// The test cluster has few CPU slots and some tests hold one on purpose: one test at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Cancels a project's jobs when a test ends, passed or not, so none outlives it.
struct CancelOnDrop<'a>(&'a Project);

impl Drop for CancelOnDrop<'_> {
    fn drop(&mut self) {
        let _ = self.0.cegraph(&["cancel"]);
    }
}

/// The cluster to use, or None (with a visible SKIPPED line) when there is none.
fn cluster(test: &str) -> Option<MutexGuard<'static, ()>> {
    slurm_available(test).then(|| ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner()))
}

fn slurm_available(test: &str) -> bool {
    let ok = Command::new("sinfo")
        .arg("-h")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        if std::env::var_os("CEGRAPH_REQUIRE_SLURM").is_some_and(|v| v == "1") {
            panic!("{test}: CEGRAPH_REQUIRE_SLURM=1 but no Slurm cluster answers `sinfo`");
        }
        eprintln!(
            "SKIPPED {test}: no Slurm cluster (start one: eval \"$(bash scripts/slurm.sh start)\")"
        );
    }
    ok
}

/// `cegraph run --executor slurm` with a short poll interval.
fn slurm_run(p: &Project, extra: &[&str]) -> Run {
    let mut args = vec!["run", "--executor", "slurm", "--poll-max", "1"];
    args.extend_from_slice(extra);
    p.cegraph(&args)
}

fn status_json(p: &Project) -> Vec<serde_json::Value> {
    let out = p.cegraph(&["status", "--json"]);
    serde_json::from_str::<serde_json::Value>(&out.stdout)
        .unwrap_or_else(|e| panic!("status --json: {e}\n{}\n{}", out.stdout, out.stderr))
        .as_array()
        .unwrap()
        .clone()
}

/// The Slurm job of `node` once `status` shows it in `state`.
fn wait_for_state(p: &Project, node: &str, state: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(row) = status_json(p)
            .into_iter()
            .find(|r| r["node"] == node && r["state"] == state)
        {
            return row["slurm_job"].as_str().unwrap_or_default().to_string();
        }
        assert!(
            Instant::now() < deadline,
            "{node} never became {state}: {:?}",
            status_json(p)
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// prep → slow[n=1,2] → report; slow[n=1] sleeps until the file `release` exists (not a
/// dep: creating it changes no key).
const GATED: &str = r#"
stages:
  prep:
    cmd: echo ${node} >> runs.log && echo base > ${outs[0]}
    outs: [out/base.txt]
  slow:
    matrix: {n: [1, 2]}
    deps: [prep]
    cmd: >-
      echo ${node} >> runs.log &&
      i=0; while [ ${matrix.n} = 1 ] && [ ! -e release ] && [ $i -lt 600 ]; do sleep 0.2; i=$((i+1)); done &&
      { cat out/base.txt; echo ${matrix.n}; } > ${outs[0]}
    outs: ["out/slow-${matrix.n}.txt"]
  report:
    deps: [slow]
    cmd: echo ${node} >> runs.log && cat ${deps} > ${outs[0]}
    outs: [out/report.txt]
"#;

fn runs(p: &Project) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_to_string(p.join("runs.log"))
        .unwrap_or_default()
        .lines()
        .map(String::from)
        .collect();
    v.sort();
    v
}

#[test]
fn a_matrix_pipeline_through_slurm_gives_the_same_lock_as_a_local_run() {
    let Some(_cluster) =
        cluster("a_matrix_pipeline_through_slurm_gives_the_same_lock_as_a_local_run")
    else {
        return;
    };
    let local = matrix_project();
    local.cegraph(&["run"]).ok();
    let cluster = matrix_project();
    let out = slurm_run(&cluster, &["--wait"]).ok();
    assert!(
        out.stdout.contains("submitted train: 4 node(s)"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("6 ran on Slurm"), "{}", out.stdout);
    assert_eq!(cluster.read("cegraph.lock"), local.read("cegraph.lock"));
    assert_eq!(cluster.read("out/report.txt"), local.read("out/report.txt"));
    assert_eq!(runs(&cluster).len(), 6, "each node ran exactly once");
    // Everything is now up to date for both executors.
    let again = slurm_run(&cluster, &["--wait"]).ok();
    assert!(again.stdout.contains("0 submitted"), "{}", again.stdout);
    assert!(again.stdout.contains("6 up to date"), "{}", again.stdout);
    cluster.cegraph(&["run"]).ok();
    cluster.cegraph(&["verify"]).ok();
    cluster.assert_cache_consistent();
    // Job files, scripts and Slurm logs are kept with recent runs, then collected.
    let files_under = |dir: &str| {
        walkdir::WalkDir::new(cluster.join(dir))
            .into_iter()
            .flatten()
            .filter(|e| e.file_type().is_file())
            .count()
    };
    assert!(files_under("cache/jobs") >= 6 && files_under("cache/slurm/logs") == 6);
    cluster
        .cegraph(&["gc", "--keep-days", "0", "--grace", "0"])
        .ok();
    assert_eq!(files_under("cache/jobs"), 0);
    assert_eq!(files_under("cache/slurm/logs"), 0);
    cluster.cegraph(&["verify"]).ok();
}

#[test]
fn a_dependency_chain_runs_in_order() {
    let Some(_cluster) = cluster("a_dependency_chain_runs_in_order") else {
        return;
    };
    // Each step needs its upstream's file, and stamps the order it ran in.
    let p = Project::with_pipeline(
        r#"
stages:
  a:
    cmd: echo a >> order.log && echo 1 > ${outs[0]}
    outs: [out/a.txt]
  b:
    deps: [a]
    cmd: sleep 1 && echo b >> order.log && { cat ${deps}; echo 2; } > ${outs[0]}
    outs: [out/b.txt]
  c:
    deps: [b]
    cmd: echo c >> order.log && { cat ${deps}; echo 3; } > ${outs[0]}
    outs: [out/c.txt]
"#,
    );
    let out = slurm_run(&p, &["--wait"]).ok();
    assert!(
        out.stdout.contains("3 submitted (3 sbatch call(s))"),
        "{}",
        out.stdout
    );
    assert_eq!(p.read("order.log"), "a\nb\nc\n");
    assert_eq!(p.read("out/c.txt"), "1\n2\n3\n");
}

#[test]
fn a_cancelled_job_is_reported_its_dependents_do_not_run_and_a_rerun_completes() {
    let Some(_cluster) =
        cluster("a_cancelled_job_is_reported_its_dependents_do_not_run_and_a_rerun_completes")
    else {
        return;
    };
    let p = Project::with_pipeline(GATED);
    let _cancel = CancelOnDrop(&p);
    let waiting = p
        .command(&["run", "--executor", "slurm", "--wait", "--poll-max", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let job = wait_for_state(&p, "slow[n=1]", "running");
    let status = Command::new("scancel").arg(&job).status().unwrap();
    assert!(status.success());
    let first: Run = waiting.wait_with_output().unwrap().into();
    let first = first.code(1);
    let all = format!("{}{}", first.stdout, first.stderr);
    assert!(
        all.contains(&format!("FAILED    slow[n=1] (job {job}): cancelled")),
        "{all}"
    );
    assert!(all.contains("FAILED    report"), "{all}");
    assert!(all.contains("upstream job failed"), "{all}");
    assert!(all.contains("log: "), "{all}");
    assert!(
        !p.join("out/report.txt").exists(),
        "the dependent must not run"
    );
    assert!(!runs(&p).contains(&"report".to_string()));
    // The lock records what did finish.
    let lock = p.read("cegraph.lock");
    assert!(
        lock.contains("\"slow[n=2]\"") && !lock.contains("\"report\""),
        "{lock}"
    );

    // Rerun: only what is missing is submitted, and it completes.
    std::fs::write(p.join("release"), "").unwrap();
    std::fs::remove_file(p.join("runs.log")).unwrap();
    let second = slurm_run(&p, &["--wait"]).ok();
    assert!(second.stdout.contains("2 submitted"), "{}", second.stdout);
    assert!(second.stdout.contains("2 up to date"), "{}", second.stdout);
    assert_eq!(runs(&p), ["report", "slow[n=1]"]);
    assert_eq!(p.read("out/report.txt"), "base\n1\nbase\n2\n");
    p.cegraph(&["status"]).ok();
}

#[test]
fn a_second_run_while_jobs_are_queued_submits_nothing_new_and_cancel_cancels_them() {
    let Some(_cluster) =
        cluster("a_second_run_while_jobs_are_queued_submits_nothing_new_and_cancel_cancels_them")
    else {
        return;
    };
    let p = Project::with_pipeline(GATED);
    let _cancel = CancelOnDrop(&p);
    let first = slurm_run(&p, &[]).ok();
    assert!(first.stdout.contains("4 submitted"), "{}", first.stdout);
    let job = wait_for_state(&p, "slow[n=1]", "running");
    // slow[n=2] finished (its result is in the cache; the lock does not have it yet).
    wait_for_state(&p, "slow[n=2]", "stale");
    let second = slurm_run(&p, &[]).ok();
    assert!(
        second
            .stdout
            .contains("0 submitted (0 sbatch call(s)), 2 already queued"),
        "{}",
        second.stdout
    );
    let rows = status_json(&p);
    let report = rows.iter().find(|r| r["node"] == "report").unwrap();
    assert_eq!(report["state"], "queued", "{rows:?}");
    assert!(report["slurm_job"].as_str().is_some());

    let cancel = p.cegraph(&["cancel"]).ok();
    assert!(
        cancel.stdout.contains("cancelled 2 Slurm job(s)"),
        "{}",
        cancel.stdout
    );
    assert!(cancel.stdout.contains(&job), "{}", cancel.stdout);
    // Killing a running job takes Slurm a moment (it shows as completing meanwhile).
    let deadline = Instant::now() + Duration::from_secs(30);
    while status_json(&p).iter().any(|r| !r["slurm_job"].is_null()) {
        assert!(Instant::now() < deadline, "{:?}", status_json(&p));
        std::thread::sleep(Duration::from_millis(300));
    }

    std::fs::write(p.join("release"), "").unwrap();
    let third = slurm_run(&p, &["--wait"]).ok();
    assert!(third.stdout.contains("2 submitted"), "{}", third.stdout);
    assert_eq!(p.read("out/report.txt"), "base\n1\nbase\n2\n");
}

#[test]
fn early_cutoff_holds_on_slurm() {
    let Some(_cluster) = cluster("early_cutoff_holds_on_slurm") else {
        return;
    };
    let p = Project::with_pipeline(GATED);
    let _cancel = CancelOnDrop(&p);
    std::fs::write(p.join("release"), "").unwrap();
    slurm_run(&p, &["--wait"]).ok();
    let lock = p.read("cegraph.lock");
    // prep's command changes but writes the same bytes: its dependents' jobs find their
    // keys in the cache and do no work.
    p.edit("cegraph.yaml", "echo base >", "printf 'base\\n' >");
    std::fs::remove_file(p.join("runs.log")).unwrap();
    let out = slurm_run(&p, &["--wait"]).ok();
    assert!(out.stdout.contains("4 submitted"), "{}", out.stdout);
    assert!(
        out.stdout.contains("1 ran on Slurm, 3 cache hit(s)"),
        "{}",
        out.stdout
    );
    assert_eq!(runs(&p), ["prep"]);
    let new_lock = p.read("cegraph.lock");
    assert_ne!(lock, new_lock, "prep's key changed");
    let slow = |l: &str| l[l.find("\"slow[n=1]\"").unwrap()..].to_string();
    assert_eq!(
        slow(&lock),
        slow(&new_lock),
        "downstream keys and hashes are unchanged"
    );
}

#[test]
fn without_slurm_commands_the_error_says_what_to_install() {
    let p = matrix_project();
    let empty = tempfile::tempdir().unwrap();
    let out: Run = p
        .command(&["run", "--executor", "slurm"])
        .env("PATH", empty.path())
        .output()
        .unwrap()
        .into();
    let out = out.code(2);
    assert!(
        out.stderr
            .contains("`sinfo` was not found: Slurm's client commands are not installed here"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("scripts/slurm.sh start"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_failing_job_is_reported_with_its_log_and_its_dependents_are_cancelled() {
    let Some(_cluster) =
        cluster("a_failing_job_is_reported_with_its_log_and_its_dependents_are_cancelled")
    else {
        return;
    };
    let p = Project::with_pipeline(
        r#"
stages:
  broken:
    cmd: echo "loss is nan" && exit 3
    outs: [out/model.txt]
  eval:
    deps: [broken]
    cmd: cat ${deps} > ${outs[0]}
    outs: [out/eval.txt]
"#,
    );
    let _cancel = CancelOnDrop(&p);
    let out = slurm_run(&p, &["--wait"]).code(1);
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(all.contains("FAILED    broken"), "{all}");
    assert!(all.contains("exited with status 3"), "{all}");
    let log = all
        .lines()
        .find_map(|l| l.trim().strip_prefix("log: "))
        .unwrap_or_else(|| panic!("no log path in {all}"));
    let text = std::fs::read_to_string(log).unwrap();
    assert!(text.contains("loss is nan"), "{log}: {text}");
    assert!(
        all.contains("FAILED    eval") && all.contains("upstream job failed"),
        "{all}"
    );
    assert!(!p.join("out/eval.txt").exists());
}

#[test]
fn remote_flags_with_the_slurm_executor_are_refused_with_the_way_to_do_it() {
    let p = matrix_project();
    let out = p.cegraph(&["run", "--executor", "slurm", "--push"]).code(2);
    assert!(
        out.stderr
            .contains("--remote and --push do not work with --executor slurm yet"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("cegraph push"), "{}", out.stderr);
}

#[test]
fn a_rerun_after_a_failure_waits_for_the_new_job_not_the_old_failed_result() {
    let Some(_cluster) =
        cluster("a_rerun_after_a_failure_waits_for_the_new_job_not_the_old_failed_result")
    else {
        return;
    };
    let p = Project::with_pipeline(
        r#"
stages:
  flaky:
    cmd: "test -e fixed || exit 3; echo ok > ${outs[0]}"
    outs: [out/ok.txt]
"#,
    );
    let _cancel = CancelOnDrop(&p);
    let first = slurm_run(&p, &["--wait"]).code(1);
    assert!(
        all_of(&first).contains("exited with status 3"),
        "{}",
        all_of(&first)
    );
    // The same job (same node, same inputs: the same id) is submitted again; its earlier
    // result must not be read as this submission's.
    std::fs::write(p.join("fixed"), "").unwrap();
    let second = slurm_run(&p, &["--wait"]).ok();
    assert!(
        second.stdout.contains("1 ran on Slurm"),
        "{}",
        all_of(&second)
    );
    assert_eq!(p.read("out/ok.txt"), "ok\n");
}

fn all_of(r: &Run) -> String {
    format!("{}{}", r.stdout, r.stderr)
}
