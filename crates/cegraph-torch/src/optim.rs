//! AdamW on libtorch's fused kernel (`_fused_adamw_`: one pass per parameter over weights,
//! gradients and both moments, the update `torch.optim.AdamW(fused=True)` makes), gradient
//! clipping by global norm, and fp16 skip-on-overflow — all on the device, so a training step
//! never waits for the host (tch's `clip_grad_norm` reads the norm back every step).

use std::ffi::{c_char, c_int, c_void};

use tch::nn::VarStore;
use tch::{Kind, Tensor};

use crate::amp::{checked, raw};

unsafe extern "C" {
    fn cg_fused_adamw(
        params: *const *const c_void,
        grads: *const *const c_void,
        exp_avgs: *const *const c_void,
        exp_avg_sqs: *const *const c_void,
        steps: *const *const c_void,
        n: usize,
        lr: f64,
        beta1: f64,
        beta2: f64,
        weight_decay: f64,
        eps: f64,
        found_inf: *const c_void,
        err: *mut c_char,
        cap: usize,
    ) -> c_int;
    fn cg_grad_set_to_none(param: *const c_void, err: *mut c_char, cap: usize) -> c_int;
}

/// One trainable tensor and its AdamW state.
struct Slot {
    param: Tensor,
    exp_avg: Tensor,
    exp_avg_sq: Tensor,
    /// Steps taken (f32 scalar on the device, as the fused kernel wants).
    step: Tensor,
    weight_decay: f64,
}

/// AdamW with decoupled weight decay per VarStore group.
pub struct FusedAdamW {
    slots: Vec<Slot>,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
}

impl FusedAdamW {
    /// Every trainable variable of `vs`, in creation order; `weight_decay(group)` gives its
    /// group's decay.
    pub fn new(
        vs: &VarStore,
        beta1: f64,
        beta2: f64,
        eps: f64,
        weight_decay: impl Fn(usize) -> f64,
    ) -> FusedAdamW {
        let vars = vs.variables_.lock().expect("var store lock");
        let slots = vars
            .trainable_variables
            .iter()
            .map(|v| Slot {
                param: v.tensor.shallow_clone(),
                exp_avg: v.tensor.zeros_like().detach(),
                exp_avg_sq: v.tensor.zeros_like().detach(),
                step: Tensor::zeros([], (Kind::Float, v.tensor.device())),
                weight_decay: weight_decay(v.group),
            })
            .collect();
        FusedAdamW {
            slots,
            beta1,
            beta2,
            eps,
        }
    }

    /// The defined gradients (a parameter no loss reached has none, and is left alone).
    pub fn grads(&self) -> Vec<Tensor> {
        self.slots
            .iter()
            .map(|s| s.param.grad())
            .filter(Tensor::defined)
            .collect()
    }

    /// Scale the gradients so their global L2 norm is at most `max_norm` (as
    /// `torch.nn.utils.clip_grad_norm_`, without reading the norm back).
    pub fn clip_grad_norm(&self, max_norm: f64) {
        let grads = self.grads();
        if grads.is_empty() {
            return;
        }
        tch::no_grad(|| {
            let norms: Vec<Tensor> = grads.iter().map(|g| g.norm()).collect();
            let total = Tensor::stack(&norms, 0).norm();
            let coef = (max_norm / (total + 1e-6)).clamp_max(1.0);
            for g in &grads {
                let mut g = g.shallow_clone();
                let _ = g.g_mul_(&coef);
            }
        });
    }

    /// One AdamW step at `lr` on every parameter with a gradient. With `found_inf` (fp16:
    /// from [`crate::amp::LossScaler::unscale`]) set to 1, the kernel leaves weights and
    /// moments untouched and the step count is given back.
    pub fn step(&mut self, lr: f64, found_inf: Option<&Tensor>) -> Result<(), tch::TchError> {
        let mut by_decay: Vec<(f64, Vec<usize>)> = Vec::new();
        for (i, s) in self.slots.iter().enumerate() {
            if !s.param.grad().defined() {
                continue;
            }
            match by_decay.iter_mut().find(|(wd, _)| *wd == s.weight_decay) {
                Some((_, v)) => v.push(i),
                None => by_decay.push((s.weight_decay, vec![i])),
            }
        }
        for (wd, idx) in by_decay {
            let slots: Vec<&Slot> = idx.iter().map(|&i| &self.slots[i]).collect();
            tch::no_grad(|| {
                for s in &slots {
                    let mut step = s.step.shallow_clone();
                    let _ = step.g_add_scalar_(1.0);
                }
            });
            let grads: Vec<Tensor> = slots.iter().map(|s| s.param.grad()).collect();
            let params = raw(&slots.iter().map(|s| &s.param).collect::<Vec<_>>());
            let grads = raw(&grads.iter().collect::<Vec<_>>());
            let m = raw(&slots.iter().map(|s| &s.exp_avg).collect::<Vec<_>>());
            let v = raw(&slots.iter().map(|s| &s.exp_avg_sq).collect::<Vec<_>>());
            let steps = raw(&slots.iter().map(|s| &s.step).collect::<Vec<_>>());
            let inf = found_inf.map_or(std::ptr::null(), |t| t.as_ptr() as *const c_void);
            checked("_fused_adamw_", |err, cap| unsafe {
                // SAFETY: every pointer is a live tensor of `self` or a local, for the call.
                cg_fused_adamw(
                    params.as_ptr(),
                    grads.as_ptr(),
                    m.as_ptr(),
                    v.as_ptr(),
                    steps.as_ptr(),
                    idx.len(),
                    lr,
                    self.beta1,
                    self.beta2,
                    wd,
                    self.eps,
                    inf,
                    err,
                    cap,
                )
            })?;
            if let Some(inf) = found_inf {
                // A skipped step does not count (what torch.optim does after a fused step).
                tch::no_grad(|| {
                    for s in &slots {
                        let mut step = s.step.shallow_clone();
                        let _ = step.g_sub_(&inf.view([]));
                    }
                });
            }
        }
        Ok(())
    }

    /// Drop every gradient (`zero_grad(set_to_none=True)`): the next backward allocates fresh
    /// ones, and a parameter it does not reach is skipped by the next step.
    pub fn zero_grad(&self) -> Result<(), tch::TchError> {
        for s in &self.slots {
            let p = s.param.as_ptr() as *const c_void;
            checked("zero_grad", |err, cap| unsafe {
                // SAFETY: a live tensor of `self`.
                cg_grad_set_to_none(p, err, cap)
            })?;
        }
        Ok(())
    }

    /// The parameters' step counts (host read; tests).
    pub fn steps_taken(&self) -> Vec<f64> {
        self.slots
            .iter()
            .map(|s| s.step.double_value(&[]))
            .collect()
    }
}
