//! `Task` over the real datasets in `../shared/data` (or `$VINEPPO_DATA_DIR`): the standard
//! layout, and the reference solutions graded correct by the task's own grader.

use std::path::PathBuf;

use vine_data::{Task, TaskConfig, TaskKind};

fn data_dir() -> PathBuf {
    let dir = std::env::var_os("VINEPPO_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data"))
        });
    assert!(
        dir.join("gsm8k/train.jsonl").exists(),
        "datasets not found in {}; set VINEPPO_DATA_DIR",
        dir.display()
    );
    dir
}

fn load(kind: TaskKind) -> Task {
    Task::load(&TaskConfig {
        kind,
        data_dir: Some(data_dir()),
        ..TaskConfig::default()
    })
    .unwrap()
}

/// Every reference solution, rendered as the SFT target, grades correct and splits into steps
/// that partition it.
fn check_targets(task: &Task, examples: &[vine_data::Example]) {
    for ex in examples {
        let response = task.target(ex);
        assert!(task.grade(&response, ex).correct, "{}: {response:?}", ex.id);
        let steps = task.split_steps(&response).unwrap();
        assert_eq!(steps.first().unwrap().start, 0);
        assert_eq!(steps.last().unwrap().end, response.len());
        assert!(
            steps.windows(2).all(|w| w[0].end == w[1].start),
            "{}",
            ex.id
        );
    }
}

#[test]
fn gsm8k() {
    let task = load(TaskKind::Gsm8k);
    assert_eq!((task.train().len(), task.test().len()), (7_473, 1_319));
    check_targets(&task, task.test());
    let ex = &task.test()[0];
    assert_eq!(
        task.query(ex),
        format!("[MATH_TASK] Problem:\n{}\n\nSolution:", ex.question)
    );
}

#[test]
fn math500_is_the_reference_split() {
    let task = load(TaskKind::Math500);
    assert_eq!((task.train().len(), task.test().len()), (12_000, 500));
    check_targets(&task, task.test());
    // The spec's test vector: the \det solution splits after the first `=` inside the math.
    let response = "\nWe have that $\\det (\\mathbf{A} \\mathbf{B}) = (\\det \\mathbf{A})(\\det \\mathbf{B}) = (2)(12) = \\boxed{24}.$\n";
    let steps = task.split_steps(response).unwrap();
    assert_eq!(steps.len(), 2);
    assert_eq!(
        &response[steps[0].clone()],
        "\nWe have that $\\det (\\mathbf{A} \\mathbf{B}) ="
    );
}

#[test]
fn math_is_the_original_split() {
    let task = load(TaskKind::Math);
    assert_eq!((task.train().len(), task.test().len()), (7_500, 5_000));
    check_targets(&task, task.test());
}
