// A crate that re-exports the runtime under another name points the attribute at it.
#![deny(warnings)]

use futures::executor::block_on;

mod facade {
    pub use insights_runtime as insights;
    pub use insights_runtime::traced;
}

#[facade::traced(crate = facade::insights)]
fn relative() -> u32 {
    1
}

#[facade::traced(crate = crate::facade::insights)]
async fn from_crate_root() -> u32 {
    2
}

mod nested {
    use super::facade;

    #[facade::traced(crate = super::facade::insights, op = "nested")]
    pub fn through_super() -> u32 {
        3
    }

    #[facade::traced(crate = facade::insights, data(n = 1))]
    pub fn through_use() -> impl std::future::Future<Output = u32> {
        async { 4 }
    }
}

fn main() {
    assert_eq!(relative(), 1);
    assert_eq!(nested::through_super(), 3);
    block_on(async {
        assert_eq!(from_crate_root().await, 2);
        assert_eq!(nested::through_use().await, 4);
    });
}
