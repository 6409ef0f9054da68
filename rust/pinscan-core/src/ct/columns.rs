// SPDX-License-Identifier: Apache-2.0
//! Entry rows to an Arrow record batch.

use std::sync::Arc;

use arrow_array::builder::{
    BinaryBuilder, Int64Builder, ListBuilder, StringViewBuilder, TimestampMicrosecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::ArrowError;

use super::entry::EntryRow;
use crate::hash::{base64_into, hex_into};
use crate::table::{append_list, record_batch, ErrorColumns};

pub(super) fn build(rows: &[EntryRow]) -> Result<RecordBatch, ArrowError> {
    let n = rows.len();
    let text = || StringViewBuilder::with_capacity(n);
    let time = || TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC");
    let (mut leaf_hash, mut entry_type) = (BinaryBuilder::with_capacity(n, 32 * n), text());
    let (mut timestamp, mut leaf_index) = (Int64Builder::with_capacity(n), Int64Builder::new());
    let (mut cert_sha256, mut tbs_sha256, mut spki_sha256) = (text(), text(), text());
    let (mut subject, mut common, mut issuer) = (text(), text(), text());
    let mut dns_names = ListBuilder::new(text());
    let (mut not_before, mut not_after) = (time(), time());
    let (mut issuer_sha256, mut errors) = (text(), ErrorColumns::new());
    let (mut hex_buf, mut b64_buf) = ([0; 64], [0; 44]);
    for row in rows {
        leaf_hash.append_option(row.leaf_hash.as_ref());
        entry_type.append_option(row.entry_type);
        timestamp.append_option(row.timestamp);
        leaf_index.append_option(row.leaf_index);
        cert_sha256.append_option(row.cert_sha256.as_ref().map(|d| hex_into(d, &mut hex_buf)));
        tbs_sha256.append_option(row.tbs_sha256.as_ref().map(|d| hex_into(d, &mut hex_buf)));
        let pin = row.cert.spki_sha256.as_ref();
        spki_sha256.append_option(pin.map(|d| base64_into(d, &mut b64_buf)));
        subject.append_option(row.cert.subject.as_deref());
        common.append_option(row.common_name.as_deref());
        append_list(&mut dns_names, row.cert.dns_names.as_deref());
        issuer.append_option(row.cert.issuer.as_deref());
        not_before.append_option(row.cert.not_before);
        not_after.append_option(row.cert.not_after);
        let issuer_fp = row.issuer_sha256.as_ref();
        issuer_sha256.append_option(issuer_fp.map(|d| hex_into(d, &mut hex_buf)));
        errors.push(&row.errors, &row.cert.errors);
    }
    let mut columns: Vec<(&str, ArrayRef)> = vec![
        ("leaf_hash", Arc::new(leaf_hash.finish())),
        ("entry_type", Arc::new(entry_type.finish())),
        ("timestamp", Arc::new(timestamp.finish())),
        ("leaf_index", Arc::new(leaf_index.finish())),
        ("cert_sha256", Arc::new(cert_sha256.finish())),
        ("tbs_sha256", Arc::new(tbs_sha256.finish())),
        ("spki_sha256", Arc::new(spki_sha256.finish())),
        ("subject", Arc::new(subject.finish())),
        ("common_name", Arc::new(common.finish())),
        ("dns_names", Arc::new(dns_names.finish())),
        ("issuer", Arc::new(issuer.finish())),
        ("not_before", Arc::new(not_before.finish())),
        ("not_after", Arc::new(not_after.finish())),
        ("issuer_sha256", Arc::new(issuer_sha256.finish())),
    ];
    columns.extend(errors.finish());
    record_batch(columns)
}
