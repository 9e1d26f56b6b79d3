//! `api`: the Lambda function behind the API's Function URL. Builds the configuration (the
//! `RISK_*` environment variables, or the file named by `RISK_CONFIG`), the locations and the
//! pipeline once per execution environment, then runs the shared axum router on every
//! invocation. A bad configuration fails the cold start with a message naming the setting, rather
//! than failing every request later.

use lambda_http::Error;
use shared::api::{Api, ApiLimits};
use shared::config::{CONFIG_PATH_ENV, Config};
use shared::steps::Pipeline;

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_logging();
    let config = match std::env::var(CONFIG_PATH_ENV) {
        Ok(path) if !path.trim().is_empty() => Config::load(path.as_ref())?,
        _ => Config::from_env()?,
    };
    let pipeline = Pipeline::open(&config).await?;
    let api = Api::new(pipeline, ApiLimits::from_env());
    lambda_http::run(api::router(api)).await
}

/// JSON lines on stdout (CloudWatch); `RUST_LOG` overrides the `info` default.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(false)
        .with_ansi(false)
        .without_time()
        .init();
}
