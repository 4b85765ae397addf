//! `pigeon build`: builds an actor project into `<project>.wasm`, whatever its
//! language, so that every project deploys the same way.
//!
//! The project's files say its language: `Cargo.toml` is Rust (cargo for
//! `wasm32-wasip2`; the component is copied out of the target directory),
//! `package.json` is JavaScript (`npm install` the first time, then `npm run
//! build -- <out>`), `app.py` is Python (componentize-py, with the WIT
//! directories and world of the project's `pigeon.toml`). Each tool's own
//! output goes to the terminal as it runs, so a long first build shows its
//! progress; when a tool is missing, the error says how to install it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, bail};

use crate::scaffold::Language;

/// The component a build made.
pub struct Built {
    pub component: PathBuf,
    pub bytes: u64,
    /// The project's name: the directory's, which `pigeon new` made the
    /// type's.
    pub name: String,
}

/// Builds the project in `dir`.
pub fn build(dir: &Path) -> anyhow::Result<Built> {
    let dir = dir.canonicalize().with_context(|| format!("no project at {}", dir.display()))?;
    let name = dir.file_name().and_then(|n| n.to_str()).context("the project directory has no name")?.to_string();
    let component = dir.join(format!("{name}.wasm"));
    match language(&dir)? {
        Language::Rust => {
            let built = cargo_build(&dir)?;
            std::fs::copy(&built, &component).with_context(|| format!("cannot copy {}", built.display()))?;
        }
        Language::Js => {
            if !dir.join("node_modules").exists() {
                eprintln!("installing componentize-js (npm install; once)");
                run(Command::new("npm").args(["install", "--no-audit", "--no-fund"]).current_dir(&dir), NPM)?;
            }
            let mut npm = Command::new("npm");
            npm.args(["run", "--silent", "build", "--"]).arg(&component).current_dir(&dir);
            run(&mut npm, NPM)?;
        }
        Language::Python => {
            let config = PythonBuild::of(&dir)?;
            let mut componentize = Command::new("componentize-py");
            for wit in &config.wit {
                componentize.arg("-d").arg(wit);
            }
            componentize.args(["-w", &config.world, "componentize", "app", "-o"]).arg(&component);
            run(componentize.current_dir(&dir), COMPONENTIZE_PY)?;
        }
    }
    let bytes = std::fs::metadata(&component)
        .with_context(|| format!("the build ended without making {}", component.display()))?
        .len();
    Ok(Built { component, bytes, name })
}

/// A Python project's `pigeon.toml`: the WIT directories and the world
/// componentize-py builds against (the `actor` world of `wit/` when the
/// file is absent). Rust and JavaScript projects name theirs in code
/// (`wit_bindgen::generate!`, `build.mjs`).
#[derive(serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
struct PythonBuild {
    wit: Vec<String>,
    world: String,
}

impl Default for PythonBuild {
    fn default() -> Self {
        Self { wit: vec!["wit".into()], world: "actor".into() }
    }
}

impl PythonBuild {
    fn of(dir: &Path) -> anyhow::Result<Self> {
        let file = dir.join("pigeon.toml");
        let text = match std::fs::read_to_string(&file) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", file.display())),
        };
        let config: Self = toml::from_str(&text).with_context(|| {
            format!("{} is not a build description: `wit = [\"wit\"]` and `world = \"actor\"`", file.display())
        })?;
        if let Some(missing) = config.wit.iter().find(|wit| !dir.join(wit).exists()) {
            bail!("{} lists the WIT directory `{missing}`, which does not exist", file.display());
        }
        Ok(config)
    }
}

const NPM: &str = "npm (install Node.js 20 or newer with npm)";
const COMPONENTIZE_PY: &str = "componentize-py (`pip install componentize-py==0.25.1`)";
const CARGO: &str = "cargo (install Rust with rustup, then `rustup target add wasm32-wasip2`)";

/// Which language the project in `dir` is written in.
fn language(dir: &Path) -> anyhow::Result<Language> {
    let found = [("Cargo.toml", Language::Rust), ("package.json", Language::Js), ("app.py", Language::Python)]
        .into_iter()
        .find(|(file, _)| dir.join(file).exists());
    match found {
        Some((_, language)) => Ok(language),
        None => bail!(
            "{} is not an actor project: no Cargo.toml (Rust), package.json (JavaScript) or app.py (Python); \
             `pigeon new rust|js|python NAME` makes one",
            dir.display()
        ),
    }
}

/// Runs `command`, its output going to the terminal; `tool` names what to
/// install when it cannot start.
fn run(command: &mut Command, tool: &str) -> anyhow::Result<()> {
    let program = command.get_program().to_string_lossy().into_owned();
    // Tools talk on our stderr: stdout is this command's result (`--json`).
    let status =
        command.stdout(std::io::stderr()).status().with_context(|| format!("cannot run `{program}`: needs {tool}"))?;
    if !status.success() {
        bail!("`{program}` failed ({status}); its output is above");
    }
    Ok(())
}

/// `cargo build --release --target wasm32-wasip2`; returns the component,
/// found in cargo's own report of what it built (so `CARGO_TARGET_DIR` and
/// workspaces are respected).
fn cargo_build(dir: &Path) -> anyhow::Result<PathBuf> {
    let output = Command::new("cargo")
        .args(["build", "--release", "--target", "wasm32-wasip2", "--message-format=json-render-diagnostics"])
        .current_dir(dir)
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("cannot run `cargo`: needs {CARGO}"))?;
    if !output.status.success() {
        bail!(
            "`cargo build` failed ({}); its output is above. If it cannot find `core` or `std`, \
             add the target: `rustup target add wasm32-wasip2`",
            output.status
        );
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let component = stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|message| message["reason"] == "compiler-artifact")
        .flat_map(|message| message["filenames"].as_array().cloned().unwrap_or_default())
        .filter_map(|file| file.as_str().map(PathBuf::from))
        .find(|file| file.extension().is_some_and(|e| e == "wasm"));
    component.context("cargo built no .wasm: is the crate a `cdylib` (`[lib] crate-type = [\"cdylib\"]`)?")
}
