use std::collections::HashSet;

use super::*;

fn small(seed: u64) -> ArithConfig {
    ArithConfig {
        seed,
        train_size: 2_000,
        test_size: 300,
        ..ArithConfig::default()
    }
}

/// The computation `(a, op, b, c)` of a solution line: the tokens around its single `=`.
fn computation(line: &str) -> (u64, char, u64, u64) {
    let tokens: Vec<&str> = line.split_whitespace().collect();
    let eq: Vec<usize> = (0..tokens.len()).filter(|&i| tokens[i] == "=").collect();
    assert_eq!(eq.len(), 1, "not exactly one `=` in {line:?}");
    let i = eq[0];
    assert!(i >= 3 && i + 1 < tokens.len(), "malformed line {line:?}");
    let number = |t: &str| t.trim_end_matches('.').parse::<u64>().unwrap();
    let op = tokens[i - 2].chars().next().unwrap();
    assert_eq!(tokens[i - 2].len(), 1, "operator in {line:?}");
    (
        number(tokens[i - 3]),
        op,
        number(tokens[i - 1]),
        number(tokens[i + 1]),
    )
}

/// Every number in a text, including the multipliers and fractions written as words.
fn numbers(text: &str) -> Vec<u64> {
    let mut found: Vec<u64> = text
        .split(|c: char| !c.is_ascii_digit())
        .filter(|t| !t.is_empty())
        .map(|t| t.parse().unwrap())
        .collect();
    let words = [
        ("twice", 2),
        ("half", 2),
        ("a third", 3),
        ("a quarter", 4),
        ("a fifth", 5),
        ("a sixth", 6),
        ("a seventh", 7),
        ("an eighth", 8),
        ("a ninth", 9),
        ("a tenth", 10),
    ];
    for (word, value) in words {
        found.extend(std::iter::repeat_n(value, text.matches(word).count()));
    }
    found
}

/// Checks one example; returns its computations.
fn check(ex: &Example, config: &ArithConfig) -> Vec<(u64, char, u64, u64)> {
    let lines: Vec<&str> = ex.solution.lines().collect();
    let (last, body) = lines.split_last().unwrap();
    assert_eq!(*last, format!("#### {}", ex.answer), "{}", ex.solution);
    assert!(
        (config.min_steps..=config.max_steps).contains(&body.len()),
        "{}",
        ex.solution
    );
    assert_eq!(ex.level, Some(format!("{} steps", body.len())));
    let given: HashSet<u64> = numbers(&ex.question).into_iter().collect();
    let mut known = given.clone();
    let mut calcs = Vec::new();
    for line in body {
        let (a, op, b, c) = computation(line);
        let value = match op {
            '+' => a + b,
            '-' => a.checked_sub(b).unwrap(),
            '*' => a * b,
            '/' => {
                assert_eq!(a % b, 0, "inexact division in {line:?}");
                a / b
            }
            other => panic!("unknown operator {other:?} in {line:?}"),
        };
        assert_eq!(value, c, "wrong arithmetic in {line:?}");
        // Operands come from the question or from earlier lines: the solution is grounded.
        assert!(
            known.contains(&a) && known.contains(&b),
            "ungrounded operand in {line:?}\n{}",
            ex.question
        );
        assert!(c >= 2 && c <= config.max_value, "{line:?}");
        known.insert(c);
        calcs.push((a, op, b, c));
    }
    assert_eq!(calcs.last().unwrap().3.to_string(), ex.answer);
    assert!(!ex.question.contains('\n') && !ex.question.contains("####"));
    assert!(ex.question.ends_with('?'), "{}", ex.question);
    calcs
}

#[test]
fn every_solution_is_correct_and_grounded() {
    let config = small(1);
    let splits = generate(&config).unwrap();
    assert_eq!(splits.train.len(), 2_000);
    assert_eq!(splits.test.len(), 300);
    for ex in splits.train.iter().chain(&splits.test) {
        check(ex, &config);
    }
}

#[test]
fn splits_are_disjoint_in_text_and_arithmetic() {
    let splits = generate(&small(2)).unwrap();
    let questions: HashSet<&str> = splits.train.iter().map(|e| e.question.as_str()).collect();
    let config = small(2);
    let train_math: HashSet<_> = splits.train.iter().map(|e| check(e, &config)).collect();
    assert_eq!(
        train_math.len(),
        splits.train.len(),
        "repeated arithmetic within train"
    );
    for ex in &splits.test {
        assert!(!questions.contains(ex.question.as_str()));
        assert!(
            !train_math.contains(&check(ex, &config)),
            "test arithmetic also in train: {}",
            ex.solution
        );
    }
    // Across seeds too: a test problem of one seed is never a training problem of another.
    let other = generate(&small(3)).unwrap();
    let other_train: HashSet<_> = other.train.iter().map(|e| check(e, &config)).collect();
    assert!(splits
        .test
        .iter()
        .all(|e| !other_train.contains(&check(e, &config))));
}

#[test]
fn deterministic_and_prefix_stable() {
    let a = generate(&small(4)).unwrap();
    assert_eq!(a, generate(&small(4)).unwrap());
    assert_ne!(a.train[..10], generate(&small(5)).unwrap().train[..10]);
    let bigger = generate(&ArithConfig {
        train_size: 2_500,
        test_size: 10,
        ..small(4)
    })
    .unwrap();
    assert_eq!(bigger.train[..2_000], a.train[..]);
    assert_eq!(bigger.test[..], a.test[..10]);
}

/// Pins the generator: the first training problem of the default config. A change here changes
/// every `arith` run; update it deliberately.
#[test]
fn first_problem_is_pinned() {
    let splits = generate(&ArithConfig {
        train_size: 1,
        test_size: 1,
        ..ArithConfig::default()
    })
    .unwrap();
    assert_eq!(splits.train[0].question, PINNED_QUESTION);
    assert_eq!(splits.train[0].solution, PINNED_SOLUTION);
}

const PINNED_QUESTION: &str = "Ruby has 42 cupcakes. Leah has 21 fewer cupcakes than Ruby. Mia has 7 \
    times as many cupcakes as Leah. Clara has 14 more cupcakes than Mia. How many cupcakes does Clara have?";
const PINNED_SOLUTION: &str = "Leah has 42 - 21 = 21 cupcakes.\nMia has 21 * 7 = 147 cupcakes.\n\
    Clara has 147 + 14 = 161 cupcakes.\n#### 161";

/// `answer_only_rate` changes solutions only: the same problems in the same order, a share of
/// training solutions reduced to their final line (the rest unchanged), test solutions worked.
#[test]
fn answer_only_rate_keeps_the_problems_and_strips_some_training_solutions() {
    let worked = generate(&small(3)).unwrap();
    let mixed = generate(&ArithConfig {
        answer_only_rate: 0.5,
        ..small(3)
    })
    .unwrap();
    assert_eq!(mixed.test, worked.test);
    let mut bare = 0;
    for (m, w) in mixed.train.iter().zip(&worked.train) {
        assert_eq!(
            (&m.id, &m.question, &m.answer),
            (&w.id, &w.question, &w.answer)
        );
        if m.solution != w.solution {
            bare += 1;
            assert_eq!(m.solution, format!("#### {}", w.answer));
        }
    }
    // 2,000 fair draws: 1,000 ± 22 (1 σ); ±150 is 6.7 σ.
    assert!(
        (850..=1_150).contains(&bare),
        "{bare} bare solutions of 2000"
    );
    // The choice is a function of the problem and the seed, not of the stream position.
    let fewer = generate(&ArithConfig {
        answer_only_rate: 0.5,
        train_size: 500,
        ..small(3)
    })
    .unwrap();
    assert_eq!(fewer.train[..], mixed.train[..500]);
    let all = generate(&ArithConfig {
        answer_only_rate: 1.0,
        ..small(3)
    })
    .unwrap();
    assert!(all.train.iter().all(|e| e.solution.starts_with("#### ")));
}

#[test]
fn knobs_shape_the_problems() {
    // Division alone runs out of distinct problems quickly (every quotient must divide again),
    // so keep those sizes and chains small.
    let one_op = |op: Op| ArithConfig {
        operations: vec![op],
        train_size: 60,
        test_size: 20,
        min_steps: 1,
        max_steps: 2,
        ..small(6)
    };
    for op in Op::ALL {
        let config = one_op(op);
        let splits = generate(&config).unwrap();
        for ex in &splits.train {
            assert!(
                check(ex, &config).iter().all(|c| c.1 == op.symbol()),
                "{}",
                ex.solution
            );
        }
    }
    let config = ArithConfig {
        min_steps: 5,
        max_steps: 6,
        digits: 3,
        max_value: 99_999,
        ..small(7)
    };
    let splits = generate(&config).unwrap();
    let mut saw_three_digit_operand = false;
    for ex in &splits.train {
        for (a, op, b, _) in check(ex, &config) {
            saw_three_digit_operand |= matches!(op, '+' | '-') && (a >= 100 || b >= 100);
        }
    }
    assert!(saw_three_digit_operand);
    let plain = ArithConfig {
        distractor_rate: 0.0,
        ..small(8)
    };
    for ex in generate(&plain).unwrap().train {
        // Without distractors every number in the question is used by the solution.
        let used: HashSet<u64> = check(&ex, &plain).iter().flat_map(|c| [c.0, c.2]).collect();
        assert!(
            numbers(&ex.question).iter().all(|n| used.contains(n)),
            "{}\n{}",
            ex.question,
            ex.solution
        );
    }
}

#[test]
fn text_stays_short_and_varied() {
    let config = small(9);
    let splits = generate(&config).unwrap();
    let words: Vec<usize> = splits
        .train
        .iter()
        .map(|e| e.question.split_whitespace().count())
        .collect();
    let mean = words.iter().sum::<usize>() as f64 / words.len() as f64;
    assert!(
        (20.0..=50.0).contains(&mean),
        "mean question length {mean} words"
    );
    assert!(
        words.iter().all(|&w| (8..=90).contains(&w)),
        "question lengths {:?}",
        words.iter().max()
    );
    let subjects: HashSet<_> = splits
        .train
        .iter()
        .map(|e| e.subject.clone().unwrap())
        .collect();
    assert_eq!(subjects.len(), 3, "{subjects:?}");
    let openings: HashSet<_> = splits
        .train
        .iter()
        .map(|e| e.question.split_whitespace().nth(1).unwrap())
        .collect();
    assert!(openings.len() >= 4, "{openings:?}");
}

#[test]
fn invalid_configs_are_errors() {
    let bad = |config: ArithConfig, field: &str| {
        let err = generate(&config).unwrap_err();
        assert!(
            matches!(&err, ArithError::Invalid { field: f, .. } if *f == field),
            "{err}"
        );
        assert!(err.to_string().contains(field));
    };
    bad(
        ArithConfig {
            min_steps: 0,
            ..small(1)
        },
        "min_steps",
    );
    bad(
        ArithConfig {
            min_steps: 3,
            max_steps: 2,
            ..small(1)
        },
        "max_steps",
    );
    bad(
        ArithConfig {
            digits: 0,
            ..small(1)
        },
        "digits",
    );
    bad(
        ArithConfig {
            max_factor: 1,
            ..small(1)
        },
        "max_factor",
    );
    bad(
        ArithConfig {
            max_value: 50,
            ..small(1)
        },
        "max_value",
    );
    bad(
        ArithConfig {
            operations: vec![],
            ..small(1)
        },
        "operations",
    );
    bad(
        ArithConfig {
            distractor_rate: 1.5,
            ..small(1)
        },
        "distractor_rate",
    );
    bad(
        ArithConfig {
            answer_only_rate: -0.1,
            ..small(1)
        },
        "answer_only_rate",
    );
}

#[test]
fn too_few_distinct_problems_is_an_error() {
    let tiny = ArithConfig {
        digits: 1,
        min_steps: 1,
        max_steps: 1,
        max_factor: 2,
        operations: vec![Op::Sub],
        ..small(1)
    };
    let err = generate(&tiny).unwrap_err();
    assert!(
        matches!(
            err,
            ArithError::Exhausted {
                split: "train",
                wanted: 2_000,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("too few problems"));
}

#[test]
fn config_deserialises_with_defaults_and_rejects_unknown_keys() {
    let config: ArithConfig =
        serde_json::from_str(r#"{"digits": 3, "operations": ["add", "mul"]}"#).unwrap();
    assert_eq!(config.digits, 3);
    assert_eq!(config.operations, vec![Op::Add, Op::Mul]);
    assert_eq!(config.max_steps, ArithConfig::default().max_steps);
    let err = serde_json::from_str::<ArithConfig>(r#"{"digit": 3}"#)
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown field `digit`"), "{err}");
}

#[test]
fn gsm8k_splitter_gives_one_step_per_computation_line() {
    for ex in generate(&small(10)).unwrap().train.iter().take(500) {
        // The response as the reference's SFT target renders it: "\n{solution}\n".
        let response = format!("\n{}\n", ex.solution);
        let steps = vine_math::split_gsm8k(&response).unwrap();
        let lines: Vec<&str> = ex.solution.lines().collect();
        assert_eq!(steps.len(), lines.len() - 1, "{response:?}");
        for (step, line) in steps.iter().zip(&lines) {
            assert!(
                response[step.clone()].starts_with(&format!("\n{line}")),
                "{response:?}"
            );
        }
        assert!(response[steps.last().unwrap().clone()].ends_with(&format!("#### {}\n", ex.answer)));
    }
}

#[test]
fn answers_grade_correct_with_the_gsm8k_grader() {
    let splits = generate(&small(11)).unwrap();
    for ex in splits.train.iter().chain(&splits.test) {
        let response = format!("\n{}\n", ex.solution);
        let grade = vine_math::grade_gsm8k(&response, &ex.answer, vine_math::Gsm8kMode::Strict);
        assert!(grade.correct, "{response:?}");
        // Off by one in the last line's result is wrong.
        let wrong = format!("#### {}", ex.answer.parse::<u64>().unwrap() + 1);
        let response = response.replace(&format!("#### {}", ex.answer), &wrong);
        assert!(
            !vine_math::grade_gsm8k(&response, &ex.answer, vine_math::Gsm8kMode::Strict).correct
        );
    }
}
