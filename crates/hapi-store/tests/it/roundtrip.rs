//! Every column kind survives append + scan, with any column subset.

use hapi_core::{Column, Nanos};

use crate::common::{append_split, assert_same, collect, each_store, full_layout, records, scan_all, select};

#[test]
fn every_column_kind_round_trips_with_column_subsets() {
    let layout = full_layout();
    let times: Vec<Nanos> = (0..40).map(|i| i * 10).collect();
    let all = records(&layout, &times);
    each_store(7, |store| {
        store.open_dataset("ds", &layout).unwrap();
        // Batch sizes straddle block edges, including an empty batch.
        assert_eq!(append_split(store, "ds", &layout, &times, &[1, 6, 7, 13, 0]), 40);
        let subsets: [&[usize]; 9] = [&[], &[0], &[1], &[2], &[3], &[4], &[1, 3], &[0, 1, 2, 3, 4], &[4, 0]];
        for columns in subsets {
            let got = scan_all(store, "ds", columns, Nanos::MIN, Nanos::MAX);
            assert_same(&got, &select(&all, columns), &format!("{store:?} columns {columns:?}"));
        }
    });
}

#[test]
fn multibyte_text_keeps_its_bytes_and_padding() {
    let layout = full_layout();
    let times = [1, 2, 3, 4, 5, 6, 7];
    each_store(3, |store| {
        store.open_dataset("ds", &layout).unwrap();
        append_split(store, "ds", &layout, &times, &[]);
        let got = scan_all(store, "ds", &[3], 0, 10);
        let texts: Vec<String> = (0..times.len())
            .map(|i| String::from_utf8(got.columns[0].text(i).unwrap().to_vec()).unwrap())
            .collect();
        assert_eq!(texts, ["a", "héllo", "日本語", "Ünïcødé", "x\u{1F600}", "twelve bytes", ""]);
        let Column::Text { len, bytes, .. } = &got.columns[0] else { panic!("text column expected") };
        assert_eq!((*len, bytes.len()), (12, 12 * times.len()));
        assert_eq!(&bytes[12..24], "héllo\0\0\0\0\0\0".as_bytes());
    });
}

#[test]
fn special_doubles_round_trip_bit_exact() {
    let layout = full_layout();
    let mut batch = records(&layout, &[1, 2, 3]);
    let special = [f64::NAN, -0.0, f64::NEG_INFINITY];
    batch.columns[0] = Column::Double { width: 1, values: special.to_vec() };
    each_store(2, |store| {
        store.open_dataset("ds", &layout).unwrap();
        store.append("ds", &mut std::iter::once(batch.clone())).unwrap();
        let got = scan_all(store, "ds", &[0], 0, 10);
        let Column::Double { values, .. } = &got.columns[0] else { panic!("double column expected") };
        let bits: Vec<u64> = values.iter().map(|v| v.to_bits()).collect();
        assert_eq!(bits, special.map(f64::to_bits));
    });
}

#[test]
fn time_only_layout_works() {
    let layout = hapi_store::Layout::default();
    each_store(4, |store| {
        store.open_dataset("t", &layout).unwrap();
        append_split(store, "t", &layout, &[5, 6, 7, 8, 9, 10], &[2]);
        let (got, lengths) = collect(store.scan("t", &[], 6, 10).unwrap()).unwrap();
        assert_eq!(got.times, [6, 7, 8, 9]);
        assert!(got.columns.is_empty());
        assert!(lengths.iter().all(|&n| n > 0 && n <= 4), "{lengths:?}");
    });
}
