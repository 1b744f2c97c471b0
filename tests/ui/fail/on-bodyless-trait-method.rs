// `#[traced]` on a trait method without a body: the error says where to put it instead, and
// the trait is still emitted (its impl and the call below compile).

use insights_runtime::traced;

trait Load {
    #[traced]
    fn load(&self) -> u32;
}

struct Loader;

impl Load for Loader {
    fn load(&self) -> u32 {
        1
    }
}

fn main() {
    let _ = Loader.load();
}
