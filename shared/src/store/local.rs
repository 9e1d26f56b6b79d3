//! [`LocalStore`]: a directory that behaves like a versioned S3 bucket, for running the pipeline
//! on one machine. The current content of key `a/b.csv` is the plain file `<root>/a/b.csv`, so
//! people can browse outputs and drop CSVs in by hand; every version written through the store
//! is also kept as a copy under the reserved directory `<root>/.versions/`, next to a small JSON
//! record. A visible file that no record describes (placed or edited by hand) is the version
//! [`NULL_VERSION`], and is copied into history before the store overwrites it, so nothing a
//! user placed is lost. Writes go through a temporary file and a rename, under a per-key lock
//! file, so conditional puts are race-free across threads and processes.
//!
//! On-disk layout (all paths under the root):
//! - `<key>`: the current content (plain file).
//! - `.versions/objects/<h2>/<md5 of key>/<order>.data`: bytes of one version (immutable).
//! - `.versions/objects/<h2>/<md5 of key>/<order>.json`: its record (version id, etag, size,
//!   last-modified time, and the size/mtime/inode of the visible file written for it).
//! - `.versions/objects/<h2>/<md5 of key>/lock`: serialises writers of that key.
//! - `.versions/tmp/`: staging area for atomic renames (same filesystem as the root).
//!
//! `<order>` is a 20-digit, zero-padded nanosecond timestamp, made strictly increasing per key
//! under the lock; it is also the version id of every version written through the store.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};
use tempfile::NamedTempFile;
use twox_hash::XxHash3_128;

use super::{ByteReader, NULL_VERSION, ObjectMeta, ObjectStore, PutMode, StoreError, validate_key};

/// The reserved top-level directory holding version history; never a key, never listed.
pub const VERSIONS_DIR: &str = ".versions";

/// Digits of an order / version id: enough for nanoseconds since 1970 until year 5138.
const ORDER_DIGITS: usize = 20;

/// Environment variable that turns the local store's fsyncs off (`off`, `false` or `0`).
pub const FSYNC_ENV: &str = "RISK_LOCAL_FSYNC";

/// Whether a put flushes what it wrote to disk before making it visible.
///
/// [`Durability::Fsync`] (the default) survives a power cut or an OS crash: every version that
/// a put reported is on disk, and its record never describes missing bytes. With
/// [`Durability::NoFsync`] the writes still go through a temporary file and an atomic rename, so
/// a crashed or killed *process* never leaves a half-written object; only an OS crash or power
/// cut within the kernel's writeback delay (seconds) can lose the latest versions or leave a
/// record whose bytes are missing (reported as corrupt metadata, never as wrong data). Each put
/// costs three fsyncs (version bytes, visible file, record), milliseconds on most disks and most
/// of a small pipeline run; local runs on throwaway data may trade that away. Production
/// durability comes from S3, which this setting does not touch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    #[default]
    Fsync,
    NoFsync,
}

impl Durability {
    /// [`Durability::NoFsync`] when [`FSYNC_ENV`] is `off`, `false` or `0`; otherwise the default.
    pub fn from_env() -> Self {
        match std::env::var(FSYNC_ENV) {
            Ok(value)
                if ["off", "false", "0"]
                    .iter()
                    .any(|off| value.trim().eq_ignore_ascii_case(off)) =>
            {
                Durability::NoFsync
            }
            _ => Durability::Fsync,
        }
    }
}

/// A directory of versioned objects. Cheap to clone; all clones share the same directory.
#[derive(Debug, Clone)]
pub struct LocalStore {
    root: PathBuf,
    durability: Durability,
}

/// What identifies the exact visible file a version was written as: if the visible file no
/// longer has these, someone replaced or edited it by hand. (An in-place edit that keeps the
/// size and lands in the same filesystem timestamp tick as the store's write goes unnoticed.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Stamp {
    size: u64,
    mtime_ns: u64,
    inode: u64,
}

impl Stamp {
    fn of(metadata: &fs::Metadata) -> Stamp {
        Stamp {
            size: metadata.len(),
            mtime_ns: metadata.modified().map(nanos_since_epoch).unwrap_or(0),
            inode: inode(metadata),
        }
    }

    /// The cheap ETag of a hand-placed file: hashing it would make `list` read every byte.
    fn weak_etag(&self) -> String {
        format!("W/{}-{}", self.size, self.mtime_ns)
    }

    fn last_modified(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_nanos(i64::try_from(self.mtime_ns).unwrap_or(i64::MAX))
    }
}

#[cfg(unix)]
fn inode(metadata: &fs::Metadata) -> u64 {
    std::os::unix::fs::MetadataExt::ino(metadata)
}

#[cfg(not(unix))]
fn inode(_metadata: &fs::Metadata) -> u64 {
    0
}

fn nanos_since_epoch(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The JSON record kept next to each version's bytes.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct VersionRecord {
    /// The key, so a record can be checked against the directory it was found in.
    key: String,
    /// Equal to the order for versions written through the store; [`NULL_VERSION`] for the
    /// preserved hand-placed content.
    version_id: String,
    etag: String,
    size: u64,
    last_modified: DateTime<Utc>,
    /// The visible file this version was written as (see [`Stamp`]).
    visible: Stamp,
}

/// A record and the order it is stored under.
#[derive(Debug, Clone)]
struct Stored {
    order: u64,
    record: VersionRecord,
}

/// Where the bytes of a resolved version are read from.
enum Source {
    /// The visible file, as the caller saw (or opened) it.
    Visible,
    /// An immutable history copy.
    History(PathBuf),
}

/// What a put writes: bytes in memory, or a stream (a copy of another object).
enum Body<'a> {
    Bytes(&'a [u8]),
    Reader(&'a mut dyn Read),
}

/// A body written twice to the staging area, ready to be renamed into place.
struct StagedCopies {
    /// Becomes the version's immutable history copy.
    history: NamedTempFile,
    /// Becomes the key's visible file.
    visible: NamedTempFile,
    visible_stamp: Stamp,
    size: u64,
    etag: String,
}

/// The visible file of a key as a put finds it under the lock.
struct CurrentVersion {
    meta: ObjectMeta,
    /// Placed or edited by hand (no record describes it): preserved before it is replaced.
    hand_placed: bool,
    stamp: Stamp,
}

/// Bodies at least this large have their second copy written (and their ETag computed) on a
/// second thread.
const PARALLEL_COPY_BYTES: usize = 1024 * 1024;

/// Paths belonging to one key.
struct KeyPaths {
    visible: PathBuf,
    history: PathBuf,
}

impl KeyPaths {
    fn data(&self, order: u64) -> PathBuf {
        self.history.join(format!("{order:0ORDER_DIGITS$}.data"))
    }

    fn record(&self, order: u64) -> PathBuf {
        self.history.join(format!("{order:0ORDER_DIGITS$}.json"))
    }

    fn lock(&self) -> PathBuf {
        self.history.join("lock")
    }
}

impl LocalStore {
    /// A store rooted at `root`. Does no I/O: directories are created on the first write.
    pub fn new(root: impl Into<PathBuf>) -> LocalStore {
        LocalStore {
            root: absolute_lexically(&root.into()),
            durability: Durability::default(),
        }
    }

    /// The same store with the given durability (see [`Durability`]).
    pub fn with_durability(mut self, durability: Durability) -> LocalStore {
        self.durability = durability;
        self
    }

    fn sync(&self, file: &NamedTempFile) -> Result<(), StoreError> {
        match self.durability {
            Durability::Fsync => sync(file),
            Durability::NoFsync => Ok(()),
        }
    }

    /// The root directory (absolute).
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn not_found(&self, key: &str, version: Option<&str>) -> StoreError {
        StoreError::NotFound {
            store: self.url(),
            key: key.to_string(),
            version: version.map(str::to_string),
        }
    }

    fn precondition_failed(&self, key: &str, detail: String) -> StoreError {
        StoreError::PreconditionFailed {
            store: self.url(),
            key: key.to_string(),
            detail,
        }
    }

    fn check_key(key: &str) -> Result<(), StoreError> {
        validate_key(key)?;
        if key.split('/').next() == Some(VERSIONS_DIR) {
            return Err(StoreError::InvalidKey {
                key: key.to_string(),
                reason: format!(
                    "'{VERSIONS_DIR}/' is reserved for the local store's version history"
                ),
            });
        }
        Ok(())
    }

    fn paths(&self, key: &str) -> KeyPaths {
        let hash = hex(&Md5::digest(key.as_bytes()));
        KeyPaths {
            visible: self.root.join(key),
            history: self
                .root
                .join(VERSIONS_DIR)
                .join("objects")
                .join(&hash[..2])
                .join(&hash),
        }
    }

    fn staging_dir(&self) -> Result<PathBuf, StoreError> {
        let dir = self.root.join(VERSIONS_DIR).join("tmp");
        fs::create_dir_all(&dir).map_err(|e| io_error(&dir, "cannot create directory", e))?;
        Ok(dir)
    }

    /// A temporary file in the staging directory, which is created only when missing: on some
    /// filesystems a `mkdir` that finds the directory costs as much as writing a small object.
    fn staged_file(&self) -> Result<NamedTempFile, StoreError> {
        let dir = self.root.join(VERSIONS_DIR).join("tmp");
        match staging_file(&dir) {
            Ok(file) => Ok(file),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let dir = self.staging_dir()?;
                staging_file(&dir).map_err(|e| io_error(&dir, "cannot create a temporary file", e))
            }
            Err(e) => Err(io_error(&dir, "cannot create a temporary file", e)),
        }
    }

    /// Orders of every record of a key, newest first.
    fn orders(&self, paths: &KeyPaths) -> Result<Vec<u64>, StoreError> {
        let entries = match fs::read_dir(&paths.history) {
            Ok(entries) => entries,
            Err(e) if is_absent(&e) => return Ok(Vec::new()),
            Err(e) => return Err(io_error(&paths.history, "cannot read directory", e)),
        };
        let mut orders = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| io_error(&paths.history, "cannot read directory", e))?;
            let name = entry.file_name();
            let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".json")) else {
                continue;
            };
            if let Some(order) = parse_order(stem) {
                orders.push(order);
            }
        }
        orders.sort_unstable_by(|a, b| b.cmp(a));
        Ok(orders)
    }

    /// Reads one record; `None` if it does not exist.
    fn read_record(
        &self,
        key: &str,
        paths: &KeyPaths,
        order: u64,
    ) -> Result<Option<Stored>, StoreError> {
        let path = paths.record(order);
        let text = match fs::read(&path) {
            Ok(text) => text,
            Err(e) if is_absent(&e) => return Ok(None),
            Err(e) => return Err(io_error(&path, "cannot read version record", e)),
        };
        let record: VersionRecord =
            serde_json::from_slice(&text).map_err(|e| StoreError::CorruptMetadata {
                path: path.clone(),
                detail: e.to_string(),
            })?;
        if record.key != key {
            return Err(StoreError::CorruptMetadata {
                path,
                detail: format!("it describes key '{}', expected '{key}'", record.key),
            });
        }
        Ok(Some(Stored { order, record }))
    }

    fn read_records(&self, key: &str, paths: &KeyPaths) -> Result<Vec<Stored>, StoreError> {
        let mut records = Vec::new();
        for order in self.orders(paths)? {
            if let Some(stored) = self.read_record(key, paths, order)? {
                records.push(stored);
            }
        }
        Ok(records)
    }

    /// The record written as exactly this visible file, newest first; `None` means the file was
    /// placed or edited by hand.
    fn record_for_visible(
        &self,
        key: &str,
        paths: &KeyPaths,
        stamp: &Stamp,
    ) -> Result<Option<Stored>, StoreError> {
        for order in self.orders(paths)? {
            if let Some(stored) = self.read_record(key, paths, order)?
                && stored.record.visible == *stamp
            {
                return Ok(Some(stored));
            }
        }
        Ok(None)
    }

    /// Metadata of the visible file with this stamp, and whether it was placed by hand.
    fn describe_visible(
        &self,
        key: &str,
        paths: &KeyPaths,
        stamp: &Stamp,
    ) -> Result<(ObjectMeta, Option<Stored>), StoreError> {
        let stored = self.record_for_visible(key, paths, stamp)?;
        let meta = match &stored {
            Some(stored) => meta_of(&stored.record),
            None => ObjectMeta {
                key: key.to_string(),
                version_id: NULL_VERSION.to_string(),
                etag: stamp.weak_etag(),
                size: stamp.size,
                last_modified: stamp.last_modified(),
            },
        };
        Ok((meta, stored))
    }

    /// Metadata of the visible file, or `None` if there is none (or a directory is there).
    fn stat_visible(&self, paths: &KeyPaths) -> Result<Option<Stamp>, StoreError> {
        match fs::metadata(&paths.visible) {
            Ok(m) if m.is_file() => Ok(Some(Stamp::of(&m))),
            Ok(_) => Ok(None),
            Err(e) if is_absent(&e) => Ok(None),
            Err(e) => Err(io_error(&paths.visible, "cannot read file metadata", e)),
        }
    }

    /// Finds the latest version (`None`) or a version by id. `visible` is the stamp of the
    /// visible file as the caller saw (or opened) it; metadata is derived from that stamp so it
    /// always describes the bytes the caller reads.
    fn resolve(
        &self,
        key: &str,
        paths: &KeyPaths,
        visible: Option<Stamp>,
        version: Option<&str>,
    ) -> Result<(ObjectMeta, Source), StoreError> {
        let current = match visible {
            Some(stamp) => Some((self.describe_visible(key, paths, &stamp)?, stamp)),
            None => None,
        };
        let hand_placed_current = matches!(current, Some(((_, None), _)));
        let Some(version) = version else {
            return match current {
                Some(((meta, _), _)) => Ok((meta, Source::Visible)),
                None => Err(self.not_found(key, None)),
            };
        };
        if let Some(((meta, _), _)) = &current
            && meta.version_id == version
        {
            return Ok((meta.clone(), Source::Visible));
        }
        let found = if version == NULL_VERSION {
            if hand_placed_current {
                None
            } else {
                self.read_records(key, paths)?
                    .into_iter()
                    .find(|s| s.record.version_id == NULL_VERSION)
            }
        } else {
            match parse_order(version) {
                Some(order) => self.read_record(key, paths, order)?,
                None => None,
            }
        };
        match found {
            Some(stored) => {
                let mut meta = meta_of(&stored.record);
                meta.version_id = display_id(&stored, hand_placed_current);
                if meta.version_id != version {
                    return Err(self.not_found(key, Some(version)));
                }
                Ok((meta, Source::History(paths.data(stored.order))))
            }
            None => Err(self.not_found(key, Some(version))),
        }
    }

    fn head_blocking(&self, key: &str, version: Option<&str>) -> Result<ObjectMeta, StoreError> {
        Self::check_key(key)?;
        let paths = self.paths(key);
        let visible = self.stat_visible(&paths)?;
        let (meta, _) = self.resolve(key, &paths, visible, version)?;
        tracing::debug!(store = %self.url(), key, version_id = %meta.version_id, "head");
        Ok(meta)
    }

    /// Opens the bytes of a version. For the visible file, it is opened *before* its metadata is
    /// derived, so a concurrent replacement cannot make the two disagree.
    fn open_blocking(
        &self,
        key: &str,
        version: Option<&str>,
    ) -> Result<(ObjectMeta, fs::File, PathBuf), StoreError> {
        Self::check_key(key)?;
        let paths = self.paths(key);
        let opened = match fs::File::open(&paths.visible) {
            Ok(file) => {
                let metadata = file
                    .metadata()
                    .map_err(|e| io_error(&paths.visible, "cannot read file metadata", e))?;
                metadata.is_file().then(|| (file, Stamp::of(&metadata)))
            }
            Err(e) if is_absent(&e) => None,
            Err(e) => return Err(io_error(&paths.visible, "cannot open", e)),
        };
        let stamp = opened.as_ref().map(|(_, stamp)| *stamp);
        let (meta, source) = self.resolve(key, &paths, stamp, version)?;
        match (source, opened) {
            (Source::Visible, Some((file, _))) => Ok((meta, file, paths.visible)),
            (Source::History(path), _) => match fs::File::open(&path) {
                Ok(file) => Ok((meta, file, path)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Err(StoreError::CorruptMetadata {
                    path,
                    detail: "the bytes of this version are missing from the history".into(),
                }),
                Err(e) => Err(io_error(&path, "cannot open", e)),
            },
            (Source::Visible, None) => Err(self.not_found(key, version)),
        }
    }

    fn list_versions_blocking(&self, key: &str) -> Result<Vec<ObjectMeta>, StoreError> {
        Self::check_key(key)?;
        let paths = self.paths(key);
        let mut versions = Vec::new();
        let mut hand_placed_current = false;
        if let Some(stamp) = self.stat_visible(&paths)? {
            let (meta, stored) = self.describe_visible(key, &paths, &stamp)?;
            if stored.is_none() {
                hand_placed_current = true;
                versions.push(meta);
            }
        }
        for stored in self.read_records(key, &paths)? {
            let mut meta = meta_of(&stored.record);
            meta.version_id = display_id(&stored, hand_placed_current);
            versions.push(meta);
        }
        Ok(versions)
    }

    fn list_blocking(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StoreError> {
        // Start the walk at the deepest directory the prefix names, when that is a safe path.
        let (mut start_dir, mut start_key) = (self.root.clone(), String::new());
        if let Some((dir_part, _)) = prefix.rsplit_once('/')
            && Self::check_key(dir_part).is_ok()
        {
            start_dir = self.root.join(dir_part);
            start_key = format!("{dir_part}/");
        }
        let mut found = Vec::new();
        let mut pending = vec![(start_dir, start_key)];
        while let Some((dir, key_prefix)) = pending.pop() {
            let entries = match fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(e) if is_absent(&e) => continue,
                Err(e) => return Err(io_error(&dir, "cannot list directory", e)),
            };
            for entry in entries {
                let entry = entry.map_err(|e| io_error(&dir, "cannot list directory", e))?;
                let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                    tracing::warn!(
                        path = %entry.path().display(),
                        "skipping a file whose name is not UTF-8"
                    );
                    continue;
                };
                if key_prefix.is_empty() && name == VERSIONS_DIR {
                    continue;
                }
                let key = format!("{key_prefix}{name}");
                let file_type = entry
                    .file_type()
                    .map_err(|e| io_error(&entry.path(), "cannot read file metadata", e))?;
                if file_type.is_dir() {
                    // Only descend where keys under this directory can match the prefix.
                    let as_dir = format!("{key}/");
                    if as_dir.starts_with(prefix) || prefix.starts_with(&as_dir) {
                        pending.push((entry.path(), as_dir));
                    }
                    continue;
                }
                if !key.starts_with(prefix) {
                    continue;
                }
                // Symlinks to files count as files; symlinks to directories are not followed.
                let metadata = match fs::metadata(entry.path()) {
                    Ok(m) if m.is_file() => m,
                    Ok(_) => continue,
                    Err(e) if is_absent(&e) => continue,
                    Err(e) => return Err(io_error(&entry.path(), "cannot read file metadata", e)),
                };
                if let Err(e) = Self::check_key(&key) {
                    tracing::warn!(
                        path = %entry.path().display(),
                        error = %e,
                        "skipping a file that cannot be an object key"
                    );
                    continue;
                }
                let paths = self.paths(&key);
                let (meta, _) = self.describe_visible(&key, &paths, &Stamp::of(&metadata))?;
                found.push(meta);
            }
        }
        found.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(found)
    }

    /// Refuses keys whose visible path cannot exist because another key's file is in the way.
    fn check_visible_path(&self, key: &str, paths: &KeyPaths) -> Result<(), StoreError> {
        let mut path = self.root.clone();
        let segments: Vec<&str> = key.split('/').collect();
        for (i, segment) in segments.iter().enumerate() {
            path.push(segment);
            let is_last = i + 1 == segments.len();
            match fs::metadata(&path) {
                Ok(m) if !is_last && !m.is_dir() => {
                    let blocking_key = segments[..=i].join("/");
                    return Err(io_error(
                        &path,
                        &format!(
                            "cannot store key '{key}': this is the file of key '{blocking_key}', \
                             and a local store cannot also use it as a folder; rename one of \
                             the two keys"
                        ),
                        io::Error::from(io::ErrorKind::NotADirectory),
                    ));
                }
                Ok(m) if is_last && m.is_dir() => {
                    return Err(io_error(
                        &paths.visible,
                        &format!(
                            "cannot store key '{key}': this is the folder of keys starting \
                             with '{key}/', and a local store cannot also use it as a file; \
                             rename one of them"
                        ),
                        io::Error::from(io::ErrorKind::IsADirectory),
                    ));
                }
                Ok(_) => {}
                Err(e) if is_absent(&e) => return Ok(()),
                Err(e) => return Err(io_error(&path, "cannot read file metadata", e)),
            }
        }
        Ok(())
    }

    /// Writes the content of `source` as a new version of `key`.
    fn put_blocking(
        &self,
        key: &str,
        source: Body<'_>,
        mode: &PutMode,
    ) -> Result<ObjectMeta, StoreError> {
        Self::check_key(key)?;
        let paths = self.paths(key);
        self.check_visible_path(key, &paths)?;
        // Stage both copies before taking the lock, so the lock is held only for renames.
        let staged = self.stage_copies(source)?;
        let lock = self.lock_key(&paths)?;
        let current = self.current_version(key, &paths)?;
        self.check_precondition(key, mode, current.as_ref())?;
        let mut last_order = self.orders(&paths)?.first().copied();
        if let Some(current) = current.filter(|c| c.hand_placed) {
            last_order = Some(self.preserve_hand_placed(
                key,
                &paths,
                &current.meta,
                &current.stamp,
                last_order,
            )?);
        }
        let record = self.commit_version(key, &paths, staged, next_order(last_order))?;
        drop(lock);
        tracing::debug!(store = %self.url(), key, version_id = %record.version_id, size = record.size, "put");
        Ok(meta_of(&record))
    }

    /// Writes the body twice to the staging area (the history copy and the new visible file),
    /// flushed, with its size and ETag ([`content_etag`]).
    fn stage_copies(&self, source: Body<'_>) -> Result<StagedCopies, StoreError> {
        let mut history = self.staged_file()?;
        let mut visible = self.staged_file()?;
        let (size, etag) = match source {
            Body::Bytes(bytes) => {
                // Both copies straight from memory; a large body's visible copy is written and
                // flushed, and its ETag computed, on a second core meanwhile (the copy into
                // fresh page-cache pages is most of a large put's time).
                let write_copy = |file: &mut NamedTempFile| {
                    file.as_file_mut()
                        .write_all(bytes)
                        .map_err(|e| io_error(file.path(), "cannot write", e))?;
                    self.sync(file)
                };
                let etag = std::thread::scope(|scope| {
                    if bytes.len() < PARALLEL_COPY_BYTES {
                        write_copy(&mut history)?;
                        write_copy(&mut visible)?;
                        return Ok(content_etag(bytes));
                    }
                    let second = scope.spawn(|| {
                        write_copy(&mut visible)?;
                        Ok::<_, StoreError>(content_etag(bytes))
                    });
                    write_copy(&mut history)?;
                    second
                        .join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                })?;
                (bytes.len() as u64, etag)
            }
            Body::Reader(source) => {
                let hashed = copy_hashing(source, history.as_file_mut())
                    .map_err(|e| io_error(history.path(), "cannot write", e))?;
                let mut staged = fs::File::open(history.path())
                    .map_err(|e| io_error(history.path(), "cannot read back", e))?;
                io::copy(&mut staged, visible.as_file_mut())
                    .map_err(|e| io_error(visible.path(), "cannot write", e))?;
                self.sync(&history)?;
                self.sync(&visible)?;
                hashed
            }
        };
        let visible_stamp = visible
            .as_file()
            .metadata()
            .map(|m| Stamp::of(&m))
            .map_err(|e| io_error(visible.path(), "cannot read file metadata", e))?;
        Ok(StagedCopies {
            history,
            visible,
            visible_stamp,
            size,
            etag,
        })
    }

    /// Takes the key's lock (held until the returned file is dropped), creating the key's
    /// history directory on its first put.
    fn lock_key(&self, paths: &KeyPaths) -> Result<fs::File, StoreError> {
        let lock_path = paths.lock();
        let open_lock = || {
            fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&lock_path)
        };
        // The key's history directory exists after its first put; create it only then.
        let lock = match open_lock() {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::create_dir_all(&paths.history)
                    .map_err(|e| io_error(&paths.history, "cannot create directory", e))?;
                open_lock()
            }
            other => other,
        }
        .map_err(|e| io_error(&lock_path, "cannot open lock file", e))?;
        lock.lock()
            .map_err(|e| io_error(&lock_path, "cannot lock", e))?;
        Ok(lock)
    }

    /// What the visible file of `key` is now, if there is one.
    fn current_version(
        &self,
        key: &str,
        paths: &KeyPaths,
    ) -> Result<Option<CurrentVersion>, StoreError> {
        let Some(stamp) = self.stat_visible(paths)? else {
            return Ok(None);
        };
        let (meta, stored) = self.describe_visible(key, paths, &stamp)?;
        Ok(Some(CurrentVersion {
            meta,
            hand_placed: stored.is_none(),
            stamp,
        }))
    }

    /// Refuses the put when `mode`'s condition does not hold for the current version.
    fn check_precondition(
        &self,
        key: &str,
        mode: &PutMode,
        current: Option<&CurrentVersion>,
    ) -> Result<(), StoreError> {
        match (mode, current) {
            (PutMode::CreateOnly, Some(CurrentVersion { meta, .. })) => Err(self
                .precondition_failed(
                    key,
                    format!(
                        "an object already exists (version '{}', etag '{}')",
                        meta.version_id, meta.etag
                    ),
                )),
            (PutMode::ReplaceIfMatch(_), None) => {
                Err(self.precondition_failed(key, "no object exists to replace".to_string()))
            }
            (PutMode::ReplaceIfMatch(expected), Some(CurrentVersion { meta, .. }))
                if meta.etag != normalize_etag(expected) =>
            {
                Err(self.precondition_failed(
                    key,
                    format!(
                        "the current etag is '{}', not '{}'",
                        meta.etag,
                        normalize_etag(expected)
                    ),
                ))
            }
            _ => Ok(()),
        }
    }

    /// Moves the staged copies into place as version `order`: the history copy, then its
    /// record, then the visible file, undoing the first two if a later one fails.
    fn commit_version(
        &self,
        key: &str,
        paths: &KeyPaths,
        staged: StagedCopies,
        order: u64,
    ) -> Result<VersionRecord, StoreError> {
        let record = VersionRecord {
            key: key.to_string(),
            version_id: format!("{order:0ORDER_DIGITS$}"),
            etag: staged.etag,
            size: staged.size,
            last_modified: Utc::now(),
            visible: staged.visible_stamp,
        };
        let data_path = paths.data(order);
        staged
            .history
            .persist(&data_path)
            .map_err(|e| io_error(&data_path, "cannot store version", e.error))?;
        // The record goes in before the visible file changes: a reader that sees the new file is
        // then guaranteed to find the record describing it.
        let staging = self.root.join(VERSIONS_DIR).join("tmp");
        let record_path = paths.record(order);
        if let Err(e) = self.write_record(&staging, &record_path, &record) {
            let _ = fs::remove_file(&data_path);
            return Err(e);
        }
        let persisted = match staged.visible.persist(&paths.visible) {
            // The key's folder does not exist yet: make it and try again.
            Err(e) if e.error.kind() == io::ErrorKind::NotFound => {
                match paths.visible.parent().map(fs::create_dir_all) {
                    Some(Err(error)) => Err(tempfile::PersistError {
                        error,
                        file: e.file,
                    }),
                    _ => e.file.persist(&paths.visible),
                }
            }
            other => other,
        };
        if let Err(e) = persisted {
            let _ = fs::remove_file(&record_path);
            let _ = fs::remove_file(&data_path);
            return Err(io_error(&paths.visible, "cannot write", e.error));
        }
        Ok(record)
    }

    /// Copies a hand-placed visible file into history as the null version (renaming any older
    /// null version to its order, so it stays reachable). Returns the order it was stored under.
    fn preserve_hand_placed(
        &self,
        key: &str,
        paths: &KeyPaths,
        meta: &ObjectMeta,
        stamp: &Stamp,
        last_order: Option<u64>,
    ) -> Result<u64, StoreError> {
        let staging = self.staging_dir()?;
        for mut stored in self.read_records(key, paths)? {
            if stored.record.version_id == NULL_VERSION {
                stored.record.version_id = format!("{:0ORDER_DIGITS$}", stored.order);
                self.write_record(&staging, &paths.record(stored.order), &stored.record)?;
            }
        }
        let order = next_order(last_order);
        let mut copy = staging_file(&staging)
            .map_err(|e| io_error(&staging, "cannot create a temporary file", e))?;
        let mut original = fs::File::open(&paths.visible).map_err(|e| {
            io_error(
                &paths.visible,
                "cannot read hand-placed file to preserve it",
                e,
            )
        })?;
        io::copy(&mut original, copy.as_file_mut())
            .map_err(|e| io_error(&paths.visible, "cannot preserve hand-placed file", e))?;
        self.sync(&copy)?;
        let data_path = paths.data(order);
        copy.persist(&data_path)
            .map_err(|e| io_error(&data_path, "cannot preserve hand-placed file", e.error))?;
        let record = VersionRecord {
            key: key.to_string(),
            version_id: NULL_VERSION.to_string(),
            etag: meta.etag.clone(),
            size: meta.size,
            last_modified: meta.last_modified,
            visible: *stamp,
        };
        self.write_record(&staging, &paths.record(order), &record)?;
        tracing::debug!(store = %self.url(), key, "preserved hand-placed file as the null version");
        Ok(order)
    }

    fn write_record(
        &self,
        staging: &Path,
        path: &Path,
        record: &VersionRecord,
    ) -> Result<(), StoreError> {
        let mut tmp = staging_file(staging)
            .map_err(|e| io_error(staging, "cannot create a temporary file", e))?;
        let json = serde_json::to_vec_pretty(record).map_err(|e| StoreError::CorruptMetadata {
            path: path.to_path_buf(),
            detail: format!("cannot encode version record: {e}"),
        })?;
        tmp.write_all(&json)
            .map_err(|e| io_error(tmp.path(), "cannot write", e))?;
        self.sync(&tmp)?;
        tmp.persist(path)
            .map_err(|e| io_error(path, "cannot write version record", e.error))?;
        Ok(())
    }

    fn copy_blocking(
        &self,
        src_key: &str,
        src_version: Option<&str>,
        dst_key: &str,
    ) -> Result<ObjectMeta, StoreError> {
        Self::check_key(dst_key)?;
        let (src_meta, mut file, _) = self.open_blocking(src_key, src_version)?;
        let meta = self.put_blocking(dst_key, Body::Reader(&mut file), &PutMode::Overwrite)?;
        tracing::debug!(
            store = %self.url(),
            src_key,
            src_version = %src_meta.version_id,
            dst_key,
            "copy"
        );
        Ok(meta)
    }
}

/// Runs blocking filesystem work off the async runtime's worker threads.
async fn blocking<T: Send + 'static>(
    root: &Path,
    work: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(work).await.unwrap_or_else(|e| {
        Err(io_error(
            root,
            "local store task failed",
            io::Error::other(e),
        ))
    })
}

#[async_trait]
impl ObjectStore for LocalStore {
    fn url(&self) -> String {
        let root = fs::canonicalize(&self.root).unwrap_or_else(|_| self.root.clone());
        format!("file://{}", root.display())
    }

    async fn put(&self, key: &str, body: Bytes, mode: PutMode) -> Result<ObjectMeta, StoreError> {
        let (store, key) = (self.clone(), key.to_string());
        blocking(&self.root, move || {
            store.put_blocking(&key, Body::Bytes(&body), &mode)
        })
        .await
    }

    async fn get(
        &self,
        key: &str,
        version_id: Option<&str>,
    ) -> Result<(ObjectMeta, Bytes), StoreError> {
        let (store, key, version) = (
            self.clone(),
            key.to_string(),
            version_id.map(str::to_string),
        );
        blocking(&self.root, move || {
            let (meta, mut file, path) = store.open_blocking(&key, version.as_deref())?;
            let mut body = Vec::with_capacity(usize::try_from(meta.size).unwrap_or(0));
            file.read_to_end(&mut body)
                .map_err(|e| io_error(&path, "cannot read", e))?;
            tracing::debug!(store = %store.url(), key, version_id = %meta.version_id, "get");
            Ok((meta, Bytes::from(body)))
        })
        .await
    }

    async fn get_reader(
        &self,
        key: &str,
        version_id: Option<&str>,
    ) -> Result<(ObjectMeta, ByteReader), StoreError> {
        let (store, key, version) = (
            self.clone(),
            key.to_string(),
            version_id.map(str::to_string),
        );
        let (meta, file) = blocking(&self.root, move || {
            let (meta, file, _) = store.open_blocking(&key, version.as_deref())?;
            tracing::debug!(store = %store.url(), key, version_id = %meta.version_id, "get_reader");
            Ok((meta, file))
        })
        .await?;
        let reader: ByteReader = Box::pin(tokio::fs::File::from_std(file));
        Ok((meta, reader))
    }

    async fn head(&self, key: &str, version_id: Option<&str>) -> Result<ObjectMeta, StoreError> {
        let (store, key, version) = (
            self.clone(),
            key.to_string(),
            version_id.map(str::to_string),
        );
        blocking(&self.root, move || {
            store.head_blocking(&key, version.as_deref())
        })
        .await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StoreError> {
        let (store, prefix) = (self.clone(), prefix.to_string());
        blocking(&self.root, move || {
            let found = store.list_blocking(&prefix)?;
            tracing::debug!(store = %store.url(), prefix, count = found.len(), "list");
            Ok(found)
        })
        .await
    }

    async fn list_versions(&self, key: &str) -> Result<Vec<ObjectMeta>, StoreError> {
        let (store, key) = (self.clone(), key.to_string());
        blocking(&self.root, move || {
            let versions = store.list_versions_blocking(&key)?;
            tracing::debug!(store = %store.url(), key, count = versions.len(), "list_versions");
            Ok(versions)
        })
        .await
    }

    async fn copy(
        &self,
        src_key: &str,
        src_version: Option<&str>,
        dst_key: &str,
    ) -> Result<ObjectMeta, StoreError> {
        let store = self.clone();
        let (src_key, src_version, dst_key) = (
            src_key.to_string(),
            src_version.map(str::to_string),
            dst_key.to_string(),
        );
        blocking(&self.root, move || {
            store.copy_blocking(&src_key, src_version.as_deref(), &dst_key)
        })
        .await
    }
}

fn meta_of(record: &VersionRecord) -> ObjectMeta {
    ObjectMeta {
        key: record.key.clone(),
        version_id: record.version_id.clone(),
        etag: record.etag.clone(),
        size: record.size,
        last_modified: record.last_modified,
    }
}

/// The id a history record is shown under: while a newer hand-placed file is current, *it* is
/// the null version, and an older preserved null version is shown under its order (the id it
/// gets for good when the store next writes this key).
fn display_id(stored: &Stored, hand_placed_current: bool) -> String {
    if hand_placed_current && stored.record.version_id == NULL_VERSION {
        format!("{:0ORDER_DIGITS$}", stored.order)
    } else {
        stored.record.version_id.clone()
    }
}

/// A fresh order after `last`: the current time in nanoseconds, bumped if the clock has not
/// moved past the newest existing version (same tick, or a clock set back).
fn next_order(last: Option<u64>) -> u64 {
    let now = nanos_since_epoch(SystemTime::now());
    match last {
        Some(last) if now <= last => last.saturating_add(1),
        _ => now,
    }
}

fn parse_order(text: &str) -> Option<u64> {
    if text.len() == ORDER_DIGITS && text.bytes().all(|b| b.is_ascii_digit()) {
        text.parse().ok()
    } else {
        None
    }
}

/// S3 returns ETags in quotes; ours are stored without them.
fn normalize_etag(etag: &str) -> &str {
    let etag = etag.trim();
    etag.strip_prefix('"')
        .and_then(|e| e.strip_suffix('"'))
        .unwrap_or(etag)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The ETag of content written through the store: its XXH3-128, in hex. Like an S3 ETag (an
/// MD5 only for single-part uploads) it is opaque, only ever compared; MD5 made each large put
/// CPU-bound at a tenth of XXH3's speed.
fn content_etag(bytes: &[u8]) -> String {
    etag_of_hash(XxHash3_128::oneshot(bytes))
}

fn etag_of_hash(hash: u128) -> String {
    format!("{hash:032x}")
}

/// Copies everything from `source` to `dest`; returns the size and the [`content_etag`].
fn copy_hashing(source: &mut dyn Read, dest: &mut fs::File) -> io::Result<(u64, String)> {
    let mut hasher = XxHash3_128::new();
    let mut buffer = vec![0u8; 256 * 1024];
    let mut size = 0u64;
    loop {
        let n = match source.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.write(&buffer[..n]);
        dest.write_all(&buffer[..n])?;
        size += n as u64;
    }
    Ok((size, etag_of_hash(hasher.finish_128())))
}

/// A temporary file in the staging directory, with the permissions an ordinary new file gets
/// (0666 less the umask) rather than tempfile's private 0600: it becomes a visible file people
/// browse.
fn staging_file(dir: &Path) -> io::Result<NamedTempFile> {
    let mut builder = tempfile::Builder::new();
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
    builder.tempfile_in(dir)
}

fn sync(file: &NamedTempFile) -> Result<(), StoreError> {
    file.as_file()
        .sync_all()
        .map_err(|e| io_error(file.path(), "cannot flush to disk", e))
}

fn is_absent(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
    )
}

/// An I/O error naming the path, what was being done, and a hint for the common causes.
fn io_error(path: &Path, action: &str, source: io::Error) -> StoreError {
    let hint = match source.kind() {
        io::ErrorKind::PermissionDenied => {
            " (check that this user may read and write the store directory)"
        }
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => {
            " (free some disk space or move the store)"
        }
        io::ErrorKind::ReadOnlyFilesystem => {
            " (the store directory must be on a writable filesystem)"
        }
        _ => "",
    };
    StoreError::Io {
        path: path.to_path_buf(),
        source: io::Error::new(source.kind(), format!("{action}{hint}: {source}")),
    }
}

/// `path` made absolute against the current directory, with `.` and `..` resolved textually
/// (the directory may not exist yet, so it cannot be canonicalised).
fn absolute_lexically(path: &Path) -> PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut normal = PathBuf::new();
    for component in absolute.components() {
        match component {
            Component::ParentDir => {
                normal.pop();
            }
            Component::CurDir => {}
            other => normal.push(other),
        }
    }
    normal
}
