// An unused instrumented function is still dead code: `#[expect(dead_code)]` is fulfilled (an
// unfulfilled expectation would fail this file under `deny(warnings)`).
#![deny(warnings)]

use insights_runtime::traced;

#[expect(dead_code)]
#[traced]
fn unused_before() -> u32 {
    1
}

#[traced]
#[expect(dead_code)]
fn unused_after() -> u32 {
    2
}

#[expect(dead_code)]
#[traced]
async fn unused_async() -> u32 {
    3
}

#[expect(dead_code)]
#[traced]
fn unused_future() -> impl std::future::Future<Output = u32> {
    async { 4 }
}

struct Unused;

impl Unused {
    #[expect(dead_code)]
    #[traced]
    fn unused_method(&self) -> u32 {
        5
    }
}

#[traced]
#[expect(unused_variables)]
fn unused_variable() {
    let x = 1;
}

fn main() {
    let _ = Unused;
    unused_variable();
}
