//! Mixed precision and the fused optimiser on the CPU: autocast really runs matmuls in the
//! asked dtype, bf16 training tracks fp32, fp16's loss scaler skips an overflowing step and
//! backs off, and the fused AdamW makes tch's AdamW update. GPU-only checks print `SKIPPED`
//! without a CUDA device (scripts/gpu-check.sh runs them where there is one).
#![cfg(feature = "torch")]

mod ml_common;

use std::sync::Mutex;

use cegraph::ml::config::{Innovations, ModelConfig};
use cegraph::ml::train_config::TrainConfig;
use cegraph::stages::train::Train;
use cegraph_torch::amp::{self, LossScaler, Precision};
use cegraph_torch::model::{Gpt, NO_DECAY_GROUP};
use cegraph_torch::optim::FusedAdamW;
use cegraph_torch::train::Stepper;
use ml_common::*;
use serde_json::json;
use tch::nn::{self, OptimizerConfig};
use tch::{Device, Kind, Tensor};

/// Torch's generator is process-global: tests that seed it and build models take turns.
static TORCH: Mutex<()> = Mutex::new(());

fn lock() -> std::sync::MutexGuard<'static, ()> {
    TORCH.lock().unwrap_or_else(|p| p.into_inner())
}

fn small_model(device: Device, seed: i64) -> (nn::VarStore, Gpt) {
    let mut cfg = ModelConfig::tiny(65, Innovations::parse_str("rope+layernorm").unwrap());
    (cfg.n_layer, cfg.n_head, cfg.n_embd, cfg.block_size) = (2, 4, 32, 16);
    cfg.n_kv_head = cfg.default_kv_heads();
    cfg.validate().unwrap();
    tch::manual_seed(seed);
    let vs = nn::VarStore::new(device);
    let model = Gpt::new(&vs.root(), &cfg);
    (vs, model)
}

fn batch(device: Device) -> (Tensor, Tensor) {
    tch::manual_seed(7);
    let ids = Tensor::randint(65, [4, 17], (Kind::Int64, device));
    (
        ids.narrow(1, 0, 16).contiguous(),
        ids.narrow(1, 1, 16).contiguous(),
    )
}

fn weights(vs: &nn::VarStore) -> Vec<(String, Tensor)> {
    let mut w: Vec<_> = vs
        .variables()
        .into_iter()
        .map(|(k, v)| (k, v.detach().copy()))
        .collect();
    w.sort_by(|a, b| a.0.cmp(&b.0));
    w
}

fn max_diff(a: &[(String, Tensor)], b: &[(String, Tensor)]) -> f64 {
    a.iter()
        .zip(b)
        .map(|((_, x), (_, y))| (x - y).abs().max().double_value(&[]))
        .fold(0.0, f64::max)
}

#[test]
fn autocast_runs_matmuls_in_the_asked_dtype_on_cpu() {
    let a = Tensor::ones([4, 4], (Kind::Float, Device::Cpu));
    let in_bf16 = amp::autocast(Device::Cpu, Precision::Bf16, || a.matmul(&a).kind());
    let in_fp16 = amp::autocast(Device::Cpu, Precision::Fp16, || a.matmul(&a).kind());
    let in_fp32 = amp::autocast(Device::Cpu, Precision::Fp32, || a.matmul(&a).kind());
    assert_eq!(in_bf16, Kind::BFloat16);
    assert_eq!(in_fp16, Kind::Half);
    assert_eq!(in_fp32, Kind::Float);
    // Nested and restored: after the outer scope, plain f32 again.
    let nested = amp::autocast(Device::Cpu, Precision::Bf16, || {
        amp::autocast(Device::Cpu, Precision::Fp16, || a.matmul(&a).kind())
    });
    assert_eq!(nested, Kind::Half);
    assert_eq!(
        a.matmul(&a).kind(),
        Kind::Float,
        "autocast must end with its scope"
    );
}

#[test]
fn bf16_training_tracks_fp32_on_cpu() {
    let _g = lock();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let tok = shakespeare_tokens(root);
    let curve = |precision: &str| {
        let p = tiny_train(json!({"innovations": "rope+layernorm", "precision": precision}));
        let (outs, r, log) = run(&Train, &p, std::slice::from_ref(&tok), root, precision);
        r.unwrap_or_else(|e| panic!("{precision}: {e}\n{log}"));
        assert!(log.contains(&format!(", {precision}, ")), "{log}");
        let rec = read_json(&outs[3]);
        assert_eq!(rec["train"]["precision"], precision);
        let c = read_json(&outs[2]);
        c["points"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["val_loss"].as_f64().unwrap())
            .collect::<Vec<_>>()
    };
    let fp32 = curve("fp32");
    let bf16 = curve("bf16");
    let (first, last) = (bf16[0], *bf16.last().unwrap());
    assert!(last < first - 0.5, "bf16 loss must fall: {bf16:?}");
    for (step, (a, b)) in fp32.iter().zip(&bf16).enumerate() {
        assert!(
            (a - b).abs() < 0.05,
            "eval point {step}: fp32 {a} vs bf16 {b} ({fp32:?} / {bf16:?})"
        );
    }
    assert_ne!(fp32, bf16, "bf16 must actually change the arithmetic");
    println!("fp32 {fp32:?}\nbf16 {bf16:?}");
}

#[test]
fn forced_overflow_skips_one_step_and_halves_scale() {
    let _g = lock();
    let (vs, model) = small_model(Device::Cpu, 3);
    let tcfg = TrainConfig::tiny();
    let mut stepper = Stepper::new(&vs, &tcfg, Precision::Fp16);
    // Grow after 2 good steps, so the test also sees the scale come back.
    stepper.scaler = Some(LossScaler::with(Device::Cpu, 1024.0, 2));
    let scale = |s: &Stepper| s.scaler.as_ref().unwrap().scale();
    let (x, y) = batch(Device::Cpu);

    stepper.accumulate(&model, &x, &y, 0, 0);
    stepper.finish(1e-3).unwrap();
    assert_eq!(scale(&stepper), 1024.0);
    assert!(stepper.opt.steps_taken().iter().all(|&s| s == 1.0));

    stepper.accumulate(&model, &x, &y, 1, 0);
    let g = stepper.opt.grads()[0].shallow_clone();
    let _ = g.view([-1]).get(0).fill_(f64::INFINITY);
    let before = weights(&vs);
    stepper.finish(1e-3).unwrap();
    assert_eq!(
        max_diff(&before, &weights(&vs)),
        0.0,
        "an overflow must skip the step"
    );
    assert!(
        before
            .iter()
            .zip(weights(&vs))
            .all(|((_, a), (_, b))| a.equal(&b))
    );
    assert_eq!(scale(&stepper), 512.0, "an overflow halves the scale");
    assert!(
        stepper.opt.steps_taken().iter().all(|&s| s == 1.0),
        "a skipped step does not count"
    );

    for step in 2..4 {
        let before = weights(&vs);
        stepper.accumulate(&model, &x, &y, step, 0);
        stepper.finish(1e-3).unwrap();
        assert!(
            max_diff(&before, &weights(&vs)) > 0.0,
            "good step {step} must move the weights"
        );
    }
    assert_eq!(
        scale(&stepper),
        1024.0,
        "2 good steps in a row double the scale"
    );
    assert!(stepper.opt.steps_taken().iter().all(|&s| s == 3.0));
    assert!(
        stepper.first_non_finite().is_none(),
        "the loss itself never overflowed"
    );
}

#[test]
fn fused_adamw_matches_tch_adamw_on_one_step() {
    let _g = lock();
    let (vs_a, model_a) = small_model(Device::Cpu, 5);
    let (vs_b, model_b) = small_model(Device::Cpu, 5);
    assert_eq!(max_diff(&weights(&vs_a), &weights(&vs_b)), 0.0);
    let (x, y) = batch(Device::Cpu);
    let (lr, wd) = (1e-2, 0.1);

    let mut tch_opt = nn::AdamW {
        beta1: 0.9,
        beta2: 0.95,
        wd,
        eps: 1e-8,
        amsgrad: false,
    }
    .build(&vs_a, lr)
    .unwrap();
    tch_opt.set_weight_decay_group(0, wd);
    tch_opt.set_weight_decay_group(NO_DECAY_GROUP, 0.0);
    let mut fused = FusedAdamW::new(&vs_b, 0.9, 0.95, 1e-8, |g| {
        if g == NO_DECAY_GROUP { 0.0 } else { wd }
    });
    for _ in 0..3 {
        model_a.loss(&x, &y, true).1.backward();
        tch_opt.step();
        tch_opt.zero_grad();
        model_b.loss(&x, &y, true).1.backward();
        fused.step(lr, None).unwrap();
        fused.zero_grad().unwrap();
        let d = max_diff(&weights(&vs_a), &weights(&vs_b));
        assert!(d < 1e-6, "fused and tch AdamW differ by {d}");
    }
    let start = small_model(Device::Cpu, 5).0;
    assert!(
        max_diff(&weights(&start), &weights(&vs_b)) > 1e-3,
        "the steps must move weights"
    );
}

/// A loss that goes non-finite is reported with its step, though it is read from the device
/// only at evaluation points.
#[test]
fn non_finite_loss_names_its_step_without_a_per_step_host_read() {
    let _g = lock();
    let (vs, model) = small_model(Device::Cpu, 3);
    let mut tcfg = TrainConfig::tiny();
    tcfg.grad_accum = 2;
    let mut stepper = Stepper::new(&vs, &tcfg, Precision::Fp32);
    let (x, y) = batch(Device::Cpu);
    stepper.accumulate(&model, &x, &y, 0, 0);
    stepper.accumulate(&model, &x, &y, 0, 1);
    stepper.finish(1e-3).unwrap();
    assert!(stepper.first_non_finite().is_none());
    // Poison one weight: the next losses are NaN.
    tch::no_grad(|| {
        let w = vs.trainable_variables()[0].shallow_clone();
        let _ = w.view([-1]).get(0).fill_(f64::NAN);
    });
    stepper.accumulate(&model, &x, &y, 1, 0);
    stepper.accumulate(&model, &x, &y, 1, 1);
    match stepper.first_non_finite() {
        Some(cegraph_torch::train::TrainError::NonFinite { step, micro, loss }) => {
            assert_eq!((step, micro), (2, 0));
            assert!(loss.is_nan());
        }
        other => panic!("expected NonFinite, got {other:?}"),
    }
}

/// Straight to the process's stderr: libtest captures `println!`/`eprintln!` of passing tests,
/// and a skip must show in plain `cargo test` output.
fn skipped(test: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "SKIPPED: {test}: no CUDA device");
}

/// GPU-only: bf16 and fp16 training on CUDA track fp32. Skipped, visibly, without a GPU.
#[test]
fn cuda_mixed_precision_tracks_fp32() {
    if !tch::Cuda::is_available() {
        skipped("cuda_mixed_precision_tracks_fp32");
        return;
    }
    let _g = lock();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let tok = shakespeare_tokens(root);
    let last = |precision: &str| {
        let p = tiny_train(json!({"precision": precision, "device": "cuda", "dropout": 0.0}));
        let (outs, r, log) = run(&Train, &p, std::slice::from_ref(&tok), root, precision);
        r.unwrap_or_else(|e| panic!("{precision}: {e}\n{log}"));
        let c = read_json(&outs[2]);
        let pts = c["points"].as_array().unwrap().clone();
        let v = |i: usize| pts[i]["val_loss"].as_f64().unwrap();
        (v(0), v(pts.len() - 1))
    };
    let fp32 = last("fp32");
    for precision in ["bf16", "fp16"] {
        let (first, end) = last(precision);
        assert!(
            end < first - 0.5,
            "{precision} loss must fall: {first} -> {end}"
        );
        assert!(
            (end - fp32.1).abs() < 0.05,
            "{precision} {end} vs fp32 {}",
            fp32.1
        );
    }
}
