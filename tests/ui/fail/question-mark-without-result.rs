// `?` in an instrumented function that returns neither `Result` nor `Option`: the error is on
// the `?` and names the function, as it would be without the attribute.

use insights_runtime::traced;

#[traced]
fn sync_count(text: &str) -> u32 {
    let n: u32 = text.parse()?;
    n
}

#[traced]
async fn async_count(text: &str) -> u32 {
    let n: u32 = text.parse()?;
    n
}

fn main() {
    let _ = sync_count("1");
    drop(async_count("1"));
}
