//! A keep-alive HTTP/1.1 GET client for timing query answers: the clock
//! stops when the last byte of the body has arrived, and only then is a
//! gzip body inflated. A general client (ureq) inflates while it reads, so
//! the client's own inflate (1-3 ms for a large dashboard answer on the
//! benchmark machine) was timed as part of every system's latency; parsing
//! the JSON was never timed, and inflating it is the same kind of work.
//!
//! The request asks for gzip, as Grafana, promtool and browsers do, so the
//! servers' compression stays inside the timed interval.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// One server's connection, opened on first use and reopened when the
/// server closed it.
pub struct Client {
    host: String,
    timeout: Duration,
    conn: Option<BufReader<TcpStream>>,
}

/// An answer: the time to its last byte, its status and its body (inflated).
pub struct Answer {
    pub elapsed: Duration,
    pub status: u16,
    pub body: Vec<u8>,
}

impl Client {
    /// `host` as `127.0.0.1:9090`.
    pub fn new(host: &str, timeout: Duration) -> Client {
        Client {
            host: host.to_string(),
            timeout,
            conn: None,
        }
    }

    /// GETs `path` with `params` URL-encoded. A request on a reused
    /// connection that fails before any answer arrives is sent again once
    /// on a new connection (the server may have closed an idle one).
    pub fn get(&mut self, path: &str, params: &[(&str, String)]) -> Result<Answer> {
        let target = target(path, params);
        let reused = self.conn.is_some();
        match self.try_get(&target) {
            Ok(a) => Ok(a),
            Err(Failure::BeforeAnswer(e)) if reused => {
                self.conn = None;
                self.try_get(&target)
                    .map_err(Failure::into_error)
                    .context(e)
            }
            Err(f) => {
                self.conn = None;
                Err(f.into_error())
            }
        }
    }

    fn try_get(&mut self, target: &str) -> Result<Answer, Failure> {
        if self.conn.is_none() {
            let s = TcpStream::connect(&self.host)
                .with_context(|| format!("connecting to {}", self.host))
                .map_err(Failure::Other)?;
            s.set_nodelay(true).ok();
            s.set_read_timeout(Some(self.timeout)).ok();
            s.set_write_timeout(Some(self.timeout)).ok();
            self.conn = Some(BufReader::with_capacity(256 * 1024, s));
        }
        let conn = self.conn.as_mut().expect("connected above");
        let request = format!(
            "GET {target} HTTP/1.1\r\nHost: {}\r\nUser-Agent: silt-bench\r\nAccept: */*\r\nAccept-Encoding: gzip\r\n\r\n",
            self.host
        );
        let t0 = Instant::now();
        conn.get_mut()
            .write_all(request.as_bytes())
            .map_err(|e| Failure::BeforeAnswer(format!("sending: {e}")))?;
        let mut line = String::new();
        match conn.read_line(&mut line) {
            Ok(0) => return Err(Failure::BeforeAnswer("connection closed".into())),
            Err(e) => return Err(Failure::BeforeAnswer(format!("reading the status: {e}"))),
            Ok(_) => {}
        }
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("bad status line {line:?}"))
            .map_err(Failure::Other)?;
        let head = read_head(conn).map_err(Failure::Other)?;
        let raw = read_body(conn, &head).map_err(Failure::Other)?;
        let elapsed = t0.elapsed();
        if head.close {
            self.conn = None;
        }
        let body = if head.gzip {
            let mut out = Vec::with_capacity(raw.len() * 8);
            flate2::read::GzDecoder::new(&raw[..])
                .read_to_end(&mut out)
                .context("inflating the answer")
                .map_err(Failure::Other)?;
            out
        } else {
            raw
        };
        Ok(Answer {
            elapsed,
            status,
            body,
        })
    }
}

enum Failure {
    /// Nothing of an answer arrived: worth a retry on a new connection.
    BeforeAnswer(String),
    Other(anyhow::Error),
}

impl Failure {
    fn into_error(self) -> anyhow::Error {
        match self {
            Failure::BeforeAnswer(s) => anyhow::anyhow!(s),
            Failure::Other(e) => e,
        }
    }
}

/// What the headers say about the body.
#[derive(Default)]
struct Head {
    length: Option<usize>,
    chunked: bool,
    gzip: bool,
    close: bool,
}

fn read_head(conn: &mut BufReader<TcpStream>) -> Result<Head> {
    let mut head = Head::default();
    loop {
        let mut line = String::new();
        if conn.read_line(&mut line)? == 0 {
            bail!("connection closed in the headers");
        }
        let line = line.trim_end();
        if line.is_empty() {
            return Ok(head);
        }
        let Some((name, value)) = line.split_once(':') else {
            bail!("bad header line {line:?}");
        };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "content-length" => head.length = Some(value.parse().context("content-length")?),
            "transfer-encoding" => head.chunked = value.eq_ignore_ascii_case("chunked"),
            "content-encoding" => head.gzip = value.eq_ignore_ascii_case("gzip"),
            "connection" => head.close = value.eq_ignore_ascii_case("close"),
            _ => {}
        }
    }
}

fn read_body(conn: &mut BufReader<TcpStream>, head: &Head) -> Result<Vec<u8>> {
    let mut body = Vec::new();
    if head.chunked {
        loop {
            let mut line = String::new();
            conn.read_line(&mut line)?;
            let size_text = line.trim().split(';').next().unwrap_or("");
            let size = usize::from_str_radix(size_text, 16)
                .with_context(|| format!("bad chunk size {line:?}"))?;
            if size == 0 {
                // Trailers, if any, end with an empty line.
                loop {
                    let mut t = String::new();
                    if conn.read_line(&mut t)? == 0 || t.trim().is_empty() {
                        return Ok(body);
                    }
                }
            }
            let start = body.len();
            body.resize(start + size, 0);
            conn.read_exact(&mut body[start..])?;
            let mut crlf = [0u8; 2];
            conn.read_exact(&mut crlf)?;
        }
    } else if let Some(n) = head.length {
        body.resize(n, 0);
        conn.read_exact(&mut body)?;
        Ok(body)
    } else {
        conn.read_to_end(&mut body)?;
        Ok(body)
    }
}

/// `path?k=v&...` with the values percent-encoded.
fn target(path: &str, params: &[(&str, String)]) -> String {
    use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
    let mut t = path.to_string();
    for (i, (k, v)) in params.iter().enumerate() {
        t.push(if i == 0 { '?' } else { '&' });
        t.push_str(&utf8_percent_encode(k, NON_ALPHANUMERIC).to_string());
        t.push('=');
        t.push_str(&utf8_percent_encode(v, NON_ALPHANUMERIC).to_string());
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// A server that answers each request on one connection from `answers`.
    fn serve(answers: Vec<Vec<u8>>) -> String {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        std::thread::spawn(move || {
            let (s, _) = l.accept().unwrap();
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut w = s;
            for a in answers {
                // Read one request (up to its empty line).
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap() == 0 {
                        return;
                    }
                    if line == "\r\n" {
                        break;
                    }
                }
                w.write_all(&a).unwrap();
            }
        });
        addr
    }

    #[test]
    fn reads_lengths_chunks_and_gzip_on_one_connection() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"{\"status\":\"success\"}").unwrap();
        let gz = gz.finish().unwrap();
        let mut chunked_gzip =
            b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"
                .to_vec();
        for piece in gz.chunks(7) {
            chunked_gzip.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
            chunked_gzip.extend_from_slice(piece);
            chunked_gzip.extend_from_slice(b"\r\n");
        }
        chunked_gzip.extend_from_slice(b"0\r\n\r\n");
        let addr = serve(vec![
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 5\r\n\r\nhello".to_vec(),
            chunked_gzip,
        ]);
        let mut c = Client::new(&addr, Duration::from_secs(5));
        let a = c
            .get("/api/v1/query", &[("query", "up{a=\"b c\"}".into())])
            .unwrap();
        assert_eq!((a.status, &a.body[..]), (400, &b"hello"[..]));
        let a = c.get("/api/v1/query", &[]).unwrap();
        assert_eq!(
            (a.status, &a.body[..]),
            (200, &b"{\"status\":\"success\"}"[..])
        );
    }

    #[test]
    fn values_are_percent_encoded() {
        assert_eq!(
            target(
                "/q",
                &[
                    ("query", "rate(x{a=~\"b|c\"}[5m])".into()),
                    ("time", "1.5".into())
                ]
            ),
            "/q?query=rate%28x%7Ba%3D%7E%22b%7Cc%22%7D%5B5m%5D%29&time=1%2E5"
        );
    }
}
