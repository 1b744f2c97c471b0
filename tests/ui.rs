//! Compile-time tests of `#[traced]`, run with trybuild.
//!
//! * `tests/ui/pass/*.rs`: function shapes the attribute must accept, each under
//!   `#![deny(warnings)]`; every file is built and run.
//! * `tests/ui/fail/*.rs`: one mistake per file; the compiler's output must match the `.stderr`
//!   next to it (the message, and the caret on the offending token).
//!
//! The `.stderr` files are rustc's output on the toolchain CI uses; after a toolchain update or a
//! change to a message, regenerate them with `TRYBUILD=overwrite cargo test --test ui` and read
//! the diff.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/fail/*.rs");
}
