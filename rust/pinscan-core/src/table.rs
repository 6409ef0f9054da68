// SPDX-License-Identifier: Apache-2.0
//! What the tables built here share: chunks of inputs turned into record batches in parallel,
//! with a panic costing only its own row; the `error` and `error_kind` columns; and a record
//! batch from named columns.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use arrow_array::builder::{ListBuilder, StringViewBuilder};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{ArrowError, Field, Schema};
use rayon::prelude::*;

use crate::error::Problem;

/// One record batch per chunk of up to `chunk_rows` inputs, built in parallel on the current
/// rayon pool, in input order.
///
/// `build` makes a chunk's batch. A panic in it is a bug, never expected; it must neither cross
/// the FFI nor cost the other inputs their rows. The chunk is then built again one input at a
/// time, and an input whose build panics again gets `panicked`'s row instead; such a chunk comes
/// back as one batch per input. Catching once a chunk, not once a row, keeps the hot loops free
/// of it.
pub(crate) fn batches<I: Sync>(
    inputs: &[I],
    chunk_rows: usize,
    build: impl Fn(&[I]) -> Result<RecordBatch, ArrowError> + Sync,
    panicked: impl Fn(&I) -> Result<RecordBatch, ArrowError> + Sync,
) -> Result<Vec<RecordBatch>, ArrowError> {
    let per_chunk: Vec<Vec<RecordBatch>> = inputs
        .par_chunks(chunk_rows.max(1))
        .map(|chunk| {
            if let Ok(batch) = catch_unwind(AssertUnwindSafe(|| build(chunk))) {
                return Ok(vec![batch?]);
            }
            chunk
                .iter()
                .map(|input| {
                    catch_unwind(AssertUnwindSafe(|| build(std::slice::from_ref(input))))
                        .unwrap_or_else(|_| panicked(input))
                })
                .collect()
        })
        .collect::<Result<_, ArrowError>>()?;
    Ok(per_chunk.into_iter().flatten().collect())
}

/// `error`, every problem's message joined by "; " (null when there is none), and `error_kind`,
/// the kind of the first: the slug a program filters or counts rows by.
pub(crate) struct ErrorColumns {
    error: StringViewBuilder,
    kind: StringViewBuilder,
}

impl ErrorColumns {
    pub(crate) fn new() -> Self {
        // Most rows have no error: nothing to reserve.
        ErrorColumns {
            error: StringViewBuilder::new(),
            kind: StringViewBuilder::new(),
        }
    }

    /// The problems of one row: first the ones before `more`, then `more`'s.
    pub(crate) fn push(&mut self, first: &[Problem], more: &[Problem]) {
        let mut problems = first.iter().chain(more);
        let Some(head) = problems.next() else {
            self.error.append_null();
            self.kind.append_null();
            return;
        };
        if first.len() + more.len() == 1 {
            self.error.append_value(&head.message);
        } else {
            let mut joined = head.message.clone();
            for p in problems {
                joined.push_str("; ");
                joined.push_str(&p.message);
            }
            self.error.append_value(joined);
        }
        // Not `append_value`: one more call site of it and LLVM stops inlining arrow's string
        // append into `append_option`, which every string column of every row goes through
        // (1.6 % more instructions per certificate, measured with callgrind).
        self.kind.append_option(Some(head.kind.slug()));
    }

    pub(crate) fn finish(mut self) -> [(&'static str, ArrayRef); 2] {
        [
            ("error", Arc::new(self.error.finish())),
            ("error_kind", Arc::new(self.kind.finish())),
        ]
    }
}

/// A list of strings, or null.
pub(crate) fn append_list(list: &mut ListBuilder<StringViewBuilder>, items: Option<&[String]>) {
    match items {
        Some(items) => {
            items.iter().for_each(|s| list.values().append_value(s));
            list.append(true);
        }
        None => list.append(false),
    }
}

/// A record batch of the named columns, in order, every one nullable.
pub(crate) fn record_batch(columns: Vec<(&str, ArrayRef)>) -> Result<RecordBatch, ArrowError> {
    let fields: Vec<Field> = columns
        .iter()
        .map(|(name, array)| Field::new(*name, array.data_type().clone(), true))
        .collect();
    RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        columns.into_iter().map(|(_, a)| a).collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Array, StringViewArray, UInt32Array};

    fn numbers(inputs: &[u32]) -> Result<RecordBatch, ArrowError> {
        // Input 7 is the parser bug: it panics whenever it is built, alone or not.
        assert!(!inputs.contains(&7), "a bug on input 7");
        let column: ArrayRef = Arc::new(UInt32Array::from(inputs.to_vec()));
        record_batch(vec![("n", column)])
    }

    fn values(batches: &[RecordBatch]) -> Vec<Option<u32>> {
        let mut out = Vec::new();
        for b in batches {
            let n = b.column(0).as_any().downcast_ref::<UInt32Array>().unwrap();
            out.extend((0..n.len()).map(|i| n.is_valid(i).then(|| n.value(i))));
        }
        out
    }

    #[test]
    fn a_panic_costs_only_its_own_row() {
        let inputs: Vec<u32> = (0..10).collect();
        let panicked = |_: &u32| record_batch(vec![("n", Arc::new(UInt32Array::from(vec![None])))]);
        let batches = batches(&inputs, 4, numbers, panicked).unwrap();
        // Chunks [0..4) and [8..10) are whole; [4..8) comes back input by input.
        assert_eq!(batches.len(), 1 + 4 + 1);
        let want: Vec<Option<u32>> = (0..10).map(|i| (i != 7).then_some(i)).collect();
        assert_eq!(values(&batches), want);
    }

    #[test]
    fn errors_are_joined_and_the_first_kind_kept() {
        use crate::error::ErrorKind;
        let mut columns = ErrorColumns::new();
        let a = Problem::new(
            ErrorKind::TrailingData,
            "certificate: 1 unexpected trailing bytes",
        );
        let b = Problem::new(ErrorKind::InvalidTime, "validity: time has a non-digit");
        columns.push(&[], &[]);
        columns.push(&[a], std::slice::from_ref(&b));
        columns.push(&[], &[b]);
        let [(_, error), (_, kind)] = columns.finish();
        let text = |a: &ArrayRef| {
            let a = a.as_any().downcast_ref::<StringViewArray>().unwrap();
            (0..a.len())
                .map(|i| a.is_valid(i).then(|| a.value(i).to_owned()))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            text(&error),
            [
                None,
                Some(
                    "certificate: 1 unexpected trailing bytes; validity: time has a non-digit"
                        .to_owned()
                ),
                Some("validity: time has a non-digit".to_owned()),
            ]
        );
        assert_eq!(
            text(&kind),
            [
                None,
                Some("trailing_data".to_owned()),
                Some("invalid_time".to_owned())
            ]
        );
    }
}
