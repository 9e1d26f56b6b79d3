//! S3 store (being written).
