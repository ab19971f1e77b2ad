//! Progress of a run, as a library concern: [`Progress`] hears of each phase and of
//! every finished job; [`ProgressBar`] draws it on a terminal (the command's bar).

use std::time::Duration;

/// What a run is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Computing and writing jobs (a job is an output chunk, or a shard).
    Jobs,
    /// A pyramid in one pass over level 0: a job is a tile of the coarsest level's
    /// chunks, writing every level's chunks under it.
    Tiles,
    /// A pyramid level by level (each from level 0 by its own chain): the jobs of every
    /// level, counted together.
    Levels,
    /// A labelling's first step: each chunk labelled on its own.
    Labels,
    /// A labelling's last step: each chunk's labels numbered across the array and
    /// written.
    Relabels,
}

/// Hears how a run goes. Called from the run's worker threads.
///
/// Any `Fn(usize, u64) + Sync` closure is one (it hears `advance`):
///
/// ```
/// use haloflow::zarr::Progress;
///
/// let done = std::sync::atomic::AtomicUsize::new(0);
/// let count = |n: usize, _bytes: u64| done.store(n, std::sync::atomic::Ordering::Relaxed);
/// let progress: &dyn Progress = &count;
/// progress.advance(3, 1 << 20);
/// assert_eq!(done.into_inner(), 3);
/// ```
pub trait Progress: Sync {
    /// A phase begins, of `total` jobs (of this part). The default does nothing.
    fn begin(&self, phase: Phase, total: usize) {
        let _ = (phase, total);
    }

    /// `done` jobs of the phase are finished or were found already written, and `bytes`
    /// of output (before encoding) are written.
    fn advance(&self, done: usize, bytes: u64);
}

impl<F: Fn(usize, u64) + Sync> Progress for F {
    fn advance(&self, done: usize, bytes: u64) {
        self(done, bytes);
    }
}

/// A progress bar on standard error (indicatif): jobs done of the total, the rate of
/// writing, elapsed and remaining time. Clear it with [`ProgressBar::finish`].
pub struct ProgressBar {
    bar: indicatif::ProgressBar,
}

impl Default for ProgressBar {
    fn default() -> Self {
        ProgressBar::new()
    }
}

impl ProgressBar {
    /// A bar, drawn once a phase begins.
    pub fn new() -> ProgressBar {
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {pos}/{len} jobs  {msg}  elapsed {elapsed}  eta {eta}",
            )
            .expect("valid template"),
        );
        bar.enable_steady_tick(Duration::from_millis(200));
        ProgressBar { bar }
    }

    /// Clears the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl Progress for ProgressBar {
    fn begin(&self, _phase: Phase, total: usize) {
        self.bar.set_length(total as u64);
        self.bar.set_position(0);
    }

    fn advance(&self, done: usize, bytes: u64) {
        self.bar.set_position(done as u64);
        let secs = self.bar.elapsed().as_secs_f64().max(1e-3);
        let requests = crate::store::remote::traffic().requests;
        let message = if requests == 0 {
            format!("{:.0} MB/s", bytes as f64 / 1e6 / secs)
        } else {
            // The process's requests so far, over the bar's time.
            format!(
                "{:.0} MB/s, {:.0} requests/s",
                bytes as f64 / 1e6 / secs,
                requests as f64 / secs
            )
        };
        self.bar.set_message(message);
    }
}
