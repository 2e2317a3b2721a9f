//! Server-rendered SVG charts (no JavaScript): horizontal bar charts of labelled counts.
//! Labels are XML-escaped; sizes come from numbers only.

/// Escapes text for XML.
pub fn escape(text: &str) -> String {
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

/// A horizontal bar chart with a title; one bar per (label, value).
pub fn bar_chart(title: &str, bars: &[(String, i64)]) -> String {
    let row = 24;
    let label_width = 220;
    let bar_width = 520;
    let height = 34 + row * bars.len().max(1);
    let max = bars.iter().map(|(_, value)| *value).max().unwrap_or(0).max(1);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" aria-label=\"{t}\" viewBox=\"0 0 {w} {height}\" width=\"{w}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"13\">\
         <title>{t}</title><text x=\"0\" y=\"16\" font-weight=\"bold\">{t}</text>",
        t = escape(title),
        w = label_width + bar_width + 80,
    );
    if bars.is_empty() {
        svg.push_str("<text x=\"0\" y=\"44\" fill=\"#5b6475\">No data yet</text>");
    }
    for (index, (label, value)) in bars.iter().enumerate() {
        let y = 28 + index * row;
        let width = (*value).max(0) as usize * bar_width / max as usize;
        let short: String = label.chars().take(30).collect();
        svg.push_str(&format!(
            "<text x=\"{lx}\" y=\"{ty}\" text-anchor=\"end\">{label}</text>\
             <rect x=\"{bx}\" y=\"{y}\" width=\"{width}\" height=\"{h}\" fill=\"#1f5fbf\"/>\
             <text x=\"{vx}\" y=\"{ty}\">{value}</text>",
            lx = label_width - 8,
            ty = y + 15,
            label = escape(&short),
            bx = label_width,
            h = row - 6,
            vx = label_width + width + 6,
        ));
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_escaped_and_bars_scaled() {
        let svg = bar_chart("Solves", &[("<b>x</b>".into(), 10), ("y".into(), 5)]);
        assert!(svg.contains("&lt;b&gt;x&lt;/b&gt;"));
        assert!(svg.contains("width=\"520\""));
        assert!(svg.contains("width=\"260\""));
        assert!(!svg.contains("<b>"));
    }
}
