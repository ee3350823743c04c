//! JWS algorithms betaroute accepts (RFC 7518 section 3, RFC 8037 for EdDSA).

use std::fmt;

/// A signature algorithm. `none` is deliberately not representable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Alg {
    Hs256,
    Hs384,
    Hs512,
    Rs256,
    Rs384,
    Rs512,
    Ps256,
    Ps384,
    Ps512,
    Es256,
    /// Ed25519, named `EdDSA` (RFC 8037) or `Ed25519` (fully specified name) in tokens.
    EdDsa,
}

/// The family of keys an algorithm needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Hmac,
    RsaPkcs1,
    RsaPss,
    Ecdsa,
    EdDsa,
}

impl Alg {
    pub const ALL: [Alg; 11] = [
        Alg::Hs256,
        Alg::Hs384,
        Alg::Hs512,
        Alg::Rs256,
        Alg::Rs384,
        Alg::Rs512,
        Alg::Ps256,
        Alg::Ps384,
        Alg::Ps512,
        Alg::Es256,
        Alg::EdDsa,
    ];

    /// Parses the `alg` header value. Exact and case-sensitive, as RFC 7515 requires.
    pub fn from_name(name: &str) -> Option<Alg> {
        Some(match name {
            "HS256" => Alg::Hs256,
            "HS384" => Alg::Hs384,
            "HS512" => Alg::Hs512,
            "RS256" => Alg::Rs256,
            "RS384" => Alg::Rs384,
            "RS512" => Alg::Rs512,
            "PS256" => Alg::Ps256,
            "PS384" => Alg::Ps384,
            "PS512" => Alg::Ps512,
            "ES256" => Alg::Es256,
            "EdDSA" | "Ed25519" => Alg::EdDsa,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Alg::Hs256 => "HS256",
            Alg::Hs384 => "HS384",
            Alg::Hs512 => "HS512",
            Alg::Rs256 => "RS256",
            Alg::Rs384 => "RS384",
            Alg::Rs512 => "RS512",
            Alg::Ps256 => "PS256",
            Alg::Ps384 => "PS384",
            Alg::Ps512 => "PS512",
            Alg::Es256 => "ES256",
            Alg::EdDsa => "EdDSA",
        }
    }

    pub fn family(self) -> Family {
        match self {
            Alg::Hs256 | Alg::Hs384 | Alg::Hs512 => Family::Hmac,
            Alg::Rs256 | Alg::Rs384 | Alg::Rs512 => Family::RsaPkcs1,
            Alg::Ps256 | Alg::Ps384 | Alg::Ps512 => Family::RsaPss,
            Alg::Es256 => Family::Ecdsa,
            Alg::EdDsa => Family::EdDsa,
        }
    }

    /// Output size of the hash in bytes (also the minimum HMAC key size, RFC 7518 3.2,
    /// and the PSS salt length, RFC 7518 3.5). `None` for EdDSA, which hashes internally.
    pub fn hash_len(self) -> Option<usize> {
        match self {
            Alg::Hs256 | Alg::Rs256 | Alg::Ps256 | Alg::Es256 => Some(32),
            Alg::Hs384 | Alg::Rs384 | Alg::Ps384 => Some(48),
            Alg::Hs512 | Alg::Rs512 | Alg::Ps512 => Some(64),
            Alg::EdDsa => None,
        }
    }
}

impl fmt::Display for Alg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_none_is_unknown() {
        for alg in Alg::ALL {
            assert_eq!(Alg::from_name(alg.name()), Some(alg));
        }
        assert_eq!(Alg::from_name("none"), None);
        assert_eq!(Alg::from_name("hs256"), None);
        assert_eq!(Alg::from_name("Ed25519"), Some(Alg::EdDsa));
    }
}
