//! `label`: connected components ([`zarr::Label`]), alone or at the end of a chain
//! (`run IN OUT gaussian --sigma 1 + threshold --above 100 + label --connectivity 3`).

use clap::Parser;

use super::args::{Common, LabelArgs, ObjectsArgs, Run};
use super::ops::ChainArgs;
use super::progress_bar;
use crate::zarr::{self, Chain, LabelReport, LabelStep};

/// `objects LABELS --table OUT.csv|OUT.parquet`.
pub(super) fn objects(a: &ObjectsArgs) -> crate::Result<()> {
    // A table named for no format is refused before the labels are read.
    crate::TableFormat::of(&a.table)?;
    let started = std::time::Instant::now();
    let found = zarr::Objects {
        intensity: a.intensity.clone(),
        level: a.level,
        threads: a.threads,
        ..zarr::Objects::new(&a.labels)
    }
    .run()?;
    found.write(&a.table)?;
    if !a.quiet {
        eprintln!(
            "{}: {} objects of {} in {:.2} s",
            a.table.display(),
            found.table.objects().len(),
            a.labels.display(),
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

/// The `label` step at the end of a chain, parsed with its own flags.
#[derive(Parser)]
#[command(name = "label", no_binary_name = true)]
struct LabelLine {
    #[command(flatten)]
    args: LabelArgs,
}

impl LabelArgs {
    /// The spec of these flags, labelling what `chain` computes from the input.
    fn spec(
        &self,
        r: &Common,
        input: &std::path::Path,
        output: &std::path::Path,
        chain: Chain,
    ) -> crate::Result<zarr::Label> {
        let part = r.part()?;
        Ok(zarr::Label {
            chain,
            connectivity: self.connectivity,
            above: self.above,
            dtype: match &r.dtype {
                Some(d) => d.parse()?,
                None => crate::DType::U32,
            },
            step: if self.merge {
                LabelStep::Merge
            } else {
                LabelStep::Label
            },
            options: r.options(part)?,
            ..zarr::Label::new(r.input(input), output)
        })
    }
}

/// `label IN OUT`.
pub(super) fn label(r: &Run<LabelArgs>) -> crate::Result<()> {
    let spec =
        r.op.spec(&r.common, &r.input, &r.output, Chain::default())?;
    execute(&r.common, &spec)
}

/// Where the last op of `run`'s chain begins, if it is `label`.
pub(super) fn label_step(r: &Run<ChainArgs>) -> Option<usize> {
    let words = &r.op.chain;
    let at = words.iter().rposition(|w| w == "+").map_or(0, |i| i + 1);
    (words.get(at).map(String::as_str) == Some("label")).then_some(at)
}

/// `run IN OUT ... + label ...`: what the chain before the label step computes is
/// labelled (the label step begins at word `at`).
pub(super) fn chain_label(r: &Run<ChainArgs>, at: usize) -> crate::Result<()> {
    let words = &r.op.chain;
    {
        let line = LabelLine::try_parse_from(&words[at + 1..]).map_err(|e| {
            let text = e.render().to_string();
            crate::Error::InvalidParameter {
                op: "run",
                message: format!(
                    "label: {}",
                    text.lines()
                        .next()
                        .unwrap_or_default()
                        .trim_start_matches("error: ")
                ),
            }
        })?;
        let before = ChainArgs {
            pipeline: r.op.pipeline.clone(),
            chain: words[..at.saturating_sub(1)].to_vec(),
        };
        let chain = if before.pipeline.is_none() && before.chain.is_empty() {
            Chain::default()
        } else {
            before.chain()?
        };
        let spec = line.args.spec(&r.common, &r.input, &r.output, chain)?;
        execute(&r.common, &spec)
    }
}

fn execute(c: &Common, spec: &zarr::Label) -> crate::Result<()> {
    let bar = progress_bar(c);
    let report = spec.run(bar.as_ref().map(|b| b as &dyn zarr::Progress))?;
    if let Some(b) = bar {
        b.finish();
    }
    if !c.quiet {
        eprintln!("{}", summary(&report, &spec.output));
    }
    if let Some(path) = &c.report {
        let text = serde_json::to_string_pretty(&report).expect("a report serialises");
        std::fs::write(path, text + "\n").map_err(|e| crate::Error::Store {
            path: path.clone(),
            message: e.to_string(),
        })?;
    }
    Ok(())
}

fn summary(r: &LabelReport, output: &std::path::Path) -> String {
    let objects = match r.objects {
        Some(n) => format!("{n} objects"),
        None => "chunks labelled; run `label --merge` once every part is done".into(),
    };
    format!(
        "{}: {objects} ({} of {} chunks labelled, {} written, {} already done) in {:.2} s, peak memory {} MiB",
        output.display(),
        r.chunks_labelled,
        r.chunks,
        r.chunks_written,
        r.chunks_skipped,
        r.seconds,
        r.peak_rss_bytes >> 20
    )
}
