//! [`S3Store`]: the [`ObjectStore`] over one S3 bucket (aws-sdk-s3), plus building clients (from
//! the standard AWS configuration chain, or for an explicit S3-compatible endpoint) and creating
//! a versioned bucket for tests and local demos. This module owns the mapping of S3 answers to
//! [`StoreError`]: refused conditions (HTTP 412, or 409 under contention) become
//! [`StoreError::PreconditionFailed`], missing keys and versions become [`StoreError::NotFound`],
//! everything else becomes [`StoreError::S3`] with a retryable flag.

use std::time::Duration;

use async_trait::async_trait;
use aws_config::BehaviorVersion;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{Credentials, Region};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    BucketLocationConstraint, BucketVersioningStatus, CreateBucketConfiguration,
    VersioningConfiguration,
};
use bytes::Bytes;
use chrono::{DateTime, Utc};

use super::{
    ByteReader, NULL_VERSION, ObjectMeta, ObjectStore, PutMode, StoreError, content_type_for,
    validate_key,
};

/// Set to `true` (or `false`) to force (or forbid) path-style addressing (`endpoint/bucket/key`)
/// regardless of whether a custom endpoint is configured.
pub const FORCE_PATH_STYLE_ENV: &str = "RISK_S3_FORCE_PATH_STYLE";

/// The region used with an S3-compatible server (`AWS_ENDPOINT_URL`) when none is configured.
const DEFAULT_ENDPOINT_REGION: &str = "us-east-1";

/// One S3 bucket. Cheap to clone: the client is shared.
#[derive(Debug, Clone)]
pub struct S3Store {
    client: Client,
    bucket: String,
}

/// How the client retries throttling (503 SlowDown, 429), server errors (500, 503), connection
/// failures and timeouts: set here rather than left to the SDK's defaults, so it is known and
/// tested (`tests/s3_faults.rs`). Five attempts with exponential backoff and jitter from 200 ms,
/// at most 10 s apart; a call that still fails is a retryable [`StoreError::S3`].
pub fn retry_config() -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(5)
        .with_initial_backoff(Duration::from_millis(200))
        .with_max_backoff(Duration::from_secs(10))
}

/// Builds a client from the standard AWS chain (environment, profile, container or instance
/// role). A custom endpoint in `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_S3` (S3-compatible servers)
/// switches to path-style addressing, which such servers expect; [`FORCE_PATH_STYLE_ENV`]
/// overrides that choice.
pub async fn client_from_env() -> Client {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if custom_endpoint(|name| std::env::var(name).ok()) {
        // An S3-compatible server: there is no instance metadata to ask for a region (asking
        // costs time-outs and two long warnings), and such servers accept any region.
        use aws_config::environment::region::EnvironmentVariableRegionProvider;
        use aws_config::meta::region::RegionProviderChain;
        use aws_config::profile::region::ProfileFileRegionProvider;
        let configured = RegionProviderChain::first_try(EnvironmentVariableRegionProvider::new())
            .or_else(ProfileFileRegionProvider::new());
        let region = match configured.region().await {
            Some(region) => region,
            None => {
                tracing::info!(
                    "no AWS region is set (AWS_REGION); using {DEFAULT_ENDPOINT_REGION} for the S3-compatible server"
                );
                Region::new(DEFAULT_ENDPOINT_REGION)
            }
        };
        loader = loader.region(region);
    }
    let sdk_config = loader.load().await;
    let path_style = path_style_from_env(|name| std::env::var(name).ok());
    let config = aws_sdk_s3::config::Builder::from(&sdk_config)
        .force_path_style(path_style)
        .retry_config(retry_config())
        .build();
    Client::from_conf(config)
}

fn path_style_from_env(var: impl Fn(&str) -> Option<String>) -> bool {
    if let Some(forced) = var(FORCE_PATH_STYLE_ENV) {
        match forced.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => return true,
            "false" | "0" | "no" => return false,
            _ => tracing::warn!(
                value = %forced,
                "{FORCE_PATH_STYLE_ENV} is neither true nor false; ignoring it"
            ),
        }
    }
    custom_endpoint(var)
}

/// Whether `AWS_ENDPOINT_URL_S3` or `AWS_ENDPOINT_URL` names an S3-compatible server.
fn custom_endpoint(var: impl Fn(&str) -> Option<String>) -> bool {
    ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"]
        .iter()
        .any(|name| var(name).is_some_and(|v| !v.trim().is_empty()))
}

/// Builds a client for an explicit S3-compatible endpoint (moto, MinIO, …) with static
/// credentials and path-style addressing. No configuration is read from the environment.
pub fn client_for_endpoint(endpoint_url: &str, region: &str, credentials: Credentials) -> Client {
    let config = aws_sdk_s3::config::Builder::new()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(endpoint_url)
        .region(Region::new(region.to_string()))
        .credentials_provider(credentials)
        .force_path_style(true)
        .retry_config(retry_config())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .build(),
        )
        .build();
    Client::from_conf(config)
}

/// Creates `bucket` (in the client's region) with versioning enabled. Succeeds if the bucket
/// already exists and is ours; versioning is (re-)enabled either way.
pub async fn create_versioned_bucket(client: &Client, bucket: &str) -> Result<(), StoreError> {
    let store = S3Store::new(client.clone(), bucket);
    let mut request = client.create_bucket().bucket(bucket);
    // us-east-1 is the default location and must not be named explicitly.
    if let Some(region) = client.config().region().map(Region::as_ref)
        && region != "us-east-1"
    {
        request = request.create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::from(region))
                .build(),
        );
    }
    match request.send().await {
        Ok(_) => {}
        Err(e)
            if e.as_service_error()
                .is_some_and(|se| se.is_bucket_already_owned_by_you()) => {}
        Err(e) => return Err(store.s3_error("CreateBucket", "", e)),
    }
    client
        .put_bucket_versioning()
        .bucket(bucket)
        .versioning_configuration(
            VersioningConfiguration::builder()
                .status(BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .map_err(|e| store.s3_error("PutBucketVersioning", "", e))?;
    tracing::debug!(bucket, "created versioned bucket");
    Ok(())
}

impl S3Store {
    /// Every object version under `prefix` that `keep` accepts, following pagination. With
    /// `last_key`, stops once the listing (which is in key order) has moved past that key.
    async fn list_object_versions(
        &self,
        prefix: &str,
        keep: impl Fn(&aws_sdk_s3::types::ObjectVersion) -> bool,
        last_key: Option<&str>,
    ) -> Result<Vec<ObjectMeta>, StoreError> {
        let mut found = Vec::new();
        let mut markers: Option<(Option<String>, Option<String>)> = None;
        loop {
            let mut request = self
                .client
                .list_object_versions()
                .bucket(&self.bucket)
                .prefix(prefix);
            if let Some((key_marker, version_marker)) = markers.take() {
                request = request
                    .set_key_marker(key_marker)
                    .set_version_id_marker(version_marker);
            }
            let page = request
                .send()
                .await
                .map_err(|e| self.s3_error("ListObjectVersions", prefix, e))?;
            for version in page.versions().iter().filter(|v| keep(v)) {
                let Some(key) = version.key() else { continue };
                found.push(ObjectMeta {
                    key: key.to_string(),
                    version_id: version_or_null(version.version_id()),
                    etag: unquote(version.e_tag()),
                    size: size_of(version.size()),
                    last_modified: to_chrono(version.last_modified()),
                });
            }
            let next_key = page.next_key_marker().map(str::to_string);
            let past_last_key =
                last_key.is_some_and(|last| next_key.as_deref().is_some_and(|next| next > last));
            if page.is_truncated() != Some(true) || past_last_key {
                break;
            }
            markers = Some((next_key, page.next_version_id_marker().map(str::to_string)));
        }
        Ok(found)
    }

    /// A store over `bucket`; does no I/O (the bucket must exist, see
    /// [`create_versioned_bucket`]).
    pub fn new(client: Client, bucket: impl Into<String>) -> S3Store {
        S3Store {
            client,
            bucket: bucket.into(),
        }
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The client, for S3 calls outside the store's scope (e.g. bucket notifications).
    pub fn client(&self) -> &Client {
        &self.client
    }

    fn not_found(&self, key: &str, version: Option<&str>) -> StoreError {
        StoreError::NotFound {
            store: self.url(),
            key: key.to_string(),
            version: version.map(str::to_string),
        }
    }

    /// Turns an SDK error into a [`StoreError`] for operations where a missing object is not a
    /// precondition failure.
    fn s3_error<E>(
        &self,
        operation: &'static str,
        key: &str,
        err: SdkError<E, HttpResponse>,
    ) -> StoreError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let status = err.raw_response().map(|r| r.status().as_u16());
        let code = err.code().map(str::to_string);
        let retryable = match &err {
            SdkError::TimeoutError(_)
            | SdkError::DispatchFailure(_)
            | SdkError::ResponseError(_) => true,
            SdkError::ServiceError(_) => {
                matches!(status, Some(429) | Some(500..=599))
                    || matches!(
                        code.as_deref(),
                        Some(
                            "SlowDown" | "RequestTimeout" | "InternalError" | "ServiceUnavailable"
                        )
                    )
            }
            _ => false,
        };
        let denied = matches!(
            code.as_deref(),
            Some("AccessDenied" | "InvalidAccessKeyId" | "SignatureDoesNotMatch")
        );
        let hint = if code.as_deref() == Some("NoSuchBucket") {
            format!(
                " (bucket '{}' does not exist: create it or fix the configured location)",
                self.bucket
            )
        } else if denied || status == Some(403) {
            " (check the AWS credentials, and that their IAM policy allows this on the bucket)"
                .to_string()
        } else {
            String::new()
        };
        let message = match (&code, err.message()) {
            (Some(code), Some(message)) => format!("{code}: {message}{hint}"),
            (Some(code), None) => format!("{code}{hint}"),
            _ => format!("{}{hint}", error_chain(&err)),
        };
        StoreError::S3 {
            store: self.url(),
            operation,
            key: key.to_string(),
            status,
            message,
            retryable,
        }
    }

    /// Like [`S3Store::s3_error`], for reads of one object: a missing key, version, or a
    /// version that is a delete marker is [`StoreError::NotFound`].
    fn read_error<E>(
        &self,
        operation: &'static str,
        key: &str,
        version: Option<&str>,
        err: SdkError<E, HttpResponse>,
    ) -> StoreError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let status = err.raw_response().map(|r| r.status().as_u16());
        let missing = match (status, err.code()) {
            (_, Some("NoSuchBucket")) => false,
            (_, Some("NoSuchKey" | "NoSuchVersion" | "NotFound")) | (Some(404), _) => true,
            // A malformed version id is one that cannot exist; a delete marker has no content.
            (Some(400), Some("InvalidArgument")) | (Some(405), _) => version.is_some(),
            _ => false,
        };
        if missing {
            self.not_found(key, version)
        } else {
            self.s3_error(operation, key, err)
        }
    }
}

/// An error and its causes on one line (the SDK's own Display shows only the outermost).
fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![err.to_string()];
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = cause.source();
    }
    parts.join(": ")
}

/// S3 returns ETags in quotes; [`ObjectMeta`] holds them without.
fn unquote(etag: Option<&str>) -> String {
    let etag = etag.unwrap_or_default().trim();
    etag.strip_prefix('"')
        .and_then(|e| e.strip_suffix('"'))
        .unwrap_or(etag)
        .to_string()
}

fn to_chrono(time: Option<&aws_sdk_s3::primitives::DateTime>) -> DateTime<Utc> {
    time.and_then(|t| DateTime::from_timestamp(t.secs(), t.subsec_nanos()))
        .unwrap_or_else(Utc::now)
}

fn version_or_null(version: Option<&str>) -> String {
    version.unwrap_or(NULL_VERSION).to_string()
}

fn size_of(size: Option<i64>) -> u64 {
    size.and_then(|s| u64::try_from(s).ok()).unwrap_or(0)
}

/// Percent-encodes a key for the `x-amz-copy-source` header: everything but RFC 3986 unreserved
/// characters and `/` is encoded, byte by byte of its UTF-8 form.
fn encode_copy_source_part(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~' | b'/') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

#[async_trait]
impl ObjectStore for S3Store {
    fn url(&self) -> String {
        format!("s3://{}", self.bucket)
    }

    async fn put(&self, key: &str, body: Bytes, mode: PutMode) -> Result<ObjectMeta, StoreError> {
        validate_key(key)?;
        let size = body.len() as u64;
        let mut request = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type_for(key))
            .body(ByteStream::from(body));
        request = match &mode {
            PutMode::Overwrite => request,
            PutMode::CreateOnly => request.if_none_match("*"),
            PutMode::ReplaceIfMatch(etag) => {
                request.if_match(format!("\"{}\"", unquote(Some(etag))))
            }
        };
        let output = match request.send().await {
            Ok(output) => output,
            Err(err) => {
                let status = err.raw_response().map(|r| r.status().as_u16());
                let refused = matches!(status, Some(412 | 409))
                    // If-Match on a missing key: nothing matched, so nothing is replaced.
                    || (matches!(mode, PutMode::ReplaceIfMatch(_))
                        && (status == Some(404) || err.code() == Some("NoSuchKey")));
                if mode != PutMode::Overwrite && refused {
                    let detail = match &mode {
                        PutMode::CreateOnly => "an object already exists".to_string(),
                        PutMode::ReplaceIfMatch(etag) => {
                            format!(
                                "the current object does not have etag '{}'",
                                unquote(Some(etag))
                            )
                        }
                        PutMode::Overwrite => String::new(),
                    };
                    return Err(StoreError::PreconditionFailed {
                        store: self.url(),
                        key: key.to_string(),
                        detail: format!(
                            "{detail} (HTTP {})",
                            status.map(|s| s.to_string()).unwrap_or_else(|| "?".into())
                        ),
                    });
                }
                return Err(self.s3_error("PutObject", key, err));
            }
        };
        let meta = ObjectMeta {
            key: key.to_string(),
            version_id: version_or_null(output.version_id()),
            etag: unquote(output.e_tag()),
            size,
            // PutObject does not return the time S3 records; this is the local clock.
            last_modified: Utc::now(),
        };
        tracing::debug!(store = %self.url(), key, version_id = %meta.version_id, size, "put");
        Ok(meta)
    }

    async fn get(
        &self,
        key: &str,
        version_id: Option<&str>,
    ) -> Result<(ObjectMeta, Bytes), StoreError> {
        let (meta, body) = self.open(key, version_id).await?;
        let bytes = body
            .collect()
            .await
            .map_err(|e| StoreError::S3 {
                store: self.url(),
                operation: "GetObject",
                key: key.to_string(),
                status: None,
                message: format!("reading the body failed: {}", error_chain(&e)),
                retryable: true,
            })?
            .into_bytes();
        tracing::debug!(
            store = %self.url(),
            key,
            version_id = %meta.version_id,
            size = bytes.len(),
            "get"
        );
        Ok((meta, bytes))
    }

    async fn get_reader(
        &self,
        key: &str,
        version_id: Option<&str>,
    ) -> Result<(ObjectMeta, ByteReader), StoreError> {
        let (meta, body) = self.open(key, version_id).await?;
        tracing::debug!(store = %self.url(), key, version_id = %meta.version_id, "get_reader");
        let reader: ByteReader = Box::pin(body.into_async_read());
        Ok((meta, reader))
    }

    async fn head(&self, key: &str, version_id: Option<&str>) -> Result<ObjectMeta, StoreError> {
        validate_key(key)?;
        let output = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .set_version_id(version_id.map(str::to_string))
            .send()
            .await
            .map_err(|e| self.read_error("HeadObject", key, version_id, e))?;
        if output.delete_marker() == Some(true) {
            return Err(self.not_found(key, version_id));
        }
        let meta = ObjectMeta {
            key: key.to_string(),
            version_id: version_or_null(output.version_id()),
            etag: unquote(output.e_tag()),
            size: size_of(output.content_length()),
            last_modified: to_chrono(output.last_modified()),
        };
        tracing::debug!(store = %self.url(), key, version_id = %meta.version_id, "head");
        Ok(meta)
    }

    /// Uses ListObjectVersions rather than ListObjectsV2: only it returns the version id of each
    /// latest object, which [`ObjectMeta`] carries.
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StoreError> {
        let mut found = self
            .list_object_versions(prefix, |version| version.is_latest() == Some(true), None)
            .await?;
        found.sort_by(|a, b| a.key.cmp(&b.key));
        tracing::debug!(store = %self.url(), prefix, count = found.len(), "list");
        Ok(found)
    }

    async fn list_versions(&self, key: &str) -> Result<Vec<ObjectMeta>, StoreError> {
        validate_key(key)?;
        // S3 lists each key's versions newest first; delete markers are listed apart.
        let found = self
            .list_object_versions(key, |version| version.key() == Some(key), Some(key))
            .await?;
        tracing::debug!(store = %self.url(), key, count = found.len(), "list_versions");
        Ok(found)
    }

    async fn copy(
        &self,
        src_key: &str,
        src_version: Option<&str>,
        dst_key: &str,
    ) -> Result<ObjectMeta, StoreError> {
        validate_key(dst_key)?;
        // Pin the exact source version first: CopyObject does not report the size, and copying
        // the version we looked at keeps size and content consistent under concurrent writes.
        let source = self.head(src_key, src_version).await?;
        let mut copy_source = format!(
            "{}/{}",
            encode_copy_source_part(&self.bucket),
            encode_copy_source_part(src_key)
        );
        if src_version.is_some() || source.version_id != NULL_VERSION {
            copy_source.push_str("?versionId=");
            copy_source.push_str(&encode_copy_source_part(&source.version_id));
        }
        let output = self
            .client
            .copy_object()
            .bucket(&self.bucket)
            .key(dst_key)
            .copy_source(copy_source)
            .send()
            .await
            .map_err(|e| {
                match self.read_error("CopyObject", src_key, Some(&source.version_id), e) {
                    StoreError::NotFound { .. } => self.not_found(src_key, src_version),
                    other => other,
                }
            })?;
        let result = output.copy_object_result();
        let meta = ObjectMeta {
            key: dst_key.to_string(),
            version_id: version_or_null(output.version_id()),
            etag: result
                .and_then(|r| r.e_tag())
                .map(|e| unquote(Some(e)))
                .unwrap_or(source.etag),
            size: source.size,
            last_modified: to_chrono(result.and_then(|r| r.last_modified())),
        };
        tracing::debug!(
            store = %self.url(),
            src_key,
            src_version = %source.version_id,
            dst_key,
            version_id = %meta.version_id,
            "copy"
        );
        Ok(meta)
    }
}

impl S3Store {
    /// GetObject, mapping a missing key or version to [`StoreError::NotFound`].
    async fn open(
        &self,
        key: &str,
        version_id: Option<&str>,
    ) -> Result<(ObjectMeta, ByteStream), StoreError> {
        validate_key(key)?;
        let output = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .set_version_id(version_id.map(str::to_string))
            .send()
            .await
            .map_err(|e| self.read_error("GetObject", key, version_id, e))?;
        let meta = ObjectMeta {
            key: key.to_string(),
            version_id: version_or_null(output.version_id()),
            etag: unquote(output.e_tag()),
            size: size_of(output.content_length()),
            last_modified: to_chrono(output.last_modified()),
        };
        Ok((meta, output.body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_source_is_percent_encoded_but_keeps_slashes() {
        assert_eq!(
            encode_copy_source_part("models/my model é+?.json"),
            "models/my%20model%20%C3%A9%2B%3F.json"
        );
    }

    #[test]
    fn path_style_follows_custom_endpoint_unless_forced() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert!(!path_style_from_env(env(&[])));
        assert!(path_style_from_env(env(&[(
            "AWS_ENDPOINT_URL",
            "http://127.0.0.1:9000"
        )])));
        assert!(path_style_from_env(env(&[(
            "AWS_ENDPOINT_URL_S3",
            "http://minio:9000"
        )])));
        assert!(path_style_from_env(env(&[(FORCE_PATH_STYLE_ENV, "true")])));
        assert!(!path_style_from_env(env(&[
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:9000"),
            (FORCE_PATH_STYLE_ENV, "false")
        ])));
    }

    #[test]
    fn etags_lose_their_quotes() {
        assert_eq!(unquote(Some("\"abc\"")), "abc");
        assert_eq!(unquote(Some("abc")), "abc");
        assert_eq!(unquote(None), "");
    }
}
