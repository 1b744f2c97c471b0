// Parameters named like the expansion's locals, or like common helper names: the generated
// names are hygienic and never collide with the user's.
#![deny(warnings)]

use futures::executor::block_on;
use insights_runtime::traced;

#[traced(data(len = data.len(), span = span, guard = guard))]
fn sync_names(span: u32, guard: u32, data: &[u8], debug: bool, display: &str) -> usize {
    let _ = (debug, display);
    span as usize + guard as usize + data.len()
}

#[traced(data(len = data.len(), span = span))]
async fn async_names(span: u32, guard: u32, data: Vec<u8>, debug: bool, display: String) -> usize {
    let _ = (debug, display);
    span as usize + guard as usize + data.len()
}

#[traced(data(len = data.len()))]
fn future_names(span: u32, data: Vec<u8>) -> impl std::future::Future<Output = usize> {
    async move { span as usize + data.len() }
}

#[traced(data(ret = __insights_ret, guard = __insights_guard))]
#[allow(non_snake_case)]
fn generated_names(
    __insights_ret: u32,
    __insights_guard: u32,
    __insights_data: u32,
    __insights_recording: u32,
    __insights_out: u32,
) -> u32 {
    __insights_ret + __insights_guard + __insights_data + __insights_recording + __insights_out
}

#[traced(data(data = __insights_data))]
async fn generated_names_async(
    __insights_ret: u32,
    __insights_data: u32,
    __insights_recording: u32,
    __insights_out: u32,
) -> u32 {
    __insights_ret + __insights_data + __insights_recording + __insights_out
}

#[traced]
fn locals_named_like_generated() -> u32 {
    let __insights_ret = 1;
    let __insights_guard = 2;
    let __insights_data = 3;
    __insights_ret + __insights_guard + __insights_data
}

#[traced]
fn named_like_the_runtime(insights_runtime: u32, sentry: u32) -> u32 {
    insights_runtime + sentry
}

struct Span {
    data: u32,
}

impl Span {
    #[traced(data(data = self.data))]
    fn data(&self) -> u32 {
        self.data
    }
}

fn main() {
    assert_eq!(sync_names(1, 2, &[3], true, "d"), 4);
    assert_eq!(generated_names(1, 2, 3, 4, 5), 15);
    assert_eq!(locals_named_like_generated(), 6);
    assert_eq!(named_like_the_runtime(1, 2), 3);
    assert_eq!(Span { data: 7 }.data(), 7);
    block_on(async {
        assert_eq!(async_names(1, 2, vec![3], false, String::new()).await, 4);
        assert_eq!(future_names(1, vec![2]).await, 2);
        assert_eq!(generated_names_async(1, 2, 3, 4).await, 10);
    });
}
