//! Durations as process owners write them: `10 working days`, `10 arbetsdagar`, `3 dagar`.

use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Unit {
    /// Monday to Friday except Swedish public holidays.
    WorkingDays,
    Days,
    Weeks,
    Hours,
}

/// A length of time in one unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Duration {
    pub amount: u32,
    pub unit: Unit,
}

/// The spellings accepted for each unit, singular and plural, English and Swedish.
const UNITS: [(&str, Unit); 16] = [
    ("working days", Unit::WorkingDays),
    ("working day", Unit::WorkingDays),
    ("arbetsdagar", Unit::WorkingDays),
    ("arbetsdag", Unit::WorkingDays),
    ("days", Unit::Days),
    ("day", Unit::Days),
    ("dagar", Unit::Days),
    ("dag", Unit::Days),
    ("weeks", Unit::Weeks),
    ("week", Unit::Weeks),
    ("veckor", Unit::Weeks),
    ("vecka", Unit::Weeks),
    ("hours", Unit::Hours),
    ("hour", Unit::Hours),
    ("timmar", Unit::Hours),
    ("timme", Unit::Hours),
];

impl Duration {
    /// Parses `N unit`; the error names the unit spellings that are close, for "did you mean".
    pub fn parse(text: &str) -> Result<Duration, String> {
        let text = text.trim();
        let (number, unit) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
        let amount: u32 = number.parse().map_err(|_| unit_help(unit))?;
        let unit_text = unit.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase();
        let unit =
            UNITS.iter().find(|(name, _)| *name == unit_text).map(|(_, u)| *u).ok_or_else(|| unit_help(&unit_text))?;
        Ok(Duration { amount, unit })
    }

    /// All accepted unit words, for suggestions.
    pub fn unit_words() -> impl Iterator<Item = &'static str> + Clone {
        UNITS.iter().map(|(name, _)| *name)
    }
}

fn unit_help(unit: &str) -> String {
    unit.to_string()
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.amount;
        let word = match (self.unit, n == 1) {
            (Unit::WorkingDays, true) => "arbetsdag",
            (Unit::WorkingDays, false) => "arbetsdagar",
            (Unit::Days, true) => "dag",
            (Unit::Days, false) => "dagar",
            (Unit::Weeks, true) => "vecka",
            (Unit::Weeks, false) => "veckor",
            (Unit::Hours, true) => "timme",
            (Unit::Hours, false) => "timmar",
        };
        write!(f, "{n} {word}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_swedish_and_english() {
        assert_eq!(Duration::parse("10 working days"), Ok(Duration { amount: 10, unit: Unit::WorkingDays }));
        assert_eq!(Duration::parse("10 arbetsdagar"), Ok(Duration { amount: 10, unit: Unit::WorkingDays }));
        assert_eq!(Duration::parse("1 dag"), Ok(Duration { amount: 1, unit: Unit::Days }));
        assert_eq!(Duration::parse(" 2  Weeks "), Ok(Duration { amount: 2, unit: Unit::Weeks }));
        assert_eq!(Duration::parse("4 timmar"), Ok(Duration { amount: 4, unit: Unit::Hours }));
    }

    #[test]
    fn rejects_unknown_units_and_numbers() {
        assert!(Duration::parse("10 workdays").is_err());
        assert!(Duration::parse("soon").is_err());
        assert!(Duration::parse("-1 days").is_err());
        assert!(Duration::parse("ten days").is_err());
    }

    #[test]
    fn displays_in_swedish() {
        assert_eq!(Duration::parse("1 working day").unwrap().to_string(), "1 arbetsdag");
        assert_eq!(Duration::parse("5 days").unwrap().to_string(), "5 dagar");
    }
}
