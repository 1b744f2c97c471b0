// `#[traced]` takes named arguments only: a positional string is reported on the string.

use insights_runtime::traced;

#[traced("load users")]
fn load() -> u32 {
    1
}

fn main() {
    let _ = load();
}
