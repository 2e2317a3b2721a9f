//! PROXY protocol (HAProxy) v1 and v2 headers, read before anything else on a connection when
//! `gateway.proxy_protocol` is on. Only the header is consumed: the reader stops at its last
//! byte, so the first byte of the client's own data is never swallowed.
//!
//! A `LOCAL` command (v2) or `UNKNOWN` family (v1) carries no client address; the socket peer is
//! kept then (health checks of the load balancer). TLVs of v2 are skipped.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use tokio::io::{AsyncRead, AsyncReadExt};

const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
const V1_MAX_LINE: usize = 107;

/// Why a PROXY header was refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ProxyHeaderError {
    #[error("connection closed or failed while reading the proxy protocol header: {0}")]
    Io(#[from] std::io::Error),
    #[error("malformed proxy protocol header: {0}")]
    Malformed(&'static str),
}

/// Reads one PROXY header; `Some(source address)` when it names the client.
pub(crate) async fn read_header<R: AsyncRead + Unpin>(reader: &mut R) -> Result<Option<SocketAddr>, ProxyHeaderError> {
    let mut start = [0_u8; 12];
    reader.read_exact(&mut start).await?;
    if start == V2_SIGNATURE {
        return read_v2(reader).await;
    }
    if !start.starts_with(b"PROXY ") {
        return Err(ProxyHeaderError::Malformed("missing signature"));
    }
    let mut line = start.to_vec();
    while !line.ends_with(b"\r\n") {
        if line.len() >= V1_MAX_LINE {
            return Err(ProxyHeaderError::Malformed("v1 line too long"));
        }
        line.push(reader.read_u8().await?);
    }
    parse_v1(&line[..line.len() - 2])
}

fn parse_v1(line: &[u8]) -> Result<Option<SocketAddr>, ProxyHeaderError> {
    let text = std::str::from_utf8(line).map_err(|_| ProxyHeaderError::Malformed("v1 line is not text"))?;
    let mut fields = text.split(' ');
    let _proxy = fields.next();
    match fields.next() {
        Some("UNKNOWN") => Ok(None),
        Some(family @ ("TCP4" | "TCP6")) => {
            let (Some(source), Some(_destination), Some(source_port), Some(_destination_port), None) =
                (fields.next(), fields.next(), fields.next(), fields.next(), fields.next())
            else {
                return Err(ProxyHeaderError::Malformed("v1 needs four address fields"));
            };
            let ip: IpAddr = source.parse().map_err(|_| ProxyHeaderError::Malformed("v1 source address"))?;
            if ip.is_ipv4() != (family == "TCP4") {
                return Err(ProxyHeaderError::Malformed("v1 address family mismatch"));
            }
            let port: u16 = source_port.parse().map_err(|_| ProxyHeaderError::Malformed("v1 source port"))?;
            Ok(Some(SocketAddr::new(ip, port)))
        }
        _ => Err(ProxyHeaderError::Malformed("v1 protocol family")),
    }
}

async fn read_v2<R: AsyncRead + Unpin>(reader: &mut R) -> Result<Option<SocketAddr>, ProxyHeaderError> {
    let mut head = [0_u8; 4];
    reader.read_exact(&mut head).await?;
    let [version_command, family, len_high, len_low] = head;
    if version_command >> 4 != 2 {
        return Err(ProxyHeaderError::Malformed("v2 version"));
    }
    let length = usize::from(u16::from_be_bytes([len_high, len_low]));
    let mut body = vec![0_u8; length];
    reader.read_exact(&mut body).await?;
    match version_command & 0x0f {
        0 => return Ok(None),
        1 => {}
        _ => return Err(ProxyHeaderError::Malformed("v2 command")),
    }
    match family >> 4 {
        0 => Ok(None),
        1 => {
            let bytes: [u8; 12] = body
                .get(..12)
                .and_then(|slice| slice.try_into().ok())
                .ok_or(ProxyHeaderError::Malformed("v2 ipv4 addresses truncated"))?;
            let ip = Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]);
            Ok(Some(SocketAddr::new(IpAddr::V4(ip), u16::from_be_bytes([bytes[8], bytes[9]]))))
        }
        2 => {
            let bytes: [u8; 36] = body
                .get(..36)
                .and_then(|slice| slice.try_into().ok())
                .ok_or(ProxyHeaderError::Malformed("v2 ipv6 addresses truncated"))?;
            let mut source = [0_u8; 16];
            source.copy_from_slice(&bytes[..16]);
            Ok(Some(SocketAddr::new(IpAddr::V6(Ipv6Addr::from(source)), u16::from_be_bytes([bytes[32], bytes[33]]))))
        }
        // AF_UNIX: no IP to report.
        3 => Ok(None),
        _ => Err(ProxyHeaderError::Malformed("v2 address family")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn parse(input: &[u8]) -> (Result<Option<SocketAddr>, String>, Vec<u8>) {
        let mut reader = input;
        let result = read_header(&mut reader).await.map_err(|error| error.to_string());
        (result, reader.to_vec())
    }

    #[tokio::test]
    async fn v1_tcp4_and_tcp6_leave_the_payload() {
        let (addr, rest) = parse(b"PROXY TCP4 198.51.100.1 10.0.0.1 40000 1337\r\nTOKEN\n").await;
        assert_eq!(addr.unwrap(), Some("198.51.100.1:40000".parse().unwrap()));
        assert_eq!(rest, b"TOKEN\n");
        let (addr, _) = parse(b"PROXY TCP6 2001:db8::1 2001:db8::2 1 2\r\n").await;
        assert_eq!(addr.unwrap(), Some("[2001:db8::1]:1".parse().unwrap()));
        let (addr, rest) = parse(b"PROXY UNKNOWN\r\nGET").await;
        assert_eq!(addr.unwrap(), None);
        assert_eq!(rest, b"GET");
    }

    #[tokio::test]
    async fn v1_garbage_is_refused() {
        assert!(parse(b"GET / HTTP/1.1\r\n\r\n").await.0.is_err());
        assert!(parse(b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n").await.0.is_err());
        assert!(parse(b"PROXY TCP4 2001:db8::1 5.6.7.8 1 2\r\n").await.0.is_err());
        assert!(parse(&[b"PROXY TCP4 ".as_slice(), &[b'1'; 200]].concat()).await.0.is_err());
        assert!(parse(b"PROXY TCP4 1.2.3.4").await.0.is_err(), "truncated");
    }

    fn v2(command: u8, family: u8, body: &[u8]) -> Vec<u8> {
        let mut bytes = V2_SIGNATURE.to_vec();
        bytes.push(0x20 | command);
        bytes.push(family);
        bytes.extend_from_slice(&u16::try_from(body.len()).unwrap().to_be_bytes());
        bytes.extend_from_slice(body);
        bytes
    }

    #[tokio::test]
    async fn v2_addresses_and_local() {
        let mut body = vec![203, 0, 113, 5, 10, 0, 0, 1];
        body.extend_from_slice(&5555_u16.to_be_bytes());
        body.extend_from_slice(&1337_u16.to_be_bytes());
        body.extend_from_slice(&[0x04, 0x00, 0x01, 0xff]); // a TLV
        let mut input = v2(1, 0x11, &body);
        input.extend_from_slice(b"payload");
        let (addr, rest) = parse(&input).await;
        assert_eq!(addr.unwrap(), Some("203.0.113.5:5555".parse().unwrap()));
        assert_eq!(rest, b"payload");

        let mut body6 = vec![0_u8; 36];
        body6[0] = 0x20;
        body6[1] = 0x01;
        body6[32..34].copy_from_slice(&80_u16.to_be_bytes());
        let (addr, _) = parse(&v2(1, 0x21, &body6)).await;
        assert_eq!(addr.unwrap(), Some("[2001::]:80".parse().unwrap()));

        let (addr, rest) = parse(&[v2(0, 0x00, &[]), b"x".to_vec()].concat()).await;
        assert_eq!(addr.unwrap(), None);
        assert_eq!(rest, b"x");
        assert!(parse(&v2(1, 0x11, &[1, 2, 3])).await.0.is_err(), "short ipv4 block");
        assert!(parse(&v2(7, 0x11, &[0; 12])).await.0.is_err(), "bad command");
    }
}
