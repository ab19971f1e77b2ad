//! Tests of the parent module.

use super::*;

/// A kernel's full source, parsed and validated by naga (wgpu's compiler).
fn module(kernel: Shader, method: u32, input: DType, output: DType) -> naga::Module {
    // Downsampling compiles its factors in (here 2 on the last two axes).
    // A rank filter: the median of 3 taps along the last axis.
    let median3: Vec<u32> = [3, 1, 3]
        .into_iter()
        .chain([0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 2])
        .chain([0, 1, 3, 1, 2, 1, 0, 1, 2])
        .collect();
    let compiled: &[u32] = match kernel {
        Shader::Downsample => &[1, 1, 1, 2, 2],
        Shader::Rank => &median3,
        // A 3-D patch of 3.
        Shader::NlMeans => &[0b11100, 1, 1, 1],
        _ => &[],
    };
    let text = source(kernel, method, input, output, compiled, &[]);
    let module = naga::front::wgsl::parse_str(&text)
        .unwrap_or_else(|e| panic!("{}: {}", kernel.name(), e.emit_to_string(&text)));
    // Geometric resampling computes in float64 (a device with SHADER_F64).
    let capabilities = match kernel {
        Shader::Geometry => naga::valid::Capabilities::FLOAT64,
        _ => naga::valid::Capabilities::empty(),
    };
    naga::valid::Validator::new(naga::valid::ValidationFlags::all(), capabilities)
        .validate(&module)
        .unwrap_or_else(|e| panic!("{}: {e:?}", kernel.name()));
    module
}

/// The marching stencil's generated code (dense 3-D kernels of over 64 taps), for
/// every input type and a packed output, parses and validates.
#[test]
fn a_marching_stencil_validates() {
    for input in DType::ALL.into_iter().filter(|d| d.size() < 8) {
        for output in [DType::F32, DType::U8] {
            let text = source(
                Shader::Stencil,
                0b11100,
                input,
                output,
                &[1, 1, 9, 5, 7],
                &[],
            );
            assert!(text.contains("const MARCH: u32 = 8u;"));
            let module = naga::front::wgsl::parse_str(&text)
                .unwrap_or_else(|e| panic!("{}", e.emit_to_string(&text)));
            naga::valid::Validator::new(
                naga::valid::ValidationFlags::all(),
                naga::valid::Capabilities::empty(),
            )
            .validate(&module)
            .unwrap_or_else(|e| panic!("{input} -> {output}: {e:?}"));
        }
    }
}

#[test]
fn every_parameter_struct_has_the_size_of_its_rust_twin() {
    use std::mem::size_of;
    let twins = [
        (
            Shader::Threshold,
            "ThresholdParams",
            size_of::<super::super::pointwise::ThresholdParams>(),
        ),
        (
            Shader::Clip,
            "ClipParams",
            size_of::<super::super::pointwise::ClipParams>(),
        ),
        (
            Shader::Cast,
            "CastParams",
            size_of::<super::super::pointwise::CastParams>(),
        ),
        (
            Shader::Stencil,
            "StencilParams",
            size_of::<super::super::stencil::StencilParams>(),
        ),
        (
            Shader::Downsample,
            "DownsampleParams",
            size_of::<super::super::resample::DownsampleParams>(),
        ),
        (
            Shader::Upsample,
            "UpsampleParams",
            size_of::<super::super::resample::UpsampleParams>(),
        ),
        (
            Shader::Normalize,
            "NormalizeParams",
            size_of::<super::super::pointwise::NormalizeParams>(),
        ),
        (
            Shader::Anscombe,
            "AnscombeParams",
            size_of::<super::super::pointwise::AnscombeParams>(),
        ),
        (
            Shader::Project,
            "ProjectParams",
            size_of::<super::super::pointwise::ProjectParams>(),
        ),
        (
            Shader::Rank,
            "RankParams",
            size_of::<super::super::rank::RankParams>(),
        ),
        (
            Shader::Accumulate,
            "AccumulateParams",
            size_of::<super::super::pointwise::AccumulateParams>(),
        ),
        (
            Shader::NlMeans,
            "NlMeansParams",
            size_of::<super::super::nlmeans::NlMeansParams>(),
        ),
        (
            Shader::Geometry,
            "GeometryParams",
            size_of::<super::super::geometry::GeometryParams>(),
        ),
    ];
    for (kernel, name, rust_size) in twins {
        let output = match kernel {
            Shader::Threshold => DType::U8,
            Shader::Clip
            | Shader::Downsample
            | Shader::Upsample
            | Shader::Stencil
            | Shader::Rank
            | Shader::Project
            | Shader::Normalize
            | Shader::Anscombe
            | Shader::Accumulate
            | Shader::NlMeans
            | Shader::Geometry => DType::F32,
            Shader::Cast => DType::U16,
        };
        let module = module(kernel, 0, DType::F32, output);
        let mut layouter = naga::proc::Layouter::default();
        layouter.update(module.to_ctx()).expect("layout");
        let (handle, _) = module
            .types
            .iter()
            .find(|(_, t)| t.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("{} declares no struct {name}", kernel.name()));
        assert_eq!(layouter[handle].size as usize, rust_size, "{name}");
    }
}

#[test]
fn every_method_and_element_type_compiles() {
    let types = [DType::U8, DType::I16, DType::U32, DType::I32, DType::F32];
    for input in types {
        for output in types {
            module(Shader::Cast, 0, input, output);
        }
        module(Shader::Threshold, 0, input, DType::U8);
        module(Shader::Clip, 0, input, input);
        for mask in [0b10000, 0b00100, 0b11100, 0b11111] {
            module(Shader::Stencil, mask, input, DType::F32);
        }
        // A 3x1x2 stencil written out tap by tap.
        let weights = (0..6).map(|i| (i as f32 * 0.25).to_bits());
        let compiled: Vec<u32> = [1, 1, 3, 1, 2].into_iter().chain(weights).collect();
        let text = source(Shader::Stencil, 0b10100, input, DType::F32, &compiled, &[]);
        assert!(text.contains("fn interior"));
        naga::front::wgsl::parse_str(&text).expect("an unrolled stencil parses");
        for m in DownMethod::ALL {
            module(Shader::Downsample, m as u32, input, input);
        }
        for m in UpMethod::ALL {
            module(Shader::Upsample, m as u32, input, input);
        }
        module(Shader::Rank, 0, input, input);
        module(Shader::Normalize, 0, input, DType::F32);
        module(Shader::Anscombe, 0, input, DType::F32);
        module(Shader::Anscombe, 1, input, DType::F32);
        module(Shader::Project, 1, input, input);
        module(Shader::NlMeans, 0, input, DType::F32);
        module(Shader::NlMeans, 1, input, DType::F32);
        for output in types {
            // Orders 0 and 1, axes 0 and 3 through, float or integer output.
            let float = if output.is_float() { 1 << 16 } else { 0 };
            module(Shader::Geometry, (0b1001 << 8) | float, input, output);
            module(Shader::Geometry, 1 | (0b1001 << 8) | float, input, output);
            // A zoom, on the grid.
            module(Shader::Geometry, 1 | (0b11 << 17) | float, input, output);
        }
    }
    module(Shader::Accumulate, 0, DType::F32, DType::F32);
}
