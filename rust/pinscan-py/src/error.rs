// SPDX-License-Identifier: Apache-2.0
//! Every error the binding raises, turned into its Python exception in one place (as pyca's
//! `CryptographyError` is). The types are what Python code catches today: `ValueError` from
//! `locate_spki` (`pinscan.keys`, the CLI), `TypeError` and `ValueError` for bad arguments.

use arrow_schema::ArrowError;
use pinscan_core::android::DecodeError;
use pinscan_core::LocateError;
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::PyErr;

pub enum Error {
    /// An argument of the wrong type: `TypeError`.
    ArgumentType(String),
    /// An argument of the right type and a wrong value: `ValueError`.
    ArgumentValue(String),
    /// An Arrow input that could not be imported: `ValueError`.
    ArrowImport(ArrowError),
    /// No key in a DER object: `ValueError` with the core's message, which callers show (and
    /// `pinscan.keys` strips the "not a certificate, CSR or public key: " prefix of).
    Locate(LocateError),
    /// An Android file (binary XML, resource table, DEX) that does not decode: `ValueError`
    /// with what is wrong and where.
    Decode(DecodeError),
    /// The core could not build its batches, or the thread pool could not start: `RuntimeError`.
    /// Bad input never gets here (it becomes a row's `error`); this is the machine or a bug.
    Build(String),
    /// Raised by Python itself (a failing iterator, a missing attribute): passed on unchanged.
    Python(PyErr),
}

impl From<Error> for PyErr {
    fn from(e: Error) -> PyErr {
        match e {
            Error::ArgumentType(msg) => PyTypeError::new_err(msg),
            Error::ArgumentValue(msg) => PyValueError::new_err(msg),
            Error::ArrowImport(e) => PyValueError::new_err(format!("Arrow import failed: {e}")),
            Error::Locate(e) => PyValueError::new_err(e.to_string()),
            Error::Decode(e) => PyValueError::new_err(e.to_string()),
            Error::Build(msg) => PyRuntimeError::new_err(msg),
            Error::Python(e) => e,
        }
    }
}

impl From<PyErr> for Error {
    fn from(e: PyErr) -> Self {
        Error::Python(e)
    }
}

impl From<LocateError> for Error {
    fn from(e: LocateError) -> Self {
        Error::Locate(e)
    }
}

impl From<DecodeError> for Error {
    fn from(e: DecodeError) -> Self {
        Error::Decode(e)
    }
}

pub type Result<T> = std::result::Result<T, Error>;
