// SPDX-License-Identifier: MPL-2.0

//! Where each guest's picture goes in the room mix: a grid whose shape gives the pictures the
//! most room for their aspect ratio, its last row centred when it is not full. Pure: the mix
//! applies the tiles to the compositor's pads, which fit each picture inside its tile with its
//! aspect kept.

/// One tile, in output pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tile {
    pub x: i32,
    pub y: i32,
    pub width: i32,
    pub height: i32,
}

/// Tiles for `n` pictures of aspect ratio `aspect` (width / height) in a `width`x`height`
/// output, in order, row by row.
pub fn grid(n: usize, width: u32, height: u32, aspect: f64) -> Vec<Tile> {
    if n == 0 || width == 0 || height == 0 {
        return Vec::new();
    }
    let aspect = if aspect.is_finite() && aspect > 0.0 {
        aspect
    } else {
        16.0 / 9.0
    };
    let (w, h) = (f64::from(width), f64::from(height));
    // The column count whose pictures are largest; on a tie, the fewer columns.
    let picture = |cols: usize| {
        let rows = n.div_ceil(cols);
        let (tw, th) = (w / cols as f64, h / rows as f64);
        let pw = tw.min(th * aspect);
        pw * (pw / aspect)
    };
    let cols = (1..=n)
        .max_by(|a, b| picture(*a).total_cmp(&picture(*b)).then(b.cmp(a)))
        .unwrap_or(1);
    let rows = n.div_ceil(cols);
    let (tw, th) = (width as usize / cols, height as usize / rows);
    (0..n)
        .map(|i| {
            let (row, col) = (i / cols, i % cols);
            let in_row = if row == rows - 1 {
                n - row * cols
            } else {
                cols
            };
            let offset = (width as usize - in_row * tw) / 2;
            Tile {
                x: (offset + col * tw) as i32,
                y: (row * th) as i32,
                width: tw as i32,
                height: th as i32,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn area(t: &Tile, aspect: f64) -> f64 {
        let pw = f64::from(t.width).min(f64::from(t.height) * aspect);
        pw * pw / aspect
    }

    #[test]
    fn one_picture_fills_the_output() {
        assert_eq!(
            grid(1, 1280, 720, 16.0 / 9.0),
            vec![Tile {
                x: 0,
                y: 0,
                width: 1280,
                height: 720
            }]
        );
        assert!(grid(0, 1280, 720, 1.0).is_empty());
    }

    #[test]
    fn three_in_two_rows_with_the_last_one_centred() {
        let t = grid(3, 1280, 720, 16.0 / 9.0);
        assert_eq!(t.len(), 3);
        assert_eq!((t[0].x, t[0].y, t[0].width, t[0].height), (0, 0, 640, 360));
        assert_eq!((t[1].x, t[1].y), (640, 0));
        assert_eq!((t[2].x, t[2].y), (320, 360), "the last row is centred");
    }

    #[test]
    fn tiles_never_overlap_and_stay_inside() {
        for n in 1..=32 {
            for aspect in [4.0 / 3.0, 16.0 / 9.0, 9.0 / 16.0, 1.0] {
                let tiles = grid(n, 1280, 720, aspect);
                assert_eq!(tiles.len(), n);
                for (i, a) in tiles.iter().enumerate() {
                    assert!(a.x >= 0 && a.y >= 0 && a.x + a.width <= 1280 && a.y + a.height <= 720);
                    for b in &tiles[i + 1..] {
                        let apart = a.x + a.width <= b.x
                            || b.x + b.width <= a.x
                            || a.y + a.height <= b.y
                            || b.y + b.height <= a.y;
                        assert!(apart, "{n} at {aspect}: {a:?} overlaps {b:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn when_one_leaves_the_others_grow() {
        // 4:3 guests in a 16:9 mix: three share a 2x2 grid, two sit side by side.
        let aspect = 4.0 / 3.0;
        let three = area(&grid(3, 640, 360, aspect)[0], aspect);
        let two = area(&grid(2, 640, 360, aspect)[0], aspect);
        assert!(two > three * 1.5, "{two} vs {three}");
        // Portrait guests go side by side.
        let t = grid(3, 1280, 720, 9.0 / 16.0);
        assert!(t.iter().all(|t| t.y == 0));
    }
}
