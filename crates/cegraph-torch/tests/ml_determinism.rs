//! CPU determinism: the same config and seed give a bit-identical checkpoint and curve.
//! Alone in its test binary: torch's random generator and thread count are process-global,
//! and tests in one binary run concurrently (the engine runs each node in its own process).
#![cfg(feature = "torch")]

mod ml_common;

use std::path::Path;

use cegraph::stages::{eval::Eval, train::Train};
use ml_common::*;
use serde_json::json;

#[test]
fn train_is_bit_identical_on_cpu_and_the_loss_falls() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let tok = shakespeare_tokens(root);
    let p = tiny_train(json!({"innovations": "rope+layernorm"}));
    let (a, r1, log) = run(&Train, &p, std::slice::from_ref(&tok), root, "train-a");
    let outcome = r1.unwrap_or_else(|e| panic!("{e}\n{log}"));
    let (b, r2, _) = run(&Train, &p, std::slice::from_ref(&tok), root, "train-b");
    r2.unwrap();
    let bytes = |p: &Path| std::fs::read(p).unwrap();
    assert_eq!(
        blake3::hash(&bytes(&a[0])),
        blake3::hash(&bytes(&b[0])),
        "same config + seed must give the same checkpoint"
    );
    assert_eq!(bytes(&a[1]), bytes(&b[1]), "curve.csv");
    assert_eq!(bytes(&a[2]), bytes(&b[2]), "curve.json");

    // A different seed gives different weights (the test above can fail).
    let p2 = tiny_train(json!({"innovations": "rope+layernorm", "seed": 2}));
    let (c, r3, _) = run(&Train, &p2, std::slice::from_ref(&tok), root, "train-c");
    r3.unwrap();
    assert_ne!(bytes(&a[0]), bytes(&c[0]));

    let curve = read_json(&a[2]);
    let pts = curve["points"].as_array().unwrap();
    assert_eq!(pts.len(), 4); // steps 0, 10, 20, 30
    let first = pts[0]["val_loss"].as_f64().unwrap();
    let last = pts[3]["val_loss"].as_f64().unwrap();
    assert!(
        first > 3.9 && last < first - 0.5,
        "val loss {first} -> {last}"
    );
    assert_eq!(pts[3]["step"], 30);
    assert_eq!(pts[3]["tokens"], 30 * 8 * 32);
    let fpt = curve["flops_per_token"].as_f64().unwrap();
    assert_eq!(pts[3]["flops"].as_f64().unwrap(), 30.0 * 8.0 * 32.0 * fpt);
    assert_eq!(curve["variant"], "layernorm+rope");

    let rec = read_json(&a[3]);
    assert_eq!(rec["device"], "cpu");
    // Timings are metrics of the run record, never part of an output (outputs must reproduce).
    assert!(rec.get("tokens_per_s").is_none() && rec.get("wall_s").is_none());
    assert!(outcome.metrics["tokens_per_s"].as_f64().unwrap() > 0.0);
    assert_eq!(rec["params"]["total"], curve["params"]["total"]);
    assert_eq!(rec["flops_per_token"]["total"].as_f64().unwrap(), fpt);
    let csv = std::fs::read_to_string(&a[1]).unwrap();
    assert!(csv.starts_with("step,tokens,flops,train_loss,val_loss,val_se,lr\n0,0,"));

    // eval: exact val loss over consecutive windows, a sample, perplexity = e^loss
    let (e, r, log) = run(
        &Eval,
        &params(json!({"max_tokens": 4096, "sample_tokens": 50, "device": "cpu"})),
        &[input("train", &a), tok.clone()],
        root,
        "eval",
    );
    r.unwrap_or_else(|e| panic!("{e}\n{log}"));
    let ev = read_json(&e[0]);
    let loss = ev["val_loss"].as_f64().unwrap();
    assert!((loss - last).abs() < 0.3, "eval {loss} vs curve {last}");
    assert!((ev["perplexity"].as_f64().unwrap() - loss.exp()).abs() < 1e-9);
    assert_eq!(ev["tokens_evaluated"], 4096 / 32 * 32);
    assert!(!ev["sample"].as_str().unwrap().is_empty());

    // The trainer's curve used to score 20 random batches, reading 0.016–0.033 nats off the
    // whole split; its last point is now the whole validation split, as `eval` scores it.
    let (whole, r, log) = run(
        &Eval,
        &params(json!({"max_tokens": 1_000_000_000u64, "sample_tokens": 1, "device": "cpu"})),
        &[input("train", &a), tok.clone()],
        root,
        "eval-whole",
    );
    r.unwrap_or_else(|e| {
        panic!(
            "{e}
{log}"
        )
    });
    let whole = read_json(&whole[0]);
    let se = pts[3]["val_se"].as_f64().unwrap();
    assert!(se > 0.0, "val_se {se}");
    assert!(
        (whole["val_loss"].as_f64().unwrap() - last).abs() < 1e-5,
        "eval over the whole split {} vs the curve's last point {last}",
        whole["val_loss"]
    );
    assert!((whole["val_loss_se"].as_f64().unwrap() - se).abs() < 1e-5);
}
