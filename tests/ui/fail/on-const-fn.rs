// `#[traced]` on a `const fn`: spans are recorded at run time. The error is on `const`, and the
// function is still emitted, usable in a const context.

use insights_runtime::traced;

#[traced]
const fn double(n: u32) -> u32 {
    n * 2
}

const FOUR: u32 = double(2);

fn main() {
    let _ = FOUR;
}
