//! The Zarr store layer end to end: create v2/v3 outputs, write blocks, read them back
//! through `Input`, resume, overwrite, refuse incompatible outputs, name corrupt chunks.

use std::borrow::Cow;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use haloflow::block::{Block, BlockAny};
use haloflow::store::{Compression, Input, Output, OutputSpec, TEMP_DIR};
use haloflow::{AxisSet, DType, Element, Error, Grid, Region};
use serde_json::json;

/// A fresh, empty directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("store-tests")
        .join(name);
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// The value stored at a multi-index of an array of `shape` in these tests.
fn value(index: &[usize], shape: &[usize]) -> f64 {
    let flat = index
        .iter()
        .zip(shape)
        .fold(0usize, |acc, (&i, &n)| acc * n + i);
    (flat % 97) as f64 + 1.0
}

/// A block over `sets` holding `value` of each index, as `dtype`.
fn block_of(sets: &[AxisSet], shape: &[usize], dtype: DType) -> BlockAny<'static> {
    fn typed<T: Element>(sets: &[AxisSet], shape: &[usize]) -> Block<'static, T> {
        let per_axis: Vec<Vec<usize>> = sets.iter().map(|s| s.iter().collect()).collect();
        let lens: Vec<usize> = per_axis.iter().map(Vec::len).collect();
        let total: usize = lens.iter().product();
        let data = (0..total)
            .map(|flat| {
                let mut rest = flat;
                let mut index = vec![0; lens.len()];
                for a in (0..lens.len()).rev() {
                    index[a] = per_axis[a][rest % lens[a]];
                    rest /= lens[a];
                }
                T::from_f64(value(&index, shape))
            })
            .collect();
        Block::new(sets.to_vec(), Cow::Owned(data))
    }
    match dtype {
        DType::U8 => typed::<u8>(sets, shape).into_any(),
        DType::U16 => typed::<u16>(sets, shape).into_any(),
        DType::U32 => typed::<u32>(sets, shape).into_any(),
        DType::U64 => typed::<u64>(sets, shape).into_any(),
        DType::I8 => typed::<i8>(sets, shape).into_any(),
        DType::I16 => typed::<i16>(sets, shape).into_any(),
        DType::I32 => typed::<i32>(sets, shape).into_any(),
        DType::I64 => typed::<i64>(sets, shape).into_any(),
        DType::F32 => typed::<f32>(sets, shape).into_any(),
        DType::F64 => typed::<f64>(sets, shape).into_any(),
    }
}

fn as_f64(block: &BlockAny<'_>) -> Vec<f64> {
    fn conv<T: Element>(b: &Block<'_, T>) -> Vec<f64> {
        b.data.iter().map(|x| x.to_f64()).collect()
    }
    match block {
        BlockAny::U8(b) => conv(b),
        BlockAny::U16(b) => conv(b),
        BlockAny::U32(b) => conv(b),
        BlockAny::U64(b) => conv(b),
        BlockAny::I8(b) => conv(b),
        BlockAny::I16(b) => conv(b),
        BlockAny::I32(b) => conv(b),
        BlockAny::I64(b) => conv(b),
        BlockAny::F32(b) => conv(b),
        BlockAny::F64(b) => conv(b),
    }
}

/// Writes the whole array in blocks of `block` elements (whole chunks), the way the
/// executor will.
fn write_all(output: &Output, block: &[usize]) {
    let spec = output.spec().clone();
    let blocks = Grid::new(&spec.shape, block).unwrap();
    for region in blocks.chunks() {
        let data = block_of(&region.sets(), &spec.shape, spec.dtype);
        output.write(&region, &data).unwrap();
    }
    output.flush().unwrap();
}

fn check_reads(input: &Input, sets: &[AxisSet]) {
    let got = input.read(sets).unwrap();
    assert_eq!(got.dtype(), input.dtype());
    let want = block_of(sets, input.shape(), input.dtype());
    assert_eq!(as_f64(&got), as_f64(&want), "read of {sets:?}");
}

#[test]
fn every_dtype_round_trips_in_v2_and_v3() {
    let dir = scratch("round_trip");
    let shape = [5, 7, 9];
    for format in [2u8, 3] {
        for dtype in DType::ALL {
            let path = dir.join(format!("v{format}-{dtype}.zarr"));
            let spec = OutputSpec::new(&shape, dtype, &[2, 3, 4]).with_zarr_format(format);
            let output = Output::create(&path, &spec, false).unwrap();
            assert!(!output.resumed());
            // Blocks of 2×1×2 chunks, clipped at the edge.
            write_all(&output, &[4, 3, 8]);
            assert!(output.region_done(&Region::whole(&shape)).unwrap());

            let input = Input::open(&path).unwrap();
            assert_eq!(input.shape(), &shape);
            assert_eq!(input.dtype(), dtype);
            assert_eq!(input.chunk_shape(), vec![2, 3, 4]);
            assert_eq!(input.inner_chunk_shape(), None);
            assert_eq!(input.zarr_format(), format);
            check_reads(&input, &Region::whole(&shape).sets());
            check_reads(&input, &Region::new(vec![1, 2, 3], vec![3, 4, 5]).sets());
            let info = input.describe();
            assert!(info.contains("zstd"), "{info}");
            assert!(info.contains(&format!("Zarr v{format}")), "{info}");
        }
    }
}

#[test]
fn multi_run_sets_read_each_box() {
    let dir = scratch("wrap");
    let path = dir.join("a.zarr");
    let shape = [6, 10, 11];
    let spec = OutputSpec::new(&shape, DType::I16, &[4, 4, 4]);
    let output = Output::create(&path, &spec, false).unwrap();
    write_all(&output, &[4, 8, 8]);
    let input = Input::open(&path).unwrap();
    // What `wrap` asks for: the far side of the array, then the near side.
    let sets = vec![
        AxisSet::from_ranges([0..2, 4..6]),
        AxisSet::from_range(3..9),
        AxisSet::from_ranges([0..2, 5..7, 9..11]),
    ];
    check_reads(&input, &sets);
    let sets = vec![
        AxisSet::from_range(5..6),
        AxisSet::from_ranges([0..1, 9..10]),
        AxisSet::from_range(0..11),
    ];
    check_reads(&input, &sets);
}

#[test]
fn reads_past_the_edge_or_of_the_wrong_rank_are_refused() {
    let dir = scratch("bounds");
    let path = dir.join("a.zarr");
    let spec = OutputSpec::new(&[4, 4], DType::U8, &[2, 2]);
    Output::create(&path, &spec, false).unwrap();
    let input = Input::open(&path).unwrap();
    let err = input
        .read(&[AxisSet::from_range(0..4), AxisSet::from_range(2..5)])
        .unwrap_err();
    assert!(matches!(err, Error::Shape(_)), "{err}");
    let err = input.read(&[AxisSet::from_range(0..4)]).unwrap_err();
    assert!(matches!(err, Error::Shape(_)), "{err}");
}

#[test]
fn fill_value_chunks_are_stored() {
    let dir = scratch("fill");
    for format in [2u8, 3] {
        let path = dir.join(format!("v{format}.zarr"));
        let spec = OutputSpec::new(&[3, 5], DType::F32, &[2, 2]).with_zarr_format(format);
        let output = Output::create(&path, &spec, false).unwrap();
        let region = Region::whole(&[3, 5]);
        let zeros = Block::<f32>::new(region.sets(), Cow::Owned(vec![0.0; 15]));
        output.write(&region, &zeros.into_any()).unwrap();
        output.flush().unwrap();
        for i in 0..2u64 {
            for j in 0..3u64 {
                assert!(output.chunk_exists(&[i, j]).unwrap(), "chunk {i},{j}");
            }
        }
        let corner = if format == 3 { "c/1/2" } else { "1/2" };
        assert!(
            path.join(corner).is_file(),
            "{}",
            path.join(corner).display()
        );
        let back = Input::open(&path).unwrap().read_region(&region).unwrap();
        assert_eq!(as_f64(&back), vec![0.0; 15]);
    }
}

#[test]
fn resume_reopens_a_compatible_output_and_cleans_stale_temporaries() {
    let dir = scratch("resume");
    let path = dir.join("a.zarr");
    let mut attributes = serde_json::Map::new();
    attributes.insert(
        "haloflow".into(),
        json!({"op": "gaussian", "sigma": [1.0, 2.0]}),
    );
    let spec = OutputSpec::new(&[8, 8], DType::U16, &[4, 4]).with_attributes(attributes);
    let output = Output::create(&path, &spec, false).unwrap();
    let first = Region::new(vec![0, 0], vec![4, 8]);
    output
        .write(&first, &block_of(&first.sets(), &[8, 8], DType::U16))
        .unwrap();
    drop(output);

    // A killed run's leftovers: one old temporary file, one fresh (maybe another
    // process's write in flight).
    let temp = path.join(TEMP_DIR);
    let old = temp.join("c_1_0.dead.tmp");
    let fresh = temp.join("c_1_1.live.tmp");
    fs::write(&old, b"torn").unwrap();
    fs::write(&fresh, b"in flight").unwrap();
    fs::File::options()
        .write(true)
        .open(&old)
        .unwrap()
        .set_modified(SystemTime::now() - Duration::from_secs(3600))
        .unwrap();

    // And beside the array: a half-assembled directory of a killed creation, and a
    // fresh one (maybe another process creating it right now).
    let dead = dir.join(".a.zarr.haloflow-new-dead");
    let busy = dir.join(".a.zarr.haloflow-new-busy");
    fs::create_dir_all(dead.join("c")).unwrap();
    fs::create_dir(&busy).unwrap();
    fs::File::open(&dead)
        .unwrap()
        .set_modified(SystemTime::now() - Duration::from_secs(3600))
        .unwrap();

    let output = Output::create(&path, &spec, false).unwrap();
    assert!(output.resumed());
    assert!(!dead.exists());
    assert!(busy.exists());
    assert!(!old.exists());
    assert!(fresh.exists());
    assert!(output.region_done(&first).unwrap());
    let second = Region::new(vec![4, 0], vec![4, 8]);
    assert!(!output.region_done(&second).unwrap());
    output
        .write(&second, &block_of(&second.sets(), &[8, 8], DType::U16))
        .unwrap();
    output.flush().unwrap();
    assert!(output.region_done(&Region::whole(&[8, 8])).unwrap());
    let input = Input::open(&path).unwrap();
    check_reads(&input, &Region::whole(&[8, 8]).sets());
    assert!(input.describe().contains("haloflow"));
}

#[test]
fn incompatible_outputs_are_refused_naming_the_difference() {
    let dir = scratch("incompatible");
    let path = dir.join("a.zarr");
    let mut attributes = serde_json::Map::new();
    attributes.insert("op".into(), json!("threshold"));
    let spec = OutputSpec::new(&[8, 8], DType::U8, &[4, 4]).with_attributes(attributes);
    Output::create(&path, &spec, false).unwrap();

    let mut other_attrs = spec.attributes.clone();
    other_attrs.insert("op".into(), json!("clip"));
    let cases = [
        (
            OutputSpec {
                shape: vec![8, 9],
                ..spec.clone()
            },
            "shape",
        ),
        (
            OutputSpec {
                dtype: DType::F32,
                ..spec.clone()
            },
            "data type",
        ),
        (
            OutputSpec {
                chunk: vec![2, 4],
                ..spec.clone()
            },
            "chunks",
        ),
        (spec.clone().with_zarr_format(2), "Zarr v3, not v2"),
        (spec.clone().with_attributes(other_attrs), "attribute 'op'"),
    ];
    for (other, what) in cases {
        let err = Output::create(&path, &other, false).unwrap_err();
        let message = err.to_string();
        assert!(
            matches!(err, Error::IncompatibleOutput { .. }),
            "{what}: {message}"
        );
        assert!(message.contains(what), "{what}: {message}");
        assert!(message.contains("a.zarr"), "{message}");
        assert!(!message.contains('\n'), "{message}");
    }
    // Compression does not change the values: resuming with another is fine.
    let other = spec.clone().with_compression(Compression::None);
    assert!(Output::create(&path, &other, false).unwrap().resumed());
}

#[test]
fn overwrite_erases_the_old_array() {
    let dir = scratch("overwrite");
    let path = dir.join("a.zarr");
    let spec = OutputSpec::new(&[4, 4], DType::U8, &[2, 2]).with_zarr_format(2);
    let output = Output::create(&path, &spec, false).unwrap();
    write_all(&output, &[4, 4]);
    drop(output);

    let new_spec = OutputSpec::new(&[6, 6], DType::F64, &[3, 3]);
    assert!(Output::create(&path, &new_spec, false).is_err());
    let output = Output::create(&path, &new_spec, true).unwrap();
    assert!(!output.resumed());
    assert!(!output.chunk_exists(&[0, 0]).unwrap());
    assert!(!path.join(".zarray").exists());
    let input = Input::open(&path).unwrap();
    assert_eq!(
        (input.shape(), input.dtype(), input.zarr_format()),
        (&[6, 6][..], DType::F64, 3)
    );
    // Overwriting a compatible array starts afresh too.
    write_all(&output, &[3, 6]);
    let output = Output::create(&path, &new_spec, true).unwrap();
    assert!(!output.region_done(&Region::whole(&[6, 6])).unwrap());
    // Leftovers of the rename-aside erase are gone.
    let names: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("a.zarr")]);
}

#[test]
fn non_arrays_at_the_output_path_are_never_erased() {
    let dir = scratch("not_erased");
    let spec = OutputSpec::new(&[4], DType::U8, &[2]);
    let file = dir.join("notes.txt");
    fs::write(&file, b"precious").unwrap();
    let err = Output::create(&file, &spec, true).unwrap_err();
    assert!(matches!(err, Error::IncompatibleOutput { .. }), "{err}");
    let folder = dir.join("data");
    fs::create_dir(&folder).unwrap();
    fs::write(folder.join("x.tif"), b"precious").unwrap();
    let err = Output::create(&folder, &spec, true).unwrap_err();
    assert!(matches!(err, Error::IncompatibleOutput { .. }), "{err}");
    assert!(folder.join("x.tif").exists());
    // An empty directory is fine.
    let empty = dir.join("empty");
    fs::create_dir(&empty).unwrap();
    Output::create(&empty, &spec, false).unwrap();
    assert!(empty.join("zarr.json").is_file());
}

#[test]
fn concurrent_creation_yields_one_array() {
    let dir = scratch("concurrent");
    let path = dir.join("nested/group.zarr/0");
    let spec = OutputSpec::new(&[16, 16], DType::F32, &[4, 4]);
    let outputs: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| s.spawn(|| Output::create(&path, &spec, false)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let created = outputs
        .iter()
        .filter(|o| !o.as_ref().unwrap().resumed())
        .count();
    assert_eq!(created, 1);
    // Each writes its share of the chunks; together they write the whole array.
    std::thread::scope(|s| {
        for (i, output) in outputs.iter().enumerate() {
            s.spawn(move || {
                let output = output.as_ref().unwrap();
                for (k, region) in output.grid().chunks().enumerate() {
                    if k % 8 == i {
                        let data = block_of(&region.sets(), &[16, 16], DType::F32);
                        output.write(&region, &data).unwrap();
                    }
                }
                output.flush().unwrap();
            });
        }
    });
    let input = Input::open(&path).unwrap();
    check_reads(&input, &Region::whole(&[16, 16]).sets());
    let leftovers: Vec<_> = fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers, vec![std::ffi::OsString::from("0")]);
    assert_eq!(fs::read_dir(path.join(TEMP_DIR)).unwrap().count(), 0);

    // Racing with different specs: one wins, the others are told why they lost.
    let path = dir.join("race.zarr");
    let results: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (1..=6)
            .map(|n| {
                let path = &path;
                s.spawn(move || {
                    Output::create(path, &OutputSpec::new(&[n], DType::U8, &[1]), false)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
    for r in results.iter().filter(|r| r.is_err()) {
        assert!(matches!(r, Err(Error::IncompatibleOutput { .. })));
    }
}

#[test]
fn writes_must_be_whole_chunks_of_the_right_type() {
    let dir = scratch("write_checks");
    let path = dir.join("a.zarr");
    let spec = OutputSpec::new(&[10, 10], DType::U16, &[4, 4]);
    let output = Output::create(&path, &spec, false).unwrap();
    let cut = Region::new(vec![0, 0], vec![4, 6]);
    let err = output
        .write(&cut, &block_of(&cut.sets(), &[10, 10], DType::U16))
        .unwrap_err();
    assert!(
        matches!(err, Error::BlockNotAligned { axis: 1, .. }),
        "{err}"
    );
    let edge = Region::new(vec![8, 4], vec![2, 6]);
    output
        .write(&edge, &block_of(&edge.sets(), &[10, 10], DType::U16))
        .unwrap();
    let err = output
        .write(&edge, &block_of(&edge.sets(), &[10, 10], DType::F32))
        .unwrap_err();
    assert!(matches!(err, Error::DTypeMismatch { .. }), "{err}");
    let outside = Region::new(vec![8, 8], vec![4, 4]);
    assert!(matches!(
        output.write(&outside, &block_of(&outside.sets(), &[12, 12], DType::U16)),
        Err(Error::Shape(_))
    ));
    // A block larger than the region (a job's padded block) is fine.
    let region = Region::new(vec![0, 0], vec![4, 4]);
    let big = Region::new(vec![0, 0], vec![6, 7]).sets();
    output
        .write(&region, &block_of(&big, &[10, 10], DType::U16))
        .unwrap();
    output.flush().unwrap();
    let back = Input::open(&path).unwrap();
    check_reads(&back, &region.sets());
    check_reads(&back, &edge.sets());
    assert!(matches!(output.chunk_exists(&[3, 0]), Err(Error::Shape(_))));
}

#[test]
fn corrupt_chunks_are_named() {
    let dir = scratch("corrupt");
    for format in [2u8, 3] {
        let path = dir.join(format!("v{format}.zarr"));
        let spec = OutputSpec::new(&[8, 8], DType::F32, &[4, 4]).with_zarr_format(format);
        let output = Output::create(&path, &spec, false).unwrap();
        write_all(&output, &[8, 8]);
        let chunk = path.join(if format == 3 { "c/1/0" } else { "1/0" });
        fs::write(&chunk, b"this is not zstd").unwrap();

        let input = Input::open(&path).unwrap();
        let err = input.read_region(&Region::whole(&[8, 8])).unwrap_err();
        match &err {
            Error::CorruptChunk {
                chunk: index,
                path: file,
                ..
            } => {
                assert_eq!(index, &vec![1, 0]);
                assert_eq!(file, &chunk);
            }
            other => panic!("expected a corrupt chunk, got {other}"),
        }
        let message = err.to_string();
        assert!(
            message.contains("[1, 0]") && message.contains("1/0"),
            "{message}"
        );
        // Chunks around it still read.
        check_reads(&input, &Region::new(vec![0, 0], vec![4, 8]).sets());
        // An empty (truncated) chunk file is corrupt too.
        fs::write(&chunk, b"").unwrap();
        assert!(matches!(
            input.read_region(&Region::new(vec![5, 1], vec![2, 2])),
            Err(Error::CorruptChunk { .. })
        ));
    }
}

#[test]
fn bad_input_paths_get_clear_errors() {
    let dir = scratch("bad_inputs");
    let missing = dir.join("nope.zarr");
    let err = Input::open(&missing).unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err}");
    assert!(err.to_string().contains("nope.zarr"));

    let empty = dir.join("empty");
    fs::create_dir(&empty).unwrap();
    assert!(matches!(Input::open(&empty), Err(Error::NotAnArray { .. })));

    // An OME-Zarr-like v3 group with an array inside.
    let group = dir.join("image.zarr");
    fs::create_dir(&group).unwrap();
    fs::write(
        group.join("zarr.json"),
        r#"{"zarr_format": 3, "node_type": "group", "attributes": {}}"#,
    )
    .unwrap();
    Output::create(
        &group.join("0"),
        &OutputSpec::new(&[4], DType::U8, &[2]),
        false,
    )
    .unwrap();
    let err = Input::open(&group).unwrap_err();
    assert!(matches!(err, Error::NotAnArray { .. }), "{err}");
    assert!(err.to_string().contains("arrays inside: 0"), "{err}");
    assert!(Input::open(&group.join("0")).is_ok());

    // A v2 group.
    let group2 = dir.join("v2group.zarr");
    fs::create_dir(&group2).unwrap();
    fs::write(group2.join(".zgroup"), r#"{"zarr_format": 2}"#).unwrap();
    let err = Input::open(&group2).unwrap_err();
    assert!(err.to_string().contains("Zarr v2 group"), "{err}");

    // The metadata file itself rather than its directory.
    let err = Input::open(&group.join("0/zarr.json")).unwrap_err();
    assert!(matches!(err, Error::NotAnArray { .. }), "{err}");
}

#[test]
fn unsupported_arrays_are_refused() {
    let dir = scratch("unsupported");
    let write = |name: &str, meta: serde_json::Value| {
        let path = dir.join(name);
        fs::create_dir(&path).unwrap();
        fs::write(path.join("zarr.json"), meta.to_string()).unwrap();
        path
    };
    let base = |data_type: &str, grid: serde_json::Value| {
        json!({
            "zarr_format": 3, "node_type": "array", "shape": [10, 10],
            "data_type": data_type, "chunk_grid": grid,
            "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
            "fill_value": 0, "codecs": [{"name": "bytes", "configuration": {"endian": "little"}}],
            "attributes": {}
        })
    };
    let regular = json!({"name": "regular", "configuration": {"chunk_shape": [5, 5]}});
    let path = write("float16.zarr", base("float16", regular.clone()));
    let err = Input::open(&path).unwrap_err();
    assert!(matches!(err, Error::UnsupportedArray { .. }), "{err}");
    assert!(err.to_string().contains("float16"), "{err}");

    let rectilinear = json!({"name": "rectilinear",
        "configuration": {"kind": "inline", "chunk_shapes": [[3, 7], 5]}});
    let path = write("rect.zarr", base("uint16", rectilinear));
    let err = Input::open(&path).unwrap_err();
    assert!(matches!(err, Error::UnsupportedArray { .. }), "{err}");
    assert!(err.to_string().contains("chunk grid"), "{err}");

    let path = write("codec.zarr", {
        let mut m = base("uint16", regular);
        m["codecs"] = json!([{"name": "bytes", "configuration": {"endian": "little"}},
                             {"name": "no-such-codec"}]);
        m
    });
    let err = Input::open(&path).unwrap_err();
    assert!(matches!(err, Error::UnsupportedArray { .. }), "{err}");
}

#[test]
fn sharded_inputs_read_and_name_their_corrupt_shard() {
    use zarrs::array::codec::ZstdCodec;
    use zarrs::array::{ArrayBuilder, ArraySubset, data_type};
    use zarrs::filesystem::FilesystemStore;

    let dir = scratch("sharded");
    let path = dir.join("s.zarr");
    let shape = [12usize, 10];
    let store = Arc::new(FilesystemStore::new(&path).unwrap());
    let array = ArrayBuilder::new(vec![12, 10], vec![8, 8], data_type::uint16(), 0u16)
        .subchunk_shape(vec![4, 4])
        .bytes_to_bytes_codecs(vec![Arc::new(ZstdCodec::new(3, false))])
        .build(store, "/")
        .unwrap();
    array.store_metadata().unwrap();
    let whole = Region::whole(&shape);
    let data: Vec<u16> = match block_of(&whole.sets(), &shape, DType::U16) {
        BlockAny::U16(b) => b.data.into_owned(),
        _ => unreachable!(),
    };
    array
        .store_array_subset(&ArraySubset::new_with_ranges(&[0..12, 0..10]), data)
        .unwrap();

    let input = Input::open(&path).unwrap();
    assert_eq!(input.chunk_shape(), vec![8, 8]);
    assert_eq!(input.inner_chunk_shape(), Some(vec![4, 4]));
    assert!(
        input.describe().contains("sharding_indexed"),
        "{}",
        input.describe()
    );
    check_reads(&input, &whole.sets());
    check_reads(
        &input,
        &[
            AxisSet::from_ranges([0..2, 9..12]),
            AxisSet::from_range(3..10),
        ],
    );

    let shard = path.join("c/1/1");
    let bytes = fs::read(&shard).unwrap();
    fs::write(&shard, &bytes[..bytes.len() / 2]).unwrap();
    let err = input
        .read_region(&Region::new(vec![6, 6], vec![4, 4]))
        .unwrap_err();
    match err {
        Error::CorruptChunk { chunk, path, .. } => {
            assert_eq!(chunk, vec![1, 1]);
            assert_eq!(path, shard);
        }
        other => panic!("expected a corrupt shard, got {other}"),
    }
}

#[test]
fn inputs_and_outputs_are_shared_across_threads() {
    fn shared<T: Send + Sync>() {}
    shared::<Input>();
    shared::<Output>();
}

const CHILD_ENV: &str = "HALOFLOW_STORE_TEST_CHILD";
const KILL_SHAPE: [usize; 3] = [8, 512, 512];

/// The array the killed writers write: chunks of 1 MiB stored raw, so that a good
/// share of a writer's time goes to writing files (a store that wrote chunks in place
/// would be caught with one torn).
fn kill_spec() -> OutputSpec {
    OutputSpec::new(&KILL_SHAPE, DType::F32, &[1, 512, 512]).with_compression(Compression::None)
}

/// Run by `killed_writers_leave_no_torn_chunk` in a child process: writes the same
/// array over and over until killed.
#[test]
#[ignore = "helper process of killed_writers_leave_no_torn_chunk"]
fn writer_child() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return;
    };
    let output = Output::create(Path::new(&path), &kill_spec(), false).unwrap();
    loop {
        write_all(&output, &[1, 512, 512]);
    }
}

/// Every file under an array directory, by path relative to it, with its inode,
/// modification time and size: a chunk written again (replaced by a rename, or
/// rewritten in place) differs in one of them.
fn files_with_inodes(root: &Path) -> std::collections::BTreeMap<PathBuf, (u64, i64, i64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let mut found = std::collections::BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            match entry.metadata() {
                Ok(m) if m.is_dir() => stack.push(path),
                Ok(m) => {
                    let key = path.strip_prefix(root).unwrap().to_path_buf();
                    found.insert(key, (m.ino(), m.mtime(), m.mtime_nsec(), m.size()));
                }
                Err(_) => {} // renamed or removed meanwhile
            }
        }
    }
    found
}

/// The chunk files (`c/...`) among `files`.
fn chunk_files(
    files: &std::collections::BTreeMap<PathBuf, (u64, i64, i64, u64)>,
) -> std::collections::BTreeMap<PathBuf, (u64, i64, i64, u64)> {
    files
        .iter()
        .filter(|(p, _)| p.starts_with("c"))
        .map(|(p, i)| (p.clone(), *i))
        .collect()
}

/// Each round starts a writer over the array the earlier rounds left, waits until it
/// has committed a chunk of its own (a chunk file new or replaced since it started,
/// so it is inside its write loop), lets it run a few more milliseconds and kills it
/// (SIGKILL: no cleanup runs). Then:
/// - every chunk present decodes to exactly what was written, and no other file than
///   the metadata and the chunks lies outside the temporary directory;
/// - a resumed writer completes the array and leaves no temporary file of its own;
///   the killed one's leftovers are exactly what `remove_temporaries` removes once
///   they are stale, after which the temporary directory is empty.
#[test]
fn killed_writers_leave_no_torn_chunk() {
    let dir = scratch("killed");
    let path = dir.join("a.zarr");
    let spec = kill_spec();
    let temp = path.join(TEMP_DIR);
    let names_in = |dir: &Path| -> std::collections::BTreeSet<std::ffi::OsString> {
        match fs::read_dir(dir) {
            Ok(entries) => entries.map(|e| e.unwrap().file_name()).collect(),
            Err(_) => Default::default(),
        }
    };
    for round in 0..20u64 {
        let before = chunk_files(&files_with_inodes(&path));
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["writer_child", "--exact", "--ignored", "--test-threads=1"])
            .env(CHILD_ENV, &path)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        let committed = loop {
            let now = chunk_files(&files_with_inodes(&path));
            if let Some((key, _)) = now.iter().find(|(k, i)| before.get(*k) != Some(i)) {
                break key.clone();
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("round {round}: the writer exited ({status}) before writing a chunk");
            }
            if std::time::Instant::now() > deadline {
                child.kill().unwrap();
                panic!("round {round}: no chunk written within 60 s");
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        std::thread::sleep(Duration::from_micros(500 + 1700 * (round * 7 % 20)));
        child.kill().unwrap();
        child.wait().unwrap();

        // Only the metadata and whole chunks outside the temporary directory.
        for file in files_with_inodes(&path).keys() {
            assert!(
                file.starts_with(TEMP_DIR)
                    || file == Path::new("zarr.json")
                    || (file.starts_with("c")
                        && file
                            .file_name()
                            .unwrap()
                            .to_str()
                            .unwrap()
                            .parse::<u64>()
                            .is_ok()),
                "round {round}: a stray file {} outside {TEMP_DIR}",
                file.display()
            );
        }
        let leftovers = names_in(&temp);

        // Every chunk present decodes to exactly what was written.
        let output = Output::create(&path, &spec, false).unwrap();
        assert!(output.resumed());
        let input = Input::open(&path).unwrap();
        let mut present = 0;
        for region in output.grid().chunks() {
            if output.region_done(&region).unwrap() {
                check_reads(&input, &region.sets());
                present += 1;
            }
        }
        assert!(present > 0);
        eprintln!(
            "round {round}: killed after {} was committed; {present} chunks present, {} temporary files left",
            committed.display(),
            leftovers.len()
        );

        // The resumed writer finishes and leaves none of its own temporaries; the
        // killed writer's are removed once stale (here: at once).
        write_all(&output, &[1, 512, 512]);
        assert_eq!(names_in(&temp), leftovers, "round {round}");
        assert_eq!(
            output.remove_temporaries(Duration::ZERO).unwrap(),
            leftovers.len()
        );
        assert!(names_in(&temp).is_empty(), "round {round}");
    }
}

/// `verify` counts the chunks stored from the store's listing and names the first
/// missing ones in C order, for v3 keys (`c/0/1/2`) and v2 keys (`0.1.2`), leaving
/// metadata and temporaries out; on an output of 2^30 chunks with three stored (the
/// grid walked only up to the hundredth missing chunk).
#[test]
fn verify_counts_the_stored_chunks_and_names_the_first_missing() {
    use haloflow::store::verify;
    for format in [3u8, 2] {
        let dir = scratch(&format!("verify-v{format}"));
        let path = dir.join("out.zarr");
        let shape = [8, 9, 10];
        let mut spec = OutputSpec::new(&shape, DType::U16, &[4, 4, 4]);
        spec.zarr_format = format;
        let out = Output::create(&path, &spec, false).unwrap();
        // Chunks (0, 0, 1) and (1, 2, 2) of the 2 x 3 x 3 grid.
        for start in [[0usize, 0, 4], [4, 8, 8]] {
            let region = Region::new(
                start.to_vec(),
                (0..3).map(|a| 4.min(shape[a] - start[a])).collect(),
            );
            let data = vec![7u16; region.len()];
            out.write(
                &region,
                &Block::new(region.sets(), Cow::Owned(data)).into_any(),
            )
            .unwrap();
        }
        out.flush().unwrap();
        fs::create_dir_all(path.join(TEMP_DIR)).unwrap();
        fs::write(path.join(TEMP_DIR).join("0.0.0"), b"junk").unwrap();
        let found = verify(&path).unwrap();
        assert_eq!(found.len(), 1);
        let c = &found[0];
        assert_eq!((c.jobs_total, c.jobs_done), (18, 2), "v{format}");
        let key = |i: [u64; 3]| Input::open(&path).unwrap().chunk_key(&i);
        let mut want = Vec::new();
        for i in 0..18u64 {
            let index = [i / 9, i / 3 % 3, i % 3];
            if index != [0, 0, 1] && index != [1, 2, 2] {
                want.push(key(index));
            }
        }
        assert_eq!(c.missing, want, "v{format}");
    }
    // A huge, nearly empty output: the answer does not walk the grid.
    let dir = scratch("verify-huge");
    let path = dir.join("huge.zarr");
    let shape = [1 << 10, 1 << 10, 1 << 10];
    let out = Output::create(
        &path,
        &OutputSpec::new(&shape, DType::U8, &[1, 1, 1]),
        false,
    )
    .unwrap();
    for start in [[0usize, 0, 0], [5, 6, 7], [1023, 1023, 1023]] {
        let region = Region::new(start.to_vec(), vec![1, 1, 1]);
        out.write(
            &region,
            &Block::new(region.sets(), Cow::Owned(vec![1u8])).into_any(),
        )
        .unwrap();
    }
    out.flush().unwrap();
    let c = &verify(&path).unwrap()[0];
    assert_eq!((c.jobs_total, c.jobs_done), (1 << 30, 3));
    assert_eq!(c.missing.len(), 100);
    assert_eq!(c.missing[0], "c/0/0/1");
}
