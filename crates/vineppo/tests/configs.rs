//! Every config shipped in `configs/` resolves and validates.

use std::path::Path;

use vineppo::config::{self, TrainConfig};

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
