//! Rendering evcxr compile errors against the cell's own lines, in plain text shaped like rustc's output.
//!
//! evcxr's `rendered()` points into the generated `lib.rs`, which the notebook reader never sees, and its
//! ariadne report is coloured with ANSI escapes, which would end up verbatim in the `.ipynb`. This renderer uses
//! the spans evcxr already maps back to the cell (`CompilationError::spanned_messages()`, 1-based lines and
//! columns in the cell's source) and writes:
//!
//! ```text
//! error[E0308]: mismatched types
//!  --> cell:1:14
//!   |
//! 1 | let z: i32 = "nope";
//!   |              ^^^^^^ expected `i32`, found `&str`
//!   |        --- expected due to this
//! ```

use evcxr::CompilationError;

/// One span to draw: where, how (`^` for the primary span, `-` for others) and its label.
struct Mark {
    line: usize,
    start_col: usize,
    end_col: usize,
    end_line: usize,
    primary: bool,
    label: String,
}

/// Display width of the first `col - 1` characters of `line` (tabs count 4, as in rustc's output).
fn display_offset(line: &str, col: usize) -> usize {
    line.chars()
        .take(col.saturating_sub(1))
        .map(|c| if c == '\t' { 4 } else { 1 })
        .sum()
}

/// Renders one compile error against `source` (the cell's text). `file_name` is what the `-->` line shows.
pub fn render_compilation_error(error: &CompilationError, source: &str, file_name: &str) -> String {
    let source_lines: Vec<&str> = source.lines().collect();
    let level = if error.level().is_empty() {
        "error"
    } else {
        error.level()
    };
    let mut out = match error.code() {
        Some(code) => format!("{level}[{code}]: {}\n", error.message()),
        None => format!("{level}: {}\n", error.message()),
    };

    let mut marks = Vec::new();
    let mut notes = Vec::new();
    for message in error.spanned_messages() {
        match &message.span {
            Some(span) if span.start_line >= 1 && span.start_line <= source_lines.len() => marks
                .push(Mark {
                    line: span.start_line,
                    start_col: span.start_column,
                    end_col: span.end_column,
                    end_line: span.end_line,
                    primary: message.is_primary,
                    label: message.label.clone(),
                }),
            _ => {
                if !message.label.is_empty()
                    && message.label != format!("error: {}", error.message())
                {
                    notes.push(message.label.clone());
                }
            }
        }
    }
    // The primary span goes first: it gives the `-->` location and is drawn first under its line.
    marks.sort_by_key(|m| (!m.primary, m.line, m.start_col));
    if marks.iter().all(|m| !m.primary) {
        if let Some(first) = marks.first_mut() {
            first.primary = true;
        }
    }

    let max_line = marks.iter().map(|m| m.line).max().unwrap_or(0);
    let width = max_line.to_string().len();
    let pad = " ".repeat(width);
    if let Some(first) = marks.first() {
        out.push_str(&format!(
            "{pad}--> {file_name}:{}:{}\n",
            first.line, first.start_col
        ));
        out.push_str(&format!("{pad} |\n"));
        let mut lines: Vec<usize> = marks.iter().map(|m| m.line).collect();
        lines.sort_unstable();
        lines.dedup();
        let mut previous: Option<usize> = None;
        for line_no in lines {
            if let Some(prev) = previous {
                if line_no > prev + 1 {
                    out.push_str("...\n");
                }
            }
            previous = Some(line_no);
            let text = source_lines[line_no - 1];
            let shown: String = text.replace('\t', "    ");
            out.push_str(&format!("{line_no:>width$} | {shown}\n"));
            for mark in marks.iter().filter(|m| m.line == line_no) {
                let start = display_offset(text, mark.start_col);
                // A span running onto later lines is underlined to the end of its first line.
                let end = if mark.end_line > mark.line {
                    display_offset(text, text.chars().count() + 1)
                } else {
                    display_offset(text, mark.end_col)
                };
                let len = end.saturating_sub(start).max(1);
                let marker = if mark.primary { "^" } else { "-" }.repeat(len);
                let label = if mark.label.is_empty() {
                    String::new()
                } else {
                    format!(" {}", mark.label)
                };
                out.push_str(&format!("{pad} | {}{marker}{label}\n", " ".repeat(start)));
            }
        }
    }
    let mut tail: Vec<String> = notes;
    tail.extend(error.help().into_iter().map(|h| format!("help: {h}")));
    if let Some(hint) = error.evcxr_extra_hint() {
        tail.push(format!("note: {hint}"));
    }
    for note in tail {
        let mut note_lines = note.lines();
        if let Some(first) = note_lines.next() {
            out.push_str(&format!("{pad} = {first}\n"));
        }
        for rest in note_lines {
            out.push_str(&format!("{pad}   {rest}\n"));
        }
    }
    // No trailing newline: the report becomes a traceback, one entry per line.
    while out.ends_with('\n') {
        out.pop();
    }
    out
}
