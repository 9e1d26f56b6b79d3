//! The README's "Try it" walkthrough, followed literally on a fresh copy of the repository with
//! the built `risk` (no second build): the main job twice, the practice-data drop-in, the drift
//! example, the model listing and a rollback, the one-line reset, and the API's sample answer.
//! Every figure the README quotes is checked against what these runs produce (so the README's
//! sample answers are real ones), every `cargo run` line of the section is one the test runs,
//! and `git status` of the copy is empty at the end: the walkthrough changes nothing tracked.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use serde_json::Value;

const CARGO_RUN: &str = "cargo run --release -- ";
const RESET: &str = "rm -rf local-store";

/// A copy of every tracked file of this repository (as it is in the work tree), committed in a
/// git repository of its own.
fn fresh_copy() -> tempfile::TempDir {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let copy = tempfile::tempdir().unwrap();
    let listed = git(repo, &["ls-files", "-z"]);
    for name in listed.split('\0').filter(|n| !n.is_empty()) {
        let source = repo.join(name);
        // A file deleted in the work tree but still in the index is not part of the copy.
        if !source.is_file() {
            continue;
        }
        let target = copy.path().join(name);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(&source, &target).unwrap();
    }
    git(copy.path(), &["init", "-q"]);
    git(copy.path(), &["add", "-A"]);
    git(
        copy.path(),
        &[
            "-c",
            "user.name=readme test",
            "-c",
            "user.email=readme@test.invalid",
            "-c",
            "commit.gpgsign=false",
            "commit",
            "-q",
            "-m",
            "fresh copy",
        ],
    );
    copy
}

fn git(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// `risk` in `dir` as a user runs it there: the repository's own `config.json`, nothing from
/// this process's environment that would point it elsewhere, and no network.
fn risk_command(dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_risk"));
    command
        .args(args)
        .current_dir(dir)
        .env("RISK_DEPENDENCY_CHECK", "off")
        .env("NO_COLOR", "1")
        .env_remove("RISK_CONFIG")
        .env_remove("RISK_DRIFT_RULE");
    for (_, var) in shared::config::SETTINGS {
        command.env_remove(var);
    }
    command
}

fn risk(dir: &Path, args: &[&str]) -> String {
    let output = risk_command(dir, args).output().unwrap();
    assert!(
        output.status.success(),
        "risk {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// The README's "Try it" section, up to the next top-level heading.
fn try_it_section(readme: &str) -> &str {
    let start = readme.find("\n## Try it\n").expect("a Try it section");
    let rest = &readme[start + 1..];
    let end = rest[3..].find("\n## ").map_or(rest.len(), |i| i + 3);
    &rest[..end]
}

/// The lines of the fenced blocks of `kind` (`sh`, `text`, `json`) in `text`, block by block.
fn blocks<'a>(text: &'a str, kind: &str) -> Vec<Vec<&'a str>> {
    let mut found = Vec::new();
    let mut current: Option<Vec<&str>> = None;
    for line in text.lines() {
        match (&mut current, line.trim_start().strip_prefix("```")) {
            (None, Some(tag)) if tag == kind => current = Some(Vec::new()),
            (Some(_), Some("")) => found.extend(current.take()),
            (Some(lines), _) => lines.push(line),
            _ => {}
        }
    }
    found
}

/// The README's prose with every run of whitespace made one space, so figures can be found
/// across its line breaks.
fn flat(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn assert_quotes(readme: &str, figure: &str) {
    assert!(
        readme.contains(figure),
        "the README does not say what the run did: expected `{figure}`"
    );
}

fn last_run(dir: &Path) -> Value {
    let path = dir.join("local-store/reports/last_run.json");
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn number(value: &Value, pointer: &str) -> f64 {
    value
        .pointer(pointer)
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("no number at {pointer}"))
}

/// Runs one `cargo run --release -- …` line of the README with the built binary.
fn run_line(dir: &Path, line: &str, readme_commands: &mut Vec<String>) -> String {
    readme_commands.retain(|c| c != line);
    let args: Vec<&str> = line
        .strip_prefix(CARGO_RUN)
        .unwrap()
        .split_whitespace()
        .collect();
    risk(dir, &args)
}

/// A `risk serve` killed when the test ends, pass or fail.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One HTTP/1.1 request, answered with its body.
fn post_json(addr: &str, path: &str, body: &str) -> Value {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{answer}");
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {answer}"))
}

#[test]
fn the_try_it_walkthrough_gives_the_readme_figures_and_changes_nothing_tracked() {
    let copy = fresh_copy();
    let dir = copy.path();
    let readme_text = std::fs::read_to_string(dir.join("README.md")).unwrap();
    let section = try_it_section(&readme_text);
    let readme = flat(section);
    let sh_lines: Vec<&str> = blocks(section, "sh")
        .into_iter()
        .flatten()
        .map(str::trim)
        .collect();
    // Every command line of the section is one this test runs (checked at the end).
    let mut readme_commands: Vec<String> = sh_lines
        .iter()
        .filter(|l| l.starts_with(CARGO_RUN))
        .map(|l| l.to_string())
        .collect();
    for command in &readme_commands {
        assert!(
            !command.contains(['"', '\'', '*', '$', '<']),
            "run as plain words: {command}"
        );
    }
    let fullprocess = format!("{CARGO_RUN}fullprocess");

    // The main job: seeds the local store and bootstraps.
    let first = run_line(dir, &fullprocess, &mut readme_commands);
    let record = last_run(dir);
    assert_eq!(record["decision"], "bootstrap");
    let rows = record["rows_added"].as_u64().unwrap();
    let f1 = number(&record, "/new_model_f1");
    assert_quotes(&readme, &format!("bootstraps on `sourcedata` ({rows} rows"));
    assert_quotes(
        &readme,
        &format!("the model scores F1 {f1:.4} on the test data"),
    );
    // The sample output: every line that names no run, version or timing is printed as shown.
    let sample = blocks(section, "text").into_iter().next().unwrap();
    for line in sample {
        if !["…", "run-", "version", " ms"]
            .iter()
            .any(|v| line.contains(v))
        {
            assert!(
                first.lines().any(|l| l == line),
                "README sample line not in the output: {line:?}\n{first}"
            );
        }
    }

    // Again: nothing new, nothing written.
    let again = run_line(dir, &fullprocess, &mut readme_commands);
    assert!(again.contains("NoNewData") && again.contains("Nothing was written."));

    // The practice data dropped in.
    let put = sh_lines
        .iter()
        .find(|l| l.starts_with(&format!("{CARGO_RUN}put ")))
        .unwrap();
    run_line(dir, put, &mut readme_commands);
    run_line(dir, &fullprocess, &mut readme_commands);
    let record = last_run(dir);
    assert_eq!(record["decision"], "too_few_rows");
    let files = record["new_files"].as_array().unwrap();
    let count = |field: &str| -> u64 { files.iter().map(|f| f[field].as_u64().unwrap()).sum() };
    let read = count("rows_accepted") + count("rows_rejected");
    assert_quotes(
        &readme,
        &format!(
            "adds {} new rows ({} of the {read} are exact duplicates)",
            record["rows_added"],
            count("rows_duplicate")
        ),
    );
    assert_quotes(&readme, "too few rows to tell");

    // The drift example: generated months and their test file, a retrain, a better model.
    let generate = sh_lines
        .iter()
        .find(|l| l.starts_with(&format!("{CARGO_RUN}generate ")))
        .unwrap();
    let generated = run_line(dir, generate, &mut readme_commands);
    let source = dir.join("local-store/sourcedata");
    assert!(
        generated.contains(&format!("to file://{} in", source.display())),
        "{generated}"
    );
    let drifted = run_line(dir, &fullprocess, &mut readme_commands);
    let record = last_run(dir);
    assert_eq!(record["decision"], "drift", "{drifted}");
    let files = record["new_files"].as_array().unwrap();
    let duplicates: u64 = files
        .iter()
        .map(|f| f["rows_duplicate"].as_u64().unwrap())
        .sum();
    assert_quotes(
        &readme,
        &format!(
            "The two months add {} new rows ({duplicates} are exact duplicates)",
            record["rows_added"]
        ),
    );
    assert_quotes(
        &readme,
        &format!(
            "log loss on them is {:.4} against {:.4} on its own rows",
            number(&record, "/drift/performance/log_loss/mean"),
            number(&record, "/drift/performance/reference_log_loss")
        ),
    );
    assert_eq!(record["gate"]["accepted"], true);
    assert_quotes(
        &readme,
        &format!(
            "on the same {} held-out rows, scores a log loss of {:.4} against the champion's {:.4}",
            record["gate"]["rows"],
            number(&record, "/gate/challenger/log_loss"),
            number(&record, "/gate/champion/log_loss")
        ),
    );
    let new_f1 = number(&record, "/new_model_f1");
    assert_quotes(
        &readme,
        &format!("its F1 on the new test file is {new_f1:.4}"),
    );
    // Sensible: better than calling every client a leaver, the F1 a model that knows nothing
    // reaches on this test file (2p / (1 + p) at an exit rate p).
    let test_file = std::fs::read_to_string(dir.join("local-store/testdata/testdata.csv")).unwrap();
    let labels: Vec<&str> = test_file
        .lines()
        .skip(1)
        .filter_map(|l| l.rsplit(',').next())
        .collect();
    let exit_rate = labels.iter().filter(|&&l| l == "1").count() as f64 / labels.len() as f64;
    assert!(
        labels.len() > 5,
        "the test file matches the generated months"
    );
    assert!(
        new_f1 > 2.0 * exit_rate / (1.0 + exit_rate),
        "F1 {new_f1} at exit rate {exit_rate}"
    );

    // The model versions, as the README shows them; then a rollback in two commands.
    let models_line = format!("{CARGO_RUN}models");
    let listed = run_line(dir, &models_line, &mut readme_commands);
    let shown = blocks(section, "text").into_iter().nth(1).unwrap();
    let listed_lines: Vec<&str> = listed.lines().collect();
    assert_eq!(shown.len(), listed_lines.len(), "{listed}");
    assert_eq!(shown[0], listed_lines[0], "the header");
    for (readme_row, row) in shown[1..].iter().zip(&listed_lines[1..]) {
        // Version ids and times differ from run to run; rows, threshold, F1 and the mark not.
        let tail = |line: &str| {
            line.split_whitespace()
                .skip(3)
                .collect::<Vec<_>>()
                .join(" ")
        };
        assert_eq!(tail(readme_row), tail(row), "{listed}");
    }
    assert!(listed_lines[1].trim_end().ends_with('*'), "{listed}");
    let old_version = listed_lines[2].split_whitespace().next().unwrap();
    assert!(drifted.contains(&format!("--model-version {old_version}")));
    risk(dir, &["deploy", "--model-version", old_version]);
    let after = risk(dir, &["models"]);
    let deployed: Vec<&str> = after
        .lines()
        .filter(|l| l.trim_end().ends_with('*'))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(deployed, [old_version], "{after}");

    // Diagnostics report the deploying run's own timings; re-timing is asked for, and what it
    // logs is labelled as such, not as a second ingestion of the real data.
    let output = risk_command(dir, &["diagnostics"]).output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    assert!(output.status.success(), "{stderr}");
    // The deployment now is the rollback's, made by hand: no run measured it.
    assert!(stdout.contains("Timings: not measured"), "{stdout}");
    assert!(stdout.contains("--retime"), "{stdout}");
    assert!(!stderr.contains("new source files to ingest"), "{stderr}");
    let output = risk_command(dir, &["diagnostics", "--retime"])
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    assert!(stdout.contains("re-timed on memory://"), "{stdout}");
    for line in stderr
        .lines()
        .filter(|l| l.contains("new source files to ingest"))
    {
        assert!(line.contains("retiming"), "{line}");
    }

    // The one-line reset: back to the first figures.
    assert!(sh_lines.contains(&RESET), "the README gives the reset");
    std::fs::remove_dir_all(dir.join("local-store")).unwrap();
    risk(dir, &["fullprocess"]);
    let record = last_run(dir);
    assert_eq!(record["decision"], "bootstrap");
    assert_eq!(record["rows_added"].as_u64(), Some(rows));
    assert_eq!(number(&record, "/new_model_f1"), f1);
    let diagnostics = risk(dir, &["diagnostics"]);
    assert!(
        diagnostics.contains(&format!(
            "as run {} measured them",
            record["run_id"].as_str().unwrap()
        )),
        "{diagnostics}"
    );

    // The API's sample answer (README, "The API"), from `risk serve` on a loopback name.
    let api_readme = flat(&readme_text[readme_text.find("\n## The API").unwrap()..]);
    let mut child = risk_command(dir, &["serve", "--addr", "localhost:0", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let _server = Server(child);
    let mut greeting = String::new();
    BufReader::new(stdout).read_line(&mut greeting).unwrap();
    let url: Value = serde_json::from_str(&greeting).unwrap();
    let addr = url["url"]
        .as_str()
        .unwrap()
        .strip_prefix("http://")
        .unwrap()
        .to_string();
    let answer = post_json(&addr, "/prediction", r#"{"dataset": "testdata.csv"}"#);
    assert_quotes(
        &api_readme,
        &format!(
            "\"f1_at_deployment\": {:.4}",
            number(&answer, "/model/f1_at_deployment")
        ),
    );
    assert_quotes(
        &api_readme,
        &format!(
            "\"rows_predicted\": {}, \"rows_rejected\": {}",
            answer["rows_predicted"], answer["rows_rejected"]
        ),
    );
    let first_prediction = &answer["predictions"][0];
    assert_quotes(
        &api_readme,
        &format!(
            "{{\"corporation\": {}, \"predicted\": {}, \"probability\": {:.2}, \"actual\": {}}}",
            first_prediction["corporation"],
            first_prediction["predicted"],
            number(first_prediction, "/probability"),
            first_prediction["actual"]
        ),
    );
    assert_quotes(
        &api_readme,
        &format!("\"threshold\": {}", answer["threshold"]),
    );

    assert!(
        readme_commands.is_empty(),
        "README commands the test does not run: {readme_commands:?}"
    );
    let status = git(dir, &["status", "--porcelain"]);
    assert!(
        status.is_empty(),
        "the walkthrough changed the repository:\n{status}"
    );
}
