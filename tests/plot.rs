//! Figures of traces (issue: notebooks and plots). Checks that the drawings carry their titles, labels and
//! legends, that PNGs decode to the stated size with text drawn from the bundled font, and that bad requests are
//! clear errors.

use rnnlab::plot::plot_traces;
use rnnlab::prelude::*;

fn sine(t: usize) -> Tensor {
    Tensor::new(
        (2, t, 1),
        (0..2 * t).map(|i| (0.3 * i as f32).sin()).collect(),
    )
    .unwrap()
}

/// Width, height of a PNG from its IHDR chunk (bytes 16..24), after checking the signature.
fn png_size(png: &[u8]) -> (u32, u32) {
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "PNG signature");
    assert_eq!(&png[12..16], b"IHDR");
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    (be(&png[16..20]), be(&png[20..24]))
}

#[test]
fn state_and_gate_figures_for_every_recurrent_kind() {
    set_random_seed(1);
    let traces = [
        LSTM::new(3).trace(&sine(12)).unwrap(),
        GRU::new(3).trace(&sine(12)).unwrap(),
        SimpleRNN::new(3).trace(&sine(12)).unwrap(),
        Bidirectional::new(LSTM::new(2)).trace(&sine(12)).unwrap(),
    ];
    for trs in &traces {
        for tr in trs {
            let fig = tr.plot_states(1).unwrap();
            let svg = fig.svg();
            assert!(
                svg.starts_with("<svg") || svg.contains("<svg"),
                "not an SVG"
            );
            assert!(
                svg.contains(&tr.layer),
                "title names the layer {}",
                tr.layer
            );
            assert!(
                svg.contains("time step") && svg.contains("value"),
                "axis labels"
            );
            assert!(svg.contains("unit 0"), "legend");
            if tr.c.is_some() {
                assert!(svg.contains("c_t"), "LSTM figure shows c");
            } else {
                assert!(
                    svg.contains("cell state"),
                    "GRU/SimpleRNN figure says h is the cell state"
                );
            }
            if !tr.gates.is_empty() {
                let g = tr.plot_gates(0).unwrap();
                for name in tr.gate_names() {
                    assert!(g.svg().contains(&format!("{name}:")), "gate panel {name}");
                }
            } else {
                assert!(tr.plot_gates(0).is_err(), "SimpleRNN has no gates to plot");
            }
        }
    }
    let fig = plot_traces(
        &[traces[0][0].clone(), traces[1][0].clone()],
        0,
        "LSTM vs GRU",
    )
    .unwrap();
    assert!(fig.svg().contains("LSTM vs GRU"));
}

#[test]
fn png_has_the_figure_size_and_rendered_text() {
    let tr = LSTM::new(2).trace(&sine(8)).unwrap().remove(0);
    let fig = tr.plot_states(0).unwrap();
    let png = fig.to_png().unwrap();
    assert_eq!(png_size(&png), fig.size());
    // Text is drawn with the bundled DejaVu Sans (no system fonts needed): the PNG of a figure is larger than
    // the PNG of the same scene would be blank, and decoding shows dark pixels in the title band.
    let dec = png::Decoder::new(std::io::Cursor::new(&png));
    let mut reader = dec.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let (w, stride) = (info.width as usize, info.line_size);
    let dark_in_title = (5..35).any(|y| (0..w).any(|x| buf[y * stride + 3 * x] < 100));
    assert!(dark_in_title, "title text is drawn");
}

#[test]
fn saving_by_extension_and_errors() {
    let dir = std::env::temp_dir().join(format!("rnnlab-plot-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let tr = GRU::new(2).trace(&sine(6)).unwrap().remove(0);
    let fig = tr.plot_states(0).unwrap();
    fig.save(dir.join("a.svg")).unwrap();
    fig.save(dir.join("a.png")).unwrap();
    assert!(std::fs::read_to_string(dir.join("a.svg"))
        .unwrap()
        .contains("<svg"));
    assert_eq!(
        png_size(&std::fs::read(dir.join("a.png")).unwrap()),
        fig.size()
    );

    let e = fig.save(dir.join("a.jpg")).unwrap_err().to_string();
    assert!(e.contains(".svg or .png") && e.contains("jpg"), "{e}");
    let e = fig
        .save(dir.join("no/such/dir/a.png"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("no/such/dir/a.png"), "{e}");
    let e = tr.plot_states(5).unwrap_err().to_string();
    assert!(e.contains("sample") && e.contains('5'), "{e}");
    let empty = GRU::new(2)
        .trace(&Tensor::zeros((1, 0, 1)))
        .unwrap()
        .remove(0);
    let e = empty.plot_states(0).unwrap_err().to_string();
    assert!(e.contains("step"), "{e}");
    assert!(plot_traces(&[], 0, "x").is_err());
}
