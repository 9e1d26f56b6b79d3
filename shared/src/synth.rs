//! Synthetic client data at real scale, for benchmarks and drift tests: `clients` corporate
//! clients followed over `months` monthly snapshot files with the five columns of the client
//! schema, plus a matching held-out test file drawn from the same process. The data is meant to
//! look like the real thing where it matters for speed and for the model: employee counts are
//! heavy-tailed (log-normal, 1 to tens of thousands), activity scales with size and has
//! log-normal noise and momentum, clients whose activity falls are more likely to leave, a
//! client that leaves is replaced by a new one (so every file has `clients` rows), a set share
//! of rows repeat the client's previous row exactly (the exact duplicates ingestion must drop),
//! and a set share of feature values are empty. A [`Drift`] changes the process from a chosen
//! month on: the activity→attrition relation reverses at once or turns over several months
//! (concept drift), activity levels and company sizes move with the relation unchanged
//! (covariate shift), or the base attrition rate moves with the slope unchanged (label-rate
//! shift). The test file can be drawn from the process as it is at any month, so drifted data
//! has a matching test file. Everything is deterministic by `seed` (a SplitMix64 generator
//! written here: the data only needs to be reproducible and well mixed, not cryptographic, so no
//! RNG crate is pulled in).

use std::fmt::Write as _;

use bytes::Bytes;

use crate::data::schema::COLUMNS;
use crate::location::Location;
use crate::store::{PutMode, StoreError};

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct SynthSpec {
    /// Rows per monthly file (clients alive at any time).
    pub clients: usize,
    /// Monthly files.
    pub months: usize,
    /// Only files from this month on are written (earlier months are still simulated, so a
    /// later call can add months to an existing data set).
    pub first_month_written: usize,
    pub seed: u64,
    /// Share of rows (after the first month) that repeat the client's previous row exactly.
    pub duplicate_rate: f64,
    /// Share of feature values left empty.
    pub missing_rate: f64,
    /// How the process changes, and from which month; `None`: it never does.
    pub drift: Option<Drift>,
    /// Rows of the test file (0: none).
    pub test_rows: usize,
    /// The month whose process the test file is drawn from; `None`: the month after the last
    /// file (so, with a drift, the drifted process).
    pub test_month: Option<usize>,
}

/// A change of the generating process from `from_month` on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Drift {
    pub from_month: usize,
    pub kind: DriftKind,
}

/// What changes. Every kind draws the same random numbers as undrifted data, so months before
/// `from_month` are identical to those of the same seed without drift.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DriftKind {
    /// Sudden concept drift: rising (not falling) activity makes clients leave, at once.
    Sudden,
    /// Gradual concept drift: the activity term's weight turns linearly from its original value
    /// to the reversed one over `months` months (the last of them fully reversed); `months = 1`
    /// is [`DriftKind::Sudden`].
    Gradual { months: usize },
    /// Covariate shift, the relation unchanged: every client's activity (its level and its
    /// recorded past year, so its trend and risk are not disturbed) is multiplied by
    /// `activity_scale`, and clients who join from then on have `size_scale` times the
    /// employees (the population turns over as clients leave). Exits depend on the same
    /// function of the observed columns as before.
    Covariate {
        activity_scale: f64,
        size_scale: f64,
    },
    /// Label-rate shift: every client's odds of leaving are multiplied by `exit_odds_scale`
    /// (the intercept moves, the slopes do not).
    LabelRate { exit_odds_scale: f64 },
}

impl Drift {
    /// Weight of the activity trend in the exit log-odds at `month`: −5 (falling activity means
    /// risk) before a concept drift, +5 once it is complete.
    fn trend_weight(&self, month: usize) -> f64 {
        let over_months = match self.kind {
            DriftKind::Sudden => 1,
            DriftKind::Gradual { months } => months,
            _ => return ORIGINAL_TREND_WEIGHT,
        };
        let progress =
            ((month as f64 - self.from_month as f64 + 1.0) / over_months as f64).clamp(0.0, 1.0);
        ORIGINAL_TREND_WEIGHT * (1.0 - 2.0 * progress)
    }

    /// Added to the exit log-odds at `month`.
    fn log_odds_shift(&self, month: usize) -> f64 {
        match self.kind {
            DriftKind::LabelRate { exit_odds_scale } if month >= self.from_month => {
                exit_odds_scale.ln()
            }
            _ => 0.0,
        }
    }

    /// Activity and size factors of the covariate shift, once it has begun.
    fn covariate_scales(&self, month: usize) -> Option<(f64, f64)> {
        match self.kind {
            DriftKind::Covariate {
                activity_scale,
                size_scale,
            } if month >= self.from_month => Some((activity_scale, size_scale)),
            _ => None,
        }
    }

    fn validate(&self) -> Result<(), String> {
        let positive = |name: &str, value: f64| {
            if value.is_finite() && value > 0.0 {
                Ok(())
            } else {
                Err(format!("{name} = {value}: must be a positive number"))
            }
        };
        match self.kind {
            DriftKind::Sudden => Ok(()),
            DriftKind::Gradual { months: 0 } => {
                Err("a gradual drift must last at least 1 month".into())
            }
            DriftKind::Gradual { .. } => Ok(()),
            DriftKind::Covariate {
                activity_scale,
                size_scale,
            } => {
                positive("activity_scale", activity_scale)?;
                positive("size_scale", size_scale)
            }
            DriftKind::LabelRate { exit_odds_scale } => {
                positive("exit_odds_scale", exit_odds_scale)
            }
        }
    }
}

/// Default strengths of each kind, for `risk generate` and the quality benchmark.
impl DriftKind {
    /// A gradual drift takes six months.
    pub const DEFAULT_GRADUAL_MONTHS: usize = 6;
    /// A covariate shift triples activity and makes new clients four times as large.
    pub const DEFAULT_ACTIVITY_SCALE: f64 = 3.0;
    pub const DEFAULT_SIZE_SCALE: f64 = 4.0;
    /// A label-rate shift doubles the odds of leaving (about 30% of rows exit before, 38% after).
    pub const DEFAULT_EXIT_ODDS_SCALE: f64 = 2.0;
}

/// The activity trend's weight in the exit log-odds of undrifted data.
const ORIGINAL_TREND_WEIGHT: f64 = -5.0;

impl Default for SynthSpec {
    fn default() -> Self {
        SynthSpec {
            clients: 10_000,
            months: 12,
            first_month_written: 0,
            seed: 42,
            duplicate_rate: 0.05,
            missing_rate: 0.01,
            drift: None,
            test_rows: 10_000,
            test_month: None,
        }
    }
}

impl SynthSpec {
    /// Checks the rates and sizes; the message names the setting.
    pub fn validate(&self) -> Result<(), String> {
        for (name, rate) in [
            ("duplicate_rate", self.duplicate_rate),
            ("missing_rate", self.missing_rate),
        ] {
            if !(0.0..1.0).contains(&rate) {
                return Err(format!("{name} = {rate}: must be at least 0 and below 1"));
            }
        }
        if self.clients == 0 || self.months == 0 {
            return Err("clients and months must be at least 1".into());
        }
        if self.first_month_written >= self.months {
            return Err(format!(
                "first month written ({}) must be below the number of months ({})",
                self.first_month_written, self.months
            ));
        }
        self.drift.as_ref().map_or(Ok(()), Drift::validate)
    }

    /// The month the test file is drawn from.
    pub fn test_month(&self) -> usize {
        self.test_month.unwrap_or(self.months)
    }

    /// The key of month `month`'s file.
    pub fn file_name(month: usize) -> String {
        format!("clients-m{month:03}.csv")
    }
}

/// Bumped whenever the same settings would generate different data, so data sets cached by the
/// benchmark harness are regenerated.
pub const GENERATOR_VERSION: u32 = 2;

/// The test file's key.
pub const TEST_FILE: &str = "testdata.csv";

/// SplitMix64: 64 bits of state, passes BigCrush, a few instructions per number.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Standard normal (Box–Muller; the second value is dropped to keep the stream simple).
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.uniform();
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

/// One generated row; `None` is an empty field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SynthRow {
    pub corporation: u64,
    pub lastmonth_activity: Option<i64>,
    pub lastyear_activity: Option<i64>,
    pub number_of_employees: Option<i64>,
    pub exited: i8,
}

/// A client's hidden state.
#[derive(Debug, Clone)]
struct Client {
    id: u64,
    employees: i64,
    /// Typical monthly activity.
    base: f64,
    /// Log-scale deviation from `base` that persists from month to month.
    momentum: f64,
    /// The last twelve months of activity, most recent last.
    history: [i64; 12],
    previous: Option<SynthRow>,
}

/// The simulation: every client slot, month by month.
struct Simulation {
    rng: SplitMix64,
    clients: Vec<Client>,
    next_id: u64,
    duplicate_rate: f64,
    missing_rate: f64,
    drift: Option<Drift>,
    /// Activity and size factors for clients joining now (1 until a covariate shift begins).
    activity_scale: f64,
    size_scale: f64,
    covariate_shift_begun: bool,
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

impl Simulation {
    fn new(clients: usize, seed: u64, spec: &SynthSpec) -> Self {
        let mut simulation = Simulation {
            rng: SplitMix64::new(seed),
            clients: Vec::with_capacity(clients),
            next_id: 0,
            duplicate_rate: spec.duplicate_rate,
            missing_rate: spec.missing_rate,
            drift: spec.drift,
            activity_scale: 1.0,
            size_scale: 1.0,
            covariate_shift_begun: false,
        };
        for _ in 0..clients {
            let client = simulation.new_client();
            simulation.clients.push(client);
        }
        simulation
    }

    fn new_client(&mut self) -> Client {
        let rng = &mut self.rng;
        // Median 16 employees, one in a hundred above ~400, the largest in the tens of thousands.
        let employees = ((2.8 + 1.4 * rng.normal()).exp() * self.size_scale)
            .round()
            .clamp(1.0, 50_000.0) as i64;
        let base =
            3.0 * (employees as f64).powf(0.8) * (0.6 * rng.normal()).exp() * self.activity_scale;
        let mut history = [0i64; 12];
        for month in &mut history {
            *month = (base * (0.25 * rng.normal()).exp()).round() as i64;
        }
        let id = self.next_id;
        self.next_id += 1;
        Client {
            id,
            employees,
            base,
            momentum: 0.0,
            history,
            previous: None,
        }
    }

    /// Hides each feature value with probability `missing_rate`.
    fn maybe_missing(&mut self, value: i64) -> Option<i64> {
        (self.rng.uniform() >= self.missing_rate).then_some(value)
    }

    /// Starts a covariate shift: live clients' activity (level and past year) scales at once,
    /// clients joining from now on are drawn with the new factors.
    fn begin_covariate_shift(&mut self, activity_scale: f64, size_scale: f64) {
        self.covariate_shift_begun = true;
        self.activity_scale = activity_scale;
        self.size_scale = size_scale;
        for client in &mut self.clients {
            client.base *= activity_scale;
            for month in &mut client.history {
                *month = (*month as f64 * activity_scale).round() as i64;
            }
        }
    }

    /// Advances every client by one month and returns the month's snapshot.
    fn month(&mut self, month: usize, mut emit: impl FnMut(&SynthRow)) {
        let (trend_weight, log_odds_shift) = self.drift.map_or((ORIGINAL_TREND_WEIGHT, 0.0), |d| {
            (d.trend_weight(month), d.log_odds_shift(month))
        });
        if let Some((activity, size)) = self.drift.and_then(|d| d.covariate_scales(month))
            && !self.covariate_shift_begun
        {
            self.begin_covariate_shift(activity, size);
        }
        for slot in 0..self.clients.len() {
            let repeat = self.clients[slot].previous.filter(|previous| {
                previous.exited == 0 && self.rng.uniform() < self.duplicate_rate
            });
            if let Some(row) = repeat {
                // The client's figures were not refreshed this month: the same row again.
                emit(&row);
                continue;
            }
            let rng = &mut self.rng;
            let client = &mut self.clients[slot];
            // Momentum wanders; now and then a client starts to slide away.
            client.momentum = 0.75 * client.momentum + 0.2 * rng.normal();
            if rng.uniform() < 0.04 {
                client.momentum -= 0.9;
            }
            let activity = (client.base * (client.momentum + 0.25 * rng.normal()).exp()).round();
            let activity = activity.clamp(0.0, 1e12) as i64;
            client.history.rotate_left(1);
            client.history[11] = activity;
            let lastyear: i64 = client.history.iter().sum();
            // Risk rises as this month falls below the client's own monthly average, and is a
            // little higher for small clients; a concept drift turns the activity term round.
            let trend = ((activity as f64 + 1.0) / (lastyear as f64 / 12.0 + 1.0)).ln();
            // Tuned so that about 30% of the rows are exits (the seed data has more than half)
            // and a linear model on the raw columns reaches a ROC AUC around 0.8.
            let size_term = -0.15 * (client.employees as f64).ln();
            let probability = sigmoid(-1.0 + log_odds_shift + trend_weight * trend + size_term);
            let exited = i8::from(rng.uniform() < probability);
            let (id, employees) = (client.id, client.employees);
            let row = SynthRow {
                corporation: id,
                lastmonth_activity: self.maybe_missing(activity),
                lastyear_activity: self.maybe_missing(lastyear),
                number_of_employees: self.maybe_missing(employees),
                exited,
            };
            emit(&row);
            if exited == 1 {
                self.clients[slot] = self.new_client();
            } else {
                self.clients[slot].previous = Some(row);
            }
        }
    }
}

/// A client's code: six lowercase letters, a bijective scramble of its id (so codes look random
/// but never collide below 26⁶ ≈ 309 million clients).
pub fn corporation_code(id: u64) -> String {
    const SPACE: u64 = 26u64.pow(6);
    // 7919 is prime and not 2 or 13, so multiplying by it permutes the residues mod 26⁶.
    let mut n = (id % SPACE).wrapping_mul(7919).wrapping_add(123_457) % SPACE;
    let mut code = [b'a'; 6];
    for letter in code.iter_mut().rev() {
        *letter = b'a' + (n % 26) as u8;
        n /= 26;
    }
    String::from_utf8_lossy(&code).into_owned()
}

fn push_field(out: &mut String, value: Option<i64>) {
    out.push(',');
    if let Some(value) = value {
        let _ = write!(out, "{value}");
    }
}

/// Appends one row as a CSV line.
pub fn write_row(out: &mut String, row: &SynthRow) {
    out.push_str(&corporation_code(row.corporation));
    push_field(out, row.lastmonth_activity);
    push_field(out, row.lastyear_activity);
    push_field(out, row.number_of_employees);
    out.push(',');
    out.push(if row.exited == 1 { '1' } else { '0' });
    out.push('\n');
}

fn header() -> String {
    let mut header = COLUMNS.join(",");
    header.push('\n');
    header
}

/// The monthly files and the test file as CSV text, in memory, calling `file` with each name
/// and body in order (months first, the test file last).
pub fn generate(
    spec: &SynthSpec,
    mut file: impl FnMut(String, String) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let mut simulation = Simulation::new(spec.clients, spec.seed, spec);
    // About 30 bytes a row; reserving avoids regrowing a multi-megabyte string.
    let mut body = String::with_capacity(spec.clients * 32 + 128);
    for month in 0..spec.months {
        let write = month >= spec.first_month_written;
        body.clear();
        if write {
            body.push_str(&header());
        }
        simulation.month(month, |row| {
            if write {
                write_row(&mut body, row);
            }
        });
        if write {
            file(SynthSpec::file_name(month), body.clone())?;
        }
    }
    if spec.test_rows > 0 {
        file(TEST_FILE.to_string(), test_file(spec, spec.test_month()))?;
    }
    Ok(())
}

/// The monthly files (name and CSV text, in month order) and the test file's text (empty when
/// `spec` asks for none), in memory.
pub fn generate_in_memory(spec: &SynthSpec) -> Result<(Vec<(String, String)>, String), StoreError> {
    let mut files = Vec::new();
    let mut test = String::new();
    generate(spec, |name, body| {
        if name == TEST_FILE {
            test = body;
        } else {
            files.push((name, body));
        }
        Ok(())
    })?;
    Ok((files, test))
}

/// The test file as CSV text: `spec.test_rows` other clients of the same process (their own
/// seed), as they are at `month` (the months before are simulated, not kept).
pub fn test_file(spec: &SynthSpec, month: usize) -> String {
    let mut test = Simulation::new(spec.test_rows, spec.seed ^ 0x7E57_DA7A, spec);
    for earlier in 0..month {
        test.month(earlier, |_| {});
    }
    let mut body = String::with_capacity(spec.test_rows * 32 + 128);
    body.push_str(&header());
    // A snapshot of every client as of this month: none of them repeats a stale row.
    test.duplicate_rate = 0.0;
    test.month(month, |row| write_row(&mut body, row));
    body
}

/// What [`write_synthetic`] wrote.
#[derive(Debug, Clone, Default)]
pub struct SynthOutcome {
    pub files: Vec<String>,
    pub rows: u64,
    pub bytes: u64,
    pub test_file: Option<String>,
}

/// Generates the data set and writes the monthly files to `source` and the test file to
/// `test` (each a new version of its key).
pub async fn write_synthetic(
    spec: &SynthSpec,
    source: &Location,
    test: &Location,
) -> Result<SynthOutcome, StoreError> {
    let mut files: Vec<(String, String)> = Vec::new();
    let spec_owned = spec.clone();
    // Generation is CPU-bound (tens of millions of numbers for the large sets): off the runtime.
    let generated = tokio::task::spawn_blocking(move || {
        let mut out = Vec::new();
        generate(&spec_owned, |name, body| {
            out.push((name, body));
            Ok(())
        })
        .map(|()| out)
    })
    .await
    .map_err(|e| StoreError::Io {
        path: std::path::PathBuf::from(source.url()),
        source: std::io::Error::other(format!("generator task failed: {e}")),
    })??;
    files.extend(generated);
    let mut outcome = SynthOutcome::default();
    for (name, body) in files {
        let rows = body
            .bytes()
            .filter(|&b| b == b'\n')
            .count()
            .saturating_sub(1) as u64;
        let bytes = body.len() as u64;
        if name == TEST_FILE {
            test.put(&name, Bytes::from(body), PutMode::Overwrite)
                .await?;
            outcome.test_file = Some(test.object_url(&name));
        } else {
            source
                .put(&name, Bytes::from(body), PutMode::Overwrite)
                .await?;
            outcome.rows += rows;
            outcome.bytes += bytes;
            outcome.files.push(source.object_url(&name));
        }
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> SynthSpec {
        SynthSpec {
            clients: 2_000,
            months: 6,
            test_rows: 500,
            ..SynthSpec::default()
        }
    }

    fn collect(spec: &SynthSpec) -> Vec<(String, String)> {
        let mut files = Vec::new();
        generate(spec, |name, body| {
            files.push((name, body));
            Ok(())
        })
        .unwrap();
        files
    }

    #[test]
    fn same_seed_same_bytes_other_seed_other_bytes() {
        let spec = small();
        assert_eq!(collect(&spec), collect(&spec));
        let other = SynthSpec { seed: 7, ..small() };
        assert_ne!(collect(&spec), collect(&other));
    }

    #[test]
    fn files_have_the_schema_the_sizes_and_the_rates_asked_for() {
        let spec = small();
        let files = collect(&spec);
        assert_eq!(files.len(), 7);
        assert_eq!(files[0].0, "clients-m000.csv");
        assert_eq!(files[6].0, TEST_FILE);
        let mut seen = std::collections::HashSet::new();
        let (mut rows, mut duplicates, mut fields, mut missing, mut exited) = (0, 0, 0, 0, 0);
        let mut employees = Vec::new();
        for (name, body) in &files[..6] {
            let mut lines = body.lines();
            assert_eq!(lines.next(), Some(COLUMNS.join(",").as_str()), "{name}");
            let mut in_file = 0;
            for line in lines {
                in_file += 1;
                rows += 1;
                if !seen.insert(line.to_string()) {
                    duplicates += 1;
                }
                let parts: Vec<&str> = line.split(',').collect();
                assert_eq!(parts.len(), 5, "{line}");
                assert_eq!(parts[0].len(), 6);
                for part in &parts[1..4] {
                    fields += 1;
                    if part.is_empty() {
                        missing += 1;
                    } else {
                        assert!(part.parse::<i64>().unwrap() >= 0);
                    }
                }
                if !parts[3].is_empty() {
                    employees.push(parts[3].parse::<i64>().unwrap());
                }
                exited += i32::from(parts[4] == "1");
            }
            assert_eq!(in_file, spec.clients, "{name}");
        }
        // About 5% of the rows after the first month repeat exactly (continuing clients only).
        let duplicate_share = f64::from(duplicates) / f64::from(rows - 2_000);
        assert!((0.02..0.07).contains(&duplicate_share), "{duplicate_share}");
        let missing_share = f64::from(missing) / f64::from(fields);
        assert!((0.007..0.013).contains(&missing_share), "{missing_share}");
        let exit_share = f64::from(exited) / f64::from(rows);
        assert!((0.15..0.45).contains(&exit_share), "{exit_share}");
        employees.sort_unstable();
        assert!(employees[0] >= 1);
        assert!(*employees.last().unwrap() > 1_000, "heavy tail");
        assert!(employees[employees.len() / 2] < 100, "median is small");
        assert_eq!(files[6].1.lines().count(), 501);
    }

    /// Exit shares among rows whose activity is below a third of the client's monthly average,
    /// and among the rest, over the given CSV bodies.
    fn falling_vs_rest<'a>(bodies: impl IntoIterator<Item = &'a str>) -> (f64, f64) {
        let (mut falling, mut falling_exits, mut rest, mut rest_exits) = (0, 0, 0, 0);
        for body in bodies {
            for line in body.lines().skip(1) {
                let parts: Vec<&str> = line.split(',').collect();
                let (Ok(month), Ok(year)) = (parts[1].parse::<f64>(), parts[2].parse::<f64>())
                else {
                    continue;
                };
                let exit = u32::from(parts[4] == "1");
                if month * 3.0 < year / 12.0 {
                    falling += 1;
                    falling_exits += exit;
                } else {
                    rest += 1;
                    rest_exits += exit;
                }
            }
        }
        (
            f64::from(falling_exits) / f64::from(falling),
            f64::from(rest_exits) / f64::from(rest),
        )
    }

    /// The monthly files from `from` on (not the test file).
    fn months_from(files: &[(String, String)], from: usize) -> impl Iterator<Item = &str> {
        files
            .iter()
            .filter(move |(name, _)| name != TEST_FILE && *name >= SynthSpec::file_name(from))
            .map(|(_, body)| body.as_str())
    }

    fn drifted(from_month: usize, kind: DriftKind) -> SynthSpec {
        SynthSpec {
            drift: Some(Drift { from_month, kind }),
            ..small()
        }
    }

    /// A column of every row of `bodies` (empty values skipped).
    fn column<'a>(bodies: impl IntoIterator<Item = &'a str>, index: usize) -> Vec<f64> {
        bodies
            .into_iter()
            .flat_map(|body| body.lines().skip(1))
            .filter_map(|line| line.split(',').nth(index)?.parse().ok())
            .collect()
    }

    fn median(mut values: Vec<f64>) -> f64 {
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    }

    fn mean(values: &[f64]) -> f64 {
        values.iter().sum::<f64>() / values.len() as f64
    }

    #[test]
    fn leaving_is_more_likely_when_activity_falls_and_drift_reverses_it() {
        let (falling, rest) = falling_vs_rest(months_from(&collect(&small()), 0));
        assert!(falling > 2.0 * rest, "{falling} vs {rest}");
        let drifted = collect(&drifted(3, DriftKind::Sudden));
        let (falling, rest) = falling_vs_rest(months_from(&drifted, 3));
        assert!(falling < rest, "{falling} vs {rest}");
    }

    /// MD5 of every file that generator version 2 wrote for these settings before the drift
    /// kinds existed. If this fails, the same settings now give other data: bump
    /// `GENERATOR_VERSION` (so cached benchmark data is regenerated) and pin the new digests.
    #[test]
    fn existing_settings_still_generate_the_same_bytes() {
        use md5::{Digest, Md5};
        let digests = |spec: &SynthSpec| -> Vec<String> {
            collect(spec)
                .iter()
                .map(|(name, body)| format!("{name} {:x}", Md5::digest(body.as_bytes())))
                .collect()
        };
        let spec = SynthSpec {
            clients: 3_000,
            months: 6,
            test_rows: 1_500,
            seed: 9,
            ..SynthSpec::default()
        };
        assert_eq!(GENERATOR_VERSION, 2);
        assert_eq!(
            digests(&spec),
            [
                "clients-m000.csv e2effd3a8c2de527b230409e08249c5e",
                "clients-m001.csv d815152ae0899c5ca0f40058cfea940b",
                "clients-m002.csv c83c5da09d7549644e2ea7c160aadeef",
                "clients-m003.csv e498da1ba8b1fc53338df68acff1cbae",
                "clients-m004.csv 378c51628a32b24db0464e32fd79463e",
                "clients-m005.csv b5a67e4c8ab4c5dd6e05083645103385",
                "testdata.csv 1559763ecc0550426c22f6692fe37d13",
            ]
        );
        let sudden = SynthSpec {
            drift: Some(Drift {
                from_month: 3,
                kind: DriftKind::Sudden,
            }),
            ..spec
        };
        assert_eq!(
            digests(&sudden),
            [
                "clients-m000.csv e2effd3a8c2de527b230409e08249c5e",
                "clients-m001.csv d815152ae0899c5ca0f40058cfea940b",
                "clients-m002.csv c83c5da09d7549644e2ea7c160aadeef",
                "clients-m003.csv 76914242fe50648ffece147beaca1c73",
                "clients-m004.csv 976e9292af6b9acc9711d5ed5f419c5e",
                "clients-m005.csv 184ed8a772f576abdbe3b34410dd29b3",
                "testdata.csv 1c053dff8491823d86f3a21daae42d9e",
            ]
        );
    }

    #[test]
    fn every_drift_kind_leaves_the_months_before_it_unchanged_and_changes_its_first_month() {
        let plain = collect(&small());
        for kind in [
            DriftKind::Sudden,
            DriftKind::Gradual { months: 3 },
            DriftKind::Covariate {
                activity_scale: 2.0,
                size_scale: 1.0,
            },
            DriftKind::LabelRate {
                exit_odds_scale: 0.5,
            },
        ] {
            let files = collect(&drifted(3, kind));
            assert_eq!(files[..3], plain[..3], "{kind:?}");
            assert_ne!(files[3], plain[3], "{kind:?}");
        }
    }

    #[test]
    fn gradual_drift_turns_the_activity_weight_linearly_and_sudden_is_one_month_of_it() {
        let gradual = Drift {
            from_month: 3,
            kind: DriftKind::Gradual { months: 4 },
        };
        let weights: Vec<f64> = (1..9).map(|month| gradual.trend_weight(month)).collect();
        assert_eq!(weights, [-5.0, -5.0, -2.5, 0.0, 2.5, 5.0, 5.0, 5.0]);
        let sudden = Drift {
            from_month: 3,
            kind: DriftKind::Sudden,
        };
        let one_month = Drift {
            from_month: 3,
            kind: DriftKind::Gradual { months: 1 },
        };
        for month in 0..6 {
            assert_eq!(sudden.trend_weight(month), one_month.trend_weight(month));
        }
        assert_eq!(
            collect(&drifted(3, DriftKind::Sudden)),
            collect(&drifted(3, DriftKind::Gradual { months: 1 }))
        );
        // Halfway through a long rotation activity hardly matters; at its end it is reversed.
        let files = collect(&drifted(0, DriftKind::Gradual { months: 10 }));
        let (falling, rest) = falling_vs_rest(months_from(&files, 4).take(1));
        assert!((falling / rest - 1.0).abs() < 0.5, "{falling} vs {rest}");
    }

    #[test]
    fn covariate_shift_moves_the_features_and_keeps_the_relation() {
        let kind = DriftKind::Covariate {
            activity_scale: 3.0,
            size_scale: 4.0,
        };
        let files = collect(&drifted(3, kind));
        let plain = collect(&small());
        let month = |files: &[(String, String)], m: usize| files[m].1.clone();
        // Activity triples at once, in this month's figure and in the past year's.
        for index in [1, 2] {
            let ratio = median(column([month(&files, 3).as_str()], index))
                / median(column([month(&plain, 3).as_str()], index));
            assert!((2.7..3.3).contains(&ratio), "column {index}: {ratio}");
        }
        // New clients are larger; by the last month most clients are new.
        let ratio = mean(&column([month(&files, 5).as_str()], 3))
            / mean(&column([month(&plain, 5).as_str()], 3));
        assert!(ratio > 1.5, "employees: {ratio}");
        // The relation is the same: falling activity still means leaving.
        let (falling, rest) = falling_vs_rest(months_from(&files, 3));
        assert!(falling > 2.0 * rest, "{falling} vs {rest}");
    }

    #[test]
    fn label_rate_shift_moves_the_exit_share_and_keeps_the_relation() {
        let exit_share = |bodies: Vec<&str>| mean(&column(bodies, 4));
        let kind = DriftKind::LabelRate {
            exit_odds_scale: DriftKind::DEFAULT_EXIT_ODDS_SCALE,
        };
        let files = collect(&drifted(3, kind));
        let before = exit_share(months_from(&files, 0).take(3).collect());
        let after = exit_share(months_from(&files, 3).collect());
        assert!((0.25..0.35).contains(&before), "{before}");
        assert!((0.34..0.42).contains(&after), "{after}");
        let (falling, rest) = falling_vs_rest(months_from(&files, 3));
        assert!(falling > 1.5 * rest, "{falling} vs {rest}");
    }

    #[test]
    fn the_test_file_comes_from_the_process_at_the_chosen_month() {
        let spec = drifted(3, DriftKind::Sudden);
        let files = collect(&spec);
        // By default: the month after the last file.
        assert_eq!(files[6], (TEST_FILE.to_string(), test_file(&spec, 6)));
        let with_month = SynthSpec {
            test_month: Some(1),
            ..spec.clone()
        };
        assert_eq!(collect(&with_month)[6].1, test_file(&spec, 1));
        let before = test_file(&spec, 1);
        let (falling, rest) = falling_vs_rest([before.as_str()]);
        assert!(
            falling > 2.0 * rest,
            "before the drift: {falling} vs {rest}"
        );
        let after = test_file(&spec, 4);
        let (falling, rest) = falling_vs_rest([after.as_str()]);
        assert!(falling < rest, "after the drift: {falling} vs {rest}");
        assert_eq!(after.lines().count(), spec.test_rows + 1);
    }

    #[test]
    fn writing_later_months_only_continues_the_same_data_set() {
        let all = collect(&small());
        let later = collect(&SynthSpec {
            first_month_written: 4,
            ..small()
        });
        assert_eq!(later.len(), 3);
        assert_eq!(later[..2], all[4..6]);
    }

    #[test]
    fn corporation_codes_do_not_collide() {
        let codes: std::collections::HashSet<String> = (0..200_000).map(corporation_code).collect();
        assert_eq!(codes.len(), 200_000);
    }

    #[test]
    fn bad_rates_are_refused() {
        let spec = SynthSpec {
            missing_rate: 1.0,
            ..small()
        };
        assert!(spec.validate().unwrap_err().contains("missing_rate"));
        let spec = drifted(
            2,
            DriftKind::Covariate {
                activity_scale: 0.0,
                size_scale: 1.0,
            },
        );
        assert!(spec.validate().unwrap_err().contains("activity_scale"));
        let spec = drifted(2, DriftKind::Gradual { months: 0 });
        assert!(spec.validate().unwrap_err().contains("at least 1 month"));
    }

    #[tokio::test]
    async fn writes_through_the_store_and_the_pipeline_reads_it() {
        let dir = tempfile::tempdir().unwrap();
        let source = Location::local(dir.path().join("source"));
        let test = Location::local(dir.path().join("test"));
        let outcome = write_synthetic(&small(), &source, &test).await.unwrap();
        assert_eq!(outcome.files.len(), 6);
        assert_eq!(outcome.rows, 12_000);
        let (_, body) = source.get("clients-m005.csv", None).await.unwrap();
        let contents = crate::data::read_csv_file("m5", body.as_ref()).unwrap();
        assert_eq!(contents.counts.rows_accepted, 2_000);
        assert_eq!(contents.counts.rows_rejected, 0);
        assert!(test.head(TEST_FILE, None).await.is_ok());
    }
}
