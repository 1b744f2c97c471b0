//! Compile-time tests of the attributes with the `enable` feature off, run with trybuild.
//!
//! This crate is its own workspace and depends on `insights-runtime` with
//! `default-features = false`, so `enable` is off and every attribute expands to the bare
//! function; the arguments are still checked.
//!
//! * `tests/ui/pass/*.rs`: correct attributes, each file under `#![deny(warnings)]`; every file
//!   is built and run.
//! * `tests/ui/fail/*.rs`: one mistake per file; the compiler's output must match the `.stderr`
//!   next to it, which pins the message and the caret on the offending token.
//!
//! The `.stderr` files are rustc's output on the toolchain pinned in the main workspace's
//! `tests/ui/TOOLCHAIN` (shared with `tests/ui.rs` there); on any other toolchain this test
//! prints a note to stderr saying the UI cases were skipped, and passes. To regenerate them, on
//! the pinned toolchain, from the root of the repository:
//!
//! ```text
//! TRYBUILD=overwrite cargo test --manifest-path tests/disabled/Cargo.toml
//! ```
//!
//! and read the diff.

#[path = "../../ui/toolchain.rs"]
mod toolchain;

#[test]
fn ui() {
    if !toolchain::is_pinned("tests/disabled/tests/ui.rs") {
        return;
    }
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/fail/*.rs");
}
