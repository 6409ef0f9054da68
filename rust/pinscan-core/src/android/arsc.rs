// SPDX-License-Identifier: Apache-2.0
//! The resource table (`resources.arsc`): what a resource id such as the manifest's
//! `android:networkSecurityConfig` (0x7f..) names, for every configuration. Lookups go by id,
//! never by name, so obfuscated names (`aapt2 optimize --collapse-resource-names`) and shortened
//! paths (`--shorten-resource-paths`) resolve as they do on a device.

use super::read::{chunks, u16_at, u32_at, u8_at, Chunk, DecodeError, Result, StringPool};
use super::value::Value;

const TABLE: u16 = 0x0002;
const PACKAGE: u16 = 0x0200;
const TYPE: u16 = 0x0201;

const SPARSE: u8 = 0x01;
const OFFSET16: u8 = 0x02;
const ENTRY_COMPLEX: u16 = 0x0001;
const ENTRY_COMPACT: u16 = 0x0008;

/// One resource: its type and entry names (possibly obfuscated) and its value in each
/// configuration that defines it (`""` is the default configuration, `"v24"` API 24 and up).
#[derive(Clone, Debug, PartialEq)]
pub struct Resource {
    pub type_name: String,
    pub key: String,
    pub values: Vec<(String, Value)>,
}

/// The resource `id` in the table `data`; None when no package or type holds it. A bag (style,
/// array) is listed as `Value::Null`: nothing pinscan looks up is one.
pub fn resolve(data: &[u8], id: u32) -> Result<Option<Resource>> {
    let top = Chunk::read(data, 0)?;
    if top.kind != TABLE {
        return Err(DecodeError::new("not a resource table", 0));
    }
    let mut values_pool = None;
    for chunk in chunks(data, top.header, top.end())? {
        match chunk.kind {
            super::read::STRING_POOL if values_pool.is_none() => {
                values_pool = Some(StringPool::read(data, chunk)?);
            }
            PACKAGE => {
                let pool = values_pool.as_ref().ok_or_else(|| {
                    DecodeError::new("package before the value strings", chunk.at)
                })?;
                if let Some(found) = package(data, chunk, id, pool)? {
                    return Ok(Some(found));
                }
            }
            _ => {}
        }
    }
    Ok(None)
}

fn package(data: &[u8], chunk: Chunk, id: u32, pool: &StringPool) -> Result<Option<Resource>> {
    let body = chunk.body(data);
    if u32_at(body, 8)? != id >> 24 {
        return Ok(None);
    }
    let type_strings = u32_at(body, 268)? as usize;
    let key_strings = u32_at(body, 276)? as usize;
    let type_id_offset = if chunk.header >= 288 {
        u32_at(body, 284)?
    } else {
        0
    };
    let types = StringPool::read(body, Chunk::read(body, type_strings)?)?;
    let keys = StringPool::read(body, Chunk::read(body, key_strings)?)?;
    let wanted_type = (id >> 16) & 0xff;
    let wanted_entry = id & 0xffff;
    let mut found: Option<Resource> = None;
    for child in chunks(body, chunk.header, body.len())? {
        if child.kind != TYPE || u32::from(u8_at(body, child.at + 8)?) != wanted_type {
            continue;
        }
        let Some((key, value)) = entry(body, child, wanted_entry, pool)? else {
            continue;
        };
        let config = config_name(body, child.at + 20)?;
        let resource = found.get_or_insert_with(|| Resource {
            type_name: String::new(),
            key: String::new(),
            values: Vec::new(),
        });
        if resource.values.is_empty() {
            let type_index = wanted_type
                .checked_sub(1 + type_id_offset)
                .ok_or_else(|| DecodeError::new("type id below the package's first", child.at))?;
            resource.type_name = types.get(type_index)?;
            resource.key = keys.get(key)?;
        }
        resource.values.push((config, value));
    }
    Ok(found)
}

/// Entry `index` of one type chunk: its key-string index and value.
fn entry(data: &[u8], chunk: Chunk, index: u32, pool: &StringPool) -> Result<Option<(u32, Value)>> {
    let body = chunk.body(data);
    let flags = u8_at(body, 9)?;
    let count = u32_at(body, 12)?;
    let entries_start = u32_at(body, 16)? as usize;
    let offsets = chunk.header;
    let offset = if flags & SPARSE != 0 {
        // Sorted (index u16, offset/4 u16) pairs.
        let (mut lo, mut hi) = (0usize, count as usize);
        let mut hit = None;
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let at = u16_at(body, offsets + 4 * mid)?;
            match u32::from(at).cmp(&index) {
                std::cmp::Ordering::Equal => {
                    hit = Some(usize::from(u16_at(body, offsets + 4 * mid + 2)?) * 4);
                    break;
                }
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
            }
        }
        match hit {
            Some(offset) => offset,
            None => return Ok(None),
        }
    } else if index >= count {
        return Ok(None);
    } else if flags & OFFSET16 != 0 {
        match u16_at(body, offsets + 2 * index as usize)? {
            0xffff => return Ok(None),
            o => usize::from(o) * 4,
        }
    } else {
        match u32_at(body, offsets + 4 * index as usize)? {
            u32::MAX => return Ok(None),
            o => o as usize,
        }
    };
    let at = entries_start
        .checked_add(offset)
        .ok_or_else(|| DecodeError::new("entry offset overflows", chunk.at))?;
    let size = u16_at(body, at)?;
    let entry_flags = u16_at(body, at + 2)?;
    let strings = |i| pool.get(i);
    if entry_flags & ENTRY_COMPACT != 0 {
        // A compact entry: key in the size field, type in the flags' high byte, data after.
        let mut value = [0u8; 8];
        value[3] = (entry_flags >> 8) as u8;
        value[4..].copy_from_slice(&u32_at(body, at + 4)?.to_le_bytes());
        return Ok(Some((u32::from(size), Value::read(&value, 0, strings)?)));
    }
    let key = u32_at(body, at + 4)?;
    if entry_flags & ENTRY_COMPLEX != 0 {
        return Ok(Some((key, Value::Null)));
    }
    let value = Value::read(body, at + usize::from(size), strings)
        .map_err(|e| DecodeError::new(e.what, chunk.at + e.offset))?;
    Ok(Some((key, value)))
}

/// A short name for a `ResTable_config`: `""` for the default, `v24` for an API level, the
/// language, and `+other` when it sets anything else.
fn config_name(data: &[u8], at: usize) -> Result<String> {
    let size = (u32_at(data, at)? as usize).min(64);
    let bytes = super::read::slice(data, at, size, "configuration")?;
    let field = |range: std::ops::Range<usize>| bytes.get(range).unwrap_or(&[]);
    let mut parts = Vec::new();
    let language = field(8..10);
    if language.iter().any(|b| *b != 0) && language.iter().all(u8::is_ascii_lowercase) {
        parts.push(String::from_utf8_lossy(language).into_owned());
    }
    let sdk = u16_at(bytes, 24).unwrap_or(0);
    if sdk != 0 {
        parts.push(format!("v{sdk}"));
    }
    let rest = bytes
        .iter()
        .enumerate()
        .skip(4)
        .any(|(i, b)| *b != 0 && !(8..10).contains(&i) && !(24..26).contains(&i));
    if rest {
        parts.push("+other".to_owned());
    }
    Ok(parts.join("-"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::android::axml::tests::{chunk, pool};

    /// A table with package 0x7f, type 1 `xml`, entry 0 `a` = "res/xml/a.xml", in the default
    /// configuration and in `v24` (a dense and a sparse type chunk).
    fn table() -> Vec<u8> {
        let type_chunk = |sparse: bool, sdk: u16| {
            let mut config = vec![0u8; 64];
            config[..4].copy_from_slice(&64u32.to_le_bytes());
            config[24..26].copy_from_slice(&sdk.to_le_bytes());
            let mut header = vec![1, if sparse { SPARSE } else { 0 }, 0, 0];
            header.extend(1u32.to_le_bytes());
            header.extend((8 + 12 + 64 + 4u32).to_le_bytes());
            header.extend(config);
            let offsets = if sparse {
                [0u16.to_le_bytes(), 0u16.to_le_bytes()].concat()
            } else {
                0u32.to_le_bytes().to_vec()
            };
            let entry = [
                &8u16.to_le_bytes()[..],
                &0u16.to_le_bytes(),
                &0u32.to_le_bytes(),
                &8u16.to_le_bytes(),
                &[0, 0x03],
                &0u32.to_le_bytes(),
            ]
            .concat();
            chunk(TYPE, &header, &[offsets, entry].concat())
        };
        let types = pool(&["xml"], true);
        let keys = pool(&["a"], false);
        let mut header = 0x7fu32.to_le_bytes().to_vec();
        header.extend([0u8; 256]);
        header.extend(288u32.to_le_bytes());
        header.extend(0u32.to_le_bytes());
        header.extend((288 + types.len() as u32).to_le_bytes());
        header.extend([0u8; 8]);
        let body = [types, keys, type_chunk(false, 0), type_chunk(true, 24)].concat();
        let package = chunk(PACKAGE, &header, &body);
        let values = pool(&["res/xml/a.xml"], true);
        chunk(TABLE, &1u32.to_le_bytes(), &[values, package].concat())
    }

    #[test]
    fn resolves_an_id_in_every_configuration() {
        let found = resolve(&table(), 0x7f01_0000).unwrap().unwrap();
        assert_eq!((found.type_name.as_str(), found.key.as_str()), ("xml", "a"));
        let path = Value::String("res/xml/a.xml".into());
        assert_eq!(
            found.values,
            vec![("".into(), path.clone()), ("v24".into(), path)]
        );
        assert_eq!(resolve(&table(), 0x7f01_0001).unwrap(), None);
        assert_eq!(resolve(&table(), 0x7f02_0000).unwrap(), None);
        assert_eq!(resolve(&table(), 0x0101_0000).unwrap(), None);
    }

    #[test]
    fn every_truncation_and_flipped_byte_is_an_error_or_an_answer() {
        let data = table();
        for cut in 0..data.len() {
            let _ = resolve(&data[..cut], 0x7f01_0000);
            let mut flipped = data.clone();
            flipped[cut] ^= 0xff;
            let _ = resolve(&flipped, 0x7f01_0000);
        }
    }
}
