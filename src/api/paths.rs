//! Case-insensitive routing for the FCTF-compatible contestant API.
//!
//! The original service matches `/api/Challenge/attempt` and `/api/challenge/attempt` alike,
//! and clients use both spellings. axum routes are case-sensitive, so a request is rewritten
//! *before* routing: when its path matches one of the registered templates with the literal
//! segments compared case-insensitively, the literal segments are replaced by the template's
//! spelling while parameter segments (category names, ids) keep their case. Paths that match
//! no template (admin API, portal, assets) pass through untouched.

use axum::http::Uri;

/// One route template such as `/api/Challenge/list_challenge/{category_name}`.
#[derive(Debug, Clone)]
struct Template {
    segments: Vec<Segment>,
}

#[derive(Debug, Clone)]
enum Segment {
    Literal(String),
    Param,
}

/// A set of templates to normalise request paths against.
#[derive(Debug, Clone, Default)]
pub struct PathNormalizer {
    templates: Vec<Template>,
}

impl PathNormalizer {
    /// Builds a normaliser from axum-style templates (`{name}` marks a parameter).
    pub fn new<'a>(templates: impl IntoIterator<Item = &'a str>) -> Self {
        let templates = templates
            .into_iter()
            .map(|template| Template {
                segments: template
                    .trim_start_matches('/')
                    .split('/')
                    .map(|segment| {
                        if segment.starts_with('{') && segment.ends_with('}') {
                            Segment::Param
                        } else {
                            Segment::Literal(segment.to_owned())
                        }
                    })
                    .collect(),
            })
            .collect();
        Self { templates }
    }

    /// The canonical spelling of `path`, or `None` when it matches no template or is already
    /// canonical.
    pub fn canonical(&self, path: &str) -> Option<String> {
        let trimmed = path.trim_start_matches('/');
        let request: Vec<&str> = trimmed.split('/').collect();
        for template in &self.templates {
            if template.segments.len() != request.len() {
                continue;
            }
            let matches = template.segments.iter().zip(&request).all(|(segment, given)| match segment {
                Segment::Literal(literal) => literal.eq_ignore_ascii_case(given),
                Segment::Param => !given.is_empty(),
            });
            if !matches {
                continue;
            }
            let rebuilt: Vec<&str> = template
                .segments
                .iter()
                .zip(&request)
                .map(|(segment, given)| match segment {
                    Segment::Literal(literal) => literal.as_str(),
                    Segment::Param => given,
                })
                .collect();
            let canonical = format!("/{}", rebuilt.join("/"));
            return if canonical == path { None } else { Some(canonical) };
        }
        None
    }

    /// Rewrites the request URI in place when its path has a canonical spelling.
    pub fn normalize_uri(&self, uri: &mut Uri) {
        let Some(canonical) = self.canonical(uri.path()) else { return };
        let path_and_query = match uri.query() {
            Some(query) => format!("{canonical}?{query}"),
            None => canonical,
        };
        let mut parts = uri.clone().into_parts();
        if let Ok(rebuilt) = path_and_query.parse() {
            parts.path_and_query = Some(rebuilt);
            if let Ok(new_uri) = Uri::from_parts(parts) {
                *uri = new_uri;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn normalizer() -> PathNormalizer {
        PathNormalizer::new([
            "/api/Challenge/attempt",
            "/api/Challenge/list_challenge/{category_name}",
            "/api/Challenge/{id}",
            "/api/Config/get_public_config",
        ])
    }

    #[test]
    fn literal_segments_are_matched_case_insensitively() {
        let normalizer = normalizer();
        assert_eq!(normalizer.canonical("/api/challenge/ATTEMPT").as_deref(), Some("/api/Challenge/attempt"));
        assert_eq!(
            normalizer.canonical("/API/config/Get_Public_Config").as_deref(),
            Some("/api/Config/get_public_config")
        );
        assert_eq!(normalizer.canonical("/api/Challenge/attempt"), None);
    }

    #[test]
    fn parameters_keep_their_case() {
        let normalizer = normalizer();
        assert_eq!(
            normalizer.canonical("/api/challenge/list_challenge/Web Exploitation").as_deref(),
            Some("/api/Challenge/list_challenge/Web Exploitation")
        );
        assert_eq!(normalizer.canonical("/api/challenge/Attempt").as_deref(), Some("/api/Challenge/attempt"));
        assert_eq!(normalizer.canonical("/api/challenge/42").as_deref(), Some("/api/Challenge/42"));
    }

    #[test]
    fn unknown_paths_pass_through() {
        let normalizer = normalizer();
        assert_eq!(normalizer.canonical("/api/v1/challenges"), None);
        assert_eq!(normalizer.canonical("/static/app.css"), None);
        let mut uri: Uri = "/api/challenge/attempt?x=1".parse().unwrap();
        normalizer.normalize_uri(&mut uri);
        assert_eq!(uri.to_string(), "/api/Challenge/attempt?x=1");
    }
}
