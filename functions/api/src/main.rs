//! `api`: the Lambda function behind the API's Function URL. Builds the configuration (the
//! `RISK_*` environment variables, or the file named by `RISK_CONFIG`), the locations and the
//! pipeline once per execution environment, then runs the shared axum router on every
//! invocation. A bad configuration fails the cold start with a message naming the setting, rather
//! than failing every request later.

use shared::api::{Api, ApiLimits};

fn main() -> Result<(), shared::lambda::Error> {
    shared::lambda::run_http(|_, pipeline| api::router(Api::new(pipeline, ApiLimits::from_env())))
}
