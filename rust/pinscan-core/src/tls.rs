// SPDX-License-Identifier: Apache-2.0
//! The scanner's TLS client as a sans-IO state machine over rustls: bytes in, bytes out, and what
//! the handshake showed (the presented chain, version, cipher, ALPN, the server's alert). The
//! caller owns the socket, the deadlines and the retries; nothing here blocks or allocates per
//! byte.
//!
//! A scan records what a server presents, it trusts nothing: the verifier accepts any chain, but
//! it records the chain when the server's Certificate message is processed, so the chain survives
//! a later client-certificate demand or alert, and it still checks the handshake signature against
//! the leaf's key (proof that the server holds the key it presents, as OpenSSL checks it too).
//! The key is read by our own DER walker (`frame`): exactly the bytes the certificate carries,
//! with no certificate parse in between that could refuse a certificate a scan must record.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ClientConfig, ClientConnection, ResolvesClientCert, Resumption};
use rustls::crypto::{ring, CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::sign::CertifiedKey;
use rustls::{
    CipherSuite, DigitallySignedStruct, Error, InvalidMessage, ProtocolVersion, SignatureScheme,
};

use crate::der;
use crate::frame::frame;

/// The key exchange groups offered, X25519 first with the only key share. rustls's ring provider
/// puts P-384 first, which costs the client 3x and the server 5-7x the CPU of X25519: a scan must
/// not look like a stress test. These three are what browsers and OpenSSL clients offer too.
const GROUPS: &[&dyn rustls::crypto::SupportedKxGroup] = &[
    ring::kx_group::X25519,
    ring::kx_group::SECP256R1,
    ring::kx_group::SECP384R1,
];

/// What every connection of a scan shares: the rustls configuration. Built once per scan.
#[derive(Clone, Debug)]
pub struct Engine {
    config: Arc<ClientConfig>,
}

impl Engine {
    /// A client offering TLS 1.3 and 1.2, `alpn` in order, no session resumption and no client
    /// certificate.
    pub fn new(alpn: &[&[u8]]) -> Result<Engine, Error> {
        // Deprecated for lacking post-quantum groups, which a scan does not want (an ML-KEM share
        // costs both ends CPU for nothing a pin depends on); ring is already the core's SHA-256.
        #[allow(deprecated)]
        let provider = Arc::new(CryptoProvider {
            kx_groups: GROUPS.to_vec(),
            ..ring::default_provider()
        });
        let algorithms = provider.signature_verification_algorithms;
        // The builder wants a verifier and a resolver; `Client::new` gives each connection its
        // own, which write that connection's record.
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Recorder::new(algorithms)))
            .with_client_cert_resolver(Arc::new(NoClientCert::default()));
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        config.resumption = Resumption::disabled();
        Ok(Engine {
            config: Arc::new(config),
        })
    }
}

/// What a connection saw that rustls keeps to itself: the chain as the server presented it, and
/// whether the server asked for a client certificate.
#[derive(Debug, Default)]
struct Seen {
    chain: Vec<Vec<u8>>,
    cert_requested: bool,
}

type SharedSeen = Arc<Mutex<Seen>>;

fn with_seen<T>(seen: &SharedSeen, f: impl FnOnce(&mut Seen) -> T) -> T {
    // A poisoned lock can only follow a panic inside rustls, which `catch_unwind` in the binding
    // already turned into an error; the record itself is still whole.
    f(&mut seen.lock().unwrap_or_else(PoisonError::into_inner))
}

/// The verifier of one connection: records the chain and checks the handshake signature.
#[derive(Debug)]
struct Recorder {
    seen: SharedSeen,
    algorithms: WebPkiSupportedAlgorithms,
}

impl Recorder {
    fn new(algorithms: WebPkiSupportedAlgorithms) -> Recorder {
        Recorder {
            seen: SharedSeen::default(),
            algorithms,
        }
    }

    fn check(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
        tls13: bool,
    ) -> Result<HandshakeSignatureValid, Error> {
        check_signature(
            cert.as_ref(),
            dss.scheme,
            message,
            dss.signature(),
            tls13,
            &self.algorithms,
        )
        .map(|()| HandshakeSignatureValid::assertion())
    }
}

/// Checks a handshake signature made with the key of the certificate `cert` (DER), under
/// `scheme`, with the algorithms the provider verifies. The key is read by `frame`, exactly as
/// the certificate encodes it; nothing else of the certificate is parsed.
pub fn check_signature(
    cert: &[u8],
    scheme: SignatureScheme,
    message: &[u8],
    signature: &[u8],
    tls13: bool,
    algorithms: &WebPkiSupportedAlgorithms,
) -> Result<(), Error> {
    if tls13 && !allowed_in_tls13(scheme) {
        return Err(rustls::PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme.into());
    }
    let candidates = algorithms
        .mapping
        .iter()
        .find(|(s, _)| *s == scheme)
        .map(|(_, algs)| *algs)
        .ok_or(rustls::PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme)?;
    let unreadable =
        |e: &dyn fmt::Display| Error::General(format!("the leaf's key cannot be read: {e}"));
    let spki = frame(cert).map_err(|e| unreadable(&e))?.spki;
    let key = der::bit_string_octets(&spki.key).map_err(|e| unreadable(&e))?;
    let parameters = spki.parameters.map_or(&[][..], |p| p.full);
    for alg in candidates {
        let id = alg.public_key_alg_id();
        let id = id.as_ref();
        // The AlgorithmIdentifier's content: the OID, then the parameters, as encoded.
        if id.len() == spki.algorithm.full.len() + parameters.len()
            && id.starts_with(spki.algorithm.full)
            && id.ends_with(parameters)
        {
            return alg
                .verify_signature(key, message, signature)
                .map_err(|_| Error::InvalidCertificate(rustls::CertificateError::BadSignature));
        }
    }
    Err(Error::PeerIncompatible(
        rustls::PeerIncompatible::NoSignatureSchemesInCommon,
    ))
}

/// RFC 8446 4.2.3: no PKCS#1 v1.5 RSA, SHA-1 or SHA-224 signatures in TLS 1.3 handshakes.
fn allowed_in_tls13(scheme: SignatureScheme) -> bool {
    use SignatureScheme::*;
    matches!(
        scheme,
        ECDSA_NISTP256_SHA256
            | ECDSA_NISTP384_SHA384
            | ECDSA_NISTP521_SHA512
            | RSA_PSS_SHA256
            | RSA_PSS_SHA384
            | RSA_PSS_SHA512
            | ED25519
            | ED448
    )
}

impl ServerCertVerifier for Recorder {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let chain = std::iter::once(end_entity)
            .chain(intermediates)
            .map(|c| c.as_ref().to_vec())
            .collect();
        with_seen(&self.seen, |seen| seen.chain = chain);
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.check(message, cert, dss, false)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.check(message, cert, dss, true)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// Sends no client certificate, and notes that the server asked for one: the only sign, under
/// TLS 1.3, of a server that will refuse the handshake after it ended.
#[derive(Debug, Default)]
struct NoClientCert {
    seen: SharedSeen,
}

impl ResolvesClientCert for NoClientCert {
    fn resolve(&self, _hints: &[&[u8]], _schemes: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        with_seen(&self.seen, |seen| seen.cert_requested = true);
        None
    }

    fn has_certs(&self) -> bool {
        // Keeps the TLS 1.2 transcript a CertificateRequest needs; a few hundred bytes.
        true
    }
}

/// Why a handshake failed, as a value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The server sent a fatal alert: its code.
    Alert(u8),
    /// A handshake message longer than rustls takes (64 KB): a long chain.
    TooLarge,
    /// The server wants what rustls does not do (TLS 1.0/1.1, legacy suites or groups, a key
    /// type it cannot check): another engine may reach it.
    Incompatible(String),
    /// Anything else the peer did wrong, or we could not follow, in rustls's words.
    Protocol(String),
}

impl Failure {
    fn from_error(error: Error) -> Failure {
        match error {
            Error::AlertReceived(alert) => Failure::Alert(u8::from(alert)),
            Error::InvalidMessage(InvalidMessage::HandshakePayloadTooLarge) => Failure::TooLarge,
            Error::PeerIncompatible(_) => Failure::Incompatible(error.to_string()),
            error => Failure::Protocol(error.to_string()),
        }
    }

    /// The kind's name, as the binding passes it on.
    pub fn kind(&self) -> &'static str {
        match self {
            Failure::Alert(_) => "alert",
            Failure::TooLarge => "too_large",
            Failure::Incompatible(_) => "incompatible",
            Failure::Protocol(_) => "protocol",
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Alert(code) => write!(f, "alert {code} from the server"),
            Failure::TooLarge => f.write_str("a handshake message over rustls's 64 KB limit"),
            Failure::Incompatible(message) | Failure::Protocol(message) => f.write_str(message),
        }
    }
}

/// One client handshake, driven by its caller: [`Client::output`] to send, [`Client::receive`]
/// what arrived, until it is no longer handshaking or has failed.
pub struct Client {
    conn: ClientConnection,
    seen: SharedSeen,
    failure: Option<Failure>,
    eof: bool,
    app_data: bool,
}

impl Client {
    /// A handshake sending `sni` (none for `None`: `address` names the server then, and rustls
    /// sends no SNI for an address). An SNI rustls cannot send is an error.
    pub fn new(engine: &Engine, sni: Option<&str>, address: &str) -> Result<Client, String> {
        let name = match sni {
            Some(name) => ServerName::try_from(name.to_owned()),
            None => ServerName::try_from(address.to_owned()),
        }
        .map_err(|e| e.to_string())?;
        // A configuration per connection: its verifier and resolver write this connection's
        // record. Cloning it copies a few Arcs and the ALPN list.
        let seen = SharedSeen::default();
        let mut config = ClientConfig::clone(&engine.config);
        let algorithms = config.crypto_provider().signature_verification_algorithms;
        config
            .dangerous()
            .set_certificate_verifier(Arc::new(Recorder {
                seen: Arc::clone(&seen),
                algorithms,
            }));
        config.client_auth_cert_resolver = Arc::new(NoClientCert {
            seen: Arc::clone(&seen),
        });
        let conn = ClientConnection::new(Arc::new(config), name).map_err(|e| e.to_string())?;
        Ok(Client {
            conn,
            seen,
            failure: None,
            eof: false,
            app_data: false,
        })
    }

    /// Takes in bytes from the server (an empty slice: it closed the connection) and processes
    /// them. A failure is kept in [`Client::failure`]; what to send stays in [`Client::output`]
    /// (after a failure: our alert).
    pub fn receive(&mut self, mut data: &[u8]) {
        if data.is_empty() {
            self.eof = true;
            // read_tls of nothing records the end of the stream.
            let _ = self.conn.read_tls(&mut data);
        }
        while self.failure.is_none() {
            if !data.is_empty() {
                if let Err(e) = self.conn.read_tls(&mut data) {
                    self.failure = Some(Failure::Protocol(e.to_string()));
                    break;
                }
            }
            match self.conn.process_new_packets() {
                Ok(state) => self.app_data |= state.plaintext_bytes_to_read() > 0,
                Err(error) => self.failure = Some(Failure::from_error(error)),
            }
            if data.is_empty() {
                break;
            }
        }
    }

    /// Everything queued to send, appended to `out`.
    pub fn output(&mut self, out: &mut Vec<u8>) {
        while self.conn.wants_write() {
            // Writing to a Vec cannot fail.
            if self.conn.write_tls(out).is_err() {
                break;
            }
        }
    }

    /// Queues close_notify.
    pub fn close(&mut self) {
        self.conn.send_close_notify();
    }

    pub fn is_handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    pub fn failure(&self) -> Option<&Failure> {
        self.failure.as_ref()
    }

    /// The server closed the connection (we received an empty read).
    pub fn eof(&self) -> bool {
        self.eof
    }

    /// Application data (or anything but a handshake record) arrived after the handshake.
    pub fn app_data(&self) -> bool {
        self.app_data
    }

    /// The presented chain, leaf first, as DER; empty before the server's Certificate message.
    pub fn chain(&self) -> Vec<Vec<u8>> {
        with_seen(&self.seen, |seen| seen.chain.clone())
    }

    pub fn cert_requested(&self) -> bool {
        with_seen(&self.seen, |seen| seen.cert_requested)
    }

    /// As OpenSSL names it: `TLSv1.3`, `TLSv1.2`.
    pub fn version(&self) -> Option<&'static str> {
        match self.conn.protocol_version()? {
            ProtocolVersion::TLSv1_3 => Some("TLSv1.3"),
            ProtocolVersion::TLSv1_2 => Some("TLSv1.2"),
            _ => None,
        }
    }

    /// The cipher suite as OpenSSL names it, so that a dataset reads the same whichever engine
    /// wrote it.
    pub fn cipher(&self) -> Option<&'static str> {
        openssl_name(self.conn.negotiated_cipher_suite()?.suite())
    }

    pub fn alpn(&self) -> Option<&[u8]> {
        self.conn.alpn_protocol()
    }
}

/// OpenSSL's names of the suites rustls's ring provider speaks.
fn openssl_name(suite: CipherSuite) -> Option<&'static str> {
    Some(match suite {
        CipherSuite::TLS13_AES_128_GCM_SHA256 => "TLS_AES_128_GCM_SHA256",
        CipherSuite::TLS13_AES_256_GCM_SHA384 => "TLS_AES_256_GCM_SHA384",
        CipherSuite::TLS13_CHACHA20_POLY1305_SHA256 => "TLS_CHACHA20_POLY1305_SHA256",
        CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 => "ECDHE-ECDSA-AES128-GCM-SHA256",
        CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 => "ECDHE-ECDSA-AES256-GCM-SHA384",
        CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256 => {
            "ECDHE-ECDSA-CHACHA20-POLY1305"
        }
        CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 => "ECDHE-RSA-AES128-GCM-SHA256",
        CipherSuite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 => "ECDHE-RSA-AES256-GCM-SHA384",
        CipherSuite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256 => "ECDHE-RSA-CHACHA20-POLY1305",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(deprecated)]
    fn every_suite_the_provider_speaks_has_an_openssl_name() {
        for suite in ring::default_provider().cipher_suites {
            assert!(openssl_name(suite.suite()).is_some(), "{:?}", suite.suite());
        }
    }

    #[test]
    fn the_client_hello_carries_one_x25519_share_and_the_sni() {
        let engine = Engine::new(&[b"h2", b"http/1.1"]).unwrap();
        let mut client = Client::new(&engine, Some("example.com"), "192.0.2.1").unwrap();
        let mut hello = Vec::new();
        client.output(&mut hello);
        assert_eq!(hello[0], 22, "a handshake record");
        assert!(hello.windows(11).any(|w| w == b"example.com"));
        // key_share extension (51): one entry, group x25519 (0x001d), 32-byte key.
        let at = hello
            .windows(2)
            .position(|w| w == [0x00, 0x33])
            .expect("key_share extension");
        assert_eq!(&hello[at + 6..at + 10], &[0x00, 0x1d, 0x00, 0x20]);
        assert_eq!(hello[at + 4..at + 6], [0x00, 0x24], "only one share");
        assert!(client.is_handshaking() && client.failure().is_none());
    }

    #[test]
    fn an_address_sends_no_sni_and_a_bad_name_is_an_error() {
        let engine = Engine::new(&[]).unwrap();
        let mut client = Client::new(&engine, None, "192.0.2.1").unwrap();
        let mut hello = Vec::new();
        client.output(&mut hello);
        assert!(!hello.windows(9).any(|w| w == b"192.0.2.1"));
        assert!(Client::new(&engine, Some("bad name"), "192.0.2.1").is_err());
    }

    #[test]
    fn garbage_from_the_server_is_a_failure_not_a_panic() {
        let engine = Engine::new(&[]).unwrap();
        let mut client = Client::new(&engine, Some("example.com"), "192.0.2.1").unwrap();
        client.receive(b"HTTP/1.1 400 Bad Request\r\n\r\n");
        assert!(matches!(client.failure(), Some(Failure::Protocol(_))));
        let mut alert = Vec::new();
        client.output(&mut alert);
        assert!(client.chain().is_empty());
    }

    #[test]
    fn a_fatal_alert_is_kept_with_its_code() {
        let engine = Engine::new(&[]).unwrap();
        let mut client = Client::new(&engine, Some("example.com"), "192.0.2.1").unwrap();
        let mut hello = Vec::new();
        client.output(&mut hello);
        client.receive(&[21, 3, 3, 0, 2, 2, 70]); // fatal protocol_version
        assert_eq!(client.failure(), Some(&Failure::Alert(70)));
    }

    /// A certificate, as far as `frame` reads it, around an Ed25519 key made from `seed`.
    fn ed25519_certificate(seed: u8) -> (Vec<u8>, ::ring::signature::Ed25519KeyPair) {
        let pair = ::ring::signature::Ed25519KeyPair::from_seed_unchecked(&[seed; 32]).unwrap();
        let der = |tag: u8, content: &[u8]| {
            let len = u8::try_from(content.len()).unwrap();
            let mut out = if len < 0x80 {
                vec![tag, len]
            } else {
                vec![tag, 0x81, len]
            };
            out.extend_from_slice(content);
            out
        };
        let ed25519 = der(0x30, &[0x06, 0x03, 0x2b, 0x65, 0x70]);
        let key = [
            &[0u8][..],
            ::ring::signature::KeyPair::public_key(&pair).as_ref(),
        ]
        .concat();
        let spki = der(0x30, &[ed25519.clone(), der(0x03, &key)].concat());
        let validity = der(
            0x30,
            &[der(0x17, b"250101000000Z"), der(0x17, b"350101000000Z")].concat(),
        );
        let tbs = [
            der(0xa0, &der(0x02, &[2])),
            der(0x02, &[1]),
            ed25519.clone(),
            der(0x30, &[]),
            validity,
            der(0x30, &[]),
            spki,
        ]
        .concat();
        let signature = der(0x03, &[0u8; 65]);
        let cert = der(0x30, &[der(0x30, &tbs), ed25519, signature].concat());
        (cert, pair)
    }

    #[test]
    #[allow(deprecated)]
    fn the_handshake_signature_is_checked_with_the_key_as_encoded() {
        let algorithms = ring::default_provider().signature_verification_algorithms;
        let (cert, pair) = ed25519_certificate(7);
        let message = b"the transcript";
        let signature = pair.sign(message);
        let check = |cert: &[u8], message: &[u8], scheme| {
            check_signature(cert, scheme, message, signature.as_ref(), true, &algorithms)
        };
        assert_eq!(check(&cert, message, SignatureScheme::ED25519), Ok(()));
        // Another message, another key, a scheme of another key type, a PKCS#1 scheme in
        // TLS 1.3, bytes that are no certificate: each an error, none a panic.
        assert!(matches!(
            check(&cert, b"another transcript", SignatureScheme::ED25519),
            Err(Error::InvalidCertificate(_))
        ));
        let (other, _) = ed25519_certificate(8);
        assert!(check(&other, message, SignatureScheme::ED25519).is_err());
        assert!(matches!(
            check(&cert, message, SignatureScheme::ECDSA_NISTP256_SHA256),
            Err(Error::PeerIncompatible(_))
        ));
        assert!(check(&cert, message, SignatureScheme::RSA_PKCS1_SHA256).is_err());
        // A certificate cut short before its key ends has no key; after it, the key is read
        // (the chain is recorded and judged later, as the damaged certificate it is).
        let key_end = cert.len() - 7 - 67;
        for cut in 0..cert.len() {
            let checked = check(&cert[..cut], message, SignatureScheme::ED25519);
            assert_eq!(checked.is_ok(), cut >= key_end, "cut at {cut}");
        }
    }

    #[test]
    fn the_end_of_the_stream_is_noted() {
        let engine = Engine::new(&[]).unwrap();
        let mut client = Client::new(&engine, Some("example.com"), "192.0.2.1").unwrap();
        client.receive(b"");
        assert!(client.eof() && client.is_handshaking());
    }
}
