// SPDX-License-Identifier: Apache-2.0
//! What an Android app ships, decoded without Java: compiled binary XML (`axml`), the resource
//! table (`arsc`), aapt2's protocol-buffer forms in an `.aab` (`proto`) and DEX bytecode (`dex`).
//!
//! Every decoder takes untrusted bytes and returns an error value for anything it cannot read;
//! nothing here panics on input, allocates more than the input justifies, or recurses without a
//! bound. Each module uses only those before it: `read` -> `value` -> `axml` -> `arsc` ->
//! `proto` -> `dex`.

pub mod arsc;
pub mod axml;
pub mod dex;
pub mod proto;
mod read;
pub mod value;

pub use read::DecodeError;
pub use value::{Attribute, Element, Node, Value};
