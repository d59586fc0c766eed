//! Histograms as SVG, for distributions a passive observer measures (first-flight popcounts,
//! record sizes): panels stacked one above the other on a shared x-axis, each with its series
//! drawn as step outlines of the share of samples per bin, and an optional shaded band (the
//! values a censor flags, say).
//!
//! Like [`plot`](crate::plot), the SVG is written by hand: a few hundred path points need no
//! plotting library.

use std::fmt::Write;

use crate::plot::{escape, open_svg, tick_step};

const WIDTH: f64 = 980.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 300.0;
const TOP: f64 = 64.0;
const PANEL_HEIGHT: f64 = 190.0;
const PANEL_GAP: f64 = 56.0;
const BOTTOM: f64 = 50.0;
const COLOURS: [&str; 6] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b",
];

/// One distribution: its samples and a legend label.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    /// The legend entry.
    pub label: String,
    /// Series of one group (the same stack in several panels, say) share a colour.
    pub group: String,
    /// The samples.
    pub values: Vec<f64>,
}

/// Series that share a y-axis, under a title.
#[derive(Clone, Debug, PartialEq)]
pub struct Panel {
    /// Shown at the panel's top left.
    pub title: String,
    /// Drawn in order, each in its own colour.
    pub series: Vec<Series>,
}

/// A figure of panels on one x-axis.
#[derive(Clone, Debug, PartialEq)]
pub struct Histogram {
    /// Shown at the top.
    pub title: String,
    /// Names the x-axis.
    pub x_label: String,
    /// The x-axis range; samples outside it count in the first or last bin.
    pub range: (f64, f64),
    /// How many equal bins the range is cut into.
    pub bins: usize,
    /// A shaded interval of the x-axis and what it means.
    pub band: Option<(f64, f64, String)>,
    /// Top to bottom.
    pub panels: Vec<Panel>,
}

impl Histogram {
    /// The share of `values` in each bin (all zeros for no values).
    pub fn shares(&self, values: &[f64]) -> Vec<f64> {
        let bins = self.bins.max(1);
        let (lo, hi) = self.range;
        let mut counts = vec![0usize; bins];
        for &v in values {
            let at = ((v - lo) / (hi - lo) * bins as f64).floor();
            counts[(at.max(0.0) as usize).min(bins - 1)] += 1;
        }
        let n = values.len().max(1) as f64;
        counts.into_iter().map(|c| c as f64 / n).collect()
    }

    /// The SVG text.
    pub fn render(&self) -> String {
        let height =
            TOP + self.panels.len() as f64 * (PANEL_HEIGHT + PANEL_GAP) - PANEL_GAP + BOTTOM;
        let mut svg = open_svg(WIDTH, height, LEFT, &self.title);
        let mut groups: Vec<&str> = Vec::new();
        for series in self.panels.iter().flat_map(|p| &p.series) {
            if !groups.contains(&series.group.as_str()) {
                groups.push(&series.group);
            }
        }
        for (i, panel) in self.panels.iter().enumerate() {
            let top = TOP + i as f64 * (PANEL_HEIGHT + PANEL_GAP);
            self.panel(&mut svg, panel, top, &groups);
        }
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
            LEFT + (WIDTH - LEFT - RIGHT) / 2.0,
            height - 12.0,
            escape(&self.x_label)
        );
        svg.push_str("</svg>\n");
        svg
    }

    fn x_of(&self, v: f64) -> f64 {
        let (lo, hi) = self.range;
        LEFT + (v - lo) / (hi - lo) * (WIDTH - LEFT - RIGHT)
    }

    fn panel(&self, svg: &mut String, panel: &Panel, top: f64, groups: &[&str]) {
        let bottom = top + PANEL_HEIGHT;
        let right = WIDTH - RIGHT;
        let shares: Vec<Vec<f64>> = panel
            .series
            .iter()
            .map(|s| self.shares(&s.values))
            .collect();
        let peak = shares
            .iter()
            .flatten()
            .fold(0.0f64, |a, &b| a.max(b))
            .max(1e-9)
            * 1.1;
        if let Some((from, to, label)) = &self.band {
            let (x1, x2) = (self.x_of(*from), self.x_of(*to));
            let _ = writeln!(
                svg,
                r##"<rect x="{x1:.1}" y="{top}" width="{:.1}" height="{PANEL_HEIGHT}" fill="#f4cccc"/><text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#a33">{}</text>"##,
                x2 - x1,
                (x1 + x2) / 2.0,
                top + 14.0,
                escape(label)
            );
        }
        let _ = writeln!(
            svg,
            r##"<line x1="{LEFT}" y1="{bottom}" x2="{right}" y2="{bottom}" stroke="#333"/><line x1="{LEFT}" y1="{top}" x2="{LEFT}" y2="{bottom}" stroke="#333"/>"##
        );
        let (lo, hi) = self.range;
        let step = tick_step(hi - lo);
        let mut tick = (lo / step).ceil() * step;
        while tick <= hi + 1e-9 {
            let x = self.x_of(tick);
            let _ = writeln!(
                svg,
                r##"<line x1="{x:.1}" y1="{bottom}" x2="{x:.1}" y2="{:.1}" stroke="#333"/><text x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
                bottom + 5.0,
                bottom + 18.0,
                (tick * 1000.0).round() / 1000.0
            );
            tick += step;
        }
        for fraction in [0.0, 0.5, 1.0] {
            let y = bottom - fraction / 1.1 * PANEL_HEIGHT;
            let _ = writeln!(
                svg,
                r##"<line x1="{}" y1="{y:.1}" x2="{LEFT}" y2="{y:.1}" stroke="#333"/><text x="{}" y="{:.1}" text-anchor="end">{:.1} %</text>"##,
                LEFT - 4.0,
                LEFT - 6.0,
                y + 4.0,
                fraction / 1.1 * peak * 100.0
            );
        }
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{:.1}" font-weight="bold">{}</text>"#,
            LEFT,
            top - 10.0,
            escape(&panel.title)
        );
        let bin_w = (WIDTH - LEFT - RIGHT) / self.bins.max(1) as f64;
        for (j, (series, shares)) in panel.series.iter().zip(&shares).enumerate() {
            let group = groups.iter().position(|g| *g == series.group).unwrap_or(0);
            let stroke = COLOURS[group % COLOURS.len()];
            let mut path = format!("M{LEFT:.1},{bottom:.1}");
            for (i, share) in shares.iter().enumerate() {
                let y = bottom - share / peak * PANEL_HEIGHT;
                let x = LEFT + i as f64 * bin_w;
                let _ = write!(path, " L{x:.1},{y:.1} L{:.1},{y:.1}", x + bin_w);
            }
            let _ = write!(path, " L{right:.1},{bottom:.1}");
            let _ = writeln!(
                svg,
                r#"<path d="{path}" fill="{stroke}" fill-opacity="0.15" stroke="{stroke}" stroke-width="1.5"/>"#
            );
            let y = top + 10.0 + j as f64 * 18.0;
            let _ = writeln!(
                svg,
                r#"<rect x="{}" y="{y:.1}" width="12" height="12" fill="{stroke}"/><text x="{}" y="{:.1}">{}</text>"#,
                right + 12.0,
                right + 30.0,
                y + 10.0,
                escape(&format!("{} (n = {})", series.label, series.values.len()))
            );
        }
    }
}

/// The two-sample Kolmogorov–Smirnov statistic of `a` and `b`: the largest gap between their
/// empirical distribution functions (0 for samples drawn alike, 1 for samples that never
/// overlap). 0 if either is empty.
pub fn ks_distance(a: &[f64], b: &[f64]) -> f64 {
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    let (mut a, mut b) = (a.to_vec(), b.to_vec());
    a.sort_by(f64::total_cmp);
    b.sort_by(f64::total_cmp);
    let (mut i, mut j, mut d) = (0, 0, 0f64);
    while i < a.len() && j < b.len() {
        let x = a[i].min(b[j]);
        while i < a.len() && a[i] == x {
            i += 1;
        }
        while j < b.len() && b[j] == x {
            j += 1;
        }
        d = d.max((i as f64 / a.len() as f64 - j as f64 / b.len() as f64).abs());
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figure(values: Vec<f64>) -> Histogram {
        Histogram {
            title: "t <1>".into(),
            x_label: "bits".into(),
            range: (0.0, 8.0),
            bins: 8,
            band: Some((3.4, 4.6, "flagged".into())),
            panels: vec![Panel {
                title: "default".into(),
                series: vec![Series {
                    label: "port".into(),
                    group: "port".into(),
                    values,
                }],
            }],
        }
    }

    #[test]
    fn ks_distance_is_the_largest_gap() {
        assert_eq!(ks_distance(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]), 0.0);
        assert_eq!(ks_distance(&[1.0, 2.0], &[3.0, 4.0]), 1.0);
        assert_eq!(
            ks_distance(&[1.0, 2.0, 3.0, 4.0], &[3.0, 4.0, 5.0, 6.0]),
            0.5
        );
        assert_eq!(ks_distance(&[], &[1.0]), 0.0);
    }

    #[test]
    fn shares_count_each_sample_once_and_clamp_the_ends() {
        let f = figure(vec![]);
        assert_eq!(
            f.shares(&[-1.0, 0.5, 4.0, 7.99, 8.0, 100.0]),
            [2.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 3.0].map(|c| c / 6.0)
        );
        assert_eq!(f.shares(&[]), vec![0.0; 8]);
    }

    #[test]
    fn the_svg_is_one_document_with_every_series_and_escaped_text() {
        let svg = figure(vec![4.0, 4.1, 3.9]).render();
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("t &lt;1&gt;"));
        assert!(svg.contains("port (n = 3)"));
        assert!(svg.contains("flagged"));
        assert_eq!(svg.matches("<path").count(), 1);
    }
}
