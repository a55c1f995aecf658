//! Step splitters against the reference implementation's output.
//!
//! `tests/data/{math,gsm8k}_steps.jsonl` hold steps produced by the reference splitters
//! (`split_solution_inplace` of `math_extract_steps_inplace.py` and
//! `GSM8K.split_solution_into_intermediate_steps` of `gsm8k.py`, VinePPO commit `efe7228`) on
//! 200 MATH and 60 GSM8K reference solutions in the SFT response format (`"\n" + solution +
//! "\n"`, GSM8K calculator annotations removed), plus 60 randomly perturbed responses each
//! (truncated, spliced, with stray `$`, `\(`, `\begin{…}`, blank and whitespace-only lines). The
//! response is the concatenation of the steps; `"steps": null` marks a reference parse failure
//! (the GSM8K marker twice), stored with its `"response"`. Produced by:
//!
//! ```python
//! def cut(s, ix): return [s[ix[i]:ix[i + 1]] for i in range(len(ix) - 1)]
//! rng = random.Random(20241001)
//! for d in rng.sample([d for d in math if len(d['solution']) < 1500], 200):
//!     s = '\n' + d['solution'] + '\n'
//!     row = {'source': d['unique_id'], 'steps': cut(s, split_solution_inplace(s))}
//! for d in rng.sample(gsm8k_train, 60):
//!     s = '\n' + re.sub(r"<<.*?>>", "", d['answer'], flags=re.DOTALL) + '\n'
//!     row = {'source': 'gsm8k/train', 'steps': cut(s, task.split_solution_into_intermediate_steps(s))}
//! # perturbed rows: the same calls on mutated responses; a ValueError gives "steps": null
//! ```
//!
//! Exact equality is required, except for the one documented deviation: an empty step (the
//! reference's first step of an all-blank GSM8K response) is merged into the next one.

use std::ops::Range;

use serde::Deserialize;
use vine_math::{split_gsm8k, split_math};

#[derive(Deserialize)]
struct Row {
    source: String,
    steps: Option<Vec<String>>,
    response: Option<String>,
}

fn rows(name: &str) -> Vec<Row> {
    let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    text.lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

fn pieces<'a>(text: &'a str, ranges: &[Range<usize>]) -> Vec<&'a str> {
    ranges.iter().map(|r| &text[r.clone()]).collect()
}

#[test]
fn math_splitter_matches_reference_table() {
    let rows = rows("math_steps.jsonl");
    assert_eq!(rows.len(), 260);
    for row in rows {
        let want = row.steps.unwrap();
        let response = want.concat();
        let got = split_math(&response);
        assert_eq!(
            pieces(&response, &got),
            want,
            "source {}: {response:?}",
            row.source
        );
    }
}

#[test]
fn gsm8k_splitter_matches_reference_table() {
    let rows = rows("gsm8k_steps.jsonl");
    assert_eq!(rows.len(), 120);
    for row in rows {
        match row.steps {
            Some(want) => {
                let response = want.concat();
                let want: Vec<&str> = want
                    .iter()
                    .map(String::as_str)
                    .filter(|s| !s.is_empty())
                    .collect();
                let got = split_gsm8k(&response).unwrap();
                assert_eq!(
                    pieces(&response, &got),
                    want,
                    "{}: {response:?}",
                    row.source
                );
            }
            None => assert_eq!(split_gsm8k(&row.response.unwrap()), None),
        }
    }
}

/// The spec's worked examples (vineppo-spec.md §1.2), from the reference splitter.
#[test]
fn spec_vectors() {
    let gsm = "\nA\nB\n#### 72\n";
    assert_eq!(
        pieces(gsm, &split_gsm8k(gsm).unwrap()),
        ["\nA", "\nB\n#### 72\n"]
    );
    assert_eq!(split_gsm8k("\nA\n#### 1\n#### 2"), None);

    let det = "\nWe have that $\\det (\\mathbf{A} \\mathbf{B}) = (\\det \\mathbf{A})(\\det \\mathbf{B}) = (2)(12) = \\boxed{24}.$\n";
    assert_eq!(
        pieces(det, &split_math(det)),
        [
            "\nWe have that $\\det (\\mathbf{A} \\mathbf{B}) =",
            " (\\det \\mathbf{A})(\\det \\mathbf{B}) = (2)(12) = \\boxed{24}.$\n"
        ]
    );

    // MATH train/algebra/943.json
    let domain = "\nThe expressions inside each square root must be non-negative. Therefore, $x-2 \\ge 0$, so $x\\ge2$, and $5 - x \\ge 0$, so $x \\le 5$. Also, the denominator cannot be equal to zero, so $5-x>0$, which gives $x<5$. Therefore, the domain of the expression is $\\boxed{[2,5)}$.\n";
    assert_eq!(
        pieces(domain, &split_math(domain)),
        [
            "\nThe expressions inside each square root must be non-negative.",
            " Therefore, $x-2 \\ge 0$, so $x\\ge2$, and $5 - x \\ge 0$, so $x \\le 5$.",
            " Also, the denominator cannot be equal to zero, so $5-x>0$, which gives $x<5$.",
            " Therefore, the domain of the expression is $\\boxed{[2,5)}$.\n",
        ]
    );

    // MATH train/algebra/256.json
    let terrell = "\nIf Terrell lifts two 20-pound weights 12 times, he lifts a total of $2\\cdot 12\\cdot20=480$ pounds of weight.  If he lifts two 15-pound weights instead for $n$ times, he will lift a total of $2\\cdot15\\cdot n=30n$ pounds of weight.  Equating this to 480 pounds, we can solve for $n$: \\begin{align*}\n30n&=480\\\\\n\\Rightarrow\\qquad n&=480/30=\\boxed{16}\n\\end{align*}\n";
    assert_eq!(
        pieces(terrell, &split_math(terrell)),
        [
            "\nIf Terrell lifts two 20-pound weights 12 times,",
            " he lifts a total of $2\\cdot 12\\cdot20=480$ pounds of weight.",
            "  If he lifts two 15-pound weights instead for $n$ times,",
            " he will lift a total of $2\\cdot15\\cdot n=30n$ pounds of weight.",
            "  Equating this to 480 pounds, we can solve for $n$: \\begin{align*}",
            "\n30n&=480\\\\",
            "\n\\Rightarrow\\qquad n&=480/30=\\boxed{16}",
            "\n\\end{align*}\n",
        ]
    );
}

/// Where the reference raises (and drops the trajectory) we still return a partition.
#[test]
fn reference_failures_still_partition() {
    // Truncated text whose unbalanced `$` swallows a `\[…\]` region (nested placeholders).
    let nested = "k^4 = a.$  Since $a$ is nonzero, $k^4 = 1.$  Then $k^4 - 1 = 0,$ which factors as\n\\[(k - 1)(k + 1)(k^2 + 1) = 0.\\]This means $k$ is one of $1,$ $-1,$ $i,$ or $-i.$\n\nIf $a = b = ";
    let steps = split_math(nested);
    assert_eq!(pieces(nested, &steps).concat(), nested);
    assert!(steps.len() > 1);
    // Shorter than 20 characters: one step.
    assert_eq!(split_math("\nx = 5\n"), vec![0..7]);
}
