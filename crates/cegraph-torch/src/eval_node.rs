//! The libtorch side of the `eval` kind (declared in `cegraph::stages::eval`).

use std::panic::{AssertUnwindSafe, catch_unwind};

use serde_json::json;
use tch::Device;

use cegraph::kind::{StageContext, StageFailure, StageKind, StageOutcome};
use cegraph::ml::tokenizer::{TextTokenizer, read_tokens};
use cegraph::stages::eval::*;
use cegraph::stages::util::*;

use crate::amp::Precision;
use crate::scoring::{Score, score, window_offsets};
use crate::train::{load_model, parse_device};

pub fn run_eval(ctx: &mut StageContext<'_>) -> Result<StageOutcome, StageFailure> {
    Eval.check_params(ctx.params).map_err(fail)?;
    let p = ctx.params;
    let max_tokens = param_usize(p, "max_tokens", 65_536).map_err(fail)?;
    let batch = param_usize(p, "batch_size", 16).map_err(fail)?;
    let n_sample = param_usize(p, "sample_tokens", 200).map_err(fail)?;
    let temp = param_f64(p, "temperature", 0.8).map_err(fail)?;
    let top_k = param_usize(p, "top_k", 40).map_err(fail)?;
    let seed = param_u64(p, "seed", 0).map_err(fail)?;
    let device = parse_device(&param_string(p, "device", "auto").map_err(fail)?)
        .map_err(|e| StageFailure::new(e.to_string()))?;

    let (_, ckpt) = find_input(ctx.inputs, "model.safetensors").ok_or_else(|| {
        StageFailure::new("eval needs a `train` node as an input (model.safetensors)")
    })?;
    let (tok_input, meta) = token_input(
        ctx.inputs,
        "eval needs the `tokenize` node as an input too (meta.json, val.bin, tokenizer.json)",
    )?;
    let file = |name: &str| {
        sibling(tok_input, name).ok_or_else(|| {
            StageFailure::new(format!("upstream `{}` has no {name}", tok_input.node))
        })
    };
    let val =
        read_tokens(file("val.bin")?, meta.dtype).map_err(|e| StageFailure::new(e.to_string()))?;
    let tokenizer = TextTokenizer::load(&meta.tokenizer, file("tokenizer.json")?)
        .map_err(|e| StageFailure::new(e.to_string()))?;
    if ctx.threads > 0 {
        tch::set_num_threads(ctx.threads as i32);
    }
    let ckpt = ckpt.clone();
    let log: &mut dyn std::io::Write = ctx.log;
    let result = catch_unwind(AssertUnwindSafe(
        || -> Result<(Score, usize, String, String), StageFailure> {
            let (_vs, model) =
                load_model(&ckpt, device).map_err(|e| StageFailure::new(e.to_string()))?;
            let cfg = model.cfg.clone();
            if cfg.tokenizer_vocab != meta.vocab_size {
                return Err(StageFailure::new(format!(
                    "the checkpoint was trained for a {}-token vocabulary, the tokenizer has {}",
                    cfg.tokenizer_vocab, meta.vocab_size
                )));
            }
            let t = cfg.block_size;
            let usable = val.len().min(max_tokens.saturating_add(1));
            let windows = window_offsets(usable, t, 0);
            if windows.is_empty() {
                return Err(StageFailure::new(format!(
                    "the validation split has {} tokens, fewer than one window of block_size {t} + 1",
                    val.len()
                )));
            }
            let scored = score(&model, &val, &windows, batch, Precision::Fp32);
            let _ = writeln!(
                log,
                "val loss {:.4} ± {:.4} nats/token over {} tokens ({} windows of {t})",
                scored.loss, scored.se, scored.tokens, scored.windows
            );
            tch::manual_seed(seed as i64);
            let ctx_len = t.min(val.len()).min(16);
            let context: Vec<i64> = val[..ctx_len].iter().map(|&v| v as i64).collect();
            let sampled = model.generate(&context, n_sample, temp, top_k as i64);
            let ids: Vec<u32> = sampled.iter().map(|&v| v as u32).collect();
            let prompt: Vec<u32> = context.iter().map(|&v| v as u32).collect();
            Ok((scored, t, tokenizer.decode(&prompt), tokenizer.decode(&ids)))
        },
    ));
    let (scored, t, prompt, sample) = match result {
        Ok(r) => r?,
        Err(panic) => {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown panic".into());
            return Err(StageFailure::new(format!("libtorch failed: {msg}")));
        }
    };
    let chars_per_token = if meta.val_tokens > 0 {
        meta.val_chars as f64 / meta.val_tokens as f64
    } else {
        1.0
    };
    let loss = scored.loss;
    let out = json!({
        "schema": 1,
        "val_loss": loss,
        "val_loss_se": scored.se,
        "perplexity": loss.exp(),
        "bits_per_token": loss / std::f64::consts::LN_2,
        "nats_per_char": loss / chars_per_token,
        "tokens_evaluated": scored.tokens,
        "windows": scored.windows,
        "block_size": t,
        "device": match device { Device::Cpu => "cpu".to_string(), d => format!("{d:?}") },
        "prompt": prompt,
        "sample": sample,
    });
    if ctx.outs.len() != OUTPUTS.len() {
        return Err(StageFailure::new(
            "eval: the engine passed the wrong number of outputs",
        ));
    }
    write(&ctx.outs[0], json_bytes(&out))?;
    write(&ctx.outs[1], format!("{prompt}{sample}\n"))?;
    let _ = writeln!(
        ctx.log,
        "perplexity {:.3}\n--- sample ---\n{prompt}{sample}",
        loss.exp()
    );
    let mut outcome = StageOutcome::default();
    outcome.metrics.insert("val_loss".into(), json!(loss));
    outcome
        .metrics
        .insert("perplexity".into(), json!(loss.exp()));
    outcome
        .metrics
        .insert("val_loss_se".into(), json!(scored.se));
    Ok(outcome)
}
