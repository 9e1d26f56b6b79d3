//! An idle schedule tick costs one listing of the source and one record read. The deployment
//! record's check mark keeps a digest of the source listing whose every object the checked
//! compiled data already includes; a tick lists the source, reads the deployment record, and
//! when the listing's digest is that one, nothing is new (no object to ingest) and nothing is
//! pending (the data was checked), so it stops without reading the ingestion record. Any
//! change to the listing (a new, replaced or removed object), a deployment not checked yet, or
//! a mark without a digest takes the full path. The digest vouches for the listing only: rows
//! ingested from an object version the latest listing no longer shows, by a run that stopped
//! before its check, are checked when the listing next changes.

use md5::{Digest, Md5};

use crate::records::{DeploymentRecord, IngestionRecord};
use crate::steps::ingestion::is_csv_key;
use crate::store::ObjectMeta;

/// The digest of a listing: every object's key, version and ETag, in key order.
pub fn listing_digest(listing: &[ObjectMeta]) -> String {
    let mut objects: Vec<(&str, &str, &str)> = listing
        .iter()
        .map(|o| (o.key.as_str(), o.version_id.as_str(), o.etag.as_str()))
        .collect();
    objects.sort_unstable();
    let mut hasher = Md5::new();
    for (key, version, etag) in objects {
        hasher.update(format!("{key}\t{version}\t{etag}\n").as_bytes());
    }
    format!("{:x}", hasher.finalize())
}

/// Whether `listing` shows nothing the checked data lacks: the deployment's check mark names
/// this listing's digest.
pub fn nothing_to_do(listing: &[ObjectMeta], deployment: Option<&DeploymentRecord>) -> bool {
    let digest = listing_digest(listing);
    deployment
        .and_then(|d| d.checked_against.as_ref())
        .and_then(|checked| checked.source_listing.as_deref())
        .is_some_and(|marked| marked == digest)
}

/// The digest of `listing` when `record` includes every CSV object of it (so data at least as
/// new as `record` covers the listing); `None` otherwise.
pub fn covered_listing_digest(listing: &[ObjectMeta], record: &IngestionRecord) -> Option<String> {
    listing
        .iter()
        .filter(|meta| is_csv_key(&meta.key))
        .all(|meta| record.files.iter().any(|seen| seen.is_same_object(meta)))
        .then(|| listing_digest(listing))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::IngestedFile;

    fn meta(key: &str, version: &str) -> ObjectMeta {
        ObjectMeta {
            key: key.into(),
            version_id: version.into(),
            etag: format!("e-{version}"),
            size: 1,
            last_modified: chrono::Utc::now(),
        }
    }

    #[test]
    fn the_digest_follows_the_objects_not_their_order() {
        let a = [meta("a.csv", "1"), meta("b.csv", "1")];
        let b = [meta("b.csv", "1"), meta("a.csv", "1")];
        assert_eq!(listing_digest(&a), listing_digest(&b));
        assert_ne!(
            listing_digest(&a),
            listing_digest(&[meta("a.csv", "1"), meta("b.csv", "2")])
        );
        assert_ne!(listing_digest(&a), listing_digest(&a[..1]));
    }

    #[test]
    fn a_listing_is_covered_only_when_every_csv_was_ingested() {
        let listing = [meta("a.csv", "1"), meta("notes.txt", "1")];
        let mut record = IngestionRecord::default();
        assert_eq!(covered_listing_digest(&listing, &record), None);
        record.files.push(IngestedFile {
            key: "a.csv".into(),
            version_id: "1".into(),
            etag: "e-1".into(),
            size: 1,
            outcome: crate::records::FileOutcome::Ingested,
            rows_read: 1,
            rows_accepted: 1,
            rows_rejected: 0,
            rows_duplicate: 0,
            missing_values: Default::default(),
            error: None,
            warnings: Vec::new(),
            quarantine: None,
            ingested_at: chrono::Utc::now(),
            run_id: "run-1".into(),
        });
        assert_eq!(
            covered_listing_digest(&listing, &record),
            Some(listing_digest(&listing))
        );
    }
}
