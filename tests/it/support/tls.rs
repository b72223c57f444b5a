//! TLS for the HTTP stand-ins: a throwaway CA with a server certificate for 127.0.0.1 and a
//! client certificate, and a listener that does the handshake (optionally demanding a client
//! certificate from that CA) before axum sees the connection.

use std::sync::Arc;
use std::time::Duration;

use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::fake_http::Transport;

/// A CA, a certificate for 127.0.0.1 and a client certificate, all signed by it.
pub struct TestPki {
    /// The CA certificate, PEM: what a client's `ca_file` holds.
    pub ca_pem: String,
    ca_der: Vec<u8>,
    server_cert: Vec<u8>,
    server_key: Vec<u8>,
    /// The client certificate and its key in one PEM file, as CADC's proxy certificates are.
    pub client_pem: String,
}

impl TestPki {
    pub fn new() -> TestPki {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
            KeyPair, KeyUsagePurpose,
        };
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "arcade test CA");
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca, ca_key);

        let server_key = KeyPair::generate().unwrap();
        let mut server = CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
        server
            .distinguished_name
            .push(DnType::CommonName, "127.0.0.1");
        server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server_cert = server.signed_by(&server_key, &issuer).unwrap();

        let client_key = KeyPair::generate().unwrap();
        let mut client = CertificateParams::new(Vec::<String>::new()).unwrap();
        client.distinguished_name.push(DnType::CommonName, "alice");
        client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let client_cert = client.signed_by(&client_key, &issuer).unwrap();

        TestPki {
            ca_pem: ca_cert.pem(),
            ca_der: ca_cert.der().to_vec(),
            server_cert: server_cert.der().to_vec(),
            server_key: server_key.serialize_der(),
            client_pem: format!("{}{}", client_cert.pem(), client_key.serialize_pem()),
        }
    }

    /// The server side, for a stand-in's [`Transport`]: the 127.0.0.1 certificate, and with
    /// `client_certificates` a demand for a client certificate signed by the CA (a handshake
    /// without one fails).
    pub fn tls(&self, client_certificates: bool) -> Tls {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .unwrap();
        let builder = if client_certificates {
            let mut roots = rustls::RootCertStore::empty();
            roots
                .add(CertificateDer::from(self.ca_der.clone()))
                .unwrap();
            let verifier =
                rustls::server::WebPkiClientVerifier::builder_with_provider(roots.into(), provider)
                    .build()
                    .unwrap();
            builder.with_client_cert_verifier(verifier)
        } else {
            builder.with_no_client_auth()
        };
        let config = builder
            .with_single_cert(
                vec![CertificateDer::from(self.server_cert.clone())],
                PrivateKeyDer::Pkcs8(self.server_key.clone().into()),
            )
            .unwrap();
        Tls {
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
        }
    }
}

/// HTTPS for a stand-in: every connection's handshake is done before axum sees it.
pub struct Tls {
    acceptor: tokio_rustls::TlsAcceptor,
}

impl Transport for Tls {
    type Listener = TlsListener;

    fn scheme(&self) -> &'static str {
        "https"
    }

    fn listen(self, tcp: tokio::net::TcpListener) -> TlsListener {
        TlsListener {
            tcp,
            acceptor: self.acceptor,
        }
    }
}

/// A listener that does the TLS handshake before handing a connection to axum.
pub struct TlsListener {
    tcp: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((stream, addr)) = self.tcp.accept().await else {
                continue;
            };
            // A client that rejects the certificate, or has none to give when one is demanded,
            // aborts the handshake: wait for the next one.
            if let Ok(Ok(tls)) =
                tokio::time::timeout(Duration::from_secs(5), self.acceptor.accept(stream)).await
            {
                return (tls, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}
