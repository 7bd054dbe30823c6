//! The model's hyper-parameters, stored as JSON beside the weights. Both the candle model
//! and the deterministic coder are built from this one description.

#![forbid(unsafe_code)]

use crate::geometry::Canvas;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Architecture of a VLAE (see `models/README.md` for the weight names it implies).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VlaeConfig {
    /// Dimensions of the latent z.
    pub latent_dim: usize,
    /// Encoder channels at 28×28, 14×14 and 7×7.
    pub enc_channels: [usize; 3],
    /// Decoder channels at 7×7 and 14×14 before the 28×28 conditioning map.
    pub dec_channels: [usize; 2],
    /// Channels of the 28×28 conditioning map the decoder hands to the PixelCNN.
    pub cond_channels: usize,
    /// PixelCNN feature channels.
    pub pixel_channels: usize,
    /// Kernel size of the mask-A input layer of the PixelCNN (odd).
    pub first_kernel: usize,
    /// Residual mask-B 3×3 blocks of the PixelCNN.
    pub pixel_blocks: usize,
    /// MADE steps of the autoregressive-flow prior.
    pub prior_steps: usize,
    /// Hidden units of each MADE.
    pub prior_hidden: usize,
    /// Side of the square tile the model codes (a multiple of 4: the encoder halves it
    /// twice). Left out of the JSON when it is the MNIST model's 28, as that model's
    /// shipped config is written.
    #[serde(default = "mnist_tile", skip_serializing_if = "is_mnist_tile")]
    pub tile: usize,
    /// Whether the PixelCNN's input layer also reads the already-decoded pixels around the
    /// tile (`first_kernel / 2` rows above, columns either side: format-spec.md §5.3).
    /// Left out of the JSON, and of the canonical bytes, when false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub context: bool,
}

/// The tile of models whose config predates the field.
pub const MNIST_TILE: usize = 28;

fn mnist_tile() -> usize {
    MNIST_TILE
}

fn is_mnist_tile(t: &usize) -> bool {
    *t == MNIST_TILE
}

impl VlaeConfig {
    /// Reads a config from a JSON file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::Io(path.display().to_string(), e))?;
        Self::from_json(&text, &path.display().to_string())
    }

    /// Rejects configs the code cannot build (so a bad file fails early with a reason).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let [latent, e0, e1, e2, d0, d1, cz, c, _, _, _, hidden, _] = self.fields();
        let sizes = [latent, e0, e1, e2, d0, d1, cz, c, hidden];
        if sizes.iter().any(|&s| s == 0 || s > 4096)
            || self.pixel_blocks > 64
            || self.prior_steps > 64
        {
            return Err(ConfigError::Invalid(
                "a size is zero or implausibly large".into(),
            ));
        }
        if self.tile % 4 != 0 || !(4..=128).contains(&self.tile) {
            return Err(ConfigError::Invalid(
                "tile must be a multiple of 4 in 4..=128".into(),
            ));
        }
        if self.first_kernel % 2 == 0 || self.first_kernel > 15 {
            return Err(ConfigError::Invalid(
                "first_kernel must be odd and at most 15".into(),
            ));
        }
        Ok(())
    }

    /// The config as JSON: two-space indented, one array element per line, no final
    /// newline.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("config serializes")
    }

    /// The config as the fixed binary encoding fingerprints hash: every field as
    /// a little-endian u32, in the order of format-spec.md §1.3.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut fields = self.fields().to_vec();
        if self.context {
            fields.push(1);
        }
        fields
            .iter()
            .flat_map(|&v| (v as u32).to_le_bytes())
            .collect()
    }

    /// The window the PixelCNN's input layer reads around each tile.
    pub fn canvas(&self) -> Canvas {
        Canvas {
            side: self.tile,
            margin: if self.context {
                self.first_kernel / 2
            } else {
                0
            },
        }
    }

    /// Every field, in the order of format-spec.md §1.3.
    fn fields(&self) -> [usize; 13] {
        [
            self.latent_dim,
            self.enc_channels[0],
            self.enc_channels[1],
            self.enc_channels[2],
            self.dec_channels[0],
            self.dec_channels[1],
            self.cond_channels,
            self.pixel_channels,
            self.first_kernel,
            self.pixel_blocks,
            self.prior_steps,
            self.prior_hidden,
            self.tile,
        ]
    }

    /// Pixels in one tile.
    pub fn tile_pixels(&self) -> usize {
        self.tile * self.tile
    }

    /// Parses and validates a config from JSON text.
    pub fn from_json(text: &str, name: &str) -> Result<Self, ConfigError> {
        let cfg: Self =
            serde_json::from_str(text).map_err(|e| ConfigError::Parse(name.to_string(), e))?;
        cfg.validate()?;
        Ok(cfg)
    }
}

/// Why a config could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read model config {0}: {1}")]
    Io(String, std::io::Error),
    #[error("model config {0} is not valid JSON for this version: {1}")]
    Parse(String, serde_json::Error),
    #[error("model config is invalid: {0}")]
    Invalid(String),
}
