//! `betaroute rollout`: show, validate and edit a rollout policy file, print the line that
//! publishes it to the edge's KV namespace, and tell where a subject falls.
//!
//! Every edit is validated with core's parser (the edge's and the router's) before the file is
//! replaced, so an edited policy is always one the edge accepts.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use betaroute_core::rollout::{bucket, Policy};

use super::error::{print_stdout, CliError};

/// The edge's KV binding and key for the policy (README, "Rollout policy").
pub const KV_BINDING: &str = "BETAROUTE_POLICY";
pub const KV_KEY: &str = "policy";

#[derive(clap::Args)]
pub struct Args {
    /// The policy file (JSON).
    #[arg(
        long,
        short = 'f',
        value_name = "FILE",
        default_value = "rollout.json",
        global = true
    )]
    file: PathBuf,
    #[command(subcommand)]
    action: Action,
}

#[derive(clap::Subcommand)]
enum Action {
    /// Print the policy in canonical form (every field), and a summary on stderr.
    Show {
        /// The policy file (instead of --file).
        path: Option<PathBuf>,
    },
    /// Check the policy: exit 0, or 2 with the problem and its line and column.
    Validate {
        /// The policy file (instead of --file).
        path: Option<PathBuf>,
    },
    /// Set a field: percent, holdback, salt, subject or beta (on/off).
    Set { field: String, value: String },
    /// The kill switch: beta off for everyone.
    Kill,
    /// Beta back on (undoes `kill`).
    Resume,
    /// Put a subject in `allow` (and out of `deny`).
    Allow { subject: String },
    /// Put a subject in `deny` (and out of `allow`).
    Deny { subject: String },
    /// Take a subject out of both `allow` and `deny`.
    Unlist { subject: String },
    /// Set the holdback share, in percent.
    Holdback { percent: String },
    /// Print the `wrangler kv key put` line that publishes the policy to the edge.
    Publish {
        /// Write to the local KV of `wrangler dev` instead of Cloudflare's.
        #[arg(long)]
        local: bool,
    },
    /// Where a subject falls: the bucket number (0-9999) alone on stdout, the decision it
    /// implies for the file's policy on stderr when the file exists.
    Bucket {
        /// The salt (default: the policy file's, else "").
        #[arg(long)]
        salt: Option<String>,
        /// The holdback bucket instead of the rollout bucket.
        #[arg(long)]
        holdback: bool,
        subject: String,
    },
}

pub fn run(args: Args) -> Result<ExitCode, CliError> {
    let file = args.file.as_path();
    match args.action {
        Action::Show { path } => {
            let p = load(path.as_deref().unwrap_or(file))?;
            print_stdout(&format!("{}\n", pretty(&p)))?;
            eprintln!("betaroute: {}", summary(&p));
        }
        Action::Validate { path } => {
            let file = path.as_deref().unwrap_or(file);
            let p = load(file)?;
            eprintln!("betaroute: {}: valid; {}", file.display(), summary(&p));
        }
        Action::Set { field, value } => edit(file, |doc| set(doc, &field, &value))?,
        Action::Kill => edit(file, |doc| set(doc, "beta", "off"))?,
        Action::Resume => edit(file, |doc| set(doc, "beta", "on"))?,
        Action::Holdback { percent } => edit(file, |doc| set(doc, "holdback", &percent))?,
        Action::Allow { subject } => edit(file, |doc| list(doc, "allow", "deny", &subject))?,
        Action::Deny { subject } => edit(file, |doc| list(doc, "deny", "allow", &subject))?,
        Action::Unlist { subject } => edit(file, |doc| {
            for key in ["allow", "deny"] {
                if let Some(l) = doc.get_mut(key).and_then(|v| v.as_array_mut()) {
                    l.retain(|s| s.as_str() != Some(&subject));
                }
            }
            Ok(())
        })?,
        Action::Publish { local } => {
            load(file)?;
            let target = if local { "--local" } else { "--remote" };
            let line = format!(
                "npx wrangler kv key put {KV_KEY} --binding {KV_BINDING} --path {} {target}\n",
                shell_word(&file.display().to_string())
            );
            print_stdout(&line)?;
            eprintln!("betaroute: KV is eventually consistent: edges see the new policy within about 60 s worldwide, then within the edge's policy cache time (POLICY_CACHE_SECONDS)");
        }
        Action::Bucket {
            salt,
            holdback,
            subject,
        } => {
            // The file only informs: a missing or broken one never stops the bucket's answer.
            let policy = match file.exists().then(|| load(file)) {
                Some(Ok(p)) => Some(p),
                Some(Err(e)) => {
                    eprintln!(
                        "betaroute: {e} (ignored: the bucket needs only the subject and salt)"
                    );
                    None
                }
                None => None,
            };
            let salt =
                salt.unwrap_or_else(|| policy.as_ref().map_or(String::new(), |p| p.salt.clone()));
            let prefix = if holdback {
                bucket::HOLDBACK
            } else {
                bucket::ROLLOUT
            };
            let b = bucket(prefix, &salt, &subject);
            print_stdout(&format!("{b}\n"))?;
            if let Some(p) = policy {
                let (share, what) = if holdback {
                    (p.holdback, "holdback")
                } else {
                    (p.percent, "rollout")
                };
                let slots = bucket::slots(share);
                let inside = if b < slots { "inside" } else { "outside" };
                eprintln!("betaroute: {what} bucket {b}: {inside} {share}% ({slots} of 10000 slots) in {}", file.display());
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The policy in `file`, validated; its problem located as FILE:LINE:COLUMN.
fn load(file: &Path) -> Result<Policy, CliError> {
    let text = std::fs::read_to_string(file).map_err(|source| CliError::Io {
        path: file.display().to_string(),
        source,
    })?;
    Policy::parse(&text).map_err(|e| {
        let at = if e.line > 0 {
            format!("{}:{}:{}", file.display(), e.line, e.column)
        } else {
            file.display().to_string()
        };
        CliError::usage(format!("{at}: {}", e.message))
    })
}

fn pretty(p: &Policy) -> String {
    serde_json::to_string_pretty(&p.to_json()).expect("a JSON value serializes")
}

fn summary(p: &Policy) -> String {
    format!(
        "beta {}, percent {}%, holdback {}%, {} allowed, {} denied, {} rules, {} mapped headers, subject claim {}",
        if p.beta_on { "on" } else { "off" },
        p.percent,
        p.holdback,
        p.allow.len(),
        p.deny.len(),
        p.rules.len(),
        p.headers.len(),
        p.subject
    )
}

/// Applies `change` to the file's policy (an empty policy when the file does not exist yet),
/// validates the result and replaces the file atomically; prints the new policy.
fn edit(
    file: &Path,
    change: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>) -> Result<(), CliError>,
) -> Result<(), CliError> {
    let current = if file.exists() {
        load(file)?
    } else {
        Policy::default()
    };
    let serde_json::Value::Object(mut doc) = current.to_json() else {
        unreachable!("a policy is an object");
    };
    change(&mut doc)?;
    let text = serde_json::to_string_pretty(&doc).expect("a JSON value serializes");
    let edited = Policy::parse(&text).map_err(|e| CliError::usage(e.message))?;
    let out = format!("{}\n", pretty(&edited));
    let tmp = file.with_extension("json.tmp");
    let io = |source| CliError::Io {
        path: file.display().to_string(),
        source,
    };
    std::fs::write(&tmp, &out).map_err(io)?;
    std::fs::rename(&tmp, file).map_err(io)?;
    eprintln!("betaroute: {}: {}", file.display(), summary(&edited));
    Ok(())
}

fn set(
    doc: &mut serde_json::Map<String, serde_json::Value>,
    field: &str,
    value: &str,
) -> Result<(), CliError> {
    let v = match field {
        "percent" | "holdback" => {
            let n: f64 = value.trim_end_matches('%').parse().map_err(|_| {
                CliError::usage(format!("{field}: {value:?} is not a number (percent, 0 to 100)"))
            })?;
            serde_json::json!(n)
        }
        "beta" if value == "on" || value == "off" => serde_json::json!(value),
        "beta" => return Err(CliError::usage(format!("beta: {value:?} is not on or off"))),
        "salt" | "subject" => serde_json::json!(value),
        other => {
            return Err(CliError::usage(format!(
                "{other:?} cannot be set: set takes percent, holdback, salt, subject or beta (rules and headers are edited in the file)"
            )))
        }
    };
    doc.insert(field.to_owned(), v);
    Ok(())
}

/// Adds `subject` to the list `into` and removes it from `out_of`.
fn list(
    doc: &mut serde_json::Map<String, serde_json::Value>,
    into: &str,
    out_of: &str,
    subject: &str,
) -> Result<(), CliError> {
    if let Some(l) = doc.get_mut(out_of).and_then(|v| v.as_array_mut()) {
        l.retain(|s| s.as_str() != Some(subject));
    }
    let l = doc
        .entry(into)
        .or_insert_with(|| serde_json::json!([]))
        .as_array_mut()
        .expect("canonical lists are arrays");
    if !l.iter().any(|s| s.as_str() == Some(subject)) {
        l.push(subject.into());
    }
    Ok(())
}

/// A path as one shell word: quoted unless it is plain.
fn shell_word(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+:@%".contains(&b))
    {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}
