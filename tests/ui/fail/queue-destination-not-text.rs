// A `destination` expression that is not text (`AsRef<str>`), on a producer and on a consumer:
// the error is on the expression and says what the attribute takes.

use insights_runtime::{instrument_queue_process, instrument_queue_publish};

struct Jobs {
    shard: u32,
}

impl Jobs {
    #[instrument_queue_publish(destination = self.shard, system = "rabbitmq")]
    fn publish(&self) -> Result<(), String> {
        Ok(())
    }

    #[instrument_queue_process(destination = self.shard, system = "rabbitmq")]
    fn process(&self) -> Result<(), String> {
        Ok(())
    }
}

fn main() {
    let jobs = Jobs { shard: 1 };
    let _ = jobs.publish();
    let _ = jobs.process();
}
