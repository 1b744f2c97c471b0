// The same data key twice, however it is spelled: the error is on the second, all of it.

use insights_runtime::traced;

#[traced(data(rows = 1, rows = 2))]
fn plain(rows: usize) -> usize {
    rows
}

#[traced(data(db.rows = 1, "db.rows" = 2))]
fn dotted_then_string(rows: usize) -> usize {
    rows
}

#[traced(data("db.rows" = 1, db.rows = 2))]
fn string_then_dotted(rows: usize) -> usize {
    rows
}

fn main() {
    let _ = plain(1);
    let _ = dotted_then_string(1);
    let _ = string_then_dotted(1);
}
