// SPDX-License-Identifier: Apache-2.0
//! The certificate framing (RFC 5280 4.1): where each element of a certificate is, found by TLV
//! framing alone and kept exactly as encoded. Nothing is decoded here but the SPKI's structure,
//! so that a broken name or extension never loses the pin.

use std::fmt;

use crate::der::{self, read_header, DerError, DerResult, Reader, Tlv};
use crate::error::{ErrorKind, HasKind};
use crate::spki::{parse_spki, Spki};

/// A DER error and the element it was found in (`tbs_certificate: serial`, ...).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FrameError {
    pub at: &'static str,
    pub error: DerError,
}

impl FrameError {
    pub fn new(at: &'static str, error: DerError) -> Self {
        FrameError { at, error }
    }
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.at, self.error)
    }
}

impl HasKind for FrameError {
    fn kind(&self) -> ErrorKind {
        self.error.kind()
    }
}

/// The elements of a TBSCertificate (RFC 5280 4.1), found by TLV framing only, each exactly as
/// encoded. The SPKI is only framed here; `parse_spki` reads it.
#[derive(Clone, Debug)]
pub struct TbsFields<'a> {
    pub version: Option<Tlv<'a>>,
    pub serial: Tlv<'a>,
    pub signature: Tlv<'a>,
    pub issuer: Tlv<'a>,
    pub validity: Tlv<'a>,
    pub subject: Tlv<'a>,
    pub spki: Tlv<'a>,
    pub extensions: Option<Tlv<'a>>,
    /// What is wrong after the key: an element that does not frame, or stray bytes. The
    /// extensions read before it are kept.
    pub after_key: DerResult<()>,
}

/// Reads the content of a TBSCertificate. It fails only when an element up to and including the
/// SPKI cannot be framed: what follows the key is optional to a pin, and goes to `after_key`.
pub fn read_tbs(content: &[u8]) -> Result<TbsFields<'_>, FrameError> {
    let mut r = Reader::new(content);
    let version = r
        .read_optional(der::explicit(0))
        .map_err(|e| FrameError::new("tbs_certificate: version", e))?;
    let mut field = |at| r.read_any().map_err(|e| FrameError::new(at, e));
    let serial = field("tbs_certificate: serial")?;
    let signature = field("tbs_certificate: signature")?;
    let issuer = field("tbs_certificate: issuer")?;
    let validity = field("tbs_certificate: validity")?;
    let subject = field("tbs_certificate: subject")?;
    let spki = field("tbs_certificate: subject_public_key_info")?;
    let mut extensions = None;
    let after_key = (|| {
        r.read_optional(der::implicit(1))?;
        r.read_optional(der::implicit(2))?;
        extensions = r.read_optional(der::explicit(3))?;
        r.finish()
    })();
    Ok(TbsFields {
        version,
        serial,
        signature,
        issuer,
        validity,
        subject,
        spki,
        extensions,
        after_key,
    })
}

/// A certificate found by TLV framing only (RFC 5280 4.1), with its key read.
#[derive(Clone, Debug)]
pub struct Framed<'a> {
    pub tbs: TbsFields<'a>,
    pub spki: Spki<'a>,
    /// The TBSCertificate exactly as encoded, when the certificate is all there and the TBS
    /// reads to its end: what a CT log's TBS hash starts from.
    pub tbs_der: Option<&'a [u8]>,
    pub signature_algorithm: Option<Tlv<'a>>,
    /// What is wrong with the framing around the SPKI (truncation, trailing bytes, ...).
    pub problems: Vec<FrameError>,
}

/// Locates the TBS elements up to and including the SPKI. The certificate may be cut short after
/// the SPKI, or carry stray bytes, and still give its key; both are reported in `problems`.
pub fn frame(data: &[u8]) -> Result<Framed<'_>, FrameError> {
    let mut problems = Vec::new();
    let (outer, certificate) = open_sequence(data, "certificate", &mut problems)?;
    if let Some(stray) = certificate.map(|c| data.len() - c.len()).filter(|&n| n > 0) {
        problems.push(FrameError::new(
            "certificate",
            DerError::TrailingData(stray),
        ));
    }
    let (content, tbs_element) = open_sequence(outer, "tbs_certificate", &mut problems)?;
    let tbs = read_tbs(content)?;
    let spki = parse_spki(&tbs.spki).map_err(|e| FrameError::new("subject_public_key_info", e))?;
    if let Err(e) = &tbs.after_key {
        problems.push(FrameError::new("tbs_certificate: after the key", e.clone()));
    }

    let mut signature_algorithm = None;
    if let Some(tbs_element) = tbs_element {
        let after: DerResult<()> = (|| {
            let mut r = Reader::new(&outer[tbs_element.len()..]);
            signature_algorithm = Some(r.read(der::SEQUENCE)?);
            r.read(der::BIT_STRING)?;
            r.finish()
        })();
        if let Err(e) = after {
            problems.push(FrameError::new("certificate: signature", e));
        }
    }
    let tbs_der = tbs_element.filter(|_| certificate.is_some() && tbs.after_key.is_ok());
    Ok(Framed {
        tbs,
        spki,
        tbs_der,
        signature_algorithm,
        problems,
    })
}

/// The content of the SEQUENCE at the start of `data`, cut to what is present when the input ends
/// early (noted in `problems`), and the whole element when it is all there.
fn open_sequence<'a>(
    data: &'a [u8],
    what: &'static str,
    problems: &mut Vec<FrameError>,
) -> Result<(&'a [u8], Option<&'a [u8]>), FrameError> {
    let h = read_header(data).map_err(|e| FrameError::new(what, e))?;
    if h.tag != der::SEQUENCE {
        let found = DerError::UnexpectedTag {
            expected: der::SEQUENCE,
            found: h.tag,
        };
        return Err(FrameError::new(what, found));
    }
    let end = h.header_len.saturating_add(h.content_len);
    if end > data.len() {
        let cut = DerError::Truncated {
            needed: end,
            available: data.len(),
        };
        problems.push(FrameError::new(what, cut));
        return Ok((&data[h.header_len..], None));
    }
    Ok((&data[h.header_len..end], Some(&data[..end])))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tlv(tag: u8, parts: &[&[u8]]) -> Vec<u8> {
        let content = parts.concat();
        assert!(content.len() < 0x80);
        [&[tag, content.len() as u8][..], &content].concat()
    }

    /// A certificate of the smallest elements that frame: `extra` goes into the TBS after the
    /// key.
    fn certificate(extra: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let alg = tlv(der::SEQUENCE, &[&[der::OID, 1, 0x2a]]);
        let spki = tlv(der::SEQUENCE, &[&alg, &[der::BIT_STRING, 1, 0]]);
        let empty = [der::SEQUENCE, 0];
        let tbs = tlv(
            der::SEQUENCE,
            &[
                &[der::INTEGER, 1, 1],
                &alg,
                &empty,
                &empty,
                &empty,
                &spki,
                extra,
            ],
        );
        let cert = tlv(der::SEQUENCE, &[&tbs, &alg, &[der::BIT_STRING, 1, 0]]);
        (cert, tbs)
    }

    #[test]
    fn the_tbs_is_whole_only_when_all_of_it_and_the_certificate_are_there() {
        let (cert, tbs) = certificate(&[]);
        let f = frame(&cert).unwrap();
        assert!(f.problems.is_empty());
        assert_eq!(f.tbs_der, Some(&tbs[..]));

        // A stray byte after the certificate is a problem, not a damaged TBS.
        let longer = [&cert[..], &[0]].concat();
        let f = frame(&longer).unwrap();
        assert_eq!(f.problems[0].error, DerError::TrailingData(1));
        assert_eq!(f.tbs_der, Some(&tbs[..]));

        // Cut in the signature: the key is there, the certificate is not all there.
        let f = frame(&cert[..cert.len() - 1]).unwrap();
        assert_eq!(f.problems[0].kind(), ErrorKind::Truncated);
        assert_eq!(f.tbs_der, None);

        // Something after the key that is no TBS element.
        let (cert, _) = certificate(&[der::NULL, 0]);
        let f = frame(&cert).unwrap();
        assert_eq!(f.problems[0].at, "tbs_certificate: after the key");
        assert_eq!(f.tbs_der, None);
    }
}
