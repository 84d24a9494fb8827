//! SVG figures with plotters: a metric against a grid axis, one series per arm, with 95% CI
//! bars; reliability diagrams.
//!
//! Text is laid out with a bundled DejaVu Sans font (registered once), so figures look the
//! same on every machine and need no system font.

use std::sync::Once;

use plotters::prelude::*;
use plotters::style::FontStyle;

static FONT: Once = Once::new();

fn register_font() {
    FONT.call_once(|| {
        let bytes: &'static [u8] = include_bytes!("../assets/DejaVuSans.ttf");
        plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).unwrap_or_else(|_| unreachable!("the bundled font is valid"));
    });
}

/// Draws `title` centred across the top of `root`: at `size` px, or smaller (down to 11 px)
/// until it fits the width, and wrapped onto further lines when even that does not. Returns
/// the area below it.
fn with_title<'a>(root: DrawingArea<SVGBackend<'a>, plotters::coord::Shift>, title: &str, size: f64) -> Result<DrawingArea<SVGBackend<'a>, plotters::coord::Shift>, String> {
    let (width, _) = root.dim_in_pixel();
    let usable = width.saturating_sub(24);
    let style = |s: f64| TextStyle::from(("sans-serif", s).into_font()).pos(plotters::style::text_anchor::Pos::new(plotters::style::text_anchor::HPos::Center, plotters::style::text_anchor::VPos::Top));
    // The font's own measure, or 0.6 em per character of the size the SVG states (plotters
    // writes size / 1.24), whichever is wider: a viewer may substitute a wider sans-serif.
    let text_width = |text: &str, s: f64| {
        let measured = root.estimate_text_size(text, &style(s)).map(|(w, _)| w).unwrap_or(u32::MAX);
        measured.max((text.chars().count() as f64 * 0.6 * s / 1.24).ceil() as u32)
    };
    let mut s = size;
    while s > 11.0 && text_width(title, s) > usable {
        s -= 1.0;
    }
    // Greedy word wrap at the chosen size.
    let mut lines: Vec<String> = Vec::new();
    for word in title.split(' ') {
        match lines.last_mut() {
            Some(line) if text_width(&format!("{line} {word}"), s) <= usable => {
                line.push(' ');
                line.push_str(word);
            }
            _ => lines.push(word.to_string()),
        }
    }
    let line_height = (s * 1.3).ceil() as u32;
    let (top, rest) = root.split_vertically(line_height * lines.len() as u32 + 10);
    for (i, line) in lines.iter().enumerate() {
        top.draw(&Text::new(line.clone(), (width as i32 / 2, 6 + (i as u32 * line_height) as i32), style(s))).map_err(|e| e.to_string())?;
    }
    Ok(rest)
}

/// One plotted point: mean and its interval.
#[derive(Debug, Clone, Copy)]
pub struct Interval {
    pub mean: f64,
    pub low: f64,
    pub high: f64,
}

/// One line of the chart: a value (or a gap) per x level.
pub struct Series {
    pub name: String,
    pub points: Vec<Option<Interval>>,
}

const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

/// Renders a categorical-x line chart with CI bars to an SVG string.
pub fn interval_chart(title: &str, x_label: &str, y_label: &str, levels: &[String], series: &[Series]) -> Result<String, String> {
    register_font();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 460)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let root = with_title(root, title, 20.0)?;
        // The legend gets its own panel so it never hides data.
        let (plot_area, legend_area) = root.split_horizontally(690);
        let finite = |v: f64| v.is_finite().then_some(v);
        let (mut lo, mut hi) = series
            .iter()
            .flat_map(|s| s.points.iter().flatten())
            .flat_map(|p| [finite(p.low).unwrap_or(p.mean), finite(p.high).unwrap_or(p.mean)])
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
        if !lo.is_finite() || !hi.is_finite() {
            (lo, hi) = (0.0, 1.0);
        }
        let pad = ((hi - lo) * 0.08).max(1e-9);
        let n = levels.len().max(1) as f64;
        let mut chart = ChartBuilder::on(&plot_area)
            .margin(12)
            .x_label_area_size(45)
            .y_label_area_size(70)
            .build_cartesian_2d(-0.5f64..(n - 0.5), (lo - pad)..(hi + pad))
            .map_err(|e| e.to_string())?;
        let labels = levels.to_vec();
        chart
            .configure_mesh()
            .x_desc(x_label)
            .y_desc(y_label)
            .x_labels(levels.len().max(1))
            .x_label_formatter(&|x| {
                let i = x.round();
                if (x - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < labels.len() {
                    labels[i as usize].clone()
                } else {
                    String::new()
                }
            })
            .disable_x_mesh()
            .draw()
            .map_err(|e| e.to_string())?;
        let width = 0.5 / series.len().max(1) as f64;
        for (s, line) in series.iter().enumerate() {
            let color = PALETTE[s % PALETTE.len()];
            let offset = (s as f64 - (series.len() as f64 - 1.0) / 2.0) * width * 0.5;
            let pts: Vec<(f64, Interval)> = line.points.iter().enumerate().filter_map(|(i, p)| p.map(|p| (i as f64 + offset, p))).collect();
            chart.draw_series(LineSeries::new(pts.iter().map(|(x, p)| (*x, p.mean)), color.stroke_width(2))).map_err(|e| e.to_string())?;
            let y = 50 + 22 * s as i32;
            legend_area.draw(&PathElement::new(vec![(8, y), (30, y)], color.stroke_width(3))).map_err(|e| e.to_string())?;
            legend_area.draw(&Text::new(line.name.clone(), (36, y - 7), ("sans-serif", 13))).map_err(|e| e.to_string())?;
            chart.draw_series(pts.iter().map(|(x, p)| Circle::new((*x, p.mean), 4, color.filled()))).map_err(|e| e.to_string())?;
            chart
                .draw_series(pts.iter().filter(|(_, p)| p.low.is_finite() && p.high.is_finite()).map(|(x, p)| {
                    ErrorBar::new_vertical(*x, p.low, p.mean, p.high, color.stroke_width(1), 8)
                }))
                .map_err(|e| e.to_string())?;
        }
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

/// One model's reliability curve: (mean confidence, accuracy, count) per occupied bin.
pub struct ReliabilityCurve {
    pub name: String,
    pub bins: Vec<(f64, f64, usize)>,
}

/// Renders a reliability diagram (accuracy against mean confidence, the diagonal is perfect
/// calibration; marker area grows with the bin's share of points) to an SVG string.
pub fn reliability_chart(title: &str, curves: &[ReliabilityCurve]) -> Result<String, String> {
    register_font();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (760, 520)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let root = with_title(root, title, 18.0)?;
        let (plot_area, legend_area) = root.split_horizontally(560);
        let mut chart = ChartBuilder::on(&plot_area)
            .margin(12)
            .x_label_area_size(45)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..1f64, 0f64..1f64)
            .map_err(|e| e.to_string())?;
        chart.configure_mesh().x_desc("mean confidence (top label)").y_desc("accuracy").draw().map_err(|e| e.to_string())?;
        chart.draw_series(LineSeries::new([(0.0, 0.0), (1.0, 1.0)], BLACK.mix(0.4).stroke_width(1))).map_err(|e| e.to_string())?;
        for (s, curve) in curves.iter().enumerate() {
            let color = PALETTE[s % PALETTE.len()];
            let total = curve.bins.iter().map(|b| b.2).sum::<usize>().max(1) as f64;
            chart.draw_series(LineSeries::new(curve.bins.iter().map(|b| (b.0, b.1)), color.stroke_width(2))).map_err(|e| e.to_string())?;
            chart
                .draw_series(curve.bins.iter().map(|b| Circle::new((b.0, b.1), (3.0 + 12.0 * (b.2 as f64 / total).sqrt()) as i32, color.mix(0.6).filled())))
                .map_err(|e| e.to_string())?;
            let y = 50 + 22 * s as i32;
            legend_area.draw(&PathElement::new(vec![(8, y), (30, y)], color.stroke_width(3))).map_err(|e| e.to_string())?;
            legend_area.draw(&Text::new(curve.name.clone(), (36, y - 7), ("sans-serif", 13))).map_err(|e| e.to_string())?;
        }
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

/// A loss slice on a grid with three labelled points.
pub struct SurfaceGrid<'a> {
    pub alpha: &'a [f64],
    pub beta: &'a [f64],
    /// `values[i][j]` at (`alpha[i]`, `beta[j]`).
    pub values: &'a [Vec<f64>],
    pub points: Vec<(&'a str, (f64, f64))>,
}

/// Renders a heat map of log10 of the slice's values (light = low loss) with its labelled
/// points to an SVG string.
pub fn surface_chart(title: &str, x_label: &str, y_label: &str, grid: &SurfaceGrid) -> Result<String, String> {
    register_font();
    let (a, b) = (grid.alpha, grid.beta);
    if a.len() < 2 || b.len() < 2 {
        return Err("a surface needs at least 2 × 2 grid points".into());
    }
    let logs: Vec<f64> = grid.values.iter().flatten().map(|v| v.max(1e-12).log10()).filter(|v| v.is_finite()).collect();
    let (lo, hi) = logs.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &v| (l.min(v), h.max(v)));
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (760, 560)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let root = with_title(root, title, 16.0)?;
        let (plot_area, legend_area) = root.split_horizontally(600);
        let (da, db) = (a[1] - a[0], b[1] - b[0]);
        let mut chart = ChartBuilder::on(&plot_area)
            .margin(12)
            .x_label_area_size(45)
            .y_label_area_size(60)
            .build_cartesian_2d((a[0] - da / 2.0)..(a[a.len() - 1] + da / 2.0), (b[0] - db / 2.0)..(b[b.len() - 1] + db / 2.0))
            .map_err(|e| e.to_string())?;
        chart.configure_mesh().disable_mesh().x_desc(x_label).y_desc(y_label).draw().map_err(|e| e.to_string())?;
        let shade = |v: f64| {
            let t = if hi > lo { ((v.max(1e-12).log10() - lo) / (hi - lo)).clamp(0.0, 1.0) } else { 0.0 };
            // Light yellow (low) to dark blue (high).
            RGBColor((255.0 * (1.0 - t) + 20.0 * t) as u8, (245.0 * (1.0 - t) + 40.0 * t) as u8, (180.0 * (1.0 - t) + 120.0 * t) as u8)
        };
        for (i, &x) in a.iter().enumerate() {
            for (j, &y) in b.iter().enumerate() {
                let v = grid.values[i][j];
                let color = if v.is_finite() { shade(v) } else { RGBColor(200, 200, 200) };
                chart
                    .draw_series(std::iter::once(Rectangle::new([(x - da / 2.0, y - db / 2.0), (x + da / 2.0, y + db / 2.0)], color.filled())))
                    .map_err(|e| e.to_string())?;
            }
        }
        for (s, (name, (x, y))) in grid.points.iter().enumerate() {
            let color = PALETTE[s % PALETTE.len()];
            chart.draw_series(std::iter::once(Circle::new((*x, *y), 7, color.filled()))).map_err(|e| e.to_string())?;
            let ly = 50 + 22 * s as i32;
            legend_area.draw(&Circle::new((16, ly), 6, color.filled())).map_err(|e| e.to_string())?;
            legend_area.draw(&Text::new(name.to_string(), (28, ly - 7), ("sans-serif", 13))).map_err(|e| e.to_string())?;
        }
        let y0 = 50 + 22 * grid.points.len() as i32 + 20;
        legend_area.draw(&Text::new(format!("log10 loss: {lo:.2} (light)"), (8, y0), ("sans-serif", 12))).map_err(|e| e.to_string())?;
        legend_area.draw(&Text::new(format!("to {hi:.2} (dark)"), (8, y0 + 16), ("sans-serif", 12))).map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    #[test]
    fn surface_chart_renders_points_and_scale() {
        let values = vec![vec![1.0, 2.0], vec![0.5, 4.0]];
        let grid = SurfaceGrid { alpha: &[0.0, 1.0], beta: &[0.0, 2.0], values: &values, points: vec![("teacher", (1.0, 2.0))] };
        let svg = surface_chart("slice", "a", "b", &grid).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("teacher") && svg.contains("log10 loss"));
    }

    use super::*;

    /// A long title is drawn whole inside the figure: on lines that, at the size drawn, are
    /// no wider than the figure (0.6 em per character bounds DejaVu Sans from above).
    #[test]
    fn long_titles_are_wrapped_to_fit_the_figure() {
        let title = "distillation loss, cell 10: student.epochs = 40, student.optimizer = adamw, fidelity.init_lambda = 0.375, fidelity.extra = ood, fidelity.n_extra = 16000";
        let values = vec![vec![1.0, 2.0], vec![0.5, 4.0]];
        let grid = SurfaceGrid { alpha: &[0.0, 1.0], beta: &[0.0, 2.0], values: &values, points: vec![] };
        let svg = surface_chart(title, "a", "b", &grid).unwrap();
        let mut lines: Vec<(f64, String)> = Vec::new();
        for element in svg.split("<text").skip(1) {
            let size: f64 = element.split("font-size=\"").nth(1).and_then(|s| s.split('"').next()).and_then(|s| s.parse().ok()).unwrap();
            let text = element.split('>').nth(1).and_then(|s| s.split('<').next()).unwrap().trim().to_string();
            if title.contains(&text) && text.len() > 8 {
                lines.push((size, text));
            }
        }
        assert!(lines.len() >= 2, "wrapped: {lines:?}");
        assert_eq!(lines.iter().map(|(_, t)| t.as_str()).collect::<Vec<_>>().join(" "), title);
        for (size, text) in &lines {
            assert!(text.chars().count() as f64 * 0.6 * size <= 760.0, "{text} at {size} px");
        }
    }

    #[test]
    fn chart_renders_labels_and_series() {
        let p = |m: f64| Some(Interval { mean: m, low: m - 0.1, high: m + 0.1 });
        let svg = interval_chart(
            "accuracy",
            "data.n_train",
            "accuracy",
            &["100".into(), "400".into()],
            &[Series { name: "kd".into(), points: vec![p(0.7), p(0.8)] }, Series { name: "labels".into(), points: vec![p(0.6), None] }],
        )
        .unwrap();
        assert!(svg.starts_with("<svg"));
        assert!(svg.contains("400") && svg.contains("labels"));
    }

    #[test]
    fn reliability_chart_renders() {
        let svg = reliability_chart("cell 0", &[ReliabilityCurve { name: "teacher".into(), bins: vec![(0.55, 0.5, 10), (0.95, 0.9, 30)] }]).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("teacher") && svg.contains("mean confidence"));
    }
}
