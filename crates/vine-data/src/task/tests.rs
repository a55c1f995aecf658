use super::*;
use crate::prompt::{FewShotConfig, PromptPreset};

fn arith_config() -> TaskConfig {
    TaskConfig {
        arith: ArithConfig {
            train_size: 200,
            test_size: 40,
            ..ArithConfig::default()
        },
        ..TaskConfig::default()
    }
}

#[test]
fn kind_names_round_trip_through_serde() {
    for (kind, name) in [
        (TaskKind::Gsm8k, "gsm8k"),
        (TaskKind::Math, "math"),
        (TaskKind::Math500, "math500"),
        (TaskKind::Arith, "arith"),
    ] {
        assert_eq!(serde_json::to_string(&kind).unwrap(), format!("\"{name}\""));
        assert_eq!(
            serde_json::from_str::<TaskKind>(&format!("\"{name}\"")).unwrap(),
            kind
        );
        assert_eq!(kind.name(), name);
    }
    let err = serde_json::from_str::<TaskKind>("\"MATH\"")
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown variant `MATH`"), "{err}");
}

#[test]
fn arith_task_grades_and_splits_its_own_solutions() {
    let task = Task::load(&arith_config()).unwrap();
    assert_eq!(task.kind(), TaskKind::Arith);
    assert_eq!((task.train().len(), task.test().len()), (200, 40));
    for ex in task.train().iter().chain(task.test()) {
        let response = task.target(ex);
        assert_eq!(response, format!("\n{}\n", ex.solution));
        let grade = task.grade(&response, ex);
        assert!(grade.correct, "{response:?}");
        assert_eq!(grade.extracted.as_deref(), Some(ex.answer.as_str()));
        let steps = task.split_steps(&response).unwrap();
        assert_eq!(steps.len(), ex.solution.lines().count() - 1);
        // A wrong final answer, and a response without one, are incorrect.
        let wrong = response.replace(
            &format!("#### {}", ex.answer),
            &format!("#### {}1", ex.answer),
        );
        assert!(!task.grade(&wrong, ex).correct);
        assert!(!task.grade("\nI do not know.\n", ex).correct);
    }
    // The marker twice cannot be split: a parse failure, scored 0 by the trainer.
    assert_eq!(task.split_steps("\nA\n#### 1\n#### 2\n"), None);
}

#[test]
fn gsm8k_grading_mode_is_configurable() {
    let ex = &Task::load(&arith_config()).unwrap().test()[0].clone();
    let response = format!("\nSo the answer is\n#### {}.0\n", ex.answer);
    let strict = Task::load(&arith_config()).unwrap();
    assert!(!strict.grade(&response, ex).correct);
    let lenient = Task::load(&TaskConfig {
        gsm8k_grading: Gsm8kGrading::Lenient,
        ..arith_config()
    })
    .unwrap();
    assert!(lenient.grade(&response, ex).correct);
}

#[test]
fn config_deserialises_with_prompt_presets_and_rejects_unknown_keys() {
    let json =
        r#"{"kind": "arith", "prompt": "chatml", "arith": {"train_size": 30, "test_size": 5}}"#;
    let config: TaskConfig = serde_json::from_str(json).unwrap();
    assert_eq!(config.prompt, PromptSpec::Preset(PromptPreset::Chatml));
    let task = Task::load(&config).unwrap();
    assert!(task
        .query(&task.test()[0])
        .starts_with("<|im_start|>system\n"));
    assert!(!task.prompt().bos());
    let err = serde_json::from_str::<TaskConfig>(r#"{"kind": "arith", "data": "x"}"#).unwrap_err();
    assert!(err.to_string().contains("unknown field `data`"), "{err}");
}

#[test]
fn few_shot_examples_come_from_train() {
    let mut config = arith_config();
    let prompt = PromptConfig {
        few_shot: Some(FewShotConfig {
            k: 2,
            ..FewShotConfig::default()
        }),
        ..PromptConfig::default()
    };
    config.prompt = PromptSpec::Custom(prompt);
    let task = Task::load(&config).unwrap();
    assert_eq!(task.prompt().shots(), 2);
    let query = task.query(&task.test()[0]);
    let shots = task
        .train()
        .iter()
        .filter(|e| query.contains(&e.solution))
        .count();
    assert_eq!(shots, 2);
}

#[test]
fn arith_round_trips_through_gsm8k_files() {
    let generated = Task::load(&arith_config()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (train, test) = (
        dir.path().join("train.jsonl"),
        dir.path().join("test.jsonl"),
    );
    dataset::write_gsm8k_jsonl(&train, generated.train()).unwrap();
    dataset::write_gsm8k_jsonl(&test, generated.test()).unwrap();
    let config = TaskConfig {
        train_file: Some(train),
        test_file: Some(test),
        ..arith_config()
    };
    let loaded = Task::load(&config).unwrap();
    assert_eq!(loaded.kind(), TaskKind::Arith);
    for (a, b) in generated
        .train()
        .iter()
        .zip(loaded.train())
        .chain(generated.test().iter().zip(loaded.test()))
    {
        assert_eq!(
            (&a.question, &a.solution, &a.answer),
            (&b.question, &b.solution, &b.answer)
        );
        assert!(loaded.grade(&loaded.target(b), b).correct);
    }
}

#[test]
fn configuration_errors_are_clear() {
    let half = TaskConfig {
        train_file: Some("x.jsonl".into()),
        ..arith_config()
    };
    let err = Task::load(&half).unwrap_err();
    assert!(matches!(err, TaskError::HalfFiles("arith")), "{err}");
    assert!(err
        .to_string()
        .contains("set both `train_file` and `test_file`"));
    let missing = TaskConfig {
        kind: TaskKind::Gsm8k,
        data_dir: Some("/nonexistent".into()),
        ..arith_config()
    };
    let err = Task::load(&missing).unwrap_err().to_string();
    assert!(
        err.contains("cannot read `/nonexistent/gsm8k/train.jsonl`"),
        "{err}"
    );
    let err = TaskError::NoDataDir("math500").to_string();
    assert!(
        err.contains("VINEPPO_DATA_DIR") && err.contains("math500"),
        "{err}"
    );
    let empty = Splits {
        train: vec![],
        test: Task::load(&arith_config()).unwrap().test().to_vec(),
    };
    let err = Task::new(TaskKind::Gsm8k, empty, &PromptConfig::default()).unwrap_err();
    assert!(
        err.to_string().contains("the train split is empty"),
        "{err}"
    );
    let bad_prompt = TaskConfig {
        prompt: PromptSpec::Custom(PromptConfig {
            query: "{question}".into(),
            ..Default::default()
        }),
        ..arith_config()
    };
    assert!(matches!(
        Task::load(&bad_prompt).unwrap_err(),
        TaskError::Prompt(_)
    ));
    let bad_arith = TaskConfig {
        arith: ArithConfig {
            digits: 9,
            ..ArithConfig::default()
        },
        ..arith_config()
    };
    assert!(matches!(
        Task::load(&bad_arith).unwrap_err(),
        TaskError::Arith(_)
    ));
}

#[test]
fn long_prompts_are_dropped_from_train() {
    let mut task = Task::load(&arith_config()).unwrap();
    let words = |text: &str| text.split_whitespace().count();
    let lengths: Vec<usize> = task.train().iter().map(|e| words(&task.query(e))).collect();
    let limit = 40;
    let expected = lengths.iter().filter(|&&n| n > limit).count();
    assert!(expected > 0 && expected < lengths.len());
    assert_eq!(task.drop_long_prompts(limit, words), expected);
    assert_eq!(task.train().len(), lengths.len() - expected);
    assert!(task.train().iter().all(|e| words(&task.query(e)) <= limit));
    assert_eq!(task.test().len(), 40, "the test split is not filtered");
}
