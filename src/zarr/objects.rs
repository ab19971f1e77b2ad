//! [`Objects`]: the table of a label array's objects (`haloflow objects`), streamed
//! chunk by chunk.

use std::path::PathBuf;

use super::image::{input_spacing, open_level};
use super::options::on_threads;
use crate::error::{Error, Result};
use crate::exec::objects::ObjectTable;
use crate::region::Region;
use crate::store::Input;

/// The objects of a label array (0 is background): per label, what
/// `skimage.measure.regionprops_table` gives for `label`, `area`, `centroid`, `bbox`
/// and, with an intensity image, `intensity_mean`, `intensity_min`, `intensity_max`
/// (and their sum). Memory grows with the number of objects, not the volume.
///
/// ```no_run
/// use haloflow::zarr::Objects;
///
/// let table = Objects { intensity: Some("image.zarr".into()), ..Objects::new("labels.zarr") }.run()?;
/// table.write("objects.parquet".as_ref())?; // or objects.csv
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct Objects {
    /// The label array (or OME-Zarr label image).
    pub labels: PathBuf,
    /// An image of the same shape whose values are summarised per object.
    pub intensity: Option<PathBuf>,
    /// The level of an OME-Zarr input.
    pub level: usize,
    /// Worker threads [default: every core].
    pub threads: Option<usize>,
}

/// What [`Objects::run`] found.
#[derive(Clone, Debug)]
pub struct ObjectsFound {
    /// The objects.
    pub table: ObjectTable,
    /// Whether intensities were summarised.
    pub intensity: bool,
    /// The pixel spacing of an OME-Zarr input (centroids in physical units).
    pub spacing: Option<Vec<f64>>,
}

impl ObjectsFound {
    /// The table as CSV (see [`ObjectTable::to_csv`]).
    pub fn to_csv(&self) -> String {
        self.table.to_csv(self.intensity, self.spacing.as_deref())
    }

    /// Writes the table to `path`, as CSV or Parquet by its extension (`.csv`,
    /// `.parquet`), atomically.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for another extension; [`Error::Store`] if the file
    /// cannot be written.
    pub fn write(&self, path: &std::path::Path) -> Result<()> {
        self.table
            .to_table(self.intensity, self.spacing.as_deref())
            .write(path)
    }
}

impl Objects {
    /// The objects of `labels`, without intensities.
    pub fn new(labels: impl Into<PathBuf>) -> Objects {
        Objects {
            labels: labels.into(),
            intensity: None,
            level: 0,
            threads: None,
        }
    }

    /// Reads the labels (and intensities) chunk by chunk and tabulates the objects.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for float or negative labels; [`Error::Shape`] for
    /// an intensity image of another shape; read errors.
    pub fn run(&self) -> Result<ObjectsFound> {
        let (path, ome) = open_level(&self.labels, self.level)?;
        let labels = Input::open(&path)?;
        let ndim = labels.shape().len();
        let spacing = input_spacing(&ome, None, ndim)?
            .map(|s| s.axes.iter().map(|a| a.spacing).collect::<Vec<f64>>());
        let intensity = match &self.intensity {
            Some(p) => {
                let (ip, _) = open_level(p, self.level)?;
                let i = Input::open(&ip)?;
                if i.shape() != labels.shape() {
                    return Err(Error::Shape(format!(
                        "the intensity image {} is {:?}, the labels {:?}",
                        p.display(),
                        i.shape(),
                        labels.shape()
                    )));
                }
                Some(i)
            }
            None => None,
        };
        let grid = labels.grid();
        let regions: Vec<Region> = grid.chunks().collect();
        let table = on_threads(self.threads, || {
            ObjectTable::from_blocks(ndim, &regions, |region| {
                let l = labels.read_region(region)?;
                let i = intensity
                    .as_ref()
                    .map(|i| i.read_region(region))
                    .transpose()?;
                Ok((l, i))
            })
        })?;
        Ok(ObjectsFound {
            table,
            intensity: intensity.is_some(),
            spacing,
        })
    }
}
