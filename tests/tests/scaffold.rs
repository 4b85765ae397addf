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

/// The handler of the typed-RPC Python example (docs/rpc.md): `WHO AMOUNT`
/// deposits AMOUNT into `account/WHO` through the imported interface.
const PYTHON_TELLER: &str = r#"from typing import Optional

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import account, rpc
from wit_world.imports.types import Envelope


class Handler(exports.Handler):
    def handle(self, message: Envelope) -> Optional[bytes]:
        who, amount = message.payload.decode().split()
        rpc.set_target("acme:bank/account", f"account/{who}")
        try:
            balance = account.deposit(int(amount))
        except Err as e:
            return f"refused: {e.value}".encode()
        return str(balance).encode()
"#;

#[test]
fn a_new_python_actor_calls_a_typed_interface_with_the_world_of_its_pigeon_toml() {
    if !toolchain_present("componentize-py", "`pip install componentize-py==0.25.1`") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    ok(&pigeon_in(work.path(), &["new", "python", "teller"], &[]));
    let project = work.path().join("teller");
    let bank_wit = Path::new(env!("CARGO_MANIFEST_DIR")).join("../guest-examples/bank/wit/bank.wit");
    std::fs::create_dir_all(project.join("wit/bank")).unwrap();
    std::fs::copy(bank_wit, project.join("wit/bank/bank.wit")).unwrap();
    std::fs::write(project.join("app.py"), PYTHON_TELLER).unwrap();
    let config = std::fs::read_to_string(project.join("pigeon.toml")).unwrap();
    let config = config
        .replace("wit = [\"wit\"]\n", "wit = [\"wit\", \"wit/bank\"]\n")
        .replace("world = \"actor\"\n", "world = \"acme:bank/transfer-actor\"\n");
    assert!(config.contains("acme:bank/transfer-actor"), "the scaffold's pigeon.toml has the fields: {config}");
    std::fs::write(project.join("pigeon.toml"), config).unwrap();

    let built = json(&ok(&pigeon_in(&project, &["--json", "build"], &[])));
    let component = built["component"].as_str().unwrap().to_string();
    let (_data, node) = start_fresh();
    ok(&node.cli(&["deploy", pigeon_tests::artifacts::BANK_ACCOUNT, "--name", "account"]));
    let deployed = ok(&node.cli(&["deploy", &component, "--name", "teller", "--link", "acme:bank/account=account"]));
    assert!(deployed.contains("links   acme:bank/account"), "{deployed}");
    assert_eq!(ok(&node.cli(&["call", "teller/desk", "alice 30"])).trim(), "30");
    assert_eq!(ok(&node.cli(&["call", "teller/desk", "alice 12"])).trim(), "42");
    assert_eq!(ok(&node.cli(&["call", "teller/desk", "alice 0"])).trim(), "refused: AccountError_ZeroAmount()");
    assert_eq!(ok(&node.cli(&["call", "account/alice", "account.balance()"])).trim(), "42");

    // A pigeon.toml that names a directory that is not there says so.
    std::fs::write(project.join("pigeon.toml"), "wit = [\"wit\", \"wit/nowhere\"]\n").unwrap();
    let out = pigeon_in(&project, &["build"], &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("lists the WIT directory `wit/nowhere`"), "{err}");
}
