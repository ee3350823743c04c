//! Rule table matching cost against table size: `cargo bench -p betaroute-core --bench rules`.
//!
//! Tables of N routers: for N/2 distinct hosts, a main router `Host(h)` and a beta router
//! `Host(h) && Header(X-RiksTV-Beta, true)`, plus 10 host-independent header rules. Lookups
//! alternate beta and main requests to hosts spread over the table. Prints ns per lookup for
//! each size and the 10,000 / 10 ratio (goal: at most 2), and the time to compile 10,000 routers.
//! Times are medians of repeated rounds, measured in one run so they compare with each other.

use std::hint::black_box;
use std::time::Instant;

use betaroute_core::rules::{Router, Rule, SimpleRequest, Table};

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

fn ns_per_lookup(n: usize) -> f64 {
    let table = Table::new(routers(n));
    let hosts = n / 2;
    let requests: Vec<SimpleRequest> = (0..64)
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
    let iters = 20_000;
    let rounds: Vec<f64> = (0..15)
        .map(|_| {
            let start = Instant::now();
            for i in 0..iters {
                black_box(table.find(black_box(&requests[i % requests.len()])));
            }
            start.elapsed().as_nanos() as f64 / iters as f64
        })
        .collect();
    median(rounds)
}

fn main() {
    println!("{:>8}  {:>12}", "routers", "ns/lookup");
    let mut results = Vec::new();
    for n in [10, 1_000, 10_000] {
        let ns = ns_per_lookup(n);
        println!("{n:>8}  {ns:>12.1}");
        results.push(ns);
    }
    println!(
        "ratio 10000/10: {:.2} (goal: at most 2.00)",
        results[2] / results[0]
    );
    let start = Instant::now();
    let table = Table::new(routers(10_000));
    println!(
        "compile 10,000 routers (parse + index): {:.1} ms",
        start.elapsed().as_secs_f64() * 1000.0
    );
    black_box(table);
}
