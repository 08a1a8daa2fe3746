//! `tokenize`: text → tokenizer + train/val token arrays. Needs no libtorch.
//!
//! Input: one upstream node (a `source`) whose first output is the text (a file, or a
//! directory whose files are concatenated in path order); or, with no upstream, the first
//! plain `deps` path. When the upstream also has `grammar.json`, its entropy rate is passed on.
//!
//! Params: `tokenizer` (`char` default, `gpt2`, `bpe`), `bpe_vocab` (1024), `val_fraction`
//! (0.1: the last 10% of the characters are the validation split, as in nanoGPT), `dtype`
//! (`auto` default, `u16`, `u32`).
//!
//! Outputs (in this order): `tokenizer.json`, `train.bin`, `val.bin` (little-endian u16/u32
//! ids), `meta.json` ([`crate::ml::tokenizer::TokenMeta`]: `tokenizer`, `vocab_size`, `dtype`,
//! `train_tokens`, `val_tokens`, `train_chars`, `val_chars`, `val_fraction`, and
//! `source_nats_per_char` when known).

use serde_json::json;

use super::util::{
    check_known, fail, find_input, json_bytes, param_f64, param_string, param_usize, read_text,
    sibling, write,
};
use crate::kind::{OutputDecl, Params, StageContext, StageFailure, StageKind, StageOutcome};
use crate::ml::tokenizer::{TextTokenizer, TokenDtype, TokenMeta, encode_tokens};

pub struct Tokenize;

const KNOWN: &[&str] = &["tokenizer", "bpe_vocab", "val_fraction", "dtype"];
pub const OUTPUTS: [&str; 4] = ["tokenizer.json", "train.bin", "val.bin", "meta.json"];

impl StageKind for Tokenize {
    fn name(&self) -> &'static str {
        "tokenize"
    }

    fn fingerprint(&self) -> [u8; 32] {
        crate::kind::fingerprints::TOKENIZE
    }

    fn check_params(&self, params: &Params) -> Result<(), (String, String)> {
        check_known(params, KNOWN, "tokenize")?;
        let t = param_string(params, "tokenizer", "char")?;
        if !["char", "gpt2", "bpe"].contains(&t.as_str()) {
            return Err((
                "tokenizer".into(),
                format!("unknown tokenizer `{t}`; valid: char, gpt2, bpe"),
            ));
        }
        let v = param_usize(params, "bpe_vocab", 1024)?;
        if t == "bpe" && v < 257 {
            return Err((
                "bpe_vocab".into(),
                format!("a byte-level BPE needs more than the 256 byte tokens, got {v}"),
            ));
        }
        let f = param_f64(params, "val_fraction", 0.1)?;
        if !(f > 0.0 && f < 1.0) {
            return Err((
                "val_fraction".into(),
                format!("must be strictly between 0 and 1, got {f}"),
            ));
        }
        let d = param_string(params, "dtype", "auto")?;
        if !["auto", "u16", "u32"].contains(&d.as_str()) {
            return Err((
                "dtype".into(),
                format!("unknown dtype `{d}`; valid: auto, u16, u32"),
            ));
        }
        Ok(())
    }

    fn outputs(&self, _params: &Params, out_dir: &str) -> Vec<OutputDecl> {
        crate::kind::files_in(out_dir, &OUTPUTS)
    }

    fn run(&self, ctx: &mut StageContext<'_>) -> Result<StageOutcome, StageFailure> {
        self.check_params(ctx.params).map_err(fail)?;
        let p = ctx.params;
        let kind = param_string(p, "tokenizer", "char").map_err(fail)?;
        let bpe_vocab = param_usize(p, "bpe_vocab", 1024).map_err(fail)?;
        let val_fraction = param_f64(p, "val_fraction", 0.1).map_err(fail)?;
        let dtype_req = param_string(p, "dtype", "auto").map_err(fail)?;

        let (text_path, floor) = match ctx.inputs.first() {
            Some(input) => {
                let path = input.outs.first().ok_or_else(|| {
                    StageFailure::new(format!("upstream `{}` has no outputs", input.node))
                })?;
                let floor = find_input(ctx.inputs, "grammar.json")
                    .and_then(|(i, _)| sibling(i, "grammar.json"))
                    .and_then(|g| std::fs::read(g).ok())
                    .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                    .and_then(|v| v["nats_per_char"].as_f64());
                (path.clone(), floor)
            }
            None => match ctx.deps.first() {
                Some(d) => (d.clone(), None),
                None => {
                    return Err(StageFailure::new(
                        "tokenize needs its text: an upstream `source` stage or a file in `deps`",
                    ));
                }
            },
        };
        let text = read_text(&text_path)?;
        let n_chars = text.chars().count();
        if n_chars < 2 {
            return Err(StageFailure::new(format!(
                "{} holds {n_chars} characters; nothing to tokenize",
                text_path.display()
            )));
        }
        let split_char = ((n_chars as f64) * (1.0 - val_fraction)).floor() as usize;
        let split_char = split_char.clamp(1, n_chars - 1);
        let split_byte = text
            .char_indices()
            .nth(split_char)
            .map(|(b, _)| b)
            .unwrap_or(text.len());
        let (train_text, val_text) = text.split_at(split_byte);
        let _ = writeln!(
            ctx.log,
            "{}: {} chars ({} train, {} val); tokenizer {kind}",
            text_path.display(),
            n_chars,
            split_char,
            n_chars - split_char
        );
        let tok = TextTokenizer::build(&kind, train_text, &text, bpe_vocab)
            .map_err(|e| StageFailure::new(e.to_string()))?;
        let vocab = tok.vocab_size();
        let dtype =
            TokenDtype::choose(&dtype_req, vocab).map_err(|e| StageFailure::new(e.to_string()))?;
        let train_ids = tok
            .encode(train_text)
            .map_err(|e| StageFailure::new(format!("train split: {e}")))?;
        let val_ids = tok
            .encode(val_text)
            .map_err(|e| StageFailure::new(format!("val split: {e}")))?;
        let outs = ctx.outs;
        if outs.len() != OUTPUTS.len() {
            return Err(StageFailure::new(format!(
                "tokenize: the engine passed {} output paths, expected {}",
                outs.len(),
                OUTPUTS.len()
            )));
        }
        write(
            &outs[0],
            tok.to_json()
                .map_err(|e| StageFailure::new(e.to_string()))?,
        )?;
        write(&outs[1], encode_tokens(&train_ids, dtype))?;
        write(&outs[2], encode_tokens(&val_ids, dtype))?;
        let meta = TokenMeta {
            tokenizer: kind.clone(),
            vocab_size: vocab,
            dtype,
            train_tokens: train_ids.len(),
            val_tokens: val_ids.len(),
            train_chars: split_char,
            val_chars: n_chars - split_char,
            val_fraction,
            source_nats_per_char: floor,
        };
        write(&outs[3], json_bytes(&meta))?;
        let _ = writeln!(
            ctx.log,
            "vocab {vocab} ({}), {} train tokens, {} val tokens",
            dtype.name(),
            train_ids.len(),
            val_ids.len()
        );
        let mut outcome = StageOutcome::default();
        outcome.metrics.insert("vocab_size".into(), json!(vocab));
        outcome
            .metrics
            .insert("train_tokens".into(), json!(train_ids.len()));
        outcome
            .metrics
            .insert("val_tokens".into(), json!(val_ids.len()));
        Ok(outcome)
    }
}
