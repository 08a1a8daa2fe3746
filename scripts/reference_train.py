"""A plain PyTorch training loop of cegraph's GPT on a `tokenize` node's output — the yardstick
for "cegraph's training reaches the loss PyTorch reaches" (scripts/gpu-check.sh).

Reads DIR/train.bin, DIR/val.bin and DIR/meta.json (little-endian u16 or u32 token ids, as
meta.json's `dtype` says; src/ml/tokenizer.rs), builds the model of scripts/bench_train.py
(cegraph's GPT for baseline and any mix of flash, rope, layernorm) and trains it as cegraph's
trainer does (crates/cegraph-torch/src/train.rs, src/ml/train_config.rs):

  * batches of `batch_size` windows of `block_size` tokens at uniform random offsets in
    [0, train_tokens - block_size), `grad_accum` micro-batches per step;
  * AdamW β (beta1, beta2), eps 1e-8, weight decay on matrices and embeddings only, global
    gradient-norm clip `grad_clip`;
  * lr: linear warm-up over `warmup_iters` (lr·(it+1)/(warmup_iters+1)), cosine to `min_lr` at
    `lr_decay_iters`, then `min_lr`;
  * forward (training and evaluation) under torch.autocast in `precision` (fp32 | bf16 | fp16,
    fp16 with a GradScaler), weights and optimiser state f32, the loss in f32;
  * the final model scored on the validation split exactly as cegraph's `val_loss`: the mean
    next-token loss over every non-overlapping window of `block_size` tokens (offsets 0, T,
    2T, … while a target follows), or `eval_windows` evenly spaced ones.

Its own RNG (torch's, seeded by --seed): the init and the data order differ from cegraph's, so
the two agree statistically (seed-to-seed spread), not bitwise.

Hyper-parameters: cegraph's train-stage defaults, or --record a cegraph train node's
record.json (its `model` and `train` sections: the identical configuration), then any flag
given explicitly. Prints one line:
  reference val_loss=… val_se=… steps=… tokens_per_s=… train_s=… device=… precision=…
With --score cegraph's model.safetensors it trains nothing: it loads cegraph's weights into the
mirror and scores them (`mirror val_loss=…`), which must give cegraph's own val_loss — the
check that the mirror and its scoring are cegraph's (measured on the CPU: equal to 6 digits).
"""

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_train import GPT, ModelConfig, param_groups, parse_innovations  # noqa: E402

# (flag, section of record.json, key, type, cegraph's default — a callable of the args so far
# for the derived ones)
PARAMS = [
    ("innovations", "model", "innovations", str, "baseline"),
    ("n_layer", "model", "n_layer", int, 4),
    ("n_head", "model", "n_head", int, 4),
    ("n_embd", "model", "n_embd", int, 128),
    ("block_size", "model", "block_size", int, 128),
    ("vocab_size", "model", "vocab_size", int, None),  # None: the tokenizer's (meta.json)
    ("rope_theta", "model", "rope_theta", float, 10000.0),
    ("max_iters", "train", "max_iters", int, 200),
    ("batch_size", "train", "batch_size", int, 16),
    ("grad_accum", "train", "grad_accum", int, 1),
    ("lr", "train", "lr", float, 1e-3),
    ("min_lr", "train", "min_lr", float, lambda a: a.lr / 10),
    ("warmup_iters", "train", "warmup_iters", int, lambda a: min(a.max_iters // 10, 100)),
    ("lr_decay_iters", "train", "lr_decay_iters", int, lambda a: a.max_iters),
    ("weight_decay", "train", "weight_decay", float, 0.1),
    ("beta1", "train", "beta1", float, 0.9),
    ("beta2", "train", "beta2", float, 0.95),
    ("grad_clip", "train", "grad_clip", float, 1.0),
    ("eval_windows", "train", "eval_windows", int, 0),
    ("seed", "train", "seed", int, 1),
    ("device", "train", "device", str, "auto"),
    ("precision", "train", "precision", str, "auto"),
    ("threads", "train", "threads", int, 1),
]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tokens", required=True, help="a tokenize node's output directory (train.bin, val.bin, meta.json)")
    p.add_argument("--record", help="a cegraph train node's record.json: take its model and train config")
    for flag, _, _, typ, _ in PARAMS:
        p.add_argument("--" + flag.replace("_", "-"), dest=flag, type=typ, default=None)
    p.add_argument("--score", metavar="SAFETENSORS", help="train nothing: load cegraph's weights (a train node's model.safetensors) into the mirror and score them (checks the mirror and the scoring)")
    p.add_argument("--eval-batch", type=int, default=None, help="windows per eval forward pass (default batch_size)")
    a = p.parse_args(argv)
    record = json.loads(Path(a.record).read_text()) if a.record else None
    for flag, section, key, _, default in PARAMS:
        if getattr(a, flag) is not None:
            continue
        if record is not None and key in record.get(section, {}):
            v = record[section][key]
            if flag == "innovations":
                v = "+".join(v) if v else "baseline"
            if flag == "seed":
                v = int(v)
            setattr(a, flag, v)
        else:
            setattr(a, flag, default(a) if callable(default) else default)
    if record is not None:
        m = record["model"]
        if m.get("n_kv_head", m["n_head"]) != m["n_head"] or m.get("dropout", 0.0) != 0.0:
            p.error("the record's model has grouped kv heads or dropout, which the mirror does not implement")
    return a


def read_tokens(d):
    meta = json.loads((d / "meta.json").read_text())
    dtype = {"u16": torch.uint16, "u32": torch.uint32}[meta["dtype"]]
    assert sys.byteorder == "little", "token files are little-endian"

    def load(name):
        raw = bytearray((d / name).read_bytes())
        return torch.frombuffer(raw, dtype=dtype).to(torch.int64)

    return meta, load("train.bin"), load("val.bin")


def load_cegraph_weights(model, path):
    """A cegraph checkpoint (safetensors, f32, nanoGPT names) into the mirror's modules."""
    raw = Path(path).read_bytes()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + n])
    data = memoryview(raw)[8 + n :]
    rename = {"attn.c_proj": "attn_proj", "mlp.c_proj": "mlp_proj", "attn.c_attn": "c_attn", "mlp.c_fc": "c_fc"}
    state = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        assert info["dtype"] == "F32", (name, info["dtype"])
        lo, hi = info["data_offsets"]
        t = torch.frombuffer(bytearray(data[lo:hi]), dtype=torch.float32).view(info["shape"])
        key = name.removeprefix("transformer.")
        for old, new in rename.items():
            key = key.replace(old, new)
        state[key] = t
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("future")]
    if missing or unexpected:
        sys.exit(f"reference: {path}: missing {missing}, unexpected {unexpected}")


def lr_at(a, it):
    """src/ml/train_config.rs `lr_at`."""
    if it < a.warmup_iters:
        return a.lr * (it + 1) / (a.warmup_iters + 1)
    if it > a.lr_decay_iters:
        return a.min_lr
    span = max(a.lr_decay_iters - a.warmup_iters, 1)
    ratio = (it - a.warmup_iters) / span
    return a.min_lr + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (a.lr - a.min_lr)


def window_offsets(n_tokens, block, n):
    """crates/cegraph-torch/src/scoring.rs `window_offsets`."""
    every = max(n_tokens - 1, 0) // max(block, 1)
    if n == 0 or n >= every:
        return [w * block for w in range(every)]
    return [i * every // n * block for i in range(n)]


def batch(tokens, offsets, block, device):
    idx = torch.as_tensor(offsets, dtype=torch.int64)[:, None] + torch.arange(block + 1)[None, :]
    w = tokens[idx]
    x, y = w[:, :-1].contiguous(), w[:, 1:].contiguous()
    if device.type == "cuda":
        return x.pin_memory().to(device, non_blocking=True), y.pin_memory().to(device, non_blocking=True)
    return x, y


@torch.no_grad()
def score(model, tokens, offsets, block, eval_batch, device, autocast):
    """Mean loss over the windows and its standard error over windows (scoring.rs `score`)."""
    model.eval()
    per_window = []
    for i in range(0, len(offsets), eval_batch):
        x, y = batch(tokens, offsets[i : i + eval_batch], block, device)
        with autocast():
            losses = model.token_losses(x, y)
        per_window.append(losses.double().mean(-1))
    model.train()
    all_ = torch.cat(per_window)
    n = all_.numel()
    se = (all_.std() / math.sqrt(n)).item() if n > 1 else 0.0
    return all_.mean().item(), se, n


def main(argv=None):
    a = parse_args(argv)
    d = Path(a.tokens)
    meta, train_tok, val_tok = read_tokens(d)
    vocab = a.vocab_size or meta["vocab_size"]
    assert vocab >= meta["vocab_size"], f"vocab_size {vocab} < the tokenizer's {meta['vocab_size']}"
    T = a.block_size
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    dev = ("cuda" if torch.cuda.is_available() else "cpu") if a.device == "auto" else a.device
    device = torch.device(dev)
    precision = a.precision
    if precision == "auto":
        precision = "bf16" if device.type == "cuda" else "fp32"
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]

    def autocast():
        return torch.autocast(device.type, dtype=dtype, enabled=(precision != "fp32"))

    cfg = ModelConfig(
        n_layer=a.n_layer,
        n_embd=a.n_embd,
        n_head=a.n_head,
        block_size=T,
        vocab_size=vocab,
        innovations=parse_innovations(a.innovations),
        rope_theta=a.rope_theta,
    )
    torch.manual_seed(a.seed)
    gen = torch.Generator().manual_seed(a.seed)
    model = GPT(cfg).to(device)
    opt = torch.optim.AdamW(
        param_groups(model, a.weight_decay), lr=lr_at(a, 0), betas=(a.beta1, a.beta2), eps=1e-8,
        fused=(device.type == "cuda") or None,
    )
    if a.score:
        load_cegraph_weights(model, a.score)
        offsets = window_offsets(len(val_tok), T, a.eval_windows)
        val, se, n = score(model, val_tok, offsets, T, a.eval_batch or a.batch_size, device, autocast)
        print(f"mirror val_loss={val:.6f} val_se={se:.6f} windows={n} device={dev} precision={precision} innovations={a.innovations}")
        return
    scaler = torch.amp.GradScaler(device.type, enabled=(precision == "fp16"))
    hi = len(train_tok) - T  # offsets in [0, hi), as cegraph's Sampler
    assert hi > 0 and len(val_tok) > T + 1, "too few tokens for block_size"

    train_s = 0.0
    for it in range(a.max_iters):
        t0 = time.perf_counter()
        lr = lr_at(a, it)
        for g in opt.param_groups:
            g["lr"] = lr
        for _ in range(a.grad_accum):
            offs = torch.randint(hi, (a.batch_size,), generator=gen).tolist()
            x, y = batch(train_tok, offs, T, device)
            with autocast():
                loss = model(x, y)
            scaler.scale(loss / a.grad_accum).backward()
        scaler.unscale_(opt)
        if a.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), a.grad_clip)
        scaler.step(opt)
        scaler.update()
        opt.zero_grad(set_to_none=True)
        if device.type == "cuda" and it == a.max_iters - 1:
            torch.cuda.synchronize()
        train_s += time.perf_counter() - t0
    last = loss.item()
    if not math.isfinite(last):
        sys.exit(f"reference: training loss became {last}")
    offsets = window_offsets(len(val_tok), T, a.eval_windows)
    val, se, n = score(model, val_tok, offsets, T, a.eval_batch or a.batch_size, device, autocast)
    tokens = a.max_iters * a.grad_accum * a.batch_size * T
    print(
        f"reference val_loss={val:.4f} val_se={se:.4f} steps={a.max_iters} "
        f"tokens_per_s={tokens / train_s:.1f} train_s={train_s:.2f} last_train_loss={last:.4f} "
        f"windows={n} device={dev} precision={precision} innovations={a.innovations} seed={a.seed} "
        f"threads={torch.get_num_threads()}"
    )


if __name__ == "__main__":
    main()
