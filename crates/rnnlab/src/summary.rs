//! `model.summary()` tables, byte for byte as Keras prints them.
//!
//! Three renderings of one [`SummaryData`]:
//!
//! * [`SummaryData::render_keras3`]: Keras 3.15 (`keras/src/utils/summary_utils.py`), which
//!   builds a `rich.table.Table` (default `HEAVY_HEAD` box, `show_lines=True`, fixed column
//!   widths, `width=line_length`) and prints it through a capturing, colourless
//!   `rich.console.Console`. The parts of rich that matter (column width allocation with
//!   `ratio_reduce`, word wrapping with `divide_line`, ellipsis overflow, justification,
//!   vertical alignment) are ported below, so widths and line breaks match rich exactly.
//! * [`SummaryData::render_tf2`]: tf.keras 2.8 (`keras/utils/layer_utils.py` at tag v2.8.0,
//!   `print_summary`), the underscore table of classic tutorials; its `print_row` wrapping
//!   is ported verbatim.
//! * [`SummaryData::render_html`]: a small HTML table with the Keras 3 cell contents, for
//!   Jupyter.

use std::fmt::Write as _;

/// One row of a summary: a layer (or an input layer).
#[derive(Clone, Debug, PartialEq)]
pub struct SummaryRow {
    /// Layer name, e.g. `"lstm"`.
    pub name: String,
    /// Python class name, e.g. `"LSTM"`.
    pub class_name: String,
    /// One entry per output tensor; `None` is an unknown dimension (the batch).
    pub output_shapes: Vec<Vec<Option<usize>>>,
    /// `InputLayer` rows (tf2 style list-wraps a Functional model's input shape:
    /// `"[(None, 3, 1)]"`).
    pub is_input: bool,
    /// Parameter count; `None` = layer not built (`?` shape and `0 (unbuilt)` in Keras 3).
    pub params: Option<usize>,
    /// Inbound tensors as `name[node][tensor]`, e.g. `["input_layer_1[0][0]", "lstm[0][1]"]`;
    /// empty for inputs.
    pub connected_to: Vec<String>,
}

/// Everything a summary needs.
#[derive(Clone, Debug, PartialEq)]
pub struct SummaryData {
    /// Model name, e.g. `"functional"` or `"sequential"`.
    pub model_name: String,
    /// Rows in display order (`model.layers` order).
    pub rows: Vec<SummaryRow>,
    /// `true`: 3 columns; `false`: 4 columns with "Connected to".
    pub sequential_like: bool,
    /// Number of trainable parameters.
    pub trainable_params: usize,
    /// Number of non-trainable parameters.
    pub non_trainable_params: usize,
    /// Bytes per parameter for the memory sizes (4 for float32).
    pub bytes_per_param: usize,
}

/// Which table to draw.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SummaryStyle {
    /// Keras 3.15 rich box table (piped default width).
    #[default]
    Keras3,
    /// tf.keras 2.8 underscore table.
    Tf2,
}

/// Formats one shape as Python prints a tuple: `(None, 3, 1)`; `(4,)` for rank 1.
#[must_use]
pub fn format_shape(shape: &[Option<usize>]) -> String {
    let dims: Vec<String> = shape.iter().map(|d| fmt_dim(*d)).collect();
    match dims.len() {
        1 => format!("({},)", dims[0]),
        _ => format!("({})", dims.join(", ")),
    }
}

/// Python's `str()` of one dimension.
fn fmt_dim(d: Option<usize>) -> String {
    match d {
        Some(v) => v.to_string(),
        None => "None".to_string(),
    }
}

/// Keras 3 `format_shape`: `f"({', '.join(dims)})"`, which (unlike a Python tuple) has no
/// trailing comma for rank 1: `(None)`.
fn keras3_shape(shape: &[Option<usize>]) -> String {
    let dims: Vec<String> = shape.iter().map(|d| fmt_dim(*d)).collect();
    format!("({})", dims.join(", "))
}

/// Python's `"{:,}".format(n)`.
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// Keras 3 `readable_memory_size`: divide by 1024 until below 1024, two decimals.
/// Rust's `{:.2}` rounds the exact binary value half-to-even, like Python's `{:.2f}`.
fn readable_memory_size(bytes: f64) -> String {
    const UNITS: [&str; 6] = ["B", "KB", "MB", "GB", "TB", "PB"];
    let mut size = bytes;
    for unit in UNITS {
        if size / 1024.0 < 1.0 {
            return format!("{size:.2} {unit}");
        }
        size /= 1024.0;
    }
    format!("{size:.2} {}", UNITS[UNITS.len() - 1])
}

/// Python `repr()` of a `str`, as `str(list_of_str)` shows it (tf2 "Connected to").
fn py_repr_str(s: &str) -> String {
    // Python picks double quotes only when the text has a single quote and no double quote.
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::new();
    out.push(quote);
    for ch in s.chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

// ---------------------------------------------------------------------------------------
// Ported pieces of rich (rich/cells.py, rich/_wrap.py, rich/text.py, rich/_ratio.py,
// rich/table.py). Offsets are in chars because Python indexes strings by code point;
// widths are in terminal cells as rich's `cell_len` measures them.
// ---------------------------------------------------------------------------------------

/// Terminal cell width of one char. An approximation of rich's wcwidth table: combining
/// marks and zero-width characters take 0 cells, East Asian wide/fullwidth and emoji take 2.
fn char_width(c: char) -> usize {
    let u = c as u32;
    match u {
        0x0300..=0x036F | 0x200B..=0x200F | 0xFE00..=0xFE0F | 0x20D0..=0x20FF => 0,
        0x1100..=0x115F
        | 0x2E80..=0x303E
        | 0x3041..=0x33FF
        | 0x3400..=0x4DBF
        | 0x4E00..=0x9FFF
        | 0xA000..=0xA4CF
        | 0xAC00..=0xD7A3
        | 0xF900..=0xFAFF
        | 0xFE30..=0xFE4F
        | 0xFF00..=0xFF60
        | 0xFFE0..=0xFFE6
        | 0x1F300..=0x1F64F
        | 0x1F900..=0x1F9FF
        | 0x20000..=0x3FFFD => 2,
        _ => 1,
    }
}

/// rich `cell_len`.
fn cell_len(chars: &[char]) -> usize {
    chars.iter().map(|&c| char_width(c)).sum()
}

/// rich `set_cell_size`: crop or pad with spaces to exactly `total` cells. (When a wide
/// char straddles the edge it is dropped and a space pads the gap, as older rich does.)
fn set_cell_size(chars: &[char], total: usize) -> Vec<char> {
    let mut out = Vec::with_capacity(total);
    let mut used = 0;
    for &c in chars {
        let w = char_width(c);
        if used + w > total {
            break;
        }
        out.push(c);
        used += w;
    }
    out.extend(std::iter::repeat_n(' ', total - used));
    out
}

/// rich `chop_cells`: split a word into pieces of at most `width` cells.
fn chop_cells(chars: &[char], width: usize) -> Vec<Vec<char>> {
    let width = width.max(1);
    let mut pieces = Vec::new();
    let mut current = Vec::new();
    let mut used = 0;
    for &c in chars {
        let w = char_width(c);
        if used + w > width && !current.is_empty() {
            pieces.push(std::mem::take(&mut current));
            used = 0;
        }
        current.push(c);
        used += w;
    }
    if !current.is_empty() || pieces.is_empty() {
        pieces.push(current);
    }
    pieces
}

/// rich `_wrap.words`: the regex `\s*\S+\s*` matched repeatedly from the start; yields
/// `(start, end)` char offsets. Stops at trailing whitespace that has no word after it.
fn words(chars: &[char]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut pos = 0;
    loop {
        let mut i = pos;
        while i < chars.len() && chars[i].is_whitespace() {
            i += 1;
        }
        if i == chars.len() {
            break;
        }
        while i < chars.len() && !chars[i].is_whitespace() {
            i += 1;
        }
        while i < chars.len() && chars[i].is_whitespace() {
            i += 1;
        }
        out.push((pos, i));
        pos = i;
    }
    out
}

/// Strips trailing whitespace from a char slice.
fn rstrip(chars: &[char]) -> &[char] {
    let mut end = chars.len();
    while end > 0 && chars[end - 1].is_whitespace() {
        end -= 1;
    }
    &chars[..end]
}

/// rich `_wrap.divide_line`: char offsets where a line must break to fit `width` cells.
fn divide_line(chars: &[char], width: usize, fold: bool) -> Vec<usize> {
    let mut breaks = Vec::new();
    let mut cell_offset = 0usize;
    for (start, end) in words(chars) {
        let word = &chars[start..end];
        let word_length = cell_len(rstrip(word));
        let remaining_space = width as isize - cell_offset as isize;
        if remaining_space >= word_length as isize {
            cell_offset += cell_len(word);
        } else if word_length > width {
            if fold {
                let mut start = start;
                let folded = chop_cells(word, width);
                let count = folded.len();
                for (i, piece) in folded.iter().enumerate() {
                    if start != 0 {
                        breaks.push(start);
                    }
                    if i + 1 == count {
                        cell_offset = cell_len(piece);
                    } else {
                        start += piece.len();
                    }
                }
            } else {
                if start != 0 {
                    breaks.push(start);
                }
                cell_offset = cell_len(word);
            }
        } else if cell_offset != 0 && start != 0 {
            breaks.push(start);
            cell_offset = cell_len(word);
        }
    }
    breaks
}

/// Text justification, as rich's `JustifyMethod` (only the methods Keras uses).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Justify {
    /// No padding (console output of plain text).
    Default,
    /// Pad on the right.
    Left,
    /// Strip trailing space, pad on the left.
    Right,
}

/// What happens to a word longer than the line (rich `OverflowMethod`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Overflow {
    /// Split the word over several lines (console default).
    Fold,
    /// Cut the word and end it with `…` (rich `Column` default).
    Ellipsis,
}

/// rich `Text.truncate`.
fn truncate(line: &mut Vec<char>, max_width: usize, overflow: Overflow, pad: bool) {
    let length = cell_len(line);
    if length > max_width {
        *line = match overflow {
            Overflow::Ellipsis => {
                let mut cut = set_cell_size(line, max_width.saturating_sub(1));
                cut.push('…');
                cut
            }
            Overflow::Fold => set_cell_size(line, max_width),
        };
    }
    if pad && length < max_width {
        line.extend(std::iter::repeat_n(' ', max_width - length));
    }
}

/// rich `Text.wrap` for plain (unstyled) text: word wrap, justify, truncate.
fn wrap_text(text: &str, width: usize, justify: Justify, overflow: Overflow) -> Vec<String> {
    let mut out = Vec::new();
    for source in text.split('\n') {
        let chars: Vec<char> = source.chars().collect();
        let offsets = divide_line(&chars, width, overflow == Overflow::Fold);
        let mut bounds = vec![0];
        bounds.extend(offsets);
        bounds.push(chars.len());
        for pair in bounds.windows(2) {
            let mut line: Vec<char> = chars[pair[0]..pair[1]].to_vec();
            // `rstrip_end`: drop trailing whitespace beyond `width` (counted in chars).
            if line.len() > width {
                let excess = line.len() - width;
                let ws = line.len() - rstrip(&line).len();
                line.truncate(line.len() - ws.min(excess));
            }
            match justify {
                Justify::Default => {}
                Justify::Left => truncate(&mut line, width, overflow, true),
                Justify::Right => {
                    let keep = rstrip(&line).len();
                    line.truncate(keep);
                    truncate(&mut line, width, overflow, false);
                    let pad = width.saturating_sub(cell_len(&line));
                    let mut padded: Vec<char> = std::iter::repeat_n(' ', pad).collect();
                    padded.extend(line);
                    line = padded;
                }
            }
            truncate(&mut line, width, overflow, false);
            out.push(line.into_iter().collect());
        }
    }
    out
}

/// Prints text through a rich `Console` of `console_width` columns (no colour): wraps with
/// the default justification and fold overflow, then crops each line to the console.
fn console_print(out: &mut String, text: &str, console_width: usize) {
    for line in wrap_text(text, console_width, Justify::Default, Overflow::Fold) {
        let chars: Vec<char> = line.chars().collect();
        let line: String = if cell_len(&chars) > console_width {
            set_cell_size(&chars, console_width).into_iter().collect()
        } else {
            line
        };
        out.push_str(&line);
        out.push('\n');
    }
}

/// Renders one table cell the way rich does: `Padding(text, (0, 1))` at `width` cells,
/// content wrapped at `width - 2`, every line exactly `width` cells.
fn render_cell(text: &str, width: usize, justify: Justify) -> Vec<String> {
    let inner = width.saturating_sub(2);
    wrap_text(text, inner, justify, Overflow::Ellipsis)
        .into_iter()
        .map(|line| {
            let chars: Vec<char> = line.chars().collect();
            let mut padded = vec![' '];
            padded.extend(set_cell_size(&chars, inner));
            padded.push(' ');
            set_cell_size(&padded, width).into_iter().collect()
        })
        .collect()
}

/// Python's `round()` of `num / den` (half to even), for non-negative integers.
fn round_half_even(num: i64, den: i64) -> i64 {
    let q = num.div_euclid(den);
    let r = num.rem_euclid(den);
    match (2 * r).cmp(&den) {
        std::cmp::Ordering::Greater => q + 1,
        std::cmp::Ordering::Equal => q + (q & 1),
        std::cmp::Ordering::Less => q,
    }
}

/// rich `_ratio.ratio_reduce`.
fn ratio_reduce(total: i64, ratios: &[i64], maximums: &[i64], values: &[i64]) -> Vec<i64> {
    let ratios: Vec<i64> = ratios
        .iter()
        .zip(maximums)
        .map(|(&r, &m)| if m != 0 { r } else { 0 })
        .collect();
    let mut total_ratio: i64 = ratios.iter().sum();
    if total_ratio == 0 {
        return values.to_vec();
    }
    let mut total_remaining = total;
    let mut result = Vec::with_capacity(values.len());
    for ((&ratio, &maximum), &value) in ratios.iter().zip(maximums).zip(values) {
        if ratio != 0 && total_ratio > 0 {
            let distributed = maximum.min(round_half_even(ratio * total_remaining, total_ratio));
            result.push(value - distributed);
            total_remaining -= distributed;
            total_ratio -= ratio;
        } else {
            result.push(value);
        }
    }
    result
}

/// rich `_ratio.ratio_distribute` without minimums.
fn ratio_distribute(total: i64, ratios: &[i64]) -> Vec<i64> {
    let mut total_ratio: i64 = ratios.iter().sum();
    let mut total_remaining = total;
    let mut out = Vec::with_capacity(ratios.len());
    for &ratio in ratios {
        let distributed = if total_ratio > 0 {
            // ceil(ratio * remaining / total_ratio)
            let num = ratio * total_remaining;
            -((-num).div_euclid(total_ratio))
        } else {
            total_remaining
        };
        out.push(distributed);
        total_ratio -= ratio;
        total_remaining -= distributed;
    }
    out
}

/// rich `Table._calculate_column_widths` for a table whose columns all have a fixed `width`
/// (Keras sets one per column) and that expands because `Table.width` is set. Returns the
/// widths including the one-cell padding on each side.
fn table_column_widths(fixed: &[usize], max_width: usize) -> Vec<usize> {
    let max_width = max_width as i64;
    // `_measure_column`: fixed width plus padding, capped at the available width.
    let measure = |fixed: usize, avail: i64| -> i64 {
        if avail < 1 {
            0
        } else {
            (fixed as i64 + 2).min(avail)
        }
    };
    let mut widths: Vec<i64> = fixed
        .iter()
        .map(|&f| match measure(f, max_width) {
            0 => 1, // `_range.maximum or 1`
            w => w,
        })
        .collect();
    let mut table_width: i64 = widths.iter().sum();
    if table_width > max_width {
        // `_collapse_widths` only shrinks columns without a fixed width: none here.
        // Last resort in rich: reduce all columns evenly.
        let excess = table_width - max_width;
        let ones = vec![1; widths.len()];
        widths = ratio_reduce(excess, &ones, &widths, &widths);
        table_width = widths.iter().sum();
        widths = fixed
            .iter()
            .zip(&widths)
            .map(|(&f, &w)| measure(f, w))
            .collect();
    }
    if table_width < max_width && widths.iter().sum::<i64>() > 0 {
        let pads = ratio_distribute(max_width - table_width, &widths);
        widths = widths.iter().zip(pads).map(|(w, p)| w + p).collect();
    }
    widths.into_iter().map(|w| w.max(0) as usize).collect()
}

/// Draws a rich `Table` with the `HEAVY_HEAD` box, `show_lines=True`, header row, fixed
/// column widths and total width `table_width`.
fn rich_table(
    headers: &[&str],
    justify: &[Justify],
    fixed: &[usize],
    rows: &[Vec<String>],
    table_width: usize,
) -> Vec<String> {
    let extra = 2 + headers.len() - 1; // edges + dividers
    let widths = table_column_widths(fixed, table_width.saturating_sub(extra));
    let rule = |left: char, fill: char, cross: char, right: char| -> String {
        let mut s = String::new();
        s.push(left);
        for (i, &w) in widths.iter().enumerate() {
            if i > 0 {
                s.push(cross);
            }
            s.extend(std::iter::repeat_n(fill, w));
        }
        s.push(right);
        s
    };
    // One logical row -> physical lines; header cells align to the bottom, body to the top.
    let draw_row = |cells: &[String], edge: char, header: bool, out: &mut Vec<String>| {
        let rendered: Vec<Vec<String>> = cells
            .iter()
            .zip(&widths)
            .zip(justify)
            .map(|((text, &w), &j)| render_cell(text, w, j))
            .collect();
        let height = rendered.iter().map(Vec::len).max().unwrap_or(1);
        let aligned: Vec<Vec<String>> = rendered
            .into_iter()
            .zip(&widths)
            .map(|(mut lines, &w)| {
                let blanks = height - lines.len();
                let blank = " ".repeat(w);
                if header {
                    let mut top = vec![blank; blanks];
                    top.append(&mut lines);
                    top
                } else {
                    lines.extend(std::iter::repeat_n(blank, blanks));
                    lines
                }
            })
            .collect();
        for line_no in 0..height {
            let mut s = String::new();
            s.push(edge);
            for (i, col) in aligned.iter().enumerate() {
                if i > 0 {
                    s.push(edge);
                }
                s.push_str(&col[line_no]);
            }
            s.push(edge);
            out.push(s);
        }
    };
    let mut out = vec![rule('┏', '━', '┳', '┓')];
    let header_cells: Vec<String> = headers.iter().map(ToString::to_string).collect();
    draw_row(&header_cells, '┃', true, &mut out);
    out.push(rule('┡', '━', '╇', '┩'));
    for (i, row) in rows.iter().enumerate() {
        if i > 0 {
            out.push(rule('├', '─', '┼', '┤'));
        }
        draw_row(row, '│', false, &mut out);
    }
    out.push(rule('└', '─', '┴', '┘'));
    out
}

/// tf.keras 2.8 `print_row`, ported verbatim: each column is cut at its width minus the two
/// separating spaces, preferring a break right after `),`, `},`, `],` or `',`.
fn tf2_print_row(fields: &[String], positions: &[usize], out: &mut Vec<String>) {
    let mut left: Vec<Vec<char>> = fields.iter().map(|f| f.chars().collect()).collect();
    while left.iter().any(|f| !f.is_empty()) {
        let mut line: Vec<char> = Vec::new();
        for col in 0..left.len() {
            let start_pos = if col > 0 { positions[col - 1] } else { 0 };
            let end_pos = positions[col];
            let space = if col == positions.len() - 1 { 0 } else { 2 };
            let mut cutoff = end_pos.saturating_sub(start_pos + space);
            let text = &left[col];
            let mut fit: &[char] = &text[..cutoff.min(text.len())];
            let candidate = ["),", "},", "],", "',"]
                .iter()
                .filter_map(|pat| {
                    let pat: Vec<char> = pat.chars().collect();
                    fit.windows(2)
                        .position(|w| w == pat.as_slice())
                        .map(|p| p + 2)
                })
                .min();
            if let Some(c) = candidate {
                cutoff = c;
                fit = &fit[..c];
            }
            if col == 0 {
                line.push(' ');
            }
            line.extend_from_slice(fit);
            line.extend(std::iter::repeat_n(' ', space));
            let rest = left[col][cutoff.min(left[col].len())..].to_vec();
            left[col] = rest;
            let pad = positions[col].saturating_sub(line.len());
            line.extend(std::iter::repeat_n(' ', pad));
        }
        out.push(line.into_iter().collect());
    }
}

impl SummaryRow {
    /// Keras 3 "Layer (type)" cell.
    fn keras3_name(&self) -> String {
        format!("{} ({})", self.name, self.class_name)
    }

    /// Keras 3 "Output Shape" cell (`format_layer_shape`): `?` when unbuilt, one tuple for a
    /// single output, else `str()` of the list of formatted shapes with quotes removed.
    fn keras3_shape(&self) -> String {
        if self.params.is_none() || self.output_shapes.is_empty() {
            return "?".to_string();
        }
        let shapes: Vec<String> = self.output_shapes.iter().map(|s| keras3_shape(s)).collect();
        if shapes.len() == 1 {
            shapes[0].clone()
        } else {
            format!("[{}]", shapes.join(", "))
        }
    }

    /// Keras 3 "Param #" cell.
    fn keras3_params(&self) -> String {
        match self.params {
            Some(n) => thousands(n),
            None => "0 (unbuilt)".to_string(),
        }
    }

    /// Keras 3 "Connected to" cell.
    fn keras3_connected(&self) -> String {
        if self.connected_to.is_empty() {
            "-".to_string()
        } else {
            self.connected_to.join(", ")
        }
    }

    /// tf2 "Output Shape" cell: `str(layer.output_shape)`. An unbuilt (never called) layer
    /// raises `AttributeError` there, which tf2 prints as `multiple`. `InputLayer`'s
    /// `output_shape` is a one-element list.
    fn tf2_shape(&self) -> String {
        if self.params.is_none() || self.output_shapes.is_empty() {
            return "multiple".to_string();
        }
        let shapes: Vec<String> = self.output_shapes.iter().map(|s| format_shape(s)).collect();
        if shapes.len() == 1 && !self.is_input {
            shapes[0].clone()
        } else {
            format!("[{}]", shapes.join(", "))
        }
    }
}

impl SummaryData {
    /// Keras 3 table at a given total line width (Keras: min(88, cols-4) sequential,
    /// min(108, cols-4) functional; 76 when piped). `line_length: None` = the piped default
    /// (76 for sequential-like; for non-sequential what Keras does with an 80-column fallback
    /// terminal, also 76).
    ///
    /// The title and footer go through a console assumed `line_length + 4` columns wide (the
    /// terminal that yields this width by default), so an overlong model name wraps there.
    #[must_use]
    pub fn render_keras3(&self, line_length: Option<usize>) -> String {
        // Piped: `shutil.get_terminal_size()` falls back to 80 columns; 80 - 4 = 76 is below
        // both defaults (88 and 108).
        let line_length = line_length.unwrap_or(76);
        let console_width = line_length + 4;
        let (positions, headers, justify): (&[f64], Vec<&str>, Vec<Justify>) =
            if self.sequential_like {
                (
                    &[0.45, 0.80, 1.0],
                    vec!["Layer (type)", "Output Shape", "Param #"],
                    vec![Justify::Left, Justify::Left, Justify::Right],
                )
            } else {
                (
                    &[0.3, 0.56, 0.74, 1.0],
                    vec!["Layer (type)", "Output Shape", "Param #", "Connected to"],
                    vec![Justify::Left, Justify::Left, Justify::Right, Justify::Left],
                )
            };
        // `int(pos * line_length) - current` in f64, exactly like Python. (Keras raises
        // ValueError when a width is below 4; here the table is drawn regardless.)
        let mut fixed = Vec::with_capacity(positions.len());
        let mut current = 0usize;
        for &pos in positions {
            let end = (pos * line_length as f64) as usize;
            let w = end.saturating_sub(current);
            fixed.push(w);
            current += w;
        }
        let rows: Vec<Vec<String>> = self
            .rows
            .iter()
            .map(|r| {
                let mut cells = vec![r.keras3_name(), r.keras3_shape(), r.keras3_params()];
                if !self.sequential_like {
                    cells.push(r.keras3_connected());
                }
                cells
            })
            .collect();
        let mut out = String::new();
        console_print(
            &mut out,
            &format!("Model: \"{}\"", self.model_name),
            console_width,
        );
        for line in rich_table(&headers, &justify, &fixed, &rows, line_length) {
            out.push_str(&line);
            out.push('\n');
        }
        for line in self.keras3_footer() {
            console_print(&mut out, &line, console_width);
        }
        out
    }

    /// Keras 3 footer lines (each starts with a space).
    fn keras3_footer(&self) -> Vec<String> {
        let t = self.trainable_params;
        let nt = self.non_trainable_params;
        let mem = |n: usize| readable_memory_size(n as f64 * self.bytes_per_param as f64);
        // Total memory is the sum of the two float sizes in Keras; integer sums are exact.
        vec![
            format!(" Total params: {} ({})", thousands(t + nt), mem(t + nt)),
            format!(" Trainable params: {} ({})", thousands(t), mem(t)),
            format!(" Non-trainable params: {} ({})", thousands(nt), mem(nt)),
        ]
    }

    /// tf.keras 2.8 text (65 / 98 columns), exactly as spec §4.2 shows.
    #[must_use]
    pub fn render_tf2(&self) -> String {
        let (line_length, fracs, headers): (usize, &[f64], &[&str]) = if self.sequential_like {
            (
                65,
                &[0.45, 0.85, 1.0],
                &["Layer (type)", "Output Shape", "Param #"],
            )
        } else {
            (
                98,
                &[0.33, 0.55, 0.67, 1.0],
                &["Layer (type)", "Output Shape", "Param #", "Connected to"],
            )
        };
        let positions: Vec<usize> = fracs
            .iter()
            .map(|&p| (line_length as f64 * p) as usize)
            .collect();
        let mut lines = vec![
            format!("Model: \"{}\"", self.model_name),
            "_".repeat(line_length),
        ];
        let header: Vec<String> = headers.iter().map(ToString::to_string).collect();
        tf2_print_row(&header, &positions, &mut lines);
        lines.push("=".repeat(line_length));
        for r in &self.rows {
            let params = match r.params {
                // tf2 prints the bare int (`str(count_params())`), no separators.
                Some(n) => n.to_string(),
                None => "0 (unused)".to_string(),
            };
            let mut fields = vec![
                format!("{} ({})", r.name, r.class_name),
                r.tf2_shape(),
                params,
            ];
            if !self.sequential_like {
                // `str(list_of_str)`: "['input_1[0][0]', 'lstm[0][1]']", "[]" for inputs.
                let items: Vec<String> = r.connected_to.iter().map(|c| py_repr_str(c)).collect();
                fields.push(format!("[{}]", items.join(", ")));
            }
            tf2_print_row(&fields, &positions, &mut lines);
            lines.push(" ".repeat(line_length));
        }
        lines.push("=".repeat(line_length));
        let t = self.trainable_params;
        let nt = self.non_trainable_params;
        lines.push(format!("Total params: {}", thousands(t + nt)));
        lines.push(format!("Trainable params: {}", thousands(t)));
        lines.push(format!("Non-trainable params: {}", thousands(nt)));
        lines.push("_".repeat(line_length));
        let mut out = String::new();
        for line in lines {
            out.push_str(&line);
            out.push('\n');
        }
        out
    }

    /// Renders in the given style (Keras 3 at its piped default width, or tf2).
    #[must_use]
    pub fn render(&self, style: SummaryStyle) -> String {
        match style {
            SummaryStyle::Keras3 => self.render_keras3(None),
            SummaryStyle::Tf2 => self.render_tf2(),
        }
    }

    /// An HTML table with the same content (Model: "name" caption, the columns, totals),
    /// escaped, minimal inline CSS, for Jupyter. Cells hold the Keras 3 texts unwrapped (the
    /// browser wraps).
    #[must_use]
    pub fn render_html(&self) -> String {
        const CELL: &str = "padding:2px 8px;border:1px solid #ccc;text-align:left;\
                            vertical-align:top";
        const NUM: &str = "padding:2px 8px;border:1px solid #ccc;text-align:right;\
                           vertical-align:top";
        let mut headers = vec!["Layer (type)", "Output Shape", "Param #"];
        if !self.sequential_like {
            headers.push("Connected to");
        }
        let style_for = |col: usize| if col == 2 { NUM } else { CELL };
        let mut s = String::new();
        s.push_str("<div class=\"rnnlab-summary\" style=\"font-family:monospace\">\n");
        s.push_str("<table style=\"border-collapse:collapse\">\n");
        let _ = writeln!(
            s,
            "<caption style=\"text-align:left;font-weight:bold;padding-bottom:4px\">\
             Model: &quot;{}&quot;</caption>",
            html_escape(&self.model_name)
        );
        s.push_str("<thead><tr>");
        for (i, h) in headers.iter().enumerate() {
            let _ = write!(s, "<th style=\"{}\">{}</th>", style_for(i), html_escape(h));
        }
        s.push_str("</tr></thead>\n<tbody>\n");
        for r in &self.rows {
            let mut cells = vec![r.keras3_name(), r.keras3_shape(), r.keras3_params()];
            if !self.sequential_like {
                cells.push(r.keras3_connected());
            }
            s.push_str("<tr>");
            for (i, c) in cells.iter().enumerate() {
                let _ = write!(s, "<td style=\"{}\">{}</td>", style_for(i), html_escape(c));
            }
            s.push_str("</tr>\n");
        }
        s.push_str("</tbody>\n</table>\n");
        s.push_str("<p style=\"margin:4px 0 0 0\">");
        let footer = self.keras3_footer();
        for (i, line) in footer.iter().enumerate() {
            if i > 0 {
                s.push_str("<br>\n");
            }
            s.push_str(&html_escape(line.trim_start()));
        }
        s.push_str("</p>\n</div>\n");
        s
    }
}

/// Escapes text for HTML element content and attribute values.
fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    //! Where expected strings come from:
    //! * "spec": copied from /work/shared/keras-spec.md §4 (verified Keras/TF output).
    //! * "the rich script": an uncommitted Python script that runs the table construction of
    //!   Keras 3 `summary_utils.print_summary` (same columns, widths, markup, footer) on the
    //!   rows below and prints it with rich 15.0.0 through a colourless capturing console of
    //!   `line_length + 4` columns. The same script (also run against rich 13.7.1) agreed
    //!   with this module on ~20,000 random models (names, CJK, widths 20-160).
    //! * "the tf2 port": the same script's verbatim copy of tf.keras 2.8 `print_row`.
    use super::*;

    /// Joins expected lines; every printed line (Keras' and rich's) ends with "\n".
    fn lines(lines: &[&str]) -> String {
        lines.iter().map(|l| format!("{l}\n")).collect()
    }

    /// Builds a row; `shapes` use `None` for the batch dimension.
    fn row(
        name: &str,
        class_name: &str,
        shapes: &[&[Option<usize>]],
        params: Option<usize>,
        connected_to: &[&str],
    ) -> SummaryRow {
        SummaryRow {
            name: name.to_string(),
            class_name: class_name.to_string(),
            output_shapes: shapes.iter().map(|s| s.to_vec()).collect(),
            is_input: class_name == "InputLayer",
            params,
            connected_to: connected_to.iter().map(|c| c.to_string()).collect(),
        }
    }

    fn data(
        name: &str,
        rows: Vec<SummaryRow>,
        sequential_like: bool,
        trainable: usize,
    ) -> SummaryData {
        SummaryData {
            model_name: name.to_string(),
            rows,
            sequential_like,
            trainable_params: trainable,
            non_trainable_params: 0,
            bytes_per_param: 4,
        }
    }

    /// Functional `LSTM(1, return_state=True)` on `Input((3, 1))` (spec §4.1).
    fn functional_lstm_state(input_name: &str, model_name: &str) -> SummaryData {
        data(
            model_name,
            vec![
                row(
                    input_name,
                    "InputLayer",
                    &[&[None, Some(3), Some(1)]],
                    Some(0),
                    &[],
                ),
                row(
                    "lstm",
                    "LSTM",
                    &[&[None, Some(1)], &[None, Some(1)], &[None, Some(1)]],
                    Some(12),
                    &[&format!("{input_name}[0][0]")],
                ),
            ],
            true,
            12,
        )
    }

    /// Sequential `LSTM(4, return_sequences=True) -> LSTM(2) -> Dense(1)` (spec §4.1/§4.2).
    fn sequential_155(names: [&str; 3]) -> SummaryData {
        data(
            "sequential",
            vec![
                row(
                    names[0],
                    "LSTM",
                    &[&[None, Some(3), Some(4)]],
                    Some(96),
                    &[],
                ),
                row(names[1], "LSTM", &[&[None, Some(2)]], Some(56), &[]),
                row(names[2], "Dense", &[&[None, Some(1)]], Some(3), &[]),
            ],
            true,
            155,
        )
    }

    /// keras-io lstm_seq2seq training model with 5 encoder tokens, 6 decoder tokens and
    /// latent 4: LSTM params 4*4*(5+4+1)=160 and 4*4*(6+4+1)=176, Dense 4*6+6=30.
    fn encoder_decoder() -> SummaryData {
        data(
            "functional",
            vec![
                row(
                    "input_layer",
                    "InputLayer",
                    &[&[None, None, Some(5)]],
                    Some(0),
                    &[],
                ),
                row(
                    "input_layer_1",
                    "InputLayer",
                    &[&[None, None, Some(6)]],
                    Some(0),
                    &[],
                ),
                row(
                    "lstm",
                    "LSTM",
                    &[&[None, Some(4)], &[None, Some(4)], &[None, Some(4)]],
                    Some(160),
                    &["input_layer[0][0]"],
                ),
                row(
                    "lstm_1",
                    "LSTM",
                    &[&[None, None, Some(4)], &[None, Some(4)], &[None, Some(4)]],
                    Some(176),
                    &["input_layer_1[0][0]", "lstm[0][1]", "lstm[0][2]"],
                ),
                row(
                    "dense",
                    "Dense",
                    &[&[None, None, Some(6)]],
                    Some(30),
                    &["lstm_1[0][0]"],
                ),
            ],
            false,
            366,
        )
    }

    /// A wrapping class name, a name too long for its column (rich cuts it with "…"), a
    /// 1,234,567-parameter layer and an unbuilt layer.
    fn long_names_big_unbuilt() -> SummaryData {
        data(
            "sequential",
            vec![
                row(
                    "time_distributed_12",
                    "TimeDistributed",
                    &[&[None, Some(3), Some(4)]],
                    Some(20),
                    &[],
                ),
                row(
                    "a_really_long_layer_name_for_testing_wrapping",
                    "Dense",
                    &[&[None, Some(3), Some(1234)]],
                    Some(1_234_567),
                    &[],
                ),
                row("dense_1", "Dense", &[], None, &[]),
            ],
            true,
            1_234_567,
        )
    }

    #[test]
    fn keras3_functional_width_88_matches_spec() {
        // Copied from spec §4.1 (Keras 3.15 run with COLUMNS=200).
        let expected = lines(&[
            "Model: \"functional\"",
            "┏━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━┓",
            "┃ Layer (type)                         ┃ Output Shape                ┃         Param # ┃",
            "┡━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━┩",
            "│ input_layer (InputLayer)             │ (None, 3, 1)                │               0 │",
            "├──────────────────────────────────────┼─────────────────────────────┼─────────────────┤",
            "│ lstm (LSTM)                          │ [(None, 1), (None, 1),      │              12 │",
            "│                                      │ (None, 1)]                  │                 │",
            "└──────────────────────────────────────┴─────────────────────────────┴─────────────────┘",
            " Total params: 12 (48.00 B)",
            " Trainable params: 12 (48.00 B)",
            " Non-trainable params: 0 (0.00 B)",
        ]);
        assert_eq!(
            functional_lstm_state("input_layer", "functional").render_keras3(Some(88)),
            expected
        );
    }

    #[test]
    fn keras3_functional_width_76_wraps_as_spec_says() {
        // Generated by the rich script (Keras 3 summary_utils table code + rich 15.0.0,
        // console 80 columns); the shape wraps as `[(None, 1), (None, 1), │` / `(None, 1)]`,
        // as spec §4.1 states.
        let expected = lines(&[
            "Model: \"functional\"",
            "┏━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━┓",
            "┃ Layer (type)                    ┃ Output Shape           ┃       Param # ┃",
            "┡━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━┩",
            "│ input_layer (InputLayer)        │ (None, 3, 1)           │             0 │",
            "├─────────────────────────────────┼────────────────────────┼───────────────┤",
            "│ lstm (LSTM)                     │ [(None, 1), (None, 1), │            12 │",
            "│                                 │ (None, 1)]             │               │",
            "└─────────────────────────────────┴────────────────────────┴───────────────┘",
            " Total params: 12 (48.00 B)",
            " Trainable params: 12 (48.00 B)",
            " Non-trainable params: 0 (0.00 B)",
        ]);
        let d = functional_lstm_state("input_layer", "functional");
        assert_eq!(d.render_keras3(Some(76)), expected);
        assert_eq!(d.render_keras3(None), expected);
        assert_eq!(d.render(SummaryStyle::Keras3), expected);
    }

    #[test]
    fn keras3_sequential_piped_matches_spec() {
        // Copied from spec §4.1 (piped, width 76).
        let expected = lines(&[
            "Model: \"sequential\"",
            "┏━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━┓",
            "┃ Layer (type)                    ┃ Output Shape           ┃       Param # ┃",
            "┡━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━┩",
            "│ lstm_1 (LSTM)                   │ (None, 3, 4)           │            96 │",
            "├─────────────────────────────────┼────────────────────────┼───────────────┤",
            "│ lstm_2 (LSTM)                   │ (None, 2)              │            56 │",
            "├─────────────────────────────────┼────────────────────────┼───────────────┤",
            "│ dense (Dense)                   │ (None, 1)              │             3 │",
            "└─────────────────────────────────┴────────────────────────┴───────────────┘",
            " Total params: 155 (620.00 B)",
            " Trainable params: 155 (620.00 B)",
            " Non-trainable params: 0 (0.00 B)",
        ]);
        let d = sequential_155(["lstm_1", "lstm_2", "dense"]);
        assert_eq!(d.render_keras3(None), expected);
        assert_eq!(d.render_keras3(Some(76)), expected);
    }

    #[test]
    fn tf2_functional_matches_spec() {
        // Copied from spec §4.2 (tf.keras 2.8 print_row logic).
        let expected = lines(&[
            "Model: \"model\"",
            "_________________________________________________________________",
            " Layer (type)                Output Shape              Param #   ",
            "=================================================================",
            " input_1 (InputLayer)        [(None, 3, 1)]            0         ",
            "                                                                 ",
            " lstm (LSTM)                 [(None, 1),               12        ",
            "                              (None, 1),                         ",
            "                              (None, 1)]                         ",
            "                                                                 ",
            "=================================================================",
            "Total params: 12",
            "Trainable params: 12",
            "Non-trainable params: 0",
            "_________________________________________________________________",
        ]);
        let d = functional_lstm_state("input_1", "model");
        assert_eq!(d.render_tf2(), expected);
        assert_eq!(d.render(SummaryStyle::Tf2), expected);
    }

    #[test]
    fn tf2_sequential_matches_spec() {
        // Copied from spec §4.2.
        let expected = lines(&[
            "Model: \"sequential\"",
            "_________________________________________________________________",
            " Layer (type)                Output Shape              Param #   ",
            "=================================================================",
            " lstm (LSTM)                 (None, 3, 4)              96        ",
            "                                                                 ",
            " lstm_1 (LSTM)               (None, 2)                 56        ",
            "                                                                 ",
            " dense (Dense)               (None, 1)                 3         ",
            "                                                                 ",
            "=================================================================",
            "Total params: 155",
            "Trainable params: 155",
            "Non-trainable params: 0",
            "_________________________________________________________________",
        ]);
        assert_eq!(
            sequential_155(["lstm", "lstm_1", "dense"]).render_tf2(),
            expected
        );
    }

    #[test]
    fn keras3_encoder_decoder_width_108() {
        // Generated by the rich script (Keras 3 summary_utils table code + rich 15.0.0)
        // at line_length=108 (a terminal of at least 112 columns).
        let expected = lines(&[
            "Model: \"functional\"",
            "┏━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━━━━━┓",
            "┃ Layer (type)                  ┃ Output Shape              ┃         Param # ┃ Connected to               ┃",
            "┡━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━━━━━┩",
            "│ input_layer (InputLayer)      │ (None, None, 5)           │               0 │ -                          │",
            "├───────────────────────────────┼───────────────────────────┼─────────────────┼────────────────────────────┤",
            "│ input_layer_1 (InputLayer)    │ (None, None, 6)           │               0 │ -                          │",
            "├───────────────────────────────┼───────────────────────────┼─────────────────┼────────────────────────────┤",
            "│ lstm (LSTM)                   │ [(None, 4), (None, 4),    │             160 │ input_layer[0][0]          │",
            "│                               │ (None, 4)]                │                 │                            │",
            "├───────────────────────────────┼───────────────────────────┼─────────────────┼────────────────────────────┤",
            "│ lstm_1 (LSTM)                 │ [(None, None, 4), (None,  │             176 │ input_layer_1[0][0],       │",
            "│                               │ 4), (None, 4)]            │                 │ lstm[0][1], lstm[0][2]     │",
            "├───────────────────────────────┼───────────────────────────┼─────────────────┼────────────────────────────┤",
            "│ dense (Dense)                 │ (None, None, 6)           │              30 │ lstm_1[0][0]               │",
            "└───────────────────────────────┴───────────────────────────┴─────────────────┴────────────────────────────┘",
            " Total params: 366 (1.43 KB)",
            " Trainable params: 366 (1.43 KB)",
            " Non-trainable params: 0 (0.00 B)",
        ]);
        assert_eq!(encoder_decoder().render_keras3(Some(108)), expected);
    }

    #[test]
    fn keras3_encoder_decoder_piped() {
        // Generated by the rich script at line_length=76 (piped: min(108, 80 - 4)). Note the
        // "…": rich's Column overflow is "ellipsis", so a word longer than the cell is cut.
        let expected = lines(&[
            "Model: \"functional\"",
            "┏━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━┓",
            "┃ Layer (type)        ┃ Output Shape      ┃    Param # ┃ Connected to      ┃",
            "┡━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━┩",
            "│ input_layer         │ (None, None, 5)   │          0 │ -                 │",
            "│ (InputLayer)        │                   │            │                   │",
            "├─────────────────────┼───────────────────┼────────────┼───────────────────┤",
            "│ input_layer_1       │ (None, None, 6)   │          0 │ -                 │",
            "│ (InputLayer)        │                   │            │                   │",
            "├─────────────────────┼───────────────────┼────────────┼───────────────────┤",
            "│ lstm (LSTM)         │ [(None, 4),       │        160 │ input_layer[0][0] │",
            "│                     │ (None, 4), (None, │            │                   │",
            "│                     │ 4)]               │            │                   │",
            "├─────────────────────┼───────────────────┼────────────┼───────────────────┤",
            "│ lstm_1 (LSTM)       │ [(None, None, 4), │        176 │ input_layer_1[0]… │",
            "│                     │ (None, 4), (None, │            │ lstm[0][1],       │",
            "│                     │ 4)]               │            │ lstm[0][2]        │",
            "├─────────────────────┼───────────────────┼────────────┼───────────────────┤",
            "│ dense (Dense)       │ (None, None, 6)   │         30 │ lstm_1[0][0]      │",
            "└─────────────────────┴───────────────────┴────────────┴───────────────────┘",
            " Total params: 366 (1.43 KB)",
            " Trainable params: 366 (1.43 KB)",
            " Non-trainable params: 0 (0.00 B)",
        ]);
        assert_eq!(encoder_decoder().render_keras3(None), expected);
    }

    #[test]
    fn tf2_encoder_decoder() {
        // Generated by the tf2 port (98 columns, "Connected to" as str() of a list of str).
        let expected = lines(&[
            "Model: \"functional\"",
            "__________________________________________________________________________________________________",
            " Layer (type)                   Output Shape         Param #     Connected to                     ",
            "==================================================================================================",
            " input_layer (InputLayer)       [(None, None, 5)]    0           []                               ",
            "                                                                                                  ",
            " input_layer_1 (InputLayer)     [(None, None, 6)]    0           []                               ",
            "                                                                                                  ",
            " lstm (LSTM)                    [(None, 4),          160         ['input_layer[0][0]']            ",
            "                                 (None, 4),                                                       ",
            "                                 (None, 4)]                                                       ",
            "                                                                                                  ",
            " lstm_1 (LSTM)                  [(None, None, 4),    176         ['input_layer_1[0][0]',          ",
            "                                 (None, 4),                       'lstm[0][1]',                   ",
            "                                 (None, 4)]                       'lstm[0][2]']                   ",
            "                                                                                                  ",
            " dense (Dense)                  (None, None, 6)      30          ['lstm_1[0][0]']                 ",
            "                                                                                                  ",
            "==================================================================================================",
            "Total params: 366",
            "Trainable params: 366",
            "Non-trainable params: 0",
            "__________________________________________________________________________________________________",
        ]);
        assert_eq!(encoder_decoder().render_tf2(), expected);
    }

    #[test]
    fn keras3_long_names_big_params_unbuilt() {
        // Generated by the rich script at line_length=76.
        let expected = lines(&[
            "Model: \"sequential\"",
            "┏━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━┓",
            "┃ Layer (type)                    ┃ Output Shape           ┃       Param # ┃",
            "┡━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━┩",
            "│ time_distributed_12             │ (None, 3, 4)           │            20 │",
            "│ (TimeDistributed)               │                        │               │",
            "├─────────────────────────────────┼────────────────────────┼───────────────┤",
            "│ a_really_long_layer_name_for_t… │ (None, 3, 1234)        │     1,234,567 │",
            "│ (Dense)                         │                        │               │",
            "├─────────────────────────────────┼────────────────────────┼───────────────┤",
            "│ dense_1 (Dense)                 │ ?                      │   0 (unbuilt) │",
            "└─────────────────────────────────┴────────────────────────┴───────────────┘",
            " Total params: 1,234,567 (4.71 MB)",
            " Trainable params: 1,234,567 (4.71 MB)",
            " Non-trainable params: 0 (0.00 B)",
        ]);
        assert_eq!(long_names_big_unbuilt().render_keras3(None), expected);
    }

    #[test]
    fn tf2_long_names_big_params_unbuilt() {
        // Generated by the tf2 port. The first column overflows by one (27 chars + 2 spaces
        // after the leading space), shifting the row, exactly as TF 2.8 does; unbuilt layers
        // print "multiple" / "0 (unused)".
        let expected = lines(&[
            "Model: \"sequential\"",
            "_________________________________________________________________",
            " Layer (type)                Output Shape              Param #   ",
            "=================================================================",
            " time_distributed_12 (TimeDi  (None, 3, 4)             20        ",
            " stributed)                                                      ",
            "                                                                 ",
            " a_really_long_layer_name_fo  (None, 3, 1234)          1234567   ",
            " r_testing_wrapping (Dense)                                      ",
            "                                                                 ",
            " dense_1 (Dense)             multiple                  0 (unused)",
            "                                                                 ",
            "=================================================================",
            "Total params: 1,234,567",
            "Trainable params: 1,234,567",
            "Non-trainable params: 0",
            "_________________________________________________________________",
        ]);
        assert_eq!(long_names_big_unbuilt().render_tf2(), expected);
    }

    #[test]
    fn keras3_long_model_name_wraps_at_console_width() {
        // Generated by the rich script (piped console of 80 columns): the title folds.
        let expected = lines(&[
            "Model: ",
            "\"an_extremely_long_model_name_that_keeps_going_and_going_past_the_eighty_column_",
            "console\"",
            "┏━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━┓",
            "┃ Layer (type)                    ┃ Output Shape           ┃       Param # ┃",
            "┡━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━┩",
            "│ dense (Dense)                   │ (None, 1)              │             5 │",
            "└─────────────────────────────────┴────────────────────────┴───────────────┘",
            " Total params: 5 (20.00 B)",
            " Trainable params: 3 (12.00 B)",
            " Non-trainable params: 2 (8.00 B)",
        ]);
        let mut d = data(
            "an_extremely_long_model_name_that_keeps_going_and_going_past_the_eighty_column_console",
            vec![row("dense", "Dense", &[&[None, Some(1)]], Some(5), &[])],
            true,
            3,
        );
        d.non_trainable_params = 2;
        assert_eq!(d.render_keras3(None), expected);
    }

    #[test]
    fn shapes_and_numbers() {
        assert_eq!(format_shape(&[None, Some(3), Some(1)]), "(None, 3, 1)");
        assert_eq!(format_shape(&[Some(4)]), "(4,)");
        assert_eq!(format_shape(&[]), "()");
        // Keras 3 joins dims itself, so rank 1 has no trailing comma.
        assert_eq!(keras3_shape(&[None]), "(None)");
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
        // Values from Python's readable_memory_size.
        assert_eq!(readable_memory_size(620.0), "620.00 B");
        assert_eq!(readable_memory_size(1023.0), "1023.00 B");
        assert_eq!(readable_memory_size(1024.0), "1.00 KB");
        assert_eq!(readable_memory_size(1152.0), "1.12 KB"); // 1.125, half to even
        assert_eq!(readable_memory_size(4_938_268.0), "4.71 MB");
        assert_eq!(readable_memory_size(4.0 * 1024f64.powi(3)), "4.00 GB");
        assert_eq!(py_repr_str("a'b"), "\"a'b\"");
    }

    #[test]
    fn html_is_escaped() {
        let d = data(
            "<m&\"x\">",
            vec![
                row("in<put>", "InputLayer", &[&[None, Some(3)]], Some(0), &[]),
                row(
                    "d&d",
                    "Dense",
                    &[&[None, Some(1)]],
                    Some(1_234_567),
                    &["in<put>[0][0]"],
                ),
            ],
            false,
            1_234_567,
        );
        let html = d.render_html();
        assert!(html.contains("Model: &quot;&lt;m&amp;&quot;x&quot;&gt;&quot;</caption>"));
        assert!(html.contains(">in&lt;put&gt; (InputLayer)</td>"));
        assert!(html.contains(">d&amp;d (Dense)</td>"));
        assert!(html.contains(">in&lt;put&gt;[0][0]</td>"));
        assert!(html.contains(">Connected to</th>"));
        assert!(html.contains("text-align:right;vertical-align:top\">1,234,567</td>"));
        assert!(html.contains("Total params: 1,234,567 (4.71 MB)<br>"));
        assert!(!html.contains("<m&"));
        // Sequential-like: three columns.
        let seq = sequential_155(["lstm", "lstm_1", "dense"]).render_html();
        assert!(!seq.contains("Connected to"));
        assert_eq!(seq.matches("<tr>").count(), 4);
    }
}
