//! The statistics the judge compares beta with its baseline by, implemented once (sans-IO, for
//! the router and the CLI) and checked against scipy's values for fixed inputs
//! (`reference.json`, written by `scripts/stats_reference.py`).
//!
//! - [`mann_whitney`]: the Mann-Whitney U test on two samples (latencies), with scipy's
//!   asymptotic method: normal approximation, tie correction, continuity correction.
//! - [`hodges_lehmann`]: the Hodges-Lehmann estimate of the shift between two samples (the
//!   median of all pairwise differences), the effect size a tolerance is set on, as Kayenta does.
//! - [`fisher_exact`]: Fisher's exact test on a 2x2 table (errors and successes per cohort),
//!   right for the small counts of errors in a short window.
//! - [`grouped`]: latencies as histogram buckets (a fleet's Prometheus) back into a sample.
//! - [`judge`]: the verdict on one window (`pass`, `marginal`, `fail`, `inconclusive`) with the
//!   numbers behind it.

mod fisher;
pub mod grouped;
pub mod judge;
mod mann_whitney;

pub use fisher::{fisher_exact, Fisher};
pub use mann_whitney::{hodges_lehmann, mann_whitney, MannWhitney};

/// Which way a test looks: `Greater` asks whether the first sample is larger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alternative {
    TwoSided,
    Greater,
    Less,
}

/// The standard normal distribution's survival function, P(Z > z).
pub fn normal_sf(z: f64) -> f64 {
    0.5 * libm::erfc(z / std::f64::consts::SQRT_2)
}

#[cfg(test)]
mod tests;
