//! JPEG through libjpeg-turbo (the `mozjpeg` crate) with Pillow's settings (ISLOW IDCT, fancy
//! upsampling), so the pixels equal Pillow 10's bit for bit.
//!
//! libjpeg reports fatal errors by unwinding (mozjpeg's error manager calls `resume_unwind`),
//! so all of it runs inside `catch_unwind`. Running out of data is only a warning in libjpeg,
//! which then grey-fills the rest; a source that records when that happens lets us refuse
//! truncated files instead.

use super::{check_size, exif_orientation, DecodeLimits, RgbImage};
use crate::error::ImageError;
use mozjpeg::{ColorSpace, DctMethod, Decompress, Marker};
use std::cell::Cell;
use std::io::{BufRead, Read};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// The most scans a JPEG may have. Baseline files have one per colour component or one in
/// all; libjpeg's progressive script has 10 and optimised encoders rarely go past 20.
pub const MAX_SCANS: usize = 100;

pub(super) fn decode(
    bytes: &[u8],
    limits: DecodeLimits,
) -> Result<(RgbImage, Option<u16>), ImageError> {
    let scans = count_scans(bytes);
    if scans > MAX_SCANS {
        return Err(ImageError::TooManyScans {
            scans,
            max: MAX_SCANS,
        });
    }
    let ran_out = Cell::new(false);
    let source = Source {
        data: bytes,
        ran_out: &ran_out,
    };
    match catch_unwind(AssertUnwindSafe(|| decode_from(source, &ran_out, limits))) {
        Ok(result) => result,
        Err(payload) => {
            let msg = payload
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| payload.downcast_ref::<&str>().copied())
                .unwrap_or("libjpeg error");
            Err(ImageError::Corrupt(format!("JPEG: {msg}")))
        }
    }
}

fn decode_from(
    source: Source,
    ran_out: &Cell<bool>,
    limits: DecodeLimits,
) -> Result<(RgbImage, Option<u16>), ImageError> {
    let corrupt = |e: std::io::Error| ImageError::Corrupt(format!("JPEG: {e}"));
    let mut d = Decompress::with_markers(&[Marker::APP(1)])
        .from_reader(source)
        .map_err(corrupt)?;
    check_size(d.width() as u64, d.height() as u64, limits)?;
    let orientation = d
        .markers()
        .find_map(|m| m.data.strip_prefix(b"Exif\0\0").and_then(exif_orientation));
    // These are libjpeg's defaults and Pillow's; set them so parity never depends on a default.
    d.dct_method(DctMethod::IntegerSlow);
    d.do_fancy_upsampling(true);
    let cmyk = matches!(d.color_space(), ColorSpace::JCS_CMYK | ColorSpace::JCS_YCCK);
    // libjpeg converts gray and YCbCr to RGB itself, but not CMYK.
    let mut started = if cmyk {
        d.to_colorspace(ColorSpace::JCS_CMYK)
    } else {
        d.rgb()
    }
    .map_err(corrupt)?;
    let (width, height) = (started.width() as u32, started.height() as u32);
    let row_len = width as usize * if cmyk { 4 } else { 3 };
    let pixels = read_bands(row_len, height as usize, ran_out, |band| {
        started.read_scanlines_into(band).map(|_| ())
    })
    .map_err(corrupt)?
    .ok_or_else(|| ImageError::Corrupt("JPEG: the file is truncated".into()))?;
    // A missing EOI marker after complete image data is tolerated.
    started.finish().map_err(corrupt)?;
    let data = if cmyk { cmyk_to_rgb(&pixels) } else { pixels };
    if data.len() != width as usize * height as usize * 3 {
        return Err(ImageError::Corrupt("JPEG: short image data".into()));
    }
    Ok((
        RgbImage {
            width,
            height,
            data,
        },
        orientation,
    ))
}

/// Rows decoded per call to libjpeg between checks for truncation.
const BAND_ROWS: usize = 16;

/// The image's rows, read a band at a time; `None` as soon as the source has run out. libjpeg
/// grey-fills what is missing, so without the check a header of a few hundred bytes declaring
/// 40 megapixels costs a whole decode (0.6 s and 150 MB; 1.2 s and 260 MB progressive) before
/// the refusal. A progressive file is read whole when decoding starts, so there the first check
/// already says.
fn read_bands(
    row_len: usize,
    rows: usize,
    ran_out: &Cell<bool>,
    mut read: impl FnMut(&mut [u8]) -> std::io::Result<()>,
) -> std::io::Result<Option<Vec<u8>>> {
    if ran_out.get() {
        return Ok(None);
    }
    // Zeroed pages cost nothing until written, and a truncated file writes few.
    let mut pixels = vec![0u8; row_len * rows];
    for band in pixels.chunks_mut((row_len * BAND_ROWS).max(1)) {
        read(band)?;
        if ran_out.get() {
            return Ok(None);
        }
    }
    Ok(Some(pixels))
}

/// Pillow's CMYK → RGB, after undoing Adobe's inverted storage (Pillow reads CMYK JPEGs as
/// "CMYK;I"): each channel is (255 − K) · (1 − C/255), rounded as Pillow's MULDIV255.
fn cmyk_to_rgb(inverted: &[u8]) -> Vec<u8> {
    let muldiv255 = |a: u32, b: u32| {
        let t = a * b + 128;
        ((t >> 8) + t) >> 8
    };
    inverted
        .chunks_exact(4)
        .flat_map(|p| {
            let nk = u32::from(p[3]); // 255 − K, as K is stored inverted
            let ch = |c: u8| (nk - muldiv255(255 - u32::from(c), nk)) as u8;
            [ch(p[0]), ch(p[1]), ch(p[2])]
        })
        .collect()
}

/// How many start-of-scan markers the JPEG stream holds, found by walking its segments (a
/// marker segment is skipped by its length; a scan's entropy-coded data runs to the next
/// marker that is neither a stuffed 0xFF00 nor a restart marker). Stops at EOI or the end.
pub(crate) fn count_scans(bytes: &[u8]) -> usize {
    const SOS: u8 = 0xDA;
    const EOI: u8 = 0xD9;
    let standalone = |m: u8| matches!(m, 0x01 | 0xD0..=0xD8);
    let mut scans = 0;
    let mut i = 2; // after SOI
    while i + 1 < bytes.len() {
        if bytes[i] != 0xFF {
            return scans; // not a marker where one must be: libjpeg will report it
        }
        let marker = bytes[i + 1];
        i += 2;
        if marker == 0xFF {
            i -= 1; // fill byte: the marker comes next
            continue;
        }
        if marker == EOI {
            return scans;
        }
        if standalone(marker) {
            continue;
        }
        let Some(len) = bytes
            .get(i..i + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]) as usize)
        else {
            return scans;
        };
        i += len;
        if marker == SOS {
            scans += 1;
            while i + 1 < bytes.len()
                && !(bytes[i] == 0xFF
                    && bytes[i + 1] != 0x00
                    && !(0xD0..=0xD7).contains(&bytes[i + 1]))
            {
                i += 1;
            }
        }
    }
    scans
}

/// The input as a `BufRead` that notes when libjpeg asks for bytes past the end.
struct Source<'a> {
    data: &'a [u8],
    ran_out: &'a Cell<bool>,
}

impl Read for Source<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.fill_buf()?.read(buf)?;
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for Source<'_> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        if self.data.is_empty() {
            self.ran_out.set(true);
        }
        Ok(self.data)
    }

    fn consume(&mut self, n: usize) {
        self.data = &self.data[n.min(self.data.len())..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(progressive: bool) -> Vec<u8> {
        let (w, h) = (40, 30);
        let pixels: Vec<u8> = (0..w * h * 3).map(|i| (i % 256) as u8).collect();
        let mut c = mozjpeg::Compress::new(ColorSpace::JCS_RGB);
        // mozjpeg's own defaults are progressive; its fastest profile is plain baseline.
        c.set_fastest_defaults();
        c.set_size(w, h);
        if progressive {
            c.set_progressive_mode();
        }
        let mut c = c.start_compress(Vec::new()).unwrap();
        c.write_scanlines(&pixels).unwrap();
        c.finish().unwrap()
    }

    #[test]
    fn reading_stops_at_the_band_where_the_data_ran_out() {
        let ran_out = Cell::new(false);
        let mut calls = 0;
        // 100 rows of 6 bytes: 7 bands of 16 rows; the source runs dry during the second.
        let read = read_bands(6, 100, &ran_out, |band| {
            calls += 1;
            assert_eq!(band.len() % 6, 0);
            band.fill(1);
            if calls == 2 {
                ran_out.set(true);
            }
            Ok(())
        })
        .unwrap();
        assert_eq!(read, None);
        assert_eq!(
            calls, 2,
            "libjpeg was asked for rows after the data ran out"
        );

        let (ran_out, mut calls) = (Cell::new(false), 0);
        let whole = read_bands(6, 100, &ran_out, |band| {
            calls += 1;
            band.fill(7);
            Ok(())
        })
        .unwrap()
        .unwrap();
        assert_eq!((whole.len(), calls), (600, 7));
        assert!(whole.iter().all(|&b| b == 7));

        // Out of data before the first row (a progressive file is read whole at the start).
        let ran_out = Cell::new(true);
        let none = read_bands(6, 100, &ran_out, |_| panic!("no row may be read")).unwrap();
        assert_eq!(none, None);
    }

    /// The fuzzer's finding, whole: a small file whose header declares 6000×6666 pixels and
    /// whose data stops just after the scan header is refused as truncated (as it was before
    /// bands; `reading_stops_at_the_band_where_the_data_ran_out` holds the early stop).
    #[test]
    fn a_huge_truncated_jpeg_is_refused_as_truncated() {
        let mut bytes = encode(false);
        let at =
            |bytes: &[u8], marker: u8| bytes.windows(2).position(|w| w == [0xFF, marker]).unwrap();
        let sof = at(&bytes, 0xC0);
        bytes[sof + 5..sof + 7].copy_from_slice(&6666u16.to_be_bytes());
        bytes[sof + 7..sof + 9].copy_from_slice(&6000u16.to_be_bytes());
        let sos = at(&bytes, 0xDA);
        let header = usize::from(u16::from_be_bytes([bytes[sos + 2], bytes[sos + 3]]));
        bytes.truncate(sos + 2 + header + 8);
        assert!(bytes.len() < 1000, "{} bytes", bytes.len());
        match decode(&bytes, DecodeLimits::default()) {
            Err(ImageError::Corrupt(m)) => assert!(m.contains("truncated"), "{m}"),
            other => panic!("{:?}", other.map(|(i, _)| (i.width, i.height))),
        }
    }

    #[test]
    fn scans_are_counted_by_walking_the_segments() {
        assert_eq!(count_scans(&encode(false)), 1);
        let progressive = count_scans(&encode(true));
        assert!(
            (2..=MAX_SCANS).contains(&progressive),
            "{progressive} scans"
        );
        assert_eq!(count_scans(b""), 0);
        assert_eq!(count_scans(&[0xFF, 0xD8, 0xFF]), 0);
    }
}
