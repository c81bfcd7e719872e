//! Which ink is the digit: the picture's separate marks (connected ink), the heaviest one that
//! does not run along the picture's edge, and the marks close enough to it to be its other
//! strokes. Specks, a pen mark elsewhere or the dark edge of the table beyond the paper are
//! left out, and counted when they are large enough to be another mark.

use super::ink::{InkMap, is_tight_crop};

/// A mark at least this share of the digit's ink, not kept, is reported as another mark.
const OTHER_MARK: f32 = 0.15;
/// A mark at least this share of the digit's ink, close to it, is one of its strokes.
const STROKE: f32 = 0.01;
/// How far around the digit's box (as a share of its larger side) its other strokes may lie.
const REACH: f32 = 0.25;

/// The digit's pixels, and how many other marks the picture holds.
pub struct Digit {
    /// Per pixel of the ink map: whether it belongs to the digit.
    pub pixels: Vec<bool>,
    /// The inclusive box of the digit's pixels: x0, y0, x1, y1.
    pub bounds: [usize; 4],
    pub other_marks: usize,
}

/// Ink pixels side by side in one row: the row, the first and the last column.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Run {
    y: usize,
    x0: usize,
    x1: usize,
}

/// One connected mark.
struct Mark {
    runs: Vec<Run>,
    ink: f32,
    /// Inclusive box: x0, y0, x1, y1.
    bounds: [usize; 4],
    /// Pixels on the picture's border.
    on_border: usize,
}

/// The digit in `map`, or `None` if the picture holds no ink above its noise.
pub fn find_digit(map: &InkMap) -> Option<Digit> {
    let peak = peak(map);
    if peak < 0.1 {
        return None;
    }
    // A pixel is part of a mark when clearly above the paper's noise and a fair share of the
    // strongest ink; fainter pixels next to a mark (anti-aliased edges) join it at the end.
    let strong = (4.0 * map.noise).min(0.5 * peak).max(0.2 * peak);
    let mut marks = components(map, strong);
    if marks.is_empty() {
        return None;
    }
    marks.sort_by(|a, b| b.ink.total_cmp(&a.ink));
    // What runs along the border is the table beyond the paper, or the paper's shadow; a
    // stroke that only reaches the border (a digit cropped tight) is not, and in a tight crop
    // nothing is: an 8x8 scan's digit touches every edge.
    let crop = is_tight_crop(map.width, map.height);
    let along_edge = |m: &Mark| !crop && m.on_border >= (map.width.min(map.height) / 4).max(8);
    let main = marks.iter().position(|m| !along_edge(m)).unwrap_or(0);
    // The digit's strokes: marks near the digit's box as it grows, stroke by stroke.
    let main_ink = marks[main].ink;
    let mut kept = vec![false; marks.len()];
    kept[main] = true;
    let mut bounds = marks[main].bounds;
    loop {
        let [x0, y0, x1, y1] = bounds;
        let reach = (REACH * (x1 - x0).max(y1 - y0) as f32).ceil() as usize;
        let near = |m: &Mark| {
            let [a0, b0, a1, b1] = m.bounds;
            a1 + reach >= x0 && a0 <= x1 + reach && b1 + reach >= y0 && b0 <= y1 + reach
        };
        let next = (0..marks.len()).find(|&i| {
            !kept[i]
                && near(&marks[i])
                && !along_edge(&marks[i])
                && marks[i].ink >= STROKE * main_ink
        });
        let Some(next) = next else { break };
        kept[next] = true;
        bounds = union(bounds, marks[next].bounds);
    }
    let mut runs = Vec::new();
    let mut other_marks = 0;
    for (mark, kept) in marks.iter().zip(kept) {
        if kept {
            runs.extend_from_slice(&mark.runs);
        } else if !along_edge(mark) && mark.ink >= OTHER_MARK * main_ink {
            other_marks += 1;
        }
    }
    let (pixels, bounds) = with_faint_edges(map, &runs, bounds);
    Some(Digit {
        pixels,
        bounds,
        other_marks,
    })
}

/// The strongest ink, averaged over 3x3 pixels so that a single noisy pixel does not count.
fn peak(map: &InkMap) -> f32 {
    let (w, h) = (map.width, map.height);
    let ink = &map.ink;
    // The window's average at (x, y), summed row by row, left to right.
    let window = |x: usize, y: usize| {
        let (mut sum, mut count) = (0.0, 0.0);
        for yy in y.saturating_sub(1)..(y + 2).min(h) {
            for xx in x.saturating_sub(1)..(x + 2).min(w) {
                sum += ink[yy * w + xx];
                count += 1.0;
            }
        }
        sum / count
    };
    let mut best = 0.0f32;
    let mut averages = vec![0.0f32; w];
    for y in 0..h {
        if y == 0 || y + 1 == h || w < 3 {
            (0..w).for_each(|x| best = best.max(window(x, y)));
            continue;
        }
        // Inside the picture, whole windows, summed in the same order, a row at a time so the
        // sums run side by side.
        let (up, here, down) = (
            &ink[(y - 1) * w..y * w],
            &ink[y * w..(y + 1) * w],
            &ink[(y + 1) * w..(y + 2) * w],
        );
        for x in 1..w - 1 {
            averages[x] = (0.0
                + up[x - 1]
                + up[x]
                + up[x + 1]
                + here[x - 1]
                + here[x]
                + here[x + 1]
                + down[x - 1]
                + down[x]
                + down[x + 1])
                / 9.0;
        }
        best = averages[1..w - 1].iter().fold(best, |b, &a| b.max(a));
        best = best.max(window(0, y)).max(window(w - 1, y));
    }
    best
}

/// The 8-connected groups of pixels of more ink than `threshold`, in the order of their first
/// pixel, row by row. Each row's runs of ink are joined to the runs of the row above that they
/// touch (diagonally included), by union-find over the runs: a few steps per run and one
/// comparison per pixel, where following pixels to their eight neighbours took dozens.
fn components(map: &InkMap, threshold: f32) -> Vec<Mark> {
    let (w, h) = (map.width, map.height);
    let mut runs: Vec<Run> = Vec::new();
    // Each run's parent run; a root is the first run of its mark.
    let mut parent: Vec<usize> = Vec::new();
    let mut above = 0..0;
    for (y, row) in map.ink.chunks_exact(w).enumerate() {
        let first = runs.len();
        let mut x = 0;
        // The runs above, from the first that may still touch the current one.
        let mut next_above = above.start;
        while let Some(start) = row[x..].iter().position(|&v| v > threshold) {
            let x0 = x + start;
            x = x0
                + row[x0..]
                    .iter()
                    .position(|&v| v <= threshold)
                    .unwrap_or(w - x0);
            let run = Run { y, x0, x1: x - 1 };
            let id = runs.len();
            runs.push(run);
            parent.push(id);
            while next_above < above.end && runs[next_above].x1 + 1 < run.x0 {
                next_above += 1;
            }
            // Runs above that touch this one; the last of them may touch the next one too.
            let mut touching = next_above;
            while touching < above.end && runs[touching].x0 <= run.x1 + 1 {
                join(&mut parent, touching, id);
                touching += 1;
            }
            next_above = touching.saturating_sub(1).max(next_above);
        }
        above = first..runs.len();
    }
    let mut marks: Vec<Mark> = Vec::new();
    // Per run: the index of its mark, known once its root's is.
    let mut mark_of = vec![usize::MAX; runs.len()];
    for (id, run) in runs.into_iter().enumerate() {
        let Run { y, x0, x1 } = run;
        let root = find(&mut parent, id);
        mark_of[id] = if root == id {
            marks.push(Mark {
                runs: Vec::new(),
                ink: 0.0,
                bounds: [x0, y, x1, y],
                on_border: 0,
            });
            marks.len() - 1
        } else {
            mark_of[root]
        };
        let mark = &mut marks[mark_of[id]];
        mark.ink += map.ink[y * w + x0..=y * w + x1].iter().sum::<f32>();
        mark.bounds = union(mark.bounds, [x0, y, x1, y]);
        mark.on_border += if y == 0 || y == h - 1 {
            x1 - x0 + 1
        } else {
            // Both ends, or one pixel on both edges of a picture one pixel wide.
            usize::from(x0 == 0) + usize::from(x1 == w - 1 && !(x0 == 0 && w == 1))
        };
        mark.runs.push(run);
    }
    marks
}

/// The smallest box (x0, y0, x1, y1, inclusive) holding boxes `a` and `b`.
fn union(a: [usize; 4], b: [usize; 4]) -> [usize; 4] {
    [
        a[0].min(b[0]),
        a[1].min(b[1]),
        a[2].max(b[2]),
        a[3].max(b[3]),
    ]
}

/// The root of `id`'s set, halving the path on the way.
fn find(parent: &mut [usize], mut id: usize) -> usize {
    while parent[id] != id {
        parent[id] = parent[parent[id]];
        id = parent[id];
    }
    id
}

/// Joins the sets of `a` and `b` under the earlier root, so a root is its mark's first run.
fn join(parent: &mut [usize], a: usize, b: usize) {
    let (a, b) = (find(parent, a), find(parent, b));
    let (first, later) = (a.min(b), a.max(b));
    parent[later] = first;
}

/// The pixels of `runs`, whose box is `bounds`, and the pixels within two of them (a 5x5 box
/// around each) that hold any ink above the noise: the faint, anti-aliased edges of the digit's
/// strokes; and the box of them all. What is within two of a run is a rectangle five rows
/// high, so the neighbourhood is filled run by run, and only the digit's box grown by two is
/// looked at.
fn with_faint_edges(map: &InkMap, runs: &[Run], bounds: [usize; 4]) -> (Vec<bool>, [usize; 4]) {
    let (w, h) = (map.width, map.height);
    let faint = (2.0 * map.noise).max(0.5 / 255.0);
    // The digit's box grown by two, within the picture.
    let [x0, y0, x1, y1] = bounds;
    let (x0, y0, x1, y1) = (
        x0.saturating_sub(2),
        y0.saturating_sub(2),
        (x1 + 2).min(w - 1),
        (y1 + 2).min(h - 1),
    );
    let span = x1 - x0 + 1;
    // Per pixel of the grown box: whether a run lies within two of it.
    let mut near = vec![false; span * (y1 - y0 + 1)];
    for run in runs {
        let columns = run.x0.saturating_sub(2).max(x0) - x0..(run.x1 + 2).min(x1) + 1 - x0;
        for y in run.y.saturating_sub(2).max(y0)..=(run.y + 2).min(y1) {
            near[(y - y0) * span..][columns.clone()].fill(true);
        }
    }
    let mut digit = vec![false; w * h];
    // The runs' box, grown by the faint edges found.
    let mut grown = bounds;
    for (y, near) in (y0..=y1).zip(near.chunks_exact(span)) {
        let (ink, kept) = (
            &map.ink[y * w + x0..][..span],
            &mut digit[y * w + x0..][..span],
        );
        for ((kept, &near), &ink) in kept.iter_mut().zip(near).zip(ink) {
            *kept = near && ink > faint;
        }
        if let (Some(first), Some(last)) =
            (kept.iter().position(|&k| k), kept.iter().rposition(|&k| k))
        {
            grown = union(grown, [x0 + first, y, x0 + last, y]);
        }
    }
    // The runs' own pixels, whatever their ink (strong ink may lie under twice the noise).
    for run in runs {
        digit[run.y * w + run.x0..=run.y * w + run.x1].fill(true);
    }
    (digit, grown)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(width: usize, height: usize, ink: &[(usize, usize, usize, usize)]) -> InkMap {
        let mut values = vec![0.0; width * height];
        for &(x0, y0, x1, y1) in ink {
            for y in y0..=y1 {
                for x in x0..=x1 {
                    values[y * width + x] = 1.0;
                }
            }
        }
        InkMap {
            width,
            height,
            ink: values,
            noise: 0.0,
        }
    }

    /// Pseudo-random numbers of 24 bits from `seed`, the same on every run.
    fn numbers(mut seed: u32) -> impl FnMut() -> u32 {
        move || {
            seed = seed.wrapping_mul(1664525).wrapping_add(1013904223);
            seed >> 8
        }
    }

    /// The inclusive box of the pixels set in `mask`, looked for pixel by pixel.
    fn box_of(mask: &[bool], width: usize) -> [usize; 4] {
        let set = || (0..mask.len()).filter(|&p| mask[p]);
        [
            set().map(|p| p % width).min().unwrap(),
            set().map(|p| p / width).min().unwrap(),
            set().map(|p| p % width).max().unwrap(),
            set().map(|p| p / width).max().unwrap(),
        ]
    }

    fn kept(digit: &Digit, width: usize, x: usize, y: usize) -> bool {
        digit.pixels[y * width + x]
    }

    #[test]
    fn faint_edges_are_the_ink_within_two_pixels_of_the_digit() {
        let mut next = numbers(5);
        for (width, height) in [(1, 1), (1, 7), (7, 1), (3, 4), (5, 5), (30, 20)] {
            let ink: Vec<f32> = (0..width * height)
                .map(|_| if next().is_multiple_of(3) { 0.0 } else { 0.5 })
                .collect();
            let mut digit: Vec<bool> = (0..width * height)
                .map(|_| next().is_multiple_of(7))
                .collect();
            // A digit has a pixel at least.
            digit[width * height / 2] = true;
            // Its runs, as the marks hold them, and their box.
            let mut runs = Vec::new();
            for (y, row) in digit.chunks_exact(width).enumerate() {
                for (x, &kept) in row.iter().enumerate() {
                    match runs.last_mut() {
                        Some(Run { y: ry, x1, .. }) if kept && *ry == y && *x1 + 1 == x => *x1 = x,
                        _ if kept => runs.push(Run { y, x0: x, x1: x }),
                        _ => {}
                    }
                }
            }
            let map = InkMap {
                width,
                height,
                ink,
                noise: 0.0,
            };
            // Each pixel looked at around, within the picture.
            let near = |x: usize, y: usize| {
                (y.saturating_sub(2)..(y + 3).min(height)).any(|yy| {
                    (x.saturating_sub(2)..(x + 3).min(width)).any(|xx| digit[yy * width + xx])
                })
            };
            let expected: Vec<bool> = (0..width * height)
                .map(|p| digit[p] || (map.ink[p] > 0.5 / 255.0 && near(p % width, p / width)))
                .collect();
            let [x0, y0, x1, y1] = box_of(&digit, width);
            let (grown, grown_box) = with_faint_edges(&map, &runs, [x0, y0, x1, y1]);
            assert_eq!(grown, expected, "{width}x{height}");
            assert_eq!(grown_box, box_of(&expected, width), "{width}x{height}");
        }
    }

    #[test]
    fn specks_and_far_marks_are_left_out_and_large_ones_counted() {
        // A digit-sized bar, a second stroke just beside it, a speck, a far mark, and an edge.
        let m = map(
            100,
            100,
            &[
                (40, 30, 43, 70),
                (47, 30, 55, 33),
                (10, 90, 10, 90),
                (80, 5, 95, 12),
                (0, 0, 99, 1),
            ],
        );
        let digit = find_digit(&m).unwrap();
        assert!(kept(&digit, 100, 41, 50), "the digit");
        assert!(kept(&digit, 100, 50, 31), "its other stroke");
        assert!(!kept(&digit, 100, 10, 90), "a speck");
        assert!(!kept(&digit, 100, 85, 8), "a far mark");
        assert!(!kept(&digit, 100, 50, 0), "the edge beyond the paper");
        assert_eq!(digit.other_marks, 1, "the far mark is another mark");
    }

    #[test]
    fn in_a_tight_crop_the_digit_along_the_edges_is_the_digit() {
        // A ring two pixels wide along every edge of a `width` x `height` picture, and a faint
        // speck in its middle.
        let ring_and_speck = |width: usize, height: usize| {
            let (x1, y1) = (width - 1, height - 1);
            let mut m = map(
                width,
                height,
                &[
                    (0, 0, x1, 1),
                    (0, y1 - 1, x1, y1),
                    (0, 0, 1, y1),
                    (x1 - 1, 0, x1, y1),
                ],
            );
            m.ink[height / 2 * width + width / 2] = 0.5;
            m
        };
        // A 0 filling a 10x12 scan: in a picture this small nothing is the table, so the 0 is
        // kept, not the speck.
        let digit = find_digit(&ring_and_speck(10, 12)).unwrap();
        assert_eq!(digit.bounds, [0, 0, 9, 11]);
        assert!(kept(&digit, 10, 0, 5) && kept(&digit, 10, 9, 5));
        // The same ring in a picture large enough to show a table is the table's edge.
        let big = find_digit(&ring_and_speck(60, 60)).unwrap();
        assert_eq!(big.bounds, [30, 30, 30, 30]);
    }

    #[test]
    fn marks_are_the_8_connected_groups_a_flood_fill_finds() {
        let mut next = numbers(3);
        for (width, height, share) in [(1, 1, 2), (1, 9, 2), (9, 1, 2), (6, 5, 3), (40, 30, 3)] {
            let ink: Vec<f32> = (0..width * height)
                .map(|_| (next() % share) as f32 * 0.4)
                .collect();
            let map = InkMap {
                width,
                height,
                ink,
                noise: 0.0,
            };
            // Each group grown pixel by pixel from its first pixel, row by row.
            let mut seen = vec![false; width * height];
            let mut expected = Vec::new();
            for start in 0..width * height {
                if seen[start] || map.ink[start] <= 0.3 {
                    continue;
                }
                seen[start] = true;
                let (mut pixels, mut stack) = (Vec::new(), vec![start]);
                while let Some(p) = stack.pop() {
                    pixels.push(p);
                    let (x, y) = (p % width, p / width);
                    for yy in y.saturating_sub(1)..(y + 2).min(height) {
                        for xx in x.saturating_sub(1)..(x + 2).min(width) {
                            let q = yy * width + xx;
                            if !seen[q] && map.ink[q] > 0.3 {
                                seen[q] = true;
                                stack.push(q);
                            }
                        }
                    }
                }
                pixels.sort();
                let on_border = pixels
                    .iter()
                    .filter(|&&p| {
                        let (x, y) = (p % width, p / width);
                        x == 0 || y == 0 || x == width - 1 || y == height - 1
                    })
                    .count();
                let ink: f32 = pixels.iter().map(|&p| map.ink[p]).sum();
                expected.push((pixels, on_border, ink));
            }
            let found: Vec<_> = components(&map, 0.3)
                .into_iter()
                .map(|mark| {
                    let mut pixels: Vec<usize> = (mark.runs.iter())
                        .flat_map(|r| (r.x0..=r.x1).map(move |x| r.y * width + x))
                        .collect();
                    pixels.sort();
                    let mask: Vec<bool> = (0..width * height)
                        .map(|p| pixels.binary_search(&p).is_ok())
                        .collect();
                    assert_eq!(mark.bounds, box_of(&mask, width), "{width}x{height}");
                    (pixels, mark.on_border, mark.ink)
                })
                .collect();
            assert_eq!(found.len(), expected.len(), "{width}x{height}");
            for (found, expected) in found.iter().zip(&expected) {
                assert_eq!(found.0, expected.0, "{width}x{height}");
                assert_eq!(found.1, expected.1, "{width}x{height}");
                // Summed in another order, in f32.
                assert!(
                    (found.2 - expected.2).abs() <= 1e-4 * expected.2,
                    "{width}x{height}"
                );
            }
        }
    }

    #[test]
    fn blank_paper_has_no_digit() {
        assert!(find_digit(&map(50, 50, &[])).is_none());
    }
}
