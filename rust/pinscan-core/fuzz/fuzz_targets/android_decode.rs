// SPDX-License-Identifier: Apache-2.0
//! The Android decoders on arbitrary bytes: binary XML, aapt2's protocol-buffer XML, a resource
//! table lookup (binary and proto) of an id taken from the input, and DEX. Each returns a tree
//! or an error value; nothing may panic, hang or allocate beyond what the input justifies.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pinscan_core::android::{arsc, axml, dex, proto};

fuzz_target!(|data: &[u8]| {
    let _ = axml::parse(data);
    let _ = proto::parse_xml(data);
    let id = data.get(..4).map_or(0x7f01_0000, |b| {
        u32::from_le_bytes([b[0], b[1], b[2], b[3]])
    });
    let _ = arsc::resolve(data, id);
    let _ = arsc::resolve(data, 0x7f01_0000);
    let _ = proto::resolve(data, id);
    let _ = dex::pins(data);
});
