// SPDX-License-Identifier: Apache-2.0
//! The Arrow PyCapsule interface, both ways
//! (<https://arrow.apache.org/docs/format/CDataInterface/PyCapsuleInterface.html>).
//! All of the crate's `unsafe` is here, each block beside the contract that makes it sound.

use std::ffi::CStr;

use arrow_array::ffi::{from_ffi, FFI_ArrowArray, FFI_ArrowSchema};
use arrow_array::ffi_stream::{ArrayStreamReader, FFI_ArrowArrayStream};
use arrow_array::{make_array, ArrayRef, RecordBatch, RecordBatchIterator};
use arrow_schema::SchemaRef;
use pyo3::prelude::*;
use pyo3::types::{PyCapsule, PyTuple};

use crate::error::{Error, Result};

const SCHEMA: &CStr = c"arrow_schema";
const ARRAY: &CStr = c"arrow_array";
const STREAM: &CStr = c"arrow_array_stream";

fn capsule<'py>(obj: Bound<'py, PyAny>, what: &str) -> Result<Bound<'py, PyCapsule>> {
    obj.cast_into::<PyCapsule>()
        .map_err(|_| Error::ArgumentType(format!("{what} did not return a PyCapsule")))
}

/// Imports every chunk of an object with `__arrow_c_stream__` (a polars Series, a pyarrow array
/// or chunked array, ...).
pub fn import_stream(obj: &Bound<'_, PyAny>) -> Result<Vec<ArrayRef>> {
    let cap = capsule(
        obj.call_method0("__arrow_c_stream__")?,
        "__arrow_c_stream__",
    )?;
    let ptr = cap
        .pointer_checked(Some(STREAM))?
        .cast::<FFI_ArrowArrayStream>();
    // SAFETY: the capsule is named `arrow_array_stream`, so by the protocol it holds an
    // `ArrowArrayStream`; `from_raw` moves it out and leaves a released stream behind, so the
    // capsule's destructor will not release it a second time.
    let stream = unsafe { FFI_ArrowArrayStream::from_raw(ptr.as_ptr()) };
    let reader = ArrayStreamReader::try_new(stream).map_err(Error::ArrowImport)?;
    reader
        .map(|chunk| chunk.map_err(Error::ArrowImport))
        .collect()
}

/// Imports an object with `__arrow_c_array__` (a pyarrow Array, nanoarrow, ...).
pub fn import_array(obj: &Bound<'_, PyAny>) -> Result<ArrayRef> {
    let pair = obj.call_method0("__arrow_c_array__")?;
    let pair = pair
        .cast::<PyTuple>()
        .map_err(|_| Error::ArgumentType("__arrow_c_array__ did not return a tuple".to_owned()))?;
    let schema = capsule(pair.get_item(0)?, "__arrow_c_array__")?;
    let array = capsule(pair.get_item(1)?, "__arrow_c_array__")?;
    let schema_ptr = schema
        .pointer_checked(Some(SCHEMA))?
        .cast::<FFI_ArrowSchema>();
    let array_ptr = array.pointer_checked(Some(ARRAY))?.cast::<FFI_ArrowArray>();
    // SAFETY: the names vouch for the types. The array is moved out (its capsule is left with a
    // released array); the schema is only borrowed while its capsule is alive.
    let data = unsafe {
        let array = FFI_ArrowArray::from_raw(array_ptr.as_ptr());
        from_ffi(array, schema_ptr.as_ref())
    }
    .map_err(Error::ArrowImport)?;
    Ok(make_array(data))
}

pub fn export_schema<'py>(py: Python<'py>, schema: &SchemaRef) -> Result<Bound<'py, PyCapsule>> {
    // Only the core's own schemas come here, and every one of them exports.
    let ffi = FFI_ArrowSchema::try_from(schema.as_ref())
        .map_err(|e| Error::Build(format!("Arrow export failed: {e}")))?;
    Ok(PyCapsule::new_with_value(py, ffi, SCHEMA)?)
}

/// A fresh stream over the batches: the consumer moves it out of the capsule; an unconsumed one
/// is released when the capsule is collected (`FFI_ArrowArrayStream`'s `Drop`).
pub fn export_stream<'py>(
    py: Python<'py>,
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
) -> Result<Bound<'py, PyCapsule>> {
    let reader = RecordBatchIterator::new(batches.into_iter().map(Ok), schema);
    let stream = FFI_ArrowArrayStream::new(Box::new(reader));
    Ok(PyCapsule::new_with_value(py, stream, STREAM)?)
}
