//! A [`Location`] is one configured place (a local directory or an S3 bucket and prefix) seen as
//! a versioned object store of its own: names are relative to the location, so steps say
//! `models.put("model.json", …)` without caring where that is. [`Locations`] opens every location
//! of a [`Config`] once, building the S3 client only if some location is on S3 (local runs never
//! touch AWS configuration).

use std::sync::Arc;

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::config::{Config, LocationUrl};
use crate::store::local::{Durability, LocalStore};
use crate::store::s3::S3Store;
use crate::store::{ByteReader, ObjectMeta, ObjectStore, PutMode, StoreError};

/// Errors reading or writing a JSON record in a location.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "{url} (version {version}) is not a valid {what}: {source}; it may have been written by an incompatible version or edited by hand"
    )]
    Decode {
        url: String,
        version: String,
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("cannot encode {what} as JSON: {source}")]
    Encode {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
}

/// Objects [`Location::get_all`] reads at once: S3 answers each in tens of milliseconds, so one
/// after another adds up to seconds for a hundred, while a few at once keep connections modest.
pub const READS_AT_ONCE: usize = 8;

/// One configured location: a store plus a key prefix inside it.
#[derive(Debug, Clone)]
pub struct Location {
    store: Arc<dyn ObjectStore>,
    prefix: String,
    /// How the location is shown: its configured URL (`file://…`, `s3://…`, `memory://…`).
    url: String,
}

impl Location {
    /// A location at `prefix` (no leading or trailing `/`, may be empty) inside `store`.
    pub fn new(
        store: Arc<dyn ObjectStore>,
        prefix: impl Into<String>,
        url: impl Into<String>,
    ) -> Self {
        Location {
            store,
            prefix: prefix.into(),
            url: url.into(),
        }
    }

    /// A fresh, empty in-memory location (scratch work that must not touch any configured place).
    pub fn scratch(name: &str) -> Self {
        let store = crate::store::memory::MemoryStore::new(name);
        let url = store.url();
        Location::new(Arc::new(store), "", url)
    }

    /// A location over a local directory, for tests and tools.
    pub fn local(root: impl Into<std::path::PathBuf>) -> Self {
        let root = root.into();
        let url = LocationUrl::File { root: root.clone() }.to_string();
        let store = LocalStore::new(root).with_durability(Durability::from_env());
        Location::new(Arc::new(store), "", url)
    }

    /// The same location over the store `wrap` makes of this one's (tests wrap it to inject
    /// faults: [`crate::store::fault`]).
    #[cfg(feature = "testing")]
    pub fn with_store(
        &self,
        wrap: impl FnOnce(Arc<dyn ObjectStore>) -> Arc<dyn ObjectStore>,
    ) -> Location {
        Location {
            store: wrap(self.store.clone()),
            prefix: self.prefix.clone(),
            url: self.url.clone(),
        }
    }

    /// The URL of this location, as configured.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The full URL of an object in this location, for messages and records.
    pub fn object_url(&self, name: &str) -> String {
        format!("{}/{name}", self.url.trim_end_matches('/'))
    }

    fn key(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}/{name}", self.prefix)
        }
    }

    /// Turns a store key back into a name relative to this location.
    fn relative(&self, mut meta: ObjectMeta) -> ObjectMeta {
        if !self.prefix.is_empty()
            && let Some(rest) = meta.key.strip_prefix(&self.prefix)
            && let Some(rest) = rest.strip_prefix('/')
        {
            meta.key = rest.to_string();
        }
        meta
    }

    pub async fn put(
        &self,
        name: &str,
        body: Bytes,
        mode: PutMode,
    ) -> Result<ObjectMeta, StoreError> {
        let meta = self.store.put(&self.key(name), body, mode).await?;
        Ok(self.relative(meta))
    }

    pub async fn get(
        &self,
        name: &str,
        version: Option<&str>,
    ) -> Result<(ObjectMeta, Bytes), StoreError> {
        let (meta, body) = self.store.get(&self.key(name), version).await?;
        Ok((self.relative(meta), body))
    }

    /// Like [`Location::get`] of the latest version, but a missing object is `None`.
    pub async fn get_if_exists(
        &self,
        name: &str,
    ) -> Result<Option<(ObjectMeta, Bytes)>, StoreError> {
        match self.get(name, None).await {
            Ok(found) => Ok(Some(found)),
            Err(StoreError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub async fn get_reader(
        &self,
        name: &str,
        version: Option<&str>,
    ) -> Result<(ObjectMeta, ByteReader), StoreError> {
        let (meta, reader) = self.store.get_reader(&self.key(name), version).await?;
        Ok((self.relative(meta), reader))
    }

    pub async fn head(&self, name: &str, version: Option<&str>) -> Result<ObjectMeta, StoreError> {
        Ok(self.relative(self.store.head(&self.key(name), version).await?))
    }

    /// Latest versions of every object under `sub_prefix` (relative to this location), sorted.
    pub async fn list(&self, sub_prefix: &str) -> Result<Vec<ObjectMeta>, StoreError> {
        let prefix = if self.prefix.is_empty() {
            sub_prefix.to_string()
        } else {
            format!("{}/{sub_prefix}", self.prefix)
        };
        let found = self.store.list(&prefix).await?;
        Ok(found.into_iter().map(|meta| self.relative(meta)).collect())
    }

    /// Every version of `name`, newest first.
    pub async fn list_versions(&self, name: &str) -> Result<Vec<ObjectMeta>, StoreError> {
        let found = self.store.list_versions(&self.key(name)).await?;
        Ok(found.into_iter().map(|meta| self.relative(meta)).collect())
    }

    /// Copies a version of `name` here to `dest_name` in `dest` as a new version there. Within
    /// one store this is a server-side copy; across stores the bytes pass through this process.
    pub async fn copy_to(
        &self,
        name: &str,
        version: Option<&str>,
        dest: &Location,
        dest_name: &str,
    ) -> Result<ObjectMeta, StoreError> {
        if self.store.url() == dest.store.url() {
            let meta = self
                .store
                .copy(&self.key(name), version, &dest.key(dest_name))
                .await?;
            return Ok(dest.relative(meta));
        }
        let (_, body) = self.get(name, version).await?;
        dest.put(dest_name, body, PutMode::Overwrite).await
    }

    /// Writes `value` as pretty JSON (records are small and read by people too).
    pub async fn put_json<T: Serialize>(
        &self,
        name: &str,
        what: &'static str,
        value: &T,
        mode: PutMode,
    ) -> Result<ObjectMeta, RecordError> {
        let mut body = serde_json::to_vec_pretty(value)
            .map_err(|source| RecordError::Encode { what, source })?;
        body.push(b'\n');
        Ok(self.put(name, Bytes::from(body), mode).await?)
    }

    /// Each `(name, version)` (the latest with `None`), read [`READS_AT_ONCE`] at a time: the
    /// results in the order asked, each its own.
    pub async fn get_all(
        &self,
        objects: Vec<(String, Option<String>)>,
    ) -> Vec<Result<(ObjectMeta, Bytes), StoreError>> {
        let permits = Arc::new(tokio::sync::Semaphore::new(READS_AT_ONCE));
        let mut reads = tokio::task::JoinSet::new();
        for (index, (name, version)) in objects.into_iter().enumerate() {
            let (location, permits) = (self.clone(), permits.clone());
            reads.spawn(async move {
                let _permit = permits.acquire_owned().await;
                (index, location.get(&name, version.as_deref()).await)
            });
        }
        let mut results = reads.join_all().await;
        results.sort_unstable_by_key(|(index, _)| *index);
        results.into_iter().map(|(_, result)| result).collect()
    }

    /// Reads a JSON record, latest or a given version.
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        name: &str,
        what: &'static str,
        version: Option<&str>,
    ) -> Result<(ObjectMeta, T), RecordError> {
        let (meta, body) = self.get(name, version).await?;
        let value = self.decode_json(name, what, &meta, &body)?;
        Ok((meta, value))
    }

    /// The latest version of each JSON record in `names`, read as [`Location::get_all`] reads:
    /// in the order asked, each its own result.
    pub async fn get_json_all<T: DeserializeOwned>(
        &self,
        names: Vec<String>,
        what: &'static str,
    ) -> Vec<Result<T, RecordError>> {
        let reads = self
            .get_all(names.iter().map(|name| (name.clone(), None)).collect())
            .await;
        names
            .iter()
            .zip(reads)
            .map(|(name, read)| {
                let (meta, body) = read?;
                self.decode_json(name, what, &meta, &body)
            })
            .collect()
    }

    fn decode_json<T: DeserializeOwned>(
        &self,
        name: &str,
        what: &'static str,
        meta: &ObjectMeta,
        body: &[u8],
    ) -> Result<T, RecordError> {
        serde_json::from_slice(body).map_err(|source| RecordError::Decode {
            url: self.object_url(name),
            version: meta.version_id.clone(),
            what,
            source,
        })
    }

    /// Like [`Location::get_json`] of the latest version, but a missing record is `None`.
    pub async fn get_json_if_exists<T: DeserializeOwned>(
        &self,
        name: &str,
        what: &'static str,
    ) -> Result<Option<(ObjectMeta, T)>, RecordError> {
        match self.get_json(name, what, None).await {
            Ok(found) => Ok(Some(found)),
            Err(RecordError::Store(StoreError::NotFound { .. })) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// Every configured location, opened.
#[derive(Debug, Clone)]
pub struct Locations {
    pub source_data: Location,
    pub compiled_data: Location,
    pub test_data: Location,
    pub models: Location,
    pub production: Location,
    pub reports: Location,
}

impl Locations {
    /// Opens every location of `config`. The S3 client is built once, and only if needed, from
    /// the standard AWS chain (env, profile, role; `AWS_ENDPOINT_URL` for S3-compatible servers).
    pub async fn open(config: &Config) -> Locations {
        let needs_s3 = config
            .named_locations()
            .iter()
            .any(|(_, url)| matches!(url, LocationUrl::S3 { .. }));
        let client = if needs_s3 {
            Some(crate::store::s3::client_from_env().await)
        } else {
            None
        };
        Self::open_with_client(config, client)
    }

    /// Opens every location with an S3 client the caller built (tests, local S3 servers).
    pub fn open_with_client(config: &Config, client: Option<aws_sdk_s3::Client>) -> Locations {
        let open = |url: &LocationUrl| -> Location {
            match url {
                LocationUrl::File { root } => {
                    let store =
                        LocalStore::new(root.clone()).with_durability(Durability::from_env());
                    Location::new(Arc::new(store), "", url.to_string())
                }
                LocationUrl::S3 { bucket, prefix } => {
                    let client = client.clone().unwrap_or_else(|| {
                        // Only reachable when a caller passes no client for an S3 config; an
                        // unconfigured client still fails cleanly (and visibly) on first use.
                        aws_sdk_s3::Client::from_conf(
                            aws_sdk_s3::Config::builder()
                                .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
                                .build(),
                        )
                    });
                    Location::new(
                        Arc::new(S3Store::new(client, bucket.clone())),
                        prefix.clone(),
                        url.to_string(),
                    )
                }
            }
        };
        Locations {
            source_data: open(&config.source_data),
            compiled_data: open(&config.compiled_data),
            test_data: open(&config.test_data),
            models: open(&config.models),
            production: open(&config.production),
            reports: open(&config.reports),
        }
    }
}

/// Creates every S3 bucket the configuration names, with versioning on (idempotent: a bucket we
/// already own is fine). For local S3-compatible servers and first-time setups; a SAM
/// deployment creates its buckets itself. Returns the buckets, in configuration order.
pub async fn create_configured_buckets(
    config: &Config,
    client: &aws_sdk_s3::Client,
) -> Result<Vec<String>, StoreError> {
    let mut buckets: Vec<String> = Vec::new();
    for (_, url) in config.named_locations() {
        if let LocationUrl::S3 { bucket, .. } = url
            && !buckets.contains(bucket)
        {
            crate::store::s3::create_versioned_bucket(client, bucket).await?;
            buckets.push(bucket.clone());
        }
    }
    Ok(buckets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_of_many_come_back_in_the_order_asked_with_each_failure_in_its_place() {
        let location = Location::scratch("records");
        for n in 0..20 {
            let body = Bytes::from(format!("{{\"n\": {n}}}"));
            location
                .put(&format!("r/{n:02}.json"), body, PutMode::Overwrite)
                .await
                .unwrap();
        }
        location
            .put(
                "r/bad.json",
                Bytes::from_static(b"not json"),
                PutMode::Overwrite,
            )
            .await
            .unwrap();
        let mut names: Vec<String> = (0..20).rev().map(|n| format!("r/{n:02}.json")).collect();
        names.insert(3, "r/missing.json".to_string());
        names.insert(7, "r/bad.json".to_string());
        let records = location
            .get_json_all::<serde_json::Value>(names, "test record")
            .await;
        assert_eq!(records.len(), 22);
        assert!(matches!(
            records[3],
            Err(RecordError::Store(StoreError::NotFound { .. }))
        ));
        assert!(matches!(records[7], Err(RecordError::Decode { .. })));
        let numbers: Vec<i64> = records
            .iter()
            .filter_map(|r| r.as_ref().ok())
            .map(|v| v["n"].as_i64().unwrap())
            .collect();
        assert_eq!(numbers, (0..20).rev().collect::<Vec<_>>());
    }
}
