//! Calling cargo: through the `CARGO` it was started with, from the workspace root, and
//! reading its JSON messages rather than guessing paths under target/.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, bail};

/// The workspace root (xtask lives in `<root>/xtask`).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask has a parent")
        .to_path_buf()
}

/// Where cargo puts what it builds: `$CARGO_TARGET_DIR`, or `<root>/target`.
pub fn target_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"));
    std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    Ok(dir)
}

/// A `cargo` command in the workspace root, with the cargo that runs us.
pub fn cargo() -> Command {
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command.current_dir(root());
    command
}

/// An artifact cargo built: which package and target it belongs to and where it is.
#[derive(Debug, Clone)]
pub struct Artifact {
    pub package: String,
    pub target: String,
    pub kind: String,
    pub executable: PathBuf,
    pub manifest_dir: PathBuf,
}

/// Runs `cargo <args> --message-format=json-render-diagnostics` and returns every
/// executable it reports (compiler messages go to stderr, rendered for a person).
pub fn build_executables(args: &[&str]) -> anyhow::Result<Vec<Artifact>> {
    let output = cargo()
        .args(args)
        .arg("--message-format=json-render-diagnostics")
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("run cargo {}", args.join(" ")))?;
    if !output.status.success() {
        bail!("cargo {} failed ({})", args.join(" "), output.status);
    }
    let names = package_names()?;
    let mut found = Vec::new();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let Ok(message) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if message["reason"] != "compiler-artifact" {
            continue;
        }
        let Some(executable) = message["executable"].as_str() else {
            continue;
        };
        let manifest = message["manifest_path"].as_str().unwrap_or_default();
        let package = names.get(Path::new(manifest)).cloned().unwrap_or_default();
        found.push(Artifact {
            package,
            target: message["target"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            kind: message["target"]["kind"][0]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            executable: PathBuf::from(executable),
            manifest_dir: Path::new(manifest)
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_default(),
        });
    }
    Ok(found)
}

/// Every workspace package's name, by the path of its Cargo.toml (`cargo metadata`).
fn package_names() -> anyhow::Result<std::collections::HashMap<PathBuf, String>> {
    let output = cargo()
        .args(["metadata", "--no-deps", "--format-version", "1"])
        .stderr(Stdio::inherit())
        .output()
        .context("run cargo metadata")?;
    if !output.status.success() {
        bail!("cargo metadata failed ({})", output.status);
    }
    let metadata: serde_json::Value =
        serde_json::from_slice(&output.stdout).context("parse cargo metadata")?;
    Ok(metadata["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| {
            Some((
                PathBuf::from(p["manifest_path"].as_str()?),
                p["name"].as_str()?.to_string(),
            ))
        })
        .collect())
}

/// Builds one package's binary and returns its path.
pub fn binary_of(package: &str) -> anyhow::Result<PathBuf> {
    let artifacts = build_executables(&["build", "--quiet", "--package", package, "--bins"])?;
    artifacts
        .into_iter()
        .find(|a| a.package == package && a.kind == "bin")
        .map(|a| a.executable)
        .with_context(|| format!("cargo built no binary for package {package}"))
}
