//! The two non-maximum suppressions facenet-pytorch uses: torchvision's IoU NMS (stages 1 and 2)
//! and its own numpy "Min" NMS (the final one). Both work in f32 like the originals.

/// torchvision `nms`: stable sort by score descending, area without +1, suppress when
/// IoU > `threshold` (the f32 IoU compared as f64). Returns kept indices in score order.
pub fn nms_iou(boxes: &[[f32; 4]], scores: &[f32], threshold: f64) -> Vec<usize> {
    let order = sorted_desc(scores);
    let areas: Vec<f32> = boxes
        .iter()
        .map(|b| (b[2] - b[0]) * (b[3] - b[1]))
        .collect();
    let mut suppressed = vec![false; boxes.len()];
    let mut keep = Vec::new();
    for (a, &i) in order.iter().enumerate() {
        if suppressed[i] {
            continue;
        }
        keep.push(i);
        let bi = boxes[i];
        for &j in &order[a + 1..] {
            if suppressed[j] {
                continue;
            }
            let bj = boxes[j];
            let w = (bi[2].min(bj[2]) - bi[0].max(bj[0])).max(0.0);
            let h = (bi[3].min(bj[3]) - bi[1].max(bj[1])).max(0.0);
            let inter = w * h;
            let iou = inter / ((areas[i] + areas[j]) - inter);
            if iou as f64 > threshold {
                suppressed[j] = true;
            }
        }
    }
    keep
}

/// facenet-pytorch's `nms_numpy(…, 'Min')`: areas and intersections with +1, overlap =
/// intersection / the smaller area, a box survives a round when overlap ≤ `threshold`.
/// Each round takes the highest score (ties: the later index, as a stable ascending sort
/// would give; numpy's own sort is unstable there).
pub fn nms_min(boxes: &[[f32; 4]], scores: &[f32], threshold: f32) -> Vec<usize> {
    let areas: Vec<f32> = boxes
        .iter()
        .map(|b| (b[2] - b[0] + 1.0) * (b[3] - b[1] + 1.0))
        .collect();
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let mut pick = Vec::new();
    while let Some(i) = order.pop() {
        pick.push(i);
        let bi = boxes[i];
        order.retain(|&j| {
            let bj = boxes[j];
            let w = (bi[2].min(bj[2]) - bi[0].max(bj[0]) + 1.0).max(0.0);
            let h = (bi[3].min(bj[3]) - bi[1].max(bj[1]) + 1.0).max(0.0);
            (w * h) / areas[i].min(areas[j]) <= threshold
        });
    }
    pick
}

/// Indices by score, highest first, equal scores in index order (a stable sort).
fn sorted_desc(scores: &[f32]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iou_nms_keeps_best_and_distant_boxes() {
        let boxes = [
            [0.0, 0.0, 10.0, 10.0],
            [1.0, 1.0, 11.0, 11.0],
            [20.0, 20.0, 30.0, 30.0],
        ];
        assert_eq!(nms_iou(&boxes, &[0.8, 0.9, 0.7], 0.5), vec![1, 2]);
        // IoU 81/119 = 0.68 is not > 0.7: both kept.
        assert_eq!(nms_iou(&boxes, &[0.8, 0.9, 0.7], 0.7), vec![1, 0, 2]);
        // Ties keep index order.
        assert_eq!(nms_iou(&boxes[..1].repeat(2), &[0.5, 0.5], 0.5), vec![0]);
    }

    #[test]
    fn min_nms_suppresses_contained_boxes() {
        // A small box inside a big one: IoU is low but overlap/min-area is 1.
        let boxes = [[0.0, 0.0, 100.0, 100.0], [10.0, 10.0, 20.0, 20.0]];
        assert_eq!(nms_min(&boxes, &[0.9, 0.95], 0.7), vec![1]);
        assert_eq!(nms_iou(&boxes, &[0.9, 0.95], 0.7), vec![1, 0]);
    }
}
