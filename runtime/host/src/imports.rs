//! The host side of the `pigeon:actor` imports: what a guest's calls to
//! `messaging`, `state` and `logging` do.
//!
//! Nothing here writes to the store. State writes and sends go into the
//! current turn's buffer and reach the store only when the turn commits, so a
//! failed turn leaves no trace. Sends are validated at once (address, type,
//! priority, size, mailbox bound) so the guest learns of a refusal while it
//! can still act on it.
//!
//! The node's [`Limits`] hold here as they hold for clients: a payload over
//! the limit is an error the guest can handle (`payload-too-large`); every
//! other limit (headers, dedup keys, state sizes, sends per turn) fails the
//! turn with an error that names the limit.

use pigeon_store::{ActorAddr, Delivery, Envelope, LimitError, Limits, MAX_PRIORITY, MessageKind, TopicEffect, now_ms};

use crate::activation::{ActorData, TurnBuffer};
use crate::bindings::pigeon::actor::{logging, messaging, state, topics, types};
use crate::{CallFailure, SendRefusal};

/// Most bytes (keys, values, payloads) one turn may buffer before it is
/// stopped: bounds the host memory a guest can claim.
pub const MAX_TURN_BYTES: usize = 64 << 20;

/// Why the host (not the guest) aborts a turn; carried by the trap.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Abort {
    /// The store failed, or a host import was misused.
    #[error("{0}")]
    Host(String),
    /// A typed RPC call brought no reply (see [`crate::rpc::stub`]).
    #[error("{0}")]
    Rpc(String),
    /// The guest went over one of the node's limits.
    #[error(transparent)]
    Limit(#[from] LimitError),
}

fn fail(text: impl Into<String>) -> wasmtime::Error {
    wasmtime::Error::new(Abort::Host(text.into()))
}

/// Fails the turn: `error` names the limit it went over.
pub(crate) fn over_limit(error: LimitError) -> wasmtime::Error {
    wasmtime::Error::new(Abort::Limit(error))
}

impl ActorData {
    pub(crate) fn limits(&self) -> &Limits {
        self.env.limits()
    }

    /// Counts one more message sent or published by this turn.
    fn count_send(&mut self) -> wasmtime::Result<()> {
        let sent = self.buffer()?.sent + 1;
        self.limits().check_turn_sends(sent).map_err(over_limit)?;
        self.buffer()?.sent = sent;
        Ok(())
    }

    /// Checks a state write of `key` with `value_len` bytes against the
    /// limits, and counts it.
    fn count_state_write(&mut self, key: &str, value_len: usize) -> wasmtime::Result<()> {
        let total = self.buffer()?.state_bytes.saturating_add(key.len() + value_len);
        self.limits().check_state_write(key, value_len, total).map_err(over_limit)?;
        self.buffer()?.state_bytes = total;
        Ok(())
    }

    pub(crate) fn buffer(&mut self) -> wasmtime::Result<&mut TurnBuffer> {
        self.turn.as_mut().ok_or_else(|| fail("the actor used a host import outside of a turn (e.g. at start-up)"))
    }

    /// Charges `bytes` to the turn's budget; traps past [`MAX_TURN_BYTES`].
    fn charge(&mut self, bytes: usize) -> wasmtime::Result<()> {
        let buffer = self.buffer()?;
        buffer.bytes = buffer.bytes.saturating_add(bytes);
        if buffer.bytes > MAX_TURN_BYTES {
            return Err(fail(format!("the turn buffered more than {MAX_TURN_BYTES} bytes of state writes and sends")));
        }
        Ok(())
    }
}

/// The id of call number `index` made while handling `message`: the same
/// for every attempt of the turn, so a retried call finds its stored reply.
fn call_id(message: ulid::Ulid, index: u32) -> ulid::Ulid {
    let mixed = (u128::from(index) + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835);
    ulid::Ulid(message.0 ^ mixed.rotate_left(17))
}

/// A call ready to go, or why it must not.
pub(crate) enum PreparedCall {
    Ready(Box<ReadyCall>),
    /// The callee is already on the call chain (shown `a → b → a`).
    Deadlock(String),
}

pub(crate) struct ReadyCall {
    pub(crate) envelope: Envelope,
    pub(crate) timeout: std::time::Duration,
}

impl ActorData {
    /// Builds the call message for call number N of this turn: its
    /// deterministic id, the extended call chain, and its timeout (the
    /// caller's, capped by the rest of the turn's deadline).
    pub(crate) fn prepare_call(
        &mut self,
        to: &str,
        payload: Vec<u8>,
        timeout_ms: Option<u64>,
    ) -> wasmtime::Result<PreparedCall> {
        let address = self.address.clone();
        let buffer = self.buffer()?;
        let mut chain = buffer.chain.clone();
        chain.push(address.clone());
        if chain.iter().any(|a| a == to) {
            chain.push(to.to_string());
            return Ok(PreparedCall::Deadlock(chain.join(" → ")));
        }
        let id = call_id(buffer.message_id, buffer.calls);
        buffer.calls += 1;
        let delivery = buffer.delivery;
        let left = self.deadline.saturating_duration_since(std::time::Instant::now());
        let timeout = timeout_ms.map_or(left, std::time::Duration::from_millis).min(left);
        let mut envelope = Envelope::new(to, payload).with_kind(MessageKind::Call);
        envelope.id = id;
        envelope.from = Some(address);
        envelope.call_chain = chain;
        envelope.delivery = delivery;
        Ok(PreparedCall::Ready(Box::new(ReadyCall { envelope, timeout })))
    }
}

impl types::Host for ActorData {}

impl messaging::Host for ActorData {
    fn send(
        &mut self,
        to: String,
        payload: Vec<u8>,
        options: types::SendOptions,
    ) -> wasmtime::Result<Result<String, types::SendError>> {
        if options.priority > MAX_PRIORITY {
            return Ok(Err(types::SendError::InvalidPriority(options.priority)));
        }
        if self.limits().check_payload(payload.len()).is_err() {
            return Ok(Err(types::SendError::PayloadTooLarge(self.limits().payload_bytes as u64)));
        }
        if let Err(e) = ActorAddr::parse(&to) {
            return Ok(Err(types::SendError::InvalidAddress(e.to_string())));
        }
        let delivery = match options.delivery {
            types::Delivery::Persistent => Delivery::Persistent,
            types::Delivery::Transient => Delivery::Transient,
        };
        let headers: Vec<(String, String)> = options.headers.into_iter().map(|h| (h.name, h.value)).collect();
        self.limits().check_headers(&headers).map_err(over_limit)?;
        if let Some(key) = &options.dedup_key {
            self.limits().check_dedup_key(key).map_err(over_limit)?;
        }
        // The bound counts what this turn already sent there: those
        // messages land in the same commit.
        let queued = match delivery {
            Delivery::Persistent => self.buffer()?.sent_to.get(&to).copied().unwrap_or(0),
            Delivery::Transient => 0,
        };
        if let Err(refusal) = self.env.check_send(&to, delivery, queued) {
            return Ok(Err(match refusal {
                SendRefusal::UnknownType(t) => types::SendError::UnknownType(t),
                SendRefusal::MailboxFull(a) => types::SendError::MailboxFull(a),
                SendRefusal::Store(e) => return Err(fail(e)),
            }));
        }
        self.count_send()?;
        self.charge(payload.len() + to.len())?;
        if delivery == Delivery::Persistent {
            *self.buffer()?.sent_to.entry(to.clone()).or_default() += 1;
        }
        let mut envelope = Envelope::new(to, payload).with_kind(MessageKind::Send).with_priority(options.priority);
        envelope.from = Some(self.address.clone());
        envelope.delivery = delivery;
        envelope.headers = headers;
        envelope.not_before_ms = options.delay_ms.map(|d| now_ms().saturating_add(d));
        envelope.expires_at_ms = options.ttl_ms.map(|t| now_ms().saturating_add(t));
        envelope.dedup_key = options.dedup_key;
        let id = envelope.id.to_string();
        self.buffer()?.sends.push(envelope);
        Ok(Ok(id))
    }

    async fn call(
        &mut self,
        to: String,
        payload: Vec<u8>,
        timeout_ms: Option<u64>,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, types::CallError>> {
        use types::{CallError, SendError};
        if self.limits().check_payload(payload.len()).is_err() {
            return Ok(Err(CallError::Refused(SendError::PayloadTooLarge(self.limits().payload_bytes as u64))));
        }
        if let Err(e) = ActorAddr::parse(&to) {
            return Ok(Err(CallError::Refused(SendError::InvalidAddress(e.to_string()))));
        }
        let call = match self.prepare_call(&to, payload, timeout_ms)? {
            PreparedCall::Ready(call) => call,
            PreparedCall::Deadlock(chain) => return Ok(Err(CallError::Deadlock(chain))),
        };
        match self.env.call(call.envelope, call.timeout).await {
            Ok(reply) => Ok(Ok(reply)),
            Err(CallFailure::Timeout) => Ok(Err(CallError::Timeout)),
            Err(CallFailure::Failed(error)) => Ok(Err(CallError::Failed(error))),
            Err(CallFailure::Refused(SendRefusal::UnknownType(t))) => {
                Ok(Err(CallError::Refused(SendError::UnknownType(t))))
            }
            Err(CallFailure::Refused(SendRefusal::MailboxFull(a))) => {
                Ok(Err(CallError::Refused(SendError::MailboxFull(a))))
            }
            Err(CallFailure::Refused(SendRefusal::Store(e))) => Err(fail(e)),
        }
    }

    fn cancel(&mut self, id: String) -> wasmtime::Result<bool> {
        let Ok(id) = id.parse::<ulid::Ulid>() else { return Ok(false) };
        let buffer = self.buffer()?;
        // A delayed message sent earlier in this same turn: just drop it.
        let before = buffer.sends.len();
        buffer.sends.retain(|e| e.id != id);
        if buffer.sends.len() < before {
            return Ok(true);
        }
        // Sent or cancelled by an earlier turn whose commit is on its way:
        // the store does not know yet.
        let pending = match self.unsettled_timers.get(&id) {
            Some((_, pending)) => *pending,
            None => self.env.timer_pending(id).map_err(fail)?,
        };
        if pending {
            self.buffer()?.cancels.push(id);
        }
        Ok(pending)
    }

    fn self_address(&mut self) -> wasmtime::Result<String> {
        Ok(self.address.clone())
    }
}

impl state::Host for ActorData {
    fn get(&mut self, key: String) -> wasmtime::Result<Option<Vec<u8>>> {
        if let Some(written) = self.buffer()?.writes.get(&key) {
            return Ok(written.clone());
        }
        if let Some(committed) = self.committed.get(&key) {
            return Ok(committed.clone());
        }
        let value = self.env.state_get(&self.address, &key).map_err(fail)?;
        self.committed.put(key, value.clone());
        Ok(value)
    }

    fn set(&mut self, key: String, value: Vec<u8>) -> wasmtime::Result<()> {
        self.count_state_write(&key, value.len())?;
        self.charge(key.len() + value.len())?;
        self.buffer()?.writes.insert(key, Some(value));
        Ok(())
    }

    fn delete(&mut self, key: String) -> wasmtime::Result<()> {
        self.count_state_write(&key, 0)?;
        self.charge(key.len())?;
        self.buffer()?.writes.insert(key, None);
        Ok(())
    }

    fn list_keys(&mut self, prefix: String) -> wasmtime::Result<Vec<String>> {
        let committed = self.env.state_keys(&self.address, &prefix).map_err(fail)?;
        let mut keys: std::collections::BTreeSet<String> = committed.into_iter().collect();
        self.committed.overlay_keys(&prefix, &mut keys);
        let writes = &self.buffer()?.writes;
        keys.retain(|k| !matches!(writes.get(k), Some(None)));
        keys.extend(
            writes
                .range(prefix.clone()..)
                .take_while(|(k, _)| k.starts_with(&prefix))
                .filter(|(_, v)| v.is_some())
                .map(|(k, _)| k.clone()),
        );
        Ok(keys.into_iter().collect())
    }
}

impl topics::Host for ActorData {
    fn subscribe(&mut self, topic: String, filter: String) -> wasmtime::Result<Result<(), String>> {
        if let Err(e) = pigeon_store::topic::validate_pattern(&topic) {
            return Ok(Err(e.to_string()));
        }
        if !filter.trim().is_empty()
            && let Err(e) = pigeon_store::filter::Filter::parse(&filter)
        {
            return Ok(Err(e.to_string()));
        }
        self.charge(topic.len() + filter.len())?;
        self.buffer()?.topics.push(TopicEffect::Subscribe { topic, filter: filter.trim().to_string() });
        Ok(Ok(()))
    }

    fn unsubscribe(&mut self, topic: String) -> wasmtime::Result<()> {
        self.charge(topic.len())?;
        self.buffer()?.topics.push(TopicEffect::Unsubscribe { topic });
        Ok(())
    }

    fn publish(
        &mut self,
        topic: String,
        payload: Vec<u8>,
        headers: Vec<types::Header>,
    ) -> wasmtime::Result<Result<(), String>> {
        if let Err(e) = pigeon_store::topic::validate_topic(&topic) {
            return Ok(Err(e.to_string()));
        }
        if let Err(e) = self.limits().check_payload(payload.len()) {
            return Ok(Err(e.to_string()));
        }
        let headers: Vec<(String, String)> = headers.into_iter().map(|h| (h.name, h.value)).collect();
        self.limits().check_headers(&headers).map_err(over_limit)?;
        self.count_send()?;
        self.charge(topic.len() + payload.len())?;
        let mut message = Envelope::new("", payload).with_kind(MessageKind::Publish);
        message.from = Some(self.address.clone());
        message.headers = headers;
        self.buffer()?.topics.push(TopicEffect::Publish { topic, envelope: Box::new(message) });
        Ok(Ok(()))
    }
}

impl logging::Host for ActorData {
    fn log(&mut self, level: logging::Level, message: String) -> wasmtime::Result<()> {
        let actor = self.address.as_str();
        match level {
            logging::Level::Trace => tracing::trace!(actor, "{message}"),
            logging::Level::Debug => tracing::debug!(actor, "{message}"),
            logging::Level::Info => tracing::info!(actor, "{message}"),
            logging::Level::Warn => tracing::warn!(actor, "{message}"),
            logging::Level::Error => tracing::error!(actor, "{message}"),
        }
        Ok(())
    }
}
