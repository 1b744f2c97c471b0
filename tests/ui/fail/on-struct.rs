// `#[traced]` on a struct: the error is on `struct`, and the struct is still emitted.

use insights_runtime::traced;

#[traced]
struct Loader {
    rows: u32,
}

fn main() {
    let loader = Loader { rows: 1 };
    let _ = loader.rows;
}
