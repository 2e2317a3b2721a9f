//! CSV exports: RFC 4180 quoting, and cells that a spreadsheet would run as a formula
//! (`=`, `+`, `-`, `@`, tab, CR at the start) are prefixed with `'`.

use axum::http::header;
use axum::response::{IntoResponse, Response};

fn cell(value: &str) -> String {
    let guarded =
        if value.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{value}") } else { value.to_owned() };
    if guarded.contains([',', '"', '\n', '\r']) { format!("\"{}\"", guarded.replace('"', "\"\"")) } else { guarded }
}

/// The CSV text of a header and rows.
pub fn to_csv(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut out = header.iter().map(|name| cell(name)).collect::<Vec<_>>().join(",");
    out.push_str("\r\n");
    for row in rows {
        out.push_str(&row.iter().map(|value| cell(value)).collect::<Vec<_>>().join(","));
        out.push_str("\r\n");
    }
    out
}

/// A download answer.
pub fn download(filename: &str, content_type: &str, body: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type.to_owned()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{filename}\"")),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        body,
    )
        .into_response()
}

/// A CSV download.
pub fn csv_download(filename: &str, header: &[&str], rows: &[Vec<String>]) -> Response {
    download(filename, "text/csv; charset=utf-8", to_csv(header, rows))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_and_defuses_formulas() {
        let text = to_csv(&["a", "b"], &[vec!["x,y".into(), "=1+1".into()], vec!["say \"hi\"".into(), "ok".into()]]);
        assert_eq!(text, "a,b\r\n\"x,y\",'=1+1\r\n\"say \"\"hi\"\"\",ok\r\n");
    }
}
