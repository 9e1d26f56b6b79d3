//! `risk generate` and `risk bench`: synthetic data at real scale, and the benchmark harness that
//! times every pipeline step and the full process on it. Each step runs as its own child process
//! of this same binary on a fresh local store (as a Lambda function or the original per-step
//! Python scripts would), timed from spawn to exit, with its peak resident memory as the child
//! reports it on exit (`VmHWM`; the kernel's `ru_maxrss` from `wait4` is the fallback for other
//! binaries, and overstates small children), so the numbers include process start-up and
//! everything the step touches. In-process measurements add what a child process
//! cannot isolate: CSV parsing on one core (rows per second, input already in memory) and the
//! model fit alone. The results go into a marked section of a Markdown file (under `target/`
//! unless `--out` names the tracked `BENCHMARKS.md`), with the command and the machine, leaving
//! the rest of the file as written by hand.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command as Process, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use shared::config::Config;
use shared::data::CsvBatchReader;
use shared::location::{Location, Locations};
use shared::model::{TrainingParams, train};
use shared::records::names;
use shared::records::{Decision, IngestionRecord, RunRecord};
use shared::steps::compiled::{FetchedPart, decode_rows};
use shared::synth::{Drift, DriftKind, GENERATOR_VERSION, SynthSpec, TEST_FILE, write_synthetic};

/// `risk generate`: synthetic monthly client files and a matching test file.
#[derive(Args, Debug)]
pub struct GenerateArgs {
    /// Directory for the monthly files (default: the configured source location).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Directory for the test file (default: no test file is written, so the configured test
    /// data is never replaced by accident).
    #[arg(long)]
    test_out: Option<PathBuf>,
    /// Write the matching test file into the configured test-data location instead (a new
    /// version of testdata.csv there; every earlier version is kept), so the next scoring is
    /// on data of the same process.
    #[arg(long, conflicts_with = "test_out")]
    replace_test_data: bool,
    /// Clients, i.e. rows per monthly file.
    #[arg(long, default_value_t = 10_000)]
    clients: usize,
    /// Monthly files.
    #[arg(long, default_value_t = 12)]
    months: usize,
    /// Write only the files from this month on (earlier months are simulated, not written):
    /// adds later months to a data set generated before with the same settings.
    #[arg(long, default_value_t = 0)]
    from_month: usize,
    /// Seed of the generator: the same settings and seed give byte-identical files.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Share of rows that repeat the client's previous-month row exactly.
    #[arg(long, default_value_t = 0.05)]
    duplicate_rate: f64,
    /// Share of feature values left empty.
    #[arg(long, default_value_t = 0.01)]
    missing_rate: f64,
    /// From this month on the process drifts, as --drift-kind says (by default a sudden
    /// concept drift: rising activity, not falling, makes clients leave).
    #[arg(long)]
    drift_from_month: Option<usize>,
    /// What drifts: sudden (the activity→attrition relation reverses at once), gradual (it
    /// turns over --drift-months months), covariate (activity levels and new clients' sizes
    /// grow, the relation unchanged), label-rate (the odds of leaving change, the slopes
    /// unchanged).
    #[arg(
        long,
        value_enum,
        default_value = "sudden",
        requires = "drift_from_month"
    )]
    drift_kind: DriftKindArg,
    /// Gradual drift: months the relation takes to turn round (the last fully reversed).
    #[arg(long, default_value_t = DriftKind::DEFAULT_GRADUAL_MONTHS)]
    drift_months: usize,
    /// Covariate shift: factor on every client's activity.
    #[arg(long, default_value_t = DriftKind::DEFAULT_ACTIVITY_SCALE)]
    activity_scale: f64,
    /// Covariate shift: factor on the employees of clients who join after it begins.
    #[arg(long, default_value_t = DriftKind::DEFAULT_SIZE_SCALE)]
    size_scale: f64,
    /// Label-rate shift: factor on every client's odds of leaving.
    #[arg(long, default_value_t = DriftKind::DEFAULT_EXIT_ODDS_SCALE)]
    exit_odds_scale: f64,
    /// Rows of the test file.
    #[arg(long, default_value_t = 10_000)]
    test_rows: usize,
    /// Draw the test file from the process as it is at this month (default: the month after
    /// the last file), e.g. a month before a drift or after it.
    #[arg(long)]
    test_month: Option<usize>,
}

/// `--drift-kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DriftKindArg {
    Sudden,
    Gradual,
    Covariate,
    LabelRate,
}

impl GenerateArgs {
    /// The drift these arguments ask for, if any.
    fn drift(&self) -> Option<Drift> {
        let kind = match self.drift_kind {
            DriftKindArg::Sudden => DriftKind::Sudden,
            DriftKindArg::Gradual => DriftKind::Gradual {
                months: self.drift_months,
            },
            DriftKindArg::Covariate => DriftKind::Covariate {
                activity_scale: self.activity_scale,
                size_scale: self.size_scale,
            },
            DriftKindArg::LabelRate => DriftKind::LabelRate {
                exit_odds_scale: self.exit_odds_scale,
            },
        };
        self.drift_from_month
            .map(|from_month| Drift { from_month, kind })
    }
}

/// Runs `risk generate`.
pub async fn generate(args: GenerateArgs, config: &Path) -> Result<()> {
    let configured = if args.out.is_none() || args.replace_test_data {
        let config = Config::load(config)
            .with_context(|| format!("configuration {} is not usable", config.display()))?;
        // Seeded first, as any pipeline command would, so generated files join the seed's.
        shared::seed::seed_first_use(&config)?;
        Some(Locations::open(&config).await)
    } else {
        None
    };
    // Absolute, so the printed location is a well-formed file:// URL.
    let local = |dir: &PathBuf| Ok::<_, std::io::Error>(Location::local(std::path::absolute(dir)?));
    let source = match (&args.out, &configured) {
        (Some(dir), _) => local(dir)?,
        (None, Some(locations)) => locations.source_data.clone(),
        (None, None) => bail!("no source location: pass --out or a usable configuration"),
    };
    let test = match (&args.test_out, &configured) {
        (Some(dir), _) => Some(local(dir)?),
        (None, Some(locations)) if args.replace_test_data => Some(locations.test_data.clone()),
        _ => None,
    };
    let spec = SynthSpec {
        clients: args.clients,
        months: args.months,
        first_month_written: args.from_month,
        seed: args.seed,
        duplicate_rate: args.duplicate_rate,
        missing_rate: args.missing_rate,
        drift: args.drift(),
        test_rows: if test.is_some() { args.test_rows } else { 0 },
        test_month: args.test_month,
    };
    if let Err(problem) = spec.validate() {
        bail!("cannot generate: {problem}");
    }
    let started = Instant::now();
    // Without a test directory nothing is written there; any location will do.
    let test_location = test.unwrap_or_else(|| Location::scratch("unused"));
    let outcome = write_synthetic(&spec, &source, &test_location).await?;
    println!(
        "Wrote {} files, {} rows, {:.1} MB to {} in {:.2} s",
        outcome.files.len(),
        outcome.rows,
        outcome.bytes as f64 / 1e6,
        source.url(),
        started.elapsed().as_secs_f64()
    );
    if let Some(test) = &outcome.test_file {
        println!("Test file: {test}");
    }
    Ok(())
}

/// The benchmark data sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Size {
    /// The seed data: `data/sourcedata` and `data/testdata`.
    #[value(name = "S")]
    S,
    /// 10 monthly files of 10,000 clients: 100,000 rows.
    #[value(name = "M")]
    M,
    /// 100 monthly files of 10,000 clients: 1,000,000 rows.
    #[value(name = "L")]
    L,
    /// 100 monthly files of 100,000 clients: 10,000,000 rows.
    #[value(name = "XL")]
    Xl,
}

impl Size {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Size::S => "S",
            Size::M => "M",
            Size::L => "L",
            Size::Xl => "XL",
        }
    }

    /// The generator settings; `None` for the seed data.
    pub(crate) fn spec(self) -> Option<SynthSpec> {
        let (clients, months) = match self {
            Size::S => return None,
            Size::M => (10_000, 10),
            Size::L => (10_000, 100),
            Size::Xl => (100_000, 100),
        };
        Some(SynthSpec {
            clients,
            months,
            seed: 42,
            duplicate_rate: 0.05,
            missing_rate: 0.01,
            test_rows: 10_000,
            ..SynthSpec::default()
        })
    }
}

/// Whether the local store flushes every write to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Fsync {
    On,
    Off,
}

impl Fsync {
    fn name(self) -> &'static str {
        match self {
            Fsync::On => "on",
            Fsync::Off => "off",
        }
    }
}

/// `risk bench`: times the pipeline on data sets of several sizes.
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Data sets, comma-separated: S (the seed data), M (100k rows), L (1M), XL (10M).
    #[arg(long, value_delimiter = ',', default_value = "S,M,L")]
    sizes: Vec<Size>,
    /// Runs per data set (median and spread are reported).
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Local-store fsync for the runs: on (the default, durable) or off.
    #[arg(long, value_enum, default_value = "on")]
    fsync: Fsync,
    /// Time only the full process, not each step in its own process.
    #[arg(long)]
    full_only: bool,
    /// Where generated data sets are kept and reused.
    #[arg(long, default_value = "target/bench/data")]
    data_dir: PathBuf,
    /// Where the fresh stores of each run are made (removed after each run).
    #[arg(long, default_value = "target/bench/work")]
    work_dir: PathBuf,
    /// The seed data (the S data set): a directory with `sourcedata/` and `testdata/`.
    #[arg(long, default_value = "data")]
    seed_data: PathBuf,
    /// The Markdown file the results go into, in their own marked section. By default a file
    /// under target/, so a run never rewrites the tracked BENCHMARKS.md; pass
    /// `--out BENCHMARKS.md` to publish (the named section is replaced whole, the rest kept).
    #[arg(long, default_value = "target/bench/BENCHMARKS.md")]
    out: PathBuf,
    /// Name of the section in `--out` (several runs of the harness can keep separate tables:
    /// give a partial run, e.g. `--sizes S`, its own section so it does not replace the main
    /// table).
    #[arg(long, default_value = "main")]
    section: String,
    /// Benchmark another build of `risk` (e.g. an older commit's) instead of this one. The
    /// in-process measurements (CSV parse rate, fit alone) are then left out: they would be
    /// this build's.
    #[arg(long)]
    risk: Option<PathBuf>,
}

/// A child process's wall time and peak memory.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Measured {
    pub(crate) wall: Duration,
    pub(crate) max_rss_kib: u64,
}

/// Environment variable naming a file in which `risk` writes its own peak resident memory (KiB)
/// as it exits; see [`report_peak_memory`].
pub const PEAK_MEMORY_FILE_ENV: &str = "RISK_BENCH_PEAK_MEMORY_FILE";

/// Writes this process's peak resident memory (`VmHWM`, KiB) to the file named by
/// [`PEAK_MEMORY_FILE_ENV`], when it is set. The harness needs the child's own figure: the
/// kernel's `ru_maxrss` for a spawned child also counts the parent's peak (`exec` folds the
/// memory it replaces into the child's maximum), which made every step look as large as the
/// harness itself.
pub fn report_peak_memory() {
    let Some(path) = std::env::var_os(PEAK_MEMORY_FILE_ENV) else {
        return;
    };
    let peak = fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmHWM:"))
                .and_then(|rest| rest.split_whitespace().next().map(str::to_string))
        });
    if let Some(kib) = peak {
        let _ = fs::write(path, kib);
    }
}

/// Runs `program args…`, stdout and stderr to files in `logs`, and measures it.
pub(crate) fn run_measured(
    program: &Path,
    args: &[&str],
    envs: &[(&str, &str)],
    logs: &Path,
    label: &str,
) -> Result<Measured> {
    let stdout = fs::File::create(logs.join(format!("{label}.out")))?;
    let stderr = fs::File::create(logs.join(format!("{label}.err")))?;
    let peak_file = logs.join(format!("{label}.peak"));
    let _ = fs::remove_file(&peak_file);
    let started = Instant::now();
    let child = Process::new(program)
        .args(args)
        .envs(envs.iter().copied())
        .env(PEAK_MEMORY_FILE_ENV, &peak_file)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .spawn()
        .with_context(|| format!("cannot start {}", program.display()))?;
    let (status, max_rss_kib) = wait_with_usage(child.id())?;
    let wall = started.elapsed();
    if status != 0 {
        let log = fs::read_to_string(logs.join(format!("{label}.err"))).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(15).collect();
        bail!(
            "{label} ({} {}) failed with status {status}:\n{}",
            program.display(),
            args.join(" "),
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
    // The child's own high-water mark when it reports one (this binary does); otherwise the
    // kernel's figure, which is at least the harness's own peak.
    let max_rss_kib = fs::read_to_string(&peak_file)
        .ok()
        .and_then(|kib| kib.trim().parse().ok())
        .unwrap_or(max_rss_kib);
    Ok(Measured { wall, max_rss_kib })
}

/// Reaps the child `pid` and returns its exit status (or 128 + signal) and its `ru_maxrss` in
/// KiB, which only the reaping `wait4` call can report per child (an upper bound: see
/// [`report_peak_memory`]).
fn wait_with_usage(pid: u32) -> Result<(i32, u64)> {
    let pid = libc::pid_t::try_from(pid).context("child pid out of range")?;
    let mut status: libc::c_int = 0;
    // SAFETY: `rusage` is a plain C struct for which all-zero bytes are a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: both pointers point to live, writable locals of the types wait4 expects.
        let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if reaped == pid {
            break;
        }
        let error = std::io::Error::last_os_error();
        if error.kind() != std::io::ErrorKind::Interrupted {
            return Err(error).context("waiting for a benchmark child");
        }
    }
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        -1
    };
    // Linux reports ru_maxrss in KiB.
    Ok((code, u64::try_from(usage.ru_maxrss).unwrap_or(0)))
}

/// A data set ready on disk.
pub(crate) struct DataSet {
    pub(crate) size: Size,
    pub(crate) source: PathBuf,
    pub(crate) test: PathBuf,
    pub(crate) rows: u64,
    files: usize,
    bytes: u64,
}

pub(crate) fn csv_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| {
            path.extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("csv"))
        })
        .collect();
    files.sort();
    Ok(files)
}

/// Generates a data set, or reuses it when the settings it was made with are unchanged.
pub(crate) async fn prepare(size: Size, data_dir: &Path, seed_data: &Path) -> Result<DataSet> {
    let root = data_dir.join(size.name());
    let (source, test) = (root.join("source"), root.join("test"));
    let marker = root.join("spec.txt");
    let wanted = match size.spec() {
        Some(spec) => format!("generator {GENERATOR_VERSION}: {spec:?}"),
        None => format!("seed data from {}", fs::canonicalize(seed_data)?.display()),
    };
    if fs::read_to_string(&marker).ok().as_deref() != Some(wanted.as_str()) {
        if root.exists() {
            fs::remove_dir_all(&root)?;
        }
        fs::create_dir_all(&source)?;
        fs::create_dir_all(&test)?;
        let started = Instant::now();
        match size.spec() {
            Some(spec) => {
                write_synthetic(&spec, &Location::local(&source), &Location::local(&test)).await?;
            }
            None => {
                for file in csv_files(&seed_data.join("sourcedata"))? {
                    fs::copy(&file, source.join(file.file_name().unwrap_or_default()))?;
                }
                fs::copy(
                    seed_data.join("testdata").join("testdata.csv"),
                    test.join(TEST_FILE),
                )?;
            }
        }
        fs::write(&marker, &wanted)?;
        eprintln!(
            "bench: data set {} ready in {:.1} s",
            size.name(),
            started.elapsed().as_secs_f64()
        );
    } else {
        eprintln!(
            "bench: reusing data set {} in {}",
            size.name(),
            root.display()
        );
    }
    let files = csv_files(&source)?;
    let mut rows = 0u64;
    let mut bytes = 0u64;
    for file in &files {
        let body = fs::read(file)?;
        bytes += body.len() as u64;
        rows += data_rows(&body);
    }
    Ok(DataSet {
        size,
        source,
        test,
        rows,
        files: files.len(),
        bytes,
    })
}

/// The data rows of a CSV file's bytes (lines, less the header).
pub(crate) fn data_rows(body: &[u8]) -> u64 {
    body.iter()
        .filter(|&&b| b == b'\n')
        .count()
        .saturating_sub(1) as u64
}

/// The run record a `risk --json fullprocess` printed into `path`.
pub(crate) fn read_run_record(path: &Path) -> Result<RunRecord> {
    serde_json::from_slice(&fs::read(path)?).with_context(|| {
        format!(
            "the full process did not print a run record ({})",
            path.display()
        )
    })
}

/// A fresh set of store directories in `dir` and the configuration naming them, with `source`
/// and `test` as the source and test locations.
pub(crate) fn fresh_store(dir: &Path, source: &Path, test: &Path) -> Result<PathBuf> {
    if dir.exists() {
        fs::remove_dir_all(dir)?;
    }
    fs::create_dir_all(dir)?;
    let dir = fs::canonicalize(dir)?;
    let url = |path: &Path| format!("file://{}", path.display());
    let config = serde_json::json!({
        "source_data": url(&fs::canonicalize(source)?),
        "compiled_data": url(&dir.join("compiled")),
        "test_data": url(&fs::canonicalize(test)?),
        "models": url(&dir.join("models")),
        "production": url(&dir.join("production")),
        "reports": url(&dir.join("reports")),
    });
    let path = dir.join("config.json");
    fs::write(&path, serde_json::to_vec_pretty(&config)?)?;
    Ok(path)
}

/// Every measurement of one data set.
#[derive(Default)]
struct Results {
    /// Per step run in its own process: wall times and peak memory, one per run.
    steps: Vec<(&'static str, Vec<Measured>)>,
    full: Vec<Measured>,
    /// Step timings inside the full process (from its run record), per step name.
    inner: Vec<(String, Vec<f64>)>,
    parse_seconds: Vec<f64>,
    fit_seconds: Vec<f64>,
    compiled_rows: u64,
    duplicates_dropped: u64,
    f1: Option<f64>,
    roc_auc: Option<f64>,
}

/// Each step's name (as the run record's step timings name it) and its command. The risk list
/// runs last, on what the others wrote: the same work the full process does after deploying.
const STEPS: [(&str, &[&str]); 7] = [
    ("ingestion", &["ingest"]),
    ("training", &["train"]),
    ("scoring", &["score"]),
    ("deployment", &["deploy"]),
    ("diagnostics", &["diagnostics"]),
    ("reporting", &["report"]),
    ("risk_list", &["--json", "at-risk", "--refresh"]),
];

fn bench_data_set(data: &DataSet, args: &BenchArgs, risk: &Path) -> Result<Results> {
    let mut results = Results {
        steps: STEPS.iter().map(|(name, _)| (*name, Vec::new())).collect(),
        ..Results::default()
    };
    let envs = [
        ("RISK_DEPENDENCY_CHECK", "off"),
        ("RISK_LOCAL_FSYNC", args.fsync.name()),
        ("RUST_LOG", "warn"),
    ];
    let work = args.work_dir.join(data.size.name());
    for run in 0..args.runs {
        if !args.full_only {
            let store = work.join("steps");
            let config = fresh_store(&store, &data.source, &data.test)?;
            let config = config.to_string_lossy().into_owned();
            for (index, (name, command)) in STEPS.iter().enumerate() {
                let mut step_args = vec!["--config", config.as_str()];
                step_args.extend_from_slice(command);
                let measured = run_measured(risk, &step_args, &envs, &store, name)?;
                results.steps[index].1.push(measured);
            }
            fs::remove_dir_all(&store)?;
        }
        let store = work.join("full");
        let config_path = fresh_store(&store, &data.source, &data.test)?;
        let config = config_path.to_string_lossy().into_owned();
        let measured = run_measured(
            risk,
            &["--config", &config, "--json", "fullprocess"],
            &envs,
            &store,
            "fullprocess",
        )?;
        results.full.push(measured);
        let record = read_run_record(&store.join("fullprocess.out"))?;
        if record.decision != Decision::Bootstrap {
            bail!(
                "expected a bootstrap on a fresh store, got {:?}: {}",
                record.decision,
                record.reason
            );
        }
        for step in &record.steps {
            match results
                .inner
                .iter_mut()
                .find(|(name, _)| *name == step.step)
            {
                Some((_, times)) => times.push(step.ms),
                None => results.inner.push((step.step.clone(), vec![step.ms])),
            }
        }
        if run == 0 && args.risk.is_none() {
            // The fit's own log lines would drown the harness's progress lines.
            tracing::subscriber::with_default(
                tracing::subscriber::NoSubscriber::default(),
                || measure_in_process(&store, args.runs, &mut results),
            )?;
        }
        fs::remove_dir_all(&store)?;
        eprintln!(
            "bench: {} run {}/{}: full process {:.3} s, peak {} MiB",
            data.size.name(),
            run + 1,
            args.runs,
            measured.wall.as_secs_f64(),
            measured.max_rss_kib / 1024
        );
    }
    if args.risk.is_none() {
        parse_in_process(data, args.runs, &mut results)?;
    }
    Ok(results)
}

/// The fitted model's test metrics, and the fit alone timed on the compiled data.
fn measure_in_process(store: &Path, runs: usize, results: &mut Results) -> Result<()> {
    let report: serde_json::Value =
        serde_json::from_slice(&fs::read(store.join("reports").join(names::REPORT_JSON))?)?;
    results.f1 = report["metrics"]["f1"].as_f64();
    results.roc_auc = report["metrics"]["roc_auc"].as_f64();
    let record: IngestionRecord = serde_json::from_slice(&fs::read(
        store.join("compiled").join(names::INGESTION_RECORD),
    )?)?;
    let compiled = record.compiled.context("nothing was compiled")?;
    results.compiled_rows = compiled.rows;
    results.duplicates_dropped = compiled.duplicates_dropped;
    // A local store keeps each part's only version at its key.
    let parts = compiled
        .parts()
        .into_iter()
        .map(|part| {
            let bytes = fs::read(store.join("compiled").join(&part.key))?;
            Ok(FetchedPart {
                part,
                bytes: bytes.into(),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let batches = decode_rows(&parts, None, 0).context("cannot read the compiled data")?;
    let params = TrainingParams::default().check()?;
    for _ in 0..runs {
        let started = Instant::now();
        train(&batches, &params)?;
        results.fit_seconds.push(started.elapsed().as_secs_f64());
    }
    Ok(())
}

/// CSV parsing alone, on one core, with every file already in memory.
fn parse_in_process(data: &DataSet, runs: usize, results: &mut Results) -> Result<()> {
    let bodies: Vec<(String, Vec<u8>)> = csv_files(&data.source)?
        .into_iter()
        .map(|path| Ok((path.display().to_string(), fs::read(&path)?)))
        .collect::<Result<_>>()?;
    for _ in 0..runs {
        let started = Instant::now();
        let mut rows = 0u64;
        for (name, body) in &bodies {
            let mut reader = CsvBatchReader::open(name.clone(), body.as_slice())?;
            for batch in &mut reader {
                rows += batch?.accepted.num_rows() as u64;
            }
        }
        let seconds = started.elapsed().as_secs_f64();
        std::hint::black_box(rows);
        results.parse_seconds.push(seconds);
    }
    Ok(())
}

pub(crate) fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

fn spread(values: &[f64]) -> (f64, f64) {
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (min, max)
}

/// `123 ms (118–131)` or `4.21 s (4.10–4.40)`.
pub(crate) fn time_cell(seconds: &[f64]) -> String {
    if seconds.is_empty() {
        return "-".into();
    }
    let (low, high) = spread(seconds);
    let m = median(seconds);
    if m < 1.0 {
        format!("{:.1} ms ({:.1}–{:.1})", m * 1e3, low * 1e3, high * 1e3)
    } else {
        format!("{m:.2} s ({low:.2}–{high:.2})")
    }
}

pub(crate) fn memory_cell(measured: &[Measured]) -> String {
    let kib: Vec<f64> = measured.iter().map(|m| m.max_rss_kib as f64).collect();
    let (_, high) = spread(&kib);
    format!(
        "{:.0} MiB (max {:.0})",
        median(&kib) / 1024.0,
        high / 1024.0
    )
}

/// `8.74 M` or `170 k` rows per second.
fn rate_cell(rows: u64, seconds: f64) -> String {
    let rate = rows as f64 / seconds;
    if !rate.is_finite() {
        return "-".into();
    }
    if rate >= 1e6 {
        format!("{:.2} M", rate / 1e6)
    } else {
        format!("{:.0} k", rate / 1e3)
    }
}

fn seconds(measured: &[Measured]) -> Vec<f64> {
    measured.iter().map(|m| m.wall.as_secs_f64()).collect()
}

pub(crate) fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpu = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split_once(':'))
                .map(|(_, model)| model.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    let memory = fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|line| line.starts_with("MemTotal"))
                .and_then(|line| line.split_whitespace().nth(1))
                .and_then(|kib| kib.parse::<f64>().ok())
        })
        .map_or_else(
            || "?".into(),
            |kib| format!("{:.0} GiB", kib / 1024.0 / 1024.0),
        );
    let rustc = Process::new("rustc")
        .arg("--version")
        .output()
        .ok()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    let build = if cfg!(debug_assertions) {
        "debug build (not representative)".to_string()
    } else {
        match option_env!("CARGO_PROFILE_RELEASE_LTO") {
            Some(lto) => format!(
                "release build with CARGO_PROFILE_RELEASE_LTO={lto} (iteration build, not the shipped profile)"
            ),
            None => "release build (workspace profile: fat LTO, codegen-units = 1, panic = abort)"
                .to_string(),
        }
    };
    format!("{cores} cores (nproc), {cpu}, {memory} RAM; {rustc}; {build}")
}

fn render(args: &BenchArgs, sets: &[(DataSet, Results)]) -> String {
    let mut out = String::new();
    let command: Vec<String> = std::env::args().collect();
    let _ = writeln!(out, "Command: `{}`  ", command.join(" "));
    let _ = writeln!(out, "Machine: {}  ", machine());
    if let Some(other) = &args.risk {
        let _ = writeln!(
            out,
            "Binary measured: `{}` (the build named above is the harness's own)  ",
            other.display()
        );
    }
    let _ = writeln!(
        out,
        "Runs per data set: {}; local-store fsync {}; dependency check off; `RUST_LOG=warn`. \
         Times are wall clock from process spawn to exit, median (min–max); memory is the \
         process's own peak resident set (`VmHWM` as it exits), median (max).\n",
        args.runs,
        args.fsync.name()
    );
    let _ = writeln!(
        out,
        "| data set | rows (files) | full process | peak memory | ingestion step (own process) | ingestion rows/s | CSV parse rows/s (1 core, in memory) | fit alone (in process) | test F1 | test ROC AUC |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|---|");
    for (data, results) in sets {
        let ingestion = results
            .steps
            .first()
            .map(|(_, m)| seconds(m))
            .filter(|s| !s.is_empty())
            .or_else(|| {
                results
                    .inner
                    .iter()
                    .find(|(name, _)| name == "ingestion")
                    .map(|(_, ms)| ms.iter().map(|ms| ms / 1e3).collect())
            })
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "| {} | {} ({}, {:.1} MB) | {} | {} | {} | {} | {} | {} | {} | {} |",
            data.size.name(),
            data.rows,
            data.files,
            data.bytes as f64 / 1e6,
            time_cell(&seconds(&results.full)),
            memory_cell(&results.full),
            time_cell(&ingestion),
            rate_cell(data.rows, median(&ingestion)),
            rate_cell(data.rows, median(&results.parse_seconds)),
            time_cell(&results.fit_seconds),
            results.f1.map_or("-".into(), |v| format!("{v:.4}")),
            results.roc_auc.map_or("-".into(), |v| format!("{v:.4}")),
        );
    }
    for (data, results) in sets {
        let compiled = if results.compiled_rows > 0 {
            format!(
                "; compiled {} rows ({} exact duplicates dropped)",
                results.compiled_rows, results.duplicates_dropped
            )
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "\n**{}**: {} rows in {} files{compiled}.\n",
            data.size.name(),
            data.rows,
            data.files,
        );
        let _ = writeln!(
            out,
            "| step | own process: time | own process: peak memory | inside the full process |"
        );
        let _ = writeln!(out, "|---|---|---|---|");
        for (name, measured) in &results.steps {
            let inner = results
                .inner
                .iter()
                .find(|(step, _)| step == name)
                .map_or("-".into(), |(_, ms)| {
                    time_cell(&ms.iter().map(|ms| ms / 1e3).collect::<Vec<_>>())
                });
            if measured.is_empty() {
                let _ = writeln!(out, "| {name} | - | - | {inner} |");
            } else {
                let _ = writeln!(
                    out,
                    "| {name} | {} | {} | {inner} |",
                    time_cell(&seconds(measured)),
                    memory_cell(measured)
                );
            }
        }
        let _ = writeln!(
            out,
            "| **full process** | {} | {} | |",
            time_cell(&seconds(&results.full)),
            memory_cell(&results.full)
        );
    }
    out
}

/// Replaces the section named `name` in `path` (or appends it), keeping the rest of the file.
fn write_section(path: &Path, name: &str, body: &str) -> Result<()> {
    let begin = format!("<!-- bench:{name}:begin -->");
    let end = format!("<!-- bench:{name}:end -->");
    let existing = fs::read_to_string(path).unwrap_or_else(|_| "# Benchmarks\n".to_string());
    let block = format!("{begin}\n{body}{end}");
    let updated = match (existing.find(&begin), existing.find(&end)) {
        (Some(start), Some(stop)) if stop > start => format!(
            "{}{block}{}",
            &existing[..start],
            &existing[stop + end.len()..]
        ),
        _ => format!("{}\n{block}\n", existing.trim_end()),
    };
    fs::write(path, updated).with_context(|| format!("cannot write {}", path.display()))
}

/// The `risk` to benchmark: `other` (another build), or this binary.
pub(crate) fn risk_binary(other: Option<&Path>) -> Result<PathBuf> {
    match other {
        Some(other) => {
            fs::canonicalize(other).with_context(|| format!("cannot find {}", other.display()))
        }
        None => std::env::current_exe().context("cannot find this program's own binary"),
    }
}

/// Writes `body` as section `section` of `out` (creating its folder) and prints it.
pub(crate) fn publish(out: &Path, section: &str, body: &str, harness: &str) -> Result<()> {
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir)?;
    }
    write_section(out, section, body)?;
    println!("{body}");
    eprintln!("{harness}: results written to {}", out.display());
    Ok(())
}

/// Runs `risk bench`.
pub async fn run(args: BenchArgs) -> Result<()> {
    if args.runs == 0 {
        bail!("--runs must be at least 1");
    }
    let risk = risk_binary(args.risk.as_deref())?;
    fs::create_dir_all(&args.work_dir)?;
    let mut sets = Vec::new();
    for size in &args.sizes {
        let data = prepare(*size, &args.data_dir, &args.seed_data).await?;
        let results = tokio::task::block_in_place(|| bench_data_set(&data, &args, &risk))?;
        sets.push((data, results));
    }
    let body = render(&args, &sets);
    publish(&args.out, &args.section, &body, "bench")
}
