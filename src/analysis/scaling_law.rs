//! The baseline's loss-versus-compute law L(C) = E + A·C^(−α), fitted robustly, and the
//! `scaling_law` CEG read off it.
//!
//! Fitting: for a fixed α the model is linear in (E, B) with x = (C / C_ref)^(−α), so the
//! fit profiles α out (variable projection): a log-spaced grid of α values gives the starting
//! points, each local minimum on the grid is refined by golden-section search, and the best
//! refined α wins. Stage one is plain least squares; its residuals set the Huber threshold
//! (1.345 × robust sigma from the MAD) for stage two, solved by iteratively reweighted least
//! squares, so a few bad evals cannot drag the fit. E is kept ≥ 0 and B > 0. C_ref (the
//! geometric mean of the fitted compute) keeps the numbers well scaled.
//!
//! Reading a CEG off the law: the variant's final loss is inverted *relative to its own
//! scale's baseline* — the baseline's measured final (compute, loss) is the anchor and the law
//! only supplies the shape between the two losses — so a baseline that happens to sit above or
//! below the pooled law at one scale does not show up as a gain (flash, identical maths, reads
//! 1). A fit whose irreducible loss sits at its bound, whose exponent sits at the edge of its
//! range, or whose RMSE exceeds `max_rmse` is reported but not used ([`ScalingLawFit::problems`]).

use serde::{Deserialize, Serialize};

use super::curve::Curve;
use super::error::Refusal;
use super::smoothing::MonotoneFit;

/// L(C) = irreducible + coefficient · C^(−exponent), C in FLOPs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PowerLaw {
    /// E: the loss approached with unlimited compute.
    pub irreducible: f64,
    /// A, in FLOP units (can be large; loss is evaluated in log space).
    pub coefficient: f64,
    /// α.
    pub exponent: f64,
}

impl PowerLaw {
    pub fn loss(&self, compute: f64) -> f64 {
        self.irreducible + (self.coefficient.ln() - self.exponent * compute.ln()).exp()
    }

    /// The compute at which the law reaches `loss`, or None at or below E.
    pub fn compute_for_loss(&self, loss: f64) -> Option<f64> {
        let excess = loss - self.irreducible;
        (excess > 0.0).then(|| ((self.coefficient.ln() - excess.ln()) / self.exponent).exp())
    }
}

/// Knobs of the fit and of the extrapolation guard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ScalingLawOptions {
    /// Fraction of each baseline run's first eval points left out of the fit: early training
    /// (warm-up, the first drop from ln(vocab)) does not follow the law.
    pub skip_initial_fraction: f64,
    /// Refuse a CEG whose baseline compute falls outside [min / f, max · f] of the fitted
    /// compute range.
    pub max_extrapolation_factor: f64,
    pub exponent_min: f64,
    pub exponent_max: f64,
    /// Number of grid points (starting points) for α.
    pub exponent_grid_points: usize,
    /// Huber threshold in units of the robust residual sigma.
    pub huber_k: f64,
    /// A fit with a larger RMSE (nats) is too poor to read CEGs from.
    pub max_rmse: f64,
}

impl Default for ScalingLawOptions {
    fn default() -> Self {
        ScalingLawOptions {
            skip_initial_fraction: 0.1,
            max_extrapolation_factor: 4.0,
            exponent_min: 0.005,
            exponent_max: 3.0,
            exponent_grid_points: 40,
            huber_k: 1.345,
            max_rmse: 0.05,
        }
    }
}

/// One (compute, loss) observation the law is fitted to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FitPoint {
    pub scale: String,
    pub seed: u64,
    pub flops: f64,
    pub loss: f64,
}

/// A fitted point's residual (observed − fitted).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FitResidual {
    pub scale: String,
    pub seed: u64,
    pub flops: f64,
    pub loss: f64,
    pub residual: f64,
}

/// The fitted law with what a reader needs to judge it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScalingLawFit {
    pub law: PowerLaw,
    pub fitted_min_compute: f64,
    pub fitted_max_compute: f64,
    pub points: usize,
    /// Huber threshold used in stage two (loss units).
    pub huber_delta: f64,
    pub rmse: f64,
    pub max_abs_residual: f64,
    /// α grid points tried, and the local minima refined from them.
    pub starting_points: usize,
    pub refined_exponents: Vec<f64>,
    /// True when the best α lies at the edge of the searched range: treat the fit with care.
    pub exponent_at_search_boundary: bool,
    /// True when E was held at its lower bound 0: the data do not constrain the asymptote.
    #[serde(default)]
    pub irreducible_at_bound: bool,
    pub residuals: Vec<FitResidual>,
}

/// The fit's observations: every baseline eval with positive compute, minus the first
/// `skip_initial_fraction` of each run's evals.
pub fn fit_points_from_curves(curves: &[&Curve], skip_initial_fraction: f64) -> Vec<FitPoint> {
    let mut points = Vec::new();
    for curve in curves {
        let skip = (skip_initial_fraction.clamp(0.0, 0.9) * curve.points.len() as f64).ceil();
        for point in curve.points.iter().skip(skip as usize) {
            if point.flops > 0.0 {
                points.push(FitPoint {
                    scale: curve.scale.clone(),
                    seed: curve.seed,
                    flops: point.flops,
                    loss: point.val_loss,
                });
            }
        }
    }
    points
}

/// Result of the (E, B) solve at one α.
struct LinearSolve {
    irreducible: f64,
    scaled_coefficient: f64,
    objective: f64,
}

fn huber(residual: f64, delta: f64) -> f64 {
    let r = residual.abs();
    if r <= delta {
        0.5 * r * r
    } else {
        delta * (r - 0.5 * delta)
    }
}

/// Best (E ≥ 0, B > 0) at exponent α, by IRLS when `delta` is finite. None when no
/// decreasing law fits at this α (B ≤ 0) or the system is degenerate.
fn solve_at_exponent(u: &[f64], y: &[f64], alpha: f64, delta: f64) -> Option<LinearSolve> {
    let x: Vec<f64> = u.iter().map(|&ui| (-alpha * ui).exp()).collect();
    let mut weights = vec![1.0; y.len()];
    let mut solution = (0.0, 0.0);
    let iterations = if delta.is_finite() { 30 } else { 1 };
    for _ in 0..iterations {
        let (mut sw, mut sx, mut sy, mut sxx, mut sxy) = (0.0, 0.0, 0.0, 0.0, 0.0);
        for ((&xi, &yi), &wi) in x.iter().zip(y).zip(&weights) {
            sw += wi;
            sx += wi * xi;
            sy += wi * yi;
            sxx += wi * xi * xi;
            sxy += wi * xi * yi;
        }
        let det = sw * sxx - sx * sx;
        if det.is_nan() || det <= 1e-300 * sw * sxx {
            return None;
        }
        let mut b = (sw * sxy - sx * sy) / det;
        let mut e = (sy - b * sx) / sw;
        if e < 0.0 {
            e = 0.0;
            b = sxy / sxx;
        }
        if b.is_nan() || b <= 0.0 || b.is_infinite() {
            return None;
        }
        let previous = solution;
        solution = (e, b);
        if !delta.is_finite() {
            break;
        }
        for ((wi, &xi), &yi) in weights.iter_mut().zip(&x).zip(y) {
            let r = (yi - e - b * xi).abs();
            *wi = if r <= delta { 1.0 } else { delta / r };
        }
        let change = (e - previous.0).abs() + (b - previous.1).abs();
        if change <= 1e-13 * (e.abs() + b.abs()) {
            break;
        }
    }
    let (e, b) = solution;
    let objective = x
        .iter()
        .zip(y)
        .map(|(&xi, &yi)| {
            let r = yi - e - b * xi;
            if delta.is_finite() {
                huber(r, delta)
            } else {
                0.5 * r * r
            }
        })
        .sum();
    Some(LinearSolve {
        irreducible: e,
        scaled_coefficient: b,
        objective,
    })
}

fn profile(u: &[f64], y: &[f64], log_alpha: f64, delta: f64) -> f64 {
    solve_at_exponent(u, y, log_alpha.exp(), delta).map_or(f64::INFINITY, |s| s.objective)
}

/// Golden-section minimisation of the profile over ln α in [lo, hi].
fn golden_section(u: &[f64], y: &[f64], mut lo: f64, mut hi: f64, delta: f64) -> f64 {
    let ratio = (5f64.sqrt() - 1.0) / 2.0;
    let mut a = hi - ratio * (hi - lo);
    let mut b = lo + ratio * (hi - lo);
    let mut fa = profile(u, y, a, delta);
    let mut fb = profile(u, y, b, delta);
    for _ in 0..80 {
        if fa <= fb {
            hi = b;
            b = a;
            fb = fa;
            a = hi - ratio * (hi - lo);
            fa = profile(u, y, a, delta);
        } else {
            lo = a;
            a = b;
            fa = fb;
            b = lo + ratio * (hi - lo);
            fb = profile(u, y, b, delta);
        }
        if hi - lo < 1e-9 {
            break;
        }
    }
    if fa <= fb { a } else { b }
}

/// Grid over ln α, then golden-section refinement of up to three grid minima.
/// Returns (best ln α, refined candidates).
fn search_exponent(
    u: &[f64],
    y: &[f64],
    delta: f64,
    opts: &ScalingLawOptions,
) -> Option<(f64, Vec<f64>)> {
    let n = opts.exponent_grid_points.max(3);
    let (lo, hi) = (opts.exponent_min.ln(), opts.exponent_max.ln());
    let grid: Vec<f64> = (0..n)
        .map(|j| lo + (hi - lo) * j as f64 / (n - 1) as f64)
        .collect();
    let values: Vec<f64> = grid.iter().map(|&g| profile(u, y, g, delta)).collect();
    let mut minima: Vec<usize> = (0..n)
        .filter(|&j| {
            values[j].is_finite()
                && (j == 0 || values[j] <= values[j - 1])
                && (j == n - 1 || values[j] <= values[j + 1])
        })
        .collect();
    minima.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    minima.truncate(3);
    if minima.is_empty() {
        return None;
    }
    let refined: Vec<f64> = minima
        .iter()
        .map(|&j| {
            golden_section(
                u,
                y,
                grid[j.saturating_sub(1)],
                grid[(j + 1).min(n - 1)],
                delta,
            )
        })
        .collect();
    let best = refined
        .iter()
        .copied()
        .min_by(|&a, &b| profile(u, y, a, delta).total_cmp(&profile(u, y, b, delta)))?;
    Some((best, refined))
}

/// Fits L(C) = E + A·C^(−α) to the points; refuses with the reason when it cannot.
pub fn fit_scaling_law(
    points: &[FitPoint],
    opts: &ScalingLawOptions,
) -> Result<ScalingLawFit, Refusal> {
    let usable: Vec<&FitPoint> = points
        .iter()
        .filter(|p| p.flops > 0.0 && p.flops.is_finite() && p.loss.is_finite())
        .collect();
    if usable.len() < 4 {
        return Err(Refusal::TooFewPoints {
            needed: 4,
            got: usable.len(),
        });
    }
    let log_c: Vec<f64> = usable.iter().map(|p| p.flops.ln()).collect();
    let log_reference = log_c.iter().sum::<f64>() / log_c.len() as f64;
    let u: Vec<f64> = log_c.iter().map(|l| l - log_reference).collect();
    let y: Vec<f64> = usable.iter().map(|p| p.loss).collect();
    if u.iter().all(|&ui| (ui - u[0]).abs() < 1e-12) {
        return Err(Refusal::FitFailed {
            reason: "all fitted points have the same compute".into(),
        });
    }

    let no_decreasing_law = || Refusal::FitFailed {
        reason:
            "no decreasing law E + A·C^(−α) fits the baseline (loss does not fall with compute)"
                .into(),
    };
    // Stage one: least squares. Its residuals size the Huber threshold for stage two, which
    // is re-sized from the robust fit's own residuals until it settles: an outlier inflates
    // the least-squares residuals, so the first threshold is too generous.
    let (mut log_alpha, mut refined) =
        search_exponent(&u, &y, f64::INFINITY, opts).ok_or_else(no_decreasing_law)?;
    let mut delta = f64::INFINITY;
    for _round in 0..4 {
        let current =
            solve_at_exponent(&u, &y, log_alpha.exp(), delta).ok_or_else(no_decreasing_law)?;
        let mut abs_residuals: Vec<f64> = u
            .iter()
            .zip(&y)
            .map(|(&ui, &yi)| {
                (yi - current.irreducible
                    - current.scaled_coefficient * (-log_alpha.exp() * ui).exp())
                .abs()
            })
            .collect();
        abs_residuals.sort_by(f64::total_cmp);
        let robust_sigma = 1.4826 * abs_residuals[abs_residuals.len() / 2];
        // Floor: residuals under a micro-nat are noise-free data; treat them quadratically.
        let next_delta = (opts.huber_k * robust_sigma).max(1e-6);
        let settled = delta.is_finite() && (next_delta - delta).abs() <= 0.01 * delta;
        let first_robust_round = !delta.is_finite();
        delta = next_delta;
        if first_robust_round {
            (log_alpha, refined) =
                search_exponent(&u, &y, delta, opts).ok_or_else(no_decreasing_law)?;
        } else {
            // Later rounds only nudge the threshold: refine around the current exponent.
            let (lo, hi) = (opts.exponent_min.ln(), opts.exponent_max.ln());
            let step = 2.0 * (hi - lo) / (opts.exponent_grid_points.max(3) - 1) as f64;
            log_alpha = golden_section(
                &u,
                &y,
                (log_alpha - step).max(lo),
                (log_alpha + step).min(hi),
                delta,
            );
        }
        if settled {
            break;
        }
    }
    let alpha = log_alpha.exp();
    let solve = solve_at_exponent(&u, &y, alpha, delta).ok_or_else(no_decreasing_law)?;
    // A = B · C_ref^α, kept in log space until the end.
    let coefficient = (solve.scaled_coefficient.ln() + alpha * log_reference).exp();
    if !coefficient.is_finite() {
        return Err(Refusal::FitFailed {
            reason: format!("fitted coefficient overflows (α = {alpha:.3})"),
        });
    }
    let law = PowerLaw {
        irreducible: solve.irreducible,
        coefficient,
        exponent: alpha,
    };
    let residuals: Vec<FitResidual> = usable
        .iter()
        .zip(&u)
        .map(|(p, &ui)| FitResidual {
            scale: p.scale.clone(),
            seed: p.seed,
            flops: p.flops,
            loss: p.loss,
            residual: p.loss - solve.irreducible - solve.scaled_coefficient * (-alpha * ui).exp(),
        })
        .collect();
    let rmse = (residuals
        .iter()
        .map(|r| r.residual * r.residual)
        .sum::<f64>()
        / residuals.len() as f64)
        .sqrt();
    let max_abs_residual = residuals
        .iter()
        .map(|r| r.residual.abs())
        .fold(0.0, f64::max);
    let boundary_tolerance = 1e-6;
    Ok(ScalingLawFit {
        law,
        fitted_min_compute: usable.iter().map(|p| p.flops).fold(f64::INFINITY, f64::min),
        fitted_max_compute: usable.iter().map(|p| p.flops).fold(0.0, f64::max),
        points: usable.len(),
        huber_delta: delta,
        rmse,
        max_abs_residual,
        starting_points: opts.exponent_grid_points.max(3),
        refined_exponents: refined.iter().map(|l| l.exp()).collect(),
        exponent_at_search_boundary: (log_alpha - opts.exponent_min.ln()).abs()
            < boundary_tolerance
            || (log_alpha - opts.exponent_max.ln()).abs() < boundary_tolerance,
        // Within a micro-nat of 0 counts as at the bound: the asymptote is not constrained.
        irreducible_at_bound: solve.irreducible <= 1e-6,
        residuals,
    })
}

impl ScalingLawFit {
    /// Why this fit is too poor to read CEGs from (empty: usable).
    pub fn problems(&self, max_rmse: f64) -> Vec<String> {
        let mut problems = Vec::new();
        if self.irreducible_at_bound {
            problems.push(
                "the irreducible loss E sits at its bound 0 (the data do not constrain it)"
                    .to_string(),
            );
        }
        if self.exponent_at_search_boundary {
            problems.push(format!(
                "the exponent α = {:.4} sits at the edge of its search range",
                self.law.exponent
            ));
        }
        if self.rmse > max_rmse {
            problems.push(format!(
                "RMSE {:.4} nats exceeds the allowed {max_rmse} (largest residual {:.4})",
                self.rmse, self.max_abs_residual
            ));
        }
        problems
    }

    /// The baseline compute the fitted law needs to reach `loss`, refusing beyond the
    /// allowed extrapolation.
    pub fn baseline_compute_for_loss(
        &self,
        loss: f64,
        max_extrapolation_factor: f64,
    ) -> Result<f64, Refusal> {
        let required = self
            .law
            .compute_for_loss(loss)
            .ok_or(Refusal::BelowIrreducibleLoss {
                loss,
                irreducible: self.law.irreducible,
            })?;
        self.check_extrapolation(required, max_extrapolation_factor)?;
        Ok(required)
    }

    /// Refuses a baseline compute further outside the fitted range than the factor allows.
    pub fn check_extrapolation(
        &self,
        required: f64,
        max_extrapolation_factor: f64,
    ) -> Result<(), Refusal> {
        let factor = max_extrapolation_factor.max(1.0);
        if !(required >= self.fitted_min_compute / factor
            && required <= self.fitted_max_compute * factor)
        {
            return Err(Refusal::ExtrapolationTooFar {
                required,
                fitted_min: self.fitted_min_compute,
                fitted_max: self.fitted_max_compute,
                max_factor: factor,
            });
        }
        Ok(())
    }
}

/// A `scaling_law` CEG and the quantities it came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScalingLawEstimate {
    pub ceg: f64,
    /// The variant's final loss from its monotone fit.
    pub variant_loss: f64,
    /// Where that loss sits (centre of the fit's last block), FLOPs.
    pub variant_compute: f64,
    /// The anchor: the same scale's baseline final loss and its compute.
    #[serde(default)]
    pub baseline_loss: f64,
    #[serde(default)]
    pub baseline_final_compute: f64,
    /// The baseline compute needed for the variant's loss: the anchor moved along the law.
    pub baseline_compute: f64,
}

/// CEG = C_baseline(L_variant) / C_variant, with C_baseline(L_variant) =
/// C_baseline_final · C_law(L_variant) / C_law(L_baseline_final): the variant is inverted
/// relative to its own scale's baseline, not to the law's prediction there.
pub fn scaling_law_ceg(
    fit: &ScalingLawFit,
    baseline: &MonotoneFit,
    variant: &MonotoneFit,
    max_extrapolation_factor: f64,
) -> Result<ScalingLawEstimate, Refusal> {
    let (variant_loss, variant_compute) = (variant.final_loss(), variant.final_compute());
    let (baseline_loss, baseline_final_compute) = (baseline.final_loss(), baseline.final_compute());
    let law_compute = |loss: f64| {
        fit.law
            .compute_for_loss(loss)
            .ok_or(Refusal::BelowIrreducibleLoss {
                loss,
                irreducible: fit.law.irreducible,
            })
    };
    let shift = law_compute(variant_loss)? / law_compute(baseline_loss)?;
    let required = baseline_final_compute * shift;
    fit.check_extrapolation(required, max_extrapolation_factor)?;
    Ok(ScalingLawEstimate {
        ceg: required / variant_compute,
        variant_loss,
        variant_compute,
        baseline_loss,
        baseline_final_compute,
        baseline_compute: required,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn points_from(law: &PowerLaw, computes: &[f64]) -> Vec<FitPoint> {
        computes
            .iter()
            .map(|&c| FitPoint {
                scale: "s".into(),
                seed: 0,
                flops: c,
                loss: law.loss(c),
            })
            .collect()
    }

    #[test]
    fn recovers_exact_law_parameters() {
        let truth = PowerLaw {
            irreducible: 2.0,
            coefficient: 50.0,
            exponent: 0.1,
        };
        let computes: Vec<f64> = (1..=40).map(|k| 1e15 * k as f64).collect();
        let fit = fit_scaling_law(
            &points_from(&truth, &computes),
            &ScalingLawOptions::default(),
        )
        .unwrap();
        assert!((fit.law.exponent - 0.1).abs() < 1e-4, "{:?}", fit.law);
        assert!((fit.law.irreducible - 2.0).abs() < 1e-3, "{:?}", fit.law);
        assert!(fit.rmse < 1e-6);
        assert!(!fit.exponent_at_search_boundary);
    }

    #[test]
    fn one_outlier_does_not_move_the_robust_fit() {
        let truth = PowerLaw {
            irreducible: 2.0,
            coefficient: 50.0,
            exponent: 0.1,
        };
        let computes: Vec<f64> = (1..=40).map(|k| 1e15 * k as f64).collect();
        let mut points = points_from(&truth, &computes);
        points[30].loss += 0.5; // a corrupted eval
        let fit = fit_scaling_law(&points, &ScalingLawOptions::default()).unwrap();
        let c = truth.compute_for_loss(truth.loss(8e16)).unwrap();
        let fitted = fit.law.compute_for_loss(truth.loss(8e16)).unwrap();
        assert!(
            (fitted / c - 1.0).abs() < 0.02,
            "fitted {fitted:e} vs {c:e}"
        );
    }

    #[test]
    fn refuses_far_extrapolation_and_losses_below_e() {
        let truth = PowerLaw {
            irreducible: 2.0,
            coefficient: 50.0,
            exponent: 0.1,
        };
        let computes: Vec<f64> = (1..=20).map(|k| 1e15 * k as f64).collect();
        let fit = fit_scaling_law(
            &points_from(&truth, &computes),
            &ScalingLawOptions::default(),
        )
        .unwrap();
        assert!(matches!(
            fit.baseline_compute_for_loss(truth.loss(1e18), 4.0),
            Err(Refusal::ExtrapolationTooFar { .. })
        ));
        assert!(matches!(
            fit.baseline_compute_for_loss(1.9, 4.0),
            Err(Refusal::BelowIrreducibleLoss { .. })
        ));
        assert!(fit.baseline_compute_for_loss(truth.loss(4e16), 4.0).is_ok());
    }

    #[test]
    fn flat_or_rising_loss_is_refused() {
        let points: Vec<FitPoint> = (1..=10)
            .map(|k| FitPoint {
                scale: "s".into(),
                seed: 0,
                flops: 1e15 * k as f64,
                loss: 3.0 + 0.01 * k as f64,
            })
            .collect();
        assert!(matches!(
            fit_scaling_law(&points, &ScalingLawOptions::default()),
            Err(Refusal::FitFailed { .. })
        ));
    }
}
