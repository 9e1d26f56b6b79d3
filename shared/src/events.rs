//! What the Lambda functions receive, turned into what the steps need, with no Lambda runtime
//! involved: S3 object-created notifications become the exact source object versions to ingest
//! (keys decoded from S3's form-URL encoding, records for other buckets, other prefixes, other
//! event kinds or non-CSV keys skipped with their reason), the full process's input is
//! classified (EventBridge schedule envelope, another EventBridge event, or a plain JSON input
//! such as a rule's constant `Input`, `{}` or `null`), and the plain JSON input of the other step
//! functions is read (an optional model or score version). Everything here is a pure function of
//! its input, so it is tested on the real event fixtures in `infra/events/` without Lambda.

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use aws_lambda_events::event::s3::{S3Event, S3EventRecord};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::LocationUrl;
use crate::steps::ingestion::{SourceObject, is_csv_key};
use crate::store::validate_key;

/// An input a function cannot act on. Always permanent: the same input fails the same way.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error("{expected}, but the input {problem}")]
    Unexpected {
        expected: &'static str,
        problem: String,
    },
}

impl EventError {
    fn unexpected(expected: &'static str, problem: impl Into<String>) -> Self {
        EventError::Unexpected {
            expected,
            problem: problem.into(),
        }
    }
}

/// Why an S3 event notification key cannot be decoded. The record is skipped with this reason;
/// it means the notification was not written by S3 (or was altered on the way).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyDecodeError {
    #[error("'%' at byte {position} is not followed by two hexadecimal digits")]
    BadEscape { position: usize },
    #[error("the decoded key is not UTF-8: {0}")]
    NotUtf8(#[from] std::string::FromUtf8Error),
}

/// Decodes an S3 event notification key. S3 form-URL-encodes keys in notifications: `+` is a
/// space and every other byte may be `%XX`; the bytes are UTF-8. `+` must be replaced before
/// percent-decoding so that an encoded plus (`%2B`) survives as `+`.
pub fn decode_s3_event_key(encoded: &str) -> Result<String, KeyDecodeError> {
    let spaced = encoded.replace('+', " ");
    let input = spaced.as_bytes();
    let mut bytes = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        if input[i] == b'%' {
            let byte = input
                .get(i + 1..i + 3)
                .and_then(|pair| std::str::from_utf8(pair).ok())
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                .ok_or(KeyDecodeError::BadEscape { position: i })?;
            bytes.push(byte);
            i += 3;
        } else {
            bytes.push(input[i]);
            i += 1;
        }
    }
    Ok(String::from_utf8(bytes)?)
}

/// Encodes a key the way S3 writes it into event notifications (the inverse of
/// [`decode_s3_event_key`]): unreserved characters and `/` as they are, a space as `+`, every
/// other byte as `%XX`. Used to build realistic events for tests and local runs.
pub fn encode_s3_event_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for &byte in key.as_bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' | b'/' => {
                out.push(char::from(byte))
            }
            b' ' => out.push('+'),
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

/// Which bucket and key prefix an S3 event must name to concern the source data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFilter {
    /// The source bucket; `None` when the source is a local directory (local runs with
    /// `cargo lambda invoke`), where an event's bucket name cannot be checked and is ignored.
    bucket: Option<String>,
    /// Key prefix of the source location inside the bucket, without a trailing `/`.
    prefix: String,
}

impl SourceFilter {
    /// The filter for the configured source location.
    pub fn for_location(source: &LocationUrl) -> Self {
        match source {
            LocationUrl::S3 { bucket, prefix } => SourceFilter {
                bucket: Some(bucket.clone()),
                prefix: prefix.clone(),
            },
            LocationUrl::File { .. } => SourceFilter {
                bucket: None,
                prefix: String::new(),
            },
        }
    }

    /// The key relative to the source location, or `None` when the key is outside it.
    fn relative<'k>(&self, key: &'k str) -> Option<&'k str> {
        if self.prefix.is_empty() {
            return Some(key);
        }
        key.strip_prefix(&self.prefix)?.strip_prefix('/')
    }
}

/// Why a record of an S3 event was not turned into an object to ingest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "reason", content = "detail")]
pub enum SkipReason {
    /// Not an `ObjectCreated:*` notification (e.g. a removal routed here by mistake).
    NotObjectCreated(String),
    /// The record names a bucket other than the configured source bucket.
    OtherBucket(String),
    /// The key is outside the source location's prefix.
    OutsidePrefix(String),
    /// Not a `.csv` key (ingestion reads only CSV files).
    NotCsv,
    /// The key cannot be decoded or is not a key the stores accept.
    InvalidKey(String),
    /// The same object version appeared earlier in the same event.
    Duplicate,
}

/// A record that was skipped, with its bucket key as decoded (as received when undecodable).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedRecord {
    pub bucket: Option<String>,
    pub key: String,
    #[serde(flatten)]
    pub reason: SkipReason,
}

/// What an S3 event asks ingestion to do.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngestionRequest {
    /// Source objects (keys relative to the source location, with the event's version) to
    /// ingest, in event order, each once.
    pub objects: Vec<SourceObject>,
    /// Records left alone, with why.
    pub skipped: Vec<SkippedRecord>,
    /// S3's `s3:TestEvent`, sent when a notification is configured: nothing to do.
    pub test_event: bool,
}

/// Reads the input of the ingestion function: an S3 event notification (one or more records),
/// or S3's test event. Records that do not concern the source data are skipped, each with a log
/// line and its reason; an input that is not an S3 notification at all is an error.
pub fn ingestion_request(
    input: &Value,
    filter: &SourceFilter,
) -> Result<IngestionRequest, EventError> {
    const EXPECTED: &str = "expected an S3 event notification ({\"Records\": [...]})";
    let Some(object) = input.as_object() else {
        return Err(EventError::unexpected(
            EXPECTED,
            format!("is {}", json_kind(input)),
        ));
    };
    if object.get("Event").and_then(Value::as_str) == Some("s3:TestEvent") {
        tracing::info!("S3 test event (sent when the notification was configured); nothing to do");
        return Ok(IngestionRequest {
            test_event: true,
            ..IngestionRequest::default()
        });
    }
    if !object.contains_key("Records") {
        let keys: Vec<&str> = object.keys().map(String::as_str).collect();
        return Err(EventError::unexpected(
            EXPECTED,
            format!("has no \"Records\" (fields: {keys:?})"),
        ));
    }
    let event: S3Event = serde_json::from_value(input.clone())
        .map_err(|e| EventError::unexpected(EXPECTED, format!("does not have its shape: {e}")))?;
    Ok(objects_from_s3_event(&event, filter))
}

/// The source object versions an S3 event names, and the records it skips.
pub fn objects_from_s3_event(event: &S3Event, filter: &SourceFilter) -> IngestionRequest {
    let mut request = IngestionRequest::default();
    for record in &event.records {
        match object_from_record(record, filter) {
            Ok((key, object)) => {
                if request.objects.contains(&object) {
                    request.skipped.push(SkippedRecord {
                        bucket: record.s3.bucket.name.clone(),
                        key,
                        reason: SkipReason::Duplicate,
                    });
                } else {
                    request.objects.push(object);
                }
            }
            Err(skipped) => request.skipped.push(skipped),
        }
    }
    for skipped in &request.skipped {
        tracing::info!(
            bucket = skipped.bucket.as_deref().unwrap_or("-"),
            key = %skipped.key,
            reason = ?skipped.reason,
            "S3 event record skipped"
        );
    }
    request
}

/// The decoded key and the object version a record names, or why it is skipped.
fn object_from_record(
    record: &S3EventRecord,
    filter: &SourceFilter,
) -> Result<(String, SourceObject), SkippedRecord> {
    let bucket = record.s3.bucket.name.clone();
    let raw_key = record.s3.object.key.clone().unwrap_or_default();
    let skip = |key: String, reason: SkipReason| SkippedRecord {
        bucket: bucket.clone(),
        key,
        reason,
    };
    let key = match decode_s3_event_key(&raw_key) {
        Ok(key) => key,
        Err(e) => return Err(skip(raw_key, SkipReason::InvalidKey(e.to_string()))),
    };
    let event_name = record.event_name.clone().unwrap_or_default();
    // S3 names them `ObjectCreated:Put`, `:Post`, `:Copy`, `:CompleteMultipartUpload`; the
    // configuration API calls them `s3:ObjectCreated:*`.
    let created = event_name
        .strip_prefix("s3:")
        .unwrap_or(&event_name)
        .starts_with("ObjectCreated:");
    if !created {
        return Err(skip(key, SkipReason::NotObjectCreated(event_name)));
    }
    if let Some(source_bucket) = &filter.bucket
        && bucket.as_deref() != Some(source_bucket.as_str())
    {
        return Err(skip(
            key,
            SkipReason::OtherBucket(format!("the source bucket is {source_bucket}")),
        ));
    }
    let Some(relative) = filter.relative(&key) else {
        return Err(skip(
            key,
            SkipReason::OutsidePrefix(format!("the source prefix is {}/", filter.prefix)),
        ));
    };
    if let Err(e) = validate_key(relative) {
        return Err(skip(key, SkipReason::InvalidKey(e.to_string())));
    }
    if !is_csv_key(relative) {
        return Err(skip(key, SkipReason::NotCsv));
    }
    let object = SourceObject {
        key: relative.to_string(),
        version_id: record
            .s3
            .object
            .version_id
            .clone()
            .filter(|v| !v.is_empty()),
    };
    Ok((key, object))
}

/// What started a full-process invocation. The full process takes no parameters (it always
/// looks for every new source file), so this only tells the logs and the response why it ran.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Trigger {
    /// An EventBridge scheduled event (the rule that replaces the cron job).
    Schedule {
        rules: Vec<String>,
        time: Option<DateTime<Utc>>,
    },
    /// Another EventBridge event routed to the function (e.g. an S3 "Object Created" rule).
    EventBridge { source: String, detail_type: String },
    /// Anything else: a rule's constant `Input`, a hand-made `{}` or `null` from `cargo lambda
    /// invoke`, a Step Functions state. Its fields, if any, are listed for the log.
    Plain { fields: Vec<String> },
}

/// Classifies the full process's input. Never fails: whatever arrives, the right answer is to
/// look for new data, and a schedule must not stop because its rule's input changed shape.
pub fn full_process_trigger(input: &Value) -> Trigger {
    let looks_like_eventbridge = input
        .as_object()
        .is_some_and(|o| o.contains_key("detail-type") && o.contains_key("source"));
    if looks_like_eventbridge
        && let Ok(event) = serde_json::from_value::<EventBridgeEvent>(input.clone())
    {
        if event.detail_type == "Scheduled Event" {
            return Trigger::Schedule {
                rules: event.resources.unwrap_or_default(),
                time: event.time,
            };
        }
        return Trigger::EventBridge {
            source: event.source,
            detail_type: event.detail_type,
        };
    }
    Trigger::Plain {
        fields: input
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default(),
    }
}

/// The plain JSON input of the training, scoring, deployment, diagnostics and reporting
/// functions: `{}` or `null` for "the latest", or versions to act on. Unknown fields are
/// ignored (and logged), so a Step Functions state machine can pass one step's result straight
/// to the next: training answers with `model_version`, scoring with `model_version` and
/// `score_version`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepInput {
    /// A model artifact version in the models location (scoring, deployment).
    pub model_version: Option<String>,
    /// A score record version in the models location (deployment).
    pub score_version: Option<String>,
}

/// Reads a [`StepInput`]. `null`, `{}` and an EventBridge envelope (a schedule pointed at a
/// step) mean "the latest"; a version must be a non-empty string.
pub fn step_input(input: &Value) -> Result<StepInput, EventError> {
    const EXPECTED: &str =
        "expected a JSON object such as {} or {\"model_version\": \"…\", \"score_version\": \"…\"}";
    let object = match input {
        Value::Null => return Ok(StepInput::default()),
        Value::Object(object) => object,
        other => {
            return Err(EventError::unexpected(
                EXPECTED,
                format!("is {}", json_kind(other)),
            ));
        }
    };
    let version = |field: &'static str| -> Result<Option<String>, EventError> {
        match object.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(v)) if !v.trim().is_empty() => Ok(Some(v.trim().to_string())),
            Some(other) => Err(EventError::unexpected(
                EXPECTED,
                format!("has \"{field}\": {other}, not a version id"),
            )),
        }
    };
    let input = StepInput {
        model_version: version("model_version")?,
        score_version: version("score_version")?,
    };
    let ignored: Vec<&str> = object
        .keys()
        .map(String::as_str)
        // `retime` is the diagnostics function's own switch.
        .filter(|k| !matches!(*k, "model_version" | "score_version" | "retime"))
        .collect();
    if !ignored.is_empty() {
        tracing::info!(?ignored, "input fields not used by this step");
    }
    Ok(input)
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The bucket the fixtures name (the template's source bucket for stage `dev`).
    const SOURCE_BUCKET: &str = "risk-dev-source-123456789012-us-east-1";

    fn fixture(name: &str) -> Value {
        crate::testing::event_fixture(name)
    }

    fn s3(bucket: &str, prefix: &str) -> SourceFilter {
        SourceFilter::for_location(&LocationUrl::S3 {
            bucket: bucket.into(),
            prefix: prefix.into(),
        })
    }

    fn record(event_name: &str, bucket: &str, key: &str, version: Option<&str>) -> Value {
        json!({
            "eventVersion": "2.1",
            "eventSource": "aws:s3",
            "awsRegion": "us-east-1",
            "eventTime": "2026-11-26T09:30:00.000Z",
            "eventName": event_name,
            "userIdentity": {"principalId": "EXAMPLE"},
            "requestParameters": {"sourceIPAddress": "127.0.0.1"},
            "responseElements": {},
            "s3": {
                "s3SchemaVersion": "1.0",
                "configurationId": "csv-uploads",
                "bucket": {"name": bucket, "arn": format!("arn:aws:s3:::{bucket}")},
                "object": {"key": key, "size": 10, "versionId": version, "eTag": "abc", "sequencer": "01"}
            }
        })
    }

    #[test]
    fn keys_are_decoded_plus_first_then_percent_then_utf8() {
        let cases = [
            ("dataset3.csv", "dataset3.csv"),
            ("Client+Data+2026.csv", "Client Data 2026.csv"),
            ("a%2Bb.csv", "a+b.csv"),
            ("a+%2B+b.csv", "a + b.csv"),
            ("in%2Fnov%3A26.csv", "in/nov:26.csv"),
            ("M%C3%BCller+%26+Co.csv", "Müller & Co.csv"),
            ("%E6%9D%B1%E4%BA%AC.csv", "東京.csv"),
            ("100%25.csv", "100%.csv"),
            ("%f0%9f%93%88.csv", "📈.csv"),
        ];
        for (encoded, decoded) in cases {
            assert_eq!(decode_s3_event_key(encoded).unwrap(), decoded, "{encoded}");
            assert_eq!(
                decode_s3_event_key(&encode_s3_event_key(decoded)).unwrap(),
                decoded
            );
        }
        assert_eq!(
            decode_s3_event_key("bad%2"),
            Err(KeyDecodeError::BadEscape { position: 3 })
        );
        assert_eq!(
            decode_s3_event_key("a+b%zz.csv"),
            Err(KeyDecodeError::BadEscape { position: 3 })
        );
        let not_utf8 = decode_s3_event_key("%C3.csv").unwrap_err();
        assert!(matches!(not_utf8, KeyDecodeError::NotUtf8(_)));
        assert!(not_utf8.to_string().contains("UTF-8"), "{not_utf8}");
        assert_eq!(
            encode_s3_event_key("2026 11/Müller & Co+.csv"),
            "2026+11/M%C3%BCller+%26+Co%2B.csv"
        );
    }

    #[test]
    fn the_unicode_key_fixture_names_one_csv_version() {
        let request =
            ingestion_request(&fixture("s3-put-unicode-key.json"), &s3(SOURCE_BUCKET, "")).unwrap();
        assert_eq!(
            request.objects,
            [SourceObject {
                key: "incoming/2026-11/Clients Müller & Søn (März).csv".into(),
                version_id: Some("3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY".into()),
            }]
        );
        assert!(request.skipped.is_empty());
    }

    #[test]
    fn the_multi_record_fixture_keeps_csv_files_and_skips_the_rest() {
        let request =
            ingestion_request(&fixture("s3-put-multi.json"), &s3(SOURCE_BUCKET, "")).unwrap();
        let keys: Vec<_> = request.objects.iter().map(|o| o.key.as_str()).collect();
        assert_eq!(keys, ["dataset3.csv", "dataset4.csv"]);
        assert!(request.objects.iter().all(|o| o.version_id.is_none()));
        let skipped: Vec<_> = request
            .skipped
            .iter()
            .map(|s| (s.key.as_str(), &s.reason))
            .collect();
        assert_eq!(skipped, [("notes/README.txt", &SkipReason::NotCsv)]);
    }

    #[test]
    fn records_for_other_buckets_prefixes_and_event_kinds_are_skipped() {
        let event = json!({"Records": [
            record("ObjectCreated:Put", "risk-source", "clients/a.csv", Some("v1")),
            record("ObjectCreated:CompleteMultipartUpload", "risk-source", "clients/big+one.CSV", Some("v2")),
            record("ObjectCreated:Put", "someone-else", "clients/b.csv", Some("v3")),
            record("ObjectCreated:Put", "risk-source", "elsewhere/c.csv", Some("v4")),
            record("ObjectCreated:Put", "risk-source", "clientsX/d.csv", Some("v5")),
            record("ObjectRemoved:Delete", "risk-source", "clients/e.csv", None),
            record("ObjectCreated:Put", "risk-source", "clients/", None),
            record("ObjectCreated:Put", "risk-source", "clients/a//f.csv", Some("v6")),
            record("ObjectCreated:Put", "risk-source", "clients/a.csv", Some("v1")),
            record("ObjectCreated:Put", "risk-source", "clients/a.csv", Some("v7")),
        ]});
        let request = ingestion_request(&event, &s3("risk-source", "clients")).unwrap();
        assert_eq!(
            request.objects,
            [
                SourceObject {
                    key: "a.csv".into(),
                    version_id: Some("v1".into())
                },
                SourceObject {
                    key: "big one.CSV".into(),
                    version_id: Some("v2".into())
                },
                SourceObject {
                    key: "a.csv".into(),
                    version_id: Some("v7".into())
                },
            ]
        );
        let reasons: Vec<_> = request
            .skipped
            .iter()
            .map(|s| match &s.reason {
                SkipReason::NotObjectCreated(_) => "event",
                SkipReason::OtherBucket(_) => "bucket",
                SkipReason::OutsidePrefix(_) => "prefix",
                SkipReason::NotCsv => "csv",
                SkipReason::InvalidKey(_) => "key",
                SkipReason::Duplicate => "duplicate",
            })
            .collect();
        assert_eq!(
            reasons,
            [
                "bucket",
                "prefix",
                "prefix",
                "event",
                "key",
                "key",
                "duplicate"
            ]
        );
    }

    #[test]
    fn a_local_source_ignores_the_bucket_name() {
        let local = SourceFilter::for_location(&LocationUrl::File {
            root: "/tmp/source".into(),
        });
        let event =
            json!({"Records": [record("ObjectCreated:Put", "any-bucket", "x+y.csv", None)]});
        let request = ingestion_request(&event, &local).unwrap();
        assert_eq!(request.objects[0].key, "x y.csv");
    }

    #[test]
    fn other_inputs_are_refused_or_recognised() {
        let filter = s3("risk-source", "");
        for bad in [json!(null), json!({}), json!("x"), json!({"Records": "no"})] {
            let err = ingestion_request(&bad, &filter).unwrap_err().to_string();
            assert!(err.contains("expected an S3 event notification"), "{err}");
        }
        let test_event = json!({"Service": "Amazon S3", "Event": "s3:TestEvent", "Time": "2026-11-26T09:30:00.000Z", "Bucket": "risk-source", "RequestId": "1", "HostId": "2"});
        let request = ingestion_request(&test_event, &filter).unwrap();
        assert!(request.test_event && request.objects.is_empty());
    }

    #[test]
    fn full_process_triggers() {
        match full_process_trigger(&fixture("schedule.json")) {
            Trigger::Schedule { rules, time } => {
                assert_eq!(
                    rules,
                    ["arn:aws:events:us-east-1:123456789012:rule/risk-dev-fullprocess-schedule"]
                );
                assert!(time.is_some());
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            full_process_trigger(&fixture("plain.json")),
            Trigger::Plain { fields: vec![] }
        );
        assert_eq!(
            full_process_trigger(&json!(null)),
            Trigger::Plain { fields: vec![] }
        );
        assert_eq!(
            full_process_trigger(&json!({"trigger": "schedule"})),
            Trigger::Plain {
                fields: vec!["trigger".into()]
            }
        );
        let s3_via_eventbridge = json!({"version": "0", "id": "1", "detail-type": "Object Created", "source": "aws.s3", "account": "1", "time": "2026-11-26T09:30:00Z", "region": "us-east-1", "resources": [], "detail": {}});
        assert_eq!(
            full_process_trigger(&s3_via_eventbridge),
            Trigger::EventBridge {
                source: "aws.s3".into(),
                detail_type: "Object Created".into()
            }
        );
    }

    #[test]
    fn step_inputs() {
        assert_eq!(step_input(&json!(null)).unwrap(), StepInput::default());
        assert_eq!(
            step_input(&fixture("plain.json")).unwrap(),
            StepInput::default()
        );
        assert_eq!(
            step_input(&fixture("schedule.json")).unwrap(),
            StepInput::default()
        );
        assert_eq!(
            step_input(&json!({"model_version": "v1", "run_id": "run-1"})).unwrap(),
            StepInput {
                model_version: Some("v1".into()),
                score_version: None
            }
        );
        assert!(step_input(&json!({"model_version": 3})).is_err());
        assert!(step_input(&json!({"model_version": ""})).is_err());
        assert!(step_input(&json!([])).is_err());
    }
}
