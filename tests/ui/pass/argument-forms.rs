// Every argument form `#[traced]` accepts.
#![deny(warnings)]

use futures::executor::block_on;
use insights_runtime::traced;

#[traced]
fn bare() {}

#[traced()]
fn empty_parentheses() {}

#[traced(op = "http.client")]
fn op() {}

#[traced(description = "fetch profile")]
fn description() {}

#[traced(transaction = "nightly-import")]
fn transaction() {}

#[traced(data(a = 1, a.b = 2, "c.d" = x.len()))]
fn data(x: &str) -> usize {
    x.len()
}

#[traced(data(type = "keyword key", r#async = true, db.r#type = "raw", "spaced key" = 1.5))]
fn data_keyword_keys() {}

#[traced(data())]
fn data_empty() {}

#[traced(data(owned = x.to_owned(), flag = !x.is_empty(), sum = x.len() as u64 + 1, "str" = "text",))]
fn data_expressions(x: &str) {
    let _ = x;
}

#[traced(crate = insights_runtime)]
fn crate_path() {}

#[traced(crate = ::insights_runtime)]
fn crate_absolute_path() {}

#[traced(op = "batch", description = "import rows", transaction = "nightly", data(rows = rows), crate = insights_runtime,)]
fn all_arguments(rows: u32) -> u32 {
    rows
}

#[traced(crate = insights_runtime, data(rows = rows), transaction = "nightly", description = "d", op = "o")]
async fn all_arguments_reversed(rows: u32) -> u32 {
    rows
}

#[traced(transaction = "t", data(id = id))]
fn all_shapes_future(id: u32) -> impl std::future::Future<Output = u32> {
    async move { id }
}

#[traced(op = "trailing")]
fn trailing_comma() {}

#[traced(op = "multi.line", description = "over several lines")]
fn multi_line() {}

#[traced(op = r"raw", description = r#"raw "quoted""#)]
fn raw_strings() {}

fn main() {
    bare();
    empty_parentheses();
    op();
    description();
    transaction();
    assert_eq!(data("ab"), 2);
    data_keyword_keys();
    data_empty();
    data_expressions("x");
    crate_path();
    crate_absolute_path();
    assert_eq!(all_arguments(3), 3);
    trailing_comma();
    multi_line();
    raw_strings();
    block_on(async {
        assert_eq!(all_arguments_reversed(4).await, 4);
        assert_eq!(all_shapes_future(5).await, 5);
    });
}
