//! The CLI's logs when stderr is not a terminal (`risk fullprocess 2>run.log`, a pipe to another
//! program, CI): plain text, without the ANSI colour codes a terminal would get.

use std::path::Path;
use std::process::Command;

use shared::api::fixture::local_config;

#[test]
fn piped_logs_have_no_escape_codes() {
    let dir = tempfile::tempdir().unwrap();
    let seed_data = Path::new(env!("CARGO_MANIFEST_DIR")).join("data");
    let config = local_config(dir.path(), &seed_data).unwrap();
    std::fs::create_dir_all(dir.path().join("source")).unwrap();
    std::fs::copy(
        seed_data.join("sourcedata/dataset3.csv"),
        dir.path().join("source/dataset3.csv"),
    )
    .unwrap();

    let output = Command::new(env!("CARGO_BIN_EXE_risk"))
        .arg("fullprocess")
        .arg("--config")
        .arg(&config)
        .env_remove("NO_COLOR")
        .env_remove("RUST_LOG")
        .env("RISK_DEPENDENCY_CHECK", "off")
        .output()
        .unwrap();
    let logs = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{logs}");
    assert!(
        logs.contains("INFO") && logs.contains("model trained"),
        "the full process logs at info: {logs}"
    );
    assert!(
        !logs.contains('\u{1b}'),
        "escape codes in piped logs: {logs:?}"
    );
}
