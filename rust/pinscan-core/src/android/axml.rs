// SPDX-License-Identifier: Apache-2.0
//! Android's compiled binary XML (`ResXMLTree`): what `AndroidManifest.xml` and `res/xml/*.xml`
//! become in an APK. A string pool, a resource map (attribute ids), then namespace, element and
//! text chunks in document order.

use super::read::{chunks, slice, u16_at, u32_at, Chunk, DecodeError, Result, StringPool};
use super::value::{Attribute, Element, Node, Value, MAX_DEPTH};

const XML: u16 = 0x0003;
const RESOURCE_MAP: u16 = 0x0180;
const START_NAMESPACE: u16 = 0x0100;
const END_NAMESPACE: u16 = 0x0101;
const START_ELEMENT: u16 = 0x0102;
const END_ELEMENT: u16 = 0x0103;
const CDATA: u16 = 0x0104;

/// Whether `data` starts like a compiled XML document.
pub fn sniff(data: &[u8]) -> bool {
    u16_at(data, 0) == Ok(XML) && u16_at(data, 2) == Ok(8)
}

/// The document's root element.
pub fn parse(data: &[u8]) -> Result<Element> {
    let top = Chunk::read(data, 0)?;
    if top.kind != XML {
        return Err(DecodeError::new("not a compiled XML document", 0));
    }
    let mut pool: Option<StringPool> = None;
    let mut ids: &[u8] = &[];
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    for chunk in chunks(data, top.header, top.end())? {
        let body = chunk.body(data);
        match chunk.kind {
            super::read::STRING_POOL if pool.is_none() => {
                pool = Some(StringPool::read(data, chunk)?);
            }
            RESOURCE_MAP => ids = &body[chunk.header..],
            START_NAMESPACE | END_NAMESPACE => {}
            START_ELEMENT | END_ELEMENT | CDATA => {
                let pool = pool
                    .as_ref()
                    .ok_or_else(|| DecodeError::new("element before the string pool", chunk.at))?;
                let line = u32_at(body, 8)?;
                let ext = chunk.header;
                let at = |e: DecodeError| DecodeError::new(e.what, chunk.at + e.offset);
                match chunk.kind {
                    START_ELEMENT => {
                        if root.is_some() {
                            return Err(DecodeError::new("a second root element", chunk.at));
                        }
                        if stack.len() >= MAX_DEPTH {
                            return Err(DecodeError::new(
                                format!("nesting deeper than {MAX_DEPTH} elements"),
                                chunk.at,
                            ));
                        }
                        let element = start_element(body, ext, line, pool, ids).map_err(at)?;
                        stack.push(element);
                    }
                    END_ELEMENT => {
                        let mut done = stack.pop().ok_or_else(|| {
                            DecodeError::new("end of an element never started", chunk.at)
                        })?;
                        done.end_line = line;
                        match stack.last_mut() {
                            Some(parent) => parent.content.push(Node::Element(done)),
                            None => root = Some(done),
                        }
                    }
                    _ => {
                        let text = pool.get(u32_at(body, ext).map_err(at)?)?;
                        if let Some(parent) = stack.last_mut() {
                            parent.content.push(Node::Text(text));
                        }
                    }
                }
            }
            // Unknown chunks are skipped, as Android's parser skips them.
            _ => {}
        }
    }
    if !stack.is_empty() {
        return Err(DecodeError::new(
            "document ends inside an element",
            data.len(),
        ));
    }
    root.ok_or_else(|| DecodeError::new("no root element", top.header))
}

fn start_element(
    body: &[u8],
    ext: usize,
    line: u32,
    pool: &StringPool,
    ids: &[u8],
) -> Result<Element> {
    let namespace = pool.optional(u32_at(body, ext)?)?.unwrap_or_default();
    let name = pool.get(u32_at(body, ext + 4)?)?;
    let start = usize::from(u16_at(body, ext + 8)?);
    let size = usize::from(u16_at(body, ext + 10)?);
    let count = usize::from(u16_at(body, ext + 12)?);
    if size < 20 {
        return Err(DecodeError::new(format!("attribute size {size}"), ext));
    }
    let first = ext + start;
    slice(body, first, count.saturating_mul(size), "attributes")?;
    let mut attributes = Vec::with_capacity(count);
    for i in 0..count {
        let at = first + i * size;
        let name_index = u32_at(body, at + 4)?;
        let raw = pool.optional(u32_at(body, at + 8)?)?;
        let resource_id = u32_at(ids, 4 * name_index as usize).unwrap_or(0);
        attributes.push(Attribute {
            namespace: pool.optional(u32_at(body, at)?)?.unwrap_or_default(),
            name: pool.get(name_index)?,
            resource_id,
            raw,
            value: Value::read(body, at + 12, |i| pool.get(i))?,
        });
    }
    Ok(Element {
        namespace,
        name,
        line,
        end_line: line,
        attributes,
        content: Vec::new(),
    })
}

#[cfg(test)]
pub(super) mod tests {
    //! Also the builders `arsc`'s tests use.
    use super::*;

    pub fn chunk(kind: u16, header: &[u8], body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend(kind.to_le_bytes());
        out.extend((8 + header.len() as u16).to_le_bytes());
        out.extend((8 + header.len() as u32 + body.len() as u32).to_le_bytes());
        out.extend(header);
        out.extend(body);
        out
    }

    /// A string pool of `strings`, UTF-8 or UTF-16.
    pub fn pool(strings: &[&str], utf8: bool) -> Vec<u8> {
        let mut data = Vec::new();
        let mut offsets = Vec::new();
        for s in strings {
            offsets.extend((data.len() as u32).to_le_bytes());
            if utf8 {
                data.push(s.encode_utf16().count() as u8);
                data.push(s.len() as u8);
                data.extend(s.as_bytes());
                data.push(0);
            } else {
                data.extend((s.encode_utf16().count() as u16).to_le_bytes());
                data.extend(s.encode_utf16().flat_map(u16::to_le_bytes));
                data.extend([0, 0]);
            }
        }
        while data.len() % 4 != 0 {
            data.push(0);
        }
        let mut header = Vec::new();
        header.extend((strings.len() as u32).to_le_bytes());
        header.extend(0u32.to_le_bytes());
        header.extend(if utf8 { 0x100u32 } else { 0 }.to_le_bytes());
        header.extend((28 + offsets.len() as u32).to_le_bytes());
        header.extend(0u32.to_le_bytes());
        chunk(STRING_POOL_TYPE, &header, &[offsets, data].concat())
    }
    const STRING_POOL_TYPE: u16 = 0x0001;

    fn node(kind: u16, line: u32, ext: &[u8]) -> Vec<u8> {
        let mut header = line.to_le_bytes().to_vec();
        header.extend(u32::MAX.to_le_bytes());
        chunk(kind, &header, ext)
    }

    /// `<config><domain sub="1">example.com</domain></config>`: strings 0 config, 1 domain,
    /// 2 sub, 3 example.com.
    fn document(utf8: bool) -> Vec<u8> {
        let strings = pool(&["config", "domain", "sub", "example.com"], utf8);
        let start = |name: u32, attrs: &[(u32, u8, u32)]| {
            let mut ext = Vec::new();
            ext.extend(u32::MAX.to_le_bytes());
            ext.extend(name.to_le_bytes());
            ext.extend(20u16.to_le_bytes());
            ext.extend(20u16.to_le_bytes());
            ext.extend((attrs.len() as u16).to_le_bytes());
            ext.extend([0u8; 6]);
            for (name, kind, data) in attrs {
                ext.extend(u32::MAX.to_le_bytes());
                ext.extend(name.to_le_bytes());
                ext.extend(u32::MAX.to_le_bytes());
                ext.extend(8u16.to_le_bytes());
                ext.extend([0, *kind]);
                ext.extend(data.to_le_bytes());
            }
            node(START_ELEMENT, 1, &ext)
        };
        let end = |name: u32| {
            node(
                END_ELEMENT,
                3,
                &[u32::MAX.to_le_bytes(), name.to_le_bytes()].concat(),
            )
        };
        let text = node(
            CDATA,
            2,
            &[&3u32.to_le_bytes()[..], &[8, 0, 0, 0, 0, 0, 0, 0]].concat(),
        );
        let body = [
            strings,
            start(0, &[]),
            start(1, &[(2, 0x10, 1)]),
            text,
            end(1),
            end(0),
        ]
        .concat();
        chunk(XML, &[], &body)
    }

    #[test]
    fn decodes_elements_typed_attributes_and_text_in_both_encodings() {
        for utf8 in [true, false] {
            let root = parse(&document(utf8)).unwrap();
            assert_eq!(root.name, "config");
            let Node::Element(domain) = &root.content[0] else {
                panic!("no element")
            };
            assert_eq!(domain.attributes[0].name, "sub");
            assert_eq!(domain.attributes[0].value, Value::IntDec(1));
            assert_eq!(domain.content, vec![Node::Text("example.com".into())]);
            assert_eq!(root.end_line, 3);
        }
    }

    #[test]
    fn every_truncation_and_flipped_byte_is_an_error_or_a_tree() {
        let data = document(true);
        for cut in 0..data.len() {
            let _ = parse(&data[..cut]);
            let mut flipped = data.clone();
            flipped[cut] ^= 0xff;
            let _ = parse(&flipped);
        }
        assert!(parse(&data[..data.len() - 1]).is_err());
    }

    #[test]
    fn refuses_what_is_not_compiled_xml() {
        assert!(parse(b"<?xml version='1.0'?><a/>").is_err());
        assert!(parse(&[]).is_err());
    }
}
