//! The value encoding against real component types: round trips of every
//! kind of value, and refusal of truncated, padded or lying bytes.

use proptest::prelude::*;
use wasmtime::component::types::{ComponentFunc, ComponentItem};
use wasmtime::component::{Component, Val};
use wasmtime::{Config, Engine};

use super::codec::{CodecError, decode, encode};
use super::signature::func_text;

/// A component importing one function whose parameters cover every kind
/// of value that can cross actors.
const WAT: &str = r#"(component
    (type $point (record (field "x" s32) (field "y" float64) (field "label" string)))
    (import "point" (type $point' (eq $point)))
    (type $shape (variant (case "dot") (case "circle" float32) (case "poly" (list $point'))))
    (import "shape" (type $shape' (eq $shape)))
    (type $color (enum "red" "green" "blue"))
    (import "color" (type $color' (eq $color)))
    (type $perms (flags "read" "write" "exec" "a" "b" "c" "d" "e" "f"))
    (import "perms" (type $perms' (eq $perms)))
    (import "f" (func
        (param "b" bool) (param "u8" u8) (param "s8" s8) (param "u16" u16) (param "s16" s16)
        (param "u32" u32) (param "s64" s64) (param "u64" u64) (param "c" char)
        (param "shape" $shape') (param "color" $color') (param "perms" $perms')
        (param "maybe" (option (tuple string u8)))
        (result (result (list $point') (error $color')))))
)"#;

fn func() -> ComponentFunc {
    let engine = Engine::new(&Config::new()).unwrap();
    let component = Component::new(&engine, wat::parse_str(WAT).unwrap()).unwrap();
    let ty = component.component_type();
    let (_, item) = ty.imports(&engine).find(|(name, _)| *name == "f").unwrap();
    match item.ty {
        ComponentItem::ComponentFunc(f) => f,
        other => panic!("not a function: {other:?}"),
    }
}

fn point(x: i32, y: f64, label: &str) -> Val {
    Val::Record(vec![
        ("x".into(), Val::S32(x)),
        ("y".into(), Val::Float64(y)),
        ("label".into(), Val::String(label.into())),
    ])
}

fn params(n: u64, text: &str, shape: u8, perms: Vec<String>, maybe: bool) -> Vec<Val> {
    let shape = match shape % 3 {
        0 => Val::Variant("dot".into(), None),
        1 => Val::Variant("circle".into(), Some(Box::new(Val::Float32(n as f32 / 3.0)))),
        _ => {
            Val::Variant("poly".into(), Some(Box::new(Val::List(vec![point((n as i32).wrapping_neg(), 0.5, text); 3]))))
        }
    };
    vec![
        Val::Bool(n.is_multiple_of(2)),
        Val::U8(n as u8),
        Val::S8((n as i8).wrapping_neg()),
        Val::U16(n as u16),
        Val::S16((n as i16).wrapping_neg()),
        Val::U32(n as u32),
        Val::S64((n as i64).wrapping_neg()),
        Val::U64(n),
        Val::Char(text.chars().next().unwrap_or('é')),
        shape,
        Val::Enum(["red", "green", "blue"][n as usize % 3].into()),
        Val::Flags(perms),
        Val::Option(maybe.then(|| Box::new(Val::Tuple(vec![Val::String(text.into()), Val::U8(7)])))),
    ]
}

fn param_types(f: &ComponentFunc) -> Vec<wasmtime::component::types::Type> {
    f.params().map(|(_, t)| t).collect()
}

proptest! {
    #[test]
    fn every_value_round_trips(n: u64, text in "\\PC{0,12}", shape: u8, maybe: bool,
                               flags in proptest::sample::subsequence(vec!["read", "write", "exec", "a", "f"], 0..5)) {
        let f = func();
        let vals = params(n, &text, shape, flags.iter().map(|s| s.to_string()).collect(), maybe);
        let bytes = encode(param_types(&f), &vals).unwrap();
        prop_assert_eq!(decode(param_types(&f), &bytes).unwrap(), vals);
        // Every proper prefix is refused, never misread.
        for cut in 0..bytes.len() {
            prop_assert!(decode(param_types(&f), &bytes[..cut]).is_err());
        }
    }

    #[test]
    fn arbitrary_bytes_decode_or_are_refused_without_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        let f = func();
        let _ = decode(param_types(&f), &bytes);
        let _ = decode(f.results(), &bytes);
    }
}

#[test]
fn results_round_trip_and_extra_bytes_are_refused() {
    let f = func();
    let ok = vec![Val::Result(Ok(Some(Box::new(Val::List(vec![point(1, 2.0, "p")])))))];
    let err = vec![Val::Result(Err(Some(Box::new(Val::Enum("blue".into())))))];
    for vals in [ok, err] {
        let mut bytes = encode(f.results(), &vals).unwrap();
        assert_eq!(decode(f.results(), &bytes).unwrap(), vals);
        bytes.push(0);
        assert_eq!(decode(f.results(), &bytes), Err(CodecError::Trailing(1)));
    }
}

#[test]
fn a_count_larger_than_the_payload_is_refused_before_allocating() {
    let f = func();
    // ok(list of 2^62 points) in 10 bytes.
    let mut bytes = vec![0u8];
    bytes.extend([0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x40]);
    let err = decode(f.results(), &bytes).unwrap_err().to_string();
    assert!(err.contains("is larger than the 0 bytes left"), "{err}");
}

#[test]
fn values_of_the_wrong_type_are_refused() {
    let f = func();
    let err = encode(f.results(), &[Val::Result(Err(Some(Box::new(Val::Enum("purple".into())))))]).unwrap_err();
    assert!(matches!(err, CodecError::Mismatch(_)), "{err}");
    assert!(encode(f.results(), &[Val::U8(1)]).is_err());
    assert!(encode(f.results(), &[]).is_err(), "too few values");
}

#[test]
fn signatures_are_written_out_structurally() {
    let text = func_text(&func());
    assert!(text.starts_with("func(b: bool, u8: u8, s8: s8,"), "{text}");
    assert!(
        text.contains("shape: variant { dot, circle(f32), poly(list<record { x: s32, y: f64, label: string }>) }"),
        "{text}"
    );
    assert!(text.contains("color: enum { red, green, blue }"), "{text}");
    assert!(text.contains("maybe: option<tuple<string, u8>>"), "{text}");
    assert!(
        text.ends_with(") -> result<list<record { x: s32, y: f64, label: string }>, enum { red, green, blue }>"),
        "{text}"
    );
}

#[test]
fn only_interfaces_of_a_package_become_operations() {
    let wat = r#"(component
        (core module $m (func (export "f")))
        (core instance $i (instantiate $m))
        (func $f (canon lift (core func $i "f")))
        (instance $plain (export "init" (func $f)))
        (export "exports" (instance $plain))
        (instance $ping (export "ping" (func $f)))
        (export "acme:demo/pinger@0.1.0" (instance $ping))
    )"#;
    let engine = Engine::new(&Config::new()).expect("engine");
    let component = Component::new(&engine, wat::parse_str(wat).expect("WAT")).expect("component");
    let surface = super::RpcSurface::of(&engine, &component).expect("surface");
    let names: Vec<(&str, &str)> =
        surface.operations.iter().map(|o| (o.interface.as_str(), o.function.as_str())).collect();
    assert_eq!(names, vec![("acme:demo/pinger@0.1.0", "ping")]);
}

/// A component importing `acme:demo/deep.f(x: option<option<...u8>>)`
/// whose parameter type is `depth` levels deep (`u8` the innermost).
fn importing_nested_options(depth: usize) -> Component {
    let depth = depth - 1;
    let mut types = String::from("(type (option u8))\n");
    for i in 1..depth {
        types.push_str(&format!("(type (option {}))\n", i - 1));
    }
    let wat = format!(
        r#"(component (import "acme:demo/deep@0.1.0" (instance {types} (export "f" (func (param "x" {}))))))"#,
        depth - 1
    );
    let engine = Engine::new(&Config::new()).expect("engine");
    Component::new(&engine, wat::parse_str(wat).expect("WAT")).expect("component")
}

#[test]
fn types_nested_past_the_limit_are_refused_at_load() {
    let engine = Engine::new(&Config::new()).expect("engine");
    let fits = importing_nested_options(super::signature::MAX_TYPE_DEPTH);
    if let Err(e) = super::RpcSurface::of(&engine, &fits) {
        panic!("32 levels are allowed: {e}");
    }
    let deep = importing_nested_options(super::signature::MAX_TYPE_DEPTH + 1);
    let error = super::RpcSurface::of(&engine, &deep).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(error.contains("acme:demo/deep@0.1.0.f") && error.contains("nested deeper than 32 levels"), "{error}");
}

#[test]
fn a_varint_with_padding_is_refused() {
    let f = func();
    // ok(list of 0 points), the count written as two bytes (0x80 0x00).
    let err = decode(f.results(), &[0, 0x80, 0x00]).unwrap_err().to_string();
    assert!(err.contains("varint not in its shortest form"), "{err}");
    // ok(...) whose count has bits past the 64th.
    let err = decode(f.results(), &[0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02]).unwrap_err();
    assert!(err.to_string().contains("varint overflows 64 bits"), "{err}");
    assert_eq!(decode(f.results(), &[0, 0x00]).unwrap(), vec![Val::Result(Ok(Some(Box::new(Val::List(vec![])))))]);
}
