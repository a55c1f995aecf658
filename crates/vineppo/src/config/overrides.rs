//! Reading TOML config files and applying `--set section.key=value` overrides to the value tree
//! before it is deserialised, so overrides are type-checked by the same code as the file.

use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::de::DeserializeOwned;
use toml::{Table, Value};

/// Parses a TOML file into a table; syntax errors carry the file name and line.
pub fn read_table(path: &Path) -> Result<Table> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading config `{}`", path.display()))?;
    text.parse::<Table>()
        .with_context(|| format!("config `{}` is not valid TOML", path.display()))
}

/// Applies `key.path=value` assignments in order. The value is read as a TOML value
/// (`3`, `1e-4`, `true`, `[1, 2]`, `"text"`); anything that does not parse is taken as a string.
pub fn apply_sets(table: &mut Table, sets: &[String]) -> Result<()> {
    for set in sets {
        let Some((key, raw)) = set.split_once('=') else {
            bail!("`--set {set}`: expected `section.key=value`, e.g. `--set ppo.kl_coef=1e-4`");
        };
        let key = key.trim();
        let path: Vec<&str> = key.split('.').collect();
        if key.is_empty() || path.iter().any(|p| p.is_empty()) {
            bail!("`--set {set}`: the key `{key}` is not a dotted path like `ppo.kl_coef`");
        }
        let value = parse_value(raw.trim());
        let (last, parents) = path.split_last().expect("non-empty path");
        let mut node = &mut *table;
        for (depth, part) in parents.iter().enumerate() {
            let entry = node
                .entry(part.to_string())
                .or_insert_with(|| Value::Table(Table::new()));
            node = match entry {
                Value::Table(t) => t,
                _ => bail!(
                    "`--set {set}`: `{}` is a value, not a section",
                    path[..=depth].join(".")
                ),
            };
        }
        node.insert(last.to_string(), value);
    }
    Ok(())
}

fn parse_value(raw: &str) -> Value {
    match format!("v = {raw}").parse::<Table>() {
        Ok(mut t) => t
            .remove("v")
            .unwrap_or_else(|| Value::String(raw.to_string())),
        Err(_) => Value::String(raw.to_string()),
    }
}

/// Deserialises a table, naming the offending key path in errors (`ppo.clip: invalid type …`).
pub fn deserialize<T: DeserializeOwned>(table: Table, what: &str) -> Result<T> {
    let text = toml::to_string(&table).context("re-serialising the config")?;
    let de = toml::Deserializer::parse(&text).context("re-reading the config")?;
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let msg = inner.message().to_string();
        if path == "." || path.is_empty() {
            anyhow::anyhow!("{what}: {msg}")
        } else {
            anyhow::anyhow!("{what}: `{path}`: {msg}")
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_create_sections_and_parse_types() {
        let mut t = Table::new();
        apply_sets(
            &mut t,
            &[
                "ppo.kl_coef=1e-3".into(),
                "run.out_dir=runs/x".into(),
                "a.b.c=[1, 2]".into(),
                "flag=true".into(),
            ],
        )
        .unwrap();
        assert_eq!(t["ppo"]["kl_coef"].as_float(), Some(1e-3));
        assert_eq!(t["run"]["out_dir"].as_str(), Some("runs/x"));
        assert_eq!(t["a"]["b"]["c"].as_array().map(|a| a.len()), Some(2));
        assert_eq!(t["flag"].as_bool(), Some(true));
    }

    #[test]
    fn bad_sets_are_explained() {
        let mut t = Table::new();
        t.insert("ppo".into(), Value::Integer(3));
        let e = apply_sets(&mut t, &["ppo.clip=0.2".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("`ppo` is a value"), "{e}");
        let e = apply_sets(&mut t, &["noequals".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("section.key=value"), "{e}");
    }
}
