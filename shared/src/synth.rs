//! Synthetic client data at real scale, for benchmarks and drift tests: `clients` corporate
//! clients followed over `months` monthly snapshot files with the five columns of the client
//! schema, plus a matching held-out test file drawn from the same process. The data is meant to
//! look like the real thing where it matters for speed and for the model: employee counts are
//! heavy-tailed (log-normal, 1 to tens of thousands), activity scales with size and has
//! log-normal noise and momentum, clients whose activity falls are more likely to leave, a
//! client that leaves is replaced by a new one (so every file has `clients` rows), a set share
//! of rows repeat the client's previous row exactly (the exact duplicates ingestion must drop),
//! and a set share of feature values are empty. With `drift_from_month` the relation between
//! activity and attrition reverses from that month on, which a deployed model sees as drift.
//! Everything is deterministic by `seed` (a SplitMix64 generator written here: the data only
//! needs to be reproducible and well mixed, not cryptographic, so no RNG crate is pulled in).

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
    /// From this month on, rising (not falling) activity makes clients leave.
    pub drift_from_month: Option<usize>,
    /// Rows of the test file (0: none).
    pub test_rows: usize,
}

impl Default for SynthSpec {
    fn default() -> Self {
        SynthSpec {
            clients: 10_000,
            months: 12,
            first_month_written: 0,
            seed: 42,
            duplicate_rate: 0.05,
            missing_rate: 0.01,
            drift_from_month: None,
            test_rows: 10_000,
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
        Ok(())
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
    drift_from_month: Option<usize>,
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
            drift_from_month: spec.drift_from_month,
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
        let employees = (2.8 + 1.4 * rng.normal())
            .exp()
            .round()
            .clamp(1.0, 50_000.0) as i64;
        let base = 3.0 * (employees as f64).powf(0.8) * (0.6 * rng.normal()).exp();
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

    /// Advances every client by one month and returns the month's snapshot.
    fn month(&mut self, month: usize, mut emit: impl FnMut(&SynthRow)) {
        let drifted = self.drift_from_month.is_some_and(|from| month >= from);
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
            // little higher for small clients; after the drift month the activity term flips.
            let trend = ((activity as f64 + 1.0) / (lastyear as f64 / 12.0 + 1.0)).ln();
            // Tuned so that about 30% of the rows are exits (the seed data has more than half)
            // and a linear model on the raw columns reaches a ROC AUC around 0.8.
            let trend_weight = if drifted { 5.0 } else { -5.0 };
            let size_term = -0.15 * (client.employees as f64).ln();
            let probability = sigmoid(-1.0 + trend_weight * trend + size_term);
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
        // Different clients from the same process, seen one month after the last file.
        let mut test = Simulation::new(spec.test_rows, spec.seed ^ 0x7E57_DA7A, spec);
        for month in 0..spec.months {
            test.month(month, |_| {});
        }
        body.clear();
        body.push_str(&header());
        // Duplicates make no sense within one snapshot file.
        test.duplicate_rate = 0.0;
        test.month(spec.months, |row| write_row(&mut body, row));
        file(TEST_FILE.to_string(), body.clone())?;
    }
    Ok(())
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

    #[test]
    fn leaving_is_more_likely_when_activity_falls_and_drift_reverses_it() {
        // Share of exits among rows whose activity is below a third of the monthly average,
        // against the rest.
        let falling_vs_rest = |spec: &SynthSpec, from_month: usize| {
            let (mut falling, mut falling_exits, mut rest, mut rest_exits) = (0, 0, 0, 0);
            for (name, body) in collect(spec) {
                if name == TEST_FILE || name < SynthSpec::file_name(from_month) {
                    continue;
                }
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
        };
        let (falling, rest) = falling_vs_rest(&small(), 0);
        assert!(falling > 2.0 * rest, "{falling} vs {rest}");
        let drifted = SynthSpec {
            drift_from_month: Some(3),
            ..small()
        };
        let (falling, rest) = falling_vs_rest(&drifted, 3);
        assert!(falling < rest, "{falling} vs {rest}");
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
