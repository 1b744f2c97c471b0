// A type error in the body of an instrumented async fn is reported on the user's expression,
// as it would be without the attribute, not on the attribute.

use insights_runtime::traced;

struct AppError;

#[traced]
async fn wrong_tail() -> u32 {
    "not a number"
}

#[traced]
async fn wrong_let() -> u32 {
    let n: u32 = "not a number";
    n
}

#[traced]
async fn wrong_return(fail: bool) -> u32 {
    if fail {
        return "not a number";
    }
    1
}

#[traced]
async fn wrong_error() -> Result<u32, AppError> {
    let n: u32 = "1".parse()?;
    Ok(n)
}

fn main() {
    let _ = AppError;
    drop(wrong_tail());
    drop(wrong_let());
    drop(wrong_return(false));
    drop(wrong_error());
}
