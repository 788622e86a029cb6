//! Authentication of upgrade requests: HTTP Basic, HTTP Digest and bearer tokens, each
//! mapped to an identity by an async function of the application.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ring::hmac;
use tracing::debug;

use super::handler::BoxFuture;
use super::http::{Head, HttpResponse};
use crate::auth::{DigestAlgorithm, DigestChallenge, DigestResponse, parse_basic, quote};

type BasicFn = dyn Fn(String, String) -> BoxFuture<'static, Option<String>> + Send + Sync;
type LookupFn = dyn Fn(String) -> BoxFuture<'static, Option<String>> + Send + Sync;

/// One accepted authentication scheme. Give the server several
/// ([`ServerBuilder::auth`](super::ServerBuilder::auth)) to accept any of them.
///
/// A request without credentials for any configured scheme, or with wrong ones, is
/// answered `401 Unauthorized` with one `WWW-Authenticate` challenge per scheme. The
/// identity an accepted scheme returns becomes [`Session::identity`](super::Session::identity).
///
/// ```
/// use sansock_tokio::server::Auth;
///
/// let basic = Auth::basic("chat", |user, password| async move {
///     (user == "ada" && password == "lovelace").then_some(user)
/// });
/// let digest = Auth::digest("chat", |user| async move {
///     (user == "ada").then(|| "lovelace".to_owned()) // the password, to check the digest
/// });
/// // Browsers cannot set headers on a WebSocket: accept `?access_token=...` too.
/// let bearer = Auth::bearer_in_query("chat", "access_token", |token| async move {
///     (token == "s3cr3t").then(|| "ada".to_owned())
/// });
/// # drop((basic, digest, bearer));
/// ```
#[derive(Clone)]
pub struct Auth {
    realm: String,
    kind: Kind,
}

#[derive(Clone)]
enum Kind {
    Basic(Arc<BasicFn>),
    Digest(Arc<LookupFn>, Arc<Nonces>),
    Bearer(Arc<LookupFn>, Option<String>),
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = match &self.kind {
            Kind::Basic(_) => "Basic",
            Kind::Digest(..) => "Digest",
            Kind::Bearer(..) => "Bearer",
        };
        f.debug_struct("Auth")
            .field("scheme", &scheme)
            .field("realm", &self.realm)
            .finish_non_exhaustive()
    }
}

impl Auth {
    /// HTTP Basic (RFC 7617): `check(user, password)` returns the identity, or `None`
    /// to refuse. Basic sends the password in clear: use it over TLS.
    pub fn basic<F, Fut>(realm: impl Into<String>, check: F) -> Self
    where
        F: Fn(String, String) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Option<String>> + Send + 'static,
    {
        Auth {
            realm: realm.into(),
            kind: Kind::Basic(Arc::new(move |u, p| Box::pin(check(u, p)))),
        }
    }

    /// HTTP Digest (RFC 7616, SHA-256 preferred, MD5 for old clients, `qop=auth`):
    /// `password_of(user)` returns the user's password, or `None` for an unknown user;
    /// the identity is the user name. Nonces are stateless (an HMAC of their issue
    /// time under a per-server key) and live 5 minutes; an expired one is answered with
    /// `stale=true`, and a nonce count that does not grow is refused as a replay.
    pub fn digest<F, Fut>(realm: impl Into<String>, password_of: F) -> Self
    where
        F: Fn(String) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Option<String>> + Send + 'static,
    {
        Auth {
            realm: realm.into(),
            kind: Kind::Digest(
                Arc::new(move |u| Box::pin(password_of(u))),
                Arc::new(Nonces::new(Duration::from_secs(300))),
            ),
        }
    }

    /// A bearer token (RFC 6750) in `Authorization: Bearer <token>`: `identity_of(token)`
    /// returns the identity, or `None` to refuse.
    pub fn bearer<F, Fut>(realm: impl Into<String>, identity_of: F) -> Self
    where
        F: Fn(String) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Option<String>> + Send + 'static,
    {
        Auth {
            realm: realm.into(),
            kind: Kind::Bearer(Arc::new(move |t| Box::pin(identity_of(t))), None),
        }
    }

    /// [`bearer`](Self::bearer), also accepting the token in the query parameter
    /// `param` (percent-decoded), for browsers, which cannot set headers on a
    /// WebSocket. Query strings end up in logs: prefer short-lived tokens.
    pub fn bearer_in_query<F, Fut>(
        realm: impl Into<String>,
        param: impl Into<String>,
        identity_of: F,
    ) -> Self
    where
        F: Fn(String) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Option<String>> + Send + 'static,
    {
        Auth {
            realm: realm.into(),
            kind: Kind::Bearer(
                Arc::new(move |t| Box::pin(identity_of(t))),
                Some(param.into()),
            ),
        }
    }

    /// Set the Digest nonce lifetime (default 5 minutes); no effect on other schemes.
    pub fn nonce_lifetime(mut self, lifetime: Duration) -> Self {
        if let Kind::Digest(f, _) = self.kind {
            self.kind = Kind::Digest(f, Arc::new(Nonces::new(lifetime)));
        }
        self
    }

    /// Check the credentials this scheme finds in the request.
    async fn check(&self, head: &(impl Head + ?Sized), authz: Option<&str>) -> Outcome {
        match &self.kind {
            Kind::Basic(check) => {
                let Some(v) = authz.filter(|v| scheme_is(v, "Basic")) else {
                    return Outcome::Absent;
                };
                match parse_basic(v) {
                    Ok(c) => match check(c.username().to_owned(), c.password().to_owned()).await {
                        Some(id) => Outcome::Ok(id),
                        None => Outcome::Failed,
                    },
                    Err(_) => Outcome::Failed,
                }
            }
            Kind::Bearer(identity_of, param) => {
                let token = match authz.filter(|v| scheme_is(v, "Bearer")) {
                    Some(v) => Some(v[6..].trim_matches([' ', '\t']).to_owned()),
                    None => param.as_deref().and_then(|p| query_param(head.query()?, p)),
                };
                match token {
                    None => Outcome::Absent,
                    Some(t) if t.is_empty() => Outcome::Failed,
                    Some(t) => match identity_of(t).await {
                        Some(id) => Outcome::Ok(id),
                        None => Outcome::Failed,
                    },
                }
            }
            Kind::Digest(password_of, nonces) => {
                let Some(v) = authz.filter(|v| scheme_is(v, "Digest")) else {
                    return Outcome::Absent;
                };
                let Ok(resp) = DigestResponse::parse(v) else {
                    return Outcome::Failed;
                };
                if resp.realm() != self.realm
                    || resp.uri() != head.target()
                    || resp.userhash()
                    || resp.opaque() != Some(nonces.opaque.as_str())
                {
                    return Outcome::Failed;
                }
                let fresh = match nonces.check(resp.nonce()) {
                    NonceCheck::Forged => return Outcome::Failed,
                    NonceCheck::Fresh => true,
                    NonceCheck::Expired => false,
                };
                let user = resp.username().to_owned();
                let Some(password) = password_of(user.clone()).await else {
                    return Outcome::Failed;
                };
                if !resp.verify(head.method(), &user, &password) {
                    return Outcome::Failed;
                }
                if !fresh {
                    // Right password, old nonce: ask again with a new one (RFC 7616 §3.3).
                    return Outcome::Stale;
                }
                if !nonces.count(resp.nonce(), resp.nc()) {
                    debug!("digest nonce count replayed");
                    return Outcome::Failed;
                }
                Outcome::Ok(user)
            }
        }
    }

    fn challenges(&self, stale: bool, bearer_invalid: bool, out: &mut Vec<(String, String)>) {
        let realm = quote(&self.realm);
        let name = "WWW-Authenticate".to_owned();
        match &self.kind {
            Kind::Basic(_) => out.push((name, format!("Basic realm={realm}, charset=\"UTF-8\""))),
            Kind::Bearer(..) if bearer_invalid => out.push((
                name,
                format!("Bearer realm={realm}, error=\"invalid_token\""),
            )),
            Kind::Bearer(..) => out.push((name, format!("Bearer realm={realm}"))),
            Kind::Digest(_, nonces) => {
                let nonce = nonces.issue();
                for alg in [DigestAlgorithm::Sha256, DigestAlgorithm::Md5] {
                    let c = DigestChallenge::new(self.realm.clone(), nonce.clone(), alg)
                        .with_opaque(nonces.opaque.clone())
                        .with_stale(stale);
                    out.push((name.clone(), c.to_header_value()));
                }
            }
        }
    }
}

enum Outcome {
    Ok(String),
    Absent,
    Failed,
    Stale,
}

/// Run the configured schemes: `Ok(None)` when none is configured, `Ok(Some(identity))`
/// when one accepts, the 401 answer otherwise.
pub(crate) async fn authenticate(
    schemes: &[Auth],
    head: &(impl Head + ?Sized),
) -> Result<Option<String>, HttpResponse> {
    if schemes.is_empty() {
        return Ok(None);
    }
    let authz = head.header_str("Authorization");
    let mut stale = false;
    let mut failed = false;
    let mut bearer_invalid = false;
    for scheme in schemes {
        match scheme.check(head, authz).await {
            Outcome::Ok(id) => return Ok(Some(id)),
            Outcome::Absent => {}
            Outcome::Failed => {
                failed = true;
                bearer_invalid |= matches!(scheme.kind, Kind::Bearer(..));
            }
            Outcome::Stale => stale = true,
        }
    }
    debug!(failed, stale, "authentication required");
    let mut headers = Vec::new();
    for scheme in schemes {
        scheme.challenges(stale, bearer_invalid, &mut headers);
    }
    let body: &'static [u8] = if failed {
        b"invalid credentials\n"
    } else {
        b"authentication required\n"
    };
    let mut resp = HttpResponse::text(401, body);
    for (n, v) in headers {
        resp = resp.with_header(n, v);
    }
    Err(resp)
}

fn scheme_is(value: &str, scheme: &str) -> bool {
    value.len() > scheme.len()
        && value.as_bytes()[scheme.len()] == b' '
        && value[..scheme.len()].eq_ignore_ascii_case(scheme)
}

fn query_param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let k = percent_encoding::percent_decode_str(k).decode_utf8().ok()?;
        if k != name {
            return None;
        }
        percent_encoding::percent_decode_str(v)
            .decode_utf8()
            .ok()
            .map(|v| v.into_owned())
    })
}

// ----- Digest nonces -----

/// Stateless nonces: `hex(issued_at_secs ‖ HMAC-SHA256(key, issued_at_secs)[..16])`,
/// plus the highest nonce count seen per nonce, to refuse replays.
struct Nonces {
    key: hmac::Key,
    opaque: String,
    epoch: Instant,
    lifetime: Duration,
    counts: Mutex<HashMap<String, (u32, u64)>>,
}

enum NonceCheck {
    Fresh,
    Expired,
    Forged,
}

/// Remembered nonce counts; beyond this many live nonces, the oldest are forgotten
/// (their clients get a fresh challenge).
const MAX_COUNTS: usize = 1 << 16;

impl Nonces {
    fn new(lifetime: Duration) -> Self {
        let rng = ring::rand::SystemRandom::new();
        // Without a key the server must not issue nonces at all: an all-zero key would
        // make them forgeable, so fall back to a key from the opaque value's source.
        let key = hmac::Key::generate(hmac::HMAC_SHA256, &rng)
            .unwrap_or_else(|_| hmac::Key::new(hmac::HMAC_SHA256, fallback_key().as_bytes()));
        Nonces {
            key,
            opaque: crate::auth::generate_cnonce().unwrap_or_else(|_| fallback_key()),
            epoch: Instant::now(),
            lifetime,
            counts: Mutex::new(HashMap::new()),
        }
    }

    fn now(&self) -> u64 {
        self.epoch.elapsed().as_secs()
    }

    fn issue(&self) -> String {
        let t = self.now().to_be_bytes();
        let tag = hmac::sign(&self.key, &t);
        let mut raw = t.to_vec();
        raw.extend_from_slice(&tag.as_ref()[..16]);
        hex(&raw)
    }

    fn check(&self, nonce: &str) -> NonceCheck {
        let Some(raw) = unhex(nonce).filter(|r| r.len() == 24) else {
            return NonceCheck::Forged;
        };
        let (t, tag) = raw.split_at(8);
        let full = hmac::sign(&self.key, t);
        if !ct_eq(&full.as_ref()[..16], tag) {
            return NonceCheck::Forged;
        }
        let issued = u64::from_be_bytes(t.try_into().unwrap_or([0; 8]));
        if self.now().saturating_sub(issued) > self.lifetime.as_secs() {
            NonceCheck::Expired
        } else {
            NonceCheck::Fresh
        }
    }

    /// Record `nc` for `nonce`; `false` if it does not exceed the last one seen.
    fn count(&self, nonce: &str, nc: Option<u32>) -> bool {
        let nc = nc.unwrap_or(0);
        let now = self.now();
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((last, _)) = counts.get(nonce)
            && nc <= *last
        {
            return false;
        }
        if counts.len() >= MAX_COUNTS {
            let lifetime = self.lifetime.as_secs();
            counts.retain(|_, (_, seen)| now.saturating_sub(*seen) <= lifetime);
            if counts.len() >= MAX_COUNTS {
                counts.clear();
            }
        }
        counts.insert(nonce.to_owned(), (nc, now));
        true
    }
}

fn fallback_key() -> String {
    use std::hash::{BuildHasher, RandomState};
    let a = RandomState::new().hash_one(Instant::now());
    let b = RandomState::new().hash_one(std::process::id());
    format!("{a:016x}{b:016x}")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces_round_trip_and_refuse_forgery_and_replay() {
        let n = Nonces::new(Duration::from_secs(300));
        let nonce = n.issue();
        assert!(matches!(n.check(&nonce), NonceCheck::Fresh));
        let mut forged = nonce.clone().into_bytes();
        let last = forged.len() - 1;
        forged[last] = if forged[last] == b'0' { b'1' } else { b'0' };
        assert!(matches!(
            n.check(std::str::from_utf8(&forged).unwrap()),
            NonceCheck::Forged
        ));
        assert!(matches!(n.check("zz"), NonceCheck::Forged));
        assert!(n.count(&nonce, Some(1)));
        assert!(!n.count(&nonce, Some(1)));
        assert!(n.count(&nonce, Some(2)));
        let other = Nonces::new(Duration::from_secs(300));
        assert!(matches!(other.check(&nonce), NonceCheck::Forged));
        let expired = Nonces::new(Duration::ZERO);
        let mut old = 0u64.to_be_bytes().to_vec();
        old.extend_from_slice(&hmac::sign(&expired.key, &0u64.to_be_bytes()).as_ref()[..16]);
        // Issued at second 0 with a zero lifetime is fresh during the first second only.
        assert!(matches!(
            expired.check(&hex(&old)),
            NonceCheck::Fresh | NonceCheck::Expired
        ));
    }

    #[test]
    fn query_params_and_schemes() {
        assert_eq!(
            query_param("a=1&access_token=x%20y&b", "access_token").as_deref(),
            Some("x y")
        );
        assert_eq!(query_param("a=1", "access_token"), None);
        assert!(scheme_is("bearer abc", "Bearer"));
        assert!(!scheme_is("Bearerabc", "Bearer"));
        assert!(!scheme_is("Bearer", "Bearer"));
        assert_eq!(quote(r#"a"b\c"#), r#""a\"b\\c""#);
    }
}
