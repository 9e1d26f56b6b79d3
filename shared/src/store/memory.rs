//! An in-memory versioned store: the scratch location the diagnostics time ingestion and
//! training against (so timing runs never write to any configured location), and a third
//! implementation the storage contract tests hold to the same rules.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use bytes::Bytes;
use chrono::Utc;
use md5::{Digest, Md5};

use super::{ByteReader, ObjectMeta, ObjectStore, PutMode, StoreError, validate_key};

/// Versions of every key, oldest first.
type Versions = BTreeMap<String, Vec<(ObjectMeta, Bytes)>>;

/// A versioned object store held in memory, discarded with the value.
#[derive(Debug, Default)]
pub struct MemoryStore {
    name: String,
    objects: Mutex<Versions>,
    next_version: AtomicU64,
}

impl MemoryStore {
    /// A new empty store; `name` only appears in its URL (`memory://name`).
    pub fn new(name: impl Into<String>) -> Self {
        MemoryStore {
            name: name.into(),
            ..Default::default()
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Versions> {
        // A panic while holding the lock cannot leave a half-written version (each put pushes
        // one complete entry), so a poisoned map is still consistent.
        self.objects
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn not_found(&self, key: &str, version: Option<&str>) -> StoreError {
        StoreError::NotFound {
            store: self.url(),
            key: key.to_string(),
            version: version.map(str::to_string),
        }
    }

    fn find(&self, key: &str, version: Option<&str>) -> Result<(ObjectMeta, Bytes), StoreError> {
        validate_key(key)?;
        let objects = self.lock();
        let versions = objects
            .get(key)
            .ok_or_else(|| self.not_found(key, version))?;
        let found = match version {
            None => versions.last(),
            Some(id) => versions.iter().find(|(meta, _)| meta.version_id == id),
        };
        found.cloned().ok_or_else(|| self.not_found(key, version))
    }
}

#[async_trait]
impl ObjectStore for MemoryStore {
    fn url(&self) -> String {
        format!("memory://{}", self.name)
    }

    async fn put(&self, key: &str, body: Bytes, mode: PutMode) -> Result<ObjectMeta, StoreError> {
        validate_key(key)?;
        let etag = format!("{:x}", Md5::digest(&body));
        let mut objects = self.lock();
        let current = objects
            .get(key)
            .and_then(|v| v.last())
            .map(|(meta, _)| meta);
        let refusal = match (&mode, current) {
            (PutMode::CreateOnly, Some(_)) => {
                Some("an object already exists at this key".to_string())
            }
            (PutMode::ReplaceIfMatch(expected), Some(meta))
                if meta.etag != expected.trim_matches('"') =>
            {
                Some(format!(
                    "the object changed (ETag {} is not the expected {expected})",
                    meta.etag
                ))
            }
            (PutMode::ReplaceIfMatch(_), None) => Some("no object exists at this key".to_string()),
            _ => None,
        };
        if let Some(detail) = refusal {
            return Err(StoreError::PreconditionFailed {
                store: self.url(),
                key: key.to_string(),
                detail,
            });
        }
        let sequence = self.next_version.fetch_add(1, Ordering::Relaxed);
        let meta = ObjectMeta {
            key: key.to_string(),
            version_id: format!("m{sequence:016}"),
            etag,
            size: body.len() as u64,
            last_modified: Utc::now(),
        };
        objects
            .entry(key.to_string())
            .or_default()
            .push((meta.clone(), body));
        Ok(meta)
    }

    async fn get(
        &self,
        key: &str,
        version_id: Option<&str>,
    ) -> Result<(ObjectMeta, Bytes), StoreError> {
        self.find(key, version_id)
    }

    async fn get_reader(
        &self,
        key: &str,
        version_id: Option<&str>,
    ) -> Result<(ObjectMeta, ByteReader), StoreError> {
        let (meta, body) = self.find(key, version_id)?;
        Ok((meta, Box::pin(std::io::Cursor::new(body))))
    }

    async fn head(&self, key: &str, version_id: Option<&str>) -> Result<ObjectMeta, StoreError> {
        self.find(key, version_id).map(|(meta, _)| meta)
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StoreError> {
        let objects = self.lock();
        Ok(objects
            .range(prefix.to_string()..)
            .take_while(|(key, _)| key.starts_with(prefix))
            .filter_map(|(_, versions)| versions.last().map(|(meta, _)| meta.clone()))
            .collect())
    }

    async fn list_versions(&self, key: &str) -> Result<Vec<ObjectMeta>, StoreError> {
        validate_key(key)?;
        let objects = self.lock();
        Ok(objects
            .get(key)
            .map(|versions| {
                versions
                    .iter()
                    .rev()
                    .map(|(meta, _)| meta.clone())
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn copy(
        &self,
        src_key: &str,
        src_version: Option<&str>,
        dst_key: &str,
    ) -> Result<ObjectMeta, StoreError> {
        validate_key(dst_key)?;
        let (_, body) = self.find(src_key, src_version)?;
        self.put(dst_key, body, PutMode::Overwrite).await
    }
}
