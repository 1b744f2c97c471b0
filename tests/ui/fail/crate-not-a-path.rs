// `crate = ..` takes a path, not a string.

use insights_runtime::traced;

#[traced(crate = "insights_runtime")]
fn load() -> u32 {
    1
}

fn main() {
    let _ = load();
}
