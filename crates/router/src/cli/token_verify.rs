//! `betaroute token verify`: the CLI contract of BRIEF.md, on the same core as the edge.

use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use betaroute_core::claims::ClaimsPolicy;
use betaroute_core::{Alg, BetaPolicy, KeySet, Policy, Verdict, Verifier, VerifyPolicy};
use serde_json::json;

use super::error::{read_file, CliError};

#[derive(clap::Args)]
pub struct Args {
    /// A JWKS {"keys":[...]} or a single JWK.
    #[arg(long, value_name = "FILE")]
    keys: String,
    /// Accept only these algorithms (repeatable); default: whatever the keys allow.
    #[arg(long = "alg", value_name = "ALG")]
    algs: Vec<String>,
    /// Required issuer (`iss`).
    #[arg(long)]
    issuer: Option<String>,
    /// Accepted audience (`aud`); repeatable, any one matches.
    #[arg(long = "audience", value_name = "AUD")]
    audiences: Vec<String>,
    /// Clock skew tolerated on exp and nbf.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    leeway: u64,
    /// Verify as of this time instead of the system clock.
    #[arg(long, value_name = "UNIX_SECONDS", allow_negative_numbers = true)]
    now: Option<f64>,
    /// Accept tokens without an `exp` claim.
    #[arg(long)]
    allow_missing_exp: bool,
    /// Claim that makes a request beta.
    #[arg(long, default_value = "beta")]
    beta_claim: String,
    /// Header injected for beta requests.
    #[arg(long, default_value = "X-RiksTV-Beta")]
    beta_header: String,
    /// Header injected (value `holdback`) for holdback requests.
    #[arg(long, default_value = "X-BetaRoute-Cohort")]
    cohort_header: String,
    /// A rollout policy (JSON) to decide with, as the edge does when it has one; the output
    /// then has a `decision` (cohort, reason, detail, buckets).
    #[arg(long, value_name = "FILE")]
    policy: Option<String>,
    /// The token (`-` reads it from standard input).
    token: String,
}

pub fn run(args: Args) -> Result<ExitCode, CliError> {
    let keys = KeySet::from_json(&read_file(&args.keys)?)
        .map_err(|e| CliError::usage(format!("{}: {e}", args.keys)))?;
    for skipped in &keys.skipped {
        eprintln!("betaroute: {}: ignoring {skipped}", args.keys);
    }
    let allowed_algs = if args.algs.is_empty() {
        None
    } else {
        let algs = args
            .algs
            .iter()
            .map(|a| {
                Alg::from_name(a).ok_or_else(|| {
                    CliError::usage(format!("--alg {a:?} is not a supported algorithm"))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Some(algs)
    };
    let now = match args.now {
        Some(n) if n.is_finite() => n,
        Some(_) => return Err(CliError::usage("--now must be a finite number of seconds")),
        None => SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0),
    };
    let token = if args.token == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
            .map_err(|e| CliError::usage(format!("reading the token from stdin: {e}")))?;
        s.trim().to_owned()
    } else {
        args.token
    };
    let policy = VerifyPolicy {
        claims: ClaimsPolicy {
            issuer: args.issuer,
            audiences: args.audiences,
            leeway: args.leeway,
            require_exp: !args.allow_missing_exp,
        },
        allowed_algs,
        ..VerifyPolicy::default()
    };
    let verifier = Verifier::new(keys, policy);
    let beta = BetaPolicy {
        claim: args.beta_claim,
        header: args.beta_header,
        cohort_header: args.cohort_header,
    };
    let rollout = match &args.policy {
        None => None,
        Some(file) => Some(Policy::parse(&read_file(file)?).map_err(|e| {
            CliError::usage(if e.line > 0 {
                format!("{file}:{}:{}: {}", e.line, e.column, e.message)
            } else {
                format!("{file}: {}", e.message)
            })
        })?),
    };
    let outcome = verifier.verify_native(&token, now);
    let verdict = match &outcome {
        Ok(v) => {
            let no_rules = [];
            let rules = rollout
                .as_ref()
                .map_or(&no_rules[..], |p| p.rules.as_slice());
            let regex = betaroute_core::rollout::rule::compiled(rules);
            Verdict::verified_with(v, &beta, rollout.as_ref(), &regex)
        }
        Err(r) => Verdict::rejected(r.clone()),
    };
    let inject = verdict.inject();
    let mut out = match &outcome {
        Ok(v) => {
            json!({"valid": true, "error": null, "header": v.header, "claims": v.claims, "inject": inject})
        }
        Err(r) => {
            json!({"valid": false, "error": r.to_string(), "header": r.header, "claims": r.claims, "inject": inject})
        }
    };
    if rollout.is_some() {
        out["decision"] = serde_json::to_value(&verdict.decision).unwrap_or_default();
    }
    super::error::print_stdout(&format!("{out}\n"))?;
    Ok(if outcome.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
