//! Actor addresses: `type/key`.
//!
//! An address names one virtual actor. The type part is the name a component
//! was deployed under; the key names one instance of it. Parsing lives here,
//! at the bottom of the stack, so every layer (host imports, node, API, CLI)
//! rejects a malformed address with the same words.

use std::fmt;

use crate::error::AddressError;

/// Longest accepted address, in bytes: keys are identifiers, not payloads.
pub const MAX_ADDRESS_LEN: usize = 512;

/// A parsed actor address (`type/key`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ActorAddr {
    text: String,
    slash: usize,
}

impl ActorAddr {
    /// Parses `type/key`, naming what is wrong when it is not.
    pub fn parse(text: &str) -> Result<Self, AddressError> {
        if text.len() > MAX_ADDRESS_LEN {
            return Err(AddressError::TooLong { len: text.len(), max: MAX_ADDRESS_LEN });
        }
        let slash = text.find('/').ok_or_else(|| AddressError::MissingSlash(text.to_string()))?;
        let (ty, key) = (&text[..slash], &text[slash + 1..]);
        validate_type_name(ty).map_err(|reason| AddressError::BadType { address: text.to_string(), reason })?;
        if key.is_empty() {
            return Err(AddressError::EmptyKey(text.to_string()));
        }
        if let Some(c) = key.chars().find(|c| c.is_whitespace() || c.is_control()) {
            return Err(AddressError::BadKeyChar { address: text.to_string(), found: c });
        }
        Ok(Self { text: text.to_string(), slash })
    }

    /// Builds `ty/key` from its parts (validated like [`ActorAddr::parse`]).
    pub fn new(ty: &str, key: &str) -> Result<Self, AddressError> {
        Self::parse(&format!("{ty}/{key}"))
    }

    /// The actor type's name.
    pub fn actor_type(&self) -> &str {
        &self.text[..self.slash]
    }

    /// The instance key.
    pub fn key(&self) -> &str {
        &self.text[self.slash + 1..]
    }

    /// The whole address as text.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for ActorAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Checks an actor type name: 1 to 64 characters of `[a-z0-9_-]`, starting
/// with a letter. Returns the reason when it is not.
pub fn validate_type_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("the type name is empty".into());
    }
    if name.len() > 64 {
        return Err(format!("the type name is {} characters long (at most 64)", name.len()));
    }
    if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Err(format!("the type name `{name}` must start with a lowercase letter"));
    }
    if let Some(c) = name.chars().find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '_')) {
        return Err(format!("the type name `{name}` contains `{c}` (allowed: a-z, 0-9, `-`, `_`)"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_type_and_key() {
        let a = ActorAddr::parse("counter/alice").unwrap();
        assert_eq!(a.actor_type(), "counter");
        assert_eq!(a.key(), "alice");
        assert_eq!(a.to_string(), "counter/alice");
        let nested = ActorAddr::parse("room/eu/42").unwrap();
        assert_eq!(nested.key(), "eu/42");
    }

    #[test]
    fn rejects_malformed_addresses_with_reasons() {
        let cases = [
            ("counter", "no `/`"),
            ("/alice", "type name is empty"),
            ("counter/", "key after `/` is empty"),
            ("Counter/a", "lowercase"),
            ("co unt/a", "contains ` `"),
            ("counter/a b", "whitespace"),
        ];
        for (input, needle) in cases {
            let err = ActorAddr::parse(input).unwrap_err().to_string();
            assert!(err.contains(needle), "{input}: `{err}` lacks `{needle}`");
        }
    }
}
