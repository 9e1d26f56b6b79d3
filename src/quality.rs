//! `risk quality`: how well the drift rule keeps the deployed model good, measured on generated
//! monthly streams. For every scenario (stable, sudden and gradual concept drift, covariate
//! shift, label-rate shift, small batches), rule and seed, the real full process runs month by
//! month against fresh in-memory stores: bootstrap on the first months, then one new monthly
//! file per run, with the test data redrawn from the process as it is that month. After each run
//! the deployed model is scored on the next month's rows, next to an oracle trained on the
//! current regime alone (its latest months, nothing from before the change). The per-scenario
//! summary goes to stdout and to `--out` (Markdown, with a month-by-month table per scenario),
//! and every month's figures to the JSON file beside it.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use arrow::array::RecordBatch;
use bytes::Bytes;
use clap::{Args, ValueEnum};
use serde::Serialize;
use shared::data::read_csv_file;
use shared::lifecycle::LifecycleSettings;
use shared::location::{Location, Locations};
use shared::model::{TrainedModel, train};
use shared::records::{Decision, RunRecord};
use shared::steps::Pipeline;
use shared::steps::deployment::deployed_model;
use shared::steps::fullprocess::run_full_process;
use shared::store::PutMode;
use shared::synth::{Drift, DriftKind, SynthSpec, TEST_FILE, generate, test_file};

/// `risk quality`: the drift rules against generated drift scenarios.
#[derive(Args, Debug, Clone, Serialize)]
pub struct QualityArgs {
    /// Drift rules to compare, comma-separated (statistical: the default lifecycle; original:
    /// the original system's raw F1 comparison, retraining on everything).
    #[arg(long, value_delimiter = ',', default_value = "statistical,original")]
    rules: Vec<Rule>,
    /// Scenarios, comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "stable,sudden,gradual,covariate,label-rate,small-batches"
    )]
    scenarios: Vec<Scenario>,
    /// Seeds per scenario (1, 2, … N); each seed is another data set.
    #[arg(long, default_value_t = 10)]
    seeds: u64,
    /// Clients, i.e. rows a month, in every scenario but small batches.
    #[arg(long, default_value_t = 2_000)]
    clients: usize,
    /// Clients (rows a month) in the small-batches scenario.
    #[arg(long, default_value_t = 400)]
    small_clients: usize,
    /// Months of data the first model is trained on (the bootstrap run).
    #[arg(long, default_value_t = 6)]
    bootstrap_months: usize,
    /// Months after the bootstrap, each added by its own run and each deployed model scored on
    /// the month after it.
    #[arg(long, default_value_t = 18)]
    months: usize,
    /// The month the drift scenarios change (months count from 0; at least the bootstrap
    /// months, so the first model is trained before the change).
    #[arg(long, default_value_t = 12)]
    change_month: usize,
    /// Rows of the test data, redrawn every month from the process as it is that month.
    #[arg(long, default_value_t = 2_000)]
    test_rows: usize,
    /// Months the oracle is trained on: the latest of the current regime (fewer right after a
    /// change).
    #[arg(long, default_value_t = 3)]
    oracle_months: usize,
    /// Scenario runs (one rule, one seed) at once (default: the number of cores).
    #[arg(long)]
    jobs: Option<usize>,
    /// Markdown results; the JSON with every month's figures goes beside it (`.json`).
    #[arg(long, default_value = "target/quality/quality.md")]
    out: PathBuf,
}

/// A drift rule the benchmark can run. Each variant configures the real pipeline; a new rule is
/// one more variant here and in the two matches below.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rule {
    /// The default lifecycle: statistical drift test, recency window, tuned threshold,
    /// champion/challenger gate.
    Statistical,
    /// The original system: retrain on all data whenever the deployed model's F1 on the new
    /// rows is below the F1 recorded when it was deployed (on the test data).
    Original,
}

impl Rule {
    fn name(self) -> &'static str {
        match self {
            Rule::Statistical => "statistical",
            Rule::Original => "original",
        }
    }

    /// The pipeline that runs with this rule over `locations`.
    fn pipeline(self, locations: Locations) -> Result<Pipeline> {
        let mut pipeline = Pipeline::new(locations)?;
        // Diagnostics would ask crates.io once per retraining.
        pipeline.dependency_check.index_url = None;
        Ok(pipeline.with_lifecycle(match self {
            Rule::Statistical => LifecycleSettings::default(),
            Rule::Original => LifecycleSettings::original(),
        }))
    }

    /// Whether the run reported data drift (the features' distribution moved); `None` when the
    /// rule has no such notion.
    fn data_drift(self, record: &RunRecord) -> Option<bool> {
        match self {
            Rule::Statistical => record.drift.as_ref().map(|report| report.data_drift),
            Rule::Original => None,
        }
    }
}

/// A generated monthly stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// Nothing changes.
    Stable,
    /// The activity→attrition relation reverses at the change month.
    Sudden,
    /// The relation turns round over six months from the change month.
    Gradual,
    /// Activity triples and new clients are four times as large; the relation is unchanged.
    Covariate,
    /// The odds of leaving double; the slopes are unchanged.
    LabelRate,
    /// Nothing changes, with small monthly files (`--small-clients`).
    SmallBatches,
}

impl Scenario {
    fn name(self) -> &'static str {
        match self {
            Scenario::Stable => "stable",
            Scenario::Sudden => "sudden",
            Scenario::Gradual => "gradual",
            Scenario::Covariate => "covariate",
            Scenario::LabelRate => "label-rate",
            Scenario::SmallBatches => "small-batches",
        }
    }

    fn drift_kind(self) -> Option<DriftKind> {
        match self {
            Scenario::Stable | Scenario::SmallBatches => None,
            Scenario::Sudden => Some(DriftKind::Sudden),
            Scenario::Gradual => Some(DriftKind::Gradual {
                months: DriftKind::DEFAULT_GRADUAL_MONTHS,
            }),
            Scenario::Covariate => Some(DriftKind::Covariate {
                activity_scale: DriftKind::DEFAULT_ACTIVITY_SCALE,
                size_scale: DriftKind::DEFAULT_SIZE_SCALE,
            }),
            Scenario::LabelRate => Some(DriftKind::LabelRate {
                exit_odds_scale: DriftKind::DEFAULT_EXIT_ODDS_SCALE,
            }),
        }
    }

    fn clients(self, args: &QualityArgs) -> usize {
        match self {
            Scenario::SmallBatches => args.small_clients,
            _ => args.clients,
        }
    }

    /// The month the process changes, if it does.
    fn change_month(self, args: &QualityArgs) -> Option<usize> {
        self.drift_kind().map(|_| args.change_month)
    }
}

/// One model's figures on one month's rows.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Scores {
    /// ROC AUC; `None` when the month has only one class.
    pub auc: Option<f64>,
    /// F1 at the model's own threshold.
    pub f1: f64,
    /// F1 at a threshold of 0.5.
    pub f1_at_half: f64,
    pub threshold: f64,
}

/// One run of the full process and what followed it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MonthFigures {
    /// The month this run added (the bootstrap run: the last bootstrap month).
    pub month: usize,
    pub decision: Decision,
    pub reason: String,
    /// The run trained a new model.
    pub retrained: bool,
    /// The deployed model changed.
    pub redeployed: bool,
    /// The run reported drift (the decision to retrain because the model degraded).
    pub drift_detected: bool,
    /// The run reported data drift; `None` when the rule has no such notion.
    pub data_drift: Option<bool>,
    /// The deployed model's F1 as recorded at its deployment, and on this run's new rows.
    pub recorded_f1: Option<f64>,
    pub new_rows_f1: Option<f64>,
    /// The month scored: the next one.
    pub scored_month: usize,
    /// The deployed model (after this run) on the scored month.
    pub deployed: Scores,
    /// A model trained on `oracle_months` (first and last, inclusive) alone, on the scored month.
    pub oracle: Scores,
    pub oracle_months: (usize, usize),
}

/// One scenario, rule and seed, month by month.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SeedRun {
    pub scenario: Scenario,
    pub rule: Rule,
    pub seed: u64,
    pub clients: usize,
    /// The first month of the changed process, if it changes.
    pub change_month: Option<usize>,
    /// The bootstrap run first, then one per month.
    pub months: Vec<MonthFigures>,
}

/// One row of the summary table: a scenario and rule over every seed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub scenario: Scenario,
    pub rule: Rule,
    pub seeds: usize,
    pub rows_a_month: usize,
    /// Runs after the bootstrap, over all seeds.
    pub runs: usize,
    /// Share of those runs that trained a new model, and that changed the deployed one.
    pub retrained: f64,
    pub redeployed: f64,
    /// Share of the runs before the change that trained a new model (all runs when nothing
    /// changes).
    pub retrained_before_change: Option<f64>,
    /// Seeds whose run of the first changed month reported drift.
    pub detected_in_first_month: Option<usize>,
    /// Mean months from the change to the first run reporting drift, over the seeds that
    /// reported it at all, and how many never did.
    pub mean_detection_delay: Option<f64>,
    pub never_detected: Option<usize>,
    /// Share of runs from the change on that reported data drift.
    pub data_drift_after_change: Option<f64>,
    /// Over the scored months from the second after the change on (every scored month when
    /// nothing changes): mean AUC of the deployed model and of the oracle, the mean ratio and
    /// the share of months where it is at least 0.95, and mean F1s.
    pub scored_months: usize,
    pub deployed_auc: f64,
    pub oracle_auc: f64,
    pub auc_ratio: f64,
    pub auc_ratio_at_least_95: f64,
    pub deployed_f1: f64,
    pub deployed_f1_at_half: f64,
    pub oracle_f1: f64,
}

/// The whole benchmark's output.
#[derive(Debug, Clone, Serialize)]
pub struct QualityReport {
    pub command: String,
    pub settings: QualityArgs,
    pub elapsed_seconds: f64,
    pub summaries: Vec<Summary>,
    pub runs: Vec<SeedRun>,
}

/// Runs `risk quality`.
pub async fn run(args: QualityArgs) -> Result<()> {
    check(&args)?;
    let started = Instant::now();
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let settings = Arc::new(args.clone());
    let limit = Arc::new(tokio::sync::Semaphore::new(jobs));
    let mut running = tokio::task::JoinSet::new();
    for &scenario in &args.scenarios {
        for &rule in &args.rules {
            for seed in 1..=args.seeds {
                let (settings, limit) = (Arc::clone(&settings), Arc::clone(&limit));
                running.spawn(async move {
                    let _permit = limit.acquire_owned().await?;
                    let began = Instant::now();
                    let run = run_seed(&settings, scenario, rule, seed)
                        .await
                        .with_context(|| {
                            format!("scenario {} rule {} seed {seed}", scenario.name(), rule.name())
                        })?;
                    let retrained = run.months.iter().skip(1).filter(|m| m.retrained).count();
                    eprintln!(
                        "quality: {} / {} / seed {seed}: retrained in {retrained} of {} months ({:.1} s)",
                        scenario.name(),
                        rule.name(),
                        run.months.len() - 1,
                        began.elapsed().as_secs_f64()
                    );
                    Ok::<_, anyhow::Error>(run)
                });
            }
        }
    }
    let mut runs = Vec::new();
    while let Some(done) = running.join_next().await {
        runs.push(done.context("a scenario run panicked")??);
    }
    runs.sort_by_key(|run| (run.scenario, run.rule, run.seed));
    let summaries = summarize(&runs, &args);
    let report = QualityReport {
        command: std::env::args().collect::<Vec<_>>().join(" "),
        settings: args.clone(),
        elapsed_seconds: started.elapsed().as_secs_f64(),
        summaries,
        runs,
    };
    let table = summary_table(&report.summaries);
    println!("{table}");
    write_outputs(&args, &report, &table)
}

fn check(args: &QualityArgs) -> Result<()> {
    if args.seeds == 0 || args.months == 0 || args.bootstrap_months == 0 {
        bail!("--seeds, --months and --bootstrap-months must each be at least 1");
    }
    if args.rules.is_empty() || args.scenarios.is_empty() {
        bail!("name at least one rule and one scenario");
    }
    if args.oracle_months == 0 {
        bail!("--oracle-months must be at least 1");
    }
    let last = args.bootstrap_months + args.months - 1;
    let drifts = args.scenarios.iter().any(|s| s.drift_kind().is_some());
    if drifts && !(args.bootstrap_months..=last).contains(&args.change_month) {
        bail!(
            "--change-month {} must be between the first month after the bootstrap ({}) and the last month run ({last})",
            args.change_month,
            args.bootstrap_months
        );
    }
    Ok(())
}

/// Every monthly file of a scenario's stream as CSV text, and its new rows parsed.
struct Stream {
    spec: SynthSpec,
    bodies: Vec<String>,
    /// Per month, the rows that repeat no earlier row exactly: what ingestion adds to the
    /// compiled data (it drops exact duplicates), so the oracle trains on the rows the pipeline
    /// trains on and the scored rows are the ones the next run checks.
    new_rows: Vec<RecordBatch>,
}

fn generate_stream(spec: SynthSpec) -> Result<Stream> {
    let mut bodies = Vec::with_capacity(spec.months);
    generate(&spec, |_, body| {
        bodies.push(body);
        Ok(())
    })?;
    let mut seen: HashSet<&str> = HashSet::new();
    let mut new_rows = Vec::with_capacity(bodies.len());
    for (month, body) in bodies.iter().enumerate() {
        let mut lines = body.lines();
        let mut fresh = format!("{}\n", lines.next().unwrap_or_default());
        for line in lines {
            if seen.insert(line) {
                fresh.push_str(line);
                fresh.push('\n');
            }
        }
        new_rows.push(read_csv_file(SynthSpec::file_name(month), fresh.as_bytes())?.accepted);
    }
    Ok(Stream {
        spec,
        bodies,
        new_rows,
    })
}

/// Fresh in-memory locations, one store each, as separate buckets would be.
fn memory_locations(tag: &str) -> Locations {
    let open = |role: &str| Location::scratch(&format!("{tag}-{role}"));
    Locations {
        source_data: open("source"),
        compiled_data: open("compiled"),
        test_data: open("test"),
        models: open("models"),
        production: open("production"),
        reports: open("reports"),
    }
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .context("a benchmark task failed")?
}

/// Runs one scenario with one rule on one seed's data.
async fn run_seed(
    args: &QualityArgs,
    scenario: Scenario,
    rule: Rule,
    seed: u64,
) -> Result<SeedRun> {
    let change_month = scenario.change_month(args);
    let spec = SynthSpec {
        clients: scenario.clients(args),
        // The last run's model is scored on one more month.
        months: args.bootstrap_months + args.months + 1,
        seed,
        drift: scenario
            .drift_kind()
            .zip(change_month)
            .map(|(kind, from_month)| Drift { from_month, kind }),
        test_rows: args.test_rows,
        ..SynthSpec::default()
    };
    spec.validate().map_err(anyhow::Error::msg)?;
    let stream = Arc::new(blocking(move || generate_stream(spec)).await?);
    let tag = format!("quality-{}-{}-{seed}", scenario.name(), rule.name());
    let pipeline = rule.pipeline(memory_locations(&tag))?;
    let source = &pipeline.locations.source_data;
    let mut months = Vec::with_capacity(args.months + 1);
    for month in args.bootstrap_months - 1..args.bootstrap_months + args.months {
        let first_new = if month + 1 == args.bootstrap_months {
            0
        } else {
            month
        };
        for new in first_new..=month {
            source
                .put(
                    &SynthSpec::file_name(new),
                    Bytes::from(stream.bodies[new].clone()),
                    PutMode::Overwrite,
                )
                .await?;
        }
        let test = {
            let spec = stream.spec.clone();
            blocking(move || Ok(test_file(&spec, month))).await?
        };
        pipeline
            .locations
            .test_data
            .put(TEST_FILE, Bytes::from(test), PutMode::Overwrite)
            .await?;
        let run_id = format!("run-{tag}-m{month:03}");
        let record = run_full_process(&pipeline, &run_id).await?;
        let expected_bootstrap = first_new == 0;
        if expected_bootstrap != (record.decision == Decision::Bootstrap) {
            bail!(
                "month {month}: the full process decided {:?} ({})",
                record.decision,
                record.reason
            );
        }
        let (_, deployed) = deployed_model(&pipeline).await?;
        let oracle_first =
            regime_start(change_month, month).max((month + 1).saturating_sub(args.oracle_months));
        let training = pipeline.training.clone();
        let stream = Arc::clone(&stream);
        let (deployed_scores, oracle_scores) = blocking(move || {
            let next = std::slice::from_ref(&stream.new_rows[month + 1]);
            let oracle = train(&stream.new_rows[oracle_first..=month], &training)?;
            Ok((score(&deployed, next)?, score(&oracle, next)?))
        })
        .await?;
        months.push(MonthFigures {
            month,
            decision: record.decision,
            reason: record.reason.clone(),
            retrained: record.challenger.is_some(),
            redeployed: record.model_after != record.model_before,
            drift_detected: matches!(
                record.decision,
                Decision::Drift | Decision::ChallengerRejected
            ),
            data_drift: rule.data_drift(&record),
            recorded_f1: record.deployed_f1,
            new_rows_f1: record.new_data_f1,
            scored_month: month + 1,
            deployed: deployed_scores,
            oracle: oracle_scores,
            oracle_months: (oracle_first, month),
        });
    }
    Ok(SeedRun {
        scenario,
        rule,
        seed,
        clients: stream.spec.clients,
        change_month,
        months,
    })
}

/// The first month of the regime `month` belongs to.
fn regime_start(change_month: Option<usize>, month: usize) -> usize {
    match change_month {
        Some(change) if month >= change => change,
        _ => 0,
    }
}

fn score(model: &TrainedModel, batches: &[RecordBatch]) -> Result<Scores> {
    let own = model.evaluate(batches)?.metrics;
    let half = model.evaluate_at(batches, 0.5)?.metrics;
    Ok(Scores {
        auc: own.roc_auc,
        f1: own.f1,
        f1_at_half: half.f1,
        threshold: model.threshold(),
    })
}

fn mean(values: impl IntoIterator<Item = f64>) -> f64 {
    let (sum, count) = values
        .into_iter()
        .fold((0.0, 0usize), |(sum, count), value| {
            (sum + value, count + 1)
        });
    if count == 0 {
        f64::NAN
    } else {
        sum / count as f64
    }
}

fn share(flags: impl IntoIterator<Item = bool>) -> f64 {
    mean(flags.into_iter().map(|flag| if flag { 1.0 } else { 0.0 }))
}

/// Aggregates the runs per scenario and rule, in the order asked for.
pub fn summarize(runs: &[SeedRun], args: &QualityArgs) -> Vec<Summary> {
    let mut groups: BTreeMap<(Scenario, Rule), Vec<&SeedRun>> = BTreeMap::new();
    for run in runs {
        groups
            .entry((run.scenario, run.rule))
            .or_default()
            .push(run);
    }
    let mut summaries = Vec::new();
    for &scenario in &args.scenarios {
        for &rule in &args.rules {
            if let Some(group) = groups.get(&(scenario, rule)) {
                summaries.push(summarize_group(scenario, rule, group));
            }
        }
    }
    summaries
}

fn summarize_group(scenario: Scenario, rule: Rule, runs: &[&SeedRun]) -> Summary {
    let change = runs.first().and_then(|run| run.change_month);
    // The bootstrap run is not a monitoring month.
    let monitored = || runs.iter().flat_map(|run| run.months.iter().skip(1));
    let before_change: Vec<bool> = monitored()
        .filter(|m| change.is_none_or(|c| m.month < c))
        .map(|m| m.retrained)
        .collect();
    let delays: Vec<Option<usize>> = runs
        .iter()
        .map(|run| {
            let change = run.change_month?;
            run.months
                .iter()
                .find(|m| m.month >= change && m.drift_detected)
                .map(|m| m.month - change)
        })
        .collect();
    let data_drift: Vec<bool> = monitored()
        .filter(|m| change.is_some_and(|c| m.month >= c))
        .filter_map(|m| m.data_drift)
        .collect();
    // From the second month after the change on: the model scored there had two runs to adapt.
    let scored: Vec<&MonthFigures> = runs
        .iter()
        .flat_map(|run| run.months.iter())
        .filter(|m| change.is_none_or(|c| m.scored_month >= c + 2))
        .collect();
    let ratios: Vec<f64> = scored
        .iter()
        .filter_map(|m| Some(m.deployed.auc? / m.oracle.auc?))
        .collect();
    Summary {
        scenario,
        rule,
        seeds: runs.len(),
        rows_a_month: runs.first().map_or(0, |run| run.clients),
        runs: monitored().count(),
        retrained: share(monitored().map(|m| m.retrained)),
        redeployed: share(monitored().map(|m| m.redeployed)),
        retrained_before_change: (!before_change.is_empty()).then(|| share(before_change)),
        detected_in_first_month: change.map(|_| delays.iter().filter(|d| **d == Some(0)).count()),
        mean_detection_delay: change
            .map(|_| mean(delays.iter().flatten().map(|&d| d as f64)))
            .filter(|d| d.is_finite()),
        never_detected: change.map(|_| delays.iter().filter(|d| d.is_none()).count()),
        data_drift_after_change: (!data_drift.is_empty()).then(|| share(data_drift)),
        scored_months: scored.len(),
        deployed_auc: mean(scored.iter().filter_map(|m| m.deployed.auc)),
        oracle_auc: mean(scored.iter().filter_map(|m| m.oracle.auc)),
        auc_ratio: mean(ratios.iter().copied()),
        auc_ratio_at_least_95: share(ratios.iter().map(|&r| r >= 0.95)),
        deployed_f1: mean(scored.iter().map(|m| m.deployed.f1)),
        deployed_f1_at_half: mean(scored.iter().map(|m| m.deployed.f1_at_half)),
        oracle_f1: mean(scored.iter().map(|m| m.oracle.f1)),
    }
}

fn percent(value: f64) -> String {
    format!("{:.0} %", value * 100.0)
}

fn dash<T>(value: Option<T>, show: impl FnOnce(T) -> String) -> String {
    value.map_or_else(|| "–".to_string(), show)
}

/// The summary as a Markdown table.
pub fn summary_table(summaries: &[Summary]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| scenario | rule | rows/month | retrained | redeployed | retrained before change | drift flagged in 1st changed month | mean delay (never) | data drift flagged after change | deployed AUC | oracle AUC | AUC ratio | months with ratio ≥ 0.95 | deployed F1 | deployed F1 at 0.5 | oracle F1 |"
    );
    let _ = writeln!(out, "|{}", "---|".repeat(16));
    for s in summaries {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.3} | {:.3} | {:.3} | {} | {:.3} | {:.3} | {:.3} |",
            s.scenario.name(),
            s.rule.name(),
            s.rows_a_month,
            percent(s.retrained),
            percent(s.redeployed),
            dash(s.retrained_before_change, percent),
            dash(s.detected_in_first_month, |n| format!("{n} of {}", s.seeds)),
            match (s.mean_detection_delay, s.never_detected) {
                (None, None) => "–".to_string(),
                (delay, never) => format!(
                    "{} ({})",
                    dash(delay, |d| format!("{d:.1}")),
                    never.unwrap_or(0)
                ),
            },
            dash(s.data_drift_after_change, percent),
            s.deployed_auc,
            s.oracle_auc,
            s.auc_ratio,
            percent(s.auc_ratio_at_least_95),
            s.deployed_f1,
            s.deployed_f1_at_half,
            s.oracle_f1,
        );
    }
    out
}

/// Per scenario, month by month: means over the seeds, for every rule.
fn month_tables(report: &QualityReport) -> String {
    let mut out = String::new();
    let args = &report.settings;
    for &scenario in &args.scenarios {
        let change = scenario.change_month(args);
        let _ = writeln!(
            out,
            "\n**{}**{}: per month, over {} seeds — share of runs that retrained, that flagged \
             drift, and the mean AUC / F1 on the next month of the deployed model and of the \
             oracle.\n",
            scenario.name(),
            change.map_or_else(String::new, |c| format!(" (changes at month {c})")),
            args.seeds
        );
        let mut header = "| month |".to_string();
        for rule in &args.rules {
            let _ = write!(
                header,
                " {0} retrained | {0} flagged | {0} AUC | {0} F1 |",
                rule.name()
            );
        }
        header.push_str(" oracle AUC | oracle F1 |");
        let _ = writeln!(out, "{header}");
        let _ = writeln!(out, "|{}", "---|".repeat(3 + 4 * args.rules.len()));
        for month in args.bootstrap_months - 1..args.bootstrap_months + args.months {
            let figures = |rule: Rule| -> Vec<&MonthFigures> {
                report
                    .runs
                    .iter()
                    .filter(|run| run.scenario == scenario && run.rule == rule)
                    .filter_map(|run| run.months.iter().find(|m| m.month == month))
                    .collect()
            };
            let label = if month + 1 == args.bootstrap_months {
                format!("{month} (bootstrap)")
            } else {
                month.to_string()
            };
            let mut row = format!("| {label} |");
            for &rule in &args.rules {
                let months = figures(rule);
                let _ = write!(
                    row,
                    " {} | {} | {:.3} | {:.3} |",
                    percent(share(months.iter().map(|m| m.retrained))),
                    percent(share(months.iter().map(|m| m.drift_detected))),
                    mean(months.iter().filter_map(|m| m.deployed.auc)),
                    mean(months.iter().map(|m| m.deployed.f1)),
                );
            }
            let oracle = args
                .rules
                .first()
                .map(|&rule| figures(rule))
                .unwrap_or_default();
            let _ = write!(
                row,
                " {:.3} | {:.3} |",
                mean(oracle.iter().filter_map(|m| m.oracle.auc)),
                mean(oracle.iter().map(|m| m.oracle.f1)),
            );
            let _ = writeln!(out, "{row}");
        }
    }
    out
}

/// What the summary's columns mean.
const LEGEND: &str = "
Runs are the monthly runs after the bootstrap. *retrained*: share of them that trained a new \
model; *redeployed*: that changed the deployed model; *before change*: the same over the months \
before the drift scenarios change (every month when nothing changes). *flagged in 1st changed \
month*: seeds whose run of the first changed month reported drift; *mean delay (never)*: months \
from the change to the first run reporting drift, and seeds where none did. *data drift flagged*: \
share of runs from the change on that reported data drift (– when the rule does not report it). \
The scores are on the next month's new rows, from the second month after the change on (every \
month when nothing changes): ROC AUC and F1 (at the model's own threshold, and at 0.5) of the \
deployed model and of the oracle (trained on the latest months of the current regime alone); \
*AUC ratio* is deployed / oracle, averaged over months.
";

fn write_outputs(args: &QualityArgs, report: &QualityReport, table: &str) -> Result<()> {
    if let Some(dir) = args.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let mut markdown = String::new();
    let _ = writeln!(markdown, "Command: `{}`  ", report.command);
    let _ = writeln!(markdown, "Machine: {}  ", crate::bench::machine());
    let _ = writeln!(
        markdown,
        "Took {:.0} s. {} seeds per scenario; {} rows a month ({} in small batches); bootstrap \
         on months 0–{}, then months {}–{} one run each; drift scenarios change at month {}; \
         test data {} rows redrawn every month; oracle trained on the latest {} months of the \
         current regime.\n",
        report.elapsed_seconds,
        args.seeds,
        args.clients,
        args.small_clients,
        args.bootstrap_months - 1,
        args.bootstrap_months,
        args.bootstrap_months + args.months - 1,
        args.change_month,
        args.test_rows,
        args.oracle_months,
    );
    markdown.push_str(table);
    markdown.push_str(LEGEND);
    markdown.push_str(&month_tables(report));
    std::fs::write(&args.out, markdown)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    let json_path = args.out.with_extension("json");
    let json = serde_json::to_vec_pretty(report)?;
    std::fs::write(&json_path, json)
        .with_context(|| format!("cannot write {}", json_path.display()))?;
    eprintln!(
        "quality: results written to {} and {}",
        args.out.display(),
        json_path.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scores(auc: f64, f1: f64) -> Scores {
        Scores {
            auc: Some(auc),
            f1,
            f1_at_half: f1,
            threshold: 0.5,
        }
    }

    /// A run whose months are (month, retrained, drift flagged, deployed AUC, oracle AUC).
    fn seed_run(
        seed: u64,
        change: Option<usize>,
        months: &[(usize, bool, bool, f64, f64)],
    ) -> SeedRun {
        SeedRun {
            scenario: Scenario::Sudden,
            rule: Rule::Original,
            seed,
            clients: 100,
            change_month: change,
            months: months
                .iter()
                .map(
                    |&(month, retrained, flagged, deployed, oracle)| MonthFigures {
                        month,
                        decision: if flagged {
                            Decision::Drift
                        } else {
                            Decision::NoDrift
                        },
                        reason: String::new(),
                        retrained,
                        redeployed: retrained,
                        drift_detected: flagged,
                        data_drift: None,
                        recorded_f1: None,
                        new_rows_f1: None,
                        scored_month: month + 1,
                        deployed: scores(deployed, 0.2),
                        oracle: scores(oracle, 0.4),
                        oracle_months: (0, month),
                    },
                )
                .collect(),
        }
    }

    #[test]
    fn summary_counts_retraining_detection_and_recovery_from_the_second_month_after_the_change() {
        // Bootstrap at month 1 (not counted), change at month 3.
        let first = seed_run(
            1,
            Some(3),
            &[
                (1, true, false, 0.8, 0.8),
                (2, true, true, 0.2, 0.2),
                (3, true, true, 0.3, 0.8),
                (4, false, false, 0.76, 0.8),
                (5, false, false, 0.6, 0.8),
            ],
        );
        let second = seed_run(
            2,
            Some(3),
            &[
                (1, true, false, 0.8, 0.8),
                (2, false, false, 0.2, 0.2),
                (3, false, false, 0.3, 0.8),
                (4, false, false, 0.3, 0.8),
                (5, true, true, 0.8, 0.8),
            ],
        );
        let summary = summarize_group(Scenario::Sudden, Rule::Original, &[&first, &second]);
        assert_eq!(summary.runs, 8);
        assert_eq!(summary.retrained, 3.0 / 8.0);
        // Before the change: month 2 of each seed.
        assert_eq!(summary.retrained_before_change, Some(0.5));
        assert_eq!(summary.detected_in_first_month, Some(1));
        // Seed 1 at once, seed 2 two months late; a flag before the change does not count.
        assert_eq!(summary.mean_detection_delay, Some(1.0));
        assert_eq!(summary.never_detected, Some(0));
        assert_eq!(summary.data_drift_after_change, None);
        // Scored months 5 and 6 only (runs of months 4 and 5).
        assert_eq!(summary.scored_months, 4);
        let ratios = [0.76 / 0.8, 0.6 / 0.8, 0.3 / 0.8, 1.0];
        assert!((summary.auc_ratio - ratios.iter().sum::<f64>() / 4.0).abs() < 1e-12);
        assert_eq!(summary.auc_ratio_at_least_95, 0.5);
        assert!((summary.deployed_auc - (0.76 + 0.6 + 0.3 + 0.8) / 4.0).abs() < 1e-12);
        assert_eq!((summary.deployed_f1, summary.oracle_f1), (0.2, 0.4));
    }

    #[test]
    fn without_a_change_every_month_counts_and_nothing_is_detected() {
        let run = seed_run(
            1,
            None,
            &[
                (1, true, false, 0.8, 0.8),
                (2, true, true, 0.7, 0.8),
                (3, false, false, 0.8, 0.8),
            ],
        );
        let summary = summarize_group(Scenario::Stable, Rule::Original, &[&run]);
        assert_eq!(summary.retrained, 0.5);
        assert_eq!(summary.retrained_before_change, Some(0.5));
        assert_eq!(summary.detected_in_first_month, None);
        assert_eq!(summary.mean_detection_delay, None);
        assert_eq!(summary.scored_months, 3);
        let table = summary_table(&[summary]);
        assert!(
            table.contains("| stable | original | 100 | 50 % |"),
            "{table}"
        );
    }

    #[test]
    fn the_oracle_never_reaches_back_before_the_change() {
        assert_eq!(regime_start(None, 9), 0);
        assert_eq!(regime_start(Some(6), 5), 0);
        assert_eq!(regime_start(Some(6), 6), 6);
        assert_eq!(regime_start(Some(6), 9), 6);
    }
}
