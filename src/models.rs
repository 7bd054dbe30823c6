//! Models compiled into the binary, so that an installed `vlae-zip` works from any folder
//! with no files beside it. Archives name models by fingerprint, so a decoder offers
//! every built-in model and picks the one each lane names.
#![forbid(unsafe_code)]

use crate::config::VlaeConfig;
use crate::infer::network::Network;
use crate::infer::weights::{ModelError, Weights};

/// A model shipped inside the binary.
pub struct BuiltIn {
    /// The name `--model` takes.
    pub name: &'static str,
    /// What it was trained on, for `vlae-zip models`.
    pub trained_on: &'static str,
    pub weights: &'static [u8],
    pub config: &'static str,
    /// Whether `auto` codes with it.
    pub auto: bool,
}

/// A [`BuiltIn`] whose weights and config are `models/STEM.safetensors` and
/// `models/STEM.json`, so that each model names its files once.
macro_rules! built_in {
    ($name:literal, $stem:literal, $trained_on:expr, auto: $auto:literal) => {
        BuiltIn {
            name: $name,
            trained_on: $trained_on,
            weights: include_bytes!(concat!("../models/", $stem, ".safetensors")),
            config: include_str!(concat!("../models/", $stem, ".json")),
            auto: $auto,
        }
    };
}

/// Every built-in model; `auto` tries those marked so.
pub const BUILT_IN: &[BuiltIn] = &[
    built_in!(
        "mnist",
        "vlae-mnist",
        "binarized MNIST, 50,000 training digits (28×28), 31 epochs",
        auto: true
    ),
    built_in!(
        "documents",
        "vlae-documents",
        "64 text pages rendered from 24 man pages (6 fonts, 8-14 pt, 150-400 dpi, some scan-like), 32×32 tiles with context, 8 epochs",
        auto: true
    ),
    built_in!(
        "caltech",
        "vlae-caltech",
        "Caltech-101 Silhouettes 28×28, 5,728 training images, fine-tuned from mnist, 38 epochs",
        auto: true
    ),
    built_in!(
        "omniglot",
        "vlae-omniglot",
        "OMNIGLOT characters reduced to 28×28, 4,356 training images moved by up to 2 pixels, fine-tuned from mnist",
        auto: true
    ),
];

impl BuiltIn {
    pub fn vlae_config(&self) -> Result<VlaeConfig, ModelError> {
        Ok(VlaeConfig::from_json(self.config, self.name)?)
    }

    /// The deterministic network the coder runs.
    pub fn network(&self) -> Result<Network, ModelError> {
        let cfg = self.vlae_config()?;
        Network::new(&Weights::from_bytes(self.weights, self.name, &cfg)?, &cfg)
    }
}

/// The built-in model called `name`.
pub fn built_in(name: &str) -> Option<&'static BuiltIn> {
    BUILT_IN.iter().find(|m| m.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_models_load_and_are_the_shipped_files() {
        let files = [
            "vlae-mnist",
            "vlae-documents",
            "vlae-caltech",
            "vlae-omniglot",
        ];
        assert_eq!(BUILT_IN.len(), files.len());
        for (m, file) in BUILT_IN.iter().zip(files) {
            let net = m.network().unwrap();
            let dir = std::path::Path::new("models");
            let file = Network::load(
                &dir.join(file).with_extension("safetensors"),
                &dir.join(file).with_extension("json"),
            )
            .unwrap();
            assert_eq!(net.fingerprint(), file.fingerprint(), "{}", m.name);
        }
        assert!(built_in("documents").is_some() && built_in("nope").is_none());
    }
}
