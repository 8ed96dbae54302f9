//! Following the policy file: filesystem events on its parent directory, debounced,
//! with a slow poll as the backstop.
//!
//! The parent directory is watched, not the file: editors and tools replace files
//! by renaming (the watch on the old inode would go silent), and a Kubernetes
//! ConfigMap update swaps a `..data` symlink, an event that names no policy file at
//! all. So any event in the directory means "maybe changed"; the store re-reads the
//! file through its symlinks and swaps only if the content hash differs. If the
//! directory itself is removed, the watch is re-established when it reappears.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use notify::{Event, EventKind, RecursiveMode, Watcher};

use super::store::PolicyStore;

/// How the store follows its file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WatchOptions {
    /// Quiet time after the last event before re-reading (a save is often several
    /// events). Default 200 ms.
    pub debounce: Duration,
    /// How often the file is re-read and hashed regardless of events, for filesystems
    /// where events do not arrive (network mounts). Default 10 s.
    pub poll_interval: Duration,
}

impl Default for WatchOptions {
    fn default() -> Self {
        WatchOptions {
            debounce: Duration::from_millis(200),
            poll_interval: Duration::from_secs(10),
        }
    }
}

/// Stops the watcher thread when dropped.
#[derive(Debug)]
pub struct WatchHandle {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for WatchHandle {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Whether an event may mean the policy changed. Anything in the directory may (the
/// file, its symlink target, a `..data` swap); a rescan notice means events were lost.
pub(crate) fn maybe_changed(event: &Event) -> bool {
    event.need_rescan() || !matches!(event.kind, EventKind::Access(_))
}

/// Whether the event says the watched directory itself went away.
fn directory_gone(event: &Event, dir: &Path) -> bool {
    matches!(event.kind, EventKind::Remove(_)) && event.paths.iter().any(|p| p == dir)
}

impl PolicyStore {
    /// Follows the policy file in a background thread until the handle is dropped.
    /// Does nothing useful for a store without a file.
    pub fn watch(&self, options: WatchOptions) -> Result<WatchHandle, notify::Error> {
        let stop = Arc::new(AtomicBool::new(false));
        let Some(path) = self.path() else {
            return Ok(WatchHandle { stop, thread: None });
        };
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
            _ => PathBuf::from("."),
        };
        let (tx, rx) = mpsc::channel();
        let mut watcher = notify::recommended_watcher(tx)?;
        let watching = watcher.watch(&dir, RecursiveMode::NonRecursive).is_ok();
        let store = self.clone();
        let stop_flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("tiergate-policy-watch".into())
            .spawn(move || {
                follow(store, watcher, watching, &dir, &rx, options, &stop_flag);
            })
            .map_err(notify::Error::io)?;
        Ok(WatchHandle {
            stop,
            thread: Some(thread),
        })
    }
}

fn follow(
    store: PolicyStore,
    mut watcher: notify::RecommendedWatcher,
    mut watching: bool,
    dir: &Path,
    rx: &mpsc::Receiver<notify::Result<Event>>,
    options: WatchOptions,
    stop: &AtomicBool,
) {
    // Checking the stop flag at least this often bounds how long dropping the handle takes.
    let tick = Duration::from_millis(50).min(options.debounce.max(Duration::from_millis(1)));
    let mut first_event: Option<Instant> = None;
    let mut last_event = Instant::now();
    // Instant + Duration panics only past the clock's range (~centuries away).
    #[allow(clippy::arithmetic_side_effects)]
    let mut next_poll = Instant::now() + options.poll_interval;
    while !stop.load(Ordering::Relaxed) {
        match rx.recv_timeout(tick) {
            Ok(Ok(event)) => {
                if directory_gone(&event, dir) {
                    watching = false;
                }
                if maybe_changed(&event) {
                    first_event.get_or_insert_with(Instant::now);
                    last_event = Instant::now();
                }
            }
            Ok(Err(err)) => {
                tracing::warn!(dir = %dir.display(), "policy watcher error, re-reading: {err}");
                first_event.get_or_insert_with(Instant::now);
                last_event = Instant::now();
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        if watching && !dir.is_dir() {
            // Not every platform reports the watched directory's own removal.
            watching = false;
        }
        if !watching {
            // The directory went away (or was never there): re-watch once it exists,
            // then re-read, since nothing reported what happened in between.
            if watcher.watch(dir, RecursiveMode::NonRecursive).is_ok() {
                watching = true;
                first_event.get_or_insert_with(Instant::now);
            }
        }
        let now = Instant::now();
        // Re-read after a quiet `debounce`, or after 4× that during a long burst.
        let due = first_event.is_some_and(|first| {
            now.duration_since(last_event) >= options.debounce
                || now.duration_since(first) >= options.debounce.saturating_mul(4)
        });
        if due || now >= next_poll {
            first_event = None;
            next_poll = now.checked_add(options.poll_interval).unwrap_or(now);
            // Errors are logged and recorded by the store; the last good policy stays.
            let _ = store.reload();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{AccessKind, CreateKind, Flag, RemoveKind};

    #[test]
    fn every_kind_of_change_counts_but_reads_do_not() {
        let create = Event::new(EventKind::Create(CreateKind::File));
        assert!(maybe_changed(&create));
        let read = Event::new(EventKind::Access(AccessKind::Read));
        assert!(!maybe_changed(&read));
        let rescan = Event::new(EventKind::Other).set_flag(Flag::Rescan);
        assert!(maybe_changed(&rescan), "lost events: re-read");
        let overflowed_access =
            Event::new(EventKind::Access(AccessKind::Any)).set_flag(Flag::Rescan);
        assert!(maybe_changed(&overflowed_access));
    }

    #[test]
    fn the_directory_going_away_is_noticed() {
        let dir = Path::new("/etc/tiergate");
        let gone = Event::new(EventKind::Remove(RemoveKind::Folder)).add_path(dir.to_owned());
        assert!(directory_gone(&gone, dir));
        let file_gone =
            Event::new(EventKind::Remove(RemoveKind::File)).add_path(dir.join("policy.yaml"));
        assert!(!directory_gone(&file_gone, dir));
    }
}
