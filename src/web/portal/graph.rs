//! The scoreboard's score-over-time graph, rendered on the server as an inline SVG.
//!
//! Each series is a step line of an account's cumulative score (one point per scoring event,
//! held flat until the next one and until the graph's end). The SVG holds only numbers, axis
//! labels made by this module and escaped names in `<title>` tooltips; the legend is HTML in
//! the page.

use std::fmt::Write;

/// Colours of the series (distinguishable on both themes).
pub const PALETTE: [&str; 10] =
    ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"];

/// One account's scoring events.
#[derive(Debug, Clone)]
pub struct Series {
    /// Display name.
    pub name: String,
    /// `(unix seconds, points)` events in any order.
    pub events: Vec<(i64, i64)>,
}

/// The drawing area of one rendering, in SVG user units.
#[derive(Debug, Clone, Copy)]
pub struct Frame {
    /// CSS class added to `graph` (the stylesheet shows one frame per screen width).
    pub class: &'static str,
    width: f64,
    height: f64,
    left: f64,
    right: f64,
    top: f64,
    bottom: f64,
    /// Time labels along the x axis, ends included.
    time_labels: i64,
}

/// Desktop rendering.
pub const WIDE: Frame = Frame {
    class: "wide",
    width: 760.0,
    height: 300.0,
    left: 52.0,
    right: 16.0,
    top: 14.0,
    bottom: 34.0,
    time_labels: 5,
};

/// Phone rendering: fewer units per screen pixel, so the same font size stays readable.
pub const COMPACT: Frame = Frame {
    class: "compact",
    width: 400.0,
    height: 260.0,
    left: 46.0,
    right: 12.0,
    top: 12.0,
    bottom: 32.0,
    time_labels: 3,
};

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
}

fn nice_step(max: f64) -> f64 {
    let raw = (max / 4.0).max(1.0);
    let magnitude = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0].iter().map(|factor| factor * magnitude).find(|step| *step >= raw).unwrap_or(raw)
}

fn time_label(unix: i64, span: i64) -> String {
    let Some(time) = chrono::DateTime::from_timestamp(unix, 0) else { return String::new() };
    if span > 2 * 86_400 {
        time.format("%m-%d %H:%M").to_string()
    } else if span > 3_600 {
        time.format("%H:%M").to_string()
    } else {
        time.format("%H:%M:%S").to_string()
    }
}

/// Renders the SVG in `frame`; `end` is the right edge (now, the freeze or the event's end).
/// Returns an empty string when no series has an event.
pub fn render(series: &[Series], end: i64, frame: Frame) -> String {
    let Frame { width, height, left, right: right_margin, top, bottom: bottom_margin, .. } = frame;
    let mut first = i64::MAX;
    let mut last = i64::MIN;
    let mut max_score: i64 = 0;
    let mut cumulative: Vec<Vec<(i64, i64)>> = Vec::with_capacity(series.len());
    for one in series {
        let mut events = one.events.clone();
        events.sort_by_key(|(time, _)| *time);
        let mut total = 0;
        let points: Vec<(i64, i64)> = events
            .iter()
            .map(|(time, value)| {
                total += value;
                max_score = max_score.max(total);
                first = first.min(*time);
                last = last.max(*time);
                (*time, total)
            })
            .collect();
        cumulative.push(points);
    }
    if first == i64::MAX {
        return String::new();
    }
    let end = end.max(last);
    let start = first - ((end - first) / 20).max(60);
    let span = (end - start).max(1);
    let step = nice_step(max_score.max(1) as f64);
    let top_value = (max_score.max(1) as f64 / step).ceil() * step;
    let plot_width = width - left - right_margin;
    let plot_height = height - top - bottom_margin;
    let x = |time: i64| left + (time - start) as f64 / span as f64 * plot_width;
    let y = |value: i64| top + plot_height - (value.max(0) as f64 / top_value) * plot_height;

    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg class="graph {class}" viewBox="0 0 {width} {height}" role="img" aria-label="Score over time of the top {count}" xmlns="http://www.w3.org/2000/svg">"#,
        class = frame.class,
        count = series.len()
    );
    let mut tick = 0.0;
    while tick <= top_value + 0.5 {
        let position = top + plot_height - tick / top_value * plot_height;
        let _ = write!(
            svg,
            r#"<line class="gridline" x1="{left}" y1="{position:.1}" x2="{right:.1}" y2="{position:.1}"/><text x="{label_x:.1}" y="{text_y:.1}" text-anchor="end">{tick}</text>"#,
            right = width - right_margin,
            label_x = left - 6.0,
            text_y = position + 4.0,
        );
        tick += step;
    }
    let last_label = (frame.time_labels - 1).max(1);
    for index in 0..=last_label {
        let time = start + span * index / last_label;
        let position = x(time);
        let anchor = match index {
            0 => "start",
            _ if index == last_label => "end",
            _ => "middle",
        };
        let _ = write!(
            svg,
            r#"<text x="{position:.1}" y="{label_y:.1}" text-anchor="{anchor}">{label}</text>"#,
            label_y = height - 10.0,
            label = time_label(time, span),
        );
    }
    let _ = write!(
        svg,
        r#"<line class="axis" x1="{left}" y1="{bottom:.1}" x2="{right:.1}" y2="{bottom:.1}"/><line class="axis" x1="{left}" y1="{top}" x2="{left}" y2="{bottom:.1}"/>"#,
        bottom = top + plot_height,
        right = width - right_margin,
    );
    for (index, (one, points)) in series.iter().zip(&cumulative).enumerate() {
        if points.is_empty() {
            continue;
        }
        let colour = PALETTE[index % PALETTE.len()];
        let mut path = format!("M{:.1},{:.1}", x(start), y(0));
        let mut current = 0;
        for (time, total) in points {
            let _ = write!(path, " H{:.1} V{:.1}", x(*time), y(*total));
            current = *total;
        }
        let _ = write!(path, " H{:.1}", x(end));
        let _ = write!(
            svg,
            r#"<path d="{path}" fill="none" stroke="{colour}" stroke-width="2.2" stroke-linejoin="round"><title>{name}: {current}</title></path>"#,
            name = escape(&one.name),
        );
        for (time, total) in points {
            let _ = write!(svg, r#"<circle cx="{:.1}" cy="{:.1}" r="2.8" fill="{colour}"/>"#, x(*time), y(*total));
        }
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_steps_and_escapes_names() {
        let series = vec![
            Series { name: "<script>alert(1)</script>".into(), events: vec![(1_000, 100), (2_000, 50)] },
            Series { name: "b".into(), events: vec![(1_500, 300)] },
        ];
        let svg = render(&series, 3_000, WIDE);
        assert!(svg.starts_with("<svg"));
        assert!(svg.ends_with("</svg>"));
        assert_eq!(svg.matches("<path").count(), 2);
        assert!(!svg.contains("<script>"));
        assert!(svg.contains("&lt;script&gt;alert(1)&lt;/script&gt;: 150"));
        assert!(svg.contains("b: 300"));
        let compact = render(&series, 3_000, COMPACT);
        assert!(compact.starts_with(r#"<svg class="graph compact" viewBox="0 0 400 260""#), "{compact}");
        assert_eq!(compact.matches("<path").count(), 2);
        assert_eq!(compact.matches("text-anchor=\"middle\"").count(), 1);
    }

    #[test]
    fn empty_without_events() {
        assert_eq!(render(&[Series { name: "a".into(), events: vec![] }], 10, WIDE), "");
        assert_eq!(render(&[], 10, COMPACT), "");
    }
}
