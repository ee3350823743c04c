//! Core benchmarks, run natively and as WebAssembly (wasm32-wasip1 under Node's V8, the engine
//! workerd embeds) by `scripts/bench.sh`:
//!
//! - token verification per algorithm (`corebench VECTORS_DIR`: each `ALG.jwks.json` with its
//!   `ALG.token`, minted by the CLI): signature and claims, as the router and the CLI check them;
//! - rule table matching against table size. Tables of N routers: for N/2 distinct hosts, a main
//!   router `Host(h)` and a beta router `Host(h) && Header(X-RiksTV-Beta, true)`, plus 10
//!   host-independent header rules. Lookups alternate beta and main requests to hosts spread over
//!   the table. The 10,000 / 10 ratio has a goal of at most 2; compiling 10,000 routers is timed.
//!
//! Times are medians of repeated rounds, measured in one run so they compare with each other.
//! Output is one `key value` line per figure, for the script to tabulate.

use std::hint::black_box;
use std::time::Instant;

use betaroute_core::rules::{Router, Rule, SimpleRequest, Table};
use betaroute_core::{KeySet, Verifier, VerifyPolicy};

fn routers(n: usize) -> Vec<Router<u32>> {
    let mut out = Vec::with_capacity(n + 10);
    for i in 0..n / 2 {
        let host = format!("svc{i}.example.com");
        out.push(Router::new(
            &format!("main-{i}"),
            Rule::compile(&format!("Host(`{host}`)")).unwrap(),
            None,
            0,
        ));
        out.push(Router::new(
            &format!("beta-{i}"),
            Rule::compile(&format!(
                "Host(`{host}`) && Header(`X-RiksTV-Beta`, `true`)"
            ))
            .unwrap(),
            None,
            1,
        ));
    }
    for t in 0..10 {
        out.push(Router::new(
            &format!("tenant-{t}"),
            Rule::compile(&format!("Header(`X-Tenant`, `t{t}`)")).unwrap(),
            Some(1),
            2,
        ));
    }
    out
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// ns per lookup for each table size. Sizes are measured in interleaved rounds, so the machine's
/// drift over the run (a shared VM drifts by tens of percent) weighs on every size alike.
fn ns_per_lookup(sizes: &[usize]) -> Vec<f64> {
    let setups: Vec<(Table<u32>, Vec<SimpleRequest>)> = sizes
        .iter()
        .map(|&n| {
            let hosts = n / 2;
            let requests = (0..64)
                .map(|k| {
                    let req = SimpleRequest::get(&format!(
                        "http://svc{}.example.com/api/items",
                        (k * 7919) % hosts
                    ));
                    if k % 2 == 0 {
                        req.header("X-RiksTV-Beta", "true")
                    } else {
                        req
                    }
                })
                .collect();
            (Table::new(routers(n)), requests)
        })
        .collect();
    let iters = 50_000;
    let mut rounds: Vec<Vec<f64>> = vec![Vec::new(); sizes.len()];
    for _ in 0..21 {
        for (i, (table, requests)) in setups.iter().enumerate() {
            let start = Instant::now();
            for k in 0..iters {
                black_box(table.find(black_box(&requests[k % requests.len()])));
            }
            rounds[i].push(start.elapsed().as_nanos() as f64 / iters as f64);
        }
    }
    rounds.into_iter().map(median).collect()
}

/// Median time per call of `f`, over rounds of at least 100 ms each.
fn ns_per_call(mut f: impl FnMut()) -> f64 {
    let rounds: Vec<f64> = (0..5)
        .map(|_| {
            let start = Instant::now();
            let mut n = 0u32;
            while n < 5 || start.elapsed().as_millis() < 100 {
                f();
                n += 1;
            }
            start.elapsed().as_nanos() as f64 / f64::from(n)
        })
        .collect();
    median(rounds)
}

fn verify_benches(dir: &std::path::Path) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("a clock after 1970")
        .as_secs_f64();
    for alg in [
        "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "ES256", "EdDSA",
    ] {
        let Ok(jwks) = std::fs::read_to_string(dir.join(format!("{alg}.jwks.json"))) else {
            continue;
        };
        let token = std::fs::read_to_string(dir.join(format!("{alg}.token")))
            .expect("a token next to its key set");
        let keys = KeySet::from_json(&jwks).expect("the CLI writes valid key sets");
        let verifier = Verifier::new(keys, VerifyPolicy::default());
        let token = token.trim();
        assert!(
            verifier.verify_native(token, now).is_ok(),
            "{alg}: the vector must verify"
        );
        let ns = ns_per_call(|| {
            black_box(verifier.verify_native(black_box(token), now).is_ok());
        });
        println!("verify {alg} {ns:.0}");
    }
}

fn main() {
    if let Some(dir) = std::env::args().nth(1) {
        verify_benches(std::path::Path::new(&dir));
    }
    let sizes = [10, 1_000, 10_000];
    for (n, ns) in sizes.iter().zip(ns_per_lookup(&sizes)) {
        println!("lookup {n} {ns:.1}");
    }
    let start = Instant::now();
    let table = Table::new(routers(10_000));
    println!("compile10000 {:.1}", start.elapsed().as_secs_f64() * 1000.0);
    black_box(table);
}
