//! Template strings with `{name}` placeholders and `{{` / `}}` escapes, parsed once.

use super::PromptError;

/// A placeholder a template may contain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Slot {
    Problem,
    Solution,
    FewShot,
}

impl Slot {
    fn name(self) -> &'static str {
        match self {
            Slot::Problem => "problem",
            Slot::Solution => "solution",
            Slot::FewShot => "few_shot",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Text(String),
    Slot(Slot),
}

/// A parsed template: literal text and placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Template {
    segments: Vec<Segment>,
}

impl Template {
    /// Parses `text` (the config field `field`), accepting only the placeholders in `allowed`
    /// and requiring those in `required`.
    pub(super) fn parse(
        field: &'static str,
        text: &str,
        allowed: &[Slot],
        required: &[Slot],
    ) -> Result<Self, PromptError> {
        let mut segments = Vec::new();
        let mut literal = String::new();
        let mut at = 0;
        while let Some(c) = text[at..].chars().next() {
            let next = text[at + c.len_utf8()..].chars().next();
            match (c, next) {
                ('{', Some('{')) | ('}', Some('}')) => {
                    literal.push(c);
                    at += 2;
                }
                ('}', _) => {
                    return Err(PromptError::UnbalancedBrace {
                        field,
                        brace: '}',
                        position: at,
                    })
                }
                ('{', _) => {
                    let (slot, end) = placeholder(field, text, at, allowed)?;
                    if !literal.is_empty() {
                        segments.push(Segment::Text(std::mem::take(&mut literal)));
                    }
                    segments.push(Segment::Slot(slot));
                    at = end;
                }
                (c, _) => {
                    literal.push(c);
                    at += c.len_utf8();
                }
            }
        }
        if !literal.is_empty() {
            segments.push(Segment::Text(literal));
        }
        let template = Self { segments };
        match required.iter().find(|s| !template.has(**s)) {
            Some(missing) => Err(PromptError::MissingPlaceholder {
                field,
                name: missing.name(),
            }),
            None => Ok(template),
        }
    }

    /// Whether the template contains `slot`.
    pub(super) fn has(&self, slot: Slot) -> bool {
        self.segments.contains(&Segment::Slot(slot))
    }

    /// Renders with `value(slot)` substituted for every placeholder.
    pub(super) fn render<'a>(&self, value: impl Fn(Slot) -> &'a str) -> String {
        let mut out = String::new();
        for segment in &self.segments {
            match segment {
                Segment::Text(text) => out.push_str(text),
                Segment::Slot(slot) => out.push_str(value(*slot)),
            }
        }
        out
    }
}

/// The placeholder opening at byte `open` of `text` and the byte after its `}`.
fn placeholder(
    field: &'static str,
    text: &str,
    open: usize,
    allowed: &[Slot],
) -> Result<(Slot, usize), PromptError> {
    let close = text[open..].find('}').map(|i| open + i);
    let close = close.ok_or(PromptError::UnbalancedBrace {
        field,
        brace: '{',
        position: open,
    })?;
    let name = &text[open + 1..close];
    match allowed.iter().find(|s| s.name() == name) {
        Some(slot) => Ok((*slot, close + 1)),
        None => Err(PromptError::UnknownPlaceholder {
            field,
            name: name.to_string(),
            allowed: allowed
                .iter()
                .map(|s| format!("`{{{}}}`", s.name()))
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}
