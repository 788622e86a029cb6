//! `Sec-WebSocket-Extensions` lists (RFC 6455 §9.1, RFC 7692 §5).
//!
//! ```text
//! extension-list  = 1#extension
//! extension       = extension-token *( ";" extension-param )
//! extension-token = token
//! extension-param = token [ "=" ( token / quoted-string ) ]
//! ```
//!
//! A quoted value, once unescaped, must itself be a token (RFC 6455 §9.1). Optional
//! whitespace is accepted around `,`, `;` and `=`, and empty list elements are skipped
//! (RFC 9110 §5.6.1).

use core::fmt;

use super::headers::{GetAll, Headers};
use super::is_tchar;
use crate::error::Error;

const FIELD: &str = "Sec-WebSocket-Extensions";

/// The extensions of every `Sec-WebSocket-Extensions` field, in order.
///
/// Each item is one extension with its parameters, or
/// [`Error::InvalidHeader`]`("Sec-WebSocket-Extensions")` at the first syntax error;
/// after an error the iterator ends, since the rest of the list cannot be delimited
/// reliably. Collecting into `Result` therefore validates the whole list:
///
/// ```
/// use sansock::handshake::ExtensionOffers;
/// let list = "permessage-deflate; client_max_window_bits, x-foo; a=\"1\"";
/// let mut names = [""; 2];
/// for (slot, ext) in names.iter_mut().zip(ExtensionOffers::from_value(list)) {
///     *slot = ext.unwrap().name;
/// }
/// assert_eq!(names, ["permessage-deflate", "x-foo"]);
/// assert!(ExtensionOffers::from_value("a; b=\"c d\"").any(|e| e.is_err()));
/// ```
///
/// What an extension's parameters mean (duplicates, allowed values) is up to the
/// extension's own negotiation; this only checks the shared grammar.
#[derive(Debug, Clone)]
pub struct ExtensionOffers<'b> {
    fields: Option<GetAll<'b, 'static>>,
    /// The part of the current field not yet parsed; `Err` when that field was not UTF-8.
    rest: Result<&'b str, ()>,
    failed: bool,
}

impl<'b> ExtensionOffers<'b> {
    /// The extensions listed in every `Sec-WebSocket-Extensions` field of `headers`.
    pub fn new(headers: &Headers<'b>) -> Self {
        ExtensionOffers {
            fields: Some(headers.get_all(FIELD)),
            rest: Ok(""),
            failed: false,
        }
    }

    /// The extensions listed in one header value, e.g. one the caller wants to send.
    pub fn from_value(value: &'b str) -> Self {
        ExtensionOffers {
            fields: None,
            rest: Ok(value),
            failed: false,
        }
    }

    /// Checks the syntax of the whole list.
    pub fn validate(self) -> Result<(), Error> {
        for offer in self {
            offer?;
        }
        Ok(())
    }
}

impl<'b> Iterator for ExtensionOffers<'b> {
    type Item = Result<ExtensionOffer<'b>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        loop {
            let Ok(rest) = self.rest else {
                self.failed = true;
                return Some(Err(Error::InvalidHeader(FIELD)));
            };
            // Empty list elements are legal; skip them before looking for a name.
            let rest = rest.trim_start_matches([' ', '\t', ',']);
            if rest.is_empty() {
                let field = self.fields.as_mut()?.next()?;
                self.rest = core::str::from_utf8(field).map_err(|_| ());
                continue;
            }
            return Some(match parse_extension(rest) {
                Ok((offer, after)) => {
                    self.rest = Ok(after);
                    Ok(offer)
                }
                Err(e) => {
                    self.failed = true;
                    Err(e)
                }
            });
        }
    }
}

/// Whether `value` is a well-formed, non-empty extension list (`1#extension`): the form
/// every list this crate writes must have. Control characters cannot pass the grammar,
/// so this also rules out header injection.
pub(crate) fn is_extension_list(value: &str) -> bool {
    let mut any = false;
    for offer in ExtensionOffers::from_value(value) {
        if offer.is_err() {
            return false;
        }
        any = true;
    }
    any
}

/// Parses one extension at the start of `s`; returns it and what follows its `,`.
fn parse_extension(s: &str) -> Result<(ExtensionOffer<'_>, &str), Error> {
    let bad = Error::InvalidHeader(FIELD);
    let name_len = token_len(s);
    if name_len == 0 {
        return Err(bad);
    }
    let mut params = ExtensionParams {
        rest: s.get(name_len..).ok_or(bad.clone())?,
    };
    while params.parse_next()?.is_some() {}
    let after = params.rest;
    let text_len = s.len().saturating_sub(after.len());
    let text = s.get(..text_len).ok_or(bad.clone())?;
    let after = match after.strip_prefix(',') {
        Some(after) => after,
        None if after.is_empty() => after,
        // parse_next stops only at the end, at `,`, or with an error.
        None => return Err(bad),
    };
    let text = text.trim_end_matches([' ', '\t']);
    let offer = ExtensionOffer {
        name: text.get(..name_len).ok_or(bad.clone())?,
        params: text.get(name_len..).ok_or(bad)?,
    };
    Ok((offer, after))
}

/// One extension of a `Sec-WebSocket-Extensions` list, with its parameters.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ExtensionOffer<'b> {
    /// The extension token, e.g. `permessage-deflate`.
    pub name: &'b str,
    /// The `; param[=value]…` part as written, already validated.
    params: &'b str,
}

impl<'b> ExtensionOffer<'b> {
    /// The parameters in order, as `(name, value)`.
    pub fn params(&self) -> ExtensionParams<'b> {
        ExtensionParams { rest: self.params }
    }

    /// The first parameter called `name` (ASCII case-insensitive): `None` if absent,
    /// `Some(None)` if present without a value.
    pub fn param(&self, name: &str) -> Option<Option<ParamValue<'b>>> {
        self.params()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// Whether a parameter called `name` appears more than once (RFC 7692 §7 asks to
    /// decline such offers).
    pub fn has_duplicate_params(&self) -> bool {
        let mut outer = self.params();
        while let Some((name, _)) = outer.next() {
            if outer.clone().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
                return true;
            }
        }
        false
    }

    /// The parameters as written, starting at the first `;` (empty without parameters).
    pub fn raw_params(&self) -> &'b str {
        self.params.trim_start_matches([' ', '\t'])
    }
}

impl fmt::Debug for ExtensionOffer<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExtensionOffer")
            .field("name", &self.name)
            .field("params", &self.raw_params())
            .finish()
    }
}

/// The parameters of one [`ExtensionOffer`], as `(name, value)`.
#[derive(Debug, Clone)]
pub struct ExtensionParams<'b> {
    rest: &'b str,
}

impl<'b> ExtensionParams<'b> {
    /// Parses the `; name[=value]` at the start of `rest`. `Ok(None)` at the end of the
    /// extension (end of input or a `,`, which is left in `rest`).
    #[allow(clippy::type_complexity)]
    fn parse_next(&mut self) -> Result<Option<(&'b str, Option<ParamValue<'b>>)>, Error> {
        let bad = Error::InvalidHeader(FIELD);
        let s = self.rest.trim_start_matches([' ', '\t']);
        let Some(s) = s.strip_prefix(';') else {
            self.rest = s;
            return if s.is_empty() || s.starts_with(',') {
                Ok(None)
            } else {
                Err(bad)
            };
        };
        let s = s.trim_start_matches([' ', '\t']);
        let name_len = token_len(s);
        if name_len == 0 {
            return Err(bad);
        }
        let name = s.get(..name_len).ok_or(bad.clone())?;
        let after_name = s.get(name_len..).ok_or(bad.clone())?;
        let Some(v) = after_name.trim_start_matches([' ', '\t']).strip_prefix('=') else {
            self.rest = after_name;
            return Ok(Some((name, None)));
        };
        let v = v.trim_start_matches([' ', '\t']);
        let (value, len) = if let Some(q) = v.strip_prefix('"') {
            let inner_len = quoted_len(q).ok_or(bad.clone())?;
            let text = q.get(..inner_len).ok_or(bad.clone())?;
            (
                ParamValue { text, quoted: true },
                inner_len + 2, // both quotes
            )
        } else {
            let len = token_len(v);
            if len == 0 {
                return Err(bad);
            }
            let text = v.get(..len).ok_or(bad.clone())?;
            (
                ParamValue {
                    text,
                    quoted: false,
                },
                len,
            )
        };
        self.rest = v.get(len..).ok_or(bad)?;
        Ok(Some((name, Some(value))))
    }
}

impl<'b> Iterator for ExtensionParams<'b> {
    type Item = (&'b str, Option<ParamValue<'b>>);

    fn next(&mut self) -> Option<Self::Item> {
        // Offers are validated before they are handed out, so an error cannot occur here;
        // ending the iteration keeps a hand-made offer from looping or panicking.
        self.parse_next().ok().flatten()
    }
}

/// The length of the token at the start of `s`.
fn token_len(s: &str) -> usize {
    s.bytes().take_while(|&b| is_tchar(b)).count()
}

/// The length of a quoted-string's content (`q` starts after the opening quote), if it
/// is closed and unescapes to a non-empty token, as RFC 6455 §9.1 requires.
fn quoted_len(q: &str) -> Option<usize> {
    let bytes = q.as_bytes();
    let mut i = 0;
    let mut chars = 0;
    loop {
        match *bytes.get(i)? {
            b'"' => return (chars > 0).then_some(i),
            b'\\' if bytes.get(i + 1).copied().is_some_and(is_tchar) => i += 2,
            b if is_tchar(b) => i += 1,
            _ => return None,
        }
        chars += 1;
    }
}

/// The value of an extension parameter: a token, or a quoted-string that unescapes to one.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ParamValue<'b> {
    /// The text between the quotes (still escaped), or the token.
    text: &'b str,
    quoted: bool,
}

impl<'b> ParamValue<'b> {
    /// Whether the value was written as a quoted-string.
    pub fn is_quoted(&self) -> bool {
        self.quoted
    }

    /// The value without quotes, when it needs no unescaping (always, in practice).
    /// `None` only for a quoted value containing a backslash escape; use
    /// [`ParamValue::bytes`] then.
    pub fn as_str(&self) -> Option<&'b str> {
        (!self.text.contains('\\')).then_some(self.text)
    }

    /// The unescaped value, byte by byte.
    pub fn bytes(&self) -> impl Iterator<Item = u8> + 'b {
        let mut escaped = false;
        self.text.bytes().filter(move |&b| {
            let keep = escaped || b != b'\\';
            escaped = !escaped && b == b'\\';
            keep
        })
    }

    /// Whether the unescaped value equals `s`, ignoring ASCII case.
    pub fn eq_ignore_ascii_case(&self, s: &str) -> bool {
        self.bytes()
            .map(|b| b.to_ascii_lowercase())
            .eq(s.bytes().map(|b| b.to_ascii_lowercase()))
    }

    /// The unescaped value as a decimal number: digits only, no sign, no overflow.
    pub fn parse_u32(&self) -> Option<u32> {
        let mut n: u32 = 0;
        let mut any = false;
        for b in self.bytes() {
            let digit = u32::from(b.checked_sub(b'0').filter(|d| *d < 10)?);
            n = n.checked_mul(10)?.checked_add(digit)?;
            any = true;
        }
        any.then_some(n)
    }
}

impl fmt::Debug for ParamValue<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.quoted {
            write!(f, "\"{}\"", self.text)
        } else {
            f.write_str(self.text)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offers(v: &str) -> ExtensionOffers<'_> {
        ExtensionOffers::from_value(v)
    }

    #[test]
    fn parses_rfc7692_offers() {
        let v = "permessage-deflate; client_max_window_bits; server_max_window_bits=10, \
                 permessage-deflate ;client_max_window_bits = \"15\" , x-webkit";
        let mut it = offers(v);
        let a = it.next().unwrap().unwrap();
        assert_eq!(a.name, "permessage-deflate");
        assert_eq!(
            a.raw_params(),
            "; client_max_window_bits; server_max_window_bits=10"
        );
        let mut p = a.params();
        let (n, v) = p.next().unwrap();
        assert_eq!((n, v), ("client_max_window_bits", None));
        let (n, v) = p.next().unwrap();
        assert_eq!(n, "server_max_window_bits");
        assert_eq!(v.unwrap().parse_u32(), Some(10));
        assert!(!v.unwrap().is_quoted());
        assert!(p.next().is_none());

        let b = it.next().unwrap().unwrap();
        let v = b.param("CLIENT_MAX_WINDOW_BITS").unwrap().unwrap();
        assert!(v.is_quoted());
        assert_eq!(v.as_str(), Some("15"));
        assert_eq!(v.parse_u32(), Some(15));
        assert_eq!(b.param("server_max_window_bits"), None);

        let c = it.next().unwrap().unwrap();
        assert_eq!(c.name, "x-webkit");
        assert_eq!(c.params().count(), 0);
        assert!(it.next().is_none());
    }

    #[test]
    fn empty_elements_and_fields() {
        assert!(offers("").next().is_none());
        assert!(
            offers(" , ,a,, b ,")
                .map(|o| o.unwrap().name)
                .eq(["a", "b"])
        );
        let h = Headers::new(
            b"Sec-WebSocket-Extensions: a\r\nX: y\r\nsec-websocket-extensions: b; c=d\r\n",
        );
        assert!(
            ExtensionOffers::new(&h)
                .map(|o| o.unwrap().name)
                .eq(["a", "b"])
        );
    }

    #[test]
    fn escapes() {
        let o = offers("a; p=\"\\1\\5\"").next().unwrap().unwrap();
        let v = o.param("p").unwrap().unwrap();
        assert_eq!(v.as_str(), None);
        assert!(v.bytes().eq(*b"15"));
        assert_eq!(v.parse_u32(), Some(15));
        assert!(v.eq_ignore_ascii_case("15"));
    }

    #[test]
    fn rejects_bad_syntax() {
        for bad in [
            ";a",
            "a;",
            "a; =1",
            "a; b=",
            "a; b=\"\"",
            "a; b=\"c d\"",
            "a; b=\"c,d\"",
            "a; b=\"unterminated",
            "a; b=c d",
            "a b",
            "a; b==c",
            "a;; b",
            "a; b=\"\\\"\"",
            "a, é",
            "a; b=c\"",
        ] {
            let res = offers(bad).validate();
            assert_eq!(res, Err(Error::InvalidHeader(FIELD)), "{bad:?}");
        }
        let mut it = offers("ok, ;bad, later");
        assert!(it.next().unwrap().is_ok());
        assert!(it.next().unwrap().is_err());
        assert!(it.next().is_none());
    }

    #[test]
    fn lists_we_write() {
        assert!(is_extension_list(
            "permessage-deflate; client_max_window_bits"
        ));
        assert!(!is_extension_list(""));
        assert!(!is_extension_list(" , "));
        assert!(!is_extension_list("a\r\nX-Evil: 1"));
        assert!(!is_extension_list("a\0"));
    }

    #[test]
    fn non_utf8_field_is_an_error() {
        let h = Headers::new(b"Sec-WebSocket-Extensions: a\xff\r\n");
        assert_eq!(
            ExtensionOffers::new(&h).validate(),
            Err(Error::InvalidHeader(FIELD))
        );
    }

    #[test]
    fn duplicates_and_numbers() {
        let o = offers("a; x; y=1; X=2").next().unwrap().unwrap();
        assert!(o.has_duplicate_params());
        let o = offers("a; x; y=1").next().unwrap().unwrap();
        assert!(!o.has_duplicate_params());
        let num = |s: &'static str| offers(s).next().unwrap().unwrap().param("p").unwrap();
        assert_eq!(num("a; p=4294967295").unwrap().parse_u32(), Some(u32::MAX));
        assert_eq!(num("a; p=4294967296").unwrap().parse_u32(), None);
        assert_eq!(num("a; p=1x").unwrap().parse_u32(), None);
        assert_eq!(num("a; p=+1").unwrap().parse_u32(), None);
        assert_eq!(num("a; p"), None);
    }
}
