//! Smoke test of the benchmark harness and the data generator through the `risk` binary: the
//! harness runs end to end on the seed data (one run, every step in its own process) and writes
//! its table; `risk generate` writes a deterministic data set the pipeline can ingest, and its
//! drift option makes the full process detect drift and retrain. No timing is asserted: the
//! numbers of a debug build under a test runner mean nothing.

use std::path::Path;
use std::process::Command;

fn repo(relative: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

fn risk(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_risk"))
        .args(args)
        .env("RISK_DEPENDENCY_CHECK", "off")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "risk {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn the_harness_runs_on_the_seed_data_and_writes_its_table() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("BENCHMARKS.md");
    std::fs::write(&out, "# Benchmarks\n\nWritten by hand, kept.\n").unwrap();
    let path = |p: &Path| p.to_str().unwrap().to_string();
    let (data, work, seed) = (
        path(&dir.path().join("data")),
        path(&dir.path().join("work")),
        path(&repo("data")),
    );
    risk(&[
        "bench",
        "--sizes",
        "S",
        "--runs",
        "1",
        "--fsync",
        "off",
        "--data-dir",
        &data,
        "--work-dir",
        &work,
        "--seed-data",
        &seed,
        "--out",
        &path(&out),
    ]);
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.contains("Written by hand, kept."), "{text}");
    assert!(text.contains("<!-- bench:main:begin -->"), "{text}");
    assert!(text.contains("| S | 26 (2, "), "{text}");
    for step in [
        "ingestion",
        "training",
        "scoring",
        "deployment",
        "diagnostics",
        "reporting",
        "risk_list",
    ] {
        assert!(text.contains(&format!("| {step} |")), "{step}: {text}");
    }
    // Run again: the section is replaced, not appended.
    risk(&[
        "bench",
        "--sizes",
        "S",
        "--runs",
        "1",
        "--fsync",
        "off",
        "--full-only",
        "--data-dir",
        &data,
        "--work-dir",
        &work,
        "--seed-data",
        &seed,
        "--out",
        &path(&out),
    ]);
    let text = std::fs::read_to_string(&out).unwrap();
    assert_eq!(
        text.matches("<!-- bench:main:begin -->").count(),
        1,
        "{text}"
    );
}

#[test]
fn generate_writes_the_same_files_for_the_same_seed() {
    let dir = tempfile::tempdir().unwrap();
    let generate = |name: &str| {
        let out = dir.path().join(name);
        let test = dir.path().join(format!("{name}-test"));
        risk(&[
            "generate",
            "--clients",
            "300",
            "--months",
            "3",
            "--out",
            out.to_str().unwrap(),
            "--test-out",
            test.to_str().unwrap(),
            "--test-rows",
            "50",
        ]);
        (
            std::fs::read(out.join("clients-m002.csv")).unwrap(),
            std::fs::read(test.join("testdata.csv")).unwrap(),
        )
    };
    let first = generate("a");
    assert_eq!(first, generate("b"));
    assert_eq!(first.0.iter().filter(|&&b| b == b'\n').count(), 301);
}

#[test]
fn generated_drift_makes_the_full_process_retrain() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.json");
    std::fs::write(
        &config,
        r#"{"source_data": "file://src", "compiled_data": "file://store/compiled",
            "test_data": "file://test", "models": "file://store/models",
            "production": "file://store/production", "reports": "file://store/reports"}"#,
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let test = dir.path().join("test");
    // Six months with the usual relation: the first model.
    risk(&[
        "--config",
        config,
        "generate",
        "--clients",
        "2000",
        "--months",
        "6",
        "--test-out",
        test.to_str().unwrap(),
        "--test-rows",
        "1000",
    ]);
    assert!(risk(&["--config", config, "fullprocess"]).contains("Bootstrap"));
    // Two more months of the same data set in which rising activity makes clients leave.
    risk(&[
        "--config",
        config,
        "generate",
        "--clients",
        "2000",
        "--months",
        "8",
        "--from-month",
        "6",
        "--drift-from-month",
        "6",
    ]);
    let run = risk(&["--config", config, "fullprocess"]);
    assert!(run.contains(": Drift"), "{run}");
    assert!(
        run.contains("clients-m006.csv") && run.contains("clients-m007.csv"),
        "{run}"
    );
}

#[test]
fn the_incremental_harness_times_an_idle_tick_a_new_month_and_a_drifted_month() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("BENCHMARKS.md");
    let path = |p: &Path| p.to_str().unwrap().to_string();
    let stdout = risk(&[
        "bench-incremental",
        "--sizes",
        "M",
        "--runs",
        "1",
        "--data-dir",
        &path(&dir.path().join("data")),
        "--work-dir",
        &path(&dir.path().join("work")),
        "--out",
        &path(&out),
    ]);
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.contains("<!-- bench:incremental:begin -->"), "{text}");
    assert!(
        stdout.contains("| M (95973) | bootstrap | 100000 | bootstrap |"),
        "{stdout}"
    );
    assert!(
        stdout.contains("| M (95973) | nothing new (idle tick) | 0 | no_new_data |"),
        "{stdout}"
    );
    assert!(
        stdout.contains("| M (95973) | one new month, no drift | 10000 | no_drift |"),
        "{stdout}"
    );
    // The drifted month is detected and retrained on (the gate's verdict may go either way).
    let drifted = stdout
        .lines()
        .find(|line| line.contains("one new month after a drift"))
        .unwrap_or_default();
    assert!(
        drifted.contains("| drift |") || drifted.contains("| challenger_rejected |"),
        "{stdout}"
    );
    // The work directory is cleaned up; the generated data is kept for the next run.
    assert!(!dir.path().join("work").join("M").exists());
    assert!(
        dir.path()
            .join("data")
            .join("M")
            .join("next-month")
            .is_dir()
    );
}
