//! A deployed pipeline over local versioned stores in a directory of the caller's, for the API's
//! tests and demos (not used by the pipeline): the seed's test data and source files are copied
//! in and the full process bootstraps a deployment (ingest, train, score, deploy, diagnostics,
//! reports), so every endpoint has something to serve. The dependency check is off, so nothing
//! waits on the network.

use std::path::{Path, PathBuf};

use crate::config::Config;
use crate::steps::Pipeline;
use crate::steps::fullprocess::run_full_process;

/// The configuration file written by [`local_config`]: every location a directory under `root`.
pub const CONFIG_JSON: &str = r#"{
    "source_data": "file://source",
    "compiled_data": "file://store/compiled",
    "test_data": "file://testdata",
    "models": "file://store/models",
    "production": "file://store/production",
    "reports": "file://store/reports"
}"#;

/// Writes `root/config.json` and copies the seed's `testdata/*.csv` from `seed_data` (the
/// repository's `data/` directory) into `root/testdata`. Returns the configuration's path.
pub fn local_config(root: &Path, seed_data: &Path) -> std::io::Result<PathBuf> {
    let test_dir = root.join("testdata");
    std::fs::create_dir_all(&test_dir)?;
    std::fs::copy(
        seed_data.join("testdata/testdata.csv"),
        test_dir.join("testdata.csv"),
    )?;
    let config = root.join("config.json");
    std::fs::write(&config, CONFIG_JSON)?;
    Ok(config)
}

/// Opens the pipeline of a configuration written by [`local_config`], dependency check off.
pub async fn open_pipeline(
    config: &Path,
) -> Result<Pipeline, Box<dyn std::error::Error + Send + Sync>> {
    let config = Config::load(config)?;
    let mut pipeline = Pipeline::open(&config).await?;
    pipeline.dependency_check.index_url = None;
    Ok(pipeline)
}

/// [`local_config`], then copies the seed's `sourcedata/*.csv` into the source location and runs
/// the full process, which bootstraps a deployment.
pub async fn deployed_pipeline(
    root: &Path,
    seed_data: &Path,
) -> Result<(PathBuf, Pipeline), Box<dyn std::error::Error + Send + Sync>> {
    let config = local_config(root, seed_data)?;
    let source = root.join("source");
    std::fs::create_dir_all(&source)?;
    for file in ["dataset3.csv", "dataset4.csv"] {
        std::fs::copy(seed_data.join("sourcedata").join(file), source.join(file))?;
    }
    let pipeline = open_pipeline(&config).await?;
    run_full_process(&pipeline, "run-fixture").await?;
    Ok((config, pipeline))
}
