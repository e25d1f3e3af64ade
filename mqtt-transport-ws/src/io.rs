//! A WebSocket as an MQTT byte stream.

use futures_util::{Sink, Stream};
use std::{
    io,
    pin::Pin,
    task::{Context, Poll, ready},
};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::{
    WebSocketStream,
    tungstenite::{Bytes, Error as WsError, Message},
};

/// Most bytes gathered into one binary message; a larger write is taken in
/// parts (MQTT packets may span frames), so no message exceeds this.
const MAX_BATCH: usize = 64 * 1024;

/// A WebSocket carrying MQTT as `AsyncRead + AsyncWrite`.
///
/// Reading treats the payloads of binary messages as one continuous stream,
/// so packets may span frames and frames may hold several packets
/// ([MQTT-6.0.0-2]); a text message is an error that ends the connection
/// ([MQTT-6.0.0-1]); a close message is the end of the stream, after the
/// closing handshake's reply has gone out. Writing collects bytes, at most
/// 64 KiB, until a flush and sends them as one binary message, so packets
/// queued together travel in one frame. Bytes still waiting are also sent
/// before each read, so writing a request and reading the answer works
/// without an explicit flush, as on TCP.
pub struct WsIo<S> {
    ws: WebSocketStream<S>,
    read: Bytes,
    write: Vec<u8>,
    eof: bool,
    failed: bool,
}

impl<S> WsIo<S> {
    /// Wraps an established WebSocket.
    pub fn new(ws: WebSocketStream<S>) -> WsIo<S> {
        WsIo {
            ws,
            read: Bytes::new(),
            write: Vec::new(),
            eof: false,
            failed: false,
        }
    }
}

fn to_io(e: WsError) -> io::Error {
    match e {
        WsError::Io(e) => e,
        WsError::ConnectionClosed | WsError::AlreadyClosed => io::ErrorKind::BrokenPipe.into(),
        other => io::Error::other(other),
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> WsIo<S> {
    fn poll_send(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.write.is_empty() {
            return Poll::Ready(Ok(()));
        }
        ready!(Pin::new(&mut self.ws).poll_ready(cx)).map_err(to_io)?;
        let frame = Bytes::from(std::mem::take(&mut self.write));
        Pin::new(&mut self.ws)
            .start_send(Message::Binary(frame))
            .map_err(to_io)?;
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for WsIo<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.failed {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        // Send what is waiting first; its progress does not hold up reading.
        if !this.write.is_empty() && this.poll_send(cx).is_ready() {
            let _ = Pin::new(&mut this.ws).poll_flush(cx);
        }
        loop {
            if !this.read.is_empty() {
                let n = this.read.len().min(buf.remaining());
                buf.put_slice(&this.read.split_to(n));
                return Poll::Ready(Ok(()));
            }
            if this.eof {
                return Poll::Ready(Ok(()));
            }
            match ready!(Pin::new(&mut this.ws).poll_next(cx)) {
                Some(Ok(Message::Binary(data))) => this.read = data,
                Some(Ok(Message::Text(_))) => {
                    this.failed = true;
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "text WebSocket frame: MQTT travels in binary frames only",
                    )));
                }
                // Pings are answered by tungstenite; pongs and raw frames carry
                // no data. After a Close, polling on lets tungstenite send the
                // reply and finish the closing handshake before the end.
                Some(Ok(
                    Message::Ping(_) | Message::Pong(_) | Message::Frame(_) | Message::Close(_),
                )) => {}
                None | Some(Err(WsError::ConnectionClosed | WsError::AlreadyClosed)) => {
                    this.eof = true
                }
                Some(Err(e)) => {
                    this.failed = true;
                    return Poll::Ready(Err(to_io(e)));
                }
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for WsIo<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.failed {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        if self.write.len() >= MAX_BATCH {
            ready!(self.poll_send(cx))?;
        }
        let n = buf.len().min(MAX_BATCH - self.write.len());
        self.write.extend_from_slice(&buf[..n]);
        Poll::Ready(Ok(n))
    }

    /// Takes every slice (up to the frame's limit) into the frame being
    /// built: one call for a whole batch of packets, where the default
    /// takes one slice per call.
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if self.failed {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        if self.write.len() >= MAX_BATCH {
            ready!(self.poll_send(cx))?;
        }
        let mut taken = 0;
        for buf in bufs {
            let room = MAX_BATCH - self.write.len();
            if room == 0 {
                break;
            }
            let n = buf.len().min(room);
            self.write.extend_from_slice(&buf[..n]);
            taken += n;
        }
        Poll::Ready(Ok(taken))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_send(cx))?;
        Pin::new(&mut self.ws).poll_flush(cx).map_err(to_io)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_send(cx))?;
        match ready!(Pin::new(&mut self.ws).poll_close(cx)) {
            Ok(()) | Err(WsError::ConnectionClosed | WsError::AlreadyClosed) => Poll::Ready(Ok(())),
            Err(e) => Poll::Ready(Err(to_io(e))),
        }
    }
}
