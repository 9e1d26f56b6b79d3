//! The one configuration of the pipeline: where source data, compiled data, test data, models,
//! the production deployment and reports live. Read from a `config.json` (like the original
//! system's) and overridden per setting by environment variables (how Lambda receives it from the
//! SAM template). Every location is `file://<dir>` (relative paths resolve against the directory
//! of the configuration file) or `s3://<bucket>[/<prefix>]`. A bad configuration fails at
//! start-up with a message naming the setting and what was expected.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::lifecycle::{LifecycleError, LifecycleSettings};
use crate::seed::SeedDirs;

/// The settings, in the order they appear in `config.json`, with the environment variable that
/// overrides each one.
pub const SETTINGS: [(&str, &str); 6] = [
    ("source_data", "RISK_SOURCE_DATA"),
    ("compiled_data", "RISK_COMPILED_DATA"),
    ("test_data", "RISK_TEST_DATA"),
    ("models", "RISK_MODELS"),
    ("production", "RISK_PRODUCTION"),
    ("reports", "RISK_REPORTS"),
];

/// Environment variable naming the configuration file when no path is given explicitly.
pub const CONFIG_PATH_ENV: &str = "RISK_CONFIG";

/// Errors in the configuration. Each names the file or setting to fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read configuration file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("configuration file {} line {line}, column {column}: {message}", path.display())]
    Parse {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error(
        "setting '{setting}' is missing: set it in {source_name} or with the environment variable {env}"
    )]
    Missing {
        setting: &'static str,
        env: &'static str,
        source_name: String,
    },
    #[error("setting '{setting}' = '{value}' (from {origin}): {reason}")]
    InvalidLocation {
        setting: &'static str,
        value: String,
        origin: String,
        reason: String,
    },
    #[error("settings '{first}' ({first_value}) and '{second}' ({second_value}) overlap: {reason}")]
    Overlap {
        first: &'static str,
        first_value: String,
        second: &'static str,
        second_value: String,
        reason: &'static str,
    },
    #[error(
        "seed directory '{setting}' = '{value}' (from {origin}): {reason}; expected e.g. \"seed\": {{\"source_data\": \"file://data/sourcedata\"}}"
    )]
    InvalidSeed {
        setting: &'static str,
        value: String,
        origin: String,
        reason: String,
    },
    #[error("the `lifecycle` settings (from {origin}) are not usable: {source}")]
    Lifecycle {
        origin: String,
        #[source]
        source: LifecycleError,
    },
}

/// Where one kind of data lives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum LocationUrl {
    /// A local directory (absolute after resolution).
    File { root: PathBuf },
    /// A bucket and a key prefix (no leading or trailing `/`; empty for the bucket root).
    S3 { bucket: String, prefix: String },
}

impl fmt::Display for LocationUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LocationUrl::File { root } => write!(f, "file://{}", root.display()),
            LocationUrl::S3 { bucket, prefix } if prefix.is_empty() => write!(f, "s3://{bucket}"),
            LocationUrl::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
        }
    }
}

impl LocationUrl {
    /// Parses `file://…` or `s3://bucket/prefix`; relative file paths resolve against `base_dir`.
    /// The error string says what was expected; the caller adds the setting name.
    pub fn parse(value: &str, base_dir: &Path) -> Result<LocationUrl, String> {
        let value = value.trim();
        if let Some(rest) = value.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            validate_bucket_name(bucket)?;
            let prefix = prefix.trim_end_matches('/');
            if !prefix.is_empty() {
                if prefix.starts_with('/') {
                    return Err(
                        "the key prefix must not start with '/' (write s3://bucket/prefix)".into(),
                    );
                }
                for segment in prefix.split('/') {
                    if segment.is_empty() || segment == "." || segment == ".." {
                        return Err(format!(
                            "the key prefix '{prefix}' has an empty, '.' or '..' segment; expected s3://bucket/a/b"
                        ));
                    }
                }
            }
            return Ok(LocationUrl::S3 {
                bucket: bucket.to_string(),
                prefix: prefix.to_string(),
            });
        }
        if let Some(rest) = value.strip_prefix("file://") {
            if rest.is_empty() {
                return Err(
                    "the path after file:// is empty; expected e.g. file://data/sourcedata".into(),
                );
            }
            let path = Path::new(rest);
            let joined = if path.is_absolute() {
                path.to_path_buf()
            } else {
                base_dir.join(path)
            };
            return Ok(LocationUrl::File {
                root: normalize_lexically(&joined),
            });
        }
        Err("expected a location starting with file:// (a local directory) or s3:// (a bucket and prefix)".into())
    }

    /// Whether one location contains the other (or they are the same), which would let one
    /// step's listing see another step's objects.
    fn overlaps(&self, other: &LocationUrl) -> bool {
        match (self, other) {
            (LocationUrl::File { root: a }, LocationUrl::File { root: b }) => {
                a.starts_with(b) || b.starts_with(a)
            }
            (
                LocationUrl::S3 {
                    bucket: a,
                    prefix: pa,
                },
                LocationUrl::S3 {
                    bucket: b,
                    prefix: pb,
                },
            ) => a == b && (prefix_contains(pa, pb) || prefix_contains(pb, pa)),
            _ => false,
        }
    }
}

fn prefix_contains(outer: &str, inner: &str) -> bool {
    outer.is_empty() || inner == outer || inner.starts_with(&format!("{outer}/"))
}

/// Removes `.` and resolves `..` without touching the filesystem (the directory may not exist
/// yet, so `canonicalize` is not an option).
fn normalize_lexically(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// S3's bucket naming rules, checked up front so a typo fails at start-up, not at first use.
fn validate_bucket_name(bucket: &str) -> Result<(), String> {
    let well_formed = (3..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && bucket.starts_with(|c: char| c.is_ascii_alphanumeric())
        && bucket.ends_with(|c: char| c.is_ascii_alphanumeric())
        && !bucket.contains("..");
    if well_formed {
        Ok(())
    } else {
        Err(format!(
            "'{bucket}' is not a valid bucket name; expected 3-63 lowercase letters, digits, '-' or '.', starting and ending with a letter or digit"
        ))
    }
}

/// The resolved configuration: one location per setting, and the model lifecycle's settings.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Config {
    /// Where new client CSV files arrive (the "bucket" users drop files into).
    pub source_data: LocationUrl,
    /// Where the compiled training data set, the ingestion record and quarantined rows go.
    pub compiled_data: LocationUrl,
    /// Where the held-out test data lives.
    pub test_data: LocationUrl,
    /// Where trained models and their scores are written.
    pub models: LocationUrl,
    /// The production deployment: the live model, its score and ingestion record.
    pub production: LocationUrl,
    /// Where diagnostics, reports and plots go.
    pub reports: LocationUrl,
    /// Drift rule, training window, threshold and champion/challenger gate (all optional in
    /// the file; see [`LifecycleSettings`] for each default and its source).
    pub lifecycle: LifecycleSettings,
    /// Directories whose files seed the local source and test locations on first use
    /// ([`crate::seed`]); empty unless the file names them.
    pub seed: SeedDirs,
}

/// The optional `seed` object of the file: a local directory (`file://…`) per user-data location.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct SeedFile {
    source_data: Option<String>,
    test_data: Option<String>,
}

/// The file format: every setting is a location string; unknown keys are refused so a typo
/// does not silently fall back to a default.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    source_data: Option<String>,
    compiled_data: Option<String>,
    test_data: Option<String>,
    models: Option<String>,
    production: Option<String>,
    reports: Option<String>,
    lifecycle: Option<LifecycleSettings>,
    seed: Option<SeedFile>,
}

impl ConfigFile {
    fn get(&self, setting: &str) -> Option<&String> {
        match setting {
            "source_data" => self.source_data.as_ref(),
            "compiled_data" => self.compiled_data.as_ref(),
            "test_data" => self.test_data.as_ref(),
            "models" => self.models.as_ref(),
            "production" => self.production.as_ref(),
            "reports" => self.reports.as_ref(),
            _ => None,
        }
    }
}

impl Config {
    /// Loads `path` and applies environment overrides from the process environment.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let env: BTreeMap<String, String> = std::env::vars().collect();
        Self::load_with_env(Some(path), &env)
    }

    /// Builds the configuration from environment variables alone (Lambda), with relative
    /// `file://` paths resolved against the working directory.
    pub fn from_env() -> Result<Config, ConfigError> {
        let env: BTreeMap<String, String> = std::env::vars().collect();
        Self::load_with_env(None, &env)
    }

    /// Loads an optional file, then overrides each setting from `env` when the variable is set
    /// and not blank. Split out from [`Config::load`] so tests need not mutate the process env.
    pub fn load_with_env(
        path: Option<&Path>,
        env: &BTreeMap<String, String>,
    ) -> Result<Config, ConfigError> {
        let (file, base_dir, source_name) = match path {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                })?;
                let file: ConfigFile =
                    serde_json::from_str(&text).map_err(|e| ConfigError::Parse {
                        path: path.to_path_buf(),
                        line: e.line(),
                        column: e.column(),
                        // serde's message ends with the position, which the error already gives.
                        message: e
                            .to_string()
                            .trim_end_matches(&format!(
                                " at line {} column {}",
                                e.line(),
                                e.column()
                            ))
                            .to_string(),
                    })?;
                let base = path
                    .parent()
                    .filter(|p| !p.as_os_str().is_empty())
                    .map(Path::to_path_buf)
                    .unwrap_or_else(|| PathBuf::from("."));
                let base = std::path::absolute(&base).unwrap_or(base);
                (file, base, path.display().to_string())
            }
            None => {
                let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
                (ConfigFile::default(), cwd, "the environment".to_string())
            }
        };

        let resolve = |setting: &'static str| -> Result<LocationUrl, ConfigError> {
            let env_name = env_var_for(setting);
            let from_env = env.get(env_name).filter(|v| !v.trim().is_empty());
            let (value, origin) = match (from_env, file.get(setting)) {
                (Some(v), _) => (v.clone(), format!("environment variable {env_name}")),
                (None, Some(v)) => (v.clone(), source_name.clone()),
                (None, None) => {
                    return Err(ConfigError::Missing {
                        setting,
                        env: env_name,
                        source_name: source_name.clone(),
                    });
                }
            };
            LocationUrl::parse(&value, &base_dir).map_err(|reason| ConfigError::InvalidLocation {
                setting,
                value: value.clone(),
                origin,
                reason,
            })
        };
        let seed_file = file.seed.clone().unwrap_or_default();
        let seed_dir = |setting: &'static str,
                        value: &Option<String>|
         -> Result<Option<std::path::PathBuf>, ConfigError> {
            let Some(value) = value else { return Ok(None) };
            // A location the environment moves elsewhere is not the one the file seeds.
            if env
                .get(env_var_for(setting))
                .is_some_and(|v| !v.trim().is_empty())
            {
                return Ok(None);
            }
            let invalid = |reason: String| ConfigError::InvalidSeed {
                setting,
                value: value.clone(),
                origin: source_name.clone(),
                reason,
            };
            match LocationUrl::parse(value, &base_dir).map_err(invalid)? {
                LocationUrl::File { root } => Ok(Some(root)),
                LocationUrl::S3 { .. } => Err(invalid(
                    "only local directories seed a location (put files into a bucket with `risk put`)"
                        .into(),
                )),
            }
        };
        let seed = SeedDirs {
            source_data: seed_dir("source_data", &seed_file.source_data)?,
            test_data: seed_dir("test_data", &seed_file.test_data)?,
        };
        let config = Config {
            seed,
            source_data: resolve("source_data")?,
            compiled_data: resolve("compiled_data")?,
            test_data: resolve("test_data")?,
            models: resolve("models")?,
            production: resolve("production")?,
            reports: resolve("reports")?,
            lifecycle: file
                .lifecycle
                .clone()
                .unwrap_or_default()
                .with_env(|name| env.get(name).cloned())
                .and_then(LifecycleSettings::validate)
                .map_err(|source| ConfigError::Lifecycle {
                    origin: source_name.clone(),
                    source,
                })?,
        };
        config.check_no_overlap()?;
        Ok(config)
    }

    /// Every setting with its location, in [`SETTINGS`] order.
    pub fn named_locations(&self) -> [(&'static str, &LocationUrl); 6] {
        [
            ("source_data", &self.source_data),
            ("compiled_data", &self.compiled_data),
            ("test_data", &self.test_data),
            ("models", &self.models),
            ("production", &self.production),
            ("reports", &self.reports),
        ]
    }

    fn check_no_overlap(&self) -> Result<(), ConfigError> {
        let named = self.named_locations();
        for (i, (first, a)) in named.iter().enumerate() {
            for (second, b) in &named[i + 1..] {
                if a.overlaps(b) {
                    return Err(ConfigError::Overlap {
                        first,
                        first_value: a.to_string(),
                        second,
                        second_value: b.to_string(),
                        reason: "each location must be its own directory or key prefix, not inside another",
                    });
                }
            }
        }
        Ok(())
    }
}

/// The environment variable that overrides `setting`.
fn env_var_for(setting: &str) -> &'static str {
    SETTINGS
        .iter()
        .find(|(name, _)| *name == setting)
        .map(|(_, var)| *var)
        .unwrap_or("RISK_UNKNOWN_SETTING")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_config(dir: &Path, body: &str) -> PathBuf {
        let path = dir.join("config.json");
        std::fs::write(&path, body).unwrap();
        path
    }

    const GOOD: &str = r#"{
        "source_data": "file://data/sourcedata",
        "compiled_data": "file://store/compiled",
        "test_data": "file://data/testdata",
        "models": "s3://my-artifacts/models",
        "production": "s3://my-artifacts/production/",
        "reports": "file:///tmp/reports"
    }"#;

    #[test]
    fn lifecycle_settings_come_from_the_file_and_the_drift_rule_from_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let body = GOOD.replace(
            "\"reports\"",
            "\"lifecycle\": {\"training_window_files\": 6, \"threshold\": {\"rule\": \"cost\", \"missed_exit_cost_ratio\": 5}},\n\"reports\"",
        );
        let path = write_config(dir.path(), &body);
        let config = Config::load_with_env(Some(&path), &BTreeMap::new()).unwrap();
        assert_eq!(config.lifecycle.training_window_files, 6);
        assert!(!config.lifecycle.is_original());
        let env = BTreeMap::from([("RISK_DRIFT_RULE".to_string(), "raw_f1".to_string())]);
        assert!(
            Config::load_with_env(Some(&path), &env)
                .unwrap()
                .lifecycle
                .is_original()
        );
        let bad = GOOD.replace(
            "\"reports\"",
            "\"lifecycle\": {\"training_window_files\": 0},\n\"reports\"",
        );
        let error = Config::load_with_env(Some(&write_config(dir.path(), &bad)), &BTreeMap::new())
            .unwrap_err()
            .to_string();
        assert!(error.contains("training_window_files"), "{error}");
    }

    #[test]
    fn resolves_relative_paths_against_the_config_directory() {
        let dir = tempfile::tempdir().unwrap();
        let config =
            Config::load_with_env(Some(&write_config(dir.path(), GOOD)), &BTreeMap::new()).unwrap();
        let base = std::path::absolute(dir.path()).unwrap();
        assert_eq!(
            config.source_data,
            LocationUrl::File {
                root: base.join("data/sourcedata")
            }
        );
        assert_eq!(
            config.production,
            LocationUrl::S3 {
                bucket: "my-artifacts".into(),
                prefix: "production".into()
            }
        );
        assert_eq!(
            config.reports,
            LocationUrl::File {
                root: "/tmp/reports".into()
            }
        );
    }

    #[test]
    fn environment_overrides_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let env = BTreeMap::from([("RISK_MODELS".to_string(), "s3://other-bucket/m".to_string())]);
        let config = Config::load_with_env(Some(&write_config(dir.path(), GOOD)), &env).unwrap();
        assert_eq!(
            config.models,
            LocationUrl::S3 {
                bucket: "other-bucket".into(),
                prefix: "m".into()
            }
        );
    }

    #[test]
    fn bad_location_names_the_setting_and_origin() {
        let dir = tempfile::tempdir().unwrap();
        let env = BTreeMap::from([("RISK_REPORTS".to_string(), "http://x/y".to_string())]);
        let err = Config::load_with_env(Some(&write_config(dir.path(), GOOD)), &env)
            .unwrap_err()
            .to_string();
        assert!(err.contains("'reports'"), "{err}");
        assert!(err.contains("RISK_REPORTS"), "{err}");
        assert!(err.contains("file://"), "{err}");
    }

    #[test]
    fn bad_bucket_name_is_refused() {
        let err = LocationUrl::parse("s3://My_Bucket/x", Path::new("/")).unwrap_err();
        assert!(err.contains("not a valid bucket name"), "{err}");
        let err = LocationUrl::parse("s3://bucket//x", Path::new("/")).unwrap_err();
        assert!(err.contains("must not start with '/'"), "{err}");
        let err = LocationUrl::parse("s3://bucket/a//x", Path::new("/")).unwrap_err();
        assert!(err.contains("empty"), "{err}");
        let err = LocationUrl::parse("s3://bucket/a/../b", Path::new("/")).unwrap_err();
        assert!(err.contains("'..'"), "{err}");
    }

    #[test]
    fn unknown_key_is_refused_with_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let body = "{\n  \"source_data\": \"file://a\",\n  \"modles\": \"file://b\"\n}";
        let err = Config::load_with_env(Some(&write_config(dir.path(), body)), &BTreeMap::new())
            .unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, ConfigError::Parse { line: 3, .. }), "{text}");
        assert!(text.contains("modles"), "{text}");
    }

    #[test]
    fn missing_setting_names_the_env_variable() {
        let dir = tempfile::tempdir().unwrap();
        let body = r#"{"source_data": "file://a"}"#;
        let err = Config::load_with_env(Some(&write_config(dir.path(), body)), &BTreeMap::new())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("'compiled_data'") && err.contains("RISK_COMPILED_DATA"),
            "{err}"
        );
    }

    #[test]
    fn nested_locations_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let env = BTreeMap::from([(
            "RISK_PRODUCTION".to_string(),
            "s3://my-artifacts".to_string(),
        )]);
        let err = Config::load_with_env(Some(&write_config(dir.path(), GOOD)), &env)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("'models'") && err.contains("'production'"),
            "{err}"
        );
    }

    #[test]
    fn seed_directories_resolve_against_the_config_and_must_be_local() {
        let dir = tempfile::tempdir().unwrap();
        let body = GOOD.replace(
            "\"reports\"",
            "\"seed\": {\"source_data\": \"file://data/sourcedata\"},\n\"reports\"",
        );
        let config =
            Config::load_with_env(Some(&write_config(dir.path(), &body)), &BTreeMap::new())
                .unwrap();
        let base = std::path::absolute(dir.path()).unwrap();
        assert_eq!(config.seed.source_data, Some(base.join("data/sourcedata")));
        assert_eq!(config.seed.test_data, None);
        let moved = BTreeMap::from([(
            "RISK_SOURCE_DATA".to_string(),
            "file:///elsewhere".to_string(),
        )]);
        let config = Config::load_with_env(Some(&write_config(dir.path(), &body)), &moved).unwrap();
        assert_eq!(
            config.seed.source_data, None,
            "not seeded where the file did not say"
        );
        let on_s3 = GOOD.replace(
            "\"reports\"",
            "\"seed\": {\"test_data\": \"s3://seed-bucket/t\"},\n\"reports\"",
        );
        let error =
            Config::load_with_env(Some(&write_config(dir.path(), &on_s3)), &BTreeMap::new())
                .unwrap_err()
                .to_string();
        assert!(
            error.contains("'test_data'") && error.contains("local"),
            "{error}"
        );
    }

    #[test]
    fn the_repository_configuration_keeps_every_write_out_of_the_tracked_data() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../config.json");
        let config = Config::load_with_env(Some(&path), &BTreeMap::new()).unwrap();
        let data = std::path::absolute(path.parent().unwrap().join("data")).unwrap();
        let data = normalize_lexically(&data);
        for (setting, url) in config.named_locations() {
            let LocationUrl::File { root } = url else {
                panic!("{setting} is not local")
            };
            assert!(!root.starts_with(&data), "{setting} writes under data/");
        }
        assert_eq!(config.seed.source_data, Some(data.join("sourcedata")));
        assert_eq!(config.seed.test_data, Some(data.join("testdata")));
    }

    #[test]
    fn environment_alone_is_enough() {
        let env: BTreeMap<String, String> = SETTINGS
            .iter()
            .map(|(setting, var)| (var.to_string(), format!("s3://bucket-one/{setting}")))
            .collect();
        let config = Config::load_with_env(None, &env).unwrap();
        assert_eq!(config.test_data.to_string(), "s3://bucket-one/test_data");
    }
}
