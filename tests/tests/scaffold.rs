//! `pigeon new` then `pigeon build` make a project that deploys without
//! edits, in each language: the real binary scaffolds it in a temporary
//! directory, the language's real toolchain builds it (cargo, componentize-js
//! from npm, componentize-py), a real node deploys it, and a call gets the
//! scaffold's echo back while its state counts the messages.
//!
//! A language whose toolchain is not installed is skipped, saying so, unless
//! `PIGEON_E2E_REQUIRED=1` (as in CI), where that fails the test.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use pigeon_tests::process::{json, ok, pigeon_bin, start_fresh};

/// Runs the real `pigeon` in `dir` with `env`.
fn pigeon_in(dir: &Path, args: &[&str], env: &[(&str, &Path)]) -> Output {
    let mut command = Command::new(pigeon_bin());
    command.args(args).current_dir(dir).env("PIGEON_LOG", "warn");
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().expect("pigeon runs")
}

/// Whether `program --version` runs; if not, skips (or fails under
/// `PIGEON_E2E_REQUIRED=1`) with how to install it.
fn toolchain_present(program: &str, install: &str) -> bool {
    if Command::new(program).arg("--version").output().is_ok_and(|o| o.status.success()) {
        return true;
    }
    pigeon_tests::skip(&format!("`{program}` is not installed ({install})"));
    false
}

/// A target directory for scaffolded Rust projects that outlives the test,
/// so wit-bindgen compiles once per machine rather than once per run. It is
/// not the tests' own: the outer cargo may still hold that one's lock.
fn scaffold_target_dir() -> PathBuf {
    let profile_dir = pigeon_bin().parent().expect("<target>/<profile>");
    profile_dir.parent().expect("<target>").join("scaffold-guests")
}

fn scaffold_build_deploy_call(language: &str) {
    let work = tempfile::tempdir().unwrap();
    let name = format!("hello-{language}");
    let target_dir = scaffold_target_dir();
    let env: &[(&str, &Path)] = &[("CARGO_TARGET_DIR", &target_dir)];

    let created = json(&ok(&pigeon_in(work.path(), &["--json", "new", language, &name], env)));
    assert_eq!(created["name"], name.as_str());
    let project = work.path().join(&name);
    assert!(project.join("wit/actor.wit").exists() && project.join("README.md").exists());

    let built = json(&ok(&pigeon_in(&project, &["--json", "build"], env)));
    let component = project.join(format!("{name}.wasm"));
    assert_eq!(built["component"], component.to_str().unwrap());
    assert!(built["bytes"].as_u64().unwrap() > 1000, "{built}");

    let (_data, node) = start_fresh();
    ok(&node.cli(&["deploy", component.to_str().unwrap(), "--name", &name]));
    let actor = format!("{name}/alice");
    assert_eq!(ok(&node.cli(&["call", &actor, "hello from the test"])), "hello from the test\n");
    assert_eq!(ok(&node.cli(&["call", &actor, "again"])), "again\n");
    let detail = json(&ok(&node.cli(&["inspect", &actor, "--json"])));
    let seen = detail["state"].as_array().unwrap().iter().find(|e| e["key"] == "seen").cloned();
    assert_eq!(seen.map(|e| e["value"]["text"].clone()), Some("2".into()), "{detail}");
}

#[test]
fn a_new_rust_actor_builds_deploys_and_answers() {
    scaffold_build_deploy_call("rust");
}

#[test]
fn a_new_javascript_actor_builds_deploys_and_answers() {
    if toolchain_present("npm", "Node.js 20+ with npm") {
        scaffold_build_deploy_call("js");
    }
}

#[test]
fn a_new_python_actor_builds_deploys_and_answers() {
    if toolchain_present("componentize-py", "`pip install componentize-py==0.25.1`") {
        scaffold_build_deploy_call("python");
    }
}

#[test]
fn build_outside_a_project_says_what_it_looks_for() {
    let empty = tempfile::tempdir().unwrap();
    let out = pigeon_in(empty.path(), &["build"], &[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is not an actor project") && err.contains("pigeon new rust|js|python NAME"), "{err}");
}
