//! The three `arith` story shapes. Each builds a question and a solution with one computation
//! per line, for a requested number of computation lines.
//!
//! - `collection`: one person's running count changes by events (buys, gives away, a share,
//!   containers of several things, selling everything at a price).
//! - `comparison`: a chain of people, each defined relative to the previous one ("4 more than",
//!   "3 times as many as", "a third as many as"), optionally ending with a sum of the last two.
//! - `shopping`: quantities times prices, summed, optionally subtracted from the bill paid.

use super::collection::collection;
use super::draft::{capitalize, join_and, Dice, Draft};
use super::words;
use super::{Op, Story};

/// A problem of the given shape with `steps` computation lines, or `None` when the dice led
/// somewhere infeasible (the caller draws again).
pub(super) fn draft(story: Story, dice: &mut Dice<'_>, steps: usize) -> Option<Draft> {
    match story {
        Story::Collection => collection(dice, steps),
        Story::Comparison => comparison(dice, steps),
        Story::Shopping => shopping(dice, steps),
    }
}

/// A chain of people, each relative to the previous one.
fn comparison(dice: &mut Dice<'_>, steps: usize) -> Option<Draft> {
    let together = steps >= 2 && dice.allows(Op::Add) && dice.chance(1.0 / 3.0);
    let chain = if together { steps - 1 } else { steps };
    let people = dice.people(chain + 2);
    let (thing, other) = dice.things();
    let mut d = Draft::new(Story::Comparison);
    let mut counts = vec![dice.amount()];
    d.statements
        .push(format!("{} has {} {thing}.", people[0].name, counts[0]));
    for i in 1..=chain {
        let (prev, this, x) = (people[i - 1].name, people[i].name, counts[i - 1]);
        let (op, b, relation) = relation(dice, x, thing)?;
        d.statements.push(format!("{this} has {relation} {prev}."));
        counts.push(d.calc(x, op, b, |c| format!("{this} has {c} {thing}.")));
    }
    let last = people[chain].name;
    d.answer = counts[chain];
    d.question = format!("How many {thing} does {last} have?");
    if together {
        let (before, x, y) = (people[chain - 1].name, counts[chain - 1], counts[chain]);
        if x + y > dice.config.max_value {
            return None;
        }
        d.question = format!("How many {thing} do {before} and {last} have together?");
        d.answer = d.calc(x, Op::Add, y, |c| {
            format!("Together they have {c} {thing}.")
        });
    }
    if dice.chance(dice.config.distractor_rate) {
        let sentence = format!("{} has {} {other}.", people[chain + 1].name, dice.amount());
        let at = 1 + dice.index(d.statements.len());
        d.statements.insert(at, sentence);
    }
    Some(d)
}

/// A feasible relation to a count `x`, trying the allowed operations in random order:
/// the operation, its operand and the words ("4 more marbles than").
fn relation(dice: &mut Dice<'_>, x: u64, thing: &str) -> Option<(Op, u64, String)> {
    let mut ops: Vec<Op> = Op::ALL.into_iter().filter(|&op| dice.allows(op)).collect();
    while !ops.is_empty() {
        let op = ops.swap_remove(dice.index(ops.len()));
        let found = match op {
            Op::Add => dice
                .add_operand(x)
                .map(|b| (b, format!("{b} more {thing} than"))),
            Op::Sub => dice
                .sub_operand(x)
                .map(|b| (b, format!("{b} fewer {thing} than"))),
            Op::Mul => dice
                .mul_factor(x)
                .map(|k| (k, format!("{} as many {thing} as", words::times(k)))),
            Op::Div => dice
                .div_factor(x)
                .and_then(|k| Some((k, format!("{} as many {thing} as", words::fraction(k)?)))),
        };
        if let Some((b, words)) = found {
            return Some((op, b, words));
        }
    }
    None
}

/// Quantities times prices, a total, and possibly change from a round bill.
fn shopping(dice: &mut Dice<'_>, steps: usize) -> Option<Draft> {
    let (items, change) = (steps.div_ceil(2), steps % 2 == 0);
    let feasible = (1..=6).contains(&steps)
        && dice.allows(Op::Mul)
        && (items < 2 || dice.allows(Op::Add))
        && (!change || dice.allows(Op::Sub));
    if !feasible {
        return None;
    }
    let who = dice.people(1)[0];
    let mut d = Draft::new(Story::Shopping);
    let (goods, prices) = offer(dice, &mut d, items);
    let mut costs = Vec::new();
    let mut bought = Vec::new();
    for (good, &price) in goods.iter().zip(&prices) {
        let q = dice.mul_factor(price)?;
        bought.push(format!("{q} {good}"));
        costs.push(d.calc(q, Op::Mul, price, |c| {
            format!("The {good} cost {c} dollars.")
        }));
    }
    d.statements
        .push(format!("{} buys {}.", who.name, join_and(&bought)));
    let mut total = costs[0];
    for (i, &cost) in costs.iter().enumerate().skip(1) {
        if total + cost > dice.config.max_value {
            return None;
        }
        let line = |c: &str| match i + 1 == items {
            true => format!("{} spends {c} dollars in total.", who.name),
            false => format!("The {} and the {} cost {c} dollars.", goods[0], goods[1]),
        };
        total = d.calc(total, Op::Add, cost, line);
    }
    d.question = format!("How many dollars does {} spend?", who.name);
    d.answer = total;
    if change {
        let bill = [
            10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000,
        ]
        .into_iter()
        .find(|&b| b >= total + 2 && b <= dice.config.max_value)?;
        d.statements.push(format!(
            "{} pays with a {bill} dollar bill.",
            capitalize(who.subject)
        ));
        d.question = format!("How much change in dollars does {} get?", who.name);
        let back = |c: &str| format!("{} gets {c} dollars back.", who.name);
        d.answer = d.calc(bill, Op::Sub, total, back);
    }
    Some(d)
}

/// States what the shop sells: `items` goods to buy, plus (with the distractor rate) one more
/// that nobody buys, listed at a random position. Returns the goods to buy and their prices.
fn offer(dice: &mut Dice<'_>, d: &mut Draft, items: usize) -> (Vec<&'static str>, Vec<u64>) {
    let distractor = dice.chance(dice.config.distractor_rate);
    let mut pool: Vec<&'static str> = words::GOODS.to_vec();
    let shown = items + usize::from(distractor);
    let goods: Vec<&'static str> = (0..shown)
        .map(|_| pool.swap_remove(dice.index(pool.len())))
        .collect();
    let prices: Vec<u64> = (0..shown).map(|_| dice.amount()).collect();
    let mut offers: Vec<String> = goods
        .iter()
        .zip(&prices)
        .map(|(g, p)| format!("{g} for {p} dollars each"))
        .collect();
    if distractor {
        let unbought = offers.remove(items);
        let at = dice.index(offers.len() + 1);
        offers.insert(at, unbought);
    }
    let shop = dice.pick(words::SHOPS);
    d.statements
        .push(format!("{shop} sells {}.", join_and(&offers)));
    (goods[..items].to_vec(), prices[..items].to_vec())
}
