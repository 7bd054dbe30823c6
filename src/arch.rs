//! One description of the VLAE's layers, built from a [`VlaeConfig`]. The candle model
//! (`nn`) and the deterministic coder (`infer`) both build from it, so their weight names,
//! shapes, tap tables and grid sizes cannot drift apart. What each path does with a
//! layer (tensors there, fixed-order sums here) is that path's own business.
#![forbid(unsafe_code)]

use crate::config::VlaeConfig;
use crate::geometry::{causal_taps, square_taps, Canvas, Resample, TapTable};

/// A convolution: its weight prefix, tap table and channels. Weights are
/// `(taps·cin, cout)` plus a bias.
pub struct ConvSpec {
    pub name: String,
    pub table: TapTable,
    pub cin: usize,
    pub cout: usize,
}

/// A dense layer (or 1×1 convolution): `(inputs, outputs)` weights, optional bias.
pub struct DenseSpec {
    pub name: String,
    pub inputs: usize,
    pub outputs: usize,
    pub bias: bool,
}

/// q(z|x): three convolutions down to a quarter-size grid, one residual block, a head
/// giving mean and log-sd. Generic over what a layer is: [`ConvSpec`]/[`DenseSpec`] here,
/// tensors in `nn`, fixed-order weights in `infer`.
pub struct EncoderLayers<C, D> {
    pub conv_full: C,
    pub conv_half: C,
    pub conv_quarter: C,
    pub res_a: C,
    pub res_b: C,
    pub head: D,
}

/// z → the full-size conditioning map: a dense layer to the quarter grid, then two
/// upsampling convolutions.
pub struct DecoderLayers<C, D> {
    pub fc: D,
    pub up_half: C,
    pub up_full: C,
}

/// One residual PixelCNN block.
pub struct BlockLayers<C, D> {
    pub masked: C,
    pub cond: D,
    pub mix: D,
}

/// p(x_i | z, x_<i).
pub struct PixelCnnLayers<C, D> {
    pub input: C,
    pub input_cond: D,
    pub blocks: Vec<BlockLayers<C, D>>,
    pub out: D,
}

/// One MADE step of the prior flow.
pub struct MadeLayers<D> {
    pub hidden: D,
    pub output: D,
}

impl<C, D> EncoderLayers<C, D> {
    /// The same layers built by each path's own constructors.
    pub fn try_map<C2, D2, E>(
        &self,
        conv: impl Fn(&C) -> Result<C2, E>,
        dense: impl Fn(&D) -> Result<D2, E>,
    ) -> Result<EncoderLayers<C2, D2>, E> {
        Ok(EncoderLayers {
            conv_full: conv(&self.conv_full)?,
            conv_half: conv(&self.conv_half)?,
            conv_quarter: conv(&self.conv_quarter)?,
            res_a: conv(&self.res_a)?,
            res_b: conv(&self.res_b)?,
            head: dense(&self.head)?,
        })
    }
}

impl<C, D> DecoderLayers<C, D> {
    /// The same layers built by each path's own constructors.
    pub fn try_map<C2, D2, E>(
        &self,
        conv: impl Fn(&C) -> Result<C2, E>,
        dense: impl Fn(&D) -> Result<D2, E>,
    ) -> Result<DecoderLayers<C2, D2>, E> {
        Ok(DecoderLayers {
            fc: dense(&self.fc)?,
            up_half: conv(&self.up_half)?,
            up_full: conv(&self.up_full)?,
        })
    }
}

impl<C, D> PixelCnnLayers<C, D> {
    /// The same layers built by each path's own constructors.
    pub fn try_map<C2, D2, E>(
        &self,
        conv: impl Fn(&C) -> Result<C2, E>,
        dense: impl Fn(&D) -> Result<D2, E>,
    ) -> Result<PixelCnnLayers<C2, D2>, E> {
        Ok(PixelCnnLayers {
            input: conv(&self.input)?,
            input_cond: dense(&self.input_cond)?,
            blocks: self
                .blocks
                .iter()
                .map(|b| {
                    Ok(BlockLayers {
                        masked: conv(&b.masked)?,
                        cond: dense(&b.cond)?,
                        mix: dense(&b.mix)?,
                    })
                })
                .collect::<Result<_, E>>()?,
            out: dense(&self.out)?,
        })
    }
}

impl<D> MadeLayers<D> {
    /// The same layers built by each path's own constructor.
    pub fn try_map<D2, E>(&self, dense: impl Fn(&D) -> Result<D2, E>) -> Result<MadeLayers<D2>, E> {
        Ok(MadeLayers {
            hidden: dense(&self.hidden)?,
            output: dense(&self.output)?,
        })
    }
}

/// The layers as specifications.
pub type EncoderSpec = EncoderLayers<ConvSpec, DenseSpec>;
pub type DecoderSpec = DecoderLayers<ConvSpec, DenseSpec>;
pub type PixelCnnSpec = PixelCnnLayers<ConvSpec, DenseSpec>;
pub type MadeSpec = MadeLayers<DenseSpec>;

/// The autoregressive-flow prior, with its MADE masks as `(in, out)` 0/1 matrices.
pub struct PriorSpec {
    pub steps: Vec<MadeSpec>,
    pub mask_hidden: Vec<f32>,
    pub mask_output: Vec<f32>,
}

/// The whole model's layers.
pub struct Architecture {
    /// Tile side: the model codes `tile × tile` pixels at a time.
    pub tile: usize,
    /// What the PixelCNN's input layer reads: the tile and, with context, its surround.
    pub canvas: Canvas,
    pub latent: usize,
    /// Channels of the quarter-grid map the decoder's `fc` produces (position-major).
    pub fc_channels: usize,
    pub encoder: EncoderSpec,
    pub decoder: DecoderSpec,
    pub pixelcnn: PixelCnnSpec,
    pub prior: PriorSpec,
}

fn dense(name: &str, inputs: usize, outputs: usize, bias: bool) -> DenseSpec {
    DenseSpec {
        name: name.into(),
        inputs,
        outputs,
        bias,
    }
}

fn conv(
    name: &str,
    grid: usize,
    resample: Resample,
    taps: &[(isize, isize)],
    cin: usize,
    cout: usize,
) -> ConvSpec {
    ConvSpec {
        name: name.into(),
        table: TapTable::new(grid, grid, resample, taps),
        cin,
        cout,
    }
}

impl Architecture {
    /// The layers `cfg` describes. Weight names are those of `models/README.md`; the
    /// "28/14/7" in some of them are names of record, whatever the tile size.
    pub fn new(cfg: &VlaeConfig) -> Self {
        let (full, half, quarter) = (cfg.tile, cfg.tile / 2, cfg.tile / 4);
        let k3 = square_taps(3);
        let [e1, e2, e3] = cfg.enc_channels;
        let [d_quarter, d_half] = cfg.dec_channels;
        let (c, cz, d) = (cfg.pixel_channels, cfg.cond_channels, cfg.latent_dim);
        let encoder = EncoderLayers {
            conv_full: conv("encoder.conv28", full, Resample::Same, &k3, 1, e1),
            conv_half: conv("encoder.conv14", full, Resample::Down2, &k3, e1, e2),
            conv_quarter: conv("encoder.conv7", half, Resample::Down2, &k3, e2, e3),
            res_a: conv("encoder.res_a", quarter, Resample::Same, &k3, e3, e3),
            res_b: conv("encoder.res_b", quarter, Resample::Same, &k3, e3, e3),
            head: dense("encoder.head", quarter * quarter * e3, 2 * d, true),
        };
        let decoder = DecoderLayers {
            fc: dense("decoder.fc", d, quarter * quarter * d_quarter, true),
            up_half: conv(
                "decoder.up14",
                quarter,
                Resample::Up2,
                &k3,
                d_quarter,
                d_half,
            ),
            up_full: conv("decoder.up28", half, Resample::Up2, &k3, d_half, cz),
        };
        let mask_b = causal_taps(3, true);
        let pixelcnn = PixelCnnLayers {
            input: ConvSpec {
                name: "pixelcnn.input".into(),
                table: TapTable::on_canvas(cfg.canvas(), &causal_taps(cfg.first_kernel, false)),
                cin: 1,
                cout: c,
            },
            input_cond: dense("pixelcnn.input_cond", cz, c, false),
            blocks: (0..cfg.pixel_blocks)
                .map(|i| BlockLayers {
                    masked: conv(
                        &format!("pixelcnn.block{i}.masked"),
                        full,
                        Resample::Same,
                        &mask_b,
                        c,
                        c,
                    ),
                    cond: dense(&format!("pixelcnn.block{i}.cond"), cz, c, false),
                    mix: dense(&format!("pixelcnn.block{i}.mix"), c, c, true),
                })
                .collect(),
            out: dense("pixelcnn.out", c, 1, true),
        };
        let (mask_hidden, mask_output) = made_masks(d, cfg.prior_hidden);
        let prior = PriorSpec {
            steps: (0..cfg.prior_steps)
                .map(|s| MadeLayers {
                    hidden: dense(&format!("prior.step{s}.hidden"), d, cfg.prior_hidden, true),
                    output: dense(&format!("prior.step{s}.output"), cfg.prior_hidden, d, true),
                })
                .collect(),
            mask_hidden,
            mask_output,
        };
        Architecture {
            tile: full,
            canvas: cfg.canvas(),
            latent: d,
            fc_channels: d_quarter,
            encoder,
            decoder,
            pixelcnn,
            prior,
        }
    }

    /// Pixels in one tile.
    pub fn tile_pixels(&self) -> usize {
        self.tile * self.tile
    }
}

/// MADE connectivity masks for `latent` inputs/outputs and `hidden` units, as `(in, out)`
/// 0/1 matrices. Input i has degree i+1, hidden unit j degree `j % (latent-1) + 1`, so
/// output i depends on exactly the inputs before it.
pub fn made_masks(latent: usize, hidden: usize) -> (Vec<f32>, Vec<f32>) {
    let hidden_degree = |j: usize| if latent > 1 { j % (latent - 1) + 1 } else { 1 };
    let mut m_in = vec![0f32; latent * hidden];
    let mut m_out = vec![0f32; hidden * latent];
    for j in 0..hidden {
        for i in 0..latent {
            m_in[i * hidden + j] = f32::from(hidden_degree(j) > i);
            m_out[j * latent + i] = f32::from(i + 1 > hidden_degree(j) && latent > 1);
        }
    }
    (m_in, m_out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_masks_are_strictly_autoregressive() {
        let (d, h) = (5, 12);
        let (m_in, m_out) = made_masks(d, h);
        for out in 0..d {
            for inp in 0..d {
                let connected = (0..h).any(|j| m_in[inp * h + j] > 0.0 && m_out[j * d + out] > 0.0);
                assert_eq!(connected, inp < out, "input {inp} → output {out}");
            }
        }
    }

    #[test]
    fn grids_follow_the_tile() {
        let cfg: VlaeConfig =
            serde_json::from_str(&std::fs::read_to_string("models/vlae-mnist.json").unwrap())
                .unwrap();
        let a = Architecture::new(&cfg);
        assert_eq!(a.encoder.conv_half.table.n_out, 14 * 14);
        assert_eq!(a.encoder.head.inputs, 49 * 32);
        assert_eq!(a.decoder.up_full.table.n_out, 28 * 28);
        assert_eq!(a.pixelcnn.input.table.taps, 12);
    }
}
