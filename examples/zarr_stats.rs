//! Whole-array statistics of an OME-Zarr image (exact percentiles, a histogram), and a
//! run whose threshold is computed from them: the run's report tells the jobs, bytes,
//! time per stage and the statistic it used, and a progress callback hears every job.
//!
//! `cargo run --release --example zarr_stats [-- IMAGE.ome.zarr]`

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};

use haloflow::Op;
use haloflow::stats::StatsOptions;
use haloflow::zarr::{Options, Run, Stats};

fn main() -> Result<(), haloflow::Error> {
    let image = common::image_from_args()?;
    let options = StatsOptions {
        percentiles: vec![1.0, 50.0, 99.8],
        histogram: Some(8),
        ..StatsOptions::default()
    };
    let stats = Stats {
        options,
        ..Stats::new(&image)
    }
    .run()?;
    let whole = &stats.summaries[0];
    println!(
        "{}: {:?} {}, min {} max {} mean {:.1} std {:.1}",
        image.display(),
        stats.shape,
        stats.dtype,
        whole.min,
        whole.max,
        whole.mean,
        whole.std
    );
    for p in &whole.percentiles {
        println!("  p{} = {}", p.percentile, p.value);
    }
    if let Some(h) = &whole.histogram {
        println!("  histogram: {:?}", h.counts);
    }

    // A mask above the 99th percentile of the whole image: the library computes it
    // before the jobs and records it with the output and in the report.
    let done = AtomicUsize::new(0);
    let progress = |jobs: usize, _bytes: u64| done.store(jobs, Ordering::Relaxed);
    let run = Run::new(
        &image,
        image.with_file_name("bright.ome.zarr"),
        Op::ThresholdPercentile { percentile: 99.0 },
    )
    .with_options(Options {
        overwrite: true,
        ..Options::default()
    });
    let report = run.run(Some(&progress))?;
    println!(
        "threshold at {}: {} of {} jobs ({} heard by the callback), {:.0} MB written, \
         read {:.2} s, compute {:.2} s, write {:.2} s",
        report
            .statistics
            .as_ref()
            .map_or("?".into(), ToString::to_string),
        report.jobs_done,
        report.jobs_total,
        done.load(Ordering::Relaxed),
        report.bytes_written as f64 / 1e6,
        report.stages.read,
        report.stages.compute,
        report.stages.write
    );
    Ok(())
}
