//! Every config shipped in `configs/` resolves and validates.

use std::path::Path;

use vine_data::TaskKind;
use vineppo::config::dpo::DpoConfig;
use vineppo::config::restem::{EpochSelection, RestemConfig};
use vineppo::config::{self, Dtype, TrainConfig};

#[test]
fn shipped_train_configs_resolve() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs");
    let mut checked = 0;
    for task in std::fs::read_dir(&root).unwrap() {
        for file in std::fs::read_dir(task.unwrap().path()).unwrap() {
            let path = file.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if !["vineppo.toml", "ppo.toml", "grpo.toml", "rloo.toml"].contains(&name.as_str()) {
                continue;
            }
            let cfg: TrainConfig = config::load(Some(&path), &[])
                .unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
            let method = name.trim_end_matches(".toml");
            assert_eq!(
                config::method_name(&cfg.credit),
                method,
                "{}",
                path.display()
            );
            checked += 1;
        }
    }
    assert!(checked >= 8, "only {checked} configs found");
}

#[test]
fn shipped_baseline_configs_resolve_with_the_reference_hyperparameters() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs");
    for task in ["arith", "gsm8k", "math"] {
        let dir = root.join(task);
        let load_restem = |name: &str| -> RestemConfig {
            let path = dir.join(name);
            config::load(Some(&path), &[]).unwrap_or_else(|e| panic!("{}: {e:#}", path.display()))
        };
        let restem = load_restem("restem.toml");
        let path = dir.join("dpo.toml");
        let dpo: DpoConfig =
            config::load(Some(&path), &[]).unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
        // Reports label a run with the `method` its saved config.toml starts with.
        assert!(config::to_toml(&restem)
            .unwrap()
            .starts_with("method = \"RestEM\""));
        assert!(config::to_toml(&dpo)
            .unwrap()
            .starts_with("method = \"DPO+\""));
        if task == "arith" {
            assert_eq!(restem.model.device, "cpu");
            continue;
        }
        for (device, dtype) in [
            (&restem.model.device, restem.model.dtype),
            (&dpo.model.device, dpo.model.dtype),
        ] {
            assert_eq!((device.as_str(), dtype), ("cuda", Dtype::Bf16), "{task}");
        }
        let (r, d) = (&restem.restem, &dpo.dpo);
        assert_eq!(
            (restem.rollout.samples_per_problem, r.max_per_problem),
            (8, Some(10))
        );
        assert_eq!(
            (r.epochs, r.batch_size, r.selection),
            (8, 64, EpochSelection::FirstDrop)
        );
        assert_eq!(
            (
                restem.run.iterations,
                restem.optim.lr,
                restem.rollout.temperature
            ),
            (10, 1e-6, 0.6)
        );
        assert_eq!(
            (dpo.rollout.samples_per_problem, d.max_pairs_per_problem),
            (64, Some(64))
        );
        assert_eq!(
            (d.epochs, d.batch_size, d.lambda, dpo.optim.lr),
            (3, 64, 50.0, 1e-6)
        );
        let (kind, validation, beta) = match task {
            "gsm8k" => (TaskKind::Gsm8k, 373, 0.3),
            _ => (TaskKind::Math500, 500, 0.1),
        };
        assert_eq!((restem.task.kind, dpo.task.kind), (kind, kind));
        assert_eq!((r.validation_size, d.beta), (validation, beta));
    }
}
