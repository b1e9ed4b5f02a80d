//! A minimal HTTP/1.1 client for the measured requests only (set-up uses reqwest).
//!
//! The load generator shares the machine's two cores with the server and the database it
//! measures, so every cycle it spends is taken from them. This client writes a request with
//! one `write` on a kept-alive connection and reads the answer's status line and its
//! `Content-Length` or chunked body, nothing more. What it does not expect (an interim 1xx
//! answer, a body delimited by closing the connection, bytes after the answer) is an error,
//! and the connection is not reused.
//!
//! A request is never sent twice: the measured POSTs are not idempotent, so a connection
//! that fails is an error in the results. Connections idle longer than the server's
//! keep-alive could have closed are dropped instead of reused.

use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::Failure;

/// Idle connections kept for reuse; more are closed.
const MAX_IDLE: usize = 1_024;
/// How long a connection may sit idle and still be reused: under actix-web's default
/// keep-alive (5 s), after which the server may close it while a request is on its way.
const DEFAULT_MAX_IDLE_FOR: Duration = Duration::from_secs(2);

/// Kept-alive connections to one server, taken by one request at a time.
#[derive(Debug)]
pub struct Http1 {
    address: SocketAddr,
    host: String,
    max_idle_for: Duration,
    /// Each with the moment it was put back.
    idle: Mutex<Vec<(TcpStream, Instant)>>,
}

/// An answer: its status code and its body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Http1 {
    /// For a base URL of the form `http://host:port` (no TLS: the server under test is local).
    pub fn new(base_url: &str) -> Result<Self, Failure> {
        let url = reqwest::Url::parse(base_url)?;
        if url.scheme() != "http" {
            return Err(format!("{base_url}: the load generator speaks plain http only").into());
        }
        let address = url
            .socket_addrs(|| Some(80))?
            .into_iter()
            .next()
            .ok_or_else(|| format!("{base_url}: no address"))?;
        let host = match url.port() {
            Some(port) => format!("{}:{port}", url.host_str().unwrap_or_default()),
            None => url.host_str().unwrap_or_default().to_owned(),
        };
        Ok(Self {
            address,
            host,
            max_idle_for: DEFAULT_MAX_IDLE_FOR,
            idle: Mutex::new(Vec::new()),
        })
    }

    /// POSTs a JSON body with an `Authorization` header.
    pub async fn post(
        &self,
        path: &str,
        authorization: &str,
        body: &str,
    ) -> Result<Answer, Failure> {
        let mut request = Vec::with_capacity(160 + authorization.len() + body.len());
        request.extend_from_slice(b"POST ");
        request.extend_from_slice(path.as_bytes());
        request.extend_from_slice(b" HTTP/1.1\r\nHost: ");
        request.extend_from_slice(self.host.as_bytes());
        request.extend_from_slice(b"\r\nAuthorization: ");
        request.extend_from_slice(authorization.as_bytes());
        request.extend_from_slice(b"\r\nContent-Type: application/json\r\nContent-Length: ");
        request.extend_from_slice(body.len().to_string().as_bytes());
        request.extend_from_slice(b"\r\n\r\n");
        request.extend_from_slice(body.as_bytes());

        let mut stream = match self.take_idle()? {
            Some(stream) => stream,
            None => {
                let stream = TcpStream::connect(self.address).await?;
                stream.set_nodelay(true)?;
                stream
            }
        };
        let (answer, reusable) = exchange(&mut stream, &request).await?;
        if reusable {
            self.put_back(stream);
        }
        Ok(answer)
    }

    /// The most recently used idle connection that is fresh enough; older ones are closed.
    fn take_idle(&self) -> Result<Option<TcpStream>, Failure> {
        let mut idle = self.idle.lock().map_err(|_| "connection pool poisoned")?;
        while let Some((stream, since)) = idle.pop() {
            if since.elapsed() < self.max_idle_for {
                return Ok(Some(stream));
            }
        }
        Ok(None)
    }

    fn put_back(&self, stream: TcpStream) {
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < MAX_IDLE
        {
            idle.push((stream, Instant::now()));
        }
    }
}

/// Writes the request and reads one answer; also whether the connection may be reused.
async fn exchange(stream: &mut TcpStream, request: &[u8]) -> Result<(Answer, bool), Failure> {
    stream.write_all(request).await?;
    let mut buffer: Vec<u8> = Vec::with_capacity(1024);
    let head_end = loop {
        if stream.read_buf(&mut buffer).await? == 0 {
            return Err(if buffer.is_empty() {
                "connection closed before an answer".into()
            } else {
                "connection closed in the answer's head".into()
            });
        }
        if let Some(at) = find(&buffer, b"\r\n\r\n") {
            break at + 4;
        }
    };
    let head = std::str::from_utf8(&buffer[..head_end]).map_err(|_| "answer head is not text")?;
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .ok_or("answer without a status line")?;
    if status < 200 {
        return Err(format!("interim answer {status}: not expected from the server").into());
    }
    let (mut length, mut chunked, mut keep_alive) = (None, false, true);
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = Some(value.parse::<usize>().map_err(|_| "bad Content-Length")?);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.eq_ignore_ascii_case("chunked");
        } else if name.eq_ignore_ascii_case("connection") {
            keep_alive = !value.eq_ignore_ascii_case("close");
        }
    }
    let pending = buffer.split_off(head_end);
    let body = if chunked {
        read_chunked(stream, pending).await?
    } else if let Some(length) = length {
        let mut body = pending;
        while body.len() < length {
            if stream.read_buf(&mut body).await? == 0 {
                return Err("connection closed in the answer's body".into());
            }
        }
        if body.len() > length {
            return Err("bytes after the answer's body".into());
        }
        body
    } else {
        return Err("answer without Content-Length or chunked body".into());
    };
    Ok((Answer { status, body }, keep_alive))
}

/// Reads a chunked body to its last chunk; `pending` holds what was already read. Chunk
/// extensions are ignored; trailers and bytes after the body are errors.
async fn read_chunked(stream: &mut TcpStream, mut pending: Vec<u8>) -> Result<Vec<u8>, Failure> {
    let mut body = Vec::new();
    loop {
        let Some(line_end) = find(&pending, b"\r\n") else {
            if stream.read_buf(&mut pending).await? == 0 {
                return Err("connection closed in a chunk".into());
            }
            continue;
        };
        let size_text = std::str::from_utf8(&pending[..line_end]).map_err(|_| "bad chunk size")?;
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| "bad chunk size")?;
        // The chunk, then its CRLF (after the last, empty chunk: the body's final CRLF).
        let data = line_end + 2;
        let needed = data + size + 2;
        while pending.len() < needed {
            if stream.read_buf(&mut pending).await? == 0 {
                return Err("connection closed in a chunk".into());
            }
        }
        if &pending[data + size..needed] != b"\r\n" {
            return Err("a chunk not followed by CRLF (or trailers)".into());
        }
        body.extend_from_slice(&pending[data..data + size]);
        pending.drain(..needed);
        if size == 0 {
            if !pending.is_empty() {
                return Err("bytes after the answer's body".into());
            }
            return Ok(body);
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio::net::TcpListener;

    use super::Http1;

    /// A server that answers each request on a connection with the next canned answer, and
    /// reports how many connections it accepted.
    async fn serve(answers: Vec<&'static str>) -> (String, tokio::task::JoinHandle<usize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let url = format!("http://{}", listener.local_addr().expect("its address"));
        let server = tokio::spawn(async move {
            let mut answers = answers.into_iter();
            let mut connections = 0;
            // Ends after the last answer (the client keeps its last connection open).
            'accept: while answers.len() > 0 {
                let (mut socket, _) = listener.accept().await.expect("a connection");
                connections += 1;
                let mut buffer = Vec::new();
                loop {
                    // One request: its head, then the body its Content-Length announces.
                    let mut chunk = [0_u8; 4096];
                    let n = socket.read(&mut chunk).await.expect("a read");
                    if n == 0 {
                        continue 'accept;
                    }
                    buffer.extend_from_slice(&chunk[..n]);
                    let Some(head_end) = super::find(&buffer, b"\r\n\r\n") else {
                        continue;
                    };
                    let head = String::from_utf8_lossy(&buffer[..head_end]).to_lowercase();
                    let length: usize = head
                        .split("content-length: ")
                        .nth(1)
                        .and_then(|rest| rest.split("\r\n").next())
                        .and_then(|n| n.parse().ok())
                        .unwrap_or(0);
                    if buffer.len() < head_end + 4 + length {
                        continue;
                    }
                    buffer.drain(..head_end + 4 + length);
                    let Some(answer) = answers.next() else {
                        break 'accept;
                    };
                    socket.write_all(answer.as_bytes()).await.expect("a write");
                    if answer.contains("Connection: close") || answers.len() == 0 {
                        continue 'accept;
                    }
                }
            }
            connections
        });
        (url, server)
    }

    #[tokio::test]
    async fn answers_are_read_whole_and_connections_kept_alive_unless_closed() {
        let (url, server) = serve(vec![
            "HTTP/1.1 201 Created\r\nContent-Length: 11\r\n\r\n{\"id\":\"1\"}\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{\"a\"\r\n3\r\n:1}\r\n0\r\n\r\n",
            "HTTP/1.1 409 Conflict\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
            "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n",
        ])
        .await;
        let http = Http1::new(&url).expect("a client");
        let first = http.post("/a", "Bearer x", "{}").await.expect("an answer");
        assert_eq!(
            (first.status, first.body.as_slice()),
            (201, &b"{\"id\":\"1\"}\n"[..])
        );
        let second = http
            .post("/a", "Bearer x", "{\"b\":2}")
            .await
            .expect("an answer");
        assert_eq!(
            (second.status, second.body.as_slice()),
            (200, &b"{\"a\":1}"[..])
        );
        let third = http.post("/a", "Bearer x", "").await.expect("an answer");
        assert_eq!((third.status, third.body.as_slice()), (409, &b"{}"[..]));
        // The third answer closed its connection: the fourth request opens another.
        let fourth = http.post("/a", "Bearer x", "{}").await.expect("an answer");
        assert_eq!((fourth.status, fourth.body.len()), (204, 0));
        // A client that wrongly kept reading or reusing would hang here, not fail.
        let connections = tokio::time::timeout(Duration::from_secs(10), server)
            .await
            .expect("the server finished")
            .expect("the server");
        assert_eq!(connections, 2);
    }

    #[tokio::test]
    async fn a_connection_idle_too_long_is_not_reused() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let url = format!("http://{}", listener.local_addr().expect("its address"));
        // Answers one request on each of two connections, keeping both open.
        let server = tokio::spawn(async move {
            let mut open = Vec::new();
            for _ in 0..2 {
                let (mut socket, _) = listener.accept().await.expect("a connection");
                let mut chunk = [0_u8; 4096];
                let n = socket.read(&mut chunk).await.expect("a read");
                assert!(n > 0 && super::find(&chunk[..n], b"\r\n\r\n{}").is_some());
                socket
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                    .await
                    .expect("a write");
                open.push(socket);
            }
            open.len()
        });
        let mut http = Http1::new(&url).expect("a client");
        http.max_idle_for = Duration::from_millis(50);
        assert_eq!(
            http.post("/a", "Bearer x", "{}")
                .await
                .expect("first")
                .status,
            200
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        // Reusing the first connection would wait forever for an answer: the server no
        // longer reads it.
        let second =
            tokio::time::timeout(Duration::from_secs(10), http.post("/a", "Bearer x", "{}"))
                .await
                .expect("answered on a new connection")
                .expect("second");
        assert_eq!(second.status, 200);
        assert_eq!(server.await.expect("the server"), 2);
    }

    #[tokio::test]
    async fn answers_the_client_does_not_expect_are_errors() {
        for answer in [
            "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nbody until close",
            "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}XX0\r\n\r\n",
        ] {
            let (url, _server) = serve(vec![answer]).await;
            let http = Http1::new(&url).expect("a client");
            assert!(http.post("/a", "Bearer x", "{}").await.is_err(), "{answer}");
        }
    }

    #[tokio::test]
    async fn a_truncated_answer_is_an_error() {
        let (url, _server) = serve(vec![
            "HTTP/1.1 201 Created\r\nContent-Length: 50\r\nConnection: close\r\n\r\n{\"id\"",
        ])
        .await;
        let http = Http1::new(&url).expect("a client");
        assert!(http.post("/a", "Bearer x", "{}").await.is_err());
    }
}
