"""PyTorch reference for the training-speed benchmarks (scripts/bench-train.sh,
scripts/gpu-check.sh).

The same model as cegraph's GPT (crates/cegraph-torch/src/model.rs) for the innovations
`baseline`, `layernorm`, `flash`, `rope` and their combinations (`combined` = flash+rope+
layernorm): learned absolute positions unless rope (half-split rotary, theta 10000), causal
attention hand-written or through SDPA (flash), a fused q/k/v projection, pre-norm LayerNorm
without bias in blocks with layernorm, a final LayerNorm, GELU MLP at 4x, tied embeddings, no
biases; AdamW (0.9, 0.95), weight decay 0.1 on matrices only, grad-norm clip 1.0. The loss is
read once at the end (as cegraph's trainer, which reads it only at evaluation points).

Config from the same environment variables as crates/cegraph-torch/tests/ml_bench.rs, plus
BENCH_PRECISION (fp32|bf16|fp16: autocast dtype; fp16 with a GradScaler) and BENCH_DEVICE
(auto|cpu|cuda). Modes:
  --mode eager          plain eager loop, torch.optim.AdamW (foreach, the default)
  --mode compile        torch.compile(model), foreach AdamW
  --mode compile-fused  torch.compile(model) and AdamW(fused=True)
Prints `pytorch mode=… tokens_per_s=… step_ms=… loss=…`; with --peak, the matmul peak in
BENCH_PRECISION instead: `peak gflops=…`.

As a module (scripts/reference_train.py): `ModelConfig` (explicit sizes and innovations, no
environment) and `GPT(cfg)`, `param_groups(model, weight_decay)`; the environment is read only
when this file runs as a script.
"""

import math
import os
import sys
import time
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F

MIRRORED = {"flash", "rope", "layernorm"}


def parse_innovations(text):
    """`baseline`/`none`/`` → {}, `combined` → flash+rope+layernorm, else a `+`-joined list
    (cegraph's names); anything not mirrored here is an error."""
    text = {"combined": "flash+rope+layernorm", "baseline": "", "none": ""}.get(text, text)
    inn = set(i for i in text.split("+") if i)
    unknown = inn - MIRRORED
    if unknown:
        raise ValueError(f"innovations {sorted(unknown)} are not mirrored here")
    return inn


@dataclass
class ModelConfig:
    """The subset of cegraph's ModelConfig this mirror implements."""

    n_layer: int = 4
    n_embd: int = 128
    n_head: int = 4
    block_size: int = 128
    vocab_size: int = 65
    innovations: set = field(default_factory=set)
    rope_theta: float = 10000.0


def rope(x, cos, sin):
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], -1)


class Block(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        D, T = cfg.n_embd, cfg.block_size
        self.n_head = cfg.n_head
        self.flash = "flash" in cfg.innovations
        norm = "layernorm" in cfg.innovations
        self.ln_1 = nn.LayerNorm(D, bias=False) if norm else nn.Identity()
        self.ln_2 = nn.LayerNorm(D, bias=False) if norm else nn.Identity()
        self.c_attn = nn.Linear(D, 3 * D, bias=False)
        self.attn_proj = nn.Linear(D, D, bias=False)
        self.c_fc = nn.Linear(D, 4 * D, bias=False)
        self.mlp_proj = nn.Linear(4 * D, D, bias=False)
        self.register_buffer("future", torch.ones(T, T, dtype=torch.bool).triu(1))

    def attn(self, x, cos, sin):
        b, t, d = x.shape
        H = self.n_head
        q, k, v = self.c_attn(x).split(d, dim=2)
        q = q.view(b, t, H, d // H).transpose(1, 2)
        k = k.view(b, t, H, d // H).transpose(1, 2)
        v = v.view(b, t, H, d // H).transpose(1, 2)
        if cos is not None:
            q, k = rope(q, cos[:t].to(q.dtype), sin[:t].to(q.dtype)), rope(k, cos[:t].to(k.dtype), sin[:t].to(k.dtype))
        if self.flash:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(d // H))
            att = att.masked_fill(self.future[:t, :t], float("-inf")).softmax(-1)
            y = att @ v
        y = y.transpose(1, 2).contiguous().view(b, t, d)
        return self.attn_proj(y)

    def forward(self, x, cos, sin):
        x = x + self.attn(self.ln_1(x), cos, sin)
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x))))


class GPT(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        D, T, L = cfg.n_embd, cfg.block_size, cfg.n_layer
        self.cfg = cfg
        self.wte = nn.Embedding(cfg.vocab_size, D)
        self.wpe = None if "rope" in cfg.innovations else nn.Embedding(T, D)
        self.h = nn.ModuleList(Block(cfg) for _ in range(L))
        self.ln_f = nn.LayerNorm(D, bias=False)
        q = D // cfg.n_head
        inv = cfg.rope_theta ** (-2.0 * torch.arange(q // 2) / q)
        ang = torch.arange(T).float()[:, None] * inv[None, :]
        self.register_buffer("cos", ang.cos(), persistent=False)
        self.register_buffer("sin", ang.sin(), persistent=False)
        for name, p in self.named_parameters():
            if p.dim() == 2:
                std = 0.02 / math.sqrt(2 * L) if name.endswith("proj.weight") else 0.02
                nn.init.normal_(p, 0.0, std)

    def logits(self, idx):
        x = self.wte(idx)
        if self.wpe is not None:
            x = x + self.wpe.weight[: idx.shape[1]]
        cos, sin = (self.cos, self.sin) if self.wpe is None else (None, None)
        for blk in self.h:
            x = blk(x, cos, sin)
        return F.linear(self.ln_f(x), self.wte.weight)

    def token_losses(self, idx, targets):
        """Cross-entropy of every position, (B, T), in f32."""
        logits = self.logits(idx)
        v = logits.shape[-1]
        return F.cross_entropy(logits.view(-1, v).float(), targets.view(-1), reduction="none").view_as(targets)

    def forward(self, idx, targets):
        logits = self.logits(idx)
        return F.cross_entropy(logits.view(-1, logits.shape[-1]).float(), targets.view(-1))


def param_groups(model, weight_decay):
    """AdamW groups as cegraph's: decay on matrices and embeddings, none on norm gains."""
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def env(name, default):
    return int(os.environ.get(name, default))


def peak(device, precision):
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    n = 4096 if device == "cuda" else 1024
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    best = 0.0
    reps = 50 if device == "cuda" else 3
    for _ in range(5):
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(reps):
            a @ b
        if device == "cuda":
            torch.cuda.synchronize()
        dt = time.perf_counter() - t0
        best = max(best, 2 * n**3 * reps / dt)
    print(f"peak gflops={best / 1e9:.1f} dtype={precision} device={device} threads={torch.get_num_threads()}")


def main():
    steps = env("BENCH_STEPS", 30)
    warm = env("BENCH_WARMUP", 5)
    precision = os.environ.get("BENCH_PRECISION", "fp32")
    try:
        inn = parse_innovations(os.environ.get("BENCH_INNOVATIONS", "baseline"))
    except ValueError as e:
        sys.exit(f"bench_train.py: {e}")
    cfg = ModelConfig(
        n_layer=env("BENCH_LAYERS", 4),
        n_embd=env("BENCH_EMBD", 128),
        n_head=env("BENCH_HEADS", 4),
        block_size=env("BENCH_BLOCK", 128),
        vocab_size=env("BENCH_VOCAB", 65),
        innovations=inn,
    )
    B, T, V = env("BENCH_BATCH", 16), cfg.block_size, cfg.vocab_size
    torch.set_num_threads(env("BENCH_THREADS", 1))
    device = os.environ.get("BENCH_DEVICE", "auto")
    device = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    if "--peak" in sys.argv:
        peak(device, precision)
        return
    mode = sys.argv[sys.argv.index("--mode") + 1] if "--mode" in sys.argv else "eager"
    assert mode in ("eager", "compile", "compile-fused"), mode
    torch.manual_seed(0)
    model = GPT(cfg).to(device)
    opt = torch.optim.AdamW(
        param_groups(model, 0.1),
        lr=1e-3,
        betas=(0.9, 0.95),
        fused=(mode == "compile-fused") or None,
    )
    fwd = torch.compile(model) if mode.startswith("compile") else model
    scaler = torch.amp.GradScaler(device, enabled=(precision == "fp16"))
    autocast = torch.autocast(device, dtype=dtype, enabled=(precision != "fp32"))
    data = torch.randint(V, (1_000_000,))
    gen = torch.Generator().manual_seed(0)

    def step(n):
        loss = None
        for _ in range(n):
            ix = torch.randint(len(data) - T - 1, (B,), generator=gen)
            x = torch.stack([data[i : i + T] for i in ix]).to(device)
            y = torch.stack([data[i + 1 : i + 1 + T] for i in ix]).to(device)
            with autocast:
                loss = fwd(x, y)
            scaler.scale(loss).backward()
            scaler.unscale_(opt)
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            scaler.step(opt)
            scaler.update()
            opt.zero_grad(set_to_none=True)
        return loss

    step(warm)
    if device == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    loss = step(steps).item()
    dt = time.perf_counter() - t0
    assert math.isfinite(loss)
    print(
        f"pytorch mode={mode} tokens_per_s={steps * B * T / dt:.1f} "
        f"step_ms={dt * 1e3 / steps:.2f} loss={loss:.4f}"
    )


if __name__ == "__main__":
    main()
