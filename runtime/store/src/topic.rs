//! Topic names and subscription patterns, NATS-style.
//!
//! A topic is a string of tokens separated by `.` (`orders.eu.paid`): 1 to
//! 256 bytes, no empty token, no whitespace or control characters. A
//! subscription names a topic or a *pattern*, where a token may be a
//! wildcard:
//! - `*` matches exactly one token (`orders.*.paid` matches
//!   `orders.eu.paid`, not `orders.paid` or `orders.eu.x.paid`);
//! - `>` as the last token matches one or more tokens (`orders.>` matches
//!   `orders.eu` and `orders.eu.paid`, not `orders`).
//!
//! A wildcard is a whole token: `order*` is an ordinary name. A publish
//! goes to a concrete topic (no wildcard token), and every subscription
//! whose topic or pattern matches receives it; an actor with several
//! matching subscriptions still gets one copy (its mailbox is one queue, as
//! a RabbitMQ queue bound twice to an exchange gets a message once). NATS
//! was chosen over RabbitMQ's `*`/`#` because the lattice runs on NATS and
//! its users know these rules.

use crate::error::StoreError;

/// The longest topic or pattern, in bytes.
pub const MAX_TOPIC_LEN: usize = 256;

/// Checks a subscription's topic or pattern.
pub fn validate_pattern(pattern: &str) -> Result<(), StoreError> {
    let bad = |why: &str| Err(StoreError::BadTopic { topic: pattern.to_string(), why: why.to_string() });
    if pattern.is_empty() || pattern.len() > MAX_TOPIC_LEN {
        return bad("a topic is 1 to 256 bytes");
    }
    if pattern.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return bad("a topic has no whitespace or control characters");
    }
    let tokens: Vec<&str> = pattern.split('.').collect();
    if tokens.iter().any(|t| t.is_empty()) {
        return bad("tokens between `.` must not be empty");
    }
    if tokens[..tokens.len() - 1].contains(&">") {
        return bad("`>` may only be the last token");
    }
    Ok(())
}

/// Checks a subscription: its topic or pattern, and its filter (empty:
/// every message), which must parse.
pub fn validate_subscription(pattern: &str, filter: &str) -> Result<(), StoreError> {
    validate_pattern(pattern)?;
    if !filter.trim().is_empty() {
        crate::filter::Filter::parse(filter)?;
    }
    Ok(())
}

/// Checks a topic to publish to: a valid name without wildcard tokens.
pub fn validate_topic(topic: &str) -> Result<(), StoreError> {
    validate_pattern(topic)?;
    if is_pattern(topic) {
        return Err(StoreError::BadTopic {
            topic: topic.to_string(),
            why: "publish to a concrete topic: `*` and `>` are for subscriptions".to_string(),
        });
    }
    Ok(())
}

/// Whether `pattern` has a wildcard token.
pub fn is_pattern(pattern: &str) -> bool {
    pattern.split('.').any(|t| t == "*" || t == ">")
}

/// Whether the concrete `topic` matches `pattern` (a topic or a pattern).
pub fn matches(pattern: &str, topic: &str) -> bool {
    let mut topic = topic.split('.');
    for token in pattern.split('.') {
        match (token, topic.next()) {
            (">", Some(_)) => return true,
            ("*", Some(_)) => {}
            (token, Some(t)) if token == t => {}
            _ => return false,
        }
    }
    topic.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_whole_tokens() {
        let cases = [
            ("orders", "orders", true),
            ("orders", "orders.eu", false),
            ("orders.*", "orders.eu", true),
            ("orders.*", "orders", false),
            ("orders.*", "orders.eu.paid", false),
            ("orders.*.paid", "orders.eu.paid", true),
            ("orders.*.paid", "orders.eu.open", false),
            ("orders.>", "orders.eu", true),
            ("orders.>", "orders.eu.paid", true),
            ("orders.>", "orders", false),
            (">", "anything.at.all", true),
            ("*", "one", true),
            ("*", "one.two", false),
            ("order*", "orders", false),
            ("order*", "order*", true),
        ];
        for (pattern, topic, expected) in cases {
            assert_eq!(matches(pattern, topic), expected, "{pattern} ~ {topic}");
        }
    }

    #[test]
    fn bad_topics_say_why() {
        for (topic, why) in [
            ("", "1 to 256 bytes"),
            ("a b", "whitespace"),
            ("a..b", "must not be empty"),
            (".", "must not be empty"),
            ("..", "must not be empty"),
            ("a.>.b", "last token"),
        ] {
            let err = validate_pattern(topic).unwrap_err().to_string();
            assert!(err.contains(why), "{topic:?}: {err}");
        }
        assert!(validate_pattern(&"x".repeat(257)).is_err());
        assert!(validate_pattern("orders.*.>").is_ok());
        let err = validate_topic("orders.*").unwrap_err().to_string();
        assert!(err.contains("publish to a concrete topic"), "{err}");
        assert!(validate_topic("a/b:c@d#e").is_ok(), "only `.` separates tokens");
    }
}
