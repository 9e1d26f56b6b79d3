//! Finding the S3-compatible test server (moto, started by `scripts/test.sh`) and giving each
//! test a fresh versioned bucket on it. The server is named by
//! [`ENDPOINT_ENV`](crate::testing::ENDPOINT_ENV); credentials and region come from
//! `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and `AWS_REGION` (defaults: `test`, `test`,
//! `us-east-1`, which moto accepts). Without a server, tests that need one are
//! skipped locally but fail in CI (`CI=true`), so a broken CI setup cannot pass silently. Also
//! the local pipelines, event fixtures and Lambda events the handler tests run on, and a stand-in
//! for the Lambda Runtime API ([`runtime_api`]) to run a function's binary against.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use aws_sdk_s3::Client;
use aws_sdk_s3::config::Credentials;

use crate::store::StoreError;
use crate::store::s3::{S3Store, client_for_endpoint, create_versioned_bucket};

pub mod flaky_s3;
pub mod runtime_api;

/// The environment variable holding the test server's URL, e.g. `http://127.0.0.1:5123`.
pub const ENDPOINT_ENV: &str = "RISK_TEST_S3_ENDPOINT";

/// The S3 client type, for tests of crates that do not depend on the SDK themselves.
pub type S3Client = Client;

/// A fresh, empty, versioned bucket on the test server.
#[derive(Debug, Clone)]
pub struct TestBucket {
    pub client: Client,
    pub bucket: String,
    pub endpoint: String,
}

impl TestBucket {
    /// A store over this bucket.
    pub fn store(&self) -> S3Store {
        S3Store::new(self.client.clone(), self.bucket.clone())
    }
}

/// Creates a fresh versioned bucket on the test server for the test `test_name`.
///
/// Returns `None` after printing `SKIPPED (no S3 test server): …` to stderr when [`ENDPOINT_ENV`]
/// is unset or the server does not answer, so the caller can simply return. Panics instead when
/// `CI` is `true`, and always panics when the server answers with an error.
pub async fn s3_test_bucket(test_name: &str) -> Option<TestBucket> {
    let endpoint = match std::env::var(ENDPOINT_ENV) {
        Ok(endpoint) if !endpoint.trim().is_empty() => endpoint.trim().to_string(),
        _ => return skip(test_name, &format!("{ENDPOINT_ENV} is not set")),
    };
    let env_or = |name: &str, default: &str| {
        std::env::var(name)
            .ok()
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| default.to_string())
    };
    let credentials = Credentials::new(
        env_or("AWS_ACCESS_KEY_ID", "test"),
        env_or("AWS_SECRET_ACCESS_KEY", "test"),
        None,
        None,
        "risk-test",
    );
    let client = client_for_endpoint(&endpoint, &env_or("AWS_REGION", "us-east-1"), credentials);
    let bucket = unique_bucket_name();
    match create_versioned_bucket(&client, &bucket).await {
        Ok(()) => Some(TestBucket {
            client,
            bucket,
            endpoint,
        }),
        Err(StoreError::S3 {
            status: None,
            message,
            ..
        }) => skip(
            test_name,
            &format!("the server at {endpoint} ({ENDPOINT_ENV}) does not answer: {message}"),
        ),
        Err(e) => {
            panic!("{test_name}: the S3 test server at {endpoint} refused to create a bucket: {e}")
        }
    }
}

fn skip(test_name: &str, reason: &str) -> Option<TestBucket> {
    if std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true")) {
        panic!("{test_name}: an S3 test server is required in CI, but {reason}");
    }
    eprintln!("SKIPPED (no S3 test server): {test_name}: {reason}");
    None
}

/// A bucket name no other test (in this or a concurrent process) uses: S3 bucket names are at
/// most 63 lowercase characters.
fn unique_bucket_name() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "risk-test-{}-{}-{}",
        std::process::id(),
        nanos,
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// A path in this repository (seed data, event fixtures), for tests.
pub fn repo_path(relative: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative)
}

/// A Lambda event carrying `payload`, under a request id, as a handler receives it.
#[cfg(feature = "lambda")]
pub fn lambda_event(payload: serde_json::Value) -> crate::lambda::LambdaEvent<serde_json::Value> {
    let mut context = lambda_runtime::Context::default();
    context.request_id = "test-request".into();
    crate::lambda::LambdaEvent::new(payload, context)
}

/// Every Lambda event fixture in `infra/events/`, by file name, sorted.
pub fn event_fixtures() -> Vec<(String, serde_json::Value)> {
    let dir = repo_path("infra/events");
    let mut found: Vec<(String, serde_json::Value)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .map(|path| {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            (name, event_fixture_at(&path))
        })
        .collect();
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found
}

/// One Lambda event fixture from `infra/events/`.
pub fn event_fixture(name: &str) -> serde_json::Value {
    event_fixture_at(&repo_path("infra/events").join(name))
}

fn event_fixture_at(path: &std::path::Path) -> serde_json::Value {
    let bytes =
        std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// A pipeline whose every location is a fresh in-memory scratch store.
pub fn scratch_pipeline() -> crate::steps::Pipeline {
    let scratch = crate::location::Location::scratch;
    crate::steps::Pipeline::new(crate::location::Locations {
        source_data: scratch("source"),
        compiled_data: scratch("compiled"),
        test_data: scratch("test"),
        models: scratch("models"),
        production: scratch("production"),
        reports: scratch("reports"),
    })
    .unwrap_or_else(|e| panic!("a scratch pipeline: {e}"))
}

/// A configuration and pipeline whose every location is a fresh directory under `root`:
/// `source/` (empty), `testdata/` (the seed's test file), and `store/{compiled,models,
/// production,reports}`. The dependency check is off, so nothing waits on the network.
pub fn local_pipeline(root: &std::path::Path) -> (crate::config::Config, crate::steps::Pipeline) {
    use crate::config::LocationUrl;
    let dir = |name: &str| {
        let path = root.join(name);
        std::fs::create_dir_all(&path)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
        LocationUrl::File { root: path }
    };
    let config = crate::config::Config {
        source_data: dir("source"),
        compiled_data: dir("store/compiled"),
        test_data: dir("testdata"),
        models: dir("store/models"),
        production: dir("store/production"),
        reports: dir("store/reports"),
        lifecycle: crate::lifecycle::LifecycleSettings::default(),
        seed: Default::default(),
    };
    std::fs::copy(
        repo_path("data/testdata/testdata.csv"),
        root.join("testdata/testdata.csv"),
    )
    .unwrap_or_else(|e| panic!("cannot copy the seed's test data: {e}"));
    let locations = crate::location::Locations::open_with_client(&config, None);
    let mut pipeline = crate::steps::Pipeline::new(locations)
        .unwrap_or_else(|e| panic!("default training parameters are invalid: {e}"));
    pipeline.dependency_check.index_url = None;
    (config, pipeline)
}

/// Copies the seed's source files (`data/sourcedata/*.csv`) into the source directory of a
/// [`local_pipeline`] rooted at `root`, as files placed by hand.
pub fn place_seed_source_files(root: &std::path::Path) {
    for name in ["dataset3.csv", "dataset4.csv"] {
        std::fs::copy(
            repo_path("data/sourcedata").join(name),
            root.join("source").join(name),
        )
        .unwrap_or_else(|e| panic!("cannot copy the seed's {name}: {e}"));
    }
}
