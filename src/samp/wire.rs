//! The little HTTP that XML-RPC needs, both ways: the hub reads POSTed calls and answers them,
//! and posts calls to its clients' callback servers. One request per connection
//! (`Connection: close`), bodies sized by `Content-Length` (answers may also be chunked or end
//! with the connection), and a cap on every size, so no client can make the hub hold more.
//!
//! Not `crate::http`: that client is for the platform's APIs (TLS, retries, proxies), while
//! SAMP speaks plain HTTP to addresses on the session's own network, where a retry could
//! deliver a message twice and a proxy would be wrong.

use std::net::IpAddr;
use std::time::Duration;

use tokio::io::{
    AsyncBufRead, AsyncBufReadExt as _, AsyncRead, AsyncReadExt as _, AsyncWrite,
    AsyncWriteExt as _,
};

/// The most a request or answer may hold: SAMP messages are small, but a list of ten thousand
/// rows is not unusual.
pub const MOST_BYTES: usize = 32 << 20;

/// What went wrong with one HTTP exchange.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{url} is not an http:// URL with a host")]
    NotHttp { url: String },
    #[error("failed to reach {url}: {source}")]
    Io { url: String, source: std::io::Error },
    #[error("{url} did not answer within {} s", .seconds)]
    Timeout { url: String, seconds: u64 },
    #[error("{url} answered HTTP {code}")]
    Status { url: String, code: u16 },
    #[error("{url} sent a malformed HTTP message: {what}")]
    Malformed { url: String, what: String },
}

/// Where a callback server listens: an `http://host:port/path` URL taken apart.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Endpoint {
    /// A name, or an address (IPv6 without brackets).
    pub host: String,
    pub port: u16,
    /// The path and query, starting with `/`.
    pub path: String,
}

impl Endpoint {
    pub fn parse(url: &str) -> Result<Endpoint, Error> {
        let not_http = || Error::NotHttp {
            url: url.to_owned(),
        };
        let rest = url
            .strip_prefix("http://")
            .or_else(|| url.strip_prefix("HTTP://"))
            .ok_or_else(not_http)?;
        let (authority, path) = match rest.find('/') {
            Some(at) => (&rest[..at], &rest[at..]),
            None => (rest, "/"),
        };
        // Credentials in a callback URL are not SAMP's; leave them out rather than send them.
        let authority = authority.rsplit('@').next().unwrap_or(authority);
        let (host, port) = if let Some(inner) = authority.strip_prefix('[') {
            let (host, after) = inner.split_once(']').ok_or_else(not_http)?;
            (host, after.strip_prefix(':'))
        } else {
            match authority.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            }
        };
        let port = match port {
            Some(port) => port.parse().map_err(|_| not_http())?,
            None => 80,
        };
        if host.is_empty() {
            return Err(not_http());
        }
        Ok(Endpoint {
            host: host.to_owned(),
            port,
            path: path.to_owned(),
        })
    }

    /// The same endpoint on another host.
    pub fn with_host(&self, host: IpAddr) -> Endpoint {
        Endpoint {
            host: host.to_string(),
            ..self.clone()
        }
    }

    /// The host as an address, when it is one.
    pub fn address(&self) -> Option<IpAddr> {
        self.host.parse().ok()
    }

    pub fn url(&self) -> String {
        match self.address() {
            Some(IpAddr::V6(v6)) => format!("http://[{v6}]:{}{}", self.port, self.path),
            _ => format!("http://{}:{}{}", self.host, self.port, self.path),
        }
    }
}

/// A request the hub received.
#[derive(Debug)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub body: Vec<u8>,
}

/// Reads one request from a connection. `peer` names the other side in errors.
pub async fn read_request(stream: impl AsyncRead + Unpin, peer: &str) -> Result<Request, Error> {
    let mut reader = tokio::io::BufReader::new(stream);
    let head = read_head(&mut reader, peer).await?;
    let mut words = head.first_line.split_whitespace();
    let (Some(method), Some(path)) = (words.next(), words.next()) else {
        return Err(malformed(peer, "no request line"));
    };
    let body = if head.chunked {
        return Err(malformed(
            peer,
            "chunked requests are not read; send a Content-Length",
        ));
    } else {
        read_sized(&mut reader, head.length.unwrap_or(0), peer).await?
    };
    Ok(Request {
        method: method.to_owned(),
        path: path.to_owned(),
        body,
    })
}

/// Writes an answer and ends the connection.
pub async fn write_response(
    mut stream: impl AsyncWrite + Unpin,
    code: u16,
    reason: &str,
    body: &str,
) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: text/xml\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.flush().await?;
    stream.shutdown().await
}

/// POSTs an XML-RPC document to `endpoint` and returns the answer's body, within `timeout` for
/// the whole exchange.
pub async fn post(endpoint: &Endpoint, body: &str, timeout: Duration) -> Result<String, Error> {
    let url = endpoint.url();
    match tokio::time::timeout(timeout, exchange(endpoint, body, &url)).await {
        Ok(result) => result,
        Err(_) => Err(Error::Timeout {
            url,
            seconds: timeout.as_secs(),
        }),
    }
}

async fn exchange(endpoint: &Endpoint, body: &str, url: &str) -> Result<String, Error> {
    let io = |source| Error::Io {
        url: url.to_owned(),
        source,
    };
    let mut stream = match endpoint.address() {
        Some(address) => tokio::net::TcpStream::connect((address, endpoint.port)).await,
        None => tokio::net::TcpStream::connect((endpoint.host.as_str(), endpoint.port)).await,
    }
    .map_err(io)?;
    let host = match endpoint.address() {
        Some(IpAddr::V6(v6)) => format!("[{v6}]:{}", endpoint.port),
        _ => format!("{}:{}", endpoint.host, endpoint.port),
    };
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: arcade-samp-hub\r\n\
         Content-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        endpoint.path,
        body.len()
    );
    stream.write_all(head.as_bytes()).await.map_err(io)?;
    stream.write_all(body.as_bytes()).await.map_err(io)?;
    stream.flush().await.map_err(io)?;
    let mut reader = tokio::io::BufReader::new(stream);
    let head = read_head(&mut reader, url).await?;
    let code = head
        .first_line
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse::<u16>().ok())
        .ok_or_else(|| malformed(url, "no status code"))?;
    let body = if head.chunked {
        read_chunked(&mut reader, url).await?
    } else if let Some(length) = head.length {
        read_sized(&mut reader, length, url).await?
    } else {
        let mut body = Vec::new();
        (&mut reader)
            .take(MOST_BYTES as u64 + 1)
            .read_to_end(&mut body)
            .await
            .map_err(io)?;
        if body.len() > MOST_BYTES {
            return Err(malformed(url, "the answer is too large"));
        }
        body
    };
    if code != 200 {
        return Err(Error::Status {
            url: url.to_owned(),
            code,
        });
    }
    String::from_utf8(body).map_err(|_| malformed(url, "the answer is not UTF-8"))
}

/// The start of an HTTP message: its first line, and what its headers say of the body.
struct Head {
    first_line: String,
    length: Option<usize>,
    chunked: bool,
}

async fn read_head(reader: &mut (impl AsyncBufRead + Unpin), peer: &str) -> Result<Head, Error> {
    const MOST_HEAD: usize = 64 << 10;
    let mut read = 0;
    let mut line = String::new();
    let mut next_line = async |line: &mut String| -> Result<(), Error> {
        line.clear();
        let n = reader.read_line(line).await.map_err(|source| Error::Io {
            url: peer.to_owned(),
            source,
        })?;
        read += n;
        if n == 0 {
            return Err(malformed(peer, "the connection ended in the header"));
        }
        if read > MOST_HEAD {
            return Err(malformed(peer, "the header is too large"));
        }
        Ok(())
    };
    next_line(&mut line).await?;
    let first_line = line.trim().to_owned();
    let mut head = Head {
        first_line,
        length: None,
        chunked: false,
    };
    loop {
        next_line(&mut line).await?;
        let header = line.trim_end_matches(['\r', '\n']);
        if header.is_empty() {
            break;
        }
        let Some((name, value)) = header.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            let length: usize = value
                .parse()
                .map_err(|_| malformed(peer, "a Content-Length that is no number"))?;
            if length > MOST_BYTES {
                return Err(malformed(peer, "the body is too large"));
            }
            head.length = Some(length);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            head.chunked = value.to_ascii_lowercase().contains("chunked");
        }
    }
    Ok(head)
}

async fn read_sized(
    reader: &mut (impl AsyncRead + Unpin),
    length: usize,
    peer: &str,
) -> Result<Vec<u8>, Error> {
    let mut body = vec![0; length];
    reader
        .read_exact(&mut body)
        .await
        .map_err(|source| Error::Io {
            url: peer.to_owned(),
            source,
        })?;
    Ok(body)
}

async fn read_chunked(
    reader: &mut (impl AsyncBufRead + Unpin),
    peer: &str,
) -> Result<Vec<u8>, Error> {
    let io = |source| Error::Io {
        url: peer.to_owned(),
        source,
    };
    let mut body = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        reader.read_line(&mut line).await.map_err(io)?;
        let size = line.trim().split(';').next().unwrap_or_default();
        let size = usize::from_str_radix(size, 16)
            .map_err(|_| malformed(peer, "a chunk size that is no number"))?;
        if size == 0 {
            return Ok(body);
        }
        if body.len() + size > MOST_BYTES {
            return Err(malformed(peer, "the body is too large"));
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..]).await.map_err(io)?;
        line.clear();
        reader.read_line(&mut line).await.map_err(io)?;
    }
}

fn malformed(peer: &str, what: &str) -> Error {
    Error::Malformed {
        url: peer.to_owned(),
        what: what.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_from_callback_urls() {
        let endpoint = Endpoint::parse("http://ds9-8-4:41234/RPC2").unwrap();
        assert_eq!(
            endpoint,
            Endpoint {
                host: "ds9-8-4".into(),
                port: 41234,
                path: "/RPC2".into()
            }
        );
        let v6 = Endpoint::parse("http://[::1]:80/x?y").unwrap();
        assert_eq!(v6.host, "::1");
        assert_eq!(
            v6.with_host("10.0.0.5".parse().unwrap()).url(),
            "http://10.0.0.5:80/x?y"
        );
        assert_eq!(v6.url(), "http://[::1]:80/x?y");
        assert_eq!(
            Endpoint::parse("http://host").unwrap().url(),
            "http://host:80/"
        );
        for bad in [
            "https://host/",
            "ftp://x",
            "http://:80/",
            "http://host:port/",
        ] {
            assert!(Endpoint::parse(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn a_request_and_its_answer() {
        let request = b"POST /xmlrpc HTTP/1.1\r\nHost: x\r\ncontent-length: 5\r\n\r\nhello";
        let read = read_request(&request[..], "test").await.unwrap();
        assert_eq!(
            (read.method.as_str(), read.path.as_str()),
            ("POST", "/xmlrpc")
        );
        assert_eq!(read.body, b"hello");

        let mut answer = Vec::new();
        write_response(&mut answer, 200, "OK", "<x/>")
            .await
            .unwrap();
        let text = String::from_utf8(answer).unwrap();
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
        assert!(
            text.ends_with("Content-Length: 4\r\nConnection: close\r\n\r\n<x/>"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn sizes_are_capped() {
        let request = format!(
            "POST / HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
            MOST_BYTES + 1
        );
        let err = read_request(request.as_bytes(), "test").await.unwrap_err();
        assert!(err.to_string().contains("too large"), "{err}");
    }

    #[tokio::test]
    async fn chunked_answers_are_read() {
        let mut reader =
            tokio::io::BufReader::new(&b"4\r\nWiki\r\n5;x=y\r\npedia\r\n0\r\n\r\n"[..]);
        assert_eq!(
            read_chunked(&mut reader, "test").await.unwrap(),
            b"Wikipedia"
        );
    }
}
