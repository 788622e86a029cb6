//! HTTP authentication for the opening handshake and for proxies: Basic
//! (RFC 7617) and Digest (RFC 7616, which keeps RFC 2617 compatibility), each with
//! a client side (build the header value) and a server side (check what a client
//! sent).
//!
//! Nothing here touches the network. The Digest server side checks the response
//! arithmetic only; keeping track of which nonces were issued, their age, the
//! nonce count and that `uri` matches the request target stays with the server,
//! which owns that state.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use md5::Md5;
use sha2::{Digest as _, Sha256, Sha512_256};

use crate::Error;

// ---------------------------------------------------------------------------
// Credentials and Basic
// ---------------------------------------------------------------------------

/// A user name and password, as found in a URL's userinfo or given by the caller.
///
/// `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    username: String,
    password: String,
}

impl Credentials {
    /// Checks and wraps a user name and password.
    ///
    /// Fails if either contains a control character (RFC 7617 §2 forbids them and
    /// they could split a header line) or the user name contains a colon (Basic
    /// joins the two with a colon, so it could not be told apart).
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Result<Self, Error> {
        let username = username.into();
        let password = password.into();
        if username.contains(':') {
            return Err(Error::InvalidCredentials("user name contains a colon"));
        }
        if username.chars().any(char::is_control) || password.chars().any(char::is_control) {
            return Err(Error::InvalidCredentials(
                "control character in user name or password",
            ));
        }
        Ok(Credentials { username, password })
    }

    /// The user name.
    pub fn username(&self) -> &str {
        &self.username
    }

    /// The password.
    pub fn password(&self) -> &str {
        &self.password
    }

    /// The `Authorization` (or `Proxy-Authorization`) value for HTTP Basic:
    /// `Basic base64(user:password)` with the UTF-8 bytes of both (RFC 7617 §2.1).
    pub fn basic_header_value(&self) -> String {
        let joined = format!("{}:{}", self.username, self.password);
        format!("Basic {}", BASE64.encode(joined.as_bytes()))
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Decodes a Basic `Authorization` header value sent by a client.
///
/// The scheme name is matched case-insensitively (RFC 7235 §2.1). The decoded
/// user-pass must be UTF-8 and is split at its first colon.
pub fn parse_basic(header_value: &str) -> Result<Credentials, Error> {
    let (scheme, rest) = split_scheme(header_value)
        .ok_or(Error::MalformedCredentials("missing authentication scheme"))?;
    if !scheme.eq_ignore_ascii_case("Basic") {
        return Err(Error::MalformedCredentials("not a Basic authorization"));
    }
    let decoded = BASE64
        .decode(rest.trim_matches([' ', '\t']))
        .map_err(|_| Error::MalformedCredentials("Basic credentials are not valid base64"))?;
    let text = String::from_utf8(decoded)
        .map_err(|_| Error::MalformedCredentials("Basic credentials are not UTF-8"))?;
    let (user, pass) = text.split_once(':').ok_or(Error::MalformedCredentials(
        "Basic credentials lack a colon",
    ))?;
    Credentials::new(user, pass)
        .map_err(|_| Error::MalformedCredentials("control character in Basic credentials"))
}

/// Server side: does this Basic `Authorization` value carry exactly this user
/// name and password?
///
/// Malformed values simply do not match. The comparison does not stop at the
/// first differing byte, so its timing says little about the expected password.
pub fn verify_basic(header_value: &str, username: &str, password: &str) -> bool {
    match parse_basic(header_value) {
        Ok(c) => {
            // Evaluate both so the time taken does not reveal which one differed.
            let user_ok = ct_eq(c.username.as_bytes(), username.as_bytes());
            let pass_ok = ct_eq(c.password.as_bytes(), password.as_bytes());
            user_ok & pass_ok
        }
        Err(_) => false,
    }
}

// ---------------------------------------------------------------------------
// Challenge grammar (RFC 7235 §2.1, §4.1)
// ---------------------------------------------------------------------------

/// One challenge out of a `WWW-Authenticate` or `Proxy-Authenticate` value:
/// a scheme followed by either a token68 or a list of parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    scheme: String,
    token68: Option<String>,
    params: Vec<(String, String)>,
}

impl Challenge {
    /// The authentication scheme as sent (compare it case-insensitively).
    pub fn scheme(&self) -> &str {
        &self.scheme
    }

    /// The token68 form of the challenge data, if the challenge used it.
    pub fn token68(&self) -> Option<&str> {
        self.token68.as_deref()
    }

    /// A parameter's value (quotes and escapes removed), looked up case-insensitively.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// All parameters in the order they were sent; names are lower-cased.
    pub fn params(&self) -> &[(String, String)] {
        &self.params
    }
}

/// Splits one header value into its challenges (several may share one value,
/// separated by commas, RFC 7235 §4.1).
///
/// Fails on anything that does not follow the grammar: an unterminated quoted
/// string, a control character, a parameter without a value, a duplicated
/// parameter (RFC 7235 §2.1 allows each name once per challenge).
pub fn parse_challenges(header_value: &str) -> Result<Vec<Challenge>, Error> {
    let mut p = Parser::new(header_value, Error::MalformedChallenge);
    let mut out = Vec::new();
    loop {
        p.skip_ows();
        match p.peek() {
            None => break,
            Some(b',') => {
                // Empty list elements are allowed by the list rule (RFC 9110 §5.6.1).
                p.pos += 1;
                continue;
            }
            Some(_) => {}
        }
        let challenge = p.challenge()?;
        out.push(challenge);
        p.skip_ows();
        if p.peek() == Some(b',') {
            p.pos += 1;
        }
    }
    Ok(out)
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn is_token68_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~+/".contains(&b)
}

/// A cursor over one header value. `err` builds the error for the side being
/// parsed (challenge or credentials), so both share the grammar.
struct Parser<'a> {
    s: &'a str,
    pos: usize,
    err: fn(&'static str) -> Error,
}

impl<'a> Parser<'a> {
    fn new(s: &'a str, err: fn(&'static str) -> Error) -> Self {
        Parser { s, pos: 0, err }
    }

    fn bytes(&self) -> &'a [u8] {
        self.s.as_bytes()
    }

    fn peek(&self) -> Option<u8> {
        self.bytes().get(self.pos).copied()
    }

    fn at_end(&self) -> bool {
        self.pos >= self.s.len()
    }

    /// Skips optional whitespace and reports how much was skipped.
    fn skip_ows(&mut self) -> usize {
        let start = self.pos;
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
        self.pos - start
    }

    fn token(&mut self) -> Option<&'a str> {
        let start = self.pos;
        while self.peek().is_some_and(is_tchar) {
            self.pos += 1;
        }
        // Only ASCII bytes were consumed, so both ends are char boundaries.
        (self.pos > start).then(|| &self.s[start..self.pos])
    }

    fn token68(&mut self) -> Option<&'a str> {
        let start = self.pos;
        while self.peek().is_some_and(is_token68_char) {
            self.pos += 1;
        }
        if self.pos == start {
            return None;
        }
        while self.peek() == Some(b'=') {
            self.pos += 1;
        }
        Some(&self.s[start..self.pos])
    }

    /// Parses a quoted-string whose opening quote is at the cursor.
    fn quoted_string(&mut self) -> Result<String, Error> {
        self.pos += 1;
        let mut out = Vec::new();
        loop {
            let b = self
                .peek()
                .ok_or((self.err)("unterminated quoted string"))?;
            self.pos += 1;
            match b {
                b'"' => break,
                b'\\' => {
                    let escaped = self
                        .peek()
                        .ok_or((self.err)("unterminated quoted string"))?;
                    if is_ctl(escaped) {
                        return Err((self.err)("control character in quoted string"));
                    }
                    out.push(escaped);
                    self.pos += 1;
                }
                b if is_ctl(b) => return Err((self.err)("control character in quoted string")),
                b => out.push(b),
            }
        }
        // Only ASCII backslashes were dropped from valid UTF-8, so this cannot fail;
        // map it anyway rather than assume.
        String::from_utf8(out).map_err(|_| (self.err)("quoted string is not UTF-8"))
    }

    /// Parses `auth-scheme [ 1*SP ( token68 / #auth-param ) ]`, stopping before the
    /// comma that ends it (or at the start of the next challenge).
    fn challenge(&mut self) -> Result<Challenge, Error> {
        let scheme = self
            .token()
            .ok_or((self.err)("expected an authentication scheme"))?
            .to_owned();
        let mut challenge = Challenge {
            scheme,
            token68: None,
            params: Vec::new(),
        };
        let spaces = self.skip_ows();
        if self.at_end() || self.peek() == Some(b',') {
            return Ok(challenge);
        }
        if spaces == 0 {
            return Err((self.err)(
                "expected a space after the authentication scheme",
            ));
        }

        let save = self.pos;
        if let Some(t) = self.token68() {
            self.skip_ows();
            if self.at_end() || self.peek() == Some(b',') {
                challenge.token68 = Some(t.to_owned());
                return Ok(challenge);
            }
        }
        self.pos = save;

        loop {
            self.skip_ows();
            match self.peek() {
                None => break,
                Some(b',') => {
                    self.pos += 1;
                    continue;
                }
                Some(_) => {}
            }
            let before_name = self.pos;
            let Some(name) = self.token() else {
                return Err((self.err)("expected a parameter name"));
            };
            self.skip_ows();
            if self.peek() != Some(b'=') {
                if challenge.params.is_empty() {
                    return Err((self.err)("expected a token68 or parameters"));
                }
                // A token not followed by `=` after a comma starts the next challenge.
                self.pos = before_name;
                break;
            }
            self.pos += 1;
            self.skip_ows();
            let value = match self.peek() {
                Some(b'"') => self.quoted_string()?,
                _ => self
                    .token()
                    .ok_or((self.err)("parameter has no value"))?
                    .to_owned(),
            };
            if challenge.param(name).is_some() {
                return Err((self.err)("duplicated parameter"));
            }
            challenge.params.push((name.to_ascii_lowercase(), value));
            self.skip_ows();
            match self.peek() {
                None => break,
                Some(b',') => self.pos += 1,
                Some(_) => return Err((self.err)("expected a comma between parameters")),
            }
        }
        Ok(challenge)
    }
}

fn is_ctl(b: u8) -> bool {
    // HTAB is allowed inside quoted strings; every other C0 control and DEL is not.
    (b < 0x20 && b != b'\t') || b == 0x7f
}

/// Splits `Scheme rest` at the first run of spaces.
fn split_scheme(value: &str) -> Option<(&str, &str)> {
    let value = value.trim_matches([' ', '\t']);
    let end = value.find([' ', '\t']).unwrap_or(value.len());
    let scheme = &value[..end];
    if scheme.is_empty() || !scheme.bytes().all(is_tchar) {
        return None;
    }
    Some((scheme, &value[end..]))
}

// ---------------------------------------------------------------------------
// Digest
// ---------------------------------------------------------------------------

/// A Digest hash algorithm (RFC 7616 §3.3 and its IANA registry).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DigestAlgorithm {
    /// `MD5`: the RFC 2617 default, kept for compatibility.
    Md5,
    /// `MD5-sess`.
    Md5Sess,
    /// `SHA-256` (RFC 7616).
    Sha256,
    /// `SHA-256-sess`.
    Sha256Sess,
    /// `SHA-512-256` (RFC 7616).
    Sha512_256,
    /// `SHA-512-256-sess`.
    Sha512_256Sess,
}

impl DigestAlgorithm {
    /// The name used in the `algorithm` parameter.
    pub fn name(self) -> &'static str {
        match self {
            DigestAlgorithm::Md5 => "MD5",
            DigestAlgorithm::Md5Sess => "MD5-sess",
            DigestAlgorithm::Sha256 => "SHA-256",
            DigestAlgorithm::Sha256Sess => "SHA-256-sess",
            DigestAlgorithm::Sha512_256 => "SHA-512-256",
            DigestAlgorithm::Sha512_256Sess => "SHA-512-256-sess",
        }
    }

    /// Looks an algorithm up by name, case-insensitively; `None` if unknown.
    pub fn from_name(name: &str) -> Option<Self> {
        [
            DigestAlgorithm::Md5,
            DigestAlgorithm::Md5Sess,
            DigestAlgorithm::Sha256,
            DigestAlgorithm::Sha256Sess,
            DigestAlgorithm::Sha512_256,
            DigestAlgorithm::Sha512_256Sess,
        ]
        .into_iter()
        .find(|a| a.name().eq_ignore_ascii_case(name))
    }

    fn is_session(self) -> bool {
        matches!(
            self,
            DigestAlgorithm::Md5Sess
                | DigestAlgorithm::Sha256Sess
                | DigestAlgorithm::Sha512_256Sess
        )
    }

    /// Higher is stronger; used to pick among several offered challenges.
    fn strength(self) -> u8 {
        match self {
            DigestAlgorithm::Md5 | DigestAlgorithm::Md5Sess => 1,
            DigestAlgorithm::Sha256 | DigestAlgorithm::Sha256Sess => 2,
            DigestAlgorithm::Sha512_256 | DigestAlgorithm::Sha512_256Sess => 3,
        }
    }

    /// Lower-case hex of the hash of `data` (RFC 7616 §3.4: `H(data)`).
    fn hex(self, data: &str) -> String {
        match self {
            DigestAlgorithm::Md5 | DigestAlgorithm::Md5Sess => to_hex(&Md5::digest(data)),
            DigestAlgorithm::Sha256 | DigestAlgorithm::Sha256Sess => to_hex(&Sha256::digest(data)),
            DigestAlgorithm::Sha512_256 | DigestAlgorithm::Sha512_256Sess => {
                to_hex(&Sha512_256::digest(data))
            }
        }
    }
}

impl fmt::Display for DigestAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A Digest challenge: what a server sends in `WWW-Authenticate` and what a client
/// answers with [`DigestChallenge::authorization`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestChallenge {
    realm: String,
    nonce: String,
    opaque: Option<String>,
    algorithm: DigestAlgorithm,
    // `false` only for RFC 2069-style challenges without `qop`, accepted for old servers.
    qop_auth: bool,
    stale: bool,
    userhash: bool,
}

impl DigestChallenge {
    /// A challenge for a server to send, with `qop="auth"` (RFC 7616 requires a qop).
    pub fn new(
        realm: impl Into<String>,
        nonce: impl Into<String>,
        algorithm: DigestAlgorithm,
    ) -> Self {
        DigestChallenge {
            realm: realm.into(),
            nonce: nonce.into(),
            opaque: None,
            algorithm,
            qop_auth: true,
            stale: false,
            userhash: false,
        }
    }

    /// Sets the `opaque` value the client must echo back.
    pub fn with_opaque(mut self, opaque: impl Into<String>) -> Self {
        self.opaque = Some(opaque.into());
        self
    }

    /// Marks the challenge as answering a request whose nonce had expired (`stale=true`).
    pub fn with_stale(mut self, stale: bool) -> Self {
        self.stale = stale;
        self
    }

    /// Asks the client to hash its user name (`userhash=true`, RFC 7616 §3.4.4).
    pub fn with_userhash(mut self, userhash: bool) -> Self {
        self.userhash = userhash;
        self
    }

    /// The protection space.
    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// The server nonce.
    pub fn nonce(&self) -> &str {
        &self.nonce
    }

    /// The `opaque` value, if any.
    pub fn opaque(&self) -> Option<&str> {
        self.opaque.as_deref()
    }

    /// The hash algorithm.
    pub fn algorithm(&self) -> DigestAlgorithm {
        self.algorithm
    }

    /// Whether the server said the previous nonce was stale (retry without asking the user).
    pub fn stale(&self) -> bool {
        self.stale
    }

    /// Whether the server asked for a hashed user name.
    pub fn userhash(&self) -> bool {
        self.userhash
    }

    /// Reads a Digest challenge out of a parsed [`Challenge`].
    ///
    /// `Ok(None)` if the challenge is not Digest, or is Digest with an algorithm or
    /// qop this client cannot answer; `Err` if it is Digest but malformed.
    pub fn from_challenge(challenge: &Challenge) -> Result<Option<Self>, Error> {
        if !challenge.scheme.eq_ignore_ascii_case("Digest") {
            return Ok(None);
        }
        let realm = challenge
            .param("realm")
            .ok_or(Error::MalformedChallenge("Digest challenge lacks a realm"))?;
        let nonce = challenge
            .param("nonce")
            .ok_or(Error::MalformedChallenge("Digest challenge lacks a nonce"))?;
        let algorithm = match challenge.param("algorithm") {
            None => DigestAlgorithm::Md5,
            Some(name) => match DigestAlgorithm::from_name(name) {
                Some(a) => a,
                None => return Ok(None),
            },
        };
        let qop_auth = match challenge.param("qop") {
            None => false,
            Some(list) => {
                if !list
                    .split(',')
                    .any(|q| q.trim_matches([' ', '\t']).eq_ignore_ascii_case("auth"))
                {
                    // Only auth-int is offered; that needs the body, which we never have.
                    return Ok(None);
                }
                true
            }
        };
        if !qop_auth && algorithm.is_session() {
            // RFC 2617 forbids cnonce without qop, yet -sess needs one: unanswerable.
            return Ok(None);
        }
        let flag = |name| {
            challenge
                .param(name)
                .is_some_and(|v| v.eq_ignore_ascii_case("true"))
        };
        Ok(Some(DigestChallenge {
            realm: realm.to_owned(),
            nonce: nonce.to_owned(),
            opaque: challenge.param("opaque").map(str::to_owned),
            algorithm,
            qop_auth,
            stale: flag("stale"),
            userhash: flag("userhash"),
        }))
    }

    /// Picks the Digest challenge to answer out of one or more
    /// `WWW-Authenticate` / `Proxy-Authenticate` header values.
    ///
    /// Every challenge in every value is considered; the one with the strongest
    /// supported algorithm wins, and among equals the first offered (the server's
    /// preference, RFC 7616 §3.7). A value that does not parse is skipped if another
    /// value yields a usable challenge; otherwise its error is returned.
    pub fn select<'a, I>(header_values: I) -> Result<Self, Error>
    where
        I: IntoIterator<Item = &'a str>,
    {
        let mut best: Option<DigestChallenge> = None;
        let mut first_error = None;
        for value in header_values {
            let challenges = match parse_challenges(value) {
                Ok(c) => c,
                Err(e) => {
                    first_error.get_or_insert(e);
                    continue;
                }
            };
            for c in &challenges {
                match DigestChallenge::from_challenge(c) {
                    Ok(Some(d)) => {
                        if best
                            .as_ref()
                            .is_none_or(|b| d.algorithm.strength() > b.algorithm.strength())
                        {
                            best = Some(d);
                        }
                    }
                    Ok(None) => {}
                    Err(e) => {
                        first_error.get_or_insert(e);
                    }
                }
            }
        }
        best.ok_or_else(|| first_error.unwrap_or(Error::NoSupportedChallenge))
    }

    /// The `WWW-Authenticate` value for this challenge (server side).
    pub fn to_header_value(&self) -> String {
        let mut out = format!(
            "Digest realm={}, nonce={}",
            quote(&self.realm),
            quote(&self.nonce)
        );
        if self.qop_auth {
            out.push_str(", qop=\"auth\"");
        }
        out.push_str(", algorithm=");
        out.push_str(self.algorithm.name());
        if let Some(opaque) = &self.opaque {
            out.push_str(", opaque=");
            out.push_str(&quote(opaque));
        }
        if self.stale {
            out.push_str(", stale=true");
        }
        if self.userhash {
            out.push_str(", userhash=true");
        }
        out
    }

    /// Builds the `Authorization: Digest ...` value answering this challenge.
    ///
    /// `uri` is the request target exactly as it appears in the request line.
    /// `nc` counts the requests made with this nonce, starting at 1; reuse of a
    /// nonce must increase it. `cnonce` should come from [`generate_cnonce`]; it is a
    /// parameter so tests can be reproducible. Neither is used for a challenge
    /// without `qop` (RFC 2069 style).
    pub fn authorization(
        &self,
        credentials: &Credentials,
        method: &str,
        uri: &str,
        nc: u32,
        cnonce: &str,
    ) -> Result<String, Error> {
        if method.is_empty() || !method.bytes().all(is_tchar) {
            return Err(Error::InvalidCredentials("request method is not a token"));
        }
        if uri.bytes().any(|b| is_ctl(b) || b == b' ') {
            return Err(Error::InvalidCredentials(
                "request URI contains spaces or controls",
            ));
        }
        if cnonce.bytes().any(|b| is_ctl(b) || b == b'"' || b == b'\\') {
            return Err(Error::InvalidCredentials(
                "cnonce contains quotes or controls",
            ));
        }
        let alg = self.algorithm;
        let nc_hex = format!("{nc:08x}");
        let qop = self.qop_auth.then_some(("auth", nc_hex.as_str(), cnonce));
        let response = digest_response(
            alg,
            &credentials.username,
            &self.realm,
            &credentials.password,
            &self.nonce,
            method,
            uri,
            qop,
        );

        let mut out = String::from("Digest ");
        if self.userhash {
            let hashed = alg.hex(&format!("{}:{}", credentials.username, self.realm));
            out.push_str(&format!("username=\"{hashed}\""));
        } else if credentials.username.is_ascii() {
            out.push_str(&format!("username={}", quote(&credentials.username)));
        } else {
            // Non-ASCII names go in the RFC 8187 extended form (RFC 7616 §3.4.4).
            out.push_str(&format!("username*={}", ext_value(&credentials.username)));
        }
        out.push_str(&format!(
            ", realm={}, uri={}, algorithm={}, nonce={}",
            quote(&self.realm),
            quote(uri),
            alg.name(),
            quote(&self.nonce)
        ));
        if let Some((qop, nc, cnonce)) = qop {
            out.push_str(&format!(", nc={nc}, cnonce={}, qop={qop}", quote(cnonce)));
        }
        out.push_str(&format!(", response=\"{response}\""));
        if let Some(opaque) = &self.opaque {
            out.push_str(&format!(", opaque={}", quote(opaque)));
        }
        if self.userhash {
            out.push_str(", userhash=true");
        }
        Ok(out)
    }
}

/// 16 random bytes from the operating system, hex-encoded, for use as a Digest
/// `cnonce` (or a server nonce).
pub fn generate_cnonce() -> Result<String, Error> {
    use ring::rand::SecureRandom as _;
    let mut bytes = [0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| Error::Io(std::io::Error::other("the system random source failed")))?;
    Ok(to_hex(&bytes))
}

/// A Digest `Authorization` value as received by a server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestResponse {
    username: String,
    userhash: bool,
    realm: String,
    nonce: String,
    uri: String,
    response: String,
    algorithm: DigestAlgorithm,
    // (nc, cnonce) when qop=auth was used.
    qop_auth: Option<(String, String)>,
    opaque: Option<String>,
}

impl DigestResponse {
    /// Parses an `Authorization: Digest ...` value.
    ///
    /// Fails if a required parameter (`username` or `username*`, `realm`, `nonce`,
    /// `uri`, `response`; and `nc`, `cnonce` when `qop` is present) is missing, if
    /// `qop` is anything but `auth`, or if the algorithm is unknown.
    pub fn parse(header_value: &str) -> Result<Self, Error> {
        let mut p = Parser::new(header_value, Error::MalformedCredentials);
        p.skip_ows();
        let c = p.challenge()?;
        p.skip_ows();
        if !p.at_end() {
            return Err(Error::MalformedCredentials(
                "trailing data after the credentials",
            ));
        }
        if !c.scheme.eq_ignore_ascii_case("Digest") {
            return Err(Error::MalformedCredentials("not a Digest authorization"));
        }
        let req = |name: &'static str, missing: &'static str| {
            c.param(name)
                .map(str::to_owned)
                .ok_or(Error::MalformedCredentials(missing))
        };
        let userhash = c
            .param("userhash")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
        let username = match (c.param("username"), c.param("username*")) {
            (Some(u), None) => u.to_owned(),
            (None, Some(ext)) if !userhash => {
                decode_ext_value(ext).ok_or(Error::MalformedCredentials("malformed username*"))?
            }
            (Some(_), Some(_)) => {
                return Err(Error::MalformedCredentials(
                    "both username and username* present",
                ));
            }
            _ => return Err(Error::MalformedCredentials("missing username")),
        };
        let algorithm = match c.param("algorithm") {
            None => DigestAlgorithm::Md5,
            Some(name) => DigestAlgorithm::from_name(name)
                .ok_or(Error::MalformedCredentials("unknown Digest algorithm"))?,
        };
        let qop_auth = match c.param("qop") {
            None => None,
            Some(q) if q.eq_ignore_ascii_case("auth") => {
                let nc = req("nc", "missing nc")?;
                if nc.len() != 8 || !nc.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(Error::MalformedCredentials("nc is not 8 hex digits"));
                }
                Some((nc, req("cnonce", "missing cnonce")?))
            }
            Some(_) => return Err(Error::MalformedCredentials("unsupported qop")),
        };
        if qop_auth.is_none() && algorithm.is_session() {
            return Err(Error::MalformedCredentials("session algorithm without qop"));
        }
        Ok(DigestResponse {
            username,
            userhash,
            realm: req("realm", "missing realm")?,
            nonce: req("nonce", "missing nonce")?,
            uri: req("uri", "missing uri")?,
            response: req("response", "missing response")?.to_ascii_lowercase(),
            algorithm,
            qop_auth,
            opaque: c.param("opaque").map(str::to_owned),
        })
    }

    /// The user name as sent: the hashed form if [`userhash`](Self::userhash) is set.
    pub fn username(&self) -> &str {
        &self.username
    }

    /// Whether the client sent `H(username:realm)` instead of the user name.
    pub fn userhash(&self) -> bool {
        self.userhash
    }

    /// The realm the client answered for; the server must check it is its own.
    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// The nonce the client used; the server must check it issued it and it is fresh.
    pub fn nonce(&self) -> &str {
        &self.nonce
    }

    /// The `uri` parameter; the server must check it matches the request target.
    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// The hash algorithm used.
    pub fn algorithm(&self) -> DigestAlgorithm {
        self.algorithm
    }

    /// The nonce count, if `qop=auth` was used (servers may reject replays with it).
    pub fn nc(&self) -> Option<u32> {
        self.qop_auth
            .as_ref()
            .and_then(|(nc, _)| u32::from_str_radix(nc, 16).ok())
    }

    /// The client nonce, if `qop=auth` was used.
    pub fn cnonce(&self) -> Option<&str> {
        self.qop_auth.as_ref().map(|(_, c)| c.as_str())
    }

    /// The echoed `opaque` value, if any.
    pub fn opaque(&self) -> Option<&str> {
        self.opaque.as_deref()
    }

    /// Checks the response against the expected user and password for a request
    /// made with `method`.
    ///
    /// This checks the user name (hashed or not) and the digest arithmetic only; see
    /// the module docs for what the server must check besides.
    pub fn verify(&self, method: &str, username: &str, password: &str) -> bool {
        let alg = self.algorithm;
        let user_ok = if self.userhash {
            let expected = alg.hex(&format!("{username}:{}", self.realm));
            ct_eq(
                expected.as_bytes(),
                self.username.to_ascii_lowercase().as_bytes(),
            )
        } else {
            ct_eq(self.username.as_bytes(), username.as_bytes())
        };
        let qop = self
            .qop_auth
            .as_ref()
            .map(|(nc, cnonce)| ("auth", nc.as_str(), cnonce.as_str()));
        let expected = digest_response(
            alg,
            username,
            &self.realm,
            password,
            &self.nonce,
            method,
            &self.uri,
            qop,
        );
        let response_ok = ct_eq(expected.as_bytes(), self.response.as_bytes());
        user_ok & response_ok
    }
}

/// The `response` value (RFC 7616 §3.4.1, RFC 2617 §3.2.2.1).
#[allow(clippy::too_many_arguments)]
fn digest_response(
    alg: DigestAlgorithm,
    username: &str,
    realm: &str,
    password: &str,
    nonce: &str,
    method: &str,
    uri: &str,
    qop: Option<(&str, &str, &str)>,
) -> String {
    let mut ha1 = alg.hex(&format!("{username}:{realm}:{password}"));
    if alg.is_session() {
        // Session variants always come with qop (checked at parse time), hence a cnonce.
        let cnonce = qop.map_or("", |(_, _, c)| c);
        ha1 = alg.hex(&format!("{ha1}:{nonce}:{cnonce}"));
    }
    let ha2 = alg.hex(&format!("{method}:{uri}"));
    match qop {
        Some((qop, nc, cnonce)) => alg.hex(&format!("{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")),
        None => alg.hex(&format!("{ha1}:{nonce}:{ha2}")),
    }
}

// ---------------------------------------------------------------------------
// helpers
// ---------------------------------------------------------------------------

fn to_hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(HEX[usize::from(b >> 4)] as char);
        s.push(HEX[usize::from(b & 0xf)] as char);
    }
    s
}

/// Compares without an early exit, so timing does not reveal where a secret differs.
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Wraps a value in a quoted-string, escaping `"` and `\`.
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// RFC 8187 `ext-value` in UTF-8: `UTF-8''` followed by percent-encoded bytes.
fn ext_value(s: &str) -> String {
    let mut out = String::from("UTF-8''");
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn decode_ext_value(s: &str) -> Option<String> {
    let (charset, rest) = s.split_once('\'')?;
    let (_language, encoded) = rest.split_once('\'')?;
    if !charset.eq_ignore_ascii_case("UTF-8") {
        return None;
    }
    let bytes: Vec<u8> = percent_encoding::percent_decode_str(encoded).collect();
    String::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(u: &str, p: &str) -> Credentials {
        Credentials::new(u, p).unwrap()
    }

    #[test]
    fn basic_round_trip() {
        // RFC 7617 §2 example.
        let c = creds("Aladdin", "open sesame");
        assert_eq!(c.basic_header_value(), "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
        let back = parse_basic("basic  QWxhZGRpbjpvcGVuIHNlc2FtZQ==").unwrap();
        assert_eq!(back, c);
        assert!(verify_basic(
            &c.basic_header_value(),
            "Aladdin",
            "open sesame"
        ));
        assert!(!verify_basic(
            &c.basic_header_value(),
            "Aladdin",
            "open sesame!"
        ));
        assert!(!verify_basic(
            &c.basic_header_value(),
            "aladdin",
            "open sesame"
        ));
    }

    #[test]
    fn basic_rejects_garbage() {
        assert!(parse_basic("").is_err());
        assert!(parse_basic("Basic").is_err());
        assert!(parse_basic("Basic !!!").is_err());
        assert!(parse_basic("Bearer QWxhZGRpbjpvcGVuIHNlc2FtZQ==").is_err());
        // "nocolon" without a colon.
        assert!(parse_basic("Basic bm9jb2xvbg==").is_err());
        // "a\r\n:b" — a control character smuggled inside.
        assert!(parse_basic(&format!("Basic {}", BASE64.encode("a\r\n:b"))).is_err());
        assert!(!verify_basic("Basic \u{7f}", "a", "b"));
    }

    #[test]
    fn credentials_validation_and_debug() {
        assert!(Credentials::new("a:b", "x").is_err());
        assert!(Credentials::new("a", "x\ny").is_err());
        let c = creds("user", "hunter2");
        let shown = format!("{c:?}");
        assert!(shown.contains("user") && !shown.contains("hunter2"));
    }

    #[test]
    fn rfc2617_example_vector() {
        // RFC 2617 §3.5.
        let challenge = DigestChallenge::select([
            r#"Digest realm="testrealm@host.com", qop="auth,auth-int", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41""#,
        ])
        .unwrap();
        assert_eq!(challenge.algorithm(), DigestAlgorithm::Md5);
        let answer = challenge
            .authorization(
                &creds("Mufasa", "Circle Of Life"),
                "GET",
                "/dir/index.html",
                1,
                "0a4f113b",
            )
            .unwrap();
        assert!(
            answer.contains(r#"response="6629fae49393a05397450978507c4ef1""#),
            "{answer}"
        );
        assert!(answer.contains("nc=00000001"));
        assert!(answer.contains(r#"opaque="5ccc069c403ebaf9f0171e9517f40e41""#));

        let parsed = DigestResponse::parse(&answer).unwrap();
        assert!(parsed.verify("GET", "Mufasa", "Circle Of Life"));
        assert!(!parsed.verify("POST", "Mufasa", "Circle Of Life"));
    }

    #[test]
    fn rfc2617_example_authorization_header_verifies() {
        // The Authorization header exactly as printed in RFC 2617 §3.5.
        let header = r#"Digest username="Mufasa",
                 realm="testrealm@host.com",
                 nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",
                 uri="/dir/index.html",
                 qop=auth,
                 nc=00000001,
                 cnonce="0a4f113b",
                 response="6629fae49393a05397450978507c4ef1",
                 opaque="5ccc069c403ebaf9f0171e9517f40e41""#;
        // Header folding is gone from HTTP; the example's line breaks become spaces.
        let header = header.replace('\n', " ");
        let r = DigestResponse::parse(&header).unwrap();
        assert_eq!(r.nc(), Some(1));
        assert_eq!(r.cnonce(), Some("0a4f113b"));
        assert!(r.verify("GET", "Mufasa", "Circle Of Life"));
        assert!(!r.verify("GET", "Mufasa", "Circle of Life"));
    }

    #[test]
    fn rfc7616_sha256_and_md5_vectors() {
        // RFC 7616 §3.9.1: the server offers SHA-256 first, then MD5, in two headers.
        let sha = r#"Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=SHA-256, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS""#;
        let md5 = r#"Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=MD5, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS""#;
        let c = creds("Mufasa", "Circle of Life");
        let cnonce = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";

        let chosen = DigestChallenge::select([md5, sha]).unwrap();
        assert_eq!(chosen.algorithm(), DigestAlgorithm::Sha256);
        let answer = chosen
            .authorization(&c, "GET", "/dir/index.html", 1, cnonce)
            .unwrap();
        assert!(
            answer.contains(
                r#"response="753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1""#
            ),
            "{answer}"
        );

        let md5_only = DigestChallenge::select([md5]).unwrap();
        let answer = md5_only
            .authorization(&c, "GET", "/dir/index.html", 1, cnonce)
            .unwrap();
        assert!(
            answer.contains(r#"response="8ca523f5e9506fed4657c9700eebdbec""#),
            "{answer}"
        );
    }

    #[test]
    fn several_challenges_in_one_header() {
        let value = r#"Newauth realm="apps", type=1, title="Login to \"apps\"", Basic realm="simple", Negotiate abc123==, Digest realm="r", nonce="n", qop="auth", algorithm=SHA-256"#;
        let all = parse_challenges(value).unwrap();
        let schemes: Vec<_> = all.iter().map(Challenge::scheme).collect();
        assert_eq!(schemes, ["Newauth", "Basic", "Negotiate", "Digest"]);
        assert_eq!(all[0].param("title"), Some(r#"Login to "apps""#));
        assert_eq!(all[2].token68(), Some("abc123=="));
        let d = DigestChallenge::select([value]).unwrap();
        assert_eq!(d.realm(), "r");
        assert_eq!(d.algorithm(), DigestAlgorithm::Sha256);
    }

    #[test]
    fn unsupported_challenges_are_skipped() {
        assert!(matches!(
            DigestChallenge::select([r#"Basic realm="x""#]),
            Err(Error::NoSupportedChallenge)
        ));
        assert!(matches!(
            DigestChallenge::select([r#"Digest realm="x", nonce="n", algorithm=SHA-1"#]),
            Err(Error::NoSupportedChallenge)
        ));
        assert!(matches!(
            DigestChallenge::select([r#"Digest realm="x", nonce="n", qop="auth-int""#]),
            Err(Error::NoSupportedChallenge)
        ));
        // A good challenge in a second header wins over garbage in the first.
        let d = DigestChallenge::select([r#"Digest realm="x"#, r#"Digest realm="y", nonce="n""#])
            .unwrap();
        assert_eq!(d.realm(), "y");
    }

    #[test]
    fn malformed_challenges_are_rejected() {
        let bad = [
            r#"Digest realm="unterminated"#,
            r#"Digest realm="a", realm="b", nonce="n""#,
            "Digest realm=",
            "Digest realm=\"a\r\nX-Injected: 1\", nonce=\"n\"",
            r#"Digest realm="a" nonce="n""#,
            r#"Digest nonce="n""#,
            r#"Digest realm="r""#,
            "Digest foo bar",
            "=",
            "Digest \"quoted\"",
            "Digest realm=\"a\\",
            "Digest\trealm=\"r\", nonce=\"n\", \u{0}",
        ];
        for value in bad {
            assert!(
                DigestChallenge::select([value]).is_err(),
                "accepted {value:?}"
            );
        }
    }

    #[test]
    fn parser_survives_arbitrary_bytes() {
        // A cheap deterministic fuzz: every prefix of a tricky value, and byte soup.
        let tricky =
            r#"Digest realm="a\"b", nonce=xyz, qop="auth", , Basic, Negotiate a==, Foo x=1"#;
        for end in 0..=tricky.len() {
            let _ = parse_challenges(&tricky[..end]);
            let _ = DigestResponse::parse(&tricky[..end]);
        }
        let mut state = 0x2545_f491_u32;
        for _ in 0..2000 {
            let mut s = String::new();
            for _ in 0..(state % 40) {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                let alphabet = b" \t,=\"\\aZ/+\x01";
                s.push(char::from(alphabet[state as usize % alphabet.len()]));
            }
            let _ = parse_challenges(&s);
            let _ = DigestChallenge::select([s.as_str()]);
            let _ = DigestResponse::parse(&s);
        }
    }

    #[test]
    fn server_challenge_round_trip() {
        for alg in [
            DigestAlgorithm::Md5,
            DigestAlgorithm::Md5Sess,
            DigestAlgorithm::Sha256,
            DigestAlgorithm::Sha256Sess,
            DigestAlgorithm::Sha512_256,
            DigestAlgorithm::Sha512_256Sess,
        ] {
            for userhash in [false, true] {
                let nonce = generate_cnonce().unwrap();
                let server = DigestChallenge::new("ws@example.org", nonce.clone(), alg)
                    .with_opaque("op\"aque")
                    .with_userhash(userhash);
                let header = server.to_header_value();
                let client_view = DigestChallenge::select([header.as_str()]).unwrap();
                assert_eq!(client_view, server);

                let cnonce = generate_cnonce().unwrap();
                let answer = client_view
                    .authorization(&creds("alice", "s3cret"), "GET", "/chat?x=1", 7, &cnonce)
                    .unwrap();
                let got = DigestResponse::parse(&answer).unwrap();
                assert_eq!(got.nonce(), nonce);
                assert_eq!(got.nc(), Some(7));
                assert_eq!(got.opaque(), Some("op\"aque"));
                assert_eq!(got.uri(), "/chat?x=1");
                assert_eq!(got.userhash(), userhash);
                assert!(got.verify("GET", "alice", "s3cret"), "{alg} {userhash}");
                assert!(!got.verify("GET", "alice", "wrong"), "{alg} {userhash}");
                assert!(!got.verify("GET", "bob", "s3cret"), "{alg} {userhash}");
            }
        }
    }

    #[test]
    fn non_ascii_username_uses_ext_value() {
        let server = DigestChallenge::new("r", "n", DigestAlgorithm::Sha256);
        let answer = server
            .authorization(&creds("Jäsøn Doe", "pw"), "GET", "/", 1, "c")
            .unwrap();
        assert!(
            answer.contains("username*=UTF-8''J%C3%A4s%C3%B8n%20Doe"),
            "{answer}"
        );
        let got = DigestResponse::parse(&answer).unwrap();
        assert_eq!(got.username(), "Jäsøn Doe");
        assert!(got.verify("GET", "Jäsøn Doe", "pw"));
    }

    #[test]
    fn legacy_challenge_without_qop() {
        let c = DigestChallenge::select([r#"Digest realm="r", nonce="n""#]).unwrap();
        let answer = c
            .authorization(&creds("u", "p"), "GET", "/", 1, "ignored")
            .unwrap();
        assert!(!answer.contains("cnonce") && !answer.contains("qop"));
        let got = DigestResponse::parse(&answer).unwrap();
        assert!(got.verify("GET", "u", "p"));
        assert!(!got.verify("GET", "u", "q"));
    }

    #[test]
    fn malformed_digest_responses_are_rejected() {
        let bad = [
            r#"Basic realm="r""#,
            r#"Digest realm="r", nonce="n", uri="/", response="x""#,
            r#"Digest username="u", nonce="n", uri="/", response="x""#,
            r#"Digest username="u", realm="r", nonce="n", uri="/", response="x", qop=auth"#,
            r#"Digest username="u", realm="r", nonce="n", uri="/", response="x", qop=auth, nc=1, cnonce="c""#,
            r#"Digest username="u", realm="r", nonce="n", uri="/", response="x", qop=auth-int, nc=00000001, cnonce="c""#,
            r#"Digest username="u", realm="r", nonce="n", uri="/", response="x", algorithm=SHA-1"#,
            r#"Digest username="u", username*=UTF-8''u, realm="r", nonce="n", uri="/", response="x""#,
            r#"Digest username*=latin1''u, realm="r", nonce="n", uri="/", response="x""#,
            r#"Digest username="u", realm="r", nonce="n", uri="/", response="x" trailing"#,
        ];
        for value in bad {
            assert!(DigestResponse::parse(value).is_err(), "accepted {value:?}");
        }
    }

    #[test]
    fn authorization_rejects_header_injection() {
        let c = DigestChallenge::new("r", "n", DigestAlgorithm::Md5);
        let u = creds("u", "p");
        assert!(c.authorization(&u, "GET", "/a\r\nX: y", 1, "c").is_err());
        assert!(c.authorization(&u, "G ET", "/", 1, "c").is_err());
        assert!(c.authorization(&u, "GET", "/", 1, "c\"").is_err());
    }
}
