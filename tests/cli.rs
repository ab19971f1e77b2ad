//! The `haloflow` command end to end against zarr-python and scipy
//! (`tests/interop/zarr_interop.py`), and its handling of bad input.
//!
//! The interop checks need Python with numpy, scipy and zarr: `HALOFLOW_PYTHON` names
//! the interpreter (`scripts/test` sets it up). Without it they print a notice and
//! pass, unless `HALOFLOW_REQUIRE_PYTHON=1` (CI) makes them fail.

use std::path::Path;
use std::process::Command;

mod common;
use common::gpu_or_notice;

fn python() -> Option<String> {
    let python = std::env::var("HALOFLOW_PYTHON").ok();
    let required = std::env::var("HALOFLOW_REQUIRE_PYTHON").is_ok_and(|v| v == "1");
    match python {
        Some(p) => Some(p),
        None if required => panic!("HALOFLOW_REQUIRE_PYTHON=1 but HALOFLOW_PYTHON is not set"),
        None => {
            eprintln!("notice: HALOFLOW_PYTHON not set; skipping zarr-python interop checks");
            None
        }
    }
}

fn interop(check: &str) {
    interop_on(check, "cpu");
}

fn interop_on(check: &str, device: &str) {
    script_check("zarr_interop.py", &["--device", device, check]);
}

/// Runs `tests/interop/SCRIPT` with the freshly built binary and `args`.
fn script_check(script: &str, args: &[&str]) {
    let Some(python) = python() else { return };
    let check = args.join(" ");
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/interop")
        .join(script);
    let out = Command::new(&python)
        .arg(&script)
        .arg("--haloflow")
        .arg(env!("CARGO_BIN_EXE_haloflow"))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {python}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stdout}");
    assert!(
        out.status.success(),
        "interop check {check} failed:\n{stdout}\n{stderr}"
    );
}

#[test]
fn every_op_matches_scipy_on_zarr_python_arrays() {
    interop("conformance");
}

/// The same conformance on the GPU backend (lavapipe in CI).
#[test]
fn every_op_matches_scipy_on_the_gpu() {
    if gpu_or_notice("conformance") {
        interop_on("conformance", "gpu");
    }
}

/// `haloflow devices` lists the adapters the library finds, one a line, in its order,
/// and exits 0; with every adapter hidden (`WGPU_BACKEND=gl`: wgpu is built without
/// GL) it says there is none and still exits 0.
#[test]
fn devices_lists_the_adapters_or_says_there_is_none() {
    let devices = |backend: Option<&str>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_haloflow"));
        cmd.arg("devices");
        if let Some(b) = backend {
            cmd.env("WGPU_BACKEND", b);
        }
        let out = cmd.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{stderr}");
        String::from_utf8(out.stdout).unwrap()
    };
    let listed = devices(None);
    let found = haloflow::gpu::adapters();
    if gpu_or_notice("devices") {
        let lines: Vec<&str> = listed.lines().collect();
        let want: Vec<String> = found.iter().map(|a| a.listing()).collect();
        assert_eq!(lines, want, "{listed}");
        for (i, (line, a)) in lines.iter().zip(&found).enumerate() {
            assert_eq!(a.index, i);
            assert!(
                line.starts_with(&format!("{i}: {}", a.name)) && line.contains(&a.backend),
                "{line}"
            );
            assert_eq!(line.contains("software renderer"), a.is_cpu, "{line}");
        }
    }
    let none = devices(Some("gl"));
    assert_eq!(
        none.trim(),
        "no GPU adapter found (Vulkan, Metal or DX12); haloflow will use the CPU"
    );
}

/// `stats` against numpy, and the thresholds and normalisation built on it against
/// scikit-image and CSBDeep's formula.
#[test]
fn statistics_equal_numpy_and_thresholds_equal_skimage() {
    interop("stats");
}

/// The thresholds and normalisation from statistics on the GPU backend.
#[test]
fn thresholds_from_statistics_on_the_gpu() {
    if gpu_or_notice("statistics") {
        interop_on("stats", "gpu");
    }
}

#[test]
fn arrays_compressed_by_other_tools_are_read() {
    interop("codecs");
}

#[test]
fn tiff_files_read_as_tifffile_reads_them() {
    script_check("formats.py", &["tiff"]);
}

#[test]
fn nifti_files_read_as_nibabel_reads_them() {
    script_check("formats.py", &["nifti"]);
}

#[test]
fn czi_scenes_read_as_pylibczirw_reads_them() {
    script_check("formats.py", &["czi"]);
}

#[test]
fn file_metadata_reaches_info_and_ome_zarr_outputs() {
    script_check("formats.py", &["metadata"]);
}

#[test]
fn previews_and_histogram_plots_are_pngs_pillow_reads() {
    script_check("formats.py", &["preview"]);
}

#[test]
fn bad_instrument_files_are_refused_in_one_line_naming_them() {
    script_check("formats.py", &["bad"]);
}

#[test]
fn a_tiff_larger_than_the_memory_limit_streams() {
    script_check("formats.py", &["memory"]);
}

#[test]
fn ome_zarr_images_in_and_out_validate_and_read_back() {
    interop("ome");
}

#[test]
fn pyramids_equal_numpy_level_by_level_and_resume() {
    interop("pyramid");
}

#[test]
fn a_killed_run_resumes_to_identical_bytes() {
    interop("resume");
}

/// The same on the GPU backend: a killed GPU run, resumed, equals an uninterrupted GPU
/// run byte for byte.
#[test]
fn a_killed_gpu_run_resumes_to_identical_bytes() {
    if gpu_or_notice("resume") {
        interop_on("resume", "gpu");
    }
}

#[test]
fn three_concurrent_parts_equal_one_run() {
    interop("parts");
}

#[test]
fn sharded_outputs_equal_unsharded_resume_and_split_by_shard() {
    interop("shards");
}

/// A real SLURM array job on a one-node cluster on localhost (`tests/slurm/`): the
/// output equals one uninterrupted run byte for byte, with one task cancelled mid-run
/// and requeued; `verify` fails before the last task finishes and passes after; sacct
/// records every task COMPLETED. Needs root and Debian's slurmctld, slurmd,
/// slurm-client and munge; without them a notice, and a failure if
/// `HALOFLOW_REQUIRE_SLURM=1` (CI) demands the scheduler.
#[test]
fn a_slurm_array_job_with_a_task_cancelled_and_requeued_equals_one_run() {
    let required = std::env::var("HALOFLOW_REQUIRE_SLURM").is_ok_and(|v| v == "1");
    let installed = [
        "/usr/sbin/slurmctld",
        "/usr/sbin/slurmd",
        "/usr/sbin/munged",
        "/usr/bin/sbatch",
    ]
    .iter()
    .all(|p| Path::new(p).exists());
    // SAFETY: geteuid only reads the process's user id.
    let root = unsafe { libc::geteuid() } == 0;
    if !(installed && root) {
        assert!(
            !required,
            "HALOFLOW_REQUIRE_SLURM=1 but SLURM cannot run here (installed: {installed}, root: {root}); \
             apt-get install slurmctld slurmd slurm-client munge, as root"
        );
        eprintln!("notice: no SLURM here (or not root); skipping the array job test");
        return;
    }
    let Some(python) = python() else { return };
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/slurm/array_job.sh");
    let out = Command::new(&script)
        .arg(env!("CARGO_BIN_EXE_haloflow"))
        .arg(&python)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stdout}");
    assert!(
        out.status.success(),
        "the SLURM array job test failed:\n{stdout}\n{stderr}"
    );
}

#[test]
fn peak_memory_stays_under_the_limit() {
    interop("memory");
}

mod bad_input {
    //! Bad input: one clear line on stderr, a non-zero exit, no panic, and chunks
    //! already written left intact.

    use std::borrow::Cow;
    use std::fs;
    use std::path::{Path, PathBuf};
    use std::process::{Command, Output as Done};

    use haloflow::block::Block;
    use haloflow::store::{Output, OutputSpec};
    use haloflow::{Boundary, DType, DownMethod, Op, Pipeline, Region};

    fn scratch(name: &str) -> PathBuf {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join("cli-tests")
            .join(name);
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// A small float32 v3 array (8 x 9 x 10, chunks 4 x 4 x 4) at `dir/name`.
    fn input(dir: &Path, name: &str) -> PathBuf {
        let path = dir.join(name);
        let shape = [8, 9, 10];
        let out = Output::create(
            &path,
            &OutputSpec::new(&shape, DType::F32, &[4, 4, 4]),
            false,
        )
        .unwrap();
        let sets = Region::whole(&shape).sets();
        let data: Vec<f32> = (0..shape.iter().product::<usize>())
            .map(|i| (i % 13) as f32)
            .collect();
        out.write(
            &Region::whole(&shape),
            &Block::new(sets, Cow::Owned(data)).into_any(),
        )
        .unwrap();
        out.flush().unwrap();
        path
    }

    fn haloflow(args: &[&str]) -> Done {
        Command::new(env!("CARGO_BIN_EXE_haloflow"))
            .args(args)
            .output()
            .unwrap()
    }

    /// Asserts a failure whose first error line on stderr contains every one of `needles`.
    fn fails_with(out: &Done, needles: &[&str]) {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success(),
            "expected a failure, got success: {stderr}"
        );
        assert_ne!(out.status.code(), Some(101), "panicked: {stderr}");
        // The command's own error line, whatever a driver or library printed before it;
        // else clap's (argument errors, printed before any driver is loaded).
        let first = stderr
            .lines()
            .find(|l| l.starts_with("haloflow: error:"))
            .or_else(|| stderr.lines().find(|l| l.starts_with("error:")))
            .unwrap_or_default();
        for n in needles {
            assert!(
                first.contains(n),
                "error line {first:?} lacks {n:?}\n{stderr}"
            );
        }
    }

    fn s(p: &Path) -> &str {
        p.to_str().unwrap()
    }

    /// The restoration ops' parameters: each bad one is one line naming it, and nothing
    /// is written.
    #[test]
    fn restoration_parameters_are_checked_before_anything_is_written() {
        let dir = scratch("restoration");
        let src = input(&dir, "in.zarr");
        let out = dir.join("out.zarr");
        let nan = dir.join("nan.npy");
        // A 2 x 2 float64 .npy of NaN: the header, then the data.
        let header = "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2), }";
        let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
        let padded = format!("{header:<117}\n");
        bytes.extend_from_slice(&(padded.len() as u16).to_le_bytes());
        bytes.extend_from_slice(padded.as_bytes());
        for _ in 0..4 {
            bytes.extend_from_slice(&f64::NAN.to_le_bytes());
        }
        fs::write(&nan, bytes).unwrap();
        let cases: [(&[&str], &[&str]); 10] = [
            (&["anscombe", "--gain", "0"], &["anscombe", "gain", "> 0"]),
            (
                &["denoise", "--h", "0.1", "--patch-size", "0"],
                &["denoise", "patch-size must be >= 1"],
            ),
            (
                &["denoise", "--h", "0.1", "--patch-distance", "0"],
                &["denoise", "patch-distance must be >= 1"],
            ),
            (
                &["denoise", "--h", "-1"],
                &["denoise", "h must be finite and > 0"],
            ),
            (
                &[
                    "denoise",
                    "--h",
                    "1",
                    "--noise",
                    "poisson-gaussian",
                    "--gain",
                    "0",
                ],
                &["denoise", "gain", "> 0"],
            ),
            (
                &["inverse-anscombe", "--read-noise", "-1"],
                &["inverse_anscombe", "read noise"],
            ),
            (
                &["deconvolve", "--psf-sigma", "1", "--iterations", "0"],
                &["deconvolve", "iterations must be >= 1"],
            ),
            (
                &["deconvolve", "--psf", s(&nan), "--iterations", "3"],
                &["deconvolve", "non-finite"],
            ),
            (
                &["deconvolve", "--psf-sigma", "1,1,1,1", "--iterations", "3"],
                &["psf_sigma"],
            ),
            (
                &["deconvolve", "--iterations", "3"],
                &["required arguments"],
            ),
        ];
        for (flags, needles) in cases {
            let mut args = vec![flags[0], s(&src), s(&out)];
            args.extend_from_slice(&flags[1..]);
            fails_with(&haloflow(&args), needles);
            assert!(!out.exists(), "{flags:?} wrote {}", out.display());
        }
    }

    #[test]
    fn missing_and_non_array_inputs() {
        let dir = scratch("missing");
        let out = dir.join("out.zarr");
        fails_with(
            &haloflow(&[
                "threshold",
                s(&dir.join("nope.zarr")),
                s(&out),
                "--above",
                "1",
            ]),
            &["nope.zarr", "no such file"],
        );
        fs::create_dir_all(dir.join("empty.zarr")).unwrap();
        fails_with(
            &haloflow(&[
                "threshold",
                s(&dir.join("empty.zarr")),
                s(&out),
                "--above",
                "1",
            ]),
            &["empty.zarr", "not a Zarr array"],
        );
        fails_with(
            &haloflow(&["info", s(&dir.join("nope.zarr"))]),
            &["no such file"],
        );
    }

    /// Arrays whose element or byte count passes 64 bits (a 2^32 x 2^32 grid of
    /// 1-element chunks, and (2^32-1) x (2^32+1) float32) are refused by name, with
    /// nothing written: never a wrapped count, never a panic.
    #[test]
    fn arrays_too_large_to_count_are_refused_by_name() {
        let dir = scratch("too-large");
        let cases = [
            (
                "elements.zarr",
                "[4294967296, 4294967296]",
                "2^64.0 elements",
            ),
            ("bytes.zarr", "[4294967295, 4294967297]", "2^66.0 bytes"),
        ];
        for (name, shape, needle) in cases {
            let path = dir.join(name);
            fs::create_dir_all(&path).unwrap();
            let metadata = format!(
                r#"{{"zarr_format": 3, "node_type": "array", "shape": {shape},
                "data_type": "float32", "fill_value": 0.0,
                "chunk_grid": {{"name": "regular", "configuration": {{"chunk_shape": [1, 1]}}}},
                "chunk_key_encoding": {{"name": "default", "configuration": {{"separator": "/"}}}},
                "codecs": [{{"name": "bytes", "configuration": {{"endian": "little"}}}}]}}"#
            );
            fs::write(path.join("zarr.json"), metadata).unwrap();
            let out = dir.join(format!("out-{name}"));
            for args in [
                vec![
                    "gaussian",
                    s(&path),
                    s(&out),
                    "--sigma",
                    "1",
                    "--device",
                    "cpu",
                ],
                vec!["info", s(&path)],
                vec!["stats", s(&path)],
            ] {
                fails_with(
                    &haloflow(&args),
                    &[s(&path), needle, "more than this build can count"],
                );
            }
            assert!(!out.exists());
        }
    }

    /// Offsets past 2^32 along an axis: the last part of a (2, 2^32 + 100) array in
    /// chunks of 2 x 64, only its end stored, filtered on the CPU and the GPU, equals
    /// the same filter on the array's end in memory.
    #[test]
    fn offsets_past_two_to_the_32_are_exact_on_both_devices() {
        let dir = scratch("wide");
        let path = dir.join("in.zarr");
        let n = (1usize << 32) + 100;
        let out = Output::create(
            &path,
            &OutputSpec::new(&[2, n], DType::U16, &[2, 64]),
            false,
        )
        .unwrap();
        // The last 228 columns hold data (the last two chunks and part of a third).
        let tail: Vec<u16> = (0..2 * 228).map(|i| (i * 37 % 1000) as u16).collect();
        let region = Region::new(vec![0, n - 228], vec![2, 228]);
        out.write(
            &region,
            &Block::new(region.sets(), Cow::Owned(tail.clone())).into_any(),
        )
        .unwrap();
        out.flush().unwrap();
        // In memory: 100 columns of zeros (stored nowhere: the fill value) and the tail.
        let mut end = vec![0f32; 2 * 328];
        for r in 0..2 {
            for c in 0..228 {
                end[r * 328 + 100 + c] = f32::from(tail[r * 228 + c]);
            }
        }
        let end = ndarray::ArrayD::from_shape_vec(vec![2, 328], end).unwrap();
        let pipeline = Pipeline::new(vec![Op::gaussian(&[0.0, 3.0])]);
        let haloflow::ArrayAny::F32(want) = pipeline.apply(end.view()).unwrap() else {
            panic!("a Gaussian gives float32");
        };
        let chunks = n.div_ceil(64);
        let last = n / 64 * 64;
        let mut devices = vec!["cpu"];
        if super::gpu_or_notice("wide axis") {
            devices.push("gpu");
        }
        for device in devices {
            let dst = dir.join(format!("{device}.zarr"));
            let part = format!("{}/{chunks}", chunks - 1);
            let done = haloflow(&[
                "gaussian",
                s(&path),
                s(&dst),
                "--sigma",
                "0,3",
                "--part",
                &part,
                "--device",
                device,
                "--quiet",
            ]);
            assert!(
                done.status.success(),
                "{}",
                String::from_utf8_lossy(&done.stderr)
            );
            let got = haloflow::Input::open(&dst)
                .unwrap()
                .read_region(&Region::new(vec![0, last], vec![2, n - last]))
                .unwrap();
            let got = &got.typed::<f32>().data;
            for r in 0..2 {
                for c in 0..n - last {
                    let w = want[[r, 328 - (n - last) + c]];
                    let g = got[r * (n - last) + c];
                    assert!(
                        (g - w).abs() <= 1e-4,
                        "{device}: row {r} column {c}: {g} against {w}"
                    );
                }
            }
        }
    }

    /// Compiled pipelines are kept in `HALOFLOW_CACHE_DIR` (on Vulkan), and a corrupt
    /// cache file costs nothing but the compiles: the run still succeeds, same bytes.
    #[test]
    fn the_pipeline_cache_is_written_and_a_corrupt_one_is_ignored() {
        if !super::gpu_or_notice("pipeline cache") {
            return;
        }
        let dir = scratch("pipeline-cache");
        let src = input(&dir, "in.zarr");
        let cache = dir.join("cache");
        let run = |out: &str| {
            let done = Command::new(env!("CARGO_BIN_EXE_haloflow"))
                .args([
                    "gaussian",
                    s(&src),
                    s(&dir.join(out)),
                    "--sigma",
                    "1",
                    "--device",
                    "gpu",
                ])
                .env("HALOFLOW_CACHE_DIR", &cache)
                .output()
                .unwrap();
            assert!(
                done.status.success(),
                "{}",
                String::from_utf8_lossy(&done.stderr)
            );
        };
        run("first.zarr");
        let vulkan = haloflow::gpu::adapters()
            .first()
            .is_some_and(|a| a.backend == "vulkan");
        let files: Vec<_> = fs::read_dir(&cache)
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        if vulkan {
            assert_eq!(files.len(), 1, "{files:?}");
            assert!(
                files[0]
                    .file_name()
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .starts_with("wgpu_pipeline_cache_vulkan_"),
                "{files:?}"
            );
        }
        for f in &files {
            fs::write(f, b"not a pipeline cache").unwrap();
        }
        run("second.zarr");
        let read = |name: &str| {
            let input = haloflow::Input::open(&dir.join(name)).unwrap();
            let block = input.read_region(&Region::whole(input.shape())).unwrap();
            block.typed::<f32>().data.to_vec()
        };
        assert_eq!(read("first.zarr"), read("second.zarr"));
    }

    #[test]
    fn unsupported_dtype() {
        let dir = scratch("dtype");
        let path = dir.join("f16.zarr");
        fs::create_dir_all(&path).unwrap();
        fs::write(
            path.join("zarr.json"),
            r#"{"zarr_format":3,"node_type":"array","shape":[4],"data_type":"float16",
                "chunk_grid":{"name":"regular","configuration":{"chunk_shape":[2]}},
                "chunk_key_encoding":{"name":"default","configuration":{"separator":"/"}},
                "fill_value":0,"codecs":[{"name":"bytes","configuration":{"endian":"little"}}]}"#,
        )
        .unwrap();
        fails_with(
            &haloflow(&[
                "clip",
                s(&path),
                s(&dir.join("o.zarr")),
                "--min",
                "0",
                "--max",
                "1",
            ]),
            &["float16"],
        );
    }

    #[test]
    fn bad_parameters() {
        let dir = scratch("params");
        let src = input(&dir, "in.zarr");
        let dst = dir.join("out.zarr");
        let run = |args: &[&str]| {
            let mut all = vec![args[0], s(&src), s(&dst)];
            all.extend_from_slice(&args[1..]);
            haloflow(&all)
        };
        fails_with(&run(&["gaussian", "--sigma", "-1"]), &["sigma"]);
        fails_with(&run(&["gaussian", "--sigma", "1,2"]), &["sigma", "3"]);
        fails_with(&run(&["downsample", "--factor", "2,0,2"]), &["factor"]);
        fails_with(&run(&["upsample", "--factor", "2,2"]), &["factor", "3"]);
        fails_with(&run(&["clip", "--min", "5", "--max", "1"]), &["min"]);
        fails_with(
            &run(&["threshold", "--above", "1", "--part", "3/3"]),
            &["part"],
        );
        fails_with(
            &run(&["threshold", "--above", "1", "--dtype", "complex64"]),
            &["complex64"],
        );
        fails_with(
            &run(&["threshold", "--above", "1", "--chunks", "4,4"]),
            &["chunks"],
        );
        // Kernels: more dimensions than the array, and an unreadable file.
        let k4 = dir.join("k4.npy");
        ndarray_npy::write_npy(
            &k4,
            &ndarray::ArrayD::<f64>::ones(ndarray::IxDyn(&[1, 1, 1, 1])),
        )
        .unwrap();
        fails_with(
            &run(&["convolve", "--kernel", s(&k4)]),
            &["kernel", "dimensions"],
        );
        let junk = dir.join("junk.npy");
        fs::write(&junk, b"not a npy file").unwrap();
        fails_with(&run(&["convolve", "--kernel", s(&junk)]), &["junk.npy"]);
        fails_with(
            &run(&["threshold", "--above", "1", "--compression", "gzip"]),
            &["compression"],
        );
        assert!(!dst.exists(), "a refused run created its output");
    }

    #[test]
    fn the_output_compression_is_chosen_and_recorded() {
        let dir = scratch("compression");
        let src = input(&dir, "in.zarr");
        let whole = Region::whole(&[8, 9, 10]);
        let expect = haloflow::store::Input::open(&src)
            .unwrap()
            .read_region(&whole)
            .unwrap();
        for (choice, codec) in [("none", None), ("zstd:-2", Some(-2)), ("zstd", Some(3))] {
            let dst = dir.join(format!("{choice}.zarr"));
            let done = haloflow(&["copy", s(&src), s(&dst), "--compression", choice, "-q"]);
            assert!(
                done.status.success(),
                "{}",
                String::from_utf8_lossy(&done.stderr)
            );
            let meta: serde_json::Value =
                serde_json::from_slice(&fs::read(dst.join("zarr.json")).unwrap()).unwrap();
            let zstd = meta["codecs"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["name"] == "zstd")
                .map(|c| c["configuration"]["level"].as_i64().unwrap());
            assert_eq!(zstd, codec, "{choice}");
            let back = haloflow::store::Input::open(&dst)
                .unwrap()
                .read_region(&whole)
                .unwrap();
            assert_eq!(
                back.typed::<f32>().data,
                expect.typed::<f32>().data,
                "{choice}"
            );
        }
    }

    #[test]
    fn no_gpu_driver_fails_gpu_and_auto_falls_back_to_the_cpu() {
        let dir = scratch("nogpu");
        let src = input(&dir, "in.zarr");
        // wgpu is built without GL, so this hides every adapter, as a machine without
        // a Vulkan driver would.
        let run = |device: &str, out: &str| {
            Command::new(env!("CARGO_BIN_EXE_haloflow"))
                .args([
                    "threshold",
                    s(&src),
                    s(&dir.join(out)),
                    "--above",
                    "3",
                    "--device",
                    device,
                ])
                .env("WGPU_BACKEND", "gl")
                .output()
                .unwrap()
        };
        fails_with(&run("gpu", "gpu.zarr"), &["no GPU adapter"]);
        assert!(!dir.join("gpu.zarr").exists());
        let auto = run("auto", "auto.zarr");
        let stderr = String::from_utf8_lossy(&auto.stderr);
        assert!(auto.status.success(), "{stderr}");
        assert!(stderr.contains("auto: no GPU adapter"), "{stderr}");
        assert!(stderr.contains("on cpu"), "{stderr}");
    }

    /// `--adapter` takes an index from `haloflow devices`; one past the list is refused
    /// with the list; `auto` (one adapter per part) works with or without hardware.
    #[test]
    fn an_adapter_is_chosen_by_index_and_a_missing_one_is_named() {
        if !super::gpu_or_notice("adapter choice") {
            return;
        }
        let dir = scratch("adapter");
        let src = input(&dir, "in.zarr");
        let run = |adapter: &str, out: &str| {
            haloflow(&[
                "threshold",
                s(&src),
                s(&dir.join(out)),
                "--above",
                "3",
                "--device",
                "gpu",
                "--adapter",
                adapter,
            ])
        };
        let found = haloflow::gpu::adapters();
        let first = run("0", "first.zarr");
        let stderr = String::from_utf8_lossy(&first.stderr);
        assert!(first.status.success(), "{stderr}");
        assert!(stderr.contains(&found[0].name), "{stderr}");
        let past = found.len().to_string();
        fails_with(
            &run(&past, "past.zarr"),
            &[&format!("no adapter number {past}"), "0: "],
        );
        assert!(!dir.join("past.zarr").exists());
        let auto = run("auto", "auto.zarr");
        assert!(
            auto.status.success(),
            "{}",
            String::from_utf8_lossy(&auto.stderr)
        );
    }

    #[test]
    fn auto_picks_the_cpu_for_a_single_zarr_op_and_says_why() {
        let dir = scratch("auto");
        let src = input(&dir, "in.zarr");
        let report = dir.join("report.json");
        let out = haloflow(&[
            "threshold",
            s(&src),
            s(&dir.join("out.zarr")),
            "--above",
            "3",
            "--report",
            s(&report),
        ]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert!(stderr.contains("on cpu"), "{stderr}");
        // Without a hardware GPU (as here, and on CI) or with one (the codecs dominate
        // a threshold), the reason is given.
        assert!(stderr.contains("device choice: auto:"), "{stderr}");
        let report: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
        assert_eq!(report["device"], "cpu");
        assert!(
            report["device_reason"]
                .as_str()
                .unwrap()
                .starts_with("auto:"),
            "{report}"
        );
    }

    /// The values of a uint8 array.
    fn read_u8(path: &Path) -> Vec<u8> {
        let input = haloflow::Input::open(path).unwrap();
        let block = input.read_region(&Region::whole(input.shape())).unwrap();
        block.typed::<u8>().data.to_vec()
    }

    #[test]
    fn a_chain_on_the_command_line_equals_the_in_memory_pipeline_and_replays() {
        let dir = scratch("chain");
        let src = input(&dir, "in.zarr");
        let (out, again, toml) = (
            dir.join("out.zarr"),
            dir.join("again.zarr"),
            dir.join("t.zarr"),
        );
        let ok = |o: &Done| assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        ok(&haloflow(&[
            "run",
            s(&src),
            s(&out),
            "--quiet",
            "--chunks",
            "3,4,5",
            "gaussian",
            "--sigma",
            "1,0.5,1",
            "--mode",
            "wrap",
            "+",
            "threshold",
            "--above",
            "5.5",
            "+",
            "downsample",
            "--factor",
            "2",
            "--method",
            "max",
        ]));
        let pipeline = Pipeline::new(vec![
            Op::gaussian(&[1.0, 0.5, 1.0]).with_mode(Boundary::Wrap, 0.0),
            Op::threshold(5.5),
            Op::downsample(&[2], DownMethod::Max),
        ]);
        let input = haloflow::Input::open(&src).unwrap();
        let block = input.read_region(&Region::whole(input.shape())).unwrap();
        let x = ndarray::ArrayD::from_shape_vec(
            input.shape().to_vec(),
            block.typed::<f32>().data.to_vec(),
        )
        .unwrap();
        let want = pipeline
            .apply(x.view())
            .unwrap()
            .into_array::<u8>()
            .unwrap();
        assert_eq!(read_u8(&out), want.iter().copied().collect::<Vec<_>>());
        // Replayed from the output's own metadata, and from a TOML file.
        ok(&haloflow(&[
            "run",
            s(&src),
            s(&again),
            "--quiet",
            "--chunks",
            "3,4,5",
            "--pipeline",
            s(&out),
        ]));
        assert_eq!(read_u8(&again), read_u8(&out));
        let file = dir.join("chain.toml");
        fs::write(
            &file,
            "[[ops]]\nop = \"gaussian\"\nsigma = [1.0, 0.5, 1.0]\nmode = \"wrap\"\n\n\
             [[ops]]\nop = \"threshold\"\nabove = 5.5\n\n\
             [[ops]]\nop = \"downsample\"\nfactor = [2]\nmethod = \"max\"\n",
        )
        .unwrap();
        ok(&haloflow(&[
            "run",
            s(&src),
            s(&toml),
            "--quiet",
            "--pipeline",
            s(&file),
        ]));
        assert_eq!(read_u8(&toml), read_u8(&out));
        // `info` plans a chain.
        let info = haloflow(&[
            "info",
            s(&src),
            "gaussian",
            "--sigma",
            "1",
            "+",
            "downsample",
            "--factor",
            "2",
        ]);
        ok(&info);
        assert!(String::from_utf8_lossy(&info.stdout).contains("output shape [4, 5, 5] float32"));
    }

    #[test]
    fn bad_chains_are_refused_before_any_output() {
        let dir = scratch("badchain");
        let src = input(&dir, "in.zarr");
        let out = dir.join("out.zarr");
        let run = |args: &[&str]| {
            let mut all = vec!["run", s(&src), s(&out)];
            all.extend_from_slice(args);
            haloflow(&all)
        };
        fails_with(&run(&[]), &["no ops"]);
        fails_with(
            &run(&["gaussian", "--sigma", "1", "+"]),
            &["op 2 of the chain is empty"],
        );
        fails_with(
            &run(&["gaussian", "--sigma", "1", "+", "+", "clip"]),
            &["op 2 of the chain is empty"],
        );
        fails_with(&run(&["blur", "--sigma", "1"]), &["op 1 ('blur')"]);
        fails_with(
            &run(&["gaussian", "--sigmaa", "1"]),
            &["op 1 ('gaussian')", "--sigmaa"],
        );
        fails_with(
            &run(&["gaussian", "--sigma", "1", "--device", "cpu"]),
            &["--device is a flag of the whole run"],
        );
        fails_with(
            &run(&["--pipeline", s(&src), "clip", "--min", "0", "--max", "1"]),
            &["not both"],
        );
        fails_with(
            &run(&["--pipeline", s(&dir.join("nope.json"))]),
            &["nope.json"],
        );
        assert!(!out.exists());
    }

    #[test]
    fn incompatible_output_is_left_intact() {
        let dir = scratch("incompatible");
        let src = input(&dir, "in.zarr");
        let dst = dir.join("out.zarr");
        let ok = haloflow(&["threshold", s(&src), s(&dst), "--above", "5", "--quiet"]);
        assert!(
            ok.status.success(),
            "{}",
            String::from_utf8_lossy(&ok.stderr)
        );
        let before = fs::read(dst.join("c/0/0/0")).unwrap();
        fails_with(
            &haloflow(&["threshold", s(&src), s(&dst), "--above", "6", "--quiet"]),
            &["out.zarr", "incompatible"],
        );
        assert_eq!(fs::read(dst.join("c/0/0/0")).unwrap(), before);
        let again = haloflow(&[
            "threshold",
            s(&src),
            s(&dst),
            "--above",
            "6",
            "--quiet",
            "--overwrite",
        ]);
        assert!(again.status.success());
    }

    #[test]
    fn a_corrupt_input_chunk_is_named_and_written_chunks_stay() {
        let dir = scratch("corrupt");
        let src = input(&dir, "in.zarr");
        fs::write(src.join("c/1/2/2"), b"garbage").unwrap();
        let dst = dir.join("out.zarr");
        let out = haloflow(&[
            "clip",
            s(&src),
            s(&dst),
            "--min",
            "1",
            "--max",
            "5",
            "--threads",
            "1",
            "--quiet",
        ]);
        fails_with(&out, &["corrupt chunk", "[1, 2, 2]"]);
        // Jobs before the corrupt chunk were written and stay readable; a rerun after
        // repairing the input resumes.
        assert!(dst.join("c/0/0/0").exists());
        let before = fs::read(dst.join("c/0/0/0")).unwrap();
        fs::remove_file(src.join("c/1/2/2")).unwrap();
        let again = haloflow(&[
            "clip",
            s(&src),
            s(&dst),
            "--min",
            "1",
            "--max",
            "5",
            "--quiet",
        ]);
        assert!(
            again.status.success(),
            "{}",
            String::from_utf8_lossy(&again.stderr)
        );
        assert_eq!(fs::read(dst.join("c/0/0/0")).unwrap(), before);
    }
}

#[test]
fn affine_transforms_match_scipy_whatever_the_chunking() {
    script_check("geometry.py", &["affine"]);
}

#[test]
fn zooms_match_scipy_including_the_output_shape() {
    script_check("geometry.py", &["zoom"]);
}

#[test]
fn rotations_match_scipy_with_and_without_reshape() {
    script_check("geometry.py", &["rotate"]);
}

#[test]
fn deskew_is_the_documented_affine_transform() {
    script_check("geometry.py", &["deskew"]);
}

#[test]
fn geometric_ops_chain_with_filters_and_resampling() {
    script_check("geometry.py", &["chains"]);
}

#[test]
fn a_rotation_in_parts_equals_one_run() {
    script_check("geometry.py", &["parts"]);
}

#[test]
fn bad_geometric_parameters_are_refused_in_one_line_naming_them() {
    script_check("geometry.py", &["bad"]);
}

#[test]
fn labels_of_random_masks_equal_scipy_numbering_included() {
    script_check("label.py", &["random"]);
}

#[test]
fn labels_follow_spirals_and_corners_across_chunk_faces() {
    script_check("label.py", &["shapes"]);
}

#[test]
fn labels_in_three_parts_and_a_merge_equal_one_process_byte_for_byte() {
    script_check("label.py", &["parts"]);
}

#[test]
fn a_chain_ending_in_label_labels_what_it_computes() {
    script_check("label.py", &["chains"]);
}

#[test]
fn bad_label_input_is_refused_in_one_line() {
    script_check("label.py", &["bad"]);
}

#[test]
fn sixty_four_bit_labels_equal_scipy_and_their_tables_skimage() {
    script_check("label.py", &["wide"]);
}

#[test]
fn object_tables_equal_skimage_regionprops() {
    script_check("label.py", &["objects"]);
}

#[test]
fn labels_inside_an_ome_zarr_image_are_valid_ngff_label_images() {
    script_check("label.py", &["ome"]);
}

#[test]
fn s3_to_s3_gaussian_equals_scipy_and_zarr_python_reads_it_from_the_bucket() {
    script_check("object_store.py", &["roundtrip", "http"]);
}

#[test]
fn init_three_parts_and_verify_on_s3_and_an_ome_pyramid_there() {
    script_check("object_store.py", &["parts", "ome"]);
}

#[test]
fn a_run_to_s3_killed_and_rerun_equals_an_uninterrupted_one_byte_for_byte() {
    script_check("object_store.py", &["resume"]);
}

#[test]
fn sharded_arrays_on_s3_are_read_by_range_and_written_one_object_per_shard() {
    script_check("object_store.py", &["shards"]);
}

#[test]
fn labels_on_s3_in_three_parts_and_a_merge_equal_scipy() {
    script_check("object_store.py", &["label"]);
}

#[test]
fn missing_buckets_arrays_and_bad_credentials_are_one_line_naming_the_url() {
    script_check("object_store.py", &["errors"]);
}
