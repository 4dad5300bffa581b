//! The part of the STIX 2.1 patterning language (§9) a flow can answer: one
//! observation, or several joined by `OR`, each a Boolean of comparisons
//! `=`, `IN` and `ISSUBSET` on the addresses, domain names, URLs and file
//! hashes a flow log carries. The result is a disjunction of conjunctions.
//! Anything else (qualifiers, `FOLLOWEDBY`, observations joined by `AND`,
//! `LIKE`, `MATCHES`, other object paths) is an error naming what, so the
//! indicator is reported as skipped rather than half-applied.

use crate::indicator::{HashKind, Indicator};

/// Alternatives; each holds when all its indicators hold.
pub type Dnf = Vec<Vec<Indicator>>;

/// Parses a pattern.
pub fn parse(pattern: &str) -> Result<Dnf, String> {
    let tokens = tokenize(pattern)?;
    let mut p = Parser { tokens, at: 0 };
    let dnf = p.observations()?;
    match p.peek() {
        None => Ok(dnf),
        Some(t) => Err(format!(
            "unsupported: {} after the observation",
            t.describe()
        )),
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Open,
    Close,
    LParen,
    RParen,
    Comma,
    Word(String),
    Str(String),
    Op(&'static str),
}

impl Token {
    fn describe(&self) -> String {
        match self {
            Self::Open => "`[`".into(),
            Self::Close => "`]`".into(),
            Self::LParen => "`(`".into(),
            Self::RParen => "`)`".into(),
            Self::Comma => "`,`".into(),
            Self::Word(w) => format!("`{w}`"),
            Self::Str(_) => "a string".into(),
            Self::Op(op) => format!("`{op}`"),
        }
    }
}

fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some((_, c)) = chars.next() {
        match c {
            c if c.is_whitespace() => {}
            '[' => tokens.push(Token::Open),
            ']' => tokens.push(Token::Close),
            '(' => tokens.push(Token::LParen),
            ')' => tokens.push(Token::RParen),
            ',' => tokens.push(Token::Comma),
            '\'' => tokens.push(Token::Str(string(&mut chars)?)),
            '=' => tokens.push(Token::Op("=")),
            '!' | '<' | '>' => {
                let op = match (c, chars.peek().map(|p| p.1)) {
                    ('!', Some('=')) => "!=",
                    ('<', Some('=')) => "<=",
                    ('>', Some('=')) => ">=",
                    ('<', _) => "<",
                    ('>', _) => ">",
                    _ => return Err("`!` without `=`".into()),
                };
                if op.len() == 2 {
                    chars.next();
                }
                tokens.push(Token::Op(op));
            }
            c if c.is_ascii_alphanumeric() || c == '_' || c == '-' => {
                let mut word = String::from(c);
                while let Some(&(_, n)) = chars.peek() {
                    if n.is_ascii_alphanumeric() || "_-:.".contains(n) {
                        word.push(n);
                        chars.next();
                    } else if n == '\'' && word.ends_with('.') {
                        // A quoted path step: file:hashes.'SHA-256'
                        chars.next();
                        word.push_str(&string(&mut chars)?);
                    } else {
                        break;
                    }
                }
                // Typed literals (t'…', b'…', h'…') compare times and bytes.
                if word.len() == 1 && chars.peek().map(|p| p.1) == Some('\'') {
                    return Err(format!("unsupported: {word}'…' literal"));
                }
                tokens.push(Token::Word(word));
            }
            other => return Err(format!("unexpected character `{other}`")),
        }
    }
    Ok(tokens)
}

fn string(chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>) -> Result<String, String> {
    let mut s = String::new();
    while let Some((_, c)) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some((_, e @ ('\'' | '\\'))) => s.push(e),
                _ => return Err("a string escape other than \\' or \\\\".into()),
            },
            '\'' => return Ok(s),
            c => s.push(c),
        }
    }
    Err("a string without its closing quote".into())
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.at).cloned();
        self.at += 1;
        t
    }

    fn keyword(&self) -> Option<String> {
        match self.peek() {
            Some(Token::Word(w)) => Some(w.to_ascii_uppercase()),
            _ => None,
        }
    }

    fn expect(&mut self, want: &Token) -> Result<(), String> {
        match self.next() {
            Some(t) if t == *want => Ok(()),
            Some(t) => Err(format!(
                "expected {}, found {}",
                want.describe(),
                t.describe()
            )),
            None => Err(format!("expected {}, found the end", want.describe())),
        }
    }

    /// observation (OR observation)*
    fn observations(&mut self) -> Result<Dnf, String> {
        let mut dnf = self.observation()?;
        loop {
            match self.keyword().as_deref() {
                Some("OR") => {
                    self.next();
                    dnf.extend(self.observation()?);
                }
                Some(k @ ("AND" | "FOLLOWEDBY")) => {
                    return Err(format!(
                        "unsupported: observations joined by {k} (one flow is one observation)"
                    ));
                }
                Some(k @ ("WITHIN" | "REPEATS" | "START")) => {
                    return Err(format!("unsupported: qualifier {k}"));
                }
                _ => return Ok(dnf),
            }
        }
    }

    fn observation(&mut self) -> Result<Dnf, String> {
        if self.peek() == Some(&Token::LParen) {
            self.next();
            let dnf = self.observations()?;
            self.expect(&Token::RParen)?;
            return Ok(dnf);
        }
        self.expect(&Token::Open)?;
        let dnf = self.or()?;
        self.expect(&Token::Close)?;
        Ok(dnf)
    }

    fn or(&mut self) -> Result<Dnf, String> {
        let mut dnf = self.and()?;
        while self.keyword().as_deref() == Some("OR") {
            self.next();
            dnf.extend(self.and()?);
        }
        Ok(dnf)
    }

    fn and(&mut self) -> Result<Dnf, String> {
        let mut dnf = self.term()?;
        while self.keyword().as_deref() == Some("AND") {
            self.next();
            let right = self.term()?;
            let mut product = Vec::with_capacity(dnf.len() * right.len());
            for l in &dnf {
                for r in &right {
                    product.push(l.iter().chain(r).cloned().collect());
                }
            }
            if product.len() > 64 {
                return Err("pattern expands to more than 64 alternatives".into());
            }
            dnf = product;
        }
        Ok(dnf)
    }

    fn term(&mut self) -> Result<Dnf, String> {
        if self.peek() == Some(&Token::LParen) {
            self.next();
            let dnf = self.or()?;
            self.expect(&Token::RParen)?;
            return Ok(dnf);
        }
        let path = match self.next() {
            Some(Token::Word(path)) => path,
            Some(t) => return Err(format!("expected an object path, found {}", t.describe())),
            None => return Err("expected an object path, found the end".into()),
        };
        let op = match self.next() {
            Some(Token::Op(op)) => op.to_owned(),
            Some(Token::Word(w)) => w.to_ascii_uppercase(),
            Some(t) => return Err(format!("expected an operator, found {}", t.describe())),
            None => return Err("expected an operator, found the end".into()),
        };
        let values = match op.as_str() {
            "=" | "ISSUBSET" => vec![self.string()?],
            "IN" => {
                self.expect(&Token::LParen)?;
                let mut values = vec![self.string()?];
                while self.peek() == Some(&Token::Comma) {
                    self.next();
                    values.push(self.string()?);
                }
                self.expect(&Token::RParen)?;
                values
            }
            other => return Err(format!("unsupported: operator {other}")),
        };
        values
            .iter()
            .map(|v| comparison(&path, &op, v).map(|i| vec![i]))
            .collect()
    }

    fn string(&mut self) -> Result<String, String> {
        match self.next() {
            Some(Token::Str(s)) => Ok(s),
            Some(t) => Err(format!("expected a string, found {}", t.describe())),
            None => Err("expected a string, found the end".into()),
        }
    }
}

/// One comparison as an indicator.
fn comparison(path: &str, op: &str, value: &str) -> Result<Indicator, String> {
    let path_lower = path.to_ascii_lowercase();
    let subset = op == "ISSUBSET";
    match path_lower.as_str() {
        "ipv4-addr:value"
        | "ipv6-addr:value"
        | "network-traffic:dst_ref.value"
        | "network-traffic:src_ref.value" => {
            if subset || value.contains('/') {
                Indicator::network(value)
            } else {
                Indicator::address(value)
            }
        }
        _ if subset => Err(format!("unsupported: ISSUBSET on {path}")),
        "domain-name:value" => Indicator::domain(value),
        "url:value" => Indicator::url(value),
        _ => match path_lower.strip_prefix("file:hashes.") {
            Some("md5") => Indicator::hash(HashKind::Md5, value),
            Some("sha-1" | "sha1") => Indicator::hash(HashKind::Sha1, value),
            Some("sha-256" | "sha256") => Indicator::hash(HashKind::Sha256, value),
            Some(other) => Err(format!("unsupported: file hash {other}")),
            None => Err(format!("unsupported: object path {path}")),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(pattern: &str) -> Result<Vec<Vec<String>>, String> {
        parse(pattern).map(|dnf| {
            dnf.iter()
                .map(|c| c.iter().map(ToString::to_string).collect())
                .collect()
        })
    }

    #[test]
    fn comparisons_observations_and_booleans() {
        assert_eq!(
            shown("[ipv4-addr:value = '10.0.0.0']"),
            Ok(vec![vec!["10.0.0.0".into()]])
        );
        assert_eq!(
            shown(
                "[file:hashes.'SHA-256' = 'EF537F25C895BFA782526529A9B63D97AA631564D5D789C2B765448C8635FB6C']"
            ),
            Ok(vec![vec![
                "ef537f25c895bfa782526529a9b63d97aa631564d5d789c2b765448c8635fb6c".into()
            ]])
        );
        assert_eq!(
            shown(
                "[ipv4-addr:value ISSUBSET '198.51.100.0/24'] OR [domain-name:value = 'x.example']"
            ),
            Ok(vec![
                vec!["198.51.100.0/24".into()],
                vec!["x.example".into()]
            ])
        );
        assert_eq!(
            shown(
                "[url:value = 'http://a.example/x' OR (file:hashes.MD5 = 'd41d8cd98f00b204e9800998ecf8427e' AND domain-name:value = 'b.example')]"
            ),
            Ok(vec![
                vec!["a.example/x".into()],
                vec![
                    "d41d8cd98f00b204e9800998ecf8427e".into(),
                    "b.example".into()
                ]
            ])
        );
        assert_eq!(
            shown("[ipv6-addr:value IN ('2001:db8::1', '2001:db8::/32')]"),
            Ok(vec![
                vec!["2001:db8::1".into()],
                vec!["2001:db8::/32".into()]
            ])
        );
        assert_eq!(
            shown("[domain-name:value = 'it\\'s.example']").map(|_| ()),
            Err("`it's.example` is not a domain name".into())
        );
    }

    #[test]
    fn what_a_flow_cannot_answer_is_named() {
        let err = |p: &str| parse(p).unwrap_err();
        assert_eq!(
            err("[file:name = 'x.exe']"),
            "unsupported: object path file:name"
        );
        assert_eq!(
            err("[domain-name:value LIKE '%.example']"),
            "unsupported: operator LIKE"
        );
        assert_eq!(
            err("[ipv4-addr:value = '1.2.3.4'] AND [ipv4-addr:value = '5.6.7.8']"),
            "unsupported: observations joined by AND (one flow is one observation)"
        );
        assert_eq!(
            err("[ipv4-addr:value = '1.2.3.4'] REPEATS 5 TIMES"),
            "unsupported: qualifier REPEATS"
        );
        assert_eq!(
            err("[ipv4-addr:value = '1.2.3.4'"),
            "expected `]`, found the end"
        );
        assert_eq!(
            err("[ipv4-addr:value = '1.2.3.4]"),
            "a string without its closing quote"
        );
        assert_eq!(
            err("[x:created > t'2020-01-01T00:00:00Z']"),
            "unsupported: t'…' literal"
        );
    }
}
