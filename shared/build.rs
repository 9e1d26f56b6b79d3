//! Captures, at build time, the direct dependencies of the workspace and the versions
//! `Cargo.lock` resolved them to, so the diagnostics step can report dependency status from a
//! Lambda package that carries neither file. Plain line parsing: both files are machine-written
//! and a TOML parser would be a build dependency for two loops.

use std::collections::BTreeMap;
use std::env;
use std::fs;
use std::path::PathBuf;

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap_or_default());
    let root = manifest_dir.join("..");
    let workspace_toml = root.join("Cargo.toml");
    let lock = root.join("Cargo.lock");
    println!("cargo:rerun-if-changed={}", workspace_toml.display());
    println!("cargo:rerun-if-changed={}", lock.display());

    let mut out = String::from("&[\n");
    match (
        fs::read_to_string(&workspace_toml),
        fs::read_to_string(&lock),
    ) {
        (Ok(toml), Ok(lock)) => {
            let locked = locked_versions(&lock);
            for (name, requirement) in direct_dependencies(&toml) {
                let version = locked.get(&name).and_then(|versions| {
                    versions
                        .iter()
                        .rev()
                        .find(|v| caret_compatible(&requirement, v))
                        .or_else(|| versions.last())
                        .cloned()
                });
                if let Some(version) = version {
                    out.push_str(&format!("    ({name:?}, {requirement:?}, {version:?}),\n"));
                }
            }
        }
        _ => println!(
            "cargo:warning=Cargo.toml or Cargo.lock not found at the workspace root; dependency status will be empty"
        ),
    }
    out.push(']');
    let dest =
        PathBuf::from(env::var("OUT_DIR").unwrap_or_default()).join("locked_dependencies.rs");
    if let Err(e) = fs::write(&dest, out) {
        println!("cargo:warning=cannot write {}: {e}", dest.display());
    }
}

/// `name -> requirement` for every entry of `[workspace.dependencies]` that comes from crates.io.
fn direct_dependencies(toml: &str) -> Vec<(String, String)> {
    let mut in_section = false;
    let mut found = Vec::new();
    for line in toml.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_section = line == "[workspace.dependencies]";
            continue;
        }
        if !in_section || line.starts_with('#') || line.is_empty() {
            continue;
        }
        let Some((name, spec)) = line.split_once('=') else {
            continue;
        };
        let (name, spec) = (name.trim(), spec.trim());
        if spec.contains("path =") {
            continue;
        }
        let requirement = if spec.starts_with('"') {
            spec.trim_matches('"').to_string()
        } else {
            spec.split("version")
                .nth(1)
                .and_then(|rest| rest.split('"').nth(1))
                .unwrap_or_default()
                .to_string()
        };
        found.push((name.to_string(), requirement));
    }
    found
}

/// `name -> [versions]` from Cargo.lock (a crate can be locked at several versions).
fn locked_versions(lock: &str) -> BTreeMap<String, Vec<String>> {
    let mut versions: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut name: Option<String> = None;
    for line in lock.lines() {
        if line == "[[package]]" {
            name = None;
        } else if let Some(value) = line.strip_prefix("name = ") {
            name = Some(value.trim_matches('"').to_string());
        } else if let (Some(value), Some(current)) = (line.strip_prefix("version = "), name.take())
        {
            versions
                .entry(current)
                .or_default()
                .push(value.trim_matches('"').to_string());
        }
    }
    versions
}

/// Whether `version` can satisfy the caret requirement `requirement` (same major, or the same
/// minor for 0.x): enough to pick the right one when a crate is locked at several versions.
fn caret_compatible(requirement: &str, version: &str) -> bool {
    let req: Vec<&str> = requirement.split('.').collect();
    let ver: Vec<&str> = version.split('.').collect();
    match (req.first(), ver.first()) {
        (Some(&"0"), Some(&"0")) => req.get(1).is_none_or(|minor| ver.get(1) == Some(minor)),
        (Some(major), Some(v_major)) => major == v_major,
        _ => false,
    }
}
