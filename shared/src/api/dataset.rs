//! Which stored data set a `/prediction` request may name, and the rules that keep it inside the
//! configured data locations. A request names a location by its setting name (`test_data` or
//! `source_data`, never a URL) and, optionally, a key inside it; the key is checked here before
//! any store sees it, so confinement does not depend on how a store treats odd keys. Refused:
//! URLs and schemes (any `:`), absolute paths, `\`, `.` and `..` segments and hidden names (a
//! leading `.`, which also keeps the local store's `.versions/` history out of reach), empty
//! segments, control characters, and `%` — keys are never URL-decoded, so `..%2F` cannot turn
//! into `../` later on. Only `*.csv` keys are accepted: the API predicts on client data, and
//! records or models are not data sets.

use serde::Deserialize;

use crate::location::{Location, Locations};
use crate::steps::ingestion::is_csv_key;

/// A configured location a request may read data sets from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataLocation {
    TestData,
    SourceData,
}

impl DataLocation {
    pub const ALL: [DataLocation; 2] = [DataLocation::TestData, DataLocation::SourceData];

    /// The setting name, as requests and answers spell it.
    pub fn name(self) -> &'static str {
        match self {
            DataLocation::TestData => "test_data",
            DataLocation::SourceData => "source_data",
        }
    }

    pub fn parse(name: &str) -> Result<DataLocation, String> {
        DataLocation::ALL
            .into_iter()
            .find(|l| l.name() == name)
            .ok_or_else(|| {
                format!(
                    "unknown location {}: expected one of {} (the name of a configured data location, not a URL or path)",
                    quoted(name),
                    DataLocation::ALL.map(DataLocation::name).join(", ")
                )
            })
    }

    /// The opened location.
    pub fn open(self, locations: &Locations) -> &Location {
        match self {
            DataLocation::TestData => &locations.test_data,
            DataLocation::SourceData => &locations.source_data,
        }
    }
}

/// The JSON body of `POST /prediction`. Unknown fields are refused, so a typo is a 400 rather
/// than a silent fall-back to the default data set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PredictionRequest {
    /// Shorthand for `{"location": "test_data", "key": dataset}`.
    #[serde(default)]
    pub dataset: Option<String>,
    #[serde(default)]
    pub location: Option<String>,
    /// A CSV file in `location`; without it, every CSV file there.
    #[serde(default)]
    pub key: Option<String>,
}

/// A checked choice of stored data: a location, and one key in it or all of its CSV files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatasetSelection {
    pub location: DataLocation,
    pub key: Option<String>,
}

impl PredictionRequest {
    /// Checks the request and the key. The error is a message for the client.
    pub fn select(&self) -> Result<DatasetSelection, String> {
        let selection = match (&self.dataset, &self.location, &self.key) {
            (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
                return Err(
                    "give either \"dataset\", or \"location\" with an optional \"key\", not both"
                        .to_string(),
                );
            }
            (Some(dataset), None, None) => DatasetSelection {
                location: DataLocation::TestData,
                key: Some(dataset.clone()),
            },
            (None, Some(location), key) => DatasetSelection {
                location: DataLocation::parse(location)?,
                key: key.clone(),
            },
            (None, None, Some(_)) => {
                return Err(
                    "\"key\" needs \"location\" (test_data or source_data); or use \"dataset\" for a file of the test data"
                        .to_string(),
                );
            }
            (None, None, None) => DatasetSelection {
                location: DataLocation::TestData,
                key: None,
            },
        };
        if let Some(key) = &selection.key {
            validate_key(key)?;
        }
        Ok(selection)
    }
}

/// Parses and checks a JSON prediction request; an empty body means the default (every CSV
/// file of the test data).
pub fn parse_request(body: &[u8]) -> Result<DatasetSelection, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return PredictionRequest::default().select();
    }
    let request: PredictionRequest = serde_json::from_slice(body)
        .map_err(|e| format!("the body is not a valid prediction request: {e}"))?;
    request.select()
}

/// Longest key accepted (S3's own limit).
pub const MAX_KEY_BYTES: usize = 1024;

/// Checks that `key` names a CSV file inside its location and nothing else.
pub fn validate_key(key: &str) -> Result<(), String> {
    let refuse = |why: &str| Err(format!("key {} refused: {why}", quoted(key)));
    if key.is_empty() {
        return refuse("it is empty");
    }
    if key.len() > MAX_KEY_BYTES {
        return refuse("it is longer than 1024 bytes");
    }
    if key.chars().any(char::is_control) {
        return refuse("it contains control characters");
    }
    if key.contains(':') {
        return refuse(
            "':' is not allowed; a key is a name inside the location, not a URL (s3://, file://) or a drive path",
        );
    }
    if key.starts_with('/') || key.starts_with('~') {
        return refuse("absolute paths are not allowed; name a key relative to the location");
    }
    if key.contains('\\') {
        return refuse("'\\' is not allowed; separate key segments with '/'");
    }
    if key.contains('%') {
        return refuse(
            "'%' is not allowed; keys are taken literally and never URL-decoded (write the key itself)",
        );
    }
    for segment in key.split('/') {
        if segment.is_empty() {
            return refuse("empty segments ('//' or a trailing '/') are not allowed");
        }
        if segment == "." || segment == ".." {
            return refuse(
                "'.' and '..' segments are not allowed: a key cannot leave its location",
            );
        }
        if segment.starts_with('.') {
            return refuse("hidden names (starting with '.') are not data sets");
        }
    }
    if !is_csv_key(key) {
        return refuse("only CSV data sets (*.csv) can be predicted");
    }
    Ok(())
}

/// `'value'`, shortened, for messages that echo what a client sent.
fn quoted(value: &str) -> String {
    const MAX: usize = 120;
    if value.len() <= MAX {
        return format!("{value:?}");
    }
    let mut end = MAX;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    format!("{:?}…", &value[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(body: &str) -> String {
        parse_request(body.as_bytes()).expect_err(body)
    }

    /// `{"field": value}` with the value JSON-escaped (control characters included).
    fn body(field: &str, value: &str) -> String {
        serde_json::json!({ field: value }).to_string()
    }

    #[test]
    fn the_accepted_forms() {
        assert_eq!(
            parse_request(br#"{"dataset": "testdata.csv"}"#),
            Ok(DatasetSelection {
                location: DataLocation::TestData,
                key: Some("testdata.csv".into())
            })
        );
        assert_eq!(
            parse_request(br#"{"location": "source_data", "key": "2026/11/dataset3.CSV"}"#),
            Ok(DatasetSelection {
                location: DataLocation::SourceData,
                key: Some("2026/11/dataset3.CSV".into())
            })
        );
        let all_test_data = DatasetSelection {
            location: DataLocation::TestData,
            key: None,
        };
        assert_eq!(parse_request(b""), Ok(all_test_data.clone()));
        assert_eq!(parse_request(b" {} "), Ok(all_test_data));
        assert_eq!(
            parse_request(br#"{"location": "source_data"}"#).map(|s| s.key),
            Ok(None)
        );
    }

    #[test]
    fn parent_segments_are_refused() {
        for key in [
            "../production/trainedmodel.csv",
            "a/../../b.csv",
            "..",
            "./testdata.csv",
            "a/./b.csv",
        ] {
            let message = refused(&body("dataset", key));
            assert!(message.contains("segments"), "{key}: {message}");
        }
    }

    #[test]
    fn absolute_paths_are_refused() {
        for key in ["/etc/passwd.csv", "/", "~/data.csv", "~root/x.csv"] {
            let request = serde_json::json!({"location": "test_data", "key": key});
            let message = refused(&request.to_string());
            assert!(message.contains("absolute"), "{key}: {message}");
        }
        let message = refused(r#"{"dataset": "C:\\data\\x.csv"}"#);
        assert!(message.contains("':'"), "{message}");
        let message = refused(r#"{"dataset": "..\\x.csv"}"#);
        assert!(message.contains("'\\'"), "{message}");
    }

    #[test]
    fn other_buckets_and_schemes_are_refused() {
        for key in [
            "s3://other-bucket/data.csv",
            "file:///etc/passwd.csv",
            "file://data/testdata.csv",
            "http://example.invalid/x.csv",
        ] {
            let message = refused(&body("dataset", key));
            assert!(message.contains("not a URL"), "{key}: {message}");
        }
        for location in [
            "s3://other-bucket",
            "file:///etc",
            "/tmp",
            "models",
            "production",
            "",
        ] {
            let message = refused(&body("location", location));
            assert!(
                message.contains("unknown location"),
                "{location}: {message}"
            );
        }
    }

    #[test]
    fn url_encoded_escapes_are_refused() {
        for key in [
            "..%2Fproduction%2Fdeployment.csv",
            "%2e%2e/x.csv",
            "%2E%2E%2F%2E%2E%2Fx.csv",
            "a%2F..%2F..%2Fb.csv",
            "%252e%252e/x.csv",
        ] {
            let message = refused(&body("dataset", key));
            assert!(message.contains("'%'"), "{key}: {message}");
        }
    }

    #[test]
    fn everything_else_odd_is_refused() {
        for (key, why) in [
            ("", "empty"),
            ("a//b.csv", "empty segments"),
            ("dir/", "empty segments"),
            (".versions/testdata.csv", "hidden"),
            ("testdata.csv\u{0}.json", "control"),
            ("line\nbreak.csv", "control"),
            ("trainedmodel.json", "CSV"),
            ("noextension", "CSV"),
        ] {
            let message = refused(&body("dataset", key));
            assert!(message.contains(why), "{key:?}: {message}");
        }
        let long = format!("{}.csv", "a".repeat(2000));
        let message = refused(&body("dataset", &long));
        assert!(message.contains("1024") && message.len() < 400, "{message}");
    }

    #[test]
    fn malformed_requests_are_refused() {
        assert!(refused(r#"{"datset": "x.csv"}"#).contains("unknown field"));
        assert!(refused(r#"{"dataset": "x.csv", "location": "test_data"}"#).contains("not both"));
        assert!(refused(r#"{"key": "x.csv"}"#).contains("needs \"location\""));
        assert!(refused("not json").contains("not a valid prediction request"));
        assert!(refused(r#"{"dataset": 5}"#).contains("not a valid prediction request"));
    }
}
