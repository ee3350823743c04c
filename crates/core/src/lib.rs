//! Sans-IO core of betaroute.
//!
//! Bytes and values in, decisions out: nothing here opens a socket, reads a file or a
//! clock. The edge worker (wasm32, WebCrypto) and the native `betaroute` binary are thin
//! shells over these functions, so both reach the same verdict for the same input.
//!
//! - [`jwk`]: key sets (JWKS or one JWK) parsed into typed, usable keys.
//! - [`jws`]: strict parsing of a compact JWS.
//! - [`verify`]: key selection, signature check (native) and claim validation.
//! - [`cohort`]: the cohort of a request (beta or main), defined once for everyone.
//! - [`decision`]: the beta decision as data (`Decision { cohort, reason, inject }`).
//! - [`verdict`]: the decision with the token's `alg` and `kid`, as every report prints it.
//! - [`headers`]: which client-sent header names count as routing headers.
//! - [`rollout`]: the rollout policy (kill switch, sticky percentage, holdback, allow/deny,
//!   claim rules, mapped headers) and its decision.
//! - [`source`]: where a token is taken from (Authorization, cookie).
//! - [`rules`]: the Traefik v3 rule engine and the compiled route table.
//! - [`stats`]: the judge's statistics (Mann-Whitney U, Hodges-Lehmann, Fisher's exact test).
//! - [`signature`]: signed routing decisions between the edge and the origin router.
//!
//! # Design choices
//! - The algorithm is pinned by key configuration: a key's `alg`, or its type and size,
//!   decides which algorithms it may verify. The token's `alg` only selects among those.
//! - The clock is injected: every time-dependent function takes `now` (Unix seconds).
//! - Signature checking is separate from parsing and claim validation ([`verify::Pending`])
//!   so the edge can check RSA/ECDSA/EdDSA asynchronously with WebCrypto and then finish
//!   with exactly the same claim logic as the native path.
#![forbid(unsafe_code)]

pub mod alg;
pub mod claims;
pub mod cohort;
pub mod decision;
pub mod headers;
pub mod jwk;
pub mod jws;
pub mod native;
pub mod rollout;
#[cfg(feature = "rules")]
pub mod rules;
pub mod signature;
pub mod source;
pub mod stats;
pub mod verdict;
pub mod verify;

pub use alg::Alg;
pub use decision::{BetaPolicy, Cohort, Decision, Reason};
pub use headers::HeaderPolicy;
pub use jwk::{Jwk, KeyError, KeyMaterial, KeySet};
pub use rollout::{Policy, PolicyError};
pub use verdict::Verdict;
pub use verify::{Pending, Rejection, Verified, Verifier, VerifyPolicy};
