//! What a pull counts as cached, and the modes restored files get: a local object is
//! trusted only if it hashes to its name, and a file output gets the exec bit it had when it
//! was produced, whatever the (shared) cache object's bits.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::project::Project;
use crate::remote::{Origin, clone_of, file_url, locked_hash, origin, sharded};

fn mode_of(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Rewrite a read-only cache object in place.
fn overwrite(obj: &Path, bytes: &[u8], mode: u32) {
    fs::set_permissions(obj, fs::Permissions::from_mode(0o644)).unwrap();
    fs::write(obj, bytes).unwrap();
    fs::set_permissions(obj, fs::Permissions::from_mode(mode)).unwrap();
}

fn quarantined(p: &Project) -> usize {
    fs::read_dir(p.join("cache/quarantine"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// The manifest object of directory output `node` in `p`'s cache.
fn manifest_object(p: &Project, node: &str) -> PathBuf {
    let lock: serde_json::Value = serde_json::from_str(&p.read("cegraph.lock")).unwrap();
    let hash = lock["nodes"][node]["outs"][1]["hash"].as_str().unwrap();
    sharded(&p.join("cache"), "objects", hash)
}

/// An origin that pushed, a clone that pulled, and the clone's cache object of `make`'s file.
fn pulled_clone() -> (Origin, Project, PathBuf) {
    let o = origin();
    o.project.cegraph(&["push"]).ok();
    let c = clone_of(&o.project);
    c.cegraph(&["pull"]).ok();
    let blob = sharded(
        &c.join("cache"),
        "objects",
        &locked_hash(&o.project, "make"),
    );
    (o, c, blob)
}

#[test]
fn pull_refetches_a_corrupt_local_object_instead_of_counting_it_cached() {
    let (o, c, blob) = pulled_clone();
    let good = fs::read(&blob).unwrap();
    let manifest = manifest_object(&c, "make");
    let good_manifest = fs::read(&manifest).unwrap();

    // Same size, one bit flipped, mtime put back: only the bytes tell.
    let mut flipped = good.clone();
    flipped[1000] ^= 1;
    let mtime = fs::metadata(&blob).unwrap().modified().unwrap();
    overwrite(&blob, &flipped, 0o444);
    fs::File::open(&blob).unwrap().set_modified(mtime).unwrap();
    // A manifest that still parses but names other bytes (a size changed).
    let text = String::from_utf8(good_manifest.clone()).unwrap();
    overwrite(&manifest, text.replacen(" 8 ", " 9 ", 1).as_bytes(), 0o444);

    let pulled = c.cegraph(&["pull"]).ok();
    assert!(
        pulled.stdout.contains("pulled 2 object(s)"),
        "the damaged objects were counted as cached:\n{}",
        pulled.stdout
    );
    assert_eq!(fs::read(&blob).unwrap(), good);
    assert_eq!(fs::read(&manifest).unwrap(), good_manifest);
    // The damaged copies were moved aside for inspection, as a restore does.
    assert_eq!(quarantined(&c), 2);
    assert!(pulled.stderr.contains("quarantine"), "{}", pulled.stderr);
    // So the checkout that follows succeeds, and a second pull has nothing to do.
    c.cegraph(&["checkout"]).ok();
    crate::remote::assert_same_outputs(&o.project, &c);
    let again = c.cegraph(&["pull"]).ok();
    assert!(
        again.stdout.contains("pulled 0 object(s)"),
        "{}",
        again.stdout
    );
}

/// Two nodes writing the same bytes, one as an executable: they share one cache object.
const SAME_BYTES: &str = r#"
stages:
  tool:
    cmd: printf '#!/bin/sh\necho hi\n' > ${outs[0]} && chmod 755 ${outs[0]}
    outs: [out/tool.sh]
  plain:
    cmd: printf '#!/bin/sh\necho hi\n' > ${outs[0]} && chmod 644 ${outs[0]}
    outs: [out/plain.sh]
"#;

#[track_caller]
fn assert_modes(p: &Project) {
    assert_eq!(mode_of(&p.join("out/tool.sh")) & 0o111, 0o111, "tool.sh");
    assert_eq!(mode_of(&p.join("out/plain.sh")) & 0o111, 0, "plain.sh");
}

#[test]
fn executable_file_output_restored_with_its_mode() {
    let remote = tempfile::tempdir().unwrap();
    let yaml = format!(
        "remotes:\n  shared: {}\n{SAME_BYTES}",
        file_url(remote.path())
    );
    let p = Project::with_pipeline(&yaml);
    p.cegraph(&["run", "-j", "1"]).ok();
    assert_modes(&p);
    let lock: serde_json::Value = serde_json::from_str(&p.read("cegraph.lock")).unwrap();
    let obj = sharded(&p.join("cache"), "objects", &locked_hash(&p, "tool"));
    assert_eq!(
        lock["nodes"]["plain"]["outs"][0]["hash"],
        lock["nodes"]["tool"]["outs"][0]["hash"]
    );

    // Whatever bits the shared object has, each file gets its own back.
    for object_mode in [0o555, 0o444] {
        fs::set_permissions(&obj, fs::Permissions::from_mode(object_mode)).unwrap();
        fs::remove_dir_all(p.join("out")).unwrap();
        p.cegraph(&["checkout"]).ok();
        assert_modes(&p);
        fs::remove_dir_all(p.join("out")).unwrap();
        p.cegraph(&["run"]).ok();
        assert_modes(&p);
    }
    // A restore over a file with the right bytes but the wrong mode fixes the mode.
    fs::set_permissions(p.join("out/tool.sh"), fs::Permissions::from_mode(0o644)).unwrap();
    fs::set_permissions(p.join("out/plain.sh"), fs::Permissions::from_mode(0o755)).unwrap();
    p.cegraph(&["checkout"]).ok();
    assert_modes(&p);

    // Through a remote: pull + checkout, and run --remote, in fresh clones.
    p.cegraph(&["push"]).ok();
    let c = clone_of(&p);
    c.cegraph(&["pull"]).ok();
    c.cegraph(&["checkout"]).ok();
    assert_modes(&c);
    let r = clone_of(&p);
    r.cegraph(&["run", "--remote", "shared"]).ok();
    assert_modes(&r);
}

#[test]
fn lock_entries_without_a_recorded_mode_still_restore_and_pass_locked() {
    let p = Project::with_pipeline(SAME_BYTES);
    p.cegraph(&["run", "-j", "1"]).ok();
    // A lock file written before file outputs recorded their exec bit.
    let old: String = p
        .read("cegraph.lock")
        .lines()
        .filter(|l| !l.contains("\"executable\""))
        .map(|l| format!("{l}\n"))
        .collect::<String>();
    let old = fix_trailing_commas(&old);
    p.write("cegraph.lock", &old);
    p.cegraph(&["status"]).ok();
    fs::remove_dir_all(p.join("out")).unwrap();
    // Restored from run records that do record the bit; the lock file is otherwise the same.
    p.cegraph(&["run", "--locked"]).ok();
    assert_modes(&p);
    fs::remove_dir_all(p.join("out")).unwrap();
    p.write("cegraph.lock", &old);
    // checkout from the old lock: the object's bits, as before (one object, so one mode).
    p.cegraph(&["checkout"]).ok();
    assert!(p.join("out/tool.sh").exists());
}

/// `"size": 3,\n    }` → `"size": 3\n    }` after a removed last field.
fn fix_trailing_commas(json: &str) -> String {
    let lines: Vec<&str> = json.lines().collect();
    let mut out = String::new();
    for (i, l) in lines.iter().enumerate() {
        let next = lines.get(i + 1).map(|n| n.trim_start()).unwrap_or("");
        if l.ends_with(',') && (next.starts_with('}') || next.starts_with(']')) {
            out.push_str(&l[..l.len() - 1]);
        } else {
            out.push_str(l);
        }
        out.push('\n');
    }
    out
}

#[test]
fn run_remote_fetches_a_corrupt_local_object_instead_of_rerunning() {
    let (o, c, blob) = pulled_clone();
    let mut bytes = fs::read(&blob).unwrap();
    bytes[7] ^= 1;
    overwrite(&blob, &bytes, 0o444);
    // The cache holds the run record and a damaged object: the restore finds it out, and the
    // remote's good copy is fetched rather than the node computed again.
    let run = c.cegraph(&["run", "--remote", "shared"]).ok();
    assert!(run.stdout.contains("fetched   make"), "{}", run.stdout);
    assert!(!c.join("runs.log").exists(), "a node ran:\n{}", run.stdout);
    assert_eq!(quarantined(&c), 1);
    crate::remote::assert_same_outputs(&o.project, &c);
}
