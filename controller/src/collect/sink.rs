//! The receiving end of a collect: the tar stream unpacked into the server's folder as it
//! arrives, on a bounded number of blocking threads; and the collect's own timeout.

use std::time::Duration;

use bytes::Bytes;
use ordo_proto::shell;
use tokio::sync::{Semaphore, mpsc};
use tokio_util::io::{StreamReader, SyncIoBridge};
use tokio_util::sync::CancellationToken;

use super::Unpacked;
use crate::session::FetchEvent;

/// Collect streams unpacked at once, in the whole process. Each holds a thread of the
/// blocking pool (16 in the binary) for as long as its server sends, which over a slow
/// link can be minutes; the other threads stay free for DNS lookups (a lookup waiting for
/// a thread would count against `connect_timeout`), the archive and transfers. Further
/// collects wait their turn, and their servers with them (SSH flow control).
static UNPACK_SLOTS: Semaphore = Semaphore::const_new(12);

/// The receiving end of a collect: the tar stream is unpacked into the server's folder as
/// it arrives (on a blocking thread, once one of [`UNPACK_SLOTS`] is free), notes are kept
/// for the report.
pub struct CollectSink {
    data_tx: Option<mpsc::Sender<std::io::Result<Bytes>>>,
    unpacker: tokio::task::JoinHandle<std::io::Result<Unpacked>>,
    notes: Vec<String>,
    max_file_size: u64,
    dest: std::path::PathBuf,
}

/// What a collect received.
pub struct SinkReport {
    /// Files skipped on the server and the collect's own notes.
    pub notes: Vec<String>,
    pub unpacked: Result<std::io::Result<Unpacked>, tokio::task::JoinError>,
    /// The server's folder.
    pub dest: std::path::PathBuf,
}

impl CollectSink {
    pub async fn start(
        dest: std::path::PathBuf,
        patterns: &[String],
        max_total: u64,
        max_file_size: u64,
    ) -> Self {
        let bases: Vec<String> = patterns
            .iter()
            .map(|p| shell::glob_base(p).to_string())
            .collect();
        let (data_tx, data_rx) = mpsc::channel::<std::io::Result<Bytes>>(64);
        let dest2 = dest.clone();
        // Never closed: the permit is always granted, in turn.
        let slot = UNPACK_SLOTS.acquire().await.ok();
        let unpacker = tokio::task::spawn_blocking(move || {
            let _slot = slot;
            let reader = SyncIoBridge::new(StreamReader::new(
                tokio_stream::wrappers::ReceiverStream::new(data_rx),
            ));
            std::fs::create_dir_all(&dest2)?;
            super::unpack(reader, &dest2, &bases, max_total)
        });
        CollectSink {
            data_tx: Some(data_tx),
            unpacker,
            notes: Vec::new(),
            max_file_size,
            dest,
        }
    }

    pub async fn event(&mut self, ev: FetchEvent) {
        match ev {
            FetchEvent::Tar(b) => {
                if let Some(d) = &self.data_tx
                    && d.send(Ok(b)).await.is_err()
                {
                    self.data_tx = None;
                }
            }
            FetchEvent::TooBig(f) => self.notes.push(format!(
                "{f}: not collected: larger than the per-file limit ({})",
                ordo_jobs::units::format_size(self.max_file_size)
            )),
            FetchEvent::Note(n) => self.notes.push(format!("collect: {n}")),
        }
    }

    pub async fn finish(mut self) -> SinkReport {
        self.data_tx = None;
        SinkReport {
            notes: self.notes,
            unpacked: self.unpacker.await,
            dest: self.dest,
        }
    }
}

/// Cancels `token` when `limit` passes before `over` is cancelled, and says so in
/// `timed_out`.
pub async fn timer(
    limit: Duration,
    over: &CancellationToken,
    token: &CancellationToken,
    timed_out: &mut Option<Duration>,
) {
    tokio::select! {
        _ = tokio::time::sleep(limit) => {
            *timed_out = Some(limit);
            token.cancel();
        }
        _ = over.cancelled() => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Collects whose servers are slow to send never hold every thread of the blocking
    /// pool: a DNS lookup (counted in the connect timeout) still gets one at once.
    #[test]
    fn slow_collects_leave_threads_for_lookups() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .max_blocking_threads(16)
            .build()
            .unwrap();
        rt.block_on(async {
            let dir = tempfile::tempdir().unwrap();
            // 20 collects whose servers send nothing yet.
            let starts: Vec<_> = (0..20)
                .map(|i| {
                    let dest = dir.path().join(format!("s{i}"));
                    tokio::spawn(async move {
                        CollectSink::start(dest, &["/tmp/f".into()], 1 << 20, 0).await
                    })
                })
                .collect();
            tokio::time::sleep(Duration::from_millis(200)).await;
            let lookup = tokio::time::timeout(
                Duration::from_secs(5),
                tokio::net::lookup_host("localhost:22"),
            )
            .await
            .map(|r| r.map(|addrs| addrs.count()));
            assert!(
                matches!(lookup, Ok(Ok(n)) if n > 0),
                "the lookup waited for a blocking thread: {lookup:?}"
            );
            // Every collect still runs, in turn, when the earlier ones end.
            for start in starts {
                let received = start.await.unwrap().finish().await;
                let unpacked = received.unpacked.unwrap().unwrap();
                assert!(unpacked.files.is_empty());
                assert!(received.dest.is_dir());
            }
        });
    }
}
