//! The log writer: formatted lines are appended to a shared buffer by the
//! thread that logs them, and a thread of its own writes the buffer out in
//! batches. A line costs its copy, not a write system call, and no wake-up
//! of the writer thread either: that thread wakes every
//! [`FLUSH_EVERY`], or at once when [`WAKE_AT`] bytes are waiting.
//! (tracing-appender's non-blocking writer, used before, woke its thread
//! for every line: on a 2-core machine that cost a driver call more than
//! writing the line itself.)
//!
//! Lossless: past [`MAX_BUFFERED`] bytes waiting, logging waits for the
//! writer. Dropping the [`BatchGuard`] writes out what is left.

use std::io::Write;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;
use tracing_subscriber::fmt::MakeWriter;

/// How long a line may wait in the buffer.
pub const FLUSH_EVERY: Duration = Duration::from_millis(20);
/// Bytes waiting that wake the writer thread at once.
pub const WAKE_AT: usize = 256 * 1024;
/// Bytes waiting past which logging waits for the writer.
pub const MAX_BUFFERED: usize = 8 * 1024 * 1024;

#[derive(Default)]
struct State {
    buf: Vec<u8>,
    closed: bool,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    /// Signalled to wake the writer thread.
    wake: Condvar,
    /// Signalled when the writer took the buffer (room again).
    room: Condvar,
}

/// Appends lines for the writer thread (a [`MakeWriter`]).
#[derive(Clone)]
pub struct BatchWriter(Arc<Shared>);

/// Keeps the writer thread: dropping it writes out what is buffered and
/// ends the thread.
pub struct BatchGuard {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// A writer appending to a buffer that a thread named `drydock-log` writes
/// to `out`, and the guard of that thread.
pub fn batch_writer<W: Write + Send + 'static>(mut out: W) -> (BatchWriter, BatchGuard) {
    let shared = Arc::new(Shared::default());
    let s = shared.clone();
    let thread = std::thread::Builder::new()
        .name("drydock-log".into())
        .spawn(move || {
            loop {
                let (taken, closed) = {
                    let mut st = s.state.lock().unwrap_or_else(|e| e.into_inner());
                    if !st.closed && st.buf.len() < WAKE_AT {
                        // Let lines gather, unless woken (a full batch,
                        // a full buffer, or the guard dropped).
                        st = s
                            .wake
                            .wait_timeout(st, FLUSH_EVERY)
                            .unwrap_or_else(|e| e.into_inner())
                            .0;
                    }
                    (std::mem::take(&mut st.buf), st.closed)
                };
                s.room.notify_all();
                if !taken.is_empty() {
                    // Nowhere to report a failing log stream: drop the batch.
                    let _ = out.write_all(&taken);
                    let _ = out.flush();
                }
                if closed {
                    let rest =
                        std::mem::take(&mut s.state.lock().unwrap_or_else(|e| e.into_inner()).buf);
                    let _ = out.write_all(&rest);
                    let _ = out.flush();
                    return;
                }
            }
        })
        .expect("spawn the log writer thread");
    (
        BatchWriter(shared.clone()),
        BatchGuard {
            shared,
            thread: Some(thread),
        },
    )
}

impl Write for &BatchWriter {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        let shared = &self.0;
        let mut st = shared.state.lock().unwrap_or_else(|e| e.into_inner());
        while st.buf.len() + line.len() > MAX_BUFFERED && !st.buf.is_empty() && !st.closed {
            shared.wake.notify_one();
            st = shared.room.wait(st).unwrap_or_else(|e| e.into_inner());
        }
        let before = st.buf.len();
        st.buf.extend_from_slice(line);
        if before < WAKE_AT && st.buf.len() >= WAKE_AT {
            shared.wake.notify_one();
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for BatchWriter {
    type Writer = &'a BatchWriter;

    fn make_writer(&'a self) -> Self::Writer {
        self
    }
}

impl Drop for BatchGuard {
    fn drop(&mut self) {
        self.shared
            .state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .closed = true;
        self.shared.wake.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A shared byte sink.
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl Write for Sink {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn every_line_is_written_in_order_by_the_time_the_guard_drops() {
        let sink = Sink::default();
        let (writer, guard) = batch_writer(sink.clone());
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let w = writer.clone();
                std::thread::spawn(move || {
                    for i in 0..20_000 {
                        (&w).write_all(format!("t{t} line {i}\n").as_bytes())
                            .unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        drop(guard);
        let text = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        // 80,000 lines of ~16 bytes: past MAX_BUFFERED? No, but past WAKE_AT
        // many times; none lost, each thread's in its order.
        assert_eq!(lines.len(), 80_000);
        for t in 0..4 {
            let mine: Vec<usize> = lines
                .iter()
                .filter_map(|l| l.strip_prefix(&format!("t{t} line ")))
                .map(|n| n.parse().unwrap())
                .collect();
            assert_eq!(mine, (0..20_000).collect::<Vec<_>>());
        }
    }

    /// A sink that is slow: the buffer fills and logging waits (nothing is
    /// dropped, memory stays bounded).
    #[test]
    fn a_full_buffer_makes_logging_wait() {
        #[derive(Clone, Default)]
        struct Slow(Sink, Arc<Mutex<usize>>);
        impl Write for Slow {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                std::thread::sleep(Duration::from_millis(5));
                let mut most = self.1.lock().unwrap();
                *most = (*most).max(b.len());
                self.0.write(b)
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let slow = Slow::default();
        let (writer, guard) = batch_writer(slow.clone());
        let line = vec![b'x'; 64 * 1024];
        for _ in 0..400 {
            (&writer).write_all(&line).unwrap();
        }
        drop(guard);
        assert_eq!(slow.0.0.lock().unwrap().len(), 400 * 64 * 1024);
        // No batch was larger than the buffer allows.
        assert!(*slow.1.lock().unwrap() <= MAX_BUFFERED);
    }
}
