// An argument given twice: the error is on the second one.

use insights_runtime::traced;

#[traced(op = "db", description = "load", op = "http.client")]
fn load() -> u32 {
    1
}

fn main() {
    let _ = load();
}
