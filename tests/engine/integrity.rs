//! Every byte that leaves the cache is checked; gc never drops what a run or another
//! pipeline sharing the cache needs; objects are read-only; modes come from manifests.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use crate::project::Project;

/// A file output and a directory output, each from a cmd stage.
const FILE_AND_DIR: &str = r#"
stages:
  make:
    cmd: echo ${node} >> runs.log && printf 'the real bytes\n' > ${outs[0]}
    outs: [out/a.txt]
  tree:
    cmd: >-
      echo ${node} >> runs.log && mkdir -p ${outs[0]}/sub &&
      printf 'one\n' > ${outs[0]}/one.txt && printf 'two\n' > ${outs[0]}/sub/two.txt
    outs: [out/tree]
"#;

/// The lock entry of `node`'s output number `i`.
fn locked_out(p: &Project, node: &str, i: usize) -> serde_json::Value {
    let lock: serde_json::Value = serde_json::from_str(&p.read("cegraph.lock")).unwrap();
    lock["nodes"][node]["outs"][i].clone()
}

fn object_path(root: &std::path::Path, hash: &str) -> PathBuf {
    root.join(format!("objects/{}/{}", &hash[..2], &hash[2..]))
}

/// The cache object behind `node`'s first output (for a directory: its manifest).
fn object_of(p: &Project, node: &str) -> PathBuf {
    let hash = locked_out(p, node, 0)["hash"].as_str().unwrap().to_string();
    object_path(&p.join("cache"), &hash)
}

/// The object of file `rel` inside directory output `node`'s manifest.
fn tree_entry_object(p: &Project, node: &str, rel: &str) -> PathBuf {
    let manifest = fs::read_to_string(object_of(p, node)).unwrap();
    let line = manifest
        .lines()
        .find(|l| l.ends_with(&format!(" {rel}")))
        .unwrap_or_else(|| panic!("{rel} not in manifest:\n{manifest}"));
    object_path(&p.join("cache"), line.split(' ').next().unwrap())
}

enum Damage {
    Append,
    FlipFirstByte,
}

/// Damage an object in place (objects are read-only, as they should be).
fn damage(obj: &PathBuf, how: Damage) {
    let mut bytes = fs::read(obj).unwrap();
    match how {
        Damage::Append => bytes.push(b'!'),
        Damage::FlipFirstByte => bytes[0] ^= 0x20,
    }
    fs::set_permissions(obj, fs::Permissions::from_mode(0o644)).unwrap();
    fs::write(obj, bytes).unwrap();
    fs::set_permissions(obj, fs::Permissions::from_mode(0o444)).unwrap();
}

fn blake3_of(p: &Project, rel: &str) -> String {
    blake3::hash(&fs::read(p.join(rel)).unwrap())
        .to_hex()
        .to_string()
}

fn quarantined(p: &Project) -> usize {
    fs::read_dir(p.join("cache/quarantine"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[test]
fn corrupt_cache_object_is_never_restored() {
    let p = Project::with_pipeline(FILE_AND_DIR);
    p.cegraph(&["run"]).ok();
    damage(&object_of(&p, "make"), Damage::Append);
    fs::remove_file(p.join("out/a.txt")).unwrap();

    let ran = p.executed(|| {
        let out = p.cegraph(&["run"]).ok();
        assert!(
            out.stderr.contains("warning: make: cache object")
                && out.stderr.contains("is corrupt")
                && out.stderr.contains("running the node again"),
            "{}",
            out.stderr
        );
    });
    assert_eq!(ran, ["make"]);
    assert_eq!(p.read("out/a.txt"), "the real bytes\n");
    assert_eq!(quarantined(&p), 1);
    p.assert_cache_consistent();
    p.cegraph(&["verify"]).ok();
}

#[test]
fn corrupt_directory_entry_is_never_restored() {
    let p = Project::with_pipeline(FILE_AND_DIR);
    p.cegraph(&["run"]).ok();
    damage(
        &tree_entry_object(&p, "tree", "sub/two.txt"),
        Damage::FlipFirstByte,
    );
    fs::remove_dir_all(p.join("out/tree")).unwrap();

    let ran = p.executed(|| {
        p.cegraph(&["run"]).ok();
    });
    assert_eq!(ran, ["tree"]);
    assert_eq!(p.read("out/tree/sub/two.txt"), "two\n");
    p.assert_cache_consistent();
    p.cegraph(&["verify"]).ok();
}

#[test]
fn corrupt_directory_manifest_is_never_restored() {
    let p = Project::with_pipeline(FILE_AND_DIR);
    p.cegraph(&["run"]).ok();
    damage(&object_of(&p, "tree"), Damage::Append);
    fs::remove_dir_all(p.join("out/tree")).unwrap();
    let ran = p.executed(|| {
        p.cegraph(&["run"]).ok();
    });
    assert_eq!(ran, ["tree"]);
    p.assert_cache_consistent();
    p.cegraph(&["verify"]).ok();
}

#[test]
fn restore_records_stat_only_after_checking_bytes() {
    let p = Project::with_pipeline(FILE_AND_DIR);
    p.cegraph(&["run"]).ok();
    let want = locked_out(&p, "make", 0)["hash"]
        .as_str()
        .unwrap()
        .to_string();
    // Same size, one byte different: nothing but the hash can tell.
    damage(&object_of(&p, "make"), Damage::FlipFirstByte);
    fs::remove_file(p.join("out/a.txt")).unwrap();
    p.cegraph(&["run"]).ok();
    assert_eq!(blake3_of(&p, "out/a.txt"), want);
    // The stat cache now describes the good bytes: the next run has nothing to do.
    let ran = p.executed(|| {
        let out = p.cegraph(&["run"]).ok();
        assert!(out.stdout.contains("0 ran, 0 restored"), "{}", out.stdout);
    });
    assert!(ran.is_empty(), "{ran:?}");
}

#[test]
fn checkout_refuses_corrupt_object() {
    let p = Project::with_pipeline(FILE_AND_DIR);
    p.cegraph(&["run"]).ok();
    let obj = object_of(&p, "make");
    damage(&obj, Damage::Append);
    fs::remove_file(p.join("out/a.txt")).unwrap();
    fs::remove_dir_all(p.join("out/tree")).unwrap();

    let out = p.cegraph(&["checkout"]).code(1);
    assert!(
        out.stdout.contains("CORRUPT make: cache object")
            && out.stdout.contains(&obj.display().to_string())
            && out.stdout.contains("cegraph run --force make"),
        "{}",
        out.stdout
    );
    assert!(
        !p.join("out/a.txt").exists(),
        "corrupt bytes reached the workspace"
    );
    // The other outputs are still checked out.
    assert_eq!(p.read("out/tree/one.txt"), "one\n");
    assert_eq!(quarantined(&p), 1);
}

#[test]
fn locked_run_refuses_corrupt_object() {
    let p = Project::with_pipeline(FILE_AND_DIR);
    p.cegraph(&["run"]).ok();
    damage(&object_of(&p, "make"), Damage::Append);
    fs::remove_file(p.join("out/a.txt")).unwrap();
    let out = p.cegraph(&["run", "--locked"]);
    assert_ne!(out.code, 0, "{}", out.stdout);
    assert!(
        out.stderr.contains("is corrupt") && out.stderr.contains("without --locked"),
        "{}",
        out.stderr
    );
    assert!(!p.join("out/a.txt").exists());
}

#[test]
fn verify_checks_cache_objects_not_only_workspace() {
    let p = Project::with_pipeline(FILE_AND_DIR);
    p.cegraph(&["run"]).ok();
    let file_obj = object_of(&p, "make");
    let entry_obj = tree_entry_object(&p, "tree", "one.txt");
    damage(&file_obj, Damage::Append);
    damage(&entry_obj, Damage::FlipFirstByte);
    // The workspace is intact; only the cache is not.
    let out = p.cegraph(&["verify"]).code(1);
    for obj in [&file_obj, &entry_obj] {
        assert!(
            out.stdout
                .contains(&format!("cache object {} (", obj.display())),
            "{} not named:\n{}",
            obj.display(),
            out.stdout
        );
    }
    assert!(
        out.stdout.contains("verify failed: 2 problem(s)"),
        "{}",
        out.stdout
    );
    // --fast trusts the stat cache for the workspace, never for the cache.
    p.cegraph(&["verify", "--fast"]).code(1);
}

#[test]
fn force_run_repairs_a_corrupt_object() {
    let p = Project::with_pipeline(FILE_AND_DIR);
    p.cegraph(&["run"]).ok();
    damage(&object_of(&p, "make"), Damage::FlipFirstByte);
    damage(&tree_entry_object(&p, "tree", "one.txt"), Damage::Append);
    p.cegraph(&["verify"]).code(1);
    p.cegraph(&["run", "--force-all"]).ok();
    p.assert_cache_consistent();
    p.cegraph(&["verify"]).ok();
}

#[test]
fn verify_rereads_deps_instead_of_stat_cache() {
    let p = Project::with_pipeline(
        r#"
stages:
  copy:
    cmd: cat ${deps[0]} > ${outs[0]}
    deps: [data/in.txt]
    outs: [out/copy.txt]
"#,
    );
    p.write("data/in.txt", "alpha\n");
    let dep = p.join("data/in.txt");
    let old = SystemTime::UNIX_EPOCH + Duration::from_secs(1_600_000_000);
    let set_mtime = || {
        fs::OpenOptions::new()
            .write(true)
            .open(&dep)
            .unwrap()
            .set_modified(old)
            .unwrap()
    };
    set_mtime();
    p.cegraph(&["run"]).ok();
    // Same size, same inode, same mtime: only the bytes differ.
    let ino = std::os::unix::fs::MetadataExt::ino(&fs::metadata(&dep).unwrap());
    fs::write(&dep, "omega\n").unwrap();
    set_mtime();
    assert_eq!(
        std::os::unix::fs::MetadataExt::ino(&fs::metadata(&dep).unwrap()),
        ino
    );
    let out = p.cegraph(&["verify"]).code(1);
    assert!(
        out.stdout.contains("MISMATCH copy: lock has key"),
        "{}",
        out.stdout
    );
    // The stat cache is indeed fooled: --fast trusts it, and says so in its help.
    p.cegraph(&["verify", "--fast"]).ok();
}

#[test]
fn objects_are_read_only() {
    let p = Project::with_pipeline(FILE_AND_DIR);
    p.cegraph(&["run"]).ok();
    let mut seen = 0;
    for entry in walkdir::WalkDir::new(p.join("cache/objects")) {
        let entry = entry.unwrap();
        if entry.file_type().is_file() {
            seen += 1;
            let mode = entry.metadata().unwrap().permissions().mode();
            assert_eq!(mode & 0o222, 0, "{} is writable", entry.path().display());
        }
    }
    // a.txt, one.txt, two.txt and the tree's manifest.
    assert_eq!(seen, 4);
}

#[test]
fn executable_in_dir_output_restored_with_manifest_mode() {
    let p = Project::with_pipeline(
        r#"
stages:
  plain:
    cmd: printf '#!/bin/sh\necho hi\n' > ${outs[0]}
    outs: [out/plain.sh]
  tools:
    deps: [plain]
    cmd: mkdir -p ${outs[0]} && cp ${deps[0]} ${outs[0]}/run.sh && chmod +x ${outs[0]}/run.sh
    outs: [out/tools]
"#,
    );
    p.cegraph(&["run"]).ok();
    fs::remove_dir_all(p.join("out/tools")).unwrap();
    let out = p.cegraph(&["run"]).ok();
    assert!(out.stdout.contains("restored  tools"), "{}", out.stdout);
    let mode = fs::metadata(p.join("out/tools/run.sh"))
        .unwrap()
        .permissions()
        .mode();
    assert_ne!(mode & 0o111, 0, "run.sh lost its exec bit: {mode:o}");
    p.cegraph(&["verify"]).ok();
    let again = p.cegraph(&["run"]).ok();
    assert!(
        again.stdout.contains("0 ran, 0 restored"),
        "{}",
        again.stdout
    );
}

#[test]
fn gc_during_a_run_loses_nothing() {
    let p = Project::with_pipeline(
        r#"
stages:
  first:
    cmd: printf 'first\n' > ${outs[0]}
    outs: [out/first.txt]
  slow:
    deps: [first]
    cmd: >-
      wc -c < ${deps[0]} > ${outs[0]} && touch started.flag && sleep 2 &&
      printf 'second\n' > ${outs[1]}
    outs: [out/slow-a.txt, out/slow-b.txt]
"#,
    );
    let mut child = p.command(&["run", "--jobs", "1"]).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !p.join("started.flag").exists() {
        assert!(Instant::now() < deadline, "the slow stage never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    // `first` is stored and recorded but no lock file names it yet.
    p.cegraph(&["gc", "--keep-days", "0"]).ok();
    assert!(child.wait().unwrap().success());
    p.cegraph(&["verify"]).ok();
    // Everything the lock names is still in the cache.
    fs::remove_dir_all(p.join("out")).unwrap();
    p.cegraph(&["checkout"]).ok();
    p.cegraph(&["verify"]).ok();
    p.assert_cache_consistent();
}

#[test]
fn gc_keeps_objects_of_other_pipelines_sharing_the_cache() {
    let a = Project::with_pipeline(FILE_AND_DIR);
    let b = Project::with_pipeline(
        r#"
stages:
  other:
    cmd: printf 'other\n' > ${outs[0]}
    outs: [out/other.txt]
"#,
    );
    let cache = tempfile::tempdir().unwrap();
    let c = cache.path().to_str().unwrap();
    a.cegraph(&["run", "--cache", c]).ok();
    b.cegraph(&["run", "--cache", c]).ok();

    let dry = b
        .cegraph(&[
            "gc",
            "--cache",
            c,
            "--keep-days",
            "0",
            "--grace",
            "0",
            "--dry-run",
        ])
        .ok();
    let a_lock = fs::canonicalize(a.join("cegraph.lock")).unwrap();
    assert!(
        dry.stdout
            .contains(&format!("root {} keeps 4 object(s)", a_lock.display())),
        "{}",
        dry.stdout
    );
    b.cegraph(&["gc", "--cache", c, "--keep-days", "0", "--grace", "0"])
        .ok();
    fs::remove_dir_all(a.join("out")).unwrap();
    a.cegraph(&["checkout", "--cache", c]).ok();
    a.cegraph(&["verify", "--cache", c]).ok();

    // A registration whose lock file is gone is dropped, and its objects with it.
    let a_hash = locked_out(&a, "make", 0)["hash"]
        .as_str()
        .unwrap()
        .to_string();
    let b_hash = locked_out(&b, "other", 0)["hash"]
        .as_str()
        .unwrap()
        .to_string();
    fs::remove_file(a.join("cegraph.lock")).unwrap();
    let swept = b
        .cegraph(&["gc", "--cache", c, "--keep-days", "0", "--grace", "0"])
        .ok();
    assert!(
        swept
            .stdout
            .contains(&format!("dropped root {}", a_lock.display())),
        "{}",
        swept.stdout
    );
    assert!(
        swept.stdout.contains("kept 1 object(s)"),
        "{}",
        swept.stdout
    );
    assert!(!object_path(cache.path(), &a_hash).exists());
    assert!(object_path(cache.path(), &b_hash).exists());
    b.cegraph(&["verify", "--cache", c]).ok();
}

#[test]
fn gc_grace_period_keeps_young_unreferenced_objects() {
    let p = Project::with_pipeline(FILE_AND_DIR);
    p.cegraph(&["run"]).ok();
    fs::remove_file(p.join("cegraph.lock")).unwrap();
    let kept = p.cegraph(&["gc", "--keep-days", "0"]).ok();
    assert!(kept.stdout.contains("kept 4 object(s)"), "{}", kept.stdout);
    let swept = p.cegraph(&["gc", "--keep-days", "0", "--grace", "0"]).ok();
    assert!(
        swept.stdout.contains("kept 0 object(s)"),
        "{}",
        swept.stdout
    );
    let bad = p.cegraph(&["gc", "--grace", "soon"]).code(2);
    assert!(bad.stderr.contains("1h"), "{}", bad.stderr);
}

/// Two pipelines in one workspace wrote the same output path while one of them ran: its
/// `eval` node read the other's tokens and was cached under a key that named the first's
/// bytes. An input that changes under a running node now fails that node, caching nothing.
#[test]
fn input_rewritten_during_a_node_is_never_cached_under_the_old_key() {
    let p = Project::with_pipeline(
        r#"
stages:
  make:
    cmd: printf 'planned bytes\n' > ${outs[0]}
    outs: [out/a.txt]
  use:
    deps: [make]
    # Stands in for another process writing the shared path mid-run.
    cmd: printf 'other bytes\n' > out/a.txt && cat out/a.txt > ${outs[0]}
    outs: [out/b.txt]
"#,
    );
    let out = p.cegraph(&["run"]).code(1);
    assert!(
        out.stderr
            .contains("input `out/a.txt` changed while this node ran"),
        "{}",
        out.stderr
    );
    // Nothing recorded for `use`: the lock names only `make`, and a rerun is not "up to date".
    let lock = p.read("cegraph.lock");
    assert!(!lock.contains("out/b.txt"), "{lock}");
    let again = p.cegraph(&["status"]);
    assert!(
        !again.stdout.contains("up-to-date  use"),
        "{}",
        again.stdout
    );
}
