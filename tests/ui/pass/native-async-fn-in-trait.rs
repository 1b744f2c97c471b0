// Native `async fn` in traits: in impls and in default bodies.
#![deny(warnings)]

use futures::executor::block_on;
use insights_runtime::traced;

trait Repository {
    async fn load(&self, id: u64) -> Result<String, String>;

    #[traced]
    async fn load_twice(&self, id: u64) -> Result<String, String> {
        let first = self.load(id).await?;
        Ok(first.repeat(2))
    }

    #[traced]
    async fn make() -> Self
    where
        Self: Sized + Default,
    {
        Self::default()
    }

    #[traced]
    async fn consume(self) -> usize
    where
        Self: Sized,
    {
        1
    }
}

#[derive(Default)]
struct Memory {
    rows: Vec<String>,
}

impl Repository for Memory {
    #[traced(op = "db")]
    async fn load(&self, id: u64) -> Result<String, String> {
        let index = usize::try_from(id).map_err(|e| e.to_string())?;
        self.rows
            .get(index)
            .cloned()
            .ok_or_else(|| format!("no row {id}"))
    }
}

fn main() {
    block_on(async {
        let memory = Memory {
            rows: vec!["a".to_owned()],
        };
        assert_eq!(memory.load(0).await, Ok("a".to_owned()));
        assert_eq!(memory.load_twice(0).await, Ok("aa".to_owned()));
        assert!(Memory::make().await.rows.is_empty());
        assert_eq!(memory.consume().await, 1);
    });
}
