//! `cegraph-worker bench-train`: the training-speed benchmark, in the worker binary so that
//! scripts/bench-train.sh and scripts/gpu-check.sh need no Rust toolchain on the machine
//! that runs them (only prebuilt binaries).
//!
//! Config from the environment: BENCH_LAYERS (4), BENCH_EMBD (128), BENCH_HEADS (4),
//! BENCH_BLOCK (128), BENCH_BATCH (16), BENCH_VOCAB (65), BENCH_STEPS (30), BENCH_WARMUP (5),
//! BENCH_THREADS (1), BENCH_INNOVATIONS ("baseline"), BENCH_PRECISION (fp32|bf16|fp16;
//! default: bf16 on CUDA, fp32 on the CPU), BENCH_DEVICE (auto|cpu|cuda). It times the
//! trainer's own step ([`cegraph_torch::train::Stepper`]: fused AdamW, clipping, loss scaling,
//! no host read per step) and reads the loss once, after the timed steps. Prints
//! `cegraph tokens_per_s=… step_ms=… flops_per_token=… mfu_flops_per_token=… loss=…`.

use std::time::Instant;

use cegraph::ml::config::{Innovations, ModelConfig, default_sparse_block};
use cegraph::ml::train_config::{Precision, TrainConfig};
use cegraph_torch::data::{Sampler, make_batch};
use cegraph_torch::model::Gpt;
use cegraph_torch::train::{Stepper, parse_device, resolve_precision};
use tch::nn;
use tch::{Device, Kind, Tensor};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Time the trainer's step at the configuration in the environment; prints one line.
pub fn run() {
    let l = env("BENCH_LAYERS", 4);
    let d = env("BENCH_EMBD", 128);
    let h = env("BENCH_HEADS", 4);
    let t = env("BENCH_BLOCK", 128);
    let b = env("BENCH_BATCH", 16);
    let v = env("BENCH_VOCAB", 65);
    let steps = env("BENCH_STEPS", 30);
    let warm = env("BENCH_WARMUP", 5);
    let threads = env("BENCH_THREADS", 1);
    let inn = std::env::var("BENCH_INNOVATIONS").unwrap_or_else(|_| "baseline".into());
    tch::set_num_threads(threads as i32);
    let mut cfg = ModelConfig::tiny(v, Innovations::parse_str(&inn).unwrap());
    (cfg.n_layer, cfg.n_embd, cfg.n_head, cfg.block_size) = (l, d, h, t);
    cfg.n_kv_head = cfg.default_kv_heads();
    cfg.sparse_block = default_sparse_block(t);
    cfg.validate().unwrap();
    let device = parse_device(&std::env::var("BENCH_DEVICE").unwrap_or_else(|_| "auto".into()))
        .expect("BENCH_DEVICE: auto, cpu, cuda or cuda:N");
    tch::manual_seed(0);
    let vs = nn::VarStore::new(device);
    let model = Gpt::new(&vs.root(), &cfg);
    let asked = std::env::var("BENCH_PRECISION").unwrap_or_else(|_| "auto".into());
    let precision = resolve_precision(Precision::parse(&asked).unwrap(), device);
    let mut tcfg = TrainConfig::tiny();
    (tcfg.batch_size, tcfg.grad_clip, tcfg.weight_decay) = (b, 1.0, 0.1);
    let mut stepper = Stepper::new(&vs, &tcfg, precision);
    tch::manual_seed(1);
    let data: Vec<u32> = Vec::<i64>::try_from(Tensor::randint(
        v as i64,
        [1_000_000],
        (Kind::Int64, Device::Cpu),
    ))
    .unwrap()
    .into_iter()
    .map(|x| x as u32)
    .collect();
    let mut sampler = Sampler::new(0, "bench", b, t, data.len());
    let mut it = 0;
    let mut step = |n: usize| {
        for _ in 0..n {
            let (x, y) = make_batch(&data, &sampler.next_offsets(), t, device);
            stepper.accumulate(&model, &x, &y, it, 0);
            stepper.finish(1e-3).unwrap();
            it += 1;
        }
    };
    step(warm);
    let t0 = Instant::now();
    step(steps);
    if let Device::Cuda(i) = device {
        tch::Cuda::synchronize(i as i64);
    }
    let secs = t0.elapsed().as_secs_f64();
    let loss = {
        let (x, y) = make_batch(&data, &sampler.next_offsets(), t, device);
        let _g = tch::no_grad_guard();
        model.loss(&x, &y, false).0.double_value(&[])
    };
    assert!(loss.is_finite() && stepper.first_non_finite().is_none());
    let tps = (steps * b * t) as f64 / secs;
    println!(
        "cegraph tokens_per_s={tps:.1} step_ms={:.2} flops_per_token={} mfu_flops_per_token={} params={} threads={} precision={} loss={loss:.4}",
        secs * 1e3 / steps as f64,
        cfg.flops_per_token().total,
        // MFU counts every matmul the step runs, the tied unembedding's 6·d·V too (as
        // nanoGPT's estimate_mfu does); the trainer's compute axis is Kaplan's non-embedding 6N.
        cfg.flops_per_token().total + 6 * (cfg.n_embd * cfg.vocab_size) as u64,
        cfg.param_counts().total,
        tch::get_num_threads(),
        precision.as_str()
    );
}
