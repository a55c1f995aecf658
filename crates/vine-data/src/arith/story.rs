//! The three `arith` story shapes. Each builds a question and a solution with one computation
//! per line, for a requested number of computation lines.
//!
//! - `collection`: one person's running count changes by events (buys, gives away, a share,
//!   containers of several things, selling everything at a price).
//! - `comparison`: a chain of people, each defined relative to the previous one ("4 more than",
//!   "3 times as many as", "a third as many as"), optionally ending with a sum of the last two.
//! - `shopping`: quantities times prices, summed, optionally subtracted from the bill paid.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::words::{self, Person};
use super::{ArithConfig, Op, Story};

/// One computation `a op b = c`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) struct Calc {
    pub a: u64,
    pub op: Op,
    pub b: u64,
    pub c: u64,
}

impl std::fmt::Display for Calc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} {} = {}", self.a, self.op.symbol(), self.b, self.c)
    }
}

/// A generated problem before it becomes an [`crate::Example`].
#[derive(Debug, Clone)]
pub(super) struct Draft {
    pub story: Story,
    /// Sentences before the question.
    pub statements: Vec<String>,
    /// The final question sentence.
    pub question: String,
    /// One solution line per computation.
    pub lines: Vec<String>,
    /// The computations, in line order.
    pub calcs: Vec<Calc>,
    /// The final answer.
    pub answer: u64,
}

impl Draft {
    fn new(story: Story) -> Self {
        Self {
            story,
            statements: Vec::new(),
            question: String::new(),
            lines: Vec::new(),
            calcs: Vec::new(),
            answer: 0,
        }
    }

    /// Records `a op b` and its solution line, built by `line` from the computation's text.
    fn calc(&mut self, a: u64, op: Op, b: u64, line: impl FnOnce(&str) -> String) -> u64 {
        let c = op.apply(a, b);
        let calc = Calc { a, op, b, c };
        self.lines.push(line(&calc.to_string()));
        self.calcs.push(calc);
        c
    }
}

/// The random choices of one problem, within the configured bounds.
pub(super) struct Dice<'a> {
    pub rng: &'a mut ChaCha8Rng,
    pub config: &'a ArithConfig,
}

impl Dice<'_> {
    /// Uniform in `lo..=hi` (`lo <= hi`).
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        self.rng.random_range(lo..=hi)
    }

    fn index(&mut self, len: usize) -> usize {
        self.range(0, len as u64 - 1) as usize
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.index(items.len())]
    }

    fn chance(&mut self, p: f64) -> bool {
        self.rng.random_bool(p.clamp(0.0, 1.0))
    }

    fn allows(&self, op: Op) -> bool {
        self.config.operations.contains(&op)
    }

    /// Smallest and largest operand of `+`/`-` and starting amount: `digits` digits, at least 2.
    fn amount_bounds(&self) -> (u64, u64) {
        let hi = 10u64.pow(self.config.digits) - 1;
        (
            10u64.pow(self.config.digits - 1).max(2),
            hi.min(self.config.max_value),
        )
    }

    fn amount(&mut self) -> u64 {
        let (lo, hi) = self.amount_bounds();
        self.range(lo, hi)
    }

    /// `b` such that `x + b` stays within `max_value`.
    fn add_operand(&mut self, x: u64) -> Option<u64> {
        let (lo, hi) = self.amount_bounds();
        let hi = hi.min(self.config.max_value.checked_sub(x)?);
        (lo <= hi).then(|| self.range(lo, hi))
    }

    /// `b` such that `x - b >= 2`.
    fn sub_operand(&mut self, x: u64) -> Option<u64> {
        let (lo, hi) = self.amount_bounds();
        let hi = hi.min(x.checked_sub(2)?);
        (lo <= hi).then(|| self.range(lo, hi))
    }

    /// `k >= 2` such that `x * k` stays within `max_value`.
    fn mul_factor(&mut self, x: u64) -> Option<u64> {
        let hi = self.config.max_factor.min(self.config.max_value / x.max(1));
        (hi >= 2).then(|| self.range(2, hi))
    }

    /// `k` in `2..=min(max_factor, 10)` dividing `x` with `x / k >= 2`.
    fn div_factor(&mut self, x: u64) -> Option<u64> {
        let divisors: Vec<u64> = (2..=self.config.max_factor.min(10))
            .filter(|k| x % k == 0 && x / k >= 2)
            .collect();
        (!divisors.is_empty()).then(|| self.pick(&divisors))
    }

    /// `n` distinct people.
    fn people(&mut self, n: usize) -> Vec<Person> {
        let mut pool: Vec<Person> = words::PEOPLE.to_vec();
        (0..n.min(pool.len()))
            .map(|_| pool.swap_remove(self.index(pool.len())))
            .collect()
    }

    /// Two different things to count.
    fn things(&mut self) -> (&'static str, &'static str) {
        let first = self.index(words::THINGS.len());
        let second = (first + 1 + self.index(words::THINGS.len() - 1)) % words::THINGS.len();
        (words::THINGS[first], words::THINGS[second])
    }
}

fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    chars
        .next()
        .map_or_else(String::new, |c| c.to_uppercase().chain(chars).collect())
}

/// A problem of the given shape with `steps` computation lines, or `None` when the dice led
/// somewhere infeasible (the caller draws again).
pub(super) fn draft(story: Story, dice: &mut Dice<'_>, steps: usize) -> Option<Draft> {
    match story {
        Story::Collection => collection(dice, steps),
        Story::Comparison => comparison(dice, steps),
        Story::Shopping => shopping(dice, steps),
    }
}

/// The events of a collection story: (computation lines, operations needed, final only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Event {
    Gain,
    Lose,
    Grow,
    KeepShare,
    BuyContainers,
    GiveFraction,
    SellAll,
    ShareAll,
}

impl Event {
    const ALL: [Event; 8] = [
        Event::Gain,
        Event::Lose,
        Event::Grow,
        Event::KeepShare,
        Event::BuyContainers,
        Event::GiveFraction,
        Event::SellAll,
        Event::ShareAll,
    ];

    fn needs(self) -> &'static [Op] {
        match self {
            Event::Gain => &[Op::Add],
            Event::Lose => &[Op::Sub],
            Event::Grow | Event::SellAll => &[Op::Mul],
            Event::KeepShare | Event::ShareAll => &[Op::Div],
            Event::BuyContainers => &[Op::Mul, Op::Add],
            Event::GiveFraction => &[Op::Div, Op::Sub],
        }
    }

    fn lines(self) -> usize {
        self.needs().len()
    }

    fn final_only(self) -> bool {
        matches!(self, Event::SellAll | Event::ShareAll)
    }
}

/// One person's running count.
fn collection(dice: &mut Dice<'_>, steps: usize) -> Option<Draft> {
    let people = dice.people(2);
    let (who, friend) = (people[0], people[1]);
    let (thing, other) = dice.things();
    let mut d = Draft::new(Story::Collection);
    let mut x = dice.amount();
    let intro = match dice.index(3) {
        0 => format!("{} has {x} {thing}.", who.name),
        1 => format!("{} starts with {x} {thing}.", who.name),
        _ => format!("{} collects {thing} and has {x} of them.", who.name),
    };
    d.statements.push(intro);
    d.question = format!("How many {thing} does {} have now?", who.name);
    let mut remaining = steps;
    while remaining > 0 {
        let mut options: Vec<Event> = Event::ALL
            .into_iter()
            .filter(|e| e.needs().iter().all(|&op| dice.allows(op)))
            .filter(|e| e.lines() <= remaining && (!e.final_only() || remaining == 1))
            .collect();
        loop {
            if options.is_empty() {
                return None;
            }
            let event = options.swap_remove(dice.index(options.len()));
            if let Some(next) = collection_event(dice, &mut d, event, x, (who, friend, thing)) {
                x = next;
                remaining -= event.lines();
                break;
            }
        }
    }
    if dice.chance(dice.config.distractor_rate) {
        let c = dice.amount();
        let sentence = match dice.index(2) {
            0 => format!("{} has {c} {other}.", friend.name),
            _ => format!("{} also has {c} {other}.", who.name),
        };
        let at = 1 + dice.index(d.statements.len());
        d.statements.insert(at, sentence);
    }
    d.answer = x;
    Some(d)
}

/// Applies one event to the running count `x`; returns the new count.
fn collection_event(
    dice: &mut Dice<'_>,
    d: &mut Draft,
    event: Event,
    x: u64,
    (who, friend, thing): (Person, Person, &str),
) -> Option<u64> {
    let name = who.name;
    let subject = match dice.index(3) {
        0 => capitalize(who.subject),
        1 => format!("Then {}", who.subject),
        _ => name.to_string(),
    };
    let now = |calc: &str| format!("{name} now has {calc} {thing}.");
    let (sentence, y) = match event {
        Event::Gain => {
            let b = dice.add_operand(x)?;
            let sentence = match dice.index(3) {
                0 => format!("{subject} buys {b} more {thing}."),
                1 => format!("{subject} finds {b} more {thing}."),
                _ => format!("{} gives {} {b} {thing}.", friend.name, who.object),
            };
            (sentence, d.calc(x, Op::Add, b, now))
        }
        Event::Lose => {
            let b = dice.sub_operand(x)?;
            let sentence = match dice.index(3) {
                0 => format!("{subject} gives {b} {thing} to {}.", friend.name),
                1 => format!("{subject} loses {b} {thing}."),
                _ => format!("{subject} sells {b} of them."),
            };
            (sentence, d.calc(x, Op::Sub, b, now))
        }
        Event::Grow => {
            let k = dice.mul_factor(x)?;
            let sentence = format!(
                "{subject} ends the week with {} as many {thing}.",
                words::times(k)
            );
            (sentence, d.calc(x, Op::Mul, k, now))
        }
        Event::KeepShare => {
            let k = dice.div_factor(x)?;
            let sentence =
                format!("{subject} splits them into {k} equal piles and keeps only one pile.");
            (
                sentence,
                d.calc(x, Op::Div, k, |c| format!("{name} keeps {c} {thing}.")),
            )
        }
        Event::BuyContainers => return buy_containers(dice, d, x, (&subject, name, thing)),
        Event::GiveFraction => {
            let k = dice.div_factor(x)?;
            let share = words::fraction(k)?;
            let possessive = who.possessive;
            let sentence = format!(
                "{subject} gives {share} of {possessive} {thing} to {}.",
                friend.name
            );
            let q = d.calc(x, Op::Div, k, |c| format!("{name} gives away {c} {thing}."));
            (sentence, d.calc(x, Op::Sub, q, now))
        }
        Event::SellAll => {
            let k = dice.mul_factor(x)?;
            d.question = format!("How many dollars does {name} get?");
            let sentence = format!("{subject} sells all of them for {k} dollars each.");
            (
                sentence,
                d.calc(x, Op::Mul, k, |c| format!("{name} gets {c} dollars.")),
            )
        }
        Event::ShareAll => {
            let k = dice.div_factor(x)?;
            d.question = format!("How many {thing} does each friend get?");
            let sentence = format!("{subject} shares them equally among {k} friends.");
            (
                sentence,
                d.calc(x, Op::Div, k, |c| format!("Each friend gets {c} {thing}.")),
            )
        }
    };
    d.statements.push(sentence);
    Some(y)
}

/// "buys k containers with m things in each": `k * m`, then added to the count.
fn buy_containers(
    dice: &mut Dice<'_>,
    d: &mut Draft,
    x: u64,
    (subject, name, thing): (&str, &str, &str),
) -> Option<u64> {
    let m = dice.add_operand(x)?;
    let k = dice.mul_factor(m)?;
    if x + k * m > dice.config.max_value {
        return None;
    }
    let container = dice.pick(words::CONTAINERS);
    d.statements.push(format!(
        "{subject} buys {k} {container} with {m} {thing} in each."
    ));
    let p = d.calc(k, Op::Mul, m, |c| format!("{name} buys {c} {thing}."));
    Some(d.calc(x, Op::Add, p, |c| format!("{name} now has {c} {thing}.")))
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
    let distractor = dice.chance(dice.config.distractor_rate);
    let mut goods: Vec<&str> = words::GOODS.to_vec();
    let shown = items + usize::from(distractor);
    let goods: Vec<&str> = (0..shown)
        .map(|_| goods.swap_remove(dice.index(goods.len())))
        .collect();
    let prices: Vec<u64> = (0..shown).map(|_| dice.amount()).collect();
    let mut d = Draft::new(Story::Shopping);
    let mut offers: Vec<String> = goods
        .iter()
        .zip(&prices)
        .map(|(g, p)| format!("{g} for {p} dollars each"))
        .collect();
    if distractor {
        // The good nobody buys is listed anywhere, not always last.
        let unbought = offers.remove(items);
        let at = dice.index(offers.len() + 1);
        offers.insert(at, unbought);
    }
    let shop = dice.pick(words::SHOPS);
    d.statements
        .push(format!("{shop} sells {}.", join_and(&offers)));
    let mut costs = Vec::new();
    let mut bought = Vec::new();
    for (good, &price) in goods.iter().zip(&prices).take(items) {
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
            10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000,
        ]
        .into_iter()
        .find(|&b| b >= total + 2 && b <= dice.config.max_value)?;
        d.statements.push(format!(
            "{} pays with a {bill} dollar bill.",
            capitalize(who.subject)
        ));
        d.question = format!("How much change in dollars does {} get?", who.name);
        d.answer = d.calc(bill, Op::Sub, total, |c| {
            format!("{} gets {c} dollars back.", who.name)
        });
    }
    Some(d)
}

/// "a", "a and b", "a, b and c".
fn join_and(parts: &[String]) -> String {
    match parts {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}
