//! Operations that wait on an actor another node owns.
//!
//! A plain persistent send needs no peer: it is accepted once it is durable
//! in this node's outbox (see `forward`). What waits goes to the owner and
//! runs there, as if the client or the turn were local:
//! - a **call made by a turn** runs on the callee's node, which answers once
//!   the callee's commit is durable (the caller's commit then needs no
//!   dependency on it); its deterministic id and the stored reply keep it
//!   exactly once across crashes of either node, and its call chain travels
//!   with it, so `a → b → a` across nodes is a deadlock error;
//! - a client's send that waits for **delivery** or a **reply**, and a
//!   **transient** message (best effort: dropped and counted when the owner
//!   cannot take it).
//!
//! While the owner is down (no responder) the request is retried until its
//! deadline, which then ends it with an error that names the owner.

use std::sync::Arc;
use std::time::Duration;

use pigeon_host::{CallFailure, SendRefusal};
use pigeon_lattice::{LatticeError, Op};
use pigeon_store::Envelope;
use serde::{Deserialize, Serialize};

use super::{decode, encode};
use crate::{NodeError, NodeInner, Sent};

/// Pause between attempts while the owner does not answer.
const RETRY: Duration = Duration::from_millis(100);
/// How long a subscription change waits for the subscriber's owner.
const SUBSCRIBE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a listing waits for each peer.
const LIST_TIMEOUT: Duration = Duration::from_secs(2);

/// A client operation for the owner to run.
#[derive(Serialize, Deserialize)]
enum ProxyRequest {
    /// `Node::send_delivered`.
    Delivered { envelope: Vec<u8>, timeout_ms: u64 },
    /// `Node::request`.
    Request { envelope: Vec<u8>, timeout_ms: u64 },
    /// A transient message.
    Transient { envelope: Vec<u8> },
    /// `Node::subscribe` for an actor the owner holds.
    Subscribe { topic: String, subscriber: String, filter: String },
    /// `Node::unsubscribe` likewise.
    Unsubscribe { topic: String, subscriber: String },
    /// The owner's own subscriptions.
    Subscriptions,
}

/// What the owner answers.
#[derive(Serialize, Deserialize)]
enum ProxyAnswer {
    Sent {
        duplicate: bool,
    },
    Reply(Option<Vec<u8>>),
    /// Whether there was a subscription (to end).
    Subscribed(bool),
    Subscriptions(Vec<crate::topics::Subscription>),
    Failed(RemoteFailure),
}

/// A failure as it crosses the lattice, keeping what a client must tell apart.
#[derive(Serialize, Deserialize)]
enum RemoteFailure {
    Timeout { waited_ms: u64 },
    CallFailed(String),
    UnknownType(String),
    MailboxFull(String),
    Other(String),
}

/// A call made by a turn, for the callee's node.
#[derive(Serialize, Deserialize)]
struct CallRequest {
    envelope: Vec<u8>,
    timeout_ms: u64,
}

/// What the callee's node answers to a turn's call.
#[derive(Serialize, Deserialize)]
enum CallAnswer {
    Reply(Option<Vec<u8>>),
    Timeout,
    Failed(String),
    UnknownType(String),
    MailboxFull(String),
    Store(String),
}

/// Why a request to an owner ended without its answer.
pub(super) enum Unanswered {
    /// The owner did not answer before the deadline.
    OwnerDown(String),
    /// The transport or the owner refused it.
    Failed(String),
}

/// Sends `body` to `owner` until it answers or `deadline` passes.
pub(super) async fn ask(
    node: &NodeInner,
    owner: &str,
    op: Op,
    body: Vec<u8>,
    deadline: tokio::time::Instant,
) -> Result<Vec<u8>, Unanswered> {
    let Some(lattice) = node.lattice() else { return Err(Unanswered::Failed("not in a lattice".into())) };
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            return Err(Unanswered::OwnerDown(owner.to_string()));
        }
        match lattice.request(owner, op, body.clone(), left).await {
            Ok(answer) => return Ok(answer),
            Err(LatticeError::NoResponder(_) | LatticeError::Disconnected) => {
                tokio::time::sleep(RETRY.min(left)).await;
            }
            Err(LatticeError::Timeout(_)) => return Err(Unanswered::OwnerDown(owner.to_string())),
            Err(e) => return Err(Unanswered::Failed(e.to_string())),
        }
    }
}

impl NodeInner {
    /// A turn's call to an actor `owner` holds.
    pub(crate) async fn call_remote(
        &self,
        owner: &str,
        call: Envelope,
        timeout: Duration,
    ) -> Result<Option<Vec<u8>>, CallFailure> {
        let to = call.to.clone();
        let body = encode(&CallRequest { envelope: call.encode(), timeout_ms: timeout.as_millis() as u64 });
        let deadline = tokio::time::Instant::now() + timeout;
        let answer = match ask(self, owner, Op::Call, body, deadline).await {
            Ok(answer) => answer,
            Err(Unanswered::OwnerDown(owner)) => {
                return Err(CallFailure::Failed(format!(
                    "no reply from `{to}` within {timeout:?}: its owner, node `{owner}`, is down or unreachable"
                )));
            }
            Err(Unanswered::Failed(e)) => return Err(CallFailure::Failed(e)),
        };
        match decode::<CallAnswer>(&answer).map_err(CallFailure::Failed)? {
            CallAnswer::Reply(reply) => Ok(reply),
            CallAnswer::Timeout => Err(CallFailure::Timeout),
            CallAnswer::Failed(e) => Err(CallFailure::Failed(e)),
            CallAnswer::UnknownType(t) => Err(CallFailure::Refused(SendRefusal::UnknownType(t))),
            CallAnswer::MailboxFull(a) => Err(CallFailure::Refused(SendRefusal::MailboxFull(a))),
            CallAnswer::Store(e) => Err(CallFailure::Refused(SendRefusal::Store(e))),
        }
    }

    /// A client operation on an actor `owner` holds.
    async fn proxy(
        &self,
        owner: &str,
        to: &str,
        request: ProxyRequest,
        timeout: Duration,
    ) -> Result<ProxyAnswer, NodeError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let answer = match ask(self, owner, Op::Proxy, encode(&request), deadline).await {
            Ok(answer) => answer,
            Err(Unanswered::OwnerDown(owner)) => {
                return Err(NodeError::OwnerDown { to: to.to_string(), owner, waited: timeout });
            }
            Err(Unanswered::Failed(e)) => return Err(NodeError::Lattice(e)),
        };
        let answer = decode::<ProxyAnswer>(&answer).map_err(NodeError::Lattice)?;
        match answer {
            ProxyAnswer::Failed(failure) => Err(match failure {
                RemoteFailure::Timeout { waited_ms } => {
                    NodeError::Timeout { to: to.to_string(), waited: Duration::from_millis(waited_ms) }
                }
                RemoteFailure::CallFailed(error) => NodeError::CallFailed { to: to.to_string(), error },
                RemoteFailure::UnknownType(t) => NodeError::UnknownType(t),
                RemoteFailure::MailboxFull(actor) => {
                    NodeError::Remote(format!("mailbox of `{actor}` is full: retry later"))
                }
                RemoteFailure::Other(e) => NodeError::Remote(e),
            }),
            answer => Ok(answer),
        }
    }

    /// `Node::send_delivered` for an actor another node owns.
    pub(crate) async fn delivered_remote(
        &self,
        owner: &str,
        envelope: Envelope,
        timeout: Duration,
    ) -> Result<Sent, NodeError> {
        let (id, to) = (envelope.id, envelope.to.clone());
        let request = ProxyRequest::Delivered { envelope: envelope.encode(), timeout_ms: timeout.as_millis() as u64 };
        match self.proxy(owner, &to, request, timeout).await? {
            ProxyAnswer::Sent { duplicate } => Ok(Sent { id, duplicate }),
            _ => Err(NodeError::Lattice("unexpected answer to a send".into())),
        }
    }

    /// `Node::request` for an actor another node owns.
    pub(crate) async fn request_remote(
        &self,
        owner: &str,
        envelope: Envelope,
        timeout: Duration,
    ) -> Result<Option<Vec<u8>>, NodeError> {
        let to = envelope.to.clone();
        let request = ProxyRequest::Request { envelope: envelope.encode(), timeout_ms: timeout.as_millis() as u64 };
        match self.proxy(owner, &to, request, timeout).await? {
            ProxyAnswer::Reply(reply) => Ok(reply),
            _ => Err(NodeError::Lattice("unexpected answer to a call".into())),
        }
    }

    /// A transient message for an actor another node owns: handed over in
    /// the background, best effort, counted as dropped if that fails.
    pub(crate) fn transient_remote(self: &Arc<Self>, owner: String, envelope: Envelope) {
        let node = self.clone();
        self.runtime.spawn(async move {
            let to = envelope.to.clone();
            let request = ProxyRequest::Transient { envelope: envelope.encode() };
            if node.proxy(&owner, &to, request, Duration::from_secs(5)).await.is_err() {
                node.count_drop(&to, "its owner node could not take it");
            }
        });
    }
}

impl NodeInner {
    /// `Node::subscribe` for a subscriber `owner` holds.
    pub(crate) async fn subscribe_remote(
        &self,
        owner: &str,
        topic: &str,
        subscriber: &str,
        filter: &str,
    ) -> Result<bool, NodeError> {
        let request =
            ProxyRequest::Subscribe { topic: topic.into(), subscriber: subscriber.into(), filter: filter.into() };
        self.subscription_change(owner, subscriber, request).await
    }

    /// `Node::unsubscribe` for a subscriber `owner` holds.
    pub(crate) async fn unsubscribe_remote(
        &self,
        owner: &str,
        topic: &str,
        subscriber: &str,
    ) -> Result<bool, NodeError> {
        let request = ProxyRequest::Unsubscribe { topic: topic.into(), subscriber: subscriber.into() };
        self.subscription_change(owner, subscriber, request).await
    }

    async fn subscription_change(
        &self,
        owner: &str,
        subscriber: &str,
        request: ProxyRequest,
    ) -> Result<bool, NodeError> {
        match self.proxy(owner, subscriber, request, SUBSCRIBE_TIMEOUT).await? {
            ProxyAnswer::Subscribed(existed) => Ok(existed),
            _ => Err(NodeError::Lattice("unexpected answer to a subscription".into())),
        }
    }

    /// The subscriptions `peer` holds.
    pub(crate) async fn subscriptions_of(&self, peer: &str) -> Result<Vec<crate::topics::Subscription>, NodeError> {
        match self.proxy(peer, peer, ProxyRequest::Subscriptions, LIST_TIMEOUT).await? {
            ProxyAnswer::Subscriptions(list) => Ok(list),
            _ => Err(NodeError::Lattice("unexpected answer to a listing".into())),
        }
    }
}

/// Runs a peer's turn call here, on the callee's node.
pub(super) async fn answer_call(node: &Arc<NodeInner>, body: &[u8]) -> Result<Vec<u8>, String> {
    let request: CallRequest = decode(body)?;
    let call = Envelope::decode(&request.envelope, "call").map_err(|e| e.to_string())?;
    let answer = match node.call_from_peer(call, Duration::from_millis(request.timeout_ms)).await {
        Ok(reply) => CallAnswer::Reply(reply),
        Err(CallFailure::Timeout) => CallAnswer::Timeout,
        Err(CallFailure::Failed(e)) => CallAnswer::Failed(e),
        Err(CallFailure::Refused(SendRefusal::UnknownType(t))) => CallAnswer::UnknownType(t),
        Err(CallFailure::Refused(SendRefusal::MailboxFull(a))) => CallAnswer::MailboxFull(a),
        Err(CallFailure::Refused(SendRefusal::Store(e))) => CallAnswer::Store(e),
    };
    Ok(encode(&answer))
}

/// Runs a client operation a peer forwarded.
pub(super) async fn answer_proxy(node: &Arc<NodeInner>, body: &[u8]) -> Result<Vec<u8>, String> {
    let request: ProxyRequest = decode(body)?;
    let node = crate::Node { inner: node.clone() };
    let envelope = |bytes: &[u8]| Envelope::decode(bytes, "proxy").map_err(|e| e.to_string());
    let answer = match request {
        ProxyRequest::Delivered { envelope: bytes, timeout_ms } => {
            match node.send_delivered(envelope(&bytes)?, Duration::from_millis(timeout_ms)).await {
                Ok(sent) => ProxyAnswer::Sent { duplicate: sent.duplicate },
                Err(e) => ProxyAnswer::Failed(failure(e)),
            }
        }
        ProxyRequest::Request { envelope: bytes, timeout_ms } => {
            match node.request(envelope(&bytes)?, Duration::from_millis(timeout_ms)).await {
                Ok(reply) => ProxyAnswer::Reply(reply),
                Err(e) => ProxyAnswer::Failed(failure(e)),
            }
        }
        ProxyRequest::Transient { envelope: bytes } => match node.send(envelope(&bytes)?).await {
            Ok(sent) => ProxyAnswer::Sent { duplicate: sent.duplicate },
            Err(e) => ProxyAnswer::Failed(failure(e)),
        },
        // Stored here whatever this node's placement says: the sender
        // routed it by the same placement.
        ProxyRequest::Subscribe { topic, subscriber, filter } => {
            match node.store().subscribe(&topic, &subscriber, &filter).await {
                Ok(()) => ProxyAnswer::Subscribed(true),
                Err(e) => ProxyAnswer::Failed(failure(e.into())),
            }
        }
        ProxyRequest::Unsubscribe { topic, subscriber } => match node.store().unsubscribe(&topic, &subscriber).await {
            Ok(existed) => ProxyAnswer::Subscribed(existed),
            Err(e) => ProxyAnswer::Failed(failure(e.into())),
        },
        ProxyRequest::Subscriptions => match node.store().subscriptions() {
            Ok(list) => ProxyAnswer::Subscriptions(list),
            Err(e) => ProxyAnswer::Failed(failure(e.into())),
        },
    };
    Ok(encode(&answer))
}

fn failure(error: NodeError) -> RemoteFailure {
    match error {
        NodeError::Timeout { waited, .. } => RemoteFailure::Timeout { waited_ms: waited.as_millis() as u64 },
        NodeError::CallFailed { error, .. } => RemoteFailure::CallFailed(error),
        NodeError::UnknownType(t) | NodeError::Store(pigeon_store::StoreError::UnknownType(t)) => {
            RemoteFailure::UnknownType(t)
        }
        NodeError::Store(pigeon_store::StoreError::MailboxFull { actor, .. }) => RemoteFailure::MailboxFull(actor),
        other => RemoteFailure::Other(other.to_string()),
    }
}
