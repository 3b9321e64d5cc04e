//! Hostile files, from the small fixtures the generator wrote (tests/fixtures): truncated,
//! bit-flipped, with loops, with blocks that inflate past their claim. Each must give an
//! error (or, for a flip that keeps the file valid, values) in bounded time, never a panic.

use std::io::Write;

use hapi_cdf::{Cdf, Error, Values};

use crate::support::{fixture, read_everything, within};

fn be64(b: &[u8], at: usize) -> usize {
    u64::from_be_bytes(b[at..at + 8].try_into().unwrap()) as usize
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().unwrap())
}

/// Offsets of every record, walking them in file order from the CDR.
fn boundaries(b: &[u8]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut at = 8;
    while at + 12 <= b.len() {
        out.push(at);
        let size = be64(b, at);
        assert!(size >= 12, "record at {at}");
        at += size;
    }
    out
}

/// The zVDR of variable `name` (v3 layout).
fn zvdr(b: &[u8], name: &str) -> usize {
    let gdr = be64(b, 20);
    let mut at = be64(b, gdr + 20);
    while at != 0 {
        let n = &b[at + 84..at + 84 + 256];
        let end = n.iter().position(|&c| c == 0).unwrap_or(256);
        if &n[..end] == name.as_bytes() {
            return at;
        }
        at = be64(b, at + 12);
    }
    panic!("no variable {name}")
}

fn expect_err(bytes: Vec<u8>, what: &str) -> Error {
    within(60, move || read_everything(&bytes)).expect_err(what)
}

#[test]
fn fixtures_are_valid() {
    for name in ["small.cdf", "small_whole.cdf"] {
        let cdf = Cdf::from_bytes(fixture(name)).unwrap();
        crate::support::read_all_of(&cdf).unwrap();
        let b = cdf.variable_index("B").unwrap();
        assert_eq!(cdf.read(b, 19..20).unwrap(), Values::F32(vec![57.0, 58.0, 59.0]));
        assert_eq!(cdf.variables()[b].attr_text("UNITS"), Some("nT"));
    }
}

#[test]
fn truncated_at_every_block_boundary() {
    let b = fixture("small.cdf");
    let cuts: Vec<usize> = boundaries(&b)
        .iter()
        .flat_map(|&o| [o, o + 1, o + 8, o + 11, o + 12, o + 20])
        .filter(|&c| c < b.len())
        .collect();
    assert!(cuts.len() > 30, "{} cuts", cuts.len());
    for cut in cuts {
        let e = expect_err(b[..cut].to_vec(), &format!("truncated at {cut}"));
        assert!(!e.to_string().is_empty());
    }
    // A whole-file-compressed file, cut anywhere.
    let w = fixture("small_whole.cdf");
    for cut in 0..w.len() {
        expect_err(w[..cut].to_vec(), &format!("compressed file truncated at {cut}"));
    }
}

#[test]
fn every_bit_flipped_and_every_word_overwritten() {
    for name in ["small.cdf", "small_whole.cdf"] {
        let b = fixture(name);
        within(600, move || {
            let mut errors = 0;
            for i in 0..b.len() {
                for bit in 0..8 {
                    let mut m = b.clone();
                    m[i] ^= 1 << bit;
                    errors += usize::from(read_everything(&m).is_err());
                }
            }
            // Counts and offsets set to huge, negative and zero values.
            for i in (0..b.len().saturating_sub(4)).step_by(4) {
                for word in [0xFFFF_FFFFu32, 0x7FFF_FFFF, 0x8000_0000, 0, 0x0001_0000] {
                    let mut m = b.clone();
                    m[i..i + 4].copy_from_slice(&word.to_be_bytes());
                    errors += usize::from(read_everything(&m).is_err());
                }
            }
            assert!(errors > b.len(), "{name}: only {errors} of the mutations were errors");
        });
    }
}

#[test]
fn vxr_loops_are_errors() {
    let b = fixture("small.cdf");
    let vdr = zvdr(&b, "B");
    let vxr = be64(&b, vdr + 28);
    // The VXR's next pointer to itself.
    let mut m = b.clone();
    m[vxr + 12..vxr + 20].copy_from_slice(&(vxr as u64).to_be_bytes());
    let e = expect_err(m, "VXRnext loop");
    assert!(e.to_string().contains("loop in the VXR chain"), "{e}");
    // An entry pointing back to its own VXR.
    let n = be32(&b, vxr + 20) as usize;
    let mut m = b.clone();
    let entry0 = vxr + 28 + 8 * n;
    m[entry0..entry0 + 8].copy_from_slice(&(vxr as u64).to_be_bytes());
    let e = expect_err(m, "VXR entry loop");
    assert!(e.to_string().contains(&format!("VXR at offset {vxr}")), "{e}");
    // Two used entries sharing one block (and so overlapping).
    let mut m = b.clone();
    m[vxr + 24..vxr + 28].copy_from_slice(&2u32.to_be_bytes());
    for (at, len) in [(vxr + 28, 4), (vxr + 28 + 4 * n, 4), (entry0, 8)] {
        let v = m[at..at + len].to_vec();
        m[at + len..at + 2 * len].copy_from_slice(&v);
    }
    let e = expect_err(m, "VXR entries sharing a block");
    assert!(e.to_string().contains("used twice"), "{e}");
    // A VDR chain looping back.
    let mut m = b;
    m[vdr + 12..vdr + 20].copy_from_slice(&(vdr as u64).to_be_bytes());
    let e = expect_err(m, "VDR loop");
    assert!(e.to_string().contains("loops back"), "{e}");
}

#[test]
fn compressed_blocks_that_inflate_past_their_claim() {
    let b = fixture("small.cdf");
    let vdr = zvdr(&b, "B");
    let vxr = be64(&b, vdr + 28);
    let n = be32(&b, vxr + 20) as usize;
    // Entry 0 claims one record; its block holds five.
    let mut m = b.clone();
    let first0 = be32(&b, vxr + 28);
    m[vxr + 28 + 4 * n..vxr + 32 + 4 * n].copy_from_slice(&first0.to_be_bytes());
    let e = expect_err(m, "block past its claim");
    assert!(e.to_string().contains("inflates to more than the 12 bytes"), "{e}");

    // A gzip bomb: 256 MiB of zeros (about 250 KB compressed) appended as a CVVR and
    // put in entry 0; inflating stops at the claim, so this is quick and small.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..256 {
        gz.write_all(&zeros).unwrap();
    }
    let data = gz.finish().unwrap();
    let mut m = b;
    let at = m.len() as u64;
    m.extend_from_slice(&(24 + data.len() as u64).to_be_bytes());
    m.extend_from_slice(&13i32.to_be_bytes());
    m.extend_from_slice(&0i32.to_be_bytes());
    m.extend_from_slice(&(data.len() as u64).to_be_bytes());
    m.extend_from_slice(&data);
    let entry0 = vxr + 28 + 8 * n;
    m[entry0..entry0 + 8].copy_from_slice(&at.to_be_bytes());
    let e = expect_err(m, "gzip bomb");
    assert!(e.to_string().contains("inflates to more than"), "{e}");
}

#[test]
fn vax_encoding_and_rle_are_clear_errors() {
    let b = fixture("small.cdf");
    let mut m = b.clone();
    m[36..40].copy_from_slice(&3u32.to_be_bytes());
    let e = Cdf::from_bytes(m).unwrap_err();
    assert!(matches!(e, Error::Unsupported(_)) && e.to_string().contains("VAX"), "{e}");

    let vdr = zvdr(&b, "B");
    let cpr = be64(&b, vdr + 72);
    let mut m = b;
    m[cpr + 12..cpr + 16].copy_from_slice(&1u32.to_be_bytes());
    let cdf = Cdf::from_bytes(m).unwrap();
    let e = cdf.read(cdf.variable_index("B").unwrap(), 0..1).unwrap_err();
    assert!(matches!(e, Error::Unsupported(_)) && e.to_string().contains("RLE"), "{e}");
}

#[test]
fn errors_name_the_block_and_field() {
    let b = fixture("small.cdf");
    let vdr = zvdr(&b, "B");
    let vxr = be64(&b, vdr + 28);
    let n = be32(&b, vxr + 20) as usize;
    let mut m = b.clone();
    let entry0 = vxr + 28 + 8 * n;
    m[entry0..entry0 + 8].copy_from_slice(&99_999_999u64.to_be_bytes());
    let e = expect_err(m, "offset beyond the file");
    assert_eq!(
        e.to_string(),
        format!("VXR at offset {vxr}: entry 0 offset 99999999 beyond file size {}", b.len())
    );
}

#[test]
fn not_a_cdf() {
    for bytes in
        [&b""[..], b"CDF", b"\xcd\xf3\x00\x01\x00\x00\xff\xff", b"hello world, this is not a CDF file"]
    {
        assert!(matches!(Cdf::from_bytes(bytes.to_vec()), Err(Error::Corrupt { .. })));
    }
}
