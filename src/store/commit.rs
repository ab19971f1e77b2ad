//! Durable chunk writes off the workers' path.
//!
//! A chunk is written to a temporary file by the worker that encoded it; making it
//! durable (`fsync`) and visible (`rename` into place) is handed to a few commit
//! threads, so that workers go on decoding, computing and encoding while the disk
//! flushes. A chunk file is therefore either absent or complete and on disk, as
//! before; it only appears a little later. [`Committer::flush`] waits for every
//! handed-over chunk and returns the first failure.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;

/// Threads that fsync and rename. Two keep a flush in progress while the next file is
/// handed over; more do not help one disk.
const THREADS: usize = 2;

/// Chunks written but not yet committed, at most: the bound on open files and on dirty
/// data a run can be ahead of the disk.
const QUEUE: usize = 8;

/// A written temporary file waiting to be made durable and renamed to `target`.
struct Pending {
    file: File,
    temp: PathBuf,
    target: PathBuf,
}

#[derive(Default)]
struct State {
    /// Chunks handed over and not yet committed.
    pending: usize,
    /// The first failure since the last flush.
    error: Option<io::Error>,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    idle: Condvar,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Commits temporary chunk files in the background (see the module docs).
pub(crate) struct Committer {
    sender: Mutex<Option<SyncSender<Pending>>>,
    shared: Arc<Shared>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Committer {
    /// A committer whose threads start with the first write.
    pub(crate) fn new() -> Self {
        Committer {
            sender: Mutex::new(None),
            shared: Arc::default(),
            threads: Mutex::new(Vec::new()),
        }
    }

    /// Writes `value` to the new file `temp` (creating its directory if need be) and
    /// hands it over to be synced and renamed to `target`. Fails at once if writing
    /// fails, or if an earlier commit failed.
    pub(crate) fn write(&self, temp: PathBuf, target: PathBuf, value: &[u8]) -> io::Result<()> {
        if let Some(e) = self.shared.lock().error.take() {
            return Err(e);
        }
        let mut file = match File::create_new(&temp) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                // An array made by another tool: no temporary directory yet.
                if let Some(dir) = temp.parent() {
                    fs::create_dir_all(dir)?;
                }
                File::create_new(&temp)?
            }
            other => other?,
        };
        if let Err(e) = file.write_all(value) {
            drop(file);
            let _ = fs::remove_file(&temp);
            return Err(e);
        }
        self.shared.lock().pending += 1;
        let pending = Pending { file, temp, target };
        let sender = self.sender();
        if let Err(unsent) = sender.send(pending) {
            // The commit threads are gone (only if one panicked): commit here.
            let p = unsent.0;
            let result = commit(p.file, &p.temp, &p.target);
            finished(&self.shared, result.err());
        }
        Ok(())
    }

    /// Hands over `file`, already written at the temporary path `temp`, to be synced
    /// and renamed to `target` (a shard written piece by piece). Fails at once if an
    /// earlier commit failed (then `temp` is removed).
    pub(crate) fn commit_file(&self, file: File, temp: PathBuf, target: PathBuf) -> io::Result<()> {
        if let Some(e) = self.shared.lock().error.take() {
            drop(file);
            let _ = fs::remove_file(&temp);
            return Err(e);
        }
        self.shared.lock().pending += 1;
        let pending = Pending { file, temp, target };
        if let Err(unsent) = self.sender().send(pending) {
            let p = unsent.0;
            let result = commit(p.file, &p.temp, &p.target);
            finished(&self.shared, result.err());
        }
        Ok(())
    }

    /// Waits until every chunk handed over is committed; the first failure, if any.
    pub(crate) fn flush(&self) -> io::Result<()> {
        let mut state = self.shared.lock();
        while state.pending > 0 {
            state = self
                .shared
                .idle
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
        state.error.take().map_or(Ok(()), Err)
    }

    /// The channel to the commit threads, started on first use.
    fn sender(&self) -> SyncSender<Pending> {
        let mut sender = self.sender.lock().unwrap_or_else(PoisonError::into_inner);
        sender
            .get_or_insert_with(|| {
                let (tx, rx) = sync_channel::<Pending>(QUEUE);
                let rx = Arc::new(Mutex::new(rx));
                let mut threads = self.threads.lock().unwrap_or_else(PoisonError::into_inner);
                for _ in 0..THREADS {
                    let (rx, shared) = (Arc::clone(&rx), Arc::clone(&self.shared));
                    threads.push(std::thread::spawn(move || commit_loop(&rx, &shared)));
                }
                tx
            })
            .clone()
    }
}

impl Drop for Committer {
    /// Commits what is still queued, then stops the threads.
    fn drop(&mut self) {
        drop(self.sender.get_mut().map(Option::take));
        let threads = self.threads.get_mut().map(std::mem::take);
        for t in threads.unwrap_or_default() {
            let _ = t.join();
        }
    }
}

fn commit_loop(rx: &Mutex<Receiver<Pending>>, shared: &Shared) {
    loop {
        let next = rx.lock().unwrap_or_else(PoisonError::into_inner).recv();
        let Ok(p) = next else { return };
        let result = commit(p.file, &p.temp, &p.target);
        finished(shared, result.err());
    }
}

fn finished(shared: &Shared, error: Option<io::Error>) {
    let mut state = shared.lock();
    state.pending -= 1;
    if let Some(e) = error {
        state.error.get_or_insert(e);
    }
    if state.pending == 0 {
        shared.idle.notify_all();
    }
}

/// Makes `temp` durable and renames it to `target` (creating the chunk's directory if
/// need be); removes `temp` if that fails.
fn commit(file: File, temp: &Path, target: &Path) -> io::Result<()> {
    let result = (|| {
        file.sync_all()?;
        drop(file);
        match fs::rename(temp, target) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if let Some(dir) = target.parent() {
                    fs::create_dir_all(dir)?;
                }
                fs::rename(temp, target)
            }
            other => other,
        }
    })();
    if result.is_err() {
        let _ = fs::remove_file(temp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_appear_complete_after_flush() {
        let dir = std::env::temp_dir().join(format!("haloflow-commit-{}", std::process::id()));
        // A directory left by a crashed run of the same pid must not decide.
        let _ = std::fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let committer = Committer::new();
        for i in 0..20 {
            let value = vec![i as u8; 1000 + i];
            let target = dir.join(format!("sub{}/chunk{i}", i % 3));
            committer
                .write(dir.join(format!("t{i}.tmp")), target, &value)
                .unwrap();
        }
        committer.flush().unwrap();
        for i in 0..20 {
            let got = fs::read(dir.join(format!("sub{}/chunk{i}", i % 3))).unwrap();
            assert_eq!(got, vec![i as u8; 1000 + i]);
            assert!(!dir.join(format!("t{i}.tmp")).exists());
        }
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_failed_commit_is_reported_by_flush_and_leaves_no_temporary() {
        let dir = std::env::temp_dir().join(format!("haloflow-commit-fail-{}", std::process::id()));
        // A directory left by a crashed run of the same pid must not decide.
        let _ = std::fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        // The target's parent is a file: the rename cannot succeed.
        fs::write(dir.join("blocker"), b"x").unwrap();
        let committer = Committer::new();
        committer
            .write(dir.join("t.tmp"), dir.join("blocker/chunk"), b"data")
            .unwrap();
        assert!(committer.flush().is_err());
        assert!(!dir.join("t.tmp").exists());
        // The failure is reported once; later writes work.
        committer
            .write(dir.join("t2.tmp"), dir.join("ok"), b"data")
            .unwrap();
        committer.flush().unwrap();
        assert_eq!(fs::read(dir.join("ok")).unwrap(), b"data");
        fs::remove_dir_all(&dir).unwrap();
    }
}
