//! The full process with every location on S3 (the S3-compatible test server started by
//! `scripts/test.sh`): the same bootstrap and no-op runs as the local scenario, checked through
//! the objects and versions in the bucket. Skips without a server, fails under `CI=true`.

use std::path::Path;

use bytes::Bytes;
use shared::config::{Config, LocationUrl};
use shared::location::Locations;
use shared::records::Decision;
use shared::records::{DeploymentRecord, IngestionRecord, names};
use shared::steps::Pipeline;
use shared::steps::fullprocess::run_full_process;
use shared::store::{ObjectStore, PutMode};

fn s3(bucket: &str, prefix: &str) -> LocationUrl {
    LocationUrl::S3 {
        bucket: bucket.to_string(),
        prefix: prefix.to_string(),
    }
}

#[tokio::test]
async fn full_process_on_s3_bootstraps_then_finds_nothing_new() {
    let Some(test_bucket) = shared::testing::s3_test_bucket("s3_pipeline::full_process").await
    else {
        return;
    };
    let bucket = test_bucket.bucket.as_str();
    let config = Config {
        source_data: s3(bucket, "source"),
        compiled_data: s3(bucket, "compiled"),
        test_data: s3(bucket, "testdata"),
        models: s3(bucket, "models"),
        production: s3(bucket, "production"),
        reports: s3(bucket, "reports"),
        lifecycle: Default::default(),
        seed: Default::default(),
    };
    let mut pipeline = Pipeline::new(Locations::open_with_client(
        &config,
        Some(test_bucket.client.clone()),
    ))
    .unwrap();
    pipeline.dependency_check.index_url = None;
    let locations = &pipeline.locations;

    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let test_csv = std::fs::read(repo.join("data/testdata/testdata.csv")).unwrap();
    locations
        .test_data
        .put("testdata.csv", Bytes::from(test_csv), PutMode::Overwrite)
        .await
        .unwrap();
    for (file, key) in [
        ("dataset3.csv", "dataset3.csv"),
        ("dataset4.csv", "2026/11/data set 4 (ünïcode).csv"),
    ] {
        let body = std::fs::read(repo.join("data/sourcedata").join(file)).unwrap();
        locations
            .source_data
            .put(key, Bytes::from(body), PutMode::Overwrite)
            .await
            .unwrap();
    }

    let first = run_full_process(&pipeline, "s3-run-1").await.unwrap();
    assert_eq!(first.decision, Decision::Bootstrap, "{}", first.reason);
    let (_, record) = locations
        .compiled_data
        .get_json::<IngestionRecord>(names::INGESTION_RECORD, "ingestion record", None)
        .await
        .unwrap();
    assert_eq!(record.files.len(), 2);
    assert!(
        record
            .files
            .iter()
            .any(|f| f.key == "2026/11/data set 4 (ünïcode).csv")
    );
    assert_eq!(record.compiled.as_ref().unwrap().rows, 26);
    // S3 version ids, not the "null" of an unversioned bucket.
    assert!(record.files.iter().all(|f| f.version_id != "null"));

    let (_, deployment) = locations
        .production
        .get_json::<DeploymentRecord>(names::DEPLOYMENT, "deployment", None)
        .await
        .unwrap();
    assert_eq!(
        deployment.model.url,
        format!("s3://{bucket}/production/{}", names::MODEL)
    );
    // Same bucket: the deployment copied server-side, and the copy is a version of its own.
    let production_model = locations.production.head(names::MODEL, None).await.unwrap();
    assert_eq!(production_model.version_id, deployment.model.version_id);
    assert_ne!(
        deployment.model.version_id,
        deployment.model_source.version_id
    );
    let png = locations
        .reports
        .head(names::CONFUSION_MATRIX_PNG, None)
        .await
        .unwrap();
    assert!(png.size > 5_000);
    // The objects carry their media type, so a browser opens the page as a page.
    for (key, expected) in [
        ("reports/index.html", "text/html; charset=utf-8"),
        ("reports/runs/s3-run-1.html", "text/html; charset=utf-8"),
        ("reports/confusionmatrix.png", "image/png"),
        ("reports/last_run.json", "application/json"),
    ] {
        let head = test_bucket
            .client
            .head_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .unwrap();
        assert_eq!(head.content_type(), Some(expected), "{key}");
    }

    let objects_before = test_bucket.store().list("").await.unwrap();
    let second = run_full_process(&pipeline, "s3-run-2").await.unwrap();
    assert_eq!(second.decision, Decision::NoNewData);
    assert_eq!(test_bucket.store().list("").await.unwrap(), objects_before);
}
