//! Latencies as buckets: what a fleet's Prometheus keeps of the judge's figures
//! (`betaroute_judge_latency_seconds`, one histogram per comparison and side, summed over the
//! router replicas), turned back into a sample the judge can test.
//!
//! The buckets are four per octave from 0.25 ms to 65.5 s (each bound 19 % above the last), so
//! that a shift of a tenth of the median moves a good share of the requests across a bound. A
//! bucket stands for its geometric middle; values in one bucket are ties to Mann-Whitney, whose
//! tie correction keeps the test valid on grouped data. The Hodges-Lehmann shift is then known
//! to about one bucket width (19 %), coarser than a single process's judge.

/// Upper bounds, seconds: 0.25 ms * 2^(k/4) for k in 0..=72; `+Inf` is the last bucket.
pub fn bounds() -> impl Iterator<Item = f64> {
    (0..=72).map(|k| 0.000_25 * 2f64.powf(k as f64 / 4.0))
}

/// How many buckets there are, `+Inf` included.
pub const BUCKETS: usize = 74;

/// The bucket of a latency in seconds: the first bound at or above it.
pub fn bucket_of(seconds: f64) -> usize {
    if seconds <= 0.000_25 {
        return 0;
    }
    let k = ((seconds / 0.000_25).log2() * 4.0).ceil();
    // ceil() of an exact bound's log can land one above it through rounding: check the bound.
    let mut k = (k.max(0.0) as usize).min(BUCKETS - 1);
    if k > 0 && k < BUCKETS - 1 && seconds <= 0.000_25 * 2f64.powf((k - 1) as f64 / 4.0) {
        k -= 1;
    }
    k
}

/// A sample of at most `max` latencies (milliseconds) from cumulative bucket counts
/// `(upper bound in seconds, count at or below it)` in any order, `f64::INFINITY` for `+Inf`:
/// every bucket's requests at its geometric middle, thinned evenly over the ranks when there
/// are more than `max` (the sample keeps the distribution's shape).
pub fn expand(cumulative: &[(f64, f64)], max: usize) -> Vec<f64> {
    let mut points: Vec<(f64, f64)> = cumulative.to_vec();
    points.sort_by(|a, b| a.0.total_cmp(&b.0));
    // Per-bucket counts and the value standing for each bucket.
    let mut buckets = Vec::new();
    let (mut below, mut last) = (0.0, 0.0);
    for &(le, c) in &points {
        let n = (c - below).max(0.0).round() as u64;
        below = below.max(c);
        let value = if le.is_infinite() {
            last * 2f64.powf(0.125)
        } else if last == 0.0 {
            le * 2f64.powf(-0.125)
        } else {
            (last * le).sqrt()
        };
        if !le.is_infinite() {
            last = le;
        }
        if n > 0 {
            buckets.push((value * 1000.0, n));
        }
    }
    let total: u64 = buckets.iter().map(|b| b.1).sum();
    if total == 0 || max == 0 {
        return Vec::new();
    }
    let take = (total as usize).min(max);
    let mut out = Vec::with_capacity(take);
    let (mut i, mut upto) = (0, buckets[0].1);
    for j in 0..take {
        // The rank at the middle of the j-th of `take` equal parts.
        let rank = ((j as f64 + 0.5) * total as f64 / take as f64) as u64;
        while rank >= upto && i + 1 < buckets.len() {
            i += 1;
            upto += buckets[i].1;
        }
        out.push(buckets[i].0);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_and_buckets_agree() {
        let b: Vec<f64> = bounds().collect();
        assert_eq!(b.len() + 1, BUCKETS);
        assert!((b[4] - 0.0005).abs() < 1e-12 && (b[72] - 65.536).abs() < 1e-9);
        for (k, &le) in b.iter().enumerate() {
            assert_eq!(bucket_of(le), k, "at the bound {le}");
            assert_eq!(bucket_of(le * 1.0001), k + 1, "just above {le}");
        }
        assert_eq!(bucket_of(0.0), 0);
        assert_eq!(bucket_of(1e6), BUCKETS - 1);
    }

    #[test]
    fn expansion_keeps_counts_and_shape() {
        // 10 at or below 1 ms, 30 in (1, 2] ms, none above 2 ms but 5 past the last bound.
        let cum = [(0.002, 40.0), (f64::INFINITY, 45.0), (0.001, 10.0)];
        let all = expand(&cum, 1000);
        assert_eq!(all.len(), 45);
        assert_eq!(all.iter().filter(|&&v| v < 1.0).count(), 10);
        let mid = 2f64.sqrt();
        assert_eq!(all.iter().filter(|&&v| (v - mid).abs() < 1e-9).count(), 30);
        assert_eq!(all.iter().filter(|&&v| v > 2.0).count(), 5);
        // Thinned to 9: the same proportions, 2 : 6 : 1.
        let thin = expand(&cum, 9);
        assert_eq!(thin.len(), 9);
        assert_eq!(thin.iter().filter(|&&v| v < 1.0).count(), 2);
        assert_eq!(thin.iter().filter(|&&v| v > 2.0).count(), 1);
        assert!(expand(&[], 10).is_empty());
        assert!(expand(&[(f64::INFINITY, 0.0)], 10).is_empty());
    }
}
