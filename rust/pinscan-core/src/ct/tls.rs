// SPDX-License-Identifier: Apache-2.0
//! A cursor over TLS presentation-language structures (RFC 8446 3): big-endian integers and
//! length-prefixed vectors, as CT encodes its leaves.

use super::error::CtError;

pub(super) struct Tls<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Tls<'a> {
    pub(super) fn new(data: &'a [u8]) -> Self {
        Tls { data, pos: 0 }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.pos >= self.data.len()
    }

    /// How far the cursor has read.
    pub(super) fn pos(&self) -> usize {
        self.pos
    }

    /// The bytes read since the cursor was at `start`.
    pub(super) fn since(&self, start: usize) -> &'a [u8] {
        &self.data[start.min(self.pos)..self.pos]
    }

    pub(super) fn bytes(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], CtError> {
        let available = self.data.len() - self.pos;
        if n > available {
            return Err(CtError::Truncated {
                what,
                needed: n,
                available,
            });
        }
        let out = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    /// An `n`-byte unsigned integer, `n` at most 8.
    pub(super) fn uint(&mut self, n: usize, what: &'static str) -> Result<u64, CtError> {
        let b = self.bytes(n, what)?;
        Ok(b.iter().fold(0u64, |acc, &x| (acc << 8) | u64::from(x)))
    }

    /// A vector with an `n`-byte length prefix. CT's prefixes are 1 to 3 bytes, so the length
    /// always fits a `usize`.
    pub(super) fn vector(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], CtError> {
        let len = self
            .bytes(n, what)?
            .iter()
            .fold(0usize, |acc, &x| (acc << 8) | usize::from(x));
        self.bytes(len, what)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_and_truncation() {
        let mut t = Tls::new(&[0, 2, 0xaa, 0xbb, 0, 0, 5, 1]);
        assert_eq!(t.vector(2, "a"), Ok(&[0xaa, 0xbb][..]));
        assert_eq!(
            t.vector(3, "b"),
            Err(CtError::Truncated {
                what: "b",
                needed: 5,
                available: 1
            })
        );
        assert_eq!(t.pos(), 7);
        assert_eq!(t.uint(1, "c"), Ok(1));
        assert!(t.is_empty());
    }
}
