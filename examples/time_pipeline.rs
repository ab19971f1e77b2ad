//! Times an in-memory pipeline on a `.npy` volume, for side-by-side runs with scipy
//! (`scripts/compare_scipy.py`).
//!
//! `cargo run --release --example time_pipeline -- IN.npy OUT.npy '<pipeline JSON>' [REPEATS]`
//! prints one line of JSON: `{"seconds": [...], "threads": N}` (after a second of
//! untimed warm-up runs; `RAYON_NUM_THREADS` sets the threads).

use std::fs::File;
use std::time::Instant;

use haloflow::Pipeline;
use ndarray::ArrayD;
use ndarray_npy::{ReadNpyExt, WriteNpyExt};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        return Err("usage: time_pipeline IN.npy OUT.npy PIPELINE_JSON [REPEATS]".into());
    }
    let input = ArrayD::<f32>::read_npy(File::open(&args[1])?)?;
    let pipeline: Pipeline = serde_json::from_str(&args[3])?;
    let repeats: usize = args.get(4).map(|r| r.parse()).transpose()?.unwrap_or(3);
    let mut seconds = Vec::new();
    // Untimed warm-up runs, for a second at least. Each result is dropped before the
    // next run, so that runs reuse memory rather than fault in fresh pages, which costs
    // more than the filter itself on some virtual machines (the kernel zeroing pages
    // the machine never touched).
    let warm_up = Instant::now();
    let mut result = Some(pipeline.apply(input.view())?);
    while warm_up.elapsed().as_secs_f64() < 1.0 {
        drop(result.take());
        result = Some(pipeline.apply(input.view())?);
    }
    for _ in 0..repeats {
        drop(result.take());
        let t = Instant::now();
        let out = pipeline.apply(input.view())?;
        seconds.push(t.elapsed().as_secs_f64());
        result = Some(out);
    }
    let out = result
        .ok_or("REPEATS must be at least 1")?
        .into_array::<f32>()?;
    out.write_npy(File::create(&args[2])?)?;
    println!(
        "{{\"seconds\": {seconds:?}, \"threads\": {}}}",
        rayon::current_num_threads()
    );
    Ok(())
}
