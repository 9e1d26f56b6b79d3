//! The dependency check never holds the main job up. With an index that takes connections and
//! never answers, `risk fullprocess` bootstraps and exits with every dependency `unknown`; once a
//! diagnostics record holds the index's answers, the next diagnostics reuse them without asking.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use shared::dependencies::{Freshness, LOCKED_DEPENDENCIES};
use shared::records::DiagnosticsRecord;
use shared::records::names;
use shared::testing::{local_pipeline, place_seed_source_files};

/// Local stores under `root` with the seed's source and test files, and a configuration naming
/// them.
fn seeded_config(root: &Path) -> PathBuf {
    local_pipeline(root);
    place_seed_source_files(root);
    let config = root.join("config.json");
    std::fs::write(
        &config,
        r#"{
            "source_data": "file://source",
            "compiled_data": "file://store/compiled",
            "test_data": "file://testdata",
            "models": "file://store/models",
            "production": "file://store/production",
            "reports": "file://store/reports"
        }"#,
    )
    .unwrap();
    config
}

/// Runs `risk` with the dependency check on, against `index_url`.
fn risk(config: &Path, index_url: &str, args: &[&str]) -> Output {
    let output = Command::new(env!("CARGO_BIN_EXE_risk"))
        .args(args)
        .arg("--config")
        .arg(config)
        .env("RISK_CRATES_INDEX_URL", index_url)
        .env_remove("RISK_DEPENDENCY_CHECK")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "risk {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn diagnostics_record(root: &Path) -> DiagnosticsRecord {
    let path = root.join("store/reports").join(names::DIAGNOSTICS);
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

/// An index on loopback that answers every request with one index file naming `999.0.0`.
fn answering_index() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let body = "{\"vers\":\"999.0.0\",\"yanked\":false}\n";
        for mut connection in listener.incoming().flatten() {
            let mut request = [0u8; 4096];
            let _ = connection.read(&mut request);
            let _ = write!(
                connection,
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    url
}

#[test]
fn an_index_that_never_answers_does_not_hold_the_full_process() {
    let dir = tempfile::tempdir().unwrap();
    let config = seeded_config(dir.path());
    // Never accepted: the kernel completes the connections, and nothing ever answers.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let index = format!("http://{}", silent.local_addr().unwrap());

    let started = Instant::now();
    let output = risk(&config, &index, &["fullprocess"]);
    let took = started.elapsed();

    assert!(
        String::from_utf8_lossy(&output.stdout).contains("Bootstrap"),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    let record = diagnostics_record(dir.path());
    assert_eq!(record.dependencies.len(), LOCKED_DEPENDENCIES.len());
    for dependency in &record.dependencies {
        assert_eq!(dependency.status, Freshness::Unknown);
        let reason = dependency.reason.as_deref().unwrap_or_default();
        assert!(reason.contains("could not be reached within"), "{reason}");
    }
    // A bound far above the check's deadline and far below the 5 s the process used to linger
    // after a lost DNS reply: this catches a hang, not a slow machine.
    assert!(took < Duration::from_secs(5), "took {took:?}");
}

#[test]
fn answers_saved_by_the_last_diagnostics_are_reused_without_asking() {
    let dir = tempfile::tempdir().unwrap();
    let config = seeded_config(dir.path());

    risk(&config, &answering_index(), &["fullprocess"]);
    let first = diagnostics_record(dir.path());
    assert!(
        first
            .dependencies
            .iter()
            .all(|d| d.status == Freshness::Outdated && d.latest.as_deref() == Some("999.0.0")),
        "{:?}",
        first.dependencies
    );
    let checked_at = first.dependencies_checked_at;
    assert!(checked_at.is_some());

    // The index is now silent; the answers of the last run are less than a day old.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    risk(
        &config,
        &format!("http://{}", silent.local_addr().unwrap()),
        &["diagnostics"],
    );
    let second = diagnostics_record(dir.path());
    assert!(second.generated_at > first.generated_at);
    assert_eq!(second.dependencies, first.dependencies);
    assert_eq!(second.dependencies_checked_at, checked_at);
}
