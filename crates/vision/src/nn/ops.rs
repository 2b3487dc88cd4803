//! Weightless tensor operations: softmax, average pooling, channel concatenation, L2
//! normalisation.

use crate::tensor::Tensor;

/// Softmax over dimension 1 of [N, C, …] (torch's `Softmax(dim=1)`).
pub fn softmax_channels(x: &Tensor) -> Tensor {
    let (n, c) = (x.shape[0], x.shape[1]);
    let inner: usize = x.shape[2..].iter().product();
    let mut y = x.clone();
    for b in 0..n {
        let item = &mut y.data[b * c * inner..(b + 1) * c * inner];
        for i in 0..inner {
            let mut m = f32::NEG_INFINITY;
            for ch in 0..c {
                m = m.max(item[ch * inner + i]);
            }
            let mut sum = 0.0f32;
            for ch in 0..c {
                let e = (item[ch * inner + i] - m).exp();
                item[ch * inner + i] = e;
                sum += e;
            }
            for ch in 0..c {
                item[ch * inner + i] /= sum;
            }
        }
    }
    y
}

/// Average pooling without padding, floor mode (TF's 'valid'): `kernel`×`kernel` windows every
/// `stride` pixels, windows that would run past the edge dropped.
pub fn avg_pool2d(x: &Tensor, kernel: usize, stride: usize) -> Tensor {
    let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3]);
    assert!(
        h >= kernel && w >= kernel,
        "pooling window {kernel} larger than the {h}×{w} input"
    );
    let (oh, ow) = ((h - kernel) / stride + 1, (w - kernel) / stride + 1);
    let area = (kernel * kernel) as f32;
    let mut out = Tensor::zeros(vec![n, c, oh, ow]);
    for (plane, out_plane) in x
        .data
        .chunks_exact(h * w)
        .zip(out.data.chunks_exact_mut(oh * ow))
    {
        for oy in 0..oh {
            for ox in 0..ow {
                let (y0, x0) = (oy * stride, ox * stride);
                let sum: f32 = (y0..y0 + kernel)
                    .flat_map(|y| &plane[y * w + x0..y * w + x0 + kernel])
                    .sum();
                out_plane[oy * ow + ox] = sum / area;
            }
        }
    }
    out
}

/// Mean over each channel's H×W plane: [N, C, H, W] → [N, C].
pub fn global_avg_pool(x: &Tensor) -> Tensor {
    let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3]);
    let area = (h * w) as f32;
    let data = x
        .data
        .chunks_exact(h * w)
        .map(|plane| plane.iter().sum::<f32>() / area)
        .collect();
    Tensor::new(vec![n, c], data)
}

/// Concatenate NCHW tensors along the channel axis (all with the same N, H, W).
pub fn cat_channels(parts: &[&Tensor]) -> Tensor {
    let (n, h, w) = (parts[0].shape[0], parts[0].shape[2], parts[0].shape[3]);
    let c: usize = parts.iter().map(|p| p.shape[1]).sum();
    let mut data = Vec::with_capacity(n * c * h * w);
    for b in 0..n {
        for p in parts {
            assert_eq!(
                (p.shape[0], p.shape[2], p.shape[3]),
                (n, h, w),
                "cat_channels shapes"
            );
            let item = p.shape[1] * h * w;
            data.extend_from_slice(&p.data[b * item..(b + 1) * item]);
        }
    }
    Tensor::new(vec![n, c, h, w], data)
}

/// Divide each row of an [N, D] tensor by `max(‖row‖₂, 1e-12)`, as
/// `torch.nn.functional.normalize` does.
pub fn l2_normalize_rows(x: &mut Tensor) {
    let d = x.shape[1..].iter().product::<usize>().max(1);
    for row in x.data.chunks_exact_mut(d) {
        let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
        for v in row {
            *v /= norm;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn avg_pool_drops_the_ragged_edge() {
        // 3×3 input, 2×2/2 pooling: one window, the last row and column are dropped (TF 'valid').
        let x = Tensor::new(vec![1, 1, 3, 3], (1..=9).map(|v| v as f32).collect());
        let y = avg_pool2d(&x, 2, 2);
        assert_eq!(y.shape, vec![1, 1, 1, 1]);
        assert_eq!(y.data, vec![(1.0 + 2.0 + 4.0 + 5.0) / 4.0]);
    }

    #[test]
    fn cat_channels_interleaves_per_item() {
        let a = Tensor::new(vec![2, 1, 1, 1], vec![1.0, 2.0]);
        let b = Tensor::new(vec![2, 2, 1, 1], vec![10.0, 11.0, 20.0, 21.0]);
        let y = cat_channels(&[&a, &b]);
        assert_eq!(y.shape, vec![2, 3, 1, 1]);
        assert_eq!(y.data, vec![1.0, 10.0, 11.0, 2.0, 20.0, 21.0]);
    }

    #[test]
    fn global_pool_and_normalise() {
        let x = Tensor::new(vec![1, 2, 1, 2], vec![1.0, 5.0, 4.0, 2.0]);
        let mut y = global_avg_pool(&x);
        assert_eq!(
            (y.shape.clone(), y.data.clone()),
            (vec![1, 2], vec![3.0, 3.0])
        );
        l2_normalize_rows(&mut y);
        let expected = 1.0 / 2f32.sqrt();
        assert!(y.data.iter().all(|v| (v - expected).abs() < 1e-7));
    }

    #[test]
    fn softmax_sums_to_one_over_channels() {
        let x = Tensor::new(vec![1, 2, 1, 2], vec![-0.5, 2.0, -1.0, 3.0]);
        let s = softmax_channels(&x);
        for i in 0..2 {
            assert!((s.data[i] + s.data[2 + i] - 1.0).abs() < 1e-6);
        }
        assert!(s.data[0] > s.data[2]);
    }
}
