//! Building a `Cookie` request header (RFC 6265 §4.2.1) from name/value pairs.
//!
//! There is deliberately no cookie jar: a WebSocket client sends whatever cookies
//! the application hands it, and this only makes sure they cannot break the header.

use crate::Error;

/// Joins cookies into a `Cookie` header value: `a=1; b=2`.
///
/// Names must be RFC 6265 tokens (no separators such as `;`, `=`, spaces, and no
/// control characters). Values must be cookie-octets, optionally wrapped in one
/// pair of double quotes: no spaces, `"`, `,`, `;`, `\` or control characters.
/// Returns `Ok(None)` when there are no cookies, since an empty `Cookie` header
/// must not be sent.
pub fn cookie_header<'a, I>(cookies: I) -> Result<Option<String>, Error>
where
    I: IntoIterator<Item = (&'a str, &'a str)>,
{
    let mut out = String::new();
    for (name, value) in cookies {
        validate(name, value)?;
        if !out.is_empty() {
            out.push_str("; ");
        }
        out.push_str(name);
        out.push('=');
        out.push_str(value);
    }
    Ok((!out.is_empty()).then_some(out))
}

fn validate(name: &str, value: &str) -> Result<(), Error> {
    let fail = |reason| {
        Err(Error::InvalidCookie {
            name: name.to_owned(),
            reason,
        })
    };
    if name.is_empty() {
        return fail("empty name");
    }
    if !name.bytes().all(is_token_char) {
        return fail("name is not an HTTP token (RFC 6265 §4.1.1)");
    }
    let inner = match value.strip_prefix('"') {
        Some(rest) => match rest.strip_suffix('"') {
            Some(inner) => inner,
            None => return fail("unbalanced double quote in value"),
        },
        None => value,
    };
    if !inner.bytes().all(is_cookie_octet) {
        return fail("value has a character outside cookie-octet (RFC 6265 §4.1.1)");
    }
    Ok(())
}

fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// `%x21 / %x23-2B / %x2D-3A / %x3C-5B / %x5D-7E`.
fn is_cookie_octet(b: u8) -> bool {
    matches!(b, 0x21 | 0x23..=0x2B | 0x2D..=0x3A | 0x3C..=0x5B | 0x5D..=0x7E)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_pairs() {
        assert_eq!(
            cookie_header([("session", "abc123"), ("theme", "\"dark\"")]).unwrap(),
            Some("session=abc123; theme=\"dark\"".to_owned())
        );
        assert_eq!(cookie_header([("a", "")]).unwrap(), Some("a=".to_owned()));
        assert_eq!(cookie_header([]).unwrap(), None);
    }

    #[test]
    fn rejects_bad_names() {
        for name in [
            "",
            "a;b",
            "a=b",
            "a b",
            "a\r\nSet-Cookie: x",
            "a\"",
            "é",
            "a,b",
        ] {
            let err = cookie_header([(name, "v")]).unwrap_err();
            assert!(matches!(err, Error::InvalidCookie { .. }), "{name:?}");
        }
    }

    #[test]
    fn rejects_bad_values() {
        for value in [
            "a;b", "a b", "a,b", "a\\b", "\"a", "a\"b", "\r\n", "é", "\"a\"b\"",
        ] {
            assert!(cookie_header([("n", value)]).is_err(), "{value:?}");
        }
    }

    #[test]
    fn error_display_escapes_the_name() {
        let err = cookie_header([("a\r\nb", "v")]).unwrap_err();
        let shown = err.to_string();
        assert!(!shown.contains('\r') && shown.contains("\\r\\n"), "{shown}");
    }
}
