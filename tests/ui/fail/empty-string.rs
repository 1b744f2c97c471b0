// An empty op is reported on the literal.

use insights_runtime::traced;

#[traced(op = "")]
fn load() -> u32 {
    1
}

fn main() {
    let _ = load();
}
