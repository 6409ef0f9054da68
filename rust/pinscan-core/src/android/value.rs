// SPDX-License-Identifier: Apache-2.0
//! What an attribute holds once compiled (`Res_value` in a binary XML, `Item` in aapt2's
//! protocol buffers), and the element tree both XML forms decode to.

use super::read::{u16_at, u32_at, u8_at, Result};

/// A compiled value, as typed as Android reads it: `includeSubdomains="1"` becomes an integer
/// that `getAttributeBooleanValue` reads as true; `@raw/ca` a resource id.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Reference(u32),
    Attribute(u32),
    String(String),
    Float(f32),
    IntDec(i32),
    IntHex(u32),
    Bool(bool),
    /// Dimensions, fractions, colours: kept as the raw type and data.
    Other {
        kind: u8,
        data: u32,
    },
}

impl Value {
    /// The type's name as the binding reports it.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Reference(_) => "reference",
            Value::Attribute(_) => "attribute",
            Value::String(_) => "string",
            Value::Float(_) => "float",
            Value::IntDec(_) => "int_dec",
            Value::IntHex(_) => "int_hex",
            Value::Bool(_) => "boolean",
            // TYPE_INT_COLOR_ARGB8 to TYPE_INT_COLOR_RGB4: integers to getAttributeBooleanValue.
            Value::Other {
                kind: 0x1c..=0x1f, ..
            } => "color",
            Value::Other { .. } => "other",
        }
    }

    /// A `Res_value` at `at`: size u16, res0 u8, dataType u8, data u32. `string` resolves a
    /// string-typed value's index.
    pub fn read(data: &[u8], at: usize, string: impl Fn(u32) -> Result<String>) -> Result<Value> {
        let _size = u16_at(data, at)?;
        let kind = u8_at(data, at + 3)?;
        let raw = u32_at(data, at + 4)?;
        Ok(match kind {
            0x00 => Value::Null,
            // 0x07 is a dynamic reference (a shared library's package id): still an id.
            0x01 | 0x07 => Value::Reference(raw),
            0x02 | 0x08 => Value::Attribute(raw),
            0x03 => Value::String(string(raw)?),
            0x04 => Value::Float(f32::from_bits(raw)),
            0x10 => Value::IntDec(raw as i32),
            0x11 => Value::IntHex(raw),
            0x12 => Value::Bool(raw != 0),
            kind => Value::Other { kind, data: raw },
        })
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Attribute {
    /// The namespace URI, empty for none.
    pub namespace: String,
    pub name: String,
    /// The framework or app attribute id (`android:networkSecurityConfig` is 0x010104eb); 0 for
    /// none. Android matches attributes by id when there is one, so an obfuscated name still
    /// counts.
    pub resource_id: u32,
    /// The text as written, when the compiler kept it.
    pub raw: Option<String>,
    pub value: Value,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Node {
    Element(Element),
    Text(String),
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct Element {
    pub namespace: String,
    pub name: String,
    pub line: u32,
    pub end_line: u32,
    pub attributes: Vec<Attribute>,
    pub content: Vec<Node>,
}

/// Documents nested deeper are refused: no Android XML file nests anywhere near this.
pub const MAX_DEPTH: usize = 200;
