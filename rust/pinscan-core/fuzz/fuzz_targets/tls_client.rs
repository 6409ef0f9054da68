// SPDX-License-Identifier: Apache-2.0
//! The scanner's rustls client on arbitrary server bytes, fed in the chunks the input's first
//! byte sizes (as a socket splits them), and the handshake-signature check on arbitrary
//! certificate bytes. Every outcome is a `Failure` or an error value: nothing may panic or hang.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use pinscan_core::tls::{check_signature, Client, Engine};
use rustls::SignatureScheme;

static ENGINE: OnceLock<Engine> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let engine = ENGINE.get_or_init(|| Engine::new(&[b"h2", b"http/1.1"]).unwrap());
    let mut client = Client::new(engine, Some("fuzz.test"), "192.0.2.1").unwrap();
    let mut out = Vec::new();
    client.output(&mut out);
    for chunk in rest.chunks(usize::from(first).max(1) * 16) {
        client.receive(chunk);
        client.output(&mut out);
        if client.failure().is_some() {
            break;
        }
    }
    client.receive(b"");
    let _ = (
        client.chain(),
        client.version(),
        client.cipher(),
        client.alpn(),
    );

    #[allow(deprecated)]
    let algorithms = rustls::crypto::ring::default_provider().signature_verification_algorithms;
    for scheme in [
        SignatureScheme::ED25519,
        SignatureScheme::ECDSA_NISTP256_SHA256,
    ] {
        let _ = check_signature(
            rest,
            scheme,
            b"message",
            &[0; 64],
            first & 1 == 0,
            &algorithms,
        );
    }
});
