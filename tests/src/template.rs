//! Targets: the command templates a student gives (`--server './echo_server {port}'`).
//!
//! A template is split into words as a shell would split it (`shell-words`), but no
//! shell runs it: each word becomes one argv entry after its placeholders are filled.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// A command template, split into words, with relative program paths made absolute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    /// What the user wrote.
    pub source: String,
    /// The words, placeholders still in them.
    pub words: Vec<String>,
}

/// Why a template cannot be used: exit 2 before any check runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError(pub String);

impl std::fmt::Display for TemplateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TemplateError {}

impl Template {
    /// Splits `source` like a shell and resolves paths against `base` (the directory the
    /// user ran the checker from): targets run in a fresh temporary directory, so
    /// `./echo_server` or `my_server.py` must name the user's file, not one there.
    ///
    /// Made absolute: the program word when it contains a `/`; any later word without
    /// a placeholder that names an existing file under `base` and looks like a path
    /// (has a `/` or a file extension).
    pub fn parse(source: &str, base: &Path) -> Result<Template, TemplateError> {
        let words = shell_words::split(source)
            .map_err(|e| TemplateError(format!("cannot split template {source:?}: {e}")))?;
        if words.is_empty() {
            return Err(TemplateError(
                "empty template: give a command such as './echo_server {port}'".into(),
            ));
        }
        let words = words
            .into_iter()
            .enumerate()
            .map(|(i, word)| {
                let looks_like_path =
                    word.contains('/') || (i > 0 && Path::new(&word).extension().is_some());
                let relative = !word.starts_with('/') && !word.contains('{');
                if looks_like_path && relative && (i == 0 || base.join(&word).exists()) {
                    let word = word.strip_prefix("./").unwrap_or(&word);
                    base.join(word).to_string_lossy().into_owned()
                } else {
                    word
                }
            })
            .collect();
        Ok(Template {
            source: source.to_string(),
            words,
        })
    }

    /// A template made of words that need no splitting (our reference binaries).
    pub fn from_words(words: Vec<String>) -> Template {
        let source = shell_words::join(&words);
        Template { source, words }
    }

    /// The placeholders the template uses, such as `{port}`.
    pub fn placeholders(&self) -> Vec<String> {
        let mut found = Vec::new();
        for word in &self.words {
            let mut rest = word.as_str();
            while let Some(start) = rest.find('{') {
                let Some(len) = rest[start..].find('}') else {
                    break;
                };
                let name = &rest[start..=start + len];
                if !found.iter().any(|f| f == name) {
                    found.push(name.to_string());
                }
                rest = &rest[start + len + 1..];
            }
        }
        found
    }

    /// Checks that the template uses every placeholder in `required` and none outside
    /// `allowed`, and that its program exists and is executable.
    pub fn validate(
        &self,
        role: &str,
        required: &[&str],
        allowed: &[&str],
    ) -> Result<(), TemplateError> {
        resolve_program(&self.words[0])?;
        let used = self.placeholders();
        for need in required {
            if !used.iter().any(|u| u == need) {
                return Err(TemplateError(format!(
                    "the {role} template {:?} has no {need}: the checker chooses the value, so write {need} where your program takes it",
                    self.source
                )));
            }
        }
        for u in &used {
            if !allowed.contains(&u.as_str()) {
                return Err(TemplateError(format!(
                    "the {role} template {:?} uses {u}, which role {role} does not have (it has {})",
                    self.source,
                    allowed.join(", ")
                )));
            }
        }
        Ok(())
    }

    /// The argv with placeholders filled from `values`.
    pub fn render(&self, values: &BTreeMap<&str, String>) -> Vec<String> {
        self.words
            .iter()
            .map(|word| {
                let mut word = word.clone();
                for (name, value) in values {
                    word = word.replace(name, value);
                }
                word
            })
            .collect()
    }
}

/// Finds the program a template runs: a path as given, or a bare name on `PATH`, and
/// checks that it is an executable file.
pub fn resolve_program(program: &str) -> Result<PathBuf, TemplateError> {
    let candidates: Vec<PathBuf> = if program.contains('/') {
        vec![PathBuf::from(program)]
    } else {
        std::env::var_os("PATH")
            .map(|path| {
                std::env::split_paths(&path)
                    .map(|dir| dir.join(program))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut found_not_executable = None;
    for candidate in candidates {
        if let Ok(meta) = std::fs::metadata(&candidate) {
            if meta.is_file() && meta.permissions().mode() & 0o111 != 0 {
                return Ok(candidate);
            }
            found_not_executable.get_or_insert(candidate);
        }
    }
    Err(TemplateError(match found_not_executable {
        Some(path) if path.is_dir() => format!("{} is a directory, not a program", path.display()),
        Some(path) => format!(
            "{} is not executable: run `chmod +x {}`, or name its interpreter first (`python3 {}`)",
            path.display(),
            path.display(),
            path.display()
        ),
        None if program.contains('/') => format!("program not found: {program}"),
        None => format!("program not found on PATH: {program}"),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_like_a_shell_and_makes_the_program_absolute() {
        let t = Template::parse(
            "./echo_server '{port}' --name \"a b\"",
            Path::new("/home/me"),
        )
        .unwrap();
        assert_eq!(t.words, ["/home/me/echo_server", "{port}", "--name", "a b"]);
        assert_eq!(t.placeholders(), ["{port}"]);
    }

    #[test]
    fn a_script_argument_that_exists_is_made_absolute() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("srv.py"), "").unwrap();
        let t = Template::parse("python3 srv.py {port} other.py", dir.path()).unwrap();
        assert_eq!(t.words[0], "python3");
        assert_eq!(t.words[1], dir.path().join("srv.py").to_string_lossy());
        assert_eq!(
            t.words[3], "other.py",
            "a word naming no file is left alone"
        );
    }

    #[test]
    fn render_fills_every_placeholder() {
        let t = Template::from_words(vec!["c".into(), "{host}:{port}".into()]);
        let values = BTreeMap::from([
            ("{host}", "127.0.0.1".to_string()),
            ("{port}", "9".to_string()),
        ]);
        assert_eq!(t.render(&values), ["c", "127.0.0.1:9"]);
    }

    #[test]
    fn validation_names_what_to_fix() {
        let t = Template::parse("sh -c true", Path::new("/")).unwrap();
        // sh exists on PATH, so the complaint is the missing placeholder.
        let err = t.validate("server", &["{port}"], &["{port}"]).unwrap_err();
        assert!(err.0.contains("has no {port}"), "{err}");

        let t = Template::parse("./missing {port}", Path::new("/nonexistent")).unwrap();
        let err = t.validate("server", &["{port}"], &["{port}"]).unwrap_err();
        assert!(
            err.0.starts_with("program not found: /nonexistent"),
            "{err}"
        );

        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("srv"), "").unwrap();
        let t = Template::parse("./srv {port}", dir.path()).unwrap();
        let err = t.validate("server", &["{port}"], &["{port}"]).unwrap_err();
        assert!(err.0.contains("is not executable"), "{err}");

        let t = Template::parse("sh {port} {file}", Path::new("/")).unwrap();
        let err = t.validate("server", &["{port}"], &["{port}"]).unwrap_err();
        assert!(err.0.contains("uses {file}"), "{err}");
    }
}
