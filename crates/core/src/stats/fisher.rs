//! Fisher's exact test on a 2x2 table.

use super::Alternative;

/// The outcome of [`fisher_exact`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fisher {
    /// `a*d / (b*c)`: infinite when `b*c` is 0 and `a*d` is not, NaN when a row or column is
    /// empty (as scipy).
    pub odds_ratio: f64,
    pub p: f64,
}

/// Fisher's exact test of the table `[[a, b], [c, d]]` (rows: cohorts; columns: errors, other
/// responses), as scipy's `fisher_exact`. Two-sided: the probability of every table with the
/// same margins that is no more likely than this one (a relative tolerance of 1e-7 decides
/// "no more likely", as R's `fisher.test`). `Greater` asks whether `a` is larger than the
/// margins make it by chance (the first cohort has more errors).
///
/// Exact at any count: the hypergeometric probabilities are summed, no approximation; the
/// table's margins are taken as fixed (the usual conditioning).
pub fn fisher_exact(table: [[u64; 2]; 2], alternative: Alternative) -> Fisher {
    let [[a, b], [c, d]] = table;
    let (row1, row2, col1) = (a + b, c + d, a + c);
    let total = row1 + row2;
    let odds_ratio = if b > 0 && c > 0 {
        (a as f64 * d as f64) / (b as f64 * c as f64)
    } else {
        f64::INFINITY
    };
    if row1 == 0 || row2 == 0 || col1 == 0 || col1 == total {
        return Fisher {
            odds_ratio: f64::NAN,
            p: 1.0,
        };
    }
    // X, the first cell, given the margins: X ~ Hypergeometric(total, row1, col1).
    let lo = col1.saturating_sub(row2);
    let hi = col1.min(row1);
    let ln_denominator = ln_choose(total, col1);
    let pmf = |k: u64| (ln_choose(row1, k) + ln_choose(row2, col1 - k) - ln_denominator).exp();
    let p = match alternative {
        Alternative::Less => (lo..=a).map(pmf).sum::<f64>(),
        Alternative::Greater => (a..=hi).map(pmf).sum::<f64>(),
        Alternative::TwoSided => {
            let here = pmf(a) * (1.0 + 1e-7);
            (lo..=hi).map(pmf).filter(|&q| q <= here).sum::<f64>()
        }
    };
    Fisher {
        odds_ratio,
        p: p.min(1.0),
    }
}

/// ln(n choose k).
fn ln_choose(n: u64, k: u64) -> f64 {
    ln_factorial(n) - ln_factorial(k) - ln_factorial(n - k)
}

fn ln_factorial(n: u64) -> f64 {
    libm::lgamma(n as f64 + 1.0)
}
