//! The whole attrition-risk pipeline as a library: configuration and storage locations, the
//! versioned object-store abstraction (S3 and local filesystem), the validating data layer
//! (CSV in, Arrow in memory, Parquet at rest), and — in later modules — the model and every
//! pipeline step. Lambda handlers and the command-line tool are thin wrappers over this crate,
//! so everything here is testable without Lambda or AWS.

pub mod config;
pub mod data;
pub mod model;
pub mod store;
