// SPDX-License-Identifier: Apache-2.0
//! DEX bytecode (`classes*.dex`): the pin strings a method loads, and the hosts OkHttp's
//! `CertificatePinner.Builder.add(host, pins...)` ties them to where the bytecode spells the call
//! out: `const-string`s into registers that feed a `new-array`/`aput-object` or
//! `filled-new-array` and then the `invoke-virtual`.
//!
//! The walk is linear and forgets every register at a branch target or exception handler, so a
//! value is only tied along straight-line code, never guessed across a join.

use std::collections::{HashMap, HashSet};

use super::read::{slice, u16_at, u32_at, DecodeError, Result};

const BUILDER: &str = "Lokhttp3/CertificatePinner$Builder;";
/// Arrays longer than this are not followed (no real pin call has that many pins).
const MAX_ARRAY: i64 = 256;

/// What a DEX holds for pinning: `calls` are `(host, pins)` at `add` call sites, in code order;
/// `strings` every `sha256/`/`sha1/` string of the string table; `untied` the call sites whose
/// host or pins array the walk could not follow.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DexPins {
    pub calls: Vec<(String, Vec<String>)>,
    pub strings: Vec<String>,
    pub untied: usize,
}

struct Dex<'a> {
    data: &'a [u8],
    string_ids: usize,
    string_count: usize,
}

impl<'a> Dex<'a> {
    fn string(&self, index: u32) -> Result<String> {
        let index = index as usize;
        if index >= self.string_count {
            return Err(DecodeError::new(format!("string {index} out of range"), 0));
        }
        let at = u32_at(self.data, self.string_ids + 4 * index)? as usize;
        let mut at = at;
        uleb(self.data, &mut at)?; // the length in UTF-16 units
        let rest = self
            .data
            .get(at..)
            .ok_or_else(|| DecodeError::new("string data past the end", at))?;
        let end = rest
            .iter()
            .position(|b| *b == 0)
            .ok_or_else(|| DecodeError::new("unterminated string", at))?;
        // Modified UTF-8 differs from UTF-8 only for NUL and supplementary characters, which no
        // host or pin holds.
        Ok(String::from_utf8_lossy(&rest[..end]).into_owned())
    }
}

fn uleb(data: &[u8], at: &mut usize) -> Result<u32> {
    let mut value = 0u32;
    for shift in [0, 7, 14, 21, 28] {
        let byte = *data
            .get(*at)
            .ok_or_else(|| DecodeError::new("truncated uleb128", *at))?;
        *at += 1;
        value |= u32::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(DecodeError::new("uleb128 longer than 5 bytes", *at))
}

fn sleb(data: &[u8], at: &mut usize) -> Result<i32> {
    let start = *at;
    let raw = uleb(data, at)?;
    let bits = 7 * (*at - start) as u32;
    Ok(if bits < 32 {
        ((raw << (32 - bits)) as i32) >> (32 - bits)
    } else {
        raw as i32
    })
}

/// Pin strings and `CertificatePinner.Builder.add` call sites in one DEX file.
pub fn pins(data: &[u8]) -> Result<DexPins> {
    if data.get(..4) != Some(b"dex\n") {
        return Err(DecodeError::new("not a DEX file", 0));
    }
    let count = |at| u32_at(data, at).map(|n| n as usize);
    let dex = Dex {
        data,
        string_count: count(56)?,
        string_ids: count(60)?,
    };
    slice(
        data,
        dex.string_ids,
        dex.string_count.saturating_mul(4),
        "string ids",
    )?;
    let (type_count, type_ids) = (count(64)?, count(68)?);
    let (method_count, method_ids) = (count(88)?, count(92)?);
    let (class_count, class_defs) = (count(96)?, count(100)?);
    slice(data, type_ids, type_count.saturating_mul(4), "type ids")?;
    slice(
        data,
        method_ids,
        method_count.saturating_mul(8),
        "method ids",
    )?;
    slice(
        data,
        class_defs,
        class_count.saturating_mul(32),
        "class defs",
    )?;

    let mut found = DexPins::default();
    for i in 0..dex.string_count {
        let s = dex.string(i as u32)?;
        if s.starts_with("sha256/") || s.starts_with("sha1/") {
            found.strings.push(s);
        }
    }

    // The `add` methods: any method id named `add` on the Builder class.
    let mut builder_type = None;
    for t in 0..type_count {
        if dex.string(u32_at(data, type_ids + 4 * t)?)? == BUILDER {
            builder_type = Some(t);
            break;
        }
    }
    let mut adds = HashSet::new();
    if let Some(builder) = builder_type {
        for m in 0..method_count {
            let at = method_ids + 8 * m;
            if usize::from(u16_at(data, at)?) == builder
                && dex.string(u32_at(data, at + 4)?)? == "add"
            {
                adds.insert(m as u32);
            }
        }
    }
    if adds.is_empty() {
        return Ok(found);
    }
    // Code items of a real file occupy distinct bytes; hostile ones may overlap to make the walk
    // quadratic. The code walked is bounded by the file's size.
    let mut budget = data.len();
    for c in 0..class_count {
        let class_data = count(class_defs + 32 * c + 24)?;
        if class_data == 0 {
            continue;
        }
        let mut at = class_data;
        let sizes = [
            uleb(data, &mut at)?,
            uleb(data, &mut at)?,
            uleb(data, &mut at)?,
            uleb(data, &mut at)?,
        ];
        for _ in 0..u64::from(sizes[0]) + u64::from(sizes[1]) {
            uleb(data, &mut at)?;
            uleb(data, &mut at)?;
        }
        for _ in 0..u64::from(sizes[2]) + u64::from(sizes[3]) {
            uleb(data, &mut at)?;
            uleb(data, &mut at)?;
            let code = uleb(data, &mut at)? as usize;
            if code != 0 {
                let units = u32_at(data, code + 12)? as usize;
                budget = budget.checked_sub(2 * units).ok_or_else(|| {
                    DecodeError::new("code items hold more code than the file", code)
                })?;
                method_calls(&dex, code, &adds, &mut found)?;
            }
        }
    }
    Ok(found)
}

#[derive(Clone, Debug)]
enum Reg {
    Str(u32),
    Int(i64),
    Array(Vec<Option<u32>>),
}

/// The width in code units of the instruction at `pc`, payloads included.
fn width(insns: &[u8], pc: usize) -> Result<usize> {
    let unit = u16_at(insns, 2 * pc)?;
    let op = (unit & 0xff) as u8;
    Ok(match op {
        0x00 => match unit {
            0x0100 => 4 + 2 * usize::from(u16_at(insns, 2 * pc + 2)?),
            0x0200 => 2 + 4 * usize::from(u16_at(insns, 2 * pc + 2)?),
            0x0300 => {
                let elem = usize::from(u16_at(insns, 2 * pc + 2)?);
                let n = u32_at(insns, 2 * pc + 4)? as usize;
                4 + (elem.saturating_mul(n)).div_ceil(2)
            }
            _ => 1,
        },
        0x01 | 0x04 | 0x07 | 0x0a..=0x12 | 0x1d | 0x1e | 0x21 | 0x27 | 0x28 => 1,
        0x3e..=0x43 | 0x73 | 0x79 | 0x7a | 0x7b..=0x8f | 0xb0..=0xcf | 0xe3..=0xf9 => 1,
        0x03 | 0x06 | 0x09 | 0x14 | 0x17 | 0x1b | 0x24..=0x26 | 0x2a..=0x2c => 3,
        0x6e..=0x72 | 0x74..=0x78 | 0xfc | 0xfd => 3,
        0x18 => 5,
        0xfa | 0xfb => 4,
        _ => 2,
    })
}

fn method_calls(dex: &Dex, code: usize, adds: &HashSet<u32>, found: &mut DexPins) -> Result<()> {
    let data = dex.data;
    let tries = usize::from(u16_at(data, code + 6)?);
    let units = u32_at(data, code + 12)? as usize;
    let insns = slice(data, code + 16, units.saturating_mul(2), "code")?;
    let unit = |pc: usize, i: usize| u16_at(insns, 2 * (pc + i)).map(usize::from);

    // Where control can arrive other than from the instruction before.
    let mut joins = HashSet::new();
    let mut pc = 0;
    while pc < units {
        let op = unit(pc, 0)? & 0xff;
        let target = |offset: i64| (pc as i64 + offset).max(0) as usize;
        match op {
            0x28 => {
                joins.insert(target(i64::from((unit(pc, 0)? >> 8) as u8 as i8)));
            }
            0x29 | 0x32..=0x3d => {
                joins.insert(target(i64::from(unit(pc, 1)? as u16 as i16)));
            }
            0x2a => {
                let offset = (unit(pc, 1)? | (unit(pc, 2)? << 16)) as u32 as i32;
                joins.insert(target(i64::from(offset)));
            }
            0x2b | 0x2c => {
                let payload = target(i64::from(
                    (unit(pc, 1)? | (unit(pc, 2)? << 16)) as u32 as i32,
                ));
                let n = unit(payload, 1)?;
                let first = if op == 0x2b {
                    payload + 4
                } else {
                    payload + 2 + 2 * n
                };
                for k in 0..n {
                    let offset = (unit(first, 2 * k)? | (unit(first, 2 * k + 1)? << 16)) as u32;
                    joins.insert(target(i64::from(offset as i32)));
                }
            }
            _ => {}
        }
        pc += width(insns, pc)?;
    }
    if tries > 0 {
        let mut at = code + 16 + 2 * units + if units % 2 == 1 { 2 } else { 0 } + 8 * tries;
        let lists = uleb(data, &mut at)?;
        for _ in 0..lists {
            let size = sleb(data, &mut at)?;
            for _ in 0..size.unsigned_abs() {
                uleb(data, &mut at)?;
                joins.insert(uleb(data, &mut at)? as usize);
            }
            if size <= 0 {
                joins.insert(uleb(data, &mut at)? as usize);
            }
        }
    }

    let mut regs: HashMap<usize, Reg> = HashMap::new();
    let mut pending: Option<Reg> = None;
    let mut pc = 0;
    while pc < units {
        if joins.contains(&pc) {
            regs.clear();
        }
        let first = unit(pc, 0)?;
        let op = first & 0xff;
        let (a4, b4, aa) = ((first >> 8) & 0xf, first >> 12, first >> 8);
        let result = pending.take();
        match op {
            0x12 => {
                let value = i64::from(((b4 as u8) << 4) as i8 >> 4);
                regs.insert(a4, Reg::Int(value));
            }
            0x13 => {
                regs.insert(aa, Reg::Int(i64::from(unit(pc, 1)? as u16 as i16)));
            }
            0x14 => {
                let value = (unit(pc, 1)? | (unit(pc, 2)? << 16)) as u32 as i32;
                regs.insert(aa, Reg::Int(i64::from(value)));
            }
            0x1a => {
                regs.insert(aa, Reg::Str(unit(pc, 1)? as u32));
            }
            0x1b => {
                regs.insert(aa, Reg::Str((unit(pc, 1)? | (unit(pc, 2)? << 16)) as u32));
            }
            0x07..=0x09 => {
                let (to, from) = match op {
                    0x07 => (a4, b4),
                    0x08 => (aa, unit(pc, 1)?),
                    _ => (unit(pc, 1)?, unit(pc, 2)?),
                };
                match regs.get(&from).cloned() {
                    Some(value) => regs.insert(to, value),
                    None => regs.remove(&to),
                };
            }
            0x23 => match regs.get(&b4) {
                Some(Reg::Int(n)) if (0..=MAX_ARRAY).contains(n) => {
                    regs.insert(a4, Reg::Array(vec![None; *n as usize]));
                }
                _ => {
                    regs.remove(&a4);
                }
            },
            0x4d => {
                let (array, index) = (unit(pc, 1)? & 0xff, unit(pc, 1)? >> 8);
                let value = match regs.get(&aa) {
                    Some(Reg::Str(s)) => Some(*s),
                    _ => None,
                };
                if let Some(Reg::Int(i)) = regs.get(&index).cloned() {
                    if let Some(Reg::Array(items)) = regs.get_mut(&array) {
                        if let Some(slot) = usize::try_from(i).ok().and_then(|i| items.get_mut(i)) {
                            *slot = value;
                        }
                    }
                }
            }
            0x24 | 0x25 => {
                let args = arguments(op == 0x25, first, unit(pc, 2)?);
                let items = args
                    .iter()
                    .map(|r| match regs.get(r) {
                        Some(Reg::Str(s)) => Some(*s),
                        _ => None,
                    })
                    .collect();
                pending = Some(Reg::Array(items));
            }
            0x0c => match result {
                Some(array) => {
                    regs.insert(aa, array);
                }
                None => {
                    regs.remove(&aa);
                }
            },
            0x6e | 0x74 => {
                let method = unit(pc, 1)? as u32;
                let args = arguments(op == 0x74, first, unit(pc, 2)?);
                if adds.contains(&method) {
                    match (
                        args.get(1).and_then(|r| regs.get(r)),
                        args.get(2).and_then(|r| regs.get(r)),
                    ) {
                        (Some(Reg::Str(host)), Some(Reg::Array(items)))
                            if items.iter().all(Option::is_some) =>
                        {
                            let mut pins = Vec::new();
                            for item in items.iter().flatten() {
                                pins.push(dex.string(*item)?);
                            }
                            found.calls.push((dex.string(*host)?, pins));
                        }
                        _ => found.untied += 1,
                    }
                }
            }
            _ => forget_written(op, first, insns, pc, &mut regs)?,
        }
        if matches!(op, 0x0e..=0x11 | 0x27..=0x2a) {
            regs.clear();
        }
        pc += width(insns, pc)?;
    }
    Ok(())
}

/// The registers of an invoke or filled-new-array: `{vC, vD, vE, vF, vG}` (35c) or a range
/// (3rc).
fn arguments(range: bool, first: usize, third: usize) -> Vec<usize> {
    let count = if range { first >> 8 } else { first >> 12 };
    if range {
        (third..third + count).collect()
    } else {
        let regs = [
            third & 0xf,
            (third >> 4) & 0xf,
            (third >> 8) & 0xf,
            (third >> 12) & 0xf,
            (first >> 8) & 0xf,
        ];
        regs[..count.min(5)].to_vec()
    }
}

/// Forgets what an instruction pinscan does not follow may have written.
fn forget_written(
    op: usize,
    first: usize,
    insns: &[u8],
    pc: usize,
    regs: &mut HashMap<usize, Reg>,
) -> Result<()> {
    let written = match op {
        // vA in the low nibble of the high byte (12x, 22c, 22s and the 2addr forms).
        0x01 | 0x04 | 0x20 | 0x21 | 0x52..=0x58 | 0x7b..=0x8f | 0xb0..=0xd7 => {
            Some((first >> 8) & 0xf)
        }
        // vAA in the high byte.
        0x02 | 0x05 | 0x0a | 0x0b | 0x0d | 0x15..=0x19 | 0x1c | 0x22 | 0x26 | 0x2d..=0x31 => {
            Some(first >> 8)
        }
        0x44..=0x4a | 0x60..=0x66 | 0x90..=0xaf | 0xd8..=0xe2 | 0xfe | 0xff => Some(first >> 8),
        // vAAAA in the second unit (32x).
        0x03 | 0x06 => Some(usize::from(u16_at(insns, 2 * pc + 2)?)),
        _ => None,
    };
    if let Some(r) = written {
        // A wide value also takes the next register.
        regs.remove(&r);
        regs.remove(&(r + 1));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invoke_and_range_registers() {
        // invoke-virtual {v0, v1, v2}: count 3 in the top nibble, C/D/E in the third unit.
        assert_eq!(arguments(false, 0x306e, 0x0210), vec![0, 1, 2]);
        // invoke-virtual/range {v5 .. v7}.
        assert_eq!(arguments(true, 0x0374, 5), vec![5, 6, 7]);
    }

    #[test]
    fn widths_of_payloads_are_bounded_by_the_code() {
        // A packed-switch payload claiming 0xffff entries in two code units: an error, not a
        // walk past the end.
        let insns = [0x00, 0x01, 0xff, 0xff];
        assert_eq!(width(&insns, 0).unwrap(), 4 + 2 * 0xffff);
        assert!(width(&insns, 2).is_err());
    }

    #[test]
    fn refuses_what_is_not_dex() {
        assert!(pins(b"").is_err());
        assert!(pins(b"PK\x03\x04").is_err());
        let mut header = b"dex\n035\0".to_vec();
        header.resize(0x70, 0);
        header[56..60].copy_from_slice(&1000u32.to_le_bytes());
        assert!(pins(&header).is_err(), "string ids past the end");
    }
}
