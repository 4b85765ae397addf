//! `pigeon new`: a first actor in minutes, in Rust, JavaScript or Python.
//!
//! The templates live in `runtime/cli/templates/<language>/` and are embedded
//! in the binary, with the `pigeon:actor` WIT from `wit/`: a new project needs
//! nothing from this repository. Each one is an actor that replies with the
//! payload it gets and counts its messages in its state, so deploying the
//! scaffold without edits shows a reply and a state change at once. `pigeon
//! build` (`guest_build.rs`) builds any of them.

use std::path::Path;

use anyhow::{Context, bail};

/// The languages `pigeon new` has a template for.
#[derive(Clone, Copy, PartialEq, Eq, Debug, clap::ValueEnum)]
pub enum Language {
    /// Rust with wit-bindgen (`cargo build --target wasm32-wasip2`).
    Rust,
    /// JavaScript with componentize-js (Node.js and npm).
    #[value(alias = "javascript")]
    Js,
    /// Python with componentize-py.
    #[value(alias = "py")]
    Python,
}

/// One file of a template: its path in the project and its text, where
/// `{{name}}` stands for the project's name.
type File = (&'static str, &'static str);

macro_rules! templates {
    ($lang:literal: $($path:literal),+) => {
        &[$(($path, include_str!(concat!("../templates/", $lang, "/", $path)))),+]
    };
}

const RUST: &[File] = templates!("rust": "Cargo.toml", "src/lib.rs", "README.md", ".gitignore");
const JS: &[File] = templates!("js": "package.json", "build.mjs", "src/actor.js", "README.md", ".gitignore");
const PYTHON: &[File] = templates!("python": "app.py", "pigeon.toml", "README.md", ".gitignore");
/// Every project carries the world it targets.
const WIT: File = ("wit/actor.wit", include_str!("../../../wit/actor.wit"));

/// Writes a new project `name` in `language` under `parent`; returns the
/// files written, relative to the project.
pub fn new(language: Language, name: &str, parent: &Path) -> anyhow::Result<Vec<&'static str>> {
    check_name(name)?;
    let dir = parent.join(name);
    if dir.exists() {
        bail!("`{}` already exists: pick another name, or remove it first", dir.display());
    }
    let files = match language {
        Language::Rust => RUST,
        Language::Js => JS,
        Language::Python => PYTHON,
    };
    for (path, text) in files.iter().chain([&WIT]) {
        let target = dir.join(path);
        if let Some(folder) = target.parent() {
            std::fs::create_dir_all(folder).with_context(|| format!("cannot create {}", folder.display()))?;
        }
        std::fs::write(&target, text.replace("{{name}}", name))
            .with_context(|| format!("cannot write {}", target.display()))?;
    }
    Ok(files.iter().chain([&WIT]).map(|(path, _)| *path).collect())
}

/// A project name doubles as the actor type's name, the crate's and the
/// npm package's: lowercase letters, digits, `-` and `_`, starting with a
/// letter.
fn check_name(name: &str) -> anyhow::Result<()> {
    let valid = name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !valid {
        bail!(
            "`{name}` cannot name an actor: use lowercase letters, digits, `-` and `_`, starting with a letter (e.g. `greeter`)"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_names_the_project_and_carries_the_world() {
        for language in [Language::Rust, Language::Js, Language::Python] {
            let dir = tempfile::tempdir().unwrap();
            let files = new(language, "hello-world", dir.path()).unwrap();
            assert!(files.contains(&"wit/actor.wit"), "{language:?}");
            let readme = std::fs::read_to_string(dir.path().join("hello-world/README.md")).unwrap();
            assert!(readme.contains("pigeon deploy hello-world.wasm --name hello-world"), "{language:?}: {readme}");
            for file in files {
                let text = std::fs::read_to_string(dir.path().join("hello-world").join(file)).unwrap();
                assert!(!text.contains("{{"), "{language:?} {file} keeps a placeholder");
            }
        }
    }

    #[test]
    fn refuses_bad_names_and_existing_directories() {
        let dir = tempfile::tempdir().unwrap();
        for bad in ["Hello", "1st", "a b", "", "../x"] {
            let err = new(Language::Rust, bad, dir.path()).unwrap_err().to_string();
            assert!(err.contains("lowercase letters"), "{bad}: {err}");
        }
        new(Language::Python, "taken", dir.path()).unwrap();
        let err = new(Language::Js, "taken", dir.path()).unwrap_err().to_string();
        assert!(err.contains("already exists"), "{err}");
    }
}
