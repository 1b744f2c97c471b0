// `#[traced]` on a const item: the error is on `const`, and the constant is still emitted.

use insights_runtime::traced;

#[traced]
const LIMIT: u32 = 10;

fn main() {
    let _ = LIMIT;
}
