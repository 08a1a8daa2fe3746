//! Corruption storm (run by `scripts/corruption-storm.sh`): damages objects of a real
//! pipeline cache and checks that `verify` names every damaged object and that no `run` or
//! `checkout` ever writes a byte into the workspace that differs from what the lock file
//! names. Then measures restore throughput of a large output and, where `mount -t tmpfs`
//! is allowed, what a full cache disk does.
//!
//!   corruption_storm <cegraph binary> [rounds] [big MB] [seed]

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// Cmd stages only (the libtorch smoke pipeline takes minutes per round on 2 cores): files
/// under and over 1 MiB (both store paths), a directory with an executable, a downstream node.
const PIPELINE: &str = r#"
stages:
  numbers:
    cmd: seq 1 60000 > ${outs[0]} && yes 'a line of text for the larger file' | head -c 3000000 > ${outs[1]}
    outs: [out/numbers.txt, out/big.txt]
  shards:
    cmd: >-
      mkdir -p ${outs[0]}/sub && for i in 1 2 3 4 5 6; do seq $i 7 30000 > ${outs[0]}/part-$i.txt; done &&
      printf '#!/bin/sh\necho tool\n' > ${outs[0]}/sub/tool.sh && chmod +x ${outs[0]}/sub/tool.sh
    outs: [out/shards]
  summary:
    deps: [numbers, shards]
    cmd: cat ${deps} 2>/dev/null | wc -c > ${outs[0]}; cat out/shards/part-*.txt | sort -n | tail -n 100 > ${outs[1]}
    outs: [out/summary.txt, out/tail.txt]
"#;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*: reproducible from the seed, no dependency.
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

fn cegraph(bin: &Path, dir: &Path, args: &[&str]) -> Out {
    let o = Command::new(bin)
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env_remove("CEGRAPH_CACHE")
        .output()
        .expect("cegraph runs");
    Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

fn must(o: Out, what: &str) -> Out {
    assert_eq!(o.code, 0, "{what} failed:\n{}\n{}", o.stdout, o.stderr);
    o
}

fn b3(path: &Path) -> String {
    blake3::hash(&fs::read(path).unwrap()).to_hex().to_string()
}

/// Every file under the workspace's `out/`, with its blake3.
fn workspace_files(ws: &Path) -> BTreeMap<PathBuf, String> {
    walkdir::WalkDir::new(ws.join("out"))
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file())
        .map(|e| (e.path().to_path_buf(), b3(e.path())))
        .collect()
}

/// Objects the lock names (directory manifests and their entries too), each with the
/// workspace files its bytes back.
fn locked_objects(ws: &Path) -> BTreeMap<PathBuf, Vec<PathBuf>> {
    let lock: serde_json::Value = serde_json::from_str(
        &fs::read_to_string(ws.join("cegraph.yaml").with_extension("lock")).unwrap(),
    )
    .unwrap();
    let obj = |h: &str| ws.join(format!("cache/objects/{}/{}", &h[..2], &h[2..]));
    let mut map: BTreeMap<PathBuf, Vec<PathBuf>> = BTreeMap::new();
    for entry in lock["nodes"].as_object().unwrap().values() {
        for out in entry["outs"].as_array().unwrap() {
            let hash = out["hash"].as_str().unwrap();
            let path = ws.join(out["path"].as_str().unwrap());
            map.entry(obj(hash)).or_default().push(path.clone());
            if out["dir"].as_bool() == Some(true) {
                let manifest = fs::read_to_string(obj(hash)).unwrap();
                for line in manifest.lines() {
                    let mut it = line.splitn(4, ' ');
                    let h = it.next().unwrap();
                    let rel = it.nth(2).unwrap();
                    map.entry(obj(h)).or_default().push(path.join(rel));
                }
            }
        }
    }
    map
}

fn corrupt(rng: &mut Rng, obj: &Path) -> &'static str {
    let mut bytes = fs::read(obj).unwrap();
    let how = match rng.below(3) {
        0 if !bytes.is_empty() => {
            let i = rng.below(bytes.len() as u64) as usize;
            bytes[i] ^= 1 << rng.below(8);
            "flip"
        }
        1 if !bytes.is_empty() => {
            bytes.truncate(rng.below(bytes.len() as u64) as usize);
            "truncate"
        }
        _ => {
            let n = 1 + rng.below(16);
            bytes.extend((0..n).map(|_| rng.next() as u8));
            "append"
        }
    };
    let mode = fs::metadata(obj).unwrap().permissions().mode();
    fs::set_permissions(obj, fs::Permissions::from_mode(0o644)).unwrap();
    fs::write(obj, bytes).unwrap();
    fs::set_permissions(obj, fs::Permissions::from_mode(mode)).unwrap();
    how
}

/// Files in the workspace whose bytes differ from the good ones (missing files are fine).
fn bad_bytes(ws: &Path, good: &BTreeMap<PathBuf, String>) -> Vec<PathBuf> {
    workspace_files(ws)
        .into_iter()
        .filter(|(p, h)| good.get(p).is_some_and(|g| g != h))
        .map(|(p, _)| p)
        .collect()
}

fn storm(bin: &Path, rounds: usize, seed: u64) {
    let tmp = tempfile::tempdir().unwrap();
    let ws = tmp.path();
    fs::write(ws.join("cegraph.toml"), "").unwrap();
    fs::write(ws.join("cegraph.yaml"), PIPELINE).unwrap();
    must(cegraph(bin, ws, &["run"]), "first run");
    let good = workspace_files(ws);
    let objects: Vec<(PathBuf, Vec<PathBuf>)> = locked_objects(ws).into_iter().collect();
    let mut rng = Rng(seed | 1);
    let (mut caught, mut via_run, mut via_checkout) = (0, 0, 0);
    let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
    let mut written_bad = Vec::new();
    for round in 1..=rounds {
        let (obj, backs) = &objects[rng.below(objects.len() as u64) as usize];
        let how = corrupt(&mut rng, obj);
        *kinds.entry(how).or_default() += 1;
        let v = cegraph(bin, ws, &["verify"]);
        let named = v.code == 1 && v.stdout.contains(&obj.display().to_string());
        if named {
            caught += 1;
        } else {
            eprintln!(
                "round {round}: verify did not name {} ({how}):\n{}",
                obj.display(),
                v.stdout
            );
        }
        // Make the workspace need the damaged bytes, then try to get them back.
        for p in backs {
            let _ = fs::remove_file(p);
            let _ = fs::remove_dir_all(p);
        }
        let use_checkout = rng.below(2) == 0;
        if use_checkout {
            let c = cegraph(bin, ws, &["checkout"]);
            assert_ne!(
                c.code, 0,
                "round {round}: checkout of a corrupt object succeeded"
            );
            via_checkout += 1;
        } else {
            via_run += 1;
        }
        written_bad.extend(bad_bytes(ws, &good));
        // `run` rebuilds whatever is missing or quarantined; the cache is whole again.
        must(cegraph(bin, ws, &["run"]), "repairing run");
        written_bad.extend(bad_bytes(ws, &good));
        if cegraph(bin, ws, &["verify"]).code != 0 {
            must(cegraph(bin, ws, &["run", "--force"]), "forced run");
        }
        must(cegraph(bin, ws, &["verify"]), "verify after repair");
        assert_eq!(
            workspace_files(ws),
            good,
            "round {round}: workspace differs"
        );
    }
    println!(
        "corruption storm: {rounds} round(s) ({}), verify named the damaged object {caught}/{rounds} time(s); \
         restores tried via checkout {via_checkout}, via run {via_run}; workspace files with wrong bytes: {}",
        kinds
            .iter()
            .map(|(k, n)| format!("{n} {k}"))
            .collect::<Vec<_>>()
            .join(", "),
        written_bad.len()
    );
    assert_eq!(caught, rounds, "verify missed a corruption");
    assert!(
        written_bad.is_empty(),
        "wrong bytes reached the workspace: {written_bad:?}"
    );
}

fn throughput(bin: &Path, mb: u64) {
    let tmp = tempfile::tempdir().unwrap();
    let ws = tmp.path();
    fs::write(ws.join("cegraph.toml"), "").unwrap();
    fs::write(
        ws.join("cegraph.yaml"),
        format!(
            "stages:\n  big:\n    cmd: yes 'throughput line 0123456789abcdef' | head -c {} > ${{outs[0]}}\n    outs: [out/big.bin]\n",
            mb << 20
        ),
    )
    .unwrap();
    must(cegraph(bin, ws, &["run"]), "big run");
    let size = fs::metadata(ws.join("out/big.bin")).unwrap().len() as f64;
    let mut best_restore = f64::MAX;
    let mut best_copy = f64::MAX;
    let obj = ws.join(format!("cache/objects/{0}", {
        let h = b3(&ws.join("out/big.bin"));
        format!("{}/{}", &h[..2], &h[2..])
    }));
    let mut best_noop = f64::MAX;
    for _ in 0..3 {
        let t = Instant::now();
        must(cegraph(bin, ws, &["run"]), "up-to-date run");
        best_noop = best_noop.min(t.elapsed().as_secs_f64());
        fs::remove_file(ws.join("out/big.bin")).unwrap();
        let t = Instant::now();
        let o = must(cegraph(bin, ws, &["run"]), "restoring run");
        best_restore = best_restore.min(t.elapsed().as_secs_f64());
        assert!(o.stdout.contains("restored"), "{}", o.stdout);
        let t = Instant::now();
        fs::copy(&obj, ws.join("plain-copy.bin")).unwrap();
        best_copy = best_copy.min(t.elapsed().as_secs_f64());
        fs::remove_file(ws.join("plain-copy.bin")).unwrap();
    }
    let net = (best_restore - best_noop).max(1e-6);
    println!(
        "restore of a {:.0} MB output: whole `cegraph run` {:.2}s, of which {:.2}s restoring = {:.0} MB/s \
         copied and blake3-checked (best of 3; an up-to-date run takes {:.2}s); a plain copy of the object: \
         {:.2}s = {:.0} MB/s",
        size / 1e6,
        best_restore,
        net,
        size / 1e6 / net,
        best_noop,
        best_copy,
        size / 1e6 / best_copy
    );
}

fn disk_full(bin: &Path) {
    let tmp = tempfile::tempdir().unwrap();
    let ws = tmp.path().join("ws");
    let cache = tmp.path().join("cache");
    fs::create_dir_all(&ws).unwrap();
    fs::create_dir_all(&cache).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=8m", "tmpfs"])
        .arg(&cache)
        .output();
    if !mounted.as_ref().is_ok_and(|o| o.status.success()) {
        println!("disk full: SKIPPED (mount -t tmpfs is not permitted here)");
        return;
    }
    let umount = || {
        let _ = Command::new("umount").arg(&cache).status();
    };
    fs::write(ws.join("cegraph.toml"), "").unwrap();
    fs::write(
        ws.join("cegraph.yaml"),
        "stages:\n  small:\n    cmd: echo ok > ${outs[0]}\n    outs: [out/small.txt]\n  large:\n    cmd: head -c 20000000 /dev/urandom > ${outs[0]}\n    outs: [out/large.bin]\n",
    )
    .unwrap();
    let c = cache.to_str().unwrap();
    let full = cegraph(bin, &ws, &["run", "--jobs", "1", "--cache", c]);
    let text = format!("{}{}", full.stdout, full.stderr);
    let clear = full.code != 0
        && text.contains("no space left on the device")
        && text.contains(c)
        && text.contains("free there");
    let half_published = walkdir::WalkDir::new(cache.join("objects"))
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file())
        .filter(|e| {
            let shard = e
                .path()
                .parent()
                .unwrap()
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned();
            b3(e.path()) != format!("{shard}{}", e.file_name().to_string_lossy())
        })
        .count();
    let _ = Command::new("mount")
        .args(["-o", "remount,size=64m"])
        .arg(&cache)
        .status();
    let next = cegraph(bin, &ws, &["run", "--cache", c]);
    let verified = cegraph(bin, &ws, &["verify", "--cache", c]);
    umount();
    println!(
        "disk full (8 MiB tmpfs cache, 20 MB output): error clear: {clear}; half-published objects: {half_published}; \
         after growing it to 64 MiB the next run {} and verify {}",
        if next.code == 0 {
            "completed"
        } else {
            "FAILED"
        },
        if verified.code == 0 {
            "passed"
        } else {
            "FAILED"
        },
    );
    println!(
        "  the error: {}",
        text.lines()
            .filter(|l| l.contains("no space"))
            .collect::<Vec<_>>()
            .join(" | ")
    );
    assert!(clear, "unclear disk-full error:\n{text}");
    assert_eq!(half_published, 0);
    assert_eq!(next.code, 0, "{}{}", next.stdout, next.stderr);
    assert_eq!(verified.code, 0, "{}", verified.stdout);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let bin = PathBuf::from(
        args.get(1)
            .expect("usage: corruption_storm <cegraph> [rounds] [big MB] [seed]"),
    );
    let rounds = args.get(2).map_or(50, |s| s.parse().unwrap());
    let mb = args.get(3).map_or(200, |s| s.parse().unwrap());
    let seed = args.get(4).map_or(0x5eed, |s| s.parse().unwrap());
    let t = Instant::now();
    storm(&bin, rounds, seed);
    throughput(&bin, mb);
    disk_full(&bin);
    println!("done in {:.1}s", t.elapsed().as_secs_f64());
}
