// Every receiver, associated functions; in inherent impls, trait impls and trait default bodies.
#![deny(warnings)]

use std::pin::Pin;

use futures::executor::block_on;
use insights_runtime::traced;

#[derive(Default)]
struct Account {
    id: u64,
    balance: u64,
}

impl Account {
    #[traced]
    fn new(id: u64) -> Self {
        Account { id, balance: 0 }
    }

    #[traced]
    fn open() -> Account {
        Self::new(1)
    }

    #[traced(data(account.id = self.id))]
    fn balance(&self) -> u64 {
        self.balance
    }

    #[traced]
    fn deposit(&mut self, amount: u64) -> u64 {
        self.balance += amount;
        self.balance
    }

    #[traced]
    fn balance_mut(&mut self) -> &mut u64 {
        &mut self.balance
    }

    #[traced]
    fn into_balance(self) -> u64 {
        self.balance
    }

    #[traced]
    fn add_then_close(mut self, amount: u64) -> u64 {
        self.balance += amount;
        self.balance
    }

    #[traced]
    fn boxed(self: Box<Self>) -> u64 {
        self.id
    }

    #[traced]
    fn pinned(self: Pin<&mut Self>) -> u64 {
        self.get_mut().balance += 1;
        1
    }

    #[traced]
    fn explicit_ref(self: &Self) -> u64 {
        self.id
    }

    #[traced]
    async fn balance_async(&self) -> u64 {
        self.balance
    }

    #[traced]
    async fn deposit_async(&mut self, amount: u64) -> u64 {
        self.balance += amount;
        self.balance
    }

    #[traced]
    async fn balance_mut_async(&mut self) -> &mut u64 {
        &mut self.balance
    }

    #[traced]
    async fn into_balance_async(self) -> u64 {
        self.balance
    }

    #[traced]
    async fn add_then_close_async(mut self, amount: u64) -> u64 {
        self.balance += amount;
        self.balance
    }

    #[traced]
    async fn boxed_async(self: Box<Self>) -> u64 {
        self.id
    }

    #[traced]
    async fn pinned_async(self: Pin<&mut Self>) -> u64 {
        self.get_mut().balance += 1;
        1
    }

    #[traced]
    async fn new_async(id: u64) -> Self {
        Self::new(id)
    }
}

trait Ledger {
    fn total(&self) -> u64;

    fn make() -> Self
    where
        Self: Sized;

    #[traced]
    fn doubled(&self) -> u64 {
        self.total() * 2
    }

    #[traced]
    fn reset(&mut self) -> u64 {
        let before = self.total();
        self.clear();
        before
    }

    fn clear(&mut self);

    #[traced]
    fn make_default() -> Self
    where
        Self: Sized,
    {
        Self::make()
    }

    #[traced]
    fn consume(self) -> u64
    where
        Self: Sized,
    {
        self.total()
    }
}

impl Ledger for Account {
    #[traced]
    fn total(&self) -> u64 {
        self.balance
    }

    #[traced]
    fn make() -> Self {
        Account::default()
    }

    #[traced]
    fn clear(&mut self) {
        self.balance = 0;
    }
}

fn main() {
    let mut account = Account::new(7);
    assert_eq!(Account::open().id, 1);
    assert_eq!(account.deposit(5), 5);
    assert_eq!(account.balance(), 5);
    *account.balance_mut() += 1;
    assert_eq!(account.explicit_ref(), 7);
    assert_eq!(Pin::new(&mut account).pinned(), 1);
    assert_eq!(account.doubled(), 14);
    assert_eq!(account.reset(), 7);
    assert_eq!(Account::make_default().total(), 0);
    assert_eq!(Account::new(2).consume(), 0);
    assert_eq!(Box::new(Account::new(3)).boxed(), 3);
    assert_eq!(Account::new(4).add_then_close(2), 2);
    assert_eq!(account.into_balance(), 0);
    block_on(async {
        let mut account = Account::new_async(9).await;
        assert_eq!(account.deposit_async(3).await, 3);
        assert_eq!(account.balance_async().await, 3);
        *account.balance_mut_async().await += 1;
        assert_eq!(Pin::new(&mut account).pinned_async().await, 1);
        assert_eq!(Box::new(Account::new(3)).boxed_async().await, 3);
        assert_eq!(Account::new(4).add_then_close_async(2).await, 2);
        assert_eq!(account.into_balance_async().await, 5);
    });
}
