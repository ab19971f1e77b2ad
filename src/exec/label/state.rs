//! What the labelling steps hand on: each chunk's summary after step 1 and its numbers
//! after the merge, kept in memory or as files beside the output.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};

/// What step 1 keeps of one chunk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ChunkSummary {
    /// Objects in the chunk (local labels `1..=count`).
    pub count: u32,
    /// How many objects begin on each of the chunk's rows (C order).
    pub row_new: Vec<u32>,
    /// The runs on a face shared with another chunk: local row, `x0`, `x1` (local,
    /// exclusive) and local label.
    pub faces: Vec<[u32; 4]>,
    /// The objects with face runs, by label: label, local row and `x` of the first voxel.
    pub first: Vec<[u32; 3]>,
}

/// What step 2 hands step 3 for one chunk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ChunkNumbers {
    /// Per chunk row: the global labels used before the first object that begins there.
    pub offsets: Vec<u64>,
    /// The face objects, by local label: the global label, and whether the object
    /// begins in this chunk (and so takes a number here).
    pub faces: Vec<(u32, u64, bool)>,
}

/// Where the steps keep what they hand on: in memory, or files beside the output.
pub(crate) trait LabelState: Sync {
    /// Keeps step 1's summary of `chunk`.
    fn put_summary(&self, chunk: usize, s: &ChunkSummary) -> Result<()>;
    /// Step 1's summary of `chunk`, if kept.
    fn summary(&self, chunk: usize) -> Result<Option<Arc<ChunkSummary>>>;
    /// Whether step 1 is done for `chunk`.
    fn has_summary(&self, chunk: usize) -> Result<bool>;
    /// Keeps step 2's numbers of `chunk`.
    fn put_numbers(&self, chunk: usize, n: &ChunkNumbers) -> Result<()>;
    /// Step 2's numbers of `chunk`.
    fn numbers(&self, chunk: usize) -> Result<Arc<ChunkNumbers>>;
}

/// The steps' hand-overs in memory.
pub(crate) struct MemoryState {
    summaries: Mutex<Vec<Option<Arc<ChunkSummary>>>>,
    numbers: Mutex<Vec<Option<Arc<ChunkNumbers>>>>,
}

impl MemoryState {
    /// Room for `chunks` chunks.
    pub fn new(chunks: usize) -> MemoryState {
        MemoryState {
            summaries: Mutex::new(vec![None; chunks]),
            numbers: Mutex::new(vec![None; chunks]),
        }
    }
}

impl LabelState for MemoryState {
    fn put_summary(&self, chunk: usize, s: &ChunkSummary) -> Result<()> {
        self.summaries.lock().expect("not poisoned")[chunk] = Some(Arc::new(s.clone()));
        Ok(())
    }
    fn summary(&self, chunk: usize) -> Result<Option<Arc<ChunkSummary>>> {
        Ok(self.summaries.lock().expect("not poisoned")[chunk].clone())
    }
    fn has_summary(&self, chunk: usize) -> Result<bool> {
        Ok(self.summaries.lock().expect("not poisoned")[chunk].is_some())
    }
    fn put_numbers(&self, chunk: usize, n: &ChunkNumbers) -> Result<()> {
        self.numbers.lock().expect("not poisoned")[chunk] = Some(Arc::new(n.clone()));
        Ok(())
    }
    fn numbers(&self, chunk: usize) -> Result<Arc<ChunkNumbers>> {
        Ok(self.numbers.lock().expect("not poisoned")[chunk]
            .clone()
            .expect("numbered by the merge"))
    }
}

/// The steps' hand-overs as files in a directory (`summaries/N`, `numbers/N`), each
/// written under a temporary name and renamed into place, so a killed step leaves
/// no torn file; or as objects below a URL, each one PUT.
pub(crate) struct DirState {
    dir: PathBuf,
    objects: Option<Box<dyn StateObjects>>,
}

/// The objects below the state's URL in an object store, for a [`DirState`] there:
/// the whole-array layer, which knows stores, gives them.
pub(crate) trait StateObjects: Sync + Send {
    /// The object `key` (`summaries/3`), if it is there.
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>>;
    /// Stores the object `key` whole (one PUT: never torn).
    fn put(&self, key: &str, bytes: Vec<u8>) -> Result<()>;
}

const SUMMARY_MAGIC: &[u8; 4] = b"HFL1";
const NUMBERS_MAGIC: &[u8; 4] = b"HFN1";

impl DirState {
    /// The state kept in `dir` (created).
    pub fn new(dir: &Path) -> Result<DirState> {
        for sub in ["summaries", "numbers"] {
            std::fs::create_dir_all(dir.join(sub)).map_err(|e| store_error(dir, e))?;
        }
        Ok(DirState {
            dir: dir.to_path_buf(),
            objects: None,
        })
    }

    /// The state kept as objects below the URL `dir`.
    pub fn on_objects(dir: &Path, objects: Box<dyn StateObjects>) -> DirState {
        DirState {
            dir: dir.to_path_buf(),
            objects: Some(objects),
        }
    }

    fn path(&self, kind: &str, chunk: usize) -> PathBuf {
        self.dir.join(kind).join(chunk.to_string())
    }

    /// The key of `path` below the state's URL.
    fn key<'a>(&self, path: &'a Path) -> std::borrow::Cow<'a, str> {
        path.strip_prefix(&self.dir)
            .unwrap_or(path)
            .to_string_lossy()
    }

    fn write(&self, path: &Path, bytes: &[u8]) -> Result<()> {
        if let Some(objects) = &self.objects {
            return objects.put(&self.key(path), bytes.to_vec());
        }
        let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
        std::fs::write(&tmp, bytes).map_err(|e| store_error(&tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| store_error(path, e))
    }

    fn read(&self, path: &Path) -> Result<Option<Vec<u8>>> {
        if let Some(objects) = &self.objects {
            return objects.get(&self.key(path));
        }
        match std::fs::read(path) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(store_error(path, e)),
        }
    }
}

fn store_error(path: &Path, e: std::io::Error) -> Error {
    Error::Store {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// Little-endian words read in order.
struct Words<'a> {
    bytes: &'a [u8],
    path: &'a Path,
}

impl Words<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N]> {
        if self.bytes.len() < N {
            return Err(Error::Store {
                path: self.path.to_path_buf(),
                message: "a labelling state file is truncated".into(),
            });
        }
        let (head, rest) = self.bytes.split_at(N);
        self.bytes = rest;
        Ok(head.try_into().expect("N bytes"))
    }
    fn u32(&mut self) -> Result<u32> {
        self.take::<4>().map(u32::from_le_bytes)
    }
    fn u64(&mut self) -> Result<u64> {
        self.take::<8>().map(u64::from_le_bytes)
    }
    fn magic(&mut self, magic: &[u8; 4]) -> Result<()> {
        if &self.take::<4>()? != magic {
            return Err(Error::Store {
                path: self.path.to_path_buf(),
                message: "not a haloflow labelling state file".into(),
            });
        }
        Ok(())
    }
}

impl LabelState for DirState {
    fn put_summary(&self, chunk: usize, s: &ChunkSummary) -> Result<()> {
        let mut b = SUMMARY_MAGIC.to_vec();
        let words = [
            s.count,
            s.row_new.len() as u32,
            s.faces.len() as u32,
            s.first.len() as u32,
        ];
        let all = words
            .iter()
            .chain(&s.row_new)
            .chain(s.faces.iter().flatten())
            .chain(s.first.iter().flatten());
        for w in all {
            b.extend_from_slice(&w.to_le_bytes());
        }
        self.write(&self.path("summaries", chunk), &b)
    }

    fn summary(&self, chunk: usize) -> Result<Option<Arc<ChunkSummary>>> {
        let path = self.path("summaries", chunk);
        let Some(bytes) = self.read(&path)? else {
            return Ok(None);
        };
        let mut w = Words {
            bytes: &bytes,
            path: &path,
        };
        w.magic(SUMMARY_MAGIC)?;
        let (count, rows, faces, first) = (w.u32()?, w.u32()?, w.u32()?, w.u32()?);
        let row_new = (0..rows).map(|_| w.u32()).collect::<Result<_>>()?;
        let faces = (0..faces)
            .map(|_| Ok([w.u32()?, w.u32()?, w.u32()?, w.u32()?]))
            .collect::<Result<_>>()?;
        let first = (0..first)
            .map(|_| Ok([w.u32()?, w.u32()?, w.u32()?]))
            .collect::<Result<_>>()?;
        Ok(Some(Arc::new(ChunkSummary {
            count,
            row_new,
            faces,
            first,
        })))
    }

    fn has_summary(&self, chunk: usize) -> Result<bool> {
        let path = self.path("summaries", chunk);
        match &self.objects {
            Some(_) => Ok(self.read(&path)?.is_some()),
            None => Ok(path.exists()),
        }
    }

    fn put_numbers(&self, chunk: usize, n: &ChunkNumbers) -> Result<()> {
        let mut b = NUMBERS_MAGIC.to_vec();
        b.extend_from_slice(&(n.offsets.len() as u32).to_le_bytes());
        b.extend_from_slice(&(n.faces.len() as u32).to_le_bytes());
        for o in &n.offsets {
            b.extend_from_slice(&o.to_le_bytes());
        }
        for &(label, global, start) in &n.faces {
            b.extend_from_slice(&label.to_le_bytes());
            b.extend_from_slice(&u32::from(start).to_le_bytes());
            b.extend_from_slice(&global.to_le_bytes());
        }
        self.write(&self.path("numbers", chunk), &b)
    }

    fn numbers(&self, chunk: usize) -> Result<Arc<ChunkNumbers>> {
        let path = self.path("numbers", chunk);
        let bytes = self.read(&path)?.ok_or_else(|| Error::Store {
            path: path.clone(),
            message: "the merge's numbers of this chunk are missing: run the merge again".into(),
        })?;
        let mut w = Words {
            bytes: &bytes,
            path: &path,
        };
        w.magic(NUMBERS_MAGIC)?;
        let (rows, faces) = (w.u32()?, w.u32()?);
        let offsets = (0..rows).map(|_| w.u64()).collect::<Result<_>>()?;
        let faces = (0..faces)
            .map(|_| Ok((w.u32()?, w.u32()? != 0, w.u64()?)))
            .map(|r: Result<(u32, bool, u64)>| r.map(|(l, s, g)| (l, g, s)))
            .collect::<Result<_>>()?;
        Ok(Arc::new(ChunkNumbers { offsets, faces }))
    }
}
