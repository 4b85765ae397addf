//! Subscription filters: boolean expressions over message headers.
//!
//! ```text
//! kind = 'order' AND amount > 100
//! NOT (region = 'eu' OR EXISTS test)
//! ```
//!
//! Grammar (keywords are case-insensitive):
//!
//! ```text
//! expr       := and ("OR" and)*
//! and        := unary ("AND" unary)*
//! unary      := "NOT" unary | "(" expr ")" | "EXISTS" name | operand cmp operand
//! cmp        := "=" | "!=" | "<" | ">" | "<=" | ">="
//! operand    := name | 'text' | "text" | number
//! ```
//!
//! A name is a header (`[A-Za-z_][A-Za-z0-9_.-]*`); quotes in a literal are
//! doubled (`'it''s'`). A comparison is numeric when both sides parse as
//! numbers and textual otherwise; a comparison with a missing header is
//! false (so `NOT (h = 'x')` holds when `h` is absent). A malformed filter is
//! refused with the byte position of the problem.
//!
//! Filters come from clients and from guests, and are evaluated by the
//! committer thread on every publish, so their size is bounded where they
//! are parsed: at most [`MAX_FILTER_BYTES`] of text, [`MAX_FILTER_TERMS`]
//! comparisons and [`MAX_FILTER_DEPTH`] levels of parentheses and `NOT`.
//! `a OR b OR c` is one node with three children, not a chain, so a wide
//! filter adds no depth: parsing, evaluating, printing and dropping a
//! filter recurse at most [`MAX_FILTER_DEPTH`] levels, never as deep as
//! the input is long.

use std::fmt;

/// Longest filter text accepted, in bytes.
pub const MAX_FILTER_BYTES: usize = 4096;
/// Most comparisons and `EXISTS` tests in one filter.
pub const MAX_FILTER_TERMS: usize = 256;
/// Deepest nesting of parentheses and `NOT` in one filter.
pub const MAX_FILTER_DEPTH: usize = 32;

/// A parsed filter.
#[derive(Clone, Debug, PartialEq)]
pub enum Filter {
    /// Any of at least two filters holds.
    Or(Vec<Filter>),
    /// All of at least two filters hold.
    And(Vec<Filter>),
    Not(Box<Filter>),
    /// The header is present.
    Exists(String),
    Compare(Operand, Cmp, Operand),
}

/// One side of a comparison.
#[derive(Clone, Debug, PartialEq)]
pub enum Operand {
    /// The value of a header.
    Header(String),
    /// A literal (numbers are kept as their text).
    Literal(String),
}

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cmp {
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
}

/// Why a filter does not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid filter at position {position}: {message}")]
pub struct FilterError {
    /// Byte offset in the filter text.
    pub position: usize,
    pub message: String,
}

impl Filter {
    /// Parses `text`, refusing a filter over the limits of this module.
    pub fn parse(text: &str) -> Result<Filter, FilterError> {
        if text.len() > MAX_FILTER_BYTES {
            return Err(FilterError {
                position: MAX_FILTER_BYTES,
                message: format!(
                    "the filter is {} bytes long, over the limit of {MAX_FILTER_BYTES}: split the subscription or match on fewer values",
                    text.len()
                ),
            });
        }
        let tokens = lex(text)?;
        let mut parser = Parser { tokens, at: 0, len: text.len(), depth: 0, terms: 0 };
        let filter = parser.or()?;
        match parser.peek() {
            None => Ok(filter),
            Some((pos, token)) => {
                Err(FilterError { position: pos, message: format!("unexpected {token} after a complete filter") })
            }
        }
    }

    /// Whether a message with `headers` passes.
    pub fn matches(&self, headers: &[(String, String)]) -> bool {
        let header = |name: &str| headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
        match self {
            Filter::Or(any) => any.iter().any(|f| f.matches(headers)),
            Filter::And(all) => all.iter().all(|f| f.matches(headers)),
            Filter::Not(a) => !a.matches(headers),
            Filter::Exists(name) => header(name).is_some(),
            Filter::Compare(left, cmp, right) => match (left.value(headers), right.value(headers)) {
                (Some(l), Some(r)) => cmp.holds(compare(l, r)),
                _ => false,
            },
        }
    }
}

/// Numeric when both parse as numbers, textual otherwise.
pub fn compare(left: &str, right: &str) -> std::cmp::Ordering {
    match (left.trim().parse::<f64>(), right.trim().parse::<f64>()) {
        (Ok(l), Ok(r)) if !l.is_nan() && !r.is_nan() => l.total_cmp(&r),
        _ => left.cmp(right),
    }
}

impl Operand {
    /// The header's value (none when absent), or the literal.
    fn value<'a>(&'a self, headers: &'a [(String, String)]) -> Option<&'a str> {
        match self {
            Operand::Header(name) => headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str()),
            Operand::Literal(text) => Some(text),
        }
    }
}

impl Cmp {
    fn holds(self, ordering: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering::*;
        match self {
            Cmp::Eq => ordering == Equal,
            Cmp::Ne => ordering != Equal,
            Cmp::Lt => ordering == Less,
            Cmp::Gt => ordering == Greater,
            Cmp::Le => ordering != Greater,
            Cmp::Ge => ordering != Less,
        }
    }

    fn symbol(self) -> &'static str {
        match self {
            Cmp::Eq => "=",
            Cmp::Ne => "!=",
            Cmp::Lt => "<",
            Cmp::Gt => ">",
            Cmp::Le => "<=",
            Cmp::Ge => ">=",
        }
    }
}

/// Prints a filter that parses back to the same tree (fully parenthesised).
impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Filter::Or(any) => write_group(f, any, " OR "),
            Filter::And(all) => write_group(f, all, " AND "),
            Filter::Not(a) => write!(f, "NOT {a}"),
            Filter::Exists(name) => write!(f, "EXISTS {name}"),
            Filter::Compare(l, c, r) => write!(f, "{l} {} {r}", c.symbol()),
        }
    }
}

/// `(a SEP b SEP c)`.
fn write_group(f: &mut fmt::Formatter<'_>, items: &[Filter], separator: &str) -> fmt::Result {
    f.write_str("(")?;
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(separator)?;
        }
        write!(f, "{item}")?;
    }
    f.write_str(")")
}

impl fmt::Display for Operand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Operand::Header(name) => f.write_str(name),
            Operand::Literal(text) => write!(f, "'{}'", text.replace('\'', "''")),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Token {
    Name(String),
    Text(String),
    Number(String),
    Op(Cmp),
    Open,
    Close,
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Token::Name(n) => write!(f, "`{n}`"),
            Token::Text(t) => write!(f, "text '{t}'"),
            Token::Number(n) => write!(f, "number {n}"),
            Token::Op(c) => write!(f, "`{}`", c.symbol()),
            Token::Open => f.write_str("`(`"),
            Token::Close => f.write_str("`)`"),
        }
    }
}

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
}

fn lex(text: &str) -> Result<Vec<(usize, Token)>, FilterError> {
    let mut tokens = Vec::new();
    let mut chars = text.char_indices().peekable();
    let error = |position: usize, message: String| FilterError { position, message };
    while let Some(&(pos, c)) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '(' | ')' => {
                chars.next();
                tokens.push((pos, if c == '(' { Token::Open } else { Token::Close }));
            }
            '=' | '!' | '<' | '>' => {
                chars.next();
                let followed_by_eq = chars.peek().is_some_and(|&(_, n)| n == '=');
                let op = match (c, followed_by_eq) {
                    ('=', _) => Cmp::Eq,
                    ('!', true) => Cmp::Ne,
                    ('<', true) => Cmp::Le,
                    ('>', true) => Cmp::Ge,
                    ('<', false) => Cmp::Lt,
                    ('>', false) => Cmp::Gt,
                    _ => return Err(error(pos, "`!` must be followed by `=`".into())),
                };
                if followed_by_eq && c != '=' {
                    chars.next();
                }
                tokens.push((pos, Token::Op(op)));
            }
            '\'' | '"' => {
                chars.next();
                let mut literal = String::new();
                loop {
                    match chars.next() {
                        Some((_, q)) if q == c => {
                            if chars.peek().is_some_and(|&(_, n)| n == c) {
                                chars.next();
                                literal.push(c);
                            } else {
                                break;
                            }
                        }
                        Some((_, other)) => literal.push(other),
                        None => return Err(error(pos, format!("text starting here has no closing {c}"))),
                    }
                }
                tokens.push((pos, Token::Text(literal)));
            }
            c if c.is_ascii_digit() || c == '-' || c == '.' => {
                let mut number = String::new();
                while let Some(&(_, d)) = chars.peek() {
                    if d.is_ascii_digit() || d == '.' || d == '-' || d == 'e' || d == 'E' || d == '+' {
                        number.push(d);
                        chars.next();
                    } else {
                        break;
                    }
                }
                if number.parse::<f64>().is_err() {
                    return Err(error(pos, format!("`{number}` is not a number")));
                }
                tokens.push((pos, Token::Number(number)));
            }
            c if is_name_start(c) => {
                let mut name = String::new();
                while let Some(&(_, n)) = chars.peek() {
                    if is_name_char(n) {
                        name.push(n);
                        chars.next();
                    } else {
                        break;
                    }
                }
                tokens.push((pos, Token::Name(name)));
            }
            other => return Err(error(pos, format!("unexpected character `{other}`"))),
        }
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<(usize, Token)>,
    at: usize,
    len: usize,
    /// Parentheses and `NOT`s open around the current token.
    depth: usize,
    /// Comparisons and `EXISTS` tests so far.
    terms: usize,
}

fn keyword(token: &Token, word: &str) -> bool {
    matches!(token, Token::Name(n) if n.eq_ignore_ascii_case(word))
}

impl Parser {
    fn peek(&self) -> Option<(usize, &Token)> {
        self.tokens.get(self.at).map(|(p, t)| (*p, t))
    }

    fn next(&mut self, expected: &str) -> Result<(usize, Token), FilterError> {
        let token = self.tokens.get(self.at).cloned();
        self.at += 1;
        token.ok_or_else(|| FilterError { position: self.len, message: format!("expected {expected}, found the end") })
    }

    fn eat_keyword(&mut self, word: &str) -> bool {
        if self.peek().is_some_and(|(_, t)| keyword(t, word)) {
            self.at += 1;
            return true;
        }
        false
    }

    fn or(&mut self) -> Result<Filter, FilterError> {
        let mut any = vec![self.and()?];
        while self.eat_keyword("OR") {
            any.push(self.and()?);
        }
        Ok(if any.len() == 1 { any.remove(0) } else { Filter::Or(any) })
    }

    fn and(&mut self) -> Result<Filter, FilterError> {
        let mut all = vec![self.unary()?];
        while self.eat_keyword("AND") {
            all.push(self.unary()?);
        }
        Ok(if all.len() == 1 { all.remove(0) } else { Filter::And(all) })
    }

    /// Enters a level of nesting (a `NOT` or a parenthesis at `position`),
    /// refusing to go past [`MAX_FILTER_DEPTH`].
    fn enter(&mut self, position: usize) -> Result<(), FilterError> {
        self.depth += 1;
        if self.depth > MAX_FILTER_DEPTH {
            return Err(FilterError {
                position,
                message: format!(
                    "the filter nests deeper than {MAX_FILTER_DEPTH} levels of parentheses and NOT: write it flatter"
                ),
            });
        }
        Ok(())
    }

    /// Counts one comparison or `EXISTS` at `position` against [`MAX_FILTER_TERMS`].
    fn term(&mut self, position: usize) -> Result<(), FilterError> {
        self.terms += 1;
        if self.terms > MAX_FILTER_TERMS {
            return Err(FilterError {
                position,
                message: format!(
                    "the filter has more than {MAX_FILTER_TERMS} comparisons: split the subscription or match on fewer values"
                ),
            });
        }
        Ok(())
    }

    fn unary(&mut self) -> Result<Filter, FilterError> {
        let position = self.peek().map_or(self.len, |(p, _)| p);
        if self.eat_keyword("NOT") {
            self.enter(position)?;
            let inner = self.unary()?;
            self.depth -= 1;
            return Ok(Filter::Not(Box::new(inner)));
        }
        self.term(position)?;
        if self.eat_keyword("EXISTS") {
            return match self.next("a header name after EXISTS")? {
                (_, Token::Name(name)) if !is_keyword(&name) => Ok(Filter::Exists(name)),
                (pos, other) => Err(FilterError {
                    position: pos,
                    message: format!("expected a header name after EXISTS, found {other}"),
                }),
            };
        }
        if self.peek().is_some_and(|(_, t)| *t == Token::Open) {
            // A group is not a term itself: what it holds is counted.
            self.terms -= 1;
            self.at += 1;
            self.enter(position)?;
            let inner = self.or()?;
            self.depth -= 1;
            return match self.next("`)`")? {
                (_, Token::Close) => Ok(inner),
                (pos, other) => Err(FilterError { position: pos, message: format!("expected `)`, found {other}") }),
            };
        }
        let left = self.operand()?;
        let cmp = match self.next("a comparison (=, !=, <, >, <=, >=)")? {
            (_, Token::Op(cmp)) => cmp,
            (pos, other) => {
                return Err(FilterError {
                    position: pos,
                    message: format!("expected a comparison (=, !=, <, >, <=, >=), found {other}"),
                });
            }
        };
        Ok(Filter::Compare(left, cmp, self.operand()?))
    }

    fn operand(&mut self) -> Result<Operand, FilterError> {
        match self.next("a header name, a 'text' or a number")? {
            (_, Token::Name(name)) if !is_keyword(&name) => Ok(Operand::Header(name)),
            (_, Token::Text(text)) | (_, Token::Number(text)) => Ok(Operand::Literal(text)),
            (pos, other) => Err(FilterError {
                position: pos,
                message: format!("expected a header name, a 'text' or a number, found {other}"),
            }),
        }
    }
}

fn is_keyword(name: &str) -> bool {
    ["AND", "OR", "NOT", "EXISTS"].iter().any(|k| name.eq_ignore_ascii_case(k))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect()
    }

    #[test]
    fn evaluates_the_documented_examples() {
        let f = Filter::parse("kind = 'order' AND amount > 100").unwrap();
        assert!(f.matches(&headers(&[("kind", "order"), ("amount", "250")])));
        assert!(!f.matches(&headers(&[("kind", "order"), ("amount", "99.5")])));
        assert!(!f.matches(&headers(&[("kind", "order")])), "missing header: false");
        // Numeric, not textual: "1000" > "200" as numbers.
        assert!(Filter::parse("amount > 200").unwrap().matches(&headers(&[("amount", "1000")])));
        assert!(Filter::parse("name < 'b'").unwrap().matches(&headers(&[("name", "alice")])));
        let g = Filter::parse("not (region = \"eu\" or exists test)").unwrap();
        assert!(g.matches(&headers(&[("region", "us")])));
        assert!(!g.matches(&headers(&[("test", "")])));
        assert!(Filter::parse("note = 'it''s'").unwrap().matches(&headers(&[("note", "it's")])));
    }

    #[test]
    fn and_binds_tighter_than_or_and_not_tighter_than_and() {
        let f = Filter::parse("a = 1 OR b = 1 AND NOT c = 1").unwrap();
        let cmp = |h: &str| Filter::Compare(Operand::Header(h.into()), Cmp::Eq, Operand::Literal("1".into()));
        let expected = Filter::Or(vec![cmp("a"), Filter::And(vec![cmp("b"), Filter::Not(Box::new(cmp("c")))])]);
        assert_eq!(f, expected);
        let wide = Filter::parse("a = 1 OR b = 1 OR c = 1").unwrap();
        assert_eq!(wide, Filter::Or(vec![cmp("a"), cmp("b"), cmp("c")]), "one node, not a chain");
    }

    #[test]
    fn refuses_filters_past_each_limit_naming_it() {
        let deep = format!("{}a = 1{}", "(".repeat(5000), ")".repeat(5000));
        let nots = format!("{}a = 1", "NOT ".repeat(1000));
        let long = "a = 1 OR ".repeat(2000) + "a = 1";
        let wide = vec!["a=1"; MAX_FILTER_TERMS + 1].join(" OR ");
        let wide_and = vec!["EXISTS a"; MAX_FILTER_TERMS + 1].join(" AND ");
        let cases = [
            (&deep, "bytes long, over the limit of 4096"),
            (&nots, "deeper than 32 levels"),
            (&long, "bytes long"),
            (&wide, "more than 256 comparisons"),
            (&wide_and, "more than 256 comparisons"),
        ];
        for (text, needle) in cases {
            let err = Filter::parse(text).unwrap_err();
            assert!(err.to_string().contains(needle), "{}...: {err}", &text[..20]);
        }
        let deep = format!("{}a = 1{}", "(".repeat(33), ")".repeat(33));
        let err = Filter::parse(&deep).unwrap_err();
        assert_eq!(err.position, 32);
        assert!(err.to_string().contains("deeper than 32 levels"), "{err}");
        let err = Filter::parse(&format!("{}a = 1", "NOT ".repeat(33))).unwrap_err();
        assert!(err.to_string().contains("deeper than 32 levels"), "{err}");
    }

    #[test]
    fn the_largest_filters_allowed_parse_and_evaluate() {
        let deep = format!("{}a = 1{}", "(NOT ".repeat(16), ")".repeat(16));
        let f = Filter::parse(&deep).unwrap();
        assert!(f.matches(&headers(&[("a", "1")])), "an even number of NOTs");
        assert_eq!(Filter::parse(&f.to_string()).unwrap(), f);
        let wide = (0..MAX_FILTER_TERMS).map(|i| format!("h{i}=1")).collect::<Vec<_>>().join(" OR ");
        let f = Filter::parse(&wide).unwrap();
        assert!(f.matches(&headers(&[("h255", "1")])));
        assert!(!f.matches(&headers(&[("h256", "1")])));
    }

    #[test]
    fn reports_the_position_of_errors() {
        let cases = [
            ("kind = ", 7, "found the end"),
            ("kind == 'x'", 6, "expected a header name"),
            ("(a = 1", 6, "expected `)`"),
            ("a = 1 b = 2", 6, "unexpected `b`"),
            ("a ! 1", 2, "`!` must be followed by `=`"),
            ("a = 'open", 4, "no closing '"),
            ("EXISTS 'x'", 7, "header name after EXISTS"),
            ("a = #", 4, "unexpected character `#`"),
            ("a AND b", 2, "expected a comparison"),
        ];
        for (text, position, needle) in cases {
            let err = Filter::parse(text).unwrap_err();
            assert_eq!(err.position, position, "{text}: {err}");
            assert!(err.to_string().contains(needle), "{text}: {err}");
        }
    }
}
