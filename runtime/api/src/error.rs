//! API errors: every failure is JSON `{"error": {"code", "message"}}` with
//! a stable `code` for scripts and a `message` for people that names the fix.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use pigeon_node::NodeError;
use pigeon_node::pigeon_host::ComponentError;
use pigeon_node::pigeon_store::StoreError;

use crate::model::{ErrorBody, ErrorDetail};

/// An error response.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into() }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody { error: ErrorDetail { code: self.code.into(), message: self.message } };
        (self.status, Json(body)).into_response()
    }
}

/// `404` for a path the node does not serve.
pub async fn no_such_path(axum::extract::OriginalUri(uri): axum::extract::OriginalUri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no such path: {} (the API is under /api/v1, described at /api/v1/openapi.json)", uri.path()),
    )
}

/// `405` for a method a path does not take.
pub async fn wrong_method(
    method: axum::http::Method,
    axum::extract::OriginalUri(uri): axum::extract::OriginalUri,
) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{} does not take {method} (see /api/v1/openapi.json for what it takes)", uri.path()),
    )
}

impl From<NodeError> for ApiError {
    fn from(e: NodeError) -> Self {
        use StatusCode as S;
        let (status, code) = match &e {
            NodeError::Address(_) => (S::BAD_REQUEST, "invalid_address"),
            NodeError::TypeName(_) => (S::BAD_REQUEST, "invalid_type_name"),
            NodeError::UnknownType(_) => (S::NOT_FOUND, "unknown_type"),
            NodeError::Priority(_) => (S::BAD_REQUEST, "invalid_priority"),
            NodeError::PayloadTooLarge { .. } => (S::PAYLOAD_TOO_LARGE, "payload_too_large"),
            NodeError::Limits(_) => (S::BAD_REQUEST, "invalid_limits"),
            NodeError::OverLimit(_) => (S::BAD_REQUEST, "invalid_message"),
            NodeError::Timeout { .. } => (S::GATEWAY_TIMEOUT, "timeout"),
            NodeError::CallFailed { .. } => (S::BAD_GATEWAY, "call_failed"),
            NodeError::ShuttingDown => (S::SERVICE_UNAVAILABLE, "shutting_down"),
            NodeError::Lattice(_) => (S::SERVICE_UNAVAILABLE, "lattice"),
            NodeError::OwnerDown { .. } => (S::GATEWAY_TIMEOUT, "owner_down"),
            NodeError::Remote(_) => (S::BAD_GATEWAY, "remote_error"),
            NodeError::UnknownNodes { .. } => (S::BAD_REQUEST, "invalid_nodes"),
            NodeError::PlacementConflict(_) => (S::CONFLICT, "placement_conflict"),
            // The request is sound; the node's state (alone) is what refuses it.
            NodeError::NotInLattice(_) => (S::CONFLICT, "not_in_lattice"),
            NodeError::Link(_) => (S::UNPROCESSABLE_ENTITY, "link_error"),
            NodeError::Wave(_) => (S::BAD_REQUEST, "invalid_call"),
            NodeError::UnknownOperation { .. } => (S::NOT_FOUND, "unknown_operation"),
            NodeError::Component(c) => match c {
                ComponentError::NotWasm | ComponentError::CoreModule | ComponentError::Invalid(_) => {
                    (S::UNPROCESSABLE_ENTITY, "invalid_component")
                }
                ComponentError::Link(_) => (S::UNPROCESSABLE_ENTITY, "link_error"),
                _ => (S::UNPROCESSABLE_ENTITY, "world_mismatch"),
            },
            NodeError::Store(s) => match s {
                StoreError::UnknownType(_) => (S::NOT_FOUND, "unknown_type"),
                StoreError::MailboxFull { .. } => (S::TOO_MANY_REQUESTS, "mailbox_full"),
                StoreError::OutboxFull { .. } => (S::TOO_MANY_REQUESTS, "outbox_full"),
                StoreError::TooLargeForLattice { .. } => (S::PAYLOAD_TOO_LARGE, "too_large_for_lattice"),
                StoreError::Identity(_) => (S::BAD_REQUEST, "invalid_node_id"),
                StoreError::UnknownDeadLetter(_) => (S::NOT_FOUND, "unknown_dead_letter"),
                StoreError::Closed => (S::SERVICE_UNAVAILABLE, "shutting_down"),
                StoreError::BadTopic { .. } => (S::BAD_REQUEST, "invalid_topic"),
                StoreError::Filter(_) => (S::BAD_REQUEST, "invalid_filter"),
                StoreError::StorageFull { .. } => (S::INSUFFICIENT_STORAGE, "storage_full"),
                StoreError::WriteFailed { .. } | StoreError::Unavailable(_) => {
                    (S::SERVICE_UNAVAILABLE, "storage_unavailable")
                }
                _ => (S::INTERNAL_SERVER_ERROR, "storage"),
            },
        };
        Self::new(status, code, e.to_string())
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        NodeError::Store(e).into()
    }
}
