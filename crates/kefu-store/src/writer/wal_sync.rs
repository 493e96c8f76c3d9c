//! Syncing the WAL in the background when commits do not.
//!
//! With `synchronous=NORMAL` a commit leaves its WAL pages in the page
//! cache, and SQLite syncs them only when a checkpoint starts: the whole
//! WAL at once, up to 40 MB, with every message behind the checkpoint
//! waiting. At a steady 2,000 msgs/s that stop was 70-90 ms once a second
//! and the delivery p99 71-75 ms (docs/benchmarks.md). A thread of its own
//! syncs the WAL every [`EVERY`] instead, so a checkpoint finds at most
//! that much unsynced, commits still never wait for the disk, and a power
//! loss takes at most about the last [`EVERY`] of them.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// How often the WAL is synced. A sync that finds nothing to write costs
/// about 20 µs and no disk write, so an idle store pays nothing for it.
pub(super) const EVERY: Duration = Duration::from_millis(50);

/// The syncing thread; it stops when this is dropped.
pub(super) struct WalSync {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    /// Syncs done, for tests.
    #[cfg_attr(not(test), allow(dead_code, reason = "read by tests"))]
    synced: Arc<AtomicU64>,
}

impl WalSync {
    /// Starts syncing the WAL of the SQLite file at `database` every
    /// `every`. The WAL is opened when it first exists (SQLite creates it
    /// with the first write); a failed sync is logged once and retried.
    pub fn start(database: &Path, every: Duration) -> std::io::Result<WalSync> {
        let wal = wal_path(database);
        let (stop, stopped) = mpsc::channel::<()>();
        let synced = Arc::new(AtomicU64::new(0));
        let count = synced.clone();
        let thread = std::thread::Builder::new()
            .name("kefu-wal-sync".into())
            .spawn(move || run(&wal, every, &stopped, &count))?;
        Ok(WalSync {
            stop: Some(stop),
            thread: Some(thread),
            synced,
        })
    }

    #[cfg(test)]
    pub fn synced(&self) -> u64 {
        self.synced.load(Ordering::Relaxed)
    }
}

impl Drop for WalSync {
    fn drop(&mut self) {
        // Closing the channel wakes the thread for its last sync.
        self.stop.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(wal: &Path, every: Duration, stopped: &mpsc::Receiver<()>, synced: &AtomicU64) {
    let mut file = None;
    let mut warned = false;
    while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
        if file.is_none() {
            file = std::fs::File::open(wal).ok();
        }
        let Some(f) = &file else { continue };
        match f.sync_data() {
            Ok(()) => {
                synced.fetch_add(1, Ordering::Relaxed);
                warned = false;
            }
            Err(e) if !warned => {
                tracing::warn!(error = %e, wal = %wal.display(), "syncing the WAL failed; retrying");
                warned = true;
            }
            Err(_) => {}
        }
    }
    // Stopping: what the last commits wrote goes to disk too.
    if let Some(f) = &file {
        let _ = f.sync_data();
    }
}

/// SQLite's name for a database's WAL: the file's name with `-wal` added.
fn wal_path(database: &Path) -> PathBuf {
    let mut name = database.as_os_str().to_owned();
    name.push("-wal");
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The thread waits for the WAL to exist, syncs it on every tick, and
    /// stops when dropped.
    #[test]
    fn syncs_the_wal_once_it_exists_and_stops_when_dropped() {
        let dir =
            std::env::temp_dir().join(format!("kefu_wal_sync_{:016x}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let database = dir.join("kefu.db");
        assert_eq!(wal_path(&database), dir.join("kefu.db-wal"));
        let sync = WalSync::start(&database, Duration::from_millis(5)).expect("start");
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(sync.synced(), 0, "no WAL yet, nothing synced");
        std::fs::write(wal_path(&database), b"frames").expect("a WAL");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while sync.synced() < 3 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(sync.synced() >= 3, "synced {} times", sync.synced());
        let count = sync.synced.clone();
        drop(sync);
        let after = count.load(Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(count.load(Ordering::Relaxed), after, "stopped when dropped");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
