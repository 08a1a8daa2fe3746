//! A remote cache stays honest: a fetched node is judged as a local restore is, corrupt remote
//! objects and records are found and repaired, every download is hash-checked, and a node that
//! gives two machines different bytes for one key is reported, never silently accepted.

use std::path::{Path, PathBuf};

use crate::project::Project;
use crate::remote::{
    assert_remote_consistent, assert_same_outputs, clone_of, file_url, locked_hash, origin, sharded,
};
use crate::remote_endpoints::{bucket, http, s3_command, s3_endpoint, s3_spawnable};

/// The key the lock file records for `node`.
fn locked_key(p: &Project, node: &str) -> String {
    let lock: serde_json::Value = serde_json::from_str(&p.read("cegraph.lock")).unwrap();
    lock["nodes"][node]["key"].as_str().unwrap().to_string()
}

/// A run record's file on a `file://` remote (or in a cache).
fn record_file(root: &Path, key: &str) -> PathBuf {
    root.join("runs")
        .join(&key[..2])
        .join(format!("{}.json", &key[2..]))
}

fn b3(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

/// A `source` over the user's own file (an external, uncached output) and a node reading it.
const SOURCED: &str = r#"
stages:
  corpus:
    kind: source
    params: {path: data/corpus.txt}
  count:
    deps: [corpus]
    cmd: echo ${node} >> runs.log && wc -c < ${deps} > ${outs[0]}
    outs: [out/count.txt]
"#;

#[test]
fn remote_fetch_rechecks_external_outputs() {
    let remote = tempfile::tempdir().unwrap();
    let yaml = format!("remotes:\n  shared: {}\n{SOURCED}", file_url(remote.path()));
    let o = Project::with_pipeline(&yaml);
    o.write("data/corpus.txt", "the pusher's corpus\n");
    o.cegraph(&["run", "--push"]).ok();

    // A clone with the same corpus fetches both nodes.
    let same = clone_of(&o);
    same.write("data/corpus.txt", "the pusher's corpus\n");
    let ran = same.executed(|| {
        let out = same.cegraph(&["run", "--remote", "shared"]).ok();
        assert!(out.stdout.contains("fetched   count"), "{}", out.stdout);
    });
    assert!(ran.is_empty(), "{ran:?}");
    assert_eq!(same.read("cegraph.lock"), o.read("cegraph.lock"));

    // A clone whose corpus differs must not take the remote's results for it.
    let c = clone_of(&o);
    let mine = "another corpus, not the pusher's\n";
    c.write("data/corpus.txt", mine);
    let ran = c.executed(|| {
        let out = c.cegraph(&["run", "--remote", "shared"]).ok();
        assert!(
            !out.stdout.contains("fetched   corpus") && !out.stdout.contains("fetched   count"),
            "{}",
            out.stdout
        );
        // The user's data changed, not the node: no nondeterminism warning.
        assert!(!out.stderr.contains("warning"), "{}", out.stderr);
    });
    assert_eq!(ran, vec!["count"]);
    assert_eq!(locked_hash(&c, "corpus"), b3(mine.as_bytes()));
    assert_eq!(c.read("out/count.txt").trim(), mine.len().to_string());
    assert_eq!(
        c.read("data/corpus.txt"),
        mine,
        "the user's file was replaced"
    );
    c.cegraph(&["verify"]).ok();
}

/// Flip one byte of a file in place (same size: only hashing notices).
fn flip_byte(path: &Path, at: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[at] ^= 0xff;
    std::fs::write(path, &bytes).unwrap();
}

#[test]
fn push_repair_replaces_a_corrupt_remote_object() {
    let o = origin();
    o.project.cegraph(&["push"]).ok();
    let blob = locked_hash(&o.project, "make");
    flip_byte(&sharded(o.remote.path(), "objects", &blob), 1000);

    // By name and size the remote has everything: a plain push sends nothing.
    let plain = o.project.cegraph(&["push"]).ok();
    assert!(
        plain.stdout.contains("pushed 0 object(s)")
            && plain.stdout.contains("7 object(s) were already there"),
        "{}",
        plain.stdout
    );
    // A reader finds it, and every message names the repair.
    let c = clone_of(&o.project);
    let deep = c
        .cegraph(&["verify", "--remote", "shared", "--deep"])
        .code(1);
    assert!(
        deep.stdout.contains(&format!(
            "CORRUPT make: out/blob.bin: object {} on remote `shared` is corrupt",
            &blob[..12]
        )) && deep.stdout.contains("`cegraph push --repair`"),
        "{}",
        deep.stdout
    );
    let pulled = c.cegraph(&["pull"]).code(1);
    assert!(
        pulled.stdout.contains(&format!(
            "FAILED  make: out/blob.bin: object {} on remote `shared` is corrupt",
            &blob[..12]
        )) && pulled.stdout.contains("`cegraph push --repair`"),
        "{}",
        pulled.stdout
    );
    let fetched = clone_of(&o.project)
        .cegraph(&["run", "--remote", "shared"])
        .code(1);
    assert!(
        fetched.stderr.contains("push --repair"),
        "{}",
        fetched.stderr
    );

    // A run record damaged on the remote: a plain push says so and fails.
    let count_key = locked_key(&o.project, "count");
    std::fs::write(record_file(o.remote.path(), &count_key), b"{not a record").unwrap();
    let plain = o.project.cegraph(&["push"]).code(1);
    assert!(
        plain.stdout.contains(&format!(
            "count: run record {} on remote `shared` is corrupt",
            &count_key[..12]
        )) && plain.stdout.contains("`cegraph push --repair` replaces it"),
        "{}",
        plain.stdout
    );

    let repaired = o.project.cegraph(&["push", "--repair"]).ok();
    assert!(
        repaired.stdout.contains("pushed 1 object(s)")
            && repaired
                .stdout
                .contains("repaired 2 corrupt object(s) or run record(s) on `shared`"),
        "{}",
        repaired.stdout
    );
    assert_eq!(assert_remote_consistent(o.remote.path()), 7);
    // Now sound: a second repair finds nothing, and the clone pulls everything.
    let again = o.project.cegraph(&["push", "--repair"]).ok();
    assert!(
        again.stdout.contains("pushed 0 object(s)") && !again.stdout.contains("repaired"),
        "{}",
        again.stdout
    );
    c.cegraph(&["verify", "--remote", "shared", "--deep"]).ok();
    c.cegraph(&["pull"]).ok();
    c.cegraph(&["checkout"]).ok();
    assert_same_outputs(&o.project, &c);
    c.cegraph(&["verify"]).ok();
}

#[test]
fn pull_rejects_corrupt_remote_object() {
    let o = origin();
    o.project.cegraph(&["push"]).ok();
    let lock: serde_json::Value = serde_json::from_str(&o.project.read("cegraph.lock")).unwrap();
    let blob = locked_hash(&o.project, "make");
    let manifest = lock["nodes"]["make"]["outs"][1]["hash"]
        .as_str()
        .unwrap()
        .to_string();
    let count_key = locked_key(&o.project, "count");
    // A file object, a directory manifest and a run record, each damaged differently.
    flip_byte(&sharded(o.remote.path(), "objects", &blob), 7);
    let m = sharded(o.remote.path(), "objects", &manifest);
    let mut text = std::fs::read(&m).unwrap();
    text.extend_from_slice(b"evil.sh\n");
    std::fs::write(&m, text).unwrap();
    let rec = record_file(o.remote.path(), &count_key);
    let text = std::fs::read(&rec).unwrap();
    std::fs::write(&rec, &text[..text.len() / 2]).unwrap();
    // And a well-formed record for `make` that names other bytes than the lock file.
    let make_key = locked_key(&o.project, "make");
    let rec = record_file(o.remote.path(), &make_key);
    let count_out = locked_hash(&o.project, "count");
    let forged = std::fs::read_to_string(&rec)
        .unwrap()
        .replace(&blob, &count_out);
    std::fs::write(&rec, forged).unwrap();

    let c = clone_of(&o.project);
    let pulled = c.cegraph(&["pull"]).code(1);
    for (kind, h) in [
        ("object", &blob),
        ("object", &manifest),
        ("run record", &count_key),
    ] {
        assert!(
            pulled.stdout.contains(&format!(
                "{kind} {} on remote `shared` is corrupt",
                &h[..12]
            )),
            "{kind} {h}: {}",
            pulled.stdout
        );
    }
    assert!(
        pulled.stdout.contains(&format!(
            "make: nondeterministic: remote `shared` holds another result for the same key {} (out/blob.bin: remote {}, here {}); record not cached",
            &make_key[..12],
            &count_out[..12],
            &blob[..12]
        )),
        "{}",
        pulled.stdout
    );
    let cache = c.join("cache");
    assert!(!record_file(&cache, &make_key).exists());
    assert!(!sharded(&cache, "objects", &blob).exists());
    assert!(!sharded(&cache, "objects", &manifest).exists());
    assert!(!record_file(&cache, &count_key).exists());
    c.assert_cache_consistent();
    assert_eq!(
        std::fs::read_dir(cache.join("tmp")).unwrap().count(),
        0,
        "a temporary download was left behind"
    );
    // A remote cache hit through a corrupt object or record is an error, and nothing bad is
    // written into the workspace.
    let d = clone_of(&o.project);
    let fetched = d.cegraph(&["run", "--remote", "shared"]).code(1);
    assert!(fetched.stderr.contains("is corrupt"), "{}", fetched.stderr);
    assert!(!d.join("out/blob.bin").exists());
    d.assert_cache_consistent();
}

/// A node whose output is random: the same key gives different bytes on every run.
const RANDOM: &str = r#"
stages:
  noise:
    cmd: echo ${node} >> runs.log && head -c 64 /dev/urandom > ${outs[0]}
    outs: [out/noise.bin]
  sum:
    deps: [noise]
    cmd: echo ${node} >> runs.log && cksum < ${deps} > ${outs[0]}
    outs: [out/sum.txt]
"#;

fn random_project(remote: &Path) -> Project {
    Project::with_pipeline(&format!(
        "remotes:\n  shared: {}\n{RANDOM}",
        file_url(remote)
    ))
}

/// The output hash the remote's run record names for `key`.
fn remote_output(remote: &Path, key: &str) -> String {
    let rec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(record_file(remote, key)).unwrap()).unwrap();
    rec["outputs"][0]["hash"].as_str().unwrap().to_string()
}

#[test]
fn conflicting_push_for_same_key_fails_loudly() {
    let remote = tempfile::tempdir().unwrap();
    let a = random_project(remote.path());
    a.cegraph(&["run", "--push"]).ok();
    // Pushing the same result again is fine.
    a.cegraph(&["push"]).ok();

    let b = random_project(remote.path());
    b.cegraph(&["run"]).ok();
    let key = locked_key(&a, "noise");
    assert_eq!(locked_key(&b, "noise"), key, "same inputs, same key");
    let (ha, hb) = (locked_hash(&a, "noise"), locked_hash(&b, "noise"));
    assert_ne!(ha, hb);
    let pushed = b.cegraph(&["push"]).code(1);
    let line = format!(
        "CONFLICT noise: nondeterministic: remote `shared` holds another result for the same key {} (out/noise.bin: remote {}, here {})",
        &key[..12],
        &ha[..12],
        &hb[..12]
    );
    assert!(pushed.stdout.contains(&line), "{}", pushed.stdout);
    assert!(
        pushed.stdout.contains("push failed: 1 node(s)"),
        "{}",
        pushed.stdout
    );
    // The first result stays; the node without a conflict (other key) was pushed.
    assert_eq!(remote_output(remote.path(), &key), ha);
    assert!(record_file(remote.path(), &locked_key(&b, "sum")).exists());

    // `run --push` says the same and exits non-zero (--force: run, don't fetch).
    let c = random_project(remote.path());
    let ran = c.cegraph(&["run", "--force-all", "--push"]).code(1);
    assert!(
        ran.stdout.contains("CONFLICT noise: nondeterministic") && ran.stdout.contains(&ha[..12]),
        "{}",
        ran.stdout
    );
    assert_eq!(remote_output(remote.path(), &key), ha);
}

/// Two workspaces sharing one remote, and the command that runs and pushes in either.
type Racers = (
    Project,
    Project,
    Box<dyn Fn(&Project) -> std::process::Command>,
);

/// Two workspaces run the random node and push its result at the same moment, `rounds`
/// times: exactly one push wins, the other is told, and the remote holds the winner's bytes.
/// `setup` makes the workspaces of a round; `remote_output` reads what the remote's record
/// names for a key.
fn race(
    rounds: usize,
    setup: &dyn Fn(usize) -> Racers,
    remote_output: &dyn Fn(usize, &str) -> String,
) {
    for round in 0..rounds {
        let (a, b, command) = setup(round);
        let start = |p: &Project| {
            command(p)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        };
        let (ca, cb) = (start(&a), start(&b));
        let (oa, ob) = (
            ca.wait_with_output().unwrap(),
            cb.wait_with_output().unwrap(),
        );
        let winner = remote_output(round, &locked_key(&a, "noise"));
        let mut wins = 0;
        for (p, out) in [(&a, &oa), (&b, &ob)] {
            let text = format!(
                "round {round}: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            if out.status.success() {
                wins += 1;
                assert_eq!(locked_hash(p, "noise"), winner, "{text}");
            } else {
                assert!(text.contains("CONFLICT noise: nondeterministic"), "{text}");
                assert_ne!(locked_hash(p, "noise"), winner, "{text}");
            }
        }
        assert_eq!(wins, 1, "round {round}: exactly one push wins");
    }
}

#[test]
fn concurrent_pushes_of_one_key_agree_or_conflict() {
    let remotes: Vec<tempfile::TempDir> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    race(
        remotes.len(),
        &|round| {
            let dir = remotes[round].path();
            (
                random_project(dir),
                random_project(dir),
                Box::new(|p: &Project| p.command(&["run", "--force-all", "--push"])),
            )
        },
        &|round, key| remote_output(remotes[round].path(), key),
    );
    // With `--remote`, a run that starts after the other's push fetches instead: then both
    // succeed with the same bytes; otherwise one is told. Never two silent, different results.
    for _ in 0..2 {
        let remote = tempfile::tempdir().unwrap();
        let (a, b) = (random_project(remote.path()), random_project(remote.path()));
        let start = |p: &Project| {
            p.command(&["run", "--remote", "shared", "--push"])
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        };
        let (ca, cb) = (start(&a), start(&b));
        let (oa, ob) = (
            ca.wait_with_output().unwrap(),
            cb.wait_with_output().unwrap(),
        );
        if oa.status.success() && ob.status.success() {
            assert_eq!(locked_hash(&a, "noise"), locked_hash(&b, "noise"));
        } else {
            assert!(oa.status.success() || ob.status.success());
        }
    }
}

#[test]
fn s3_concurrent_pushes_of_one_key_conflict() {
    let Some(endpoint) = s3_endpoint("s3_concurrent_pushes_of_one_key_conflict") else {
        return;
    };
    let buckets: Vec<String> = (0..4)
        .map(|i| bucket(&endpoint, &format!("race{i}")))
        .collect();
    race(
        buckets.len(),
        &|round| {
            let yaml = format!("remotes:\n  s3: s3://{}\n{RANDOM}", buckets[round]);
            let endpoint = endpoint.clone();
            (
                Project::with_pipeline(&yaml),
                Project::with_pipeline(&yaml),
                Box::new(move |p: &Project| {
                    s3_spawnable(p, &endpoint, &["run", "--force-all", "--push"])
                }),
            )
        },
        &|round, key| {
            let path = format!("/{}/runs/{}/{}.json", buckets[round], &key[..2], &key[2..]);
            let (status, body) = http(&endpoint, "GET", &path, b"");
            assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
            let rec: serde_json::Value = serde_json::from_slice(&body).unwrap_or_else(|e| {
                panic!(
                    "the record on the server is not JSON ({e}): {}",
                    String::from_utf8_lossy(&body)
                )
            });
            rec["outputs"][0]["hash"].as_str().unwrap().to_string()
        },
    );
}

#[test]
fn remote_fetch_reports_rewritten_lock_hashes() {
    let remote = tempfile::tempdir().unwrap();
    let a = random_project(remote.path());
    a.cegraph(&["run", "--push"]).ok();
    // Another machine runs the node itself; its lock names bytes the remote never got.
    let b = random_project(remote.path());
    b.cegraph(&["run"]).ok();
    b.cegraph(&["push"]).code(1);
    let key = locked_key(&b, "noise");
    let (ha, hb) = (locked_hash(&a, "noise"), locked_hash(&b, "noise"));

    // A clone of that lock file gets the remote's result, and is told (`--locked` refuses).
    let d = clone_of(&b);
    let locked = d
        .cegraph(&["run", "--remote", "shared", "--locked"])
        .code(2);
    assert!(locked.stderr.contains("--locked"), "{}", locked.stderr);
    let c = clone_of(&b);
    let out = c.cegraph(&["run", "--remote", "shared"]).ok();
    let warning = format!(
        "warning: noise: the lock file's hashes for key {} are replaced by the remote's (out/noise.bin {} → {})",
        &key[..12],
        &hb[..12],
        &ha[..12]
    );
    assert!(out.stderr.contains(&warning), "{}", out.stderr);
    assert!(out.stderr.contains("nondeterministic"), "{}", out.stderr);
    assert_eq!(locked_hash(&c, "noise"), ha);
    c.cegraph(&["verify"]).ok();

    // Re-running the node here rewrites it again, and says so too.
    let forced = c.cegraph(&["run", "cegraph.yaml", "--force", "noise"]).ok();
    assert!(
        forced
            .stderr
            .contains("warning: noise: the lock file's hashes for key")
            && forced.stderr.contains("replaced by this run's"),
        "{}",
        forced.stderr
    );
    // Up to date: nothing rewritten, nothing said.
    let quiet = c.cegraph(&["run", "--remote", "shared"]).ok();
    assert!(!quiet.stderr.contains("warning"), "{}", quiet.stderr);
}

#[test]
fn s3_push_repair_and_conflicts() {
    let Some(endpoint) = s3_endpoint("s3_push_repair_and_conflicts") else {
        return;
    };
    let b = bucket(&endpoint, "repair");
    let yaml = format!("remotes:\n  s3: s3://{b}\n{RANDOM}");
    let p = Project::with_pipeline(&yaml);
    s3_command(&p, &endpoint, &["run", "--push"]).ok();
    let noise = locked_hash(&p, "noise");
    let path = format!("/{b}/objects/{}/{}", &noise[..2], &noise[2..]);
    let (status, _) = http(&endpoint, "PUT", &path, &[b'x'; 64]);
    assert_eq!(status, 200);
    let plain = s3_command(&p, &endpoint, &["push"]).ok();
    assert!(
        plain.stdout.contains("pushed 0 object(s)"),
        "{}",
        plain.stdout
    );
    s3_command(&p, &endpoint, &["verify", "--remote", "s3", "--deep"]).code(1);
    let repaired = s3_command(&p, &endpoint, &["push", "--repair"]).ok();
    assert!(
        repaired.stdout.contains("repaired 1 corrupt"),
        "{}",
        repaired.stdout
    );
    s3_command(&p, &endpoint, &["verify", "--remote", "s3", "--deep"]).ok();

    // Another machine with another result for the same key is told.
    let q = Project::with_pipeline(&yaml);
    let ran = s3_command(&q, &endpoint, &["run", "--force-all", "--push"]).code(1);
    assert!(
        ran.stdout.contains("CONFLICT noise: nondeterministic")
            && ran.stdout.contains(&noise[..12]),
        "{}",
        ran.stdout
    );
}
