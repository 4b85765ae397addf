//! Property tests of the filter language: printing a filter and parsing it
//! back gives the same filter, and evaluation agrees with a reference
//! evaluator written independently here.

use pigeon_store::filter::{Cmp, Filter, Operand};
use proptest::prelude::*;

const NAMES: &[&str] = &["a", "b", "kind", "amount", "x.y", "under_score", "dash-ed"];

fn name() -> impl Strategy<Value = String> {
    prop::sample::select(NAMES).prop_map(str::to_string)
}

fn literal() -> impl Strategy<Value = String> {
    prop_oneof![
        (-1000i64..1000).prop_map(|n| n.to_string()),
        (-100.0f64..100.0).prop_map(|x| format!("{x:.2}")),
        "[a-z' \"]{0,6}",
    ]
}

fn operand() -> impl Strategy<Value = Operand> {
    prop_oneof![name().prop_map(Operand::Header), literal().prop_map(Operand::Literal)]
}

fn cmp() -> impl Strategy<Value = Cmp> {
    prop::sample::select(vec![Cmp::Eq, Cmp::Ne, Cmp::Lt, Cmp::Gt, Cmp::Le, Cmp::Ge])
}

fn filter() -> impl Strategy<Value = Filter> {
    let leaf = prop_oneof![
        name().prop_map(Filter::Exists),
        (operand(), cmp(), operand()).prop_map(|(l, c, r)| Filter::Compare(l, c, r)),
    ];
    leaf.prop_recursive(5, 32, 2, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 2..4).prop_map(Filter::And),
            prop::collection::vec(inner.clone(), 2..4).prop_map(Filter::Or),
            inner.prop_map(|a| Filter::Not(Box::new(a))),
        ]
    })
}

fn headers() -> impl Strategy<Value = Vec<(String, String)>> {
    prop::collection::vec((name(), literal()), 0..5)
}

/// The reference: the documented semantics, spelled out case by case.
fn reference(f: &Filter, headers: &[(String, String)]) -> bool {
    fn lookup<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
        headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
    fn value<'a>(headers: &'a [(String, String)], o: &'a Operand) -> Option<&'a str> {
        match o {
            Operand::Header(n) => lookup(headers, n),
            Operand::Literal(t) => Some(t),
        }
    }
    match f {
        Filter::And(all) => {
            let mut holds = true;
            for f in all {
                holds = holds && reference(f, headers);
            }
            holds
        }
        Filter::Or(any) => {
            let mut holds = false;
            for f in any {
                holds = holds || reference(f, headers);
            }
            holds
        }
        Filter::Not(a) => !reference(a, headers),
        Filter::Exists(n) => lookup(headers, n).is_some(),
        Filter::Compare(l, c, r) => {
            let (Some(l), Some(r)) = (value(headers, l), value(headers, r)) else { return false };
            let numbers = l.trim().parse::<f64>().ok().zip(r.trim().parse::<f64>().ok());
            let (less, equal) = match numbers {
                Some((x, y)) => (x < y, x == y),
                None => (l < r, l == r),
            };
            match c {
                Cmp::Eq => equal,
                Cmp::Ne => !equal,
                Cmp::Lt => less,
                Cmp::Gt => !less && !equal,
                Cmp::Le => less || equal,
                Cmp::Ge => !less,
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn printing_then_parsing_gives_the_same_filter(f in filter()) {
        let text = f.to_string();
        let parsed = Filter::parse(&text).map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
        prop_assert_eq!(parsed, f);
    }

    #[test]
    fn evaluation_agrees_with_the_reference(f in filter(), h in headers()) {
        let parsed = Filter::parse(&f.to_string()).unwrap();
        prop_assert_eq!(parsed.matches(&h), reference(&f, &h), "filter {} on {:?}", f, h);
    }
}
