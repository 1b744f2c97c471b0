// `#[traced]` on an impl block (it goes on each method): the error is on `impl`, and the
// methods are still emitted.

use insights_runtime::traced;

struct Loader;

#[traced]
impl Loader {
    fn load(&self) -> u32 {
        1
    }
}

fn main() {
    let _ = Loader.load();
}
