//! Object tables: per label, what `skimage.measure.regionprops_table` reports (area,
//! centroid, bounding box, and the mean, min, max and sum of an intensity image),
//! accumulated block by block so that memory grows with the objects, not the volume.

use std::collections::HashMap;

use super::table::{Table, Values};
use crate::block::BlockAny;
use crate::dtype::{ArrayViewAny, Element, match_any};
use crate::error::{Error, Result};
use crate::region::Region;

/// What is known of one object: sums and extremes, merged across blocks.
#[derive(Clone, Debug, PartialEq)]
pub struct ObjectStats {
    /// The object's label.
    pub label: u64,
    /// Voxels.
    pub area: u64,
    /// The sum of each coordinate over the voxels (exact).
    pub coordinate_sums: Vec<u128>,
    /// The smallest index on each axis.
    pub bbox_min: Vec<usize>,
    /// One past the largest index on each axis (skimage's `bbox` end).
    pub bbox_max: Vec<usize>,
    /// The sum of the intensity over the voxels (with an intensity image).
    pub intensity_sum: f64,
    /// The smallest intensity.
    pub intensity_min: f64,
    /// The largest intensity.
    pub intensity_max: f64,
}

impl ObjectStats {
    fn new(label: u64, ndim: usize) -> ObjectStats {
        ObjectStats {
            label,
            area: 0,
            coordinate_sums: vec![0; ndim],
            bbox_min: vec![usize::MAX; ndim],
            bbox_max: vec![0; ndim],
            intensity_sum: 0.0,
            intensity_min: f64::INFINITY,
            intensity_max: f64::NEG_INFINITY,
        }
    }

    /// The centroid, in pixels (skimage's `centroid`).
    pub fn centroid(&self) -> Vec<f64> {
        self.coordinate_sums
            .iter()
            .map(|&s| s as f64 / self.area as f64)
            .collect()
    }

    /// The mean intensity (skimage's `intensity_mean`).
    pub fn intensity_mean(&self) -> f64 {
        self.intensity_sum / self.area as f64
    }

    fn merge(&mut self, o: &ObjectStats) {
        self.area += o.area;
        for a in 0..self.coordinate_sums.len() {
            self.coordinate_sums[a] += o.coordinate_sums[a];
            self.bbox_min[a] = self.bbox_min[a].min(o.bbox_min[a]);
            self.bbox_max[a] = self.bbox_max[a].max(o.bbox_max[a]);
        }
        self.intensity_sum += o.intensity_sum;
        self.intensity_min = self.intensity_min.min(o.intensity_min);
        self.intensity_max = self.intensity_max.max(o.intensity_max);
    }
}

/// The objects of a label array, accumulated block by block in any order.
#[derive(Clone, Debug, Default)]
pub struct ObjectTable {
    ndim: usize,
    objects: HashMap<u64, ObjectStats>,
}

impl ObjectTable {
    /// An empty table of `ndim`-dimensional objects.
    pub fn new(ndim: usize) -> ObjectTable {
        ObjectTable {
            ndim,
            objects: HashMap::new(),
        }
    }

    /// Adds the objects of `labels` (a block over `region`; 0 is background), with
    /// the voxels' values in `intensity` (a block over the same region), if given.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for a float or negative label, or an intensity block
    /// of another shape.
    pub fn add(
        &mut self,
        region: &Region,
        labels: &BlockAny<'_>,
        intensity: Option<&BlockAny<'_>>,
    ) -> Result<()> {
        if labels.dtype().is_float() {
            return Err(Error::InvalidParameter {
                op: "objects",
                message: format!("labels are integers, not {}", labels.dtype()),
            });
        }
        let keys: Vec<u64> = match_any!(labels, BlockAny, b => b
            .data
            .iter()
            .map(|&v| u64::try_from(v.to_i128()).ok())
            .collect::<Option<_>>())
        .ok_or_else(|| Error::InvalidParameter {
            op: "objects",
            message: "negative labels: objects are numbered from 1, 0 is background".into(),
        })?;
        let values: Option<Vec<f64>> = intensity
            .map(|i| {
                if i.sets()
                    .iter()
                    .map(|s| s.len())
                    .ne(region.shape.iter().copied())
                {
                    return Err(Error::Shape(
                        "the intensity image and the labels differ in shape".into(),
                    ));
                }
                Ok(match_any!(i, BlockAny, b => b.data.iter().map(|&v| v.to_f64()).collect()))
            })
            .transpose()?;
        self.add_values(region, &keys, values.as_deref());
        Ok(())
    }

    fn add_values(&mut self, region: &Region, keys: &[u64], values: Option<&[f64]>) {
        let n = self.ndim;
        let nx = region.shape[n - 1];
        let x0 = region.start[n - 1];
        let mut c: Vec<usize> = region.start.clone();
        let mut local: HashMap<u64, ObjectStats> = HashMap::new();
        for (r, row) in keys.chunks_exact(nx).enumerate() {
            let mut x = 0;
            while x < nx {
                let k = row[x];
                if k == 0 {
                    x += 1;
                    continue;
                }
                // A run of one label along the row, added at once.
                let start = x;
                while x < nx && row[x] == k {
                    x += 1;
                }
                let len = (x - start) as u64;
                let o = local.entry(k).or_insert_with(|| ObjectStats::new(k, n));
                o.area += len;
                for (a, &ca) in c[..n - 1].iter().enumerate() {
                    o.coordinate_sums[a] += ca as u128 * u128::from(len);
                    o.bbox_min[a] = o.bbox_min[a].min(ca);
                    o.bbox_max[a] = o.bbox_max[a].max(ca + 1);
                }
                let (gx0, gx1) = (x0 + start, x0 + x);
                o.coordinate_sums[n - 1] += ((gx0 + gx1 - 1) as u128 * u128::from(len)) / 2;
                o.bbox_min[n - 1] = o.bbox_min[n - 1].min(gx0);
                o.bbox_max[n - 1] = o.bbox_max[n - 1].max(gx1);
                if let Some(v) = values {
                    for &value in &v[r * nx + start..r * nx + x] {
                        o.intensity_sum += value;
                        o.intensity_min = o.intensity_min.min(value);
                        o.intensity_max = o.intensity_max.max(value);
                    }
                }
            }
            for a in (0..n - 1).rev() {
                c[a] += 1;
                if c[a] < region.start[a] + region.shape[a] {
                    break;
                }
                c[a] = region.start[a];
            }
        }
        self.absorb(local);
    }

    fn absorb(&mut self, other: HashMap<u64, ObjectStats>) {
        for (k, o) in other {
            match self.objects.get_mut(&k) {
                Some(mine) => mine.merge(&o),
                None => {
                    self.objects.insert(k, o);
                }
            }
        }
    }

    /// Merges another table (of other blocks) into this one.
    pub fn merge(&mut self, other: ObjectTable) {
        self.absorb(other.objects);
    }

    /// The objects, by label.
    pub fn objects(&self) -> Vec<&ObjectStats> {
        let mut v: Vec<&ObjectStats> = self.objects.values().collect();
        v.sort_unstable_by_key(|o| o.label);
        v
    }

    /// The number of dimensions.
    pub fn ndim(&self) -> usize {
        self.ndim
    }

    /// The table's columns, named as skimage names them (`label`, `area`,
    /// `centroid-0` …, `bbox-0` … `bbox-{2N-1}`, and with intensity `intensity_mean`,
    /// `intensity_min`, `intensity_max`, `intensity_sum`); with `spacing`, also each
    /// centroid in physical units (`centroid_physical-0` …). One row per object, in
    /// increasing label order.
    pub fn to_table(&self, intensity: bool, spacing: Option<&[f64]>) -> Table {
        let n = self.ndim;
        let objects = self.objects();
        let uint =
            |f: &dyn Fn(&ObjectStats) -> u64| Values::UInt(objects.iter().map(|o| f(o)).collect());
        let float =
            |f: &dyn Fn(&ObjectStats) -> f64| Values::Float(objects.iter().map(|o| f(o)).collect());
        let centroids: Vec<Vec<f64>> = objects.iter().map(|o| o.centroid()).collect();
        let mut columns = vec![
            ("label".to_string(), uint(&|o| o.label)),
            ("area".to_string(), uint(&|o| o.area)),
        ];
        for a in 0..n {
            let c = Values::Float(centroids.iter().map(|c| c[a]).collect());
            columns.push((format!("centroid-{a}"), c));
        }
        if let Some(s) = spacing {
            for a in 0..n {
                let c = Values::Float(centroids.iter().map(|c| c[a] * s[a]).collect());
                columns.push((format!("centroid_physical-{a}"), c));
            }
        }
        for a in 0..n {
            columns.push((format!("bbox-{a}"), uint(&|o| o.bbox_min[a] as u64)));
        }
        for a in 0..n {
            columns.push((format!("bbox-{}", n + a), uint(&|o| o.bbox_max[a] as u64)));
        }
        if intensity {
            columns.push(("intensity_mean".into(), float(&|o| o.intensity_mean())));
            columns.push(("intensity_min".into(), float(&|o| o.intensity_min)));
            columns.push(("intensity_max".into(), float(&|o| o.intensity_max)));
            columns.push(("intensity_sum".into(), float(&|o| o.intensity_sum)));
        }
        Table { columns }
    }

    /// The table as CSV ([`ObjectTable::to_table`]'s columns).
    pub fn to_csv(&self, intensity: bool, spacing: Option<&[f64]>) -> String {
        self.to_table(intensity, spacing).to_csv()
    }
}

/// The object table of a label array in memory, with `intensity` (same shape)
/// summarised per object; slabs along the first axis are tabulated in parallel.
///
/// # Errors
/// As [`ObjectTable::add`], and [`Error::Shape`] for arrays of different shapes.
pub fn object_table(
    labels: ArrayViewAny<'_>,
    intensity: Option<ArrayViewAny<'_>>,
) -> Result<ObjectTable> {
    let shape = labels.shape().to_vec();
    if intensity
        .as_ref()
        .is_some_and(|i| i.shape() != shape.as_slice())
    {
        return Err(Error::Shape(
            "the intensity image and the labels differ in shape".into(),
        ));
    }
    let ndim = shape.len();
    if ndim == 0 || shape.contains(&0) {
        return Ok(ObjectTable::new(ndim.max(1)));
    }
    let block = |a: &ArrayViewAny<'_>, region: &Region| -> BlockAny<'static> {
        match_any!(a, ArrayViewAny, v => {
            let mut view = v.view();
            for (axis, r) in (0..ndim).map(|k| (k, region.range(k))) {
                view.slice_axis_inplace(ndarray::Axis(axis), ndarray::Slice::from(r));
            }
            crate::block::Block::new(region.sets(), std::borrow::Cow::Owned(view.iter().copied().collect())).into_any()
        })
    };
    let rows = shape[0];
    let step = rows.div_ceil(4 * rayon::current_num_threads()).max(1);
    let regions: Vec<Region> = (0..rows)
        .step_by(step)
        .map(|z| {
            let mut r = Region::whole(&shape);
            r.start[0] = z;
            r.shape[0] = step.min(rows - z);
            r
        })
        .collect();
    ObjectTable::from_blocks(ndim, &regions, |region| {
        Ok((
            block(&labels, region),
            intensity.as_ref().map(|i| block(i, region)),
        ))
    })
}

impl ObjectTable {
    /// The table of the blocks over `regions`, each read by `read` (labels, and
    /// intensities if any) and tabulated in parallel.
    ///
    /// # Errors
    /// `read`'s errors, and [`ObjectTable::add`]'s.
    pub fn from_blocks<'a>(
        ndim: usize,
        regions: &[Region],
        read: impl Fn(&Region) -> Result<(BlockAny<'a>, Option<BlockAny<'a>>)> + Sync,
    ) -> Result<ObjectTable> {
        use rayon::prelude::*;
        regions
            .par_iter()
            .try_fold(
                || ObjectTable::new(ndim),
                |mut t, region| -> Result<ObjectTable> {
                    let (l, i) = read(region)?;
                    t.add(region, &l, i.as_ref())?;
                    Ok(t)
                },
            )
            .try_reduce(
                || ObjectTable::new(ndim),
                |mut a, b| {
                    a.merge(b);
                    Ok(a)
                },
            )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::Block;
    use std::borrow::Cow;

    #[test]
    fn blocks_in_any_order_give_the_same_table() {
        let shape = [5usize, 7];
        let labels: Vec<u16> = (0..35).map(|i| [0, 1, 1, 2, 0, 3, 2][i % 7]).collect();
        let values: Vec<f32> = (0..35).map(|i| i as f32).collect();
        let whole = Region::whole(&shape);
        let block = |r: &Region| -> (BlockAny<'static>, BlockAny<'static>) {
            let idx: Vec<usize> = r
                .range(0)
                .flat_map(|y| r.range(1).map(move |x| y * 7 + x))
                .collect();
            (
                Block::new(
                    r.sets(),
                    Cow::Owned(idx.iter().map(|&i| labels[i]).collect()),
                )
                .into_any(),
                Block::new(
                    r.sets(),
                    Cow::Owned(idx.iter().map(|&i| values[i]).collect()),
                )
                .into_any(),
            )
        };
        let mut one = ObjectTable::new(2);
        let (l, v) = block(&whole);
        one.add(&whole, &l, Some(&v)).unwrap();
        let mut parts = ObjectTable::new(2);
        for r in [
            Region::new(vec![3, 4], vec![2, 3]),
            Region::new(vec![0, 0], vec![3, 4]),
            Region::new(vec![3, 0], vec![2, 4]),
            Region::new(vec![0, 4], vec![3, 3]),
        ] {
            let mut t = ObjectTable::new(2);
            let (l, v) = block(&r);
            t.add(&r, &l, Some(&v)).unwrap();
            parts.merge(t);
        }
        assert_eq!(one.to_csv(true, None), parts.to_csv(true, None));
        let o = one.objects();
        assert_eq!(o.len(), 3);
        // Label 1 sits at x = 1, 2 on every row: area 10, centroid (2, 1.5).
        assert_eq!((o[0].area, o[0].centroid()), (10, vec![2.0, 1.5]));
        assert_eq!(
            (o[0].bbox_min.clone(), o[0].bbox_max.clone()),
            (vec![0, 1], vec![5, 3])
        );
        assert_eq!(o[0].intensity_min, 1.0);
        assert_eq!(o[0].intensity_max, 30.0);
    }
}
