//! The real `pigeon` binary, for end-to-end tests: built once per test run
//! (into the target directory the tests themselves came from), started as
//! `pigeon up` on a free port and a temporary data directory, and driven
//! with the real CLI.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

/// Path of the `pigeon` binary, built on first use.
pub fn pigeon_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        // A test executable is <target>/<profile>/deps/NAME-HASH; a binary
        // of this crate (the soak) is <target>/<profile>/NAME.
        let exe = std::env::current_exe().expect("test executable path");
        let mut profile_dir = exe.parent().expect("<target>/<profile>");
        if profile_dir.ends_with("deps") {
            profile_dir = profile_dir.parent().expect("<target>/<profile>");
        }
        let target_dir = profile_dir.parent().expect("<target>");
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = Command::new(cargo);
        build.args(["build", "--quiet", "-p", "pigeon-cli", "--bin", "pigeon", "--manifest-path"]).arg(&manifest);
        if profile_dir.ends_with("release") {
            build.arg("--release");
        }
        let status = build.env("CARGO_TARGET_DIR", target_dir).status().expect("cargo runs");
        assert!(status.success(), "building the pigeon binary failed");
        profile_dir.join("pigeon")
    })
}

/// A `pigeon up` process.
pub struct PigeonNode {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    pub data: PathBuf,
    /// Where its standard error (the log) goes.
    pub log: PathBuf,
    /// The test stopped it (or waited for its end): an end it did not
    /// cause is reported when the node is dropped.
    stopped: bool,
}

impl PigeonNode {
    /// Starts `pigeon up` on `data`, listening on `listen` (e.g.
    /// `127.0.0.1:0`); waits for its "listening" line. `Err` carries what the
    /// process printed when it failed to start.
    pub fn start(data: &Path, listen: &str, extra: &[&str]) -> Result<Self, String> {
        Self::start_with_env(data, listen, extra, &[])
    }

    /// [`PigeonNode::start`] with more environment variables.
    pub fn start_with_env(data: &Path, listen: &str, extra: &[&str], env: &[(&str, &str)]) -> Result<Self, String> {
        Self::spawn(Command::new(pigeon_bin()), data, listen, extra, env)
    }

    /// [`PigeonNode::start`] under `wrapper` (a program and its arguments,
    /// such as `strace … --`), which runs `pigeon` as its child: the
    /// process this handle starts and stops is the wrapper.
    pub fn start_under(wrapper: &[&str], data: &Path, listen: &str, extra: &[&str]) -> Result<Self, String> {
        let (program, args) = wrapper.split_first().ok_or("an empty wrapper")?;
        let mut command = Command::new(program);
        command.args(args).arg(pigeon_bin());
        Self::spawn(command, data, listen, extra, &[])
    }

    fn spawn(
        mut command: Command,
        data: &Path,
        listen: &str,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Result<Self, String> {
        let log_path = log_path();
        let log = std::fs::File::create(&log_path).map_err(|e| e.to_string())?;
        let mut child = command
            .args(["up", "--listen", listen, "--data"])
            .arg(data)
            .args(extra)
            // `PIGEON_E2E_LOG=info` keeps more of a node's story in its log.
            .env("PIGEON_LOG", std::env::var("PIGEON_E2E_LOG").unwrap_or_else(|_| "warn".into()))
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start pigeon: {e}"))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let _ = tx.send(lines.next());
            // Keep draining so the node never blocks on a full pipe.
            for _ in lines {}
        });
        let line = rx.recv_timeout(crate::PATIENCE);
        let listening = match line {
            Ok(Some(Ok(line))) => line,
            _ => {
                let _ = child.wait();
                let printed = std::fs::read_to_string(&log_path).unwrap_or_default();
                return Err(printed);
            }
        };
        let url = listening
            .strip_prefix("pigeon node listening on ")
            .and_then(|rest| rest.split_whitespace().next())
            .ok_or_else(|| format!("unexpected first line: {listening}"))?
            .to_string();
        Ok(Self { child, url, data: data.to_path_buf(), log: log_path, stopped: false })
    }

    /// What the node logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits (up to `PATIENCE`) for the process to end by itself.
    pub fn wait_exit(&mut self) -> std::process::ExitStatus {
        self.stopped = true;
        let deadline = std::time::Instant::now() + crate::PATIENCE;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            assert!(std::time::Instant::now() < deadline, "pigeon did not exit");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Runs the CLI against this node.
    pub fn cli(&self, args: &[&str]) -> Output {
        self.cli_with_stdin(args, &[])
    }

    /// Runs the CLI against this node with `stdin` as standard input.
    pub fn cli_with_stdin(&self, args: &[&str], stdin: &[u8]) -> Output {
        run_cli(&["--node", &self.url, "--data", &self.data.display().to_string()], args, stdin)
    }

    /// The API token the node wrote.
    pub fn token(&self) -> String {
        std::fs::read_to_string(self.data.join("token")).expect("token file").trim().to_string()
    }

    /// The node's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process has ended, and how.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// SIGKILL: no clean-up of any kind.
    pub fn kill(&mut self) {
        self.stopped = true;
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits for the process to exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        self.wait_exit()
    }
}

impl Drop for PigeonNode {
    fn drop(&mut self) {
        // A node that ended by itself (a crash, a signal) says so in the
        // failing test's output: otherwise only its refused port tells.
        if let (false, Some(status)) = (self.stopped, self.exited()) {
            eprintln!("pigeon node {} ended by itself ({status}); its log: {}", self.url, self.log.display());
        }
        self.kill();
    }
}

/// A fresh file for a node's log, in the system's temp directory.
fn log_path() -> PathBuf {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    std::env::temp_dir().join(format!("pigeon-e2e-{}-{n}.log", std::process::id()))
}

/// Runs `pigeon GLOBAL... ARGS...`.
pub fn run_cli(global: &[&str], args: &[&str], stdin: &[u8]) -> Output {
    use std::io::Write;
    let mut child = Command::new(pigeon_bin())
        .args(global)
        .args(args)
        .env_remove("PIGEON_TOKEN")
        .env("PIGEON_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("pigeon runs");
    if let Some(mut input) = child.stdin.take() {
        let _ = input.write_all(stdin);
    }
    child.wait_with_output().expect("pigeon finishes")
}

/// Stdout of a successful command (panics with its stderr otherwise).
pub fn ok(output: &Output) -> String {
    assert!(
        output.status.success(),
        "command failed: {}\n{}",
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(&output.stdout)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Stderr of a failed command (panics if it succeeded).
pub fn fails(output: &Output) -> String {
    assert!(!output.status.success(), "command succeeded: {}", String::from_utf8_lossy(&output.stdout));
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// `pigeon up` on a free port and a fresh temporary data directory, which
/// lives as long as the returned guard.
pub fn start_fresh() -> (tempfile::TempDir, PigeonNode) {
    let dir = tempfile::tempdir().expect("temp dir");
    let node = PigeonNode::start(&dir.path().join("data"), "127.0.0.1:0", &[]).expect("pigeon up starts");
    (dir, node)
}

/// A command's `--json` output, parsed.
pub fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// Polls `check` every 10 ms until it holds, failing after `PATIENCE`.
pub fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + crate::PATIENCE;
    while !check() {
        assert!(std::time::Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}
