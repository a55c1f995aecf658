use super::*;

/// Writes `text` to a file named `name` in a fresh temporary directory.
fn file(name: &str, text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

/// Expected values from the reference's regex:
/// ```python
/// import re
/// f = lambda t: re.sub(re.escape("<<") + ".*?" + re.escape(">>"), "", t, flags=re.DOTALL)
/// for t in [...]: print(repr(t), "->", repr(f(t)))
/// ```
#[test]
fn calculator_annotations_match_reference_regex() {
    let cases = [
        (
            "Natalia sold 48/2 = <<48/2=24>>24 clips.",
            "Natalia sold 48/2 = 24 clips.",
        ),
        ("<<a>>b<<c>>", "b"),
        ("<<<a>>>", ">"),
        ("x<<a\nb>>y", "xy"),
        ("a<<b", "a<<b"),
        ("a>>b<<c", "a>>b<<c"),
        ("<<>>", ""),
        ("<<a<<b>>c>>", "c>>"),
        ("é<<ü>>ß", "éß"),
    ];
    for (input, expected) in cases {
        assert_eq!(
            strip_calculator_annotations(input),
            expected,
            "input {input:?}"
        );
    }
}

#[test]
fn gsm8k_row_is_preprocessed_like_the_reference() {
    let row = r##"{"question": "  Natalia sold clips.\n", "answer": "She sold 48/2 = <<48/2=24>>24.\n#### 1,072 "}"##;
    let (_dir, path) = file("train.jsonl", &format!("{row}\n\n"));
    let examples = load_gsm8k(&path).unwrap();
    assert_eq!(
        examples,
        vec![Example {
            id: "train.jsonl:1".into(),
            question: "Natalia sold clips.".into(),
            solution: "She sold 48/2 = 24.\n#### 1,072 ".into(),
            answer: "1,072".into(),
            level: None,
            subject: None,
        }]
    );
}

#[test]
fn blank_lines_bom_and_crlf_are_accepted() {
    let row = r##"{"question": "q", "answer": "a\n#### 1"}"##;
    let (_dir, path) = file("x.jsonl", &format!("\u{feff}{row}\r\n\r\n   \n{row}\r\n"));
    let examples = load_gsm8k(&path).unwrap();
    assert_eq!(examples.len(), 2);
    assert_eq!(examples[1].id, "x.jsonl:4");
}

/// The message of the error loading `text` with `load`.
fn error(load: fn(&Path) -> Result<Vec<Example>, DatasetError>, text: &str) -> String {
    let (_dir, path) = file("bad.jsonl", text);
    let message = load(&path).unwrap_err().to_string();
    assert!(message.contains("bad.jsonl"), "no file name in: {message}");
    message
}

fn gsm8k(path: &Path) -> Result<Vec<Example>, DatasetError> {
    load_gsm8k(path)
}

fn math(path: &Path) -> Result<Vec<Example>, DatasetError> {
    load_math(path)
}

fn math500(path: &Path) -> Result<Vec<Example>, DatasetError> {
    load_math500(path)
}

#[test]
fn malformed_lines_name_file_line_and_expectation() {
    let good = r##"{"question": "q", "answer": "a\n#### 1"}"##;
    let m = error(
        gsm8k,
        &format!("{good}\n{{\"question\": \"q\", \"answer\": \n"),
    );
    assert!(
        m.contains("line 2") && m.contains("expected one JSON object per line"),
        "{m}"
    );
    let m = error(gsm8k, "[1, 2]\n");
    assert!(m.contains("line 1") && m.contains("found an array"), "{m}");
    let m = error(gsm8k, &format!("{good}\n\n{{\"question\": \"q\"}}\n"));
    assert!(
        m.contains("line 3") && m.contains("`answer`") && m.contains("missing"),
        "{m}"
    );
    let m = error(gsm8k, "{\"question\": 5, \"answer\": \"#### 1\"}");
    assert!(
        m.contains("`question`") && m.contains("expected a string, found a number"),
        "{m}"
    );
    let m = error(gsm8k, r##"{"question": "q", "answer": "no marker"}"##);
    assert!(
        m.contains("`answer`") && m.contains("no `#### <answer>`"),
        "{m}"
    );
    let m = error(
        gsm8k,
        "{\"question\": \"q\", \"answer\": \"#### 1\\n#### 2\"}",
    );
    assert!(m.contains("more than one `####`"), "{m}");
    let m = error(gsm8k, r##"{"question": "q", "answer": "x\n####  "}"##);
    assert!(m.contains("empty"), "{m}");
}

const MATH_ROW: &str = r##"{"problem": "Find $x$.", "solution": "So $x = \\boxed{\\frac{1}{2}}$, not \\boxed{3}... wait, $\\boxed{\\frac{14}{3}}$.", "level": "Level 2", "type": "Algebra", "unique_id": "train/algebra/7.json"}"##;

#[test]
fn math_answer_is_last_boxed_brace_matched() {
    let (_dir, path) = file("math.jsonl", MATH_ROW);
    let ex = &load_math(&path).unwrap()[0];
    assert_eq!(ex.answer, r"\frac{14}{3}");
    assert_eq!(ex.id, "train/algebra/7.json");
    assert_eq!(ex.question, "Find $x$.");
    assert_eq!(ex.level.as_deref(), Some("Level 2"));
    assert_eq!(ex.subject.as_deref(), Some("Algebra"));
}

#[test]
fn math_errors() {
    let m = error(math, &MATH_ROW.replace("boxed", "fbax"));
    assert!(
        m.contains("`solution`") && m.contains("no `\\boxed{…}`"),
        "{m}"
    );
    let m = error(math, &MATH_ROW.replace(r#""type": "Algebra", "#, ""));
    assert!(m.contains("`type`") && m.contains("missing"), "{m}");
    let m = error(math, &MATH_ROW.replace(r#""Level 2""#, "2"));
    assert!(m.contains("`level`") && m.contains("found a number"), "{m}");
}

#[test]
fn math500_level_integer_becomes_level_text() {
    let row = r##"{"problem": "p", "solution": "s \\boxed{3}", "answer": "3", "subject": "Algebra", "level": 4, "unique_id": "test/algebra/1.json"}"##;
    let (_dir, path) = file("m5.jsonl", row);
    let ex = &load_math500(&path).unwrap()[0];
    assert_eq!(ex.level.as_deref(), Some("Level 4"));
    assert_eq!(ex.answer, "3");
    let m = error(math500, &row.replace("4,", "4.5,"));
    assert!(
        m.contains("`level`") && m.contains("expected an integer or a string"),
        "{m}"
    );
}

#[test]
fn missing_file_is_an_io_error_naming_it() {
    let err = load_gsm8k("/nonexistent/gsm8k/train.jsonl").unwrap_err();
    assert!(matches!(err, DatasetError::Io { .. }));
    assert!(
        err.to_string()
            .contains("cannot read `/nonexistent/gsm8k/train.jsonl`"),
        "{err}"
    );
}

#[test]
fn write_then_load_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("arith.jsonl");
    let examples: Vec<Example> = (0..3)
        .map(|i| Example {
            id: format!("e{i}"),
            question: format!("Mia has {i} \"quoted\" apples.\nHow many?"),
            solution: format!("Mia has {i} + 1 = {} apples.\n#### {}", i + 1, i + 1),
            answer: (i + 1).to_string(),
            level: None,
            subject: None,
        })
        .collect();
    write_gsm8k_jsonl(&path, &examples).unwrap();
    let back = load_gsm8k(&path).unwrap();
    assert_eq!(back.len(), 3);
    for (a, b) in examples.iter().zip(&back) {
        // The GSM8K loader strips the question, as the reference does.
        assert_eq!(a.question.trim(), b.question);
        assert_eq!(a.solution, b.solution);
        assert_eq!(a.answer, b.answer);
    }
    assert!(!dir.path().join("arith.jsonl.tmp").exists());
}

#[test]
fn prm800k_split_moves_non_held_out_test_rows_to_train() {
    let ex = |id: &str| Example {
        id: id.into(),
        question: id.into(),
        solution: String::new(),
        answer: String::new(),
        level: None,
        subject: None,
    };
    let splits = prm800k_split(
        vec![ex("train/a/0.json"), ex("train/a/1.json")],
        vec![
            ex("test/a/0.json"),
            ex("test/a/1.json"),
            ex("test/a/2.json"),
        ],
        vec![ex("test/a/1.json")],
    );
    let ids = |v: &[Example]| v.iter().map(|e| e.id.clone()).collect::<Vec<_>>();
    assert_eq!(
        ids(&splits.train),
        [
            "train/a/0.json",
            "train/a/1.json",
            "test/a/0.json",
            "test/a/2.json"
        ]
    );
    assert_eq!(ids(&splits.test), ["test/a/1.json"]);
}
