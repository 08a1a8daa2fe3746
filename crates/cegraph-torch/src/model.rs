//! The GPT model on libtorch, with the innovations of [`super::config`] as switches.
//!
//! Parameter names follow nanoGPT (`transformer.wte.weight`, `transformer.h.0.attn.c_attn.weight`,
//! …, weights stored `(out, in)` as `torch.nn.Linear` does), so a PyTorch user can load the
//! safetensors checkpoint into an equivalent module. `c_attn` is the fused q/k/v projection,
//! `(n_head + 2·n_kv_head)·head_dim` rows: queries first, then keys, then values.

use tch::nn::{self, Init};
use tch::{Device, Kind, Tensor};

use cegraph::ml::config::{Innovation, ModelConfig};

const NORM_EPS: f64 = 1e-5;

/// Variables without weight decay (1-D: norm gains) live in this optimiser group.
pub const NO_DECAY_GROUP: usize = 1;

struct Norm {
    w: Tensor,
    rms: bool,
}

impl Norm {
    fn new(p: nn::Path, d: i64, rms: bool) -> Norm {
        let p = p.set_group(NO_DECAY_GROUP);
        Norm {
            w: p.var("weight", &[d], Init::Const(1.0)),
            rms,
        }
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        let d = self.w.size()[0];
        if self.rms {
            x.rms_norm([d], Some(&self.w), Some(NORM_EPS))
        } else {
            // A LayerNorm with a weight and no bias (nanoGPT's `bias=False`).
            x.layer_norm([d], Some(&self.w), None::<&Tensor>, NORM_EPS, true)
        }
    }
}

enum Ffn {
    Gelu { c_fc: Tensor, c_proj: Tensor },
    Swiglu { w1: Tensor, w3: Tensor, w2: Tensor },
}

impl Ffn {
    fn new(p: nn::Path, cfg: &ModelConfig) -> Ffn {
        let d = cfg.n_embd as i64;
        let h = cfg.mlp_hidden() as i64;
        let std = 0.02;
        let proj_std = 0.02 / (2.0 * cfg.n_layer as f64).sqrt();
        let randn = |stdev| Init::Randn { mean: 0.0, stdev };
        if cfg.innovations.has(Innovation::Swiglu) {
            Ffn::Swiglu {
                w1: p.sub("w1").var("weight", &[h, d], randn(std)),
                w3: p.sub("w3").var("weight", &[h, d], randn(std)),
                w2: p.sub("w2").var("weight", &[d, h], randn(proj_std)),
            }
        } else {
            Ffn::Gelu {
                c_fc: p.sub("c_fc").var("weight", &[h, d], randn(std)),
                c_proj: p.sub("c_proj").var("weight", &[d, h], randn(proj_std)),
            }
        }
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        match self {
            Ffn::Gelu { c_fc, c_proj } => x
                .linear(c_fc, None::<&Tensor>)
                .gelu("none")
                .linear(c_proj, None::<&Tensor>),
            Ffn::Swiglu { w1, w3, w2 } => {
                let a = x.linear(w1, None::<&Tensor>).silu();
                let b = x.linear(w3, None::<&Tensor>);
                (a * b).linear(w2, None::<&Tensor>)
            }
        }
    }
}

enum Mlp {
    Dense(Ffn),
    Moe {
        router: Tensor,
        experts: Vec<Ffn>,
        top_k: i64,
    },
}

impl Mlp {
    /// Returns the output and (for MoE) the load-balancing loss.
    fn forward(&self, x: &Tensor) -> (Tensor, Option<Tensor>) {
        match self {
            Mlp::Dense(f) => (f.forward(x), None),
            Mlp::Moe {
                router,
                experts,
                top_k,
            } => {
                let size = x.size();
                let d = size[size.len() - 1];
                let xf = x.reshape([-1, d]);
                let n_tok = xf.size()[0];
                let e = experts.len() as i64;
                let probs = xf.linear(router, None::<&Tensor>).softmax(-1, Kind::Float);
                let (top_w, top_i) = probs.topk(*top_k, -1, true, true);
                // k > 1: renormalise the chosen experts' weights (Mixtral). k = 1: keep the
                // gate's probability (Switch): renormalised it would be exactly 1, and the
                // router would learn from the load-balancing loss alone.
                let top_w = if *top_k > 1 {
                    &top_w / top_w.sum_dim_intlist(-1, true, Kind::Float)
                } else {
                    top_w
                };
                let mut out = xf.zeros_like();
                for (ei, expert) in experts.iter().enumerate() {
                    let chosen = top_i.eq(ei as i64); // (N, k)
                    let idx = chosen.any_dim(-1, false).nonzero().squeeze_dim(1);
                    if idx.size()[0] == 0 {
                        continue;
                    }
                    let w = (&top_w * chosen.to_kind(top_w.kind()))
                        .sum_dim_intlist(-1, false, top_w.kind())
                        .index_select(0, &idx)
                        .unsqueeze(-1);
                    let y = expert.forward(&xf.index_select(0, &idx)) * w.to_kind(xf.kind());
                    out = out.index_add(0, &idx, &y);
                }
                // Switch Transformer load balancing: E · Σ_e f_e · P_e, with f_e the share of
                // routing slots sent to expert e and P_e its mean router probability.
                let f = top_i.one_hot(e).to_kind(Kind::Float).sum_dim_intlist(
                    [0i64, 1].as_slice(),
                    false,
                    Kind::Float,
                ) / (n_tok * *top_k) as f64;
                let p = probs.mean_dim(0, false, Kind::Float);
                let aux = (f * p).sum(Kind::Float) * e as f64;
                (out.reshape(size.as_slice()), Some(aux))
            }
        }
    }
}

struct Attention {
    c_attn: Tensor,
    c_proj: Tensor,
}

struct Block {
    ln_1: Option<Norm>,
    attn: Attention,
    ln_2: Option<Norm>,
    mlp: Mlp,
}

/// The GPT model. Build with [`Gpt::new`] on a `VarStore`, after `tch::manual_seed`.
pub struct Gpt {
    pub cfg: ModelConfig,
    wte: Tensor,
    wpe: Option<Tensor>,
    blocks: Vec<Block>,
    ln_f: Norm,
    /// `(cos, sin)`, each `(block_size, head_dim/2)`.
    rope: Option<(Tensor, Tensor)>,
    /// `true` above the diagonal (future positions), `(block_size, block_size)`.
    future: Tensor,
}

/// What one forward pass returns.
pub struct Forward {
    /// `(B, T, vocab_size)`.
    pub logits: Tensor,
    /// MoE load-balancing loss summed over layers (`None` without `moe`).
    pub aux: Option<Tensor>,
}

impl Gpt {
    /// Create the variables under `p` (use the VarStore's root). The config must be valid
    /// ([`ModelConfig::validate`]).
    pub fn new(p: &nn::Path, cfg: &ModelConfig) -> Gpt {
        let cfg = cfg.clone();
        let inn = &cfg.innovations;
        let d = cfg.n_embd as i64;
        let t = cfg.block_size as i64;
        let l = cfg.n_layer;
        let hq = cfg.head_dim() as i64;
        let qkv = (cfg.n_head as i64 + 2 * cfg.n_kv_head as i64) * hq;
        let std = 0.02;
        let proj_std = 0.02 / (2.0 * l as f64).sqrt();
        let randn = |stdev| Init::Randn { mean: 0.0, stdev };
        let rms = inn.has(Innovation::Rmsnorm);
        let pre_norm = inn.has(Innovation::Layernorm);
        let tr = p.sub("transformer");
        let wte = tr
            .sub("wte")
            .var("weight", &[cfg.vocab_size as i64, d], randn(std));
        let wpe =
            (!inn.has(Innovation::Rope)).then(|| tr.sub("wpe").var("weight", &[t, d], randn(std)));
        let mut blocks = Vec::with_capacity(l);
        for i in 0..l {
            let b = tr.sub("h").sub(i);
            let ln_1 = pre_norm.then(|| Norm::new(b.sub("ln_1"), d, rms));
            let a = b.sub("attn");
            let attn = Attention {
                c_attn: a.sub("c_attn").var("weight", &[qkv, d], randn(std)),
                c_proj: a.sub("c_proj").var("weight", &[d, d], randn(proj_std)),
            };
            let ln_2 = pre_norm.then(|| Norm::new(b.sub("ln_2"), d, rms));
            let m = b.sub("mlp");
            let mlp = if inn.has(Innovation::Moe) {
                let e = cfg.moe_experts as i64;
                let router = m.sub("router").var("weight", &[e, d], randn(std));
                let experts = (0..cfg.moe_experts)
                    .map(|j| Ffn::new(m.sub("experts").sub(j), &cfg))
                    .collect();
                Mlp::Moe {
                    router,
                    experts,
                    top_k: cfg.moe_top_k as i64,
                }
            } else {
                Mlp::Dense(Ffn::new(m, &cfg))
            };
            blocks.push(Block {
                ln_1,
                attn,
                ln_2,
                mlp,
            });
        }
        let ln_f = Norm::new(tr.sub("ln_f"), d, rms);
        let device = p.device();
        let rope = inn.has(Innovation::Rope).then(|| {
            let half = hq / 2;
            let inv: Vec<f32> = (0..half)
                .map(|i| (cfg.rope_theta.powf(-2.0 * i as f64 / hq as f64)) as f32)
                .collect();
            let inv = Tensor::from_slice(&inv).to_device(device);
            let pos = Tensor::arange(t, (Kind::Float, device));
            let ang = pos.unsqueeze(1) * inv.unsqueeze(0); // (T, half)
            (ang.cos(), ang.sin())
        });
        let future = Tensor::ones([t, t], (Kind::Bool, device)).triu(1);
        Gpt {
            cfg,
            wte,
            wpe,
            blocks,
            ln_f,
            rope,
            future,
        }
    }

    fn apply_rope(&self, x: &Tensor, t: i64) -> Tensor {
        let Some((cos, sin)) = &self.rope else {
            return x.shallow_clone();
        };
        let q = x.size()[3];
        let half = q / 2;
        let cos = cos.narrow(0, 0, t).to_kind(x.kind());
        let sin = sin.narrow(0, 0, t).to_kind(x.kind());
        let x1 = x.narrow(-1, 0, half);
        let x2 = x.narrow(-1, half, half);
        Tensor::cat(&[&x1 * &cos - &x2 * &sin, &x2 * &cos + &x1 * &sin], -1)
    }

    fn attention(&self, a: &Attention, x: &Tensor, train: bool) -> Tensor {
        let cfg = &self.cfg;
        let size = x.size();
        let (b, t, d) = (size[0], size[1], size[2]);
        let h = cfg.n_head as i64;
        let kv = cfg.n_kv_head as i64;
        let q_dim = cfg.head_dim() as i64;
        let p_drop = if train { cfg.dropout } else { 0.0 };
        let qkv = x.linear(&a.c_attn, None::<&Tensor>);
        let parts = qkv.split_with_sizes([h * q_dim, kv * q_dim, kv * q_dim], -1);
        let q = parts[0].view([b, t, h, q_dim]).transpose(1, 2);
        let k = parts[1].view([b, t, kv, q_dim]).transpose(1, 2);
        let v = parts[2].view([b, t, kv, q_dim]).transpose(1, 2);
        let (q, k) = if self.rope.is_some() {
            (self.apply_rope(&q, t), self.apply_rope(&k, t))
        } else {
            (q, k)
        };
        let y = if cfg.innovations.has(Innovation::Flash) {
            Tensor::scaled_dot_product_attention(
                &q,
                &k,
                &v,
                None::<&Tensor>,
                p_drop,
                true,
                None,
                kv != h,
            )
        } else {
            let (k, v) = if kv != h {
                let rep = h / kv;
                let expand = |z: &Tensor| {
                    z.unsqueeze(2)
                        .expand([b, kv, rep, t, q_dim], false)
                        .reshape([b, h, t, q_dim])
                };
                (expand(&k), expand(&v))
            } else {
                (k, v)
            };
            let scale = 1.0 / (q_dim as f64).sqrt();
            if cfg.innovations.has(Innovation::Sparse) {
                sparse_attention(&q, &k, &v, cfg.sparse_block as i64, scale, p_drop, train)
            } else {
                let att = q.matmul(&k.transpose(-2, -1)) * scale;
                let future = self.future.narrow(0, 0, t).narrow(1, 0, t);
                let att = att
                    .masked_fill(&future, f64::NEG_INFINITY)
                    .softmax(-1, att.kind())
                    .dropout(p_drop, train);
                att.matmul(&v)
            }
        };
        let y = y.transpose(1, 2).contiguous().view([b, t, d]);
        y.linear(&a.c_proj, None::<&Tensor>).dropout(p_drop, train)
    }

    /// Forward pass over token ids `(B, T)` (int64, T ≤ block_size).
    // `x = x + …`, never `x += …`: tch's `+=` is the in-place `add_`, which would overwrite a
    // tensor autograd saved for the norms' backward.
    #[allow(clippy::assign_op_pattern)]
    pub fn forward(&self, idx: &Tensor, train: bool) -> Forward {
        let size = idx.size();
        let t = size[1];
        let p_drop = if train { self.cfg.dropout } else { 0.0 };
        let mut x = Tensor::embedding(&self.wte, idx, -1, false, false);
        if let Some(wpe) = &self.wpe {
            x = x + wpe.narrow(0, 0, t);
        }
        let mut x = x.dropout(p_drop, train);
        let mut aux: Option<Tensor> = None;
        for blk in &self.blocks {
            let h = match &blk.ln_1 {
                Some(n) => n.forward(&x),
                None => x.shallow_clone(),
            };
            x = x + self.attention(&blk.attn, &h, train);
            let h = match &blk.ln_2 {
                Some(n) => n.forward(&x),
                None => x.shallow_clone(),
            };
            let (m, a) = blk.mlp.forward(&h);
            x = x + m.dropout(p_drop, train);
            if let Some(a) = a {
                aux = Some(match aux {
                    Some(acc) => acc + a,
                    None => a,
                });
            }
        }
        let x = self.ln_f.forward(&x);
        let logits = x.linear(&self.wte, None::<&Tensor>);
        Forward { logits, aux }
    }

    /// Mean next-token cross-entropy of `idx` against `targets` (both `(B, T)`), and the
    /// total loss to optimise (cross-entropy + `moe_aux_weight` × load-balancing loss).
    pub fn loss(&self, idx: &Tensor, targets: &Tensor, train: bool) -> (Tensor, Tensor) {
        let f = self.forward(idx, train);
        let ce = cross_entropy(&f.logits, targets, tch::Reduction::Mean);
        let total = match &f.aux {
            Some(a) if self.cfg.moe_aux_weight > 0.0 => &ce + a * self.cfg.moe_aux_weight,
            _ => ce.shallow_clone(),
        };
        (ce, total)
    }

    /// Next-token cross-entropy of every position, `(B, T)` f32 (evaluation: no dropout).
    pub fn token_losses(&self, idx: &Tensor, targets: &Tensor) -> Tensor {
        let f = self.forward(idx, false);
        cross_entropy(&f.logits, targets, tch::Reduction::None).view_as(targets)
    }

    /// Sample `n` tokens after `context` (1-D ids), temperature `temp`, top-k `top_k` (0: all).
    /// Uses torch's generator (seed it with `tch::manual_seed` for a reproducible sample).
    pub fn generate(&self, context: &[i64], n: usize, temp: f64, top_k: i64) -> Vec<i64> {
        let device = self.wte.device();
        let mut ids: Vec<i64> = if context.is_empty() {
            vec![0]
        } else {
            context.to_vec()
        };
        let start = ids.len();
        let _guard = tch::no_grad_guard();
        for _ in 0..n {
            let lo = ids.len().saturating_sub(self.cfg.block_size);
            let x = Tensor::from_slice(&ids[lo..])
                .to_device(device)
                .unsqueeze(0);
            let logits = self.forward(&x, false).logits;
            let last = logits.select(1, -1).squeeze_dim(0).to_kind(Kind::Float);
            // Never sample the padding rows beyond the tokenizer's vocabulary.
            let real = self.cfg.tokenizer_vocab as i64;
            let last = last.narrow(0, 0, real) / temp.max(1e-6);
            let last = if top_k > 0 && top_k < real {
                let (vals, _) = last.topk(top_k, -1, true, true);
                let thresh = vals.select(0, top_k - 1);
                last.masked_fill(&last.lt_tensor(&thresh), f64::NEG_INFINITY)
            } else {
                last
            };
            let next = last.softmax(-1, Kind::Float).multinomial(1, true);
            ids.push(next.int64_value(&[0]));
        }
        ids.split_off(start)
    }

    pub fn device(&self) -> Device {
        self.wte.device()
    }
}

/// Block-sparse causal attention (see [`super::config`]): q, k, v are `(B, H, T, Q)`.
fn sparse_attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    blk: i64,
    scale: f64,
    p_drop: f64,
    train: bool,
) -> Tensor {
    let size = q.size();
    let (b, h, t, qd) = (size[0], size[1], size[2], size[3]);
    let nb = (t + blk - 1) / blk;
    let tp = nb * blk;
    let pad = tp - t;
    let (q, k, v) = if pad > 0 {
        let p = [0, 0, 0, pad];
        (
            q.constant_pad_nd(p),
            k.constant_pad_nd(p),
            v.constant_pad_nd(p),
        )
    } else {
        (q.shallow_clone(), k.shallow_clone(), v.shallow_clone())
    };
    let qb = q.view([b, h, nb, blk, qd]);
    // Local keys: blocks i-1 and i for query block i, i.e. windows of 2·blk with stride blk
    // over keys padded by one block of zeros at the front.
    let kl = k.constant_pad_nd([0, 0, blk, 0]).unfold(2, 2 * blk, blk); // (B,H,nb,Q,2blk)
    let vl = v
        .constant_pad_nd([0, 0, blk, 0])
        .unfold(2, 2 * blk, blk)
        .transpose(-1, -2); // (B,H,nb,2blk,Q)
    // Summary keys: the last position of every block.
    let kg = k.view([b, h, nb, blk, qd]).select(3, blk - 1); // (B,H,nb,Q)
    let vg = v.view([b, h, nb, blk, qd]).select(3, blk - 1);
    let s_local = qb.matmul(&kl); // (B,H,nb,blk,2blk)
    let s_global = q.matmul(&kg.transpose(-1, -2)).view([b, h, nb, blk, nb]);
    let scores = Tensor::cat(&[s_local, s_global], -1) * scale;
    let masked = sparse_blocked_mask(nb, blk, q.device());
    let att = scores
        .masked_fill(&masked, f64::NEG_INFINITY)
        .softmax(-1, scores.kind())
        .dropout(p_drop, train);
    let a_local = att.narrow(-1, 0, 2 * blk);
    let a_global = att.narrow(-1, 2 * blk, nb).reshape([b, h, tp, nb]);
    let y = a_local.matmul(&vl).view([b, h, tp, qd]) + a_global.matmul(&vg);
    if pad > 0 { y.narrow(2, 0, t) } else { y }
}

/// `true` where a query may NOT look: `(nb, blk, 2·blk + nb)`, local slots then summary slots.
fn sparse_blocked_mask(nb: i64, blk: i64, device: Device) -> Tensor {
    let w = 2 * blk + nb;
    let mut m = Vec::with_capacity((nb * blk * w) as usize);
    for i in 0..nb {
        for r in 0..blk {
            let t = i * blk + r;
            for u in 0..2 * blk {
                let pos = (i - 1) * blk + u;
                m.push(!(pos >= 0 && pos <= t));
            }
            for g in 0..nb {
                m.push(g + 2 > i); // allowed only when g ≤ i - 2
            }
        }
    }
    Tensor::from_slice(&m).view([nb, blk, w]).to_device(device)
}

/// The key positions a query at `t` attends to under the sparse pattern (for tests and docs).
pub fn sparse_pattern(t: usize, blk: usize) -> Vec<usize> {
    let i = t / blk;
    let mut keys: Vec<usize> = (0..i.saturating_sub(1))
        .map(|g| g * blk + blk - 1)
        .collect();
    keys.extend(i.saturating_sub(1) * blk..=t);
    keys
}

/// Cross-entropy of `(B, T, V)` logits against `(B, T)` targets, computed in f32.
// `log_softmax(dtype = f32)` reads bf16/fp16 logits and upcasts inside the kernel, and its
// backward writes the gradient in the logits' dtype: the same values as casting first, without
// a full f32 copy of the logits and its backward (B·T·V·6 bytes each way, the largest tensors of
// a step at a GPT-2 vocabulary).
fn cross_entropy(logits: &Tensor, targets: &Tensor, reduction: tch::Reduction) -> Tensor {
    let v = logits.size()[2];
    logits
        .view([-1, v])
        .log_softmax(-1, Kind::Float)
        .g_nll_loss(&targets.view([-1]), None::<&Tensor>, reduction, -100)
}
