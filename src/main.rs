//! `risk`: the command-line tool. Runs any pipeline step, or the full process, against the
//! locations in the configuration (local directories by default, S3 when configured), and can
//! place files into the source location the way an upload to the bucket would. All logic lives
//! in the `shared` crate; this file parses arguments, calls a step, and prints what it did.

mod atrisk;
mod bench;
mod bench_incremental;
mod quality;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use clap::{Parser, Subcommand};
use shared::config::{CONFIG_PATH_ENV, Config};
use shared::location::Location;
use shared::records::{Decision, DiagnosticsRecord, FoundFile, ObjectRef, RunRecord};
use shared::steps::diagnostics::{TimingSource, run_diagnostics_with};
use shared::steps::fullprocess::run_full_process;
use shared::steps::ingestion::{IngestScope, ingest};
use shared::steps::reporting::run_reporting;
use shared::steps::scoring::score_model;
use shared::steps::training::{load_model, train_model};
use shared::steps::versions::{ModelVersion, list_model_versions};
use shared::steps::{Pipeline, deployment, new_run_id};
use shared::store::PutMode;

#[derive(Parser)]
#[command(
    name = "risk",
    version,
    about = "Attrition-risk pipeline: ingest client CSVs, train, score, deploy, diagnose, report",
    long_about = "Attrition-risk pipeline: ingest client CSVs, train, score, deploy, diagnose and report, \
                  against the locations named in the configuration (local directories by default; \
                  s3:// locations use the standard AWS credential chain and AWS_ENDPOINT_URL)."
)]
struct Cli {
    /// Configuration file naming every location (overridable per setting by RISK_* variables).
    #[arg(long, global = true, env = CONFIG_PATH_ENV, default_value = "config.json")]
    config: PathBuf,

    /// Print the resulting record as JSON on stdout instead of a summary.
    #[arg(long, global = true)]
    json: bool,

    /// More log detail (-v: debug, -vv: trace). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,

    #[command(subcommand)]
    command: Command,
}

/// Every command. The pipeline commands need the configured locations opened; the others make
/// their own (bench, generate, quality) or must run before any location is opened (init).
#[derive(Subcommand)]
enum Command {
    #[command(flatten)]
    Pipeline(PipelineCommand),
    /// Create every S3 bucket the configuration names, with versioning on (idempotent). For
    /// S3-compatible servers and first-time setups; a SAM deployment creates its own buckets.
    Init,
    /// Generate synthetic client data: monthly snapshot files of N clients (heavy-tailed
    /// activity and size, exact duplicates and missing values at set rates, optional drift),
    /// deterministic by seed, plus a matching test file.
    Generate(bench::GenerateArgs),
    /// Benchmark every step and the full process on the seed data and on generated data sets
    /// (fresh local stores, several runs), and write the table to target/bench/BENCHMARKS.md
    /// (--out BENCHMARKS.md publishes it). Use a release build.
    Bench(bench::BenchArgs),
    /// Benchmark one scheduled run on top of a history: bootstrap a store on a generated
    /// history once, then time the full process from a copy of it for an idle tick, one new
    /// month and one drifted month (a retrain); optionally the pandas pipeline beside it. Use a
    /// release build.
    BenchIncremental(bench_incremental::IncrementalArgs),
    /// Model-quality benchmark of the drift rules: generated monthly streams (stable, sudden
    /// and gradual concept drift, covariate shift, label-rate shift, small batches), several
    /// seeds each, the full process run month by month on fresh in-memory stores; how often it
    /// retrains, how soon it detects a drift, and how the deployed model scores on the next
    /// month against a model trained on the current regime alone. Use a release build.
    Quality(quality::QualityArgs),
}

/// The commands that run against the configured locations.
#[derive(Subcommand)]
enum PipelineCommand {
    /// The full process: ingest new files; bootstrap if nothing is deployed; otherwise check the
    /// deployed model for drift on the new data and retrain, rescore, redeploy, diagnose and
    /// report if it drifted. With no new files it does nothing and writes nothing.
    Fullprocess,
    /// Ingest source CSV files not ingested yet into the compiled data set.
    Ingest {
        /// Only these keys of the source location (default: every new file).
        #[arg(long = "key")]
        keys: Vec<String>,
    },
    /// Train a model on the compiled data set and save it in the models location.
    Train,
    /// Score the latest model in the models location on the test data and save the score.
    Score,
    /// Deploy a scored model, its score and the ingestion record to production: the latest
    /// model by default, or an earlier version (a rollback: every version is kept).
    Deploy {
        /// Model version (in the models location) to deploy; its newest score goes with it.
        #[arg(long)]
        model_version: Option<String>,
    },
    /// Diagnostics of the deployed model: predictions, summary statistics, missing values,
    /// timings (those the deploying run measured) and dependency status.
    Diagnostics {
        /// Re-time ingestion of every source file and training on scratch storage instead of
        /// reporting the deploying run's times (heavy on a long history; writes nowhere else).
        #[arg(long)]
        retime: bool,
    },
    /// Confusion-matrix plot and metric reports of the deployed model on the test data.
    Report,
    /// The clients most at risk of leaving, from the latest risk list: rank, probability, band,
    /// change since the previous list and the main drivers, as a table (or --json).
    /// `--refresh` writes a new list first.
    AtRisk(atrisk::AtRiskArgs),
    /// Write the whole compiled data set (every part, in compiled order) as one Parquet file,
    /// the seed's `finaldata.parquet`.
    ExportCompiled {
        /// File to write.
        #[arg(long)]
        out: PathBuf,
    },
    /// Copy local files into the source location (or, with --to test-data, the test-data
    /// location), as an upload to the bucket would; earlier versions are kept.
    Put {
        /// Files to upload; each keeps its file name as its key.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Key prefix inside the location.
        #[arg(long, default_value = "")]
        prefix: String,
        /// Which location to upload to: the source data (default) or the test data.
        #[arg(long, value_enum, default_value_t = Target::SourceData)]
        to: Target,
    },
    /// Serve the API (prediction, scoring, summarystats, diagnostics, health) over plain HTTP
    /// on a loopback address: the same router as the Lambda function behind its Function URL.
    /// No authentication, hence loopback only. Stops with Ctrl-C. With --json the first line
    /// of stdout is {"url": …} instead of the greeting.
    Serve {
        /// Address to listen on, host:port (loopback only, e.g. localhost:8000 or
        /// [::1]:8000; port 0 picks a free port).
        #[arg(long, default_value = "127.0.0.1:8000")]
        addr: String,
    },
    /// List the model versions in the models location, newest first, with when each was
    /// trained, its F1 on the test data and which is deployed: a rollback is
    /// `risk deploy --model-version <version>` with one of these ids.
    Models,
    /// Call every API endpoint of a base URL and save the combined answers in the reports
    /// location (apireturns.json, apireturns.txt). A failing endpoint is recorded and the others
    /// are still called; the exit status is non-zero if any failed.
    Apicalls {
        /// The API's base URL: `risk serve`'s, `http://127.0.0.1:9000/lambda-url/api` under
        /// `cargo lambda watch`, or the Function URL.
        #[arg(long, env = "RISK_API_URL", default_value = "http://127.0.0.1:8000")]
        base_url: String,
        /// Sign requests with SigV4 for a Function URL with IAM auth (credentials from the
        /// standard AWS chain).
        #[arg(long)]
        sign: bool,
        /// Region to sign for (default: the AWS chain's, e.g. AWS_REGION).
        #[arg(long, requires = "sign")]
        region: Option<String>,
        /// JSON body of the prediction call (default: every CSV file of the test data,
        /// {"location": "test_data"}).
        #[arg(long)]
        prediction_request: Option<String>,
        /// Seconds allowed for each call.
        #[arg(long, default_value_t = 120)]
        timeout: u64,
    },
}

/// Locations `risk put` may upload to: the two that hold user data.
#[derive(Clone, Copy, clap::ValueEnum)]
enum Target {
    SourceData,
    TestData,
}

fn main() -> ExitCode {
    // Process-wide allocator settings (`shared::memory`), before the runtime starts threads.
    shared::memory::tune_allocator();
    let cli = Cli::parse();
    shared::logging::init_cli_logging(match cli.verbose {
        // The quality benchmark runs the full process hundreds of times: warnings only by default.
        0 if matches!(cli.command, Command::Quality(_)) => "warn",
        0 => "info",
        1 => "debug",
        _ => "trace",
    });
    let result = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime.block_on(run(cli)),
        Err(e) => Err(e).context("cannot start the async runtime"),
    };
    bench::report_peak_memory();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", error_report(&e));
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        // These make their own locations: they must work without a usable configuration.
        Command::Bench(args) => bench::run(args).await,
        Command::BenchIncremental(args) => bench_incremental::run(args).await,
        Command::Generate(args) => bench::generate(args, &cli.config).await,
        Command::Quality(args) => quality::run(args).await,
        Command::Init => init_buckets(&load_config(&cli.config)?).await,
        Command::Pipeline(command) => {
            let config = load_config(&cli.config)?;
            let mut pipeline = Pipeline::open(&config).await?;
            // The full process and diagnostics run several steps: give freed memory back
            // between them.
            pipeline.between_steps = shared::memory::release_free_memory;
            run_pipeline_command(pipeline, command, cli.json).await
        }
    }
}

/// The error and its causes on one line, each said once: many errors quote their cause in their
/// own message, which a plain `{:#}` would print again.
fn error_report(error: &anyhow::Error) -> String {
    let mut report = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if report.contains(&text) {
            continue;
        }
        if !report.is_empty() {
            report.push_str(": ");
        }
        report.push_str(&text);
    }
    report
}

fn load_config(path: &std::path::Path) -> Result<Config> {
    match Config::load(path) {
        Err(shared::config::ConfigError::Read { source, .. })
            if source.kind() == std::io::ErrorKind::NotFound =>
        {
            let looked_at = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
            bail!(
                "no configuration file at {}: run risk in the repository (where config.json is), or name the file with --config or {CONFIG_PATH_ENV}",
                looked_at.display()
            )
        }
        loaded => loaded.with_context(|| format!("configuration {} is not usable", path.display())),
    }
}

/// Runs one command against the opened locations and prints what it did (or, with `json`, the
/// resulting record).
async fn run_pipeline_command(
    pipeline: Pipeline,
    command: PipelineCommand,
    json: bool,
) -> Result<()> {
    let run_id = new_run_id();
    match command {
        PipelineCommand::Fullprocess => {
            let record = run_full_process(&pipeline, &run_id).await?;
            let run_records = run_record_objects(&pipeline, &record).await;
            emit(json, &record, || print_run(&record, &run_records))
        }
        PipelineCommand::Ingest { keys } => ingest_command(&pipeline, keys, &run_id, json).await,
        PipelineCommand::Train => train_command(&pipeline, json).await,
        PipelineCommand::Score => score_command(&pipeline, &run_id, json).await,
        PipelineCommand::Deploy { model_version } => {
            deploy_command(&pipeline, model_version.as_deref(), &run_id, json).await
        }
        PipelineCommand::Diagnostics { retime } => {
            let timing = if retime {
                TimingSource::Retime
            } else {
                TimingSource::DeployingRun
            };
            let (record, written) = run_diagnostics_with(&pipeline, &run_id, timing).await?;
            emit(json, &record, || print_diagnostics(&record, &written))
        }
        PipelineCommand::Report => {
            let outcome = run_reporting(&pipeline, &run_id).await?;
            emit(json, &outcome.report, || {
                println!(
                    "F1 {:.4} on {} test rows. Wrote {}, {} and {}",
                    outcome.report.metrics.f1,
                    outcome.report.metrics.rows,
                    describe(&outcome.png),
                    describe(&outcome.json),
                    describe(&outcome.markdown)
                );
                if let Some(pages) = &outcome.html {
                    println!("Report page: {}", pages.latest.url);
                }
            })
        }
        PipelineCommand::AtRisk(args) => atrisk::run(&pipeline, args, &run_id, json).await,
        PipelineCommand::ExportCompiled { out } => {
            let (data, bytes) = shared::steps::compiled::export_compiled(&pipeline).await?;
            std::fs::write(&out, bytes)
                .with_context(|| format!("cannot write {}", out.display()))?;
            emit(json, &data, || {
                println!(
                    "Wrote {} rows ({} parts) to {}",
                    data.rows,
                    data.parts().len(),
                    out.display()
                )
            })
        }
        PipelineCommand::Put { files, prefix, to } => {
            let location = match to {
                Target::SourceData => &pipeline.locations.source_data,
                Target::TestData => &pipeline.locations.test_data,
            };
            put_files(location, &files, &prefix).await
        }
        PipelineCommand::Serve { addr } => serve(pipeline, &addr, json).await,
        PipelineCommand::Models => {
            let versions = list_model_versions(&pipeline).await?;
            emit(json, &versions, || print_model_versions(&versions))
        }
        PipelineCommand::Apicalls {
            base_url,
            sign,
            region,
            prediction_request,
            timeout,
        } => {
            let options = ApicallsOptions {
                base_url,
                sign,
                region,
                prediction_request,
                timeout,
            };
            apicalls(&pipeline, options, json).await
        }
    }
}

/// `risk ingest`: every new source file, or only the named keys.
async fn ingest_command(
    pipeline: &Pipeline,
    keys: Vec<String>,
    run_id: &str,
    json: bool,
) -> Result<()> {
    let scope = if keys.is_empty() {
        IngestScope::All
    } else {
        IngestScope::Keys(keys)
    };
    let outcome = ingest(pipeline, &scope, run_id).await?;
    emit(json, &outcome.record, || {
        if !outcome.found_new_files() {
            println!(
                "No new source files in {}.",
                pipeline.locations.source_data.url()
            );
            return;
        }
        for file in &outcome.new_files {
            println!("{}", describe_file(&FoundFile::from(file)));
        }
        if let Some(compiled) = &outcome.record.compiled {
            println!(
                "Compiled data: {} rows at {}",
                compiled.rows,
                describe(&compiled.object)
            );
        }
    })
}

/// `risk train`: a new model on the compiled data, saved in the models location.
async fn train_command(pipeline: &Pipeline, json: bool) -> Result<()> {
    let trained = train_model(pipeline).await?;
    emit(json, &trained.model, || {
        println!(
            "Trained on {} rows; model saved at {} (objective {:.4}, gradient norm {:.2e})",
            trained.model.rows.rows_used,
            describe(&trained.artifact),
            trained.model.diagnostics.objective,
            trained.model.diagnostics.gradient_norm
        )
    })
}

/// `risk score`: the latest model in the models location, on the test data.
async fn score_command(pipeline: &Pipeline, run_id: &str, json: bool) -> Result<()> {
    let (model_ref, model) = load_model(&pipeline.locations.models, None).await?;
    let scored = score_model(pipeline, &model_ref, &model, run_id).await?;
    emit(json, &scored.record, || {
        let m = &scored.record.metrics;
        println!(
            "Model {}: F1 {:.4}, precision {:.4}, recall {:.4}, accuracy {:.4} on {} test rows; saved at {}",
            model_ref.version_id,
            m.f1,
            m.precision,
            m.recall,
            m.accuracy,
            m.rows,
            describe(&scored.artifact)
        )
    })
}

/// `risk deploy`: the latest scored model, or the named version (a rollback).
async fn deploy_command(
    pipeline: &Pipeline,
    model_version: Option<&str>,
    run_id: &str,
    json: bool,
) -> Result<()> {
    let record = deployment::deploy_scored(pipeline, model_version, None, run_id)
        .await?
        .record;
    emit(json, &record, || {
        println!(
            "Deployed model {} (F1 {:.4}) to {}",
            describe(&record.model),
            record.f1,
            pipeline.locations.production.url()
        )
    })
}

/// `risk put`: each file under its own name (below `prefix`), as an upload would.
async fn put_files(location: &Location, files: &[PathBuf], prefix: &str) -> Result<()> {
    for file in files {
        let name = file
            .file_name()
            .and_then(|n| n.to_str())
            .with_context(|| format!("{} has no usable file name", file.display()))?;
        let key = if prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}/{name}", prefix.trim_end_matches('/'))
        };
        let body = tokio::fs::read(file)
            .await
            .with_context(|| format!("cannot read {}", file.display()))?;
        let meta = location
            .put(&key, Bytes::from(body), PutMode::Overwrite)
            .await?;
        println!(
            "{} -> {} (version {})",
            file.display(),
            location.object_url(&key),
            meta.version_id
        );
    }
    Ok(())
}

async fn serve(pipeline: Pipeline, addr: &str, json: bool) -> Result<()> {
    let listener = shared::api::server::bind_name(addr).await?;
    let bound = listener.local_addr()?;
    let api = shared::api::Api::new(pipeline, shared::api::ApiLimits::from_env());
    // The first line of stdout is the address, for scripts and tests that ask for port 0.
    if json {
        println!(
            "{}",
            serde_json::json!({ "url": format!("http://{bound}") })
        );
    } else {
        println!(
            "Serving the API on http://{bound}\n  GET /health, POST /prediction, GET /scoring, GET /summarystats, GET /diagnostics, GET /drift (Ctrl-C stops)"
        );
    }
    shared::api::server::serve(listener, shared::api::router(api), std::future::pending()).await;
    Ok(())
}

struct ApicallsOptions {
    base_url: String,
    sign: bool,
    region: Option<String>,
    prediction_request: Option<String>,
    timeout: u64,
}

async fn apicalls(pipeline: &Pipeline, options: ApicallsOptions, json: bool) -> Result<()> {
    use shared::api::client::{ClientOptions, Signer, call_all, standard_calls};
    let prediction_request = options
        .prediction_request
        .as_deref()
        .map(serde_json::from_str)
        .transpose()
        .context("--prediction-request is not JSON")?;
    let signer = if options.sign {
        Some(Signer::from_env(options.region).await?)
    } else {
        None
    };
    let client_options = ClientOptions {
        timeout: std::time::Duration::from_secs(options.timeout),
        signer,
    };
    let calls = standard_calls(prediction_request);
    let returns = call_all(&options.base_url, &calls, &client_options).await?;
    let (json_ref, text_ref) = returns.save(&pipeline.locations.reports).await?;
    emit(json, &returns, || {
        for result in &returns.results {
            println!(
                "{:<13} {:<4} {:<14} {:>8} {:>9.1} ms{}",
                result.endpoint,
                result.method,
                result.path,
                result
                    .status
                    .map_or_else(|| "-".to_string(), |s| s.to_string()),
                result.elapsed_ms,
                result
                    .error
                    .as_deref()
                    .map(|e| format!("  {e}"))
                    .unwrap_or_default()
            );
        }
        println!("Saved {} and {}", describe(&json_ref), describe(&text_ref));
    })?;
    if returns.failed > 0 {
        bail!(
            "{} of {} endpoints failed (the answers are saved)",
            returns.failed,
            returns.results.len()
        );
    }
    Ok(())
}

/// `risk init`: builds the S3 client itself, once, and only when some location is on S3 (so it
/// runs before `Locations::open`, which would build another).
async fn init_buckets(config: &Config) -> Result<()> {
    let has_s3 = config
        .named_locations()
        .iter()
        .any(|(_, url)| matches!(url, shared::config::LocationUrl::S3 { .. }));
    if !has_s3 {
        println!("Every location is a local directory; nothing to create.");
        return Ok(());
    }
    let client = shared::store::s3::client_from_env().await;
    for bucket in shared::location::create_configured_buckets(config, &client).await? {
        println!("s3://{bucket}: ready, versioning enabled");
    }
    Ok(())
}

fn fmt_opt(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_string(), |v| format!("{v:.3}"))
}

fn describe_file(file: &FoundFile) -> String {
    format!(
        "{:<36} {:?}: {} accepted, {} rejected, {} duplicates{}",
        file.key,
        file.outcome,
        file.rows_accepted,
        file.rows_rejected,
        file.rows_duplicate,
        file.error
            .as_deref()
            .map(|e| format!(" — {e}"))
            .unwrap_or_default()
    )
}

fn describe(object: &ObjectRef) -> String {
    format!("{} (version {})", object.url, object.version_id)
}

fn emit<T: serde::Serialize>(json: bool, value: &T, human: impl FnOnce()) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(value)?);
    } else {
        human();
    }
    Ok(())
}

fn print_diagnostics(record: &DiagnosticsRecord, written: &ObjectRef) {
    println!("Diagnostics saved at {}", describe(written));
    println!("Predictions ({} rows):", record.predictions.rows.len());
    for row in record.predictions.rows.iter().take(10) {
        println!(
            "  {:<12} risk {:.3} -> {}",
            row.corporation.as_deref().unwrap_or("(missing)"),
            row.probability,
            row.predicted
        );
    }
    println!(
        "Summary of the compiled data ({} rows):",
        record.summary.rows
    );
    for column in &record.summary.columns {
        println!(
            "  {:<20} mean {:>12} median {:>10} std {:>12} missing {:.1}%",
            column.column,
            fmt_opt(column.mean),
            fmt_opt(column.median),
            fmt_opt(column.std),
            column.missing_percent
        );
    }
    match (&record.timings, &record.timing_error) {
        (Some(t), _) => println!(
            "Timings: ingestion {:.1} ms, training {:.1} ms ({} files, {} rows; {})",
            t.ingestion_ms,
            t.training_ms,
            t.source_files,
            t.rows_compiled,
            match (&t.run_id, &t.scratch_location) {
                (Some(run), _) => format!("as run {run} measured them"),
                (None, Some(scratch)) => format!("re-timed on {scratch}"),
                (None, None) => "re-timed".to_string(),
            }
        ),
        (None, Some(e)) => println!("Timings: not measured: {e}"),
        (None, None) => {}
    }
    println!("Dependencies:");
    for dep in &record.dependencies {
        println!(
            "  {:<20} {:<10} latest {:<10} {:?}{}",
            dep.name,
            dep.current,
            dep.latest.as_deref().unwrap_or("?"),
            dep.status,
            dep.reason
                .as_deref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default()
        );
    }
}

/// The run record's two objects (`runs/<run>.json`, `last_run.json`), which the record cannot
/// list itself; none for a run that wrote nothing.
async fn run_record_objects(pipeline: &Pipeline, record: &RunRecord) -> Vec<ObjectRef> {
    if record.decision == Decision::NoNewData {
        return Vec::new();
    }
    let reports = &pipeline.locations.reports;
    let mut found = Vec::new();
    for name in [
        format!(
            "{}/{}.json",
            shared::records::names::RUNS_PREFIX,
            record.run_id
        ),
        shared::records::names::LAST_RUN.to_string(),
    ] {
        match reports.head(&name, None).await {
            Ok(meta) => found.push(ObjectRef::new(reports, &meta)),
            Err(e) => tracing::warn!("cannot find the run record {name}: {e}"),
        }
    }
    found
}

fn print_model_versions(versions: &[ModelVersion]) {
    if versions.is_empty() {
        println!("No model versions yet: run `risk fullprocess` (it bootstraps) or `risk train`.");
        return;
    }
    // Local version ids are 20 digits, S3's up to 32 characters or more.
    let width = versions
        .iter()
        .map(|v| v.version_id.len())
        .max()
        .unwrap_or(0)
        .max(20)
        + 2;
    println!(
        "{:<width$} {:<20} {:>8} {:>9} {:>14}  deployed",
        "version", "trained at", "rows", "threshold", "F1 when scored"
    );
    for version in versions {
        let line = format!(
            "{:<width$} {:<20} {:>8} {:>9.3} {:>14}  {}",
            version.version_id,
            version.trained_at.format("%Y-%m-%d %H:%M:%S"),
            version.rows_trained,
            version.threshold,
            version
                .f1
                .map_or_else(|| "unscored".to_string(), |f1| format!("{f1:.4}")),
            if version.deployed { "*" } else { "" }
        );
        println!("{}", line.trim_end());
    }
}

fn print_run(record: &RunRecord, run_records: &[ObjectRef]) {
    println!("Run {}: {:?}", record.run_id, record.decision);
    println!("  {}", record.reason);
    for file in &record.new_files {
        println!("  new file {}", describe_file(file));
    }
    if record.decision == Decision::NoNewData {
        println!("  Nothing was written.");
        return;
    }
    // The models location's ids: the ones `risk models` lists and `risk deploy` takes.
    match (&record.model_version_before, &record.model_version_after) {
        (before, Some(after)) if before.as_ref() != Some(after) => println!(
            "  deployed model version {after}{}",
            before
                .as_ref()
                .map(|b| format!(" (was {b}; `risk deploy --model-version {b}` rolls back)"))
                .unwrap_or_default()
        ),
        (_, Some(kept)) => println!("  deployed model version {kept} (unchanged)"),
        _ => {}
    }
    if let Some(challenger) = &record.challenger
        && record.decision == Decision::ChallengerRejected
    {
        println!(
            "  rejected challenger kept as model version {}",
            challenger.version_id
        );
    }
    if let Some(f1) = record.new_model_f1 {
        println!("  new model F1 on the test data: {f1:.4}");
    }
    for step in &record.steps {
        println!("  {:<20} {:>9.1} ms", step.step, step.ms);
    }
    println!(
        "  wrote {} objects:",
        record.wrote.len() + run_records.len()
    );
    for object in record.wrote.iter().chain(run_records) {
        println!("    {}", describe(object));
    }
    let page = format!("/{}", shared::report::INDEX_HTML);
    if let Some(page) = record.wrote.iter().find(|o| o.url.ends_with(&page)) {
        println!("  Report page: {}", page.url);
    }
}
