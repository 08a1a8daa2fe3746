//! Outputs are a pure function of the key: the engine (run in-process, nodes in
//! `cegraph-worker`) gives the same lock file whatever `-j` is and wherever the workspace is.
#![cfg(feature = "torch")]

use std::path::Path;

use cegraph::exec::{RunOptions, Silent};
use cegraph::graph::Dag;
use cegraph::store::Store;
use cegraph::store::lock::LockFile;

const WORKER: &str = env!("CARGO_BIN_EXE_cegraph-worker");

/// Two tiny train nodes that ask for 2 threads and let `device: auto` resolve.
const TRAIN_PIPELINE: &str = r#"
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
    matrix: {variant: [baseline, rope], seed: [1]}
    params:
      innovations: "${variant}"
      seed: "${seed}"
      n_layer: 1
      n_head: 2
      n_embd: 16
      block_size: 16
      batch_size: 4
      max_iters: 4
      eval_every: 2
      eval_iters: 2
      device: auto
    resources: {cpus: 2}
"#;

/// Run `yaml` in a fresh workspace under `dir` with `-j jobs`; the lock file's text.
fn run_in(dir: &Path, yaml: &str, jobs: usize) -> String {
    cegraph::exec::platform::use_worker(Path::new(WORKER));
    std::fs::write(dir.join("cegraph.toml"), "").unwrap();
    let file = dir.join("cegraph.yaml");
    std::fs::write(&file, yaml).unwrap();
    let catalog = cegraph::stages::catalog();
    let p = cegraph::spec::load(&file, &catalog).unwrap();
    let dag = Dag::build(&p).unwrap();
    let store = Store::open(&p.workspace.join("cache")).unwrap();
    let opts = RunOptions {
        jobs,
        targets: Vec::new(),
        dry_run: false,
        force: Vec::new(),
        keep_going: false,
        collect_only: false,
        exe: WORKER.into(),
        remote: None,
        push: false,
        locked: false,
    };
    let summary =
        cegraph::exec::run(&p, &dag, &store, &LockFile::default(), &opts, &Silent).unwrap();
    if let Some(e) = summary.error {
        panic!("run failed: {e}\n{:?}", summary.outcomes);
    }
    summary.lock.to_text()
}

#[test]
fn same_pipeline_with_j1_and_j2_gives_identical_lock() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let one = run_in(a.path(), TRAIN_PIPELINE, 1);
    let two = run_in(b.path(), TRAIN_PIPELINE, 2);
    assert_eq!(one, two);
    // The threads the key promises are the threads the node ran with.
    let record = std::fs::read_to_string(
        a.path()
            .join("out/train/variant=baseline,seed=1/record.json"),
    )
    .unwrap();
    let r: serde_json::Value = serde_json::from_str(&record).unwrap();
    assert_eq!(r["threads"], 2, "{record}");
    assert!(r.get("node").is_none(), "{record}");
}

/// Everything after the engine's paths: fit_ceg, report and eval as well as train.
const FULL_PIPELINE: &str = r#"
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
    matrix: {scale: [s1], variant: [baseline, rope], seed: [1]}
    params:
      innovations: "${variant}"
      seed: "${seed}"
      n_layer: 1
      n_head: 2
      n_embd: 16
      block_size: 16
      batch_size: 4
      max_iters: 4
      eval_every: 2
      eval_iters: 2
      device: cpu
  eval:
    kind: eval
    matrix: {variant: [baseline]}
    deps: ["train[scale=s1,variant=${variant},seed=1]", tokens]
    params: {max_tokens: 256, sample_tokens: 8, device: cpu}
  fit:
    kind: fit_ceg
    deps: [train]
    params: {baseline: baseline, bootstrap: 10}
  report:
    kind: report
    deps: [fit, train]
"#;

#[test]
fn workspace_path_does_not_change_output_hashes() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let nested = b.path().join("some/deeper/place");
    std::fs::create_dir_all(&nested).unwrap();
    let here = run_in(a.path(), FULL_PIPELINE, 2);
    let there = run_in(&nested, FULL_PIPELINE, 2);
    assert_eq!(here, there);
    for node in ["report", "fit", "eval"] {
        assert!(here.contains(node), "{here}");
    }
}

/// `precision: auto` is resolved with the device when the plan is made (fp32 on the CPU) and
/// the worker trains with exactly that: the same weights as an explicit `fp32`, and bf16's
/// differ (so the precision a node used is the one its key names).
#[test]
fn precision_auto_is_resolved_at_plan_time_and_reaches_the_worker() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = TRAIN_PIPELINE
        .replace(
            "matrix: {variant: [baseline, rope], seed: [1]}",
            "matrix: {variant: [baseline], seed: [1], precision: [auto, fp32, bf16]}",
        )
        .replace(
            "device: auto",
            "device: cpu\n      precision: \"${precision}\"",
        );
    run_in(dir.path(), &yaml, 1);
    let out = |p: &str| {
        dir.path()
            .join(format!("out/train/variant=baseline,seed=1,precision={p}"))
    };
    let record = |p: &str| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(out(p).join("record.json")).unwrap()).unwrap()
    };
    let weights = |p: &str| blake3::hash(&std::fs::read(out(p).join("model.safetensors")).unwrap());
    assert_eq!(record("auto")["train"]["precision"], "fp32");
    assert_eq!(record("bf16")["train"]["precision"], "bf16");
    assert_eq!(weights("auto"), weights("fp32"));
    assert_ne!(weights("bf16"), weights("fp32"));
}
