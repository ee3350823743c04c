//! The library half of the `betaroute` binary: configuration loading and validation, shared by
//! the binary's commands and the fuzz targets.
#![forbid(unsafe_code)]

pub mod config;
