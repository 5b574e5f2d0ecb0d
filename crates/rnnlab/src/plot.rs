//! Figures of [`Trace`]s, drawn with [plotters](https://docs.rs/plotters): the hidden state h_t and the LSTM cell
//! state c_t of every unit over time ([`Trace::plot_states`]), gate heatmaps ([`Trace::plot_gates`]) and several
//! traces side by side ([`plot_traces`]).
//!
//! A [`Figure`] keeps its SVG text and renders a PNG on demand. In a notebook (evcxr) a figure left as a cell's last
//! expression shows inline as SVG; [`Figure::save`] writes `.svg` or `.png`. PNG text is drawn with DejaVu Sans,
//! which the crate embeds (see `assets/LICENSE-DejaVu.txt`), so it renders on a machine without any system font;
//! the SVG names the generic `sans-serif` family, which the viewer supplies.
//!
//! ```
//! use rnnlab::{Tensor, LSTM};
//! let x = Tensor::new((1, 8, 1), (0..8).map(|t| (0.3 * t as f32).sin()).collect()).unwrap();
//! let tr = &LSTM::new(2).name("lstm").trace(&x).unwrap()[0];
//! let fig = tr.plot_states(0).unwrap();
//! assert!(fig.svg().contains("lstm (LSTM, forward)"));
//! assert!(fig.svg().contains("time step") && fig.svg().contains("value"));
//! let png = fig.to_png().unwrap();
//! assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
//! ```

use std::fmt;
use std::path::Path;
use std::sync::OnceLock;

use ndarray::{Array2, Axis, Ix2};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::FontTransform;

use crate::error::{Error, Result};
use crate::trace::{Direction, Trace};

/// The family the figures' text uses: the bundled DejaVu Sans is registered under it for PNG rendering, and SVG
/// viewers map it to their own sans-serif font.
const FONT: &str = "sans-serif";
/// DejaVu Sans 2.37 (Bitstream Vera licence, see `assets/LICENSE-DejaVu.txt`).
static FONT_BYTES: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

/// Registers the bundled font with plotters once per process.
fn ensure_font() -> Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        plotters::style::register_font(FONT, FontStyle::Normal, FONT_BYTES).is_ok()
    });
    if ok {
        Ok(())
    } else {
        Err(Error::format(
            "bundled font DejaVuSans.ttf",
            "the font could not be parsed",
        ))
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Figure
// ---------------------------------------------------------------------------------------------------------------

/// A rendered figure: its SVG text, plus a PNG rendering made on demand by plotters' bitmap backend.
///
/// A figure owns copies of the values it shows, so it outlives the traces it was made from. Its `Debug` form is a
/// one-line description (title and size), not the SVG.
///
/// ```
/// use rnnlab::{Tensor, GRU};
/// let tr = &GRU::new(3).name("gru").trace(&Tensor::full((2, 5, 1), 0.5)).unwrap()[0];
/// let fig = tr.plot_states(1).unwrap();
/// assert_eq!(
///     format!("{fig:?}"),
///     format!("Figure(\"{}\", 960x540 px, SVG {} bytes)", fig.title(), fig.svg().len())
/// );
/// assert!(fig.title().contains("h is the cell state"));
/// ```
#[derive(Clone)]
pub struct Figure {
    svg: String,
    scene: Scene,
}

impl fmt::Debug for Figure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Figure({:?}, {}x{} px, SVG {} bytes)",
            self.scene.title,
            self.scene.width,
            self.scene.height,
            self.svg.len()
        )
    }
}

impl Figure {
    fn build(scene: Scene) -> Result<Figure> {
        ensure_font()?;
        let mut svg = String::new();
        {
            let root =
                SVGBackend::with_string(&mut svg, (scene.width, scene.height)).into_drawing_area();
            render(&scene, &root).map_err(|e| draw_error(&scene, e))?;
            root.present().map_err(|e| draw_error(&scene, e))?;
        }
        Ok(Figure { svg, scene })
    }

    /// The SVG document (a complete `<svg …>` element with `xmlns`; text as `<text>` elements).
    ///
    /// ```
    /// # use rnnlab::{Tensor, SimpleRNN};
    /// let tr = &SimpleRNN::new(2).trace(&Tensor::full((1, 4, 1), 1.0)).unwrap()[0];
    /// let svg = tr.plot_states(0).unwrap().svg().to_string();
    /// assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    /// ```
    pub fn svg(&self) -> &str {
        &self.svg
    }

    /// The figure's title (also the `text/plain` form shown by [`Figure::evcxr_display`]).
    pub fn title(&self) -> &str {
        &self.scene.title
    }

    /// Width and height in pixels (of both the SVG and the PNG).
    ///
    /// ```
    /// # use rnnlab::{Tensor, LSTM};
    /// let tr = &LSTM::new(2).trace(&Tensor::full((1, 4, 1), 1.0)).unwrap()[0];
    /// assert_eq!(tr.plot_states(0).unwrap().size(), (960, 540));
    /// ```
    pub fn size(&self) -> (u32, u32) {
        (self.scene.width, self.scene.height)
    }

    /// Renders the figure to PNG bytes (8-bit RGB) with plotters' `BitMapBackend`, text in the bundled DejaVu Sans.
    ///
    /// ```
    /// # use rnnlab::{Tensor, LSTM};
    /// let tr = &LSTM::new(2).trace(&Tensor::full((1, 4, 1), 1.0)).unwrap()[0];
    /// let png = tr.plot_gates(0).unwrap().to_png().unwrap();
    /// assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    /// // IHDR: width and height, big-endian, right after the signature and the chunk header.
    /// let (w, h) = (u32::from_be_bytes(png[16..20].try_into().unwrap()), u32::from_be_bytes(png[20..24].try_into().unwrap()));
    /// assert_eq!((w, h), tr.plot_gates(0).unwrap().size());
    /// ```
    ///
    /// # Errors
    /// Drawing or encoding failed (not expected for figures made by this module).
    pub fn to_png(&self) -> Result<Vec<u8>> {
        ensure_font()?;
        let (w, h) = (self.scene.width, self.scene.height);
        let mut pixels = vec![255u8; w as usize * h as usize * 3];
        {
            let root = BitMapBackend::with_buffer(&mut pixels, (w, h)).into_drawing_area();
            render(&self.scene, &root).map_err(|e| draw_error(&self.scene, e))?;
            root.present().map_err(|e| draw_error(&self.scene, e))?;
        }
        let encode_error = |e: png::EncodingError| {
            Error::format(
                format!("PNG of figure \"{}\"", self.scene.title),
                format!("encoding failed: {e}"),
            )
        };
        let mut out = Vec::new();
        let mut encoder = png::Encoder::new(&mut out, w, h);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().map_err(encode_error)?;
        writer.write_image_data(&pixels).map_err(encode_error)?;
        writer.finish().map_err(encode_error)?;
        Ok(out)
    }

    /// Writes the SVG to `path`.
    ///
    /// # Errors
    /// [`Error::Io`] naming the path when it cannot be written.
    pub fn save_svg(&self, path: impl AsRef<Path>) -> Result<()> {
        write_file(path.as_ref(), self.svg.as_bytes())
    }

    /// Renders the PNG ([`Figure::to_png`]) and writes it to `path`.
    ///
    /// # Errors
    /// [`Error::Io`] naming the path when it cannot be written.
    pub fn save_png(&self, path: impl AsRef<Path>) -> Result<()> {
        let png = self.to_png()?;
        write_file(path.as_ref(), &png)
    }

    /// Writes the figure in the format its extension names: `.svg` or `.png` (any case).
    ///
    /// ```
    /// # use rnnlab::{Tensor, LSTM};
    /// let tr = &LSTM::new(2).trace(&Tensor::full((1, 4, 1), 1.0)).unwrap()[0];
    /// let err = tr.plot_states(0).unwrap().save("states.jpg").unwrap_err();
    /// assert!(err.to_string().contains("\"jpg\""), "{err}");
    /// ```
    ///
    /// # Errors
    /// Another (or no) extension, naming it; [`Error::Io`] when the path cannot be written.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let ext = path.extension().map(|e| e.to_string_lossy().to_string());
        match ext.as_deref().map(str::to_ascii_lowercase).as_deref() {
            Some("svg") => self.save_svg(path),
            Some("png") => self.save_png(path),
            _ => Err(Error::invalid(
                format!("Figure \"{}\"", self.scene.title),
                "path",
                "a file name ending in .svg or .png",
                match ext {
                    Some(e) => format!("{} (extension \"{e}\")", path.display()),
                    None => format!("{} (no extension)", path.display()),
                },
            )),
        }
    }

    /// Shows the figure inline in Jupyter (evcxr): prints an `image/svg+xml` block with the SVG and a `text/plain`
    /// block with the title.
    pub fn evcxr_display(&self) {
        println!(
            "EVCXR_BEGIN_CONTENT image/svg+xml\n{}\nEVCXR_END_CONTENT",
            self.svg.trim_end()
        );
        println!(
            "EVCXR_BEGIN_CONTENT text/plain\n{}\nEVCXR_END_CONTENT",
            self.scene.title
        );
    }
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).map_err(|source| Error::Io {
        action: "write",
        path: path.to_path_buf(),
        source,
    })
}

fn draw_error<E: std::error::Error + Send + Sync>(
    scene: &Scene,
    e: DrawingAreaErrorKind<E>,
) -> Error {
    Error::format(
        format!("figure \"{}\"", scene.title),
        format!("drawing failed: {e}"),
    )
}

// ---------------------------------------------------------------------------------------------------------------
// Public plotting entry points
// ---------------------------------------------------------------------------------------------------------------

impl Trace {
    /// Hidden vs cell state trajectories of one batch sample: every unit's h_t over time (one colour per unit).
    /// For an LSTM its cell state c_t is overlaid, dashed, in the same colour as that unit's h_t, so c_t drifting
    /// away from h_t (which is squashed by `o · tanh`) is visible. GRU and SimpleRNN keep a single state, so only
    /// h_t is drawn and the title says that h is the cell state. The x axis is the input time step each value
    /// was computed at (a backward trace runs right to left). Title (layer, class, direction, sample), axis
    /// labels ("time step", "value") and a legend beside the plot.
    ///
    /// ```
    /// use rnnlab::{Tensor, GRU, LSTM};
    /// let x = Tensor::full((1, 10, 1), 1.0);
    /// let lstm = &LSTM::new(3).name("lstm").trace(&x).unwrap()[0];
    /// let svg = lstm.plot_states(0).unwrap().svg().to_string();
    /// assert!(svg.contains("c_t") && svg.contains("h_t") && svg.contains("unit 2"));
    /// let gru = &GRU::new(3).name("gru").trace(&x).unwrap()[0];
    /// let fig = gru.plot_states(0).unwrap();
    /// assert!(fig.title().contains("gru (GRU, forward)") && fig.title().contains("h is the cell state"));
    /// assert!(!fig.svg().contains("c_t (cell state)"));
    /// ```
    ///
    /// # Errors
    /// An empty trace (no sample, step or unit), `sample` not below the batch size, inconsistent shapes, or a
    /// non-finite value.
    pub fn plot_states(&self, sample: usize) -> Result<Figure> {
        let s = Series::extract(self, sample, "plot_states")?;
        let title = match s.c {
            Some(_) => format!(
                "{}: hidden state h_t and cell state c_t, sample {sample}",
                s.label()
            ),
            None => format!(
                "{}: h_t over time (h is the cell state), sample {sample}",
                s.label()
            ),
        };
        let mut subtitle = match s.c {
            Some(_) => "solid: h_t = o · tanh(c_t), bounded by ±1    dashed: c_t, the LSTM's memory, \
                        unbounded    (one colour per unit)"
                .to_string(),
            None => format!(
                "a {} keeps a single state: h_t is both its output and its cell state (no separate c_t)",
                s.class_name
            ),
        };
        if s.direction == Direction::Backward {
            subtitle.push_str("    · read last to first");
        }
        Figure::build(Scene {
            kind: Kind::States,
            width: 960,
            height: 540,
            title,
            subtitle,
            series: vec![s],
            curves: Vec::new(),
        })
    }

    /// Gate heatmaps of one batch sample: one panel per gate (units down, time steps across), each with its own
    /// colour bar. Sigmoid gates (LSTM i, f, o; GRU z, r) use a 0 → 1 scale (viridis); the tanh candidate (LSTM g,
    /// GRU candidate) a diverging −1 → 1 scale (blue, white, red). A scale widens if the values leave it (custom
    /// activations).
    ///
    /// ```
    /// use rnnlab::{Tensor, LSTM, SimpleRNN};
    /// let x = Tensor::full((1, 6, 2), 0.5);
    /// let tr = &LSTM::new(3).name("enc").trace(&x).unwrap()[0];
    /// let fig = tr.plot_gates(0).unwrap();
    /// for text in ["i: input gate", "f: forget gate", "g: cell candidate", "o: output gate", "time step", "unit"] {
    ///     assert!(fig.svg().contains(text), "{text}");
    /// }
    /// // A SimpleRNN has no gates to show.
    /// let rnn = &SimpleRNN::new(2).trace(&x).unwrap()[0];
    /// assert!(rnn.plot_gates(0).unwrap_err().to_string().contains("no gates"));
    /// ```
    ///
    /// # Errors
    /// As [`Trace::plot_states`], or a trace without gates (SimpleRNN).
    pub fn plot_gates(&self, sample: usize) -> Result<Figure> {
        let s = Series::extract(self, sample, "plot_gates")?;
        if s.gates.is_empty() {
            return Err(Error::invalid(
                format!("plot_gates of {}", s.label()),
                "trace",
                "the trace of a layer with gates (LSTM: i, f, g, o; GRU: z, r, candidate)",
                format!("a {} trace, which has no gates", s.class_name),
            ));
        }
        let n = s.gates.len() as u32;
        let panel_h = (120 + 14 * s.units() as u32).clamp(170, 300);
        let title = format!("{}: gate activations, sample {sample}", s.label());
        let mut subtitle = format!(
            "each panel: {} units (rows) × {} time steps (columns); sigmoid gates on a 0–1 scale, the tanh candidate on −1–1",
            s.units(),
            s.steps()
        );
        if s.direction == Direction::Backward {
            subtitle.push_str("; read last to first");
        }
        Figure::build(Scene {
            kind: Kind::Gates,
            width: 960,
            height: HEADER_H + n * panel_h + 10,
            title,
            subtitle,
            series: vec![s],
            curves: Vec::new(),
        })
    }
}

/// Several traces' h_t (and c_t, dashed, for LSTMs) in one figure, one panel per trace on a shared value axis:
/// e.g. an LSTM and a GRU on the same input, or both directions of a Bidirectional (the backward one plotted
/// at the input time step it read, so the panels line up). An empty `title` gets a generated one.
///
/// ```
/// use rnnlab::{plot::plot_traces, Bidirectional, Tensor, LSTM};
/// let x = Tensor::full((1, 6, 1), 0.5);
/// let both = Bidirectional::new(LSTM::new(2).name("enc")).trace(&x).unwrap();
/// let fig = plot_traces(&both, 0, "both directions").unwrap();
/// assert!(fig.svg().contains("forward_enc (LSTM, forward)"));
/// assert!(fig.svg().contains("backward_enc (LSTM, backward)"));
/// assert!(plot_traces(&[], 0, "nothing").is_err());
/// ```
///
/// # Errors
/// No traces, or any trace [`Trace::plot_states`] would reject (the message names it).
pub fn plot_traces(traces: &[Trace], sample: usize, title: &str) -> Result<Figure> {
    if traces.is_empty() {
        return Err(Error::invalid(
            "plot_traces",
            "traces",
            "at least one trace",
            "an empty slice",
        ));
    }
    let series = traces
        .iter()
        .map(|t| Series::extract(t, sample, "plot_traces"))
        .collect::<Result<Vec<_>>>()?;
    let n = series.len() as u32;
    let cols = if n == 1 { 1 } else { 2 };
    let rows = n.div_ceil(cols);
    let title = if title.trim().is_empty() {
        let names: Vec<String> = series.iter().map(Series::label).collect();
        format!("{}, sample {sample}", names.join(" vs "))
    } else {
        title.to_string()
    };
    let any_c = series.iter().any(|s| s.c.is_some());
    let subtitle = if any_c {
        "solid: h_t    dashed: c_t (LSTM cell state)    one colour per unit · shared value axis; GRU and \
         SimpleRNN: h is the cell state"
    } else {
        "h_t of every unit (one colour per unit) on a shared value axis; for GRU and SimpleRNN h is the cell state"
    }
    .to_string();
    Figure::build(Scene {
        kind: Kind::Compare,
        width: cols * 520 + LEGEND_W,
        height: HEADER_H + rows * 400,
        title,
        subtitle,
        series,
        curves: Vec::new(),
    })
}

/// A line chart of per-epoch values (a training [`crate::History`]): one line per key, `val_` keys dashed.
///
/// # Errors
/// No values to draw.
pub fn plot_curves(curves: &[(String, Vec<f64>)], title: &str) -> Result<Figure> {
    if curves.iter().all(|(_, v)| v.is_empty()) {
        return Err(Error::invalid(
            "plot_curves",
            "curves",
            "at least one value (train for an epoch first)",
            "no values",
        ));
    }
    let epochs = curves.iter().map(|(_, v)| v.len()).max().unwrap_or(0);
    let last: Vec<String> = curves
        .iter()
        .filter_map(|(k, v)| v.last().map(|l| format!("{k} {l:.4}")))
        .collect();
    Figure::build(Scene {
        kind: Kind::Curves,
        width: 960,
        height: HEADER_H + 460,
        title: title.to_string(),
        subtitle: format!("{epochs} epoch(s); last: {}", last.join(", ")),
        series: Vec::new(),
        curves: curves.to_vec(),
    })
}

// ---------------------------------------------------------------------------------------------------------------
// Data taken from a trace
// ---------------------------------------------------------------------------------------------------------------

/// What kind of figure a scene draws.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    States,
    Gates,
    Compare,
    Curves,
}

/// Everything needed to draw a figure again (for the PNG): owned, no closures.
#[derive(Clone, Debug)]
struct Scene {
    kind: Kind,
    width: u32,
    height: u32,
    title: String,
    subtitle: String,
    series: Vec<Series>,
    /// Named curves over epochs (loss curves): `Kind::Curves` only.
    curves: Vec<(String, Vec<f64>)>,
}

/// One batch sample of one trace, `(steps, units)` arrays.
#[derive(Clone, Debug)]
struct Series {
    layer: String,
    class_name: String,
    direction: Direction,
    /// The input time step of each processed step.
    x: Vec<f64>,
    h: Array2<f32>,
    c: Option<Array2<f32>>,
    gates: Vec<(String, Array2<f32>)>,
}

impl Series {
    fn extract(tr: &Trace, sample: usize, what: &str) -> Result<Series> {
        let ctx = format!(
            "{what} of trace \"{}\" ({}, {})",
            tr.layer, tr.class_name, tr.direction
        );
        let dims = tr.h.shape().dims().to_vec();
        if dims.len() != 3 {
            return Err(Error::shape(
                ctx,
                "h",
                "(batch, steps, units)",
                format!("{dims:?}"),
            ));
        }
        let (b, steps, units) = (dims[0], dims[1], dims[2]);
        if b == 0 || steps == 0 || units == 0 {
            return Err(Error::invalid(
                ctx,
                "trace",
                "a trace with at least one sample, one time step and one unit to plot",
                format!("an empty trace: h of shape ({b}, {steps}, {units}) (batch, steps, units)"),
            ));
        }
        if sample >= b {
            return Err(Error::invalid(
                ctx,
                "sample",
                format!(
                    "a batch index below {b} (the trace holds {b} sample{})",
                    if b == 1 { "" } else { "s" }
                ),
                sample,
            ));
        }
        let take = |name: &str, t: &crate::tensor::Tensor| -> Result<Array2<f32>> {
            if t.shape().dims() != dims.as_slice() {
                return Err(Error::shape(
                    ctx.clone(),
                    name,
                    format!("{:?} (the shape of h)", dims),
                    format!("{:?}", t.shape().dims()),
                ));
            }
            let a = t
                .index_axis(Axis(0), sample)
                .to_owned()
                .into_dimensionality::<Ix2>()
                .map_err(|e| Error::shape(ctx.clone(), name, "(steps, units)", e))?;
            if let Some(((k, u), v)) = a.indexed_iter().find(|(_, v)| !v.is_finite()) {
                return Err(Error::invalid(
                    ctx.clone(),
                    "trace",
                    "finite values to plot",
                    format!("{v} in {name} at step {k}, unit {u}"),
                ));
            }
            Ok(a)
        };
        let h = take("h", &tr.h)?;
        let c = tr.c.as_ref().map(|c| take("c", c)).transpose()?;
        let gates = tr
            .gates
            .iter()
            .map(|(n, g)| Ok((n.clone(), take(n, g)?)))
            .collect::<Result<Vec<_>>>()?;
        if tr.input_steps.len() != steps {
            return Err(Error::shape(
                ctx,
                "input_steps",
                format!("{steps} entries (one per step)"),
                format!("{} entries", tr.input_steps.len()),
            ));
        }
        Ok(Series {
            layer: tr.layer.clone(),
            class_name: tr.class_name.clone(),
            direction: tr.direction,
            x: tr.input_steps.iter().map(|&t| t as f64).collect(),
            h,
            c,
            gates,
        })
    }

    fn steps(&self) -> usize {
        self.h.nrows()
    }

    fn units(&self) -> usize {
        self.h.ncols()
    }

    /// `lstm (LSTM, forward)`.
    fn label(&self) -> String {
        format!("{} ({}, {})", self.layer, self.class_name, self.direction)
    }

    fn x_range(&self) -> (f64, f64) {
        let lo = self.x.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = self.x.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        (lo, hi)
    }

    /// Min and max of h and c.
    fn value_range(&self) -> (f64, f64) {
        let mut lo = f64::INFINITY;
        let mut hi = f64::NEG_INFINITY;
        for a in std::iter::once(&self.h).chain(self.c.as_ref()) {
            for &v in a.iter() {
                lo = lo.min(v as f64);
                hi = hi.max(v as f64);
            }
        }
        (lo, hi)
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Drawing
// ---------------------------------------------------------------------------------------------------------------

type DrawResult<DB> =
    std::result::Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

/// Height of the title and subtitle band.
const HEADER_H: u32 = 72;
/// Width of the legend column of state figures.
const LEGEND_W: u32 = 190;
/// At most this many units get a legend entry.
const LEGEND_UNITS: usize = 12;

const INK: RGBColor = RGBColor(30, 30, 30);
const MUTED: RGBColor = RGBColor(90, 90, 90);
const GRID_BOLD: RGBColor = RGBColor(215, 215, 215);
const GRID_LIGHT: RGBColor = RGBColor(238, 238, 238);

/// matplotlib's tab10.
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

fn unit_colour(u: usize) -> RGBColor {
    PALETTE[u % PALETTE.len()]
}

fn text(size: f64, colour: RGBColor, h: HPos, v: VPos) -> TextStyle<'static> {
    (FONT, size).into_font().color(&colour).pos(Pos::new(h, v))
}

/// The largest size from `size` down to 10 at which `s` fits in `max_w` pixels.
fn fitted<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    s: &str,
    size: f64,
    max_w: u32,
) -> f64 {
    let mut sz = size;
    while sz > 10.0 {
        match area.estimate_text_size(s, &TextStyle::from((FONT, sz).into_font())) {
            Ok((w, _)) if w > max_w => sz -= 1.0,
            _ => break,
        }
    }
    sz
}

fn render<DB: DrawingBackend>(scene: &Scene, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
    root.fill(&WHITE)?;
    let (w, _) = root.dim_in_pixel();
    let (header, body) = root.split_vertically(HEADER_H);
    let tsize = fitted(&header, &scene.title, 21.0, w.saturating_sub(30));
    header.draw_text(
        &scene.title,
        &text(tsize, INK, HPos::Center, VPos::Top),
        (w as i32 / 2, 14),
    )?;
    let ssize = fitted(&header, &scene.subtitle, 14.0, w.saturating_sub(30));
    header.draw_text(
        &scene.subtitle,
        &text(ssize, MUTED, HPos::Center, VPos::Top),
        (w as i32 / 2, 46),
    )?;
    match scene.kind {
        Kind::States => {
            let (w, _) = body.dim_in_pixel();
            let (plot, legend) = body.split_horizontally(w - LEGEND_W);
            let s = &scene.series[0];
            let y = padded(s.value_range());
            draw_states(&plot, s, y, None)?;
            draw_legend(&legend, s.units(), s.c.is_some(), s.c.is_none())?;
        }
        Kind::Compare => {
            let (w, _) = body.dim_in_pixel();
            let (plots, legend) = body.split_horizontally(w - LEGEND_W);
            let n = scene.series.len();
            let cols = if n == 1 { 1 } else { 2 };
            let rows = n.div_ceil(cols);
            let y = padded(
                scene
                    .series
                    .iter()
                    .map(Series::value_range)
                    .fold((f64::INFINITY, f64::NEG_INFINITY), |a, b| {
                        (a.0.min(b.0), a.1.max(b.1))
                    }),
            );
            for (s, area) in scene.series.iter().zip(plots.split_evenly((rows, cols))) {
                let caption = if s.c.is_some() {
                    s.label()
                } else {
                    format!("{}: h = cell state", s.label())
                };
                draw_states(&area, s, y, Some(&caption))?;
            }
            let units = scene.series.iter().map(Series::units).max().unwrap_or(0);
            let any_c = scene.series.iter().any(|s| s.c.is_some());
            let any_single = scene.series.iter().any(|s| s.c.is_none());
            draw_legend(&legend, units, any_c, any_single && !any_c)?;
        }
        Kind::Curves => draw_curves(&body.margin(0, 10, 10, 10), &scene.curves)?,
        Kind::Gates => {
            let s = &scene.series[0];
            let body = body.margin(0, 10, 0, 0);
            let panels = body.split_evenly((s.gates.len(), 1));
            for ((name, values), area) in s.gates.iter().zip(panels) {
                draw_gate(&area, s, name, values)?;
            }
        }
    }
    Ok(())
}

/// Loss curves over epochs: solid lines for training values, dashed for `val_` ones, labels in the chart.
fn draw_curves<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    curves: &[(String, Vec<f64>)],
) -> DrawResult<DB> {
    let epochs = curves
        .iter()
        .map(|(_, v)| v.len())
        .max()
        .unwrap_or(1)
        .max(1);
    let finite = curves
        .iter()
        .flat_map(|(_, v)| v.iter().copied())
        .filter(|v| v.is_finite());
    let (lo, hi) = finite.fold((f64::INFINITY, f64::NEG_INFINITY), |a, v| {
        (a.0.min(v), a.1.max(v))
    });
    let (lo, hi) = if lo.is_finite() {
        (lo.min(0.0), hi)
    } else {
        (0.0, 1.0)
    };
    let (y0, y1) = padded((lo, hi));
    let (x0, x1) = (0.5, epochs as f64 + 0.5);
    let mut chart = ChartBuilder::on(area)
        .margin_top(14)
        .margin_bottom(8)
        .margin_left(10)
        .margin_right(22)
        .x_label_area_size(52)
        .y_label_area_size(70)
        .build_cartesian_2d(x0..x1, y0..y1)?;
    let span = y1 - y0;
    let ylab = |v: &f64| value_label(*v, span);
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc("loss")
        .axis_desc_style(text(16.0, INK, HPos::Center, VPos::Center))
        .label_style(text(13.0, INK, HPos::Center, VPos::Center))
        .x_label_formatter(&|v| int_label(*v))
        .y_label_formatter(&ylab)
        .x_labels(epochs.min(12) + 1)
        .y_labels(8)
        .bold_line_style(GRID_BOLD)
        .light_line_style(GRID_LIGHT)
        .axis_style(MUTED)
        .draw()?;
    for (i, (k, v)) in curves.iter().enumerate() {
        let colour = unit_colour(i);
        let pts: Vec<(f64, f64)> = v
            .iter()
            .enumerate()
            .filter(|(_, y)| y.is_finite())
            .map(|(i, &y)| (i as f64 + 1.0, y))
            .collect();
        let series = if k.starts_with("val_") {
            chart.draw_series(DashedLineSeries::new(
                pts.clone(),
                8,
                5,
                colour.stroke_width(2),
            ))?
        } else {
            chart.draw_series(LineSeries::new(pts.clone(), colour.stroke_width(2)))?
        };
        series.label(k.clone()).legend(move |(x, y)| {
            PathElement::new(vec![(x, y), (x + 24, y)], colour.stroke_width(2))
        });
        if epochs <= 40 {
            chart.draw_series(pts.iter().map(|&p| Circle::new(p, 3, colour.filled())))?;
        }
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.9))
        .border_style(GRID_BOLD)
        .label_font(text(14.0, INK, HPos::Left, VPos::Center))
        .draw()?;
    Ok(())
}

/// Pads a value range by 6 % (and opens up a flat one).
fn padded((lo, hi): (f64, f64)) -> (f64, f64) {
    let span = hi - lo;
    if span < 1e-9 {
        let pad = (lo.abs() * 0.1).max(0.1);
        (lo - pad, hi + pad)
    } else {
        (lo - 0.06 * span, hi + 0.06 * span)
    }
}

/// A tick label for an integer-valued axis: the integer, or nothing between integers.
fn int_label(v: f64) -> String {
    if (v - v.round()).abs() < 1e-6 {
        format!("{}", v.round() as i64)
    } else {
        String::new()
    }
}

/// Tick label for a value axis, with as many decimals as the tick spacing needs.
fn value_label(v: f64, span: f64) -> String {
    let decimals = if span >= 20.0 {
        0
    } else if span >= 2.0 {
        1
    } else if span >= 0.2 {
        2
    } else {
        3
    };
    let s = format!("{v:.decimals$}");
    // "-0.00" -> "0.00"
    if s.trim_start_matches('-')
        .chars()
        .all(|c| c == '0' || c == '.')
    {
        s.trim_start_matches('-').to_string()
    } else {
        s
    }
}

fn draw_states<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    s: &Series,
    (y0, y1): (f64, f64),
    caption: Option<&str>,
) -> DrawResult<DB> {
    let (xa, xb) = s.x_range();
    let pad = ((xb - xa) * 0.02).max(0.5);
    let (x0, x1) = (xa - pad, xb + pad);
    let mut builder = ChartBuilder::on(area);
    builder
        .margin_top(if caption.is_some() { 6 } else { 14 })
        .margin_bottom(8)
        .margin_left(10)
        .margin_right(22)
        .x_label_area_size(52)
        .y_label_area_size(70);
    if let Some(c) = caption {
        let (w, _) = area.dim_in_pixel();
        let size = fitted(area, c, 16.0, w.saturating_sub(30));
        builder.caption(c, text(size, INK, HPos::Center, VPos::Top));
    }
    let mut chart = builder.build_cartesian_2d(x0..x1, y0..y1)?;
    let span = y1 - y0;
    let ylab = |v: &f64| value_label(*v, span);
    chart
        .configure_mesh()
        .x_desc("time step")
        .y_desc("value")
        .axis_desc_style(text(16.0, INK, HPos::Center, VPos::Center))
        .label_style(text(13.0, INK, HPos::Center, VPos::Center))
        .x_label_formatter(&|v| int_label(*v))
        .y_label_formatter(&ylab)
        .x_labels(12)
        .y_labels(8)
        .bold_line_style(GRID_BOLD)
        .light_line_style(GRID_LIGHT)
        .axis_style(MUTED)
        .draw()?;
    if y0 < 0.0 && y1 > 0.0 {
        chart.draw_series(LineSeries::new(
            [(x0, 0.0), (x1, 0.0)],
            BLACK.mix(0.45).stroke_width(1),
        ))?;
    }
    let markers = s.steps() <= 30;
    for u in 0..s.units() {
        let colour = unit_colour(u);
        if let Some(c) = &s.c {
            let pts: Vec<(f64, f64)> =
                s.x.iter()
                    .zip(c.column(u))
                    .map(|(&x, &v)| (x, v as f64))
                    .collect();
            chart.draw_series(DashedLineSeries::new(
                pts.clone(),
                8,
                5,
                colour.stroke_width(2),
            ))?;
            if markers {
                chart.draw_series(
                    pts.iter()
                        .map(|&p| Circle::new(p, 3, colour.stroke_width(1))),
                )?;
            }
        }
        let pts: Vec<(f64, f64)> =
            s.x.iter()
                .zip(s.h.column(u))
                .map(|(&x, &v)| (x, v as f64))
                .collect();
        chart.draw_series(LineSeries::new(pts.clone(), colour.stroke_width(2)))?;
        if markers {
            chart.draw_series(pts.iter().map(|&p| Circle::new(p, 3, colour.filled())))?;
        }
    }
    Ok(())
}

/// The legend column: one swatch per unit, then the line styles.
fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    units: usize,
    show_c: bool,
    h_is_cell: bool,
) -> DrawResult<DB> {
    let x = 8;
    let mut y = 24;
    let label = text(14.0, INK, HPos::Left, VPos::Center);
    let head = text(14.0, MUTED, HPos::Left, VPos::Center);
    area.draw_text("units", &head, (x, y))?;
    y += 24;
    for u in 0..units.min(LEGEND_UNITS) {
        let colour = unit_colour(u);
        area.draw(&PathElement::new(
            vec![(x, y), (x + 30, y)],
            colour.stroke_width(3),
        ))?;
        area.draw(&Circle::new((x + 15, y), 3, colour.filled()))?;
        area.draw_text(&format!("unit {u}"), &label, (x + 40, y))?;
        y += 22;
    }
    if units > LEGEND_UNITS {
        area.draw_text(
            &format!("… {} more (colours repeat)", units - LEGEND_UNITS),
            &text(12.0, MUTED, HPos::Left, VPos::Center),
            (x, y),
        )?;
        y += 22;
    }
    y += 14;
    area.draw_text("line style", &head, (x, y))?;
    y += 24;
    area.draw(&PathElement::new(
        vec![(x, y), (x + 30, y)],
        INK.stroke_width(2),
    ))?;
    let h_text = if h_is_cell {
        "h_t (= cell state)"
    } else {
        "h_t (hidden state)"
    };
    area.draw_text(h_text, &label, (x + 40, y))?;
    if show_c {
        y += 22;
        area.draw(&plotters::element::DashedPathElement::new(
            vec![(x, y), (x + 30, y)],
            8,
            5,
            INK.stroke_width(2),
        ))?;
        area.draw_text("c_t (cell state)", &label, (x + 40, y))?;
    }
    Ok(())
}

/// A colour scale: anchors from `lo` to `hi`, evenly spaced.
struct Scale {
    lo: f64,
    hi: f64,
    anchors: &'static [(u8, u8, u8)],
}

/// viridis, sampled at 9 points.
const VIRIDIS: [(u8, u8, u8); 9] = [
    (68, 1, 84),
    (71, 45, 123),
    (59, 82, 139),
    (44, 114, 142),
    (33, 145, 140),
    (40, 174, 128),
    (94, 201, 98),
    (173, 220, 48),
    (253, 231, 37),
];
/// Blue, white, red (ColorBrewer RdBu, reversed).
const DIVERGING: [(u8, u8, u8); 7] = [
    (33, 102, 172),
    (103, 169, 207),
    (209, 229, 240),
    (247, 247, 247),
    (253, 219, 199),
    (239, 138, 98),
    (178, 24, 43),
];

impl Scale {
    fn colour(&self, v: f64) -> RGBColor {
        let t = if self.hi > self.lo {
            ((v - self.lo) / (self.hi - self.lo)).clamp(0.0, 1.0)
        } else {
            0.5
        };
        let n = self.anchors.len() - 1;
        let pos = t * n as f64;
        let k = (pos.floor() as usize).min(n - 1);
        let f = pos - k as f64;
        let (a, b) = (self.anchors[k], self.anchors[k + 1]);
        let mix = |x: u8, y: u8| (x as f64 + (y as f64 - x as f64) * f).round() as u8;
        RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
    }
}

/// What a gate is and which scale it is drawn on.
fn gate_info(name: &str, values: &Array2<f32>) -> (String, Scale) {
    let (vlo, vhi) = values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v as f64), b.max(v as f64))
        });
    let desc = match name {
        "i" => "input gate",
        "f" => "forget gate",
        "g" => "cell candidate (tanh)",
        "o" => "output gate",
        "z" => "update gate",
        "r" => "reset gate",
        "candidate" => "candidate state (tanh)",
        _ => "",
    };
    let caption = if desc.is_empty() {
        name.to_string()
    } else {
        format!("{name}: {desc}")
    };
    let scale = if matches!(name, "g" | "candidate") {
        let m = vlo.abs().max(vhi.abs()).max(1.0);
        Scale {
            lo: -m,
            hi: m,
            anchors: &DIVERGING,
        }
    } else {
        Scale {
            lo: vlo.min(0.0),
            hi: vhi.max(1.0),
            anchors: &VIRIDIS,
        }
    };
    (caption, scale)
}

fn draw_gate<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    s: &Series,
    name: &str,
    values: &Array2<f32>,
) -> DrawResult<DB> {
    let (caption, scale) = gate_info(name, values);
    let (w, _) = area.dim_in_pixel();
    let (heat, bar) = area.split_horizontally(w - 120);
    let (xa, xb) = s.x_range();
    let units = s.units();
    let (x0, x1) = (xa - 0.5, xb + 0.5);
    // Unit 0 at the top: unit u is drawn at y = -u.
    let (y0, y1) = (-(units as f64) + 0.5, 0.5);
    let cap_style = text(15.0, INK, HPos::Center, VPos::Top);
    let mut chart = ChartBuilder::on(&heat)
        .margin_top(6)
        .margin_bottom(4)
        .margin_left(10)
        .margin_right(12)
        .caption(&caption, cap_style.clone())
        .x_label_area_size(44)
        .y_label_area_size(70)
        .build_cartesian_2d(x0..x1, y0..y1)?;
    let ylab = |v: &f64| {
        let l = int_label(-*v);
        if l == "-0" {
            "0".to_string()
        } else {
            l
        }
    };
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc("time step")
        .y_desc("unit")
        .axis_desc_style(text(15.0, INK, HPos::Center, VPos::Center))
        .label_style(text(12.0, INK, HPos::Center, VPos::Center))
        .x_label_formatter(&|v| int_label(*v))
        .y_label_formatter(&ylab)
        .x_labels(12)
        .y_labels(units.clamp(2, 9))
        .axis_style(MUTED)
        .draw()?;
    chart.draw_series(s.x.iter().enumerate().flat_map(|(k, &x)| {
        let scale = &scale;
        (0..units).map(move |u| {
            let yc = -(u as f64);
            Rectangle::new(
                [(x - 0.5, yc - 0.5), (x + 0.5, yc + 0.5)],
                scale.colour(values[[k, u]] as f64).filled(),
            )
        })
    }))?;

    // The colour bar, with the same top (caption) and bottom (label area) as the heatmap so they line up.
    let range_caption = format!(
        "{} … {}",
        value_label(scale.lo, scale.hi - scale.lo),
        value_label(scale.hi, scale.hi - scale.lo)
    );
    let mut cb = ChartBuilder::on(&bar)
        .margin_top(6)
        .margin_bottom(4)
        .margin_left(4)
        .margin_right(6)
        .caption(&range_caption, cap_style.transform(FontTransform::None))
        .x_label_area_size(44)
        .set_label_area_size(LabelAreaPosition::Right, 44)
        .build_cartesian_2d(0.0..1.0, scale.lo..scale.hi)?;
    let span = scale.hi - scale.lo;
    let blab = |v: &f64| value_label(*v, span);
    cb.configure_mesh()
        .disable_mesh()
        .disable_x_axis()
        .y_labels(5)
        .y_label_formatter(&blab)
        .label_style(text(12.0, INK, HPos::Center, VPos::Center))
        .axis_style(MUTED)
        .draw()?;
    let n = 64;
    cb.draw_series((0..n).map(|k| {
        let a = scale.lo + span * k as f64 / n as f64;
        let b = scale.lo + span * (k + 1) as f64 / n as f64;
        Rectangle::new([(0.0, a), (1.0, b)], scale.colour((a + b) / 2.0).filled())
    }))?;
    Ok(())
}
