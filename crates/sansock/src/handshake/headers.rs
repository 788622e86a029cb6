//! A zero-storage view over a header block, and the list iterators built on it.

use core::fmt;

/// The header fields of a parsed head, as a view over the raw bytes.
///
/// It holds only the slice between the start line and the blank line, so a parsed
/// request or response needs no array of fields once the parser is done: every lookup
/// walks the lines again. Heads are small (bounded by `max_header_bytes`), so this is
/// cheap, and it keeps the result free of any fixed capacity.
///
/// Names are compared ASCII case-insensitively (RFC 9110 §5.1). Values are the field
/// value with surrounding spaces and tabs removed; they are bytes because HTTP allows
/// obs-text in values.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Headers<'b> {
    raw: &'b [u8],
}

impl<'b> Headers<'b> {
    /// A view over `raw`, a block of `name: value` lines ending in CRLF or LF.
    ///
    /// Meant for blocks an HTTP parser has already validated (the handshake parsers
    /// build it for you). Any other input is safe too: lines without a colon, with an
    /// empty name, or whose name is not UTF-8 are skipped.
    pub const fn new(raw: &'b [u8]) -> Self {
        Headers { raw }
    }

    /// The raw header block.
    pub const fn raw(&self) -> &'b [u8] {
        self.raw
    }

    /// Every field in order, as `(name, value)`.
    pub fn iter(&self) -> HeaderIter<'b> {
        HeaderIter { rest: self.raw }
    }

    /// The number of fields.
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// Whether there are no fields.
    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }

    /// The value of the first field called `name`.
    pub fn get(&self, name: &str) -> Option<&'b [u8]> {
        self.get_all(name).next()
    }

    /// The values of every field called `name`, in order.
    pub fn get_all<'n>(&self, name: &'n str) -> GetAll<'b, 'n> {
        GetAll {
            inner: self.iter(),
            name,
        }
    }

    /// The value of the first field called `name`, if it is UTF-8.
    pub fn get_str(&self, name: &str) -> Option<&'b str> {
        self.get(name).and_then(|v| core::str::from_utf8(v).ok())
    }

    /// The elements of the comma-separated lists in every field called `name`
    /// (RFC 9110 §5.6.1), trimmed, with empty elements skipped.
    pub fn tokens<'n>(&self, name: &'n str) -> Tokens<'b, 'n> {
        Tokens {
            fields: self.get_all(name),
            current: &[],
        }
    }

    /// Whether any list element of any field called `name` equals `token`, ignoring ASCII
    /// case (`Connection: keep-alive, Upgrade` has the token `upgrade`).
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.tokens(name).any(|t| t.eq_ignore_ascii_case(token))
    }
}

impl<'b> IntoIterator for Headers<'b> {
    type Item = (&'b str, &'b [u8]);
    type IntoIter = HeaderIter<'b>;
    fn into_iter(self) -> HeaderIter<'b> {
        self.iter()
    }
}

impl<'b> IntoIterator for &Headers<'b> {
    type Item = (&'b str, &'b [u8]);
    type IntoIter = HeaderIter<'b>;
    fn into_iter(self) -> HeaderIter<'b> {
        self.iter()
    }
}

impl fmt::Debug for Headers<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.iter().map(|(n, v)| (n, Lossy(v))))
            .finish()
    }
}

/// Prints a value as text when it is UTF-8, as bytes otherwise.
struct Lossy<'b>(&'b [u8]);

impl fmt::Debug for Lossy<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match core::str::from_utf8(self.0) {
            Ok(s) => fmt::Debug::fmt(s, f),
            Err(_) => fmt::Debug::fmt(self.0, f),
        }
    }
}

/// The fields of a [`Headers`] block, in order.
#[derive(Debug, Clone)]
pub struct HeaderIter<'b> {
    rest: &'b [u8],
}

impl<'b> Iterator for HeaderIter<'b> {
    type Item = (&'b str, &'b [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        while !self.rest.is_empty() {
            let (line, rest) = match self.rest.iter().position(|&b| b == b'\n') {
                Some(i) => (
                    self.rest.get(..i).unwrap_or_default(),
                    self.rest.get(i + 1..).unwrap_or_default(),
                ),
                None => (self.rest, &[][..]),
            };
            self.rest = rest;
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let Some(colon) = line.iter().position(|&b| b == b':') else {
                continue;
            };
            let (name, value) = (
                line.get(..colon).unwrap_or_default(),
                line.get(colon + 1..).unwrap_or_default(),
            );
            match core::str::from_utf8(name) {
                Ok(name) if !name.is_empty() => return Some((name, trim_ows(value))),
                _ => continue,
            }
        }
        None
    }
}

/// The values of every field with one name; see [`Headers::get_all`].
#[derive(Debug, Clone)]
pub struct GetAll<'b, 'n> {
    inner: HeaderIter<'b>,
    name: &'n str,
}

impl<'b> Iterator for GetAll<'b, '_> {
    type Item = &'b [u8];

    fn next(&mut self) -> Option<&'b [u8]> {
        let name = self.name;
        self.inner
            .by_ref()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }
}

/// The list elements of every field with one name; see [`Headers::tokens`].
///
/// Elements that are not UTF-8 are skipped: every token the handshake looks for is ASCII.
#[derive(Debug, Clone)]
pub struct Tokens<'b, 'n> {
    fields: GetAll<'b, 'n>,
    current: &'b [u8],
}

impl<'b> Iterator for Tokens<'b, '_> {
    type Item = &'b str;

    fn next(&mut self) -> Option<&'b str> {
        loop {
            if self.current.is_empty() {
                self.current = self.fields.next()?;
                continue;
            }
            let (element, rest) = match self.current.iter().position(|&b| b == b',') {
                Some(i) => (
                    self.current.get(..i).unwrap_or_default(),
                    self.current.get(i + 1..).unwrap_or_default(),
                ),
                None => (self.current, &[][..]),
            };
            self.current = rest;
            match core::str::from_utf8(trim_ows(element)) {
                Ok(t) if !t.is_empty() => return Some(t),
                _ => continue,
            }
        }
    }
}

/// The subprotocols of every `Sec-WebSocket-Protocol` field, in order (RFC 6455 §4.1).
#[derive(Debug, Clone)]
pub struct Subprotocols<'b>(Tokens<'b, 'static>);

impl<'b> Subprotocols<'b> {
    /// The subprotocols listed in `headers`.
    pub fn new(headers: &Headers<'b>) -> Self {
        Subprotocols(headers.tokens("Sec-WebSocket-Protocol"))
    }
}

impl<'b> Iterator for Subprotocols<'b> {
    type Item = &'b str;
    fn next(&mut self) -> Option<&'b str> {
        self.0.next()
    }
}

/// The `(name, value)` pairs of every `Cookie` field (RFC 6265 §5.4), in order.
///
/// Pairs are split at `;` and at the first `=`, and trimmed; values are returned as
/// sent, including any surrounding double quotes. Pairs without `=`, with an empty
/// name, or that are not UTF-8 are skipped.
#[derive(Debug, Clone)]
pub struct Cookies<'b> {
    fields: GetAll<'b, 'static>,
    current: &'b [u8],
}

impl<'b> Cookies<'b> {
    /// The cookies sent in `headers`.
    pub fn new(headers: &Headers<'b>) -> Self {
        Cookies {
            fields: headers.get_all("Cookie"),
            current: &[],
        }
    }
}

impl<'b> Iterator for Cookies<'b> {
    type Item = (&'b str, &'b str);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.current.is_empty() {
                self.current = self.fields.next()?;
                continue;
            }
            let (pair, rest) = match self.current.iter().position(|&b| b == b';') {
                Some(i) => (
                    self.current.get(..i).unwrap_or_default(),
                    self.current.get(i + 1..).unwrap_or_default(),
                ),
                None => (self.current, &[][..]),
            };
            self.current = rest;
            let Ok(pair) = core::str::from_utf8(trim_ows(pair)) else {
                continue;
            };
            if let Some((name, value)) = pair.split_once('=') {
                let name = name.trim_end_matches([' ', '\t']);
                if !name.is_empty() {
                    return Some((name, value.trim_start_matches([' ', '\t'])));
                }
            }
        }
    }
}

/// Removes optional whitespace (spaces and tabs, RFC 9110 §5.6.3) on both sides.
pub(crate) fn trim_ows(mut v: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = v {
        v = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = v {
        v = rest;
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    const BLOCK: &[u8] = b"Host: example.com\r\n\
        Connection:  keep-alive, Upgrade \r\n\
        X-Multi: a\r\n\
        x-multi:\tb, ,c\r\n\
        Empty:\r\n\
        Cookie: a=1; b = two ;c=\"q\"\r\n\
        Cookie: flag; d=\r\n\
        Obs: caf\xc3\xa9 \xff\r\n";

    #[test]
    fn iterates_and_trims() {
        let h = Headers::new(BLOCK);
        let all: [(&str, &[u8]); 8] = [
            ("Host", b"example.com"),
            ("Connection", b"keep-alive, Upgrade"),
            ("X-Multi", b"a"),
            ("x-multi", b"b, ,c"),
            ("Empty", b""),
            ("Cookie", b"a=1; b = two ;c=\"q\""),
            ("Cookie", b"flag; d="),
            ("Obs", b"caf\xc3\xa9 \xff"),
        ];
        assert!(h.iter().eq(all.iter().copied()));
        assert_eq!(h.len(), 8);
        assert!(!h.is_empty());
        assert!(Headers::default().is_empty());
    }

    #[test]
    fn lookups() {
        let h = Headers::new(BLOCK);
        assert_eq!(h.get("HOST"), Some(&b"example.com"[..]));
        assert_eq!(h.get_str("host"), Some("example.com"));
        assert_eq!(h.get_str("Obs"), None);
        assert_eq!(h.get("missing"), None);
        assert!(h.get_all("X-MULTI").eq([&b"a"[..], b"b, ,c"]));
        assert!(h.tokens("x-multi").eq(["a", "b", "c"]));
        assert!(h.has_token("connection", "upgrade"));
        assert!(h.has_token("Connection", "KEEP-ALIVE"));
        assert!(!h.has_token("Connection", "close"));
        assert!(!h.has_token("Host", "example"));
    }

    #[test]
    fn cookies() {
        let h = Headers::new(BLOCK);
        assert!(Cookies::new(&h).eq([("a", "1"), ("b", "two"), ("c", "\"q\""), ("d", "")]));
    }

    #[test]
    fn tolerates_anything() {
        let h = Headers::new(b"no colon\n:empty name\nok: 1\n\xff: bad name\nlast:2");
        assert!(h.iter().eq([("ok", &b"1"[..]), ("last", b"2")]));
    }

    #[test]
    fn trims_only_ows() {
        assert_eq!(trim_ows(b" \t a b \t"), b"a b");
        assert_eq!(trim_ows(b"   "), b"");
        assert_eq!(trim_ows(b"\x0ba"), b"\x0ba");
    }
}
