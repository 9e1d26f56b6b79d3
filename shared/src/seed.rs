//! Seed files for local locations: a configuration may name, for the source data and the test
//! data, a directory whose files are copied into the location the first time it is used (when
//! its local directory does not exist yet). The repository's `config.json` seeds
//! `local-store/sourcedata` and `local-store/testdata` from the tracked `data/` this way, so
//! everything the walkthrough puts, generates or ingests lands in the ignored local store, the
//! shipped files stay as they are, and `rm -rf local-store` starts over from the seed.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::config::{Config, LocationUrl};

/// The seed directories of the two user-data locations (absolute once resolved).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SeedDirs {
    pub source_data: Option<PathBuf>,
    pub test_data: Option<PathBuf>,
}

/// A seed directory that could not be copied in.
#[derive(Debug, thiserror::Error)]
#[error(
    "cannot seed {setting} ({location}) from {seed}: {source}; check that the seed directory exists, or remove \"seed\" from the configuration"
)]
pub struct SeedError {
    setting: &'static str,
    location: String,
    seed: String,
    #[source]
    source: std::io::Error,
}

/// What one seeding copied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seeded {
    pub setting: &'static str,
    pub location: PathBuf,
    pub files: usize,
}

/// Copies each seed directory into its location when the location is a local directory that
/// does not exist yet; locations that exist, or are on S3, are left alone. The copy is made in a
/// hidden sibling directory and renamed into place, so an interrupted seeding leaves no half
/// seeded location behind (the next run seeds again).
pub fn seed_first_use(config: &Config) -> Result<Vec<Seeded>, SeedError> {
    let pairs = [
        ("source_data", &config.source_data, &config.seed.source_data),
        ("test_data", &config.test_data, &config.seed.test_data),
    ];
    let mut seeded = Vec::new();
    for (setting, location, seed) in pairs {
        let (LocationUrl::File { root }, Some(seed)) = (location, seed) else {
            continue;
        };
        if root.exists() {
            continue;
        }
        let files = copy_into_new_dir(seed, root).map_err(|source| SeedError {
            setting,
            location: location.to_string(),
            seed: seed.display().to_string(),
            source,
        })?;
        tracing::info!(
            setting,
            files,
            from = %seed.display(),
            to = %root.display(),
            "first use: seeded the location"
        );
        seeded.push(Seeded {
            setting,
            location: root.clone(),
            files,
        });
    }
    Ok(seeded)
}

/// Copies the visible regular files of `seed` into a new directory `target`; the number copied.
fn copy_into_new_dir(seed: &Path, target: &Path) -> std::io::Result<usize> {
    let parent = target.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent)?;
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let staging = parent.join(format!(".{name}.seeding-{}", std::process::id()));
    if staging.exists() {
        std::fs::remove_dir_all(&staging)?;
    }
    std::fs::create_dir_all(&staging)?;
    let copy = || {
        let mut copied = 0;
        for entry in std::fs::read_dir(seed)? {
            let entry = entry?;
            let visible = !entry.file_name().to_string_lossy().starts_with('.');
            if visible && entry.file_type()?.is_file() {
                std::fs::copy(entry.path(), staging.join(entry.file_name()))?;
                copied += 1;
            }
        }
        Ok::<_, std::io::Error>(copied)
    };
    let copied = match copy() {
        Ok(copied) => copied,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(e);
        }
    };
    match std::fs::rename(&staging, target) {
        Ok(()) => Ok(copied),
        // Another process seeded it first: theirs stands.
        Err(_) if target.exists() => {
            std::fs::remove_dir_all(&staging)?;
            Ok(0)
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(root: &Path) -> Config {
        let file = |dir: &str| LocationUrl::File {
            root: root.join(dir),
        };
        Config {
            source_data: file("store/source"),
            compiled_data: file("store/compiled"),
            test_data: file("store/test"),
            models: file("store/models"),
            production: file("store/production"),
            reports: file("store/reports"),
            lifecycle: Default::default(),
            seed: SeedDirs {
                source_data: Some(root.join("seed/source")),
                test_data: Some(root.join("seed/test")),
            },
        }
    }

    #[test]
    fn seeds_only_locations_that_do_not_exist_and_leaves_the_seed_alone() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for (path, body) in [
            ("seed/source/a.csv", "a"),
            ("seed/source/b.csv", "b"),
            ("seed/source/.hidden", "h"),
            ("seed/test/t.csv", "t"),
        ] {
            std::fs::create_dir_all(root.join(path).parent().unwrap()).unwrap();
            std::fs::write(root.join(path), body).unwrap();
        }
        let config = config(root);
        let seeded = seed_first_use(&config).unwrap();
        assert_eq!(
            seeded
                .iter()
                .map(|s| (s.setting, s.files))
                .collect::<Vec<_>>(),
            [("source_data", 2), ("test_data", 1)]
        );
        assert_eq!(
            std::fs::read(root.join("store/source/b.csv")).unwrap(),
            b"b"
        );
        assert!(!root.join("store/source/.hidden").exists());

        // A location in use is never reseeded, whatever it holds now.
        std::fs::write(root.join("store/source/a.csv"), "changed").unwrap();
        std::fs::remove_file(root.join("store/test/t.csv")).unwrap();
        assert!(seed_first_use(&config).unwrap().is_empty());
        assert_eq!(
            std::fs::read(root.join("store/source/a.csv")).unwrap(),
            b"changed"
        );
        assert_eq!(std::fs::read(root.join("seed/source/a.csv")).unwrap(), b"a");
        assert!(!root.join("store/test/t.csv").exists());
        // No staging directory is left behind.
        let leftovers: Vec<_> = std::fs::read_dir(root.join("store"))
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn a_missing_seed_directory_names_the_setting_and_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let error = seed_first_use(&config(dir.path())).unwrap_err().to_string();
        assert!(
            error.contains("source_data") && error.contains("seed/source"),
            "{error}"
        );
        assert!(!dir.path().join("store/source").exists());
        let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("store"))
            .unwrap()
            .filter_map(|e| e.ok())
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }
}
