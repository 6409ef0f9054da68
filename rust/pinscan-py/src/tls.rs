// SPDX-License-Identifier: Apache-2.0
//! `TlsEngine` and `TlsClient`: the core's sans-IO rustls client for `pinscan.scanner.rustls`.
//! One call per network round trip (`receive` takes the server's bytes and returns ours), so a
//! handshake crosses into Rust about four times.

use pinscan_core::tls::{Client, Engine};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

/// What a scan's connections share: the rustls configuration (ALPN offered). Build it once.
#[pyclass(frozen, module = "pinscan._core")]
pub struct TlsEngine {
    engine: Engine,
}

#[pymethods]
impl TlsEngine {
    #[new]
    #[pyo3(signature = (alpn = Vec::new()))]
    fn new(alpn: Vec<Vec<u8>>) -> PyResult<Self> {
        let alpn: Vec<&[u8]> = alpn.iter().map(Vec::as_slice).collect();
        Engine::new(&alpn)
            .map(|engine| TlsEngine { engine })
            .map_err(|e| PyRuntimeError::new_err(format!("rustls refused its configuration: {e}")))
    }
}

/// One client handshake. `TlsClient(engine, sni, address)` raises `ValueError` for an SNI rustls
/// cannot send; after that nothing raises: a failure is the value of `failure`.
#[pyclass(module = "pinscan._core")]
pub struct TlsClient {
    client: Client,
}

fn bytes_of<'py>(py: Python<'py>, client: &mut Client) -> Bound<'py, PyBytes> {
    let mut out = Vec::new();
    client.output(&mut out);
    PyBytes::new(py, &out)
}

#[pymethods]
impl TlsClient {
    #[new]
    #[pyo3(signature = (engine, sni, address))]
    fn new(engine: &TlsEngine, sni: Option<&str>, address: &str) -> PyResult<Self> {
        Client::new(&engine.engine, sni, address)
            .map(|client| TlsClient { client })
            .map_err(PyValueError::new_err)
    }

    /// What to send now: the ClientHello first.
    fn output<'py>(&mut self, py: Python<'py>) -> Bound<'py, PyBytes> {
        bytes_of(py, &mut self.client)
    }

    /// Takes the server's bytes (`b""`: it closed the connection) and returns what to send.
    fn receive<'py>(&mut self, py: Python<'py>, data: &[u8]) -> Bound<'py, PyBytes> {
        self.client.receive(data);
        bytes_of(py, &mut self.client)
    }

    /// Queues close_notify and returns everything left to send.
    fn close<'py>(&mut self, py: Python<'py>) -> Bound<'py, PyBytes> {
        self.client.close();
        bytes_of(py, &mut self.client)
    }

    #[getter]
    fn handshaking(&self) -> bool {
        self.client.is_handshaking()
    }

    /// `None`, or `(kind, alert, message)`: kind `alert` (with the server's alert code),
    /// `too_large`, `incompatible` or `protocol`.
    #[getter]
    fn failure(&self) -> Option<(&'static str, Option<u8>, String)> {
        let failure = self.client.failure()?;
        let alert = match failure {
            pinscan_core::tls::Failure::Alert(code) => Some(*code),
            _ => None,
        };
        Some((failure.kind(), alert, failure.to_string()))
    }

    #[getter]
    fn eof(&self) -> bool {
        self.client.eof()
    }

    #[getter]
    fn app_data(&self) -> bool {
        self.client.app_data()
    }

    #[getter]
    fn chain<'py>(&self, py: Python<'py>) -> Vec<Bound<'py, PyBytes>> {
        let chain = self.client.chain();
        chain.iter().map(|der| PyBytes::new(py, der)).collect()
    }

    #[getter]
    fn cert_requested(&self) -> bool {
        self.client.cert_requested()
    }

    #[getter]
    fn version(&self) -> Option<&'static str> {
        self.client.version()
    }

    #[getter]
    fn cipher(&self) -> Option<&'static str> {
        self.client.cipher()
    }

    #[getter]
    fn alpn(&self) -> Option<String> {
        let alpn = self.client.alpn()?;
        Some(String::from_utf8_lossy(alpn).into_owned())
    }
}
