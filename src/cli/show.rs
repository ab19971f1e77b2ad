//! What the command prints: summaries of runs, `init`'s plan of an array job,
//! `verify`'s findings, statistics, and `info`'s description of an array and a plan.

use std::path::Path;

use super::args::{Common, InfoArgs, VerifyArgs};
use crate::exec::Report;
use crate::store::{Completion, Input};
use crate::zarr::{self, InitSummary, Options, ProgressBar};

/// The process's own memory beyond its data: code, runtime, allocator arenas.
const PROCESS_OVERHEAD_MIB: u64 = 48;

/// What `init` tells before an array job: the jobs, how a part splits them, and the
/// memory a task needs.
pub(super) fn print_init(s: &InitSummary) {
    let what = match &s.shard {
        Some(shard) => format!("shards of {shard:?}"),
        None => format!("chunks of {:?}", s.chunk),
    };
    println!("created   {}", s.path.display());
    println!("jobs      {} ({what}), one write each", s.jobs);
    let (index, count) = s.part;
    if count > 1 {
        println!(
            "part      {index}/{count}: {} jobs (each of {count} parts gets {} or {})",
            s.part_jobs,
            s.jobs / count,
            s.jobs.div_ceil(count)
        );
    }
    println!(
        "memory    about {} MiB per task with {} threads (at most --memory-limit {} MiB, which bounds the chunk cache)",
        s.memory_bytes.div_ceil(1 << 20) + PROCESS_OVERHEAD_MIB,
        s.threads,
        s.memory_limit >> 20
    );
    println!(
        "next      run the same command with --part I/N or --part auto (N tasks, N <= {}), then `haloflow verify {}`",
        s.jobs,
        s.path.display()
    );
}

/// `verify OUT`: every job of the output done, or the missing ones and a failure.
pub(super) fn verify(v: &VerifyArgs) -> crate::Result<()> {
    let found = zarr::verify(&v.output)?;
    let missing: usize = found.iter().map(|c| c.jobs_total - c.jobs_done).sum();
    if v.json {
        let json = serde_json::json!({
            "path": v.output,
            "complete": missing == 0,
            "arrays": found,
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&json).expect("JSON values serialise")
        );
    } else {
        for c in &found {
            println!("{}", completion_line(c));
        }
    }
    if missing > 0 {
        return Err(crate::Error::Incomplete {
            path: v.output.clone(),
            missing,
        });
    }
    Ok(())
}

/// One array's line of `verify`.
fn completion_line(c: &Completion) -> String {
    let mut line = format!(
        "{}: {} of {} jobs done",
        c.path.display(),
        c.jobs_done,
        c.jobs_total
    );
    if !c.complete() {
        let more = c.jobs_total - c.jobs_done - c.missing.len();
        line += &format!(
            "; missing: {}{}",
            c.missing.join(" "),
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            }
        );
    }
    if !c.written_by_haloflow {
        line += " (not written by haloflow: other writers may leave fill-value chunks unstored)";
    }
    line
}

/// The end of a run: clears the bar, prints the summary (followed by `how`) unless
/// `--quiet`, and writes the `--report`.
pub(super) fn finish(
    c: &Common,
    bar: Option<ProgressBar>,
    report: &Report,
    output: &Path,
    how: &str,
) -> crate::Result<()> {
    if let Some(b) = bar {
        b.finish();
    }
    if !c.quiet {
        eprintln!("{}{how}", summary(report, output));
    }
    if let Some(path) = &c.report {
        write_report(path, report)?;
    }
    Ok(())
}

fn summary(report: &Report, output: &Path) -> String {
    let s = &report.stages;
    let busy = (s.read + s.compute + s.write).max(1e-9);
    let gpu = report
        .gpu
        .as_ref()
        .map_or(String::new(), |g| gpu_lines(report, g));
    let text = format!(
        "{}: {} jobs done, {} already done, of {} in {:.2} s ({:.0} MB/s written) on {}\n  \
         device choice: {}\n  \
         time per stage (summed over workers): read+decode {:.2} s ({:.0}%), compute {:.2} s ({:.0}%), encode+write {:.2} s ({:.0}%)",
        output.display(),
        report.jobs_done,
        report.jobs_skipped,
        report.jobs_total,
        report.seconds,
        report.bytes_written as f64 / 1e6 / report.seconds.max(1e-9),
        report.device,
        report
            .device_reason
            .as_deref()
            .unwrap_or("given by the caller"),
        s.read,
        100.0 * s.read / busy,
        s.compute,
        100.0 * s.compute / busy,
        s.write,
        100.0 * s.write / busy,
    );
    let store = report.object_store.as_ref().map_or(String::new(), |t| {
        format!(
            "\n  object store: {} requests ({:.0}/s), {:.1} MB in, {:.1} MB out ({:.0} MB/s)",
            t.requests,
            t.requests_per_s,
            t.bytes_in as f64 / 1e6,
            t.bytes_out as f64 / 1e6,
            t.mb_per_s
        )
    });
    let mip = report.mip.as_ref().map_or(String::new(), |m| {
        let read_back = match m.chunks_read_back {
            0 => String::new(),
            n => format!(", {n} output chunks read back"),
        };
        if m.complete {
            format!(
                "\n  maximum projections along {}: {}{read_back}",
                m.arrays.join(", "),
                m.path.display()
            )
        } else {
            format!(
                "\n  maximum projections: {} waits for output chunks other parts have not written yet; the last part to finish (or a rerun) completes it",
                m.path.display()
            )
        }
    });
    text + &gpu + &store + &mip
}

/// The link traffic of a GPU run against the input read and the output written, its
/// device and waiting time, and any fault that sent jobs to the CPU.
fn gpu_lines(report: &Report, g: &crate::exec::GpuReport) -> String {
    let ratio = |a: u64, b: u64| {
        if b == 0 {
            "-".to_string()
        } else {
            format!("{:.2}x", a as f64 / b as f64)
        }
    };
    let busy = g
        .device_busy_s
        .map_or("unknown (no timestamp queries)".into(), |b| {
            format!("{b:.2} s")
        });
    let mut text = format!(
        "\n  gpu link: uploaded {:.1} MB ({} the input decoded), read back {:.1} MB ({} the output written); {} dispatches in {} submits{}; device busy {busy}, host waited {:.2} s",
        g.bytes_uploaded as f64 / 1e6,
        ratio(g.bytes_uploaded, report.bytes_read),
        g.bytes_downloaded as f64 / 1e6,
        ratio(g.bytes_downloaded, report.bytes_written),
        g.dispatches,
        g.submits,
        if g.slabs > 0 {
            format!(" ({} slabs streamed)", g.slabs)
        } else {
            String::new()
        },
        g.driver_wait_s,
    );
    if g.cpu_fallback_jobs > 0 {
        text += &format!(
            "\n  gpu fault: {}; {} of {} jobs computed on the CPU instead",
            g.fault.as_deref().unwrap_or("unknown"),
            g.cpu_fallback_jobs,
            report.jobs_done,
        );
    } else if let Some(fault) = &g.fault {
        text += &format!("\n  gpu fault: {fault}; every job computed on the device");
    }
    text
}

fn write_report(path: &Path, report: &Report) -> crate::Result<()> {
    let text = serde_json::to_string_pretty(report).expect("a report serialises");
    std::fs::write(path, text + "\n").map_err(|e| crate::Error::Store {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// `stats`' summary: one line per summary, its percentiles and histogram below.
pub(super) fn print_statistics(s: &crate::stats::Statistics, path: &Path, seconds: f64) {
    println!(
        "{}: {:?} {}, {} pass{} in {:.2} s",
        path.display(),
        s.shape,
        s.dtype,
        s.passes,
        if s.passes == 1 { "" } else { "es" },
        seconds
    );
    for m in &s.summaries {
        let label = match (m.index, s.axis) {
            (Some(i), Some(axis)) => format!("axis {axis} index {i}: "),
            _ => String::new(),
        };
        println!(
            "{label}count {} NaN {} min {} max {} mean {} std {}",
            m.count, m.nan_count, m.min, m.max, m.mean, m.std
        );
        if !m.percentiles.is_empty() {
            let p: Vec<String> = m
                .percentiles
                .iter()
                .map(|p| format!("p{} = {}", p.percentile, p.value))
                .collect();
            println!("  {}", p.join(", "));
        }
        if let Some(h) = &m.histogram {
            println!(
                "  histogram: {} bins from {} to {}: {:?}",
                h.counts.len(),
                h.edges[0],
                h.edges[h.counts.len()],
                h.counts
            );
        }
    }
}

/// `info IN [OP ...]`: the image and array, and the plan of a chain over it.
pub(super) fn info(a: &InfoArgs) -> crate::Result<()> {
    let input = crate::formats::scene_path(&a.input, a.scene.unwrap_or(0));
    let (path, image) = zarr::open_level(&input, a.level)?;
    let input = Input::open(&path)?;
    match &image {
        // A file's axes, spacing and channels are in its own description.
        Some(_) if input.file_metadata().is_some() => {}
        Some((image, level)) => {
            println!("{}", image.path.display());
            print!("{}", image.describe());
            println!("level {level}:");
            println!("{}", path.display());
        }
        None => println!("{}", path.display()),
    }
    println!("{}", input.describe());
    if a.chain.pipeline.is_some() || !a.chain.chain.is_empty() {
        let spacing = image.as_ref().map(|(i, l)| zarr::Spacing::of(i, *l));
        // A threshold or normalisation from statistics: computed, to plan the op the
        // run would plan.
        let chain = a.chain.chain()?;
        let (pipeline, statistics) = zarr::resolve_statistics(
            &chain.pipeline(spacing.as_ref())?,
            &input,
            &Options::default(),
        )?;
        if let Some(values) = statistics {
            println!("statistics of the input: {values}");
        }
        let plan = zarr::plan(&pipeline, &input, a.chunks.as_deref())?;
        // The jobs a run plans (an exact deconvolve's grown over several chunks), with
        // the default threads and memory limit.
        let limits = crate::exec::RunOptions::default();
        let plan = zarr::widened(plan, &pipeline, &input, limits.threads, limits.memory_limit)?;
        let (out_shape, out_dtype, chunk) = (
            plan.output_shape(),
            plan.output_dtype(),
            plan.output_chunk(),
        );
        println!(
            "plan: {}",
            serde_json::to_string(&pipeline).expect("serialises")
        );
        println!("  output shape {out_shape:?} {out_dtype}, chunks {chunk:?}");
        if plan.block_shape() == plan.output_chunk() {
            println!("  {} jobs (one per output chunk)", plan.num_jobs());
        } else {
            println!(
                "  {} jobs (blocks of {:?}: several output chunks each)",
                plan.num_jobs(),
                plan.block_shape()
            );
        }
        let reads = |job: &crate::Job| {
            job.footprint()
                .iter()
                .map(|set| format!("{:?}", set.runs()))
                .collect::<Vec<_>>()
                .join(" x ")
        };
        for job in [plan.job(0), plan.job(plan.num_jobs() / 2)] {
            println!(
                "  job {}: output {:?}+{:?} reads {} (edge padding per stage {:?})",
                job.index,
                job.output.start,
                job.output.shape,
                reads(&job),
                plan.edge_padding(&job)
            );
        }
    }
    Ok(())
}
