//! Image decoding: arbitrary bytes through `rollcall_vision::image::decode` with the production
//! pixel cap, and the checks the server makes before any network sees the pixels.
//!
//! Beyond "no panic, no abort, no hang", what must hold for every input:
//! - a decoded image has pixels, no more than the cap, and exactly `width * height * 3` bytes;
//! - `TooLarge` is said only of an image that is over the cap;
//! - whatever decodes is a format the photo store can name (`ImageFormat::sniff`), so no photo
//!   is accepted that could not then be stored.

#![no_main]

use libfuzzer_sys::fuzz_target;
use rollcall::domain::ImageFormat;
use rollcall_vision::image::decode;
use rollcall_vision::{DecodeLimits, ImageError};
use std::sync::OnceLock;

/// `ROLLCALL_FUZZ_VERBOSE=1`: say what each input decoded to (for `fuzz.sh repro`).
fn verbose() -> bool {
    static VERBOSE: OnceLock<bool> = OnceLock::new();
    *VERBOSE.get_or_init(|| std::env::var_os("ROLLCALL_FUZZ_VERBOSE").is_some())
}

fuzz_target!(|bytes: &[u8]| {
    // What the server decodes with (`PipelineConfig::default()`).
    let limits = DecodeLimits::default();
    let result = decode(bytes, limits);
    if verbose() {
        match &result {
            Ok(image) => eprintln!("decoded {}×{}", image.width, image.height),
            Err(e) => eprintln!("refused: {e}"),
        }
    }
    match result {
        Ok(image) => {
            let (w, h) = (u64::from(image.width), u64::from(image.height));
            assert!(w > 0 && h > 0, "decoded an empty {w}×{h} image");
            assert!(
                w * h <= limits.max_pixels,
                "decoded {w}×{h}, over the cap of {}",
                limits.max_pixels
            );
            assert_eq!(
                image.data.len() as u64,
                w * h * 3,
                "{w}×{h}: wrong byte count"
            );
            assert!(
                ImageFormat::sniff(bytes).is_some(),
                "decoded bytes the photo store cannot name"
            );
        }
        Err(ImageError::TooLarge {
            width,
            height,
            max_pixels,
        }) => assert!(
            width.saturating_mul(height) > max_pixels,
            "{width}×{height} refused as over {max_pixels} pixels"
        ),
        Err(ImageError::Unsupported) => assert!(
            ImageFormat::sniff(bytes).is_none(),
            "the decoder and the photo store disagree on the format"
        ),
        Err(_) => {}
    }
});
