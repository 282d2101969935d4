//! The mTLS client side: rustls (ring provider, TLS 1.3) with an optional client
//! certificate, and the certificate digests actwarden binds tokens to.

use crate::http::{read_response, write_request, Request, Response, CLIENT_TIMEOUT};
use crate::{Error, Result};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::io::BufReader;
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;

/// A client certificate chain and its private key (DER).
pub struct ClientIdentity {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

impl ClientIdentity {
    /// From PEM text: a certificate chain and a private key (PKCS#8, SEC1 or PKCS#1).
    pub fn from_pem(chain_pem: &str, key_pem: &str) -> Result<ClientIdentity> {
        let chain = CertificateDer::pem_slice_iter(chain_pem.as_bytes())
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| Error(format!("client certificate PEM: {e}")))?;
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
            .map_err(|e| Error(format!("client key PEM: {e}")))?;
        Ok(ClientIdentity { chain, key })
    }
}

/// The DER of the first certificate in PEM text.
pub fn cert_der_from_pem(pem: &str) -> Result<Vec<u8>> {
    CertificateDer::from_pem_slice(pem.as_bytes())
        .map(|c| c.as_ref().to_vec())
        .map_err(|e| Error(format!("certificate PEM: {e}")))
}

/// A client configuration trusting `ca_pem` for the server, presenting `identity` if given.
pub fn client_config(
    ca_pem: &str,
    identity: Option<ClientIdentity>,
) -> Result<Arc<rustls::ClientConfig>> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        let cert = cert.map_err(|e| Error(format!("CA PEM: {e}")))?;
        roots.add(cert)?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(roots);
    let config = match identity {
        Some(id) => builder.with_client_auth_cert(id.chain, id.key)?,
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// Sends one request over a new TLS connection to `addr`, verifying the server as
/// `server_name`.
pub fn send(
    addr: SocketAddr,
    config: &Arc<rustls::ClientConfig>,
    server_name: &str,
    req: &Request,
) -> Result<Response> {
    let name = ServerName::try_from(server_name.to_owned())
        .map_err(|e| Error(format!("server name {server_name}: {e}")))?;
    let conn = rustls::ClientConnection::new(Arc::clone(config), name)?;
    let sock = TcpStream::connect_timeout(&addr, CLIENT_TIMEOUT)
        .map_err(|e| Error(format!("connect {addr}: {e}")))?;
    sock.set_read_timeout(Some(CLIENT_TIMEOUT))?;
    sock.set_write_timeout(Some(CLIENT_TIMEOUT))?;
    let mut tls = rustls::StreamOwned::new(conn, sock);
    write_request(&mut tls, req).map_err(|e| Error(format!("tls {addr}: {e}")))?;
    let mut reader = BufReader::new(tls);
    read_response(&mut reader, &req.method).map_err(|e| Error(format!("tls {addr}: {e}")))
}

/// SHA-256 of a certificate's DER.
pub fn sha256(der: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, der)
        .as_ref()
        .to_vec()
}

/// `cnf.x5t#S256` of a certificate: base64url (no padding) of SHA-256 of its DER.
pub fn x5t_s256(der: &[u8]) -> String {
    actwarden_test_support::b64::encode(&sha256(der))
}

/// What Envoy exposes as `connection.sha256_peer_certificate_digest`: lowercase hex.
pub fn sha256_hex(der: &[u8]) -> String {
    actwarden_test_support::b64::hex(&sha256(der))
}
