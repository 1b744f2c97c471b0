// The address of `server` must be text (`AsRef<str>`): an IP address as an integer is reported
// on it.

use insights_runtime::instrument_db_operation;

struct Pool {
    ip: u32,
    port: u16,
}

impl Pool {
    #[instrument_db_operation("users", "select", server = (self.ip, self.port))]
    fn count(&self) -> Result<u32, String> {
        Ok(1)
    }
}

fn main() {
    let _ = Pool { ip: 1, port: 5432 }.count();
}
