//! Vocabulary of the `arith` stories: names, things to count, containers, things to buy.

/// A first name and its subject / object / possessive pronouns.
#[derive(Debug, Clone, Copy)]
pub(super) struct Person {
    pub name: &'static str,
    pub subject: &'static str,
    pub object: &'static str,
    pub possessive: &'static str,
}

const fn she(name: &'static str) -> Person {
    Person {
        name,
        subject: "she",
        object: "her",
        possessive: "her",
    }
}

const fn he(name: &'static str) -> Person {
    Person {
        name,
        subject: "he",
        object: "him",
        possessive: "his",
    }
}

pub(super) const PEOPLE: &[Person] = &[
    she("Mia"),
    she("Ava"),
    she("Emma"),
    she("Lily"),
    she("Zoe"),
    she("Nora"),
    she("Ella"),
    she("Ruby"),
    she("Grace"),
    she("Chloe"),
    she("Sofia"),
    she("Hannah"),
    she("Maya"),
    she("Leah"),
    she("Julia"),
    she("Anna"),
    she("Sara"),
    she("Clara"),
    she("Ivy"),
    she("Rosa"),
    he("Leo"),
    he("Sam"),
    he("Max"),
    he("Ben"),
    he("Noah"),
    he("Liam"),
    he("Owen"),
    he("Jack"),
    he("Luke"),
    he("Ethan"),
    he("Omar"),
    he("Ravi"),
    he("Tom"),
    he("Hugo"),
    he("Finn"),
    he("Eli"),
    he("Adam"),
    he("Kai"),
    he("Theo"),
    he("Carlos"),
];

/// Things a person collects and counts (plural).
pub(super) const THINGS: &[&str] = &[
    "marbles",
    "stickers",
    "stamps",
    "seashells",
    "baseball cards",
    "coins",
    "pencils",
    "crayons",
    "beads",
    "buttons",
    "books",
    "comic books",
    "toy cars",
    "apples",
    "oranges",
    "cookies",
    "cupcakes",
    "eggs",
    "flowers",
    "balloons",
    "rocks",
    "feathers",
    "postcards",
    "ribbons",
    "bottle caps",
    "puzzle pieces",
    "paper cranes",
    "acorns",
];

/// Containers that hold several things (plural).
pub(super) const CONTAINERS: &[&str] = &["bags", "boxes", "packs", "jars", "baskets", "crates"];

/// Things sold at a price each (plural).
pub(super) const GOODS: &[&str] = &[
    "pens",
    "notebooks",
    "sandwiches",
    "tickets",
    "mugs",
    "plants",
    "lamps",
    "hats",
    "scarves",
    "toys",
    "board games",
    "pillows",
    "towels",
    "kites",
    "backpacks",
    "bowls",
    "candles",
    "water bottles",
];

/// Places that sell goods.
pub(super) const SHOPS: &[&str] = &[
    "A shop",
    "A market stall",
    "A store",
    "A school fair",
    "A gift shop",
];

/// "half", "a third", …: the fraction `1/k` in words, for `k` in `2..=10`.
pub(super) fn fraction(k: u64) -> Option<&'static str> {
    Some(match k {
        2 => "half",
        3 => "a third",
        4 => "a quarter",
        5 => "a fifth",
        6 => "a sixth",
        7 => "a seventh",
        8 => "an eighth",
        9 => "a ninth",
        10 => "a tenth",
        _ => return None,
    })
}

/// "twice", "three times", …: the multiplier `k` in words.
pub(super) fn times(k: u64) -> String {
    match k {
        2 => "twice".to_string(),
        k => format!("{k} times"),
    }
}
