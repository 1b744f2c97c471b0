// A type error in the body of an instrumented sync fn is reported on the user's expression,
// as it would be without the attribute, not on the attribute.

use insights_runtime::traced;

struct AppError;

#[traced]
fn wrong_tail() -> u32 {
    "not a number"
}

#[traced]
fn wrong_let() -> u32 {
    let n: u32 = "not a number";
    n
}

#[traced]
fn wrong_return(fail: bool) -> u32 {
    if fail {
        return "not a number";
    }
    1
}

#[traced]
fn wrong_error() -> Result<u32, AppError> {
    let n: u32 = "1".parse()?;
    Ok(n)
}

fn main() {
    let _ = AppError;
    let _ = wrong_tail();
    let _ = wrong_let();
    let _ = wrong_return(false);
    let _ = wrong_error();
}
