//! Smoke test of the model-quality benchmark through the `risk` binary: one seed of every
//! scenario at tiny sizes runs the real full process end to end, and the summary, the
//! month-by-month tables and the JSON all cover every scenario. The figures themselves are not
//! asserted (at these sizes they are noise), except one identity: an oracle trained on exactly
//! the bootstrap months is the bootstrap model, so both score the same.

use std::process::Command;

const SCENARIOS: [&str; 6] = [
    "stable",
    "sudden",
    "gradual",
    "covariate",
    "label-rate",
    "small-batches",
];

#[test]
fn the_quality_benchmark_runs_every_scenario_and_reports_each() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("quality.md");
    let output = Command::new(env!("CARGO_BIN_EXE_risk"))
        .args([
            "quality",
            "--seeds",
            "1",
            "--clients",
            "300",
            "--small-clients",
            "200",
            "--test-rows",
            "300",
            "--bootstrap-months",
            "2",
            "--months",
            "3",
            "--change-month",
            "3",
            "--oracle-months",
            "2",
            "--out",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    let markdown = std::fs::read_to_string(&out).unwrap();
    for scenario in SCENARIOS {
        for rule in ["statistical", "original"] {
            let row = format!("| {scenario} | {rule} | ");
            assert!(
                stdout.contains(&row),
                "{scenario} {rule} missing from stdout:\n{stdout}"
            );
            assert!(
                markdown.contains(&row),
                "{scenario} {rule} missing:\n{markdown}"
            );
        }
        assert!(markdown.contains(&format!("**{scenario}**")), "{markdown}");
    }
    assert!(markdown.contains("| 1 (bootstrap) |"), "{markdown}");

    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.with_extension("json")).unwrap()).unwrap();
    let runs = report["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2 * SCENARIOS.len(), "both rules by default");
    for run in runs {
        let months = run["months"].as_array().unwrap();
        // The bootstrap run (month 1), then months 2, 3 and 4, each scored on the next month.
        let numbers: Vec<u64> = months
            .iter()
            .map(|m| m["month"].as_u64().unwrap())
            .collect();
        assert_eq!(numbers, [1, 2, 3, 4], "{run}");
        assert_eq!(months[0]["decision"], "bootstrap", "{run}");
        // The oracle of the bootstrap run trains on the rows the pipeline compiled: under the
        // original rule (all rows, threshold 0.5) it is the bootstrap model itself.
        assert_eq!(months[0]["oracle_months"], serde_json::json!([0, 1]));
        for figure in ["auc", "f1"].iter().filter(|_| run["rule"] == "original") {
            let deployed = months[0]["deployed"][figure].as_f64().unwrap();
            let oracle = months[0]["oracle"][figure].as_f64().unwrap();
            assert!((deployed - oracle).abs() < 1e-9, "{figure}: {run}");
        }
        for month in &months[1..] {
            assert_ne!(month["decision"], "bootstrap", "{run}");
            assert!(month["deployed"]["auc"].is_f64(), "{month}");
            assert!(month["oracle"]["auc"].is_f64(), "{month}");
        }
    }
    // The small-batches scenario runs on its own size; the others on --clients.
    let small = runs
        .iter()
        .find(|r| r["scenario"] == "small-batches")
        .unwrap();
    assert_eq!(small["clients"], 200);
}
