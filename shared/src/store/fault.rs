//! A fault-injecting wrapper over any [`ObjectStore`], for tests (feature `testing`): it fails
//! the Nth read or write with a transient or a permanent error, adds latency to every call, or
//! "crashes" — from the Nth write on, every call fails as if the process had died there, so what
//! is stored is exactly what a run killed at that point leaves behind. One [`FaultPlan`] is
//! shared by every wrapped store of a pipeline, so reads and writes are counted across all
//! locations in the order the run makes them. Writes are puts and copies; reads are everything
//! else.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use crate::location::{Location, Locations};

use super::{ByteReader, ObjectMeta, ObjectStore, PutMode, StoreError};

/// Whether an injected failure is worth retrying ([`StoreError::is_retryable`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// A timeout: retryable.
    Transient,
    /// Refused: not retryable.
    Permanent,
}

/// One fault to inject. Counts start at 1.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// The `nth` read fails (only that one).
    FailRead { nth: u64, kind: FaultKind },
    /// The `nth` write fails without writing (only that one).
    FailWrite { nth: u64, kind: FaultKind },
    /// The `nth` write does not happen, and neither does any later call.
    CrashAtWrite { nth: u64 },
    /// Every call waits this long first.
    Latency(Duration),
}

/// The faults of one run and its counts of the calls made so far.
#[derive(Debug, Default)]
pub struct FaultPlan {
    faults: Vec<Fault>,
    reads: AtomicU64,
    writes: AtomicU64,
    crashed: AtomicBool,
    /// The key of every write attempted, in order.
    written_keys: Mutex<Vec<String>>,
}

impl FaultPlan {
    /// A plan that injects `faults` (none: it only counts).
    pub fn new(faults: Vec<Fault>) -> Arc<Self> {
        Arc::new(FaultPlan {
            faults,
            ..FaultPlan::default()
        })
    }

    /// Reads attempted so far (failed ones included).
    pub fn reads(&self) -> u64 {
        self.reads.load(Ordering::SeqCst)
    }

    /// Writes attempted so far (failed ones included).
    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::SeqCst)
    }

    /// The key of every write attempted so far, in order (write `n` is at `n - 1`).
    pub fn written_keys(&self) -> Vec<String> {
        self.written_keys
            .lock()
            .map(|keys| keys.clone())
            .unwrap_or_default()
    }

    /// Whether a [`Fault::CrashAtWrite`] has struck.
    pub fn crashed(&self) -> bool {
        self.crashed.load(Ordering::SeqCst)
    }

    fn latency(&self) -> Option<Duration> {
        self.faults.iter().find_map(|fault| match fault {
            Fault::Latency(latency) => Some(*latency),
            _ => None,
        })
    }

    /// Counts one call and says whether it must fail, and how.
    fn admit(&self, write: bool, key: &str) -> Result<(), StoreError> {
        let nth = if write {
            if let Ok(mut keys) = self.written_keys.lock() {
                keys.push(key.to_string());
            }
            self.writes.fetch_add(1, Ordering::SeqCst) + 1
        } else {
            self.reads.fetch_add(1, Ordering::SeqCst) + 1
        };
        if write
            && self
                .faults
                .iter()
                .any(|f| matches!(f, Fault::CrashAtWrite { nth: at } if *at == nth))
        {
            self.crashed.store(true, Ordering::SeqCst);
        }
        if self.crashed() {
            return Err(injected(
                key,
                std::io::ErrorKind::Other,
                "injected crash: the process stopped before this call",
            ));
        }
        let kind = self.faults.iter().find_map(|fault| match fault {
            Fault::FailRead { nth: at, kind } if !write && *at == nth => Some(*kind),
            Fault::FailWrite { nth: at, kind } if write && *at == nth => Some(*kind),
            _ => None,
        });
        match kind {
            Some(FaultKind::Transient) => Err(injected(
                key,
                std::io::ErrorKind::TimedOut,
                "injected transient fault: timed out",
            )),
            Some(FaultKind::Permanent) => Err(injected(
                key,
                std::io::ErrorKind::PermissionDenied,
                "injected permanent fault: refused",
            )),
            None => Ok(()),
        }
    }
}

fn injected(key: &str, kind: std::io::ErrorKind, message: &str) -> StoreError {
    StoreError::Io {
        path: PathBuf::from(key),
        source: std::io::Error::new(kind, message.to_string()),
    }
}

/// Every location of `locations`, each over its store wrapped with the one shared `plan`.
pub fn with_faults(locations: &Locations, plan: &Arc<FaultPlan>) -> Locations {
    let wrap = |location: &Location| {
        location.with_store(|inner| Arc::new(FaultStore::new(inner, plan.clone())))
    };
    Locations {
        source_data: wrap(&locations.source_data),
        compiled_data: wrap(&locations.compiled_data),
        test_data: wrap(&locations.test_data),
        models: wrap(&locations.models),
        production: wrap(&locations.production),
        reports: wrap(&locations.reports),
    }
}

/// `inner`, with the faults of a shared [`FaultPlan`].
#[derive(Debug, Clone)]
pub struct FaultStore {
    inner: Arc<dyn ObjectStore>,
    plan: Arc<FaultPlan>,
}

impl FaultStore {
    pub fn new(inner: Arc<dyn ObjectStore>, plan: Arc<FaultPlan>) -> Self {
        FaultStore { inner, plan }
    }

    async fn before(&self, write: bool, key: &str) -> Result<(), StoreError> {
        if let Some(latency) = self.plan.latency() {
            tokio::time::sleep(latency).await;
        }
        self.plan.admit(write, key)
    }
}

#[async_trait]
impl ObjectStore for FaultStore {
    /// The inner store's URL, so copies between two wrapped locations of one store stay
    /// server-side copies, as without the wrapper.
    fn url(&self) -> String {
        self.inner.url()
    }

    async fn put(&self, key: &str, body: Bytes, mode: PutMode) -> Result<ObjectMeta, StoreError> {
        self.before(true, key).await?;
        self.inner.put(key, body, mode).await
    }

    async fn get(
        &self,
        key: &str,
        version_id: Option<&str>,
    ) -> Result<(ObjectMeta, Bytes), StoreError> {
        self.before(false, key).await?;
        self.inner.get(key, version_id).await
    }

    async fn get_reader(
        &self,
        key: &str,
        version_id: Option<&str>,
    ) -> Result<(ObjectMeta, ByteReader), StoreError> {
        self.before(false, key).await?;
        self.inner.get_reader(key, version_id).await
    }

    async fn head(&self, key: &str, version_id: Option<&str>) -> Result<ObjectMeta, StoreError> {
        self.before(false, key).await?;
        self.inner.head(key, version_id).await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StoreError> {
        self.before(false, prefix).await?;
        self.inner.list(prefix).await
    }

    async fn list_versions(&self, key: &str) -> Result<Vec<ObjectMeta>, StoreError> {
        self.before(false, key).await?;
        self.inner.list_versions(key).await
    }

    async fn copy(
        &self,
        src_key: &str,
        src_version: Option<&str>,
        dst_key: &str,
    ) -> Result<ObjectMeta, StoreError> {
        self.before(true, dst_key).await?;
        self.inner.copy(src_key, src_version, dst_key).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::memory::MemoryStore;

    fn store(faults: Vec<Fault>) -> (FaultStore, Arc<FaultPlan>) {
        let plan = FaultPlan::new(faults);
        let inner: Arc<dyn ObjectStore> = Arc::new(MemoryStore::new("fault-test"));
        (FaultStore::new(inner, plan.clone()), plan)
    }

    fn body(text: &'static str) -> Bytes {
        Bytes::from_static(text.as_bytes())
    }

    #[tokio::test]
    async fn the_nth_read_or_write_fails_once_with_the_kind_asked_for() {
        let (store, plan) = store(vec![
            Fault::FailWrite {
                nth: 2,
                kind: FaultKind::Permanent,
            },
            Fault::FailRead {
                nth: 1,
                kind: FaultKind::Transient,
            },
        ]);
        store.put("a", body("1"), PutMode::Overwrite).await.unwrap();
        let refused = store
            .put("b", body("2"), PutMode::Overwrite)
            .await
            .unwrap_err();
        assert!(!refused.is_retryable(), "{refused}");
        store.put("b", body("3"), PutMode::Overwrite).await.unwrap();
        let timed_out = store.get("a", None).await.unwrap_err();
        assert!(timed_out.is_retryable(), "{timed_out}");
        assert_eq!(store.get("b", None).await.unwrap().1, body("3"));
        // The refused write wrote nothing.
        assert_eq!(store.list_versions("b").await.unwrap().len(), 1);
        assert_eq!((plan.writes(), plan.reads()), (3, 3));
        assert_eq!(plan.written_keys(), ["a", "b", "b"]);
        assert!(!plan.crashed());
    }

    #[tokio::test]
    async fn a_crash_stops_the_nth_write_and_every_call_after_it() {
        let (store, plan) = store(vec![Fault::CrashAtWrite { nth: 2 }]);
        store.put("a", body("1"), PutMode::Overwrite).await.unwrap();
        assert!(store.get("a", None).await.is_ok());
        let crashed = store.copy("a", None, "b").await.unwrap_err().to_string();
        assert!(crashed.contains("injected crash"), "{crashed}");
        assert!(plan.crashed());
        assert!(store.get("a", None).await.is_err());
        assert!(store.list("").await.is_err());
        // What a later, clean run sees: only the first write happened.
        let clean = FaultStore::new(store.inner.clone(), FaultPlan::new(vec![]));
        let keys: Vec<_> = clean
            .list("")
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.key)
            .collect();
        assert_eq!(keys, ["a"]);
    }

    #[tokio::test]
    async fn latency_delays_every_call() {
        // An hour's latency: a call cannot finish within a short timeout (sleep never ends early).
        let (store, plan) = store(vec![Fault::Latency(Duration::from_secs(3600))]);
        let put = store.put("a", body("1"), PutMode::Overwrite);
        assert!(
            tokio::time::timeout(Duration::from_millis(20), put)
                .await
                .is_err()
        );
        // Cancelled while waiting: counted by no one, written nowhere.
        assert_eq!(plan.writes(), 0);
    }
}
