//! WGSL sources: the kernels in `shaders/`, each preceded by a generated prelude that
//! fixes the input and output element types, and by `shaders/common.wgsl`.

use crate::dtype::DType;
use crate::stage::{DownMethod, Offset, UpMethod};

/// The number of axes kernels see (`AXES` in the shaders): arrays of lower rank get
/// leading axes of extent 1, so that shaders index with five scalars instead of
/// looping over axes.
pub(crate) const AXES: usize = crate::MAX_NDIM;

/// Invocations per workgroup (`WORKGROUP` in the shaders).
pub(super) const WORKGROUP: u32 = 128;

/// A pointwise stage fused into the store of the stencil before it: the stencil's f32
/// result goes through these before it is written, so that a Gaussian followed by a
/// threshold writes (and reads back) u8. The values are compiled into the pipeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum Fused {
    /// Clip to f32 bounds (as bits; NaN passes through).
    Clip {
        /// The lower bound's bits.
        lo: u32,
        /// The upper bound's bits.
        hi: u32,
    },
    /// `x > above` as u8, ending the fused chain (see `gpu/pointwise.rs` `threshold_in`).
    Threshold {
        /// 0: compare; 1: always 1; 2: always 0.
        always: u32,
        /// The threshold's f32 bits.
        above: u32,
    },
    /// The crate's cast from f32 to the output type, ending the fused chain.
    Cast,
}

/// The kernels, one per file in `shaders/`, named after their CPU twins.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Shader {
    Threshold,
    Clip,
    Cast,
    Stencil,
    Downsample,
    Upsample,
    Rank,
    Normalize,
    Anscombe,
    Project,
    Accumulate,
    NlMeans,
    Geometry,
}

impl Shader {
    /// The shader file's name.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Shader::Threshold => "threshold.wgsl",
            Shader::Clip => "clip.wgsl",
            Shader::Cast => "cast.wgsl",
            Shader::Stencil => "stencil.wgsl",
            Shader::Downsample => "downsample.wgsl",
            Shader::Upsample => "upsample.wgsl",
            Shader::Rank => "rank.wgsl",
            Shader::Normalize => "normalize.wgsl",
            Shader::Anscombe => "anscombe.wgsl",
            Shader::Project => "project.wgsl",
            Shader::Accumulate => "accumulate.wgsl",
            Shader::NlMeans => "nlmeans.wgsl",
            Shader::Geometry => "geometry.wgsl",
        }
    }

    fn text(self) -> &'static str {
        match self {
            Shader::Threshold => include_str!("../../shaders/threshold.wgsl"),
            Shader::Clip => include_str!("../../shaders/clip.wgsl"),
            Shader::Cast => include_str!("../../shaders/cast.wgsl"),
            Shader::Stencil => include_str!("../../shaders/stencil.wgsl"),
            Shader::Downsample => include_str!("../../shaders/downsample.wgsl"),
            Shader::Upsample => include_str!("../../shaders/upsample.wgsl"),
            Shader::Rank => include_str!("../../shaders/rank.wgsl"),
            Shader::Normalize => include_str!("../../shaders/normalize.wgsl"),
            Shader::Anscombe => include_str!("../../shaders/anscombe.wgsl"),
            Shader::Project => include_str!("../../shaders/project.wgsl"),
            Shader::Accumulate => include_str!("../../shaders/accumulate.wgsl"),
            Shader::NlMeans => include_str!("../../shaders/nlmeans.wgsl"),
            Shader::Geometry => include_str!("../../shaders/geometry.wgsl"),
        }
    }
}

const COMMON: &str = include_str!("../../shaders/common.wgsl");

/// The entry point of the kernels computed one output word at a time.
const PER_WORD: &str = include_str!("../../shaders/per_word.wgsl");

/// The complete source of `kernel` reading `input` and writing `output` elements
/// (neither may be float64: those stages run on the host). `method` becomes the
/// constant `METHOD` (the resampling method), so that each pipeline holds one method's
/// code only, with no branch on a runtime value.
///
/// `compiled_in` holds values compiled into the code: for the stencil, its five extents
/// and its weights' bits, from which the walk over the taps inside the array is
/// written out tap by tap (`fn interior`), weights as constants; empty, the stencil
/// loops over its taps with the weights read from the table buffer. For downsampling,
/// the five factors (`F0` ... `F4`), the extents of a whole window.
pub(crate) fn source(
    kernel: Shader,
    method: u32,
    input: DType,
    output: DType,
    compiled_in: &[u32],
    fused: &[Fused],
) -> String {
    // The stencil has its own entry point, on a grid shaped like its output.
    let entry = match kernel {
        Shader::Stencil => format!(
            "{}\n{}\n{}",
            interior(compiled_in),
            march(compiled_in),
            epilogue(fused)
        ),
        Shader::Downsample => format!("{PER_WORD}\n{}", factors(compiled_in)),
        Shader::Rank => format!("{PER_WORD}\n{}", selection(compiled_in)),
        Shader::NlMeans => format!("{PER_WORD}\n{}", patches(compiled_in)),
        _ => PER_WORD.to_string(),
    };
    format!(
        "// {} for {input} -> {output}\n{}const METHOD: u32 = {method}u;\n{}\n{}\n{}\n{COMMON}\n{entry}\n{}",
        kernel.name(),
        constants(),
        input_prelude(input),
        output_prelude(output),
        pair_prelude(input, output),
        kernel.text()
    )
}

/// The stencil's `fn epilogue(x: f32) -> Out`: its f32 result through the fused
/// pointwise stages (clips, then a threshold or the cast to `Out`), as the CPU runs
/// them one after the other.
fn epilogue(fused: &[Fused]) -> String {
    let mut text = String::from("fn epilogue(x: f32) -> Out {\n    var v = x;\n");
    let f32_const = |bits: u32| format!("bitcast<f32>({bits:#010x}u)");
    for f in fused {
        match *f {
            Fused::Clip { lo, hi } => {
                let (lo, hi) = (f32_const(lo), f32_const(hi));
                text += &format!("    v = select(select(v, {hi}, v > {hi}), {lo}, v < {lo});\n");
            }
            Fused::Threshold { always, above } => {
                let value = match always {
                    1 => "1u".to_string(),
                    2 => "0u".to_string(),
                    _ => format!("select(0u, 1u, v > {})", f32_const(above)),
                };
                return text + &format!("    return {value};\n}}\n");
            }
            Fused::Cast => break,
        }
    }
    text + "    return out_from_f32(v);\n}\n"
}

/// A rank filter's generated code (see `shaders/rank.wgsl`) from `compiled_in`: the
/// number of taps, the rank and the number of comparators; each tap's position in the
/// footprint (five values); each comparator's wires and which of its results are
/// needed (bit 0: the smaller, bit 1: the larger). Comparators `select` on
/// `below` (floats in their bits' total order), as the CPU's do on keys, so that
/// zeros of either sign, and NaNs, end on the same wires.
fn selection(compiled_in: &[u32]) -> String {
    let (taps, rank, count) = (
        compiled_in[0] as usize,
        compiled_in[1],
        compiled_in[2] as usize,
    );
    let positions = &compiled_in[3..3 + AXES * taps];
    let comparators = &compiled_in[3 + AXES * taps..];
    assert_eq!(comparators.len(), 3 * count, "three words per comparator");
    let mut text = format!("const TAPS: u32 = {taps}u;\nconst RANK: u32 = {rank}u;\n");
    text += "fn gather(v: ptr<function, array<In, TAPS>>, o: u32) {\n";
    for a in 0..AXES - 1 {
        text += &format!("    let s{a} = P.strides[{a}];\n");
    }
    for (t, k) in positions.chunks(AXES).enumerate() {
        let mut offset = String::from("o");
        for (a, &ka) in k.iter().enumerate() {
            match (ka, a == AXES - 1) {
                (0, _) => {}
                (_, true) => offset += &format!(" + {ka}u"),
                (_, false) => offset += &format!(" + {ka}u * s{a}"),
            }
        }
        text += &format!("    (*v)[{t}] = load({offset});\n");
    }
    text += "}\nfn gather_edge(v: ptr<function, array<In, TAPS>>, t0: u32, t1: u32, t2: u32, t3: u32, t4: u32) {\n";
    for (t, k) in positions.chunks(AXES).enumerate() {
        let args: Vec<String> = k
            .iter()
            .enumerate()
            .map(|(a, ka)| format!("t{a} + {ka}u"))
            .collect();
        text += &format!("    (*v)[{t}] = tap({});\n", args.join(", "));
    }
    text += "}\nfn network(v: ptr<function, array<In, TAPS>>) {\n";
    for c in comparators.chunks(3) {
        let (lo, hi, keep) = (c[0], c[1], c[2]);
        text += &format!("    {{ let a = (*v)[{lo}]; let b = (*v)[{hi}]; let less = below(b, a);");
        if keep & 1 != 0 {
            text += &format!(" (*v)[{lo}] = select(a, b, less);");
        }
        if keep & 2 != 0 {
            text += &format!(" (*v)[{hi}] = select(b, a, less);");
        }
        text += " }\n";
    }
    text + "}\n"
}

/// Downsampling's factors as the constants `F0` ... `F4`.
fn factors(compiled_in: &[u32]) -> String {
    assert_eq!(compiled_in.len(), AXES, "five factors");
    compiled_in
        .iter()
        .enumerate()
        .map(|(a, f)| format!("const F{a}: u32 = {f}u;\n"))
        .collect()
}

/// The constants the shaders share with the host, generated from the Rust values so
/// that the two cannot drift: axes, workgroup size, the table entry for `cval`, and
/// every resampling method's number.
fn constants() -> String {
    let mut text = format!(
        "const AXES: u32 = {AXES}u;\nconst WORKGROUP: u32 = {WORKGROUP}u;\nconst NONE: u32 = {}u;\n",
        <u32 as Offset>::NONE
    );
    for m in DownMethod::ALL {
        text += &format!("const {}: u32 = {}u;\n", m.wgsl_name(), m as u32);
    }
    for m in UpMethod::ALL {
        text += &format!("const {}: u32 = {}u;\n", m.wgsl_name(), m as u32);
    }
    text
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
        DType::U64 | DType::I64 | DType::F64 => unreachable!("64-bit stages run on the host"),
    };
    format!(
        "alias In = {ty};\n\
         const IN_FLOAT: bool = {float};\n\
         const IN_NARROW: bool = {narrow};\n\
         fn load(i: u32) -> In {{ return {load}; }}\n\
         fn in_f32(x: In) -> f32 {{ return {to_f32}; }}\n\
         fn in_key(x: In) -> u32 {{ return {key}; }}\n\
         fn in_is_nan(x: In) -> bool {{ return {nan}; }}\n",
        float = d.is_float(),
        narrow = matches!(d, DType::U8 | DType::U16),
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
        DType::U64 | DType::I64 | DType::F64 => unreachable!("64-bit stages run on the host"),
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
pub(super) fn int_range(d: DType) -> (i64, i64) {
    assert!(
        !matches!(d, DType::U64 | DType::I64),
        "64-bit stages run on the host"
    );
    let (lo, hi) = d.integer_range().expect("an integer type");
    (lo as i64, hi as i64)
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

/// The entry point's helper `fn interior(o: u32) -> f32`, the sum over the taps of an
/// output inside the array whose first tap is at `o`: written out tap by tap in C
/// order, weights as constants, from `compiled_in` (the five extents, then the
/// weights' bits); or, given nothing, the loop `interior_loop` of `stencil.wgsl`.
fn interior(compiled_in: &[u32]) -> String {
    if compiled_in.len() <= AXES {
        return "fn interior(o: u32) -> f32 {\n    return interior_loop(o);\n}\n".to_string();
    }
    let (shape, weights) = compiled_in.split_at(AXES);
    let mut text = String::from("fn interior(o: u32) -> f32 {\n");
    for (a, _) in shape[..AXES - 1]
        .iter()
        .enumerate()
        .filter(|(_, n)| **n > 1)
    {
        text += &format!("    let s{a} = P.strides[{a}];\n");
    }
    text += "    var acc = 0.0;\n";
    let shape: Vec<usize> = shape.iter().map(|&n| n as usize).collect();
    for (t, bits) in weights.iter().enumerate() {
        let k = crate::region::unravel(t, &shape);
        let mut offset = String::from("o");
        for (a, &ka) in k.iter().enumerate() {
            match (ka, a == AXES - 1) {
                (0, _) => {}
                (_, true) => offset += &format!(" + {ka}u"),
                (1, false) => offset += &format!(" + s{a}"),
                (_, false) => offset += &format!(" + {ka}u * s{a}"),
            }
        }
        text += &format!("    acc = acc + bitcast<f32>({bits:#010x}u) * in_f32(load({offset}));\n");
    }
    text + "    return acc;\n}\n"
}

/// Outputs a marching invocation computes along axis 2 (`fn marched` of
/// `stencil.wgsl`).
pub(super) const MARCH: usize = 8;

/// The stencil's `const MARCH` and `fn march`: given the five extents alone in
/// `compiled_in` (a dense stencil over the last three axes, its weights in the table
/// buffer), the [`MARCH`] outputs along axis 2 whose taps there start at offset `o`
/// (with those of axes 0 and 1), stored at `dst[at + j * step]`. Along axes 3 and 4 a
/// tap's offset is the first tap's (`fy`, `fx`) plus its index times the stride, or,
/// where that first is `NONE` (near the edge), read from the tap table at `ty`, `tx`
/// (`NONE` there: `cval`). For each tap along the last two axes (a loop) the column of
/// inputs along axis 2 is loaded once, with the weights of the column, and each output
/// adds its taps of the column: its sum runs over the last two axes outermost, so it
/// differs from the CPU's C order by f32 rounding only. Otherwise `MARCH` is 0 and
/// `march` does nothing.
fn march(compiled_in: &[u32]) -> String {
    let signature = "fn march(o: u32, fy: u32, ty: u32, fx: u32, tx: u32, at: u32, step: u32)";
    if compiled_in.len() != AXES {
        return format!("const MARCH: u32 = 0u;\n{signature} {{}}\n");
    }
    let (s2, s3, s4) = (compiled_in[2] as usize, compiled_in[3], compiled_in[4]);
    let n = MARCH;
    let column = n + s2 - 1;
    let mut text = format!(
        "const MARCH: u32 = {n}u;\n{signature} {{\n    \
         let s2 = P.strides[2];\n    let s3 = P.strides[3];\n"
    );
    for j in 0..n {
        text += &format!("    var acc{j} = 0.0;\n");
    }
    text += &format!(
        "    for (var k3 = 0u; k3 < {s3}u; k3++) {{\n        \
         var r = fy + k3 * s3;\n        \
         if (fy == NONE) {{ r = tab[ty + k3]; }}\n        \
         for (var k4 = 0u; k4 < {s4}u; k4++) {{\n            \
         var q = fx + k4;\n            \
         if (fx == NONE) {{ q = tab[tx + k4]; }}\n            \
         let inside = r != NONE && q != NONE;\n            \
         let c = o + r + q;\n            \
         let wb = P.weights + k3 * {s4}u + k4;\n"
    );
    for dz in 0..s2 {
        text += &format!(
            "            let w{dz} = bitcast<f32>(tab[wb + {}u]);\n",
            dz as u32 * s3 * s4
        );
    }
    // Each input of the column once, added into the outputs that read it (in order of
    // their taps along axis 2).
    for p in 0..column {
        text += &format!(
            "            let v{p} = select(P.cval, in_f32(load(c + {p}u * s2)), inside);\n"
        );
        for j in p.saturating_sub(s2 - 1)..=p.min(n - 1) {
            text += &format!("            acc{j} = acc{j} + w{} * v{p};\n", p - j);
        }
    }
    text += "        }\n    }\n";
    for j in 0..n {
        text += &format!("    dst[at + {j}u * step] = out_pack(epilogue(acc{j}), 0u);\n");
    }
    text + "}\n"
}

/// Non-local means' patch sums, written out offset by offset (`shaders/nlmeans.wgsl`):
/// `compiled_in` is the mask of filtered axes (bit `a` of five), then the patch's
/// radius on axes 2, 3 and 4. Fast mode's box spans `-r + 1 ..= r` on a filtered axis,
/// classic mode's patch `-r ..= r`, each `0` on the others.
fn patches(compiled_in: &[u32]) -> String {
    let mask = compiled_in[0];
    let filtered = |k: usize| mask >> (k + 2) & 1 == 1;
    let radius = |k: usize| compiled_in[1 + k] as i32;
    let offsets = |k: usize, first: i32| -> Vec<i32> {
        if filtered(k) {
            (first..=radius(k)).collect()
        } else {
            vec![0]
        }
    };
    let plus = |v: i32| match v {
        0 => String::new(),
        v if v < 0 => format!(" - {}", -v),
        v => format!(" + {v}"),
    };
    let mut text = String::from(
        "fn box_total(c0: i32, c1: i32, c2: i32, c3: i32, c4: i32, t2: i32, t3: i32, t4: i32) -> f32 {\n    var total = 0.0;\n    var d = 0.0;\n",
    );
    let boxes: Vec<Vec<i32>> = (0..3).map(|k| offsets(k, 1 - radius(k))).collect();
    for &b2 in &boxes[0] {
        for &b3 in &boxes[1] {
            for &b4 in &boxes[2] {
                let (b2, b3, b4) = (plus(b2), plus(b3), plus(b4));
                text += &format!(
                    "    d = value(c0, c1, c2{b2}, c3{b3}, c4{b4}) - value(c0, c1, c2 + t2{b2}, c3 + t3{b3}, c4 + t4{b4});\n    total = total + d * d;\n"
                );
            }
        }
    }
    text += "    return total;\n}\n\n";
    text += "fn patch_distance(c0: i32, c1: i32, c2: i32, c3: i32, c4: i32, p2: i32, p3: i32, p4: i32) -> f32 {\n    var distance = 0.0;\n    var d = 0.0;\n";
    let patch: Vec<Vec<i32>> = (0..3).map(|k| offsets(k, -radius(k))).collect();
    let cut = "    if (distance > CUTOFF) {\n        return CUT;\n    }\n";
    let mut k = 0;
    for &a2 in &patch[0] {
        if patch[0].len() > 1 {
            text += cut;
        }
        for &a3 in &patch[1] {
            if patch[0].len() == 1 {
                text += cut;
            }
            for &a4 in &patch[2] {
                let (a2, a3, a4) = (plus(a2), plus(a3), plus(a4));
                text += &format!(
                    "    d = value(c0, c1, c2{a2}, c3{a3}, c4{a4}) - value(c0, c1, p2{a2}, p3{a3}, p4{a4});\n    distance = distance + bitcast<f32>(tab[P.kernel + {k}u]) * (d * d - P.var2);\n"
                );
                k += 1;
            }
        }
    }
    text + "    return distance;\n}\n"
}

#[cfg(test)]
mod tests;
