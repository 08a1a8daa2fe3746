//! Log-scaled quantities drawn on linear axes in log10 units. plotters' log coordinates label
//! only powers of ten — one or two ticks when a panel spans less than two decades, so its
//! values cannot be read — while a linear axis in log10 units gets evenly spaced, labelled
//! ticks at any span. The labels print 10^v with enough digits that neighbours differ.

/// log10 bounds of the positive values, each side padded by `factor` (multiplicative) and
/// widened around their middle to at least `min_span` decades.
pub(super) fn log10_bounds(
    values: impl Iterator<Item = f64>,
    factor: f64,
    min_span: f64,
) -> Option<(f64, f64)> {
    let (lo, hi) = values
        .filter(|v| v.is_finite() && *v > 0.0)
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if !(lo.is_finite() && hi.is_finite()) {
        return None;
    }
    let pad = factor.max(1.0).log10();
    let (mut low, mut high) = (lo.log10() - pad, hi.log10() + pad);
    if high - low < min_span {
        let middle = (low + high) / 2.0;
        (low, high) = (middle - min_span / 2.0, middle + min_span / 2.0);
    }
    Some((low, high))
}

/// 10^v in scientific notation (`2.5e15`), digits chosen from the axis span in decades.
pub(super) fn sci_label(v: f64, span: f64) -> String {
    let decimals = if span >= 2.5 {
        0
    } else if span >= 0.4 {
        1
    } else {
        2
    };
    let x = 10f64.powf(v);
    let mut exponent = x.log10().floor();
    let mut mantissa = x / 10f64.powf(exponent);
    let scale = 10f64.powi(decimals as i32);
    if (mantissa * scale).round() / scale >= 10.0 {
        mantissa /= 10.0;
        exponent += 1.0;
    }
    format!("{mantissa:.decimals$}e{exponent}")
}

/// 10^v as a plain ratio (a CEG), digits chosen from the axis span in decades.
pub(super) fn ratio_label(v: f64, span: f64) -> String {
    let decimals = if span >= 0.5 {
        2
    } else if span >= 0.05 {
        3
    } else {
        4
    };
    format!("{:.decimals$}", 10f64.powf(v))
}

/// The smallest and largest finite value, `None` when there is none.
pub(super) fn finite_bounds(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    (lo.is_finite() && hi.is_finite()).then_some((lo, hi))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_bounds() {
        assert_eq!(sci_label(15.0, 3.0), "1e15");
        assert_eq!(sci_label(15.39794, 1.0), "2.5e15");
        assert_eq!(sci_label(15.99999, 1.0), "1.0e16");
        assert_eq!(ratio_label(0.0, 0.1), "1.000");
        let (lo, hi) = log10_bounds([1.0, 1.0].into_iter(), 1.0, 0.1).unwrap();
        assert!((hi - lo - 0.1).abs() < 1e-12 && (lo + 0.05).abs() < 1e-12);
        assert!(log10_bounds([0.0, -1.0].into_iter(), 1.1, 0.1).is_none());
    }
}
