//! Text for people (the product document, alimtalk messages) assembled by pushing its
//! pieces onto one buffer. `write!` goes through `core::fmt` for every piece (dynamic
//! dispatch, argument tables, padding logic), and these texts are rendered for every
//! enrollment and event, so they push strings and digits directly; the output is the
//! same as the types' `Display`.

use super::money::Won;
use chrono::{Datelike, NaiveDate};
use std::cell::RefCell;

thread_local! {
    /// The buffer [`Text::exact`] builds in, kept per thread between calls.
    static SCRATCH: RefCell<String> = const { RefCell::new(String::new()) };
}

/// `text` as `{:?}` writes it, cut after 40 characters (with the whole length said): a
/// message names the input it refuses without sending all of a 10,000-character one back.
pub fn quoted(text: &str) -> String {
    const SHOWN: usize = 40;
    match text.char_indices().nth(SHOWN) {
        None => format!("{text:?}"),
        Some((cut, _)) => format!("{:?}… ({} characters)", &text[..cut], text.chars().count()),
    }
}

/// A growing piece of text. Every method appends and returns `self` for chaining.
#[derive(Debug, Default)]
pub struct Text(String);

impl Text {
    pub fn with_capacity(capacity: usize) -> Text {
        Text(String::with_capacity(capacity))
    }

    /// Builds a text in a reused buffer and returns an exact-size copy: for texts that
    /// are kept (alimtalk messages, one per event), where a generous capacity would be
    /// kept with them.
    pub fn exact(build: impl FnOnce(&mut Text)) -> String {
        SCRATCH.with(|scratch| {
            // A nested call finds the buffer taken and starts an empty one: still right.
            let mut text = Text(scratch.take());
            text.0.clear();
            build(&mut text);
            let out = String::from(text.0.as_str());
            scratch.replace(text.0);
            out
        })
    }

    pub fn s(&mut self, s: &str) -> &mut Text {
        self.0.push_str(s);
        self
    }

    /// An integer in decimal, as `Display` prints it.
    pub fn n<I: itoa::Integer>(&mut self, n: I) -> &mut Text {
        self.0.push_str(itoa::Buffer::new().format(n));
        self
    }

    /// `12,345원`, as [`Won`]'s `Display`.
    pub fn won(&mut self, amount: Won) -> &mut Text {
        self.0.push_str(amount.grouped(&mut [0; Won::GROUPED_LEN]));
        self.0.push('원');
        self
    }

    /// `2026-11-24`, as chrono's `Display` for a date (years 0 to 9999; others fall back
    /// to chrono).
    pub fn date(&mut self, date: NaiveDate) -> &mut Text {
        let (year, month, day) = (date.year(), date.month(), date.day());
        match u16::try_from(year) {
            Ok(y) if y <= 9999 => {
                let (m, d) = (month as u8, day as u8);
                let digit = |n: u16| b'0' + (n % 10) as u8;
                let text = [
                    digit(y / 1000),
                    digit(y / 100),
                    digit(y / 10),
                    digit(y),
                    b'-',
                    b'0' + m / 10,
                    b'0' + m % 10,
                    b'-',
                    b'0' + d / 10,
                    b'0' + d % 10,
                ];
                // Only ASCII digits and dashes were written.
                self.0.push_str(std::str::from_utf8(&text).unwrap_or("?"));
            }
            _ => self.0.push_str(&date.to_string()),
        }
        self
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_inputs_are_quoted_cut_short() {
        assert_eq!(quoted("C12"), "\"C12\"");
        assert_eq!(quoted("a\u{0}b"), "\"a\\0b\"");
        let long = "가".repeat(10_000);
        let shown = quoted(&long);
        assert!(
            shown.starts_with(&format!("\"{}\"…", "가".repeat(40))),
            "{shown}"
        );
        assert!(shown.ends_with("(10000 characters)"), "{shown}");
        assert_eq!(quoted(&"x".repeat(40)), format!("{:?}", "x".repeat(40)));
    }

    #[test]
    fn pieces_read_as_their_display() {
        let mut t = Text::default();
        t.s("a ")
            .n(0u32)
            .s(" ")
            .n(-12i64)
            .s(" ")
            .won(Won::new(1_234_567));
        assert_eq!(t.into_string(), "a 0 -12 1,234,567원");
    }

    #[test]
    fn exact_texts_are_as_built_and_hold_no_spare_room() {
        let long = Text::exact(|t| {
            t.s("x").n(1u8);
            // Nested: the inner one gets a buffer of its own.
            let inner = Text::exact(|u| {
                u.s("inner");
            });
            t.s(&inner);
        });
        assert_eq!(long, "x1inner");
        assert_eq!(long.capacity(), long.len());
        let next = Text::exact(|t| {
            t.s("y");
        });
        assert_eq!(next, "y", "the reused buffer starts empty");
    }

    #[test]
    fn dates_read_as_chrono_prints_them() {
        for (y, m, d) in [
            (2026, 11, 24),
            (1986, 5, 1),
            (1, 1, 9),
            (9999, 12, 31),
            (0, 1, 1),
        ] {
            let date = NaiveDate::from_ymd_opt(y, m, d).expect("a date");
            let mut t = Text::default();
            t.date(date);
            assert_eq!(t.into_string(), date.to_string());
        }
        let far = NaiveDate::from_ymd_opt(-5, 3, 4).expect("a date");
        let mut t = Text::default();
        t.date(far);
        assert_eq!(t.into_string(), far.to_string());
    }
}
