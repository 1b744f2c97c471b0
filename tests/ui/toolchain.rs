// The toolchain gate of the UI tests, shared by tests/ui.rs and tests/disabled/tests/ui.rs (not a
// UI case: trybuild only reads `pass/*.rs` and `fail/*.rs`).

use std::io::Write;
use std::process::Command;

/// The `major.minor` of the rustc that wrote the `.stderr` files (tests/ui/TOOLCHAIN).
const PINNED: &str = include_str!("TOOLCHAIN");

/// Whether the running toolchain is the pinned one; when it is not, prints why the UI cases are
/// skipped and returns `false`.
///
/// The rustc asked is the one trybuild's cargo builds the cases with: `$RUSTC`, or else `rustc`
/// (under rustup, the toolchain of the `cargo` that runs the tests, `cargo +nightly` included).
pub fn is_pinned(suite: &str) -> bool {
    let pinned = PINNED.trim();
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let version = Command::new(&rustc)
        .arg("--version")
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned());
    // `rustc 1.95.0 (59807616e 2026-04-14)`; a beta or nightly reads `1.96.0-nightly`.
    let matches = version.as_deref().is_some_and(|v| {
        v.split_whitespace().nth(1).is_some_and(|release| {
            release
                .strip_prefix(pinned)
                .is_some_and(|patch| patch.starts_with('.') && !patch.contains('-'))
        })
    });
    if !matches {
        let running = version
            .unwrap_or_else(|| format!("unknown (`{} --version` failed)", rustc.to_string_lossy()));
        let note = format!(
            "note: {suite}: UI cases skipped: their .stderr files are the output of stable rustc \
             {pinned}.x (pinned in tests/ui/TOOLCHAIN) and the running rustc is {running}; another \
             toolchain words and places its messages differently. Run them on rustc {pinned}.x.\n"
        );
        // Straight to the process's stderr: the test harness captures `eprintln!` and shows it
        // only for a failed test.
        let _ = std::io::stderr().write_all(note.as_bytes());
    }
    matches
}
