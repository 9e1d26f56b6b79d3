//! Dependency status for the diagnostics: every direct dependency of the workspace with the
//! version `Cargo.lock` resolved it to (captured at build time by `build.rs`), and, when the
//! crates.io sparse index answers in time, the newest published version and whether ours is
//! outdated. Any failure to ask (no network, timeout, unexpected answer) makes that entry
//! `unknown` with the reason: diagnostics never fail because the index is away.
//!
//! The check is cheap and bounded: the index host is resolved once, on a thread of its own, every
//! request shares one connection (HTTP/2 multiplexes them), the index must be reached within
//! [`DependencyCheck::reach_timeout`] and answer everything within [`DependencyCheck::deadline`],
//! and answers are reused for [`DependencyCheck::max_age`] from the last diagnostics record.

use std::convert::Infallible;
use std::error::Error;
use std::future::Ready;
use std::net::{SocketAddr, ToSocketAddrs};
use std::task::{Context, Poll};
use std::time::Duration;

use chrono::{DateTime, Utc};
use http_body_util::{BodyExt, Empty};
use hyper::body::{Bytes, Incoming};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::dns::Name;
use hyper_util::rt::TokioExecutor;
use serde::{Deserialize, Serialize};

use crate::location::Location;
use crate::records::names;

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
    /// Time allowed to reach the index: resolving its host, connecting, and its first answer
    /// (its `config.json`).
    /// An unreachable index (offline, no egress, a black-holed address) costs this much.
    pub reach_timeout: Duration,
    /// Time allowed for the whole check; entries the index has not answered by then are
    /// `unknown`.
    pub deadline: Duration,
    /// How long the index's answers are reused instead of asking again.
    pub max_age: Duration,
}

impl DependencyCheck {
    /// From `RISK_CRATES_INDEX_URL` / `RISK_DEPENDENCY_CHECK`: 0.4 s to reach the index, 1 s in
    /// all, answers reused for a day.
    pub fn from_env() -> Self {
        let disabled = std::env::var(CHECK_ENV).is_ok_and(|v| v.eq_ignore_ascii_case("off"));
        let index_url = (!disabled).then(|| {
            std::env::var(INDEX_URL_ENV).unwrap_or_else(|_| DEFAULT_INDEX_URL.to_string())
        });
        DependencyCheck {
            index_url,
            // Resolution, TCP and TLS handshakes and one request: four round trips.
            reach_timeout: Duration::from_millis(400),
            deadline: Duration::from_secs(1),
            max_age: Duration::from_secs(24 * 60 * 60),
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

/// The statuses of every direct dependency, and since when they are known.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckedDependencies {
    pub statuses: Vec<DependencyStatus>,
    /// When the oldest answer among `statuses` was asked for.
    pub checked_at: DateTime<Utc>,
}

/// The fields of the diagnostics record that carry a previous check.
#[derive(Deserialize)]
struct SavedCheck {
    dependencies: Vec<DependencyStatus>,
    dependencies_checked_at: Option<DateTime<Utc>>,
}

/// The check of the diagnostics step: reuses the answers of the last diagnostics record in
/// `reports` while they are fresh, and asks the index for the rest.
pub async fn dependency_status(check: &DependencyCheck, reports: &Location) -> CheckedDependencies {
    if check.index_url.is_none() {
        return check_dependencies(check, None).await;
    }
    let saved = match reports
        .get_json_if_exists::<SavedCheck>(names::DIAGNOSTICS, "diagnostics record")
        .await
    {
        Ok(Some((_, saved))) => {
            saved
                .dependencies_checked_at
                .map(|checked_at| CheckedDependencies {
                    statuses: saved.dependencies,
                    checked_at,
                })
        }
        Ok(None) => None,
        Err(e) => {
            tracing::debug!("not reusing the last dependency check: {e}");
            None
        }
    };
    check_dependencies(check, saved.as_ref()).await
}

/// Statuses of every direct dependency: known answers in `previous` younger than
/// [`DependencyCheck::max_age`] are reused (for the same locked version); the index is asked for
/// the others, all within the check's deadline.
pub async fn check_dependencies(
    check: &DependencyCheck,
    previous: Option<&CheckedDependencies>,
) -> CheckedDependencies {
    let now = Utc::now();
    let Some(index_url) = &check.index_url else {
        return CheckedDependencies {
            statuses: LOCKED_DEPENDENCIES
                .iter()
                .map(|(n, r, c)| unknown(n, r, c, format!("check disabled ({CHECK_ENV}=off)")))
                .collect(),
            checked_at: now,
        };
    };
    let fresh = previous.filter(|p| {
        let age = now.signed_duration_since(p.checked_at);
        age >= chrono::TimeDelta::zero() && age.to_std().is_ok_and(|age| age < check.max_age)
    });
    let mut statuses: Vec<Option<DependencyStatus>> = LOCKED_DEPENDENCIES
        .iter()
        .map(|&(name, requirement, current)| {
            fresh?
                .statuses
                .iter()
                .find(|s| s.name == name && s.requirement == requirement && s.current == current)
                .filter(|s| s.status != Freshness::Unknown)
                .cloned()
        })
        .collect();
    let reused = statuses.iter().any(Option::is_some);
    let to_ask: Vec<usize> = (0..statuses.len())
        .filter(|&i| statuses[i].is_none())
        .collect();
    if !to_ask.is_empty() {
        let names: Vec<&str> = to_ask.iter().map(|&i| LOCKED_DEPENDENCIES[i].0).collect();
        let answers = ask_index(check, index_url, &names).await;
        for (i, answer) in to_ask.into_iter().zip(answers) {
            let (name, requirement, current) = LOCKED_DEPENDENCIES[i];
            statuses[i] = Some(status_from(name, requirement, current, answer));
        }
    }
    CheckedDependencies {
        statuses: statuses.into_iter().flatten().collect(),
        checked_at: match fresh {
            Some(previous) if reused => previous.checked_at,
            _ => now,
        },
    }
}

fn status_from(name: &str, requirement: &str, current: &str, answer: Answer) -> DependencyStatus {
    let latest = match answer {
        Ok(latest) => latest,
        Err(reason) => return unknown(name, requirement, current, reason),
    };
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

/// The newest stable version of one crate on the index, or why it is not known.
type Answer = Result<String, String>;

type IndexClient = Client<HttpsConnector<HttpConnector<Resolved>>, Empty<Bytes>>;

/// Asks the index about every crate of `crates`, within the check's deadline; answers in order.
async fn ask_index(check: &DependencyCheck, index_url: &str, crates: &[&str]) -> Vec<Answer> {
    let mut answers: Vec<Option<Answer>> = vec![None; crates.len()];
    let gave_up = match tokio::time::timeout(
        check.deadline,
        ask_each(check, index_url, crates, &mut answers),
    )
    .await
    {
        Ok(Ok(())) => "the lookup ended without an answer".to_string(),
        Ok(Err(reason)) => reason,
        Err(_) => format!("the index did not answer within {:?}", check.deadline),
    };
    answers
        .into_iter()
        .map(|answer| answer.unwrap_or_else(|| Err(gave_up.clone())))
        .collect()
}

/// Reaches the index (one resolution, one connection, its `config.json`), then asks about every
/// crate over that connection: all at once over HTTP/2, one after the other over HTTP/1.1.
async fn ask_each(
    check: &DependencyCheck,
    index_url: &str,
    crates: &[&str],
    answers: &mut [Option<Answer>],
) -> Result<(), String> {
    let base = index_url.trim_end_matches('/');
    let uri: hyper::Uri = index_url
        .parse()
        .map_err(|e| format!("bad index URL '{index_url}': {e}"))?;
    let host = uri
        .host()
        .ok_or_else(|| format!("the index URL '{index_url}' names no host"))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = uri
        .port_u16()
        .unwrap_or(if uri.scheme() == Some(&http::uri::Scheme::HTTP) {
            80
        } else {
            443
        });
    let reach = async {
        let resolving = resolve(host, port);
        let tls = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()
            .map_err(|e| format!("no TLS root certificates: {e}"))?;
        let mut http = HttpConnector::new_with_resolver(Resolved(resolving.await?));
        http.enforce_http(false);
        let https = tls
            .https_or_http()
            .enable_all_versions()
            .wrap_connector(http);
        let client: IndexClient = Client::builder(TokioExecutor::new()).build(https);
        // Any answer will do: it is the connection, and its protocol, that is wanted.
        let response = get(&client, format!("{base}/config.json")).await?;
        Ok::<_, String>((client, response.version()))
    };
    let (client, version) = tokio::time::timeout(check.reach_timeout, reach)
        .await
        .map_err(|_| {
            format!(
                "the index could not be reached within {:?}",
                check.reach_timeout
            )
        })??;

    if version == http::Version::HTTP_2 {
        let mut lookups = tokio::task::JoinSet::new();
        for (position, name) in crates.iter().enumerate() {
            let client = client.clone();
            let url = format!("{base}/{}", index_path(name));
            lookups.spawn(async move { (position, newest_on_index(&client, url).await) });
        }
        while let Some(joined) = lookups.join_next().await {
            match joined {
                Ok((position, answer)) => answers[position] = Some(answer),
                Err(e) => tracing::warn!("dependency lookup task failed: {e}"),
            }
        }
    } else {
        for (position, name) in crates.iter().enumerate() {
            let url = format!("{base}/{}", index_path(name));
            answers[position] = Some(newest_on_index(&client, url).await);
        }
    }
    Ok(())
}

/// Resolves the index host on a thread of its own, not on tokio's blocking pool: the runtime
/// waits for that pool's threads when it shuts down, so a `getaddrinfo` stuck on a lost DNS
/// reply (glibc asks again after 5 s) would hold the process's exit long after the check gave
/// up. A thread of its own ends with the process. The lookup starts at once, not when awaited.
fn resolve(
    host: String,
    port: u16,
) -> impl Future<Output = Result<Vec<SocketAddr>, String>> + Send {
    let looked_up = on_own_thread(move || {
        (host.as_str(), port)
            .to_socket_addrs()
            .map(Iterator::collect::<Vec<_>>)
            .map_err(|e| format!("cannot resolve the index host {host}: {e}"))
    });
    async move {
        let addresses = looked_up.await??;
        if addresses.is_empty() {
            return Err("the index host resolves to no address".to_string());
        }
        Ok(addresses)
    }
}

/// Starts a blocking call on a new detached thread; the future is its result.
fn on_own_thread<T: Send + 'static>(
    call: impl FnOnce() -> T + Send + 'static,
) -> impl Future<Output = Result<T, String>> + Send {
    let (result, receive) = tokio::sync::oneshot::channel();
    let started = std::thread::Builder::new()
        .name("dependency-check".to_string())
        .spawn(move || {
            // The receiver is gone when the check gave up; nobody needs the result then.
            let _ = result.send(call());
        });
    async move {
        started.map_err(|e| format!("cannot start a thread for the lookup: {e}"))?;
        receive
            .await
            .map_err(|_| "the lookup thread ended without a result".to_string())
    }
}

/// Answers every host name with addresses resolved once beforehand, so connecting (and
/// reconnecting) never resolves again.
#[derive(Clone)]
struct Resolved(Vec<SocketAddr>);

impl tower_service::Service<Name> for Resolved {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = Infallible;
    type Future = Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Name) -> Self::Future {
        std::future::ready(Ok(self.0.clone().into_iter()))
    }
}

/// One request; `Err` only when the index cannot be reached at all.
async fn get(client: &IndexClient, url: String) -> Result<http::Response<Incoming>, String> {
    let uri: hyper::Uri = url
        .parse()
        .map_err(|e| format!("bad index URL '{url}': {e}"))?;
    client
        .get(uri)
        .await
        .map_err(|e| format!("cannot reach the index: {}", with_causes(&e)))
}

/// The newest stable version in the index file at `url`.
async fn newest_on_index(client: &IndexClient, url: String) -> Answer {
    let response = get(client, url.clone()).await?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("the index answered HTTP {status} for {url}"));
    }
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("the index answer was cut off: {}", with_causes(&e)))?
        .to_bytes();
    let file = std::str::from_utf8(&body).map_err(|_| "the index answer is not UTF-8")?;
    newest_stable_version(file).ok_or_else(|| "the index lists no stable version".to_string())
}

/// An error with its sources: hyper's own messages ("client error (Connect)") name no cause.
fn with_causes(error: &dyn Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
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
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

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

    fn index_at(url: String) -> DependencyCheck {
        DependencyCheck {
            index_url: Some(url),
            reach_timeout: Duration::from_millis(300),
            deadline: Duration::from_secs(5),
            max_age: Duration::from_secs(24 * 60 * 60),
        }
    }

    /// An index on loopback answering every path with `body`, one request per connection. After
    /// `answered` connections it accepts the next ones and never replies. Counts connections
    /// (`config.json` first, then one per crate asked about).
    async fn serve_index(body: &'static str, answered: usize) -> (String, Arc<AtomicUsize>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&connections);
        tokio::spawn(async move {
            let mut silent = Vec::new();
            while let Ok((mut socket, _)) = listener.accept().await {
                if counted.fetch_add(1, Ordering::SeqCst) >= answered {
                    silent.push(socket);
                    continue;
                }
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
        (format!("http://{address}"), connections)
    }

    const NEWER: &str = "{\"vers\":\"999.0.0\",\"yanked\":false}\n";

    /// A saved check in which every dependency had `status`, `age` ago.
    fn saved(status: Freshness, age: chrono::TimeDelta) -> CheckedDependencies {
        CheckedDependencies {
            statuses: LOCKED_DEPENDENCIES
                .iter()
                .map(|&(name, requirement, current)| DependencyStatus {
                    name: name.to_string(),
                    requirement: requirement.to_string(),
                    current: current.to_string(),
                    latest: Some(current.to_string()),
                    status,
                    reason: None,
                })
                .collect(),
            checked_at: Utc::now() - age,
        }
    }

    #[tokio::test]
    async fn newer_release_on_the_index_marks_every_dependency_outdated() {
        let (index, _) = serve_index(NEWER, usize::MAX).await;
        let checked = check_dependencies(&index_at(index), None).await;
        assert_eq!(checked.statuses.len(), LOCKED_DEPENDENCIES.len());
        for status in checked.statuses {
            assert_eq!(status.status, Freshness::Outdated, "{status:?}");
            assert_eq!(status.latest.as_deref(), Some("999.0.0"));
        }
    }

    #[tokio::test]
    async fn unreachable_index_gives_unknown_with_a_reason() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let closed = format!("http://{}", listener.local_addr().unwrap());
        drop(listener);
        let checked = check_dependencies(&index_at(closed), None).await;
        assert!(!checked.statuses.is_empty());
        for status in checked.statuses {
            assert_eq!(status.status, Freshness::Unknown);
            let reason = status.reason.unwrap_or_default();
            assert!(reason.contains("cannot reach"), "{reason}");
            assert!(reason.contains("refused"), "names the cause: {reason}");
        }
    }

    #[tokio::test]
    async fn index_that_never_answers_gives_unknown_after_the_reach_timeout() {
        // The kernel completes connections to a listener that never accepts: a server that
        // takes the connection and never replies.
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let check = index_at(format!("http://{}", silent.local_addr().unwrap()));
        let checked = check_dependencies(&check, None).await;
        for status in checked.statuses {
            assert_eq!(status.status, Freshness::Unknown);
            assert_eq!(
                status.reason.as_deref(),
                Some("the index could not be reached within 300ms")
            );
        }
    }

    #[tokio::test]
    async fn answers_missing_at_the_deadline_are_unknown_and_the_others_kept() {
        // `config.json` and the first crate are answered, then the index stalls.
        let (index, _) = serve_index(NEWER, 2).await;
        let check = DependencyCheck {
            deadline: Duration::from_millis(500),
            ..index_at(index)
        };
        let checked = check_dependencies(&check, None).await;
        let (first, rest) = checked.statuses.split_first().unwrap();
        assert_eq!(first.status, Freshness::Outdated, "{first:?}");
        assert!(!rest.is_empty());
        for status in rest {
            assert_eq!(status.status, Freshness::Unknown);
            assert_eq!(
                status.reason.as_deref(),
                Some("the index did not answer within 500ms")
            );
        }
    }

    #[tokio::test]
    async fn fresh_answers_are_reused_without_asking() {
        let (index, connections) = serve_index(NEWER, usize::MAX).await;
        let previous = saved(Freshness::UpToDate, chrono::TimeDelta::hours(23));
        let checked = check_dependencies(&index_at(index), Some(&previous)).await;
        assert_eq!(checked, previous);
        assert_eq!(connections.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn answers_older_than_a_day_are_asked_again() {
        let (index, connections) = serve_index(NEWER, usize::MAX).await;
        let previous = saved(Freshness::UpToDate, chrono::TimeDelta::hours(25));
        let checked = check_dependencies(&index_at(index), Some(&previous)).await;
        assert!(checked.checked_at > previous.checked_at);
        assert!(
            checked
                .statuses
                .iter()
                .all(|s| s.status == Freshness::Outdated)
        );
        assert_eq!(
            connections.load(Ordering::SeqCst),
            1 + LOCKED_DEPENDENCIES.len()
        );
    }

    #[tokio::test]
    async fn only_unknown_or_changed_entries_are_asked_again() {
        let (index, connections) = serve_index(NEWER, usize::MAX).await;
        let mut previous = saved(Freshness::UpToDate, chrono::TimeDelta::hours(1));
        previous.statuses[1].status = Freshness::Unknown;
        previous.statuses[1].latest = None;
        previous.statuses[2].current = "0.0.1".to_string();
        let checked = check_dependencies(&index_at(index), Some(&previous)).await;
        assert_eq!(connections.load(Ordering::SeqCst), 1 + 2);
        assert_eq!(checked.checked_at, previous.checked_at);
        for (position, status) in checked.statuses.iter().enumerate() {
            if position == 1 || position == 2 {
                assert_eq!(status.status, Freshness::Outdated, "{status:?}");
                assert_eq!(status.current, LOCKED_DEPENDENCIES[position].2);
            } else {
                assert_eq!(status, &previous.statuses[position]);
            }
        }
    }

    #[tokio::test]
    async fn a_disabled_check_asks_nobody() {
        let check = DependencyCheck {
            index_url: None,
            ..index_at(String::new())
        };
        let previous = saved(Freshness::UpToDate, chrono::TimeDelta::hours(1));
        let checked = check_dependencies(&check, Some(&previous)).await;
        for status in checked.statuses {
            assert_eq!(status.status, Freshness::Unknown);
            assert_eq!(
                status.reason.as_deref(),
                Some("check disabled (RISK_DEPENDENCY_CHECK=off)")
            );
        }
    }

    #[test]
    fn a_lookup_stuck_past_the_deadline_does_not_hold_the_runtime_shutdown() {
        // A `getaddrinfo` waiting for a lost DNS reply, as a call that blocks until released.
        let (release, stuck) = std::sync::mpsc::channel::<()>();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap();
        let gave_up = runtime.block_on(async {
            let lookup = on_own_thread(move || stuck.recv());
            tokio::time::timeout(Duration::from_millis(50), lookup)
                .await
                .is_err()
        });
        assert!(gave_up);
        // Dropping a runtime waits for every thread of its blocking pool; it must not wait for
        // the lookup. (Were the lookup on that pool, this would wait until `release`.)
        let (dropped, runtime_gone) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            drop(runtime);
            let _ = dropped.send(());
        });
        let shut_down = runtime_gone.recv_timeout(Duration::from_secs(30)).is_ok();
        let _ = release.send(());
        assert!(
            shut_down,
            "the runtime's shutdown waited for the stuck lookup"
        );
    }
}
