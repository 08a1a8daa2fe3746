//! The cache survives kills and concurrent runs; gc keeps what lock files need.

use std::time::{Duration, Instant};

use crate::project::{Project, matrix_project};

/// A chain whose middle node is slow enough to be killed while it runs.
const SLOW_CHAIN: &str = r#"
stages:
  first:
    matrix: {i: [1, 2, 3]}
    cmd: head -c 200000 /dev/zero | tr '\0' '${i}' > ${outs[0]}
    outs: ["out/first-${i}.bin"]
  slow:
    deps: [first]
    cmd: sleep 1.5 && cat ${deps} > ${outs[0]}
    outs: [out/slow.bin]
  last:
    deps: [slow]
    cmd: wc -c < ${deps} > ${outs[0]}
    outs: [out/last.txt]
"#;

#[test]
fn kill_9_mid_run_leaves_no_half_written_entry_and_the_next_run_finishes() {
    let p = Project::with_pipeline(SLOW_CHAIN);
    let mut child = p.command(&["run", "--jobs", "1"]).spawn().unwrap();
    // Wait until the first stage is recorded and `slow` is running, then kill -9.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !p.join("out/first-3.bin").exists()
        || !p
            .join("cache/runs")
            .read_dir()
            .is_ok_and(|mut d| d.next().is_some())
    {
        assert!(Instant::now() < deadline, "the run never got going");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    child.kill().unwrap();
    child.wait().unwrap();
    p.assert_cache_consistent();

    let out = p.cegraph(&["run"]).ok();
    assert!(out.stdout.contains("ran       last"), "{}", out.stdout);
    assert_eq!(p.read("out/last.txt").trim(), "600000");
    p.cegraph(&["verify"]).ok();
    p.assert_cache_consistent();
}

#[test]
fn two_concurrent_runs_on_one_cache_do_not_corrupt_it() {
    let a = matrix_project();
    let b = matrix_project();
    // Different workspaces and pipelines, one shared cache.
    let cache = tempfile::tempdir().unwrap();
    let cache_arg = cache.path().to_str().unwrap();
    let mut ca = a.command(&["run", "--cache", cache_arg]).spawn().unwrap();
    let mut cb = b.command(&["run", "--cache", cache_arg]).spawn().unwrap();
    assert!(ca.wait().unwrap().success());
    assert!(cb.wait().unwrap().success());
    a.cegraph(&["verify", "--cache", cache_arg]).ok();
    b.cegraph(&["verify", "--cache", cache_arg]).ok();
    assert_eq!(a.read("cegraph.lock"), b.read("cegraph.lock"));
    // And two runs of the same pipeline wait for each other rather than interleave.
    a.edit("cegraph.yaml", "lr: 0.001", "lr: 0.5");
    let mut c1 = a.command(&["run", "--cache", cache_arg]).spawn().unwrap();
    let mut c2 = a.command(&["run", "--cache", cache_arg]).spawn().unwrap();
    assert!(c1.wait().unwrap().success());
    assert!(c2.wait().unwrap().success());
    a.cegraph(&["verify", "--cache", cache_arg]).ok();
}

#[test]
fn gc_removes_what_no_lock_needs_and_keeps_what_it_does() {
    let p = matrix_project();
    p.cegraph(&["run"]).ok();
    p.edit("cegraph.yaml", "lr: 0.001", "lr: 0.9");
    p.cegraph(&["run"]).ok();
    // Old runs are recent, so a plain gc keeps them.
    let kept = p.cegraph(&["gc"]).ok();
    assert!(kept.stdout.contains("removed 0 entries"), "{}", kept.stdout);
    // Everything is younger than the grace period: `--grace 0` lets gc see past it.
    let dry = p
        .cegraph(&["gc", "--dry-run", "--keep-days", "0", "--grace", "0"])
        .ok();
    assert!(dry.stdout.contains("would remove"), "{}", dry.stdout);
    let swept = p.cegraph(&["gc", "--keep-days", "0", "--grace", "0"]).ok();
    assert!(
        !swept.stdout.contains("removed 0 entries"),
        "{}",
        swept.stdout
    );
    // Everything the lock file names is still there: delete the workspace and verify from cache.
    std::fs::remove_dir_all(p.join("out")).unwrap();
    p.cegraph(&["verify"]).ok();
    p.cegraph(&["run"]).ok();
    // The old lr=0.001 results are gone: switching back must run again.
    p.edit("cegraph.yaml", "lr: 0.9", "lr: 0.001");
    let ran = p.executed(|| {
        p.cegraph(&["run"]).ok();
    });
    assert_eq!(ran.len(), 5, "{ran:?}");
}

#[test]
fn directory_outputs_are_cached_and_restored_whole() {
    let p = Project::with_pipeline(
        r#"
stages:
  shards:
    params: {n: 3}
    cmd: mkdir -p ${outs[0]}/sub && for i in $(seq ${params.n}); do echo $i > ${outs[0]}/sub/$i.txt; done
    outs: [out/shards]
  count:
    deps: [out/shards]
    cmd: ls ${deps[0]}/sub | wc -l > ${outs[0]}
    outs: [out/count.txt]
"#,
    );
    p.cegraph(&["run"]).ok();
    assert_eq!(p.read("out/count.txt").trim(), "3");
    p.edit("cegraph.yaml", "n: 3", "n: 5");
    p.cegraph(&["run"]).ok();
    assert_eq!(p.read("out/count.txt").trim(), "5");
    p.edit("cegraph.yaml", "n: 5", "n: 3");
    let out = p.cegraph(&["run"]).ok();
    assert!(out.stdout.contains("0 ran, 2 restored"), "{}", out.stdout);
    assert!(
        !p.join("out/shards/sub/5.txt").exists(),
        "restored directory kept a stale file"
    );
    assert_eq!(p.read("out/shards/sub/3.txt"), "3\n");
    p.cegraph(&["verify"]).ok();
}
