//! [`Label`]: connected components of a whole Zarr array (or of what a chain computes
//! from it), numbered as `scipy.ndimage.label` numbers them, chunk by chunk, resumable
//! and split into parts with a merge step.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use rayon::prelude::*;

use super::chain::Chain;
use super::image::open_level;
use super::options::{Options, on_threads};
use super::progress::{Phase, Progress};
use crate::Plan;
use crate::block::BlockAny;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::exec::label::{DirState, LabelState, Labelling, StateObjects};
use crate::region::Grid;
use crate::stage::{Foreground, Structure};
use crate::store::remote::RemoteStore;
use crate::store::{Input, OmeImage, Output, OutputSpec};

/// Which step of a labelling a process runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LabelStep {
    /// Everything (one process), or, with a part of several ([`Options::part`]), the
    /// labelling of that part's chunks on their own: the merge comes after every part.
    #[default]
    Label,
    /// After every part: joins the chunks' objects, numbers them, and writes the
    /// labels (of this part's chunks, with [`Options::part`]).
    Merge,
}

/// Connected components of a Zarr array (or OME-Zarr image level, or an instrument
/// file) written as a label array: equal to `scipy.ndimage.label(mask, structure)`
/// whatever the chunking, numbering included (labels in raster order of each object's
/// first voxel).
///
/// Memory holds the chunks in flight and, in the merge, one entry per object that
/// touches a chunk face and one count per row of the array (all axes but the last).
/// What the steps hand on is kept in `.haloflow-label/` inside the output array and
/// removed once every chunk is written.
///
/// ```no_run
/// use haloflow::zarr::{Chain, Label};
/// use haloflow::Op;
///
/// // Objects above 1200 after a Gaussian, 26-connected.
/// let label = Label {
///     connectivity: 3,
///     chain: Chain::new(vec![Op::gaussian(&[1.0]).into(), Op::threshold(1200.0).into()]),
///     ..Label::new("image.zarr", "labels.zarr")
/// };
/// let report = label.run(None)?;
/// println!("{} objects", report.objects.unwrap_or(0));
/// # Ok::<(), haloflow::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Label {
    /// The input: a mask, or any array with [`Label::above`].
    pub input: PathBuf,
    /// The label array written (created, or resumed).
    pub output: PathBuf,
    /// Ops computed before labelling (their result is labelled); empty: the input.
    pub chain: Chain,
    /// `scipy.ndimage.generate_binary_structure(ndim, connectivity)`: 1 joins faces
    /// only (scipy's default), the number of axes joins every neighbour. Ignored when
    /// [`Label::structure`] is given.
    pub connectivity: usize,
    /// A structure of 3×…×3 (scipy's `structure`), instead of a connectivity.
    pub structure: Option<Structure>,
    /// Objects are the voxels above this value; `None`: the voxels that are not zero
    /// (an integer mask; a float input needs a threshold).
    pub above: Option<f64>,
    /// The label type: `uint32` by default; a type too small for the count is an error.
    pub dtype: DType,
    /// Which step this process runs.
    pub step: LabelStep,
    /// Chunks, part, threads, memory limit, compression, overwrite.
    pub options: Options,
}

/// What a [`Label`] step did.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct LabelReport {
    /// The step run: `label` (of a part), `merge`, or `all`.
    pub step: String,
    /// The number of objects, once the merge has numbered them.
    pub objects: Option<u64>,
    /// Chunks of the whole array.
    pub chunks: usize,
    /// Chunks labelled on their own by this process.
    pub chunks_labelled: usize,
    /// Chunks written (relabelled) by this process.
    pub chunks_written: usize,
    /// Chunks found already done and skipped: already written where this process
    /// writes labels, else already labelled.
    pub chunks_skipped: usize,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// The process's peak resident memory (Linux `VmHWM`; 0 where unknown).
    pub peak_rss_bytes: u64,
}

/// The directory inside the output array where the steps hand over.
pub const LABEL_STATE_DIR: &str = ".haloflow-label";

impl Label {
    /// Labels of `input`'s non-zero voxels, face-connected, written to `output`.
    pub fn new(input: impl Into<PathBuf>, output: impl Into<PathBuf>) -> Label {
        Label {
            input: input.into(),
            output: output.into(),
            chain: Chain::default(),
            connectivity: 1,
            structure: None,
            above: None,
            dtype: DType::U32,
            step: LabelStep::Label,
            options: Options::default(),
        }
    }

    /// Runs this process's step; `progress` hears of every chunk.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for a connectivity out of range, a float input
    /// without [`Label::above`], sharded output, a merge before every part is done, or
    /// more objects than the label type holds (nothing is written then);
    /// [`Error::IncompatibleOutput`] for an output made otherwise; read and write errors.
    pub fn run(&self, progress: Option<&dyn Progress>) -> Result<LabelReport> {
        let started = Instant::now();
        let o = &self.options;
        if o.mip.is_some() {
            return Err(Error::InvalidParameter {
                op: "label",
                message: "maximum projections (mip) are written by a run, not a labelling".into(),
            });
        }
        let (input_path, _) = open_level(&self.input, o.level)?;
        let input = Input::open(&input_path)?;
        let pipeline = self.chain.pipeline(None)?;
        let (shape, in_dtype) = pipeline.output(input.shape(), input.dtype())?;
        let ndim = shape.len();
        let structure = match &self.structure {
            Some(s) if s.ndim() != ndim => {
                return Err(Error::InvalidParameter {
                    op: "label",
                    message: format!(
                        "the structure has {} dimensions, the input {ndim}",
                        s.ndim()
                    ),
                });
            }
            Some(s) => s.clone(),
            None => Structure::connectivity(ndim, self.connectivity)?,
        };
        let foreground = match self.above {
            Some(t) if !t.is_finite() => {
                return Err(Error::InvalidParameter {
                    op: "label",
                    message: format!("--above must be a finite number, got {t}"),
                });
            }
            Some(t) => Foreground::Above(t),
            None if in_dtype.is_float() => {
                return Err(Error::InvalidParameter {
                    op: "label",
                    message: format!(
                        "the input is {in_dtype}, not a mask: give a threshold (--above T) to say which voxels are objects"
                    ),
                });
            }
            None => Foreground::NonZero,
        };
        if o.device == crate::Device::Gpu {
            return Err(Error::InvalidParameter {
                op: "label",
                message: "labelling runs on the CPU (union-find over runs); leave out --device gpu"
                    .into(),
            });
        }
        if o.ome.is_some() || o.ngff_version.is_some() {
            return Err(Error::InvalidParameter {
                op: "label",
                message: "labels are an OME-Zarr label image when written to IMAGE.ome.zarr/labels/NAME, \
                          in the image's NGFF version; --ome and --ngff-version do not apply"
                    .into(),
            });
        }
        if o.shards.is_some() {
            return Err(Error::InvalidParameter {
                op: "label",
                message: "labels are written chunk by chunk; sharded output is not supported"
                    .into(),
            });
        }
        if self.dtype.is_float() {
            return Err(Error::InvalidParameter {
                op: "label",
                message: format!("labels are integers: {} is not a label type", self.dtype),
            });
        }
        let chunk: Vec<usize> = match &o.chunks {
            Some(c) => crate::ops::per_axis("chunks", c, ndim)?,
            None if pipeline.ops.is_empty() => input.chunk_shape(),
            None => super::run::plan(&pipeline, &input, None)?
                .output_chunk()
                .to_vec(),
        };
        let chunk: Vec<usize> = chunk
            .iter()
            .zip(&shape)
            .map(|(&c, &n)| c.clamp(1, n.max(1)))
            .collect();
        let grid = Grid::new(&shape, &chunk)?;
        let labelling = Labelling {
            grid: grid.clone(),
            structure,
            foreground,
            dtype: self.dtype,
        };
        // The chain, planned one job per label chunk.
        let plan = (!pipeline.ops.is_empty())
            .then(|| Plan::new(&pipeline, input.shape(), input.dtype(), &chunk, &chunk))
            .transpose()?;
        let read = |c: usize| -> Result<BlockAny<'static>> {
            match &plan {
                None => input.read_region(&labelling.region(c)),
                Some(plan) => {
                    let job = plan.job(c);
                    let source = input.read(&job.sets[0])?;
                    Ok(crate::cpu::run_job(plan, &job, &source))
                }
            }
        };

        let mut attributes = serde_json::Map::new();
        attributes.insert(
            "haloflow".into(),
            serde_json::json!({
                "label": {
                    "structure": labelling.structure.offsets(),
                    "above": self.above,
                    "pipeline": pipeline,
                }
            }),
        );
        let mut spec = OutputSpec::new(&shape, self.dtype, &chunk)
            .with_zarr_format(o.zarr_format)
            .with_compression(o.compression)
            .with_attributes(attributes);
        // Inside an OME-Zarr image's `labels/` group: an NGFF label image of it.
        let label_image = self.label_image(&shape)?;
        let array_path = match &label_image {
            Some((image, _)) => {
                image.check_target(&self.output)?;
                spec = spec
                    .with_zarr_format(image.version.zarr_format())
                    .with_dimension_names(image.axes.iter().map(|a| a.name.clone()).collect());
                self.output.join("0")
            }
            None => self.output.clone(),
        };
        let output = Output::create(&array_path, &spec, o.overwrite)?;
        if let Some((image, labels_dir)) = &label_image {
            write_label_image(image, &self.output, labels_dir, &pipeline, None)?;
        }
        let state_dir = array_path.join(LABEL_STATE_DIR);
        let done_file = state_dir.join("done");
        let chunks = grid.num_chunks();
        let part = o.part;
        let mut report = LabelReport {
            step: match (self.step, part.count) {
                (LabelStep::Merge, _) => "merge",
                (LabelStep::Label, 1) => "all",
                (LabelStep::Label, _) => "label",
            }
            .into(),
            chunks,
            ..LabelReport::default()
        };
        // On an object store the hand-overs are objects below the output.
        let remote = RemoteStore::open(&state_dir)?;
        if o.overwrite && output.resumed() {
            remove_dir(&state_dir, remote.as_deref())?;
        }
        if let Some(count) = read_done(&done_file, remote.as_deref())? {
            report.objects = Some(count);
            report.chunks_skipped = part.jobs(chunks).len();
            return Ok(finish(report, started));
        }
        let state = match &remote {
            Some(r) => DirState::on_objects(&state_dir, Box::new(RemoteState(r.clone()))),
            None => DirState::new(&state_dir)?,
        };
        // Jobs in flight: as many threads as the memory limit holds chunks of input,
        // labels and runs, and the rows' bit masks (16 bytes per 64 voxels of a row).
        let chunk = grid.chunk_shape();
        let nx = chunk.last().copied().unwrap_or(1).max(1);
        let voxels = chunk.iter().product::<usize>() as u64;
        let rows = voxels / nx as u64;
        let per_job = voxels * (in_dtype.size() + self.dtype.size() + 8) as u64
            + rows * nx.div_ceil(64) as u64 * 16
            + input.chunk_shape().iter().product::<usize>() as u64 * input.dtype().size() as u64;
        let limits = o.run_options(crate::Backend::Cpu, String::new());
        let threads = limits
            .threads
            .min((limits.memory_limit / per_job.max(1)).max(1) as usize);
        let mine = part.jobs(chunks);
        let finished = AtomicUsize::new(0);
        let skipped = AtomicUsize::new(0);
        let written = AtomicU64::new(0);
        let tick = |bytes: u64| {
            let done = finished.fetch_add(1, Ordering::Relaxed) + 1;
            let total = written.fetch_add(bytes, Ordering::Relaxed) + bytes;
            if let Some(p) = progress {
                p.advance(done, total);
            }
        };

        // Step 1: this part's chunks (every chunk in a merge, for those a part left).
        let first: Vec<usize> = match self.step {
            LabelStep::Label => mine.clone().collect(),
            LabelStep::Merge => Vec::new(),
        };
        if let Some(p) = progress {
            p.begin(Phase::Labels, first.len());
        }
        on_threads(Some(threads), || {
            first.par_iter().try_for_each(|&c| -> Result<()> {
                if !o.overwrite && state.has_summary(c)? {
                    skipped.fetch_add(1, Ordering::Relaxed);
                } else {
                    state.put_summary(c, &labelling.summarise(c, &read(c)?)?)?;
                }
                tick(0);
                Ok(())
            })
        })?;
        report.chunks_labelled = first.len() - skipped.load(Ordering::Relaxed);
        if self.step == LabelStep::Label && part.count > 1 {
            report.chunks_skipped = skipped.load(Ordering::Relaxed);
            return Ok(finish(report, started));
        }

        // Step 2 (every process of a merge does it, and hands over the same numbers),
        // then step 3 for this part's chunks.
        let count = labelling.merge(&state)?;
        report.objects = Some(count);
        let last: Vec<usize> = match self.step {
            LabelStep::Label => (0..chunks).collect(),
            LabelStep::Merge => mine.collect(),
        };
        finished.store(0, Ordering::Relaxed);
        written.store(0, Ordering::Relaxed);
        skipped.store(0, Ordering::Relaxed);
        if let Some(p) = progress {
            p.begin(Phase::Relabels, last.len());
        }
        on_threads(Some(threads), || {
            last.par_iter().try_for_each(|&c| -> Result<()> {
                let region = labelling.region(c);
                if !o.overwrite && output.region_done(&region)? {
                    skipped.fetch_add(1, Ordering::Relaxed);
                    tick(0);
                    return Ok(());
                }
                let block = labelling.relabel(&read(c)?, state.numbers(c)?.as_ref())?;
                output.write(&region, &block)?;
                tick((region.len() * self.dtype.size()) as u64);
                Ok(())
            })
        })?;
        output.flush()?;
        // Chunks already written (a resumed run); those only labelled before are not
        // counted, since they are written now.
        report.chunks_skipped = skipped.load(Ordering::Relaxed);
        report.chunks_written = last.len() - report.chunks_skipped;
        if let Some((image, labels_dir)) = &label_image {
            write_label_image(image, &self.output, labels_dir, &pipeline, Some(count))?;
        }
        if part.count == 1 {
            // Every chunk is written: what the steps handed on is no longer needed.
            write_done(&state_dir, &done_file, count, remote.as_deref())?;
        }
        Ok(finish(report, started))
    }

    /// Where the output is `IMAGE/labels/NAME` of an OME-Zarr image: the label image's
    /// metadata (the image's axes and level 0's scale) and the `labels` group.
    fn label_image(&self, shape: &[usize]) -> Result<Option<(OmeImage, PathBuf)>> {
        let Some(labels_dir) = self.output.parent() else {
            return Ok(None);
        };
        if labels_dir.file_name().and_then(|n| n.to_str()) != Some("labels") {
            return Ok(None);
        }
        let Some(image_dir) = labels_dir.parent() else {
            return Ok(None);
        };
        let Some(image) = OmeImage::open(image_dir)? else {
            return Ok(None);
        };
        let level0 = Input::open(&image.level_path(0)?)?;
        if level0.shape() != shape {
            return Err(Error::InvalidParameter {
                op: "label",
                message: format!(
                    "a label image of {} must have its level 0's shape {:?}, not {shape:?}",
                    image_dir.display(),
                    level0.shape()
                ),
            });
        }
        let name = self
            .output
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("labels")
            .to_string();
        let label = OmeImage {
            path: self.output.clone(),
            name: Some(name),
            levels: vec![image.levels[0].clone()],
            omero: None,
            resampled: Vec::new(),
            ..image
        };
        Ok(Some((label, labels_dir.to_path_buf())))
    }
}

/// The most labels given a colour of their own in the label image's metadata.
const COLOURED: u64 = 65_536;

/// Writes a label image's group (NGFF `image-label`, with a colour per label once the
/// `count` is known, up to [`COLOURED`]) and lists it in the image's `labels` group.
fn write_label_image(
    image: &OmeImage,
    path: &Path,
    labels_dir: &Path,
    pipeline: &crate::Pipeline,
    count: Option<u64>,
) -> Result<()> {
    let mut meta = serde_json::Map::new();
    meta.insert("source".into(), serde_json::json!({"image": "../../"}));
    if let Some(n) = count.filter(|&n| n <= COLOURED) {
        let colours: Vec<serde_json::Value> = (1..=n)
            .map(|k| serde_json::json!({"label-value": k, "rgba": colour(k)}))
            .collect();
        meta.insert("colors".into(), serde_json::Value::Array(colours));
    }
    image.write_label_group(path, pipeline, meta)?;
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("labels");
    OmeImage::add_to_labels_group(labels_dir, image.version, name)
}

/// A bright colour for label `k`: hues a golden angle apart, so neighbouring labels
/// differ.
fn colour(k: u64) -> [u8; 4] {
    let h = (k as f64 * 0.618_033_988_749_895).fract() * 6.0;
    let x = 1.0 - (h % 2.0 - 1.0).abs();
    let (r, g, b) = match h as u32 {
        0 => (1.0, x, 0.0),
        1 => (x, 1.0, 0.0),
        2 => (0.0, 1.0, x),
        3 => (0.0, x, 1.0),
        4 => (x, 0.0, 1.0),
        _ => (1.0, 0.0, x),
    };
    let c = |v: f64| (55.0 + 200.0 * v).round() as u8;
    [c(r), c(g), c(b), 255]
}

fn finish(mut report: LabelReport, started: Instant) -> LabelReport {
    report.seconds = started.elapsed().as_secs_f64();
    report.peak_rss_bytes = crate::exec::peak_rss_bytes().unwrap_or(0);
    report
}

fn io_error(path: &Path, e: std::io::Error) -> Error {
    Error::Store {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

fn remove_dir(dir: &Path, remote: Option<&RemoteStore>) -> Result<()> {
    if let Some(remote) = remote {
        return remote.erase_all();
    }
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io_error(dir, e)),
        _ => Ok(()),
    }
}

/// The object count of a finished labelling, if it is finished.
fn read_done(done: &Path, remote: Option<&RemoteStore>) -> Result<Option<u64>> {
    let text = match remote {
        Some(r) => r
            .read("done")?
            .map(|b| String::from_utf8_lossy(&b).into_owned()),
        None => match std::fs::read_to_string(done) {
            Ok(s) => Some(s),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(io_error(done, e)),
        },
    };
    text.map(|s| {
        s.trim().parse().map_err(|_| Error::Store {
            path: done.to_path_buf(),
            message: "not an object count".into(),
        })
    })
    .transpose()
}

/// Marks the labelling finished with `count` objects and drops the hand-overs.
fn write_done(dir: &Path, done: &Path, count: u64, remote: Option<&RemoteStore>) -> Result<()> {
    if let Some(remote) = remote {
        remote.write_now("done", format!("{count}\n").into_bytes())?;
        for sub in ["summaries", "numbers"] {
            if let Some(objects) = RemoteStore::open(&dir.join(sub))? {
                objects.erase_all()?;
            }
        }
        return Ok(());
    }
    let tmp = dir.join("done.tmp");
    std::fs::write(&tmp, format!("{count}\n")).map_err(|e| io_error(&tmp, e))?;
    std::fs::rename(&tmp, done).map_err(|e| io_error(done, e))?;
    for sub in ["summaries", "numbers"] {
        remove_dir(&dir.join(sub), None)?;
    }
    Ok(())
}

/// The hand-overs of a labelling whose output is on an object store: objects below
/// `OUT/.haloflow-label/`.
struct RemoteState(std::sync::Arc<RemoteStore>);

impl StateObjects for RemoteState {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.0.read(key)
    }

    fn put(&self, key: &str, bytes: Vec<u8>) -> Result<()> {
        self.0.write_now(key, bytes)
    }
}
