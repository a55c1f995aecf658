//! The `collection` story: one person's running count changes through a series of events
//! (buying more, giving some away, keeping a share, buying containers of several things,
//! finally selling or sharing everything).

use super::draft::{capitalize, Dice, Draft};
use super::words::{self, Person};
use super::{Op, Story};

/// What can happen to the count.
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

    /// The operations of its solution lines, one per line.
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

    /// Events that change what is counted, so they end the story.
    fn final_only(self) -> bool {
        matches!(self, Event::SellAll | Event::ShareAll)
    }
}

/// Who and what the story is about.
#[derive(Debug, Clone, Copy)]
struct Scene {
    who: Person,
    friend: Person,
    thing: &'static str,
}

/// A collection story with `steps` solution lines.
pub(super) fn collection(dice: &mut Dice<'_>, steps: usize) -> Option<Draft> {
    let people = dice.people(2);
    let (thing, other) = dice.things();
    let scene = Scene {
        who: people[0],
        friend: people[1],
        thing,
    };
    let name = scene.who.name;
    let mut d = Draft::new(Story::Collection);
    let mut x = dice.amount();
    d.statements.push(match dice.index(3) {
        0 => format!("{name} has {x} {thing}."),
        1 => format!("{name} starts with {x} {thing}."),
        _ => format!("{name} collects {thing} and has {x} of them."),
    });
    d.question = format!("How many {thing} does {name} have now?");
    let mut remaining = steps;
    while remaining > 0 {
        let mut options: Vec<Event> = Event::ALL
            .into_iter()
            .filter(|e| e.needs().iter().all(|&op| dice.allows(op)))
            .filter(|e| e.lines() <= remaining && (!e.final_only() || remaining == 1))
            .collect();
        // Try the possible events in random order until one fits the current count.
        loop {
            if options.is_empty() {
                return None;
            }
            let event = options.swap_remove(dice.index(options.len()));
            if let Some(next) = apply(dice, &mut d, event, x, scene) {
                x = next;
                remaining -= event.lines();
                break;
            }
        }
    }
    if dice.chance(dice.config.distractor_rate) {
        let c = dice.amount();
        let sentence = match dice.index(2) {
            0 => format!("{} has {c} {other}.", scene.friend.name),
            _ => format!("{name} also has {c} {other}."),
        };
        let at = 1 + dice.index(d.statements.len());
        d.statements.insert(at, sentence);
    }
    d.answer = x;
    Some(d)
}

/// Applies `event` to the count `x`: pushes its sentence and lines and returns the new count,
/// or `None` (leaving `d` untouched) when the count does not allow it.
fn apply(dice: &mut Dice<'_>, d: &mut Draft, event: Event, x: u64, scene: Scene) -> Option<u64> {
    let Scene { who, friend, thing } = scene;
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
            let times = words::times(k);
            let sentence = format!("{subject} ends the week with {times} as many {thing}.");
            (sentence, d.calc(x, Op::Mul, k, now))
        }
        Event::KeepShare => {
            let k = dice.div_factor(x)?;
            let sentence =
                format!("{subject} splits them into {k} equal piles and keeps one pile.");
            (
                sentence,
                d.calc(x, Op::Div, k, |c| format!("{name} keeps {c} {thing}.")),
            )
        }
        other => return apply_compound(dice, d, other, x, scene, &subject),
    };
    d.statements.push(sentence);
    Some(y)
}

/// The two-line events and the final ones (see [`apply`]).
fn apply_compound(
    dice: &mut Dice<'_>,
    d: &mut Draft,
    event: Event,
    x: u64,
    Scene { who, friend, thing }: Scene,
    subject: &str,
) -> Option<u64> {
    let name = who.name;
    let (sentence, y) = match event {
        Event::BuyContainers => {
            let m = dice.add_operand(x)?;
            let k = dice.mul_factor(m)?;
            if x + k * m > dice.config.max_value {
                return None;
            }
            let container = dice.pick(words::CONTAINERS);
            let sentence = format!("{subject} buys {k} {container} with {m} {thing} in each.");
            let p = d.calc(k, Op::Mul, m, |c| format!("{name} buys {c} {thing}."));
            (
                sentence,
                d.calc(x, Op::Add, p, |c| format!("{name} now has {c} {thing}.")),
            )
        }
        Event::GiveFraction => {
            let k = dice.div_factor(x)?;
            let (share, theirs) = (words::fraction(k)?, who.possessive);
            let sentence = format!(
                "{subject} gives {share} of {theirs} {thing} to {}.",
                friend.name
            );
            let q = d.calc(x, Op::Div, k, |c| format!("{name} gives away {c} {thing}."));
            (
                sentence,
                d.calc(x, Op::Sub, q, |c| format!("{name} now has {c} {thing}.")),
            )
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
        Event::Gain | Event::Lose | Event::Grow | Event::KeepShare => return None,
    };
    d.statements.push(sentence);
    Some(y)
}
