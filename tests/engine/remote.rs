//! Remote caches over `file://` (always run): push from one workspace, pull + checkout (or
//! `run --remote`) in a fresh clone; corrupt, missing and interrupted transfers; clear errors
//! for bad remotes. S3 and HTTP endpoints: `remote_endpoints.rs`; repair and conflicts:
//! `remote_trust.rs`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::project::{Project, Run};

/// Two cmd stages: a file and a directory output, then a node reading them.
const STAGES: &str = r#"
stages:
  make:
    params: {n: 3}
    cmd: >-
      echo ${node} >> runs.log &&
      head -c 300000 /dev/urandom > ${outs[0]} &&
      mkdir -p ${outs[1]}/sub &&
      for i in $(seq ${params.n}); do echo "shard $i" > ${outs[1]}/sub/$i.txt; done &&
      printf '#!/bin/sh\necho hi\n' > ${outs[1]}/run.sh && chmod +x ${outs[1]}/run.sh
    outs: [out/blob.bin, out/shards]
  count:
    deps: [make]
    cmd: echo ${node} >> runs.log && cat ${deps} | wc -c > ${outs[0]}
    outs: [out/count.txt]
"#;

/// The workspace files a run of [`STAGES`] leaves.
const OUTPUTS: &[&str] = &[
    "out/blob.bin",
    "out/shards/sub/1.txt",
    "out/shards/sub/2.txt",
    "out/shards/sub/3.txt",
    "out/shards/run.sh",
    "out/count.txt",
];

pub(crate) fn pipeline(remotes: &str) -> String {
    format!("remotes:\n{remotes}\n{STAGES}")
}

pub(crate) fn file_url(dir: &Path) -> String {
    format!("file://{}", dir.display())
}

/// A workspace that ran [`STAGES`] with a `file://` remote `shared` in its own temp dir.
pub(crate) struct Origin {
    pub(crate) project: Project,
    pub(crate) remote: tempfile::TempDir,
}

pub(crate) fn origin() -> Origin {
    let remote = tempfile::tempdir().unwrap();
    let project =
        Project::with_pipeline(&pipeline(&format!("  shared: {}", file_url(remote.path()))));
    project.cegraph(&["run"]).ok();
    Origin { project, remote }
}

/// A fresh clone: the pipeline and lock files only (no cache, no outputs).
pub(crate) fn clone_of(p: &Project) -> Project {
    let c = Project::new();
    c.write("cegraph.yaml", &p.read("cegraph.yaml"));
    c.write("cegraph.lock", &p.read("cegraph.lock"));
    c
}

pub(crate) fn assert_same_outputs(a: &Project, b: &Project) {
    for rel in OUTPUTS {
        let (x, y) = (
            std::fs::read(a.join(rel)).unwrap(),
            std::fs::read(b.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}")),
        );
        assert!(x == y, "{rel} differs");
    }
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(b.join("out/shards/run.sh"))
        .unwrap()
        .permissions()
        .mode();
    assert!(mode & 0o100 != 0, "run.sh lost its executable bit");
}

/// The object hash the lock file records for `path` (a file output).
pub(crate) fn locked_hash(p: &Project, node: &str) -> String {
    let lock: serde_json::Value = serde_json::from_str(&p.read("cegraph.lock")).unwrap();
    lock["nodes"][node]["outs"][0]["hash"]
        .as_str()
        .unwrap()
        .to_string()
}

pub(crate) fn sharded(root: &Path, dir: &str, hash: &str) -> PathBuf {
    root.join(dir).join(&hash[..2]).join(&hash[2..])
}

#[test]
fn push_then_pull_and_checkout_in_a_fresh_clone_reproduces_the_workspace() {
    let o = origin();
    let pushed = o.project.cegraph(&["push"]).ok();
    assert!(
        pushed.stdout.contains("pushed 7 object(s)") && pushed.stdout.contains("2 run record(s)"),
        "{}",
        pushed.stdout
    );
    // Everything is there now: a second push sends nothing.
    let again = o.project.cegraph(&["push", "--remote", "shared"]).ok();
    assert!(
        again.stdout.contains("pushed 0 object(s)")
            && again.stdout.contains("7 object(s) were already there"),
        "{}",
        again.stdout
    );

    let c = clone_of(&o.project);
    c.cegraph(&["verify", "--remote", "shared"]).ok();
    let pulled = c.cegraph(&["pull"]).ok();
    assert!(
        pulled.stdout.contains("pulled 7 object(s)") && pulled.stdout.contains("2 run record(s)"),
        "{}",
        pulled.stdout
    );
    assert!(!c.join("out").exists(), "pull must not touch the workspace");
    let checked = c.cegraph(&["checkout"]).ok();
    assert!(
        checked.stdout.contains("checked out 3 output(s)"),
        "{}",
        checked.stdout
    );
    assert_same_outputs(&o.project, &c);
    c.cegraph(&["verify"]).ok();
    c.assert_cache_consistent();
    // Nothing is stale: a run runs and restores nothing.
    let ran = c.executed(|| {
        let out = c.cegraph(&["run"]).ok();
        assert!(out.stdout.contains("0 ran, 0 restored"), "{}", out.stdout);
    });
    assert!(ran.is_empty(), "{ran:?}");
    // A second pull and checkout have nothing to do.
    let again = c.cegraph(&["pull"]).ok();
    assert!(
        again.stdout.contains("pulled 0 object(s)"),
        "{}",
        again.stdout
    );
    let again = c.cegraph(&["checkout"]).ok();
    assert!(
        again
            .stdout
            .contains("checked out 0 output(s); 3 already in place"),
        "{}",
        again.stdout
    );
}

#[test]
fn pull_and_checkout_of_named_targets_only() {
    let o = origin();
    o.project.cegraph(&["push"]).ok();
    let c = clone_of(&o.project);
    let pulled = c.cegraph(&["pull", "cegraph.yaml", "count"]).ok();
    assert!(
        pulled.stdout.contains("pulled 1 object(s)"),
        "{}",
        pulled.stdout
    );
    c.cegraph(&["checkout", "cegraph.yaml", "count"]).ok();
    assert_eq!(c.read("out/count.txt"), o.project.read("out/count.txt"));
    assert!(!c.join("out/blob.bin").exists());
    // The rest is not in the cache: checkout says to pull it.
    let missing = c.cegraph(&["checkout"]).code(1);
    assert!(
        missing
            .stdout
            .contains("make: out/blob.bin is not in the local cache (run `cegraph pull`)"),
        "{}",
        missing.stdout
    );
    let unknown = c.cegraph(&["pull", "cegraph.yaml", "nope"]).code(2);
    assert!(
        unknown.stderr.contains("no stage or node named `nope`"),
        "{}",
        unknown.stderr
    );
}

#[test]
fn run_remote_in_a_fresh_clone_runs_nothing_and_fetches_everything() {
    let o = origin();
    o.project.cegraph(&["push"]).ok();
    let c = clone_of(&o.project);
    let ran = c.executed(|| {
        let out = c.cegraph(&["run", "--remote", "shared"]).ok();
        assert!(
            out.stdout.contains("0 ran") && out.stdout.contains("2 fetched from remote `shared`"),
            "{}",
            out.stdout
        );
        assert!(
            out.stdout.contains("fetched   make (from remote)"),
            "{}",
            out.stdout
        );
    });
    assert!(ran.is_empty(), "ran {ran:?}");
    assert_same_outputs(&o.project, &c);
    assert_eq!(c.read("cegraph.lock"), o.project.read("cegraph.lock"));
    c.cegraph(&["verify"]).ok();
    // The fetched records carry provenance: `show` works on the clone.
    c.cegraph(&["show", "count"]).ok();

    // A node the remote does not have runs; the rest is still fetched.
    let d = clone_of(&o.project);
    d.edit("cegraph.yaml", "wc -c", "wc -c ");
    let ran = d.executed(|| {
        let out = d.cegraph(&["run", "--remote", "shared"]).ok();
        assert!(
            out.stdout.contains("1 ran") && out.stdout.contains("1 fetched"),
            "{}",
            out.stdout
        );
    });
    assert_eq!(ran, vec!["count"]);
}

#[test]
fn run_push_uploads_each_node_and_another_clone_fetches_it() {
    let remote = tempfile::tempdir().unwrap();
    let p = Project::with_pipeline(&pipeline(&format!("  shared: {}", file_url(remote.path()))));
    let out = p.cegraph(&["run", "--push"]).ok();
    assert!(
        out.stdout.contains("2 ran") && out.stdout.contains("2 run record(s) to `shared`"),
        "{}",
        out.stdout
    );
    p.cegraph(&["verify", "--remote", "shared", "--deep"]).ok();
    let c = clone_of(&p);
    let ran = c.executed(|| {
        c.cegraph(&["run", "--remote", "shared"]).ok();
    });
    assert!(ran.is_empty(), "ran {ran:?}");
    assert_same_outputs(&p, &c);
}

#[test]
fn a_corrupt_remote_object_is_rejected_and_never_cached() {
    let o = origin();
    o.project.cegraph(&["push"]).ok();
    let blob = locked_hash(&o.project, "make");
    let remote_obj = sharded(o.remote.path(), "objects", &blob);
    // Same size, other bytes: only hashing notices.
    let mut bytes = std::fs::read(&remote_obj).unwrap();
    bytes[1000] ^= 0xff;
    std::fs::write(&remote_obj, &bytes).unwrap();

    let c = clone_of(&o.project);
    // By size the remote looks complete; --deep hashes and finds it.
    c.cegraph(&["verify", "--remote", "shared"]).ok();
    let deep = c
        .cegraph(&["verify", "--remote", "shared", "--deep"])
        .code(1);
    assert!(
        deep.stdout.contains(&format!(
            "CORRUPT make: out/blob.bin: object {} on remote `shared` is corrupt",
            &blob[..12]
        )),
        "{}",
        deep.stdout
    );
    let pulled = c.cegraph(&["pull"]).code(1);
    assert!(
        pulled.stdout.contains(&format!(
            "FAILED  make: out/blob.bin: object {} on remote `shared` is corrupt",
            &blob[..12]
        )) && pulled.stdout.contains("rejected, not cached"),
        "{}",
        pulled.stdout
    );
    // The other objects arrived; the corrupt one did not, not even half.
    assert!(
        pulled.stdout.contains("pulled 6 object(s)"),
        "{}",
        pulled.stdout
    );
    assert!(!sharded(&c.join("cache"), "objects", &blob).exists());
    assert_eq!(
        std::fs::read_dir(c.join("cache/tmp")).unwrap().count(),
        0,
        "a temporary download was left behind"
    );
    c.assert_cache_consistent();
    let checkout = c.cegraph(&["checkout"]).code(1);
    assert!(
        checkout
            .stdout
            .contains("make: out/blob.bin is not in the local cache"),
        "{}",
        checkout.stdout
    );
    // A remote cache hit with a corrupt object is an error, not a silent retrain.
    let d = clone_of(&o.project);
    let fetched = d.cegraph(&["run", "--remote", "shared"]).code(1);
    assert!(
        fetched.stderr.contains("is corrupt") && fetched.stderr.contains("remote `shared`"),
        "{}",
        fetched.stderr
    );

    // A truncated object is caught by size alone.
    std::fs::write(&remote_obj, &bytes[..100]).unwrap();
    let short = c.cegraph(&["verify", "--remote", "shared"]).code(1);
    assert!(
        short.stdout.contains("has 100 bytes, expected 300000"),
        "{}",
        short.stdout
    );
    // Repairing the remote (a push from the origin) fixes it: the object is re-sent.
    let repaired = o.project.cegraph(&["push"]).ok();
    assert!(
        repaired.stdout.contains("pushed 1 object(s)"),
        "{}",
        repaired.stdout
    );
    c.cegraph(&["pull"]).ok();
    c.cegraph(&["checkout"]).ok();
    assert_same_outputs(&o.project, &c);
}

#[test]
fn a_missing_remote_object_is_reported_and_verify_fails() {
    let o = origin();
    o.project.cegraph(&["push"]).ok();
    let count = locked_hash(&o.project, "count");
    std::fs::remove_file(sharded(o.remote.path(), "objects", &count)).unwrap();
    let c = clone_of(&o.project);
    let v = c.cegraph(&["verify", "--remote", "shared"]).code(1);
    assert!(
        v.stdout.contains(&format!(
            "MISSING count: out/count.txt: object {} is not on remote `shared`",
            &count[..12]
        )),
        "{}",
        v.stdout
    );
    let pulled = c.cegraph(&["pull"]).code(1);
    assert!(
        pulled.stdout.contains("pull incomplete: 1 problem(s)"),
        "{}",
        pulled.stdout
    );
}

/// Shards of directory output `out/many` for the interrupted-push tests.
pub(crate) const MANY: &str = r#"
stages:
  many:
    params: {n: 400}
    cmd: mkdir -p ${outs[0]} && for i in $(seq ${params.n}); do echo "object $i" > ${outs[0]}/$i.txt; done
    outs: [out/many]
"#;

/// Files under `dir` (recursively).
fn files_under(dir: &Path) -> Vec<PathBuf> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file())
        .map(|e| e.into_path())
        .collect()
}

/// Every file under a `file://` remote's objects/ that has an object's name holds that object.
pub(crate) fn assert_remote_consistent(remote: &Path) -> usize {
    let mut n = 0;
    for f in files_under(&remote.join("objects")) {
        let shard = f.parent().unwrap().file_name().unwrap().to_string_lossy();
        let name = format!("{shard}{}", f.file_name().unwrap().to_string_lossy());
        if name.len() != 64 || !name.bytes().all(|b| b.is_ascii_hexdigit()) {
            continue; // a staging file of an interrupted write, never a final name
        }
        let actual = blake3::hash(&std::fs::read(&f).unwrap())
            .to_hex()
            .to_string();
        assert_eq!(actual, name, "corrupt remote object {}", f.display());
        n += 1;
    }
    n
}

#[test]
fn a_push_killed_midway_resumes_without_resending_what_arrived() {
    let remote = tempfile::tempdir().unwrap();
    let p = Project::with_pipeline(&format!(
        "remotes:\n  shared: {}\n{MANY}",
        file_url(remote.path())
    ));
    p.cegraph(&["run"]).ok();
    // 401 objects (400 files and the manifest), each upload slowed to 5 ms: about 2 s at -j 1.
    let mut child = p
        .command(&["push", "-j", "1"])
        .env("CEGRAPH_TEST_PUT_DELAY_MS", "5")
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while files_under(&remote.path().join("objects")).len() < 40 {
        assert!(Instant::now() < deadline, "the push never got going");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        child.try_wait().unwrap().is_none(),
        "the push finished before it could be killed"
    );
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let arrived = assert_remote_consistent(remote.path());
    assert!((40..401).contains(&arrived), "{arrived} objects arrived");
    assert!(
        files_under(&remote.path().join("runs")).is_empty(),
        "a run record was pushed before its objects"
    );
    let c = clone_of(&p);
    c.cegraph(&["verify", "--remote", "shared"]).code(1);

    let resumed = p.cegraph(&["push"]).ok();
    assert!(
        resumed
            .stdout
            .contains(&format!("pushed {} object(s)", 401 - arrived))
            && resumed
                .stdout
                .contains(&format!("{arrived} object(s) were already there")),
        "{}",
        resumed.stdout
    );
    assert_eq!(assert_remote_consistent(remote.path()), 401);
    c.cegraph(&["verify", "--remote", "shared"]).ok();
    c.cegraph(&["pull"]).ok();
    c.cegraph(&["checkout"]).ok();
    c.cegraph(&["verify"]).ok();
    assert_eq!(c.read("out/many/400.txt"), "object 400\n");
}

#[test]
fn remotes_are_chosen_by_name_default_or_environment() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let p = Project::with_pipeline(&pipeline(&format!(
        "  first: {}\n  second: {{url: '{}', default: true}}",
        file_url(a.path()),
        file_url(b.path())
    )));
    p.cegraph(&["run"]).ok();
    let out = p.cegraph(&["push"]).ok();
    assert!(out.stdout.contains("to `second`"), "{}", out.stdout);
    assert!(files_under(a.path()).is_empty());
    let out = p
        .command(&["push"])
        .env("CEGRAPH_REMOTE", "first")
        .output()
        .unwrap();
    let out = Run::from(out).ok();
    assert!(out.stdout.contains("to `first`"), "{}", out.stdout);

    let bad = p.cegraph(&["push", "--remote", "thrid"]).code(2);
    assert!(
        bad.stderr.contains("unknown remote `thrid`")
            && bad
                .stderr
                .contains("the pipeline declares: `first`, `second`"),
        "{}",
        bad.stderr
    );
    let none = Project::with_pipeline(STAGES);
    let err = none.cegraph(&["pull"]).code(2);
    assert!(
        err.stderr.contains("cegraph.lock does not exist"),
        "{}",
        err.stderr
    );
    none.cegraph(&["run"]).ok();
    let err = none.cegraph(&["pull"]).code(2);
    assert!(err.stderr.contains("declares no remotes"), "{}", err.stderr);
    let err = none.cegraph(&["run", "--remote", "x"]).code(2);
    assert!(err.stderr.contains("declares no remotes"), "{}", err.stderr);
}

#[test]
fn bad_remote_declarations_are_reported_at_their_line() {
    let p = Project::with_pipeline(&pipeline("  shared: ftp://host/dir"));
    let err = p.cegraph(&["push"]).code(2);
    assert!(
        err.stderr.contains("cegraph.yaml:2:")
            && err
                .stderr
                .contains("remote `shared`: unsupported URL scheme `ftp://`"),
        "{}",
        err.stderr
    );
    let p = Project::with_pipeline(&pipeline("  shared: s3://key:secret@bucket/x"));
    let err = p.cegraph(&["status"]).code(2);
    assert!(
        err.stderr
            .contains("credentials do not belong in the pipeline file"),
        "{}",
        err.stderr
    );
    let p = Project::with_pipeline(&pipeline("  shared: file://relative/dir"));
    let err = p.cegraph(&["status"]).code(2);
    assert!(err.stderr.contains("names a host"), "{}", err.stderr);
}

#[test]
fn http_remotes_are_read_only() {
    let p = Project::with_pipeline(&pipeline("  web: https://example.invalid/cache"));
    p.cegraph(&["run"]).ok();
    let err = p.cegraph(&["push"]).code(1);
    assert!(
        err.stderr
            .contains("remote `web`: https://example.invalid/cache is read-only"),
        "{}",
        err.stderr
    );
}

#[test]
fn a_file_remote_that_does_not_exist_is_a_clear_error() {
    let p = Project::with_pipeline(&pipeline("  shared: file:///nonexistent/cegraph-remote"));
    p.cegraph(&["run"]).ok();
    let err = p.cegraph(&["pull"]).code(1);
    assert!(
        err.stderr
            .contains("remote `shared`: directory /nonexistent/cegraph-remote does not exist"),
        "{}",
        err.stderr
    );
}
