// A value without `=`, and a key without a value.

use insights_runtime::traced;

#[traced(op "db")]
fn missing_equals() {}

#[traced(op)]
fn bare_key() {}

fn main() {
    missing_equals();
    bare_key();
}
