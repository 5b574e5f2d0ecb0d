//! Reading and writing Jupyter notebooks (nbformat 4) without losing anything.
//!
//! A notebook written by Jupyter and read back here is written again byte for byte the same way: the types keep
//! every field they do not interpret in an `extra` map (`#[serde(flatten)]`), metadata stays a plain JSON map,
//! and [`Notebook::to_json_string`] formats like `nbformat.writes` does (keys sorted, one-space indent,
//! multi-line strings split into lists of lines, a trailing newline). Keeping Jupyter's exact layout matters
//! because notebooks live in git: a run that changes nothing must produce no diff.
//!
//! Only nbformat 4 (any minor version) is accepted; older or newer major versions and anything that is not a
//! notebook are reported as a [`NotebookError`], never a panic.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

/// A JSON object whose key order is kept as read (`serde_json` is built with `preserve_order`).
pub type JsonMap = Map<String, Value>;

/// Why a notebook could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum NotebookError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// The text is not JSON at all (or not UTF-8).
    #[error("not valid JSON: {0}")]
    Json(#[source] serde_json::Error),
    /// The JSON is not a notebook (no `nbformat`, `cells` not a list, ...).
    #[error("not a Jupyter notebook: {0}")]
    NotANotebook(String),
    /// A notebook, but not nbformat 4: rnnlab reads and writes nbformat 4 only (what Jupyter writes today).
    #[error("unsupported notebook format {major}.{minor}: only nbformat 4 is supported (convert it with `jupyter nbconvert --to notebook`)")]
    UnsupportedVersion {
        /// The `nbformat` field.
        major: u64,
        /// The `nbformat_minor` field.
        minor: u64,
    },
    /// One cell does not follow nbformat 4 (unknown `cell_type`, missing `source`, a bad output, ...).
    #[error("cell {index}: {message}")]
    Cell {
        /// The cell's position in `cells`, counted from 0.
        index: usize,
        /// What is wrong with it.
        message: String,
    },
}

/// A whole notebook: cells plus notebook-level metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notebook {
    /// The cells, in order.
    pub cells: Vec<Cell>,
    /// Notebook metadata (`kernelspec`, `language_info`, anything else) kept as read.
    #[serde(default)]
    pub metadata: JsonMap,
    /// The major format version; always 4 for notebooks this module reads or makes.
    pub nbformat: u64,
    /// The minor format version, kept as read (4.5 notebooks carry cell ids, older ones may not).
    pub nbformat_minor: u64,
    /// Top-level fields nbformat 4 does not define, kept so that writing loses nothing.
    #[serde(flatten)]
    pub extra: JsonMap,
}

/// One cell. The `cell_type` field selects the variant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "cell_type", rename_all = "lowercase")]
pub enum Cell {
    /// Rust code (or evcxr `:` commands) that the engine executes.
    Code(CodeCell),
    /// Markdown text: never interpreted, written back as read.
    Markdown(TextCell),
    /// Raw text: never interpreted, written back as read.
    Raw(TextCell),
}

/// A code cell with its stored outputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CodeCell {
    /// The cell id (nbformat 4.5 and later); absent in older notebooks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Cell metadata (tags, collapsed, ...), kept as read.
    #[serde(default)]
    pub metadata: JsonMap,
    /// The code, as one string (the file may hold it as a string or as a list of lines).
    #[serde(with = "multiline")]
    pub source: String,
    /// The execution count shown as `[n]`; `None` (JSON `null`) for a cell that has not run.
    #[serde(default)]
    pub execution_count: Option<u64>,
    /// The outputs, in the order Jupyter would show them.
    #[serde(default)]
    pub outputs: Vec<Output>,
    /// Fields nbformat does not define for code cells, kept as read.
    #[serde(flatten)]
    pub extra: JsonMap,
}

/// A markdown or raw cell. Only `source` is normalised (list of lines vs string); nothing is interpreted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextCell {
    /// The cell id (nbformat 4.5 and later).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Cell metadata, kept as read.
    #[serde(default)]
    pub metadata: JsonMap,
    /// The text.
    #[serde(with = "multiline")]
    pub source: String,
    /// Everything else (for example `attachments`), kept as read.
    #[serde(flatten)]
    pub extra: JsonMap,
}

/// One output of a code cell. The `output_type` field selects the variant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "output_type", rename_all = "snake_case")]
pub enum Output {
    /// Text printed to stdout or stderr.
    Stream(StreamOutput),
    /// The value of the cell's final expression (evcxr: `content_by_mime_type`).
    ExecuteResult(ExecuteResult),
    /// Rich output that is not the cell's value (written by other kernels; evcxr itself only makes results).
    DisplayData(DisplayData),
    /// The cell failed: compile error, panic, timeout, ...
    Error(ErrorOutput),
}

/// A `stream` output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamOutput {
    /// `"stdout"` or `"stderr"`.
    pub name: String,
    /// The text, lines joined (each line ends with `\n` when the program printed one).
    #[serde(with = "multiline")]
    pub text: String,
    /// Fields nbformat does not define, kept as read.
    #[serde(flatten)]
    pub extra: JsonMap,
}

/// An `execute_result` output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecuteResult {
    /// The value by mime type (`text/plain`, `text/html`, `image/svg+xml`, `image/png` as base64, ...). Text
    /// values are held as one string; JSON mime types hold their JSON value.
    #[serde(with = "mime_bundle")]
    pub data: JsonMap,
    /// Output metadata (image sizes, ...), kept as read.
    #[serde(default)]
    pub metadata: JsonMap,
    /// The execution count of the cell that produced it.
    #[serde(default)]
    pub execution_count: Option<u64>,
    /// Fields nbformat does not define, kept as read.
    #[serde(flatten)]
    pub extra: JsonMap,
}

/// A `display_data` output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DisplayData {
    /// The data by mime type, as in [`ExecuteResult::data`].
    #[serde(with = "mime_bundle")]
    pub data: JsonMap,
    /// Output metadata, kept as read.
    #[serde(default)]
    pub metadata: JsonMap,
    /// Fields nbformat does not define, kept as read.
    #[serde(flatten)]
    pub extra: JsonMap,
}

/// An `error` output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorOutput {
    /// The error's name: `Error` (compile or evcxr error, as evcxr_jupyter names it), `Panic`, `Timeout`.
    pub ename: String,
    /// The one-line message.
    pub evalue: String,
    /// The full report, one entry per line, plain text.
    #[serde(default)]
    pub traceback: Vec<String>,
    /// Fields nbformat does not define, kept as read.
    #[serde(flatten)]
    pub extra: JsonMap,
}

impl Notebook {
    /// An empty nbformat 4.5 notebook for the evcxr Rust kernel, with the kernelspec and `language_info` that
    /// evcxr_jupyter itself reports (including its `pygment_lexer` spelling and empty `version`), so that
    /// Jupyter opens it with the Rust kernel and saving it in Jupyter changes no metadata.
    pub fn new_rust() -> Notebook {
        let metadata = serde_json::json!({
            "kernelspec": {"display_name": "Rust", "language": "rust", "name": "rust"},
            "language_info": {
                "codemirror_mode": "rust",
                "file_extension": ".rs",
                "mimetype": "text/rust",
                "name": "Rust",
                "pygment_lexer": "rust",
                "version": ""
            }
        });
        Notebook {
            cells: Vec::new(),
            metadata: match metadata {
                Value::Object(map) => map,
                _ => unreachable!("a json! object literal is an object"),
            },
            nbformat: 4,
            nbformat_minor: 5,
            extra: JsonMap::new(),
        }
    }

    /// Reads a notebook file. Errors name the file and say what is wrong with it.
    pub fn read(path: impl AsRef<Path>) -> Result<Notebook, NotebookError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| NotebookError::Io {
            path: path.to_owned(),
            source,
        })?;
        Notebook::from_json_str(&text)
    }

    /// Parses notebook JSON. The version is checked before the cells so that an nbformat 3 file gets "unsupported
    /// format" rather than a confusing complaint about its cells.
    pub fn from_json_str(text: &str) -> Result<Notebook, NotebookError> {
        let value: Value = serde_json::from_str(text).map_err(NotebookError::Json)?;
        Notebook::from_value(value)
    }

    /// Builds a notebook from parsed JSON, with the same checks as [`Notebook::from_json_str`].
    pub fn from_value(value: Value) -> Result<Notebook, NotebookError> {
        let Value::Object(mut top) = value else {
            return Err(NotebookError::NotANotebook(
                "the top level is not a JSON object".into(),
            ));
        };
        let major = match top.get("nbformat") {
            Some(Value::Number(n)) if n.as_u64().is_some() => n.as_u64().unwrap_or_default(),
            Some(other) => {
                return Err(NotebookError::NotANotebook(format!(
                    "`nbformat` is {other}, not a version number"
                )))
            }
            None => return Err(NotebookError::NotANotebook("no `nbformat` field".into())),
        };
        let minor = top
            .get("nbformat_minor")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        if major != 4 {
            return Err(NotebookError::UnsupportedVersion { major, minor });
        }
        if !top.contains_key("nbformat_minor") {
            return Err(NotebookError::NotANotebook(
                "no `nbformat_minor` field".into(),
            ));
        }
        // Cells are converted one by one so that an error can say which cell is wrong.
        let cells_value = top
            .remove("cells")
            .ok_or_else(|| NotebookError::NotANotebook("no `cells` list".into()))?;
        let Value::Array(raw_cells) = cells_value else {
            return Err(NotebookError::NotANotebook("`cells` is not a list".into()));
        };
        let mut cells = Vec::with_capacity(raw_cells.len());
        for (index, raw) in raw_cells.into_iter().enumerate() {
            if !raw.is_object() {
                return Err(NotebookError::Cell {
                    index,
                    message: "not a JSON object".into(),
                });
            }
            let cell = serde_json::from_value::<Cell>(raw).map_err(|e| NotebookError::Cell {
                index,
                message: e.to_string(),
            })?;
            cells.push(cell);
        }
        top.insert("cells".into(), Value::Array(Vec::new()));
        let mut notebook: Notebook = serde_json::from_value(Value::Object(top))
            .map_err(|e| NotebookError::NotANotebook(e.to_string()))?;
        notebook.cells = cells;
        Ok(notebook)
    }

    /// The notebook as Jupyter writes it: keys sorted, one-space indent, multi-line strings as lists of lines,
    /// non-ASCII characters unescaped, and a trailing newline.
    pub fn to_json_string(&self) -> String {
        let value = serde_json::to_value(self).expect("a notebook is always representable as JSON");
        let value = sort_keys(value);
        let mut out = Vec::new();
        let formatter = serde_json::ser::PrettyFormatter::with_indent(b" ");
        let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
        value
            .serialize(&mut serializer)
            .expect("writing JSON to memory cannot fail");
        let mut text = String::from_utf8(out).expect("serde_json writes UTF-8");
        text.push('\n');
        text
    }

    /// Writes the notebook to `path` (via a temporary file and a rename, so an interrupted write never leaves a
    /// half-written notebook behind).
    pub fn write(&self, path: impl AsRef<Path>) -> Result<(), NotebookError> {
        let path = path.as_ref();
        let io_err = |source| NotebookError::Io {
            path: path.to_owned(),
            source,
        };
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "notebook".into());
        let tmp = path.with_file_name(format!(".{file_name}.rnnlab-tmp"));
        std::fs::write(&tmp, self.to_json_string()).map_err(io_err)?;
        std::fs::rename(&tmp, path).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            io_err(e)
        })
    }

    /// Appends a code cell (with a fresh cell id when the notebook is nbformat 4.5 or later) and returns it.
    pub fn push_code(&mut self, source: impl Into<String>) -> &mut CodeCell {
        let id = (self.nbformat_minor >= 5).then(new_cell_id);
        self.cells.push(Cell::Code(CodeCell {
            id,
            metadata: JsonMap::new(),
            source: source.into(),
            execution_count: None,
            outputs: Vec::new(),
            extra: JsonMap::new(),
        }));
        match self.cells.last_mut() {
            Some(Cell::Code(cell)) => cell,
            _ => unreachable!("a code cell was just pushed"),
        }
    }

    /// Appends a markdown cell (with a fresh cell id when the notebook is nbformat 4.5 or later).
    pub fn push_markdown(&mut self, source: impl Into<String>) {
        let id = (self.nbformat_minor >= 5).then(new_cell_id);
        self.cells.push(Cell::Markdown(TextCell {
            id,
            metadata: JsonMap::new(),
            source: source.into(),
            extra: JsonMap::new(),
        }));
    }

    /// The code cells with their positions in `cells`.
    pub fn code_cells(&self) -> impl Iterator<Item = (usize, &CodeCell)> {
        self.cells.iter().enumerate().filter_map(|(i, c)| match c {
            Cell::Code(code) => Some((i, code)),
            _ => None,
        })
    }
}

impl fmt::Display for Notebook {
    /// The notebook's JSON as Jupyter writes it (see [`Notebook::to_json_string`]).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_json_string())
    }
}

impl Cell {
    /// The cell's source text, whatever its type.
    pub fn source(&self) -> &str {
        match self {
            Cell::Code(c) => &c.source,
            Cell::Markdown(t) | Cell::Raw(t) => &t.source,
        }
    }

    /// The code cell, if this is one.
    pub fn as_code(&self) -> Option<&CodeCell> {
        match self {
            Cell::Code(c) => Some(c),
            _ => None,
        }
    }

    /// The code cell, mutably, if this is one.
    pub fn as_code_mut(&mut self) -> Option<&mut CodeCell> {
        match self {
            Cell::Code(c) => Some(c),
            _ => None,
        }
    }
}

impl Output {
    /// The `output_type` as written in the file (`stream`, `execute_result`, `display_data`, `error`).
    pub fn output_type(&self) -> &'static str {
        match self {
            Output::Stream(_) => "stream",
            Output::ExecuteResult(_) => "execute_result",
            Output::DisplayData(_) => "display_data",
            Output::Error(_) => "error",
        }
    }

    /// A `stream` output.
    pub fn stream(name: &str, text: impl Into<String>) -> Output {
        Output::Stream(StreamOutput {
            name: name.into(),
            text: text.into(),
            extra: JsonMap::new(),
        })
    }

    /// An `error` output.
    pub fn error(
        ename: impl Into<String>,
        evalue: impl Into<String>,
        traceback: Vec<String>,
    ) -> Output {
        Output::Error(ErrorOutput {
            ename: ename.into(),
            evalue: evalue.into(),
            traceback,
            extra: JsonMap::new(),
        })
    }

    /// The mime bundle of an `execute_result` or `display_data`.
    pub fn data(&self) -> Option<&JsonMap> {
        match self {
            Output::ExecuteResult(r) => Some(&r.data),
            Output::DisplayData(d) => Some(&d.data),
            _ => None,
        }
    }
}

/// Text value of one mime type in a bundle: strings as they are, JSON values as compact JSON.
pub fn mime_text(data: &JsonMap, mime: &str) -> Option<String> {
    data.get(mime).map(|v| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    })
}

/// A random 8-hex-digit cell id, as nbformat's `random_cell_id` makes (Jupyter uses the first 8 hex digits of
/// a UUID4). Randomness comes from the standard library's hasher seed, so no extra dependency is needed.
fn new_cell_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    format!("{:08x}", hasher.finish() as u32)
}

/// Recursively rebuilds every object with its keys sorted, because `nbformat.writes` uses `sort_keys=True`
/// and the crate's `serde_json` keeps insertion order.
fn sort_keys(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, sort_keys(v)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sort_keys).collect()),
        other => other,
    }
}

/// Splits text into lines keeping the line ends, exactly like Python's `str.splitlines(True)`, which nbformat
/// uses for `source`, stream text and text mime data. Matching Python's set of line breaks keeps our files
/// byte-identical to Jupyter's.
pub fn split_lines(text: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut start = 0;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let is_break = matches!(
            c,
            '\n' | '\r'
                | '\u{0b}'
                | '\u{0c}'
                | '\u{1c}'
                | '\u{1d}'
                | '\u{1e}'
                | '\u{85}'
                | '\u{2028}'
                | '\u{2029}'
        );
        if is_break {
            let mut end = i + c.len_utf8();
            if c == '\r' {
                if let Some(&(_, '\n')) = chars.peek() {
                    chars.next();
                    end += 1;
                }
            }
            lines.push(text[start..end].to_string());
            start = end;
        }
    }
    if start < text.len() {
        lines.push(text[start..].to_string());
    }
    lines
}

/// serde helpers for nbformat's "multiline string": read a string or a list of strings, write a list of lines.
mod multiline {
    use super::*;

    pub fn serialize<S: Serializer>(text: &str, serializer: S) -> Result<S::Ok, S::Error> {
        split_lines(text).serialize(serializer)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Multiline {
            One(String),
            Lines(Vec<String>),
        }
        match Multiline::deserialize(deserializer) {
            Ok(Multiline::One(s)) => Ok(s),
            Ok(Multiline::Lines(lines)) => Ok(lines.concat()),
            Err(_) => Err(serde::de::Error::custom(
                "expected a string or a list of strings",
            )),
        }
    }
}

/// serde helpers for mime bundles: text mime types are joined into one string on read and split into lines on
/// write (only those nbformat splits: `text/*`, `image/svg+xml`, `application/javascript`); JSON mime types and
/// base64 images are kept as they are.
mod mime_bundle {
    use super::*;

    fn is_json_mime(mime: &str) -> bool {
        mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
    }

    fn is_split_mime(mime: &str) -> bool {
        mime.starts_with("text/") || mime == "image/svg+xml" || mime == "application/javascript"
    }

    pub fn serialize<S: Serializer>(data: &JsonMap, serializer: S) -> Result<S::Ok, S::Error> {
        let mut out = JsonMap::new();
        for (mime, value) in data {
            let value = match value {
                Value::String(s) if is_split_mime(mime) => {
                    Value::Array(split_lines(s).into_iter().map(Value::String).collect())
                }
                other => other.clone(),
            };
            out.insert(mime.clone(), value);
        }
        out.serialize(serializer)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<JsonMap, D::Error> {
        let raw = JsonMap::deserialize(deserializer)?;
        let mut out = JsonMap::new();
        for (mime, value) in raw {
            let value = match value {
                Value::Array(items)
                    if !is_json_mime(&mime) && items.iter().all(Value::is_string) =>
                {
                    Value::String(items.iter().filter_map(Value::as_str).collect())
                }
                other => other,
            };
            out.insert(mime, value);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_lines_matches_python() {
        assert_eq!(split_lines(""), Vec::<String>::new());
        assert_eq!(split_lines("a\nb"), vec!["a\n", "b"]);
        assert_eq!(split_lines("a\r\nb\n"), vec!["a\r\n", "b\n"]);
        assert_eq!(split_lines("a\rb\u{2028}c"), vec!["a\r", "b\u{2028}", "c"]);
    }

    #[test]
    fn round_trip_is_byte_identical() {
        let text = r##"{
 "cells": [
  {
   "cell_type": "markdown",
   "id": "m1",
   "metadata": {
    "tags": [
     "x"
    ]
   },
   "source": [
    "# Title\n",
    "text"
   ]
  },
  {
   "cell_type": "code",
   "execution_count": 1,
   "id": "c1",
   "metadata": {},
   "outputs": [
    {
     "name": "stdout",
     "output_type": "stream",
     "text": [
      "hi\n"
     ]
    },
    {
     "data": {
      "image/png": "iVBORw0KGgo=",
      "text/plain": [
       "42"
      ]
     },
     "execution_count": 1,
     "metadata": {},
     "output_type": "execute_result"
    },
    {
     "ename": "Error",
     "evalue": "boom",
     "output_type": "error",
     "traceback": [
      "boom"
     ],
     "unknown_field": 7
    }
   ],
   "source": [
    "println!(\"hi\");\n",
    "42"
   ]
  }
 ],
 "metadata": {
  "custom": {
   "z": 1,
   "a": 2
  }
 },
 "nbformat": 4,
 "nbformat_minor": 5,
 "zz_extra": true
}
"##;
        let nb = Notebook::from_json_str(text).unwrap();
        // Keys inside metadata are sorted on write, as Jupyter does.
        let expected = text.replace("\"z\": 1,\n   \"a\": 2", "\"a\": 2,\n   \"z\": 1");
        assert_eq!(nb.to_json_string(), expected);
        assert_eq!(nb.extra["zz_extra"], Value::Bool(true));
    }

    #[test]
    fn bad_input_is_an_error() {
        assert!(matches!(
            Notebook::from_json_str("{"),
            Err(NotebookError::Json(_))
        ));
        assert!(matches!(
            Notebook::from_json_str("[]"),
            Err(NotebookError::NotANotebook(_))
        ));
        assert!(matches!(
            Notebook::from_json_str(r#"{"nbformat": 3, "nbformat_minor": 0, "worksheets": []}"#),
            Err(NotebookError::UnsupportedVersion { major: 3, .. })
        ));
        let bad_cell = r#"{"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [{"cell_type": "code"}]}"#;
        let err = Notebook::from_json_str(bad_cell).unwrap_err();
        assert!(err.to_string().starts_with("cell 0:"), "{err}");
        let bad_type = r#"{"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [{"cell_type": "heading", "source": ""}]}"#;
        assert!(matches!(
            Notebook::from_json_str(bad_type),
            Err(NotebookError::Cell { index: 0, .. })
        ));
    }

    #[test]
    fn new_rust_has_the_evcxr_kernelspec() {
        let mut nb = Notebook::new_rust();
        nb.push_code("1 + 1");
        let back = Notebook::from_json_str(&nb.to_json_string()).unwrap();
        assert_eq!(back, nb);
        assert_eq!(back.metadata["kernelspec"]["name"], "rust");
        assert_eq!(back.metadata["language_info"]["pygment_lexer"], "rust");
    }
}
