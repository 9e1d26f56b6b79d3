//! The whole attrition-risk pipeline as a library: configuration and storage locations, the
//! versioned object-store abstraction (S3, local filesystem, memory), the validating data layer
//! (CSV in, Arrow in memory, Parquet at rest), the model, the pipeline's records, and every
//! pipeline step. Lambda handlers and the command-line tool are thin wrappers over this crate,
//! so everything here is testable without Lambda or AWS: what the Lambda functions receive
//! (`events`), how they run and fail (`invocation`) and log (`logging`) live here too, without
//! depending on the Lambda runtime. What only some binaries need is behind cargo features, so a
//! Lambda function does not carry it: `lambda` / `lambda-http` (the functions' entry point,
//! [`lambda`]), `client` (`api::client`, for `risk apicalls`), `synth` (the data generator) and
//! `testing` (test helpers and `api::fixture`).

pub mod api;
pub mod config;
pub mod data;
pub mod dependencies;
pub mod drift;
pub mod events;
pub mod invocation;
#[cfg(feature = "lambda")]
pub mod lambda;
pub mod lifecycle;
pub mod location;
pub mod logging;
pub mod memory;
pub mod model;
pub mod records;
pub mod report;
pub mod risklist;
pub mod seed;
pub mod stats;
pub mod steps;
pub mod store;
#[cfg(feature = "synth")]
pub mod synth;
/// Helpers for tests and local demos only (finding the S3 test server, fresh buckets); not used
/// by the pipeline itself.
#[cfg(feature = "testing")]
pub mod testing;
