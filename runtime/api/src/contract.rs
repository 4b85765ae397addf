//! What the OpenAPI document says of every operation, written once here
//! instead of in each handler's annotation, so the document stays true as
//! operations are added:
//!
//! - **security**: writes need the token; reads take it optionally (a node
//!   on loopback serves them without, any other node needs it);
//! - **errors**: every operation can answer `401` (token), `403` (a `Host`
//!   that is not loopback, see [`crate::guard`]), `500` and `503` (the
//!   store, or the node stopping); one with parameters or a body also `400`;
//!   one with a body `413`; one that stores new work `507` (the disk alarm).
//!   Every error is an [`ErrorBody`](crate::model::ErrorBody);
//! - **any node**: in a lattice, every operation but the live feed takes
//!   `?node=ID` and may answer `404` (an unknown node), `502` and `504`
//!   (see [`crate::forward`]);
//! - **formats** the annotations cannot state: the patterns of addresses,
//!   topics and type names, in paths and in the bodies that name actors.

use utoipa::openapi::path::{Operation, Parameter, ParameterIn};
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::security::SecurityRequirement;
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, RefOr, Response, ResponseBuilder};

/// `type/key`: a type name, `/`, then no whitespace or control characters.
/// At most 128 characters (the node takes 512 bytes).
pub const ADDRESS_PATTERN: &str = r"^[a-z][a-z0-9_-]{0,63}/[^\s\x00-\x1f\x7f-\x9f]{1,64}$";
/// The key of an address as a path segment of its own (`/actors/{type}/{key}`):
/// the node takes keys with `/` too, which OpenAPI cannot say of a segment.
pub const KEY_PATTERN: &str = r"^[^\s\x00-\x1f\x7f-\x9f/]{1,64}$";
/// A topic: tokens separated by `.`, none empty, without whitespace or
/// control characters. (Narrower than the node: the wildcard tokens `*`
/// and `>` of subscriptions are left out, since a publish refuses them.)
pub const TOPIC_PATTERN: &str = r"^[^\s\x00-\x1f\x7f-\x9f.*>]{1,32}(\.[^\s\x00-\x1f\x7f-\x9f.*>]{1,31})?$";
/// A message id: a ULID in Crockford's base 32 (no I, L, O or U), 26
/// characters, the first at most `7`.
const ULID_PATTERN: &str = "^[0-7][0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{25}$";
/// A type name: a lowercase letter, then lowercase letters, digits, `-`, `_`.
pub const TYPE_NAME_PATTERN: &str = r"^[a-z][a-z0-9_-]{0,63}$";

/// Finishes the document as the module doc says.
pub struct Contract;

impl utoipa::Modify for Contract {
    fn modify(&self, openapi: &mut OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        let bearer = HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build();
        components.add_security_scheme("token", SecurityScheme::Http(bearer));
        for (schema, field) in [("SendRequest", "to"), ("Subscription", "subscriber")] {
            if let Some(RefOr::T(schema)) = components.schemas.get_mut(schema) {
                set_pattern(schema, field, ADDRESS_PATTERN);
            }
        }
        for (path, item) in openapi.paths.paths.iter_mut() {
            let per_node = !path.ends_with("/events");
            let reads = [&mut item.get];
            let writes = [&mut item.put, &mut item.post, &mut item.delete];
            let of_nodes = path.starts_with("/api/v1/nodes/");
            for op in reads.into_iter().flatten() {
                finish(op, false, per_node, of_nodes);
            }
            for op in writes.into_iter().flatten() {
                finish(op, true, per_node, of_nodes);
            }
        }
    }
}

fn finish(op: &mut Operation, writes: bool, per_node: bool, of_nodes: bool) {
    if per_node {
        on_any_node(op);
    }
    let token = SecurityRequirement::new("token", Vec::<String>::new());
    op.security = Some(if writes { vec![token] } else { vec![SecurityRequirement::default(), token] });
    let has_body = op.request_body.is_some();
    let has_params = op.parameters.as_ref().is_some_and(|p| !p.is_empty());
    let stores = has_body && writes;
    let errors = [
        ("400", has_params || has_body, "Malformed parameters or body: the message names the problem"),
        ("401", true, "Missing or wrong API token"),
        ("403", true, "The node listens on loopback and the Host header is not a loopback name"),
        ("413", has_body, "The body is over the request limit"),
        ("500", true, "The store failed"),
        ("503", true, "The node is stopping, or its store is reopening after an I/O error"),
        ("507", stores, "The disk is below the node's free-space limit"),
    ];
    for (status, applies, description) in errors {
        if applies {
            op.responses.responses.entry(status.to_string()).or_insert_with(|| error_response(description));
        }
    }
    for parameter in op.parameters.iter_mut().flatten() {
        pattern_of(parameter, of_nodes);
    }
}

/// The `node` query parameter (see [`crate::forward`]) and what it can answer.
fn on_any_node(op: &mut Operation) {
    let schema = ObjectBuilder::new().schema_type(Type::String).pattern(Some(TYPE_NAME_PATTERN)).build();
    let node = utoipa::openapi::path::ParameterBuilder::new()
        .name("node")
        .parameter_in(ParameterIn::Query)
        .required(utoipa::openapi::Required::False)
        .description(Some(
            "In a lattice: the node that runs the request (default: this one, or the owner of the actor it is about)",
        ))
        .schema(Some(Schema::Object(schema)))
        .build();
    op.parameters.get_or_insert_with(Vec::new).push(node);
    for (status, description) in [
        ("404", "Not found: the message names what (an unknown node, actor, dead letter...)"),
        ("502", "The node that owns the request failed it"),
        ("504", "The node that owns the request did not answer in time"),
    ] {
        op.responses.responses.entry(status.to_string()).or_insert_with(|| error_response(description));
    }
}

/// Sets the pattern of `field` in an object schema, or in the object parts
/// of an `allOf` (a struct with a flattened one).
fn set_pattern(schema: &mut Schema, field: &str, pattern: &str) {
    let objects: Vec<&mut utoipa::openapi::schema::Object> = match schema {
        Schema::Object(object) => vec![object],
        Schema::AllOf(all) => all
            .items
            .iter_mut()
            .filter_map(|item| match item {
                RefOr::T(Schema::Object(object)) => Some(object),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    for object in objects {
        if let Some(RefOr::T(Schema::Object(property))) = object.properties.get_mut(field) {
            property.pattern = Some(pattern.to_string());
        }
    }
}

fn error_response(description: &str) -> RefOr<Response> {
    let content = ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build();
    RefOr::T(ResponseBuilder::new().description(description).content("application/json", content).build())
}

/// The pattern of a path parameter, by its name (`id` of a node under
/// `/nodes/`, of a message elsewhere).
fn pattern_of(parameter: &mut Parameter, of_nodes: bool) {
    if parameter.parameter_in != ParameterIn::Path {
        return;
    }
    let pattern = match parameter.name.as_str() {
        "key" => KEY_PATTERN,
        "topic" => TOPIC_PATTERN,
        "name" | "type" => TYPE_NAME_PATTERN,
        // Node ids follow the rules of type names.
        "id" if of_nodes => TYPE_NAME_PATTERN,
        "id" => ULID_PATTERN,
        _ => return,
    };
    let schema = ObjectBuilder::new().schema_type(Type::String).pattern(Some(pattern)).build();
    parameter.schema = Some(RefOr::T(Schema::Object(schema)));
}
