//! Batches of (input, target) windows from a token array, drawn by a seeded sampler.
//!
//! Data order: the training batches come from `SplitMix64::stream(data_seed, "train-batches")`,
//! a generator that nothing else draws from, so two runs with the same `data_seed`, batch size,
//! context and step count see exactly the same windows in the same order, whatever their
//! architecture (the model's init uses torch's own generator, seeded separately). The eval
//! batches come from fixed streams of `eval_seed` ("eval-train", "eval-val"), the same for
//! every variant and every seed, drawn once before training.

use tch::{Device, Kind, Tensor};

use cegraph::ml::rng::SplitMix64;

/// Draws window offsets uniformly from `[0, n_tokens - block - 1]`, like nanoGPT's `get_batch`.
pub struct Sampler {
    rng: SplitMix64,
    batch: usize,
    block: usize,
    n_tokens: usize,
}

impl Sampler {
    /// `n_tokens` must exceed `block` (checked by the caller with a clear message).
    pub fn new(seed: u64, stream: &str, batch: usize, block: usize, n_tokens: usize) -> Sampler {
        Sampler {
            rng: SplitMix64::stream(seed, stream),
            batch,
            block,
            n_tokens,
        }
    }

    /// Offsets of the next batch's windows.
    pub fn next_offsets(&mut self) -> Vec<usize> {
        let range = (self.n_tokens - self.block) as u64;
        (0..self.batch)
            .map(|_| self.rng.below(range) as usize)
            .collect()
    }
}

unsafe extern "C" {
    fn cg_pin_memory(
        src: *const std::ffi::c_void,
        out: *mut *mut std::ffi::c_void,
        err: *mut std::ffi::c_char,
        cap: usize,
    ) -> std::ffi::c_int;
}

/// A page-locked copy of a CPU tensor (the source of an asynchronous host-to-GPU copy).
fn pinned(t: &Tensor) -> Result<Tensor, tch::TchError> {
    let mut out: *mut std::ffi::c_void = std::ptr::null_mut();
    crate::amp::checked("pin_memory", |err, cap| unsafe {
        cg_pin_memory(t.as_ptr() as *const _, &mut out, err, cap)
    })?;
    // SAFETY: on success the shim stored a `new torch::Tensor`, which the Tensor now owns.
    Ok(unsafe { Tensor::from_ptr(out.cast()) })
}

/// `(x, y)` int64 tensors `(B, T)` on `device`: `y` is `x` shifted by one token.
pub fn make_batch(
    tokens: &[u32],
    offsets: &[usize],
    block: usize,
    device: Device,
) -> (Tensor, Tensor) {
    let mut x = Vec::with_capacity(offsets.len() * block);
    let mut y = Vec::with_capacity(offsets.len() * block);
    for &o in offsets {
        x.extend(tokens[o..o + block].iter().map(|&t| t as i64));
        y.extend(tokens[o + 1..o + block + 1].iter().map(|&t| t as i64));
    }
    let shape = [offsets.len() as i64, block as i64];
    let upload = |v: &[i64]| {
        let t = Tensor::from_slice(v).view(shape);
        if device.is_cuda() {
            // Pinned memory and an asynchronous copy (as nanoGPT): a copy from pageable memory
            // would make every step wait for the GPU to drain its queue.
            match pinned(&t) {
                Ok(p) => p.to_device_(device, Kind::Int64, true, false),
                Err(_) => t.to_device(device),
            }
        } else {
            t
        }
    };
    (upload(&x), upload(&y))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sampler_is_seeded_and_in_range() {
        let mut a = Sampler::new(3, "train-batches", 4, 8, 100);
        let mut b = Sampler::new(3, "train-batches", 4, 8, 100);
        let mut c = Sampler::new(4, "train-batches", 4, 8, 100);
        let oa: Vec<_> = (0..10).flat_map(|_| a.next_offsets()).collect();
        let ob: Vec<_> = (0..10).flat_map(|_| b.next_offsets()).collect();
        let oc: Vec<_> = (0..10).flat_map(|_| c.next_offsets()).collect();
        assert_eq!(oa, ob);
        assert_ne!(oa, oc);
        assert!(oa.iter().all(|&o| o + 8 < 100));
        let toks: Vec<u32> = (0..100).collect();
        let (x, y) = make_batch(&toks, &[0, 91], 8, Device::Cpu);
        assert_eq!(x.size(), vec![2, 8]);
        assert_eq!(x.int64_value(&[1, 0]), 91);
        assert_eq!(y.int64_value(&[1, 7]), 99);
    }
}
