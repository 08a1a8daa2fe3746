//! The source / tokenize / train / eval kinds, run directly (no engine) on small data:
//! falling loss for every variant, output schemas, and every bad-input case.
//! (CPU determinism is in ml_determinism.rs: torch's generator is process-global, so it needs
//! a test binary of its own.)
#![cfg(feature = "torch")]

mod ml_common;

use cegraph::kind::StageKind;
use cegraph::stages::{catalog, eval::Eval, source::Source, tokenize::Tokenize, train::Train};
use ml_common::*;
use serde_json::json;

#[test]
fn catalog_has_the_four_kinds() {
    let c = catalog();
    let names: Vec<_> = c.names().collect();
    for k in ["source", "tokenize", "train", "eval"] {
        assert!(names.contains(&k), "{names:?}");
    }
}

#[test]
fn every_variant_learns_and_all_see_the_same_data_order() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let tok = shakespeare_tokens(root);
    let mut orders = Vec::new();
    for v in [
        "baseline",
        "mqa",
        "sparse",
        "moe",
        "swiglu+rmsnorm+layernorm",
        "flash+gqa",
    ] {
        let p = tiny_train(json!({"innovations": v, "max_iters": 10, "eval_every": 10}));
        let (o, r, log) = run(
            &Train,
            &p,
            std::slice::from_ref(&tok),
            root,
            &format!("t-{v}"),
        );
        r.unwrap_or_else(|e| panic!("{v}: {e}\n{log}"));
        // One progress line per evaluation, for the progress display.
        let progress: Vec<&str> = log
            .lines()
            .filter(|l| l.starts_with("::progress "))
            .collect();
        assert_eq!(progress.len(), 2, "{v}: {log}");
        assert!(
            progress[1].starts_with("::progress step 10/10 val "),
            "{v}: {log}"
        );
        let c = read_json(&o[2]);
        let pts = c["points"].as_array().unwrap();
        let (l0, l1) = (
            pts[0]["val_loss"].as_f64().unwrap(),
            pts[1]["val_loss"].as_f64().unwrap(),
        );
        assert!(l1 < l0 - 0.1, "{v}: val loss did not fall: {l0} -> {l1}");
        orders.push(c["data_order_blake3"].as_str().unwrap().to_string());
    }
    assert!(orders.iter().all(|o| o == &orders[0]), "{orders:?}");
    // another seed: another order (so the check above can fail)
    let p = tiny_train(json!({"max_iters": 10, "eval_every": 10, "seed": 2}));
    let (o, r, _) = run(&Train, &p, std::slice::from_ref(&tok), root, "t-seed2");
    r.unwrap();
    assert_ne!(
        read_json(&o[2])["data_order_blake3"].as_str().unwrap(),
        orders[0]
    );
}

#[test]
fn source_checks_blake3_and_missing_files() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let f = root.join("a.txt");
    std::fs::write(&f, "hello\n").unwrap();
    let good = blake3::hash(b"hello\n").to_hex().to_string();
    let p = params(json!({"path": f.to_str().unwrap(), "blake3": good}));
    assert!(!Source.outputs(&p, "x")[0].cached);
    let (_, r, _) = run(&Source, &p, &[], root, "s1");
    assert_eq!(r.unwrap().metrics["blake3"], json!(good));
    let bad = "0".repeat(64);
    let p = params(json!({"path": f.to_str().unwrap(), "blake3": bad}));
    let e = run(&Source, &p, &[], root, "s2").1.unwrap_err().to_string();
    assert!(e.contains("pins 0000") && e.contains(&good), "{e}");
    let p = params(json!({"path": root.join("nope.txt").to_str().unwrap()}));
    let e = run(&Source, &p, &[], root, "s3").1.unwrap_err().to_string();
    assert!(e.contains("does not exist"), "{e}");
    // a URL that cannot be fetched (no network here, and a closed local port anyway)
    let p = params(
        json!({"path": root.join("nope.txt").to_str().unwrap(), "url": "http://127.0.0.1:9/x"}),
    );
    let e = run(&Source, &p, &[], root, "s4").1.unwrap_err().to_string();
    assert!(e.contains("could not fetch"), "{e}");

    for (bad, key) in [
        (json!({}), "path"),
        (json!({"path": "a", "builtin": "grammar"}), "builtin"),
        (json!({"builtin": "lorem"}), "builtin"),
        (json!({"path": "a", "blake3": "xyz"}), "blake3"),
        (json!({"path": "a", "colour": 1}), "colour"),
    ] {
        let e = Source.check_params(&params(bad.clone())).unwrap_err();
        assert_eq!(e.0, key, "{bad}: {e:?}");
    }
}

#[test]
fn builtin_grammar_corpus_tokenizes_with_its_entropy_floor() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let p = params(json!({"builtin": "grammar", "size": 50_000, "seed": 3}));
    let (outs, r, _) = run(&Source, &p, &[], root, "src");
    r.unwrap();
    let text = std::fs::read_to_string(&outs[0]).unwrap();
    assert!(text.len() >= 50_000 && text.starts_with(|c: char| c.is_ascii_lowercase()));
    let g = read_json(&outs[1]);
    let floor = g["nats_per_char"].as_f64().unwrap();
    for tk in ["char", "gpt2", "bpe"] {
        let tp = params(json!({"tokenizer": tk, "bpe_vocab": 300}));
        let (t, r, log) = run(
            &Tokenize,
            &tp,
            &[input("source", &outs)],
            root,
            &format!("tok-{tk}"),
        );
        r.unwrap_or_else(|e| panic!("{tk}: {e}\n{log}"));
        let meta = read_json(&t[3]);
        assert_eq!(meta["tokenizer"], tk);
        assert_eq!(meta["source_nats_per_char"].as_f64().unwrap(), floor);
        assert_eq!(meta["dtype"], "u16");
        let n = meta["train_tokens"].as_u64().unwrap();
        assert_eq!(std::fs::metadata(&t[1]).unwrap().len(), 2 * n);
        if tk == "char" {
            assert_eq!(meta["train_chars"].as_u64().unwrap(), n);
        } else {
            let chars = meta["train_chars"].as_u64().unwrap();
            let bound = if tk == "gpt2" {
                chars / 3
            } else {
                chars * 4 / 5
            };
            assert!(
                n < bound,
                "{tk} should compress: {n} tokens for {chars} chars"
            );
        }
    }
}

#[test]
fn bad_inputs_fail_with_clear_messages() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    // unknown innovation / incompatible settings, caught when the pipeline loads
    let e = Train
        .check_params(&tiny_train(json!({"innovations": "rope+warp"})))
        .unwrap_err();
    assert_eq!(e.0, "innovations");
    assert!(e.1.contains("`warp`") && e.1.contains("valid:"), "{}", e.1);
    let e = Train
        .check_params(&tiny_train(json!({"innovations": "gqa", "n_kv_head": 3})))
        .unwrap_err();
    assert_eq!(e.0, "n_kv_head");
    assert!(e.1.contains("divisible"), "{}", e.1);
    let e = Train
        .check_params(&tiny_train(json!({"lr_typo": 1})))
        .unwrap_err();
    assert_eq!(e.0, "lr_typo");
    let e = Train
        .check_params(&tiny_train(json!({"device": "tpu"})))
        .unwrap_err();
    assert_eq!(e.0, "device");

    // block_size longer than the data
    let f = root.join("short.txt");
    std::fs::write(&f, "abcdefghij".repeat(20)).unwrap();
    let (s, r, _) = run(
        &Source,
        &params(json!({"path": f.to_str().unwrap()})),
        &[],
        root,
        "src",
    );
    r.unwrap();
    let (t, r, _) = run(
        &Tokenize,
        &params(json!({})),
        &[input("source", &s)],
        root,
        "tok",
    );
    r.unwrap();
    let (_, r, _) = run(
        &Train,
        &tiny_train(json!({})),
        &[input("tokenize", &t)],
        root,
        "tr",
    );
    let e = r.unwrap_err().to_string();
    assert!(
        e.contains("val split has 20 tokens, too few for block_size 32"),
        "{e}"
    );

    // a vocabulary that overflows u16
    let wide: String = (0..70_000u32)
        .filter_map(|c| char::from_u32(0x4e00 + c))
        .collect();
    let f = root.join("wide.txt");
    std::fs::write(&f, &wide).unwrap();
    let (s, r, _) = run(
        &Source,
        &params(json!({"path": f.to_str().unwrap()})),
        &[],
        root,
        "src2",
    );
    r.unwrap();
    let (_, r, _) = run(
        &Tokenize,
        &params(json!({"dtype": "u16"})),
        &[input("source", &s)],
        root,
        "tok2",
    );
    let e = r.unwrap_err().to_string();
    assert!(e.contains("overflows dtype u16"), "{e}");
    let (t2, r, _) = run(
        &Tokenize,
        &params(json!({})),
        &[input("source", &s)],
        root,
        "tok3",
    );
    r.unwrap();
    assert_eq!(read_json(&t2[3])["dtype"], "u32");

    // NaN / inf loss: fails naming the step, and writes no checkpoint
    let tok = shakespeare_tokens(root);
    let p = tiny_train(
        json!({"lr": 1e9, "min_lr": 1e9, "warmup_iters": 0, "grad_clip": 0.0, "max_iters": 50}),
    );
    let (o, r, _) = run(&Train, &p, std::slice::from_ref(&tok), root, "nan");
    let e = r.unwrap_err().to_string();
    assert!(
        e.contains("training diverged") && e.contains("at step"),
        "{e}"
    );
    assert!(!o[0].exists(), "no checkpoint after divergence");

    // train without a tokenize input
    let (_, r, _) = run(&Train, &tiny_train(json!({})), &[], root, "noinput");
    assert!(
        r.unwrap_err()
            .to_string()
            .contains("needs a `tokenize` node")
    );
    // eval without the tokenize input
    let (_, r, _) = run(&Eval, &params(json!({})), &[], root, "noeval");
    assert!(r.unwrap_err().to_string().contains("needs a `train` node"));
}
