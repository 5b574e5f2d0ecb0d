//! Comparing a cell's new outputs with its stored ones, as `rnnlab test` does.
//!
//! The rules, chosen so that a notebook test fails on a real change and not on noise:
//! - Text is compared token by token. Decimal numbers (with a `.` or an exponent) may differ within
//!   `abs + rel * |expected|` (defaults 1e-8 and 1e-6: `0.024806721` matches `0.02480672`); integers must be
//!   equal (a changed count or shape is a real change); everything else must be equal after removing trailing
//!   whitespace from each line and trailing blank lines. Signs are text, so `-0.1` never matches `0.1`.
//! - Streams are compared per name (all stdout text together, all stderr text together), because the order in
//!   which the two pipes interleave is not deterministic.
//! - Rich outputs (`execute_result`, `display_data`) must be the same kind, in the same order, with the same set
//!   of mime types; text mime types are compared as text, images (`image/*`) only by presence, since renderers
//!   and compressors change bytes without changing the picture.
//! - Errors must match in `ename` and (as text) in `evalue`; tracebacks are not compared, as in nbval.

use crate::nbformat::{mime_text, JsonMap, Output};

/// Numeric tolerance for comparing text outputs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tolerance {
    /// Relative tolerance (of the stored value).
    pub rel: f64,
    /// Absolute tolerance.
    pub abs: f64,
}

impl Default for Tolerance {
    /// rel 1e-6, abs 1e-8: float32 values printed with 8 significant digits may move in the last digit.
    fn default() -> Self {
        Tolerance {
            rel: 1e-6,
            abs: 1e-8,
        }
    }
}

/// A piece of text: either a number or the text between numbers.
#[derive(Debug, Clone, PartialEq)]
enum Token<'a> {
    /// A number; `decimal` is true when it has a fraction or an exponent.
    Number {
        text: &'a str,
        value: f64,
        decimal: bool,
    },
    /// Anything else.
    Text(&'a str),
}

/// Removes trailing whitespace from every line and trailing blank lines, so that editors and terminals that
/// strip or pad lines do not make a test fail.
pub fn normalise_text(text: &str) -> String {
    let lines: Vec<&str> = text.lines().map(str::trim_end).collect();
    let end = lines
        .iter()
        .rposition(|l| !l.is_empty())
        .map_or(0, |i| i + 1);
    lines[..end].join("\n")
}

/// Splits text into numbers and the text between them. A number is `digits[.digits][e[+-]digits]` or
/// `.digits[...]`; a sign in front is left as text.
fn tokenise(text: &str) -> Vec<Token<'_>> {
    let bytes = text.as_bytes();
    let mut tokens = Vec::new();
    let mut text_start = 0;
    let mut i = 0;
    while i < bytes.len() {
        let starts_number = bytes[i].is_ascii_digit()
            || (bytes[i] == b'.' && i + 1 < bytes.len() && bytes[i + 1].is_ascii_digit());
        if !starts_number {
            i += 1;
            continue;
        }
        let start = i;
        let mut decimal = false;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        if i < bytes.len() && bytes[i] == b'.' {
            // "1." followed by a non-digit (end of a sentence) keeps the dot as text.
            if i + 1 < bytes.len() && bytes[i + 1].is_ascii_digit() {
                decimal = true;
                i += 1;
                while i < bytes.len() && bytes[i].is_ascii_digit() {
                    i += 1;
                }
            } else if start < i && (i + 1 == bytes.len() || !bytes[i + 1].is_ascii_alphanumeric()) {
                // "1." as printed by NumPy for a whole float: a decimal number.
                decimal = true;
                i += 1;
            }
        }
        if i < bytes.len() && (bytes[i] == b'e' || bytes[i] == b'E') {
            let mut j = i + 1;
            if j < bytes.len() && (bytes[j] == b'+' || bytes[j] == b'-') {
                j += 1;
            }
            if j < bytes.len() && bytes[j].is_ascii_digit() {
                while j < bytes.len() && bytes[j].is_ascii_digit() {
                    j += 1;
                }
                decimal = true;
                i = j;
            }
        }
        if text_start < start {
            tokens.push(Token::Text(&text[text_start..start]));
        }
        let number = &text[start..i];
        match number.trim_end_matches('.').parse::<f64>() {
            Ok(value) => tokens.push(Token::Number {
                text: number,
                value,
                decimal,
            }),
            Err(_) => tokens.push(Token::Text(number)),
        }
        text_start = i;
    }
    if text_start < text.len() {
        tokens.push(Token::Text(&text[text_start..]));
    }
    // Merge adjacent text tokens so that equality of the text between numbers is checked in one piece.
    let mut merged: Vec<Token<'_>> = Vec::with_capacity(tokens.len());
    for token in tokens {
        if let (Some(Token::Text(prev)), Token::Text(cur)) = (merged.last(), &token) {
            let start = prev.as_ptr() as usize - text.as_ptr() as usize;
            let end = cur.as_ptr() as usize - text.as_ptr() as usize + cur.len();
            *merged.last_mut().expect("checked above") = Token::Text(&text[start..end]);
        } else {
            merged.push(token);
        }
    }
    merged
}

/// Compares two texts with the module's rules. Returns `None` when they match, or a one-line reason.
pub fn compare_text(expected: &str, got: &str, tol: Tolerance) -> Option<String> {
    let expected = normalise_text(expected);
    let got = normalise_text(got);
    if expected == got {
        return None;
    }
    let a = tokenise(&expected);
    let b = tokenise(&got);
    for (x, y) in a.iter().zip(b.iter()) {
        match (x, y) {
            (Token::Text(s), Token::Text(t)) if s == t => {}
            (
                Token::Number {
                    text: s,
                    value: v,
                    decimal: dx,
                },
                Token::Number {
                    text: t,
                    value: w,
                    decimal: dy,
                },
            ) => {
                if s == t {
                    continue;
                }
                if !*dx && !*dy {
                    return Some(format!("integer {s} became {t}"));
                }
                let close = (v - w).abs() <= tol.abs + tol.rel * v.abs();
                if !close {
                    return Some(format!(
                        "number {s} became {t} (difference {:.3e} > abs {:e} + rel {:e} * |expected|)",
                        (v - w).abs(),
                        tol.abs,
                        tol.rel
                    ));
                }
            }
            _ => {
                return Some(format!(
                    "text differs: expected `{}`, got `{}`",
                    token_text(x),
                    token_text(y)
                ))
            }
        }
    }
    if a.len() != b.len() {
        let (longer, which) = if a.len() > b.len() {
            (&a[b.len()], "missing")
        } else {
            (&b[a.len()], "unexpected")
        };
        return Some(format!("{which} text `{}`", token_text(longer)));
    }
    None
}

fn token_text<'a>(t: &Token<'a>) -> &'a str {
    match t {
        Token::Number { text, .. } => text,
        Token::Text(text) => text,
    }
}

/// True when a mime type is compared by presence only.
fn is_image_mime(mime: &str) -> bool {
    mime.starts_with("image/")
}

/// All text of the streams named `name`, concatenated in order.
fn stream_text(outputs: &[Output], name: &str) -> Option<String> {
    let mut text: Option<String> = None;
    for o in outputs {
        if let Output::Stream(s) = o {
            if s.name == name {
                text.get_or_insert_with(String::new).push_str(&s.text);
            }
        }
    }
    text
}

fn non_stream(outputs: &[Output]) -> Vec<&Output> {
    outputs
        .iter()
        .filter(|o| !matches!(o, Output::Stream(_)))
        .collect()
}

fn compare_bundles(expected: &JsonMap, got: &JsonMap, tol: Tolerance) -> Option<String> {
    let exp_keys: Vec<&String> = expected.keys().collect();
    let got_keys: Vec<&String> = got.keys().collect();
    let mut a = exp_keys.clone();
    let mut b = got_keys.clone();
    a.sort();
    b.sort();
    if a != b {
        return Some(format!("mime types {a:?} became {b:?}"));
    }
    for mime in a {
        if is_image_mime(mime) {
            continue;
        }
        let x = mime_text(expected, mime).unwrap_or_default();
        let y = mime_text(got, mime).unwrap_or_default();
        if let Some(reason) = compare_text(&x, &y, tol) {
            return Some(format!("{mime}: {reason}"));
        }
    }
    None
}

/// Compares a cell's stored outputs with its new ones. Returns `None` when they match, or a one-line reason for
/// the first difference found.
pub fn compare_outputs(expected: &[Output], got: &[Output], tol: Tolerance) -> Option<String> {
    for name in ["stdout", "stderr"] {
        match (stream_text(expected, name), stream_text(got, name)) {
            (None, None) => {}
            (Some(x), Some(y)) => {
                if let Some(reason) = compare_text(&x, &y, tol) {
                    return Some(format!("{name}: {reason}"));
                }
            }
            // An empty stream and no stream are the same thing to a reader.
            (Some(x), None) if normalise_text(&x).is_empty() => {}
            (None, Some(y)) if normalise_text(&y).is_empty() => {}
            (Some(_), None) => return Some(format!("{name} output missing")),
            (None, Some(_)) => return Some(format!("unexpected {name} output")),
        }
    }
    let a = non_stream(expected);
    let b = non_stream(got);
    for (i, (x, y)) in a.iter().zip(b.iter()).enumerate() {
        if x.output_type() != y.output_type() {
            return Some(format!(
                "output {i}: expected {}, got {}",
                x.output_type(),
                y.output_type()
            ));
        }
        match (x, y) {
            (Output::Error(e), Output::Error(f)) => {
                if e.ename != f.ename {
                    return Some(format!("error name {} became {}", e.ename, f.ename));
                }
                if let Some(reason) = compare_text(&e.evalue, &f.evalue, tol) {
                    return Some(format!("error message: {reason}"));
                }
            }
            _ => {
                if let (Some(d), Some(e)) = (x.data(), y.data()) {
                    if let Some(reason) = compare_bundles(d, e, tol) {
                        return Some(format!("{} {i}: {reason}", x.output_type()));
                    }
                }
            }
        }
    }
    if a.len() > b.len() {
        return Some(format!("missing {} output", a[b.len()].output_type()));
    }
    if b.len() > a.len() {
        return Some(format!("unexpected {} output", b[a.len()].output_type()));
    }
    None
}

/// A short plain-text rendering of outputs for diff reports: one header line per output (`[stdout]`,
/// `[execute_result text/plain]`, `[error] Panic: ...`) followed by its text, at most `max_lines` lines in all.
pub fn summarise_outputs(outputs: &[Output], max_lines: usize) -> Vec<String> {
    let mut lines = Vec::new();
    for o in outputs {
        match o {
            Output::Stream(s) => {
                lines.push(format!("[{}]", s.name));
                lines.extend(s.text.lines().map(|l| format!("  {l}")));
            }
            Output::ExecuteResult(_) | Output::DisplayData(_) => {
                let data = o.data().expect("rich outputs have data");
                let mimes: Vec<&str> = data.keys().map(String::as_str).collect();
                lines.push(format!("[{} {}]", o.output_type(), mimes.join(", ")));
                let shown = ["text/plain", "text/html", "text/markdown"]
                    .into_iter()
                    .find(|m| data.contains_key(*m));
                if let Some(mime) = shown {
                    let text = mime_text(data, mime).unwrap_or_default();
                    lines.extend(text.lines().map(|l| format!("  {l}")));
                }
            }
            Output::Error(e) => {
                lines.push(format!("[error] {}: {}", e.ename, e.evalue));
            }
        }
    }
    if lines.len() > max_lines {
        let more = lines.len() - max_lines;
        lines.truncate(max_lines);
        lines.push(format!("  ... ({more} more lines)"));
    }
    if lines.is_empty() {
        lines.push("(no output)".into());
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOL: Tolerance = Tolerance {
        rel: 1e-6,
        abs: 1e-8,
    };

    #[test]
    fn tutorial_digits_within_tolerance() {
        assert_eq!(compare_text("[[0.02480672]]", "[[0.024806721]]", TOL), None);
        assert!(compare_text("[[0.02480672]]", "[[0.02480682]]", TOL).is_some());
        assert!(compare_text("[[0.02480672]]", "[[0.03480672]]", TOL).is_some());
        assert!(compare_text("0.5", "-0.5", TOL).is_some());
    }

    #[test]
    fn integers_exact_text_exact_whitespace_lenient() {
        assert!(compare_text("shape (1, 3, 2)", "shape (1, 3, 3)", TOL).is_some());
        assert!(compare_text("Total params: 1234567", "Total params: 1234568", TOL).is_some());
        assert_eq!(compare_text("a  \nb\n\n", "a\nb", TOL), None);
        assert!(compare_text("hello", "hallo", TOL).is_some());
        assert!(compare_text("x 1", "x 1 2", TOL).is_some());
        assert_eq!(compare_text("1e-5 and 2.", "0.00001 and 2.0", TOL), None);
        assert_eq!(compare_text("E0308 f32", "E0308 f32", TOL), None);
    }
}
