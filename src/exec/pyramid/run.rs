//! A pyramid's run: this part's tiles, each by the window or the rows path, their
//! levels' chunks written as they are finished.

use std::time::Instant;

use super::pieces::{OnePassPyramid, Pieces, compute};
use crate::block::BlockAny;
use crate::error::Result;
use crate::exec::options::{Progress, RunOptions};
use crate::exec::report::{GpuReport, Report, peak_rss_bytes};
use crate::region::Grid;

impl OnePassPyramid<'_> {
    /// Runs this process's part of the tiles, or returns `None` (having written
    /// nothing) when the levels' chunks do not tile evenly or a tile would not fit in
    /// `options.memory_limit`: then build the levels one chain at a time.
    pub fn run(
        &self,
        options: &RunOptions,
        progress: Option<Progress<'_>>,
    ) -> Result<Option<Report>> {
        let started = Instant::now();
        let (shapes, plans) = self.plans()?;
        let levels = self.sinks.len();
        let top_grid = Grid::new(&shapes[levels - 1], &self.chunks[levels - 1])?;
        let tiles = top_grid.num_chunks();
        let first = top_grid.chunk_region(&vec![0; shapes[0].len()]);
        if !self.aligned(&shapes, &top_grid)
            || self.tile_bytes(&shapes, &plans, &first) > options.memory_limit
        {
            return Ok(None);
        }
        let range = options.part.jobs(tiles);
        let mut report = Report {
            jobs_total: range.len(),
            device: options.backend.describe(),
            device_reason: options.device_reason.clone(),
            ..Report::default()
        };
        let threads = rayon::current_num_threads().max(1);
        GpuReport::start(&options.backend);
        for t in range {
            let top = top_grid.chunk_region(&crate::region::unravel(t, &top_grid.grid_shape()));
            let owned = self.owned(&shapes, &top);
            let mut done = true;
            for (sink, region) in self.sinks.iter().zip(&owned) {
                done &= sink.region_done(region)?;
            }
            if done {
                report.jobs_skipped += 1;
                if let Some(p) = progress {
                    p(report.jobs_done + report.jobs_skipped, report.bytes_written);
                }
                continue;
            }
            let needs = self.needs(&plans, &owned);
            let (computed, written, read) = std::thread::scope(|s| -> Result<(f64, f64, f64)> {
                // Level 0 streams in slabs of whole output chunk rows: each slab is
                // written by a writer thread while the next one is read.
                let (send, receive) = std::sync::mpsc::sync_channel::<Pieces>(2);
                let writer = s.spawn(move || -> Result<f64> {
                    let mut seconds = 0.0;
                    for pieces in receive {
                        use rayon::prelude::*;
                        let clock = Instant::now();
                        pieces.par_iter().try_for_each(|(k, region, block)| {
                            match self.copy_level0 {
                                Some(copy) if *k == 0 && copy(region)? => Ok(()),
                                _ => self.sinks[*k].write(region, block),
                            }
                        })?;
                        seconds += clock.elapsed().as_secs_f64();
                    }
                    Ok(seconds)
                });
                // Level 1 is made slab by slab as level 0 is decoded (the read then
                // includes that compute, and level 0 is never held whole): a window
                // step piece by piece, any other step by rows.
                let clock = Instant::now();
                let plan1 = plans.get(1).and_then(Option::as_ref);
                let first =
                    match plan1.and_then(|plan| self.level1_by_part(plan, &needs, &owned[0])) {
                        Some(slabs) => {
                            let plan = plan1.expect("a step");
                            self.stream_level1(plan, &slabs, &needs[1], &owned, options, &send)
                                .map(Some)
                        }
                        None => self.stream_rows(
                            plan1.map(|plan| (plan, &needs[1])),
                            &needs[0],
                            &owned,
                            options,
                            &send,
                        ),
                    };
                drop(send);
                let read = clock.elapsed().as_secs_f64();
                let first = match first {
                    Ok(block) => block,
                    Err(e) => {
                        let _ = writer.join();
                        return Err(e);
                    }
                };
                let clock = Instant::now();
                // `coarser[k - 1]` is level k; level 1 went to the writer as its chunk
                // rows were finished.
                let mut coarser: Vec<BlockAny<'static>> = first.into_iter().collect();
                for k in 2..levels {
                    let plan = plans[k].as_ref().expect("a step");
                    let input = coarser.last().expect("a finer level");
                    let next = compute(plan, &needs[k], input, options, threads)?;
                    coarser.push(next);
                }
                let computed = clock.elapsed().as_secs_f64();
                let clock = Instant::now();
                for (k, block) in coarser.iter().enumerate().skip(1) {
                    self.sinks[k + 1].write(&owned[k + 1], block)?;
                }
                let written = clock.elapsed().as_secs_f64();
                let first = writer.join().expect("the writer does not panic")?;
                Ok((computed, written + first, read))
            })?;
            report.stages.read += read;
            report.bytes_read += (needs[0].len() * self.source.dtype().size()) as u64;
            report.stages.compute += computed;
            report.stages.write += written;
            for k in 0..levels {
                let size = match &plans[k] {
                    Some(plan) => plan.output_dtype().size(),
                    None => self.source.dtype().size(),
                };
                report.bytes_written += (owned[k].len() * size) as u64;
            }
            report.jobs_done += 1;
            if let Some(p) = progress {
                p(report.jobs_done + report.jobs_skipped, report.bytes_written);
            }
        }
        for sink in &self.sinks {
            sink.flush()?;
        }
        report.gpu = GpuReport::finish(&options.backend);
        report.seconds = started.elapsed().as_secs_f64();
        report.peak_rss_bytes = peak_rss_bytes().unwrap_or(0);
        Ok(Some(report))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::Block;
    use crate::dtype::DType;
    use crate::exec::io::{Sink, Source};
    use crate::ops::Op;
    use crate::ops::Pipeline;
    use crate::region::Region;
    use crate::stage::DownMethod;

    /// Zeros of a shape, read in chunks; nothing is written to it.
    struct Zeros(Vec<usize>, Vec<usize>);

    impl Source for Zeros {
        fn shape(&self) -> &[usize] {
            &self.0
        }
        fn dtype(&self) -> DType {
            DType::F32
        }
        fn read_chunk_shape(&self) -> Vec<usize> {
            self.1.clone()
        }
        fn read_region(&self, region: &Region) -> Result<BlockAny<'static>> {
            Ok(Block::new(
                region.sets(),
                std::borrow::Cow::Owned(vec![0f32; region.len()]),
            )
            .into_any())
        }
    }

    impl Sink for Zeros {
        fn write(&self, _: &Region, _: &BlockAny<'_>) -> Result<()> {
            Ok(())
        }
        fn region_done(&self, _: &Region) -> Result<bool> {
            Ok(false)
        }
        fn flush(&self) -> Result<()> {
            Ok(())
        }
    }

    /// A window step makes level 1 piece by piece, whatever the output's chunks; a step
    /// with a halo reads across the pieces, and makes it by rows ([`OnePassPyramid::stream_rows`]).
    #[test]
    fn window_steps_stream_level_1_and_halo_steps_do_not() {
        let source = Zeros(vec![16, 32, 32], vec![4, 8, 8]);
        let mean = Pipeline::from(Op::downsample(&[2, 2, 2], DownMethod::Mean));
        let smooth = Pipeline::new(vec![
            Op::gaussian(&[1.0]),
            Op::downsample(&[2, 2, 2], DownMethod::Mean),
        ]);
        for (step, chunk, streamed) in [
            (&mean, [4, 8, 8], true),
            (&mean, [8, 8, 8], true),
            (&mean, [4, 16, 16], true),
            (&mean, [4, 12, 12], true),
            (&smooth, [4, 8, 8], false),
        ] {
            let pyramid = OnePassPyramid {
                source: &source,
                sinks: vec![&source, &source, &source],
                chunks: vec![chunk.to_vec(); 3],
                step: step.clone(),
                factor: vec![2, 2, 2],
                copy_level0: None,
            };
            let (shapes, plans) = pyramid.plans().unwrap();
            let top = Region::whole(&shapes[2]);
            let owned = pyramid.owned(&shapes, &top);
            let needs = pyramid.needs(&plans, &owned);
            let plan = plans[1].as_ref().unwrap();
            let parts = pyramid.level1_by_part(plan, &needs, &owned[0]);
            assert_eq!(parts.is_some(), streamed, "{step:?} chunks {chunk:?}");
        }
    }
}
