//! The data layer: the client-data schema, a streaming validating CSV reader that turns source
//! files into Arrow record batches (keeping every rejected row with its reason), and Parquet
//! reading and writing for the compiled data set.

pub mod schema;
