//! Mixed precision: libtorch autocast with an explicit dtype (bf16 or fp16, on the CPU and on
//! CUDA) and dynamic loss scaling for fp16. tch 0.24 only toggles CUDA autocast at its default
//! dtype (fp16), so the dtype and the AMP kernels come from the small C++ shim in
//! [`crate::amp_shim`], compiled by `build.rs` against the linked libtorch's headers.

use std::ffi::{c_char, c_int, c_void};

use tch::{Device, Kind, Tensor};

pub use cegraph::ml::train_config::Precision;

unsafe extern "C" {
    fn cg_autocast_set(cuda: c_int, precision: c_int) -> c_int;
    fn cg_autocast_enter() -> c_int;
    fn cg_autocast_exit();
    fn cg_amp_unscale(
        grads: *const *const c_void,
        n: usize,
        found_inf: *const c_void,
        inv_scale: *const c_void,
        err: *mut c_char,
        cap: usize,
    ) -> c_int;
}

/// The `torch::Tensor*` behind each tensor, for the shim (which never takes ownership).
pub(crate) fn raw(ts: &[&Tensor]) -> Vec<*const c_void> {
    ts.iter().map(|t| t.as_ptr() as *const c_void).collect()
}

/// Call a shim entry point with an error buffer; its C++ exception message as the error.
pub(crate) fn checked(
    what: &str,
    call: impl FnOnce(*mut c_char, usize) -> c_int,
) -> Result<(), tch::TchError> {
    let mut err = [0 as c_char; 1024];
    if call(err.as_mut_ptr(), err.len()) == 0 {
        return Ok(());
    }
    // SAFETY: the shim NUL-terminates what it writes within the buffer.
    let msg = unsafe { std::ffi::CStr::from_ptr(err.as_ptr()) };
    Err(tch::TchError::Torch(format!(
        "{what}: {}",
        msg.to_string_lossy()
    )))
}

fn code(p: Precision) -> c_int {
    match p {
        Precision::Bf16 => 1,
        Precision::Fp16 => 2,
        Precision::Fp32 | Precision::Auto => 0,
    }
}

/// Restores the previous autocast state of its device when dropped (also on a panic).
struct AutocastGuard {
    cuda: c_int,
    prev: c_int,
}

impl Drop for AutocastGuard {
    fn drop(&mut self) {
        // SAFETY: plain calls into libtorch's thread-local autocast state.
        unsafe {
            cg_autocast_exit();
            cg_autocast_set(self.cuda, self.prev);
        }
    }
}

/// Run `f` under libtorch autocast on `device` in `precision` (fp32: no autocast). As with
/// `torch.autocast`, matmuls and linear layers run in the low-precision type while reductions,
/// norms, softmax and the loss stay f32; weights stay f32 (autocast casts per op and caches
/// the casts for the duration).
pub fn autocast<T>(device: Device, precision: Precision, f: impl FnOnce() -> T) -> T {
    let p = code(precision);
    if p == 0 {
        return f();
    }
    let cuda = c_int::from(device.is_cuda());
    // SAFETY: as above.
    let prev = unsafe { cg_autocast_set(cuda, p) };
    unsafe { cg_autocast_enter() };
    let _guard = AutocastGuard { cuda, prev };
    f()
}

/// fp16's dynamic loss scaling, as `torch.amp.GradScaler`: the loss is multiplied by `scale`
/// before the backward pass; the gradients are divided by it and checked for inf/NaN; a step
/// with any is skipped (by the optimiser, on the device: no host sync) and halves the scale;
/// `growth_interval` good steps in a row double it. State lives in tensors on the device.
pub struct LossScaler {
    scale: Tensor,
    growth_tracker: Tensor,
    pub growth_factor: f64,
    pub backoff_factor: f64,
    pub growth_interval: i64,
}

impl LossScaler {
    /// GradScaler's defaults: 2^16, ×2 every 2000 good steps, ×0.5 on an overflow.
    pub fn new(device: Device) -> LossScaler {
        LossScaler::with(device, 65536.0, 2000)
    }

    pub fn with(device: Device, init_scale: f64, growth_interval: i64) -> LossScaler {
        LossScaler {
            scale: Tensor::full([1], init_scale, (Kind::Float, device)),
            growth_tracker: Tensor::zeros([1], (Kind::Int, device)),
            growth_factor: 2.0,
            backoff_factor: 0.5,
            growth_interval,
        }
    }

    /// The loss to call `backward` on.
    pub fn scale_loss(&self, loss: &Tensor) -> Tensor {
        loss * &self.scale
    }

    /// Divide `grads` by the scale in place; returns `found_inf` (a 1-element f32 tensor on
    /// the device, 1.0 when any gradient had an inf or NaN).
    pub fn unscale(&self, grads: &[&Tensor]) -> Result<Tensor, tch::TchError> {
        let found_inf = self.scale.zeros_like();
        let inv = self.scale.reciprocal();
        if grads.is_empty() {
            return Ok(found_inf);
        }
        let ptrs = raw(grads);
        checked(
            "_amp_foreach_non_finite_check_and_unscale_",
            |err, cap| unsafe {
                // SAFETY: every pointer is a live tensor borrowed for the call.
                cg_amp_unscale(
                    ptrs.as_ptr(),
                    ptrs.len(),
                    found_inf.as_ptr() as *const c_void,
                    inv.as_ptr() as *const c_void,
                    err,
                    cap,
                )
            },
        )?;
        Ok(found_inf)
    }

    /// Back off after an overflow, or count a good step and grow (libtorch's
    /// `_amp_update_scale_`, on the device).
    pub fn update(&mut self, found_inf: &Tensor) {
        let _ = self.scale.internal_amp_update_scale_(
            &self.growth_tracker,
            found_inf,
            self.growth_factor,
            self.backoff_factor,
            self.growth_interval,
        );
    }

    /// The current scale (a host read: for logs and tests, not every step).
    pub fn scale(&self) -> f64 {
        self.scale.double_value(&[0])
    }
}
