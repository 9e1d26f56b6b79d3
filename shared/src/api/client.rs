//! The API client behind `risk apicalls` (the original system's `apicalls.py`): calls every
//! endpoint of a base URL — the local server, `cargo lambda watch`, or the Function URL — and
//! saves the combined answers in the reports location as `apireturns.json` (structured) and
//! `apireturns.txt` (the seed's name, for people). One endpoint failing (refused connection,
//! timeout, an error status, an answer that is not JSON) is recorded for that endpoint and the
//! others are still called. Requests to a Function URL with IAM auth are signed with SigV4
//! (service `lambda`) using the standard AWS credential chain.

use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::header::{CONTENT_TYPE, HOST, HeaderValue};
use http::{Method, Request, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::Connect;
use hyper_util::rt::TokioExecutor;
use serde::{Deserialize, Serialize};

use crate::location::{Location, RecordError};
use crate::records::ObjectRef;
use crate::store::PutMode;

/// Name of the combined answers in the reports location.
pub const API_RETURNS_JSON: &str = "apireturns.json";
/// The seed's name for the same answers, as text.
pub const API_RETURNS_TXT: &str = "apireturns.txt";

/// Largest answer read from one endpoint.
const MAX_ANSWER_BYTES: usize = 64 * 1024 * 1024;

/// One call of the client.
#[derive(Debug, Clone)]
pub struct Call {
    /// `prediction`, `scoring`, …
    pub endpoint: &'static str,
    pub method: Method,
    pub path: &'static str,
    /// JSON body, for `POST`.
    pub body: Option<serde_json::Value>,
}

/// The calls `apicalls` makes, in order: health first (is anything there?), then the four
/// endpoints of the original system. `prediction` is for every CSV file of the test data unless
/// another request body is given.
pub fn standard_calls(prediction_request: Option<serde_json::Value>) -> Vec<Call> {
    let get = |endpoint, path| Call {
        endpoint,
        method: Method::GET,
        path,
        body: None,
    };
    vec![
        get("health", "/health"),
        Call {
            endpoint: "prediction",
            method: Method::POST,
            path: "/prediction",
            body: Some(
                prediction_request.unwrap_or_else(|| serde_json::json!({"location": "test_data"})),
            ),
        },
        get("scoring", "/scoring"),
        get("summarystats", "/summarystats"),
        get("diagnostics", "/diagnostics"),
    ]
}

/// What one endpoint answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EndpointResult {
    pub endpoint: String,
    pub method: String,
    pub path: String,
    /// HTTP status; `null` when no answer came (connection refused, timeout).
    pub status: Option<u16>,
    /// Status 2xx and a JSON answer.
    pub ok: bool,
    pub elapsed_ms: f64,
    /// From the `x-request-id` header, to find the call in the service's logs.
    pub request_id: Option<String>,
    /// The JSON answer (the error body too, for error statuses).
    pub answer: Option<serde_json::Value>,
    /// Why the call is not ok.
    pub error: Option<String>,
}

/// Every endpoint's answer, as saved in `apireturns.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiReturns {
    pub base_url: String,
    pub called_at: DateTime<Utc>,
    pub signed: bool,
    pub succeeded: u64,
    pub failed: u64,
    pub results: Vec<EndpointResult>,
}

impl ApiReturns {
    /// The result of `endpoint`, if it was called.
    pub fn result(&self, endpoint: &str) -> Option<&EndpointResult> {
        self.results.iter().find(|r| r.endpoint == endpoint)
    }

    /// The text form (`apireturns.txt`): a line per endpoint, then each answer.
    pub fn to_text(&self) -> String {
        let mut text = format!(
            "API calls to {} at {}: {} succeeded, {} failed\n",
            self.base_url,
            self.called_at.to_rfc3339(),
            self.succeeded,
            self.failed
        );
        for result in &self.results {
            text.push_str(&format!(
                "\n== {} ({} {}): {} in {:.1} ms{}\n",
                result.endpoint,
                result.method,
                result.path,
                result
                    .status
                    .map_or_else(|| "no answer".to_string(), |s| format!("HTTP {s}")),
                result.elapsed_ms,
                result
                    .error
                    .as_deref()
                    .map(|e| format!(" — {e}"))
                    .unwrap_or_default()
            ));
            if let Some(answer) = &result.answer {
                text.push_str(&serde_json::to_string_pretty(answer).unwrap_or_default());
                text.push('\n');
            }
        }
        text
    }

    /// Writes `apireturns.json` and `apireturns.txt` to `reports`.
    pub async fn save(&self, reports: &Location) -> Result<(ObjectRef, ObjectRef), RecordError> {
        let json = reports
            .put_json(API_RETURNS_JSON, "API returns", self, PutMode::Overwrite)
            .await?;
        let text = reports
            .put(
                API_RETURNS_TXT,
                Bytes::from(self.to_text()),
                PutMode::Overwrite,
            )
            .await?;
        Ok((
            ObjectRef::new(reports, &json),
            ObjectRef::new(reports, &text),
        ))
    }
}

/// Errors that stop the client before any call.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("base URL {url:?}: {reason}")]
    BaseUrl { url: String, reason: String },
    #[error("no TLS root certificates: {0}")]
    Tls(String),
    #[error("cannot sign requests: {0}")]
    Credentials(String),
}

/// SigV4 signing for a Function URL with `AuthType: AWS_IAM`.
#[derive(Debug, Clone)]
pub struct Signer {
    credentials: aws_credential_types::Credentials,
    region: String,
}

impl Signer {
    /// Credentials from the standard AWS chain (env, profile, SSO cache, role); the region from
    /// `region`, else the chain's.
    pub async fn from_env(region: Option<String>) -> Result<Signer, ClientError> {
        use aws_credential_types::provider::ProvideCredentials;
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .load()
            .await;
        let region = region
            .or_else(|| config.region().map(|r| r.to_string()))
            .ok_or_else(|| {
                ClientError::Credentials(
                    "no AWS region: pass --region or set AWS_REGION".to_string(),
                )
            })?;
        let provider = config.credentials_provider().ok_or_else(|| {
            ClientError::Credentials("no AWS credential provider is configured".to_string())
        })?;
        let credentials = provider
            .provide_credentials()
            .await
            .map_err(|e| ClientError::Credentials(e.to_string()))?;
        Ok(Signer {
            credentials,
            region,
        })
    }

    /// A signer with the given credentials (tests).
    pub fn new(credentials: aws_credential_types::Credentials, region: impl Into<String>) -> Self {
        Signer {
            credentials,
            region: region.into(),
        }
    }

    /// Adds the SigV4 headers to `request` (which must carry its `host` header).
    pub fn sign(&self, request: &mut Request<Full<Bytes>>, body: &[u8]) -> Result<(), String> {
        use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
        let identity = self.credentials.clone().into();
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name("lambda")
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| e.to_string())?
            .into();
        let headers: Vec<(&str, &str)> = request
            .headers()
            .iter()
            .filter_map(|(name, value)| Some((name.as_str(), value.to_str().ok()?)))
            .collect();
        let uri = request.uri().to_string();
        let signable = SignableRequest::new(
            request.method().as_str(),
            uri,
            headers.into_iter(),
            SignableBody::Bytes(body),
        )
        .map_err(|e| e.to_string())?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| e.to_string())?
            .into_parts();
        instructions.apply_to_request_http1x(request);
        Ok(())
    }
}

/// How the client calls.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Time allowed for each call.
    pub timeout: Duration,
    pub signer: Option<Signer>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            timeout: Duration::from_secs(120),
            signer: None,
        }
    }
}

/// Calls each of `calls` on `base_url` (e.g. `http://127.0.0.1:8000`, or
/// `http://127.0.0.1:9000/lambda-url/api` under `cargo lambda watch`) and collects the answers.
pub async fn call_all(
    base_url: &str,
    calls: &[Call],
    options: &ClientOptions,
) -> Result<ApiReturns, ClientError> {
    let base = parse_base_url(base_url)?;
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_native_roots()
        .map_err(|e| ClientError::Tls(e.to_string()))?
        .https_or_http()
        .enable_http1()
        .build();
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build(connector);
    let mut results = Vec::with_capacity(calls.len());
    for call in calls {
        let started = Instant::now();
        let outcome =
            tokio::time::timeout(options.timeout, one_call(&client, &base, call, options))
                .await
                .unwrap_or_else(|_| {
                    Err(format!(
                        "no answer within {} s",
                        options.timeout.as_secs_f64()
                    ))
                });
        let elapsed_ms = crate::steps::millis(started.elapsed());
        let result = match outcome {
            Ok(answered) => {
                let success = (200..300).contains(&answered.status);
                let error = match (&answered.answer, success) {
                    (Err(e), _) => Some(format!("the answer is not JSON: {e}")),
                    (Ok(answer), false) => {
                        Some(format!("HTTP {}{}", answered.status, error_summary(answer)))
                    }
                    (Ok(_), true) => None,
                };
                EndpointResult {
                    endpoint: call.endpoint.to_string(),
                    method: call.method.to_string(),
                    path: call.path.to_string(),
                    status: Some(answered.status),
                    ok: error.is_none(),
                    elapsed_ms,
                    request_id: answered.request_id,
                    answer: answered.answer.ok(),
                    error,
                }
            }
            Err(e) => EndpointResult {
                endpoint: call.endpoint.to_string(),
                method: call.method.to_string(),
                path: call.path.to_string(),
                status: None,
                ok: false,
                elapsed_ms,
                request_id: None,
                answer: None,
                error: Some(e),
            },
        };
        if result.ok {
            tracing::info!(endpoint = call.endpoint, status = result.status, "called");
        } else {
            tracing::warn!(
                endpoint = call.endpoint,
                status = result.status,
                error = result.error.as_deref(),
                "call failed"
            );
        }
        results.push(result);
    }
    let succeeded = results.iter().filter(|r| r.ok).count() as u64;
    Ok(ApiReturns {
        base_url: base_url.to_string(),
        called_at: Utc::now(),
        signed: options.signer.is_some(),
        succeeded,
        failed: results.len() as u64 - succeeded,
        results,
    })
}

struct Answered {
    status: u16,
    request_id: Option<String>,
    answer: Result<serde_json::Value, String>,
}

fn error_summary(answer: &serde_json::Value) -> String {
    match (answer.get("error"), answer.get("message")) {
        (Some(code), Some(message)) => format!(
            ": {}: {}",
            code.as_str().unwrap_or_default(),
            message.as_str().unwrap_or_default()
        ),
        _ => String::new(),
    }
}

/// The base URL, checked: http or https, a host, no query; the path is kept as a prefix.
fn parse_base_url(base_url: &str) -> Result<Uri, ClientError> {
    let invalid = |reason: &str| ClientError::BaseUrl {
        url: base_url.to_string(),
        reason: reason.to_string(),
    };
    let uri: Uri = base_url
        .trim()
        .parse()
        .map_err(|e: http::uri::InvalidUri| invalid(&e.to_string()))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => return Err(invalid("expected http://… or https://…")),
    }
    if uri.host().is_none() {
        return Err(invalid("no host"));
    }
    if uri.query().is_some() {
        return Err(invalid("a base URL has no query string"));
    }
    Ok(uri)
}

async fn one_call<C>(
    client: &Client<C, Full<Bytes>>,
    base: &Uri,
    call: &Call,
    options: &ClientOptions,
) -> Result<Answered, String>
where
    C: Connect + Clone + Send + Sync + 'static,
{
    let prefix = base.path().trim_end_matches('/');
    let url = format!(
        "{}://{}{prefix}{}",
        base.scheme_str().unwrap_or("http"),
        base.authority().map(|a| a.as_str()).unwrap_or_default(),
        call.path
    );
    let body = match &call.body {
        Some(value) => Bytes::from(serde_json::to_vec(value).map_err(|e| e.to_string())?),
        None => Bytes::new(),
    };
    let mut request = Request::builder()
        .method(call.method.clone())
        .uri(&url)
        .body(Full::new(body.clone()))
        .map_err(|e| format!("cannot build the request for {url}: {e}"))?;
    if call.body.is_some() {
        request
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    }
    if let Some(authority) = base.authority()
        && let Ok(host) = HeaderValue::from_str(authority.as_str())
    {
        request.headers_mut().insert(HOST, host);
    }
    if let Some(signer) = &options.signer {
        signer
            .sign(&mut request, &body)
            .map_err(|e| format!("cannot sign the request: {e}"))?;
    }
    let response = client
        .request(request)
        .await
        .map_err(|e| format!("no answer from {url}: {}", error_chain(&e)))?;
    let status = response.status().as_u16();
    let request_id = response
        .headers()
        .get(super::REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let bytes = Limited::new(response.into_body(), MAX_ANSWER_BYTES)
        .collect()
        .await
        .map_err(|e| format!("the answer from {url} was cut off: {e}"))?
        .to_bytes();
    let answer = serde_json::from_slice(&bytes).map_err(|e| {
        let start = String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).into_owned();
        format!("{e} (answer starts with {start:?})")
    });
    Ok(Answered {
        status,
        request_id,
        answer,
    })
}

/// An error with its causes (hyper's top-level message alone is just "client error").
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_are_checked() {
        assert!(parse_base_url("http://127.0.0.1:8000").is_ok());
        assert!(parse_base_url("http://127.0.0.1:9000/lambda-url/api/").is_ok());
        assert!(parse_base_url("https://abc.lambda-url.eu-west-1.on.aws").is_ok());
        for bad in [
            "127.0.0.1:8000",
            "ftp://x",
            "http://x/?a=b",
            "not a url",
            "/path",
        ] {
            assert!(parse_base_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn signing_adds_a_sigv4_authorization_header() {
        let signer = Signer::new(
            aws_credential_types::Credentials::new("AKIDEXAMPLE", "secret", None, None, "test"),
            "eu-west-1",
        );
        let mut request = Request::builder()
            .method(Method::POST)
            .uri("https://abc.lambda-url.eu-west-1.on.aws/prediction")
            .header(HOST, "abc.lambda-url.eu-west-1.on.aws")
            .header(CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from_static(b"{}")))
            .unwrap();
        signer.sign(&mut request, b"{}").unwrap();
        let authorization = request.headers()["authorization"].to_str().unwrap();
        assert!(
            authorization.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
                && authorization.contains("/eu-west-1/lambda/aws4_request")
                && authorization.contains("SignedHeaders=")
                && authorization.contains("Signature="),
            "{authorization}"
        );
        assert!(request.headers().contains_key("x-amz-date"));
    }
}
