// `query` takes the statement as a string literal or a path to a `const`; any other expression
// is refused on the expression, naming both forms.

use insights_runtime::instrument_db_operation;

fn statement() -> &'static str {
    "SELECT 1"
}

#[instrument_db_operation(query = statement(), table = "users")]
fn count() -> Result<u32, String> {
    Ok(1)
}

fn main() {
    let _ = count();
}
