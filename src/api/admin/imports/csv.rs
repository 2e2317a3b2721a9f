//! Reading an uploaded CSV file: tolerant decoding and RFC 4180 records.
//!
//! Spreadsheets save CSV in whatever encoding the machine uses, so the bytes are decoded as
//! UTF-8 (a byte-order mark is dropped) and, when they are not valid UTF-8, as Windows-1252
//! (a superset of Latin-1 for every printable character). Records follow RFC 4180: fields
//! separated by commas, optionally quoted with `"`, `""` for a quote inside quotes, line breaks
//! (LF or CRLF) inside quotes kept. Lines that are entirely empty are skipped.

/// Windows-1252 characters of bytes 0x80..=0x9F (undefined bytes map to the C1 control, as
/// Latin-1 does).
const CP1252_HIGH: [char; 32] = [
    '€', '\u{81}', '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', '\u{8d}', 'Ž', '\u{8f}', '\u{90}', '‘', '’',
    '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', '\u{9d}', 'ž', 'Ÿ',
];

/// Decodes the bytes of a CSV file: UTF-8 (without a BOM) or else Windows-1252.
pub fn decode(bytes: &[u8]) -> String {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    match std::str::from_utf8(bytes) {
        Ok(text) => text.to_owned(),
        Err(_) => bytes
            .iter()
            .map(|&byte| match byte {
                0x80..=0x9F => CP1252_HIGH[usize::from(byte - 0x80)],
                other => char::from(other),
            })
            .collect(),
    }
}

/// One record and the 1-based number of the line it starts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Line of the file where the record starts.
    pub line: usize,
    /// The fields.
    pub fields: Vec<String>,
}

/// A quote left open at the end of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnclosedQuote {
    /// Line where the quoted field began.
    pub line: usize,
}

/// Splits CSV text into records.
pub fn records(text: &str) -> Result<Vec<Record>, UnclosedQuote> {
    let mut out = Vec::new();
    let mut fields: Vec<String> = Vec::new();
    let mut current = String::new();
    let mut line = 1;
    let mut record_line = 1;
    let mut quoted = false;
    let mut quote_line = 1;
    let mut chars = text.chars().peekable();
    while let Some(ch) = chars.next() {
        if quoted {
            match ch {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    current.push('"');
                }
                '"' => quoted = false,
                '\n' => {
                    line += 1;
                    current.push('\n');
                }
                other => current.push(other),
            }
            continue;
        }
        match ch {
            '"' if current.is_empty() => {
                quoted = true;
                quote_line = line;
            }
            ',' => fields.push(std::mem::take(&mut current)),
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' | '\r' => {
                fields.push(std::mem::take(&mut current));
                push_record(&mut out, record_line, std::mem::take(&mut fields));
                line += 1;
                record_line = line;
            }
            other => current.push(other),
        }
    }
    if quoted {
        return Err(UnclosedQuote { line: quote_line });
    }
    if !current.is_empty() || !fields.is_empty() {
        fields.push(current);
        push_record(&mut out, record_line, fields);
    }
    Ok(out)
}

fn push_record(out: &mut Vec<Record>, line: usize, fields: Vec<String>) {
    let blank = fields.iter().all(|field| field.trim().is_empty());
    if !blank {
        out.push(Record { line, fields });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(text: &str) -> Vec<Vec<String>> {
        records(text).expect("valid csv").into_iter().map(|record| record.fields).collect()
    }

    #[test]
    fn reads_quotes_embedded_line_breaks_and_crlf() {
        let text = "name,note\r\nalice,\"says \"\"hi\"\", twice\"\r\n\"bob\",\"two\nlines\"\nc,\n";
        assert_eq!(
            fields(text),
            vec![
                vec!["name".to_owned(), "note".to_owned()],
                vec!["alice".to_owned(), "says \"hi\", twice".to_owned()],
                vec!["bob".to_owned(), "two\nlines".to_owned()],
                vec!["c".to_owned(), String::new()],
            ]
        );
        let lines: Vec<usize> = records(text).expect("valid").iter().map(|record| record.line).collect();
        assert_eq!(lines, vec![1, 2, 3, 5]);
    }

    #[test]
    fn skips_blank_lines_and_keeps_a_last_line_without_newline() {
        assert_eq!(fields("a,b\n\n,\n1,2"), vec![vec!["a", "b"], vec!["1", "2"]]);
        assert!(fields("").is_empty());
    }

    #[test]
    fn an_unclosed_quote_names_its_line() {
        assert_eq!(records("a\n\"open,\nmore"), Err(UnclosedQuote { line: 2 }));
    }

    #[test]
    fn decodes_utf8_with_bom_and_falls_back_to_windows_1252() {
        assert_eq!(decode(b"\xEF\xBB\xBFname\nZo\xC3\xAB"), "name\nZoë");
        assert_eq!(decode(b"Zo\xEB \x80 caf\xE9"), "Zoë € café");
    }
}
