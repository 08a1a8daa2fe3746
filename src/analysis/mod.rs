//! Compute-equivalent gain (CEG) analysis: pure numerics over validation curves.
//!
//! CEG = C_baseline / C_variant at equal loss. Three estimators:
//! - [`paper`]: the authors' estimator, reproduced exactly (biased toward 1);
//! - [`crossing`]: interpolated crossings in FLOPs on lag-free monotone fits;
//! - [`scaling_law`]: the baseline's fitted L(C) = E + A·C^(−α), inverted at the variant's loss.
//!
//! [`table::analyse`] runs them all per cell ([`cell`]) with Student-t intervals over paired
//! seeds ([`interval`]) and one verdict per cell ([`verdict`]), the compute-dependence test
//! ([`dependence`]) and combined-versus-product comparisons ([`combined`]), and returns the
//! [`CegTable`] written as ceg.json / ceg.csv.

pub mod ceg_table;
pub mod cell;
pub mod combined;
pub mod crossing;
pub mod curve;
pub mod dependence;
pub mod error;
pub mod eval_noise;
pub mod interval;
pub mod paper;
pub mod scaling_law;
pub mod smoothing;
pub mod streams;
pub mod synthetic;
pub mod table;
pub mod verdict;

pub use combined::combined_vs_product;
pub use curve::{Curve, EvalPoint};
pub use error::{AnalysisError, Refusal};
pub use table::{AnalysisOptions, CegRow, CegTable, Estimator, analyse};
