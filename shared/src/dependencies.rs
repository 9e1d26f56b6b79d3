//! Dependency status for the diagnostics: every direct dependency of the workspace with the
//! version `Cargo.lock` resolved it to (captured at build time by `build.rs`), and, when the
//! crates.io sparse index answers within a short timeout, the newest published version and
//! whether ours is outdated. Any failure to ask (no network, timeout, unexpected answer) makes
//! that entry `unknown` with the reason: diagnostics never fail because the index is away.

use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde::{Deserialize, Serialize};

/// `(name, requirement in Cargo.toml, version in Cargo.lock)` for each direct dependency.
pub const LOCKED_DEPENDENCIES: &[(&str, &str, &str)] =
    include!(concat!(env!("OUT_DIR"), "/locked_dependencies.rs"));

/// The public crates.io sparse index.
pub const DEFAULT_INDEX_URL: &str = "https://index.crates.io";

/// Overrides the index (a mirror, or a local server in tests).
pub const INDEX_URL_ENV: &str = "RISK_CRATES_INDEX_URL";

/// Set to `off` to skip the network check (offline machines); entries become `unknown`.
pub const CHECK_ENV: &str = "RISK_DEPENDENCY_CHECK";

/// How the check is run.
#[derive(Debug, Clone)]
pub struct DependencyCheck {
    /// Base URL of a crates.io-compatible sparse index, or `None` to skip the check.
    pub index_url: Option<String>,
    /// Time allowed for all index requests together.
    pub timeout: Duration,
}

impl DependencyCheck {
    /// From `RISK_CRATES_INDEX_URL` / `RISK_DEPENDENCY_CHECK`, with a 3-second budget.
    pub fn from_env() -> Self {
        let disabled = std::env::var(CHECK_ENV).is_ok_and(|v| v.eq_ignore_ascii_case("off"));
        let index_url = (!disabled).then(|| {
            std::env::var(INDEX_URL_ENV).unwrap_or_else(|_| DEFAULT_INDEX_URL.to_string())
        });
        DependencyCheck {
            index_url,
            timeout: Duration::from_secs(3),
        }
    }
}

/// Whether a dependency is behind the newest published version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Freshness {
    UpToDate,
    Outdated,
    Unknown,
}

/// The status of one direct dependency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DependencyStatus {
    pub name: String,
    /// The requirement written in `Cargo.toml`.
    pub requirement: String,
    /// The version `Cargo.lock` resolved, i.e. what this build runs.
    pub current: String,
    /// The newest non-yanked, non-pre-release version on the index, when known.
    pub latest: Option<String>,
    pub status: Freshness,
    /// Why the status is unknown, when it is.
    pub reason: Option<String>,
}

/// Checks every direct dependency concurrently against the index.
pub async fn dependency_status(check: &DependencyCheck) -> Vec<DependencyStatus> {
    let Some(index_url) = &check.index_url else {
        return LOCKED_DEPENDENCIES
            .iter()
            .map(|(n, r, c)| unknown(n, r, c, format!("check disabled ({CHECK_ENV}=off)")))
            .collect();
    };

    let connector = match hyper_rustls::HttpsConnectorBuilder::new().with_native_roots() {
        Ok(builder) => builder.https_or_http().enable_http1().build(),
        Err(e) => {
            return LOCKED_DEPENDENCIES
                .iter()
                .map(|(n, r, c)| unknown(n, r, c, format!("no TLS root certificates: {e}")))
                .collect();
        }
    };
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build(connector);

    let mut lookups = tokio::task::JoinSet::new();
    for (position, &(name, requirement, current)) in LOCKED_DEPENDENCIES.iter().enumerate() {
        let client = client.clone();
        let url = format!("{}/{}", index_url.trim_end_matches('/'), index_path(name));
        let timeout = check.timeout;
        lookups.spawn(async move {
            let answer = tokio::time::timeout(timeout, fetch(&client, &url)).await;
            let newest = match answer {
                Err(_) => Err(format!("the index did not answer within {timeout:?}")),
                Ok(Err(e)) => Err(e),
                Ok(Ok(body)) => newest_stable_version(&body)
                    .ok_or_else(|| "the index lists no stable version".to_string()),
            };
            let status = match newest {
                Ok(latest) => {
                    let status = match (parse_version(current), parse_version(&latest)) {
                        (Some(ours), Some(theirs)) if ours < theirs => Freshness::Outdated,
                        (Some(_), Some(_)) => Freshness::UpToDate,
                        _ => Freshness::Unknown,
                    };
                    DependencyStatus {
                        name: name.to_string(),
                        requirement: requirement.to_string(),
                        current: current.to_string(),
                        reason: (status == Freshness::Unknown)
                            .then(|| format!("cannot compare '{current}' with '{latest}'")),
                        latest: Some(latest),
                        status,
                    }
                }
                Err(reason) => unknown(name, requirement, current, reason),
            };
            (position, status)
        });
    }
    let mut statuses = Vec::with_capacity(LOCKED_DEPENDENCIES.len());
    while let Some(joined) = lookups.join_next().await {
        match joined {
            Ok(found) => statuses.push(found),
            Err(e) => tracing::warn!("dependency lookup task failed: {e}"),
        }
    }
    statuses.sort_by_key(|(position, _)| *position);
    statuses.into_iter().map(|(_, status)| status).collect()
}

fn unknown(name: &str, requirement: &str, current: &str, reason: String) -> DependencyStatus {
    DependencyStatus {
        name: name.to_string(),
        requirement: requirement.to_string(),
        current: current.to_string(),
        latest: None,
        status: Freshness::Unknown,
        reason: Some(reason),
    }
}

async fn fetch<C>(client: &Client<C, Empty<Bytes>>, url: &str) -> Result<String, String>
where
    C: hyper_util::client::legacy::connect::Connect + Clone + Send + Sync + 'static,
{
    let uri: hyper::Uri = url
        .parse()
        .map_err(|e| format!("bad index URL '{url}': {e}"))?;
    let response = client
        .get(uri)
        .await
        .map_err(|e| format!("cannot reach the index: {e}"))?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("the index answered HTTP {status} for {url}"));
    }
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("the index answer was cut off: {e}"))?
        .to_bytes();
    String::from_utf8(body.to_vec()).map_err(|_| "the index answer is not UTF-8".to_string())
}

/// The sparse-index path of a crate: `1/a`, `2/ab`, `3/a/abc`, `ab/cd/abcd…` (lower case).
pub fn index_path(name: &str) -> String {
    let name = name.to_ascii_lowercase();
    match name.len() {
        1 => format!("1/{name}"),
        2 => format!("2/{name}"),
        3 => format!("3/{}/{name}", &name[..1]),
        _ => format!("{}/{}/{name}", &name[..2], &name[2..4]),
    }
}

#[derive(Deserialize)]
struct IndexLine {
    vers: String,
    #[serde(default)]
    yanked: bool,
}

/// The highest non-yanked release (no pre-release) in a sparse-index file (one JSON per line).
pub fn newest_stable_version(index_file: &str) -> Option<String> {
    index_file
        .lines()
        .filter_map(|line| serde_json::from_str::<IndexLine>(line).ok())
        .filter(|entry| !entry.yanked)
        .filter_map(|entry| parse_version(&entry.vers).map(|v| (v, entry.vers)))
        .max_by(|(a, _), (b, _)| a.cmp(b))
        .map(|(_, vers)| vers)
}

/// `major.minor.patch` of a release version; `None` for pre-releases and anything unparsable.
/// Build metadata (`+…`) does not affect precedence.
pub fn parse_version(version: &str) -> Option<(u64, u64, u64)> {
    let core = version.split('+').next()?;
    if core.contains('-') {
        return None;
    }
    let mut parts = core.split('.').map(|p| p.parse::<u64>().ok());
    let parsed = (parts.next()??, parts.next()??, parts.next()??);
    parts.next().is_none().then_some(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_script_captured_the_locked_dependencies() {
        let names: Vec<_> = LOCKED_DEPENDENCIES.iter().map(|(n, _, _)| *n).collect();
        for expected in ["arrow", "aws-sdk-s3", "smartcore", "tokio", "serde"] {
            assert!(
                names.contains(&expected),
                "{expected} missing from {names:?}"
            );
        }
        for (name, requirement, current) in LOCKED_DEPENDENCIES {
            assert!(
                parse_version(current).is_some(),
                "{name} locked at {current}"
            );
            let major = |v: &str| v.split('.').next().map(str::to_string);
            assert_eq!(
                major(current),
                major(requirement),
                "{name}: {current} vs {requirement}"
            );
        }
    }

    #[test]
    fn index_paths_follow_the_sparse_layout() {
        assert_eq!(index_path("a"), "1/a");
        assert_eq!(index_path("md"), "2/md");
        assert_eq!(index_path("csv"), "3/c/csv");
        assert_eq!(index_path("Tokio"), "to/ki/tokio");
    }

    #[test]
    fn newest_version_skips_yanked_and_prereleases() {
        let file = concat!(
            r#"{"name":"x","vers":"1.2.0","yanked":false}"#,
            "\n",
            r#"{"name":"x","vers":"1.10.0","yanked":false}"#,
            "\n",
            r#"{"name":"x","vers":"2.0.0-rc.1","yanked":false}"#,
            "\n",
            r#"{"name":"x","vers":"1.11.0","yanked":true}"#,
            "\n",
        );
        assert_eq!(newest_stable_version(file).as_deref(), Some("1.10.0"));
        assert_eq!(newest_stable_version("not json"), None);
    }

    #[test]
    fn versions_compare_numerically() {
        assert!(parse_version("1.9.0") < parse_version("1.10.0"));
        assert_eq!(parse_version("1.2.3+build"), Some((1, 2, 3)));
        assert_eq!(parse_version("1.2"), None);
    }

    /// A one-route index server on loopback that answers every crate with the same file.
    async fn serve_index(body: &'static str) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut request = [0u8; 2048];
                    let _ = socket.read(&mut request).await;
                    let response = format!(
                        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = socket.write_all(response.as_bytes()).await;
                });
            }
        });
        format!("http://{address}")
    }

    #[tokio::test]
    async fn newer_release_on_the_index_marks_every_dependency_outdated() {
        let index = serve_index("{\"vers\":\"999.0.0\",\"yanked\":false}\n").await;
        let check = DependencyCheck {
            index_url: Some(index),
            timeout: Duration::from_secs(5),
        };
        let statuses = dependency_status(&check).await;
        assert_eq!(statuses.len(), LOCKED_DEPENDENCIES.len());
        for status in statuses {
            assert_eq!(status.status, Freshness::Outdated, "{status:?}");
            assert_eq!(status.latest.as_deref(), Some("999.0.0"));
        }
    }

    #[tokio::test]
    async fn unreachable_index_gives_unknown_with_a_reason() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let closed = format!("http://{}", listener.local_addr().unwrap());
        drop(listener);
        let check = DependencyCheck {
            index_url: Some(closed),
            timeout: Duration::from_secs(5),
        };
        let statuses = dependency_status(&check).await;
        assert!(!statuses.is_empty());
        for status in statuses {
            assert_eq!(status.status, Freshness::Unknown);
            assert!(
                status
                    .reason
                    .as_deref()
                    .unwrap_or("")
                    .contains("cannot reach"),
                "{status:?}"
            );
        }
    }
}
