//! Authentication: Basic, Digest and bearer tokens (header and query), each accepting
//! and refusing with the right `WWW-Authenticate`.

mod server_util;

use std::time::Duration;

use sansock_tokio::Error;
use sansock_tokio::auth::{Credentials, DigestChallenge};
use sansock_tokio::client::ClientBuilder;
use sansock_tokio::server::{Auth, Server, ServerBuilder, handler_fn};
use server_util::*;

fn server_with(auth: impl IntoIterator<Item = Auth>) -> ServerBuilder {
    let mut b = Server::builder().route("/private", handler_fn(|_, _| async {}));
    for a in auth {
        b = b.auth(a);
    }
    b
}

fn basic() -> Auth {
    Auth::basic("sansock", |user, password| async move {
        (user == "ada" && password == "lovelace").then_some(user)
    })
}

fn digest() -> Auth {
    Auth::digest("sansock", |user| async move {
        (user == "ada").then(|| "lovelace".to_owned())
    })
}

fn bearer() -> Auth {
    Auth::bearer_in_query("sansock", "access_token", |token| async move {
        (token == "t0ken/+=").then(|| "token-user".to_owned())
    })
}

/// The rejection's status and `WWW-Authenticate` values.
fn refused(e: Error) -> (u16, Vec<String>) {
    match e {
        Error::Rejected(r) => {
            let challenges = r
                .headers
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case("WWW-Authenticate"))
                .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
                .collect();
            (r.status, challenges)
        }
        other => panic!("expected a rejection, got {other}"),
    }
}

async fn identity_of_only_session(server: &Server) -> Option<String> {
    wait_until(|| server.session_count() == 1).await;
    server.sessions()[0].identity().map(str::to_owned)
}

#[tokio::test]
async fn basic_accepts_and_refuses() {
    let (server, addr, _) = start(server_with([basic()])).await;
    let b = || ClientBuilder::new(&url(addr, "/private")).unwrap();

    let (status, challenges) = refused(bounded(b().connect()).await.unwrap_err());
    assert_eq!(status, 401);
    assert_eq!(challenges, [r#"Basic realm="sansock", charset="UTF-8""#]);

    let wrong = b().basic_auth("ada", "babbage").unwrap();
    let (status, challenges) = refused(bounded(wrong.connect()).await.unwrap_err());
    assert_eq!((status, challenges.len()), (401, 1));

    let mut ws = connect_with(b().basic_auth("ada", "lovelace").unwrap()).await;
    assert_eq!(
        identity_of_only_session(&server).await.as_deref(),
        Some("ada")
    );
    ws.close(sansock_tokio::CloseCode::NORMAL, "")
        .await
        .unwrap();
}

#[tokio::test]
async fn digest_accepts_and_refuses() {
    let (server, addr, _) = start(server_with([digest()])).await;
    let b = || ClientBuilder::new(&url(addr, "/private")).unwrap();

    let (status, challenges) = refused(bounded(b().connect()).await.unwrap_err());
    assert_eq!(status, 401);
    assert_eq!(challenges.len(), 2, "{challenges:?}");
    assert!(challenges[0].starts_with(r#"Digest realm="sansock", nonce=""#));
    assert!(
        challenges[0].contains("algorithm=SHA-256"),
        "{}",
        challenges[0]
    );
    assert!(challenges[1].contains("algorithm=MD5"), "{}", challenges[1]);
    assert!(challenges[0].contains(r#"qop="auth""#) && challenges[0].contains("opaque="));

    // The client answers the challenge on a second request.
    let wrong = b().digest_auth("ada", "babbage").unwrap();
    let (status, _) = refused(bounded(wrong.connect()).await.unwrap_err());
    assert_eq!(status, 401);
    let unknown = b().digest_auth("eve", "lovelace").unwrap();
    assert_eq!(
        refused(bounded(unknown.connect()).await.unwrap_err()).0,
        401
    );

    let _ws = connect_with(b().digest_auth("ada", "lovelace").unwrap()).await;
    assert_eq!(
        identity_of_only_session(&server).await.as_deref(),
        Some("ada")
    );
}

/// Answer the server's Digest challenge by hand, for a raw request.
async fn digest_authorization(addr: std::net::SocketAddr, uri: &str, nc: u32) -> String {
    let (head, _) = exchange(addr, &upgrade_request(uri, "")).await;
    assert_eq!(status(&head), 401);
    let challenge = DigestChallenge::select(header_values(&head, "WWW-Authenticate")).unwrap();
    let creds = Credentials::new("ada", "lovelace").unwrap();
    challenge
        .authorization(&creds, "GET", uri, nc, "0a4f113b")
        .unwrap()
}

#[tokio::test]
async fn digest_refuses_replays_other_uris_and_stale_nonces() {
    let (_, addr, _) = start(server_with([digest()])).await;
    let authz = digest_authorization(addr, "/private", 1).await;
    let request = upgrade_request("/private", &format!("Authorization: {authz}\r\n"));
    let (head, _) = exchange(addr, &request).await;
    assert_eq!(status(&head), 101, "{head}");
    // The same nonce count again: a replay.
    let (head, _) = exchange(addr, &request).await;
    assert_eq!(status(&head), 401, "{head}");
    // Computed for another URI than the one requested.
    let authz = digest_authorization(addr, "/private?x=1", 1).await;
    let (head, _) = exchange(
        addr,
        &upgrade_request("/private", &format!("Authorization: {authz}\r\n")),
    )
    .await;
    assert_eq!(status(&head), 401);

    // A nonce past its lifetime, with the right password: 401 with stale=true.
    let (_, addr, _) = start(server_with([
        digest().nonce_lifetime(Duration::from_secs(1))
    ]))
    .await;
    let authz = digest_authorization(addr, "/private", 1).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (head, _) = exchange(
        addr,
        &upgrade_request("/private", &format!("Authorization: {authz}\r\n")),
    )
    .await;
    assert_eq!(status(&head), 401);
    let challenges = header_values(&head, "WWW-Authenticate");
    assert!(
        challenges.iter().all(|c| c.contains("stale=true")),
        "{challenges:?}"
    );
}

#[tokio::test]
async fn bearer_in_header_and_query() {
    let (server, addr, _) = start(server_with([bearer()])).await;
    let b = |path: &str| ClientBuilder::new(&url(addr, path)).unwrap();

    let (status, challenges) = refused(bounded(b("/private").connect()).await.unwrap_err());
    assert_eq!(
        (status, challenges),
        (401, vec![r#"Bearer realm="sansock""#.to_owned()])
    );

    let bad = b("/private").header("Authorization", "Bearer nope");
    let (status, challenges) = refused(bounded(bad.connect()).await.unwrap_err());
    assert_eq!(status, 401);
    assert_eq!(
        challenges,
        [r#"Bearer realm="sansock", error="invalid_token""#]
    );
    let bad = b("/private?access_token=nope");
    assert_eq!(refused(bounded(bad.connect()).await.unwrap_err()).0, 401);

    let ws = connect_with(b("/private").header("Authorization", "Bearer t0ken/+=")).await;
    assert_eq!(
        identity_of_only_session(&server).await.as_deref(),
        Some("token-user")
    );
    drop(ws);
    wait_until(|| server.session_count() == 0).await;
    // Browsers cannot set headers: the query parameter, percent-encoded.
    let _ws = connect_with(b("/private?room=1&access_token=t0ken%2F%2B%3D")).await;
    assert_eq!(
        identity_of_only_session(&server).await.as_deref(),
        Some("token-user")
    );
    assert_eq!(
        server.sessions()[0].query(),
        Some("room=1&access_token=t0ken%2F%2B%3D")
    );
}

#[tokio::test]
async fn several_schemes_challenge_together_and_any_accepts() {
    let (server, addr, _) = start(server_with([basic(), digest(), bearer()])).await;
    let b = || ClientBuilder::new(&url(addr, "/private")).unwrap();
    let (status, challenges) = refused(bounded(b().connect()).await.unwrap_err());
    assert_eq!(status, 401);
    let schemes: Vec<&str> = challenges
        .iter()
        .map(|c| c.split(' ').next().unwrap())
        .collect();
    assert_eq!(schemes, ["Basic", "Digest", "Digest", "Bearer"]);

    let _a = connect_with(b().basic_auth("ada", "lovelace").unwrap()).await;
    let _b = connect_with(b().digest_auth("ada", "lovelace").unwrap()).await;
    let _c = connect_with(b().header("Authorization", "Bearer t0ken/+=")).await;
    wait_until(|| server.session_count() == 3).await;
    let mut ids: Vec<_> = server
        .sessions()
        .iter()
        .map(|s| s.identity().unwrap().to_owned())
        .collect();
    ids.sort();
    assert_eq!(ids, ["ada", "ada", "token-user"]);
}
