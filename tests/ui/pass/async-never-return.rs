// An `async fn` that never returns (`-> !`): the future never completes.
#![deny(warnings)]

use insights_runtime::traced;

#[traced]
async fn serve_forever() -> ! {
    loop {
        std::future::ready(()).await;
    }
}

#[traced]
async fn fail_forever(message: &str) -> ! {
    panic!("{message}")
}

fn main() {
    drop(serve_forever());
    drop(fail_forever("not polled"));
}
