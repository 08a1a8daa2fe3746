//! Shared by tests/fit_ceg_*.rs and tests/report_*.rs: synthetic train nodes (curve.json in the
//! train kind's schema) and a way to run a kind's `run` with a hand-built context.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use cegraph::analysis::paper::reference_law;
use cegraph::analysis::synthetic::{SyntheticSpec, synthetic_curve};
use cegraph::kind::{Input, Params, StageContext, StageFailure, StageKind, StageOutcome};
use serde_json::{Value, json};

/// Compute of each synthetic scale (final training FLOPs).
pub const SCALES: [(&str, f64); 3] = [("s1", 1e15), ("s2", 4e15), ("s3", 1.6e16)];

/// Writes one synthetic train node: curve.json (and an unrelated sibling output, as the
/// train kind has) under `root/<name>/`, returning it as an upstream input.
#[allow(clippy::too_many_arguments)] // one synthetic run's every knob, named at the call
pub fn train_node(
    root: &Path,
    stage: &str,
    variant: &str,
    scale: &str,
    final_flops: f64,
    seed: u64,
    multiplier: f64,
    noise_sd: f64,
) -> Input {
    let spec = SyntheticSpec {
        compute_multiplier: multiplier,
        final_flops,
        noise_sd,
        ..SyntheticSpec::clean(reference_law(), multiplier)
    };
    let curve = synthetic_curve(variant, scale, seed, &spec);
    let points: Vec<Value> = std::iter::once(json!({
        "step": 0, "tokens": 0, "flops": 0.0, "train_loss": 9.0, "val_loss": 9.0, "lr": 0.0
    }))
    .chain(curve.points.iter().map(|p| {
        json!({"step": p.step, "tokens": p.tokens, "flops": p.flops,
               "train_loss": p.val_loss + 0.01, "val_loss": p.val_loss, "lr": 1e-3})
    }))
    .collect();
    // Every scale trained to 20 tokens per (non-embedding) parameter.
    let params = curve.points.last().unwrap().tokens / 20.0;
    let file = json!({
        "schema": 1, "variant": variant, "innovations": [], "seed": seed, "data_seed": seed,
        "tokens_per_step": 1000, "flops_per_token": curve.flops_per_token,
        "params": {"total": params, "embedding": 0, "non_embedding": params,
                   "active_non_embedding": params},
        "points": points,
    });
    let node = format!("{stage}[scale={scale},variant={variant},seed={seed}]");
    let dir = root.join(format!("{stage}-{scale}-{variant}-{seed}"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("curve.json"),
        serde_json::to_vec_pretty(&file).unwrap(),
    )
    .unwrap();
    std::fs::write(dir.join("record.json"), b"{}").unwrap();
    Input {
        stage: stage.into(),
        node,
        matrix: vec![
            ("scale".into(), json!(scale)),
            ("variant".into(), json!(variant)),
            ("seed".into(), json!(seed)),
        ],
        outs: vec![
            dir.join("model.safetensors"),
            dir.join("curve.csv"),
            dir.join("curve.json"),
            dir.join("record.json"),
        ],
    }
}

/// The ladder the tests use: every (variant, multiplier) at every scale, with `seeds` seeds.
pub fn ladder(root: &Path, variants: &[(&str, f64)], seeds: u64, noise_sd: f64) -> Vec<Input> {
    let mut inputs = Vec::new();
    for (scale, flops) in SCALES {
        for (variant, multiplier) in variants {
            for seed in 1..=seeds {
                inputs.push(train_node(
                    root,
                    "train",
                    variant,
                    scale,
                    flops,
                    seed,
                    *multiplier,
                    noise_sd,
                ));
            }
        }
    }
    inputs
}

pub fn params(v: Value) -> Params {
    v.as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Runs `kind` like the engine does: a fresh empty out_dir, declared outputs, a log.
pub fn run_kind(
    kind: &dyn StageKind,
    node: &str,
    params: &Params,
    inputs: &[Input],
    out_dir: &Path,
) -> (Result<StageOutcome, StageFailure>, Vec<PathBuf>, String) {
    kind.check_params(params).expect("params accepted");
    std::fs::create_dir_all(out_dir).unwrap();
    let outs: Vec<PathBuf> = kind
        .outputs(params, "out")
        .iter()
        .map(|d| out_dir.join(Path::new(&d.path).file_name().unwrap()))
        .collect();
    let mut log = Vec::new();
    let result = {
        let mut ctx = StageContext {
            node,
            params,
            matrix: &[],
            inputs,
            deps: &[],
            out_dir,
            outs: &outs,
            workspace: out_dir,
            threads: 2,
            gpus: 0,
            log: &mut log,
        };
        kind.run(&mut ctx)
    };
    (result, outs, String::from_utf8(log).unwrap())
}

/// A fit_ceg node's outputs as an upstream input of a report.
pub fn fit_input(node: &str, outs: Vec<PathBuf>) -> Input {
    Input {
        stage: "fit".into(),
        node: node.into(),
        matrix: vec![],
        outs,
    }
}
