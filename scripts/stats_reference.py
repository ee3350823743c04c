#!/usr/bin/env python3
"""Reference values for betaroute's statistics (crates/core/src/stats/), computed with scipy.

Writes crates/core/src/stats/reference.json: fixed samples with scipy's mannwhitneyu (asymptotic
method with continuity correction and tie correction, the method betaroute implements), the
Hodges-Lehmann shift (numpy's median of all pairwise differences), and fisher_exact for fixed
2x2 tables. The Rust tests compare against this file; `--check` recomputes and fails when the
committed file differs (scripts/test.sh runs it when scipy is installed).

    pip install scipy && python3 scripts/stats_reference.py [--check]
"""
import json
import os
import random
import sys

import numpy as np
import scipy
from scipy.stats import fisher_exact, mannwhitneyu

OUT = os.path.join(os.path.dirname(__file__), "..", "crates", "core", "src", "stats", "reference.json")


def latency(rng, n, median_ms, spread):
    """Log-normal latencies in ms, rounded to 0.01 ms as a proxy measures them (ties happen)."""
    return [round(rng.lognormvariate(np.log(median_ms), spread), 2) for _ in range(n)]


def samples():
    rng = random.Random(20261202)
    yield "small, no ties", [1.1, 2.4, 3.0, 4.7, 5.2], [0.9, 1.5, 2.0, 2.2, 3.3, 3.9]
    yield "small, ties", [3, 3, 4, 5, 5, 5, 7], [1, 3, 3, 4, 4, 6]
    yield "all equal", [2.0] * 10, [2.0] * 12
    yield "disjoint", [10, 11, 12, 13, 14, 15, 16, 17], [1, 2, 3, 4, 5, 6, 7, 8, 9]
    yield "latency, same", latency(rng, 200, 20, 0.4), latency(rng, 300, 20, 0.4)
    yield "latency, beta 30% slower", latency(rng, 400, 26, 0.4), latency(rng, 400, 20, 0.4)
    yield "latency, beta 3% slower", latency(rng, 1000, 20.6, 0.4), latency(rng, 1000, 20, 0.4)
    yield "latency, heavy ties", [round(x) for x in latency(rng, 500, 5, 0.3)], [round(x) for x in latency(rng, 700, 5, 0.3)]


def tables():
    yield [[8, 2], [1, 5]]
    yield [[0, 1000], [5, 995]]
    yield [[20, 980], [20, 980]]
    yield [[2, 98], [12, 88]]
    yield [[0, 50], [0, 50]]
    yield [[3, 0], [0, 3]]
    yield [[100, 9900], [140, 9860]]
    yield [[1, 199], [9, 191]]


def compute():
    mw = []
    for name, x, y in samples():
        entry = {"name": name, "x": x, "y": y}
        for alt in ["two-sided", "greater", "less"]:
            r = mannwhitneyu(x, y, alternative=alt, method="asymptotic", use_continuity=True)
            entry[alt] = {"u": float(r.statistic), "p": float(r.pvalue)}
        entry["hodges_lehmann"] = float(np.median(np.subtract.outer(np.array(x, float), np.array(y, float))))
        mw.append(entry)
    fe = []
    for t in tables():
        entry = {"table": t}
        for alt in ["two-sided", "greater", "less"]:
            r = fisher_exact(t, alternative=alt)
            entry[alt] = {"odds_ratio": float(r.statistic) if np.isfinite(r.statistic) else str(r.statistic), "p": float(r.pvalue)}
        fe.append(entry)
    return {
        "about": "Computed by scripts/stats_reference.py with scipy %s, numpy %s: mannwhitneyu(x, y, alternative, method='asymptotic', use_continuity=True); hodges_lehmann = median of all x_i - y_j; fisher_exact(table, alternative)." % (scipy.__version__, np.__version__),
        "mann_whitney": mw,
        "fisher_exact": fe,
    }


def main():
    data = compute()
    text = json.dumps(data, indent=1) + "\n"
    if "--check" in sys.argv:
        with open(OUT) as f:
            old = json.load(f)
        old.pop("about", None)
        data.pop("about", None)
        if old != data:
            sys.exit("reference.json differs from what scipy computes now: run scripts/stats_reference.py")
        print("stats reference values match scipy")
        return
    with open(OUT, "w") as f:
        f.write(text)
    print("wrote", OUT)


if __name__ == "__main__":
    main()
