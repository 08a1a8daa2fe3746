//! The libtorch side of the `train` kind (declared in `cegraph::stages::train`).

use std::panic::{AssertUnwindSafe, catch_unwind};

use serde_json::json;

use cegraph::kind::{StageContext, StageFailure, StageOutcome};
use cegraph::ml::tokenizer::read_tokens;
use cegraph::stages::train::*;
use cegraph::stages::util::*;

use crate::train::{TrainError, parse_device, resolve_precision, train};

pub fn run_train(ctx: &mut StageContext<'_>) -> Result<StageOutcome, StageFailure> {
    let (input, meta) = token_input(
        ctx.inputs,
        "train needs a `tokenize` node as an input (an upstream with meta.json, train.bin, val.bin)",
    )?;
    let (mcfg, mut tcfg) = configs(ctx.params, meta.vocab_size).map_err(fail)?;
    tcfg.threads = ctx.threads;
    // The engine passes `precision` resolved at plan time; a direct call may leave `auto`.
    let device = parse_device(&tcfg.device).map_err(|e| StageFailure::new(e.to_string()))?;
    tcfg.precision = resolve_precision(tcfg.precision, device);
    let load = |name: &str| -> Result<Vec<u32>, StageFailure> {
        let p = sibling(input, name)
            .ok_or_else(|| StageFailure::new(format!("upstream `{}` has no {name}", input.node)))?;
        read_tokens(p, meta.dtype).map_err(|e| StageFailure::new(e.to_string()))
    };
    let train_tokens = load("train.bin")?;
    let val_tokens = load("val.bin")?;
    if ctx.outs.len() != OUTPUTS.len() {
        return Err(StageFailure::new(
            "train: the engine passed the wrong number of outputs",
        ));
    }
    let ckpt = ctx.outs[0].clone();
    let log: &mut dyn std::io::Write = ctx.log;
    let result = catch_unwind(AssertUnwindSafe(|| {
        train(&mcfg, &tcfg, &train_tokens, &val_tokens, &ckpt, log)
    }));
    let report = match result {
        Ok(Ok(r)) => r,
        Ok(Err(TrainError::NonFinite { step, micro, loss })) => {
            return Err(StageFailure::new(format!(
                "training diverged: loss {loss} at step {step} (micro-batch {micro}); nothing is cached. Lower `lr` or raise `warmup_iters`"
            )));
        }
        Ok(Err(e)) => return Err(StageFailure::new(e.to_string())),
        Err(panic) => {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown panic".into());
            return Err(StageFailure::new(format!("libtorch failed: {msg}")));
        }
    };
    let counts = mcfg.param_counts();
    let fpt = mcfg.flops_per_token();
    let inn: Vec<&str> = mcfg.innovations.0.iter().map(|i| i.name()).collect();
    let label = mcfg.innovations.label();

    let mut csv = CURVE_COLUMNS.join(",") + "\n";
    for p in &report.points {
        csv.push_str(&format!(
            "{},{},{:e},{},{},{},{:e}\n",
            p.step, p.tokens, p.flops, p.train_loss, p.val_loss, p.val_se, p.lr
        ));
    }
    write(&ctx.outs[1], csv)?;
    let curve = json!({
        "schema": 1,
        "variant": label,
        "innovations": inn,
        "seed": tcfg.seed,
        "data_seed": tcfg.data_seed,
        "data_order_blake3": report.data_order_blake3,
        "tokens_per_step": report.tokens_per_step,
        "flops_per_token": fpt.total as f64,
        "params": counts,
        "points": report.points,
    });
    write(&ctx.outs[2], json_bytes(&curve))?;
    let last = report.points.last().cloned();
    let best = report
        .points
        .iter()
        .map(|p| p.val_loss)
        .fold(f64::INFINITY, f64::min);
    let steps = tcfg.max_iters as u64;
    let tokens = steps * report.tokens_per_step;
    // Only what the key determines: no node name or matrix (two nodes with equal inputs share
    // one key and so one record.json), no timings (those are metrics in the run record).
    // Device and threads are in the key of every libtorch node.
    let record = json!({
        "schema": 2,
        "variant": label,
        "innovations": inn,
        "model": mcfg,
        "train": tcfg,
        "params": counts,
        "flops_per_token": fpt,
        "tokens_per_step": report.tokens_per_step,
        "steps": steps,
        "tokens": tokens,
        "flops": tokens as f64 * fpt.total as f64,
        "final": last.as_ref().map(|p| json!({
            "step": p.step, "train_loss": p.train_loss, "val_loss": p.val_loss,
            "val_se": p.val_se, "val_tokens": report.val_tokens
        })),
        "best_val_loss": best,
        "tokenizer": { "kind": meta.tokenizer, "vocab_size": meta.vocab_size },
        "source_nats_per_char": meta.source_nats_per_char,
        "device": report.device,
        "threads": report.threads,
    });
    write(&ctx.outs[3], json_bytes(&record))?;
    let _ = writeln!(
        ctx.log,
        "done: {:.0} tokens/s, {:.1} s training, {:.1} s wall",
        report.tokens_per_s, report.train_s, report.wall_s
    );
    let mut outcome = StageOutcome::default();
    if let Some(p) = last {
        outcome.metrics.insert("val_loss".into(), json!(p.val_loss));
        outcome.metrics.insert("val_se".into(), json!(p.val_se));
        outcome
            .metrics
            .insert("train_loss".into(), json!(p.train_loss));
    }
    outcome.metrics.insert("best_val_loss".into(), json!(best));
    outcome
        .metrics
        .insert("flops".into(), json!(tokens as f64 * fpt.total as f64));
    outcome
        .metrics
        .insert("tokens_per_s".into(), json!(report.tokens_per_s));
    // Timings go to the run record only: every output file stays deterministic.
    outcome
        .metrics
        .insert("train_s".into(), json!(report.train_s));
    outcome
        .metrics
        .insert("wall_s".into(), json!(report.wall_s));
    outcome.metrics.insert("params".into(), json!(counts.total));
    outcome
        .metrics
        .insert("flops_per_token".into(), json!(fpt.total));
    Ok(outcome)
}
