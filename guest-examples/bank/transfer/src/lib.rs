//! `bank-transfer`: moves money between two accounts through the imported
//! `acme:bank/account` interface.
//!
//! Deploy it linked to the account type, then send it text commands:
//!
//! ```text
//! pigeon deploy bank_transfer.wasm --name transfer --link acme:bank/account=account
//! pigeon send transfer/desk 't-1 alice bob 30'          # ID FROM TO AMOUNT
//! ```
//!
//! A transfer withdraws from `account/FROM` and deposits into `account/TO`
//! (the target of each call is picked with `rpc.set-target`), then records
//! its outcome under state key `done/ID`: `ok FROM TO AMOUNT`, or
//! `insufficient FROM TO AMOUNT BALANCE` when the typed `insufficient-funds`
//! error came back. The turn is a transaction and the calls have
//! deterministic ids, so even across crashes each transfer moves the money
//! once: the total over all accounts never changes.

wit_bindgen::generate!({ world: "acme:bank/transfer-actor", path: ["../../../wit", "../wit"], generate_all });

use acme::bank::account::{self, AccountError};
use exports::pigeon::actor::handler::Guest;
use pigeon::actor::types::Envelope;
use pigeon::actor::{rpc, state};

const ACCOUNT: &str = "acme:bank/account";

struct Transfer;

impl Guest for Transfer {
    fn handle(message: Envelope) -> Result<Option<Vec<u8>>, String> {
        let text = String::from_utf8(message.payload).map_err(|_| "transfer: payload is not UTF-8".to_string())?;
        let words: Vec<&str> = text.split_whitespace().collect();
        let [id, from, to, amount] = words.as_slice() else {
            return Err(format!("transfer: expected `ID FROM TO AMOUNT`, got `{text}`"));
        };
        let amount: u64 = amount.parse().map_err(|_| format!("transfer: `{amount}` is not an amount"))?;
        let done = format!("done/{id}");
        if let Some(outcome) = state::get(&done) {
            // The same transfer sent twice: report, do not move money again.
            return Ok(Some(outcome));
        }
        rpc::set_target(ACCOUNT, &format!("account/{from}"))?;
        let outcome = match account::withdraw(amount) {
            Ok(_) => {
                rpc::set_target(ACCOUNT, &format!("account/{to}"))?;
                // Cannot be refused: the amount is not zero. Were it refused,
                // the turn fails and its retry replays the withdrawal's
                // stored reply instead of withdrawing again.
                account::deposit(amount).map_err(|e| format!("transfer: deposit refused: {e:?}"))?;
                format!("ok {from} {to} {amount}")
            }
            Err(AccountError::InsufficientFunds(s)) => format!("insufficient {from} {to} {amount} {}", s.balance),
            Err(AccountError::ZeroAmount) => format!("zero {from} {to} {amount}"),
        };
        state::set(&done, outcome.as_bytes());
        Ok(Some(outcome.into_bytes()))
    }
}

export!(Transfer);
