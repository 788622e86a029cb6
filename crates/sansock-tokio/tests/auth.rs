//! Authentication and the server's decision over loopback: servers written in the test
//! with `read_request` + `PendingUpgrade` (Digest, Basic) and `accept_with` (Origin
//! check), clients from `ClientBuilder`.

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use common::{listener, within};
use sansock_tokio::auth::{
    DigestAlgorithm, DigestChallenge, DigestResponse, generate_cnonce, verify_basic,
};
use sansock_tokio::handshake::Accept;
use sansock_tokio::{Answer, ClientBuilder, CloseCode, Config, Error, Message};
use tokio::net::TcpStream;

const REALM: &str = "ws@sansock.test";
const USER: &str = "Mufasa";
const PASS: &str = "Circle of Life";
const OPAQUE: &str = "5ccc069c403ebaf9f0171e9517f40e41";

/// What a test server did with each request, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    /// No `Authorization`: answered 401 with a challenge.
    Challenged,
    /// Credentials checked and wrong: answered 401 with a fresh challenge.
    Refused,
    /// Credentials right: upgraded.
    Accepted,
}

#[derive(Debug, Default)]
struct Log {
    outcomes: Vec<Outcome>,
    /// The `Authorization` values received.
    authorizations: Vec<String>,
}

type SharedLog = Arc<Mutex<Log>>;

/// Echoes data messages until the peer closes.
async fn echo(mut ws: sansock_tokio::WebSocket<TcpStream>) {
    while let Some(msg) = ws.recv().await {
        let Ok(msg) = msg else { return };
        if msg.is_data() && ws.send(msg).await.is_err() {
            return;
        }
    }
}

/// A server that wants Digest credentials (RFC 7616) with `algorithm`. It keeps the
/// nonces it issued and checks realm, nonce, opaque, `uri` against the request target,
/// and the digest itself.
async fn digest_server(algorithm: DigestAlgorithm) -> (SocketAddr, SharedLog) {
    digest_server_with(algorithm, false, false).await
}

/// [`digest_server`] that may ask for a hashed user name (`userhash=true`) and may offer
/// a Basic challenge first, in its own `WWW-Authenticate` field.
async fn digest_server_with(
    algorithm: DigestAlgorithm,
    userhash: bool,
    offer_basic: bool,
) -> (SocketAddr, SharedLog) {
    let (listener, addr) = listener().await;
    let log = SharedLog::default();
    let server_log = log.clone();
    tokio::spawn(async move {
        let mut issued: Vec<String> = Vec::new();
        while let Ok((tcp, _)) = listener.accept().await {
            let pending = sansock_tokio::read_request(tcp, Config::default())
                .await
                .unwrap();
            let req = pending.request();
            let authorization = req
                .header("authorization")
                .map(|v| std::str::from_utf8(v).unwrap().to_owned());
            let ok = authorization.as_deref().is_some_and(|v| {
                let Ok(r) = DigestResponse::parse(v) else {
                    return false;
                };
                r.realm() == REALM
                    && issued.iter().any(|n| n == r.nonce())
                    && r.opaque() == Some(OPAQUE)
                    && r.uri() == req.target
                    && r.algorithm() == algorithm
                    && r.userhash() == userhash
                    && r.verify("GET", USER, PASS)
            });
            let outcome = match (&authorization, ok) {
                (_, true) => Outcome::Accepted,
                (None, false) => Outcome::Challenged,
                (Some(_), false) => Outcome::Refused,
            };
            {
                let mut log = server_log.lock().unwrap();
                log.outcomes.push(outcome.clone());
                log.authorizations.extend(authorization);
            }
            if outcome == Outcome::Accepted {
                tokio::spawn(echo(pending.accept(Accept::default()).await.unwrap()));
                continue;
            }
            let nonce = generate_cnonce().unwrap();
            let challenge = DigestChallenge::new(REALM, nonce.clone(), algorithm)
                .with_opaque(OPAQUE)
                .with_userhash(userhash)
                .to_header_value();
            issued.push(nonce);
            let basic = format!("Basic realm=\"{REALM}\"");
            let mut headers = vec![
                ("WWW-Authenticate", challenge.as_str()),
                ("Content-Type", "text/plain"),
            ];
            if offer_basic {
                headers.insert(0, ("WWW-Authenticate", &basic));
            }
            pending
                .reject(401, &headers, b"credentials needed")
                .await
                .unwrap();
        }
    });
    (addr, log)
}

/// A server that wants Basic credentials (RFC 7617): a request without them or with
/// wrong ones is answered 401 with `WWW-Authenticate: Basic`.
async fn basic_server() -> (SocketAddr, SharedLog) {
    let (listener, addr) = listener().await;
    let log = SharedLog::default();
    let server_log = log.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let pending = sansock_tokio::read_request(tcp, Config::default())
                .await
                .unwrap();
            let authorization = pending
                .request()
                .header("authorization")
                .map(|v| std::str::from_utf8(v).unwrap().to_owned());
            let outcome = match &authorization {
                Some(v) if verify_basic(v, USER, PASS) => Outcome::Accepted,
                Some(_) => Outcome::Refused,
                None => Outcome::Challenged,
            };
            {
                let mut log = server_log.lock().unwrap();
                log.outcomes.push(outcome.clone());
                log.authorizations.extend(authorization);
            }
            if outcome == Outcome::Accepted {
                tokio::spawn(echo(pending.accept(Accept::default()).await.unwrap()));
            } else {
                let challenge = format!("Basic realm=\"{REALM}\", charset=\"UTF-8\"");
                pending
                    .reject(401, &[("WWW-Authenticate", &challenge)], b"")
                    .await
                    .unwrap();
            }
        }
    });
    (addr, log)
}

async fn round_trip(ws: &mut sansock_tokio::WebSocket<sansock_tokio::ClientStream>) {
    ws.send(Message::text("let me in")).await.unwrap();
    assert_eq!(
        ws.recv().await.unwrap().unwrap(),
        Message::text("let me in")
    );
    ws.close(CloseCode::NORMAL, "").await.unwrap();
}

fn rejected(err: Error) -> Box<sansock::handshake::client::OwnedResponse> {
    match err {
        Error::Rejected(r) => r,
        other => panic!("expected a rejected handshake, got {other:?}"),
    }
}

#[tokio::test]
async fn digest_auth_answers_the_challenge() {
    within(30, async {
        for algorithm in [
            DigestAlgorithm::Sha256,
            DigestAlgorithm::Md5,
            DigestAlgorithm::Sha512_256Sess,
        ] {
            let (addr, log) = digest_server(algorithm).await;
            let url = format!("ws://127.0.0.1:{}/private/feed?room=7", addr.port());
            let (mut ws, _) = ClientBuilder::new(&url)
                .unwrap()
                .digest_auth(USER, PASS)
                .unwrap()
                .connect()
                .await
                .unwrap_or_else(|e| panic!("{algorithm}: {e:?}"));
            round_trip(&mut ws).await;

            let log = log.lock().unwrap();
            assert_eq!(
                log.outcomes,
                [Outcome::Challenged, Outcome::Accepted],
                "{algorithm}"
            );
            let auth = &log.authorizations[0];
            assert!(auth.starts_with("Digest "), "{auth}");
            assert!(auth.contains("uri=\"/private/feed?room=7\""), "{auth}");
            assert!(auth.contains("nc=00000001"), "{auth}");
            assert!(!auth.contains(PASS), "the password itself never travels");
        }
    })
    .await;
}

#[tokio::test]
async fn digest_is_preferred_over_basic_and_userhash_is_honoured() {
    within(30, async {
        let (addr, log) = digest_server_with(DigestAlgorithm::Sha256, true, true).await;
        let url = format!("ws://127.0.0.1:{}/", addr.port());
        let (mut ws, _) = ClientBuilder::new(&url)
            .unwrap()
            .digest_auth(USER, PASS)
            .unwrap()
            .connect()
            .await
            .unwrap();
        round_trip(&mut ws).await;
        let log = log.lock().unwrap();
        assert_eq!(log.outcomes, [Outcome::Challenged, Outcome::Accepted]);
        let auth = &log.authorizations[0];
        assert!(auth.starts_with("Digest "), "{auth}");
        assert!(auth.contains("userhash=true"), "{auth}");
        assert!(!auth.contains(USER), "the user name is hashed: {auth}");
    })
    .await;
}

#[tokio::test]
async fn digest_auth_with_a_wrong_password_ends_with_401() {
    within(30, async {
        let (addr, log) = digest_server(DigestAlgorithm::Sha256).await;
        let url = format!("ws://127.0.0.1:{}/private", addr.port());
        let err = ClientBuilder::new(&url)
            .unwrap()
            .digest_auth(USER, "circle of life")
            .unwrap()
            .connect()
            .await
            .unwrap_err();
        let r = rejected(err);
        assert_eq!(r.status, 401);
        assert_eq!(&r.body[..], b"credentials needed");
        let challenge = std::str::from_utf8(r.header("www-authenticate").unwrap()).unwrap();
        assert!(challenge.starts_with("Digest "), "{challenge}");
        // One challenge answered, then the client gives up instead of looping.
        assert_eq!(
            log.lock().unwrap().outcomes,
            [Outcome::Challenged, Outcome::Refused]
        );
    })
    .await;
}

#[tokio::test]
async fn digest_auth_credentials_answer_a_basic_challenge_too() {
    within(30, async {
        let (addr, log) = basic_server().await;
        let url = format!("ws://127.0.0.1:{}/", addr.port());
        let (mut ws, _) = ClientBuilder::new(&url)
            .unwrap()
            .digest_auth(USER, PASS)
            .unwrap()
            .connect()
            .await
            .unwrap();
        round_trip(&mut ws).await;
        assert_eq!(
            log.lock().unwrap().outcomes,
            [Outcome::Challenged, Outcome::Accepted]
        );
    })
    .await;
}

#[tokio::test]
async fn basic_auth_is_sent_up_front() {
    within(30, async {
        let (addr, log) = basic_server().await;
        let url = format!("ws://127.0.0.1:{}/", addr.port());
        let (mut ws, _) = ClientBuilder::new(&url)
            .unwrap()
            .basic_auth(USER, PASS)
            .unwrap()
            .connect()
            .await
            .unwrap();
        round_trip(&mut ws).await;
        {
            let log = log.lock().unwrap();
            assert_eq!(
                log.outcomes,
                [Outcome::Accepted],
                "one request, no challenge"
            );
            assert_eq!(log.authorizations, ["Basic TXVmYXNhOkNpcmNsZSBvZiBMaWZl"]);
        }

        // Userinfo in the URL is Basic up front as well (percent-decoded).
        let url = format!("ws://Mufasa:Circle%20of%20Life@127.0.0.1:{}/", addr.port());
        let (mut ws, _) = ClientBuilder::new(&url).unwrap().connect().await.unwrap();
        round_trip(&mut ws).await;
        assert_eq!(
            log.lock().unwrap().outcomes,
            [Outcome::Accepted, Outcome::Accepted]
        );
    })
    .await;
}

#[tokio::test]
async fn basic_auth_with_a_wrong_password_is_rejected_once() {
    within(30, async {
        let (addr, log) = basic_server().await;
        let url = format!("ws://127.0.0.1:{}/", addr.port());
        let err = ClientBuilder::new(&url)
            .unwrap()
            .basic_auth(USER, "wrong")
            .unwrap()
            .connect()
            .await
            .unwrap_err();
        let r = rejected(err);
        assert_eq!(r.status, 401);
        assert!(r.header("www-authenticate").is_some());
        // Credentials sent up front were refused: nothing to retry with.
        assert_eq!(log.lock().unwrap().outcomes, [Outcome::Refused]);
    })
    .await;
}

/// What the `accept_with` callback saw.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Request {
    path: String,
    query: Option<String>,
    origin: Option<String>,
    cookies: Vec<(String, String)>,
    subprotocols: Vec<String>,
    custom: Option<String>,
}

/// A server that only lets `https://good.example` in, chooses `chat.v2` when offered,
/// and sets a cookie.
async fn origin_checking_server() -> (SocketAddr, Arc<Mutex<Vec<Request>>>) {
    let (listener, addr) = listener().await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let log = log.clone();
            let ws = sansock_tokio::accept_with(tcp, Config::default(), move |req| {
                let seen = Request {
                    path: req.path.to_owned(),
                    query: req.query.map(str::to_owned),
                    origin: req.origin().map(str::to_owned),
                    cookies: req
                        .cookies()
                        .map(|(n, v)| (n.to_owned(), v.to_owned()))
                        .collect(),
                    subprotocols: req.subprotocols().map(str::to_owned).collect(),
                    custom: req
                        .header("x-custom")
                        .map(|v| String::from_utf8(v.to_vec()).unwrap()),
                };
                let origin = seen.origin.clone().unwrap_or_default();
                let chosen = seen.subprotocols.iter().any(|p| p == "chat.v2");
                log.lock().unwrap().push(seen);
                if origin != "https://good.example" {
                    return Answer::Reject {
                        status: 403,
                        headers: vec![
                            ("X-Denied-Origin".into(), origin),
                            ("Content-Type".into(), "text/plain".into()),
                        ],
                        body: b"origin not allowed".to_vec(),
                    };
                }
                let mut accept =
                    Accept::default().header("Set-Cookie", "session=fresh; Path=/; HttpOnly");
                if chosen {
                    accept = accept.subprotocol("chat.v2");
                }
                Answer::Accept(accept)
            })
            .await
            .unwrap();
            if let Some(ws) = ws {
                tokio::spawn(echo(ws));
            }
        }
    });
    (addr, seen)
}

#[tokio::test]
async fn reject_callback_sends_403_with_headers_and_body() {
    within(30, async {
        let (addr, seen) = origin_checking_server().await;
        let url = format!("ws://127.0.0.1:{}/chat", addr.port());
        let err = ClientBuilder::new(&url)
            .unwrap()
            .origin("https://evil.example")
            .connect()
            .await
            .unwrap_err();
        let r = rejected(err);
        assert_eq!((r.status, r.reason.as_str()), (403, "Forbidden"));
        assert_eq!(
            r.header("x-denied-origin"),
            Some(&b"https://evil.example"[..])
        );
        assert_eq!(r.header("content-type"), Some(&b"text/plain"[..]));
        assert_eq!(&r.body[..], b"origin not allowed");

        // No Origin at all is refused as well.
        let err = ClientBuilder::new(&url)
            .unwrap()
            .connect()
            .await
            .unwrap_err();
        assert_eq!(rejected(err).status, 403);
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[0].origin.as_deref(), Some("https://evil.example"));
        assert_eq!(seen[1].origin, None);
    })
    .await;
}

#[tokio::test]
async fn accepted_handshake_carries_cookies_subprotocol_origin_and_query() {
    within(30, async {
        let (addr, seen) = origin_checking_server().await;
        let url = format!("ws://127.0.0.1:{}/chat/room?id=42&lang=en", addr.port());
        let (mut ws, response) = ClientBuilder::new(&url)
            .unwrap()
            .origin("https://good.example")
            .subprotocols(["chat.v3", "chat.v2"])
            .cookie("session", "old")
            .cookie("theme", "dark")
            .header("X-Custom", "yes")
            .connect()
            .await
            .unwrap();
        assert_eq!(response.subprotocol.as_deref(), Some("chat.v2"));
        assert_eq!(
            response.header("set-cookie"),
            Some(&b"session=fresh; Path=/; HttpOnly"[..])
        );
        round_trip(&mut ws).await;

        let seen = seen.lock().unwrap();
        assert_eq!(
            seen[..],
            [Request {
                path: "/chat/room".into(),
                query: Some("id=42&lang=en".into()),
                origin: Some("https://good.example".into()),
                cookies: vec![
                    ("session".into(), "old".into()),
                    ("theme".into(), "dark".into())
                ],
                subprotocols: vec!["chat.v3".into(), "chat.v2".into()],
                custom: Some("yes".into()),
            }]
        );
    })
    .await;
}

#[tokio::test]
async fn no_subprotocol_when_none_is_chosen() {
    within(30, async {
        let (addr, _) = origin_checking_server().await;
        let url = format!("ws://127.0.0.1:{}/", addr.port());
        let (mut ws, response) = ClientBuilder::new(&url)
            .unwrap()
            .origin("https://good.example")
            .subprotocols(["chat.v1"])
            .connect()
            .await
            .unwrap();
        assert_eq!(response.subprotocol, None);
        round_trip(&mut ws).await;
    })
    .await;
}

/// A raw HTTP server that answers the first request with `head` + `body` and no
/// `Content-Length`, then closes the connection, or keeps it open when `linger`.
async fn raw_refusal(head: &'static str, body: Vec<u8>, linger: bool) -> SocketAddr {
    use tokio::io::AsyncWriteExt;
    let (listener, addr) = listener().await;
    tokio::spawn(async move {
        let (mut tcp, _) = listener.accept().await.unwrap();
        common::read_head(&mut tcp).await.unwrap();
        tcp.write_all(head.as_bytes()).await.unwrap();
        // The body in pieces, so the client cannot get it in the read of the head.
        for part in body.chunks(1000) {
            tcp.write_all(part).await.unwrap();
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        if linger {
            tokio::time::sleep(std::time::Duration::from_secs(30)).await;
        }
    });
    addr
}

#[tokio::test]
async fn refusal_body_without_content_length_runs_to_the_close() {
    within(30, async {
        let body = b"go away: ".repeat(500);
        let addr = raw_refusal(
            "HTTP/1.1 403 Forbidden\r\nX-Why: testing\r\n\r\n",
            body.clone(),
            false,
        )
        .await;
        let err = ClientBuilder::new(&format!("ws://127.0.0.1:{}/", addr.port()))
            .unwrap()
            .connect()
            .await
            .unwrap_err();
        let r = rejected(err);
        assert_eq!((r.status, r.header("x-why")), (403, Some(&b"testing"[..])));
        assert_eq!(r.body, body, "the whole body, up to the server's close");
    })
    .await;
}

#[tokio::test]
async fn refusal_body_without_length_is_bounded_by_limit_and_deadline() {
    within(30, async {
        // Larger than max_header_bytes (16 KiB), and the server never closes: the body
        // stops at the limit, without waiting for the deadline.
        let addr = raw_refusal("HTTP/1.1 403 Forbidden\r\n\r\n", vec![b'x'; 20_000], true).await;
        let started = tokio::time::Instant::now();
        let err = ClientBuilder::new(&format!("ws://127.0.0.1:{}/", addr.port()))
            .unwrap()
            .connect()
            .await
            .unwrap_err();
        let r = rejected(err);
        assert_eq!(r.status, 403);
        assert_eq!(r.body.len(), 16 << 10);
        assert!(started.elapsed() < std::time::Duration::from_secs(5));

        // A short body and a server that never closes: the refusal is still reported,
        // with what arrived, when the handshake deadline passes.
        let addr = raw_refusal("HTTP/1.1 401 Unauthorized\r\n\r\n", b"who?".to_vec(), true).await;
        let err = ClientBuilder::new(&format!("ws://127.0.0.1:{}/", addr.port()))
            .unwrap()
            .handshake_timeout(std::time::Duration::from_millis(300))
            .connect()
            .await
            .unwrap_err();
        let r = rejected(err);
        assert_eq!((r.status, &r.body[..]), (401, &b"who?"[..]));

        // A 204 has no body: nothing is waited for.
        let addr = raw_refusal("HTTP/1.1 204 No Content\r\n\r\n", Vec::new(), true).await;
        let started = tokio::time::Instant::now();
        let err = ClientBuilder::new(&format!("ws://127.0.0.1:{}/", addr.port()))
            .unwrap()
            .connect()
            .await
            .unwrap_err();
        assert_eq!(rejected(err).status, 204);
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    })
    .await;
}
