//! `betaroute token mint`: signed tokens for local testing and the demo.

use std::time::{SystemTime, UNIX_EPOCH};

use base64ct::{Base64UrlUnpadded, Encoding};
use betaroute_core::alg::Family;
use betaroute_core::Alg;
use jwt_compact::{Algorithm, AlgorithmSignature};
use serde_json::{json, Map, Value};

use super::error::{read_file, CliError};

#[derive(clap::Args)]
pub struct Args {
    /// A private JWK, as written by `betaroute keys generate`.
    #[arg(long, value_name = "FILE")]
    key: String,
    /// Signing algorithm (default: the key's `alg`).
    #[arg(long)]
    alg: Option<String>,
    /// Extra claim; VALUE is JSON when it parses as JSON, else a string (repeatable).
    #[arg(long = "claim", value_name = "NAME=VALUE")]
    claims: Vec<String>,
    /// Extra JOSE header parameter, same syntax as --claim (repeatable).
    #[arg(long = "header", value_name = "NAME=VALUE")]
    headers: Vec<String>,
    /// Set `"beta": true`.
    #[arg(long)]
    beta: bool,
    /// Lifetime: `exp` = now + DURATION (`90`, `90s`, `15m`, `1h`, `7d`; negative for expired).
    #[arg(long, default_value = "1h", allow_hyphen_values = true)]
    exp: String,
    /// Omit `exp`.
    #[arg(long, conflicts_with = "exp")]
    no_exp: bool,
    /// `nbf` = now + DURATION.
    #[arg(long, allow_hyphen_values = true)]
    nbf: Option<String>,
    /// The subject (`--sub ''` leaves `sub` out).
    #[arg(long, default_value = "dev")]
    sub: String,
    #[arg(long)]
    iss: Option<String>,
    #[arg(long)]
    aud: Option<String>,
    /// Key id in the header (default: the key's `kid`; `--kid ''` omits it).
    #[arg(long)]
    kid: Option<String>,
    /// Mint as of this time instead of the system clock.
    #[arg(long, value_name = "UNIX_SECONDS")]
    now: Option<i64>,
}

pub fn run(args: Args) -> Result<(), CliError> {
    let jwk: Map<String, Value> = serde_json::from_str(&read_file(&args.key)?)
        .map_err(|e| CliError::usage(format!("{}: not a JWK object: {e}", args.key)))?;
    let alg_name = args
        .alg
        .clone()
        .or_else(|| jwk.get("alg").and_then(Value::as_str).map(str::to_owned))
        .ok_or_else(|| CliError::usage("the key has no \"alg\": pass --alg"))?;
    let alg = Alg::from_name(&alg_name)
        .ok_or_else(|| CliError::usage(format!("unsupported algorithm {alg_name:?}")))?;
    let now = args.now.unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0)
    });

    let mut header = Map::new();
    header.insert("alg".into(), json!(alg.name()));
    header.insert("typ".into(), json!("JWT"));
    match args
        .kid
        .as_deref()
        .or_else(|| jwk.get("kid").and_then(Value::as_str))
    {
        Some("") | None => {}
        Some(kid) => {
            header.insert("kid".into(), json!(kid));
        }
    }
    for h in &args.headers {
        let (k, v) = assignment(h)?;
        header.insert(k, v);
    }

    let mut claims = Map::new();
    if !args.sub.is_empty() {
        claims.insert("sub".into(), json!(args.sub));
    }
    claims.insert("iat".into(), json!(now));
    if !args.no_exp {
        claims.insert("exp".into(), json!(now + duration(&args.exp)?));
    }
    if let Some(nbf) = &args.nbf {
        claims.insert("nbf".into(), json!(now + duration(nbf)?));
    }
    if let Some(iss) = args.iss {
        claims.insert("iss".into(), json!(iss));
    }
    if let Some(aud) = args.aud {
        claims.insert("aud".into(), json!(aud));
    }
    if args.beta {
        claims.insert("beta".into(), json!(true));
    }
    for c in &args.claims {
        let (k, v) = assignment(c)?;
        claims.insert(k, v);
    }

    let b64 = |v: &Map<String, Value>| {
        Base64UrlUnpadded::encode_string(Value::Object(v.clone()).to_string().as_bytes())
    };
    let input = format!("{}.{}", b64(&header), b64(&claims));
    let signature = sign(alg, &jwk, input.as_bytes())?;
    super::error::print_stdout(&format!(
        "{input}.{}\n",
        Base64UrlUnpadded::encode_string(&signature)
    ))?;
    Ok(())
}

fn assignment(s: &str) -> Result<(String, Value), CliError> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| CliError::usage(format!("{s:?} is not NAME=VALUE")))?;
    let value = serde_json::from_str(v).unwrap_or_else(|_| Value::String(v.to_owned()));
    Ok((k.to_owned(), value))
}

/// `90`, `90s`, `15m`, `1h`, `7d`, optionally negative, in seconds.
fn duration(s: &str) -> Result<i64, CliError> {
    let bad = || {
        CliError::usage(format!(
            "{s:?} is not a duration like 90s, 15m, 1h, 7d or -1h"
        ))
    };
    let (num, unit) = match s.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&s[..i], c),
        Some(_) => (s, 's'),
        None => return Err(bad()),
    };
    let n: i64 = num.parse().map_err(|_| bad())?;
    let scale = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86400,
        _ => return Err(bad()),
    };
    Ok(n * scale)
}

fn member(jwk: &Map<String, Value>, name: &str) -> Result<Vec<u8>, CliError> {
    let s = jwk
        .get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| CliError::usage(format!("private key has no \"{name}\"")))?;
    Base64UrlUnpadded::decode_vec(s)
        .map_err(|_| CliError::usage(format!("private key \"{name}\" is not base64url")))
}

fn sign(alg: Alg, jwk: &Map<String, Value>, input: &[u8]) -> Result<Vec<u8>, CliError> {
    use jwt_compact::alg::*;
    let bad = |e: &dyn std::fmt::Display| {
        CliError::usage(format!("private key is not usable for {alg}: {e}"))
    };
    Ok(match alg.family() {
        Family::Hmac => {
            let k = member(jwk, "k")?;
            match alg {
                Alg::Hs256 => Hs256
                    .sign(&Hs256Key::new(&k), input)
                    .as_bytes()
                    .into_owned(),
                Alg::Hs384 => Hs384
                    .sign(&Hs384Key::new(&k), input)
                    .as_bytes()
                    .into_owned(),
                _ => Hs512
                    .sign(&Hs512Key::new(&k), input)
                    .as_bytes()
                    .into_owned(),
            }
        }
        Family::RsaPkcs1 | Family::RsaPss => {
            let big = |n: &str| member(jwk, n).map(|b| rsa::BigUint::from_bytes_be(&b));
            let key = rsa::RsaPrivateKey::from_components(
                big("n")?,
                big("e")?,
                big("d")?,
                vec![big("p")?, big("q")?],
            )
            .map_err(|e| bad(&e))?;
            Rsa::with_name(alg.name())
                .sign(&key, input)
                .as_bytes()
                .into_owned()
        }
        Family::Ecdsa => {
            let key =
                p256::ecdsa::SigningKey::from_slice(&member(jwk, "d")?).map_err(|e| bad(&e))?;
            Es256.sign(&key, input).as_bytes().into_owned()
        }
        Family::EdDsa => {
            let seed =
                ed25519_compact::Seed::from_slice(&member(jwk, "d")?).map_err(|e| bad(&e))?;
            let pair = ed25519_compact::KeyPair::from_seed(seed);
            Ed25519.sign(&pair.sk, input).as_bytes().into_owned()
        }
    })
}

#[cfg(test)]
mod tests {
    use super::duration;

    #[test]
    fn durations() {
        assert_eq!(duration("90").unwrap(), 90);
        assert_eq!(duration("15m").unwrap(), 900);
        assert_eq!(duration("-1h").unwrap(), -3600);
        assert_eq!(duration("7d").unwrap(), 604800);
        assert!(duration("1y").is_err() && duration("").is_err() && duration("h").is_err());
    }
}
