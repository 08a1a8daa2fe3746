//! The GPT model: shapes of every innovation, causal masking of every attention variant,
//! the sparse pattern, parameter and FLOP counts against hand calculations, config errors.
#![cfg(feature = "torch")]

use cegraph::ml::config::{ConfigError, Innovation, Innovations, ModelConfig};
use cegraph_torch::model::{Gpt, sparse_pattern};
use cegraph_torch::train::count_params;
use tch::{Device, Kind, Tensor, nn};

const V: usize = 65;

fn cfg(innov: &str) -> ModelConfig {
    ModelConfig::tiny(V, Innovations::parse_str(innov).unwrap())
}

fn build(c: &ModelConfig) -> (nn::VarStore, Gpt) {
    c.validate().unwrap();
    tch::manual_seed(0);
    let vs = nn::VarStore::new(Device::Cpu);
    let m = Gpt::new(&vs.root(), c);
    (vs, m)
}

fn random_ids(t: usize, seed: i64) -> Tensor {
    tch::manual_seed(seed);
    Tensor::randint(V as i64, [1, t as i64], (Kind::Int64, Device::Cpu))
}

const VARIANTS: [&str; 13] = [
    "baseline",
    "layernorm",
    "rmsnorm",
    "layernorm+rmsnorm",
    "rope",
    "flash",
    "mqa",
    "gqa",
    "sparse",
    "swiglu",
    "moe",
    "combined",
    "rope+gqa+sparse+swiglu+moe+layernorm",
];

#[test]
fn every_innovation_gives_the_right_shapes_and_a_finite_loss() {
    for v in VARIANTS {
        let c = cfg(v);
        let (vs, m) = build(&c);
        let x = random_ids(c.block_size, 1);
        let y = random_ids(c.block_size, 2);
        let x2 = Tensor::cat(&[&x, &y], 0);
        let f = m.forward(&x2, true);
        assert_eq!(
            f.logits.size(),
            vec![2, c.block_size as i64, V as i64],
            "{v}"
        );
        assert_eq!(f.aux.is_some(), c.innovations.has(Innovation::Moe), "{v}");
        // A shorter sequence works too (generation uses it).
        let f = m.forward(&x.narrow(1, 0, 7), false);
        assert_eq!(f.logits.size(), vec![1, 7, V as i64], "{v}");
        let (ce, total) = m.loss(&x2, &Tensor::cat(&[&y, &x], 0), true);
        let ce = ce.double_value(&[]);
        // At init the loss is near ln(V) = 4.17.
        assert!((ce - (V as f64).ln()).abs() < 0.5, "{v}: {ce}");
        total.backward();
        let with_grad = vs
            .trainable_variables()
            .iter()
            .filter(|t| t.grad().defined())
            .count();
        assert_eq!(
            with_grad,
            vs.trainable_variables().len(),
            "{v}: every var gets a gradient"
        );
        // The module's real parameter count equals the formula's.
        assert_eq!(count_params(&vs), c.param_counts().total, "{v}");
    }
}

/// Changing a future token never changes an earlier logit, and does change later ones.
#[test]
fn causal_masking_holds_for_every_attention_variant() {
    for v in [
        "baseline",
        "flash",
        "mqa",
        "gqa",
        "sparse",
        "rope",
        "rope+flash+gqa",
        "sparse+mqa+rope",
        "moe",
        "layernorm",
    ] {
        let c = cfg(v);
        let (_vs, m) = build(&c);
        let t = c.block_size as i64;
        let x = random_ids(c.block_size, 3);
        let a = tch::no_grad(|| m.forward(&x, false).logits);
        for p in [t / 2, t - 3] {
            let x2 = x.copy();
            let old = x2.int64_value(&[0, p]);
            let _ = x2.get(0).get(p).fill_((old + 1) % V as i64);
            let b = tch::no_grad(|| m.forward(&x2, false).logits);
            let before = (a.narrow(1, 0, p) - b.narrow(1, 0, p))
                .abs()
                .max()
                .double_value(&[]);
            assert!(
                before == 0.0,
                "{v}: changing token {p} moved earlier logits by {before}"
            );
            let after = (a.narrow(1, p + 1, t - p - 1) - b.narrow(1, p + 1, t - p - 1))
                .abs()
                .max()
                .double_value(&[]);
            assert!(
                after > 1e-6,
                "{v}: token {p} does not reach later positions"
            );
        }
    }
}

/// With one layer, a query's logits depend on token j (≠ itself) only through attention, so
/// they change exactly when j is in the documented sparse pattern.
#[test]
fn sparse_attention_attends_exactly_to_its_pattern() {
    let mut c = cfg("sparse");
    c.n_layer = 1;
    c.block_size = 30; // not a multiple of the block: exercises padding
    c.sparse_block = 4;
    let (_vs, m) = build(&c);
    let t = c.block_size;
    let x = random_ids(t, 5);
    let a = tch::no_grad(|| m.forward(&x, false).logits);
    let mut attended_pairs = 0;
    for j in 0..t {
        let x2 = x.copy();
        let old = x2.int64_value(&[0, j as i64]);
        let _ = x2.get(0).get(j as i64).fill_((old + 7) % V as i64);
        let b = tch::no_grad(|| m.forward(&x2, false).logits);
        for q in 0..t {
            if q == j {
                continue;
            }
            let diff = (a.get(0).get(q as i64) - b.get(0).get(q as i64))
                .abs()
                .max()
                .double_value(&[]);
            let expected = q > j && sparse_pattern(q, 4).contains(&j);
            attended_pairs += expected as usize;
            assert_eq!(diff > 0.0, expected, "query {q}, key {j}: diff {diff}");
        }
    }
    // Dense causal attention would have t(t-1)/2 = 435 pairs.
    assert!(attended_pairs < 435 * 2 / 3, "{attended_pairs}");
    // query 13 is in block 3: summary keys of blocks 0 and 1, then blocks 2 and 3 causally
    assert_eq!(sparse_pattern(13, 4), vec![3, 7, 8, 9, 10, 11, 12, 13]);
}

#[test]
fn parameter_and_flop_counts_match_hand_calculations() {
    // V=65, L=2, H=4, d=32 (Q=8), T=32.
    let p = cfg("baseline").param_counts();
    // embeddings 65·32 + 32·32; blocks 2·12·32²; final LayerNorm gain 32
    assert_eq!(p.embedding, 2080 + 1024);
    assert_eq!(p.non_embedding, 24_576 + 32);
    assert_eq!(p.total, 27_712);
    // 6N + 12·L·H·Q·T = 6·24608 + 12·2·4·8·32
    assert_eq!(cfg("baseline").flops_per_token().total, 147_648 + 24_576);

    // mqa: k and v shrink from 32×32 to 32×8 each: 2·(1024+256+256+1024+8192) + 32
    let m = cfg("mqa");
    assert_eq!(m.n_kv_head, 1);
    assert_eq!(m.param_counts().non_embedding, 21_536);
    assert_eq!(m.flops_per_token().total, 6 * 21_536 + 24_576);
    // gqa with 2 kv heads: k, v are 32×16
    assert_eq!(
        cfg("gqa").param_counts().non_embedding,
        2 * (1024 + 512 + 512 + 1024 + 8192) + 32
    );
    // rope: no position embedding, same N
    let r = cfg("rope").param_counts();
    assert_eq!((r.embedding, r.non_embedding), (2080, 24_608));
    // layernorm: two gains per block
    assert_eq!(
        cfg("layernorm").param_counts().non_embedding,
        24_608 + 2 * 64
    );
    // swiglu: hidden 88, three 32×88 matrices
    assert_eq!(
        cfg("swiglu").param_counts().non_embedding,
        2 * (4096 + 3 * 32 * 88) + 32
    );
    // moe, 4 experts top-2: router 32·4; all experts stored, two active
    let moe = cfg("moe");
    let pc = moe.param_counts();
    assert_eq!(pc.non_embedding, 2 * (4096 + 128 + 4 * 8192) + 32);
    assert_eq!(pc.active_non_embedding, 2 * (4096 + 128 + 2 * 8192) + 32);
    assert_eq!(moe.flops_per_token().total, 6 * 41_248 + 24_576);
    // sparse, block 4 at T=32: each query scores 2·4 + 32/4 = 16 key slots instead of 32
    let s = cfg("sparse");
    assert_eq!(s.sparse_block, 4);
    assert_eq!(s.attended_keys(), 16);
    assert_eq!(s.flops_per_token().attention, 12 * 2 * 4 * 8 * 16);

    // The paper's compact model: 6 layers, 6 heads, 384 wide, context 512, vocab 50304.
    let mut c = ModelConfig::tiny(50_304, Innovations::default());
    (c.n_layer, c.n_head, c.n_kv_head, c.n_embd, c.block_size) = (6, 6, 6, 384, 512);
    let pc = c.param_counts();
    assert_eq!(pc.non_embedding, 12 * 6 * 384 * 384 + 384); // 10.6M
    assert_eq!(pc.embedding, (50_304 + 512) * 384);
    assert_eq!(c.flops_per_token().attention, 12 * 6 * 6 * 64 * 512);
}

#[test]
fn bad_configs_name_the_problem() {
    let e = Innovations::parse_str("rope+turbo").unwrap_err();
    assert!(matches!(e, ConfigError::UnknownInnovation { ref name, .. } if name == "turbo"));
    assert!(
        e.to_string()
            .contains("valid: layernorm, rmsnorm, rope, flash, mqa, gqa, sparse, swiglu, moe")
    );

    let mut c = cfg("gqa");
    c.n_kv_head = 3;
    let e = c.validate().unwrap_err().to_string();
    assert!(
        e.contains("n_head (4) must be divisible by n_kv_head (3)"),
        "{e}"
    );

    let e = cfg("mqa+gqa").validate().unwrap_err();
    assert!(matches!(
        e,
        ConfigError::Incompatible {
            a: "mqa",
            b: "gqa",
            ..
        }
    ));
    let e = cfg("flash+sparse").validate().unwrap_err();
    assert!(matches!(
        e,
        ConfigError::Incompatible {
            a: "flash",
            b: "sparse",
            ..
        }
    ));

    let mut c = cfg("sparse");
    c.sparse_block = 16; // T = 32 = 2·16: would attend to everything
    assert!(c.validate().unwrap_err().to_string().contains("not sparse"));

    let mut c = cfg("rope");
    (c.n_head, c.n_kv_head, c.n_embd) = (4, 4, 36); // head dim 9
    assert!(
        c.validate()
            .unwrap_err()
            .to_string()
            .contains("even head dimension")
    );

    let mut c = cfg("baseline");
    c.n_head = 5;
    c.n_kv_head = 5;
    assert!(
        c.validate()
            .unwrap_err()
            .to_string()
            .contains("divisible by n_head")
    );

    let mut c = cfg("baseline");
    c.n_kv_head = 2;
    assert!(
        c.validate()
            .unwrap_err()
            .to_string()
            .contains("neither gqa nor mqa")
    );

    let mut c = cfg("moe");
    c.moe_top_k = 5;
    assert!(c.validate().unwrap_err().to_string().contains("moe_top_k"));
}

#[test]
fn torch_info_finds_the_loaded_libtorch() {
    let _ = Tensor::zeros([1], (Kind::Float, Device::Cpu)); // make sure libtorch is loaded
    let info = cegraph_torch::info::torch_info();
    let v = info.version.expect("version of the loaded libtorch");
    assert!(v.starts_with("2.11."), "{v}");
    assert!(info.libtorch_dir.unwrap().ends_with("lib"));
    assert!(info.threads >= 1);
    assert!(info.hint.is_none(), "{:?}", info.hint);
}

/// With `moe_top_k: 1` the gate used to be renormalised to exactly 1, so the cross-entropy
/// gave the router no gradient at all (it learned from the load-balancing loss only).
#[test]
fn top1_moe_router_gets_task_gradient() {
    for top_k in [1, 2] {
        let mut c = cfg("moe");
        c.moe_top_k = top_k;
        c.moe_aux_weight = 0.0;
        let (vs, m) = build(&c);
        let x = random_ids(c.block_size, 1);
        let y = random_ids(c.block_size, 2);
        let (ce, _) = m.loss(&x, &y, true);
        ce.backward();
        let routers: Vec<_> = vs
            .variables()
            .into_iter()
            .filter(|(name, _)| name.contains("router"))
            .collect();
        assert!(!routers.is_empty(), "no router variable found");
        for (name, var) in routers {
            let g = var.grad().abs().sum(Kind::Double).double_value(&[]);
            assert!(g > 1e-9, "top_k {top_k}: {name} got no task gradient ({g})");
        }
    }
}
