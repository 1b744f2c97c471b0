//! Compile-time tests of the five attributes, run with trybuild: `#[traced]`,
//! `#[instrument_db_operation]`, `#[instrument_cache_operation]`, `#[instrument_queue_publish]`
//! and `#[instrument_queue_process]`, with the `enable` feature on (tests/disabled has the cases
//! with it off).
//!
//! * `tests/ui/pass/*.rs`: function shapes and arguments the attributes must accept, each under
//!   `#![deny(warnings)]`; every file is built and run.
//! * `tests/ui/fail/*.rs`: one mistake per file; the compiler's output must match the `.stderr`
//!   next to it, which pins the message and the caret on the offending token.
//!
//! The `.stderr` files are rustc's output on one toolchain, the stable `major.minor` in
//! `tests/ui/TOOLCHAIN` (the one place it is pinned; tests/disabled reads it too). On any other
//! toolchain this test prints a note to stderr saying the UI cases were skipped, and passes.
//!
//! To regenerate the `.stderr` files, after a change to a message or with a toolchain update
//! (then update `tests/ui/TOOLCHAIN` in the same change), run on the pinned toolchain:
//!
//! ```text
//! TRYBUILD=overwrite cargo test --test ui
//! ```
//!
//! and read the diff. On any other toolchain the cases are skipped, so nothing is overwritten.

#[path = "ui/toolchain.rs"]
mod toolchain;

#[test]
fn ui() {
    if !toolchain::is_pinned("tests/ui.rs") {
        return;
    }
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/fail/*.rs");
}
