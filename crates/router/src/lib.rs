//! The library half of the `betaroute` binary, shared by its commands, its tests and the fuzz
//! targets:
//!
//! - [`config`]: configuration files in Traefik's shapes, read with located errors.
//! - [`provider`]: where configuration comes from (files, with hot reload), behind one trait.
//! - [`proxy`]: the origin router, a request path of named phases.
#![forbid(unsafe_code)]

pub mod config;
pub mod middleware;
pub mod provider;
pub mod proxy;
