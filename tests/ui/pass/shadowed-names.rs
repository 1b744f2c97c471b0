// Bodies and modules that shadow names the expansion could depend on.
#![deny(warnings)]

use futures::executor::block_on;
use insights_runtime::traced;

// `use std::fmt::Result` inside the body shadows the `Result` of the signature.
#[traced]
fn sync_use_shadows_result(value: u32) -> Result<String, String> {
    use std::fmt::Result;
    use std::fmt::Write;
    fn write(out: &mut String, value: u32) -> Result {
        write!(out, "{value}")
    }
    let mut out = String::new();
    write(&mut out, value).map_err(|e| e.to_string())?;
    Ok(out)
}

#[traced]
async fn async_use_shadows_result(value: u32) -> Result<String, String> {
    use std::fmt::Result;
    use std::fmt::Write;
    fn write(out: &mut String, value: u32) -> Result {
        write!(out, "{value}")
    }
    let mut out = String::new();
    write(&mut out, value).map_err(|e| e.to_string())?;
    Ok(out)
}

#[traced]
fn future_use_shadows_result(
    value: u32,
) -> impl std::future::Future<Output = Result<String, String>> {
    use std::fmt::Result;
    use std::fmt::Write;
    fn write(out: &mut String, value: u32) -> Result {
        write!(out, "{value}")
    }
    async move {
        let mut out = String::new();
        write(&mut out, value).map_err(|e| e.to_string())?;
        Ok(out)
    }
}

// User types named like prelude items.
mod shadows_prelude {
    #![allow(dead_code)]
    use insights_runtime::traced;

    pub struct Option;
    pub struct Some;
    pub struct None;
    pub struct Ok;
    pub struct Err;
    pub struct Box;
    pub struct Fn;
    pub struct FnOnce;
    pub struct Future;
    pub struct Pin;
    pub struct Drop;
    pub struct Into;
    pub struct From;

    #[traced(data(a = 1))]
    pub fn sync() -> core::result::Result<u32, ()> {
        core::result::Result::Ok(1)
    }

    #[traced(data(a = 1))]
    pub async fn asynchronous() -> core::option::Option<u32> {
        core::option::Option::Some(2)
    }

    #[traced]
    pub fn boxed() -> std::pin::Pin<std::boxed::Box<dyn core::future::Future<Output = u32> + Send>>
    {
        std::boxed::Box::pin(async { 3 })
    }

    #[traced]
    pub fn opaque() -> impl core::future::Future<Output = u32> {
        async { 4 }
    }
}

// No prelude at all.
#[no_implicit_prelude]
mod no_prelude {
    #[::insights_runtime::traced(data(a = 1))]
    pub fn sync(n: u32) -> ::core::result::Result<u32, ()> {
        ::core::result::Result::Ok(n)
    }

    #[::insights_runtime::traced]
    pub async fn asynchronous(n: u32) -> u32 {
        n
    }

    #[::insights_runtime::traced]
    pub fn boxed() -> ::std::pin::Pin<
        ::std::boxed::Box<dyn ::core::future::Future<Output = u32> + ::core::marker::Send>,
    > {
        ::std::boxed::Box::pin(async { 3 })
    }

    #[::insights_runtime::traced]
    pub fn opaque() -> impl ::core::future::Future<Output = u32> {
        async { 4 }
    }
}

fn main() {
    assert_eq!(sync_use_shadows_result(1), Ok("1".to_owned()));
    assert_eq!(shadows_prelude::sync(), Ok(1));
    assert_eq!(no_prelude::sync(1), Ok(1));
    block_on(async {
        assert_eq!(async_use_shadows_result(2).await, Ok("2".to_owned()));
        assert_eq!(future_use_shadows_result(3).await, Ok("3".to_owned()));
        assert_eq!(shadows_prelude::asynchronous().await, Some(2));
        assert_eq!(shadows_prelude::boxed().await, 3);
        assert_eq!(shadows_prelude::opaque().await, 4);
        assert_eq!(no_prelude::asynchronous(2).await, 2);
        assert_eq!(no_prelude::boxed().await, 3);
        assert_eq!(no_prelude::opaque().await, 4);
    });
}
