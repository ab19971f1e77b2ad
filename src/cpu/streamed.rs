//! Separable stencil passes streamed plane by plane along one leading axis: a 3-D
//! Gaussian's `y`, `z` and `x` passes, computed as `y` on a plane, `z` from the last few
//! planes, `x` on the result.
//!
//! Run stage by stage, each pass of a job reads and writes a block of several MiB,
//! more than a core's own cache holds; and a pass along a leading axis reads its taps
//! from planes a power of two bytes apart, which share cache sets and evict each other.
//! Streamed, a job holds only the planes the leading-axis pass's taps still need (17
//! for σ = 2), each a few tens of KiB, so every pass reads what the previous one has
//! just written while it is still in cache.
//!
//! Every output element is the sum the separate stages compute, with the same products
//! in the same order (each plane is computed by the same kernels), so the bits are the
//! same.

use std::borrow::Cow;

use super::simd::{accumulate, accumulate_planes};
use super::stencil::{Combine, Compute, Prepared, correlate_with};
use std::ops::Range;

use crate::block::{Block, BlockAny, c_strides, take_buffer};
use crate::dtype::{Element, match_any};
use crate::region::{AxisSet, unravel};
use crate::stage::{Offset, Stage, Stencil, tap_table};

/// A run of stages that [`Streamed::compute`] computes plane by plane along `axis`: 1-D
/// stencils on later axes (`before`), one 1-D stencil along `axis`, then 1-D stencils
/// on later axes (`after`).
pub(crate) struct Streamed<'a> {
    /// The leading axis the planes are streamed along.
    axis: usize,
    /// The passes before the one along `axis`, each on a later axis.
    before: Vec<&'a Stencil>,
    /// The pass along `axis`.
    along: &'a Stencil,
    /// The passes after it, each on a later axis.
    after: Vec<&'a Stencil>,
}

/// Output planes of the pass along the axis summed at once, where their taps allow.
const GROUP: usize = 4;

impl<'a> Streamed<'a> {
    /// The run at the start of `stages`, if they begin with one or more 1-D stencils on
    /// later axes than the next stage's, a 1-D stencil along a leading axis; any 1-D
    /// stencils on later axes that follow it belong to the run too.
    pub(crate) fn starting(stages: &'a [Stage]) -> Option<Self> {
        let stencils: Vec<(usize, &Stencil)> = stages
            .iter()
            .map_while(|stage| match stage {
                Stage::Stencil(st) => Some((super::one_axis(st)?, st)),
                _ => None,
            })
            .collect();
        // The first pass along an axis that every pass before it comes after.
        let at =
            (1..stencils.len()).find(|&i| stencils[..i].iter().all(|&(b, _)| b > stencils[i].0))?;
        let (axis, along) = stencils[at];
        if axis + 1 >= along.shape.len() {
            return None;
        }
        let after = stencils[at + 1..]
            .iter()
            .take_while(|&&(b, _)| b > axis)
            .map(|&(_, st)| st)
            .collect();
        Some(Streamed {
            axis,
            before: stencils[..at].iter().map(|&(_, st)| st).collect(),
            along,
            after,
        })
    }

    /// The leading axis the planes are streamed along.
    pub(crate) fn axis(&self) -> usize {
        self.axis
    }

    /// How many stages the run replaces.
    pub(crate) fn stages(&self) -> usize {
        self.before.len() + 1 + self.after.len()
    }

    /// Whether the run's sets have the shape streaming needs: axes before `axis`
    /// indexed alike by every stage (no pass touches them), and the pass along `axis`
    /// changing nothing on later axes.
    fn fits(&self, sets: &[Vec<AxisSet>]) -> bool {
        let (a, m) = (self.axis, self.before.len());
        sets.iter().all(|s| s[..a] == sets[0][..a]) && sets[m][a + 1..] == sets[m + 1][a + 1..]
    }

    /// The run's output over `sets[self.stages()]` from `input` (holding at least
    /// `sets[0]`), `sets[i]` being what stage `i` of the run reads and `shapes[i]` the
    /// array's shape there; `None` where the sets do not have the shape streaming
    /// needs (then the stages run one by one).
    pub(crate) fn compute<F: Compute>(
        &self,
        input: &BlockAny<'_>,
        sets: &[Vec<AxisSet>],
        shapes: &[&[usize]],
    ) -> Option<Block<'static, F>> {
        if !self.fits(sets) {
            return None;
        }
        let out = sets.last().expect("a run has stages");
        let mut data = take_buffer::<F>(out.iter().map(AxisSet::len).product());
        self.run_planes(input, sets, shapes, Planes::Block(&mut data))?;
        Some(Block::new(out.clone(), Cow::Owned(data)))
    }

    /// As [`Streamed::compute`], into `target`: the output's planes along the axis (every
    /// index on the axes up to it, in C order, each plane over the later axes), into
    /// one block or handed out one by one as each is computed. Returns `None`, having
    /// written nothing, where [`Streamed::compute`] does.
    pub(crate) fn run_planes<F: Compute>(
        &self,
        input: &BlockAny<'_>,
        sets: &[Vec<AxisSet>],
        shapes: &[&[usize]],
        mut target: Planes<'_, F>,
    ) -> Option<()> {
        if !self.fits(sets) {
            return None;
        }
        let a = self.axis;
        let m = self.before.len();
        let (along_in, along_out) = (&sets[m], &sets[m + 1]);
        let out = sets.last().expect("a run has stages");
        let lens: Vec<usize> = out.iter().map(AxisSet::len).collect();
        let plane_len: usize = lens[a + 1..].iter().product();
        let in_plane_len: usize = along_in[a + 1..].iter().map(AxisSet::len).product();

        // Every plane of a stage is laid out alike: one index on the axes up to `axis`
        // (the first plane's stands for all), the stage's sets beyond.
        let single = |v: usize| AxisSet::from_range(v..v + 1);
        let firsts: Vec<usize> = (0..=a).map(|b| sets[m][b].bounds().start).collect();
        let plane = |later: &[AxisSet]| -> Vec<AxisSet> {
            firsts
                .iter()
                .map(|&v| single(v))
                .chain(later.iter().cloned())
                .collect()
        };
        let before: Vec<Prepared<'_>> = (0..m)
            .map(|j| {
                let held = if j == 0 { input.sets() } else { &sets[j] };
                let (held, out) = (plane(&held[a + 1..]), plane(&sets[j + 1][a + 1..]));
                Prepared::new(&held, &out, shapes[j], self.before[j])
            })
            .collect();
        let after: Vec<Prepared<'_>> = (0..self.after.len())
            .map(|j| {
                let s = m + 1 + j;
                let (held, out) = (plane(&sets[s][a + 1..]), plane(&sets[s + 1][a + 1..]));
                Prepared::new(&held, &out, shapes[s], self.after[j])
            })
            .collect();

        // Per output position along `axis`, the input positions of its taps (NONE: cval).
        let table = tap_table::<usize>(self.along, a, &along_in[a], 1, &along_out[a], shapes[m][a]);
        // The last output position that reads each input position.
        let mut last_use = vec![None; along_in[a].len()];
        for o in 0..along_out[a].len() {
            for p in table.of(o).iter().filter_map(|p| p.get()) {
                last_use[p] = Some(o);
            }
        }
        let (along_weights, cval) = F::weights(self.along);
        let weights: Vec<&[F]> = along_weights.chunks(1).collect();
        let const_row = vec![cval; in_plane_len];
        let ins: Vec<usize> = along_in[a].iter().collect();
        let in_sets = input.sets();
        let in_strides = c_strides(&in_sets.iter().map(AxisSet::len).collect::<Vec<_>>());
        // An input plane as `F`: borrowed from an input of `F`, else converted into
        // `converted` (one plane at a time, so that a job never holds its whole
        // footprint twice).
        let mut converted = Vec::new();

        let mut ring: Vec<Option<Vec<F>>> = vec![None; ins.len()];
        let mut spare: Vec<Vec<F>> = Vec::new();
        let mut summed = vec![F::default(); GROUP * in_plane_len];
        let k = self.along.weights.len();
        // An output's first tap's input position, where its taps read consecutive ones.
        let firsts_of = |o: usize| {
            let row = table.of(o);
            let f = row.first()?.get()?;
            row.iter()
                .enumerate()
                .all(|(t, p)| p.get() == Some(f + t))
                .then_some(f)
        };
        let mut scratch = [Vec::new(), Vec::new()];
        let mut done_plane = Vec::new();
        let correlate = correlate_with();
        for w in 0..lens[..a].iter().product() {
            let index = unravel(w, &lens[..a]);
            // Where the input's plane at this outer index starts, but for `axis`.
            let outer_at: usize = (0..a)
                .map(|b| {
                    let v = sets[0][b]
                        .iter()
                        .nth(index[b])
                        .expect("index within the set");
                    in_sets[b]
                        .position(v)
                        .expect("the input holds the run's footprint")
                        * in_strides[b]
                })
                .sum();
            let n_out = along_out[a].len();
            let mut o = 0;
            while o < n_out {
                // Up to GROUP outputs whose taps read consecutive planes, each one
                // plane on from the previous's, are summed together.
                let firsts = firsts_of(o);
                let group = (1..GROUP.min(n_out - o))
                    .take_while(
                        |&j| matches!((firsts, firsts_of(o + j)), (Some(f), Some(g)) if g == f + j),
                    )
                    .count()
                    + 1;
                for p in (o..o + group).flat_map(|q| table.of(q).iter().filter_map(|p| p.get())) {
                    if ring[p].is_some() {
                        continue;
                    }
                    let at = in_sets[a]
                        .position(ins[p])
                        .expect("the input holds the run's footprint");
                    let start = outer_at + at * in_strides[a];
                    let from = plane_as(input, start..start + in_strides[a], &mut converted);
                    let mut done = spare.pop().unwrap_or_default();
                    done.resize(in_plane_len, F::default());
                    chain(&before, from, &mut scratch, &mut done, &correlate);
                    ring[p] = Some(done);
                }
                let summed = &mut summed[..group * in_plane_len];
                match firsts {
                    Some(f) if group > 1 => {
                        let rows: Vec<&[F]> = (f..f + k + group - 1)
                            .map(|p| ring[p].as_deref().expect("computed above"))
                            .collect();
                        accumulate_planes(summed, in_plane_len, &rows, along_weights);
                    }
                    _ => {
                        let taps: Vec<(&[F], &[F])> = table
                            .of(o)
                            .iter()
                            .zip(&weights)
                            .map(|(p, &w)| match p.get() {
                                Some(p) => (ring[p].as_deref().expect("computed above"), w),
                                None => (&const_row[..], w),
                            })
                            .collect();
                        accumulate(summed, &taps);
                    }
                }
                for (j, plane) in summed.chunks_exact(in_plane_len).enumerate() {
                    let number = w * lens[a] + o + j;
                    let dst: &mut [F] = match &mut target {
                        Planes::Block(data) => &mut data[number * plane_len..][..plane_len],
                        // SAFETY: `Placed::new`'s contract: the pointer is valid for writes
                        // of a plane, and no other reference reaches that memory.
                        Planes::To(place) => unsafe {
                            std::slice::from_raw_parts_mut((place.0)(number), plane_len)
                        },
                        Planes::Each(emit) if after.is_empty() => {
                            emit(number, plane);
                            continue;
                        }
                        Planes::Each(emit) => {
                            done_plane.resize(plane_len, F::default());
                            chain(&after, plane, &mut scratch, &mut done_plane, &correlate);
                            emit(number, &done_plane);
                            continue;
                        }
                    };
                    if after.is_empty() {
                        dst.copy_from_slice(plane);
                    } else {
                        chain(&after, plane, &mut scratch, dst, &correlate);
                    }
                }
                for q in o..o + group {
                    for p in table.of(q).iter().filter_map(|p| p.get()) {
                        if last_use[p] == Some(q)
                            && let Some(done) = ring[p].take()
                        {
                            spare.push(done);
                        }
                    }
                }
                o += group;
            }
        }
        Some(())
    }
}

/// Where [`Streamed::run_planes`] puts the output's planes (of `F`).
pub(crate) enum Planes<'b, F> {
    /// Into one dense block over the run's output, in C order.
    Block(&'b mut [F]),
    /// To `emit(n, plane)` as each plane is computed, `n` counting the planes in C order.
    Each(&'b mut dyn FnMut(usize, &[F])),
    /// Straight into the memory [`Placed`] points at, plane by plane.
    To(Placed<'b, F>),
}

/// Where each plane of a run's output goes: `0(n)` points at plane `n`'s elements.
pub(crate) struct Placed<'b, F>(&'b dyn Fn(usize) -> *mut F);

impl<'b, F> Placed<'b, F> {
    /// Planes written where `place(n)` points.
    ///
    /// # Safety
    /// For every plane `n` of the run, `place(n)` must point at as many elements as a
    /// plane holds, valid for writes, and no other reference may reach that memory
    /// while the run lasts (the planes' memory is disjoint).
    pub(crate) unsafe fn new(place: &'b dyn Fn(usize) -> *mut F) -> Self {
        Placed(place)
    }
}

/// The elements `range` of `input` as `F`: borrowed where it holds `F`, else converted
/// into `buffer`.
fn plane_as<'b, F: Compute>(
    input: &'b BlockAny<'_>,
    range: Range<usize>,
    buffer: &'b mut Vec<F>,
) -> &'b [F] {
    if let Some(b) = F::block_ref(input) {
        return &b.data[range];
    }
    buffer.clear();
    match_any!(input, BlockAny, b => buffer.extend(b.data[range].iter().map(|&x| F::from_f64(Element::to_f64(x)))));
    buffer
}

/// Runs `passes` one after the other from `from`, the last writing `out`.
fn chain<F: Compute>(
    passes: &[Prepared<'_>],
    from: &[F],
    scratch: &mut [Vec<F>; 2],
    out: &mut [F],
    correlate: &Combine<F, F, F>,
) {
    // The scratch buffer holding the previous pass's result.
    let mut held: Option<usize> = None;
    for (j, pass) in passes.iter().enumerate() {
        let last = j + 1 == passes.len();
        let [s0, s1] = &mut *scratch;
        let (input, target): (&[F], &mut Vec<F>) = match held {
            None => (from, s0),
            Some(0) => (s0, s1),
            Some(_) => (s1, s0),
        };
        let (weights, cval) = F::weights(pass.stencil());
        if last {
            pass.compute(input, cval, weights, correlate, out);
        } else {
            target.resize(pass.out_len(), F::default());
            pass.compute(input, cval, weights, correlate, target);
            held = Some(usize::from(held == Some(0)));
        }
    }
}
