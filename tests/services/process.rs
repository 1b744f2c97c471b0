//! The `service` and `worker` examples as child processes.
//!
//! `cargo test --test services` does not build examples, so the suite expects them built
//! beforehand (`cargo build --features services --examples`, as `.ci/run` does) and finds them
//! beside its own binary: `<target>/debug/deps/services-<hash>` → `<target>/debug/examples/<name>`.
//! A missing binary, or one older than its example's source, fails with the command that
//! builds it.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const BUILD: &str = "cargo build --features services --examples";

/// The example binary `name`, checked to be at least as new as its sources.
pub fn example_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test binary is in <target>/<profile>/deps");
    let binary = profile_dir
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    let built = std::fs::metadata(&binary)
        .and_then(|m| m.modified())
        .unwrap_or_else(|e| {
            panic!(
                "the `{name}` example is not built ({}: {e}); run `{BUILD}` first (with the \
                 same CARGO_TARGET_DIR)",
                binary.display()
            )
        });
    // Only the example's own source is compared: the crates' sources may hold files no build
    // reads, which would make a fresh binary look stale.
    let source = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(format!("{name}.rs"));
    if let Ok(edited) = std::fs::metadata(&source).and_then(|m| m.modified()) {
        assert!(
            edited <= built,
            "the `{name}` example at {} is older than {}; run `{BUILD}` first",
            binary.display(),
            source.display()
        );
    }
    binary
}

/// A running example. Killed when dropped; its stderr is printed if the test is failing.
pub struct Running {
    name: String,
    child: Child,
    lines: Receiver<String>,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<String>>,
}

impl Running {
    /// Starts the example `name` with `env` (and no `SENTRY_*` variables from the test's own
    /// environment).
    pub fn start(name: &str, env: &[(&str, String)]) -> Self {
        let mut command = Command::new(example_binary(name));
        for (key, _) in std::env::vars() {
            if key.starts_with("SENTRY_") {
                command.env_remove(key);
            }
        }
        command
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("starting the `{name}` example: {e}"));
        let (send, lines) = mpsc::channel();
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let out = child.stdout.take().expect("piped stdout");
        let seen = Arc::clone(&stdout);
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                seen.lock().unwrap().push(line.clone());
                let _ = send.send(line);
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err = child.stderr.take().expect("piped stderr");
        let collected = Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = err.read(&mut buf) {
                collected
                    .lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Running {
            name: name.to_owned(),
            child,
            lines,
            stdout,
            stderr,
        }
    }

    fn output(&self) -> String {
        format!(
            "stdout:\n{}\nstderr:\n{}",
            self.stdout.lock().unwrap().join("\n"),
            self.stderr.lock().unwrap()
        )
    }

    /// Waits for a stdout line starting with `prefix` and returns the rest of it. Fails if the
    /// example exits first (a service it needs is down) or after `timeout`.
    pub fn wait_line(&mut self, prefix: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self
                .lines
                .recv_timeout(left.min(Duration::from_millis(200)))
            {
                Ok(line) => {
                    if let Some(rest) = line.strip_prefix(prefix) {
                        return rest.to_owned();
                    }
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let status = self.child.wait().expect("wait");
                    // Let the stderr reader catch up.
                    std::thread::sleep(Duration::from_millis(100));
                    panic!(
                        "the `{}` example exited ({status}) before printing {prefix:?}\n{}",
                        self.name,
                        self.output()
                    );
                }
                Err(RecvTimeoutError::Timeout) if left.is_zero() => panic!(
                    "the `{}` example printed no {prefix:?} line within {timeout:?}\n{}",
                    self.name,
                    self.output()
                ),
                Err(RecvTimeoutError::Timeout) => {}
            }
        }
    }

    /// Waits for the example to exit by itself.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the `{}` example did not exit within {timeout:?}\n{}",
                self.name,
                self.output()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends SIGTERM and waits for the example to exit.
    pub fn terminate(&mut self, timeout: Duration) -> ExitStatus {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -TERM {}: {sent}", self.child.id());
        self.wait_exit(timeout)
    }

    /// Everything the example printed on stdout so far.
    pub fn stdout_lines(&self) -> Vec<String> {
        self.stdout.lock().unwrap().clone()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            eprintln!(
                "--- the `{}` example's output ---\n{}",
                self.name,
                self.output()
            );
        }
    }
}
