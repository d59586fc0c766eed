//! One SVG per run in the notebook's style: a bar per packet at the moment the bridge read it,
//! its height the packet's size, client→server above the axis and server→client below,
//! coloured by what it carries, the x-axis the time before the connection ended. Packets the
//! bridge dropped are drawn as outlines; corrupted ones get a red cap, tampered ones a purple
//! cap.
//!
//! The SVG is written by hand: a few hundred rectangles need no plotting library.

use std::fmt::Write;

use crate::label::Kind;
use crate::record::{Direction, PacketRecord};

const WIDTH: f64 = 1000.0;
const HEIGHT: f64 = 460.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 50.0;
const BOTTOM: f64 = 70.0;
/// Bars are scaled so that this many bytes fill half the plot.
const FULL_SCALE: f64 = 1500.0;

/// Fill colour of a kind, darker for client→server.
fn colour(kind: Kind, direction: Direction) -> &'static str {
    match (kind, direction) {
        (Kind::Init, Direction::ToServer) => "#1f77b4",
        (Kind::Init, Direction::ToClient) => "#7fb3e0",
        (Kind::Data, Direction::ToServer) => "#2ca02c",
        (Kind::Data, Direction::ToClient) => "#98df8a",
        (Kind::Term, Direction::ToServer) => "#d62728",
        (Kind::Term, Direction::ToClient) => "#ff9896",
        (Kind::Keepalive, Direction::ToServer) => "#ff7f0e",
        (Kind::Keepalive, Direction::ToClient) => "#ffbb78",
        (Kind::Other, Direction::ToServer) => "#7f7f7f",
        (Kind::Other, Direction::ToClient) => "#c7c7c7",
    }
}

/// Escapes text for an SVG text node.
pub(crate) fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// An SVG document's opening: the root element of `width` × `height`, a white background and
/// `title` in bold at the top left, `left` from the edge.
pub(crate) fn open_svg(width: f64, height: f64, left: f64, title: &str) -> String {
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        svg,
        r#"<rect width="{width}" height="{height}" fill="white"/>"#
    );
    let _ = writeln!(
        svg,
        r#"<text x="{left}" y="20" font-size="15" font-weight="bold">{}</text>"#,
        escape(title)
    );
    svg
}

/// A tick step giving about eight ticks over `span` (seconds, bytes, bits...).
pub(crate) fn tick_step(span: f64) -> f64 {
    let raw = (span / 8.0).max(1e-3);
    let magnitude = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|step| *step >= raw)
        .unwrap_or(10.0 * magnitude)
}

/// Renders `records` (labelled by `kinds`, one per record) under `title`.
pub fn render(title: &str, records: &[PacketRecord], kinds: &[Kind]) -> String {
    let end = records.last().map_or(0.0, |r| r.at.as_secs_f64());
    let start = records.first().map_or(0.0, |r| r.at.as_secs_f64());
    let span = (end - start).max(0.1);
    let plot_w = WIDTH - LEFT - RIGHT;
    let axis_y = TOP + (HEIGHT - TOP - BOTTOM) / 2.0;
    let half = (HEIGHT - TOP - BOTTOM) / 2.0;
    let x_of = |t: f64| LEFT + (t - start) / span * plot_w;
    let bar_w = (plot_w / records.len().max(1) as f64).clamp(1.0, 4.0);

    let mut svg = open_svg(WIDTH, HEIGHT, LEFT, title);
    // Axes, ticks and their labels: seconds before the end, 0 at the right edge.
    let _ = writeln!(
        svg,
        r##"<line x1="{LEFT}" y1="{axis_y}" x2="{}" y2="{axis_y}" stroke="#333"/>"##,
        WIDTH - RIGHT
    );
    let _ = writeln!(
        svg,
        r##"<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{}" stroke="#333"/>"##,
        HEIGHT - BOTTOM
    );
    let step = tick_step(span);
    let mut tick = 0.0;
    while tick <= span + 1e-9 {
        let x = x_of(end - tick);
        let _ = writeln!(
            svg,
            r##"<line x1="{x:.1}" y1="{}" x2="{x:.1}" y2="{}" stroke="#333"/><text x="{x:.1}" y="{}" text-anchor="middle">{}</text>"##,
            HEIGHT - BOTTOM,
            HEIGHT - BOTTOM + 5.0,
            HEIGHT - BOTTOM + 18.0,
            if tick == 0.0 {
                "0".to_owned()
            } else {
                format!("-{}", (tick * 1000.0).round() / 1000.0)
            }
        );
        tick += step;
    }
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="{}" text-anchor="middle">seconds before the connection ended</text>"#,
        LEFT + plot_w / 2.0,
        HEIGHT - BOTTOM + 36.0
    );
    for (label, y) in [
        ("client → server", TOP + 12.0),
        ("server → client", HEIGHT - BOTTOM - 6.0),
    ] {
        let _ = writeln!(
            svg,
            r##"<text x="{}" y="{y}" fill="#555">{label}</text>"##,
            LEFT + 6.0
        );
    }
    for bytes in [500.0, 1000.0, 1500.0] {
        let dy = bytes / FULL_SCALE * half;
        for (y, sign) in [(axis_y - dy, ""), (axis_y + dy, "")] {
            let _ = writeln!(
                svg,
                r##"<line x1="{}" y1="{y:.1}" x2="{LEFT}" y2="{y:.1}" stroke="#333"/><text x="{}" y="{:.1}" text-anchor="end">{sign}{bytes}</text>"##,
                LEFT - 4.0,
                LEFT - 6.0,
                y + 4.0
            );
        }
    }
    let _ = writeln!(
        svg,
        r#"<text x="16" y="{axis_y}" transform="rotate(-90 16 {axis_y})" text-anchor="middle">packet size (bytes)</text>"#
    );
    // The bars.
    for (record, kind) in records.iter().zip(kinds) {
        let x = x_of(record.at.as_secs_f64()) - bar_w / 2.0;
        let h = (record.size as f64 / FULL_SCALE * half).min(half);
        let y = match record.direction {
            Direction::ToServer => axis_y - h,
            Direction::ToClient => axis_y,
        };
        let fill = colour(*kind, record.direction);
        if record.delivered() {
            let _ = writeln!(
                svg,
                r#"<rect x="{x:.2}" y="{y:.2}" width="{bar_w:.2}" height="{h:.2}" fill="{fill}"/>"#
            );
        } else {
            let _ = writeln!(
                svg,
                r#"<rect x="{x:.2}" y="{y:.2}" width="{bar_w:.2}" height="{h:.2}" fill="none" stroke="{fill}" stroke-width="0.7"/>"#
            );
        }
        let cap = if record.tampered {
            Some("#9467bd")
        } else if record.corrupted {
            Some("#e31a1c")
        } else {
            None
        };
        if let Some(cap) = cap {
            let cap_y = match record.direction {
                Direction::ToServer => y - 4.0,
                Direction::ToClient => y + h,
            };
            let _ = writeln!(
                svg,
                r#"<rect x="{x:.2}" y="{cap_y:.2}" width="{bar_w:.2}" height="4" fill="{cap}"/>"#
            );
        }
    }
    // The legend, one row across the top.
    let mut lx = LEFT + 200.0;
    for kind in Kind::ALL {
        let _ = writeln!(
            svg,
            r#"<rect x="{lx}" y="27" width="10" height="10" fill="{}"/><rect x="{}" y="27" width="10" height="10" fill="{}"/><text x="{}" y="36">{}</text>"#,
            colour(kind, Direction::ToServer),
            lx + 10.0,
            colour(kind, Direction::ToClient),
            lx + 24.0,
            kind.name()
        );
        lx += 88.0;
    }
    let _ = writeln!(
        svg,
        r##"<rect x="{lx}" y="27" width="10" height="10" fill="none" stroke="#333"/><text x="{}" y="36">dropped</text>"##,
        lx + 14.0
    );
    let _ = writeln!(
        svg,
        r##"<rect x="{}" y="27" width="10" height="4" fill="#e31a1c"/><text x="{}" y="36">corrupted</text><rect x="{}" y="27" width="10" height="4" fill="#9467bd"/><text x="{}" y="36">tampered</text>"##,
        lx + 75.0,
        lx + 89.0,
        lx + 160.0,
        lx + 174.0
    );
    svg.push_str("</svg>\n");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn packet(ms: u64, direction: Direction, size: usize) -> PacketRecord {
        PacketRecord {
            at: Duration::from_millis(ms),
            direction,
            size,
            payload: size.saturating_sub(40),
            flags: 0x10,
            seq: 0,
            dropped: ms == 20,
            blackholed: false,
            duplicated: false,
            delay: Duration::ZERO,
            reordered: false,
            corrupted: ms == 30,
            tampered: false,
        }
    }

    #[test]
    fn renders_bars_legend_and_axis() {
        let records = [
            packet(0, Direction::ToServer, 300),
            packet(10, Direction::ToClient, 200),
            packet(20, Direction::ToServer, 1500),
            packet(30, Direction::ToClient, 40),
        ];
        let kinds = [Kind::Init, Kind::Init, Kind::Data, Kind::Other];
        let svg = render("loss <30%>", &records, &kinds);
        assert!(svg.starts_with("<svg"));
        assert!(svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("loss &lt;30%&gt;"));
        for kind in Kind::ALL {
            assert!(svg.contains(kind.name()), "{}", kind.name());
        }
        // Four bars: three filled, one outlined (dropped), and one corruption cap.
        assert_eq!(svg.matches(r##"fill="none" stroke="#2ca02c""##).count(), 1);
        // The INIT bar and its legend swatch.
        assert_eq!(svg.matches(r##"fill="#1f77b4"/>"##).count(), 2);
        assert!(svg.contains("seconds before the connection ended"));
        assert_eq!(svg.matches(r##"height="4" fill="#e31a1c""##).count(), 2);
        assert!(svg.matches('<').count() == svg.matches('>').count());
    }

    #[test]
    fn ticks_are_round() {
        assert_eq!(tick_step(8.0), 1.0);
        assert_eq!(tick_step(30.0), 5.0);
        assert!((tick_step(0.5) - 0.1).abs() < 1e-9);
    }
}
