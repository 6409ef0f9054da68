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
