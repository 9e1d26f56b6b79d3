//! The HTML report in a real browser: headless Chromium (Debian's `chromium`, which
//! `scripts/test.sh` installs when missing) loads the page the full process wrote, once from the
//! file and once from the API (`GET /report`, the router on a local port), at desktop and phone
//! width, through `scripts/browser_check.py` (the DevTools protocol over a pipe: Python's
//! standard library and the browser, nothing else). It must log no console error, make no
//! request but the page itself, render every chart with a size and a text alternative, fit the
//! phone's width, and give screenshots (saved under `target/browser-check/`) that are not blank.
//! Without Chromium or Python the test is skipped with a message, and fails under `CI=true`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::Value;
use shared::api::{Api, ApiLimits, router, server};
use shared::records::Decision;
use shared::steps::fullprocess::run_full_process;
use shared::store::PutMode;
use shared::testing::{local_pipeline, place_seed_source_files, repo_path};

/// The browser, from `RISK_CHROMIUM` or the PATH.
fn chromium() -> Option<PathBuf> {
    if let Ok(path) = std::env::var("RISK_CHROMIUM")
        && !path.is_empty()
    {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| ["chromium", "chromium-browser"].map(|name| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

fn missing(what: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!(
            "{what}; CI=true needs it (scripts/test.sh installs it: apt-get install -y chromium)"
        );
    }
    eprintln!("SKIPPED (no browser): {what}; install it with `apt-get install -y chromium`");
}

/// Share of pixels that are not near-white, and the number of distinct colours (coarsely
/// quantised), of a PNG screenshot.
fn ink(path: &Path) -> (f64, usize) {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut pixels).unwrap();
    let channels = info.color_type.samples();
    let pixels = &pixels[..info.buffer_size()];
    let mut inked = 0usize;
    let mut colours = std::collections::HashSet::new();
    let mut total = 0usize;
    for pixel in pixels.chunks(channels) {
        total += 1;
        if pixel[..3].iter().any(|&c| c < 235) {
            inked += 1;
        }
        colours.insert((pixel[0] >> 4, pixel[1] >> 4, pixel[2] >> 4));
    }
    (inked as f64 / total.max(1) as f64, colours.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_page_renders_cleanly_in_chromium_from_a_file_and_from_the_api() {
    let Some(chromium) = chromium() else {
        return missing(
            "Chromium is not installed (no `chromium` on the PATH, RISK_CHROMIUM unset)",
        );
    };
    if Command::new("python3").arg("--version").output().is_err() {
        return missing("python3 is not installed");
    }
    let started = Instant::now();

    // A deployment, then a drift check with a rejected row, so every section has data.
    let dir = tempfile::tempdir().unwrap();
    let (_, pipeline) = local_pipeline(dir.path());
    place_seed_source_files(dir.path());
    let first = run_full_process(&pipeline, "run-browser-1").await.unwrap();
    assert_eq!(first.decision, Decision::Bootstrap);
    let source = &pipeline.locations.source_data;
    for name in ["dataset1.csv", "dataset2.csv"] {
        let body = std::fs::read(repo_path("data/practicedata").join(name)).unwrap();
        source
            .put(name, Bytes::from(body), PutMode::Overwrite)
            .await
            .unwrap();
    }
    let with_a_bad_row = "corporation,lastmonth_activity,lastyear_activity,number_of_employees,exited\nzzaa,10,20,many,1\nzzab,30,40,50,0\n";
    source
        .put("late.csv", Bytes::from(with_a_bad_row), PutMode::Overwrite)
        .await
        .unwrap();
    let second = run_full_process(&pipeline, "run-browser-2").await.unwrap();
    assert_eq!(second.decision, Decision::TooFewRows, "{}", second.reason);
    let page_file = dir.path().join("store/reports/index.html");
    let page = std::fs::read_to_string(&page_file).unwrap();
    assert!(page.contains("run-browser-2") && page.contains("not a number"));

    // The API on a local port, as `risk serve` runs it.
    let listener = server::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let api = router(Api::new(pipeline.clone(), ApiLimits::default()));
    let serving = tokio::spawn(server::serve(listener, api, async {
        let _ = stopped.await;
    }));

    let out = repo_path("target/browser-check");
    let script = repo_path("scripts/browser_check.py");
    let file_url = format!("file://{}", page_file.display());
    let api_url = format!("http://127.0.0.1:{port}/report");
    let child = Command::new("python3")
        .arg(&script)
        .arg("--chromium")
        .arg(&chromium)
        .arg("--out")
        .arg(&out)
        .arg(format!("file={file_url}"))
        .arg(format!("api={api_url}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Bounded: the script's own waits are bounded too, this is the backstop.
    let pid = child.id();
    let waiting = tokio::task::spawn_blocking(move || child.wait_with_output());
    let output = match tokio::time::timeout(Duration::from_secs(100), waiting).await {
        Ok(output) => output.unwrap().unwrap(),
        Err(_) => {
            // SAFETY: kill(2) on the id of a child this test spawned and has not reaped.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            panic!("the browser check took over 100 s");
        }
    };
    let _ = stop.send(());
    serving.await.unwrap();
    assert!(
        output.status.success(),
        "browser check failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    let pages = report["pages"].as_array().unwrap();
    assert_eq!(pages.len(), 4, "file and API, desktop and phone");

    for page in pages {
        let what = format!("{} at {} width", page["label"], page["viewport"]);
        assert_eq!(page["console_errors"], Value::Array(vec![]), "{what}");
        assert_eq!(
            page["outside_requests"],
            Value::Array(vec![]),
            "{what}: requests left the page"
        );
        assert_eq!(
            page["requests"].as_array().unwrap().len(),
            1,
            "{what}: {}",
            page["requests"]
        );
        assert_eq!(page["scripts"], 0, "{what}");
        assert_eq!(page["tables_without_headers"], 0, "{what}");
        let sections: Vec<&str> = page["sections"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap())
            .collect();
        assert_eq!(
            sections,
            [
                "model", "metrics", "curves", "drift", "history", "quality", "risk"
            ],
            "{what}"
        );
        // Confusion matrix, ROC, PR, calibration, scores, prediction drift, three features,
        // history.
        let charts = page["charts"].as_array().unwrap();
        assert_eq!(charts.len(), 10, "{what}: {charts:?}");
        for chart in charts {
            assert!(
                chart["width"].as_f64().unwrap() > 100.0
                    && chart["height"].as_f64().unwrap() > 100.0,
                "{what}: {chart}"
            );
            assert_eq!(chart["role"], "img", "{what}: {chart}");
            assert!(
                chart["text_alternative"].as_u64().unwrap() > 40,
                "{what}: {chart}"
            );
        }
        // Nothing wider than the screen: wide tables scroll inside their own box.
        assert!(
            page["scroll_width"].as_f64().unwrap() <= page["inner_width"].as_f64().unwrap(),
            "{what}: {} px wide in a {} px window",
            page["scroll_width"],
            page["inner_width"]
        );
        let screenshot = PathBuf::from(page["screenshot"].as_str().unwrap());
        let (inked, colours) = ink(&screenshot);
        assert!(
            inked > 0.05 && colours > 20,
            "{what}: {} looks blank ({:.1} % inked, {colours} colours)",
            screenshot.display(),
            inked * 100.0
        );
    }
    eprintln!(
        "browser check: 4 page loads in {:.1} s; screenshots in {}",
        started.elapsed().as_secs_f64(),
        out.display()
    );
}
