//! Face crops for the embedders: facenet-pytorch's `extract_face` (box, truncated to ints,
//! Pillow's antialiased bilinear resize, bit-exact) and a 5-landmark similarity alignment.

use crate::image::RgbImage;
use crate::mtcnn::Detection;

/// facenet-pytorch's crop with margin 0: `[int(max(x1,0)), int(max(y1,0)), int(min(x2,W)),
/// int(min(y2,H))]`, resized to `size`×`size` with Pillow's BILINEAR filter. Returns HWC RGB u8.
pub fn box_crop(image: &RgbImage, det: &Detection, size: u32) -> RgbImage {
    let _ = (image, det, size);
    todo!("crop::box_crop")
}
