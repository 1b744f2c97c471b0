// `op`, `description` and `transaction` take string literals: an integer or a call is reported
// on the value.

use insights_runtime::traced;

fn some_fn() -> &'static str {
    "db"
}

#[traced(op = 5)]
fn integer() {}

#[traced(op = some_fn())]
fn call() {}

fn main() {
    integer();
    call();
    let _ = some_fn();
}
