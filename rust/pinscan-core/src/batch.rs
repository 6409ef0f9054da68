// SPDX-License-Identifier: Apache-2.0
//! Many certificates to Arrow record batches, in parallel, in input order.

use std::sync::Arc;

use arrow_array::builder::{
    BooleanBuilder, ListBuilder, StringViewBuilder, TimestampMicrosecondBuilder, UInt32Builder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{ArrowError, SchemaRef};

use crate::certificate::{parse_framed_into, CertRow};
use crate::error::{ErrorKind, Problem};
use crate::frame::frame;
use crate::hash::{base64_into, hex_into, sha256, sha256_many};
use crate::table::{self, append_list, ErrorColumns};

/// Rows per record batch: large enough to amortise the builders, small enough to spread the work
/// over every thread and to keep each batch's buffers in cache while they are filled.
pub const CHUNK_ROWS: usize = 4096;

#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    /// Also compute `spki_sha1`, for legacy OkHttp `sha1/` pins.
    pub sha1: bool,
}

/// Column builders in schema order; `finish` gives one record batch. Strings are Arrow string
/// views, which polars stores natively: it adopts them without copying, where plain Utf8 columns
/// cost it a conversion of every string (about a third of the whole call, measured).
struct Columns {
    sha1: bool,
    cert_sha256: StringViewBuilder,
    spki_sha256: StringViewBuilder,
    spki_sha1: StringViewBuilder,
    subject: StringViewBuilder,
    issuer: StringViewBuilder,
    serial: StringViewBuilder,
    not_before: TimestampMicrosecondBuilder,
    not_after: TimestampMicrosecondBuilder,
    key_type: StringViewBuilder,
    key_bits: UInt32Builder,
    curve: StringViewBuilder,
    sig_alg: StringViewBuilder,
    is_ca: BooleanBuilder,
    path_len: UInt32Builder,
    dns_names: ListBuilder<StringViewBuilder>,
    ip_addresses: ListBuilder<StringViewBuilder>,
    ski: StringViewBuilder,
    aki: StringViewBuilder,
    sct_count: UInt32Builder,
    errors: ErrorColumns,
}

impl Columns {
    fn new(options: Options, rows: usize) -> Self {
        let text = || StringViewBuilder::with_capacity(rows);
        let time = || TimestampMicrosecondBuilder::with_capacity(rows).with_timezone("UTC");
        Columns {
            sha1: options.sha1,
            cert_sha256: text(),
            spki_sha256: text(),
            spki_sha1: text(),
            subject: text(),
            issuer: text(),
            serial: text(),
            not_before: time(),
            not_after: time(),
            key_type: text(),
            key_bits: UInt32Builder::with_capacity(rows),
            curve: text(),
            sig_alg: text(),
            is_ca: BooleanBuilder::with_capacity(rows),
            path_len: UInt32Builder::with_capacity(rows),
            dns_names: ListBuilder::new(text()),
            ip_addresses: ListBuilder::new(StringViewBuilder::new()),
            ski: text(),
            aki: text(),
            sct_count: UInt32Builder::with_capacity(rows),
            errors: ErrorColumns::new(),
        }
    }

    fn push(&mut self, row: &CertRow) {
        let (mut hex_buf, mut b64_buf) = ([0; 64], [0; 44]);
        self.cert_sha256
            .append_option(row.cert_sha256.as_ref().map(|d| hex_into(d, &mut hex_buf)));
        self.spki_sha256.append_option(
            row.spki_sha256
                .as_ref()
                .map(|d| base64_into(d, &mut b64_buf)),
        );
        self.spki_sha1
            .append_option(row.spki_sha1.as_ref().map(|d| base64_into(d, &mut b64_buf)));
        self.subject.append_option(row.subject.as_deref());
        self.issuer.append_option(row.issuer.as_deref());
        self.serial.append_option(row.serial.as_deref());
        self.not_before.append_option(row.not_before);
        self.not_after.append_option(row.not_after);
        self.key_type.append_option(row.key_type.as_deref());
        self.key_bits.append_option(row.key_bits);
        self.curve.append_option(row.curve.as_deref());
        self.sig_alg.append_option(row.sig_alg.as_deref());
        self.is_ca.append_option(row.is_ca);
        self.path_len.append_option(row.path_len);
        append_list(&mut self.dns_names, row.dns_names.as_deref());
        append_list(&mut self.ip_addresses, row.ip_addresses.as_deref());
        self.ski.append_option(row.ski.as_deref());
        self.aki.append_option(row.aki.as_deref());
        self.sct_count.append_option(row.sct_count);
        self.errors.push(&row.errors, &[]);
    }

    fn finish(mut self) -> Result<RecordBatch, ArrowError> {
        let spki_sha1: ArrayRef = Arc::new(self.spki_sha1.finish());
        let mut columns: Vec<(&str, ArrayRef)> = vec![
            ("cert_sha256", Arc::new(self.cert_sha256.finish())),
            ("spki_sha256", Arc::new(self.spki_sha256.finish())),
            ("subject", Arc::new(self.subject.finish())),
            ("issuer", Arc::new(self.issuer.finish())),
            ("serial", Arc::new(self.serial.finish())),
            ("not_before", Arc::new(self.not_before.finish())),
            ("not_after", Arc::new(self.not_after.finish())),
            ("key_type", Arc::new(self.key_type.finish())),
            ("key_bits", Arc::new(self.key_bits.finish())),
            ("curve", Arc::new(self.curve.finish())),
            ("sig_alg", Arc::new(self.sig_alg.finish())),
            ("is_ca", Arc::new(self.is_ca.finish())),
            ("path_len", Arc::new(self.path_len.finish())),
            ("dns_names", Arc::new(self.dns_names.finish())),
            ("ip_addresses", Arc::new(self.ip_addresses.finish())),
            ("ski", Arc::new(self.ski.finish())),
            ("aki", Arc::new(self.aki.finish())),
            ("sct_count", Arc::new(self.sct_count.finish())),
        ];
        columns.extend(self.errors.finish());
        if self.sha1 {
            columns.insert(2, ("spki_sha1", spki_sha1));
        }
        table::record_batch(columns)
    }
}

/// Rows framed and hashed together: enough messages (two per certificate) to keep every lane of
/// the multi-buffer SHA-256 busy, few enough that the group's certificates stay in cache between
/// hashing and parsing.
const GROUP_ROWS: usize = 256;

const PANICKED: &str = "internal: the parser panicked on this input; please report it";

fn build(inputs: &[Option<&[u8]>], options: Options) -> Result<RecordBatch, ArrowError> {
    let mut columns = Columns::new(options, inputs.len());
    // Each input's framing, `None` for a null input.
    let mut framings = Vec::with_capacity(GROUP_ROWS);
    let mut msgs: Vec<&[u8]> = Vec::with_capacity(2 * GROUP_ROWS);
    let mut digests = Vec::with_capacity(2 * GROUP_ROWS);
    // One row, parsed into again and again: its string buffers are reused.
    let mut row = CertRow::default();
    for group in inputs.chunks(GROUP_ROWS) {
        framings.clear();
        msgs.clear();
        for input in group {
            let Some(der) = *input else {
                framings.push(None);
                continue;
            };
            msgs.push(der);
            let framed = frame(der);
            if let Ok(f) = &framed {
                msgs.push(f.spki.der);
            }
            framings.push(Some(framed));
        }
        digests.clear();
        digests.resize(msgs.len(), [0; 32]);
        sha256_many(&msgs, &mut digests);
        let mut digests = digests.iter().copied();
        for framing in framings.drain(..) {
            match framing {
                None => {
                    row = CertRow {
                        errors: vec![Problem::new(ErrorKind::NullInput, "input: null")],
                        ..CertRow::default()
                    }
                }
                Some(framed) => {
                    let cert = digests.next().expect("a digest per certificate");
                    let spki = match &framed {
                        Ok(_) => digests.next().expect("a digest per SPKI"),
                        Err(_) => [0; 32],
                    };
                    parse_framed_into(&mut row, framed, cert, spki, options.sha1);
                }
            }
            columns.push(&row);
        }
    }
    columns.finish()
}

/// The row of an input the parser panicked on: its fingerprint, and an error saying so.
fn panicked(input: Option<&[u8]>, options: Options) -> Result<RecordBatch, ArrowError> {
    let mut columns = Columns::new(options, 1);
    columns.push(&CertRow {
        cert_sha256: input.map(sha256),
        errors: vec![Problem::new(ErrorKind::Internal, PANICKED)],
        ..CertRow::default()
    });
    columns.finish()
}

/// The schema of the batches `certificates` returns.
pub fn schema(options: Options) -> SchemaRef {
    build(&[], options)
        .expect("an empty batch always builds")
        .schema()
}

/// One row per input, in order, as record batches of up to `CHUNK_ROWS` rows each, built on the
/// current rayon pool. `None` inputs (Arrow nulls) give a row whose `error` says so.
pub fn certificates(
    inputs: &[Option<&[u8]>],
    options: Options,
) -> Result<Vec<RecordBatch>, ArrowError> {
    table::batches(
        inputs,
        CHUNK_ROWS,
        |chunk| build(chunk, options),
        |input| panicked(*input, options),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::hex;
    use arrow_array::{Array, StringViewArray};

    #[test]
    fn one_row_per_input_in_order() {
        let inputs: Vec<Vec<u8>> = (0..(CHUNK_ROWS * 2 + 3))
            .map(|i| i.to_le_bytes().to_vec())
            .collect();
        let mut refs: Vec<Option<&[u8]>> = inputs.iter().map(|v| Some(v.as_slice())).collect();
        refs[5] = None;
        let batches = certificates(&refs, Options { sha1: true }).unwrap();
        assert_eq!(batches.len(), 3);
        assert_eq!(
            batches.iter().map(RecordBatch::num_rows).sum::<usize>(),
            refs.len()
        );
        assert!(batches
            .iter()
            .all(|b| b.schema() == schema(Options { sha1: true })));
        let fp = batches[0].column_by_name("cert_sha256").unwrap();
        let fp = fp.as_any().downcast_ref::<StringViewArray>().unwrap();
        assert_eq!(fp.value(0), hex(&sha256(&inputs[0])));
        assert!(fp.is_null(5));
        let last = batches[2].column_by_name("cert_sha256").unwrap();
        let last = last.as_any().downcast_ref::<StringViewArray>().unwrap();
        assert_eq!(last.value(2), hex(&sha256(inputs.last().unwrap())));
        // Eight bytes of a counter are no certificate; a null is a null.
        let kinds = batches[0].column_by_name("error_kind").unwrap();
        let kinds = kinds.as_any().downcast_ref::<StringViewArray>().unwrap();
        assert_eq!(kinds.value(5), "null_input");
        assert_eq!(kinds.value(6), "unexpected_tag");
    }

    #[test]
    fn sha1_column_only_on_request() {
        assert!(schema(Options { sha1: false })
            .column_with_name("spki_sha1")
            .is_none());
        assert!(schema(Options { sha1: true })
            .column_with_name("spki_sha1")
            .is_some());
        assert_eq!(schema(Options::default()).fields().len(), 20);
    }
}
