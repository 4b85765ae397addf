//! A turn's commit on its way to disk.
//!
//! [`Store::submit_turn`](crate::Store::submit_turn) queues a turn's effects
//! and returns at once with a [`TurnTicket`]; the ticket says later whether
//! they became durable. In between, the actor may run its next turn on top
//! of them, and a caller may go on with the callee's reply: the committer
//! applies requests in submission order, so whatever they commit comes after
//! this commit and is durable only with it. The ticket's `epoch` is what such
//! a later turn names in [`TurnCommit::depends_on`](super::TurnCommit) so
//! that it is refused if this commit is not made after all.

use tokio::sync::oneshot;

use super::Reply;
use crate::error::StoreError;

/// The pending outcome of one submitted turn commit.
#[derive(Debug)]
pub struct TurnTicket {
    /// The commit epoch when the commit was queued.
    pub epoch: u64,
    state: State,
}

#[derive(Debug)]
enum State {
    /// Queued; the committer answers once its batch is durable.
    Queued(oneshot::Receiver<Result<Reply, StoreError>>),
    /// Known without the committer: nothing to write, or not queued.
    Known(Option<Result<(), StoreError>>),
}

impl TurnTicket {
    pub(crate) fn queued(epoch: u64, wait: oneshot::Receiver<Result<Reply, StoreError>>) -> Self {
        Self { epoch, state: State::Queued(wait) }
    }

    pub(crate) fn known(epoch: u64, outcome: Result<(), StoreError>) -> Self {
        Self { epoch, state: State::Known(Some(outcome)) }
    }

    /// Whether the commit is still on its way (a turn built on it must
    /// name it in `depends_on`).
    pub fn is_pending(&self) -> bool {
        matches!(self.state, State::Queued(_))
    }

    /// The outcome, if it is known already (does not wait).
    pub fn try_outcome(&mut self) -> Option<Result<(), StoreError>> {
        let outcome = match &mut self.state {
            State::Known(outcome) => return outcome.take(),
            State::Queued(wait) => match wait.try_recv() {
                Ok(result) => result.map(drop),
                Err(oneshot::error::TryRecvError::Empty) => return None,
                Err(oneshot::error::TryRecvError::Closed) => Err(StoreError::Closed),
            },
        };
        self.state = State::Known(None);
        Some(outcome)
    }

    /// Waits for the outcome: `Ok` once the commit is durable.
    pub async fn outcome(&mut self) -> Result<(), StoreError> {
        let outcome = match &mut self.state {
            State::Known(outcome) => return outcome.take().unwrap_or(Err(StoreError::Closed)),
            State::Queued(wait) => match wait.await {
                Ok(result) => result.map(drop),
                Err(_) => Err(StoreError::Closed),
            },
        };
        self.state = State::Known(None);
        outcome
    }
}
