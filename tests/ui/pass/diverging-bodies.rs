// Bodies that diverge: the expansion adds no `unreachable_code` (or other) warning of its own.
#![deny(warnings)]
#![deny(unreachable_code)]

use insights_runtime::traced;

#[traced]
fn panics_unit() {
    panic!("always")
}

#[traced]
fn panics_value() -> u32 {
    panic!("always")
}

#[traced]
fn panics_result() -> Result<u32, String> {
    panic!("always")
}

#[traced]
fn loops_unit() {
    loop {}
}

#[traced]
fn loops_value() -> u32 {
    loop {}
}

#[traced]
fn unimplemented_value() -> Vec<u8> {
    unimplemented!()
}

#[traced]
fn todo_value() -> u32 {
    todo!()
}

#[traced]
fn returns_in_every_branch(flag: bool) -> u32 {
    if flag {
        return 1;
    } else {
        return 2;
    }
}

#[traced]
fn ends_with_return(n: u32) -> u32 {
    return n;
}

#[traced]
async fn async_panics() -> u32 {
    panic!("always")
}

#[traced]
async fn async_loops() {
    loop {}
}

#[traced]
async fn async_ends_with_return(n: u32) -> u32 {
    return n;
}

#[traced]
async fn async_returns_in_every_branch(flag: bool) -> Result<u32, String> {
    if flag {
        return Ok(1);
    } else {
        return Err("no".to_owned());
    }
}

#[traced]
fn future_panics() -> impl std::future::Future<Output = u32> {
    async { panic!("always") }
}

#[traced]
fn future_loops() -> std::pin::Pin<Box<dyn std::future::Future<Output = u32>>> {
    Box::pin(async { loop {} })
}

#[traced]
fn future_ends_with_return() -> impl std::future::Future<Output = u32> {
    async {
        return 1;
    }
}

fn main() {
    let _: fn() = panics_unit;
    let _: fn() -> u32 = panics_value;
    let _: fn() -> Result<u32, String> = panics_result;
    let _: fn() = loops_unit;
    let _: fn() -> u32 = loops_value;
    let _: fn() -> Vec<u8> = unimplemented_value;
    let _: fn() -> u32 = todo_value;
    assert_eq!(returns_in_every_branch(true), 1);
    assert_eq!(ends_with_return(2), 2);
    drop(async_panics());
    drop(async_loops());
    drop(future_panics());
    drop(future_loops());
    futures::executor::block_on(async {
        assert_eq!(async_ends_with_return(3).await, 3);
        assert_eq!(async_returns_in_every_branch(true).await, Ok(1));
        assert_eq!(future_ends_with_return().await, 1);
    });
}
