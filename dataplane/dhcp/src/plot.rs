//! PNG plots for `--plot` (feature `plot`) of `qsplice dhcp-tester` and
//! `pktgen` (a latency histogram, left, and CDF, right, of each stage) and
//! of `qsplice loadgen` (time series of rates and latencies), drawn with
//! `plotters`' bitmap backend. Labels use the first TrueType font found among common
//! system paths (DejaVu / Liberation); without one the plot is drawn
//! without text.

use std::path::Path;

use hdrhistogram::Histogram;
use plotters::prelude::*;

const FONT_PATHS: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
];

fn register_font() -> bool {
    static ONCE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ONCE.get_or_init(|| {
        for p in FONT_PATHS {
            if let Ok(bytes) = std::fs::read(p) {
                let leaked: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                if plotters::style::register_font("sans-serif", FontStyle::Normal, leaked).is_ok() {
                    return true;
                }
            }
        }
        false
    })
}

const COLORS: [RGBColor; 4] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
];

/// Writes a 1200×500 PNG: per stage, a histogram of latencies (µs, 60
/// linear buckets up to the largest p99.9) and the CDF.
pub fn latency_png(path: &Path, stages: &[(&str, &Histogram<u64>)]) -> Result<(), String> {
    let text = register_font();
    let e = |x: &dyn std::fmt::Display| x.to_string();
    let hi_ns = stages
        .iter()
        .filter(|(_, h)| !h.is_empty())
        .map(|(_, h)| h.value_at_quantile(0.999))
        .max()
        .unwrap_or(1000)
        .max(1);
    let hi_us = hi_ns as f64 / 1000.0 * 1.05;
    const BUCKETS: usize = 60;
    let width = hi_us / BUCKETS as f64;
    // (stage name, histogram bucket heights, CDF points)
    type Series = (String, Vec<f64>, Vec<(f64, f64)>);
    let mut series: Vec<Series> = Vec::new();
    let mut ymax = 1.0f64;
    for (name, h) in stages {
        let mut counts = vec![0f64; BUCKETS];
        let mut cdf = Vec::new();
        let total = h.len().max(1) as f64;
        let mut acc = 0u64;
        for v in h.iter_recorded() {
            let us = v.value_iterated_to() as f64 / 1000.0;
            let b = ((us / width) as usize).min(BUCKETS - 1);
            counts[b] += v.count_at_value() as f64;
            acc += v.count_at_value();
            cdf.push((us.min(hi_us), acc as f64 / total));
        }
        ymax = counts.iter().copied().fold(ymax, f64::max);
        series.push((name.to_string(), counts, cdf));
    }
    let root = BitMapBackend::new(path, (1200, 500)).into_drawing_area();
    root.fill(&WHITE).map_err(|x| e(&x))?;
    let (left, right) = root.split_horizontally(600);
    let label = |s: &'static str| if text { s } else { "" };
    {
        let mut b = ChartBuilder::on(&left);
        b.margin(15);
        if text {
            b.caption("DHCP latency histogram", ("sans-serif", 20))
                .x_label_area_size(35)
                .y_label_area_size(60);
        }
        let mut chart = b
            .build_cartesian_2d(0f64..hi_us, 0f64..ymax * 1.1)
            .map_err(|x| e(&x))?;
        let mut mesh = chart.configure_mesh();
        mesh.x_desc(label("latency (us)")).y_desc(label("clients"));
        if !text {
            mesh.disable_x_mesh().disable_y_mesh();
        }
        mesh.draw().map_err(|x| e(&x))?;
        for (i, (name, counts, _)) in series.iter().enumerate() {
            let c = COLORS[i % COLORS.len()];
            let pts: Vec<(f64, f64)> = counts
                .iter()
                .enumerate()
                .map(|(k, y)| ((k as f64 + 0.5) * width, *y))
                .collect();
            let s = chart
                .draw_series(LineSeries::new(pts, c.stroke_width(2)))
                .map_err(|x| e(&x))?;
            if text {
                s.label(name.as_str()).legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2))
                });
            }
        }
        if text {
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()
                .map_err(|x| e(&x))?;
        }
    }
    {
        let mut b = ChartBuilder::on(&right);
        b.margin(15);
        if text {
            b.caption("DHCP latency CDF", ("sans-serif", 20))
                .x_label_area_size(35)
                .y_label_area_size(50);
        }
        let mut chart = b
            .build_cartesian_2d(0f64..hi_us, 0f64..1.0f64)
            .map_err(|x| e(&x))?;
        let mut mesh = chart.configure_mesh();
        mesh.x_desc(label("latency (us)")).y_desc(label("fraction"));
        if !text {
            mesh.disable_x_mesh().disable_y_mesh();
        }
        mesh.draw().map_err(|x| e(&x))?;
        for (i, (_, _, cdf)) in series.iter().enumerate() {
            let c = COLORS[i % COLORS.len()];
            chart
                .draw_series(LineSeries::new(cdf.iter().copied(), c.stroke_width(2)))
                .map_err(|x| e(&x))?;
        }
    }
    root.present().map_err(|x| e(&x))?;
    Ok(())
}

/// One line of a [`timeseries_png`] panel: its name and (seconds, value)
/// points.
pub type Line<'a> = (&'a str, &'a [(f64, f64)]);

/// Writes a 1200×500 PNG of two time-series panels side by side (e.g.
/// rates on the left, latencies on the right): each panel a caption, a
/// y-axis label and its lines over seconds since the start.
pub fn timeseries_png(
    path: &Path,
    left: (&str, &str, &[Line<'_>]),
    right: (&str, &str, &[Line<'_>]),
) -> Result<(), String> {
    let text = register_font();
    let e = |x: &dyn std::fmt::Display| x.to_string();
    let root = BitMapBackend::new(path, (1200, 500)).into_drawing_area();
    root.fill(&WHITE).map_err(|x| e(&x))?;
    let (l, r) = root.split_horizontally(600);
    for (area, (caption, ylabel, lines)) in [(&l, left), (&r, right)] {
        let pts = lines.iter().flat_map(|(_, p)| p.iter());
        let xmax = pts.clone().map(|p| p.0).fold(1.0f64, f64::max);
        let ymax = pts.map(|p| p.1).fold(1.0f64, f64::max) * 1.1;
        let mut b = ChartBuilder::on(area);
        b.margin(15);
        if text {
            b.caption(caption, ("sans-serif", 20))
                .x_label_area_size(35)
                .y_label_area_size(70);
        }
        let mut chart = b
            .build_cartesian_2d(0f64..xmax, 0f64..ymax)
            .map_err(|x| e(&x))?;
        let mut mesh = chart.configure_mesh();
        if text {
            mesh.x_desc("time (s)").y_desc(ylabel);
        } else {
            mesh.disable_x_mesh().disable_y_mesh();
        }
        mesh.draw().map_err(|x| e(&x))?;
        for (i, (name, p)) in lines.iter().enumerate() {
            let c = COLORS[i % COLORS.len()];
            let s = chart
                .draw_series(LineSeries::new(p.iter().copied(), c.stroke_width(2)))
                .map_err(|x| e(&x))?;
            if text {
                s.label(*name).legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2))
                });
            }
        }
        if text && !lines.is_empty() {
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()
                .map_err(|x| e(&x))?;
        }
    }
    root.present().map_err(|x| e(&x))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_a_png() {
        let mut h = Histogram::<u64>::new_with_bounds(1, 3_600_000_000_000, 3).unwrap();
        for i in 1..2000u64 {
            h.record(50_000 + i * 37).unwrap();
        }
        let empty = Histogram::<u64>::new_with_bounds(1, 3_600_000_000_000, 3).unwrap();
        let p = std::env::temp_dir().join(format!("qsplice-plot-{}.png", std::process::id()));
        latency_png(&p, &[("total", &h), ("empty", &empty)]).unwrap();
        let bytes = std::fs::read(&p).unwrap();
        assert_eq!(&bytes[1..4], b"PNG");
        std::fs::remove_file(&p).unwrap();
    }

    #[test]
    fn writes_a_time_series_png() {
        let rate: Vec<(f64, f64)> = (0..20)
            .map(|i| (i as f64 * 0.5, 1000.0 + i as f64))
            .collect();
        let p = std::env::temp_dir().join(format!("qsplice-ts-{}.png", std::process::id()));
        timeseries_png(
            &p,
            ("rates", "per second", &[("conn/s", &rate)]),
            ("latency", "us", &[]),
        )
        .unwrap();
        let bytes = std::fs::read(&p).unwrap();
        assert_eq!(&bytes[1..4], b"PNG");
        assert!(bytes.len() > 2000, "{} bytes", bytes.len());
        std::fs::remove_file(&p).unwrap();
    }
}
