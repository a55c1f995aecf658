use super::*;

fn example(i: usize) -> Example {
    Example {
        id: format!("e{i}"),
        question: format!("Problem {i}?"),
        solution: format!("Solution {i}.\n#### {i}"),
        answer: i.to_string(),
        level: None,
        subject: None,
    }
}

#[test]
fn reference_format_is_exact() {
    let t = PromptTemplate::default();
    assert_eq!(
        t.query("What is 1+1?"),
        "[MATH_TASK] Problem:\nWhat is 1+1?\n\nSolution:"
    );
    assert_eq!(t.target("1+1 = 2.\n#### 2"), "\n1+1 = 2.\n#### 2\n");
    assert!(t.bos() && t.eos());
    assert_eq!(t.stop(), ["\n\n\nProblem:"]);
    assert_eq!(t.shots(), 0);
}

#[test]
fn chat_presets_are_exact() {
    let chatml = PromptTemplate::preset(PromptPreset::Chatml);
    assert_eq!(
        chatml.query("Q"),
        "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful \
         assistant.<|im_end|>\n<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n"
    );
    assert_eq!(chatml.target("S"), "S");
    assert!(!chatml.bos() && chatml.eos());
    let llama = PromptTemplate::preset(PromptPreset::Llama3);
    assert_eq!(
        llama.query("Q"),
        "<|start_header_id|>user<|end_header_id|>\n\nQ<|eot_id|>\
         <|start_header_id|>assistant<|end_header_id|>\n\n"
    );
    assert!(llama.bos() && llama.eos());
    assert_eq!(llama.stop(), ["<|eot_id|>"]);
}

#[test]
fn braces_escape_and_problem_text_is_not_interpreted() {
    let config = PromptConfig {
        query: r"Put the answer in \boxed{{}}: {problem}".into(),
        ..PromptConfig::default()
    };
    let t = PromptTemplate::new(&config, &[]).unwrap();
    // Braces in the substituted problem stay as they are.
    assert_eq!(
        t.query("{few_shot} $x^{2}$"),
        r"Put the answer in \boxed{}: {few_shot} $x^{2}$"
    );
}

fn build(query: &str, target: &str) -> Result<PromptTemplate, PromptError> {
    let config = PromptConfig {
        query: query.into(),
        target: target.into(),
        ..Default::default()
    };
    PromptTemplate::new(&config, &[])
}

#[test]
fn template_errors_at_construction() {
    let err = build("{question}", "{solution}").unwrap_err();
    assert_eq!(
        err,
        PromptError::UnknownPlaceholder {
            field: "query",
            name: "question".into(),
            allowed: "`{problem}`, `{few_shot}`".into()
        }
    );
    assert!(
        err.to_string().contains("unknown placeholder `{question}`"),
        "{err}"
    );
    let err = build("{problem}", "{problem}").unwrap_err();
    assert!(matches!(
        err,
        PromptError::UnknownPlaceholder {
            field: "target",
            ..
        }
    ));
    let err = build("no slot", "{solution}").unwrap_err();
    assert_eq!(
        err,
        PromptError::MissingPlaceholder {
            field: "query",
            name: "problem"
        }
    );
    assert_eq!(
        build("{problem} {oops", "{solution}").unwrap_err(),
        PromptError::UnbalancedBrace {
            field: "query",
            brace: '{',
            position: 10
        }
    );
    assert_eq!(
        build("{problem} }", "{solution}").unwrap_err(),
        PromptError::UnbalancedBrace {
            field: "query",
            brace: '}',
            position: 10
        }
    );
    let m = build("{problem}", "a}b{solution}").unwrap_err().to_string();
    assert!(m.contains("write `{{` or `}}`"), "{m}");
}

#[test]
fn few_shot_block_is_fixed_and_never_shows_the_problem_itself() {
    let pool: Vec<Example> = (0..20).map(example).collect();
    let config = PromptConfig {
        few_shot: Some(FewShotConfig {
            k: 3,
            seed: 5,
            ..Default::default()
        }),
        ..Default::default()
    };
    let t = PromptTemplate::new(&config, &pool).unwrap();
    assert_eq!(t.shots(), 3);
    let query = t.query("New problem?");
    assert!(
        query.ends_with("\n\n\n[MATH_TASK] Problem:\nNew problem?\n\nSolution:"),
        "{query}"
    );
    assert_eq!(query.matches("Solution:\nSolution ").count(), 3);
    assert!(query.starts_with("Problem:\nProblem "));
    // Same block for every other problem.
    let block = query
        .strip_suffix("[MATH_TASK] Problem:\nNew problem?\n\nSolution:")
        .unwrap();
    assert!(t.query("Other?").starts_with(block));
    // A shot's own problem gets the spare instead.
    for ex in &pool {
        let q = t.query(&ex.question);
        assert_eq!(
            q.matches(&format!("Solution:\n{}", ex.solution)).count(),
            0,
            "{q}"
        );
        assert_eq!(q.matches("Solution:\nSolution ").count(), 3);
    }
    // Deterministic in the seed, different across seeds.
    assert_eq!(PromptTemplate::new(&config, &pool).unwrap(), t);
    let other = PromptConfig {
        few_shot: Some(FewShotConfig {
            k: 3,
            seed: 6,
            ..Default::default()
        }),
        ..Default::default()
    };
    assert_ne!(
        PromptTemplate::new(&other, &pool)
            .unwrap()
            .query("New problem?"),
        query
    );
}

#[test]
fn few_shot_errors() {
    let few = |k| {
        Some(FewShotConfig {
            k,
            ..Default::default()
        })
    };
    let config = PromptConfig {
        few_shot: few(3),
        ..Default::default()
    };
    let pool: Vec<Example> = (0..2).map(example).collect();
    assert_eq!(
        PromptTemplate::new(&config, &pool).unwrap_err(),
        PromptError::NotEnoughExamples { k: 3, available: 2 }
    );
    let config = PromptConfig {
        query: "{problem}".into(),
        few_shot: few(1),
        ..Default::default()
    };
    assert_eq!(
        PromptTemplate::new(&config, &pool).unwrap_err(),
        PromptError::FewShotWithoutSlot
    );
    let bad_shot = FewShotConfig {
        k: 1,
        shot: "{problem}".into(),
        ..Default::default()
    };
    let config = PromptConfig {
        few_shot: Some(bad_shot),
        ..Default::default()
    };
    assert_eq!(
        PromptTemplate::new(&config, &pool).unwrap_err(),
        PromptError::MissingPlaceholder {
            field: "few_shot.shot",
            name: "solution"
        }
    );
    // k = 0 is the same as no few-shot block, with or without a slot.
    let config = PromptConfig {
        query: "{problem}".into(),
        few_shot: few(0),
        ..Default::default()
    };
    assert_eq!(PromptTemplate::new(&config, &[]).unwrap().query("x"), "x");
    // Exactly k examples: no spare, the block is used as is.
    let config = PromptConfig {
        few_shot: few(2),
        ..Default::default()
    };
    let t = PromptTemplate::new(&config, &pool).unwrap();
    assert_eq!(
        t.query("Problem 0?")
            .matches("Solution:\nSolution ")
            .count(),
        2
    );
}

#[test]
fn spec_deserialises_from_name_or_table() {
    let spec: PromptSpec = serde_json::from_str(r#""chatml""#).unwrap();
    assert_eq!(spec, PromptSpec::Preset(PromptPreset::Chatml));
    assert_eq!(spec.config(), PromptConfig::preset(PromptPreset::Chatml));
    let err = serde_json::from_str::<PromptSpec>(r#""gpt""#)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("unknown prompt preset `gpt`") && err.contains("llama3"),
        "{err}"
    );
    let spec: PromptSpec = serde_json::from_str(
        r#"{"query": "Q: {problem}\nA:", "bos": false, "few_shot": {"k": 2}}"#,
    )
    .unwrap();
    let PromptSpec::Custom(config) = spec else {
        panic!("expected a table")
    };
    assert_eq!(config.query, "Q: {problem}\nA:");
    assert_eq!(config.target, "\n{solution}\n");
    assert!(!config.bos);
    assert_eq!(config.few_shot.unwrap().separator, "\n\n\n");
    let err = serde_json::from_str::<PromptSpec>(r#"{"querry": "x"}"#)
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown field `querry`"), "{err}");
}

#[test]
fn every_preset_is_valid() {
    for preset in [
        PromptPreset::Reference,
        PromptPreset::Chatml,
        PromptPreset::Llama3,
    ] {
        let config = PromptConfig::preset(preset);
        assert!(PromptTemplate::new(&config, &[]).is_ok(), "{preset:?}");
        // Every preset can take a few-shot block.
        let pool: Vec<Example> = (0..4).map(example).collect();
        let few = PromptConfig {
            few_shot: Some(FewShotConfig {
                k: 2,
                ..Default::default()
            }),
            ..config
        };
        assert_eq!(PromptTemplate::new(&few, &pool).unwrap().shots(), 2);
    }
}
