//! The contract every [`ObjectStore`] keeps, written once and run against every implementation:
//! `local::<check>` on a `LocalStore` in a temporary directory, `memory::<check>` on the
//! in-memory scratch store, and `s3::<check>` on an
//! `S3Store` over a fresh bucket on the S3 test server (skipped locally without one, see
//! `shared::testing`). Behaviour only the local store has (hand-placed files, cross-thread
//! locking, the reserved history directory) is tested in `local_only`.

use std::time::Duration;

use bytes::Bytes;
use shared::store::{NULL_VERSION, ObjectMeta, ObjectStore, PutMode, StoreError};
use tokio::io::AsyncReadExt;

macro_rules! contract_tests {
    ($($check:ident),* $(,)?) => {
        mod local {
            $(
                #[tokio::test]
                async fn $check() {
                    let dir = tempfile::tempdir().unwrap();
                    let store = shared::store::local::LocalStore::new(dir.path().join("store"));
                    super::$check(&store).await;
                }
            )*
        }
        mod memory {
            $(
                #[tokio::test]
                async fn $check() {
                    let store = shared::store::memory::MemoryStore::new("contract");
                    super::$check(&store).await;
                }
            )*
        }
        mod s3 {
            $(
                #[tokio::test]
                async fn $check() {
                    let test_name = concat!("s3::", stringify!($check));
                    let Some(bucket) = shared::testing::s3_test_bucket(test_name).await else {
                        return;
                    };
                    super::$check(&bucket.store()).await;
                }
            )*
        }
    };
}

contract_tests!(
    two_puts_make_two_readable_versions,
    list_versions_is_newest_first,
    create_only_refuses_an_existing_key,
    replace_if_match_needs_the_current_etag,
    missing_keys_and_versions_are_not_found,
    head_matches_put,
    list_filters_by_prefix_and_sorts,
    copy_makes_a_new_version_with_the_same_content,
    keys_with_spaces_and_unicode_round_trip,
    get_reader_streams_a_large_object,
    invalid_keys_are_refused,
);

fn body(text: &str) -> Bytes {
    Bytes::from(text.to_string())
}

async fn put(store: &dyn ObjectStore, key: &str, text: &str) -> ObjectMeta {
    store
        .put(key, body(text), PutMode::Overwrite)
        .await
        .unwrap()
}

async fn read(store: &dyn ObjectStore, key: &str, version: Option<&str>) -> String {
    let (_, bytes) = store.get(key, version).await.unwrap();
    String::from_utf8(bytes.to_vec()).unwrap()
}

fn assert_not_found(result: Result<impl std::fmt::Debug, StoreError>, what: &str) {
    match result {
        Err(StoreError::NotFound { .. }) => {}
        other => panic!("{what}: expected NotFound, got {other:?}"),
    }
}

fn assert_refused(result: Result<ObjectMeta, StoreError>, what: &str) {
    match result {
        Err(StoreError::PreconditionFailed { .. }) => {}
        other => panic!("{what}: expected PreconditionFailed, got {other:?}"),
    }
}

async fn two_puts_make_two_readable_versions(store: &dyn ObjectStore) {
    let first = put(store, "models/model.json", "first").await;
    let second = put(store, "models/model.json", "second, longer").await;
    assert_ne!(first.version_id, second.version_id);
    assert_ne!(first.etag, second.etag);
    assert_eq!(second.size, 14);
    assert_eq!(
        read(store, "models/model.json", Some(&first.version_id)).await,
        "first"
    );
    assert_eq!(
        read(store, "models/model.json", Some(&second.version_id)).await,
        "second, longer"
    );
    assert_eq!(
        read(store, "models/model.json", None).await,
        "second, longer"
    );
    let (meta, _) = store.get("models/model.json", None).await.unwrap();
    assert_eq!(meta.version_id, second.version_id);
}

async fn list_versions_is_newest_first(store: &dyn ObjectStore) {
    let mut written = Vec::new();
    for i in 0..4 {
        written.push(put(store, "scores/f1.txt", &format!("score {i}")).await);
    }
    put(store, "scores/f1.txt.bak", "another key sharing the prefix").await;
    put(store, "scores/f1", "a key that is a prefix of it").await;
    let versions = store.list_versions("scores/f1.txt").await.unwrap();
    let ids: Vec<_> = versions.iter().map(|v| v.version_id.clone()).collect();
    let expected: Vec<_> = written.iter().rev().map(|v| v.version_id.clone()).collect();
    assert_eq!(ids, expected);
    assert!(versions.iter().all(|v| v.key == "scores/f1.txt"));
    assert_eq!(versions[0].etag, written[3].etag);
    assert_eq!(versions[3].size, written[0].size);
    assert!(
        store
            .list_versions("scores/never")
            .await
            .unwrap()
            .is_empty()
    );
}

async fn create_only_refuses_an_existing_key(store: &dyn ObjectStore) {
    let created = store
        .put("ingested/record.json", body("v1"), PutMode::CreateOnly)
        .await
        .unwrap();
    assert_refused(
        store
            .put("ingested/record.json", body("v2"), PutMode::CreateOnly)
            .await,
        "second create-only put",
    );
    let (meta, bytes) = store.get("ingested/record.json", None).await.unwrap();
    assert_eq!(bytes, body("v1"));
    assert_eq!(meta.version_id, created.version_id);
    assert_eq!(
        store
            .list_versions("ingested/record.json")
            .await
            .unwrap()
            .len(),
        1
    );
}

async fn replace_if_match_needs_the_current_etag(store: &dyn ObjectStore) {
    let first = put(store, "deploy/current.json", "one").await;
    let second = put(store, "deploy/current.json", "two").await;
    assert_refused(
        store
            .put(
                "deploy/current.json",
                body("three"),
                PutMode::ReplaceIfMatch(first.etag.clone()),
            )
            .await,
        "replace with a stale etag",
    );
    assert_eq!(read(store, "deploy/current.json", None).await, "two");
    let third = store
        .put(
            "deploy/current.json",
            body("three"),
            PutMode::ReplaceIfMatch(second.etag.clone()),
        )
        .await
        .unwrap();
    assert_eq!(read(store, "deploy/current.json", None).await, "three");
    // A quoted ETag, as S3 prints it, means the same.
    store
        .put(
            "deploy/current.json",
            body("four"),
            PutMode::ReplaceIfMatch(format!("\"{}\"", third.etag)),
        )
        .await
        .unwrap();
    assert_refused(
        store
            .put(
                "deploy/absent.json",
                body("x"),
                PutMode::ReplaceIfMatch(first.etag),
            )
            .await,
        "replace of a key that does not exist",
    );
}

async fn missing_keys_and_versions_are_not_found(store: &dyn ObjectStore) {
    assert_not_found(store.get("nothing/here.csv", None).await, "get missing key");
    assert_not_found(
        store.head("nothing/here.csv", None).await,
        "head missing key",
    );
    assert_not_found(
        store
            .get_reader("nothing/here.csv", None)
            .await
            .map(|(m, _)| m),
        "get_reader missing key",
    );
    assert_not_found(
        store
            .copy("nothing/here.csv", None, "copy/target.csv")
            .await,
        "copy from a missing key",
    );
    put(store, "present.csv", "a,b\n1,2\n").await;
    for version in ["00000000000000000001", "no-such-version", NULL_VERSION] {
        assert_not_found(
            store.get("present.csv", Some(version)).await,
            &format!("get missing version {version}"),
        );
        assert_not_found(
            store.head("present.csv", Some(version)).await,
            &format!("head missing version {version}"),
        );
    }
}

async fn head_matches_put(store: &dyn ObjectStore) {
    let before = chrono::Utc::now();
    let written = put(store, "data/compiled.csv", "corporation,exited\nabc,1\n").await;
    let head = store.head("data/compiled.csv", None).await.unwrap();
    assert_eq!(head.key, written.key);
    assert_eq!(head.version_id, written.version_id);
    assert_eq!(head.etag, written.etag);
    assert_eq!(head.size, written.size);
    assert_eq!(head.size, 25);
    // S3 reports whole seconds, and put's time is the client's clock there.
    let slack = chrono::Duration::seconds(5);
    assert!((head.last_modified - written.last_modified).abs() < slack);
    assert!(head.last_modified > before - slack);
    let by_version = store
        .head("data/compiled.csv", Some(&written.version_id))
        .await
        .unwrap();
    assert_eq!(by_version.etag, written.etag);
    assert_eq!(by_version.version_id, written.version_id);
    let (got, _) = store.get("data/compiled.csv", None).await.unwrap();
    assert_eq!(
        (got.version_id, got.etag, got.size),
        (head.version_id, head.etag, head.size)
    );
}

async fn list_filters_by_prefix_and_sorts(store: &dyn ObjectStore) {
    for key in [
        "data/sub/c/d.csv",
        "data/b.csv",
        "database.csv",
        "data/sub/a.csv",
        "models/m.json",
        "data/a.csv",
    ] {
        put(store, key, key).await;
    }
    let latest = put(store, "data/a.csv", "rewritten").await;
    let keys = |metas: Vec<ObjectMeta>| metas.into_iter().map(|m| m.key).collect::<Vec<_>>();
    assert_eq!(
        keys(store.list("data/").await.unwrap()),
        [
            "data/a.csv",
            "data/b.csv",
            "data/sub/a.csv",
            "data/sub/c/d.csv"
        ]
    );
    assert_eq!(
        keys(store.list("data").await.unwrap()),
        [
            "data/a.csv",
            "data/b.csv",
            "data/sub/a.csv",
            "data/sub/c/d.csv",
            "database.csv"
        ]
    );
    assert_eq!(
        keys(store.list("data/su").await.unwrap()),
        ["data/sub/a.csv", "data/sub/c/d.csv"]
    );
    assert_eq!(
        keys(store.list("data/sub/c/d.csv").await.unwrap()),
        ["data/sub/c/d.csv"]
    );
    assert_eq!(store.list("").await.unwrap().len(), 6);
    assert!(store.list("nothing/").await.unwrap().is_empty());
    let listed = store.list("data/a").await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].version_id, latest.version_id);
    assert_eq!(listed[0].etag, latest.etag);
    assert_eq!(listed[0].size, 9);
}

async fn copy_makes_a_new_version_with_the_same_content(store: &dyn ObjectStore) {
    let old = put(store, "models/trained.json", "old model").await;
    let new = put(store, "models/trained.json", "new model").await;
    let deployed = store
        .copy("models/trained.json", None, "production/model.json")
        .await
        .unwrap();
    assert_eq!(deployed.key, "production/model.json");
    assert_eq!(deployed.size, new.size);
    assert_eq!(deployed.etag, new.etag);
    assert_eq!(
        read(store, "production/model.json", None).await,
        "new model"
    );

    let rolled_back = store
        .copy(
            "models/trained.json",
            Some(&old.version_id),
            "production/model.json",
        )
        .await
        .unwrap();
    assert_ne!(rolled_back.version_id, deployed.version_id);
    assert_eq!(rolled_back.etag, old.etag);
    assert_eq!(
        read(store, "production/model.json", None).await,
        "old model"
    );
    let head = store.head("production/model.json", None).await.unwrap();
    assert_eq!(head.version_id, rolled_back.version_id);
    assert_eq!(head.size, old.size);
    let versions = store.list_versions("production/model.json").await.unwrap();
    assert_eq!(versions.len(), 2);
    assert_eq!(versions[0].version_id, rolled_back.version_id);
    assert_eq!(
        read(store, "production/model.json", Some(&deployed.version_id)).await,
        "new model"
    );
    // Copying a version onto its own key makes it current again.
    let restored = store
        .copy(
            "models/trained.json",
            Some(&old.version_id),
            "models/trained.json",
        )
        .await
        .unwrap();
    assert_eq!(read(store, "models/trained.json", None).await, "old model");
    assert_eq!(
        store.list_versions("models/trained.json").await.unwrap()[0].version_id,
        restored.version_id
    );
    assert_not_found(
        store
            .copy("models/trained.json", Some("no-such-version"), "x.json")
            .await,
        "copy of a missing version",
    );
}

async fn keys_with_spaces_and_unicode_round_trip(store: &dyn ObjectStore) {
    let keys = [
        "source data/été 2024/résumé (final) +1.csv",
        "日本/データ セット.csv",
        "odd/%20 & = ? # ~ ' ; ,.csv",
    ];
    for key in keys {
        let written = put(store, key, key).await;
        assert_eq!(read(store, key, None).await, key);
        assert_eq!(store.head(key, None).await.unwrap().etag, written.etag);
        let versions = store.list_versions(key).await.unwrap();
        assert_eq!(versions.len(), 1, "{key}");
        assert_eq!(versions[0].version_id, written.version_id);
        let copied = format!("copies/{key}");
        store
            .copy(key, Some(&written.version_id), &copied)
            .await
            .unwrap();
        assert_eq!(read(store, &copied, None).await, key);
    }
    let listed: Vec<_> = store
        .list("source data/")
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.key)
        .collect();
    assert_eq!(listed, [keys[0]]);
    assert_eq!(store.list("日本/").await.unwrap()[0].key, keys[1]);
}

async fn get_reader_streams_a_large_object(store: &dyn ObjectStore) {
    let size = 5 * 1024 * 1024 + 123;
    let content: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
    let written = store
        .put(
            "data/large.bin",
            Bytes::from(content.clone()),
            PutMode::Overwrite,
        )
        .await
        .unwrap();
    assert_eq!(written.size, size as u64);
    let (meta, mut reader) = store.get_reader("data/large.bin", None).await.unwrap();
    assert_eq!(meta.size, size as u64);
    assert_eq!(meta.version_id, written.version_id);
    let mut received = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let mut reads = 0;
    loop {
        let n = tokio::time::timeout(Duration::from_secs(30), reader.read(&mut chunk))
            .await
            .unwrap()
            .unwrap();
        if n == 0 {
            break;
        }
        reads += 1;
        received.extend_from_slice(&chunk[..n]);
    }
    assert!(reads > 1, "a streaming read comes in several pieces");
    assert_eq!(received.len(), content.len());
    assert!(received == content, "streamed content differs");
    // Once replaced, the version is read back from history, byte for byte.
    let replaced = store
        .put(
            "data/large.bin",
            Bytes::from_static(b"replaced"),
            PutMode::Overwrite,
        )
        .await
        .unwrap();
    assert_ne!(replaced.etag, written.etag);
    let (_, kept) = store
        .get("data/large.bin", Some(&written.version_id))
        .await
        .unwrap();
    assert!(kept == content, "the replaced version's content differs");
}

async fn invalid_keys_are_refused(store: &dyn ObjectStore) {
    for key in ["../x", "/abs", "a//b", "", "a/./b", "a/", "a\\b"] {
        let invalid = |r: Result<ObjectMeta, StoreError>, op: &str| match r {
            Err(StoreError::InvalidKey { .. }) => {}
            other => panic!("{op} of key {key:?}: expected InvalidKey, got {other:?}"),
        };
        invalid(store.put(key, body("x"), PutMode::Overwrite).await, "put");
        invalid(store.get(key, None).await.map(|(m, _)| m), "get");
        invalid(store.head(key, None).await, "head");
        invalid(store.copy("fine.csv", None, key).await, "copy to");
        assert!(matches!(
            store.list_versions(key).await,
            Err(StoreError::InvalidKey { .. })
        ));
    }
}

mod local_only {
    use std::collections::HashSet;
    use std::sync::Arc;

    use super::*;
    use shared::store::local::LocalStore;

    /// The process umask as the last file created shows it (0o022 on most systems).
    #[cfg(unix)]
    fn umask() -> u32 {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let probe = dir.path().join("probe");
        std::fs::write(&probe, "").unwrap();
        0o666 & !std::fs::metadata(&probe).unwrap().permissions().mode()
    }

    fn new_store() -> (tempfile::TempDir, LocalStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path().join("store"));
        (dir, store)
    }

    #[tokio::test]
    async fn a_hand_placed_file_is_the_null_version_and_survives_an_overwrite() {
        let (_dir, store) = new_store();
        let path = store.root().join("sourcedata/dataset3.csv");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, "placed by hand").unwrap();

        let listed = store.list("sourcedata/").await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].key, "sourcedata/dataset3.csv");
        assert_eq!(listed[0].version_id, NULL_VERSION);
        assert!(listed[0].etag.starts_with("W/14-"), "{}", listed[0].etag);
        assert_eq!(
            store.head("sourcedata/dataset3.csv", None).await.unwrap(),
            listed[0]
        );
        let versions = store
            .list_versions("sourcedata/dataset3.csv")
            .await
            .unwrap();
        assert_eq!(versions, listed);
        assert_eq!(
            read(&store, "sourcedata/dataset3.csv", Some(NULL_VERSION)).await,
            "placed by hand"
        );

        let written = put(&store, "sourcedata/dataset3.csv", "written by the store").await;
        assert_ne!(written.version_id, NULL_VERSION);
        assert_eq!(
            written.etag.len(),
            32,
            "a content hash (XXH3-128) in hex, not a weak ETag"
        );
        let versions = store
            .list_versions("sourcedata/dataset3.csv")
            .await
            .unwrap();
        let ids: Vec<_> = versions.iter().map(|v| v.version_id.as_str()).collect();
        assert_eq!(ids, [written.version_id.as_str(), NULL_VERSION]);
        assert_eq!(versions[1].etag, listed[0].etag);
        assert_eq!(
            read(&store, "sourcedata/dataset3.csv", Some(NULL_VERSION)).await,
            "placed by hand"
        );
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "written by the store"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(
                mode & 0o044,
                0o044 & !umask(),
                "written files are not private"
            );
        }
    }

    #[tokio::test]
    async fn hand_edits_of_store_written_files_are_never_lost() {
        let (_dir, store) = new_store();
        let key = "models/score.txt";
        let path = store.root().join(key);
        let first = put(&store, key, "0.5").await;
        // Editing in place must not change the history copy.
        std::fs::write(&path, "0.99 (edited)").unwrap();
        assert_eq!(read(&store, key, Some(&first.version_id)).await, "0.5");
        let edited = store.head(key, None).await.unwrap();
        assert_eq!(edited.version_id, NULL_VERSION);
        assert!(edited.etag.starts_with("W/"));
        // The weak ETag works for replace-if-match.
        let second = store
            .put(
                key,
                body("0.6"),
                PutMode::ReplaceIfMatch(edited.etag.clone()),
            )
            .await
            .unwrap();
        std::fs::write(&path, "0.77 (edited again)").unwrap();
        let third = put(&store, key, "0.7").await;

        let versions = store.list_versions(key).await.unwrap();
        assert_eq!(versions.len(), 5, "{versions:#?}");
        assert_eq!(versions[0].version_id, third.version_id);
        assert_eq!(versions[1].version_id, NULL_VERSION);
        assert_eq!(versions[2].version_id, second.version_id);
        assert_eq!(versions[4].version_id, first.version_id);
        let mut contents = Vec::new();
        for version in &versions {
            contents.push(read(&store, key, Some(&version.version_id)).await);
        }
        assert_eq!(
            contents,
            ["0.7", "0.77 (edited again)", "0.6", "0.99 (edited)", "0.5"]
        );
        let ids: HashSet<_> = versions.iter().map(|v| v.version_id.clone()).collect();
        assert_eq!(ids.len(), 5, "version ids are unique");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_create_only_has_exactly_one_winner() {
        let (_dir, store) = new_store();
        let root = store.root().to_path_buf();
        let mut tasks = Vec::new();
        for i in 0..12 {
            // Separate store values share nothing in memory, like separate processes.
            let store = LocalStore::new(root.clone());
            tasks.push(tokio::spawn(async move {
                let text = format!("writer {i}");
                (
                    text.clone(),
                    store
                        .put("ingested/lock.json", body(&text), PutMode::CreateOnly)
                        .await,
                )
            }));
        }
        let mut winners = Vec::new();
        for task in tasks {
            match task.await.unwrap() {
                (text, Ok(meta)) => winners.push((text, meta)),
                (_, Err(StoreError::PreconditionFailed { .. })) => {}
                (_, Err(e)) => panic!("unexpected error: {e}"),
            }
        }
        assert_eq!(winners.len(), 1, "exactly one create-only put wins");
        assert_eq!(read(&store, "ingested/lock.json", None).await, winners[0].0);
        assert_eq!(
            store
                .list_versions("ingested/lock.json")
                .await
                .unwrap()
                .len(),
            1
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_overwrites_keep_every_version() {
        let (_dir, store) = new_store();
        let store = Arc::new(store);
        let mut tasks = Vec::new();
        for i in 0..16 {
            let store = Arc::clone(&store);
            tasks.push(tokio::spawn(async move {
                store
                    .put("k.txt", body(&format!("{i}")), PutMode::Overwrite)
                    .await
                    .unwrap()
            }));
        }
        let mut ids = HashSet::new();
        for task in tasks {
            ids.insert(task.await.unwrap().version_id);
        }
        assert_eq!(ids.len(), 16);
        let versions = store.list_versions("k.txt").await.unwrap();
        assert_eq!(versions.len(), 16);
        let (latest, _) = store.get("k.txt", None).await.unwrap();
        assert_eq!(latest.version_id, versions[0].version_id);
    }

    #[tokio::test]
    async fn the_history_directory_is_reserved_and_hidden() {
        let (_dir, store) = new_store();
        put(&store, "a.csv", "x").await;
        assert!(store.root().join(".versions").is_dir());
        let keys: Vec<_> = store
            .list("")
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.key)
            .collect();
        assert_eq!(keys, ["a.csv"]);
        assert!(store.list(".versions").await.unwrap().is_empty());
        for key in [".versions/x", ".versions"] {
            assert!(matches!(
                store.put(key, body("x"), PutMode::Overwrite).await,
                Err(StoreError::InvalidKey { .. })
            ));
        }
        // Only the top-level directory is reserved.
        put(&store, "nested/.versions/ok.txt", "fine").await;
    }

    #[tokio::test]
    async fn a_key_blocked_by_another_keys_file_gets_a_clear_error() {
        let (_dir, store) = new_store();
        put(&store, "a", "file").await;
        let err = store
            .put("a/b", body("x"), PutMode::Overwrite)
            .await
            .unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains("key 'a'") && message.contains("rename"),
            "{message}"
        );
        put(&store, "c/d", "x").await;
        let message = store
            .put("c", body("x"), PutMode::Overwrite)
            .await
            .unwrap_err()
            .to_string();
        assert!(message.contains("folder"), "{message}");
        // Nested keys are fine in the history, whatever the visible tree allows.
        assert_eq!(store.list_versions("a").await.unwrap().len(), 1);
        assert!(store.list_versions("a/b").await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn url_is_an_absolute_file_url_even_before_the_directory_exists() {
        let (dir, _) = new_store();
        let store = LocalStore::new(dir.path().join("not/yet/../created"));
        let url = store.url();
        assert!(url.starts_with("file:///"), "{url}");
        assert!(url.ends_with("/not/created"), "{url}");
        assert!(!store.root().exists());
        // Reads of an empty store do not create it.
        assert!(store.list("").await.unwrap().is_empty());
        assert!(!store.root().exists());
    }

    #[tokio::test]
    async fn the_reader_keeps_its_version_while_the_key_is_overwritten() {
        let (_dir, store) = new_store();
        put(&store, "k.txt", "old content").await;
        let (meta, mut reader) = store.get_reader("k.txt", None).await.unwrap();
        put(&store, "k.txt", "new").await;
        let mut text = String::new();
        reader.read_to_string(&mut text).await.unwrap();
        assert_eq!(text, "old content");
        assert_eq!(meta.size, 11);
    }
}

mod s3_only {
    use super::*;
    use shared::store::s3::{S3Store, client_for_endpoint, create_versioned_bucket};

    #[tokio::test]
    async fn an_unversioned_bucket_reports_the_null_version() {
        let Some(test) = shared::testing::s3_test_bucket("s3_only::unversioned").await else {
            return;
        };
        let plain = format!("{}-plain", test.bucket);
        test.client
            .create_bucket()
            .bucket(&plain)
            .send()
            .await
            .unwrap();
        let store = S3Store::new(test.client.clone(), plain);
        let first = put(&store, "a.csv", "one").await;
        let second = put(&store, "a.csv", "two").await;
        assert_eq!(first.version_id, NULL_VERSION);
        assert_eq!(second.version_id, NULL_VERSION);
        let versions = store.list_versions("a.csv").await.unwrap();
        assert_eq!(versions.len(), 1);
        assert_eq!(versions[0].etag, second.etag);
        assert_eq!(store.list("").await.unwrap()[0].version_id, NULL_VERSION);
        let copied = store.copy("a.csv", None, "b.csv").await.unwrap();
        assert_eq!(copied.version_id, NULL_VERSION);
        assert_eq!(read(&store, "b.csv", None).await, "two");
    }

    #[tokio::test]
    async fn creating_the_versioned_bucket_again_is_fine() {
        let Some(test) = shared::testing::s3_test_bucket("s3_only::create_twice").await else {
            return;
        };
        create_versioned_bucket(&test.client, &test.bucket)
            .await
            .unwrap();
        let written = put(&test.store(), "x", "x").await;
        assert_ne!(written.version_id, NULL_VERSION);
    }

    #[tokio::test]
    async fn a_missing_bucket_is_an_s3_error_naming_it() {
        let Some(test) = shared::testing::s3_test_bucket("s3_only::missing_bucket").await else {
            return;
        };
        let store = S3Store::new(test.client.clone(), format!("{}-absent", test.bucket));
        for result in [
            store.put("k", body("x"), PutMode::Overwrite).await,
            store.get("k", None).await.map(|(m, _)| m),
        ] {
            match result {
                Err(StoreError::S3 {
                    status: Some(404),
                    message,
                    retryable: false,
                    ..
                }) => assert!(message.contains("does not exist"), "{message}"),
                other => panic!("expected an S3 error, got {other:?}"),
            }
        }
        assert!(matches!(
            store.list("").await,
            Err(StoreError::S3 {
                status: Some(404),
                ..
            })
        ));
    }

    /// Needs no server: nothing listens on the port.
    #[tokio::test]
    async fn an_unreachable_server_is_a_retryable_error() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let credentials = aws_sdk_s3::config::Credentials::new(
            "AKIDLEAKCHECK",
            "SECRETLEAKCHECK",
            None,
            None,
            "test",
        );
        let client = client_for_endpoint(
            &format!("http://127.0.0.1:{port}"),
            "us-east-1",
            credentials,
        );
        let store = S3Store::new(client, "bucket");
        let err = store
            .put("k", body("x"), PutMode::Overwrite)
            .await
            .unwrap_err();
        assert!(err.is_retryable(), "{err:?}");
        assert!(
            matches!(err, StoreError::S3 { status: None, .. }),
            "{err:?}"
        );
        let message = err.to_string();
        assert!(
            message.contains("s3://bucket") && message.contains("PutObject"),
            "{message}"
        );
        assert!(
            !message.contains("LEAKCHECK"),
            "no credentials in messages: {message}"
        );
    }
}
