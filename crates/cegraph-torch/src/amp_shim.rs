// The C++ of the few libtorch entry points tch 0.24 does not bind: autocast's dtype (CPU and
// CUDA), `_amp_foreach_non_finite_check_and_unscale_`, `_fused_adamw_`, set-to-none of a
// gradient and `pin_memory()` without the deprecated device argument. `build.rs` `include!`s this file, writes [`SOURCE`] out and compiles it against
// the headers of the libtorch it links. It lives in a `.rs` file so that the train kind's
// source fingerprint (which reads this crate's Rust files) covers the C++ too.
//
// Every entry point catches C++ exceptions (unwinding into Rust is undefined) and reports
// them through the caller's error buffer.

pub const SOURCE: &str = r#"
#include <ATen/autocast_mode.h>
#include <ATen/core/grad_mode.h>
#include <ATen/ops/_amp_foreach_non_finite_check_and_unscale.h>
#include <ATen/ops/_fused_adamw.h>
#include <cstring>
#include <exception>
#include <vector>

namespace {
using at::Tensor;

std::vector<Tensor> gather(Tensor *const *ts, size_t n) {
  std::vector<Tensor> v;
  v.reserve(n);
  for (size_t i = 0; i < n; i++) v.push_back(*ts[i]);
  return v;
}

int fail(const char *what, char *err, size_t cap) {
  if (cap > 0) {
    std::strncpy(err, what, cap - 1);
    err[cap - 1] = 0;
  }
  return 1;
}

c10::DeviceType device_type(int cuda) { return cuda ? c10::DeviceType::CUDA : c10::DeviceType::CPU; }
}  // namespace

#define CG_TRY(body)                                  \
  try {                                               \
    body;                                             \
    return 0;                                         \
  } catch (const std::exception &e) {                 \
    return fail(e.what(), err, cap);                  \
  } catch (...) {                                     \
    return fail("unknown C++ exception", err, cap);   \
  }

extern "C" {
// precision: 0 off, 1 bf16, 2 fp16. Returns the previous state in the same code.
int cg_autocast_set(int cuda, int precision) {
  auto dev = device_type(cuda);
  int prev = 0;
  if (at::autocast::is_autocast_enabled(dev)) {
    prev = at::autocast::get_autocast_dtype(dev) == at::kHalf ? 2 : 1;
  }
  if (precision != 0) {
    at::autocast::set_autocast_dtype(dev, precision == 2 ? at::kHalf : at::kBFloat16);
  }
  at::autocast::set_autocast_enabled(dev, precision != 0);
  return prev;
}

int cg_autocast_enter() { return at::autocast::increment_nesting(); }

void cg_autocast_exit() {
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
}

int cg_amp_unscale(Tensor *const *grads, size_t n, Tensor *found_inf, Tensor *inv_scale,
                   char *err, size_t cap) {
  CG_TRY({
    at::NoGradGuard no_grad;
    at::_amp_foreach_non_finite_check_and_unscale_(gather(grads, n), *found_inf, *inv_scale);
  })
}

int cg_fused_adamw(Tensor *const *params, Tensor *const *grads, Tensor *const *exp_avgs,
                   Tensor *const *exp_avg_sqs, Tensor *const *steps, size_t n, double lr,
                   double beta1, double beta2, double weight_decay, double eps,
                   Tensor *found_inf, char *err, size_t cap) {
  CG_TRY({
    at::NoGradGuard no_grad;
    std::optional<Tensor> inf;
    if (found_inf) inf = *found_inf;
    at::_fused_adamw_(gather(params, n), gather(grads, n), gather(exp_avgs, n),
                      gather(exp_avg_sqs, n), {}, gather(steps, n), lr, beta1, beta2,
                      weight_decay, eps, false, false, std::nullopt, inf);
  })
}

int cg_grad_set_to_none(Tensor *param, char *err, size_t cap) {
  CG_TRY({ param->mutable_grad().reset(); })
}

// tch binds only `pin_memory(device)`, whose device argument libtorch 2.11 deprecates with a
// warning on every call (one per batch in a node's log).
int cg_pin_memory(Tensor *src, Tensor **out, char *err, size_t cap) {
  CG_TRY({ *out = new Tensor(src->pin_memory()); })
}
}
"#;
