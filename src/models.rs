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
}

/// Every built-in model; `auto` tries them all.
pub const BUILT_IN: &[BuiltIn] = &[BuiltIn {
    name: "mnist",
    trained_on: "binarized MNIST, 50,000 training digits (28×28)",
    weights: include_bytes!("../models/vlae-mnist.safetensors"),
    config: include_str!("../models/vlae-mnist.json"),
}];

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
        for m in BUILT_IN {
            let net = m.network().unwrap();
            let file = Network::load(
                "models/vlae-mnist.safetensors".as_ref(),
                "models/vlae-mnist.json".as_ref(),
            )
            .unwrap();
            assert_eq!(net.fingerprint(), file.fingerprint(), "{}", m.name);
        }
        assert!(built_in("mnist").is_some() && built_in("nope").is_none());
    }
}
