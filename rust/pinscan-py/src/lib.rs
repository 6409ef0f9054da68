// SPDX-License-Identifier: Apache-2.0
//! `pinscan._core`: the PyO3 face of pinscan-core. It only moves data: inputs in (a list of bytes
//! or any Arrow binary column), record batches out through the Arrow PyCapsule interface, with
//! the GIL released while the core works.

mod arrow_ffi;
mod error;
mod tls;

use arrow_array::cast::AsArray;
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{ArrowError, DataType, SchemaRef};
use pinscan_core::android::{self, Element, Node, Value};
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::{PyBytes, PyCapsule, PyDict, PyList, PyTuple};

use crate::error::{Error, Result};

/// Certificates as handed over from Python, owned so that they can cross into `detach`.
enum Inputs {
    Objects(Vec<Option<PyBackedBytes>>),
    Arrow(Vec<ArrayRef>),
}

impl Inputs {
    fn extract(ders: &Bound<'_, PyAny>) -> Result<Self> {
        if ders.hasattr("__arrow_c_stream__")? {
            return arrow_ffi::import_stream(ders).and_then(Self::arrow);
        }
        if ders.hasattr("__arrow_c_array__")? {
            return arrow_ffi::import_array(ders).and_then(|a| Self::arrow(vec![a]));
        }
        if ders.is_instance_of::<PyBytes>() {
            let msg = "`ders` is one bytes object; pass a list of certificates";
            return Err(Error::ArgumentType(msg.to_owned()));
        }
        let mut items = Vec::with_capacity(ders.len().unwrap_or(0));
        for (i, item) in ders.try_iter()?.enumerate() {
            let item = item?;
            items.push(if item.is_none() {
                None
            } else {
                Some(item.extract::<PyBackedBytes>().map_err(|_| {
                    let type_name = item
                        .get_type()
                        .name()
                        .map_or_else(|_| "?".to_owned(), |n| n.to_string());
                    Error::ArgumentType(format!(
                        "`ders[{i}]` is {type_name}; expected bytes (DER) or None"
                    ))
                })?)
            });
        }
        Ok(Inputs::Objects(items))
    }

    fn arrow(arrays: Vec<ArrayRef>) -> Result<Self> {
        for a in &arrays {
            if !matches!(
                a.data_type(),
                DataType::Binary | DataType::LargeBinary | DataType::BinaryView
            ) {
                let msg = format!("expected an Arrow binary column, got {}", a.data_type());
                return Err(Error::ArgumentType(msg));
            }
        }
        Ok(Inputs::Arrow(arrays))
    }

    fn slices(&self) -> Vec<Option<&[u8]>> {
        match self {
            Inputs::Objects(items) => items.iter().map(|b| b.as_deref()).collect(),
            Inputs::Arrow(arrays) => {
                let mut out = Vec::with_capacity(arrays.iter().map(|a| a.len()).sum());
                for a in arrays {
                    match a.data_type() {
                        DataType::Binary => out.extend(a.as_binary::<i32>().iter()),
                        DataType::LargeBinary => out.extend(a.as_binary::<i64>().iter()),
                        _ => out.extend(a.as_binary_view().iter()),
                    }
                }
                out
            }
        }
    }
}

/// Parsed certificates as Arrow record batches; `polars.DataFrame(batch)` takes them zero-copy.
#[pyclass(frozen, module = "pinscan._core")]
struct CertificateBatch {
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
}

#[pymethods]
impl CertificateBatch {
    fn __len__(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }

    #[getter]
    fn num_batches(&self) -> usize {
        self.batches.len()
    }

    #[getter]
    fn column_names(&self) -> Vec<String> {
        self.schema
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect()
    }

    fn __repr__(&self) -> String {
        format!(
            "<CertificateBatch rows={} batches={}>",
            self.__len__(),
            self.batches.len()
        )
    }

    fn __arrow_c_schema__<'py>(&self, py: Python<'py>) -> Result<Bound<'py, PyCapsule>> {
        arrow_ffi::export_schema(py, &self.schema)
    }

    #[pyo3(signature = (requested_schema = None))]
    fn __arrow_c_stream__<'py>(
        &self,
        py: Python<'py>,
        requested_schema: Option<Bound<'py, PyAny>>,
    ) -> Result<Bound<'py, PyCapsule>> {
        // The batches have one fixed schema; the protocol lets a producer ignore the request.
        let _ = requested_schema;
        arrow_ffi::export_stream(py, self.schema.clone(), self.batches.clone())
    }
}

/// Parse certificates into Arrow record batches: one row per input, in order, never an exception
/// for a bad certificate. See `pinscan.certificates` for the columns.
#[pyfunction]
#[pyo3(signature = (ders, *, threads = None, sha1 = false))]
fn parse_certificates(
    py: Python<'_>,
    ders: &Bound<'_, PyAny>,
    threads: Option<usize>,
    sha1: bool,
) -> Result<CertificateBatch> {
    check_threads(threads)?;
    let inputs = Inputs::extract(ders)?;
    let options = pinscan_core::Options { sha1 };
    let batches = py.detach(|| {
        let slices = inputs.slices();
        in_pool(threads, || pinscan_core::certificates(&slices, options))
    })?;
    Ok(CertificateBatch {
        schema: pinscan_core::schema(options),
        batches,
    })
}

fn check_threads(threads: Option<usize>) -> Result<()> {
    if threads == Some(0) {
        return Err(Error::ArgumentValue(
            "`threads` must be at least 1".to_owned(),
        ));
    }
    Ok(())
}

/// Runs `run` on rayon's global pool, or on a pool of `threads` threads. Called with the GIL
/// released.
fn in_pool<T: Send>(
    threads: Option<usize>,
    run: impl FnOnce() -> std::result::Result<T, ArrowError> + Send,
) -> Result<T> {
    let outcome = match threads {
        None => run(),
        Some(n) => rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .map_err(|e| Error::Build(e.to_string()))?
            .install(run),
    };
    outcome.map_err(|e| Error::Build(e.to_string()))
}

/// Find the SubjectPublicKeyInfo, exactly as encoded, in one DER certificate, PKCS#10 CSR or bare
/// SPKI. Returns `(kind, spki_der)` with kind `"certificate"`, `"csr"` or `"public_key"`; raises
/// `ValueError` saying what is wrong otherwise.
#[pyfunction]
fn locate_spki<'py>(py: Python<'py>, der: &[u8]) -> Result<Bound<'py, PyTuple>> {
    let (source, spki) = pinscan_core::locate_spki(der)?;
    Ok((source.as_str(), PyBytes::new(py, spki.der)).into_pyobject(py)?)
}

/// Parse Certificate Transparency log entries into Arrow record batches, in input order, never an
/// exception for a bad entry. `kind` is `"leaf"` (RFC 6962 `leaf_input`s, with their
/// `extra_data` in `extra`), `"tile"` (static-ct-api data tiles: one row per entry) or
/// `"certificate"` (DER). See `pinscan.ct.entries` for the columns.
#[pyfunction]
#[pyo3(signature = (kind, data, extra = None, *, threads = None))]
fn parse_ct_entries(
    py: Python<'_>,
    kind: &str,
    data: &Bound<'_, PyAny>,
    extra: Option<&Bound<'_, PyAny>>,
    threads: Option<usize>,
) -> Result<CertificateBatch> {
    let kind = pinscan_core::ct::Kind::parse(kind).ok_or_else(|| {
        Error::ArgumentValue(format!(
            "`kind` is {kind:?}; expected \"leaf\", \"tile\" or \"certificate\""
        ))
    })?;
    check_threads(threads)?;
    let inputs = Inputs::extract(data)?;
    let extras = extra.map(Inputs::extract).transpose()?;
    let batches = py.detach(|| {
        let slices = inputs.slices();
        let extra_slices = extras.as_ref().map(Inputs::slices).unwrap_or_default();
        in_pool(threads, || {
            pinscan_core::ct::entries(kind, &slices, &extra_slices)
        })
    })?;
    Ok(CertificateBatch {
        schema: pinscan_core::ct::schema(),
        batches,
    })
}

/// A compiled value as Python sees it: text for a string, the id or number for references and
/// integers, bool, float, None for null.
fn value_object<'py>(py: Python<'py>, value: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match value {
        Value::Null => py.None().into_bound(py),
        Value::String(s) => s.into_pyobject(py)?.into_any(),
        Value::Reference(id) | Value::Attribute(id) | Value::IntHex(id) => {
            id.into_pyobject(py)?.into_any()
        }
        Value::Other { data, .. } => data.into_pyobject(py)?.into_any(),
        Value::IntDec(n) => n.into_pyobject(py)?.into_any(),
        Value::Bool(b) => b.into_pyobject(py)?.to_owned().into_any(),
        Value::Float(f) => f.into_pyobject(py)?.into_any(),
    })
}

fn element_object<'py>(py: Python<'py>, e: &Element) -> PyResult<Bound<'py, PyTuple>> {
    let attributes = PyList::empty(py);
    for a in &e.attributes {
        let item = (
            &a.namespace,
            &a.name,
            a.resource_id,
            a.raw.as_deref(),
            a.value.kind(),
            value_object(py, &a.value)?,
        );
        attributes.append(item)?;
    }
    let content = PyList::empty(py);
    for node in &e.content {
        match node {
            Node::Text(t) => content.append(t)?,
            Node::Element(child) => content.append(element_object(py, child)?)?,
        }
    }
    (
        &e.namespace,
        &e.name,
        e.line,
        e.end_line,
        attributes,
        content,
    )
        .into_pyobject(py)
}

/// Decode a compiled Android XML document: binary XML (an APK's), or aapt2's `XmlNode` protocol
/// buffer (an `.aab`'s) when `proto`. Returns the root as `(namespace, name, line, end_line,
/// attributes, content)`, each attribute `(namespace, name, resource_id, raw, kind, value)`,
/// content text and elements in order; raises `ValueError` saying what is wrong and where.
#[pyfunction]
#[pyo3(signature = (data, *, proto = false))]
fn android_xml<'py>(py: Python<'py>, data: &[u8], proto: bool) -> Result<Bound<'py, PyTuple>> {
    let root = py.detach(|| {
        if proto {
            android::proto::parse_xml(data)
        } else {
            android::axml::parse(data)
        }
    })?;
    Ok(element_object(py, &root)?)
}

/// What resource `id` names in a resource table (`resources.arsc`, or `resources.pb` when
/// `proto`): `(type_name, entry_name, [(configuration, kind, value)])`, None when the table does
/// not hold it; raises `ValueError` for a table that does not decode.
#[pyfunction]
#[pyo3(signature = (table, id, *, proto = false))]
fn android_resource<'py>(
    py: Python<'py>,
    table: &[u8],
    id: u32,
    proto: bool,
) -> Result<Option<Bound<'py, PyTuple>>> {
    let found = py.detach(|| {
        if proto {
            android::proto::resolve(table, id)
        } else {
            android::arsc::resolve(table, id)
        }
    })?;
    let Some(resource) = found else {
        return Ok(None);
    };
    let values = PyList::empty(py);
    for (config, value) in &resource.values {
        values.append((config, value.kind(), value_object(py, value)?))?;
    }
    Ok(Some(
        (resource.type_name, resource.key, values).into_pyobject(py)?,
    ))
}

/// `(host, pins)` of each `CertificatePinner.Builder.add` call site.
type Calls = Vec<(String, Vec<String>)>;

/// Pins in one DEX file: `(calls, strings, untied)`, `calls` the `(host, [pin])` of each
/// `CertificatePinner.Builder.add` call site the bytecode ties, `strings` every `sha256/` and
/// `sha1/` string of its string table, `untied` the number of call sites whose host or pins the
/// bytecode does not spell out; raises `ValueError` for a file that does not decode.
#[pyfunction]
fn dex_pins(py: Python<'_>, data: &[u8]) -> Result<(Calls, Vec<String>, usize)> {
    let found = py.detach(|| android::dex::pins(data))?;
    Ok((found.calls, found.strings, found.untied))
}

/// Pin strings in arbitrary bytes (an app's code, a native library, a bundle): a list of
/// `(offset, algorithm, base64_digest, prefixed)`, in order of offset. `sha256/` and `sha1/`
/// pins in ASCII or UTF-16LE; with `bare`, also lone padded base64 strings of a SHA-256's length
/// (`prefixed` false: candidates only). Never raises for any input.
#[pyfunction]
#[pyo3(signature = (data, *, bare = false))]
fn pin_strings<'py>(py: Python<'py>, data: &[u8], bare: bool) -> Result<Bound<'py, PyList>> {
    let found = py.detach(|| pinscan_core::strings::pin_strings(data, bare));
    let rows = PyList::empty(py);
    for pin in found {
        let digest = pinscan_core::hash::base64(&pin.digest);
        rows.append((pin.offset, pin.algorithm.as_str(), digest, pin.prefixed))?;
    }
    Ok(rows)
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("CHUNK_ROWS", pinscan_core::CHUNK_ROWS)?;
    // Every value `error_kind` can take, with what it means.
    let kinds = PyDict::new(m.py());
    for kind in pinscan_core::ErrorKind::ALL {
        kinds.set_item(kind.slug(), kind.description())?;
    }
    m.add("ERROR_KINDS", kinds)?;
    m.add_class::<CertificateBatch>()?;
    m.add_function(wrap_pyfunction!(parse_certificates, m)?)?;
    m.add_function(wrap_pyfunction!(locate_spki, m)?)?;
    m.add_function(wrap_pyfunction!(parse_ct_entries, m)?)?;
    m.add_function(wrap_pyfunction!(android_xml, m)?)?;
    m.add_function(wrap_pyfunction!(android_resource, m)?)?;
    m.add_function(wrap_pyfunction!(dex_pins, m)?)?;
    m.add_function(wrap_pyfunction!(pin_strings, m)?)?;
    m.add_class::<tls::TlsEngine>()?;
    m.add_class::<tls::TlsClient>()?;
    Ok(())
}
