//! Builds the guests written in other WIT languages (JavaScript with
//! componentize-js, Python with componentize-py) for the build script.
//!
//! Their toolchains are not Rust's: they are used when installed and skipped
//! with a warning when not (their tests then skip too), unless
//! `PIGEON_E2E_REQUIRED` is set, as in CI, where a missing toolchain fails
//! the build. Each build takes seconds and makes a component of 10–20 MB, so
//! a stamp (a hash of the sources, the WIT and the tool's version) skips it
//! when nothing changed.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::{env, fs};

/// How a guest is built.
pub enum Lang {
    /// `node js-tools/componentize.mjs <source>`, with componentize-js from
    /// `guest-examples/node_modules` (`npm ci --prefix guest-examples`).
    /// `world`: a world of another WIT package (its directory under
    /// `guest-examples/`, and its name) instead of `pigeon:actor`'s `actor`.
    JavaScript { source: &'static str, world: Option<(&'static str, &'static str)> },
    /// `componentize-py ... componentize <module>`.
    Python { module: &'static str },
}

/// A guest directory under `guest-examples/` and its language.
pub struct Guest {
    pub dir: &'static str,
    pub lang: Lang,
}

/// Builds `guest` into `out_dir` if its toolchain is there; returns the
/// generated Rust for its `Option<&str>` path constant.
pub fn build(guest: &Guest, root: &Path, out_dir: &Path) -> String {
    let guests = root.join("guest-examples");
    let source_dir = guests.join(guest.dir);
    println!("cargo:rerun-if-changed={}", source_dir.display());
    let file = guest.dir.replace('/', "-");
    let name = file.to_uppercase().replace('-', "_");
    let (language, tool) = match guest.lang {
        Lang::JavaScript { .. } => ("JavaScript", javascript_tool(&guests)),
        Lang::Python { .. } => ("Python", python_tool()),
    };
    let doc = format!(
        "/// Path of the component built from `guest-examples/{}` ({language}); `None` when its toolchain is not installed.",
        guest.dir
    );
    let version = match tool {
        Ok(version) => version,
        Err(missing) => {
            let why = format!("guest-examples/{} ({language}) was not built: {missing}", guest.dir);
            if env::var_os("PIGEON_E2E_REQUIRED").is_some_and(|v| v == "1") {
                panic!("{why}; PIGEON_E2E_REQUIRED=1 needs every guest");
            }
            println!("cargo:warning={why}; its tests will skip (then `cargo clean -p pigeon-test-artifacts`)");
            return format!("{doc}\npub const {name}: Option<&str> = None;\n");
        }
    };

    let out = out_dir.join(format!("{file}.wasm"));
    let stamp_path = out_dir.join(format!("{file}.stamp"));
    let package_wit = match guest.lang {
        Lang::JavaScript { world: Some((wit, _)), .. } => Some(guests.join(wit)),
        _ => None,
    };
    let inputs = [source_dir.clone(), root.join("wit"), guests.join("js-tools")];
    let stamp = stamp(inputs.iter().chain(&package_wit), &version);
    let fresh = out.exists() && fs::read_to_string(&stamp_path).is_ok_and(|s| s == stamp);
    if !fresh {
        fs::create_dir_all(out_dir).expect("cannot create the foreign guests' directory");
        let partial = out.with_extension("wasm.partial");
        let mut command = match guest.lang {
            Lang::JavaScript { source, world } => {
                let mut c = Command::new("node");
                c.arg(guests.join("js-tools/componentize.mjs")).arg(source_dir.join(source)).arg(&partial);
                if let Some((wit, world)) = world {
                    let staged = stage_wit(&guests.join(wit), &root.join("wit"), &out_dir.join(format!("{file}-wit")));
                    c.arg("--wit").arg(staged).args(["--world", world]);
                }
                c
            }
            Lang::Python { module } => {
                let mut c = Command::new("componentize-py");
                c.arg("-d").arg(root.join("wit")).args(["-w", "actor", "componentize", "-p"]);
                c.arg(&source_dir).arg(module).arg("-o").arg(&partial);
                // No __pycache__ in the source tree (it would rerun this script).
                c.env("PYTHONDONTWRITEBYTECODE", "1");
                c
            }
        };
        let output = command.output().unwrap_or_else(|e| panic!("cannot run the {language} toolchain: {e}"));
        assert!(
            output.status.success(),
            "building guest-examples/{} failed:\n{}{}",
            guest.dir,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        fs::rename(&partial, &out).expect("cannot move the built component into place");
        fs::write(&stamp_path, &stamp).expect("cannot write the build stamp");
    }
    format!("{doc}\npub const {name}: Option<&str> = Some({:?});\n", out.display())
}

/// componentize-js's version, if it is installed under `guest-examples`.
fn javascript_tool(guests: &Path) -> Result<String, String> {
    let manifest = guests.join("node_modules/@bytecodealliance/componentize-js/package.json");
    // Installing it (npm ci) creates this file: that reruns the build script.
    println!("cargo:rerun-if-changed={}", manifest.display());
    println!("cargo:rerun-if-changed={}", guests.join("package-lock.json").display());
    let node = Command::new("node").arg("--version").output().map_err(|_| "`node` is not on PATH".to_string())?;
    let package = fs::read_to_string(&manifest)
        .map_err(|_| "componentize-js is not installed (`npm ci --prefix guest-examples`)".to_string())?;
    Ok(format!("{}{package}", String::from_utf8_lossy(&node.stdout)))
}

/// componentize-py's version, if it is on PATH.
fn python_tool() -> Result<String, String> {
    let missing = || "componentize-py is not installed (`pip install componentize-py==0.25.1`)".to_string();
    let output = Command::new("componentize-py").arg("--version").output().map_err(|_| missing())?;
    if !output.status.success() {
        return Err(missing());
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// A WIT directory as componentize-js reads one: the package's own `.wit`
/// files, and `pigeon:actor` (which it includes) under `deps/`.
fn stage_wit(package: &Path, actor_wit: &Path, staged: &Path) -> PathBuf {
    let _ = fs::remove_dir_all(staged);
    let deps = staged.join("deps/pigeon-actor");
    fs::create_dir_all(&deps).expect("cannot create the staged WIT directory");
    for (from, to) in [(package, staged), (actor_wit, deps.as_path())] {
        for entry in fs::read_dir(from).expect("cannot read a WIT directory").flatten() {
            if entry.path().extension().is_some_and(|e| e == "wit") {
                fs::copy(entry.path(), to.join(entry.file_name())).expect("cannot stage a WIT file");
            }
        }
    }
    staged.to_path_buf()
}

/// A hash of every file under `dirs` (paths and contents) and `version`.
fn stamp<'a>(dirs: impl Iterator<Item = &'a PathBuf>, version: &str) -> String {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    version.hash(&mut hasher);
    for dir in dirs {
        let mut files = Vec::new();
        walk(dir, &mut files);
        files.sort();
        for file in files {
            file.hash(&mut hasher);
            fs::read(&file).unwrap_or_default().hash(&mut hasher);
        }
    }
    format!("{:016x}", hasher.finish())
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n != "__pycache__") {
                walk(&path, files);
            }
        } else {
            files.push(path);
        }
    }
}
