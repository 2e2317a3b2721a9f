//! Safe Markdown rendering of challenge descriptions (and other organizer text).
//!
//! CommonMark plus tables and strikethrough through `pulldown-cmark`. Raw HTML, block or
//! inline, is never passed through: it is turned into text and escaped. Link and image
//! targets keep only safe schemes (`http`, `https`, `mailto`, or a relative reference);
//! anything else (`javascript:`, `data:`, `vbscript:`, ...) becomes `#`. Text and attributes
//! are escaped by the HTML writer.

use pulldown_cmark::{CowStr, Event, Options, Parser, Tag};

/// True when a link target is safe to emit.
pub fn safe_url(url: &str) -> bool {
    let trimmed: String =
        url.trim().chars().filter(|character| !character.is_control() && !character.is_whitespace()).collect();
    let lower = trimmed.to_ascii_lowercase();
    match lower.find(':') {
        None => true,
        Some(colon) => {
            // A colon after the first '/', '?' or '#' is part of a relative reference.
            let first_delimiter = lower.find(['/', '?', '#']).unwrap_or(usize::MAX);
            if first_delimiter < colon {
                return true;
            }
            matches!(&lower[..colon], "http" | "https" | "mailto")
        }
    }
}

fn clean(url: CowStr<'_>) -> CowStr<'_> {
    if safe_url(&url) { url } else { CowStr::Borrowed("#") }
}

/// Renders Markdown to HTML with raw HTML escaped and unsafe link schemes removed.
pub fn render(markdown: &str) -> String {
    let options = Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH;
    let parser = Parser::new_ext(markdown, options).map(|event| match event {
        Event::Html(html) | Event::InlineHtml(html) => Event::Text(html),
        Event::Start(Tag::Link { link_type, dest_url, title, id }) => {
            Event::Start(Tag::Link { link_type, dest_url: clean(dest_url), title, id })
        }
        Event::Start(Tag::Image { link_type, dest_url, title, id }) => {
            Event::Start(Tag::Image { link_type, dest_url: clean(dest_url), title, id })
        }
        other => other,
    });
    let mut html = String::with_capacity(markdown.len() * 3 / 2);
    pulldown_cmark::html::push_html(&mut html, parser);
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_html_is_escaped() {
        let html =
            render("hello <script>alert(1)</script>\n\n<img src=x onerror=alert(1)>\n\n<div onclick=x>block</div>");
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("<img"), "{html}");
        assert!(!html.contains("<div"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
    }

    #[test]
    fn unsafe_schemes_are_dropped() {
        for link in [
            "javascript:alert(1)",
            "JaVaScRiPt:alert(1)",
            " javascript:x",
            "java\tscript:x",
            "data:text/html,x",
            "vbscript:x",
        ] {
            let html = render(&format!("[click]({link}) ![i]({link})"));
            assert!(!html.to_ascii_lowercase().contains("script:"), "{link}: {html}");
            assert!(!html.contains("data:"), "{link}: {html}");
            assert!(html.contains("href=\"#\""), "{link}: {html}");
        }
    }

    #[test]
    fn markdown_and_safe_links_render() {
        let html = render(
            "# Title\n\n**bold** [site](https://example.org/a?b=1) [rel](/files/x) [mail](mailto:a@b)\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n`code` \"q\"",
        );
        assert!(html.contains("<h1>Title</h1>"));
        assert!(html.contains("<strong>bold</strong>"));
        assert!(html.contains("href=\"https://example.org/a?b=1\""));
        assert!(html.contains("href=\"/files/x\""));
        assert!(html.contains("href=\"mailto:a@b\""));
        assert!(html.contains("<table>"));
        assert!(html.contains("<code>code</code>"));
    }

    #[test]
    fn attribute_breaking_is_escaped() {
        let html = render("[x](https://a.b/\"onmouseover=alert(1) \"t\")");
        assert!(!html.contains("\"onmouseover"), "{html}");
    }
}
