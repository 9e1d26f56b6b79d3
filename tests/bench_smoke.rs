//! Smoke test of the benchmark harness and the data generator through the `risk` binary: the
//! harness runs end to end on the seed data (one run, every step in its own process) and writes
//! its table, and `risk generate` writes a deterministic data set the pipeline can ingest. No
//! timing is asserted: the numbers of a debug build under a test runner mean nothing.

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
