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
            .caption(title, ("sans-serif", 20))
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
        let (plot_area, legend_area) = root.split_horizontally(560);
        let mut chart = ChartBuilder::on(&plot_area)
            .caption(title, ("sans-serif", 18))
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

#[cfg(test)]
mod tests {
    use super::*;

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
