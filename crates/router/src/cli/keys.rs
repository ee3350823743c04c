//! `betaroute keys generate`: a private JWK and the matching public JWKS, so the demo and the
//! tests need no other tool. HMAC "public" key sets necessarily hold the secret.

use base64ct::{Base64UrlUnpadded, Encoding};
use betaroute_core::alg::Family;
use betaroute_core::Alg;
use rand_core::{OsRng, RngCore};
use serde_json::{json, Map, Value};

use super::error::{write_file, CliError};

#[derive(clap::Args)]
pub struct Args {
    /// HS256/384/512, RS256/384/512, PS256/384/512, ES256 or EdDSA.
    #[arg(long)]
    alg: String,
    /// Key id written into both files (default: derived from the algorithm and random bytes).
    #[arg(long)]
    kid: Option<String>,
    /// RSA modulus size.
    #[arg(long, default_value_t = 2048)]
    bits: usize,
    /// Where to write the private JWK (default: printed with the JWKS as one JSON object).
    #[arg(long, value_name = "FILE")]
    private: Option<String>,
    /// Where to write the public JWKS.
    #[arg(long, value_name = "FILE")]
    public: Option<String>,
}

fn b64(bytes: &[u8]) -> String {
    Base64UrlUnpadded::encode_string(bytes)
}

pub fn run(args: Args) -> Result<(), CliError> {
    let alg = Alg::from_name(&args.alg)
        .ok_or_else(|| CliError::usage(format!("--alg {:?} is not supported", args.alg)))?;
    let kid = args.kid.unwrap_or_else(|| {
        let mut tag = [0u8; 4];
        OsRng.fill_bytes(&mut tag);
        format!("{}-{}", alg.name().to_lowercase(), b64(&tag))
    });
    let (private, public) = generate(alg, args.bits)?;
    let finish = |mut m: Map<String, Value>| {
        m.insert("kid".into(), json!(kid));
        m.insert("alg".into(), json!(alg.name()));
        m.insert("use".into(), json!("sig"));
        Value::Object(m)
    };
    let private = finish(private);
    let jwks = json!({ "keys": [finish(public)] });
    match (args.private, args.public) {
        (None, None) => super::error::print_stdout(&format!(
            "{}\n",
            json!({ "private": private, "jwks": jwks })
        ))?,
        (Some(p), Some(q)) => {
            write_file(&p, &format!("{private:#}\n"))?;
            write_file(&q, &format!("{jwks:#}\n"))?;
        }
        _ => {
            return Err(CliError::usage(
                "give both --private and --public, or neither",
            ))
        }
    }
    Ok(())
}

/// Private and public JWK members (without kid/alg/use).
type KeyPairMembers = (Map<String, Value>, Map<String, Value>);

fn generate(alg: Alg, bits: usize) -> Result<KeyPairMembers, CliError> {
    let obj = |v: Value| match v {
        Value::Object(m) => m,
        _ => unreachable!("json! object literal"),
    };
    Ok(match alg.family() {
        Family::Hmac => {
            let mut k = vec![0u8; alg.hash_len().unwrap_or(32)];
            OsRng.fill_bytes(&mut k);
            let m = obj(json!({"kty": "oct", "k": b64(&k)}));
            (m.clone(), m)
        }
        Family::RsaPkcs1 | Family::RsaPss => {
            use rsa::traits::{PrivateKeyParts, PublicKeyParts};
            if !(2048..=8192).contains(&bits) {
                return Err(CliError::usage("--bits must be between 2048 and 8192"));
            }
            let key = rsa::RsaPrivateKey::new(&mut OsRng, bits)
                .map_err(|e| CliError::usage(format!("RSA key generation failed: {e}")))?;
            let [p, q] = [&key.primes()[0], &key.primes()[1]];
            let one = rsa::BigUint::from(1u32);
            // CRT parameters (RFC 7518 6.3.2): qi = q^-1 mod p = q^(p-2) mod p since p is prime.
            let dp = key.d() % (p - &one);
            let dq = key.d() % (q - &one);
            let qi = q.modpow(&(p - rsa::BigUint::from(2u32)), p);
            let public = obj(
                json!({"kty": "RSA", "n": b64(&key.n().to_bytes_be()), "e": b64(&key.e().to_bytes_be())}),
            );
            let mut private = public.clone();
            for (name, v) in [
                ("d", key.d()),
                ("p", p),
                ("q", q),
                ("dp", &dp),
                ("dq", &dq),
                ("qi", &qi),
            ] {
                private.insert(name.into(), json!(b64(&v.to_bytes_be())));
            }
            (private, public)
        }
        Family::Ecdsa => {
            let sk = p256::SecretKey::random(&mut OsRng);
            let point = p256::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(
                &sk.public_key(),
                false,
            );
            let (x, y) = (
                point.x().expect("uncompressed"),
                point.y().expect("uncompressed"),
            );
            let public = obj(json!({"kty": "EC", "crv": "P-256", "x": b64(x), "y": b64(y)}));
            let mut private = public.clone();
            private.insert("d".into(), json!(b64(&sk.to_bytes())));
            (private, public)
        }
        Family::EdDsa => {
            let seed = ed25519_compact::Seed::generate();
            let pair = ed25519_compact::KeyPair::from_seed(seed);
            let public = obj(json!({"kty": "OKP", "crv": "Ed25519", "x": b64(pair.pk.as_ref())}));
            let mut private = public.clone();
            private.insert("d".into(), json!(b64(seed.as_ref())));
            (private, public)
        }
    })
}
