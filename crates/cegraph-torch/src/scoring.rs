//! Scoring a model on a token split: the mean next-token loss over fixed, non-overlapping
//! windows and its standard error — the validation loss of every eval point and of `eval`.

use tch::{Kind, Tensor};

use crate::amp::{self, Precision};
use crate::data::make_batch;
use crate::model::Gpt;

/// A loss measured over windows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Score {
    /// Mean cross-entropy, nats/token (every window has `block` tokens, so this is the
    /// per-token mean too).
    pub loss: f64,
    /// Standard error of `loss`: the windows' sample standard deviation / √windows (windows
    /// treated as independent; 0 with one window).
    pub se: f64,
    pub windows: usize,
    pub tokens: usize,
}

/// Offsets of non-overlapping windows of `block` tokens (plus the one target after each) in a
/// split of `n_tokens`: every one when `n` is 0 or at least their number, else `n` evenly
/// spaced ones — the same for every model scored on that split.
pub fn window_offsets(n_tokens: usize, block: usize, n: usize) -> Vec<usize> {
    let all = n_tokens.saturating_sub(1) / block.max(1);
    if n == 0 || n >= all {
        (0..all).map(|w| w * block).collect()
    } else {
        (0..n).map(|i| i * all / n * block).collect()
    }
}

/// Score `model` on the windows at `offsets` of `tokens`, `batch` windows per forward pass
/// in `precision` (the loss itself in f32), without gradients or dropout. One host read.
pub fn score(
    model: &Gpt,
    tokens: &[u32],
    offsets: &[usize],
    batch: usize,
    precision: Precision,
) -> Score {
    let _guard = tch::no_grad_guard();
    let block = model.cfg.block_size;
    let device = model.device();
    let per_window: Vec<Tensor> = offsets
        .chunks(batch.max(1))
        .map(|offs| {
            let (x, y) = make_batch(tokens, offs, block, device);
            amp::autocast(device, precision, || model.token_losses(&x, &y))
                .to_kind(Kind::Double)
                .mean_dim(-1, false, Kind::Double)
        })
        .collect();
    let n = offsets.len();
    if n == 0 {
        return Score {
            loss: f64::NAN,
            se: f64::NAN,
            windows: 0,
            tokens: 0,
        };
    }
    let all = Tensor::cat(&per_window, 0);
    let stats = Tensor::stack(
        &[
            all.mean(Kind::Double),
            if n > 1 {
                all.std(true) / (n as f64).sqrt()
            } else {
                all.zeros_like().sum(Kind::Double)
            },
        ],
        0,
    )
    .to_device(tch::Device::Cpu);
    Score {
        loss: stats.double_value(&[0]),
        se: stats.double_value(&[1]),
        windows: n,
        tokens: n * block,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_offsets_cover_the_split_or_spread_evenly() {
        // 100 tokens, windows of 8 (+1 target): 12 whole windows.
        let all = window_offsets(100, 8, 0);
        assert_eq!(all.len(), 12);
        assert_eq!(all[11], 88);
        assert!(all.iter().all(|&o| o + 8 < 100));
        assert_eq!(window_offsets(100, 8, 50), all);
        let some = window_offsets(100, 8, 4);
        assert_eq!(some, vec![0, 24, 48, 72]);
        assert!(window_offsets(8, 8, 0).is_empty());
    }
}
