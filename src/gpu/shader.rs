//! WGSL sources: the kernels in `shaders/`, each preceded by a generated prelude that
//! fixes the input and output element types, and by `shaders/common.wgsl`.

use crate::dtype::DType;

/// The kernels, one per file in `shaders/`, named after their CPU twins.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Kernel {
    Threshold,
    Clip,
    Cast,
    Stencil,
    Downsample,
    Upsample,
}

impl Kernel {
    /// The shader file's name.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kernel::Threshold => "threshold.wgsl",
            Kernel::Clip => "clip.wgsl",
            Kernel::Cast => "cast.wgsl",
            Kernel::Stencil => "stencil.wgsl",
            Kernel::Downsample => "downsample.wgsl",
            Kernel::Upsample => "upsample.wgsl",
        }
    }

    fn text(self) -> &'static str {
        match self {
            Kernel::Threshold => include_str!("../../shaders/threshold.wgsl"),
            Kernel::Clip => include_str!("../../shaders/clip.wgsl"),
            Kernel::Cast => include_str!("../../shaders/cast.wgsl"),
            Kernel::Stencil => include_str!("../../shaders/stencil.wgsl"),
            Kernel::Downsample => include_str!("../../shaders/downsample.wgsl"),
            Kernel::Upsample => include_str!("../../shaders/upsample.wgsl"),
        }
    }
}

const COMMON: &str = include_str!("../../shaders/common.wgsl");

/// The complete source of `kernel` reading `input` and writing `output` elements
/// (neither may be float64: those stages run on the host). `method` becomes the
/// constant `METHOD` (the resampling method), so that each pipeline holds one method's
/// code only, with no branch on a runtime value.
pub(crate) fn source(kernel: Kernel, method: u32, input: DType, output: DType) -> String {
    format!(
        "// {} for {input} -> {output}\nconst METHOD: u32 = {method}u;\n{}\n{}\n{}\n{COMMON}\n{}",
        kernel.name(),
        input_prelude(input),
        output_prelude(output),
        pair_prelude(input, output),
        kernel.text()
    )
}

/// `In`, `load(i)` (unpacking), and the input conversions.
fn input_prelude(d: DType) -> String {
    let (ty, load, to_f32, key, nan) = match d {
        DType::U8 => (
            "u32",
            "(src[i >> 2u] >> ((i & 3u) * 8u)) & 0xffu",
            "f32(x)",
            "x",
            "false",
        ),
        DType::I8 => (
            "i32",
            "bitcast<i32>(src[i >> 2u] << (24u - (i & 3u) * 8u)) >> 24u",
            "f32(x)",
            "bitcast<u32>(x) ^ 0x80000000u",
            "false",
        ),
        DType::U16 => (
            "u32",
            "(src[i >> 1u] >> ((i & 1u) * 16u)) & 0xffffu",
            "f32(x)",
            "x",
            "false",
        ),
        DType::I16 => (
            "i32",
            "bitcast<i32>(src[i >> 1u] << (16u - (i & 1u) * 16u)) >> 16u",
            "f32(x)",
            "bitcast<u32>(x) ^ 0x80000000u",
            "false",
        ),
        DType::U32 => ("u32", "src[i]", "u32_to_f32(x)", "x", "false"),
        DType::I32 => (
            "i32",
            "bitcast<i32>(src[i])",
            "i32_to_f32(x)",
            "bitcast<u32>(x) ^ 0x80000000u",
            "false",
        ),
        DType::F32 => (
            "f32",
            "bitcast<f32>(src[i])",
            "x",
            "bitcast<u32>(x)",
            "f32_is_nan(x)",
        ),
        DType::F64 => unreachable!("float64 stages run on the host"),
    };
    format!(
        "alias In = {ty};\n\
         const IN_FLOAT: bool = {float};\n\
         fn load(i: u32) -> In {{ return {load}; }}\n\
         fn in_f32(x: In) -> f32 {{ return {to_f32}; }}\n\
         fn in_key(x: In) -> u32 {{ return {key}; }}\n\
         fn in_is_nan(x: In) -> bool {{ return {nan}; }}\n",
        float = d.is_float(),
    )
}

/// `Out`, packing, and the output conversions.
fn output_prelude(d: DType) -> String {
    let (ty, per_word, pack, from_key, from_f32) = match d {
        DType::U8 => (
            "u32",
            4,
            "(x & 0xffu) << (8u * j)",
            "k",
            "f32_to_u32_sat(x, 255.0)",
        ),
        DType::I8 => (
            "i32",
            4,
            "(bitcast<u32>(x) & 0xffu) << (8u * j)",
            "bitcast<i32>(k ^ 0x80000000u)",
            "f32_to_i32_sat(x, -128.0, 127.0)",
        ),
        DType::U16 => (
            "u32",
            2,
            "(x & 0xffffu) << (16u * j)",
            "k",
            "f32_to_u32_sat(x, 65535.0)",
        ),
        DType::I16 => (
            "i32",
            2,
            "(bitcast<u32>(x) & 0xffffu) << (16u * j)",
            "bitcast<i32>(k ^ 0x80000000u)",
            "f32_to_i32_sat(x, -32768.0, 32767.0)",
        ),
        DType::U32 => ("u32", 1, "x", "k", "f32_to_u32_full(x)"),
        DType::I32 => (
            "i32",
            1,
            "bitcast<u32>(x)",
            "bitcast<i32>(k ^ 0x80000000u)",
            "f32_to_i32_full(x)",
        ),
        DType::F32 => ("f32", 1, "bitcast<u32>(x)", "bitcast<f32>(k)", "x"),
        DType::F64 => unreachable!("float64 stages run on the host"),
    };
    format!(
        "alias Out = {ty};\n\
         const OUT_PER_WORD: u32 = {per_word}u;\n\
         fn out_pack(x: Out, j: u32) -> u32 {{ return {pack}; }}\n\
         fn out_from_key(k: u32) -> Out {{ return {from_key}; }}\n\
         fn out_from_f32(x: f32) -> Out {{ return {from_f32}; }}\n"
    )
}

/// The integer range of a non-float type.
fn int_range(d: DType) -> (i64, i64) {
    match d {
        DType::U8 => (0, u8::MAX as i64),
        DType::U16 => (0, u16::MAX as i64),
        DType::U32 => (0, u32::MAX as i64),
        DType::I8 => (i8::MIN as i64, i8::MAX as i64),
        DType::I16 => (i16::MIN as i64, i16::MAX as i64),
        DType::I32 => (i32::MIN as i64, i32::MAX as i64),
        DType::F32 | DType::F64 => unreachable!("not an integer type"),
    }
}

/// `cast_value` (the crate's cast rule from `In` to `Out`), and for `In == Out`,
/// `out_from_in_nearest` (a copy, as the CPU's `0 + x * 1` gives it).
fn pair_prelude(input: DType, output: DType) -> String {
    let cast = if input == DType::F32 {
        "out_from_f32(x)".to_string()
    } else if output == DType::F32 {
        "in_f32(x)".to_string()
    } else {
        let (lo, hi) = int_range(output);
        let signed_in = matches!(input, DType::I8 | DType::I16 | DType::I32);
        match (signed_in, lo < 0) {
            (false, false) => format!("min(x, {hi}u)"),
            (false, true) => format!("i32(min(x, {hi}u))"),
            (true, false) => format!("min(u32(max(x, 0)), {hi}u)"),
            (true, true) => format!("clamp(x, {} - 1, {hi})", lo + 1),
        }
    };
    let mut text = format!("fn cast_value(x: In) -> Out {{ return {cast}; }}\n");
    if input == output {
        let nearest = if input == DType::F32 {
            "select(x, 0.0, bitcast<u32>(x) == 0x80000000u)"
        } else {
            "x"
        };
        text += &format!("fn out_from_in_nearest(x: In) -> Out {{ return {nearest}; }}\n");
    }
    text
}
