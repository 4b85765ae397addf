//! Function signatures as WIT-like text: what `pigeon ls` shows, and what a
//! link compares.
//!
//! Component types carry no names for records or variants, and the same
//! WIT type in two components is two unrelated wasmtime types, so the host
//! compares interfaces **structurally**: two functions match when their
//! rendered signatures are equal (parameter names, field and case names and
//! every type, in order). The text spells the structure out
//! (`record { balance: u64, requested: u64 }`), which is also what a user
//! needs to write a WAVE value for it.

use std::fmt::Write;

use wasmtime::component::types::{ComponentFunc, Type};

/// Renders `func` as `func(amount: u64) -> result<u64, enum { a, b }>`.
pub(crate) fn func_text(func: &ComponentFunc) -> String {
    let params: Vec<String> = func.params().map(|(name, ty)| format!("{name}: {}", type_text(&ty))).collect();
    let results: Vec<String> = func.results().map(|ty| type_text(&ty)).collect();
    let mut text = format!("func({})", params.join(", "));
    match results.as_slice() {
        [] => {}
        [one] => {
            let _ = write!(text, " -> {one}");
        }
        many => {
            let _ = write!(text, " -> tuple<{}>", many.join(", "));
        }
    }
    text
}

/// Renders one type structurally.
pub(crate) fn type_text(ty: &Type) -> String {
    match ty {
        Type::Bool => "bool".into(),
        Type::S8 => "s8".into(),
        Type::U8 => "u8".into(),
        Type::S16 => "s16".into(),
        Type::U16 => "u16".into(),
        Type::S32 => "s32".into(),
        Type::U32 => "u32".into(),
        Type::S64 => "s64".into(),
        Type::U64 => "u64".into(),
        Type::Float32 => "f32".into(),
        Type::Float64 => "f64".into(),
        Type::Char => "char".into(),
        Type::String => "string".into(),
        Type::List(list) => format!("list<{}>", type_text(&list.ty())),
        Type::FixedLengthList(list) => format!("list<{}, {}>", type_text(&list.ty()), list.len()),
        Type::Map(map) => format!("map<{}, {}>", type_text(&map.key()), type_text(&map.value())),
        Type::Record(record) => {
            let fields: Vec<String> = record.fields().map(|f| format!("{}: {}", f.name, type_text(&f.ty))).collect();
            format!("record {{ {} }}", fields.join(", "))
        }
        Type::Tuple(tuple) => {
            let types: Vec<String> = tuple.types().map(|t| type_text(&t)).collect();
            format!("tuple<{}>", types.join(", "))
        }
        Type::Variant(variant) => {
            let cases: Vec<String> = variant
                .cases()
                .map(|c| match &c.ty {
                    Some(ty) => format!("{}({})", c.name, type_text(ty)),
                    None => c.name.to_string(),
                })
                .collect();
            format!("variant {{ {} }}", cases.join(", "))
        }
        Type::Enum(e) => format!("enum {{ {} }}", e.names().collect::<Vec<_>>().join(", ")),
        Type::Flags(f) => format!("flags {{ {} }}", f.names().collect::<Vec<_>>().join(", ")),
        Type::Option(o) => format!("option<{}>", type_text(&o.ty())),
        Type::Result(r) => match (r.ok(), r.err()) {
            (None, None) => "result".into(),
            (Some(ok), None) => format!("result<{}>", type_text(&ok)),
            (None, Some(err)) => format!("result<_, {}>", type_text(&err)),
            (Some(ok), Some(err)) => format!("result<{}, {}>", type_text(&ok), type_text(&err)),
        },
        Type::Own(_) => "own<resource>".into(),
        Type::Borrow(_) => "borrow<resource>".into(),
        Type::Future(_) => "future".into(),
        Type::Stream(_) => "stream".into(),
        Type::ErrorContext => "error-context".into(),
    }
}

/// Deepest nesting of types in a function that travels between actors.
/// Everything that walks values (the codec, WAVE, the signatures shown)
/// recurses along the type, so this bounds their depth too.
pub const MAX_TYPE_DEPTH: usize = 32;

/// Why values of `ty` cannot travel in a message, if they cannot: handles
/// (resources, futures, streams) mean nothing outside their instance, and
/// types nested past [`MAX_TYPE_DEPTH`] are refused.
pub(crate) fn unsendable(ty: &Type) -> Option<&'static str> {
    unsendable_at(ty, 1)
}

fn unsendable_at(ty: &Type, depth: usize) -> Option<&'static str> {
    if depth > MAX_TYPE_DEPTH {
        return Some("types nested deeper than 32 levels (flatten them into records)");
    }
    let inner = |t: &Type| unsendable_at(t, depth + 1);
    match ty {
        Type::Own(_) | Type::Borrow(_) => Some("a resource"),
        Type::Future(_) => Some("a future"),
        Type::Stream(_) => Some("a stream"),
        Type::ErrorContext => Some("an error-context"),
        Type::List(list) => inner(&list.ty()),
        Type::FixedLengthList(list) => inner(&list.ty()),
        Type::Map(map) => inner(&map.key()).or_else(|| inner(&map.value())),
        Type::Record(record) => record.fields().find_map(|f| inner(&f.ty)),
        Type::Tuple(tuple) => tuple.types().find_map(|t| inner(&t)),
        Type::Variant(variant) => variant.cases().find_map(|c| c.ty.as_ref().and_then(inner)),
        Type::Option(o) => inner(&o.ty()),
        Type::Result(r) => r.ok().and_then(|t| inner(&t)).or_else(|| r.err().and_then(|t| inner(&t))),
        _ => None,
    }
}

/// Why `func` cannot be called across actors, if it cannot.
pub(crate) fn func_unsendable(func: &ComponentFunc) -> Option<&'static str> {
    if func.async_() {
        return Some("an async function (component-model async is not supported across actors yet)");
    }
    func.params().find_map(|(_, ty)| unsendable(&ty)).or_else(|| func.results().find_map(|ty| unsendable(&ty)))
}
