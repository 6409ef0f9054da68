// SPDX-License-Identifier: Apache-2.0
//! pinscan-core: X.509 DER to SPKI pins, fingerprints and the fields a pin audit needs, as Arrow
//! columns. No Python here: the binding crate is a thin layer over `certificates` and
//! `locate_spki`.
//!
//! Pins hash the SubjectPublicKeyInfo exactly as it is encoded in the certificate; nothing here
//! ever re-encodes a key.
// `unsafe` is allowed in one module only: `hash::simd`, the multi-buffer SHA-256 kernels.
#![deny(unsafe_code)]

pub mod batch;
pub mod certificate;
pub mod ct;
pub mod der;
pub mod hash;
pub mod name;
pub mod oid;
pub mod spki;
pub mod time;

pub use batch::{certificates, schema, Options, CHUNK_ROWS};
pub use certificate::{parse, CertRow};
pub use spki::{locate_spki, SpkiSource};
