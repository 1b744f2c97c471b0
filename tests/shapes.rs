//! Every function shape `#[traced]` accepts, in an ordinary test file, so that
//! `cargo clippy --all-targets -- -D warnings` lints what the attribute expands to (trybuild's
//! pass cases in `tests/ui/pass` are built by rustc only). The functions are written to be
//! clean under `clippy::pedantic`: a lint reported here comes from the expansion. The tests
//! call each shape once and check its result; what reaches Sentry is tested elsewhere.
#![deny(warnings)]
#![warn(clippy::pedantic)]

use std::collections::HashMap;
use std::fmt::{Debug, Display};
use std::future::Future;
use std::hash::Hash;
use std::pin::Pin;
use std::rc::Rc;

use async_trait::async_trait;
use futures::executor::block_on;
use futures::future::BoxFuture;
use insights_runtime::traced;

/// Sync functions of every return shape.
mod sync {
    use super::traced;

    #[traced]
    pub fn no_return() {}

    #[traced]
    pub fn returns_value(a: u32, b: u32) -> u32 {
        a + b
    }

    #[traced]
    pub fn returns_result(
        items: &[&str],
        stop_at_empty: bool,
    ) -> Result<u32, std::num::ParseIntError> {
        let mut total = 0;
        for item in items {
            if stop_at_empty && item.is_empty() {
                return Ok(total);
            }
            total += item.parse::<u32>()?;
        }
        Ok(total)
    }

    #[traced]
    pub fn returns_boxed_error(text: &str) -> Result<u32, Box<dyn std::error::Error>> {
        if text.is_empty() {
            return Err("empty".into());
        }
        Ok(text.parse::<u32>()?)
    }

    #[traced]
    pub fn returns_option(items: &[u32]) -> Option<u32> {
        let first = items.first()?;
        Some(*first + 1)
    }

    #[traced]
    pub fn returns_iterator(limit: u32) -> impl Iterator<Item = u32> {
        (0..limit).map(|n| n * 2)
    }

    #[traced]
    pub fn returns_borrowed_iterator(text: &str) -> impl Iterator<Item = &str> + '_ {
        text.split(' ')
    }

    #[traced]
    pub fn borrows_argument<'a>(text: &'a str) -> &'a str {
        text.trim()
    }

    #[traced]
    pub fn borrows_argument_elided(text: &str) -> &str {
        match text.find(' ') {
            Some(i) => &text[..i],
            None => text,
        }
    }

    #[traced]
    pub fn borrows_mut_argument(items: &mut Vec<u32>) -> &mut u32 {
        items.push(0);
        let last = items.len() - 1;
        &mut items[last]
    }

    #[traced]
    pub fn returns_closure(base: u32) -> impl Fn(u32) -> u32 {
        move |n| n + base
    }

    #[traced]
    pub fn early_return_in_loop(items: &[u32]) -> u32 {
        'outer: for chunk in items.chunks(2) {
            for item in chunk {
                if *item == 0 {
                    break 'outer;
                }
                if *item > 100 {
                    return *item;
                }
            }
        }
        0
    }

    #[traced]
    pub fn with_nested_items() -> u32 {
        struct Local(u32);
        impl Local {
            fn get(&self) -> u32 {
                self.0
            }
        }
        const BASE: u32 = 40;
        fn helper() -> u32 {
            2
        }
        Local(BASE).get() + helper()
    }

    pub struct Counter {
        pub count: u32,
        pub label: String,
    }

    impl Counter {
        #[traced]
        pub fn count_mut(&mut self) -> &mut u32 {
            &mut self.count
        }

        #[traced]
        pub fn label(&self) -> &str {
            &self.label
        }
    }
}

/// Visibility, qualifiers and other attributes, before and after ours.
mod qualifiers {
    #![deny(unsafe_op_in_unsafe_fn)]

    use super::traced;

    /// A public function, documented.
    #[traced]
    pub fn public() -> u32 {
        1
    }

    #[traced]
    pub(crate) fn crate_visible() -> u32 {
        2
    }

    pub mod inner {
        use super::traced;

        #[traced]
        pub(in crate::qualifiers) fn super_visible() -> u32 {
            3
        }
    }

    pub fn call_super_visible() -> u32 {
        inner::super_visible()
    }

    /// Reads through a raw pointer.
    ///
    /// # Safety
    ///
    /// `p` must be valid for reads.
    #[traced]
    pub unsafe fn read(p: *const u32) -> u32 {
        // SAFETY: the caller's promise.
        unsafe { *p }
    }

    #[traced]
    pub extern "C" fn c_abi(n: u32) -> u32 {
        n + 1
    }

    #[inline]
    #[traced]
    pub fn inline_before() -> u32 {
        5
    }

    #[traced]
    #[inline(never)]
    pub fn inline_after() -> u32 {
        6
    }

    #[must_use]
    #[traced]
    pub fn must_use_before() -> u32 {
        7
    }

    #[traced]
    #[must_use = "the count is the point"]
    pub fn must_use_after() -> u32 {
        8
    }

    /// Doc before ours.
    #[traced(op = "docs")]
    /// Doc after ours.
    #[cfg_attr(any(), deprecated)]
    pub fn doc_comments_around() -> u32 {
        9
    }

    #[traced]
    pub fn inner_attributes() -> u32 {
        #![allow(
            unused_variables,
            reason = "unused on purpose: the attribute must keep this inner attribute"
        )]
        let unused = 1;
        10
    }

    #[cfg(not(miri))]
    #[traced]
    pub fn cfg_kept() -> u32 {
        12
    }
}

/// `async fn` of every return shape.
mod asynchronous {
    #![deny(unsafe_op_in_unsafe_fn)]

    use std::fmt::Display;
    use std::future::Future;
    use std::pin::Pin;

    use super::traced;

    #[traced]
    pub async fn no_return() {}

    #[traced]
    pub async fn returns_value(a: u32, b: u32) -> u32 {
        std::future::ready(()).await;
        a + b
    }

    #[traced]
    pub async fn returns_result(
        items: &[&str],
        stop_at_empty: bool,
    ) -> Result<u32, std::num::ParseIntError> {
        let mut total = 0;
        for item in items {
            if stop_at_empty && item.is_empty() {
                return Ok(total);
            }
            total += item.parse::<u32>()?;
            std::future::ready(()).await;
        }
        Ok(total)
    }

    #[traced]
    pub async fn returns_impl_trait_in_result(fail: bool) -> Result<impl Display, String> {
        if fail {
            return Err("failed".to_owned());
        }
        Ok(42)
    }

    #[traced]
    pub async fn returns_impl_trait() -> impl Display {
        "shown"
    }

    #[traced]
    pub async fn returns_boxed_future() -> Pin<Box<dyn Future<Output = u32> + Send>> {
        Box::pin(async { 3 })
    }

    #[traced]
    pub async fn borrows_argument(text: &str) -> &str {
        std::future::ready(()).await;
        text.trim()
    }

    /// Reads through a raw pointer.
    ///
    /// # Safety
    ///
    /// `p` must be valid for reads until the future completes.
    #[traced]
    pub async unsafe fn read(p: *const u32) -> u32 {
        // SAFETY: the caller's promise.
        unsafe { *p }
    }

    #[traced]
    pub async fn calls_other_instrumented() -> Result<u32, String> {
        let value = returns_value(1, 1).await;
        let shown = returns_impl_trait_in_result(false).await?;
        Ok(value + u32::try_from(shown.to_string().len()).map_err(|e| e.to_string())?)
    }
}

/// Every receiver and associated functions, in inherent impls, trait impls and default bodies.
mod methods {
    use std::pin::Pin;

    use super::traced;

    #[derive(Default)]
    pub struct Account {
        pub id: u64,
        pub balance: u64,
    }

    impl Account {
        #[traced]
        pub fn new(id: u64) -> Self {
            Account { id, balance: 0 }
        }

        #[traced(data(account.id = self.id))]
        pub fn balance(&self) -> u64 {
            self.balance
        }

        #[traced]
        pub fn deposit(&mut self, amount: u64) -> u64 {
            self.balance += amount;
            self.balance
        }

        #[traced]
        pub fn balance_mut(&mut self) -> &mut u64 {
            &mut self.balance
        }

        #[traced]
        pub fn into_balance(self) -> u64 {
            self.balance
        }

        #[traced]
        pub fn add_then_close(mut self, amount: u64) -> u64 {
            self.balance += amount;
            self.balance
        }

        #[traced]
        pub fn boxed(self: Box<Self>) -> u64 {
            self.id
        }

        #[traced]
        pub fn pinned(self: Pin<&mut Self>) -> u64 {
            self.get_mut().balance += 1;
            1
        }

        #[traced]
        pub async fn balance_async(&self) -> u64 {
            self.balance
        }

        #[traced]
        pub async fn deposit_async(&mut self, amount: u64) -> u64 {
            self.balance += amount;
            self.balance
        }

        #[traced]
        pub async fn balance_mut_async(&mut self) -> &mut u64 {
            &mut self.balance
        }

        #[traced]
        pub async fn into_balance_async(self) -> u64 {
            self.balance
        }

        #[traced]
        pub async fn add_then_close_async(mut self, amount: u64) -> u64 {
            self.balance += amount;
            self.balance
        }

        #[traced]
        pub async fn boxed_async(self: Box<Self>) -> u64 {
            self.id
        }

        #[traced]
        pub async fn pinned_async(self: Pin<&mut Self>) -> u64 {
            self.get_mut().balance += 1;
            1
        }

        #[traced]
        pub async fn new_async(id: u64) -> Self {
            Self::new(id)
        }
    }

    pub trait Ledger {
        fn total(&self) -> u64;

        fn make() -> Self
        where
            Self: Sized;

        fn clear(&mut self);

        #[traced]
        fn doubled(&self) -> u64 {
            self.total() * 2
        }

        #[traced]
        fn reset(&mut self) -> u64 {
            let before = self.total();
            self.clear();
            before
        }

        #[traced]
        fn make_default() -> Self
        where
            Self: Sized,
        {
            Self::make()
        }

        #[traced]
        fn consume(self) -> u64
        where
            Self: Sized,
        {
            self.total()
        }
    }

    impl Ledger for Account {
        #[traced]
        fn total(&self) -> u64 {
            self.balance
        }

        #[traced]
        fn make() -> Self {
            Account::default()
        }

        #[traced]
        fn clear(&mut self) {
            self.balance = 0;
        }
    }
}

/// Type parameters, lifetimes, const generics, where-clauses, HRTB, `impl Trait` arguments,
/// patterns.
mod generics {
    use super::{traced, Debug, Display, Hash, HashMap};

    #[traced]
    pub fn largest<T: PartialOrd + Copy>(items: &[T]) -> Option<T> {
        let mut best = *items.first()?;
        for item in items {
            if *item > best {
                best = *item;
            }
        }
        Some(best)
    }

    #[traced]
    pub fn longer<'a, 'b: 'a>(a: &'a str, b: &'b str) -> &'a str {
        if a.len() >= b.len() {
            a
        } else {
            b
        }
    }

    #[traced]
    pub fn sum_array<const N: usize>(items: [u32; N]) -> u32 {
        items.iter().sum()
    }

    #[traced]
    pub fn count<K, V, S>(map: &HashMap<K, V, S>) -> usize
    where
        K: Eq + Hash,
        V: Clone + Debug,
    {
        map.len()
    }

    #[traced]
    pub fn apply<F>(f: F, text: &str) -> String
    where
        F: for<'x> Fn(&'x str) -> &'x str,
    {
        f(text).to_owned()
    }

    #[traced]
    pub fn show(value: impl Display, suffix: impl AsRef<str>) -> String {
        format!("{value}{}", suffix.as_ref())
    }

    #[traced]
    pub fn collect_strings(items: impl IntoIterator<Item = impl Display>) -> Vec<String> {
        items.into_iter().map(|i| i.to_string()).collect()
    }

    pub struct Point {
        pub x: i32,
        pub y: i32,
    }

    #[traced]
    pub fn destructure(
        (a, b): (u32, u32),
        Point { x, y }: Point,
        [first, ..]: [u8; 3],
        _: u8,
        _unused: &str,
    ) -> i64 {
        i64::from(a + b) + i64::from(x * y) + i64::from(first)
    }

    #[traced]
    pub fn mutable_pattern(mut n: u32, (mut a, _): (u32, u32)) -> u32 {
        n += 1;
        a += n;
        a
    }

    #[traced]
    pub async fn async_generic<T: Display + Send>(value: T, extra: impl Display + Send) -> String {
        format!("{value}{extra}")
    }

    #[traced]
    pub async fn async_where<'a, T, const N: usize>(items: &'a [T; N]) -> Option<&'a T>
    where
        T: Sync + Debug,
    {
        items.first()
    }

    #[traced]
    pub async fn async_destructure((a, b): (u32, u32), _: u8) -> u32 {
        a + b
    }

    #[traced]
    pub async fn async_hrtb<F>(f: F) -> usize
    where
        F: for<'x> Fn(&'x str) -> &'x str + Send,
    {
        f("abc").len()
    }

    pub struct Wrapper<T>(pub T);

    impl<T: Clone + Display> Wrapper<T> {
        #[traced]
        pub fn get(&self) -> T {
            self.0.clone()
        }

        #[traced]
        pub fn map<U, F: FnOnce(T) -> U>(self, f: F) -> Wrapper<U> {
            Wrapper(f(self.0))
        }
    }
}

/// Non-async functions that return a future.
mod futures_returned {
    use super::{traced, BoxFuture, Future, Pin};

    #[traced]
    pub fn async_move_tail(id: u64) -> impl Future<Output = u64> + Send {
        let doubled = id * 2;
        let label = format!("id {id}");
        async move {
            std::future::ready(()).await;
            doubled + label.len() as u64
        }
    }

    #[traced]
    pub fn question_mark_inside(
        text: String,
    ) -> impl Future<Output = Result<u32, std::num::ParseIntError>> + Send {
        let radix = 10;
        async move {
            let n = u32::from_str_radix(&text, radix)?;
            if n == 0 {
                return Ok(0);
            }
            Ok(n + 1)
        }
    }

    #[traced]
    pub fn box_pin(id: u64) -> Pin<Box<dyn Future<Output = u64> + Send + 'static>> {
        let offset = 1;
        Box::pin(async move { id + offset })
    }

    #[traced]
    pub fn std_box_pin(
        id: u64,
    ) -> std::pin::Pin<std::boxed::Box<dyn std::future::Future<Output = u64> + Send>> {
        let offset = 2;
        std::boxed::Box::pin(async move { id + offset })
    }

    #[traced]
    pub fn box_future(id: u64) -> BoxFuture<'static, u64> {
        let offset = 3;
        Box::pin(async move { id + offset })
    }

    #[traced]
    pub fn ready_tail() -> impl Future<Output = u32> {
        std::future::ready(1)
    }

    #[traced]
    pub fn ready_tail_unpin() -> impl Future<Output = u32> + Unpin + Send + Sync {
        std::future::ready(2)
    }

    pub struct Client {
        pub base: u64,
    }

    impl Client {
        #[traced]
        pub fn fetch(&self, id: u64) -> impl Future<Output = u64> + Send + '_ {
            let id = id + 1;
            async move { self.base + id }
        }

        #[traced]
        pub fn fetch_boxed(&self, id: u64) -> Pin<Box<dyn Future<Output = u64> + Send + '_>> {
            let id = id + 1;
            Box::pin(async move { self.base + id })
        }
    }

    pub trait Fetch {
        fn fetch_one(&self) -> impl Future<Output = u64> + Send;
    }

    impl Fetch for Client {
        #[traced]
        fn fetch_one(&self) -> impl Future<Output = u64> + Send {
            let base = self.base;
            async move { base + 1 }
        }
    }
}

/// `#[async_trait]` and native `async fn` in traits.
mod traits {
    use super::{async_trait, traced, Rc};

    #[async_trait]
    pub trait Repository {
        async fn load(&self, id: u64) -> Result<String, String>;

        async fn store(&mut self, value: String) -> usize;

        #[traced]
        async fn load_twice(&self, id: u64) -> Result<String, String> {
            let first = self.load(id).await?;
            let second = self.load(id).await?;
            Ok(first + &second)
        }
    }

    pub struct Memory {
        pub rows: Vec<String>,
    }

    #[async_trait]
    impl Repository for Memory {
        #[traced(op = "db", data(db.rows = self.rows.len()))]
        async fn load(&self, id: u64) -> Result<String, String> {
            let index = usize::try_from(id).map_err(|e| e.to_string())?;
            self.rows
                .get(index)
                .cloned()
                .ok_or_else(|| format!("no row {id}"))
        }

        #[traced]
        async fn store(&mut self, value: String) -> usize {
            self.rows.push(value);
            self.rows.len()
        }
    }

    #[async_trait(?Send)]
    pub trait LocalRepository {
        async fn load(&self) -> Rc<str>;

        #[traced]
        async fn load_len(&self) -> usize {
            self.load().await.len()
        }
    }

    pub struct Local(pub Rc<str>);

    #[async_trait(?Send)]
    impl LocalRepository for Local {
        #[traced]
        async fn load(&self) -> Rc<str> {
            let value = Rc::clone(&self.0);
            std::future::ready(()).await;
            value
        }
    }

    pub(crate) trait Native {
        async fn load(&self, id: u64) -> Result<String, String>;

        #[traced]
        async fn load_twice(&self, id: u64) -> Result<String, String> {
            let first = self.load(id).await?;
            Ok(first.repeat(2))
        }
    }

    impl Native for Memory {
        #[traced(op = "db")]
        async fn load(&self, id: u64) -> Result<String, String> {
            let index = usize::try_from(id).map_err(|e| e.to_string())?;
            self.rows
                .get(index)
                .cloned()
                .ok_or_else(|| format!("no row {id}"))
        }
    }
}

/// Parameter names like the expansion's own, every argument form, a facade crate, bodies
/// that shadow names.
mod names_and_arguments {
    use super::traced;

    mod facade {
        pub use insights_runtime as insights;
    }

    #[traced(data(len = data.len(), span = span, guard = guard))]
    pub fn sync_names(span: u32, guard: u32, data: &[u8], debug: bool, display: &str) -> usize {
        let extra = usize::from(debug) + display.len();
        span as usize + guard as usize + data.len() + extra
    }

    #[traced(data(len = data.len(), span = span))]
    pub async fn async_names(span: u32, data: Vec<u8>) -> usize {
        span as usize + data.len()
    }

    #[traced(data(a = 1, a.b = 2, "c.d" = x.len(), r#type = "raw"))]
    pub fn data_forms(x: &str) -> usize {
        x.len()
    }

    #[traced(op = "batch", description = "import rows", transaction = "nightly", data(rows = rows), crate = insights_runtime,)]
    pub fn all_arguments(rows: u32) -> u32 {
        rows
    }

    #[traced(crate = ::insights_runtime, transaction = "t", data(id = id))]
    pub async fn all_arguments_async(id: u32) -> u32 {
        id
    }

    #[traced(crate = facade::insights, op = "facade")]
    pub fn through_facade() -> u32 {
        1
    }

    #[traced]
    pub fn use_shadows_result(value: u32) -> Result<String, String> {
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
    pub async fn use_shadows_result_async(value: u32) -> Result<String, String> {
        use std::fmt::Result;
        use std::fmt::Write;
        fn write(out: &mut String, value: u32) -> Result {
            write!(out, "{value}")
        }
        let mut out = String::new();
        write(&mut out, value).map_err(|e| e.to_string())?;
        Ok(out)
    }
}

/// Diverging functions and bodies.
mod diverging {
    use super::traced;

    #[traced]
    pub fn never(message: &str) -> ! {
        panic!("{message}")
    }

    #[traced]
    pub fn panics_value() -> u32 {
        panic!("always")
    }

    #[traced]
    pub fn loops_unit() {
        loop {
            std::thread::park();
        }
    }

    #[traced]
    pub async fn async_panics() -> u32 {
        panic!("always")
    }

    #[traced]
    pub async fn async_loops() {
        loop {
            std::future::pending::<()>().await;
        }
    }

    #[traced]
    pub fn future_panics() -> impl std::future::Future<Output = u32> {
        async { panic!("always") }
    }
}

#[expect(dead_code)]
#[traced]
fn unused_sync() -> u32 {
    1
}

#[traced]
#[expect(dead_code)]
async fn unused_async() -> u32 {
    2
}

#[test]
fn sync_shapes() {
    sync::no_return();
    assert_eq!(sync::returns_value(1, 2), 3);
    assert_eq!(sync::returns_result(&["1", "2"], false), Ok(3));
    assert_eq!(sync::returns_result(&["1", "", "x"], true), Ok(1));
    assert!(sync::returns_boxed_error("").is_err());
    assert_eq!(sync::returns_option(&[1]), Some(2));
    assert_eq!(sync::returns_iterator(3).sum::<u32>(), 6);
    assert_eq!(sync::returns_borrowed_iterator("a b").count(), 2);
    assert_eq!(sync::borrows_argument(" a "), "a");
    assert_eq!(sync::borrows_argument_elided("a b"), "a");
    let mut items = vec![1];
    *sync::borrows_mut_argument(&mut items) = 5;
    assert_eq!(items, [1, 5]);
    assert_eq!(sync::returns_closure(1)(2), 3);
    assert_eq!(sync::early_return_in_loop(&[1, 200]), 200);
    assert_eq!(sync::with_nested_items(), 42);
    let mut counter = sync::Counter {
        count: 0,
        label: "c".to_owned(),
    };
    *counter.count_mut() += 1;
    assert_eq!(counter.count, 1);
    assert_eq!(counter.label(), "c");

    assert_eq!(qualifiers::public(), 1);
    assert_eq!(qualifiers::crate_visible(), 2);
    assert_eq!(qualifiers::call_super_visible(), 3);
    let value = 4;
    // SAFETY: `value` is valid for reads.
    assert_eq!(unsafe { qualifiers::read(&raw const value) }, 4);
    assert_eq!(qualifiers::c_abi(1), 2);
    assert_eq!(qualifiers::inline_before(), 5);
    assert_eq!(qualifiers::inline_after(), 6);
    assert_eq!(qualifiers::must_use_before(), 7);
    assert_eq!(qualifiers::must_use_after(), 8);
    assert_eq!(qualifiers::doc_comments_around(), 9);
    assert_eq!(qualifiers::inner_attributes(), 10);
    assert_eq!(qualifiers::cfg_kept(), 12);
}

#[test]
fn async_shapes() {
    block_on(async {
        asynchronous::no_return().await;
        assert_eq!(asynchronous::returns_value(1, 2).await, 3);
        assert_eq!(
            asynchronous::returns_result(&["1", "2"], false).await,
            Ok(3)
        );
        assert_eq!(
            asynchronous::returns_impl_trait_in_result(false)
                .await
                .map(|v| v.to_string()),
            Ok("42".to_owned())
        );
        assert!(asynchronous::returns_impl_trait_in_result(true)
            .await
            .is_err());
        assert_eq!(
            asynchronous::returns_impl_trait().await.to_string(),
            "shown"
        );
        assert_eq!(asynchronous::returns_boxed_future().await.await, 3);
        assert_eq!(asynchronous::borrows_argument(" a ").await, "a");
        let value = 7;
        // SAFETY: `value` outlives the future.
        assert_eq!(unsafe { asynchronous::read(&raw const value) }.await, 7);
        assert_eq!(asynchronous::calls_other_instrumented().await, Ok(4));
    });
}

#[test]
fn method_shapes() {
    use methods::{Account, Ledger};

    let mut account = Account::new(7);
    assert_eq!(account.deposit(5), 5);
    assert_eq!(account.balance(), 5);
    *account.balance_mut() += 1;
    assert_eq!(Pin::new(&mut account).pinned(), 1);
    assert_eq!(account.doubled(), 14);
    assert_eq!(account.reset(), 7);
    assert_eq!(Account::make_default().total(), 0);
    assert_eq!(Account::new(2).consume(), 0);
    assert_eq!(Box::new(Account::new(3)).boxed(), 3);
    assert_eq!(Account::new(4).add_then_close(2), 2);
    assert_eq!(account.into_balance(), 0);
    block_on(async {
        let mut account = Account::new_async(9).await;
        assert_eq!(account.deposit_async(3).await, 3);
        assert_eq!(account.balance_async().await, 3);
        *account.balance_mut_async().await += 1;
        assert_eq!(Pin::new(&mut account).pinned_async().await, 1);
        assert_eq!(Box::new(Account::new(3)).boxed_async().await, 3);
        assert_eq!(Account::new(4).add_then_close_async(2).await, 2);
        assert_eq!(account.into_balance_async().await, 5);
    });
}

#[test]
fn generic_shapes() {
    use generics::{Point, Wrapper};

    assert_eq!(generics::largest(&[1, 3, 2]), Some(3));
    assert_eq!(generics::longer("ab", "a"), "ab");
    assert_eq!(generics::sum_array([1, 2, 3]), 6);
    assert_eq!(generics::count(&HashMap::<u8, u8>::new()), 0);
    assert_eq!(generics::apply(str::trim, " a "), "a");
    assert_eq!(generics::show(1, "x"), "1x");
    assert_eq!(generics::collect_strings([1, 2]), ["1", "2"]);
    assert_eq!(
        generics::destructure((1, 2), Point { x: 2, y: 3 }, [4, 0, 0], 0, ""),
        13
    );
    assert_eq!(generics::mutable_pattern(1, (1, 0)), 3);
    let wrapper = Wrapper(5);
    assert_eq!(wrapper.get(), 5);
    assert_eq!(wrapper.map(|n| n + 1).0, 6);
    block_on(async {
        assert_eq!(generics::async_generic(1, "x").await, "1x");
        assert_eq!(generics::async_where(&[1, 2]).await, Some(&1));
        assert_eq!(generics::async_destructure((1, 2), 0).await, 3);
        assert_eq!(generics::async_hrtb(str::trim).await, 3);
    });
}

#[test]
fn future_returning_shapes() {
    use futures_returned::{Client, Fetch};

    block_on(async {
        assert_eq!(futures_returned::async_move_tail(1).await, 6);
        assert_eq!(
            futures_returned::question_mark_inside("1".to_owned()).await,
            Ok(2)
        );
        assert!(futures_returned::question_mark_inside("x".to_owned())
            .await
            .is_err());
        assert_eq!(futures_returned::box_pin(1).await, 2);
        assert_eq!(futures_returned::std_box_pin(1).await, 3);
        assert_eq!(futures_returned::box_future(1).await, 4);
        assert_eq!(futures_returned::ready_tail().await, 1);
        assert_eq!(futures_returned::ready_tail_unpin().await, 2);
        let client = Client { base: 10 };
        assert_eq!(client.fetch(1).await, 12);
        assert_eq!(client.fetch_boxed(2).await, 13);
        assert_eq!(client.fetch_one().await, 11);
    });
}

#[test]
fn trait_shapes() {
    use traits::{Local, LocalRepository, Memory, Native, Repository};

    block_on(async {
        let mut memory = Memory {
            rows: vec!["a".to_owned()],
        };
        assert_eq!(Repository::load(&memory, 0).await, Ok("a".to_owned()));
        assert_eq!(
            Repository::load_twice(&memory, 0).await,
            Ok("aa".to_owned())
        );
        assert_eq!(memory.store("b".to_owned()).await, 2);
        assert_eq!(Native::load(&memory, 1).await, Ok("b".to_owned()));
        assert_eq!(Native::load_twice(&memory, 1).await, Ok("bb".to_owned()));
        let local = Local(Rc::from("abc"));
        assert_eq!(&*local.load().await, "abc");
        assert_eq!(local.load_len().await, 3);
    });
}

#[test]
fn names_and_argument_shapes() {
    use names_and_arguments as n;

    assert_eq!(n::sync_names(1, 2, &[3], true, "d"), 6);
    assert_eq!(n::data_forms("ab"), 2);
    assert_eq!(n::all_arguments(3), 3);
    assert_eq!(n::through_facade(), 1);
    assert_eq!(n::use_shadows_result(1), Ok("1".to_owned()));
    block_on(async {
        assert_eq!(n::async_names(1, vec![2]).await, 2);
        assert_eq!(n::all_arguments_async(4).await, 4);
        assert_eq!(n::use_shadows_result_async(2).await, Ok("2".to_owned()));
    });
}

#[test]
fn diverging_shapes() {
    assert!(std::panic::catch_unwind(|| diverging::never("expected")).is_err());
    assert!(std::panic::catch_unwind(diverging::panics_value).is_err());
    let _: fn() = diverging::loops_unit;
    assert!(std::panic::catch_unwind(|| block_on(diverging::async_panics())).is_err());
    drop(diverging::async_loops());
    assert!(std::panic::catch_unwind(|| block_on(diverging::future_panics())).is_err());
}

// `#[traced]` with `#[tokio::test]`, in both orders.

#[traced]
#[tokio::test]
async fn tokio_test_traced_outside() {
    tokio::task::yield_now().await;
    assert_eq!(asynchronous::returns_value(1, 1).await, 2);
}

#[tokio::test]
#[traced]
async fn tokio_test_traced_inside() {
    tokio::task::yield_now().await;
    assert_eq!(asynchronous::returns_value(2, 2).await, 4);
}

#[traced]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokio_test_traced_outside_result() -> Result<(), String> {
    let value = tokio::spawn(async { 1 }).await.map_err(|e| e.to_string())?;
    assert_eq!(value, 1);
    Ok(())
}

#[tokio::test(flavor = "current_thread")]
#[traced(op = "test")]
async fn tokio_test_traced_inside_result() -> Result<(), String> {
    let value = futures_returned::box_pin(1).await;
    assert_eq!(value, 2);
    Ok(())
}
