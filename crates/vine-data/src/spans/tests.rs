use proptest::prelude::*;

use super::*;

/// The step (index into `steps`) in which byte `b` lies: the last step starting at or before
/// `b`, or step 0.
fn owner(steps: &[Range<usize>], b: usize) -> usize {
    (0..steps.len())
        .rev()
        .find(|&j| steps[j].start <= b)
        .unwrap_or(0)
}

/// Straightforward restatement of the rule: every step's first token, for the steps that own a
/// token, in order, with the first one moved to token 0.
fn naive(token_starts: &[usize], steps: &[Range<usize>]) -> Vec<usize> {
    if token_starts.is_empty() {
        return vec![];
    }
    if steps.is_empty() {
        return vec![0];
    }
    let mut firsts: Vec<usize> = (0..steps.len())
        .filter_map(|j| (0..token_starts.len()).find(|&i| owner(steps, token_starts[i]) == j))
        .collect();
    firsts.sort();
    firsts[0] = 0;
    firsts
}

/// Ranges partitioning `0..len` at the given cut points.
fn partition(len: usize, mut cuts: Vec<usize>) -> Vec<Range<usize>> {
    cuts.retain(|&c| c > 0 && c < len);
    cuts.sort();
    cuts.dedup();
    let mut bounds = vec![0];
    bounds.extend(cuts);
    bounds.push(len);
    bounds.windows(2).map(|w| w[0]..w[1]).collect()
}

#[test]
fn one_token_per_step() {
    let steps = partition(10, vec![3, 7]);
    assert_eq!(
        step_token_starts(&[0, 3, 7], &steps).unwrap(),
        vec![0, 1, 2]
    );
}

#[test]
fn straddling_token_belongs_where_it_starts() {
    // Steps "\nA" | "\nB\n#### 72\n"; tokens "\n", "A\n" (starts in step 0, crosses into step
    // 1), "B", "\n####", " 72", "\n".
    let text = "\nA\nB\n#### 72\n";
    let steps = vec![0..2, 2..text.len()];
    let tokens = [0, 1, 3, 4, 9, 12];
    let starts = step_token_starts(&tokens, &steps).unwrap();
    assert_eq!(starts, vec![0, 2]);
    assert_eq!(token_steps(&starts, tokens.len()), vec![0, 0, 1, 1, 1, 1]);
}

#[test]
fn tokenless_step_merges_into_previous() {
    // Step 1 (bytes 4..5) is covered by a token starting in step 0.
    let steps = vec![0..4, 4..5, 5..9];
    assert_eq!(
        step_token_starts(&[0, 2, 5, 7], &steps).unwrap(),
        vec![0, 2]
    );
}

#[test]
fn first_step_without_tokens_still_starts_at_zero() {
    let steps = vec![0..2, 2..6, 6..9];
    assert_eq!(step_token_starts(&[3, 4, 6], &steps).unwrap(), vec![0, 2]);
}

#[test]
fn eos_past_the_end_belongs_to_last_step() {
    let steps = vec![0..3, 3..6];
    let starts = step_token_starts(&[0, 3, 6], &steps).unwrap();
    assert_eq!(starts, vec![0, 1]);
    assert_eq!(token_steps(&starts, 3), vec![0, 1, 1]);
}

#[test]
fn degenerate_inputs() {
    assert_eq!(
        step_token_starts(&[], &[Range { start: 0, end: 3 }]).unwrap(),
        Vec::<usize>::new()
    );
    assert_eq!(step_token_starts(&[0, 1, 2], &[]).unwrap(), vec![0]);
    assert_eq!(token_steps(&[0], 3), vec![0, 0, 0]);
    assert!(token_steps(&[], 0).is_empty());
}

#[test]
fn out_of_order_inputs_are_errors() {
    let err = step_token_starts(&[0, 5, 4], &[Range { start: 0, end: 9 }]).unwrap_err();
    assert_eq!(
        err,
        SpanError::TokensOutOfOrder {
            index: 2,
            start: 4,
            previous: 5
        }
    );
    assert!(err
        .to_string()
        .contains("token 2 starts at byte 4 after token 1 at byte 5"));
    let err = step_token_starts(&[0], &[0..3, 5..6, 3..5]).unwrap_err();
    assert_eq!(
        err,
        SpanError::StepsOutOfOrder {
            index: 2,
            start: 3,
            previous: 5
        }
    );
}

fn case() -> impl Strategy<Value = (Vec<usize>, Vec<Range<usize>>)> {
    (1usize..60).prop_flat_map(|len| {
        let cuts = prop::collection::vec(0..len, 0..12);
        let tokens = prop::collection::vec(0..=len, 0..40);
        (cuts, tokens).prop_map(move |(cuts, mut tokens)| {
            tokens.sort();
            (tokens, partition(len, cuts))
        })
    })
}

proptest! {
    #[test]
    fn matches_naive((tokens, steps) in case()) {
        prop_assert_eq!(step_token_starts(&tokens, &steps).unwrap(), naive(&tokens, &steps));
    }

    #[test]
    fn invariants((tokens, steps) in case()) {
        let starts = step_token_starts(&tokens, &steps).unwrap();
        if tokens.is_empty() {
            prop_assert!(starts.is_empty());
            return Ok(());
        }
        prop_assert_eq!(starts[0], 0);
        prop_assert!(starts.windows(2).all(|w| w[0] < w[1]));
        prop_assert!(starts.iter().all(|&s| s < tokens.len()));
        prop_assert!(starts.len() <= steps.len().max(1));
        // One resulting step per distinct owning step, and every token of a resulting step is
        // owned by original steps that no other resulting step touches.
        let owners: Vec<usize> = tokens.iter().map(|&b| owner(&steps, b)).collect();
        let mut distinct = owners.clone();
        distinct.dedup();
        prop_assert_eq!(starts.len(), distinct.len());
        let assigned = token_steps(&starts, tokens.len());
        prop_assert_eq!(assigned.len(), tokens.len());
        for i in 1..tokens.len() {
            prop_assert_eq!(assigned[i] != assigned[i - 1], owners[i] != owners[i - 1]);
        }
    }

    #[test]
    fn tokens_at_every_step_start_give_one_entry_per_step(len in 1usize..80, cuts in prop::collection::vec(0usize..80, 0..10)) {
        let steps = partition(len, cuts);
        let tokens: Vec<usize> = steps.iter().map(|s| s.start).collect();
        let starts = step_token_starts(&tokens, &steps).unwrap();
        prop_assert_eq!(starts, (0..steps.len()).collect::<Vec<_>>());
    }
}
