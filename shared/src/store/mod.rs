//! Versioned object storage: one small trait, [`ObjectStore`], with an S3 implementation
//! ([`s3::S3Store`]) and a local-filesystem implementation ([`local::LocalStore`]) that keeps
//! every version of every object the way a versioned S3 bucket does, plus an in-memory one
//! ([`memory::MemoryStore`]) for scratch work. Pipeline steps only ever
//! talk to this trait, through a [`crate::location::Location`]; they never touch the filesystem
//! or S3 directly. Conditional puts (create-only, replace-if-unchanged) give later steps safe
//! concurrent updates; a refused precondition is the distinct [`StoreError::PreconditionFailed`].

#[cfg(feature = "testing")]
pub mod fault;
pub mod local;
pub mod memory;
pub mod s3;

use std::fmt;
use std::path::PathBuf;
use std::pin::Pin;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncRead;

/// The version id S3 gives objects written while versioning was off (or, in the local store,
/// files placed in the directory by hand rather than through the store).
pub const NULL_VERSION: &str = "null";

/// What a store knows about one version of one object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectMeta {
    /// Key relative to the store root (bucket or directory), `/`-separated.
    pub key: String,
    /// Version id; [`NULL_VERSION`] for unversioned objects.
    pub version_id: String,
    /// Entity tag without surrounding quotes; changes whenever the content changes.
    pub etag: String,
    /// Size in bytes.
    pub size: u64,
    /// When this version was written.
    pub last_modified: DateTime<Utc>,
}

/// How a put treats an object that may already exist under the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutMode {
    /// Always write a new version.
    Overwrite,
    /// Write only if no object exists under the key (`If-None-Match: *`).
    CreateOnly,
    /// Write only if the current version still has this ETag (`If-Match: <etag>`).
    ReplaceIfMatch(String),
}

/// A streaming body, for objects too large to hold in memory at once.
pub type ByteReader = Pin<Box<dyn AsyncRead + Send>>;

/// Errors of the storage layer. Messages name the store and key so a user knows where to look.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{store}: no object at key '{key}'{}", version.as_ref().map(|v| format!(" with version '{v}'")).unwrap_or_default())]
    NotFound {
        store: String,
        key: String,
        version: Option<String>,
    },
    /// A conditional put was refused: the object exists (create-only) or changed (replace-if-match).
    /// S3 answers 412, or 409 when concurrent conditional writes race.
    #[error("{store}: conditional write of '{key}' refused: {detail}")]
    PreconditionFailed {
        store: String,
        key: String,
        detail: String,
    },
    #[error("invalid object key '{key}': {reason}")]
    InvalidKey { key: String, reason: String },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: store metadata is unreadable ({detail}); it was not written by this tool or was edited by hand", path.display())]
    CorruptMetadata { path: PathBuf, detail: String },
    // Bucket-level operations (CreateBucket, PutBucketVersioning, listings) have no key to name.
    #[error("{store}: S3 {operation}{} failed{}: {message}", if key.is_empty() { String::new() } else { format!(" of '{key}'") }, status.map(|s| format!(" (HTTP {s})")).unwrap_or_default())]
    S3 {
        store: String,
        operation: &'static str,
        key: String,
        status: Option<u16>,
        message: String,
        retryable: bool,
    },
}

impl StoreError {
    /// Whether retrying the same call later may succeed (throttling, network, server errors).
    pub fn is_retryable(&self) -> bool {
        match self {
            StoreError::S3 { retryable, .. } => *retryable,
            StoreError::Io { source, .. } => matches!(
                source.kind(),
                std::io::ErrorKind::Interrupted
                    | std::io::ErrorKind::TimedOut
                    | std::io::ErrorKind::WouldBlock
            ),
            _ => false,
        }
    }
}

/// A bucket or a directory of versioned objects.
///
/// Keys are `/`-separated, relative, non-empty, with no `.` or `..` segments and no empty
/// segments; implementations refuse anything else with [`StoreError::InvalidKey`].
#[async_trait]
pub trait ObjectStore: Send + Sync + fmt::Debug {
    /// Where this store lives, e.g. `s3://bucket` or `file:///abs/dir`; used in messages and to
    /// tell whether two locations share a store.
    fn url(&self) -> String;

    /// Writes a new version of `key` and returns its metadata.
    async fn put(&self, key: &str, body: Bytes, mode: PutMode) -> Result<ObjectMeta, StoreError>;

    /// Reads the whole body of the latest version, or of `version_id`.
    async fn get(
        &self,
        key: &str,
        version_id: Option<&str>,
    ) -> Result<(ObjectMeta, Bytes), StoreError>;

    /// Opens the latest version, or `version_id`, for streaming.
    async fn get_reader(
        &self,
        key: &str,
        version_id: Option<&str>,
    ) -> Result<(ObjectMeta, ByteReader), StoreError>;

    /// Metadata of the latest version, or of `version_id`.
    async fn head(&self, key: &str, version_id: Option<&str>) -> Result<ObjectMeta, StoreError>;

    /// The latest version of every object whose key starts with `prefix`, sorted by key.
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StoreError>;

    /// Every version of exactly `key`, newest first. Empty if the key never existed.
    async fn list_versions(&self, key: &str) -> Result<Vec<ObjectMeta>, StoreError>;

    /// Copies the latest version, or `src_version`, of `src_key` to a new version of `dst_key`
    /// in the same store.
    async fn copy(
        &self,
        src_key: &str,
        src_version: Option<&str>,
        dst_key: &str,
    ) -> Result<ObjectMeta, StoreError>;
}

/// The media type an object is stored with on S3, from its key's extension, so a browser (or
/// a presigned link) opens `index.html` as a page and not as a download. The local store needs
/// none: a file's extension says it.
pub fn content_type_for(key: &str) -> &'static str {
    let extension = key.rsplit_once('.').map_or("", |(_, ext)| ext);
    match extension.to_ascii_lowercase().as_str() {
        "html" => "text/html; charset=utf-8",
        "json" => "application/json",
        "md" => "text/markdown; charset=utf-8",
        "csv" => "text/csv; charset=utf-8",
        "txt" => "text/plain; charset=utf-8",
        "png" => "image/png",
        "parquet" => "application/vnd.apache.parquet",
        _ => "application/octet-stream",
    }
}

/// Checks the key rules every store shares (see [`ObjectStore`]).
pub fn validate_key(key: &str) -> Result<(), StoreError> {
    let invalid = |reason: &str| {
        Err(StoreError::InvalidKey {
            key: key.to_string(),
            reason: reason.to_string(),
        })
    };
    if key.is_empty() {
        return invalid("a key must not be empty");
    }
    if key.len() > 1024 {
        return invalid("a key must be at most 1024 bytes");
    }
    if key.starts_with('/') {
        return invalid("a key must be relative (no leading '/')");
    }
    if key.contains('\\') || key.contains('\0') {
        return invalid("a key must not contain '\\' or NUL");
    }
    for segment in key.split('/') {
        match segment {
            "" => return invalid("a key must not contain empty segments ('//' or a trailing '/')"),
            "." | ".." => return invalid("a key must not contain '.' or '..' segments"),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{StoreError, content_type_for};

    #[test]
    fn an_s3_error_names_the_key_only_when_there_is_one() {
        let error = |key: &str| StoreError::S3 {
            store: "s3://bucket".into(),
            operation: "CreateBucket",
            key: key.into(),
            status: Some(403),
            message: "AccessDenied: no".into(),
            retryable: false,
        };
        assert_eq!(
            error("").to_string(),
            "s3://bucket: S3 CreateBucket failed (HTTP 403): AccessDenied: no"
        );
        assert_eq!(
            error("a.csv").to_string(),
            "s3://bucket: S3 CreateBucket of 'a.csv' failed (HTTP 403): AccessDenied: no"
        );
    }

    #[test]
    fn objects_are_typed_by_their_extension() {
        assert_eq!(
            content_type_for("reports/index.html"),
            "text/html; charset=utf-8"
        );
        assert_eq!(
            content_type_for("reports/runs/run-1.HTML"),
            "text/html; charset=utf-8"
        );
        assert_eq!(content_type_for("reports/report.json"), "application/json");
        assert_eq!(content_type_for("reports/confusionmatrix.png"), "image/png");
        assert_eq!(
            content_type_for("compiled/finaldata.parquet"),
            "application/vnd.apache.parquet"
        );
        assert_eq!(
            content_type_for("a/b.d/no-extension"),
            "application/octet-stream"
        );
        assert_eq!(content_type_for("plain"), "application/octet-stream");
    }
}
