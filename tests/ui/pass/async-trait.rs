// `#[async_trait]` impls and default methods, `Send` and `?Send`, with `#[traced]` under
// `#[async_trait]` (which rewrites the method into `fn -> Pin<Box<dyn Future>>` first).
#![deny(warnings)]

use std::rc::Rc;

use async_trait::async_trait;
use futures::executor::block_on;
use insights_runtime::traced;

#[async_trait]
trait Repository {
    async fn load(&self, id: u64) -> Result<String, String>;

    async fn store(&mut self, value: String) -> usize;

    #[traced]
    async fn load_twice(&self, id: u64) -> Result<String, String> {
        let first = self.load(id).await?;
        let second = self.load(id).await?;
        Ok(first + &second)
    }

    #[traced(op = "repository.count")]
    async fn count(&self) -> usize {
        0
    }

    #[traced]
    async fn make() -> u32
    where
        Self: Sized,
    {
        1
    }
}

struct Memory {
    rows: Vec<String>,
}

#[async_trait]
impl Repository for Memory {
    #[traced(op = "db", data(db.rows = self.rows.len()))]
    async fn load(&self, id: u64) -> Result<String, String> {
        let index = usize::try_from(id).map_err(|e| e.to_string())?;
        self.rows
            .get(index)
            .cloned()
            .ok_or_else(|| format!("no row {id}"))
    }

    #[traced]
    async fn store(&mut self, value: String) -> usize {
        self.rows.push(value);
        self.rows.len()
    }

    #[traced]
    async fn count(&self) -> usize {
        self.rows.len()
    }
}

#[async_trait(?Send)]
trait LocalRepository {
    async fn load(&self) -> Rc<str>;

    #[traced]
    async fn load_len(&self) -> usize {
        self.load().await.len()
    }
}

struct Local(Rc<str>);

#[async_trait(?Send)]
impl LocalRepository for Local {
    #[traced]
    async fn load(&self) -> Rc<str> {
        // Not `Send`: only a `?Send` future may hold it across an await.
        let value = Rc::clone(&self.0);
        std::future::ready(()).await;
        value
    }
}

fn main() {
    block_on(async {
        let mut memory = Memory {
            rows: vec!["a".to_owned()],
        };
        assert_eq!(memory.load(0).await, Ok("a".to_owned()));
        assert!(memory.load(5).await.is_err());
        assert_eq!(memory.load_twice(0).await, Ok("aa".to_owned()));
        assert_eq!(memory.store("b".to_owned()).await, 2);
        assert_eq!(memory.count().await, 2);
        assert_eq!(Memory::make().await, 1);
        let local = Local(Rc::from("abc"));
        assert_eq!(&*local.load().await, "abc");
        assert_eq!(local.load_len().await, 3);
    });
}
