//! WAVE text for people: calls typed at the CLI or sent to the API
//! (`acme:bank/account.deposit(100)`), and results shown back (`ok(100)`).
//!
//! WAVE (the WebAssembly Value Encoding, from the `wasm-wave` crate) is the
//! text form of component values; wasmtime's `Val` implements it. A call is
//! `NAME(ARGS)` where NAME is `interface.function` with the interface
//! written in full (`acme:bank/account@0.1.0`), without its version
//! (`acme:bank/account`), by its last segment (`account`), or left out when
//! only one exported function has that name. Errors show the text with a
//! caret under the faulty value and the expected signature.

use thiserror::Error;
use wasm_wave::untyped::UntypedFuncCall;
use wasmtime::component::Val;
use wasmtime::component::types::{ComponentFunc, Type};

use super::codec::{self, CodecError};
use super::{Operation, RpcSurface, base};

/// Why a WAVE call could not be understood or shown.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum WaveError {
    /// The text is not `NAME(ARGS)`.
    #[error(
        "`{text}` is not a function call: {reason} (write INTERFACE.FUNCTION(ARGS), e.g. `acme:bank/account.deposit(100)`)"
    )]
    NotACall { text: String, reason: String },
    /// No exported function has that name.
    #[error("no operation `{name}` (operations: {})", if .available.is_empty() { "none: the type exports no interface".to_string() } else { .available.join(", ") })]
    UnknownOperation { name: String, available: Vec<String> },
    /// More than one exported function has that name.
    #[error("`{name}` is ambiguous: it could be {}; write the interface in full", .candidates.join(" or "))]
    Ambiguous { name: String, candidates: Vec<String> },
    /// An argument is not a valid WAVE value of its type.
    #[error("{message} at column {column}:\n    {text}\n    {caret}\n  expected {expected}")]
    Value { text: String, column: usize, message: String, caret: String, expected: String },
    /// Encoded values did not decode.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// A value could not be written as WAVE.
    #[error("cannot show the value as WAVE: {0}")]
    Render(String),
}

/// A parsed, not yet typed, call: `NAME(ARGS)`.
#[derive(Debug, Clone)]
pub struct Invocation {
    text: String,
    /// Interface as written, if any.
    interface: Option<String>,
    function: String,
    /// Byte offset of the `(` in `text`.
    open: usize,
}

/// Parses `NAME(ARGS)` far enough to find the function; the arguments are
/// typed by [`Invocation::encode_args`].
pub fn parse_invocation(text: &str) -> Result<Invocation, WaveError> {
    let not_a_call = |reason: &str| WaveError::NotACall { text: text.into(), reason: reason.into() };
    let open = text.find('(').ok_or_else(|| not_a_call("no `(`"))?;
    if !text.trim_end().ends_with(')') {
        return Err(not_a_call("it does not end with `)`"));
    }
    let name = text[..open].trim();
    let (interface, function) = match name.rsplit_once('.') {
        Some((interface, function)) => (Some(interface.to_string()), function),
        None => (None, name),
    };
    let valid = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-:/@.".contains(c));
    if !valid(function) || !interface.as_deref().is_none_or(valid) {
        return Err(not_a_call("the name before `(` is not `interface.function`"));
    }
    Ok(Invocation { text: text.into(), interface, function: function.into(), open })
}

impl Invocation {
    /// The name as written (`account.deposit`).
    pub fn name(&self) -> String {
        match &self.interface {
            Some(interface) => format!("{interface}.{}", self.function),
            None => self.function.clone(),
        }
    }

    /// The exported function this call names.
    pub fn resolve<'s>(&self, surface: &'s RpcSurface) -> Result<&'s Operation, WaveError> {
        let named = |o: &&Operation| match &self.interface {
            None => true,
            Some(i) => super::same_interface(i, &o.interface) || base(&o.interface).rsplit('/').next() == Some(i),
        };
        let candidates: Vec<&Operation> =
            surface.operations.iter().filter(|o| o.function == self.function).filter(named).collect();
        match candidates.as_slice() {
            [one] => Ok(one),
            [] => Err(WaveError::UnknownOperation {
                name: self.name(),
                available: surface.operations.iter().map(|o| format!("{}.{}", o.interface, o.function)).collect(),
            }),
            many => Err(WaveError::Ambiguous {
                name: self.name(),
                candidates: many.iter().map(|o| format!("{}.{}", o.interface, o.function)).collect(),
            }),
        }
    }

    /// Types the arguments against `op` and encodes them.
    pub fn encode_args(&self, op: &Operation) -> Result<Vec<u8>, WaveError> {
        // The WAVE parser recurses once per bracket: refuse what no
        // sendable type could hold before it sees the text.
        if let Some(column) = too_deep(&self.text) {
            return Err(WaveError::Value {
                text: shorten(&self.text),
                column: column + 1,
                message: format!("values nest deeper than {MAX_WAVE_DEPTH} levels"),
                caret: format!("{}^", " ".repeat(column.min(SHOWN))),
                expected: format!("{}.{}: {}", op.interface, op.function, op.signature),
            });
        }
        // wasm-wave parses `NAME(ARGS)` with a stricter NAME; give it a
        // plain one and shift error positions back.
        let shifted = format!("f{}", &self.text[self.open..]);
        let types: Vec<Type> = op.param_types().collect();
        let parsed = UntypedFuncCall::parse(&shifted).and_then(|call| call.to_wasm_params::<Val>(types.iter()));
        let vals = parsed.map_err(|e| {
            let span = e.span();
            let start = (span.start + self.open).saturating_sub(1).min(self.text.len());
            let end = (span.end + self.open).saturating_sub(1).clamp(start + 1, self.text.len().max(start + 1));
            let mut message = match e.detail() {
                Some(detail) => format!("{}: {detail}", e.kind()),
                None => e.kind().to_string(),
            };
            if let Some((name, ty)) = argument_at(&shifted, span.start, op) {
                message = format!("argument `{name}` must be a {ty}; {message}");
            }
            WaveError::Value {
                text: self.text.clone(),
                column: start + 1,
                message,
                caret: format!("{}{}", " ".repeat(start), "^".repeat(end - start)),
                expected: format!("{}.{}: {}", op.interface, op.function, op.signature),
            }
        })?;
        Ok(codec::encode(types, &vals)?)
    }
}

/// Deepest bracket nesting of a call's text: the parentheses of the call,
/// then one level per type (see [`super::signature::MAX_TYPE_DEPTH`]).
pub const MAX_WAVE_DEPTH: usize = super::signature::MAX_TYPE_DEPTH + 1;

/// Characters of a call's text shown in an error.
const SHOWN: usize = 120;

fn shorten(text: &str) -> String {
    match text.char_indices().nth(SHOWN) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

/// Where the brackets of `text` (outside quoted strings and chars) first
/// nest deeper than [`MAX_WAVE_DEPTH`], as a byte offset.
fn too_deep(text: &str) -> Option<usize> {
    let mut depth = 0usize;
    let mut quote = None;
    let mut escaped = false;
    for (at, c) in text.char_indices() {
        match quote {
            Some(q) => {
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == q {
                    quote = None;
                }
            }
            None => match c {
                '"' | '\'' => quote = Some(c),
                '(' | '[' | '{' => {
                    depth += 1;
                    if depth > MAX_WAVE_DEPTH {
                        return Some(at);
                    }
                }
                ')' | ']' | '}' => depth = depth.saturating_sub(1),
                _ => {}
            },
        }
    }
    None
}

/// The parameter whose text covers byte `at` of `shifted` (`f(ARGS)`),
/// with its type, when the call at least parses.
fn argument_at(shifted: &str, at: usize, op: &Operation) -> Option<(String, String)> {
    let call = UntypedFuncCall::parse(shifted).ok()?;
    let args = call.params_node()?.as_tuple().ok()?;
    let index = args.enumerate().find(|(_, node)| node.span().contains(&at) || node.span().end == at)?.0;
    let (name, ty) = op.func.params().nth(index)?;
    Some((name.to_string(), super::signature::type_text(&ty)))
}

fn to_wave(val: &Val) -> Result<String, WaveError> {
    wasm_wave::to_string(val).map_err(|e| WaveError::Render(e.to_string()))
}

/// Shows encoded results: `()` for none, the value for one, a tuple for more.
pub(crate) fn results_to_wave(func: &ComponentFunc, reply: &[u8]) -> Result<String, WaveError> {
    let vals = codec::decode(func.results(), reply)?;
    match vals.as_slice() {
        [one] => to_wave(one),
        many => Ok(format!("({})", many.iter().map(to_wave).collect::<Result<Vec<_>, _>>()?.join(", "))),
    }
}

/// Shows encoded arguments as a call: `deposit(100)`.
pub(crate) fn call_to_wave(function: &str, func: &ComponentFunc, payload: &[u8]) -> Result<String, WaveError> {
    let vals = codec::decode(func.params().map(|(_, ty)| ty), payload)?;
    let args = vals.iter().map(to_wave).collect::<Result<Vec<_>, _>>()?;
    Ok(format!("{function}({})", args.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_call_names() {
        let inv = parse_invocation("acme:bank/account@0.1.0.deposit(100)").unwrap();
        assert_eq!(inv.interface.as_deref(), Some("acme:bank/account@0.1.0"));
        assert_eq!(inv.function, "deposit");
        let inv = parse_invocation("balance()").unwrap();
        assert_eq!((inv.interface, inv.function.as_str()), (None, "balance"));
        assert!(matches!(parse_invocation("deposit 100"), Err(WaveError::NotACall { .. })));
        assert!(matches!(parse_invocation("deposit(100"), Err(WaveError::NotACall { .. })));
        assert!(matches!(parse_invocation("a b.c(1)"), Err(WaveError::NotACall { .. })));
    }

    #[test]
    fn finds_nesting_past_the_limit_outside_strings() {
        let deep = format!("f({}{})", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(too_deep(&deep), Some(MAX_WAVE_DEPTH + 1), "the byte of the first bracket too many");
        let fits = format!("f({}1{})", "[".repeat(MAX_WAVE_DEPTH - 1), "]".repeat(MAX_WAVE_DEPTH - 1));
        assert_eq!(too_deep(&fits), None);
        let quoted = format!("f(\"{}\", '[', \"\\\"[\")", "[".repeat(1000));
        assert_eq!(too_deep(&quoted), None, "brackets in strings and chars do not nest");
    }
}
