// A misspelled argument: the error on the key also suggests the argument meant.

use insights_runtime::traced;

#[traced(op = "db", descripton = "load users")]
fn load() -> u32 {
    1
}

fn main() {
    let _ = load();
}
