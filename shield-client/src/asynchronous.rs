//! The tokio client: one connection shared by every task, requests
//! pipelined and matched to their answers by id.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::OwnedWriteHalf;
use tokio::net::UnixStream;
use tokio::sync::{oneshot, Mutex};

use crate::common::{self, Error, FailMode, LineBuf, Settings};
use crate::wire::{Direction, Op, Response, StreamAction, Verdict};

type Pending = StdMutex<HashMap<u64, oneshot::Sender<Result<Response, Failure>>>>;

/// An async client of the scan API. Cheap to clone: clones share one
/// connection, on which any number of requests may be in flight.
///
/// Same surface and same failure rules as [`crate::Client`].
#[derive(Debug, Clone)]
pub struct AsyncClient {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    cfg: Settings,
    next_id: AtomicU64,
    conn: Mutex<Option<Arc<Conn>>>,
}

/// One connection: the write half behind a lock (one line at a time), and a
/// reader task handing each answer to the waiting request.
#[derive(Debug)]
struct Conn {
    writer: Mutex<OwnedWriteHalf>,
    pending: Arc<Pending>,
    /// Set by the reader on EOF or error, and by a cancelled write (a half
    /// written line leaves the stream unusable).
    dead: Arc<AtomicBool>,
    reader: tokio::task::JoinHandle<()>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// Removes a request's slot when its caller stops waiting (timeout or
/// cancellation), so the table cannot grow without bound.
struct Slot<'a> {
    pending: &'a Pending,
    id: u64,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        if let Ok(mut p) = self.pending.lock() {
            p.remove(&self.id);
        }
    }
}

/// Marks the connection dead unless the write it guards completed.
struct WriteGuard<'a> {
    dead: &'a AtomicBool,
    done: bool,
}

impl Drop for WriteGuard<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.dead.store(true, Ordering::Release);
        }
    }
}

/// Why one exchange failed: whether a new connection may help.
#[derive(Debug)]
enum Failure {
    /// The connection broke: reconnect once.
    Broken(std::io::Error),
    /// Anything else: report it.
    Final(Error),
}

impl AsyncClient {
    /// A client of the socket at `path`; nothing is opened until the first
    /// call.
    pub fn new(path: impl Into<PathBuf>) -> AsyncClient {
        AsyncClient::from_settings(Settings::new(path.into()))
    }

    /// A client of the socket at `path`, connected now.
    pub async fn connect(path: impl Into<PathBuf>) -> Result<AsyncClient, Error> {
        let c = AsyncClient::new(path);
        let timeout = c.inner.cfg.timeout;
        tokio::time::timeout(timeout, c.conn(false))
            .await
            .map_err(|_| Error::Timeout(timeout))??;
        Ok(c)
    }

    /// A client of the socket named by `SHIELD_SOCKET` (connected lazily).
    pub fn from_env() -> Result<AsyncClient, Error> {
        Ok(AsyncClient::new(common::env_socket()?))
    }

    fn from_settings(cfg: Settings) -> AsyncClient {
        AsyncClient {
            inner: Arc::new(Inner {
                cfg,
                next_id: AtomicU64::new(0),
                conn: Mutex::new(None),
            }),
        }
    }

    fn with(self, f: impl FnOnce(&mut Settings)) -> AsyncClient {
        let mut cfg = self.inner.cfg.clone();
        f(&mut cfg);
        AsyncClient::from_settings(cfg)
    }

    /// Time allowed for a whole call, connecting included (default 5 s).
    /// Returns a new client (with its own connection).
    pub fn with_timeout(self, timeout: Duration) -> AsyncClient {
        self.with(|c| c.timeout = timeout)
    }

    /// What the convenience calls return when shieldd cannot answer.
    pub fn with_fail_mode(self, mode: FailMode) -> AsyncClient {
        self.with(|c| c.fail_mode = mode)
    }

    /// Longest request line sent (default: the server's default limit).
    pub fn with_max_request(self, bytes: usize) -> AsyncClient {
        self.with(|c| c.max_request = bytes)
    }

    /// Longest response line read (default 16 MiB).
    pub fn with_max_response(self, bytes: usize) -> AsyncClient {
        self.with(|c| c.max_response = bytes)
    }

    /// The socket path.
    pub fn path(&self) -> &std::path::Path {
        &self.inner.cfg.path
    }

    /// The fail mode.
    pub fn fail_mode(&self) -> FailMode {
        self.inner.cfg.fail_mode
    }

    /// Scan `text`; on failure, the fail mode's verdict.
    pub async fn scan(&self, text: &str, direction: Direction) -> Verdict {
        let r = self.try_scan(text, direction).await;
        self.or_fail(r)
    }

    /// Scan text the agent reads.
    pub async fn scan_input(&self, text: &str) -> Verdict {
        self.scan(text, Direction::Inbound).await
    }

    /// Scan text the agent writes.
    pub async fn scan_output(&self, text: &str) -> Verdict {
        self.scan(text, Direction::Outbound).await
    }

    /// Check a tool call; on failure, the fail mode's verdict.
    pub async fn check_tool(&self, name: &str, params: &serde_json::Value) -> Verdict {
        let r = self.try_check_tool(name, params).await;
        self.or_fail(r)
    }

    /// Scan `text`, reporting failures.
    pub async fn try_scan(&self, text: &str, direction: Direction) -> Result<Verdict, Error> {
        let op = Op::Scan {
            text: text.to_owned(),
            direction,
        };
        common::into_verdict(self.call(op).await?)
    }

    /// Check a tool call, reporting failures.
    pub async fn try_check_tool(
        &self,
        name: &str,
        params: &serde_json::Value,
    ) -> Result<Verdict, Error> {
        let op = Op::CheckTool {
            tool: name.to_owned(),
            params: params.clone(),
        };
        common::into_verdict(self.call(op).await?)
    }

    /// Liveness check.
    pub async fn ping(&self) -> Result<(), Error> {
        common::into_ok(self.call(Op::Ping).await?).map(drop)
    }

    /// The server's counters.
    pub async fn stats(&self) -> Result<serde_json::Value, Error> {
        common::into_ok(self.call(Op::Stats).await?)?
            .stats
            .ok_or_else(|| Error::Protocol("stats response without stats".into()))
    }

    /// Start a streaming scan; when it cannot be opened, every push answers
    /// with the fail mode's verdict.
    pub async fn open_stream(&self, direction: Direction) -> AsyncStream {
        match self.try_open_stream(direction).await {
            Ok(s) => s,
            Err(e) => AsyncStream {
                client: self.clone(),
                conn: None,
                handle: None,
                failed: Some(e),
            },
        }
    }

    /// Start a streaming scan, reporting failures.
    pub async fn try_open_stream(&self, direction: Direction) -> Result<AsyncStream, Error> {
        let op = Op::ScanStream {
            action: StreamAction::Open,
            stream: None,
            text: String::new(),
            direction,
        };
        let timeout = self.inner.cfg.timeout;
        let (conn, r) = tokio::time::timeout(timeout, self.call_inner(op))
            .await
            .map_err(|_| Error::Timeout(timeout))??;
        let r = common::into_ok(r)?;
        let handle = r
            .stream
            .ok_or_else(|| Error::Protocol("stream open without a handle".into()))?;
        Ok(AsyncStream {
            client: self.clone(),
            conn: Some(conn),
            handle: Some(handle),
            failed: None,
        })
    }

    fn or_fail(&self, r: Result<Verdict, Error>) -> Verdict {
        r.unwrap_or_else(|_| self.inner.cfg.fail_mode.verdict())
    }

    fn next_id(&self) -> u64 {
        self.inner
            .next_id
            .fetch_add(1, Ordering::Relaxed)
            .wrapping_add(1)
    }

    /// The live connection, opened when there is none (or `fresh` asks to
    /// replace a broken one). Returns it and whether it was just opened.
    async fn conn(&self, fresh: bool) -> Result<(Arc<Conn>, bool), Error> {
        let mut slot = self.inner.conn.lock().await;
        if let Some(c) = slot.as_ref() {
            if !fresh && !c.dead.load(Ordering::Acquire) {
                return Ok((c.clone(), false));
            }
        }
        *slot = None;
        let path = &self.inner.cfg.path;
        let sock = UnixStream::connect(path)
            .await
            .map_err(|e| Error::unavailable(path, e))?;
        let (mut rd, wr) = sock.into_split();
        let pending: Arc<Pending> = Arc::default();
        let dead = Arc::new(AtomicBool::new(false));
        let max = self.inner.cfg.max_response;
        let reader = {
            let pending = pending.clone();
            let dead = dead.clone();
            tokio::spawn(async move {
                let why = read_loop(&mut rd, &pending, max).await;
                dead.store(true, Ordering::Release);
                let waiters: Vec<_> = match pending.lock() {
                    Ok(mut p) => p.drain().map(|(_, tx)| tx).collect(),
                    Err(_) => Vec::new(),
                };
                for tx in waiters {
                    let f = match &why {
                        ReadEnd::Io(e) => {
                            Failure::Broken(std::io::Error::new(e.kind(), e.to_string()))
                        }
                        ReadEnd::Protocol(e) => Failure::Final(e.clone()),
                    };
                    let _ = tx.send(Err(f));
                }
            })
        };
        let conn = Arc::new(Conn {
            writer: Mutex::new(wr),
            pending,
            dead,
            reader,
        });
        *slot = Some(conn.clone());
        Ok((conn, true))
    }

    async fn call(&self, op: Op) -> Result<Response, Error> {
        let timeout = self.inner.cfg.timeout;
        tokio::time::timeout(timeout, self.call_inner(op))
            .await
            .map_err(|_| Error::Timeout(timeout))?
            .map(|(_, r)| r)
    }

    /// One request on the shared connection, reconnecting once when a
    /// reused connection turns out broken.
    async fn call_inner(&self, op: Op) -> Result<(Arc<Conn>, Response), Error> {
        let id = self.next_id();
        let line = common::encode(id, op, self.inner.cfg.max_request)?;
        let path = &self.inner.cfg.path;
        let (conn, fresh) = self.conn(false).await?;
        match exchange(&conn, &line, id).await {
            Ok(r) => Ok((conn, r)),
            Err(Failure::Final(e)) => Err(e),
            Err(Failure::Broken(e)) => {
                conn.dead.store(true, Ordering::Release);
                if fresh {
                    return Err(Error::unavailable(path, e));
                }
                // The server restarted or dropped an idle connection: try
                // once on a fresh one.
                let (conn, _) = self.conn(false).await?;
                match exchange(&conn, &line, id).await {
                    Ok(r) => Ok((conn, r)),
                    Err(Failure::Broken(e)) => Err(Error::unavailable(path, e)),
                    Err(Failure::Final(e)) => Err(e),
                }
            }
        }
    }
}

/// Send `line` on `conn` and wait for the answer with `id`.
async fn exchange(conn: &Conn, line: &[u8], id: u64) -> Result<Response, Failure> {
    let (tx, rx) = oneshot::channel();
    if let Ok(mut p) = conn.pending.lock() {
        p.insert(id, tx);
    }
    let _slot = Slot {
        pending: &conn.pending,
        id,
    };
    if conn.dead.load(Ordering::Acquire) {
        return Err(Failure::Broken(closed()));
    }
    {
        let mut w = conn.writer.lock().await;
        let mut guard = WriteGuard {
            dead: &conn.dead,
            done: false,
        };
        if let Err(e) = w.write_all(line).await {
            return Err(Failure::Broken(e));
        }
        guard.done = true;
    }
    match rx.await {
        Ok(r) => r,
        // The reader ended without answering (connection dropped).
        Err(_) => Err(Failure::Broken(closed())),
    }
}

fn closed() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::UnexpectedEof,
        "shieldd closed the connection",
    )
}

enum ReadEnd {
    Io(std::io::Error),
    Protocol(Error),
}

/// Read answers until the connection ends, handing each to its waiter.
async fn read_loop(
    rd: &mut tokio::net::unix::OwnedReadHalf,
    pending: &Pending,
    max: usize,
) -> ReadEnd {
    let mut lines = LineBuf::default();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        loop {
            let line = match lines.take_line(max) {
                Ok(Some(l)) => l,
                Ok(None) => break,
                Err(e) => return ReadEnd::Protocol(e),
            };
            let r = match common::decode(&line) {
                Ok(r) => r,
                Err(e) => return ReadEnd::Protocol(e),
            };
            // An answer without one of our ids cannot be routed; with the
            // size check in `encode` the server has no reason to send one.
            let Some(id) = common::response_id(&r) else {
                continue;
            };
            let tx = pending.lock().ok().and_then(|mut p| p.remove(&id));
            if let Some(tx) = tx {
                let _ = tx.send(Ok(r));
            }
        }
        match rd.read(&mut chunk).await {
            Ok(0) => return ReadEnd::Io(closed()),
            Ok(n) => lines
                .buf
                .extend_from_slice(chunk.get(..n).unwrap_or_default()),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return ReadEnd::Io(e),
        }
    }
}

/// A streaming scan opened by [`AsyncClient::open_stream`]. Bound to the
/// connection it was opened on: if that breaks, the stream is gone.
#[derive(Debug)]
pub struct AsyncStream {
    client: AsyncClient,
    conn: Option<Arc<Conn>>,
    handle: Option<u64>,
    failed: Option<Error>,
}

impl AsyncStream {
    /// Add a chunk; on failure, the fail mode's verdict.
    pub async fn push(&mut self, chunk: &str) -> Verdict {
        let r = self.try_push(chunk).await;
        self.client.or_fail(r)
    }

    /// Add a chunk, reporting failures.
    pub async fn try_push(&mut self, chunk: &str) -> Result<Verdict, Error> {
        let (conn, h) = self.live()?;
        let op = Op::ScanStream {
            action: StreamAction::Chunk,
            stream: Some(h),
            text: chunk.to_owned(),
            direction: Direction::default(),
        };
        self.step(conn, op).await
    }

    /// End the stream; on failure, the fail mode's verdict.
    pub async fn close(mut self) -> Verdict {
        let r = self.try_close_inner().await;
        self.client.or_fail(r)
    }

    /// End the stream, reporting failures.
    pub async fn try_close(mut self) -> Result<Verdict, Error> {
        self.try_close_inner().await
    }

    /// The server's handle of this stream (`None` when it failed to open).
    pub fn handle(&self) -> Option<u64> {
        self.handle
    }

    async fn try_close_inner(&mut self) -> Result<Verdict, Error> {
        let (conn, h) = self.live()?;
        self.handle = None;
        let op = Op::ScanStream {
            action: StreamAction::Close,
            stream: Some(h),
            text: String::new(),
            direction: Direction::default(),
        };
        self.step(conn, op).await
    }

    async fn step(&self, conn: Arc<Conn>, op: Op) -> Result<Verdict, Error> {
        let id = self.client.next_id();
        let cfg = &self.client.inner.cfg;
        let line = common::encode(id, op, cfg.max_request)?;
        let r = tokio::time::timeout(cfg.timeout, exchange(&conn, &line, id))
            .await
            .map_err(|_| Error::Timeout(cfg.timeout))?;
        match r {
            Ok(r) => common::into_verdict(r),
            Err(Failure::Broken(_)) => Err(Error::StreamLost("its connection was lost")),
            Err(Failure::Final(e)) => Err(e),
        }
    }

    fn live(&self) -> Result<(Arc<Conn>, u64), Error> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let (Some(conn), Some(h)) = (&self.conn, self.handle) else {
            return Err(Error::StreamLost("already closed"));
        };
        if conn.dead.load(Ordering::Acquire) {
            return Err(Error::StreamLost("its connection was lost"));
        }
        Ok((conn.clone(), h))
    }
}

impl Drop for AsyncStream {
    fn drop(&mut self) {
        let Ok((conn, h)) = self.live() else { return };
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        // The server holds a bounded number of streams per connection, so an
        // abandoned one is released in the background.
        let client = self.client.clone();
        rt.spawn(async move {
            let op = Op::ScanStream {
                action: StreamAction::Close,
                stream: Some(h),
                text: String::new(),
                direction: Direction::default(),
            };
            let id = client.next_id();
            let cfg = &client.inner.cfg;
            if let Ok(line) = common::encode(id, op, cfg.max_request) {
                let _ = tokio::time::timeout(cfg.timeout, exchange(&conn, &line, id)).await;
            }
        });
    }
}
