//! A CDF 2.7 file (4-byte offsets, 64-byte names), built here by hand since no writer we
//! can run makes one: a zVariable of 3 records of 2 doubles with a UNITS entry.

use hapi_cdf::{Cdf, Values};

fn ints(v: &[i32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_be_bytes()).collect()
}

fn name(s: &str) -> Vec<u8> {
    let mut b = s.as_bytes().to_vec();
    b.resize(64, 0);
    b
}

fn v2_file() -> Vec<u8> {
    // Offsets of each record, laid out in order after the magic numbers.
    let cdr = 8;
    let cdr_len = 48 + 1945;
    let gdr = cdr + cdr_len;
    let gdr_len = 60;
    let vdr = gdr + gdr_len;
    let vdr_len = 64 + 64 + 4 + 4 + 4;
    let vxr = vdr + vdr_len;
    let vxr_len = 20 + 12;
    let vvr = vxr + vxr_len;
    let vvr_len = 8 + 48;
    let adr = vvr + vvr_len;
    let adr_len = 52 + 64;
    let aedr = adr + adr_len;
    let aedr_len = 48 + 2;
    let eof = aedr + aedr_len;

    let mut f = vec![0xCD, 0xF2, 0x60, 0x02, 0x00, 0x00, 0xFF, 0xFF];
    // CDR: size, type, GDR, version 2.7, encoding 6 (little-endian), row-major.
    f.extend(ints(&[cdr_len, 1, gdr, 2, 7, 6, 1, 0, 0, 0, 0, 0]));
    f.extend(vec![0u8; 1945]);
    // GDR: no rVars, one zVar, one attribute.
    f.extend(ints(&[gdr_len, 2, 0, vdr, adr, eof, 0, 1, -1, 0, 1, 0, 0, 0, 0]));
    // zVDR: CDF_DOUBLE, MaxRec 2, record variance, dims [2] varying.
    f.extend(ints(&[vdr_len, 8, 0, 45, 2, vxr, vxr, 1, 0, 0, 0, 0, 1, 0, 0, 0]));
    f.extend(name("x"));
    f.extend(ints(&[1, 2, -1]));
    // VXR: one entry, records 0..=2.
    f.extend(ints(&[vxr_len, 6, 0, 1, 1, 0, 2, vvr]));
    // VVR.
    f.extend(ints(&[vvr_len, 7]));
    for v in [1.5f64, 2.5, 3.5, 4.5, 5.5, 6.5] {
        f.extend(v.to_le_bytes());
    }
    // ADR: variable scope, attribute 0, one z entry.
    f.extend(ints(&[adr_len, 4, 0, 0, 2, 0, 0, -1, 0, aedr, 1, 0, 0]));
    f.extend(name("UNITS"));
    // AzEDR: CDF_CHAR "km" for variable 0.
    f.extend(ints(&[aedr_len, 9, 0, 0, 51, 0, 2, 0, 0, 0, 0, 0]));
    f.extend(b"km");
    assert_eq!(f.len(), eof as usize);
    f
}

#[test]
fn reads_a_v2_file() {
    let cdf = Cdf::from_bytes(v2_file()).unwrap();
    assert_eq!(cdf.version(), (2, 7, 0));
    let x = cdf.variable("x").unwrap();
    assert_eq!((x.records, x.dims.clone(), x.attr_text("UNITS")), (3, vec![2], Some("km")));
    let i = cdf.variable_index("x").unwrap();
    assert_eq!(cdf.read(i, 1..3).unwrap(), Values::F64(vec![3.5, 4.5, 5.5, 6.5]));
    crate::support::read_all_of(&cdf).unwrap();
}

#[test]
fn v2_truncated_anywhere_is_an_error() {
    let f = v2_file();
    for cut in 0..f.len() {
        assert!(crate::support::read_everything(&f[..cut]).is_err(), "cut at {cut}");
    }
}
