//! Tests of the parent module.

use super::*;

/// Every op's JSON, in the canonical form outputs record: each reads back to an op
/// that writes the same bytes, so recorded pipelines replay and record the same.
const CANONICAL: &[&str] = &[
    r#"{"op":"threshold","above":1.5}"#,
    r#"{"op":"clip","min":0.0,"max":9.0}"#,
    r#"{"op":"gaussian","sigma":[2.0,1.0],"mode":"constant","cval":3.0,"truncate":2.5}"#,
    r#"{"op":"convolve","kernel":{"shape":[2],"data":[1.0,-1.0]},"mode":"wrap","cval":0.0}"#,
    r#"{"op":"downsample","factor":[2],"method":"mean"}"#,
    r#"{"op":"upsample","factor":[2,3],"method":"linear"}"#,
    r#"{"op":"gaussian_laplace","sigma":[1.0],"mode":"nearest","cval":0.0,"truncate":4.0}"#,
    r#"{"op":"gaussian_gradient_magnitude","sigma":[1.0],"mode":"mirror","cval":0.0,"truncate":4.0}"#,
    r#"{"op":"uniform","size":[3],"mode":"reflect","cval":0.0}"#,
    r#"{"op":"median","size":[3],"mode":"reflect","cval":0.0}"#,
    r#"{"op":"percentile","percentile":-20.0,"footprint":{"shape":[2],"mask":[true,false]},"mode":"constant","cval":1.0}"#,
    r#"{"op":"minimum","size":[3,1],"mode":"reflect","cval":0.0}"#,
    r#"{"op":"maximum","size":[5],"footprint":{"shape":[1],"mask":[true]},"mode":"reflect","cval":0.0}"#,
    r#"{"op":"threshold_otsu"}"#,
    r#"{"op":"threshold_percentile","percentile":99.0}"#,
    r#"{"op":"normalize","percentiles":[1.0,99.8],"clip":true,"values":[2.0,7.0]}"#,
    r#"{"op":"project","axis":0,"method":"max","keepdims":false}"#,
    r#"{"op":"deconvolve","psf":{"shape":[3],"data":[0.25,0.5,0.25]},"iterations":5,"filter_epsilon":0.001,"clip":false}"#,
    r#"{"op":"deconvolve","psf_sigma":[2.0,1.0],"iterations":10,"clip":true}"#,
    r#"{"op":"deconvolve","psf_sigma":[1.0],"iterations":10,"clip":false,"overlap":16}"#,
    r#"{"op":"denoise","patch_size":5,"patch_distance":6,"h":0.8,"sigma":0.0,"fast_mode":true}"#,
    r#"{"op":"denoise","patch_size":3,"patch_distance":2,"h":1.5,"sigma":1.0,"fast_mode":false,"noise":{"gain":2.0,"offset":100.0,"read_noise":3.0}}"#,
    r#"{"op":"anscombe","gain":2.5,"offset":100.0,"read_noise":3.0}"#,
    r#"{"op":"inverse_anscombe","gain":1.0,"offset":0.0,"read_noise":0.0}"#,
    r#"{"op":"cast","dtype":"uint16"}"#,
    r#"{"op":"affine","matrix":[[1.0,0.5],[0.0,1.0]],"offset":[2.0,0.0],"order":1,"mode":"nearest","cval":0.0,"prefilter":true}"#,
    r#"{"op":"zoom","zoom":[1.7,0.6],"grid_mode":false,"order":3,"mode":"grid-constant","cval":2.0,"prefilter":true}"#,
    r#"{"op":"rotate","angle":30.0,"axes":[1,0],"reshape":true,"order":0,"mode":"constant","cval":0.0,"prefilter":false}"#,
    r#"{"op":"deskew","angle":31.8,"scan_step":0.4,"pixel_size":0.104}"#,
    r#"{"op":"deskew","angle":31.8,"scan_step":0.4,"pixel_size":0.104,"rotate":true}"#,
];

#[test]
fn the_json_of_every_op_reads_back_and_writes_the_same_bytes() {
    for json in CANONICAL {
        let op: Op = serde_json::from_str(json).unwrap();
        assert_eq!(&serde_json::to_string(&op).unwrap(), json);
    }
}

#[test]
fn mode_and_cval_default_to_scipys() {
    let op: Op = serde_json::from_str(r#"{"op":"median","size":[3]}"#).unwrap();
    assert_eq!(op, Op::median(&[3]));
    let op: Op = serde_json::from_str(r#"{"op":"gaussian","sigma":[2]}"#).unwrap();
    assert_eq!(op, Op::gaussian(&[2.0]));
    let op: Op = serde_json::from_str(r#"{"op":"percentile","percentile":5}"#).unwrap();
    assert_eq!(op, Op::percentile(5.0, &[]));
}
