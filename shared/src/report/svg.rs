//! Hand-written inline SVG charts for the HTML report: an x–y chart of lines and markers, a
//! grouped bar chart and the confusion-matrix grid. A few hundred lines instead of plotters'
//! SVG backend, because the page needs what a backend does not give: a `<title>` and `<desc>`
//! on every chart (its text alternative), `role="img"`, a `viewBox` that scales to a phone, and
//! text in the browser's own fonts. Colours are the Okabe–Ito palette (distinguishable with
//! every common colour-vision deficiency); series differ in dash and marker shape too.

use std::fmt::Write as _;

/// Okabe–Ito colours, in the order series take them.
pub const PALETTE: [&str; 7] = [
    "#0072B2", // blue
    "#E69F00", // orange
    "#009E73", // bluish green
    "#CC79A7", // reddish purple
    "#D55E00", // vermillion
    "#56B4E9", // sky blue
    "#000000", // black
];

const WIDTH: f64 = 560.0;
const HEIGHT: f64 = 390.0;
const LEFT: f64 = 66.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 44.0;
const BOTTOM: f64 = 80.0;

/// Escapes text for HTML and SVG content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
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

/// How a series' points are marked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    None,
    Circle,
    Square,
    Triangle,
    Diamond,
    Cross,
}

/// One series of an x–y chart.
#[derive(Debug, Clone)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    pub colour: &'static str,
    /// Draw a line through the points (else markers only).
    pub line: bool,
    pub dashed: bool,
    pub marker: Marker,
}

/// An x–y chart.
#[derive(Debug, Clone)]
pub struct XyChart {
    /// Unique within the page (ids of the title and description).
    pub id: String,
    pub title: String,
    /// The text alternative: what the chart shows, in words.
    pub description: String,
    pub x_label: String,
    pub y_label: String,
    pub x_range: (f64, f64),
    pub y_range: (f64, f64),
    /// Tick labels at given x positions; `None`: evenly spaced numbers.
    pub x_ticks: Option<Vec<(f64, String)>>,
    /// A dotted reference line, e.g. the diagonal of chance.
    pub reference_line: Option<ReferenceLine>,
    pub series: Vec<Series>,
}

/// A dotted line from one point to another, with its legend name.
pub type ReferenceLine = ((f64, f64), (f64, f64), String);

struct Frame {
    x: (f64, f64),
    y: (f64, f64),
}

impl Frame {
    fn px(&self, x: f64) -> f64 {
        let span = (self.x.1 - self.x.0).max(f64::EPSILON);
        LEFT + (x - self.x.0) / span * (WIDTH - LEFT - RIGHT)
    }
    fn py(&self, y: f64) -> f64 {
        let span = (self.y.1 - self.y.0).max(f64::EPSILON);
        HEIGHT - BOTTOM - (y - self.y.0) / span * (HEIGHT - TOP - BOTTOM)
    }
}

fn open_svg(out: &mut String, id: &str, title: &str, description: &str) {
    let _ = write!(
        out,
        r##"<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-labelledby="{id}-title {id}-desc" xmlns="http://www.w3.org/2000/svg"><title id="{id}-title">{}</title><desc id="{id}-desc">{}</desc><rect width="{WIDTH}" height="{HEIGHT}" fill="#fff"/>"##,
        escape(title),
        escape(description)
    );
    let _ = write!(
        out,
        r##"<text x="{}" y="24" text-anchor="middle" font-size="18" font-weight="600">{}</text>"##,
        WIDTH / 2.0,
        escape(title)
    );
}

/// Five or so round tick values across `range`.
pub fn ticks(range: (f64, f64)) -> Vec<f64> {
    let span = range.1 - range.0;
    if !(span.is_finite() && span > 0.0) {
        return vec![range.0];
    }
    let raw = span / 5.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * magnitude);
    let first = (range.0 / step).ceil() * step;
    let mut out = Vec::new();
    let mut value = first;
    while value <= range.1 + step * 1e-9 && out.len() < 20 {
        out.push(if value.abs() < step * 1e-9 {
            0.0
        } else {
            value
        });
        value += step;
    }
    out
}

/// A tick value in few characters.
pub fn tick_label(value: f64) -> String {
    let abs = value.abs();
    if abs >= 10_000.0 {
        format!("{:.0}k", value / 1000.0)
    } else if abs >= 100.0 || value.fract() == 0.0 {
        format!("{value:.0}")
    } else if abs >= 1.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

fn axes(out: &mut String, frame: &Frame, x_label: &str, y_label: &str, x_ticks: &[(f64, String)]) {
    let (x0, x1) = (frame.px(frame.x.0), frame.px(frame.x.1));
    let (y0, y1) = (frame.py(frame.y.0), frame.py(frame.y.1));
    for value in ticks(frame.y) {
        let y = frame.py(value);
        let _ = write!(
            out,
            r##"<line x1="{x0:.1}" y1="{y:.1}" x2="{x1:.1}" y2="{y:.1}" stroke="#e3e3e3"/><text x="{:.1}" y="{:.1}" text-anchor="end" font-size="15" fill="#333">{}</text>"##,
            x0 - 6.0,
            y + 4.0,
            tick_label(value)
        );
    }
    for (value, label) in x_ticks {
        let x = frame.px(*value);
        let _ = write!(
            out,
            r##"<line x1="{x:.1}" y1="{y0:.1}" x2="{x:.1}" y2="{:.1}" stroke="#555"/><text x="{x:.1}" y="{:.1}" text-anchor="middle" font-size="15" fill="#333">{}</text>"##,
            y0 + 5.0,
            y0 + 21.0,
            escape(label)
        );
    }
    let _ = write!(
        out,
        r##"<polyline points="{x0:.1},{y1:.1} {x0:.1},{y0:.1} {x1:.1},{y0:.1}" fill="none" stroke="#555"/>"##
    );
    let _ = write!(
        out,
        r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="16" fill="#222">{}</text>"##,
        (x0 + x1) / 2.0,
        y0 + 40.0,
        escape(x_label)
    );
    let _ = write!(
        out,
        r##"<text transform="translate(16 {:.1}) rotate(-90)" text-anchor="middle" font-size="16" fill="#222">{}</text>"##,
        (y0 + y1) / 2.0,
        escape(y_label)
    );
}

fn marker(out: &mut String, kind: Marker, x: f64, y: f64, colour: &str) {
    match kind {
        Marker::None => {}
        Marker::Circle => {
            let _ = write!(
                out,
                r##"<circle cx="{x:.1}" cy="{y:.1}" r="4.5" fill="{colour}"/>"##
            );
        }
        Marker::Square => {
            let _ = write!(
                out,
                r##"<rect x="{:.1}" y="{:.1}" width="9" height="9" fill="{colour}"/>"##,
                x - 4.5,
                y - 4.5
            );
        }
        Marker::Triangle => {
            let _ = write!(
                out,
                r##"<polygon points="{x:.1},{:.1} {:.1},{:.1} {:.1},{:.1}" fill="{colour}"/>"##,
                y - 6.0,
                x - 5.5,
                y + 4.5,
                x + 5.5,
                y + 4.5
            );
        }
        Marker::Diamond => {
            let _ = write!(
                out,
                r##"<polygon points="{x:.1},{:.1} {:.1},{y:.1} {x:.1},{:.1} {:.1},{y:.1}" fill="{colour}"/>"##,
                y - 6.0,
                x + 6.0,
                y + 6.0,
                x - 6.0
            );
        }
        Marker::Cross => {
            let _ = write!(
                out,
                r##"<path d="M{:.1} {:.1}L{:.1} {:.1}M{:.1} {:.1}L{:.1} {:.1}" stroke="{colour}" stroke-width="2.5"/>"##,
                x - 5.0,
                y - 5.0,
                x + 5.0,
                y + 5.0,
                x - 5.0,
                y + 5.0,
                x + 5.0,
                y - 5.0
            );
        }
    }
}

/// The legend along the bottom edge, wrapping onto a second row when long.
fn legend(out: &mut String, entries: &[(&str, &str, Marker, bool, bool)]) {
    let mut x = LEFT;
    let mut y = HEIGHT - 22.0;
    for (name, colour, kind, line, dashed) in entries {
        let width = 38.0 + 8.2 * name.chars().count() as f64;
        if x + width > WIDTH - RIGHT && x > LEFT {
            // A second row below the first.
            x = LEFT;
            y += 19.0;
        }
        if *line {
            let dash = if *dashed {
                r##" stroke-dasharray="6 4""##
            } else {
                ""
            };
            let _ = write!(
                out,
                r##"<line x1="{x:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="{colour}" stroke-width="2.5"{dash}/>"##,
                y - 4.0,
                x + 22.0,
                y - 4.0
            );
        }
        if *kind != Marker::None {
            marker(out, *kind, x + 11.0, y - 4.0, colour);
        } else if !*line {
            let _ = write!(
                out,
                r##"<rect x="{x:.1}" y="{:.1}" width="22" height="10" fill="{colour}"/>"##,
                y - 9.0
            );
        }
        let _ = write!(
            out,
            r##"<text x="{:.1}" y="{y:.1}" font-size="15" fill="#222">{}</text>"##,
            x + 27.0,
            escape(name)
        );
        x += width;
    }
}

impl XyChart {
    pub fn render(&self) -> String {
        let mut out = String::new();
        open_svg(&mut out, &self.id, &self.title, &self.description);
        let frame = Frame {
            x: self.x_range,
            y: self.y_range,
        };
        let x_ticks = self.x_ticks.clone().unwrap_or_else(|| {
            ticks(self.x_range)
                .into_iter()
                .map(|v| (v, tick_label(v)))
                .collect()
        });
        axes(&mut out, &frame, &self.x_label, &self.y_label, &x_ticks);
        if let Some(((x0, y0), (x1, y1), _)) = &self.reference_line {
            let _ = write!(
                out,
                r##"<line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#777" stroke-dasharray="2 4" stroke-width="1.5"/>"##,
                frame.px(*x0),
                frame.py(*y0),
                frame.px(*x1),
                frame.py(*y1)
            );
        }
        for series in &self.series {
            let points: Vec<(f64, f64)> = series
                .points
                .iter()
                .filter(|(x, y)| x.is_finite() && y.is_finite())
                .map(|&(x, y)| (frame.px(x), frame.py(y)))
                .collect();
            if series.line && points.len() > 1 {
                let path: Vec<String> = points
                    .iter()
                    .map(|(x, y)| format!("{x:.1},{y:.1}"))
                    .collect();
                let dash = if series.dashed {
                    r##" stroke-dasharray="6 4""##
                } else {
                    ""
                };
                let _ = write!(
                    out,
                    r##"<polyline points="{}" fill="none" stroke="{}" stroke-width="2.5"{dash}/>"##,
                    path.join(" "),
                    series.colour
                );
            }
            for (x, y) in &points {
                marker(&mut out, series.marker, *x, *y, series.colour);
            }
        }
        let mut entries: Vec<(&str, &str, Marker, bool, bool)> = self
            .series
            .iter()
            .map(|s| (s.name.as_str(), s.colour, s.marker, s.line, s.dashed))
            .collect();
        if let Some((_, _, name)) = &self.reference_line {
            entries.push((name.as_str(), "#777", Marker::None, true, true));
        }
        legend(&mut out, &entries);
        out.push_str("</svg>");
        out
    }
}

/// A grouped bar chart over categories.
#[derive(Debug, Clone)]
pub struct BarChart {
    pub id: String,
    pub title: String,
    pub description: String,
    pub x_label: String,
    pub y_label: String,
    pub categories: Vec<String>,
    /// (name, colour, one value per category).
    pub series: Vec<(String, &'static str, Vec<f64>)>,
}

impl BarChart {
    pub fn render(&self) -> String {
        let mut out = String::new();
        open_svg(&mut out, &self.id, &self.title, &self.description);
        let largest = self
            .series
            .iter()
            .flat_map(|(_, _, values)| values.iter().copied())
            .filter(|v| v.is_finite())
            .fold(0.0f64, f64::max);
        // The axis ends on the first round tick above the tallest bar.
        let top = match ticks((0.0, largest * 1.05)).as_slice() {
            [first, second, ..] if largest > 0.0 => {
                let step = second - first;
                (largest * 1.05 / step).ceil() * step
            }
            _ => largest.max(1.0),
        };
        let categories = self.categories.len().max(1);
        let frame = Frame {
            x: (0.0, categories as f64),
            y: (0.0, top),
        };
        // Label every category when they fit, else every k-th.
        let every = categories.div_ceil(6);
        let x_ticks: Vec<(f64, String)> = self
            .categories
            .iter()
            .enumerate()
            .filter(|(i, _)| i % every == 0)
            .map(|(i, label)| (i as f64 + 0.5, label.clone()))
            .collect();
        axes(&mut out, &frame, &self.x_label, &self.y_label, &x_ticks);
        let groups = self.series.len().max(1) as f64;
        let slot = (frame.px(1.0) - frame.px(0.0)) * 0.8 / groups;
        for (s, (_, colour, values)) in self.series.iter().enumerate() {
            for (i, value) in values.iter().enumerate() {
                if !value.is_finite() || *value <= 0.0 {
                    continue;
                }
                let x =
                    frame.px(i as f64) + (frame.px(1.0) - frame.px(0.0)) * 0.1 + s as f64 * slot;
                let y = frame.py(*value);
                let _ = write!(
                    out,
                    r##"<rect x="{x:.1}" y="{y:.1}" width="{:.1}" height="{:.1}" fill="{colour}"/>"##,
                    (slot - 1.0).max(1.0),
                    (frame.py(0.0) - y).max(0.5)
                );
            }
        }
        let entries: Vec<(&str, &str, Marker, bool, bool)> = self
            .series
            .iter()
            .map(|(name, colour, _)| (name.as_str(), *colour, Marker::None, false, false))
            .collect();
        legend(&mut out, &entries);
        out.push_str("</svg>");
        out
    }
}

/// The confusion matrix as a 2×2 grid shaded by count (white to Okabe–Ito blue), the count
/// and share written in each cell in a colour that stays readable on its shade.
pub fn confusion_grid(id: &str, counts: [[u64; 2]; 2], description: &str) -> String {
    let (width, height) = (420.0, 360.0);
    let mut out = String::new();
    let _ = write!(
        out,
        r##"<svg class="chart matrix" viewBox="0 0 {width} {height}" role="img" aria-labelledby="{id}-title {id}-desc" xmlns="http://www.w3.org/2000/svg"><title id="{id}-title">Confusion matrix</title><desc id="{id}-desc">{}</desc><rect width="{width}" height="{height}" fill="#fff"/>"##,
        escape(description)
    );
    let total: u64 = counts.iter().flatten().sum();
    let largest = counts.iter().flatten().copied().max().unwrap_or(0);
    let (left, top, cell) = (130.0, 70.0, 130.0);
    let _ = write!(
        out,
        r##"<text x="{:.1}" y="24" text-anchor="middle" font-size="14" font-weight="600">Predicted</text>"##,
        left + cell
    );
    let _ = write!(
        out,
        r##"<text transform="translate(20 {:.1}) rotate(-90)" text-anchor="middle" font-size="14" font-weight="600">Actual</text>"##,
        top + cell
    );
    let names = ["stayed (0)", "exited (1)"];
    let kinds = [
        ["true negatives", "false positives"],
        ["false negatives", "true positives"],
    ];
    for (i, name) in names.iter().enumerate() {
        let offset = i as f64 * cell + cell / 2.0;
        let _ = write!(
            out,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="13">{name}</text><text x="{:.1}" y="{:.1}" text-anchor="end" font-size="13">{name}</text>"##,
            left + offset,
            top - 10.0,
            left - 10.0,
            top + offset + 4.0
        );
    }
    for (row, cells) in counts.iter().enumerate() {
        for (column, &count) in cells.iter().enumerate() {
            let share = if largest == 0 {
                0.0
            } else {
                count as f64 / largest as f64
            };
            // White to #0072B2.
            let mix = |full: f64| (255.0 - (255.0 - full) * share).round() as u8;
            let (r, g, b) = (mix(0.0), mix(114.0), mix(178.0));
            let dark =
                0.2126 * f64::from(r) + 0.7152 * f64::from(g) + 0.0722 * f64::from(b) < 140.0;
            let ink = if dark { "#fff" } else { "#111" };
            let (x, y) = (left + column as f64 * cell, top + row as f64 * cell);
            let percent = if total == 0 {
                0.0
            } else {
                100.0 * count as f64 / total as f64
            };
            let _ = write!(
                out,
                r##"<rect x="{x}" y="{y}" width="{cell}" height="{cell}" fill="rgb({r},{g},{b})" stroke="#444"/><text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="12" fill="{ink}">{}</text><text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="30" font-weight="600" fill="{ink}">{count}</text><text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="13" fill="{ink}">{percent:.1}%</text>"##,
                x + cell / 2.0,
                y + 22.0,
                kinds[row][column],
                x + cell / 2.0,
                y + cell / 2.0 + 10.0,
                x + cell / 2.0,
                y + cell - 18.0
            );
        }
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape(r##"<a href="x">&'"##),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }

    #[test]
    fn ticks_are_round_and_cover_the_range() {
        assert_eq!(
            ticks((0.0, 1.0)),
            vec![0.0, 0.2, 0.4, 0.6000000000000001, 0.8, 1.0]
        );
        let t = ticks((0.0, 37.0));
        assert_eq!(t.first(), Some(&0.0));
        assert!(t.len() >= 4 && t.len() <= 9, "{t:?}");
        assert_eq!(ticks((2.0, 2.0)), vec![2.0]);
    }

    #[test]
    fn charts_carry_their_text_alternative() {
        let chart = XyChart {
            id: "roc".into(),
            title: "ROC <curve>".into(),
            description: "AUC 0.8".into(),
            x_label: "x".into(),
            y_label: "y".into(),
            x_range: (0.0, 1.0),
            y_range: (0.0, 1.0),
            x_ticks: None,
            reference_line: Some(((0.0, 0.0), (1.0, 1.0), "chance".into())),
            series: vec![Series {
                name: "model".into(),
                points: vec![(0.0, 0.0), (0.5, f64::NAN), (1.0, 1.0)],
                colour: PALETTE[0],
                line: true,
                dashed: false,
                marker: Marker::Circle,
            }],
        }
        .render();
        assert!(chart.starts_with("<svg") && chart.ends_with("</svg>"));
        assert!(chart.contains(r##"role="img""##));
        assert!(chart.contains(r##"aria-labelledby="roc-title roc-desc""##));
        assert!(chart.contains("<title id=\"roc-title\">ROC &lt;curve&gt;</title>"));
        assert!(chart.contains("<desc id=\"roc-desc\">AUC 0.8</desc>"));
        assert!(!chart.contains("NaN"), "non-finite points are left out");
        let grid = confusion_grid("cm", [[3, 1], [0, 2]], "3 true negatives");
        assert!(grid.contains(">3<") && grid.contains("50.0%"));
    }
}
