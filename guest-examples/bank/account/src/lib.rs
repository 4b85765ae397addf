//! `bank-account`: an account actor exporting `acme:bank/account`.
//!
//! Each actor (`account/alice`) is one account; its balance is state key
//! `balance` (decimal text). The exported functions are called by typed RPC
//! — from the `transfer` actor, or from the CLI:
//!
//! ```text
//! pigeon call account/alice 'account.deposit(100)'     # ok(100)
//! pigeon call account/alice 'account.withdraw(500)'    # err(insufficient-funds({balance: 100, requested: 500}))
//! ```
//!
//! A refused withdrawal is a typed error returned as a value: the turn
//! commits (nothing changed) and the caller receives the `account-error`.
//! The handler answers the text command `balance` for plain messages.

wit_bindgen::generate!({ world: "acme:bank/account-actor", path: ["../../../wit", "../wit"], generate_all });

use exports::acme::bank::account::{AccountError, Guest as Account, Shortfall};
use exports::pigeon::actor::handler::Guest as Handler;
use pigeon::actor::state;
use pigeon::actor::types::Envelope;

struct BankAccount;

fn balance() -> u64 {
    state::get("balance").and_then(|v| String::from_utf8(v).ok()).and_then(|s| s.parse().ok()).unwrap_or(0)
}

fn set_balance(balance: u64) {
    state::set("balance", balance.to_string().as_bytes());
}

impl Account for BankAccount {
    fn deposit(amount: u64) -> Result<u64, AccountError> {
        if amount == 0 {
            return Err(AccountError::ZeroAmount);
        }
        // No real balance reaches u64::MAX: past it is a broken invariant,
        // not a refusal a caller could act on, so the turn traps (rolled
        // back, retried, then dead-lettered with this message).
        let Some(new) = balance().checked_add(amount) else { panic!("account: the balance would overflow") };
        set_balance(new);
        Ok(new)
    }

    fn withdraw(amount: u64) -> Result<u64, AccountError> {
        if amount == 0 {
            return Err(AccountError::ZeroAmount);
        }
        let current = balance();
        let Some(new) = current.checked_sub(amount) else {
            return Err(AccountError::InsufficientFunds(Shortfall { balance: current, requested: amount }));
        };
        set_balance(new);
        Ok(new)
    }

    fn balance() -> u64 {
        balance()
    }
}

impl Handler for BankAccount {
    fn handle(message: Envelope) -> Result<Option<Vec<u8>>, String> {
        match message.payload.as_slice() {
            b"balance" => Ok(Some(balance().to_string().into_bytes())),
            _ => Err("account: the only text command is `balance`; use the typed `acme:bank/account` functions".into()),
        }
    }
}

export!(BankAccount);
