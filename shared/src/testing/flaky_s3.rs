//! A fault-injecting layer in front of the S3 test server: an SDK interceptor that sends chosen
//! request attempts elsewhere instead of to the server — reads to a local endpoint that answers
//! `503 SlowDown`, writes to a closed port (connection refused) — so they fail the way S3 and
//! networks fail, go through the client's real retry policy, and never reach the server (a
//! refused conditional write is not half-applied behind the test's back).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use aws_sdk_s3::Client;
use aws_sdk_s3::config::interceptors::BeforeTransmitInterceptorContextMut;
use aws_sdk_s3::config::{ConfigBag, Intercept, RuntimeComponents};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Which attempts fail: from attempt `from` on (counting from 1, over every request the client
/// makes), every `every`-th one; `every = 1` fails all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flakiness {
    pub from: u64,
    pub every: u64,
}

impl Flakiness {
    /// Nothing fails; attempts are only counted.
    pub const NONE: Flakiness = Flakiness {
        from: u64::MAX,
        every: 1,
    };

    fn fails(&self, attempt: u64) -> bool {
        attempt >= self.from && (attempt - self.from).is_multiple_of(self.every.max(1))
    }
}

/// A client over the same server with [`Flakiness`], and its counts.
#[derive(Debug, Clone)]
pub struct FlakyS3 {
    pub client: Client,
    counts: Arc<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    attempts: AtomicU64,
    injected: AtomicU64,
}

impl FlakyS3 {
    /// Request attempts the client made (retries included).
    pub fn attempts(&self) -> u64 {
        self.counts.attempts.load(Ordering::SeqCst)
    }

    /// Attempts that were made to fail.
    pub fn injected(&self) -> u64 {
        self.counts.injected.load(Ordering::SeqCst)
    }
}

/// `client`, with the attempts `flakiness` names failing: reads answered `503 SlowDown` by a
/// local endpoint started here, writes refused at a closed port.
pub async fn flaky_client(client: &Client, flakiness: Flakiness) -> std::io::Result<FlakyS3> {
    let slow_down = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let slow_down_addr = slow_down.local_addr()?;
    tokio::spawn(answer_slow_down(slow_down));
    // A port nothing listens on: bound, then let go.
    let refused_addr = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let counts = Arc::new(Counts::default());
    let interceptor = Redirect {
        flakiness,
        counts: counts.clone(),
        slow_down: slow_down_addr.to_string(),
        refused: refused_addr.to_string(),
    };
    let config = client
        .config()
        .to_builder()
        .interceptor(interceptor)
        .build();
    Ok(FlakyS3 {
        client: Client::from_conf(config),
        counts,
    })
}

/// Answers every request `503 SlowDown`, as S3 does when throttling.
async fn answer_slow_down(listener: tokio::net::TcpListener) {
    const BODY: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>SlowDown</Code>\
                        <Message>Please reduce your request rate.</Message></Error>";
    while let Ok((mut socket, _)) = listener.accept().await {
        tokio::spawn(async move {
            // Read the request head (reads have no body), then answer and close.
            let mut head = Vec::new();
            let mut buffer = [0u8; 4096];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match socket.read(&mut buffer).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => head.extend_from_slice(&buffer[..n]),
                }
            }
            let answer = format!(
                "HTTP/1.1 503 Slow Down\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{BODY}",
                BODY.len()
            );
            let _ = socket.write_all(answer.as_bytes()).await;
            let _ = socket.shutdown().await;
        });
    }
}

#[derive(Debug)]
struct Redirect {
    flakiness: Flakiness,
    counts: Arc<Counts>,
    slow_down: String,
    refused: String,
}

impl Intercept for Redirect {
    fn name(&self) -> &'static str {
        "risk-test-flaky-s3"
    }

    fn modify_before_transmit(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let attempt = self.counts.attempts.fetch_add(1, Ordering::SeqCst) + 1;
        if !self.flakiness.fails(attempt) {
            return Ok(());
        }
        self.counts.injected.fetch_add(1, Ordering::SeqCst);
        let request = context.request_mut();
        let target = if matches!(request.method(), "GET" | "HEAD") {
            &self.slow_down
        } else {
            &self.refused
        };
        // `http://host:port/path?query` → the same path and query at the target.
        let uri = request.uri().to_string();
        let path = uri
            .split_once("://")
            .and_then(|(_, rest)| rest.find('/').map(|slash| rest[slash..].to_string()))
            .unwrap_or_else(|| "/".to_string());
        request.set_uri(format!("http://{target}{path}"))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flakiness_picks_every_nth_attempt_from_the_first_one_named() {
        let every_third = Flakiness { from: 3, every: 3 };
        let failing: Vec<u64> = (1..=10).filter(|&n| every_third.fails(n)).collect();
        assert_eq!(failing, [3, 6, 9]);
        let all_from_5 = Flakiness { from: 5, every: 1 };
        assert!(!all_from_5.fails(4) && all_from_5.fails(5) && all_from_5.fails(99));
        assert!(!(1..1000).any(|n| Flakiness::NONE.fails(n)));
    }
}
