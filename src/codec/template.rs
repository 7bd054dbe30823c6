//! The classical fallback: an adaptive context model over a JBIG-style template, coded
//! on an ANS stack of its own (format-spec.md §3.6).
//!
//! Each pixel's probability comes from the counts of the causal neighbourhood it was seen
//! in before, within the same lane. ANS is a stack, so the encoder computes the
//! probabilities forward, as the decoder will, and pushes the pixels in reverse. It needs
//! no model, runs at tens of megapixels a second, and codes what the VLAE has never seen
//! (noise, text, drawings) about as well as JBIG does.
#![forbid(unsafe_code)]

use super::counts::{Counts, ModelledLanes, PixelModel};

/// The templates: (row, column) offsets of the causal neighbours whose values, bit k for
/// offset k, index a pixel's context. Positions outside the strip read 0. A lane records
/// which it uses (format-spec.md §3.6): the wide one suits dense text, the JBIG-like
/// narrow one learns faster on small or varied images.
pub const TEMPLATES: [&[(isize, isize)]; 2] = [
    &[
        (-2, -2),
        (-2, -1),
        (-2, 0),
        (-2, 1),
        (-2, 2),
        (-1, -3),
        (-1, -2),
        (-1, -1),
        (-1, 0),
        (-1, 1),
        (-1, 2),
        (-1, 3),
        (0, -4),
        (0, -3),
        (0, -2),
        (0, -1),
    ],
    &[
        (-2, -1),
        (-2, 0),
        (-2, 1),
        (-1, -2),
        (-1, -1),
        (-1, 0),
        (-1, 1),
        (-1, 2),
        (0, -2),
        (0, -1),
    ],
];

/// A strip with a border of white around it: 2 rows above, 4 columns left and 3 right,
/// the templates' reach. Every neighbour is then a fixed offset from the pixel, with no
/// bounds to check, and the border reads 0 as the format wants.
struct Padded {
    stride: usize,
    buf: Vec<u8>,
    /// Each template offset as a distance in `buf`.
    offsets: Vec<isize>,
}

impl Padded {
    const ABOVE: usize = 2;
    const LEFT: usize = 4;
    const RIGHT: usize = 3;

    fn new(template: &[(isize, isize)], width: usize, rows: usize) -> Self {
        let stride = Self::LEFT + width + Self::RIGHT;
        Padded {
            stride,
            buf: vec![0; (Self::ABOVE + rows) * stride],
            offsets: template
                .iter()
                .map(|&(dy, dx)| dy * stride as isize + dx)
                .collect(),
        }
    }

    fn at(&self, y: usize, x: usize) -> usize {
        (Self::ABOVE + y) * self.stride + Self::LEFT + x
    }

    /// The context of pixel (y, x): bit k is the neighbour at template offset k.
    #[inline]
    fn context(&self, y: usize, x: usize) -> usize {
        let here = self.at(y, x) as isize;
        self.offsets.iter().enumerate().fold(0, |ctx, (k, &o)| {
            ctx | usize::from(self.buf[(here + o) as usize]) << k
        })
    }

    fn set(&mut self, y: usize, x: usize, bit: u8) {
        let i = self.at(y, x);
        self.buf[i] = bit;
    }
}

/// Counts over one of the [`TEMPLATES`] (format-spec.md §3.6).
pub(crate) struct TemplateCounts {
    template: &'static [(isize, isize)],
    counts: Counts,
    known: Padded,
    context: usize,
}

impl TemplateCounts {
    fn new(template: &'static [(isize, isize)]) -> Self {
        TemplateCounts {
            template,
            counts: Counts::new(1 << template.len()),
            known: Padded::new(template, 0, 0),
            context: 0,
        }
    }
}

impl PixelModel for TemplateCounts {
    fn start_strip(&mut self, width: usize, rows: usize) {
        self.known = Padded::new(self.template, width, rows);
    }

    #[inline]
    fn predict(&mut self, y: usize, x: usize) -> u32 {
        self.context = self.known.context(y, x);
        self.counts.probability(self.context)
    }

    #[inline]
    fn learn(&mut self, y: usize, x: usize, bit: u8) {
        self.counts.update(self.context, bit);
        self.known.set(y, x, bit);
    }
}

/// The context-model lane coder with one of the [`TEMPLATES`].
pub struct ContextModel {
    pub template: u8,
}

impl ContextModel {
    fn template(&self) -> &'static [(isize, isize)] {
        TEMPLATES[usize::from(self.template)]
    }

    /// Bits of its context: its table holds 2^size count pairs.
    pub fn size(&self) -> usize {
        self.template().len()
    }
}

impl ModelledLanes for ContextModel {
    type Model = TemplateCounts;

    fn fresh(&self, _pixels: usize) -> TemplateCounts {
        TemplateCounts::new(self.template())
    }
}
