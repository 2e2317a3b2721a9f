//! HTTP/1.1 on the wire, as the gateway's proxy path needs it: request and response heads
//! parsed in place (httparse) and classified in one pass, and the chunked transfer coding.
//!
//! A parsed head keeps its bytes (`Bytes`, split off the read buffer without copying) and the
//! byte ranges of its parts, so headers the proxy passes on are copied to the other side byte
//! for byte, in their order and case, and no header map is built per request.
//!
//! Strictness (request smuggling and response splitting are the risks of a proxy):
//! - `Content-Length` must be digits; several must agree. `Transfer-Encoding` on a request must
//!   end in `chunked`, and a request may not carry both (400, as nginx). A response with
//!   `Transfer-Encoding` not ending in `chunked` is read until the upstream closes (RFC 9112
//!   §6.3); with both, `Transfer-Encoding` wins and `Content-Length` is dropped.
//! - Chunk sizes are hex digits only (at most 15), extensions are skipped, line ends must be CRLF
//!   (a lone LF is accepted at the ends of size and trailer lines, as most servers do), and
//!   bodies are re-chunked on the way out, never passed through raw, so the next hop parses
//!   exactly what the gateway parsed. Trailers are read and dropped.
//! - Obsolete line folding is refused (httparse's default).

use bytes::{Bytes, BytesMut};

/// At most this many headers in a request or response head.
pub(crate) const MAX_HEADERS: usize = 100;
/// At most this many bytes in a head (request line or status line and headers).
pub(crate) const MAX_HEAD_BYTES: usize = 32 * 1024;

/// A byte range of a head.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Span {
    start: u32,
    end: u32,
}

impl Span {
    /// The range `part` takes in `base`. httparse hands out slices of the parsed buffer, except
    /// that an empty part (a missing reason phrase, an empty value) may point elsewhere: such
    /// a part is an empty span.
    fn of(base: &[u8], part: &[u8]) -> Self {
        let start = (part.as_ptr() as usize).wrapping_sub(base.as_ptr() as usize);
        if part.is_empty() || start > base.len() || base.len() - start < part.len() {
            return Self::default();
        }
        // Heads are at most MAX_HEAD_BYTES long, so offsets fit.
        Self { start: start as u32, end: (start + part.len()) as u32 }
    }

    fn get(self, raw: &[u8]) -> &[u8] {
        &raw[self.start as usize..self.end as usize]
    }
}

/// What a header means to the proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Other,
    Host,
    Cookie,
    ContentLength,
    TransferEncoding,
    Connection,
    Upgrade,
    Expect,
    /// Hop-by-hop headers removed on both sides: `Keep-Alive`, `Proxy-Connection`,
    /// `Proxy-Authenticate`, `Proxy-Authorization`, `TE`, `Trailer`.
    HopByHop,
    XForwardedFor,
    XForwardedProto,
    XRealIp,
    SetCookie,
    ContentType,
    /// Caching headers replaced on HTML responses: `Cache-Control`, `Pragma`, `Expires`,
    /// `ETag`, `Last-Modified`.
    Caching,
}

/// Classifies a header name (case-insensitively; a match on the length first keeps it cheap).
pub(crate) fn kind_of(name: &[u8]) -> Kind {
    let is = |known: &[u8]| name.eq_ignore_ascii_case(known);
    match name.len() {
        2 if is(b"te") => Kind::HopByHop,
        4 if is(b"host") => Kind::Host,
        4 if is(b"etag") => Kind::Caching,
        6 if is(b"cookie") => Kind::Cookie,
        6 if is(b"expect") => Kind::Expect,
        6 if is(b"pragma") => Kind::Caching,
        7 if is(b"upgrade") => Kind::Upgrade,
        7 if is(b"trailer") => Kind::HopByHop,
        7 if is(b"expires") => Kind::Caching,
        9 if is(b"x-real-ip") => Kind::XRealIp,
        10 if is(b"connection") => Kind::Connection,
        10 if is(b"keep-alive") => Kind::HopByHop,
        10 if is(b"set-cookie") => Kind::SetCookie,
        12 if is(b"content-type") => Kind::ContentType,
        13 if is(b"cache-control") => Kind::Caching,
        13 if is(b"last-modified") => Kind::Caching,
        14 if is(b"content-length") => Kind::ContentLength,
        15 if is(b"x-forwarded-for") => Kind::XForwardedFor,
        16 if is(b"proxy-connection") => Kind::HopByHop,
        17 if is(b"transfer-encoding") => Kind::TransferEncoding,
        17 if is(b"x-forwarded-proto") => Kind::XForwardedProto,
        18 if is(b"proxy-authenticate") => Kind::HopByHop,
        19 if is(b"proxy-authorization") => Kind::HopByHop,
        _ => Kind::Other,
    }
}

/// One header of a head.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Header {
    pub(crate) kind: Kind,
    name: Span,
    value: Span,
    /// The whole `name: value` line without its line end.
    line: Span,
}

/// How a message body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    None,
    Length(u64),
    Chunked,
    /// Until the sender closes (responses only).
    UntilClose,
}

/// Why a head was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HeadError {
    /// Malformed, or ambiguous framing.
    Invalid,
    /// Longer than `MAX_HEAD_BYTES` or more than `MAX_HEADERS` headers.
    TooLarge,
}

/// The parts common to request and response heads.
#[derive(Debug)]
pub(crate) struct Fields {
    raw: Bytes,
    headers: Vec<Header>,
    /// `Connection: close` (or HTTP/1.0 without `keep-alive`).
    pub(crate) close: bool,
    /// `Connection` lists `upgrade`.
    pub(crate) connection_upgrade: bool,
    /// `Connection` names other headers (to be removed as hop-by-hop).
    pub(crate) connection_names: bool,
    pub(crate) framing: Framing,
    /// Both `Transfer-Encoding` and `Content-Length` were present.
    both_framings: bool,
}

impl Fields {
    /// Every header.
    pub(crate) fn headers(&self) -> &[Header] {
        &self.headers
    }

    pub(crate) fn name(&self, header: &Header) -> &[u8] {
        header.name.get(&self.raw)
    }

    pub(crate) fn value(&self, header: &Header) -> &[u8] {
        header.value.get(&self.raw)
    }

    /// The `name: value` bytes of `header`.
    pub(crate) fn line(&self, header: &Header) -> &[u8] {
        header.line.get(&self.raw)
    }

    /// The values of the headers of one kind.
    pub(crate) fn values(&self, kind: Kind) -> impl Iterator<Item = &[u8]> {
        self.headers.iter().filter(move |header| header.kind == kind).map(|header| self.value(header))
    }

    /// The first value of one kind.
    pub(crate) fn first(&self, kind: Kind) -> Option<&[u8]> {
        self.values(kind).next()
    }

    pub(crate) fn has(&self, kind: Kind) -> bool {
        self.headers.iter().any(|header| header.kind == kind)
    }

    /// The lower-cased header names the `Connection` header lists besides the usual options.
    pub(crate) fn connection_named(&self) -> Vec<Vec<u8>> {
        let mut named = Vec::new();
        for value in self.values(Kind::Connection) {
            for token in value.split(|byte| *byte == b',') {
                let token = token.trim_ascii();
                if token.is_empty() || is_connection_option(token) {
                    continue;
                }
                named.push(token.to_ascii_lowercase());
            }
        }
        named
    }

    /// True when the header is one `Connection` named (see `connection_named`).
    pub(crate) fn is_named_by(&self, header: &Header, named: &[Vec<u8>]) -> bool {
        let name = self.name(header);
        named.iter().any(|named| named.eq_ignore_ascii_case(name))
    }

    fn classify(raw: Bytes, headers: Vec<Header>, minor: u8) -> Result<Self, HeadError> {
        let mut fields = Self {
            raw,
            headers,
            close: minor == 0,
            connection_upgrade: false,
            connection_names: false,
            framing: Framing::None,
            both_framings: false,
        };
        let mut length: Option<u64> = None;
        let mut transfer_encoding = false;
        let mut chunked_last = false;
        let (mut saw_close, mut saw_keep_alive) = (false, false);
        for header in &fields.headers {
            let value = header.value.get(&fields.raw);
            match header.kind {
                Kind::ContentLength => {
                    let parsed = parse_length(value).ok_or(HeadError::Invalid)?;
                    if length.is_some_and(|seen| seen != parsed) {
                        return Err(HeadError::Invalid);
                    }
                    length = Some(parsed);
                }
                Kind::TransferEncoding => {
                    transfer_encoding = true;
                    for coding in value.split(|byte| *byte == b',') {
                        let coding = coding.trim_ascii();
                        if !coding.is_empty() {
                            chunked_last = coding.eq_ignore_ascii_case(b"chunked");
                        }
                    }
                }
                Kind::Connection => {
                    for token in value.split(|byte| *byte == b',') {
                        let token = token.trim_ascii();
                        if token.eq_ignore_ascii_case(b"close") {
                            saw_close = true;
                        } else if token.eq_ignore_ascii_case(b"keep-alive") {
                            saw_keep_alive = true;
                        } else if token.eq_ignore_ascii_case(b"upgrade") {
                            fields.connection_upgrade = true;
                        } else if !token.is_empty() {
                            fields.connection_names = true;
                        }
                    }
                }
                _ => {}
            }
        }
        fields.close = saw_close || (minor == 0 && !saw_keep_alive);
        fields.framing = match (transfer_encoding, chunked_last, length) {
            (true, true, _) => Framing::Chunked,
            // Not chunked last: only meaningful for responses (read to the end); requests refuse it.
            (true, false, _) => Framing::UntilClose,
            (false, _, Some(0)) | (false, _, None) => Framing::None,
            (false, _, Some(length)) => Framing::Length(length),
        };
        if transfer_encoding && length.is_some() {
            // Responses: TE wins and CL is dropped on the way out. Requests refuse it.
            fields.headers.retain(|header| header.kind != Kind::ContentLength);
            fields.both_framings = true;
        }
        Ok(fields)
    }
}

fn is_connection_option(token: &[u8]) -> bool {
    token.eq_ignore_ascii_case(b"close")
        || token.eq_ignore_ascii_case(b"keep-alive")
        || token.eq_ignore_ascii_case(b"upgrade")
}

/// A `Content-Length` value: digits only (surrounding blanks allowed), at most 18 of them.
fn parse_length(value: &[u8]) -> Option<u64> {
    let value = value.trim_ascii();
    if value.is_empty() || value.len() > 18 || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(value.iter().fold(0_u64, |total, digit| total * 10 + u64::from(digit - b'0')))
}

/// Collects the headers httparse found into spans of `base` and classifies them.
fn spans(base: &[u8], parsed: &[httparse::Header<'_>]) -> Vec<Header> {
    let mut headers = Vec::with_capacity(parsed.len());
    for header in parsed {
        let name = header.name.as_bytes();
        let name_span = Span::of(base, name);
        let value_span = Span::of(base, header.value);
        headers.push(Header {
            kind: kind_of(name),
            name: name_span,
            value: value_span,
            line: Span { start: name_span.start, end: value_span.end.max(name_span.end + 1) },
        });
    }
    headers
}

/// The length of a complete head from httparse's answer over `buffered` bytes; `None` while
/// it is incomplete and may still fit.
fn head_length(parsed: httparse::Result<usize>, buffered: usize) -> Result<Option<usize>, HeadError> {
    match parsed {
        Ok(httparse::Status::Complete(length)) if length <= MAX_HEAD_BYTES => Ok(Some(length)),
        Ok(httparse::Status::Complete(_)) | Err(httparse::Error::TooManyHeaders) => Err(HeadError::TooLarge),
        Ok(httparse::Status::Partial) if buffered > MAX_HEAD_BYTES => Err(HeadError::TooLarge),
        Ok(httparse::Status::Partial) => Ok(None),
        Err(_) => Err(HeadError::Invalid),
    }
}

/// A request head.
#[derive(Debug)]
pub(crate) struct RequestHead {
    pub(crate) fields: Fields,
    method: Span,
    target: Span,
    /// The `x` of `HTTP/1.x`.
    pub(crate) minor: u8,
    /// `Expect: 100-continue`.
    pub(crate) expect_continue: bool,
}

impl RequestHead {
    /// Parses a complete head at the start of `buffer` and splits it off; `Ok(None)` while
    /// the head is incomplete (the caller reads more, up to `MAX_HEAD_BYTES`).
    pub(crate) fn parse(buffer: &mut BytesMut) -> Result<Option<Self>, HeadError> {
        let mut storage = [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
        let mut request = httparse::Request::new(&mut []);
        let Some(length) = head_length(request.parse_with_uninit_headers(buffer, &mut storage), buffer.len())? else {
            return Ok(None);
        };
        let base: &[u8] = buffer;
        let (Some(method), Some(target)) = (request.method, request.path) else { return Err(HeadError::Invalid) };
        let method = Span::of(base, method.as_bytes());
        let target = Span::of(base, target.as_bytes());
        let minor = request.version.unwrap_or(1);
        let headers = spans(base, request.headers);
        let raw = buffer.split_to(length).freeze();
        let fields = Fields::classify(raw, headers, minor)?;
        if fields.both_framings || fields.framing == Framing::UntilClose {
            return Err(HeadError::Invalid);
        }
        let expect_continue =
            fields.values(Kind::Expect).any(|value| value.trim_ascii().eq_ignore_ascii_case(b"100-continue"));
        Ok(Some(Self { fields, method, target, minor, expect_continue }))
    }

    pub(crate) fn method(&self) -> &[u8] {
        self.method.get(&self.fields.raw)
    }

    /// The request target as sent (origin form, absolute form, `*`).
    pub(crate) fn target(&self) -> &[u8] {
        self.target.get(&self.fields.raw)
    }

    /// The path and query: the target itself in origin form; in absolute form what follows
    /// the authority (`/` when nothing does). `None` for other forms.
    pub(crate) fn path_and_query(&self) -> Option<&str> {
        let target = std::str::from_utf8(self.target()).ok()?;
        if target.starts_with('/') {
            return Some(target);
        }
        let (scheme, rest) = target.split_once("://")?;
        if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
            return None;
        }
        Some(rest.find(['/', '?']).map_or("/", |start| &rest[start..]))
    }

    pub(crate) fn is_head(&self) -> bool {
        self.method() == b"HEAD"
    }

    /// The `Upgrade` value when the request asks for a protocol upgrade.
    pub(crate) fn upgrade(&self) -> Option<&[u8]> {
        if !self.fields.connection_upgrade {
            return None;
        }
        self.fields.first(Kind::Upgrade).filter(|value| !value.trim_ascii().is_empty())
    }
}

/// A response head.
#[derive(Debug)]
pub(crate) struct ResponseHead {
    pub(crate) fields: Fields,
    pub(crate) status: u16,
    reason: Span,
    pub(crate) minor: u8,
}

impl ResponseHead {
    /// Parses a complete head at the start of `buffer` and splits it off; `Ok(None)` while
    /// it is incomplete. `request_head` tells whether the request was `HEAD` (no body then).
    pub(crate) fn parse(buffer: &mut BytesMut, request_head: bool) -> Result<Option<Self>, HeadError> {
        let mut storage = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut response = httparse::Response::new(&mut storage);
        let Some(length) = head_length(response.parse(buffer), buffer.len())? else { return Ok(None) };
        let base: &[u8] = buffer;
        let Some(status) = response.code else { return Err(HeadError::Invalid) };
        let reason = response.reason.map_or(Span::default(), |reason| Span::of(base, reason.as_bytes()));
        let minor = response.version.unwrap_or(1);
        let headers = spans(base, response.headers);
        let raw = buffer.split_to(length).freeze();
        let mut fields = Fields::classify(raw, headers, minor)?;
        let bodiless = request_head || (100..200).contains(&status) || status == 204 || status == 304;
        if bodiless {
            fields.framing = Framing::None;
        } else if fields.framing == Framing::None && !fields.has(Kind::ContentLength) {
            fields.framing = Framing::UntilClose;
        }
        Ok(Some(Self { fields, status, reason, minor }))
    }

    pub(crate) fn reason(&self) -> &[u8] {
        self.reason.get(&self.fields.raw)
    }
}

/// Decodes a chunked body incrementally.
#[derive(Debug, Default)]
pub(crate) struct ChunkedDecoder {
    state: ChunkState,
    size: u64,
    digits: u8,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    #[default]
    Size,
    Extension,
    SizeLf,
    Data,
    DataCr,
    DataLf,
    TrailerStart,
    TrailerLine,
    TrailerLf,
    EndLf,
    Done,
}

/// A malformed chunked body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ChunkError;

impl ChunkedDecoder {
    /// True once the last chunk and the trailers were read.
    pub(crate) fn is_done(&self) -> bool {
        self.state == ChunkState::Done
    }

    /// Consumes bytes from the start of `input`, handing each piece of data to `data`; stops
    /// at the end of the input or of the body. Returns how many bytes were consumed.
    pub(crate) fn decode(&mut self, input: &[u8], mut data: impl FnMut(&[u8])) -> Result<usize, ChunkError> {
        let mut at = 0;
        while at < input.len() && self.state != ChunkState::Done {
            if self.state == ChunkState::Data {
                let take = usize::try_from(self.size).unwrap_or(usize::MAX).min(input.len() - at);
                data(&input[at..at + take]);
                at += take;
                self.size -= take as u64;
                if self.size == 0 {
                    self.state = ChunkState::DataCr;
                }
                continue;
            }
            let byte = input[at];
            at += 1;
            self.state = match (self.state, byte) {
                (ChunkState::Size, b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F') => {
                    if self.digits >= 15 {
                        return Err(ChunkError);
                    }
                    let digit = (byte as char).to_digit(16).unwrap_or(0);
                    self.size = self.size * 16 + u64::from(digit);
                    self.digits += 1;
                    ChunkState::Size
                }
                (ChunkState::Size, b';' | b' ' | b'\t') if self.digits > 0 => ChunkState::Extension,
                (ChunkState::Size, b'\r') if self.digits > 0 => ChunkState::SizeLf,
                (ChunkState::Size, b'\n') if self.digits > 0 => self.after_size(),
                (ChunkState::Extension, b'\r') => ChunkState::SizeLf,
                (ChunkState::Extension, b'\n') => self.after_size(),
                (ChunkState::Extension, byte) if byte == b'\t' || (b' '..=b'~').contains(&byte) || byte >= 0x80 => {
                    ChunkState::Extension
                }
                (ChunkState::SizeLf, b'\n') => self.after_size(),
                (ChunkState::DataCr, b'\r') => ChunkState::DataLf,
                (ChunkState::DataCr | ChunkState::DataLf, b'\n') => self.next_chunk(),
                (ChunkState::TrailerStart, b'\r') => ChunkState::EndLf,
                (ChunkState::TrailerStart | ChunkState::EndLf, b'\n') => ChunkState::Done,
                (ChunkState::TrailerLine, b'\r') => ChunkState::TrailerLf,
                (ChunkState::TrailerLine | ChunkState::TrailerLf, b'\n') => ChunkState::TrailerStart,
                (ChunkState::TrailerStart | ChunkState::TrailerLine, _) => ChunkState::TrailerLine,
                _ => return Err(ChunkError),
            };
        }
        Ok(at)
    }

    fn after_size(&mut self) -> ChunkState {
        if self.size == 0 { ChunkState::TrailerStart } else { ChunkState::Data }
    }

    fn next_chunk(&mut self) -> ChunkState {
        self.size = 0;
        self.digits = 0;
        ChunkState::Size
    }
}

/// Appends one chunk (`data` must not be empty).
pub(crate) fn encode_chunk(out: &mut BytesMut, data: &[u8]) {
    let mut size = [0_u8; 16];
    let digits = hex_digits(data.len(), &mut size);
    out.extend_from_slice(digits);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// The last chunk, with no trailers.
pub(crate) const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

fn hex_digits(mut value: usize, buffer: &mut [u8; 16]) -> &[u8] {
    let mut at = buffer.len();
    loop {
        at -= 1;
        buffer[at] = b"0123456789abcdef"[value % 16];
        value /= 16;
        if value == 0 {
            break;
        }
    }
    &buffer[at..]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(text: &str) -> Result<Option<RequestHead>, HeadError> {
        RequestHead::parse(&mut BytesMut::from(text))
    }

    fn decode_all(input: &[u8]) -> (Result<usize, ChunkError>, Vec<u8>, bool) {
        let mut decoder = ChunkedDecoder::default();
        let mut out = Vec::new();
        let result = decoder.decode(input, |data| out.extend_from_slice(data));
        (result, out, decoder.is_done())
    }

    #[test]
    fn request_heads_are_split_off_and_classified() {
        let mut buffer = BytesMut::from(
            "POST /a?b=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nConnection: keep-alive, X-Secret\r\n\
             X-Secret: 1\r\nCookie: a=1\r\n\r\nabcGET",
        );
        let head = RequestHead::parse(&mut buffer).unwrap().unwrap();
        assert_eq!(&buffer[..], b"abcGET", "the body and the next request stay in the buffer");
        assert_eq!(head.method(), b"POST");
        assert_eq!(head.path_and_query(), Some("/a?b=1"));
        assert_eq!(head.minor, 1);
        assert_eq!(head.fields.framing, Framing::Length(3));
        assert!(!head.fields.close && head.fields.connection_names);
        assert_eq!(head.fields.connection_named(), vec![b"x-secret".to_vec()]);
        let kinds: Vec<Kind> = head.fields.headers().iter().map(|header| header.kind).collect();
        assert_eq!(kinds, [Kind::Host, Kind::ContentLength, Kind::Connection, Kind::Other, Kind::Cookie]);
        let cookie = &head.fields.headers()[4];
        assert_eq!(head.fields.line(cookie), b"Cookie: a=1");
        assert_eq!(head.fields.value(cookie), b"a=1");
    }

    #[test]
    fn partial_heads_wait_and_oversized_ones_are_refused() {
        assert!(request("GET / HTTP/1.1\r\nHost: x\r\n").unwrap().is_none());
        let long = format!("GET / HTTP/1.1\r\nX: {}\r\n", "a".repeat(MAX_HEAD_BYTES));
        assert_eq!(request(&long).unwrap_err(), HeadError::TooLarge);
        let many: String = (0..=MAX_HEADERS).map(|index| format!("X-{index}: 1\r\n")).collect();
        assert_eq!(request(&format!("GET / HTTP/1.1\r\n{many}\r\n")).unwrap_err(), HeadError::TooLarge);
        assert_eq!(request("GET / HTTP/1.1\r\nBad Header: 1\r\n\r\n").unwrap_err(), HeadError::Invalid);
    }

    #[test]
    fn ambiguous_request_framing_is_refused() {
        let both = "POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(request(both).unwrap_err(), HeadError::Invalid);
        let not_chunked = "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n";
        assert_eq!(request(not_chunked).unwrap_err(), HeadError::Invalid);
        let disagree = "POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n";
        assert_eq!(request(disagree).unwrap_err(), HeadError::Invalid);
        for bad in ["+3", "3 3", "0x3", "-1", "", "99999999999999999999"] {
            let text = format!("POST / HTTP/1.1\r\nContent-Length: {bad}\r\n\r\n");
            assert_eq!(request(&text).unwrap_err(), HeadError::Invalid, "{bad:?}");
        }
        let agree = request("POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length:  3 \r\n\r\n").unwrap().unwrap();
        assert_eq!(agree.fields.framing, Framing::Length(3));
        let chunked = request("POST / HTTP/1.1\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n").unwrap().unwrap();
        assert_eq!(chunked.fields.framing, Framing::Chunked);
    }

    #[test]
    fn keep_alive_follows_the_version_and_connection_options() {
        let old = request("GET / HTTP/1.0\r\n\r\n").unwrap().unwrap();
        assert!(old.fields.close);
        let old_kept = request("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").unwrap().unwrap();
        assert!(!old_kept.fields.close);
        let closing = request("GET / HTTP/1.1\r\nConnection: close, keep-alive\r\n\r\n").unwrap().unwrap();
        assert!(closing.fields.close);
        let upgrade = request("GET / HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n").unwrap().unwrap();
        assert_eq!(upgrade.upgrade(), Some(&b"websocket"[..]));
        let no_connection = request("GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n").unwrap().unwrap();
        assert_eq!(no_connection.upgrade(), None);
    }

    #[test]
    fn absolute_targets_reduce_to_the_path() {
        let absolute = request("GET http://example.com:81/x?y=1 HTTP/1.1\r\n\r\n").unwrap().unwrap();
        assert_eq!(absolute.path_and_query(), Some("/x?y=1"));
        let bare = request("GET http://example.com HTTP/1.1\r\n\r\n").unwrap().unwrap();
        assert_eq!(bare.path_and_query(), Some("/"));
        let star = request("OPTIONS * HTTP/1.1\r\n\r\n").unwrap().unwrap();
        assert_eq!(star.path_and_query(), None);
        let expect = request("PUT / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n").unwrap().unwrap();
        assert!(expect.expect_continue);
    }

    #[test]
    fn response_framing() {
        let parse = |text: &str, head: bool| ResponseHead::parse(&mut BytesMut::from(text), head).unwrap().unwrap();
        assert_eq!(parse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", false).fields.framing, Framing::Length(5));
        assert_eq!(parse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", true).fields.framing, Framing::None);
        assert_eq!(parse("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false).fields.framing, Framing::None);
        assert_eq!(parse("HTTP/1.1 200 OK\r\n\r\n", false).fields.framing, Framing::UntilClose);
        assert_eq!(parse("HTTP/1.1 204 No Content\r\n\r\n", false).fields.framing, Framing::None);
        assert_eq!(parse("HTTP/1.1 304 Not Modified\r\n\r\n", false).fields.framing, Framing::None);
        let both = parse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", false);
        assert_eq!(both.fields.framing, Framing::Chunked);
        assert!(!both.fields.has(Kind::ContentLength), "TE wins and CL is dropped");
        let gzip = parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", false);
        assert_eq!(gzip.fields.framing, Framing::UntilClose);
        let status = parse("HTTP/1.0 404 Not Here\r\n\r\n", false);
        assert_eq!(
            (status.status, status.reason(), status.minor, status.fields.close),
            (404, &b"Not Here"[..], 0, true)
        );
    }

    #[test]
    fn chunked_bodies_decode_across_any_split() {
        let body = b"4\r\nWiki\r\n5;ext=1\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nX-Trailer: 1\r\n\r\nNEXT";
        let (result, out, done) = decode_all(body);
        assert_eq!(result, Ok(body.len() - 4));
        assert_eq!(out, b"Wikipedia in\r\n\r\nchunks.");
        assert!(done);
        for split in 1..body.len() - 4 {
            let mut decoder = ChunkedDecoder::default();
            let mut out = Vec::new();
            let first = decoder.decode(&body[..split], |data| out.extend_from_slice(data)).unwrap();
            assert_eq!(first, split);
            let second = decoder.decode(&body[split..], |data| out.extend_from_slice(data)).unwrap();
            assert_eq!(split + second, body.len() - 4, "split at {split}");
            assert_eq!(out, b"Wikipedia in\r\n\r\nchunks.");
            assert!(decoder.is_done());
        }
    }

    #[test]
    fn malformed_chunks_are_refused() {
        for bad in
            [&b"x\r\n"[..], b"\r\n", b"4\r\nWikiX\r\n", b"-1\r\n", b"1000000000000000\r\n", b"4\rWiki", b"0\r\n\rX"]
        {
            assert_eq!(decode_all(bad).0, Err(ChunkError), "{:?}", String::from_utf8_lossy(bad));
        }
        let (result, out, done) = decode_all(b"3\nabc\n0\n\n");
        assert!(result.is_ok() && done, "bare LF line ends are accepted");
        assert_eq!(out, b"abc");
    }

    #[test]
    fn chunks_encode() {
        let mut out = BytesMut::new();
        encode_chunk(&mut out, &[b'a'; 26]);
        out.extend_from_slice(LAST_CHUNK);
        assert_eq!(&out[..], b"1a\r\naaaaaaaaaaaaaaaaaaaaaaaaaa\r\n0\r\n\r\n");
        let (result, decoded, done) = decode_all(&out);
        assert!(result.is_ok() && done);
        assert_eq!(decoded, vec![b'a'; 26]);
    }

    /// Mutates `seed` at random: flips, inserts, deletes and duplicates bytes.
    fn mutate(seed: &[u8], rng: &mut impl rand::Rng) -> Vec<u8> {
        let mut bytes = seed.to_vec();
        for _ in 0..rng.random_range(1..8) {
            let at = rng.random_range(0..=bytes.len());
            match rng.random_range(0..5) {
                0 if at < bytes.len() => bytes[at] = rng.random(),
                1 => bytes.insert(at, *b"\r\n:; ,\t0aZ\x00\x7f\xff".get(rng.random_range(0..13)).unwrap_or(&b'x')),
                2 if at < bytes.len() => {
                    bytes.remove(at);
                }
                3 => {
                    let end = (at + rng.random_range(0..16)).min(bytes.len());
                    let copy = bytes[at..end].to_vec();
                    bytes.splice(at..at, copy);
                }
                _ => {}
            }
        }
        bytes
    }

    #[test]
    fn mutated_heads_and_chunks_never_panic() {
        use rand::{Rng as _, SeedableRng as _};
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed);
        let request = b"POST http://h/p?q=1 HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, Upgrade, X-A\r\n\
            Upgrade: websocket\r\nContent-Length: 3\r\nCookie: a=1; FCTF_Auth_Token=t\r\nExpect: 100-continue\r\n\
            Transfer-Encoding: chunked\r\n\r\n";
        let response = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: gzip, chunked\r\n\
            Connection: close, X-B\r\nSet-Cookie: a=1\r\nContent-Type: text/html\r\n\r\n";
        let chunks = b"5;a=b\r\nhello\r\n10\r\n0123456789abcdef\r\n0\r\nT: 1\r\n\r\n";
        let mut parsed = 0;
        for _ in 0..20_000 {
            let mutated = mutate(request, &mut rng);
            if let Ok(Some(head)) = RequestHead::parse(&mut BytesMut::from(&mutated[..])) {
                parsed += 1;
                let _ = (head.method(), head.path_and_query(), head.upgrade(), head.is_head(), head.expect_continue);
                let _ = head.fields.connection_named();
                for header in head.fields.headers() {
                    let _ = (head.fields.name(header), head.fields.value(header), head.fields.line(header));
                }
            }
            let mutated = mutate(response, &mut rng);
            if let Ok(Some(head)) = ResponseHead::parse(&mut BytesMut::from(&mutated[..]), rng.random()) {
                let _ = (head.reason(), head.fields.connection_named(), head.fields.framing);
            }
            let mutated = mutate(chunks, &mut rng);
            let mut decoder = ChunkedDecoder::default();
            let mut data = 0;
            if let Ok(consumed) = decoder.decode(&mutated, |piece| data += piece.len()) {
                assert!(consumed <= mutated.len() && data <= mutated.len());
            }
        }
        assert!(parsed > 1000, "the mutations keep many heads valid ({parsed})");
    }
}
