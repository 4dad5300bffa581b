//! Splitting a rule's option text (`msg:"…"; content:"a\;b"; nocase;`)
//! into keyword/value pairs.

/// One `keyword[:value]` of a rule, value trimmed and still escaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawOption<'a> {
    pub keyword: &'a str,
    pub value: Option<&'a str>,
}

/// Splits the text between the parentheses of a rule on the semicolons not
/// escaped with `\`. As in Suricata, quotes do not protect a semicolon
/// (rules escape it or write `|3b|`), so a quote inside a value, as in
/// `pcre:"/^["']?post/i"`, needs no escape either.
pub fn split(text: &str) -> Result<Vec<RawOption<'_>>, String> {
    let mut options = Vec::new();
    let (mut start, mut escaped) = (0, false);
    for (i, c) in text.bytes().enumerate() {
        if escaped {
            escaped = false;
        } else if c == b'\\' {
            escaped = true;
        } else if c == b';' {
            if let Some(option) = one(&text[start..i])? {
                options.push(option);
            }
            start = i + 1;
        }
    }
    if !text[start..].trim().is_empty() {
        return Err(format!(
            "option `{}` is not ended by `;`",
            text[start..].trim()
        ));
    }
    Ok(options)
}

fn one(part: &str) -> Result<Option<RawOption<'_>>, String> {
    let part = part.trim();
    if part.is_empty() {
        return Ok(None);
    }
    let (keyword, value) = match part.split_once(':') {
        Some((k, v)) => (k.trim(), Some(v.trim())),
        None => (part, None),
    };
    if keyword.is_empty()
        || !keyword
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
    {
        return Err("an option without a keyword".into());
    }
    Ok(Some(RawOption { keyword, value }))
}

/// The text of a quoted value with `\"`, `\;`, `\\` and `\:` unescaped;
/// a value without quotes as it is.
pub fn unquote(value: &str) -> Result<String, String> {
    let value = value.trim();
    let inner = match value.strip_prefix('"') {
        Some(rest) => rest
            .strip_suffix('"')
            .ok_or_else(|| "unterminated quoted value".to_owned())?,
        None => value,
    };
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some(next) => out.push(next),
                None => return Err("value ends in a lone `\\`".into()),
            }
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

/// A quoted `pcre` value: only `\;` and `\"` are the rule's escapes; every
/// other backslash belongs to the regular expression.
pub fn unquote_pcre(value: &str) -> Result<String, String> {
    let value = value.trim();
    let inner = value
        .strip_prefix('"')
        .and_then(|rest| rest.strip_suffix('"'))
        .ok_or_else(|| "pcre must be quoted".to_owned())?;
    Ok(inner.replace("\\;", ";").replace("\\\"", "\""))
}

/// A `content` string: text with `|41 42|` hex runs, to bytes.
pub fn content_bytes(text: &str) -> Result<Vec<u8>, String> {
    if text.matches('|').count() % 2 == 1 {
        return Err("unterminated |hex| run in content".into());
    }
    let mut out = Vec::with_capacity(text.len());
    // `split` alternates text and hex runs, starting with text.
    for (i, part) in text.split('|').enumerate() {
        if i % 2 == 0 {
            out.extend_from_slice(part.as_bytes());
            continue;
        }
        let digits: Vec<u8> = part.bytes().filter(|c| !c.is_ascii_whitespace()).collect();
        if digits.len() % 2 == 1 {
            return Err("odd number of hex digits in content".into());
        }
        for pair in digits.chunks_exact(2) {
            let byte = std::str::from_utf8(pair)
                .ok()
                .and_then(|p| u8::from_str_radix(p, 16).ok())
                .ok_or_else(|| "a non-hex byte in a |hex| run of content".to_owned())?;
            out.push(byte);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_split_on_unquoted_unescaped_semicolons() {
        let options =
            split(r#"msg:"a\; b"; content:"x\;y"; pcre:"/^["']?p/i"; nocase; sid:1;"#).unwrap();
        let keywords: Vec<_> = options.iter().map(|o| o.keyword).collect();
        assert_eq!(keywords, ["msg", "content", "pcre", "nocase", "sid"]);
        assert_eq!(unquote(options[0].value.unwrap()).unwrap(), "a; b");
        assert_eq!(unquote(options[1].value.unwrap()).unwrap(), "x;y");
        assert_eq!(unquote(options[2].value.unwrap()).unwrap(), "/^[\"']?p/i");
        assert_eq!(options[3].value, None);
        assert!(split("sid:1; rev:2").is_err());
    }

    #[test]
    fn content_hex_runs_become_bytes() {
        assert_eq!(content_bytes("|07|version").unwrap(), b"\x07version");
        assert_eq!(content_bytes("a|00 FC|b|0d0a|").unwrap(), b"a\x00\xfcb\r\n");
        assert!(content_bytes("|0").is_err());
        assert!(content_bytes("|zz|").is_err());
        assert_eq!(unquote_pcre(r#""/\.php\;$/U""#).unwrap(), r"/\.php;$/U");
    }
}
