// SPDX-License-Identifier: Apache-2.0
//! pinscan-core: X.509 DER to SPKI pins, fingerprints and the fields a pin audit needs, as Arrow
//! columns. No Python here: the binding crate is a thin layer over `certificates`, `locate_spki`
//! and `ct::entries`.
//!
//! Pins hash the SubjectPublicKeyInfo exactly as it is encoded in the certificate; nothing here
//! ever re-encodes a key.
//!
//! Each module uses only those before it (`tests::each_module_uses_only_those_before_it`):
//! `error` (the kinds of problem) -> `der` (the TLV reader) -> `hash`, `oid`, `time`, `name` (the
//! values) -> `spki` (keys) -> `frame` (where a certificate's elements are) -> `certificate` (one
//! certificate to one row) -> `locate` (the key in a lone certificate, CSR or SPKI) -> `table`
//! (chunks to batches in parallel, shared columns) -> `batch` (certificates to Arrow) -> `ct` (log
//! entries to Arrow) -> `android` (what an app ships: binary XML, resource tables, DEX).
//! `strings` (pin strings in an app's code) stands apart. `tls` (the scanner's rustls client,
//! sans-IO) reads keys with `frame`.
// `unsafe` is allowed in one module only: `hash::simd`, the multi-buffer SHA-256 kernels.
#![deny(unsafe_code)]

pub mod android;
pub mod batch;
pub mod certificate;
pub mod ct;
pub mod der;
pub mod error;
pub mod frame;
pub mod hash;
pub mod locate;
pub mod name;
pub mod oid;
pub mod spki;
pub mod strings;
mod table;
pub mod time;
pub mod tls;

pub use batch::{certificates, schema, Options, CHUNK_ROWS};
pub use certificate::{parse, CertRow};
pub use error::{ErrorKind, HasKind, Problem};
pub use locate::{locate_spki, LocateError, SpkiSource};

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// The modules in dependency order, as the crate documentation draws them.
    const LAYERS: &[&str] = &[
        "error",
        "der",
        "hash",
        "oid",
        "time",
        "name",
        "spki",
        "frame",
        "certificate",
        "locate",
        "table",
        "batch",
        "ct",
        "android",
        "strings",
        "tls",
    ];
    /// `ct`'s own modules, in the order an entry meets them; `mod.rs` puts them together.
    const CT_LAYERS: &[&str] = &["error", "tls", "leaf", "tbs", "entry", "columns"];
    /// `android`'s own modules: the byte reader, the values, then each format.
    const ANDROID_LAYERS: &[&str] = &["read", "value", "axml", "arsc", "proto", "dex"];

    /// The module names that follow `prefix` in `source`: `crate::der::..` gives `der`, and
    /// `crate::{der, oid::..}` both.
    fn uses<'a>(source: &'a str, prefix: &str) -> Vec<&'a str> {
        let first_segment = |path: &'a str| {
            let path = path.trim_start();
            let end = path
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(path.len());
            &path[..end]
        };
        let mut found = Vec::new();
        for (at, _) in source.match_indices(prefix) {
            let rest = &source[at + prefix.len()..];
            match rest.strip_prefix('{') {
                Some(group) => {
                    let group = &group[..group.find('}').unwrap_or(group.len())];
                    found.extend(group.split(',').map(first_segment));
                }
                None => found.push(first_segment(rest)),
            }
        }
        found.retain(|name| !name.is_empty());
        found
    }

    fn check(dir: &Path, layers: &[&str], prefix: &str, skip: &[&str]) -> usize {
        let mut checked = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let module = path.file_stem().unwrap().to_str().unwrap();
            if skip.contains(&module) {
                continue;
            }
            let files = if path.is_dir() {
                std::fs::read_dir(&path)
                    .unwrap()
                    .map(|e| e.unwrap().path())
                    .collect()
            } else {
                vec![path.clone()]
            };
            let at = layers.iter().position(|l| *l == module);
            let at = at.unwrap_or_else(|| panic!("{module} is not in the layers"));
            for file in files {
                let source = std::fs::read_to_string(&file).unwrap();
                for used in uses(&source, prefix) {
                    let used_at = layers.iter().position(|l| *l == used);
                    let used_at = used_at.unwrap_or_else(|| panic!("{used} is not in the layers"));
                    assert!(
                        used_at <= at,
                        "{} uses {used}, which comes after it",
                        file.display()
                    );
                }
                checked += 1;
            }
        }
        checked
    }

    #[test]
    fn each_module_uses_only_those_before_it() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        assert!(check(&src, LAYERS, "crate::", &["lib"]) > LAYERS.len());
        assert!(check(&src.join("ct"), CT_LAYERS, "super::", &["mod"]) == CT_LAYERS.len());
        assert!(check(&src.join("android"), ANDROID_LAYERS, "super::", &["mod"]) >= 5);
    }
}
