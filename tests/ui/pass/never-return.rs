// Functions that never return (`-> !`).
#![deny(warnings)]

use insights_runtime::traced;

#[traced]
fn panics(message: &str) -> ! {
    panic!("{message}")
}

#[traced]
fn loops() -> ! {
    loop {
        std::thread::park();
    }
}

#[traced]
fn exits(code: i32) -> ! {
    std::process::exit(code)
}

#[traced]
fn diverges_through_other() -> ! {
    panics("again")
}

struct Server;

impl Server {
    #[traced]
    fn run(&self) -> ! {
        loops()
    }
}

fn main() {
    let result = std::panic::catch_unwind(|| panics("expected"));
    assert!(result.is_err());
    let _: fn() -> ! = loops;
    let _: fn(i32) -> ! = exits;
    let _: fn() -> ! = diverges_through_other;
    let _: fn(&Server) -> ! = Server::run;
}
