//! The loaders against the real GSM8K / MATH / MATH-500 files in `../shared/data` (or
//! `$VINEPPO_DATA_DIR`). Counts and hashes of those files are in their README.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::OnceLock;

use vine_data::{load_gsm8k, load_math, load_math500, prm800k_split, Example, Splits};

fn data_dir() -> PathBuf {
    let dir = std::env::var_os("VINEPPO_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data"))
        });
    assert!(
        dir.join("math/train.jsonl").exists(),
        "datasets not found in {}; set VINEPPO_DATA_DIR",
        dir.display()
    );
    dir
}

/// The PRM800K split, loaded once for all tests.
fn math_splits() -> &'static Splits {
    static SPLITS: OnceLock<Splits> = OnceLock::new();
    SPLITS.get_or_init(|| {
        let dir = data_dir();
        prm800k_split(
            load_math(dir.join("math/train.jsonl")).unwrap(),
            load_math(dir.join("math/test.jsonl")).unwrap(),
            load_math500(dir.join("math/math500_test.jsonl")).unwrap(),
        )
    })
}

#[test]
fn prm800k_split_is_12000_and_500_and_disjoint() {
    let splits = math_splits();
    assert_eq!(splits.train.len(), 12_000);
    assert_eq!(splits.test.len(), 500);
    let train_ids: HashSet<&str> = splits.train.iter().map(|e| e.id.as_str()).collect();
    let train_problems: HashSet<&str> = splits.train.iter().map(|e| e.question.as_str()).collect();
    assert_eq!(train_ids.len(), 12_000, "duplicate ids in train");
    for ex in &splits.test {
        assert!(
            !train_ids.contains(ex.id.as_str()),
            "{} in both splits",
            ex.id
        );
        assert!(
            !train_problems.contains(ex.question.as_str()),
            "{} problem text in train",
            ex.id
        );
    }
    assert_eq!(
        splits
            .train
            .iter()
            .filter(|e| e.id.starts_with("test/"))
            .count(),
        4_500
    );
}

#[test]
fn math_rows_are_complete() {
    let splits = math_splits();
    let subjects: HashSet<&str> = splits
        .train
        .iter()
        .filter_map(|e| e.subject.as_deref())
        .collect();
    assert_eq!(subjects.len(), 7, "{subjects:?}");
    for ex in splits.train.iter().chain(&splits.test) {
        assert!(!ex.question.is_empty(), "{}", ex.id);
        assert!(
            ex.level.as_deref().is_some_and(|l| l.starts_with("Level ")),
            "{}",
            ex.id
        );
    }
    // Two solutions of the original release end in an empty `\boxed{}`.
    let empty: Vec<&str> = splits
        .train
        .iter()
        .filter(|e| e.answer.is_empty())
        .map(|e| e.id.as_str())
        .collect();
    assert_eq!(
        empty,
        [
            "train/number_theory/7115.json",
            "train/number_theory/7117.json"
        ]
    );
    // Nested braces survive the brace matching.
    let nested = splits
        .train
        .iter()
        .filter(|e| e.answer.contains(r"\frac{"))
        .count();
    assert!(nested > 100, "{nested}");
}

#[test]
fn math500_answer_field_agrees_with_the_last_box() {
    // MATH-500's pre-extracted `answer` mostly equals the last \boxed{} of its solution; the
    // grader re-extracts from the solution anyway, as the reference does.
    let splits = math_splits();
    let agree = splits
        .test
        .iter()
        .filter(|e| {
            vine_math::extract::last_boxed(&e.solution).as_deref() == Some(e.answer.as_str())
        })
        .count();
    assert!(agree >= 490, "{agree} of 500");
    let levels: Vec<usize> = (1..=5)
        .map(|l| {
            splits
                .test
                .iter()
                .filter(|e| e.level == Some(format!("Level {l}")))
                .count()
        })
        .collect();
    assert_eq!(levels, [43, 90, 105, 128, 134]);
}

#[test]
fn gsm8k_counts_and_preprocessing() {
    let dir = data_dir();
    let train = load_gsm8k(dir.join("gsm8k/train.jsonl")).unwrap();
    let test = load_gsm8k(dir.join("gsm8k/test.jsonl")).unwrap();
    assert_eq!((train.len(), test.len()), (7_473, 1_319));
    let check = |ex: &Example| {
        assert!(
            !ex.solution.contains("<<") && !ex.solution.contains(">>"),
            "{}",
            ex.id
        );
        let last = ex.solution.lines().last().unwrap();
        assert_eq!(last.trim(), format!("#### {}", ex.answer), "{}", ex.id);
        assert!(
            ex.answer
                .trim_start_matches('-')
                .replace(',', "")
                .parse::<u64>()
                .is_ok(),
            "{}",
            ex.answer
        );
    };
    train.iter().chain(&test).for_each(check);
    assert_eq!(train.iter().filter(|e| e.answer.contains(',')).count(), 79);
    assert_eq!(test.iter().filter(|e| e.answer.contains(',')).count(), 14);
    assert_eq!(train[0].id, "train.jsonl:1");
    assert_eq!(
        train[0].solution,
        "Natalia sold 48/2 = 24 clips in May.\nNatalia sold 48+24 = 72 clips altogether in April and May.\n#### 72"
    );
    let questions: HashSet<&str> = train.iter().map(|e| e.question.as_str()).collect();
    assert!(test
        .iter()
        .all(|e| !questions.contains(e.question.as_str())));
}
