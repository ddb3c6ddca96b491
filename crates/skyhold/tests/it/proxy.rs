//! A small HTTP/1.1 proxy in front of moto (127.0.0.1 only) that answers
//! the requests matching a rule with an error, or delays them, and forwards
//! everything else. Each connection carries one request (`Connection:
//! close`), which the SDK's client handles.

use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Clone, Debug)]
pub enum Fault {
    /// Answer with this HTTP status and body.
    Error { status: u16, body: String },
    /// Forward, but only after this long (a slow provider).
    Delay(Duration),
    /// Forward at once, but hold the answer this long (the call took
    /// effect; its answer is late or lost).
    HoldAnswer(Duration),
}

/// An EC2-protocol error body.
pub fn ec2_error(code: &str, message: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Errors><Error><Code>{code}</Code>\
         <Message>{message}</Message></Error></Errors><RequestID>proxy</RequestID></Response>"
    )
}

pub struct FaultProxy {
    pub endpoint: String,
    /// (substring of the request, fault)
    rules: Arc<Mutex<Vec<(String, Fault)>>>,
    /// Every request seen (to count calls of one operation).
    seen: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    pub async fn start(upstream: &str) -> FaultProxy {
        let upstream = upstream
            .strip_prefix("http://")
            .expect("http upstream")
            .to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
        let rules: Arc<Mutex<Vec<(String, Fault)>>> = Arc::default();
        let seen: Arc<Mutex<Vec<String>>> = Arc::default();
        let (r, s) = (rules.clone(), seen.clone());
        let task = tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                let (rules, seen) = (r.clone(), s.clone());
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    let _ = serve(conn, &upstream, &rules, &seen).await;
                });
            }
        });
        FaultProxy {
            endpoint,
            rules,
            seen,
            task,
        }
    }

    /// Requests containing `needle` (e.g. `Action=DescribeKeyPairs`) get `fault`.
    pub fn set(&self, needle: &str, fault: Fault) {
        let mut rules = self.rules.lock().unwrap_or_else(|p| p.into_inner());
        rules.retain(|(n, _)| n != needle);
        rules.push((needle.to_owned(), fault));
    }

    /// How many requests so far contained `needle` (e.g. `Action=StopInstances`).
    pub fn count(&self, needle: &str) -> usize {
        self.seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|t| t.contains(needle))
            .count()
    }

    pub fn clear(&self) {
        self.rules.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(
    mut conn: TcpStream,
    upstream: &str,
    rules: &Mutex<Vec<(String, Fault)>>,
    seen: &Mutex<Vec<String>>,
) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        let n = conn.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let n = conn.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let text = String::from_utf8_lossy(&buf).into_owned();
    seen.lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(text.clone());
    let fault = rules
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .find(|(needle, _)| text.contains(needle.as_str()))
        .map(|(_, f)| f.clone());
    match fault {
        Some(Fault::Error { status, body }) => {
            let res = format!(
                "HTTP/1.1 {status} Error\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            conn.write_all(res.as_bytes()).await?;
            conn.shutdown().await?;
            return Ok(());
        }
        Some(Fault::Delay(d)) => tokio::time::sleep(d).await,
        Some(Fault::HoldAnswer(_)) | None => {}
    }
    // Forward with `Connection: close`, then relay the answer until EOF.
    let mut out: Vec<u8> = Vec::with_capacity(buf.len() + 32);
    for line in head.split("\r\n").filter(|l| !l.is_empty()) {
        if line.to_ascii_lowercase().starts_with("connection:") {
            continue;
        }
        out.extend_from_slice(line.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"Connection: close\r\n\r\n");
    out.extend_from_slice(&buf[head_end..]);
    let mut up = TcpStream::connect(upstream).await?;
    up.write_all(&out).await?;
    if let Some(Fault::HoldAnswer(d)) = fault {
        let mut answer = Vec::new();
        up.read_to_end(&mut answer).await?;
        tokio::time::sleep(d).await;
        conn.write_all(&answer).await?;
    } else {
        tokio::io::copy(&mut up, &mut conn).await?;
    }
    conn.shutdown().await?;
    Ok(())
}
