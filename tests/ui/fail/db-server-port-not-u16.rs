// The port of `server` is a `u16`: a port of another integer type is reported on it.

use insights_runtime::instrument_db_operation;

struct Pool {
    host: String,
    port: u32,
}

impl Pool {
    #[instrument_db_operation("users", "select", server = (self.host.as_str(), self.port))]
    fn count(&self) -> Result<u32, String> {
        Ok(1)
    }
}

fn main() {
    let _ = Pool { host: "db".to_owned(), port: 5432 }.count();
}
