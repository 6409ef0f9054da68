// SPDX-License-Identifier: Apache-2.0
//! Finding the SubjectPublicKeyInfo, by framing alone, in one whole DER object: a certificate, a
//! PKCS#10 CSR or a bare SPKI. This is what pins a key file or a certificate given on its own.

use std::fmt;

use crate::der::{self, DerError, DerResult, Reader, Tlv};
use crate::error::{ErrorKind, HasKind};
use crate::frame::{frame, FrameError};
use crate::spki::{parse_spki, Spki};

/// Where an SPKI was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpkiSource {
    Certificate,
    CertificationRequest,
    PublicKey,
}

impl SpkiSource {
    pub fn as_str(self) -> &'static str {
        match self {
            SpkiSource::Certificate => "certificate",
            SpkiSource::CertificationRequest => "csr",
            SpkiSource::PublicKey => "public_key",
        }
    }
}

/// Why no key was found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LocateError {
    /// The input is not one whole DER element.
    Der(DerError),
    /// A certificate whose framing is damaged around its key (never empty): a key from it could
    /// be any bytes, so none is given.
    Damaged(Vec<FrameError>),
    /// Neither a certificate, nor a CSR, nor a public key; why it is not a certificate.
    Unrecognized(FrameError),
}

impl fmt::Display for LocateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LocateError::Der(e) => e.fmt(f),
            LocateError::Damaged(problems) => {
                for (i, p) in problems.iter().enumerate() {
                    if i > 0 {
                        f.write_str("; ")?;
                    }
                    p.fmt(f)?;
                }
                Ok(())
            }
            LocateError::Unrecognized(e) => write!(f, "not a certificate, CSR or public key: {e}"),
        }
    }
}

impl HasKind for LocateError {
    fn kind(&self) -> ErrorKind {
        match self {
            LocateError::Der(e) => e.kind(),
            LocateError::Damaged(problems) => problems
                .first()
                .map_or(ErrorKind::Internal, FrameError::kind),
            LocateError::Unrecognized(e) => e.kind(),
        }
    }
}

/// Finds the SPKI in one whole DER object: a certificate, a PKCS#10 CSR or a bare SPKI.
pub fn locate_spki(data: &[u8]) -> Result<(SpkiSource, Spki<'_>), LocateError> {
    let (tlv, rest) = der::read_tlv(data).map_err(LocateError::Der)?;
    if !rest.is_empty() {
        return Err(LocateError::Der(DerError::TrailingData(rest.len())));
    }
    if let Ok(spki) = parse_spki(&tlv) {
        return Ok((SpkiSource::PublicKey, spki));
    }
    let framed = frame(data);
    if let Ok(f) = &framed {
        if f.problems.is_empty() {
            return Ok((SpkiSource::Certificate, f.spki));
        }
    }
    if let Ok(spki) = csr_spki(&tlv) {
        return Ok((SpkiSource::CertificationRequest, spki));
    }
    Err(match framed {
        Ok(f) => LocateError::Damaged(f.problems),
        Err(e) => LocateError::Unrecognized(e),
    })
}

/// RFC 2986: `CertificationRequest { CertificationRequestInfo { version, subject, spki, [0] }, .. }`.
fn csr_spki<'a>(tlv: &Tlv<'a>) -> DerResult<Spki<'a>> {
    let mut outer = der::sequence(tlv)?;
    let info = outer.read(der::SEQUENCE)?;
    outer.read(der::SEQUENCE)?;
    outer.read(der::BIT_STRING)?;
    outer.finish()?;
    let mut r = Reader::new(info.content);
    r.read(der::INTEGER)?;
    r.read(der::SEQUENCE)?;
    let spki = parse_spki(&r.read(der::SEQUENCE)?)?;
    r.read(der::explicit(0))?;
    r.finish()?;
    Ok(spki)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spki::key_info;
    use crate::spki::tests::ED25519_SPKI;

    #[test]
    fn bare_spki_is_found() {
        let (source, spki) = locate_spki(ED25519_SPKI).unwrap();
        assert_eq!(source, SpkiSource::PublicKey);
        assert_eq!(spki.der, ED25519_SPKI);
        assert_eq!(key_info(&spki).unwrap().key_type, "ed25519");
    }

    #[test]
    fn garbage_is_an_error_with_a_kind_not_a_panic() {
        for (bad, kind) in [
            (&[][..], ErrorKind::Empty),
            (&[0x30], ErrorKind::Truncated),
            (&[0x30, 0x00], ErrorKind::Empty),
            (&[0x04, 0x01, 0x00], ErrorKind::UnexpectedTag),
            (
                &[0x30, 0x03, 0x02, 0x01, 0x00, 0x00],
                ErrorKind::TrailingData,
            ),
        ] {
            let e = locate_spki(bad).unwrap_err();
            assert_eq!(e.kind(), kind, "{bad:?}: {e}");
        }
        let e = locate_spki(&[0x04, 0x01, 0x00]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "not a certificate, CSR or public key: certificate: expected tag 0x30, found 0x04"
        );
    }
}
