//! Intervals valid at the number of seeds used: Student-t intervals from paired per-seed log
//! CEGs (statrs for the t distribution).
//!
//! A cell's seeds are paired (seed k of the variant shares init and data order with seed k of
//! the baseline), so each seed gives one log CEG, ln C_baseline − ln C_variant at equal loss.
//! Their standard error sd / √n, with n − 1 degrees of freedom, sets the width of the cell's
//! interval around its ln CEG ([`super::cell`] says which estimate that is). Below [`MIN_SEEDS_FOR_INTERVAL`] seeds no interval is given: with two seeds the
//! t quantile is 12.7 and the sd itself is a guess, so the cell is only *indicative*.

use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, StudentsT};

/// Confidence level of every interval in the table.
pub const CONFIDENCE_LEVEL: f64 = 0.95;

/// Fewest paired seeds that get an interval (and a verdict stronger than "indicative").
pub const MIN_SEEDS_FOR_INTERVAL: usize = 3;

/// A two-sided confidence interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    pub low: f64,
    pub high: f64,
    pub level: f64,
}

impl Interval {
    pub fn contains(&self, value: f64) -> bool {
        self.low <= value && value <= self.high
    }

    /// The interval mapped through exp (log CEG → CEG).
    pub fn exp(&self) -> Interval {
        Interval {
            low: self.low.exp(),
            high: self.high.exp(),
            level: self.level,
        }
    }
}

fn students_t(degrees_of_freedom: f64) -> Option<StudentsT> {
    (degrees_of_freedom.is_finite() && degrees_of_freedom > 0.0)
        .then(|| StudentsT::new(0.0, 1.0, degrees_of_freedom).ok())
        .flatten()
}

/// The two-sided critical value t_{(1+level)/2, df}; infinite for no degrees of freedom.
pub fn t_critical(level: f64, degrees_of_freedom: f64) -> f64 {
    students_t(degrees_of_freedom).map_or(f64::INFINITY, |t| t.inverse_cdf(0.5 + level / 2.0))
}

/// Upper tail P(T > t) with the given degrees of freedom.
pub fn t_upper_tail(t: f64, degrees_of_freedom: f64) -> f64 {
    students_t(degrees_of_freedom).map_or(1.0, |d| 1.0 - d.cdf(t))
}

/// Mean, standard error and degrees of freedom of an estimate in log units.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LogEstimate {
    pub mean: f64,
    pub standard_error: f64,
    pub degrees_of_freedom: f64,
}

impl LogEstimate {
    /// From per-seed values; None below two values or with a non-finite one.
    pub fn from_seeds(values: &[f64]) -> Option<LogEstimate> {
        let n = values.len();
        if n < 2 || values.iter().any(|v| !v.is_finite()) {
            return None;
        }
        let mean = values.iter().sum::<f64>() / n as f64;
        let variance = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
        Some(LogEstimate {
            mean,
            standard_error: (variance / n as f64).sqrt(),
            degrees_of_freedom: (n - 1) as f64,
        })
    }

    /// mean ± t · se, in log units.
    pub fn interval(&self, level: f64) -> Interval {
        let half = t_critical(level, self.degrees_of_freedom) * self.standard_error;
        Interval {
            low: self.mean - half,
            high: self.mean + half,
            level,
        }
    }

    /// Two-sided p-value of "the true value lies within ±tolerance": small when the mean
    /// clears the band by many standard errors. Exactly below 1 − level when
    /// [`Self::interval`] lies wholly outside the band.
    pub fn p_value_outside_band(&self, tolerance: f64) -> f64 {
        let excess = self.mean.abs() - tolerance;
        if self.standard_error == 0.0 {
            return if excess > 0.0 { 0.0 } else { 1.0 };
        }
        (2.0 * t_upper_tail(excess / self.standard_error, self.degrees_of_freedom)).min(1.0)
    }
}

/// Holm's step-down adjustment of p-values (family-wise error control), in input order.
pub fn holm_adjust(p_values: &[f64]) -> Vec<f64> {
    let m = p_values.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| p_values[a].total_cmp(&p_values[b]));
    let mut adjusted = vec![1.0; m];
    let mut running: f64 = 0.0;
    for (rank, &index) in order.iter().enumerate() {
        let value = ((m - rank) as f64 * p_values[index]).min(1.0);
        running = running.max(value);
        adjusted[index] = running;
    }
    adjusted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn t_critical_values_match_tables() {
        assert!((t_critical(0.95, 1.0) - 12.706).abs() < 1e-3);
        assert!((t_critical(0.95, 2.0) - 4.303).abs() < 1e-3);
        assert!((t_critical(0.95, 4.0) - 2.776).abs() < 1e-3);
        assert!((t_critical(0.95, 200.0) - 1.972).abs() < 1e-3);
        assert!(t_critical(0.95, 0.0).is_infinite());
    }

    #[test]
    fn interval_and_p_value_agree_at_the_band_edge() {
        let estimate = LogEstimate::from_seeds(&[0.10, 0.12, 0.14]).unwrap();
        let interval = estimate.interval(0.95);
        // The band edge exactly at the interval's low end gives p = 0.05.
        let p = estimate.p_value_outside_band(interval.low);
        assert!((p - 0.05).abs() < 1e-9, "{p}");
        assert!(LogEstimate::from_seeds(&[0.1]).is_none());
    }

    #[test]
    fn holm_is_step_down_and_monotone() {
        let adjusted = holm_adjust(&[0.01, 0.04, 0.03, 0.5]);
        for (got, want) in adjusted.iter().zip([0.04, 0.09, 0.09, 0.5]) {
            assert!((got - want).abs() < 1e-12, "{adjusted:?}");
        }
    }
}
