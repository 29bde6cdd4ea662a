//! Node filter expressions.
//!
//! ```text
//! group:A or group:B                 tag:prod and not name:web*
//! (group:A, group:C) !tag:decom      attr.dc=paris  attr.env!=test  dc=paris
//! all    *    web1    web[0-9]*      transport:ssh   host:10.0.*
//! ```
//!
//! `and` binds tighter than `or`; words next to each other are joined by `and`; `,` and
//! `|` mean `or`; `!` and `not` negate. Values are globs (`*`, `?`, `[..]`); quote values
//! with spaces: `attr.role="primary db"`.

use std::fmt;

use globset::{Glob, GlobMatcher};

use crate::model::Node;

/// A parsed filter; `matches` decides whether a node is selected.
#[derive(Debug, Clone)]
pub struct NodeFilter {
    source: String,
    expr: Expr,
}

#[derive(Debug, Clone)]
enum Expr {
    All,
    Not(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Term(Field, Pattern),
    Attr(String, Pattern, bool),
}

#[derive(Debug, Clone, Copy)]
enum Field {
    Name,
    Group,
    Tag,
    Host,
    Transport,
    User,
}

#[derive(Debug, Clone)]
struct Pattern(GlobMatcher);

impl Pattern {
    fn is_match(&self, s: &str) -> bool {
        self.0.is_match(s)
    }
}

/// A filter that does not parse, with the 1-based column of the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid filter `{source_text}` at column {column}: {message}")]
pub struct FilterError {
    pub source_text: String,
    pub column: usize,
    pub message: String,
}

impl NodeFilter {
    pub fn parse(text: &str) -> Result<Self, FilterError> {
        let tokens = tokenize(text)?;
        if tokens.is_empty() {
            return Err(err(
                text,
                1,
                "empty filter (use `all` to select every server)",
            ));
        }
        let mut p = FilterParser {
            text,
            tokens,
            at: 0,
        };
        let expr = p.or()?;
        if let Some(t) = p.tokens.get(p.at) {
            return Err(err(text, t.col, format!("unexpected `{}`", t.text)));
        }
        Ok(NodeFilter {
            source: text.to_string(),
            expr,
        })
    }

    /// The filter that selects every node.
    pub fn all() -> Self {
        NodeFilter {
            source: "all".into(),
            expr: Expr::All,
        }
    }

    /// Both filters must match.
    pub fn and(self, other: NodeFilter) -> Self {
        NodeFilter {
            source: format!("({}) and ({})", self.source, other.source),
            expr: Expr::And(Box::new(self.expr), Box::new(other.expr)),
        }
    }

    pub fn matches(&self, node: &Node) -> bool {
        eval(&self.expr, node)
    }

    pub fn as_str(&self) -> &str {
        &self.source
    }
}

impl fmt::Display for NodeFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

fn eval(e: &Expr, n: &Node) -> bool {
    match e {
        Expr::All => true,
        Expr::Not(e) => !eval(e, n),
        Expr::And(a, b) => eval(a, n) && eval(b, n),
        Expr::Or(a, b) => eval(a, n) || eval(b, n),
        Expr::Term(Field::Name, p) => p.is_match(&n.name),
        Expr::Term(Field::Host, p) => p.is_match(&n.host),
        Expr::Term(Field::Group, p) => n.groups.iter().any(|g| p.is_match(g)),
        Expr::Term(Field::Tag, p) => n.tags.iter().any(|t| p.is_match(t)),
        Expr::Term(Field::Transport, p) => p.is_match(n.transport.as_str()),
        Expr::Term(Field::User, p) => n.user.as_deref().is_some_and(|u| p.is_match(u)),
        Expr::Attr(k, p, equal) => {
            let hit = n.attributes.get(k).is_some_and(|v| p.is_match(v));
            hit == *equal
        }
    }
}

fn err(text: &str, column: usize, message: impl Into<String>) -> FilterError {
    FilterError {
        source_text: text.to_string(),
        column,
        message: message.into(),
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Open,
    Close,
    Not,
    And,
    Or,
    Word,
}

#[derive(Debug, Clone)]
struct Token {
    kind: Tok,
    text: String,
    col: usize,
}

fn tokenize(text: &str) -> Result<Vec<Token>, FilterError> {
    let chars: Vec<(usize, char)> = text.chars().enumerate().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let (col, c) = (chars[i].0 + 1, chars[i].1);
        let single = |kind, s: &str| Token {
            kind,
            text: s.to_string(),
            col,
        };
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                out.push(single(Tok::Open, "("));
                i += 1;
            }
            ')' => {
                out.push(single(Tok::Close, ")"));
                i += 1;
            }
            '!' if chars.get(i + 1).map(|x| x.1) != Some('=') => {
                out.push(single(Tok::Not, "!"));
                i += 1;
            }
            ',' | '|' => {
                out.push(single(Tok::Or, ","));
                i += 1;
                if c == '|' && chars.get(i).map(|x| x.1) == Some('|') {
                    i += 1;
                }
            }
            '&' => {
                out.push(single(Tok::And, "&"));
                i += 1;
                if chars.get(i).map(|x| x.1) == Some('&') {
                    i += 1;
                }
            }
            _ => {
                let mut word = String::new();
                let mut quote: Option<(char, usize)> = None;
                while i < chars.len() {
                    let ch = chars[i].1;
                    match quote {
                        Some((q, _)) if ch == q => quote = None,
                        Some(_) => word.push(ch),
                        None if ch == '"' || ch == '\'' => quote = Some((ch, chars[i].0 + 1)),
                        None if ch.is_whitespace() || "(),|&".contains(ch) => break,
                        None => word.push(ch),
                    }
                    i += 1;
                }
                if let Some((_, qcol)) = quote {
                    return Err(err(text, qcol, "unclosed quote"));
                }
                let kind = match word.as_str() {
                    "and" | "AND" => Tok::And,
                    "or" | "OR" => Tok::Or,
                    "not" | "NOT" => Tok::Not,
                    _ => Tok::Word,
                };
                out.push(Token {
                    kind,
                    text: word,
                    col,
                });
            }
        }
    }
    Ok(out)
}

struct FilterParser<'a> {
    text: &'a str,
    tokens: Vec<Token>,
    at: usize,
}

impl FilterParser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn end_col(&self) -> usize {
        self.text.chars().count() + 1
    }

    fn or(&mut self) -> Result<Expr, FilterError> {
        let mut left = self.and()?;
        while self.peek().is_some_and(|t| t.kind == Tok::Or) {
            self.at += 1;
            let right = self.and()?;
            left = Expr::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, FilterError> {
        let mut left = self.unary()?;
        loop {
            match self.peek().map(|t| t.kind.clone()) {
                Some(Tok::And) => self.at += 1,
                Some(Tok::Word | Tok::Not | Tok::Open) => {}
                _ => return Ok(left),
            }
            let right = self.unary()?;
            left = Expr::And(Box::new(left), Box::new(right));
        }
    }

    fn unary(&mut self) -> Result<Expr, FilterError> {
        let Some(t) = self.peek().cloned() else {
            return Err(err(self.text, self.end_col(), "expected a term after this"));
        };
        self.at += 1;
        match t.kind {
            Tok::Not => Ok(Expr::Not(Box::new(self.unary()?))),
            Tok::Open => {
                let e = self.or()?;
                match self.peek() {
                    Some(c) if c.kind == Tok::Close => {
                        self.at += 1;
                        Ok(e)
                    }
                    _ => Err(err(self.text, t.col, "unclosed `(`")),
                }
            }
            Tok::Word => self.term(&t),
            _ => Err(err(self.text, t.col, format!("unexpected `{}`", t.text))),
        }
    }

    fn term(&self, t: &Token) -> Result<Expr, FilterError> {
        let w = t.text.as_str();
        if w == "all" || w == "*" {
            return Ok(Expr::All);
        }
        let glob = |v: &str, col_offset: usize| -> Result<Pattern, FilterError> {
            if v.is_empty() {
                return Err(err(self.text, t.col + col_offset, "missing value"));
            }
            Glob::new(v)
                .map(|g| Pattern(g.compile_matcher()))
                .map_err(|e| {
                    err(
                        self.text,
                        t.col + col_offset,
                        format!("bad pattern `{v}`: {}", e.kind()),
                    )
                })
        };
        // attr.k=v, attr.k!=v, k=v
        if let Some(eq) = w.find('=') {
            let (mut key, negated) = match w[..eq].strip_suffix('!') {
                Some(k) => (k, true),
                None => (&w[..eq], false),
            };
            key = key.strip_prefix("attr.").unwrap_or(key);
            if key.is_empty() {
                return Err(err(self.text, t.col, "missing attribute name before `=`"));
            }
            let value = &w[eq + 1..];
            return Ok(Expr::Attr(key.to_string(), glob(value, eq + 1)?, !negated));
        }
        if let Some((key, value)) = w.split_once(':') {
            let field = match key {
                "group" | "groups" => Field::Group,
                "tag" | "tags" => Field::Tag,
                "name" => Field::Name,
                "host" => Field::Host,
                "transport" => Field::Transport,
                "user" => Field::User,
                other => {
                    return Err(err(
                        self.text,
                        t.col,
                        format!(
                            "unknown field `{other}` (expected group, tag, name, host, transport, user, or attr.NAME=VALUE)"
                        ),
                    ));
                }
            };
            return Ok(Expr::Term(field, glob(value, key.len() + 1)?));
        }
        Ok(Expr::Term(Field::Name, glob(w, 0)?))
    }
}

#[cfg(test)]
mod tests;
