//! NumPy `.npy` and `.npz` files as [`Tensor`]s.
//!
//! Reading is done by a small parser of our own rather than `ndarray_npy::ReadNpyExt`, for three reasons:
//! NumPy's default dtype is float64 and we want it cast to f32; `ReadNpyExt` allocates the element buffer
//! from the header's shape before it knows the data is there (a corrupt header claiming 10^15 elements would
//! abort the process); and its errors do not name the file. Writing is ours too, so that the bytes are exactly
//! what `numpy.save` writes (`ndarray_npy`'s header differs in spacing) and `.npz` members match.

use std::fs;
use std::io::{Cursor, Read, Write};
use std::path::Path;

use ndarray::{ArrayD, IxDyn, ShapeBuilder};

use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// The NPY magic string: `\x93NUMPY`.
const MAGIC: &[u8; 6] = b"\x93NUMPY";

/// Largest header accepted. NumPy itself refuses headers above 10 000 bytes unless told otherwise
/// (`max_header_size`); a little slack covers hand-written files without letting garbage through.
const MAX_HEADER_LEN: usize = 1 << 20;

/// Largest `.npz` member we decompress. A member's declared size comes from the archive and is only trusted
/// up to this bound, so a corrupt or hostile size field cannot make us reserve terabytes.
const MAX_MEMBER_BYTES: u64 = 1 << 34;

/// Reads a `.npy` file as float32.
///
/// float32 is returned as stored; float64 (NumPy's default dtype) is rounded to the nearest float32, as
/// `a.astype(np.float32)` does. Both byte orders and both memory orders (C and Fortran) are accepted; the
/// result is always in C (row-major) order. Any other dtype is an [`Error::Format`] naming the file and the
/// dtype found.
///
/// # Errors
/// [`Error::Io`] when the file cannot be read, [`Error::Format`] when it is not a valid float `.npy`.
pub fn read_npy(path: impl AsRef<Path>) -> Result<Tensor> {
    crate::io::read_with(path.as_ref(), read_npy_bytes)
}

/// Parses the bytes of a `.npy` file; `what` names the source in error messages (a path, or `a.npz: x.npy`).
///
/// Never panics and never allocates more than the input's size, whatever the header claims.
///
/// # Errors
/// [`Error::Format`] when the bytes are not a valid float32/float64 `.npy`.
pub fn read_npy_bytes(bytes: &[u8], what: &str) -> Result<Tensor> {
    let bad = |msg: String| Error::format(what, msg);
    if bytes.len() < MAGIC.len() + 2 || &bytes[..MAGIC.len()] != MAGIC {
        return Err(bad(
            "not a NumPy .npy file (missing the \\x93NUMPY magic string)".into(),
        ));
    }
    let (major, minor) = (bytes[6], bytes[7]);
    // Version 1.0 stores the header length in 2 bytes; 2.0 and 3.0 (UTF-8 header) in 4.
    let (len_size, utf8) = match major {
        1 => (2, false),
        2 => (4, false),
        3 => (4, true),
        _ => {
            return Err(bad(format!(
                "unsupported .npy format version {major}.{minor}"
            )))
        }
    };
    let header_start = 8 + len_size;
    if bytes.len() < header_start {
        return Err(bad("truncated .npy header".into()));
    }
    let header_len = if len_size == 2 {
        usize::from(u16::from_le_bytes([bytes[8], bytes[9]]))
    } else {
        let n = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
        usize::try_from(n).unwrap_or(usize::MAX)
    };
    if header_len > MAX_HEADER_LEN {
        return Err(bad(format!(
            "the .npy header claims {header_len} bytes, more than the {MAX_HEADER_LEN} accepted"
        )));
    }
    let data_start = header_start + header_len;
    if bytes.len() < data_start {
        return Err(bad(format!(
            "truncated .npy header: it claims {header_len} bytes but the file ends after {}",
            bytes.len() - header_start
        )));
    }
    let header_bytes = &bytes[header_start..data_start];
    let header = if utf8 {
        std::str::from_utf8(header_bytes)
            .map_err(|_| bad("the .npy header is not valid UTF-8".into()))?
    } else {
        if !header_bytes.is_ascii() {
            return Err(bad("the .npy header is not ASCII".into()));
        }
        // ASCII is valid UTF-8, so this cannot fail; keep the error path anyway rather than unwrap.
        std::str::from_utf8(header_bytes).map_err(|_| bad("the .npy header is not ASCII".into()))?
    };
    let header = parse_header(header).map_err(|m| {
        bad(format!(
            "malformed .npy header {:?}: {m}",
            header.trim_end()
        ))
    })?;

    let (little, size) = parse_float_descr(&header.descr).ok_or_else(|| {
        bad(format!(
            "unsupported dtype '{}' ({}): expected float32 or float64",
            header.descr,
            describe_descr(&header.descr)
        ))
    })?;

    // Checked arithmetic everywhere: the header is untrusted and its product may overflow.
    let count = header
        .shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| {
            bad(format!(
                "the shape {:?} has too many elements",
                header.shape
            ))
        })?;
    let nbytes = count.checked_mul(size).ok_or_else(|| {
        bad(format!(
            "the shape {:?} has too many elements",
            header.shape
        ))
    })?;
    let data = &bytes[data_start..];
    // Compare with what is actually present before allocating anything of the claimed size.
    if data.len() < nbytes {
        return Err(bad(format!(
            "truncated .npy data: shape {:?} of {} needs {nbytes} bytes, the file has {}",
            header.shape,
            header.descr,
            data.len()
        )));
    }
    if data.len() > nbytes {
        return Err(bad(format!(
            "{} unexpected bytes after the data of shape {:?} (corrupt file?)",
            data.len() - nbytes,
            header.shape
        )));
    }
    let values: Vec<f32> = if size == 4 {
        data.chunks_exact(4)
            .map(|c| {
                let b = [c[0], c[1], c[2], c[3]];
                if little {
                    f32::from_le_bytes(b)
                } else {
                    f32::from_be_bytes(b)
                }
            })
            .collect()
    } else {
        data.chunks_exact(8)
            .map(|c| {
                let b = [c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]];
                // `as` rounds to nearest-even, which is what NumPy's astype(float32) does.
                (if little {
                    f64::from_le_bytes(b)
                } else {
                    f64::from_be_bytes(b)
                }) as f32
            })
            .collect()
    };
    let shape = IxDyn(&header.shape);
    let array = if header.fortran_order {
        // The data is column-major: build it as such, then copy into C order so every Tensor is row-major.
        let f = ArrayD::from_shape_vec(shape.f(), values).map_err(|e| bad(e.to_string()))?;
        f.as_standard_layout().into_owned()
    } else {
        ArrayD::from_shape_vec(shape, values).map_err(|e| bad(e.to_string()))?
    };
    Ok(Tensor(array))
}

/// Writes a tensor as a float32, C-order `.npy` file (what `numpy.save` writes for a float32 array).
///
/// # Errors
/// [`Error::Io`] when the file cannot be created or written.
pub fn write_npy(path: impl AsRef<Path>, t: &Tensor) -> Result<()> {
    let path = path.as_ref();
    fs::write(path, npy_bytes(t)).map_err(|source| Error::Io {
        action: "write",
        path: path.to_path_buf(),
        source,
    })
}

/// The bytes of a float32, C-order `.npy` file holding `t`, byte for byte what `numpy.save` writes
/// (NumPy 2.x header layout: sorted keys, growth-axis spare space, 64-byte alignment, version 1.0 unless the
/// header needs more than 65535 bytes).
pub fn npy_bytes(t: &Tensor) -> Vec<u8> {
    let shape = t.0.shape();
    let dims = match shape {
        [] => "()".to_string(),
        [d] => format!("({d},)"),
        ds => format!(
            "({})",
            ds.iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {dims}, }}");
    // NumPy leaves room for the first axis to grow to 21 digits, so a file can be appended to in place.
    if let Some(first) = shape.first() {
        header.push_str(&" ".repeat(21usize.saturating_sub(first.to_string().len())));
    }
    // numpy's _wrap_header: the header ends with '\n' (hence + 1) after 1..=64 spaces of padding, so that
    // magic + version + length + header is a multiple of 64 bytes.
    let hlen = header.len() + 1;
    let pad = |len_size: usize| 64 - ((8 + len_size + hlen) % 64);
    let (version, len_size) = if hlen + pad(2) <= 65535 {
        (1u8, 2usize)
    } else {
        (2u8, 4usize)
    };
    let padlen = pad(len_size);
    let total_header = hlen + padlen;
    let mut out = Vec::with_capacity(8 + len_size + total_header + 4 * t.0.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[version, 0]);
    if len_size == 2 {
        // Fits: the version choice above guarantees total_header <= 65535.
        out.extend_from_slice(
            &u16::try_from(total_header)
                .unwrap_or(u16::MAX)
                .to_le_bytes(),
        );
    } else {
        out.extend_from_slice(
            &u32::try_from(total_header)
                .unwrap_or(u32::MAX)
                .to_le_bytes(),
        );
    }
    out.extend_from_slice(header.as_bytes());
    out.extend(std::iter::repeat_n(b' ', padlen));
    out.push(b'\n');
    // `iter()` walks in logical (row-major) order whatever the memory layout, which makes the data C order.
    for x in t.0.iter() {
        out.extend_from_slice(&x.to_le_bytes());
    }
    out
}

/// Reads every array of a `.npz` file (stored or deflate-compressed), in archive order.
///
/// Names are the member names with one trailing `.npy` removed, as `numpy.load(...).files` gives them.
///
/// # Errors
/// [`Error::Io`] when the file cannot be read; [`Error::Format`] when it is not a zip or a member is not a
/// float `.npy` (the message names the member).
pub fn read_npz(path: impl AsRef<Path>) -> Result<Vec<(String, Tensor)>> {
    crate::io::read_with(path.as_ref(), read_npz_bytes)
}

/// Parses the bytes of a `.npz` file; see [`read_npz`].
///
/// # Errors
/// [`Error::Format`] when the bytes are not a zip of float `.npy` members.
pub fn read_npz_bytes(bytes: &[u8], what: &str) -> Result<Vec<(String, Tensor)>> {
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes))
        .map_err(|e| Error::format(what, format!("not a valid .npz (zip) archive: {e}")))?;
    let mut out = Vec::with_capacity(zip.len());
    for i in 0..zip.len() {
        let (name, data) = read_zip_member_at(&mut zip, i, what)?;
        if name.ends_with('/') {
            continue; // a directory entry, never written by NumPy; nothing to load
        }
        let member_what = format!("{what}: {name}");
        let t = read_npy_bytes(&data, &member_what)?;
        let key = name.strip_suffix(".npy").unwrap_or(&name).to_string();
        out.push((key, t));
    }
    Ok(out)
}

/// Writes arrays as an uncompressed `.npz` (what `numpy.savez` writes): member `<name>.npy` per array, float32,
/// C order, in the order given.
///
/// # Errors
/// [`Error::Io`] when the file cannot be written; [`Error::InvalidArgument`] for an empty or duplicate name.
pub fn write_npz(path: impl AsRef<Path>, arrays: &[(&str, &Tensor)]) -> Result<()> {
    let path = path.as_ref();
    let what = path.display().to_string();
    let bytes = npz_bytes(arrays, &what)?;
    fs::write(path, bytes).map_err(|source| Error::Io {
        action: "write",
        path: path.to_path_buf(),
        source,
    })
}

/// The bytes of an uncompressed `.npz` holding `arrays`; see [`write_npz`].
///
/// # Errors
/// [`Error::InvalidArgument`] for an empty or duplicate name.
pub fn npz_bytes(arrays: &[(&str, &Tensor)], what: &str) -> Result<Vec<u8>> {
    // Check names first: the zip writer would reject a duplicate only after half the archive is written,
    // and with an error that does not say which name.
    let mut seen = std::collections::HashSet::new();
    for (name, _) in arrays {
        if name.is_empty() || !seen.insert(*name) {
            return Err(Error::invalid(
                format!("write_npz({what})"),
                "arrays",
                "unique, non-empty names",
                format!("the name {name:?} (empty or given twice)"),
            ));
        }
    }
    // numpy.savez: a ZIP_STORED member `<name>.npy` per array, in the order given.
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    let zerr = |e: &dyn std::fmt::Display| {
        Error::format(what, format!("cannot write the .npz archive: {e}"))
    };
    for (name, t) in arrays {
        w.start_file(format!("{name}.npy"), options)
            .map_err(|e| zerr(&e))?;
        w.write_all(&npy_bytes(t)).map_err(|e| zerr(&e))?;
    }
    Ok(w.finish().map_err(|e| zerr(&e))?.into_inner())
}

/// Reads member `i` of a zip fully, bounded by its declared size (and [`MAX_MEMBER_BYTES`]).
///
/// Shared with the `.keras` reader. The declared size only caps the read; what we allocate grows with the
/// bytes actually decompressed, so a lying size field cannot cause a huge allocation.
pub(crate) fn read_zip_member_at<R: Read + std::io::Seek>(
    zip: &mut zip::ZipArchive<R>,
    i: usize,
    what: &str,
) -> Result<(String, Vec<u8>)> {
    let mut f = zip
        .by_index(i)
        .map_err(|e| Error::format(what, format!("cannot open zip member #{i}: {e}")))?;
    let name = f.name().to_string();
    read_member(&mut f, &name, what).map(|d| (name, d))
}

/// Reads an opened zip member; see [`read_zip_member_at`].
pub(crate) fn read_member(
    f: &mut zip::read::ZipFile<'_, impl Read>,
    name: &str,
    what: &str,
) -> Result<Vec<u8>> {
    let declared = f.size();
    if declared > MAX_MEMBER_BYTES {
        return Err(Error::format(
            what,
            format!("zip member {name:?} declares {declared} bytes, more than the {MAX_MEMBER_BYTES} accepted"),
        ));
    }
    let mut data = Vec::with_capacity(usize::try_from(declared.min(1 << 26)).unwrap_or(0));
    // Read one byte past the declared size so a member that inflates to more than it claims is caught.
    f.take(declared + 1).read_to_end(&mut data).map_err(|e| {
        Error::format(
            what,
            format!("cannot read zip member {name:?} (corrupt archive?): {e}"),
        )
    })?;
    if data.len() as u64 != declared {
        return Err(Error::format(
            what,
            format!(
                "zip member {name:?} declares {declared} bytes but holds {}",
                data.len()
            ),
        ));
    }
    Ok(data)
}

/// A parsed `.npy` header.
struct Header {
    descr: String,
    fortran_order: bool,
    shape: Vec<usize>,
}

/// A value of the Python-literal subset `.npy` headers use.
#[derive(Debug)]
enum Py {
    Str(String),
    Bool(bool),
    Int(u64),
    Tuple(Vec<Py>),
    Dict(Vec<(String, Py)>),
    None,
}

/// Parses the header dict: `{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }`.
fn parse_header(s: &str) -> std::result::Result<Header, String> {
    let mut p = PyParser {
        s: s.as_bytes(),
        i: 0,
        depth: 0,
    };
    let v = p.value()?;
    p.ws();
    if p.i != p.s.len() {
        return Err(format!("unexpected text at byte {}", p.i));
    }
    let Py::Dict(items) = v else {
        return Err("the header is not a dict".into());
    };
    let get = |k: &str| items.iter().find(|(n, _)| n == k).map(|(_, v)| v);
    let descr = match get("descr") {
        Some(Py::Str(s)) => s.clone(),
        // A list descr is a structured (record) dtype.
        Some(Py::Tuple(_)) => "structured".into(),
        Some(_) => return Err("'descr' is not a string".into()),
        None => return Err("no 'descr' key".into()),
    };
    let fortran_order = match get("fortran_order") {
        Some(Py::Bool(b)) => *b,
        Some(_) => return Err("'fortran_order' is not True or False".into()),
        None => return Err("no 'fortran_order' key".into()),
    };
    let shape = match get("shape") {
        Some(Py::Tuple(dims)) => dims
            .iter()
            .map(|d| match d {
                Py::Int(n) => {
                    usize::try_from(*n).map_err(|_| format!("dimension {n} is too large"))
                }
                other => Err(format!("dimension {other:?} is not an integer")),
            })
            .collect::<std::result::Result<Vec<_>, _>>()?,
        Some(_) => return Err("'shape' is not a tuple".into()),
        None => return Err("no 'shape' key".into()),
    };
    Ok(Header {
        descr,
        fortran_order,
        shape,
    })
}

/// Recursive-descent parser for the literal subset; `depth` bounds nesting so garbage cannot overflow the stack.
struct PyParser<'a> {
    s: &'a [u8],
    i: usize,
    depth: usize,
}

impl PyParser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    fn value(&mut self) -> std::result::Result<Py, String> {
        self.ws();
        self.depth += 1;
        if self.depth > 32 {
            return Err("nested too deeply".into());
        }
        let v = match self.peek() {
            Some(b'{') => self.dict(),
            Some(b'(') => self.seq(b')'),
            Some(b'[') => self.seq(b']'),
            Some(q @ (b'\'' | b'"')) => self.string(q).map(Py::Str),
            Some(c) if c.is_ascii_digit() => self.int(),
            Some(c) if c.is_ascii_alphabetic() => {
                let start = self.i;
                while self
                    .peek()
                    .is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_')
                {
                    self.i += 1;
                }
                match &self.s[start..self.i] {
                    b"True" => Ok(Py::Bool(true)),
                    b"False" => Ok(Py::Bool(false)),
                    b"None" => Ok(Py::None),
                    w => Err(format!("unexpected word {:?}", String::from_utf8_lossy(w))),
                }
            }
            Some(c) => Err(format!(
                "unexpected character {:?} at byte {}",
                c as char, self.i
            )),
            None => Err("unexpected end".into()),
        };
        self.depth -= 1;
        v
    }
    fn int(&mut self) -> std::result::Result<Py, String> {
        let start = self.i;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.i += 1;
        }
        // Python 2 era writers appended `L` to longs: `(3L, 4L)`.
        let digits = std::str::from_utf8(&self.s[start..self.i]).map_err(|e| e.to_string())?;
        if self.peek() == Some(b'L') {
            self.i += 1;
        }
        digits
            .parse::<u64>()
            .map(Py::Int)
            .map_err(|_| format!("integer {digits} is too large"))
    }
    fn string(&mut self, q: u8) -> std::result::Result<String, String> {
        self.i += 1;
        let start = self.i;
        while let Some(c) = self.peek() {
            if c == q {
                let s = String::from_utf8_lossy(&self.s[start..self.i]).into_owned();
                self.i += 1;
                return Ok(s);
            }
            if c == b'\\' {
                return Err("escape sequences in header strings are not supported".into());
            }
            self.i += 1;
        }
        Err("unterminated string".into())
    }
    fn expect(&mut self, c: u8) -> std::result::Result<(), String> {
        self.ws();
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            Err(format!("expected {:?} at byte {}", c as char, self.i))
        }
    }
    fn dict(&mut self) -> std::result::Result<Py, String> {
        self.i += 1;
        let mut items = Vec::new();
        loop {
            self.ws();
            match self.peek() {
                Some(b'}') => {
                    self.i += 1;
                    return Ok(Py::Dict(items));
                }
                Some(q @ (b'\'' | b'"')) => {
                    let k = self.string(q)?;
                    self.expect(b':')?;
                    let v = self.value()?;
                    items.push((k, v));
                    self.ws();
                    match self.peek() {
                        Some(b',') => self.i += 1,
                        Some(b'}') => {}
                        _ => return Err(format!("expected ',' or '}}' at byte {}", self.i)),
                    }
                }
                _ => return Err(format!("expected a string key at byte {}", self.i)),
            }
        }
    }
    fn seq(&mut self, close: u8) -> std::result::Result<Py, String> {
        self.i += 1;
        let mut items = Vec::new();
        loop {
            self.ws();
            if self.peek() == Some(close) {
                self.i += 1;
                return Ok(Py::Tuple(items));
            }
            items.push(self.value()?);
            self.ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(c) if c == close => {}
                _ => {
                    return Err(format!(
                        "expected ',' or {:?} at byte {}",
                        close as char, self.i
                    ))
                }
            }
        }
    }
}

/// `Some((little_endian, itemsize))` for a float32/float64 descr such as `<f4`, `>f8`, `=f4`.
fn parse_float_descr(d: &str) -> Option<(bool, usize)> {
    let b = d.as_bytes();
    if b.len() != 3 || b[1] != b'f' {
        return None;
    }
    let little = match b[0] {
        b'<' => true,
        b'>' => false,
        // '=' and '|' mean native order.
        b'=' | b'|' => cfg!(target_endian = "little"),
        _ => return None,
    };
    match b[2] {
        b'4' => Some((little, 4)),
        b'8' => Some((little, 8)),
        _ => None,
    }
}

/// A NumPy-style name for a descr, for error messages: `<i8` → `int64`.
fn describe_descr(d: &str) -> String {
    let body = d.trim_start_matches(['<', '>', '=', '|']);
    let (kind, size) = body.split_at(body.len().min(1));
    let bits = size.parse::<usize>().ok().map(|n| n * 8);
    match (kind, bits) {
        ("f", Some(b)) => format!("float{b}"),
        ("i", Some(b)) => format!("int{b}"),
        ("u", Some(b)) => format!("uint{b}"),
        ("c", Some(b)) => format!("complex{b}"),
        ("b", _) => "bool".into(),
        ("U", _) => "unicode string".into(),
        ("S", _) => "byte string".into(),
        ("O", _) => "Python object".into(),
        ("M", _) => "datetime64".into(),
        ("m", _) => "timedelta64".into(),
        _ => "unknown".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;
    use std::path::PathBuf;

    const CASES: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/keras-cases"
    );

    /// A hand-made .npy: `descr`, `fortran_order`, `shape` (Python tuple text) and raw data bytes.
    fn npy(descr: &str, fortran: bool, shape: &str, data: &[u8]) -> Vec<u8> {
        let f = if fortran { "True" } else { "False" };
        let mut header =
            format!("{{'descr': '{descr}', 'fortran_order': {f}, 'shape': {shape}, }}");
        while (10 + header.len() + 1) % 64 != 0 {
            header.push(' ');
        }
        header.push('\n');
        let mut out = b"\x93NUMPY\x01\x00".to_vec();
        out.extend_from_slice(&(header.len() as u16).to_le_bytes());
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(data);
        out
    }

    fn f32_le(v: &[f32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    fn tmp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("rnnlab-io-npy-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        dir.join(name)
    }

    fn shape_list(v: &serde_json::Value) -> Vec<Vec<usize>> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|s| {
                s.as_array()
                    .unwrap()
                    .iter()
                    .map(|d| d.as_u64().unwrap() as usize)
                    .collect()
            })
            .collect()
    }

    #[test]
    fn every_case_input_and_output_has_the_shape_case_json_says() {
        let mut cases = 0;
        for entry in fs::read_dir(CASES).unwrap() {
            let dir = entry.unwrap().path();
            if !dir.is_dir() {
                continue;
            }
            cases += 1;
            let case: serde_json::Value =
                serde_json::from_slice(&fs::read(dir.join("case.json")).unwrap()).unwrap();
            for (kind, key) in [
                ("input", "inputs"),
                ("output", "outputs"),
                ("weight", "weights"),
            ] {
                let shapes = shape_list(&case[key]);
                for (k, shape) in shapes.iter().enumerate() {
                    let t = read_npy(dir.join(format!("{kind}_{k}.npy"))).unwrap();
                    assert_eq!(
                        t.0.shape(),
                        shape.as_slice(),
                        "{} {kind}_{k}",
                        dir.display()
                    );
                    assert!(t.0.is_standard_layout());
                }
                assert!(
                    !dir.join(format!("{kind}_{}.npy", shapes.len())).exists(),
                    "{}: extra {kind} file",
                    dir.display()
                );
            }
        }
        assert_eq!(cases, 44);
    }

    #[test]
    fn float64_is_rounded_to_float32() {
        let vals = [0.1f64, -2.5, 1e-40, 3.0e38, 1.0 / 3.0];
        let data: Vec<u8> = vals.iter().flat_map(|x| x.to_le_bytes()).collect();
        let t = read_npy_bytes(&npy("<f8", false, "(5,)", &data), "x.npy").unwrap();
        let want: Vec<f32> = vals.iter().map(|&x| x as f32).collect();
        assert_eq!(t.0.as_slice().unwrap(), want.as_slice());
        // big-endian float64 and float32
        let be: Vec<u8> = vals.iter().flat_map(|x| x.to_be_bytes()).collect();
        assert_eq!(
            read_npy_bytes(&npy(">f8", false, "(5,)", &be), "x")
                .unwrap()
                .0
                .as_slice()
                .unwrap(),
            want.as_slice()
        );
        let be32: Vec<u8> = want.iter().flat_map(|x| x.to_be_bytes()).collect();
        assert_eq!(
            read_npy_bytes(&npy(">f4", false, "(5,)", &be32), "x")
                .unwrap()
                .0
                .as_slice()
                .unwrap(),
            want.as_slice()
        );
    }

    #[test]
    fn fortran_order_is_transposed_into_c_order() {
        // np.asfortranarray([[1,2,3],[4,5,6]]) stores 1 4 2 5 3 6.
        let t = read_npy_bytes(
            &npy("<f4", true, "(2, 3)", &f32_le(&[1., 4., 2., 5., 3., 6.])),
            "f.npy",
        )
        .unwrap();
        assert_eq!(t.0, array![[1f32, 2., 3.], [4., 5., 6.]].into_dyn());
        assert!(t.0.is_standard_layout());
        // rank 3: element (i,j,k) at i + 2j + 6k
        let data: Vec<f32> = (0..24).map(|x| x as f32).collect();
        let t = read_npy_bytes(&npy("<f4", true, "(2, 3, 4)", &f32_le(&data)), "f.npy").unwrap();
        for ((i, j, k), v) in
            t.0.clone()
                .into_dimensionality::<ndarray::Ix3>()
                .unwrap()
                .indexed_iter()
        {
            assert_eq!(*v, (i + 2 * j + 6 * k) as f32);
        }
    }

    #[test]
    fn scalar_empty_and_version_2_headers() {
        let t = read_npy_bytes(&npy("<f4", false, "()", &f32_le(&[7.5])), "s").unwrap();
        assert_eq!(t.0.shape(), &[] as &[usize]);
        assert_eq!(t.0.first(), Some(&7.5));
        let t = read_npy_bytes(&npy("<f4", false, "(0, 3)", &[]), "e").unwrap();
        assert_eq!(t.0.shape(), &[0, 3]);
        // version 2.0: 4-byte header length
        let v1 = npy("<f4", false, "(2,)", &f32_le(&[1., 2.]));
        let header = &v1[10..];
        let mut v2 = b"\x93NUMPY\x02\x00".to_vec();
        let hlen = u32::try_from(v1[8] as usize + 256 * v1[9] as usize).unwrap();
        v2.extend_from_slice(&hlen.to_le_bytes());
        v2.extend_from_slice(header);
        assert_eq!(
            read_npy_bytes(&v2, "v2").unwrap().0.as_slice().unwrap(),
            &[1., 2.]
        );
    }

    #[test]
    fn non_float_dtypes_are_refused_with_the_dtype_named() {
        for (descr, name) in [
            ("<i8", "int64"),
            ("|b1", "bool"),
            ("<f2", "float16"),
            ("<i4", "int32"),
            ("|u1", "uint8"),
        ] {
            let bytes = npy(
                descr,
                false,
                "(1,)",
                &[0u8; 8][..descr[2..].parse::<usize>().unwrap()],
            );
            let err = read_npy_bytes(&bytes, "data/x.npy")
                .unwrap_err()
                .to_string();
            assert!(err.contains("data/x.npy"), "{err}");
            assert!(err.contains(descr) && err.contains(name), "{err}");
            assert!(err.contains("float32 or float64"), "{err}");
        }
        let structured = b"\x93NUMPY\x01\x00\x46\x00{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }      \n";
        let err = read_npy_bytes(structured, "rec.npy")
            .unwrap_err()
            .to_string();
        assert!(err.contains("float32 or float64"), "{err}");
    }

    #[test]
    fn truncated_and_garbage_files_are_format_errors() {
        let good = fs::read(format!("{CASES}/lstm_seq0_state0/input_0.npy")).unwrap();
        assert!(read_npy_bytes(&good, "ok").is_ok());
        // Every prefix: never a panic, always a Format error.
        for n in 0..good.len() {
            let err = read_npy_bytes(&good[..n], "cut.npy").unwrap_err();
            assert!(matches!(err, Error::Format { .. }), "prefix {n}: {err}");
            assert!(err.to_string().starts_with("cut.npy: "), "{err}");
        }
        let err = read_npy_bytes(&good[..good.len() - 3], "cut.npy")
            .unwrap_err()
            .to_string();
        assert!(err.contains("truncated"), "{err}");
        // Trailing bytes are corruption too.
        let mut long = good.clone();
        long.push(0);
        assert!(read_npy_bytes(&long, "long")
            .unwrap_err()
            .to_string()
            .contains("unexpected bytes"));
        // Every single-byte corruption of the header: an error or a valid array, never a panic.
        for i in 0..128.min(good.len()) {
            for b in [0u8, b'(', b')', b'\'', b'9', 0xff] {
                let mut bad = good.clone();
                bad[i] = b;
                let _ = read_npy_bytes(&bad, "flip");
            }
        }
        for garbage in [
            &b""[..],
            b"\x93NUMPY",
            b"PK\x03\x04hello",
            b"\x93NUMPY\x09\x00\x00\x00",
            &[0xffu8; 300][..],
        ] {
            assert!(matches!(
                read_npy_bytes(garbage, "g").unwrap_err(),
                Error::Format { .. }
            ));
        }
    }

    #[test]
    fn a_huge_header_shape_is_refused_without_allocating() {
        // 10^15 float32 elements would be 4 PB; the file holds 8 bytes of data.
        let err = read_npy_bytes(
            &npy("<f4", false, "(1000000000, 1000000)", &[0; 8]),
            "huge.npy",
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("truncated") && err.to_string().contains("huge.npy"),
            "{err}"
        );
        // A product that overflows usize.
        let err = read_npy_bytes(
            &npy("<f8", false, "(4294967296, 4294967296, 4294967296)", &[]),
            "o.npy",
        )
        .unwrap_err();
        assert!(err.to_string().contains("too many elements"), "{err}");
        // A header length far beyond the file, and beyond the header cap.
        let mut b = b"\x93NUMPY\x02\x00".to_vec();
        b.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(read_npy_bytes(&b, "h")
            .unwrap_err()
            .to_string()
            .contains("header claims"));
    }

    #[test]
    fn write_read_round_trip_in_c_order() {
        let t = Tensor(array![[1.5f32, -2.0, 3.25], [4.0, 5.0, f32::MIN_POSITIVE]].into_dyn());
        let p = tmp("rt.npy");
        write_npy(&p, &t).unwrap();
        assert_eq!(read_npy(&p).unwrap(), t);
        // A transposed (Fortran-contiguous) tensor is written in C order, with the logical values.
        let tt = Tensor(t.0.clone().reversed_axes());
        assert!(!tt.0.is_standard_layout());
        write_npy(&p, &tt).unwrap();
        let bytes = fs::read(&p).unwrap();
        let header = String::from_utf8_lossy(&bytes[10..80]).to_string();
        assert!(
            header.contains("'fortran_order': False") && header.contains("'<f4'"),
            "{header}"
        );
        assert_eq!(read_npy(&p).unwrap(), tt);
        // Byte-identical to what numpy.save wrote, for every .npy of every case (ranks 1 to 3).
        let mut n = 0;
        for entry in fs::read_dir(CASES).unwrap() {
            let dir = entry.unwrap().path();
            for f in fs::read_dir(&dir).into_iter().flatten() {
                let f = f.unwrap().path();
                if f.extension().is_some_and(|e| e == "npy") {
                    assert_eq!(
                        npy_bytes(&read_npy(&f).unwrap()),
                        fs::read(&f).unwrap(),
                        "{}",
                        f.display()
                    );
                    n += 1;
                }
            }
        }
        assert!(n > 300, "{n}");
        // Scalars and empty arrays take the same header form numpy gives them.
        let scalar = npy_bytes(&Tensor(ndarray::arr0(1.5f32).into_dyn()));
        assert!(String::from_utf8_lossy(&scalar).contains("'shape': (), }"));
        assert_eq!(scalar.len() % 64, 4);
    }

    #[test]
    fn npz_round_trip_keeps_order_and_names() {
        let a = Tensor(array![[1f32, 2.], [3., 4.]].into_dyn());
        let b = Tensor(array![9f32].into_dyn());
        let c = Tensor(ndarray::ArrayD::zeros(IxDyn(&[0, 2])));
        let p = tmp("rt.npz");
        write_npz(&p, &[("zeta", &a), ("alpha", &b), ("empty", &c)]).unwrap();
        let back = read_npz(&p).unwrap();
        let names: Vec<&str> = back.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["zeta", "alpha", "empty"]);
        assert_eq!(back[0].1, a);
        assert_eq!(back[1].1, b);
        assert_eq!(back[2].1, c);
        // Members are stored uncompressed as <name>.npy.
        let mut z = zip::ZipArchive::new(fs::File::open(&p).unwrap()).unwrap();
        assert_eq!(z.by_index(0).unwrap().name(), "zeta.npy");
        assert_eq!(
            z.by_index(0).unwrap().compression(),
            zip::CompressionMethod::Stored
        );
        assert!(write_npz(&p, &[("a", &a), ("a", &b)]).is_err());
        assert!(write_npz(&p, &[("", &a)]).is_err());
    }

    #[test]
    fn compressed_npz_is_read() {
        // numpy.savez_compressed writes deflated members; build one with the zip crate.
        let t = Tensor(array![[0.25f32, 0.5], [0.75, 1.0]].into_dyn());
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        w.start_file("x.npy", opts).unwrap();
        std::io::Write::write_all(&mut w, &npy_bytes(&t)).unwrap();
        let bytes = w.finish().unwrap().into_inner();
        let back = read_npz_bytes(&bytes, "c.npz").unwrap();
        assert_eq!(back, vec![("x".to_string(), t)]);
    }

    #[test]
    fn npz_errors_name_the_file_and_member() {
        let int_member = npy("<i8", false, "(1,)", &[0; 8]);
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        w.start_file("counts.npy", zip::write::SimpleFileOptions::default())
            .unwrap();
        std::io::Write::write_all(&mut w, &int_member).unwrap();
        let bytes = w.finish().unwrap().into_inner();
        let err = read_npz_bytes(&bytes, "d.npz").unwrap_err().to_string();
        assert!(
            err.contains("d.npz: counts.npy") && err.contains("int64"),
            "{err}"
        );
        let err = read_npz_bytes(&bytes[..bytes.len() / 2], "d.npz")
            .unwrap_err()
            .to_string();
        assert!(err.contains("d.npz"), "{err}");
        assert!(read_npz_bytes(b"garbage", "g.npz")
            .unwrap_err()
            .to_string()
            .contains("not a valid .npz"));
    }

    #[test]
    fn a_missing_file_is_an_io_error() {
        let err = read_npy("/nonexistent/dir/x.npy").unwrap_err();
        assert!(matches!(err, Error::Io { action: "read", .. }), "{err}");
        assert!(err.to_string().contains("/nonexistent/dir/x.npy"));
        assert!(matches!(
            read_npz("/nonexistent/x.npz").unwrap_err(),
            Error::Io { .. }
        ));
        assert!(matches!(
            write_npy("/nonexistent/dir/x.npy", &Tensor::default()).unwrap_err(),
            Error::Io { .. }
        ));
    }
}
