//! Helpers shared by the integration tests: a time limit, a PKI generated with rcgen,
//! a CONNECT proxy, all on loopback.

// Each test binary uses only some of these helpers.
#![allow(dead_code, unreachable_pub)]

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use sansock_tokio::auth::verify_basic;
use sansock_tokio::tls::{ClientConfig, ClientIdentity, client_config, root_store_from_pem};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Runs `fut`, failing the test if it takes longer than `secs` seconds: a hang is a
/// failure, not a stuck CI run.
pub async fn within<F: Future>(secs: u64, fut: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(secs), fut)
        .await
        .unwrap_or_else(|_| panic!("the test did not finish within {secs} s"))
}

/// A loopback listener on a free port.
pub async fn listener() -> (TcpListener, SocketAddr) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    (l, addr)
}

/// A directory under the system temp dir, removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "sansock-tokio-it-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A self-signed certificate authority.
pub struct Ca {
    pub cert: Certificate,
    pub key: KeyPair,
}

impl Ca {
    pub fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Ca { cert, key }
    }

    /// Issues a leaf certificate; returns (certificate PEM, key PEM).
    pub fn issue(&self, names: &[&str], usage: ExtendedKeyUsagePurpose) -> (String, String) {
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "sansock test leaf");
        params.extended_key_usages = vec![usage];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

/// PEM files for one server (`localhost`, `127.0.0.1`) and one client, issued by a CA
/// generated here.
pub struct Pki {
    pub dir: TempDir,
    pub ca_pem: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

impl Pki {
    pub fn new() -> Self {
        Pki::issued_by(&Ca::new("sansock test CA"))
    }

    /// The same files, issued by `ca` (to test trust in another CA).
    pub fn issued_by(ca: &Ca) -> Self {
        let dir = TempDir::new();
        let (server_cert, server_key) = ca.issue(
            &["localhost", "127.0.0.1"],
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        let (client_cert, client_key) =
            ca.issue(&["client.test"], ExtendedKeyUsagePurpose::ClientAuth);
        Pki {
            ca_pem: dir.write("ca.pem", &ca.cert.pem()),
            server_cert: dir.write("server.pem", &server_cert),
            server_key: dir.write("server.key", &server_key),
            client_cert: dir.write("client.pem", &client_cert),
            client_key: dir.write("client.key", &client_key),
            dir,
        }
    }

    /// A client configuration trusting the CA in `trust`, with or without the client
    /// certificate.
    pub fn client(&self, trust: &Path, with_identity: bool) -> Arc<ClientConfig> {
        let identity = with_identity
            .then(|| ClientIdentity::from_pem_files(&self.client_cert, &self.client_key).unwrap());
        Arc::new(client_config(root_store_from_pem(trust).unwrap(), identity).unwrap())
    }
}

/// Reads an HTTP request head; returns it and any bytes read past it.
pub async fn read_head(s: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 512];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = buf.split_off(end + 4);
            return Some((String::from_utf8(buf).ok()?, rest));
        }
        if buf.len() > 16 * 1024 {
            return None;
        }
        let n = s.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// A CONNECT proxy on loopback.
pub struct Proxy {
    pub addr: SocketAddr,
    /// Tunnels opened so far.
    pub tunnels: Arc<AtomicUsize>,
    /// CONNECT requests turned away with 407.
    pub refused: Arc<AtomicUsize>,
}

impl Proxy {
    /// Starts a proxy; when `required` is set, only those Basic credentials get through.
    pub async fn start(required: Option<(&'static str, &'static str)>) -> Self {
        let (listener, addr) = listener().await;
        let tunnels = Arc::new(AtomicUsize::new(0));
        let refused = Arc::new(AtomicUsize::new(0));
        let (t, r) = (tunnels.clone(), refused.clone());
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let (t, r) = (t.clone(), r.clone());
                tokio::spawn(async move {
                    let Some((head, early)) = read_head(&mut client).await else {
                        return;
                    };
                    let mut lines = head.split("\r\n");
                    let request_line = lines.next().unwrap_or_default();
                    let mut parts = request_line.split(' ');
                    let (Some("CONNECT"), Some(target), Some("HTTP/1.1")) =
                        (parts.next(), parts.next(), parts.next())
                    else {
                        let _ = client.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
                        return;
                    };
                    let auth = lines.find_map(|l| {
                        let (name, value) = l.split_once(':')?;
                        name.eq_ignore_ascii_case("proxy-authorization")
                            .then(|| value.trim().to_owned())
                    });
                    if let Some((user, pass)) = required
                        && !auth.is_some_and(|v| verify_basic(&v, user, pass))
                    {
                        r.fetch_add(1, Ordering::SeqCst);
                        let _ = client
                            .write_all(
                                b"HTTP/1.1 407 Proxy Authentication Required\r\n\
                                  Proxy-Authenticate: Basic realm=\"test\"\r\n\
                                  Content-Length: 0\r\n\r\n",
                            )
                            .await;
                        return;
                    }
                    let Ok(mut upstream) = TcpStream::connect(target).await else {
                        let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n").await;
                        return;
                    };
                    t.fetch_add(1, Ordering::SeqCst);
                    if client
                        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                        .await
                        .is_err()
                    {
                        return;
                    }
                    if upstream.write_all(&early).await.is_err() {
                        return;
                    }
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                });
            }
        });
        Proxy {
            addr,
            tunnels,
            refused,
        }
    }

    pub fn tunnels(&self) -> usize {
        self.tunnels.load(Ordering::SeqCst)
    }

    pub fn refused(&self) -> usize {
        self.refused.load(Ordering::SeqCst)
    }
}
