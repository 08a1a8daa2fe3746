//! `source`: the text a pipeline starts from. Needs no libtorch.
//!
//! Either a user's file or directory:
//!
//! ```yaml
//! source:
//!   kind: source
//!   params: { path: ../shared/data/tinyshakespeare.txt, blake3: "<64 hex>", url: "https://…" }
//! ```
//!
//! * `path` (workspace-relative or absolute) is the output itself; it is not copied into the
//!   cache (`cached: false`), only hashed.
//! * `url`: fetched with `curl` when `path` is missing (nothing is fetched when it exists).
//! * `blake3`: the pinned hash, always checked — a file's blake3 (what `b3sum` prints) or, for a
//!   directory, the same tree hash the lock file records.
//!
//! Or the built-in corpus (no download; see [`crate::ml::corpus`]):
//!
//! ```yaml
//!   params: { builtin: grammar, size: 1000000, seed: 0 }
//! ```
//!
//! which writes `corpus.txt` and `grammar.json` (`{size, seed, nats_per_char, bits_per_char,
//! nats_per_word, chars_per_word, stationary}`: the source's entropy rate, the floor for a
//! character-level model's loss).

use std::path::Path;

use serde_json::{Value, json};

use super::util::{check_known, fail, json_bytes, param_string, param_u64, param_usize, write};
use crate::kind::{OutputDecl, Params, StageContext, StageFailure, StageKind, StageOutcome};
use crate::ml::corpus;

pub struct Source;

const KNOWN: &[&str] = &["path", "url", "blake3", "builtin", "size", "seed"];

fn is_hex64(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

impl StageKind for Source {
    fn name(&self) -> &'static str {
        "source"
    }

    fn fingerprint(&self) -> [u8; 32] {
        crate::kind::fingerprints::SOURCE
    }

    fn check_params(&self, params: &Params) -> Result<(), (String, String)> {
        check_known(params, KNOWN, "source")?;
        let path = params.contains_key("path");
        let builtin = params.contains_key("builtin");
        match (path, builtin) {
            (true, true) => {
                return Err((
                    "builtin".into(),
                    "give either `path` (a file or directory) or `builtin: grammar`, not both"
                        .into(),
                ));
            }
            (false, false) => {
                return Err((
                    "path".into(),
                    "`source` needs `path` (a file or directory) or `builtin: grammar`".into(),
                ));
            }
            _ => {}
        }
        if path {
            let p = param_string(params, "path", "")?;
            if p.is_empty() {
                return Err(("path".into(), "`path` is empty".into()));
            }
            for k in ["size", "seed"] {
                if params.contains_key(k) {
                    return Err((k.into(), format!("`{k}` only applies to `builtin`")));
                }
            }
            let _ = param_string(params, "url", "")?;
        } else {
            let b = param_string(params, "builtin", "")?;
            if b != "grammar" {
                return Err((
                    "builtin".into(),
                    format!("unknown built-in corpus `{b}`; valid: grammar"),
                ));
            }
            if params.contains_key("url") {
                return Err(("url".into(), "`url` only applies to `path`".into()));
            }
            if param_usize(params, "size", 1_000_000)? == 0 {
                return Err(("size".into(), "`size` must be at least 1".into()));
            }
            param_u64(params, "seed", 0)?;
        }
        if let Some(v) = params.get("blake3") {
            match v.as_str() {
                Some(h) if is_hex64(h) => {}
                _ => {
                    return Err((
                        "blake3".into(),
                        format!("`blake3` must be 64 hex digits (as `b3sum` prints), got {v}"),
                    ));
                }
            }
        }
        Ok(())
    }

    fn outputs(&self, params: &Params, out_dir: &str) -> Vec<OutputDecl> {
        match params.get("path").and_then(Value::as_str) {
            Some(p) => vec![OutputDecl {
                path: p.to_string(),
                cached: false,
            }],
            None => ["corpus.txt", "grammar.json"]
                .iter()
                .map(|f| OutputDecl {
                    path: format!("{out_dir}/{f}"),
                    cached: true,
                })
                .collect(),
        }
    }

    fn run(&self, ctx: &mut StageContext<'_>) -> Result<StageOutcome, StageFailure> {
        self.check_params(ctx.params).map_err(fail)?;
        let p = ctx.params;
        let mut outcome = StageOutcome::default();
        let target = ctx
            .outs
            .first()
            .ok_or_else(|| StageFailure::new("source: the engine passed no output path"))?;
        if p.contains_key("path") {
            if !target.exists() {
                let url = param_string(p, "url", "").map_err(fail)?;
                if url.is_empty() {
                    return Err(StageFailure::new(format!(
                        "source file {} does not exist (and no `url` is given to fetch it from)",
                        target.display()
                    )));
                }
                let _ = writeln!(ctx.log, "fetching {url} -> {}", target.display());
                fetch(&url, target)?;
            }
        } else {
            let size = param_usize(p, "size", 1_000_000).map_err(fail)?;
            let seed = param_u64(p, "seed", 0).map_err(fail)?;
            let text = corpus::generate(size, seed);
            write(target, &text)?;
            let stats = corpus::grammar_stats();
            let gpath = ctx.outs.get(1).ok_or_else(|| {
                StageFailure::new("source: the engine passed no path for grammar.json")
            })?;
            let mut g = serde_json::to_value(&stats).expect("stats serialise");
            g["size"] = json!(text.len());
            g["seed"] = json!(seed);
            write(gpath, json_bytes(&g))?;
            let _ = writeln!(
                ctx.log,
                "built-in grammar corpus: {} chars, entropy rate {:.4} nats/char ({:.4} bits/char)",
                text.len(),
                stats.nats_per_char,
                stats.bits_per_char
            );
            outcome
                .metrics
                .insert("nats_per_char".into(), json!(stats.nats_per_char));
        }
        let hashed = crate::hash::files::StatCache::ephemeral()
            .hash_path(target)
            .map_err(|e| StageFailure::new(format!("cannot hash {}: {e}", target.display())))?;
        let got = hashed.hash.to_hex();
        if let Some(want) = p.get("blake3").and_then(Value::as_str)
            && !got.eq_ignore_ascii_case(want)
        {
            return Err(StageFailure::new(format!(
                "{} has blake3 {got}, but the pipeline pins {want}; the data changed (update `blake3` if that is intended)",
                target.display()
            )));
        }
        let _ = writeln!(
            ctx.log,
            "{}: blake3 {got}, {} bytes",
            target.display(),
            hashed.size
        );
        outcome.metrics.insert("blake3".into(), json!(got));
        outcome.metrics.insert("bytes".into(), json!(hashed.size));
        Ok(outcome)
    }
}

/// Download `url` to `dest` with curl (atomically: temp file, then rename).
fn fetch(url: &str, dest: &Path) -> Result<(), StageFailure> {
    if let Some(dir) = dest.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| StageFailure::new(format!("cannot create {}: {e}", dir.display())))?;
    }
    let tmp = dest.with_extension("download.partial");
    let status = std::process::Command::new("curl")
        .args(["-fsSL", "--retry", "2", "-o"])
        .arg(&tmp)
        .arg(url)
        .status();
    match status {
        Ok(s) if s.success() => std::fs::rename(&tmp, dest).map_err(|e| {
            StageFailure::new(format!(
                "cannot move the download to {}: {e}",
                dest.display()
            ))
        }),
        Ok(s) => {
            let _ = std::fs::remove_file(&tmp);
            Err(StageFailure::new(format!(
                "could not fetch {url} (curl {s}); download it to {} by hand",
                dest.display()
            )))
        }
        Err(e) => Err(StageFailure::new(format!(
            "could not fetch {url}: cannot run curl ({e}); download it to {} by hand",
            dest.display()
        ))),
    }
}
