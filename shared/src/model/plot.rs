//! The confusion-matrix plot as PNG bytes in memory (for an object store, not a file path):
//! plotters draws into an RGB buffer with its bitmap backend and the `png` crate encodes it.
//! Lambda has no fontconfig, so the text uses DejaVu Sans embedded in the binary
//! (`shared/assets/DejaVuSans.ttf`, Bitstream Vera licence in `DejaVuSans-LICENSE.txt`) and
//! registered once with plotters' `ab_glyph` font support.

use std::sync::OnceLock;

use plotters::prelude::*;
use plotters::style::FontTransform;
use plotters::style::register_font;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::ModelError;
use super::metrics::ConfusionMatrix;

const FONT_FAMILY: &str = "DejaVu Sans (embedded)";
static DEJAVU_SANS: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");

const GRID_LEFT: i32 = 200;
const GRID_TOP: i32 = 140;
const CELL: i32 = 240;
const WIDTH: u32 = (GRID_LEFT + 2 * CELL + 40) as u32;
const HEIGHT: u32 = (GRID_TOP + 2 * CELL + 70) as u32;

/// Colour of the fullest cell ("Blues" end colour); empty cells are white.
const FULL: (u8, u8, u8) = (8, 48, 107);

/// Draws `matrix` (rows: actual class, columns: predicted class) with a title naming
/// `model_version`, and returns the PNG file's bytes.
pub fn confusion_matrix_png(
    matrix: &ConfusionMatrix,
    model_version: &str,
) -> Result<Vec<u8>, ModelError> {
    ensure_font()?;
    let mut pixels = vec![0u8; (WIDTH * HEIGHT * 3) as usize];
    {
        let backend = BitMapBackend::with_buffer_and_format(&mut pixels, (WIDTH, HEIGHT))
            .map_err(plot_error)?;
        let root = backend.into_drawing_area();
        draw(&root, matrix, model_version).map_err(plot_error)?;
        root.present().map_err(plot_error)?;
    }
    encode_png(&pixels)
}

fn ensure_font() -> Result<(), ModelError> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED
        .get_or_init(|| register_font(FONT_FAMILY, FontStyle::Normal, DEJAVU_SANS).is_ok());
    if ok {
        Ok(())
    } else {
        Err(ModelError::Plot(
            "the embedded DejaVu Sans font could not be loaded (shared/assets/DejaVuSans.ttf is damaged)".into(),
        ))
    }
}

type Area<'a> = DrawingArea<BitMapBackend<'a>, plotters::coord::Shift>;
type DrawResult =
    Result<(), DrawingAreaErrorKind<<BitMapBackend<'static> as DrawingBackend>::ErrorType>>;

fn draw(root: &Area<'_>, matrix: &ConfusionMatrix, model_version: &str) -> DrawResult {
    root.fill(&WHITE)?;
    let grid_width = 2 * CELL;
    let grid_center_x = GRID_LEFT + CELL;
    let grid_center_y = GRID_TOP + CELL;

    root.draw(&Text::new(
        format!("Confusion matrix — model {model_version}"),
        (grid_center_x, 32),
        text(26.0, &BLACK),
    ))?;
    root.draw(&Text::new(
        format!(
            "{} clients scored; positive class: exited (1)",
            matrix.total()
        ),
        (grid_center_x, 64),
        text(17.0, &RGBColor(80, 80, 80)),
    ))?;
    root.draw(&Text::new(
        "Predicted",
        (grid_center_x, 102),
        text(22.0, &BLACK),
    ))?;
    root.draw(&Text::new(
        "Actual",
        (36, grid_center_y),
        text(22.0, &BLACK).transform(FontTransform::Rotate270),
    ))?;

    let class_names = ["stayed (0)", "exited (1)"];
    for (index, name) in class_names.iter().enumerate() {
        let offset = index as i32 * CELL + CELL / 2;
        root.draw(&Text::new(
            *name,
            (GRID_LEFT + offset, GRID_TOP - 14),
            text(19.0, &BLACK),
        ))?;
        root.draw(&Text::new(
            *name,
            (GRID_LEFT - 14, GRID_TOP + offset),
            TextStyle::from((FONT_FAMILY, 19.0).into_font())
                .color(&BLACK)
                .pos(Pos::new(HPos::Right, VPos::Center)),
        ))?;
    }

    let cells = [
        [
            (matrix.true_negatives, "true negatives"),
            (matrix.false_positives, "false positives"),
        ],
        [
            (matrix.false_negatives, "false negatives"),
            (matrix.true_positives, "true positives"),
        ],
    ];
    let total = matrix.total();
    let largest = cells
        .iter()
        .flatten()
        .map(|(count, _)| *count)
        .max()
        .unwrap_or(0);
    for (row, row_cells) in cells.iter().enumerate() {
        for (column, &(count, label)) in row_cells.iter().enumerate() {
            let left = GRID_LEFT + column as i32 * CELL;
            let top = GRID_TOP + row as i32 * CELL;
            let intensity = if largest == 0 {
                0.0
            } else {
                count as f64 / largest as f64
            };
            let fill = shade(intensity);
            let ink = if luminance(&fill) < 0.5 { WHITE } else { BLACK };
            root.draw(&Rectangle::new(
                [(left, top), (left + CELL, top + CELL)],
                fill.filled(),
            ))?;
            let center_x = left + CELL / 2;
            let center_y = top + CELL / 2;
            let share = if total == 0 {
                0.0
            } else {
                100.0 * count as f64 / total as f64
            };
            root.draw(&Text::new(
                count.to_string(),
                (center_x, center_y - 16),
                text(48.0, &ink),
            ))?;
            root.draw(&Text::new(
                format!("{share:.1}%"),
                (center_x, center_y + 30),
                text(22.0, &ink),
            ))?;
            root.draw(&Text::new(label, (center_x, top + 24), text(16.0, &ink)))?;
        }
    }
    // Grid lines last so they stay visible over dark cells.
    let line = RGBColor(60, 60, 60).stroke_width(2);
    for step in 0..=2 {
        let offset = step * CELL;
        root.draw(&PathElement::new(
            vec![
                (GRID_LEFT + offset, GRID_TOP),
                (GRID_LEFT + offset, GRID_TOP + grid_width),
            ],
            line,
        ))?;
        root.draw(&PathElement::new(
            vec![
                (GRID_LEFT, GRID_TOP + offset),
                (GRID_LEFT + grid_width, GRID_TOP + offset),
            ],
            line,
        ))?;
    }
    root.draw(&Text::new(
        "cells shaded by count; percentages are shares of all scored clients",
        (grid_center_x, GRID_TOP + grid_width + 36),
        text(15.0, &RGBColor(80, 80, 80)),
    ))?;
    Ok(())
}

/// Centred text in the embedded font.
fn text<'a>(size: f64, color: &'a RGBColor) -> TextStyle<'a> {
    TextStyle::from((FONT_FAMILY, size).into_font())
        .color(color)
        .pos(Pos::new(HPos::Center, VPos::Center))
}

/// Perceived brightness in 0..=1 (Rec. 709 weights), to pick readable text on a cell.
fn luminance(color: &RGBColor) -> f64 {
    (0.2126 * f64::from(color.0) + 0.7152 * f64::from(color.1) + 0.0722 * f64::from(color.2))
        / 255.0
}

/// White at 0, [`FULL`] at 1.
fn shade(intensity: f64) -> RGBColor {
    let mix =
        |full: u8| (255.0 - (255.0 - f64::from(full)) * intensity.clamp(0.0, 1.0)).round() as u8;
    RGBColor(mix(FULL.0), mix(FULL.1), mix(FULL.2))
}

fn encode_png(rgb: &[u8]) -> Result<Vec<u8>, ModelError> {
    let mut bytes = Vec::new();
    let mut encoder = png::Encoder::new(&mut bytes, WIDTH, HEIGHT);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(plot_error)?;
    writer.write_image_data(rgb).map_err(plot_error)?;
    writer.finish().map_err(plot_error)?;
    Ok(bytes)
}

fn plot_error(error: impl std::fmt::Display) -> ModelError {
    ModelError::Plot(error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matrix(tn: u64, fp: u64, fn_: u64, tp: u64) -> ConfusionMatrix {
        ConfusionMatrix {
            true_negatives: tn,
            false_positives: fp,
            false_negatives: fn_,
            true_positives: tp,
        }
    }

    /// Width and height from the IHDR chunk, after checking the PNG signature.
    fn png_size(bytes: &[u8]) -> (u32, u32) {
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "PNG signature");
        assert_eq!(&bytes[12..16], b"IHDR");
        let width = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
        let height = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
        (width, height)
    }

    #[test]
    fn encodes_a_decodable_png_of_the_expected_size() {
        let bytes = confusion_matrix_png(&matrix(1, 1, 2, 1), "v-test").unwrap();
        assert_eq!(png_size(&bytes), (WIDTH, HEIGHT));
        assert!(
            bytes.len() > 5_000 && bytes.len() < 500_000,
            "{} bytes",
            bytes.len()
        );
        let decoder = png::Decoder::new(bytes.as_slice());
        let mut reader = decoder.read_info().unwrap();
        let mut pixels = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut pixels).unwrap();
        assert_eq!((info.width, info.height), (WIDTH, HEIGHT));
        // Not a blank canvas: there are dark (text, full cell) and white pixels.
        let pixels = &pixels[..info.buffer_size()];
        assert!(pixels.chunks(3).any(|p| p.iter().all(|&c| c < 60)));
        assert!(pixels.chunks(3).any(|p| p.iter().all(|&c| c == 255)));
    }

    #[test]
    fn different_matrices_and_versions_give_different_images() {
        let a = confusion_matrix_png(&matrix(1, 1, 2, 1), "v1").unwrap();
        let b = confusion_matrix_png(&matrix(5, 0, 0, 5), "v1").unwrap();
        let c = confusion_matrix_png(&matrix(1, 1, 2, 1), "v2").unwrap();
        assert_ne!(a, b);
        assert_ne!(a, c);
        assert_eq!(a, confusion_matrix_png(&matrix(1, 1, 2, 1), "v1").unwrap());
    }

    #[test]
    fn empty_matrix_still_draws() {
        let bytes = confusion_matrix_png(&ConfusionMatrix::default(), "empty").unwrap();
        assert_eq!(png_size(&bytes), (WIDTH, HEIGHT));
    }
}
