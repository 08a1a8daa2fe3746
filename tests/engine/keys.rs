//! What a node's key covers (issue 11): the kind's code, the env it runs with, and nothing
//! about where or with how many `-j` slots the pipeline runs.

use crate::project::Project;

/// `env:` of a built-in kind is in its key, so it must reach the process that runs the kind:
/// here `PATH` selects the `curl` a `source` node downloads with.
#[test]
fn kind_env_reaches_the_worker() {
    let p = Project::new();
    let bin = p.join("fakebin");
    std::fs::create_dir_all(&bin).unwrap();
    let curl = bin.join("curl");
    // Called as `curl -fsSL --retry 2 -o TMP URL`.
    std::fs::write(
        &curl,
        "#!/bin/sh\nprintf 'fetched by the fake curl: %s\\n' \"$MARK\" > \"$5\"\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&curl, std::fs::Permissions::from_mode(0o755)).unwrap();
    p.write(
        "cegraph.yaml",
        &format!(
            r#"
stages:
  data:
    kind: source
    params: {{path: data/corpus.txt, url: "http://cegraph.invalid/corpus.txt"}}
    env: {{PATH: "{}:/usr/bin:/bin", MARK: from-env}}
"#,
            bin.display()
        ),
    );
    p.cegraph(&["run", "-q"]).ok();
    assert_eq!(
        p.read("data/corpus.txt"),
        "fetched by the fake curl: from-env\n"
    );
}

/// A `cmd` node's `CEGRAPH_THREADS` is its `resources.cpus`, not whatever `-j` leaves.
#[test]
fn node_threads_follow_resources_cpus_not_j() {
    let p = Project::with_pipeline(
        r#"
stages:
  t:
    cmd: echo $CEGRAPH_THREADS > ${outs[0]}
    outs: [out/threads.txt]
    resources: {cpus: 3}
"#,
    );
    p.cegraph(&["run", "-q", "-j", "1"]).ok();
    assert_eq!(p.read("out/threads.txt"), "3\n");
    // The thread count is in the key: other threads, other results.
    p.edit("cegraph.yaml", "cpus: 3", "cpus: 2");
    let status = p.cegraph(&["status"]).stdout;
    assert!(status.contains("threads: 3 → 2"), "{status}");
}

const TEXT_PIPELINE: &str = r#"
stages:
  corpus:
    kind: source
    params: {builtin: grammar, size: 20000, seed: 0}
  user_text:
    kind: source
    params: {path: data/text.txt}
  tokens:
    kind: tokenize
    deps: [corpus]
    params: {tokenizer: bpe, bpe_vocab: 300}
  user_tokens:
    kind: tokenize
    deps: [user_text]
    params: {tokenizer: char}
"#;

/// Outputs are a pure function of the key: the same pipeline in two directories gives the
/// same lock file (keys and output hashes), so no output embeds an absolute path.
#[test]
fn workspace_path_does_not_change_source_and_tokenize_hashes() {
    let a = Project::with_pipeline(TEXT_PIPELINE);
    let b = Project::new();
    let nested = "deeper/workspace/here";
    b.write(&format!("{nested}/cegraph.toml"), "");
    b.write(&format!("{nested}/cegraph.yaml"), TEXT_PIPELINE);
    a.write("data/text.txt", "to be or not to be\n");
    a.cegraph(&["run", "-q"]).ok();
    b.write(&format!("{nested}/data/text.txt"), "to be or not to be\n");
    let run: crate::project::Run = b
        .command(&["run", "-q"])
        .current_dir(b.join(nested))
        .output()
        .unwrap()
        .into();
    run.ok();
    let lock_a = a.read("cegraph.lock");
    assert_eq!(lock_a, b.read(&format!("{nested}/cegraph.lock")));
    assert!(lock_a.contains("user_tokens"), "{lock_a}");
}

/// `cegraph show` names the kind's code fingerprint, the identity in the node's key.
#[test]
fn show_prints_the_kind_code_fingerprint() {
    let p = Project::with_pipeline(
        "stages:\n  corpus:\n    kind: source\n    params: {builtin: grammar, size: 2000, seed: 0}\n",
    );
    p.cegraph(&["run", "-q"]).ok();
    let out = p.cegraph(&["show", "corpus"]).ok().stdout;
    let line = out
        .lines()
        .find(|l| l.starts_with("kind "))
        .unwrap_or_else(|| panic!("{out}"));
    let hex = line.rsplit(' ').next().unwrap();
    assert_eq!(hex.len(), 64, "{line}");
    assert_eq!(
        hex,
        blake3::Hash::from_bytes(
            cegraph::stages::catalog()
                .get("source")
                .unwrap()
                .fingerprint()
        )
        .to_hex()
        .as_str()
    );
    assert!(out.contains("\"kind_fingerprint\""), "{out}");
}

/// A kind process built from other code than the cegraph that computed the key refuses the
/// job: its outputs would not be what the key says.
#[test]
fn kind_job_from_other_code_is_refused() {
    let p = Project::with_pipeline(
        "stages:\n  corpus:\n    kind: source\n    params: {builtin: grammar, size: 2000, seed: 0}\n",
    );
    let job = serde_json::json!({
        "kind": "source", "node": "corpus",
        "params": {"builtin": "grammar", "size": 2000, "seed": 0},
        "matrix": [], "inputs": [], "deps": [],
        "out_dir": p.join("out/corpus"), "outs": [p.join("out/corpus/corpus.txt"), p.join("out/corpus/grammar.json")],
        "workspace": p.path(), "threads": 1, "gpus": 0,
        "result": p.join("result.json"),
        "fingerprint": "0".repeat(64),
    });
    std::fs::create_dir_all(p.join("out/corpus")).unwrap();
    p.write("job.json", &job.to_string());
    let run = p.cegraph(&["exec-node", "--job", "job.json"]).code(2);
    assert!(
        run.stderr.contains("built from other code"),
        "{}",
        run.stderr
    );
    assert!(!p.join("result.json").exists());
}

/// A corpus, its tokens and one tiny CPU `train` node.
const TINY_TRAIN: &str = r#"
stages:
  corpus:
    kind: source
    params: {builtin: grammar, size: 20000, seed: 0}
  tokens:
    kind: tokenize
    deps: [corpus]
    params: {tokenizer: char}
  train:
    kind: train
    deps: [tokens]
    params: {n_layer: 1, n_head: 2, n_embd: 16, block_size: 16, max_iters: 2, device: cpu}
"#;

/// `device: auto` is resolved when the plan is made, and `status` says where each libtorch
/// node will run and in which precision (so a CPU result is never mistaken for a GPU one).
#[test]
fn status_shows_the_resolved_device_and_precision_of_libtorch_nodes() {
    let p = Project::with_pipeline(TINY_TRAIN);
    let json = p.cegraph(&["status", "--json"]).code(1).stdout;
    let rows: serde_json::Value = serde_json::from_str(&json).unwrap();
    let train = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["node"] == "train")
        .unwrap();
    assert_eq!(train["runtime"]["device"], "cpu", "{json}");
    assert_eq!(train["runtime"]["precision"], "fp32", "{json}");
    let corpus = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["node"] == "corpus")
        .unwrap();
    assert!(
        corpus.get("runtime").is_none(),
        "only libtorch nodes have one: {json}"
    );
    let text = p.cegraph(&["status"]).code(1).stdout;
    assert!(text.contains("train (on cpu, fp32)"), "{text}");
}

/// `ATEN_CPU_CAPABILITY=default` makes libtorch train other bits than on AVX2/AVX-512
/// (measured: another model.safetensors hash for the same node), and MKL/oneDNN/cuBLAS
/// variables do likewise; none of it was in the key, so a run under one setting was served
/// to a run under another. Now the CPU kernels and those variables are part of a libtorch
/// node's key (an unrelated variable is not).
#[test]
fn aten_cpu_capability_and_numerics_env_change_a_libtorch_nodes_key() {
    let p = Project::with_pipeline(TINY_TRAIN);
    // The runtime part of each node's key, as `status --json` shows it (the key hashes it).
    let runtime_with = |env: &[(&str, &str)]| {
        let mut c = p.command(&["status", "--json"]);
        for v in [
            "ATEN_CPU_CAPABILITY",
            "MKL_CBWR",
            "ONEDNN_MAX_CPU_ISA",
            "FOO_UNRELATED",
        ] {
            c.env_remove(v);
        }
        c.envs(env.iter().copied());
        let out = c.output().unwrap();
        let rows: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
        let of = |node: &str| {
            rows.as_array()
                .unwrap()
                .iter()
                .find(|r| r["node"] == node)
                .unwrap()["runtime"]
                .clone()
        };
        (of("train"), of("tokens"))
    };
    let (plain, tokens) = runtime_with(&[]);
    assert!(plain["cpu"].is_string(), "{plain}");
    assert!(plain.get("env").is_none(), "{plain}");
    assert!(
        tokens.is_null(),
        "a tokenizer's output does not depend on them: {tokens}"
    );
    assert_eq!(plain, runtime_with(&[("FOO_UNRELATED", "1")]).0);
    let lowered = runtime_with(&[("ATEN_CPU_CAPABILITY", "default")]).0;
    assert!(
        lowered["cpu"].as_str().unwrap().starts_with("DEFAULT"),
        "{lowered}"
    );
    let mkl = runtime_with(&[("MKL_CBWR", "AVX2")]).0;
    assert_eq!(mkl["env"], "MKL_CBWR=AVX2");
}

/// A `cmd` node may run PyTorch, whose results the numerics variables change too
/// (`ATEN_CPU_CAPABILITY`, `MKL_CBWR`, `NVIDIA_TF32_OVERRIDE`, …): setting one makes the node
/// stale, naming it; an unrelated variable does not.
#[test]
fn numerics_env_vars_change_a_cmd_nodes_key() {
    let p = Project::with_pipeline(
        r#"
stages:
  fit:
    cmd: echo fitted > out.txt
    outs: [out.txt]
"#,
    );
    let status = |env: &[(&str, &str)]| {
        let mut c = p.command(&["status"]);
        for v in [
            "ATEN_CPU_CAPABILITY",
            "MKL_CBWR",
            "NVIDIA_TF32_OVERRIDE",
            "FOO_UNRELATED",
        ] {
            c.env_remove(v);
        }
        c.envs(env.iter().copied());
        let out = c.output().unwrap();
        (out.status.code(), String::from_utf8(out.stdout).unwrap())
    };
    let mut run = p.command(&["run"]);
    run.env_remove("MKL_CBWR").env_remove("ATEN_CPU_CAPABILITY");
    run.env_remove("NVIDIA_TF32_OVERRIDE");
    assert!(run.status().unwrap().success());
    assert_eq!(status(&[]).0, Some(0));
    assert_eq!(status(&[("FOO_UNRELATED", "1")]).0, Some(0));
    for var in [
        ("MKL_CBWR", "AVX2"),
        ("ATEN_CPU_CAPABILITY", "default"),
        ("NVIDIA_TF32_OVERRIDE", "0"),
    ] {
        let (code, text) = status(&[var]);
        assert_eq!(code, Some(1), "{text}");
        assert!(
            text.contains(&format!("env: {}={}", var.0, var.1)),
            "{text}"
        );
    }
}

/// `doctor` shows the CPU kernels and numerics variables the way libtorch nodes' keys name
/// them, with or without a worker.
#[test]
fn doctor_shows_the_keyed_cpu_and_numerics_env() {
    let p = Project::new();
    let mut c = p.command(&["doctor"]);
    c.env_remove("ATEN_CPU_CAPABILITY").env("MKL_CBWR", "AVX2");
    let out = String::from_utf8(c.output().unwrap().stdout).unwrap();
    assert!(out.lines().any(|l| l.starts_with("cpu ")), "{out}");
    assert!(out.contains("env       MKL_CBWR=AVX2"), "{out}");
    let mut c = p.command(&["doctor"]);
    c.env("ATEN_CPU_CAPABILITY", "default");
    let out = String::from_utf8(c.output().unwrap().stdout).unwrap();
    assert!(out.contains("cpu       DEFAULT"), "{out}");
}
