//! `risk bench-incremental`: what one scheduled run costs once a history is in place — the
//! question of issue 15 (cost that grows with the new data, not with the history). For each
//! history size it bootstraps a local store on the generated history once, keeps a copy, and
//! then, from that copy each time, runs `risk fullprocess` as a child process for three cases:
//! an idle tick (nothing new), one new monthly file from the same process (no drift), and one
//! new monthly file after a sudden concept drift (a retrain). The new months continue the
//! history's generator (same seed and clients), so they look like next month's upload. With
//! `--python`, the pandas pipeline it replaces runs on the history plus the new file in the same
//! harness run (it re-reads everything each time, so its cost is that of a whole run).

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command as Process;

use anyhow::{Context, Result, bail};
use clap::Args;
use shared::location::Location;
use shared::records::names;
use shared::synth::{Drift, DriftKind, write_synthetic};

use crate::bench::{
    DataSet, Measured, Size, csv_files, data_rows, fresh_store, machine, memory_cell, prepare,
    publish, read_run_record, risk_binary, run_measured, time_cell,
};

/// `risk bench-incremental`: the cost of one run on top of a history.
#[derive(Args, Debug)]
pub struct IncrementalArgs {
    /// History sizes, comma-separated (see `risk bench`): M, L or XL.
    #[arg(long, value_delimiter = ',', default_value = "M,L")]
    sizes: Vec<Size>,
    /// Runs per case (median and spread are reported).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Where generated data sets are kept and reused (shared with `risk bench`).
    #[arg(long, default_value = "target/bench/data")]
    data_dir: PathBuf,
    /// Where the stores are made (removed at the end).
    #[arg(long, default_value = "target/bench/work-incremental")]
    work_dir: PathBuf,
    /// The Markdown file the results go into, in their own marked section.
    #[arg(long, default_value = "target/bench/BENCHMARKS.md")]
    out: PathBuf,
    /// Name of the section in `--out`.
    #[arg(long, default_value = "incremental")]
    section: String,
    /// A Python with pandas, Polars, scikit-learn and matplotlib: also run the pandas pipeline
    /// it replaces (tests/reference/python_pipeline.py) and a Polars + scikit-learn script
    /// (tests/reference/polars_pipeline.py) on the history plus the new month.
    #[arg(long)]
    python: Option<PathBuf>,
    /// Runs of each Python pipeline per history size (the pandas one takes about two minutes at
    /// XL).
    #[arg(long, default_value_t = 1)]
    python_runs: usize,
    /// Benchmark another build of `risk` instead of this one.
    #[arg(long)]
    risk: Option<PathBuf>,
}

/// What a run adds to the history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Case {
    Idle,
    NewMonth,
    DriftedMonth,
}

impl Case {
    const ALL: [Case; 3] = [Case::Idle, Case::NewMonth, Case::DriftedMonth];

    fn describe(self) -> &'static str {
        match self {
            Case::Idle => "nothing new (idle tick)",
            Case::NewMonth => "one new month, no drift",
            Case::DriftedMonth => "one new month after a drift (retrain)",
        }
    }
}

/// One case's measurements.
struct CaseResult {
    case: Case,
    new_rows: u64,
    measured: Vec<Measured>,
    decisions: Vec<String>,
    /// Step timings inside the run, per step name (ms).
    steps: Vec<(String, Vec<f64>)>,
}

struct SizeResult {
    data: DataSet,
    compiled_rows: u64,
    bootstrap: Measured,
    cases: Vec<CaseResult>,
    python: Vec<PythonResult>,
}

/// The Python peers, as the table names them, and their scripts.
const PYTHON_PEERS: [(&str, &str); 2] = [
    (
        "pandas pipeline (the one replaced)",
        "tests/reference/python_pipeline.py",
    ),
    (
        "Polars + scikit-learn",
        "tests/reference/polars_pipeline.py",
    ),
];

struct PythonResult {
    name: &'static str,
    runs: usize,
    seconds: Vec<f64>,
    peak_mib: f64,
}

/// The month after the history, written alone into `dir` (generated once, then reused).
async fn next_month(data: &DataSet, drifted: bool, dir: &Path) -> Result<PathBuf> {
    let Some(mut spec) = data.size.spec() else {
        bail!("the incremental benchmark needs a generated history (M, L or XL), not S");
    };
    let file = dir.join(format!("clients-m{:03}.csv", spec.months));
    if file.exists() {
        return Ok(file);
    }
    fs::create_dir_all(dir)?;
    spec.first_month_written = spec.months;
    spec.months += 1;
    spec.test_rows = 0;
    if drifted {
        spec.drift = Some(Drift {
            from_month: spec.first_month_written,
            kind: DriftKind::Sudden,
        });
    }
    let scratch = Location::local(dir.join("unused-test"));
    write_synthetic(&spec, &Location::local(dir), &scratch).await?;
    if !file.exists() {
        bail!(
            "the generator did not write {} (its file names changed?)",
            file.display()
        );
    }
    Ok(file)
}

/// Copies a directory tree (the store snapshot), keeping nothing from `to`, as hard links: the
/// local store never writes into an existing file (a put renames a new file into place), so the
/// snapshot is untouched, and each visible file keeps the inode its version record names. A
/// byte copy changes every inode, so the store took each visible file for one placed by hand and
/// copied it into history before overwriting it: work a real store never does.
fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    if to.exists() {
        fs::remove_dir_all(to)?;
    }
    let status = Process::new("cp")
        .arg("-al")
        .arg(from)
        .arg(to)
        .status()
        .context("cannot run cp")?;
    if !status.success() {
        bail!("cp -al {} {} failed", from.display(), to.display());
    }
    Ok(())
}

async fn bench_size(size: Size, args: &IncrementalArgs, risk: &Path) -> Result<SizeResult> {
    let data = prepare(size, &args.data_dir, Path::new("data")).await?;
    let next_dir = args.data_dir.join(size.name());
    let new_month = next_month(&data, false, &next_dir.join("next-month")).await?;
    let drifted_month = next_month(&data, true, &next_dir.join("next-month-drifted")).await?;

    let work = args.work_dir.join(size.name());
    if work.exists() {
        fs::remove_dir_all(&work)?;
    }
    let source = work.join("source");
    fs::create_dir_all(&source)?;
    let work = fs::canonicalize(&work)?;
    let source = fs::canonicalize(&source)?;
    // Hard links: the same files (same size and time, so the same weak ETag) as the history
    // the snapshot ingested, without copying gigabytes.
    for file in csv_files(&data.source)? {
        fs::hard_link(&file, source.join(file.file_name().unwrap_or_default()))?;
    }
    let store = work.join("store");
    let config_path = fresh_store(&store, &source, &data.test)?;
    let config_arg = config_path.to_string_lossy().into_owned();
    let envs = [("RISK_DEPENDENCY_CHECK", "off"), ("RUST_LOG", "warn")];
    let full_args = ["--config", config_arg.as_str(), "--json", "fullprocess"];

    let bootstrap =
        tokio::task::block_in_place(|| run_measured(risk, &full_args, &envs, &work, "bootstrap"))?;
    let ingestion: serde_json::Value = serde_json::from_slice(&fs::read(
        store.join("compiled").join(names::INGESTION_RECORD),
    )?)?;
    let compiled_rows = ingestion["compiled"]["rows"].as_u64().unwrap_or(0);
    eprintln!(
        "bench-incremental: {} bootstrap {:.2} s, peak {} MiB, {compiled_rows} compiled rows",
        size.name(),
        bootstrap.wall.as_secs_f64(),
        bootstrap.max_rss_kib / 1024
    );
    let snapshot = work.join("snapshot");
    copy_tree(&store, &snapshot)?;

    let mut cases = Vec::new();
    for case in Case::ALL {
        let new_file = match case {
            Case::Idle => None,
            Case::NewMonth => Some(&new_month),
            Case::DriftedMonth => Some(&drifted_month),
        };
        let mut result = CaseResult {
            case,
            new_rows: new_file
                .map(|f| fs::read(f).map(|body| data_rows(&body)))
                .transpose()?
                .unwrap_or(0),
            measured: Vec::new(),
            decisions: Vec::new(),
            steps: Vec::new(),
        };
        for run in 0..args.runs {
            copy_tree(&snapshot, &store)?;
            let linked = new_file
                .map(|file| {
                    let target = source.join(file.file_name().unwrap_or_default());
                    fs::hard_link(file, &target).map(|()| target)
                })
                .transpose()?;
            let label = format!("{case:?}-{run}");
            let measured = tokio::task::block_in_place(|| {
                run_measured(risk, &full_args, &envs, &work, &label)
            })?;
            if let Some(linked) = linked {
                fs::remove_file(linked)?;
            }
            let record = read_run_record(&work.join(format!("{label}.out")))?;
            let decision = serde_json::to_value(record.decision)?;
            result
                .decisions
                .push(decision.as_str().unwrap_or("unknown").to_string());
            for step in &record.steps {
                match result.steps.iter_mut().find(|(name, _)| *name == step.step) {
                    Some((_, times)) => times.push(step.ms),
                    None => result.steps.push((step.step.clone(), vec![step.ms])),
                }
            }
            eprintln!(
                "bench-incremental: {} {} run {}/{}: {:.3} s, peak {} MiB, {}",
                size.name(),
                case.describe(),
                run + 1,
                args.runs,
                measured.wall.as_secs_f64(),
                measured.max_rss_kib / 1024,
                result.decisions.last().map_or("", String::as_str)
            );
            result.measured.push(measured);
        }
        cases.push(result);
    }

    let mut python = Vec::new();
    if let Some(interpreter) = &args.python {
        for (name, script) in PYTHON_PEERS {
            python.push(tokio::task::block_in_place(|| {
                run_python(
                    interpreter,
                    (name, script),
                    &source,
                    &new_month,
                    &data,
                    args.python_runs,
                )
            })?);
            eprintln!("bench-incremental: {} {name} done", size.name());
        }
    }
    fs::remove_dir_all(&work)?;
    Ok(SizeResult {
        data,
        compiled_rows,
        bootstrap,
        cases,
        python,
    })
}

/// A Python peer on the history plus the new month (each re-reads every file on every run).
fn run_python(
    python: &Path,
    (name, script): (&'static str, &str),
    source: &Path,
    new_month: &Path,
    data: &DataSet,
    runs: usize,
) -> Result<PythonResult> {
    let linked = source.join(new_month.file_name().unwrap_or_default());
    fs::hard_link(new_month, &linked)?;
    let output = Process::new(python)
        .arg(script)
        .arg("bench")
        .arg("--source")
        .arg(source)
        .arg("--test")
        .arg(&data.test)
        .arg("--runs")
        .arg(runs.to_string())
        .output()
        .with_context(|| format!("cannot start {}", python.display()));
    fs::remove_file(&linked)?;
    let output = output?;
    if !output.status.success() {
        bail!(
            "{name} ({script}) failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let result: serde_json::Value = serde_json::from_slice(&output.stdout)
        .with_context(|| format!("{name} ({script}) did not print its JSON result"))?;
    let number = |key: &str| result[key].as_f64().unwrap_or(f64::NAN);
    Ok(PythonResult {
        name,
        runs,
        seconds: vec![
            number("full_process_seconds_min"),
            number("full_process_seconds_median"),
            number("full_process_seconds_max"),
        ],
        peak_mib: number("peak_memory_mib_max"),
    })
}

/// The case's runs' timings of `steps`, added up run by run (a dash when no run did them).
fn step_cell(case: &CaseResult, steps: &[&str]) -> String {
    let timed: Vec<&Vec<f64>> = case
        .steps
        .iter()
        .filter(|(name, _)| steps.contains(&name.as_str()))
        .map(|(_, ms)| ms)
        .collect();
    let runs = timed.iter().map(|ms| ms.len()).max().unwrap_or(0);
    let summed: Option<Vec<f64>> = (runs > 0).then(|| {
        (0..runs)
            .map(|run| timed.iter().filter_map(|ms| ms.get(run)).sum())
            .collect()
    });
    summed.as_ref().map_or_else(
        || "-".to_string(),
        |ms| {
            let seconds: Vec<f64> = ms.iter().map(|m| m / 1e3).collect();
            time_cell(&seconds)
        },
    )
}

fn render(args: &IncrementalArgs, sizes: &[SizeResult]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Command: `target/release/risk bench-incremental --sizes {} --runs {}{}`  ",
        args.sizes
            .iter()
            .map(|s| s.name())
            .collect::<Vec<_>>()
            .join(","),
        args.runs,
        if args.python.is_some() {
            format!(
                " --python <venv>/bin/python --python-runs {}",
                args.python_runs
            )
        } else {
            String::new()
        }
    );
    let _ = writeln!(out, "Machine: {}  ", machine());
    let _ = writeln!(
        out,
        "Each run starts from a hard-linked copy of the store the bootstrap left (what the store was, inodes included); local-store fsync on; dependency check off; `RUST_LOG=warn`. Times are wall clock from spawn to exit, median (min–max) of {} runs; memory is the process's own peak resident set.\n",
        args.runs
    );
    let _ = writeln!(
        out,
        "| history (compiled rows) | run | new rows | decision | full process | peak memory | ingestion | drift check | training | risk list |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|---|");
    for size in sizes {
        let history = format!("{} ({})", size.data.size.name(), size.compiled_rows);
        let _ = writeln!(
            out,
            "| {history} | bootstrap | {} | bootstrap | {} | {} | | | | |",
            size.data.rows,
            time_cell(&[size.bootstrap.wall.as_secs_f64()]),
            memory_cell(&[size.bootstrap]),
        );
        for case in &size.cases {
            let mut decisions = case.decisions.clone();
            decisions.dedup();
            let seconds: Vec<f64> = case.measured.iter().map(|m| m.wall.as_secs_f64()).collect();
            let _ = writeln!(
                out,
                "| {history} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                case.case.describe(),
                case.new_rows,
                decisions.join(", "),
                time_cell(&seconds),
                memory_cell(&case.measured),
                step_cell(case, &["ingestion"]),
                step_cell(case, &["drift_check"]),
                step_cell(case, &["training", "champion_challenger"]),
                step_cell(case, &["risk_list_draft", "risk_list"]),
            );
        }
        for python in &size.python {
            let _ = writeln!(
                out,
                "| {history} | {}: history + the new month, every step ({} run{}) | {} | | {:.2} s ({:.2}–{:.2}) | {:.0} MiB | | | | |",
                python.name,
                python.runs,
                if python.runs == 1 { "" } else { "s" },
                size.cases
                    .iter()
                    .find(|c| c.case == Case::NewMonth)
                    .map_or(0, |c| c.new_rows),
                python.seconds[1],
                python.seconds[0],
                python.seconds[2],
                python.peak_mib,
            );
        }
    }
    let _ = writeln!(
        out,
        "\nStep columns are the run record's own step timings (inside the process; training is the challenger's training plus the champion/challenger gate; the risk list is its draft, made during the drift check, plus storing it, so the columns overlap and do not add up to the run); a dash: the run did not do that step. The decision column lists each distinct decision of the runs."
    );
    out
}

/// Runs `risk bench-incremental`.
pub async fn run(args: IncrementalArgs) -> Result<()> {
    if args.runs == 0 {
        bail!("--runs must be at least 1");
    }
    let risk = risk_binary(args.risk.as_deref())?;
    fs::create_dir_all(&args.work_dir)?;
    let mut sizes = Vec::new();
    for size in &args.sizes {
        sizes.push(bench_size(*size, &args, &risk).await?);
    }
    let body = render(&args, &sizes);
    publish(&args.out, &args.section, &body, "bench-incremental")
}
