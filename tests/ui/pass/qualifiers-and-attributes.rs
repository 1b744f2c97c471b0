// Visibility, qualifiers and other attributes are kept as written, before and after ours.
#![deny(warnings)]
#![deny(unsafe_op_in_unsafe_fn)]

use insights_runtime::traced;

/// A public function, documented.
#[traced]
pub fn public() -> u32 {
    1
}

#[traced]
pub(crate) fn crate_visible() -> u32 {
    2
}

mod inner {
    use insights_runtime::traced;

    #[traced]
    pub(super) fn super_visible() -> u32 {
        3
    }

    #[traced]
    pub(in crate::inner) fn path_visible() -> u32 {
        4
    }

    pub fn call_path_visible() -> u32 {
        path_visible()
    }
}

/// Reads through a raw pointer.
///
/// # Safety
///
/// `p` must be valid for reads.
#[traced]
unsafe fn read(p: *const u32) -> u32 {
    // SAFETY: the caller's promise.
    unsafe { *p }
}

/// Reads through a raw pointer.
///
/// # Safety
///
/// `p` must be valid for reads.
#[traced]
pub unsafe fn public_read(p: *const u32) -> u32 {
    // SAFETY: the caller's promise.
    unsafe { p.read() }
}

#[traced]
extern "C" fn c_abi(n: u32) -> u32 {
    n + 1
}

#[traced]
pub unsafe extern "C" fn unsafe_c_abi(n: u32) -> u32 {
    n + 2
}

#[inline]
#[traced]
fn inline_before() -> u32 {
    5
}

#[traced]
#[inline(always)]
fn inline_after() -> u32 {
    6
}

#[must_use]
#[traced]
fn must_use_before() -> u32 {
    7
}

#[traced]
#[must_use = "the count is the point"]
fn must_use_after() -> u32 {
    8
}

/// Doc before ours.
#[traced(op = "docs")]
/// Doc after ours.
#[allow(clippy::all)]
#[cfg_attr(any(), deprecated)]
fn doc_comments_around() -> u32 {
    9
}

#[traced]
fn inner_attributes() -> u32 {
    #![allow(unused_variables, unused_mut)]
    #![allow(clippy::let_and_return)]
    let mut unused = 1;
    let result = 10;
    result
}

#[traced]
#[allow(non_snake_case)]
fn NotSnakeCase() -> u32 {
    11
}

#[cfg(all())]
#[traced]
fn cfg_kept() -> u32 {
    12
}

#[cfg(any())]
#[traced]
fn cfg_removed() -> u32 {
    compile_error!("removed by cfg")
}

#[traced]
#[allow(clippy::too_many_arguments)]
#[allow(unused_mut)]
fn many_attributes(mut a: u32) -> u32 {
    a
}

fn main() {
    assert_eq!(public(), 1);
    assert_eq!(crate_visible(), 2);
    assert_eq!(inner::super_visible(), 3);
    assert_eq!(inner::call_path_visible(), 4);
    let value = 5;
    // SAFETY: `value` is valid for reads.
    assert_eq!(unsafe { read(&value) }, 5);
    // SAFETY: `value` is valid for reads.
    assert_eq!(unsafe { public_read(&value) }, 5);
    assert_eq!(c_abi(1), 2);
    // SAFETY: no requirement.
    assert_eq!(unsafe { unsafe_c_abi(1) }, 3);
    assert_eq!(inline_before(), 5);
    assert_eq!(inline_after(), 6);
    assert_eq!(must_use_before(), 7);
    assert_eq!(must_use_after(), 8);
    assert_eq!(doc_comments_around(), 9);
    assert_eq!(inner_attributes(), 10);
    assert_eq!(NotSnakeCase(), 11);
    assert_eq!(cfg_kept(), 12);
    assert_eq!(many_attributes(13), 13);
}
