//! Frames made from still photos, for measuring liveness without a spoofing data set
//! (`rollcall eval-liveness`) and for the tests: a flat picture seen through a camera (tilted
//! about both axes, shifted, scaled, shaken), blurred, JPEG-compressed. A picture's every point
//! moves by one homography, which is how these frames are drawn.

use super::planar::{apply, homography, Homography};
use rollcall_vision::RgbImage;

/// Where a flat picture is held: tilts about the vertical and horizontal axes (degrees),
/// a shift (fractions of the image size) and a scale, seen by a pinhole camera whose focal
/// length is the image width.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Pose {
    pub yaw_deg: f32,
    pub pitch_deg: f32,
    pub shift: [f32; 2],
    pub scale: f32,
}

impl Pose {
    /// The homography sending the picture's pixels to the camera's for a `width`×`height`
    /// picture held in this pose (centred and facing the camera at pose zero, scale 1).
    pub fn homography(&self, width: u32, height: u32) -> Option<Homography> {
        let (w, h) = (width as f32, height as f32);
        let f = w;
        let (cx, cy) = (w / 2.0, h / 2.0);
        let (a, b) = (self.yaw_deg.to_radians(), self.pitch_deg.to_radians());
        let scale = if self.scale > 0.0 { self.scale } else { 1.0 };
        let corners = [[0.0, 0.0], [w, 0.0], [w, h], [0.0, h]];
        let project = |[x, y]: [f32; 2]| {
            // The picture's plane through its centre at depth f (so pose zero maps it to itself).
            let (px, py) = (x - cx, y - cy);
            // About the vertical axis, then the horizontal one.
            let (x1, z1) = (px * a.cos(), px * a.sin());
            let (y2, z2) = (py * b.cos() - z1 * b.sin(), py * b.sin() + z1 * b.cos());
            let depth = f / scale + z2;
            [
                cx + f * x1 / depth + self.shift[0] * w,
                cy + f * y2 / depth + self.shift[1] * h,
            ]
        };
        homography(&corners, &corners.map(project))
    }
}

/// The picture `image` seen through `h` (pixels outside it are a grey backdrop); bilinear.
pub fn warp(image: &RgbImage, h: &Homography) -> Option<RgbImage> {
    let inverse = invert(h)?;
    let (w, ht) = (image.width, image.height);
    let mut data = Vec::with_capacity((w * ht * 3) as usize);
    for y in 0..ht {
        for x in 0..w {
            let pixel = apply(&inverse, [x as f32 + 0.5, y as f32 + 0.5])
                .map_or([96, 96, 96], |[sx, sy]| sample(image, sx - 0.5, sy - 0.5));
            data.extend(pixel);
        }
    }
    RgbImage::from_raw(w, ht, data)
}

fn sample(image: &RgbImage, x: f32, y: f32) -> [u8; 3] {
    let (w, h) = (image.width as f32, image.height as f32);
    if !(x > -1.0 && y > -1.0 && x < w && y < h) {
        return [96, 96, 96];
    }
    let (x0, y0) = (x.floor(), y.floor());
    let (fx, fy) = (x - x0, y - y0);
    let at = |xi: f32, yi: f32| {
        let xi = xi.clamp(0.0, w - 1.0) as u32;
        let yi = yi.clamp(0.0, h - 1.0) as u32;
        image.get_pixel(xi, yi)
    };
    let [p00, p10, p01, p11] = [
        at(x0, y0),
        at(x0 + 1.0, y0),
        at(x0, y0 + 1.0),
        at(x0 + 1.0, y0 + 1.0),
    ];
    let mut out = [0u8; 3];
    for c in 0..3 {
        let top = f32::from(p00[c]) * (1.0 - fx) + f32::from(p10[c]) * fx;
        let bottom = f32::from(p01[c]) * (1.0 - fx) + f32::from(p11[c]) * fx;
        out[c] = (top * (1.0 - fy) + bottom * fy).round().clamp(0.0, 255.0) as u8;
    }
    out
}

/// The inverse of a homography (its adjugate, normalised).
fn invert(h: &Homography) -> Option<Homography> {
    let [a, b, c, d, e, f, g, hh, i] = *h;
    let adj = [
        e * i - f * hh,
        c * hh - b * i,
        b * f - c * e,
        f * g - d * i,
        a * i - c * g,
        c * d - a * f,
        d * hh - e * g,
        b * g - a * hh,
        a * e - b * d,
    ];
    let det = a * adj[0] + b * adj[3] + c * adj[6];
    if det.abs() < 1e-12 || adj[8].abs() < 1e-12 {
        return None;
    }
    Some(adj.map(|v| v / adj[8]))
}

/// A box blur of `radius` pixels (a camera out of focus, or a moving hand).
pub fn blur(image: &RgbImage, radius: u32) -> RgbImage {
    if radius == 0 {
        return image.clone();
    }
    let (w, h) = (image.width as i64, image.height as i64);
    let r = i64::from(radius);
    let mut data = Vec::with_capacity(image.data.len());
    for y in 0..h {
        for x in 0..w {
            let mut sum = [0u32; 3];
            let mut n = 0u32;
            for yy in (y - r).max(0)..=(y + r).min(h - 1) {
                for xx in (x - r).max(0)..=(x + r).min(w - 1) {
                    let p = image.get_pixel(xx as u32, yy as u32);
                    for c in 0..3 {
                        sum[c] += u32::from(p[c]);
                    }
                    n += 1;
                }
            }
            data.extend(sum.map(|s| (s / n.max(1)) as u8));
        }
    }
    RgbImage::from_raw(image.width, image.height, data).unwrap_or_else(|| image.clone())
}

/// `image` as a JPEG of `quality` (1–100).
pub fn jpeg(image: &RgbImage, quality: f32) -> std::io::Result<Vec<u8>> {
    let mut c = mozjpeg::Compress::new(mozjpeg::ColorSpace::JCS_RGB);
    c.set_size(image.width as usize, image.height as usize);
    c.set_quality(quality);
    let mut c = c.start_compress(Vec::new())?;
    c.write_scanlines(&image.data)?;
    c.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pose_zero_is_the_picture_itself_and_a_tilt_foreshortens() {
        let h = Pose {
            scale: 1.0,
            ..Pose::default()
        }
        .homography(200, 100)
        .expect("a homography");
        let p = apply(&h, [30.0, 70.0]).expect("finite");
        assert!(
            (p[0] - 30.0).abs() < 1e-3 && (p[1] - 70.0).abs() < 1e-3,
            "{p:?}"
        );
        let tilted = Pose {
            yaw_deg: 40.0,
            scale: 1.0,
            ..Pose::default()
        }
        .homography(200, 100)
        .expect("a homography");
        let (l, r) = (
            apply(&tilted, [0.0, 50.0]).expect("finite"),
            apply(&tilted, [200.0, 50.0]).expect("finite"),
        );
        assert!(r[0] - l[0] < 190.0, "{l:?} {r:?}");
        let inverse = invert(&tilted).expect("invertible");
        let back = apply(&inverse, apply(&tilted, [20.0, 30.0]).expect("finite")).expect("finite");
        assert!((back[0] - 20.0).abs() < 1e-2 && (back[1] - 30.0).abs() < 1e-2);
    }
}
