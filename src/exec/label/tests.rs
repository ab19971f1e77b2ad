//! Tests of the parent module.

use super::*;
use crate::cpu::label::tests::{flood, random_mask};

/// The flat indices of `region` in an array of `shape`, C order.
fn indices(shape: &[usize], region: &Region) -> Vec<usize> {
    let mut out = vec![0usize];
    for (a, &n) in shape.iter().enumerate() {
        out = out
            .iter()
            .flat_map(|&i| region.range(a).map(move |v| i * n + v))
            .collect();
    }
    out
}

fn gather(data: &[u8], shape: &[usize], region: &Region) -> Vec<u8> {
    indices(shape, region)
        .into_iter()
        .map(|i| data[i])
        .collect()
}

fn scatter(out: &mut [u32], shape: &[usize], region: &Region, values: &[u32]) {
    for (i, &v) in indices(shape, region).into_iter().zip(values) {
        out[i] = v;
    }
}

fn labels_of(mask: &[bool], shape: &[usize], chunk: &[usize], s: &Structure) -> Vec<u32> {
    let data: Vec<u8> = mask.iter().map(|&m| u8::from(m)).collect();
    let labelling = Labelling {
        grid: Grid::new(shape, chunk).unwrap(),
        structure: s.clone(),
        foreground: Foreground::NonZero,
        dtype: DType::U32,
    };
    let chunks = labelling.grid.num_chunks();
    let state = MemoryState::new(chunks);
    let dir = std::env::temp_dir().join(format!("haloflow-label-{}", std::process::id()));
    let files = DirState::new(&dir).unwrap();
    let read = |c: usize| {
        let region = labelling.region(c);
        let block = crate::block::Block::new(
            region.sets(),
            std::borrow::Cow::Owned(gather(&data, shape, &region)),
        );
        block.into_any()
    };
    for c in 0..chunks {
        let s = labelling.summarise(c, &read(c)).unwrap();
        state.put_summary(c, &s).unwrap();
        files.put_summary(c, &s).unwrap();
        assert_eq!(*files.summary(c).unwrap().unwrap(), s);
    }
    let count = labelling.merge(&state).unwrap();
    let mut out = vec![0u32; mask.len()];
    for c in 0..chunks {
        let n = state.numbers(c).unwrap();
        files.put_numbers(c, &n).unwrap();
        assert_eq!(*files.numbers(c).unwrap(), *n);
        let block = labelling.relabel(&read(c), &n).unwrap();
        scatter(
            &mut out,
            shape,
            &labelling.region(c),
            &block.typed::<u32>().data,
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(u64::from(out.iter().copied().max().unwrap_or(0)), count);
    out
}

#[test]
fn chunked_labels_equal_a_flood_fill() {
    for (shape, chunk) in [
        (vec![40], vec![7]),
        (vec![19, 23], vec![4, 5]),
        (vec![9, 10, 11], vec![3, 4, 2]),
        (vec![4, 5, 6, 7], vec![2, 3, 2, 3]),
    ] {
        let n: usize = shape.iter().product();
        for (i, density) in [0.1, 0.3, 0.6].into_iter().enumerate() {
            let mask = random_mask(n, density, 7 + i as u64);
            for k in 1..=shape.len() {
                let s = Structure::connectivity(shape.len(), k).unwrap();
                let want = flood(&mask, &shape, &s);
                assert_eq!(
                    labels_of(&mask, &shape, &chunk, &s),
                    want,
                    "{shape:?} in {chunk:?}, density {density}, connectivity {k}"
                );
            }
        }
    }
}

#[test]
fn too_many_objects_for_the_type_is_refused() {
    let mask: Vec<u8> = (0..600).map(|i| (i % 2) as u8).collect();
    let x = ndarray::ArrayD::from_shape_vec(vec![600], mask).unwrap();
    let s = Structure::connectivity(1, 1).unwrap();
    let e = memory::label_array(x.view().into(), &s, Foreground::NonZero, DType::U8).unwrap_err();
    assert!(
        e.to_string().contains("300 objects do not fit in uint8"),
        "{e}"
    );
    let (labels, count) =
        memory::label_array(x.view().into(), &s, Foreground::NonZero, DType::U16).unwrap();
    assert_eq!(count, 300);
    assert_eq!(labels.into_array::<u16>().unwrap()[599], 300);
}

#[test]
fn bands_tile_the_rows_in_raster_order() {
    let band = |shape: &[usize], chunk: &[usize]| -> Vec<(std::ops::Range<usize>, u64, usize)> {
        let labelling = Labelling {
            grid: Grid::new(shape, chunk).unwrap(),
            structure: Structure::connectivity(shape.len(), 1).unwrap(),
            foreground: Foreground::NonZero,
            dtype: DType::U32,
        };
        labelling
            .bands()
            .into_iter()
            .map(|b| (b.chunks, b.first_row, b.rows))
            .collect()
    };
    // 3 × 2 × 2 chunks: bands of 4 chunks, 4 (then 2) planes of 7 rows.
    assert_eq!(
        band(&[10, 7, 9], &[4, 5, 5]),
        vec![(0..4, 0, 28), (4..8, 28, 28), (8..12, 56, 14)]
    );
    assert_eq!(band(&[10], &[4]), vec![(0..3, 0, 1)]);
    assert_eq!(
        band(&[5, 9], &[2, 4]),
        vec![(0..3, 0, 2), (3..6, 2, 2), (6..9, 4, 1)]
    );
}

#[test]
fn sixty_four_bit_labels_equal_the_narrower_ones() {
    let shape = [9, 10, 11];
    let mask = random_mask(shape.iter().product(), 0.15, 21);
    let mask: Vec<u8> = mask.into_iter().map(u8::from).collect();
    let x = ndarray::ArrayD::from_shape_vec(&shape[..], mask).unwrap();
    let s = Structure::connectivity(3, 2).unwrap();
    let label = |d| memory::label_array(x.view().into(), &s, Foreground::NonZero, d).unwrap();
    let (narrow, n) = label(DType::U32);
    let narrow: Vec<u64> = narrow
        .into_array::<u32>()
        .unwrap()
        .iter()
        .map(|&v| v.into())
        .collect();
    assert!(n > 10);
    let (wide, m) = label(DType::U64);
    assert_eq!(
        (
            wide.into_array::<u64>()
                .unwrap()
                .into_raw_vec_and_offset()
                .0,
            m
        ),
        (narrow.clone(), n)
    );
    let (signed, m) = label(DType::I64);
    let signed: Vec<u64> = signed
        .into_array::<i64>()
        .unwrap()
        .iter()
        .map(|&v| v as u64)
        .collect();
    assert_eq!((signed, m), (narrow, n));
}
