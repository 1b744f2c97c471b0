// An argument `#[traced]` does not have: one error, on the key, listing the valid arguments,
// and no "did you mean" when no valid argument is a likely typo of it. The function is still
// emitted (uninstrumented), so calling it raises no further error.

use insights_runtime::traced;

#[traced(level = "info")]
fn load() -> u32 {
    1
}

// Not a typo of `data`, though only two letters differ.
#[traced(name = "load users")]
fn named() -> u32 {
    2
}

// Not a typo of `op`, though only two letters differ.
#[traced(id = "load")]
fn with_id() -> u32 {
    3
}

fn main() {
    let _ = load();
    let _ = named();
    let _ = with_id();
}
