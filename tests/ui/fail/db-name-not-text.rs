// A `db_name` expression that is not text (`AsRef<str>`): the error is on the expression.

use insights_runtime::instrument_db_operation;

struct Pool {
    shard: u32,
}

impl Pool {
    #[instrument_db_operation("users", "select", db_name = self.shard)]
    fn count(&self) -> Result<u32, String> {
        Ok(1)
    }
}

fn main() {
    let _ = Pool { shard: 1 }.count();
}
