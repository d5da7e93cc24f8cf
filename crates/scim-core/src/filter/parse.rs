//! Text to syntax tree: a recursive-descent parser for the RFC 7644 filter
//! grammar (section 3.4.2.2, Figure 1) and the PATCH path grammar
//! (section 3.5.2), bounded by [`Limits`].

use serde_json::Value;

use super::Limits;
use super::ast::{AttrPath, CompareOp, Expr, ExprKind, Span};
use crate::error::{Error, Result};

/// Parses filter text into a syntax tree.
pub fn parse_syntax(text: &str, limits: &Limits) -> Result<Expr> {
    let mut p = Parser::new(text, limits)?;
    let expr = p.or_expr()?;
    p.skip_ws();
    if let Some(c) = p.peek_char() {
        return Err(p.err_here(format!("unexpected '{c}' after a complete filter")));
    }
    Ok(expr)
}

/// A PATCH path as written: `attrPath`, or `attrPath[valFilter]` with an
/// optional `.subAttr` after the bracket.
#[derive(Debug, Clone, PartialEq)]
pub struct PathSyntax {
    /// The attribute path before any bracket.
    pub attr: AttrPath,
    /// The value filter in brackets, if any.
    pub filter: Option<Expr>,
    /// The sub-attribute after the closing bracket, if any.
    pub sub: Option<AttrPath>,
}

/// Parses a PATCH operation path into its parts.
pub fn parse_path_syntax(text: &str, limits: &Limits) -> Result<PathSyntax> {
    let mut p = Parser::new(text, limits).map_err(relabel_path)?;
    p.skip_ws();
    let attr = p.attr_path().map_err(relabel_path)?;
    let mut filter = None;
    let mut sub = None;
    if p.peek() == Some(b'[') {
        let open = p.pos;
        p.pos += 1;
        p.enter(open).map_err(relabel_path)?;
        let inner = p.or_expr().map_err(relabel_path)?;
        p.skip_ws();
        if p.peek() != Some(b']') {
            return Err(relabel_path(
                p.err_here("expected ']' to close the value filter"),
            ));
        }
        p.pos += 1;
        filter = Some(inner);
        if p.peek() == Some(b'.') {
            p.pos += 1;
            let start = p.pos;
            let name = p.word();
            if name.is_empty() || name.contains(['.', ':']) {
                return Err(
                    Error::invalid_path("expected a sub-attribute name after ']'.").at(start),
                );
            }
            sub = Some(AttrPath {
                text: name.to_string(),
                span: Span::new(start, p.pos),
            });
        }
    }
    p.skip_ws();
    if let Some(c) = p.peek_char() {
        return Err(Error::invalid_path(format!("unexpected '{c}' in path")).at(p.pos));
    }
    Ok(PathSyntax { attr, filter, sub })
}

fn relabel_path(e: Error) -> Error {
    let mut out = Error::invalid_path(e.detail().to_string());
    if let Some(p) = e.position() {
        out = out.at(p);
    }
    out
}

struct Parser<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
    depth: usize,
    terms: usize,
    limits: &'a Limits,
}

fn is_path_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b':' | b'.' | b'_' | b'-' | b'$')
}

impl<'a> Parser<'a> {
    fn new(text: &'a str, limits: &'a Limits) -> Result<Self> {
        if text.len() > limits.max_length {
            // The position is the first byte past the limit.
            return Err(Error::invalid_filter(format!(
                "filter is {} bytes long; the limit is {}",
                text.len(),
                limits.max_length
            ))
            .at(limits.max_length));
        }
        if let Some(at) = text.find('\0') {
            return Err(Error::invalid_filter(
                "the character U+0000 is not accepted in a filter or path",
            )
            .at(at));
        }
        Ok(Self {
            text,
            bytes: text.as_bytes(),
            pos: 0,
            depth: 0,
            terms: 0,
            limits,
        })
    }

    fn err_here(&self, msg: impl Into<String>) -> Error {
        Error::invalid_filter(msg).at(self.pos)
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn peek_char(&self) -> Option<char> {
        self.text[self.pos..].chars().next()
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\r' | b'\n')) {
            self.pos += 1;
        }
    }

    fn enter(&mut self, at: usize) -> Result<()> {
        self.depth += 1;
        if self.depth > self.limits.max_depth {
            return Err(Error::invalid_filter(format!(
                "filter nests deeper than {} levels",
                self.limits.max_depth
            ))
            .at(at));
        }
        Ok(())
    }

    /// A maximal run of attribute-path bytes.
    fn word(&mut self) -> &'a str {
        let start = self.pos;
        while self.peek().is_some_and(is_path_byte) {
            self.pos += 1;
        }
        &self.text[start..self.pos]
    }

    /// The next word, without consuming it.
    fn peek_word(&self) -> &'a str {
        let mut end = self.pos;
        while self.bytes.get(end).copied().is_some_and(is_path_byte) {
            end += 1;
        }
        &self.text[self.pos..end]
    }

    /// Consumes the keyword `kw` (case-insensitively) when it stands as a
    /// whole word at the cursor.
    fn keyword(&mut self, kw: &str) -> bool {
        let w = self.peek_word();
        if w.eq_ignore_ascii_case(kw) {
            self.pos += w.len();
            true
        } else {
            false
        }
    }

    fn or_expr(&mut self) -> Result<Expr> {
        let first = self.and_expr()?;
        let start = first.span.start;
        let mut terms = vec![first];
        loop {
            let save = self.pos;
            self.skip_ws();
            if self.pos > save && self.keyword("or") {
                if !self.at_separator() {
                    return Err(self.err_here("expected a space after 'or'"));
                }
                terms.push(self.and_expr()?);
            } else {
                self.pos = save;
                break;
            }
        }
        Ok(join(terms, start, ExprKind::Or))
    }

    fn and_expr(&mut self) -> Result<Expr> {
        let first = self.unary()?;
        let start = first.span.start;
        let mut terms = vec![first];
        loop {
            let save = self.pos;
            self.skip_ws();
            if self.pos > save && self.keyword("and") {
                if !self.at_separator() {
                    return Err(self.err_here("expected a space after 'and'"));
                }
                terms.push(self.unary()?);
            } else {
                self.pos = save;
                break;
            }
        }
        Ok(join(terms, start, ExprKind::And))
    }

    /// After a keyword: whitespace or an opening parenthesis must follow.
    fn at_separator(&self) -> bool {
        matches!(self.peek(), Some(b' ' | b'\t' | b'\r' | b'\n' | b'('))
    }

    fn unary(&mut self) -> Result<Expr> {
        self.skip_ws();
        let start = self.pos;
        match self.peek() {
            None => {
                return Err(self.err_here("expected an attribute path or '(' but the filter ended"));
            }
            Some(b'(') => {
                self.pos += 1;
                self.enter(start)?;
                let inner = self.or_expr()?;
                self.skip_ws();
                if self.peek() != Some(b')') {
                    return Err(self.err_here("expected ')'"));
                }
                self.pos += 1;
                self.depth -= 1;
                return Ok(inner);
            }
            Some(_) => {}
        }
        let w = self.peek_word();
        if w.eq_ignore_ascii_case("not") {
            let after = self.pos + w.len();
            let mut look = after;
            while matches!(self.bytes.get(look), Some(b' ' | b'\t' | b'\r' | b'\n')) {
                look += 1;
            }
            if self.bytes.get(look) == Some(&b'(') {
                self.pos = look + 1;
                self.enter(start)?;
                let inner = self.or_expr()?;
                self.skip_ws();
                if self.peek() != Some(b')') {
                    return Err(self.err_here("expected ')' to close 'not ('"));
                }
                self.pos += 1;
                self.depth -= 1;
                return Ok(Expr {
                    kind: ExprKind::Not(Box::new(inner)),
                    span: Span::new(start, self.pos),
                });
            }
            return Err(Error::invalid_filter("'not' must be followed by '('").at(look));
        }
        let attr = self.attr_path()?;
        if self.peek() == Some(b'[') {
            let open = self.pos;
            self.pos += 1;
            self.enter(open)?;
            let inner = self.or_expr()?;
            self.skip_ws();
            if self.peek() != Some(b']') {
                return Err(self.err_here("expected ']' to close the value filter"));
            }
            self.pos += 1;
            self.depth -= 1;
            if self.peek() == Some(b'.') {
                return Err(self.err_here(
                    "a sub-attribute after a value filter is only allowed in PATCH paths",
                ));
            }
            return Ok(Expr {
                kind: ExprKind::ValuePath(attr, Box::new(inner)),
                span: Span::new(start, self.pos),
            });
        }
        self.count_term(start)?;
        if !matches!(self.peek(), Some(b' ' | b'\t' | b'\r' | b'\n')) {
            return Err(match self.peek_char() {
                None => self.err_here(format!(
                    "expected an operator after '{}' but the filter ended",
                    attr.text
                )),
                Some(c) => self.err_here(format!("unexpected '{c}' in attribute path")),
            });
        }
        self.skip_ws();
        let op_start = self.pos;
        let op = self.word();
        if op.eq_ignore_ascii_case("pr") {
            return Ok(Expr {
                kind: ExprKind::Present(attr),
                span: Span::new(start, self.pos),
            });
        }
        let Some(op) = CompareOp::from_name(op) else {
            return Err(Error::invalid_filter(if op.is_empty() {
                "expected an operator (eq, ne, co, sw, ew, gt, ge, lt, le, pr)".to_string()
            } else {
                format!("unknown operator '{op}'")
            })
            .at(op_start));
        };
        let before_value = self.pos;
        self.skip_ws();
        if self.pos == before_value && self.peek() != Some(b'"') {
            return Err(self.err_here(format!("expected a space after '{}'", op.as_str())));
        }
        let value = self.value()?;
        Ok(Expr {
            kind: ExprKind::Compare(attr, op, value),
            span: Span::new(start, self.pos),
        })
    }

    fn count_term(&mut self, at: usize) -> Result<()> {
        self.terms += 1;
        if self.terms > self.limits.max_terms {
            return Err(Error::invalid_filter(format!(
                "filter has more than {} terms",
                self.limits.max_terms
            ))
            .at(at));
        }
        Ok(())
    }

    fn attr_path(&mut self) -> Result<AttrPath> {
        let start = self.pos;
        let w = self.word();
        if w.is_empty() {
            return Err(match self.peek_char() {
                None => self.err_here("expected an attribute path but the filter ended"),
                Some(c) => self.err_here(format!("expected an attribute path, found '{c}'")),
            });
        }
        let first = w.as_bytes()[0];
        if !(first.is_ascii_alphabetic() || first == b'$') {
            return Err(
                Error::invalid_filter(format!("'{w}' is not a valid attribute path")).at(start),
            );
        }
        if w.ends_with(['.', ':']) || w.contains("..") {
            return Err(
                Error::invalid_filter(format!("'{w}' is not a valid attribute path")).at(start),
            );
        }
        Ok(AttrPath {
            text: w.to_string(),
            span: Span::new(start, self.pos),
        })
    }

    fn value(&mut self) -> Result<Value> {
        let start = self.pos;
        match self.peek() {
            None => Err(self.err_here("expected a value but the filter ended")),
            Some(b'"') => self.string().map(Value::String),
            Some(_) => {
                while self
                    .peek()
                    .is_some_and(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'+'))
                {
                    self.pos += 1;
                }
                let w = &self.text[start..self.pos];
                if w.eq_ignore_ascii_case("true") {
                    return Ok(Value::Bool(true));
                }
                if w.eq_ignore_ascii_case("false") {
                    return Ok(Value::Bool(false));
                }
                if w.eq_ignore_ascii_case("null") {
                    return Ok(Value::Null);
                }
                let is_json_number = w.starts_with(|c: char| c == '-' || c.is_ascii_digit());
                if is_json_number && let Ok(Value::Number(n)) = serde_json::from_str::<Value>(w) {
                    return Ok(Value::Number(n));
                }
                Err(Error::invalid_filter(if w.is_empty() {
                    "expected a value: a quoted string, a number, true, false or null".to_string()
                } else {
                    format!("'{w}' is not a valid value; strings must be in double quotes")
                })
                .at(start))
            }
        }
    }

    /// A JSON string literal at the cursor (RFC 8259 escapes).
    fn string(&mut self) -> Result<String> {
        let start = self.pos;
        self.pos += 1;
        let mut out = String::new();
        loop {
            let Some(c) = self.peek_char() else {
                return Err(Error::invalid_filter("unterminated string").at(start));
            };
            match c {
                '"' => {
                    self.pos += 1;
                    return Ok(out);
                }
                '\\' => {
                    let esc_at = self.pos;
                    self.pos += 1;
                    let Some(e) = self.peek() else {
                        return Err(Error::invalid_filter("unterminated string").at(start));
                    };
                    self.pos += 1;
                    match e {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let hi = self.hex4(esc_at)?;
                            let code = if (0xD800..0xDC00).contains(&hi) {
                                if self.bytes.get(self.pos) != Some(&b'\\')
                                    || self.bytes.get(self.pos + 1) != Some(&b'u')
                                {
                                    return Err(Error::invalid_filter(
                                        "unpaired surrogate in \\u escape",
                                    )
                                    .at(esc_at));
                                }
                                self.pos += 2;
                                let lo = self.hex4(esc_at)?;
                                if !(0xDC00..0xE000).contains(&lo) {
                                    return Err(Error::invalid_filter(
                                        "invalid surrogate pair in \\u escape",
                                    )
                                    .at(esc_at));
                                }
                                0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                            } else {
                                hi
                            };
                            match char::from_u32(code) {
                                Some(c) => out.push(c),
                                None => {
                                    return Err(
                                        Error::invalid_filter("invalid \\u escape").at(esc_at)
                                    );
                                }
                            }
                        }
                        _ => {
                            return Err(
                                Error::invalid_filter("invalid escape in string").at(esc_at)
                            );
                        }
                    }
                }
                c if (c as u32) < 0x20 => {
                    return Err(self.err_here("control character in string; escape it"));
                }
                c => {
                    out.push(c);
                    self.pos += c.len_utf8();
                }
            }
        }
    }

    fn hex4(&mut self, esc_at: usize) -> Result<u32> {
        let digits = self
            .text
            .get(self.pos..self.pos + 4)
            .filter(|d| d.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| {
                Error::invalid_filter("\\u must be followed by four hex digits").at(esc_at)
            })?;
        self.pos += 4;
        u32::from_str_radix(digits, 16)
            .map_err(|_| Error::invalid_filter("invalid \\u escape").at(esc_at))
    }
}

fn join(mut terms: Vec<Expr>, start: usize, make: fn(Vec<Expr>) -> ExprKind) -> Expr {
    if terms.len() == 1 {
        return terms.remove(0);
    }
    let end = terms.last().map_or(start, |t| t.span.end);
    Expr {
        kind: make(terms),
        span: Span::new(start, end),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Expr> {
        parse_syntax(s, &Limits::default())
    }

    #[test]
    fn and_binds_tighter_than_or() {
        let e = parse(r#"a eq 1 or b eq 2 and c eq 3"#).unwrap();
        let ExprKind::Or(terms) = &e.kind else {
            panic!("{e:?}")
        };
        assert_eq!(terms.len(), 2);
        assert!(matches!(terms[1].kind, ExprKind::And(_)));
    }

    #[test]
    fn urn_paths_keep_their_dots() {
        let e = parse(
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "x""#,
        )
        .unwrap();
        let ExprKind::Compare(p, CompareOp::Eq, v) = &e.kind else {
            panic!()
        };
        assert_eq!(
            p.text,
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value"
        );
        assert_eq!(v, "x");
    }

    #[test]
    fn deep_nesting_is_refused_quickly() {
        let deep = "(".repeat(100_000);
        let err = parse(&deep).unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::InvalidFilter);
        let long = format!("{}a pr{}", "(".repeat(3000), ")".repeat(3000));
        let limits = Limits {
            max_length: 1 << 20,
            ..Limits::default()
        };
        let err = parse_syntax(&long, &limits).unwrap_err();
        assert!(err.detail().contains("deeper"), "{err}");
        assert_eq!(err.position(), Some(Limits::default().max_depth));
    }

    #[test]
    fn errors_point_at_the_problem() {
        let err = parse(r#"userName eq "bjensen" and"#).unwrap_err();
        assert_eq!(err.position(), Some(25));
        let err = parse(r#"userName xx "a""#).unwrap_err();
        assert_eq!(err.position(), Some(9));
        let err = parse(r#"userName eq bjensen"#).unwrap_err();
        assert_eq!(err.position(), Some(12));
        let err = parse(r#"userName eq "unterminated"#).unwrap_err();
        assert_eq!(err.position(), Some(12));
    }

    #[test]
    fn paths() {
        let p = parse_path_syntax(r#"emails[type eq "work"].value"#, &Limits::default()).unwrap();
        assert_eq!(p.attr.text, "emails");
        assert!(p.filter.is_some());
        assert_eq!(p.sub.unwrap().text, "value");
        let p = parse_path_syntax(
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
            &Limits::default(),
        )
        .unwrap();
        assert!(p.filter.is_none());
        let err = parse_path_syntax("emails[type eq \"work\"", &Limits::default()).unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::InvalidPath);
    }
}
