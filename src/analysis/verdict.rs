//! The one function that turns a cell's estimate into a verdict. The report's sentences and
//! its cell colours both read [`CellVerdict`], so they cannot disagree.
//!
//! With a tolerance τ in ln CEG (default 0.01, i.e. 1% of compute — far above the crossing
//! estimator's interpolation resolution of ~1e-6 on identical curves, and below any gain worth
//! a sentence):
//! - *beats* / *worse*: the interval lies wholly above e^τ / below e^−τ;
//! - *no measurable difference*: the whole interval lies within [e^−τ, e^τ];
//! - *within noise*: neither — the interval reaches past the band on at least one side and
//!   does not clear it;
//! - *indicative*: fewer than three paired seeds (or no interval for another reason): a
//!   point estimate only, no claim.

use serde::{Deserialize, Serialize};

use super::interval::{CONFIDENCE_LEVEL, Interval, MIN_SEEDS_FOR_INTERVAL};

/// Default tolerance in ln CEG below which a difference is not measurable.
pub const DEFAULT_TOLERANCE: f64 = 0.01;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CellVerdict {
    /// The baseline against itself.
    Reference,
    /// The estimator refused (reason in the row).
    Refused,
    /// A point estimate without a valid interval: fewer than three paired seeds.
    Indicative,
    /// The interval lies within the tolerance band around 1.
    NoMeasurableDifference,
    /// The interval overlaps the tolerance band but is not inside it.
    WithinNoise,
    /// The interval clears 1 upwards by more than the tolerance.
    Beats,
    /// The interval clears 1 downwards by more than the tolerance.
    Worse,
}

impl CellVerdict {
    /// Short phrase for tables and the CSV.
    pub fn phrase(self) -> &'static str {
        match self {
            CellVerdict::Reference => "reference",
            CellVerdict::Refused => "refused",
            CellVerdict::Indicative => "indicative",
            CellVerdict::NoMeasurableDifference => "no measurable difference",
            CellVerdict::WithinNoise => "within noise",
            CellVerdict::Beats => "beats",
            CellVerdict::Worse => "worse",
        }
    }

    /// True for the two calls that claim a difference.
    pub fn is_claim(self) -> bool {
        matches!(self, CellVerdict::Beats | CellVerdict::Worse)
    }
}

/// The verdict on one cell: its CEG, its interval (CEG units), its paired seed count.
pub fn cell_verdict(
    ceg: Option<f64>,
    interval: Option<Interval>,
    paired_seeds: usize,
    tolerance: f64,
) -> CellVerdict {
    if ceg.is_none() {
        return CellVerdict::Refused;
    }
    let Some(interval) = interval.filter(|_| paired_seeds >= MIN_SEEDS_FOR_INTERVAL) else {
        return CellVerdict::Indicative;
    };
    let (low, high) = (interval.low.ln(), interval.high.ln());
    if low > tolerance {
        CellVerdict::Beats
    } else if high < -tolerance {
        CellVerdict::Worse
    } else if low >= -tolerance && high <= tolerance {
        CellVerdict::NoMeasurableDifference
    } else {
        CellVerdict::WithinNoise
    }
}

/// The multiple-comparison summary of one estimator's claims.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HolmSummary {
    pub estimator: String,
    /// Cells tested (variants × scales with an interval).
    pub tested: usize,
    /// Cells called beats or worse.
    pub claims: usize,
    /// Of those, the ones whose Holm-adjusted p-value stays below 1 − level.
    pub claims_surviving: usize,
    /// `variant @ scale` of the claims that do not survive.
    pub not_surviving: Vec<String>,
}

/// Family-wise level the Holm adjustment is read at.
pub fn holm_alpha() -> f64 {
    1.0 - CONFIDENCE_LEVEL
}

#[cfg(test)]
mod tests {
    use super::*;

    fn interval(low: f64, high: f64) -> Option<Interval> {
        Some(Interval {
            low,
            high,
            level: 0.95,
        })
    }

    #[test]
    fn verdict_rules() {
        let v = |low, high, seeds| cell_verdict(Some(1.0), interval(low, high), seeds, 0.01);
        assert_eq!(v(1.05, 1.3, 3), CellVerdict::Beats);
        assert_eq!(v(1.005, 1.3, 3), CellVerdict::WithinNoise);
        assert_eq!(v(0.7, 0.98, 5), CellVerdict::Worse);
        assert_eq!(v(0.995, 1.005, 3), CellVerdict::NoMeasurableDifference);
        assert_eq!(v(0.9, 1.1, 3), CellVerdict::WithinNoise);
        assert_eq!(v(1.05, 1.3, 2), CellVerdict::Indicative);
        assert_eq!(
            cell_verdict(None, interval(1.05, 1.3), 3, 0.01),
            CellVerdict::Refused
        );
    }
}
