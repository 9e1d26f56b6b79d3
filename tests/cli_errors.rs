//! What the command line says when something is wrong: each cause once, and a hint where the
//! fix is not obvious (no `config.json` where `risk` runs).

use std::process::Command;

fn risk_in(dir: &std::path::Path, args: &[&str]) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_risk"))
        .args(args)
        .current_dir(dir)
        .env_remove("RISK_CONFIG")
        .env("RISK_DEPENDENCY_CHECK", "off")
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The `error:` line of a failed run.
fn error_line(stderr: &str) -> &str {
    stderr
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("no error line: {stderr}"))
}

#[test]
fn outside_the_repository_the_error_says_where_it_looked_and_how_to_point_elsewhere() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, stderr) = risk_in(dir.path(), &["fullprocess"]);
    assert!(!ok);
    let error = error_line(&stderr);
    let looked_at = std::path::absolute(dir.path().join("config.json")).unwrap();
    assert!(error.contains(&looked_at.display().to_string()), "{error}");
    assert!(
        error.contains("--config") && error.contains("RISK_CONFIG"),
        "{error}"
    );
}

#[test]
fn a_cause_quoted_by_its_error_is_not_repeated() {
    let dir = tempfile::tempdir().unwrap();
    // A port in use: the bind error quotes the OS error, which is also its source.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    std::fs::write(
        dir.path().join("config.json"),
        r#"{"source_data": "file://s", "compiled_data": "file://c", "test_data": "file://t",
            "models": "file://m", "production": "file://p", "reports": "file://r"}"#,
    )
    .unwrap();
    let (ok, stderr) = risk_in(dir.path(), &["serve", "--addr", &addr]);
    assert!(!ok);
    let error = error_line(&stderr);
    assert!(error.contains(&addr), "{error}");
    assert_eq!(error.matches("os error").count(), 1, "{error}");
    // A configuration that does not parse: its message names the file and line once.
    std::fs::write(dir.path().join("config.json"), "{ not json").unwrap();
    let (ok, stderr) = risk_in(dir.path(), &["fullprocess"]);
    assert!(!ok);
    let error = error_line(&stderr);
    assert_eq!(error.matches("line 1").count(), 1, "{error}");
}

#[test]
fn a_bad_risk_list_setting_stops_the_run_before_it_writes_anything() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("config.json"),
        r#"{"source_data": "file://s", "compiled_data": "file://c", "test_data": "file://t",
            "models": "file://m", "production": "file://p", "reports": "file://r"}"#,
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_risk"))
        .arg("fullprocess")
        .current_dir(dir.path())
        .env_remove("RISK_CONFIG")
        .env("RISK_DEPENDENCY_CHECK", "off")
        .env("RISK_LIST_WATCH_SHARE", "2")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let error = error_line(&stderr);
    assert!(error.contains("RISK_LIST_WATCH_SHARE"), "{error}");
    for location in ["c", "m", "p", "r"] {
        assert!(
            !dir.path().join(location).exists(),
            "{location} was written"
        );
    }
}
