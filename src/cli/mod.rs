//! The `haloflow` command: each subcommand is the flags parsed into a spec of the
//! whole-array API ([`crate::zarr`]) and one library call, and its output printed.
//! (Layer: clients; see the layer map in `docs/ARCHITECTURE.md`.) The binary calls [`main`]; [`command`] runs one command line
//! in-process.
//!
//! - `args.rs`: the subcommands and the flags every run shares;
//! - `ops.rs`: each op's flags, and chains (`OP [FLAGS] + OP [FLAGS]`);
//! - `show.rs`: summaries, `init`'s plan, `verify`, statistics and `info`.

mod args;
mod geometry;
mod label;
mod ops;
mod restore;
mod show;

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;

use clap::Parser;

use crate::zarr::{self, ProgressBar};
use args::{
    Cli, Command, Common, ConvertArgs, OpCommand, PreviewArgs, PyramidArgs, Run, StatsArgs,
};
use ops::ToChain;

/// Turns an op's flags into an [`Op`](crate::Op).
trait ToOp {
    fn to_op(&self) -> crate::Result<crate::Op>;
}

/// Tunes glibc's malloc for a run's large, short-lived buffers (decoded and encoded
/// chunks of megabytes):
/// - at most two arenas: with one per thread (workers, codec threads), freed decode
///   buffers lingered in each and resident memory grew to twice `--memory-limit`;
/// - such buffers come from the heap and stay there between chunks, instead of being
///   mapped and unmapped each time: first-touch page faults on fresh mappings cost
///   more than decoding (a copy took 0.65 s instead of 0.45 s).
fn tune_malloc() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only tunes the allocator; called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 64 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 256 << 20);
    }
}

/// The `haloflow` binary: tunes the process (allocator, SIGPIPE, the Vulkan loader's
/// chatter), parses the command line, runs it, and prints an error as one line.
pub fn main() -> ExitCode {
    tune_malloc();
    // Like other command-line tools, end quietly when the reader of our output goes
    // away (`haloflow info ... | head`) instead of panicking on a broken pipe.
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of SIGPIPE, before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    // Before any thread starts: it may set an environment variable.
    crate::gpu::quiet_vulkan_loader();
    let cli = Cli::parse();
    crate::store::remote::set_io_concurrency(cli.io_concurrency);
    match execute(&cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("haloflow: error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs one command line in this process, `args` without the program name (e.g.
/// `["gaussian", "in.zarr", "out.zarr", "--sigma", "2"]`), as the binary does, except
/// that it neither tunes the process nor exits. `--help` and `--version` print and
/// succeed.
///
/// # Errors
/// The command's error; [`Error::InvalidParameter`](crate::Error::InvalidParameter)
/// (op `arguments`) for a command line that does not parse, with clap's message.
pub fn command<I, T>(args: I) -> crate::Result<()>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let argv = std::iter::once(std::ffi::OsString::from("haloflow"))
        .chain(args.into_iter().map(Into::into));
    match Cli::try_parse_from(argv) {
        Ok(cli) => {
            crate::store::remote::set_io_concurrency(cli.io_concurrency);
            execute(&cli.command)
        }
        Err(e) if !e.use_stderr() => {
            print!("{}", e.render());
            Ok(())
        }
        Err(e) => Err(crate::Error::InvalidParameter {
            op: "arguments",
            message: e
                .render()
                .to_string()
                .lines()
                .next()
                .unwrap_or_default()
                .trim_start_matches("error: ")
                .to_string(),
        }),
    }
}

/// Runs `command`.
fn execute(command: &Command) -> crate::Result<()> {
    match command {
        Command::Op(op) => op_command(op, false),
        Command::Init(i) => op_command(&i.op, true),
        Command::Label(r) => label::label(r),
        Command::Objects(a) => label::objects(a),
        Command::Verify(v) => show::verify(v),
        Command::Info(a) => show::info(a),
        Command::Stats(a) => stats(a),
        Command::Pyramid(p) => pyramid(p),
        Command::Devices => devices(),
        Command::Convert(c) => convert(c),
        Command::Preview(p) => preview(p),
    }
}

/// Runs an op, or with `init` only creates its output.
fn op_command(op: &OpCommand, init: bool) -> crate::Result<()> {
    match op {
        OpCommand::Threshold(r) => run(r, init),
        OpCommand::Clip(r) => run(r, init),
        OpCommand::Gaussian(r) => run(r, init),
        OpCommand::Convolve(r) => run(r, init),
        OpCommand::GaussianLaplace(r) => run(r, init),
        OpCommand::GaussianGradientMagnitude(r) => run(r, init),
        OpCommand::Uniform(r) => run(r, init),
        OpCommand::Normalize(r) => run(r, init),
        OpCommand::Deconvolve(r) => run(r, init),
        OpCommand::Denoise(r) => run(r, init),
        OpCommand::Anscombe(r) => run(r, init),
        OpCommand::InverseAnscombe(r) => run(r, init),
        OpCommand::Median(r) => run(r, init),
        OpCommand::Percentile(r) => run(r, init),
        OpCommand::Minimum(r) => run(r, init),
        OpCommand::Maximum(r) => run(r, init),
        OpCommand::Downsample(r) => run(r, init),
        OpCommand::Project(r) => run(r, init),
        OpCommand::Upsample(r) => run(r, init),
        OpCommand::Affine(r) => run(r, init),
        OpCommand::Zoom(r) => run(r, init),
        OpCommand::Rotate(r) => {
            let plane = r.common.rotation_plane()?;
            run_chain(r, r.op.with_plane(plane).to_chain()?, init, None)
        }
        OpCommand::Deskew(r) => {
            r.common.check_axes()?;
            let mip = r.op.mip.as_ref().map(|path| match path {
                Some(p) => p.clone(),
                None => zarr::default_mip_path(&r.output),
            });
            run_chain(r, r.op.to_chain()?, init, mip)
        }
        OpCommand::Copy(r) => run(r, init),
        OpCommand::Run(r) => match label::label_step(r) {
            Some(_) if init => Err(crate::Error::InvalidParameter {
                op: "init",
                message: "a labelling needs no init: its parts create the output themselves".into(),
            }),
            Some(at) => label::chain_label(r, at),
            None => run(r, init),
        },
    }
}

/// A progress bar, when one is shown (not `--quiet`, stderr a terminal).
fn progress_bar(c: &Common) -> Option<ProgressBar> {
    (!c.quiet && std::io::stderr().is_terminal()).then(ProgressBar::new)
}

/// An op's (or a chain's) run: the flags as a [`zarr::Run`], run or initialised.
fn run<A: clap::Args + ToChain>(r: &Run<A>, init: bool) -> crate::Result<()> {
    r.common.check_axes()?;
    run_chain(r, r.op.to_chain()?, init, None)
}

/// Runs (or initialises) `chain` with `r`'s paths and common flags, writing the
/// output's maximum projections to `mip` where given.
fn run_chain<A: clap::Args>(
    r: &Run<A>,
    mut chain: zarr::Chain,
    init: bool,
    mip: Option<std::path::PathBuf>,
) -> crate::Result<()> {
    let c = &r.common;
    // Before anything is created: a part that cannot be found leaves nothing behind.
    let part = c.part()?;
    if let Some(d) = &c.dtype {
        chain.dtype = Some(d.parse()?);
    }
    let options = zarr::Options {
        mip,
        ..c.options(part)?
    };
    let spec = zarr::Run::new(c.input(&r.input), &r.output, chain).with_options(options);
    if init {
        show::print_init(&spec.init()?);
        return Ok(());
    }
    let bar = progress_bar(c);
    let report = spec.run(bar.as_ref().map(|b| b as &dyn zarr::Progress))?;
    show::finish(c, bar, &report, &r.output, "")
}

/// `pyramid`: every level in one pass over level 0 where it can, else level by level.
fn pyramid(p: &PyramidArgs) -> crate::Result<()> {
    let c = &p.common;
    c.check_axes()?;
    let part = c.part()?;
    let spec = zarr::Pyramid {
        levels: p.levels,
        factor: p.factor.clone(),
        method: p.method,
        options: c.options(part)?,
        ..zarr::Pyramid::new(c.input(&p.input), &p.output)
    };
    let bar = progress_bar(c);
    let done = spec.run(bar.as_ref().map(|b| b as &dyn zarr::Progress))?;
    let how = if done.one_pass {
        let copied = if done.level0_copied {
            ", level 0's chunks copied as the input encodes them"
        } else {
            ""
        };
        format!(
            " ({} levels in one pass over level 0, a job per tile of the coarsest level's chunks{copied})",
            done.levels
        )
    } else {
        format!(
            " ({} levels, each from level 0 by its own chain)",
            done.levels
        )
    };
    show::finish(c, bar, &done.report, &p.output, &how)
}

/// `convert IN OUT`: a copy (an OME-Zarr image unless `--plain`), or a pyramid.
fn convert(a: &ConvertArgs) -> crate::Result<()> {
    let c = &a.common;
    c.check_axes()?;
    let part = c.part()?;
    let mut options = c.options(part)?;
    if let Some(levels) = a.pyramid {
        let spec = zarr::Pyramid {
            levels,
            options,
            ..zarr::Pyramid::new(c.input(&a.input), &a.output)
        };
        let bar = progress_bar(c);
        let done = spec.run(bar.as_ref().map(|b| b as &dyn zarr::Progress))?;
        let how = format!(" ({} levels)", done.levels);
        return show::finish(c, bar, &done.report, &a.output, &how);
    }
    options.plain = a.plain;
    let mut chain = zarr::Chain::default();
    if let Some(d) = &c.dtype {
        chain.dtype = Some(d.parse()?);
    }
    let spec = zarr::Run::new(c.input(&a.input), &a.output, chain).with_options(options);
    let bar = progress_bar(c);
    let report = spec.run(bar.as_ref().map(|b| b as &dyn zarr::Progress))?;
    show::finish(c, bar, &report, &a.output, "")
}

/// `preview IN OUT.png`.
fn preview(a: &PreviewArgs) -> crate::Result<()> {
    let spec = zarr::Preview {
        level: a.level,
        axis: a.axis.clone(),
        method: a.method.parse()?,
        index: a.index,
        channel: a.channel,
        contrast: a.contrast.parse()?,
        colormap: a.colormap.parse()?,
        size: a.size,
        threads: a.threads,
        ..zarr::Preview::new(
            crate::formats::scene_path(&a.input, a.scene.unwrap_or(0)),
            &a.output,
        )
    };
    let r = spec.run()?;
    println!(
        "{}: {}×{} picture of level {} {:?}, axes {} × {}{}, window {} to {}",
        a.output.display(),
        r.picture.0,
        r.picture.1,
        r.level,
        r.shape,
        r.shown.0,
        r.shown.1,
        r.axis
            .map(|p| format!(" across axis {p}"))
            .unwrap_or_default(),
        r.window.0,
        r.window.1
    );
    Ok(())
}

/// `stats IN`: printed, and written as JSON where asked.
fn stats(a: &StatsArgs) -> crate::Result<()> {
    let spec = zarr::Stats {
        input: crate::formats::scene_path(&a.input, a.scene.unwrap_or(0)),
        level: a.level,
        options: crate::stats::StatsOptions {
            axis: a.axis,
            histogram: match (a.histogram, &a.plot) {
                (None, Some(_)) => Some(256),
                (h, _) => h,
            },
            percentiles: match (a.percentiles.is_empty(), &a.plot) {
                (true, Some(_)) => vec![1.0, 50.0, 99.0],
                _ => a.percentiles.clone(),
            },
            keep_decoded: a.keep_decoded << 20,
        },
        threads: a.threads,
    };
    let path = spec.array()?;
    let started = std::time::Instant::now();
    let s = spec.run()?;
    let json = serde_json::to_string_pretty(&s).expect("serialises");
    if let Some(png) = &a.plot {
        let whole = &s.summaries[0];
        let h = whole.histogram.as_ref().expect("asked for");
        let marks: Vec<(f64, f64)> = whole
            .percentiles
            .iter()
            .map(|p| (p.percentile, p.value))
            .collect();
        crate::picture::plot_histogram(png, &h.counts, &h.edges, &marks, (800, 400))?;
    }
    if a.json.as_deref() == Some(Path::new("-")) {
        println!("{json}");
        return Ok(());
    }
    if !a.quiet {
        show::print_statistics(&s, &path, started.elapsed().as_secs_f64());
    }
    if let Some(file) = &a.json {
        std::fs::write(file, json + "\n").map_err(|e| crate::Error::Store {
            path: file.clone(),
            message: e.to_string(),
        })?;
    }
    Ok(())
}

/// `devices`: the adapters wgpu finds, one a line.
fn devices() -> crate::Result<()> {
    let adapters = crate::gpu::adapters();
    if adapters.is_empty() {
        println!("no GPU adapter found (Vulkan, Metal or DX12); haloflow will use the CPU");
    }
    for a in adapters {
        println!("{}", a.listing());
    }
    Ok(())
}
