// Sync functions of every return shape.
#![deny(warnings)]

use insights_runtime::traced;

#[traced]
fn no_return() {}

#[traced]
fn returns_value(a: u32, b: u32) -> u32 {
    a + b
}

#[traced]
fn returns_result(items: &[&str], stop_at_empty: bool) -> Result<u32, std::num::ParseIntError> {
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
fn returns_boxed_error(text: &str) -> Result<u32, Box<dyn std::error::Error>> {
    if text.is_empty() {
        return Err("empty".into());
    }
    Ok(text.parse::<u32>()?)
}

#[traced]
fn returns_option(items: &[u32]) -> Option<u32> {
    let first = items.first()?;
    Some(*first + 1)
}

#[traced]
fn returns_iterator(limit: u32) -> impl Iterator<Item = u32> {
    (0..limit).map(|n| n * 2)
}

#[traced]
fn returns_borrowed_iterator<'a>(text: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    text.split(' ')
}

#[traced]
fn borrows_argument<'a>(text: &'a str) -> &'a str {
    text.trim()
}

#[traced]
fn borrows_argument_elided(text: &str) -> &str {
    match text.find(' ') {
        Some(i) => &text[..i],
        None => text,
    }
}

#[traced]
fn borrows_mut_argument(items: &mut Vec<u32>) -> &mut u32 {
    items.push(0);
    let last = items.len() - 1;
    &mut items[last]
}

#[traced]
fn returns_closure(base: u32) -> impl Fn(u32) -> u32 {
    move |n| n + base
}

#[traced]
fn early_return_in_loop(items: &[u32]) -> u32 {
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
fn with_nested_items() -> u32 {
    const BASE: u32 = 40;
    fn helper() -> u32 {
        2
    }
    struct Local(u32);
    impl Local {
        fn get(&self) -> u32 {
            self.0
        }
    }
    Local(BASE).get() + helper()
}

struct Counter {
    count: u32,
    label: String,
}

impl Counter {
    #[traced]
    fn count_mut(&mut self) -> &mut u32 {
        &mut self.count
    }

    #[traced]
    fn label(&self) -> &str {
        &self.label
    }
}

fn main() {
    no_return();
    assert_eq!(returns_value(1, 2), 3);
    assert_eq!(returns_result(&["1", "2"], false), Ok(3));
    assert_eq!(returns_result(&["1", "", "x"], true), Ok(1));
    assert!(returns_result(&["x"], false).is_err());
    assert!(returns_boxed_error("").is_err());
    assert_eq!(returns_boxed_error("7").unwrap(), 7);
    assert_eq!(returns_option(&[1]), Some(2));
    assert_eq!(returns_option(&[]), None);
    assert_eq!(returns_iterator(3).sum::<u32>(), 6);
    assert_eq!(returns_borrowed_iterator("a b").count(), 2);
    assert_eq!(borrows_argument(" a "), "a");
    assert_eq!(borrows_argument_elided("a b"), "a");
    let mut items = vec![1];
    *borrows_mut_argument(&mut items) = 5;
    assert_eq!(items, [1, 5]);
    assert_eq!(returns_closure(1)(2), 3);
    assert_eq!(early_return_in_loop(&[1, 200]), 200);
    assert_eq!(early_return_in_loop(&[0, 200]), 0);
    assert_eq!(with_nested_items(), 42);
    let mut counter = Counter {
        count: 0,
        label: "c".to_owned(),
    };
    *counter.count_mut() += 1;
    assert_eq!(counter.count, 1);
    assert_eq!(counter.label(), "c");
}
