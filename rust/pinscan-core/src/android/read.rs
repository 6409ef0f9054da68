// SPDX-License-Identifier: Apache-2.0
//! Bounds-checked little-endian reads and the one error type of the Android decoders.

use std::fmt;

/// Why bytes could not be decoded, and where (a byte offset in the input).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError {
    pub what: String,
    pub offset: usize,
}

impl DecodeError {
    pub fn new(what: impl Into<String>, offset: usize) -> Self {
        DecodeError {
            what: what.into(),
            offset,
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (at byte {})", self.what, self.offset)
    }
}

impl std::error::Error for DecodeError {}

pub type Result<T> = std::result::Result<T, DecodeError>;

pub fn u8_at(data: &[u8], at: usize) -> Result<u8> {
    data.get(at)
        .copied()
        .ok_or_else(|| DecodeError::new("truncated", at))
}

pub fn u16_at(data: &[u8], at: usize) -> Result<u16> {
    match data.get(at..at.saturating_add(2)) {
        Some(b) if b.len() == 2 => Ok(u16::from_le_bytes([b[0], b[1]])),
        _ => Err(DecodeError::new("truncated", at)),
    }
}

pub fn u32_at(data: &[u8], at: usize) -> Result<u32> {
    match data.get(at..at.saturating_add(4)) {
        Some(b) if b.len() == 4 => Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        _ => Err(DecodeError::new("truncated", at)),
    }
}

/// `data[at..at + len]`, or an error naming `what`.
pub fn slice<'a>(data: &'a [u8], at: usize, len: usize, what: &str) -> Result<&'a [u8]> {
    at.checked_add(len)
        .and_then(|end| data.get(at..end))
        .ok_or_else(|| DecodeError::new(format!("{what} runs past the end"), at))
}

/// A resource chunk header (`ResChunk_header`): type, header size, total size, checked to lie
/// inside `data` from `at`.
#[derive(Clone, Copy, Debug)]
pub struct Chunk {
    pub kind: u16,
    pub header: usize,
    pub size: usize,
    pub at: usize,
}

impl Chunk {
    pub fn read(data: &[u8], at: usize) -> Result<Chunk> {
        let kind = u16_at(data, at)?;
        let header = usize::from(u16_at(data, at + 2)?);
        let size = u32_at(data, at + 4)? as usize;
        if header < 8 || size < header {
            return Err(DecodeError::new(
                format!("chunk 0x{kind:04x} has header size {header} and size {size}"),
                at,
            ));
        }
        slice(data, at, size, "chunk")?;
        Ok(Chunk {
            kind,
            header,
            size,
            at,
        })
    }

    pub fn body<'a>(&self, data: &'a [u8]) -> &'a [u8] {
        &data[self.at..self.at + self.size]
    }

    pub fn end(&self) -> usize {
        self.at + self.size
    }
}

/// The chunks inside `data[start..end]`, in order.
pub fn chunks(data: &[u8], start: usize, end: usize) -> Result<Vec<Chunk>> {
    let mut found = Vec::new();
    let mut at = start;
    while at + 8 <= end {
        let chunk = Chunk::read(data, at)?;
        if chunk.end() > end {
            return Err(DecodeError::new("chunk runs past its parent", at));
        }
        at = chunk.end();
        found.push(chunk);
    }
    Ok(found)
}

/// A string pool (`ResStringPool`), UTF-8 or UTF-16, read one string at a time on demand.
#[derive(Clone, Copy, Debug)]
pub struct StringPool<'a> {
    data: &'a [u8],
    /// Offset of the pool chunk in `data`.
    at: usize,
    count: usize,
    utf8: bool,
    strings_start: usize,
}

pub const STRING_POOL: u16 = 0x0001;

impl<'a> StringPool<'a> {
    pub fn read(data: &'a [u8], chunk: Chunk) -> Result<Self> {
        if chunk.kind != STRING_POOL {
            return Err(DecodeError::new("expected a string pool", chunk.at));
        }
        let body = chunk.body(data);
        let count = u32_at(body, 8)? as usize;
        let flags = u32_at(body, 16)?;
        let strings_start = u32_at(body, 20)? as usize;
        // The offsets array must fit in the chunk: this bounds `count` by the input's size.
        slice(
            body,
            chunk.header,
            count.saturating_mul(4),
            "string offsets",
        )
        .map_err(|e| DecodeError::new(e.what, chunk.at))?;
        Ok(StringPool {
            data: body,
            at: chunk.at,
            count,
            utf8: flags & 0x100 != 0,
            strings_start,
        })
    }

    /// String `index`; an error for an index outside the pool or a malformed string.
    pub fn get(&self, index: u32) -> Result<String> {
        let index = index as usize;
        if index >= self.count {
            return Err(DecodeError::new(
                format!("string {index} outside a pool of {}", self.count),
                self.at,
            ));
        }
        let header = usize::from(u16_at(self.data, 2)?);
        let offset = u32_at(self.data, header + 4 * index)? as usize;
        let at = self
            .strings_start
            .checked_add(offset)
            .ok_or_else(|| DecodeError::new("string offset overflows", self.at))?;
        let bad = |what: &str| DecodeError::new(format!("string {index}: {what}"), self.at + at);
        if self.utf8 {
            let (_, n) = utf8_length(self.data, at)?;
            let (len, m) = utf8_length(self.data, at + n)?;
            let bytes =
                slice(self.data, at + n + m, len, "string").map_err(|_| bad("truncated"))?;
            // aapt writes modified UTF-8 for supplementary characters now and then: keep going.
            Ok(String::from_utf8_lossy(bytes).into_owned())
        } else {
            let first = u16_at(self.data, at).map_err(|_| bad("truncated"))?;
            let (len, n) = if first & 0x8000 != 0 {
                let second = u16_at(self.data, at + 2).map_err(|_| bad("truncated"))?;
                ((usize::from(first & 0x7fff) << 16) | usize::from(second), 4)
            } else {
                (usize::from(first), 2)
            };
            let bytes = slice(self.data, at + n, len.saturating_mul(2), "string")
                .map_err(|_| bad("truncated"))?;
            let units: Vec<u16> = bytes
                .chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]))
                .collect();
            Ok(String::from_utf16_lossy(&units))
        }
    }

    /// `get`, with the "no string" index 0xffffffff as None.
    pub fn optional(&self, index: u32) -> Result<Option<String>> {
        if index == u32::MAX {
            Ok(None)
        } else {
            self.get(index).map(Some)
        }
    }
}

fn utf8_length(data: &[u8], at: usize) -> Result<(usize, usize)> {
    let first = u8_at(data, at)?;
    if first & 0x80 != 0 {
        let second = u8_at(data, at + 1)?;
        Ok(((usize::from(first & 0x7f) << 8) | usize::from(second), 2))
    } else {
        Ok((usize::from(first), 1))
    }
}
