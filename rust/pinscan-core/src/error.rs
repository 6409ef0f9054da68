// SPDX-License-Identifier: Apache-2.0
//! What can be wrong with an input, as data: every error type of the crate names its kind, a
//! stable snake_case slug (a row's `error_kind`) meant for programs, which changes rarely or
//! never; its `Display` is the message for people, which may be reworded. The slugs are listed
//! here, in one place, as pydantic-core lists its `ErrorType`s.

use std::fmt;

/// Declares `ErrorKind` from one list, so that the enum, `ALL`, the slugs and the descriptions
/// cannot disagree.
macro_rules! error_kinds {
    ($($(#[$section:meta])* $variant:ident = $slug:literal, $description:literal;)*) => {
        /// Every kind of problem a row can report.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum ErrorKind {
            $($(#[$section])* #[doc = $description] $variant,)*
        }

        impl ErrorKind {
            /// Every kind, in declaration order.
            pub const ALL: &'static [ErrorKind] = &[$(ErrorKind::$variant),*];

            /// The stable identifier.
            pub fn slug(self) -> &'static str {
                match self {
                    $(ErrorKind::$variant => $slug,)*
                }
            }

            /// What the kind means, for a listing of them.
            pub fn description(self) -> &'static str {
                match self {
                    $(ErrorKind::$variant => $description,)*
                }
            }
        }
    };
}

error_kinds! {
    // The DER framing (X.690 8.1).
    Empty = "empty", "nothing where an element was expected";
    Truncated = "truncated", "the input ends before the element it announces";
    IndefiniteLength = "indefinite_length", "a BER indefinite length, which DER forbids";
    LengthTooLong = "length_too_long", "a length field of more than 4 bytes";
    HighTagNumber = "high_tag_number", "a high tag number, which X.509 never uses";
    UnexpectedTag = "unexpected_tag", "an element of another type than the structure has there";
    TrailingData = "trailing_data", "bytes after the end of a structure";
    // A value its type does not allow.
    InvalidBoolean = "invalid_boolean", "a BOOLEAN that is not one byte";
    InvalidInteger = "invalid_integer", "an INTEGER that is empty, negative or too large";
    InvalidBitString = "invalid_bit_string", "a BIT STRING that is empty or has unused bits";
    InvalidOid = "invalid_oid", "a malformed OBJECT IDENTIFIER";
    InvalidTime = "invalid_time", "a time that is not a DER UTCTime or GeneralizedTime";
    InvalidName = "invalid_name", "a Name with an empty relative distinguished name";
    InvalidKey = "invalid_key", "key parameters that describe no key";
    InvalidIpAddress = "invalid_ip_address", "a SAN iPAddress of neither 4 nor 16 bytes";
    InvalidSctList = "invalid_sct_list", "an embedded SCT list that does not frame";
    InvalidString = "invalid_string", "text not valid in its string type, kept with replacements";
    // What RFC 5280 rules out in a certificate that frames and decodes.
    UnknownVersion = "unknown_version", "a certificate version other than v1, v2 or v3";
    DuplicateExtension = "duplicate_extension", "an extension that appears twice";
    SignatureAlgorithmMismatch = "signature_algorithm_mismatch",
        "the TBS and the certificate name different signature algorithms";
    // Certificate Transparency structures (RFC 6962, static-ct-api).
    UnsupportedLeaf = "unsupported_leaf",
        "a Merkle tree leaf of another version or type than v1 timestamped_entry";
    UnknownEntryType = "unknown_entry_type", "a log entry neither x509 nor precert";
    InvalidLeafIndex = "invalid_leaf_index", "a leaf_index extension that is not 5 bytes";
    InvalidChain = "invalid_chain", "a tile's chain that is not a list of SHA-256 fingerprints";
    // The input as a whole.
    NullInput = "null_input", "a null in place of the input";
    Internal = "internal", "the parser panicked: a bug, please report it";
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.slug())
    }
}

/// An error that knows its kind; its `Display` is the message.
pub trait HasKind: fmt::Display {
    fn kind(&self) -> ErrorKind;
}

/// One problem of a row: its kind and its message, `<where>: <what>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub kind: ErrorKind,
    pub message: String,
}

impl Problem {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Problem {
            kind,
            message: message.into(),
        }
    }

    /// `error`, which says where it was found itself.
    pub fn of(error: &impl HasKind) -> Self {
        Problem::new(error.kind(), error.to_string())
    }

    /// `error`, found in `field`.
    pub fn at(field: &str, error: &impl HasKind) -> Self {
        Problem::new(error.kind(), format!("{field}: {error}"))
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn slugs_are_unique_and_snake_case() {
        let slugs: HashSet<&str> = ErrorKind::ALL.iter().map(|k| k.slug()).collect();
        assert_eq!(slugs.len(), ErrorKind::ALL.len());
        for kind in ErrorKind::ALL {
            let slug = kind.slug();
            let snake = slug.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
            assert!(
                snake && !slug.starts_with('_') && !slug.ends_with('_'),
                "{slug}"
            );
            assert!(!kind.description().is_empty());
        }
    }
}
