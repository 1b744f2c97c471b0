// Type parameters with bounds, lifetimes, const generics, where-clauses (with HRTB),
// argument-position `impl Trait`, destructuring patterns and `_` parameters.
#![deny(warnings)]

use std::collections::HashMap;
use std::fmt::{Debug, Display};
use std::hash::Hash;

use futures::executor::block_on;
use insights_runtime::traced;

#[traced]
fn largest<T: PartialOrd + Copy>(items: &[T]) -> Option<T> {
    let mut best = *items.first()?;
    for item in items {
        if *item > best {
            best = *item;
        }
    }
    Some(best)
}

#[traced]
fn longer<'a, 'b: 'a>(a: &'a str, b: &'b str) -> &'a str {
    if a.len() >= b.len() {
        a
    } else {
        b
    }
}

#[traced]
fn sum_array<const N: usize>(items: [u32; N]) -> u32 {
    items.iter().sum()
}

#[traced]
fn sum_array_default<const N: usize>(items: [u8; N]) -> usize
where
    [u8; N]: Debug,
{
    format!("{items:?}").len()
}

#[traced]
fn count<K, V>(map: &HashMap<K, V>) -> usize
where
    K: Eq + Hash,
    V: Clone + Debug,
{
    map.len()
}

#[traced]
fn apply<F>(f: F, text: &str) -> String
where
    F: for<'x> Fn(&'x str) -> &'x str,
{
    f(text).to_owned()
}

#[traced]
fn apply_dyn(f: &dyn for<'x> Fn(&'x str) -> &'x str, text: &str) -> usize {
    f(text).len()
}

#[traced]
fn show(value: impl Display, suffix: impl AsRef<str>) -> String {
    format!("{value}{}", suffix.as_ref())
}

#[traced]
fn collect_strings(items: impl IntoIterator<Item = impl Display>) -> Vec<String> {
    items.into_iter().map(|i| i.to_string()).collect()
}

#[traced]
fn with_default_type_param<T: Default + PartialEq>(value: T) -> bool {
    value == T::default()
}

struct Point {
    x: i32,
    y: i32,
}

#[traced]
fn destructure(
    (a, b): (u32, u32),
    Point { x, y }: Point,
    [first, ..]: [u8; 3],
    _: u8,
    _unused: &str,
) -> i64 {
    i64::from(a + b) + i64::from(x * y) + i64::from(first)
}

#[traced]
fn mutable_pattern(mut n: u32, (mut a, _): (u32, u32)) -> u32 {
    n += 1;
    a += n;
    a
}

#[traced]
fn reference_pattern(&n: &u32, &mut ref mut m: &mut u32) -> u32 {
    *m += 1;
    n + *m
}

#[traced]
async fn async_generic<T: Display + Send>(value: T, extra: impl Display + Send) -> String {
    format!("{value}{extra}")
}

#[traced]
async fn async_where<'a, T, const N: usize>(items: &'a [T; N]) -> Option<&'a T>
where
    T: Sync + Debug,
{
    items.first()
}

#[traced]
async fn async_destructure((a, b): (u32, u32), _: u8) -> u32 {
    a + b
}

#[traced]
async fn async_hrtb<F>(f: F) -> usize
where
    F: for<'x> Fn(&'x str) -> &'x str + Send,
{
    f("abc").len()
}

struct Wrapper<T>(T);

impl<T: Clone + Display> Wrapper<T> {
    #[traced]
    fn get(&self) -> T {
        self.0.clone()
    }

    #[traced]
    fn map<U, F: FnOnce(T) -> U>(self, f: F) -> Wrapper<U> {
        Wrapper(f(self.0))
    }

    #[traced]
    fn borrow_inner<'s>(&'s self) -> &'s T
    where
        T: 's,
    {
        &self.0
    }
}

fn main() {
    assert_eq!(largest(&[1, 3, 2]), Some(3));
    assert_eq!(largest::<u8>(&[]), None);
    assert_eq!(longer("ab", "a"), "ab");
    assert_eq!(sum_array([1, 2, 3]), 6);
    assert_eq!(sum_array_default([1]), 3);
    assert_eq!(count(&HashMap::<u8, u8>::new()), 0);
    assert_eq!(apply(str::trim, " a "), "a");
    assert_eq!(apply_dyn(&str::trim, " a "), 1);
    assert_eq!(show(1, "x"), "1x");
    assert_eq!(collect_strings([1, 2]), ["1", "2"]);
    assert!(with_default_type_param(0));
    assert_eq!(
        destructure((1, 2), Point { x: 2, y: 3 }, [4, 0, 0], 0, ""),
        13
    );
    assert_eq!(mutable_pattern(1, (1, 0)), 3);
    let mut m = 1;
    assert_eq!(reference_pattern(&1, &mut m), 3);
    let wrapper = Wrapper(5);
    assert_eq!(wrapper.get(), 5);
    assert_eq!(*wrapper.borrow_inner(), 5);
    assert_eq!(wrapper.map(|n| n + 1).0, 6);
    block_on(async {
        assert_eq!(async_generic(1, "x").await, "1x");
        assert_eq!(async_where(&[1, 2]).await, Some(&1));
        assert_eq!(async_destructure((1, 2), 0).await, 3);
        assert_eq!(async_hrtb(str::trim).await, 3);
    });
}
