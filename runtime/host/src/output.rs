//! Guest stdout/stderr: forwarded line by line to the node's log, and the
//! tail kept so that a trap's error can say what the guest printed last (a
//! Rust guest's panic message goes to stderr just before it traps).

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};

/// Bytes of recent output kept for error messages.
const TAIL: usize = 2048;

/// One guest stream (stdout or stderr) of one activation.
#[derive(Clone)]
pub(crate) struct GuestOutput {
    inner: Arc<Mutex<Buffer>>,
}

struct Buffer {
    actor: String,
    stream: &'static str,
    line: Vec<u8>,
    tail: Vec<u8>,
}

impl GuestOutput {
    pub(crate) fn new(actor: &str, stream: &'static str) -> Self {
        let buffer = Buffer { actor: actor.to_string(), stream, line: Vec::new(), tail: Vec::new() };
        Self { inner: Arc::new(Mutex::new(buffer)) }
    }

    /// The last lines written, trimmed.
    pub(crate) fn tail(&self) -> String {
        let buffer = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let mut text = String::from_utf8_lossy(&buffer.tail).into_owned();
        text.push_str(&String::from_utf8_lossy(&buffer.line));
        text.trim().to_string()
    }

    /// Forgets the tail (at the start of each turn).
    pub(crate) fn clear(&self) {
        let mut buffer = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        buffer.tail.clear();
    }

    fn write(&self, bytes: &[u8]) {
        let mut b = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        for &byte in bytes {
            if byte == b'\n' {
                let line = std::mem::take(&mut b.line);
                if !line.iter().all(u8::is_ascii_whitespace) {
                    tracing::info!(actor = %b.actor, stream = b.stream, "{}", String::from_utf8_lossy(&line));
                }
                b.tail.extend_from_slice(&line);
                b.tail.push(b'\n');
                if b.tail.len() > TAIL {
                    let cut = b.tail.len() - TAIL;
                    b.tail.drain(..cut);
                }
            } else if b.line.len() < TAIL {
                b.line.push(byte);
            }
        }
    }
}

impl IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestOutput {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl AsyncWrite for GuestOutput {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.write(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
