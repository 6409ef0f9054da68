// SPDX-License-Identifier: Apache-2.0
//! aapt2's protocol-buffer forms, as an `.aab` stores them: `XmlNode` (`Resources.proto`) for
//! `base/manifest/AndroidManifest.xml` and `base/res/xml/*.xml`, and `ResourceTable` for
//! `base/resources.pb`. Only the few messages needed are decoded, by hand: unknown fields are
//! skipped as protobuf says.

use super::arsc::Resource;
use super::read::{DecodeError, Result};
use super::value::{Attribute, Element, Node, Value, MAX_DEPTH};

enum Field<'a> {
    Varint(u64),
    Fixed32(u32),
    Bytes(&'a [u8]),
    Other,
}

/// The fields of one message, in order; an error for a malformed one.
fn fields(data: &[u8], base: usize) -> Result<Vec<(u32, Field<'_>)>> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < data.len() {
        let tag = varint(data, &mut at, base)?;
        let number = u32::try_from(tag >> 3)
            .map_err(|_| DecodeError::new("field number out of range", base + at))?;
        let field = match tag & 7 {
            0 => Field::Varint(varint(data, &mut at, base)?),
            1 => {
                at = skip(data, at, 8, base)?;
                Field::Other
            }
            2 => {
                let len = usize::try_from(varint(data, &mut at, base)?)
                    .map_err(|_| DecodeError::new("length out of range", base + at))?;
                let start = at;
                at = skip(data, at, len, base)?;
                Field::Bytes(&data[start..at])
            }
            5 => {
                let start = at;
                at = skip(data, at, 4, base)?;
                let b = &data[start..at];
                Field::Fixed32(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            }
            wire => {
                return Err(DecodeError::new(
                    format!("unsupported wire type {wire}"),
                    base + at,
                ))
            }
        };
        out.push((number, field));
    }
    Ok(out)
}

fn skip(data: &[u8], at: usize, len: usize, base: usize) -> Result<usize> {
    match at.checked_add(len) {
        Some(end) if end <= data.len() => Ok(end),
        _ => Err(DecodeError::new("field runs past the end", base + at)),
    }
}

fn varint(data: &[u8], at: &mut usize, base: usize) -> Result<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *data
            .get(*at)
            .ok_or_else(|| DecodeError::new("truncated varint", base + *at))?;
        *at += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(DecodeError::new("varint longer than 10 bytes", base + *at))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn offset_of(data: &[u8], part: &[u8]) -> usize {
    (part.as_ptr() as usize).saturating_sub(data.as_ptr() as usize)
}

/// The root element of an `XmlNode` document.
pub fn parse_xml(data: &[u8]) -> Result<Element> {
    match node(data, data, 0)? {
        Node::Element(e) => Ok(e),
        Node::Text(_) => Err(DecodeError::new("the document is a text node", 0)),
    }
}

fn node(doc: &[u8], data: &[u8], depth: usize) -> Result<Node> {
    if depth >= MAX_DEPTH {
        return Err(DecodeError::new(
            format!("nesting deeper than {MAX_DEPTH} elements"),
            offset_of(doc, data),
        ));
    }
    let mut line = 0;
    let mut found = None;
    for (number, field) in fields(data, offset_of(doc, data))? {
        match (number, field) {
            (1, Field::Bytes(b)) => found = Some(Node::Element(element(doc, b, depth)?)),
            (2, Field::Bytes(b)) => found = Some(Node::Text(text(b))),
            (3, Field::Bytes(b)) => line = source_line(doc, b)?,
            _ => {}
        }
    }
    match found {
        Some(Node::Element(mut e)) => {
            e.line = line;
            e.end_line = line;
            Ok(Node::Element(e))
        }
        Some(text) => Ok(text),
        None => Err(DecodeError::new(
            "a node that is neither element nor text",
            offset_of(doc, data),
        )),
    }
}

fn source_line(doc: &[u8], data: &[u8]) -> Result<u32> {
    let mut line = 0;
    for (number, field) in fields(data, offset_of(doc, data))? {
        if let (1, Field::Varint(v)) = (number, field) {
            line = v as u32;
        }
    }
    Ok(line)
}

fn element(doc: &[u8], data: &[u8], depth: usize) -> Result<Element> {
    let mut e = Element::default();
    for (number, field) in fields(data, offset_of(doc, data))? {
        match (number, field) {
            (2, Field::Bytes(b)) => e.namespace = text(b),
            (3, Field::Bytes(b)) => e.name = text(b),
            (4, Field::Bytes(b)) => e.attributes.push(attribute(doc, b)?),
            (5, Field::Bytes(b)) => e.content.push(node(doc, b, depth + 1)?),
            _ => {}
        }
    }
    Ok(e)
}

fn attribute(doc: &[u8], data: &[u8]) -> Result<Attribute> {
    let mut a = Attribute {
        namespace: String::new(),
        name: String::new(),
        resource_id: 0,
        raw: None,
        value: Value::Null,
    };
    let mut compiled = None;
    for (number, field) in fields(data, offset_of(doc, data))? {
        match (number, field) {
            (1, Field::Bytes(b)) => a.namespace = text(b),
            (2, Field::Bytes(b)) => a.name = text(b),
            (3, Field::Bytes(b)) => a.raw = Some(text(b)),
            (5, Field::Varint(v)) => a.resource_id = v as u32,
            (6, Field::Bytes(b)) => compiled = Some(item(doc, b)?),
            _ => {}
        }
    }
    // No compiled item: aapt2 keeps the attribute as the string it was written as.
    a.value = match compiled {
        Some(value) => value,
        None => Value::String(a.raw.clone().unwrap_or_default()),
    };
    Ok(a)
}

/// An `Item`: reference, string, file path or primitive.
fn item(doc: &[u8], data: &[u8]) -> Result<Value> {
    let mut value = Value::Null;
    for (number, field) in fields(data, offset_of(doc, data))? {
        let Field::Bytes(b) = field else { continue };
        value = match number {
            1 => reference(doc, b)?,
            // String, RawString, StyledString, FileReference: the text is field 1 of each.
            2..=5 => Value::String(first_string(doc, b)?),
            7 => primitive(doc, b)?,
            _ => value,
        };
    }
    Ok(value)
}

fn reference(doc: &[u8], data: &[u8]) -> Result<Value> {
    let (mut attribute, mut id) = (false, 0);
    for (number, field) in fields(data, offset_of(doc, data))? {
        match (number, field) {
            (1, Field::Varint(v)) => attribute = v == 1,
            (2, Field::Varint(v)) => id = v as u32,
            _ => {}
        }
    }
    Ok(if attribute {
        Value::Attribute(id)
    } else {
        Value::Reference(id)
    })
}

fn first_string(doc: &[u8], data: &[u8]) -> Result<String> {
    for (number, field) in fields(data, offset_of(doc, data))? {
        if let (1, Field::Bytes(b)) = (number, field) {
            return Ok(text(b));
        }
    }
    Ok(String::new())
}

fn primitive(doc: &[u8], data: &[u8]) -> Result<Value> {
    let mut value = Value::Null;
    for (number, field) in fields(data, offset_of(doc, data))? {
        value = match (number, field) {
            (3, Field::Fixed32(v)) => Value::Float(f32::from_bits(v)),
            (6, Field::Varint(v)) => Value::IntDec(v as i32),
            (7, Field::Varint(v)) => Value::IntHex(v as u32),
            (8, Field::Varint(v)) => Value::Bool(v != 0),
            (13, Field::Varint(v)) => Value::Other {
                kind: 0x05,
                data: v as u32,
            },
            (14, Field::Varint(v)) => Value::Other {
                kind: 0x06,
                data: v as u32,
            },
            (9..=12, Field::Varint(v)) => Value::Other {
                kind: 0x1c + (number - 9) as u8,
                data: v as u32,
            },
            _ => value,
        };
    }
    Ok(value)
}

/// The id inside a `PackageId`, `TypeId` or `EntryId` message.
fn id_message(doc: &[u8], data: &[u8]) -> Result<u32> {
    for (number, field) in fields(data, offset_of(doc, data))? {
        if let (1, Field::Varint(v)) = (number, field) {
            return Ok(v as u32);
        }
    }
    Ok(0)
}

/// The resource `id` in a `ResourceTable` (`resources.pb`), as `arsc::resolve` gives it from
/// `resources.arsc`. A file resource's value is its path (`res/xml/nsc.xml`).
pub fn resolve(data: &[u8], id: u32) -> Result<Option<Resource>> {
    let (package_id, type_id, entry_id) = (id >> 24, (id >> 16) & 0xff, id & 0xffff);
    for (number, field) in fields(data, 0)? {
        let (2, Field::Bytes(package)) = (number, field) else {
            continue;
        };
        let package_fields = fields(package, offset_of(data, package))?;
        let mut this_package = 0;
        for (n, f) in &package_fields {
            if let (1, Field::Bytes(b)) = (n, f) {
                this_package = id_message(data, b)?;
            }
        }
        if this_package != package_id {
            continue;
        }
        for (n, f) in package_fields {
            let (3, Field::Bytes(kind)) = (n, f) else {
                continue;
            };
            if let Some(found) = resource_type(data, kind, type_id, entry_id)? {
                return Ok(Some(found));
            }
        }
    }
    Ok(None)
}

fn resource_type(doc: &[u8], data: &[u8], type_id: u32, entry_id: u32) -> Result<Option<Resource>> {
    let type_fields = fields(data, offset_of(doc, data))?;
    let mut this_type = 0;
    let mut type_name = String::new();
    for (n, f) in &type_fields {
        match (n, f) {
            (1, Field::Bytes(b)) => this_type = id_message(doc, b)?,
            (2, Field::Bytes(b)) => type_name = text(b),
            _ => {}
        }
    }
    if this_type != type_id {
        return Ok(None);
    }
    for (n, f) in type_fields {
        let (3, Field::Bytes(entry)) = (n, f) else {
            continue;
        };
        let entry_fields = fields(entry, offset_of(doc, entry))?;
        let (mut this_entry, mut key) = (0, String::new());
        for (n, f) in &entry_fields {
            match (n, f) {
                (1, Field::Bytes(b)) => this_entry = id_message(doc, b)?,
                (2, Field::Bytes(b)) => key = text(b),
                _ => {}
            }
        }
        if this_entry != entry_id {
            continue;
        }
        let mut values = Vec::new();
        for (n, f) in entry_fields {
            let (6, Field::Bytes(config_value)) = (n, f) else {
                continue;
            };
            values.push(config_value_of(doc, config_value)?);
        }
        return Ok(Some(Resource {
            type_name,
            key,
            values,
        }));
    }
    Ok(None)
}

/// A `ConfigValue`: the configuration (named `""` when default, `+other` otherwise: an `.aab`
/// is split per configuration by bundletool anyway) and the `Value`'s item.
fn config_value_of(doc: &[u8], data: &[u8]) -> Result<(String, Value)> {
    let mut config = String::new();
    let mut value = Value::Null;
    for (n, f) in fields(data, offset_of(doc, data))? {
        match (n, f) {
            (1, Field::Bytes(b)) => {
                config = configuration(doc, b)?;
            }
            (2, Field::Bytes(b)) => {
                for (vn, vf) in fields(b, offset_of(doc, b))? {
                    if let (4, Field::Bytes(item_bytes)) = (vn, vf) {
                        value = item(doc, item_bytes)?;
                    }
                }
            }
            _ => {}
        }
    }
    Ok((config, value))
}

/// `Configuration` (`Configuration.proto`): the SDK version (field 19) as `v24`, anything else
/// set as `+other`.
fn configuration(doc: &[u8], data: &[u8]) -> Result<String> {
    let mut parts = Vec::new();
    let mut other = false;
    for (n, f) in fields(data, offset_of(doc, data))? {
        match (n, f) {
            (19, Field::Varint(v)) if v != 0 => parts.push(format!("v{v}")),
            (19, _) | (_, Field::Varint(0)) => {}
            (_, Field::Bytes([])) => {}
            _ => other = true,
        }
    }
    if other {
        parts.push("+other".to_owned());
    }
    Ok(parts.join("-"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(number: u32, data: &[u8]) -> Vec<u8> {
        let mut out = vec![(number << 3 | 2) as u8, data.len() as u8];
        out.extend(data);
        out
    }

    fn varint_field(number: u32, value: u8) -> Vec<u8> {
        vec![(number << 3) as u8, value]
    }

    /// `<domain includeSubdomains="1">example.com</domain>` at line 2, as aapt2 writes it.
    fn document() -> Vec<u8> {
        let prim = bytes(7, &varint_field(6, 1));
        let attribute = [
            bytes(2, b"includeSubdomains"),
            bytes(3, b"1"),
            bytes(6, &prim),
        ]
        .concat();
        let text = bytes(2, b"example.com");
        let element = [bytes(3, b"domain"), bytes(4, &attribute), bytes(5, &text)].concat();
        [bytes(1, &element), bytes(3, &varint_field(1, 2))].concat()
    }

    #[test]
    fn decodes_an_element_with_a_typed_attribute_and_text() {
        let root = parse_xml(&document()).unwrap();
        assert_eq!((root.name.as_str(), root.line), ("domain", 2));
        assert_eq!(root.attributes[0].value, Value::IntDec(1));
        assert_eq!(root.attributes[0].raw.as_deref(), Some("1"));
        assert_eq!(root.content, vec![Node::Text("example.com".into())]);
    }

    #[test]
    fn resolves_a_file_in_a_resource_table() {
        let id = |n: u8| bytes(1, &varint_field(1, n));
        let file = bytes(5, &bytes(1, b"res/xml/a.xml"));
        let value = bytes(2, &bytes(4, &file));
        let entry = [id(0), bytes(2, b"a"), bytes(6, &value)].concat();
        let kind = [id(1), bytes(2, b"xml"), bytes(3, &entry)].concat();
        let package = [id(0x7f), bytes(3, &kind)].concat();
        let table = bytes(2, &package);
        let found = resolve(&table, 0x7f01_0000).unwrap().unwrap();
        assert_eq!(found.key, "a");
        assert_eq!(
            found.values,
            vec![(String::new(), Value::String("res/xml/a.xml".into()))]
        );
        assert_eq!(resolve(&table, 0x7f01_0001).unwrap(), None);
    }

    #[test]
    fn every_truncation_and_flipped_byte_is_an_error_or_a_tree() {
        let data = document();
        for cut in 0..data.len() {
            let _ = parse_xml(&data[..cut]);
            let mut flipped = data.clone();
            flipped[cut] ^= 0xff;
            let _ = parse_xml(&flipped);
        }
        // Nesting is bounded: 300 levels of elements are refused, not recursed into.
        let mut nested = bytes(3, b"a");
        for _ in 0..300 {
            let node = bytes(1, &nested);
            let mut element = bytes(3, b"a");
            element.extend(varint_len_field(5, &node));
            nested = element;
        }
        assert!(parse_xml(&varint_len_field(1, &nested)).is_err());
    }

    /// A length-delimited field of any length (`bytes` takes lengths below 128 only).
    fn varint_len_field(number: u32, data: &[u8]) -> Vec<u8> {
        let mut out = vec![(number << 3 | 2) as u8];
        let mut len = data.len();
        while len >= 0x80 {
            out.push((len as u8) | 0x80);
            len >>= 7;
        }
        out.push(len as u8);
        out.extend(data);
        out
    }
}
