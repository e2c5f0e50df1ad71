//! The Swedish working-day calendar that Beslut counts deadlines in.
//!
//! A working day ("arbetsdag") is a Monday to Friday that is neither a public
//! holiday nor one of the eves that employers treat as holidays in practice
//! (midsommarafton, julafton, nyårsafton). Times of day are wall-clock times in
//! Europe/Stockholm, because that is the clock the people handling a case read.
//!
//! The holiday rules in force since 2005 (when nationaldagen replaced annandag
//! pingst) are applied to every year. Older calendars are not modelled, since
//! Beslut only counts deadlines in the present.
//!
//! The module depends on nothing but `jiff`, so it can be copied into another
//! crate unchanged. It needs the time zone database to contain
//! Europe/Stockholm (the system's, or jiff's bundled one).

use jiff::civil::{Date, DateTime, Time, Weekday, date};
use jiff::tz::TimeZone;
use jiff::{ToSpan, Zoned};

/// The time zone whose wall clock the deadlines are counted on.
const TIME_ZONE: &str = "Europe/Stockholm";

/// How many holidays `public_holidays` returns for every year.
const HOLIDAYS_PER_YEAR: usize = 17;

/// A Monday used as the origin when counting weekdays arithmetically.
///
/// It lies in the middle of jiff's date range, so the distance to any date
/// fits in a `Span` of days.
const ORIGIN_MONDAY: Date = date(1, 1, 1);

/// Returns Easter Sunday of `year` in the Gregorian calendar.
///
/// It is computed with the anonymous Gregorian algorithm (Meeus/Jones/Butcher)
/// rather than listed, so there is no table to run out. The result is always
/// a Sunday between 22 March and 25 April. Years before 1583 get the
/// proleptic Gregorian date, which no church used.
///
/// # Panics
///
/// If `year` is outside jiff's range, -9999 to 9999.
pub fn easter_sunday(year: i16) -> Date {
    let y = i32::from(year);
    let a = y.rem_euclid(19);
    let b = y.div_euclid(100);
    let c = y.rem_euclid(100);
    let d = b.div_euclid(4);
    let e = b.rem_euclid(4);
    let f = (b + 8).div_euclid(25);
    let g = (b - f + 1).div_euclid(3);
    let h = (19 * a + b - d - g + 15).rem_euclid(30);
    let i = c / 4;
    let k = c % 4;
    let l = (32 + 2 * e + 2 * i - h - k).rem_euclid(7);
    let m = (a + 11 * h + 22 * l) / 451;
    let n = h + l - 7 * m + 114;
    // The arithmetic keeps `n` within 107..=149, so the month is 3 or 4 and
    // the day is within 1..=31: the casts cannot truncate.
    date(year, (n / 31) as i8, (n % 31 + 1) as i8)
}

/// Returns the Swedish public holidays of `year`, and the eves treated as
/// holidays by employers, with their Swedish names, sorted by date.
///
/// There are always 17 entries, one per holiday, so every name can be shown.
/// Two dates can therefore coincide: Kristi himmelsfärdsdag falls on första
/// maj when Easter is on 23 March (as in 2008), and pingstdagen on
/// nationaldagen when Easter is on 18 April (as in 2049). Such ties keep the
/// order of the list below, which is the order of the calendar year when
/// nothing coincides.
///
/// Påskafton, påskdagen, pingstdagen, midsommardagen and alla helgons dag
/// always fall on a weekend; they are listed because a calendar shows them.
///
/// # Panics
///
/// If `year` is outside jiff's range, -9999 to 9999.
pub fn public_holidays(year: i16) -> Vec<(Date, &'static str)> {
    let mut holidays = holidays(year).to_vec();
    // A stable sort, so that coinciding holidays keep the list's order.
    holidays.sort_by_key(|&(day, _)| day);
    holidays
}

/// Returns the holidays of `year` in the order of the list, not by date.
fn holidays(year: i16) -> [(Date, &'static str); HOLIDAYS_PER_YEAR] {
    let easter = easter_sunday(year);
    let from_easter = |days: i32| add_days(easter, days);
    [
        (date(year, 1, 1), "nyårsdagen"),
        (date(year, 1, 6), "trettondedag jul"),
        (from_easter(-2), "långfredagen"),
        (from_easter(-1), "påskafton"),
        (easter, "påskdagen"),
        (from_easter(1), "annandag påsk"),
        (date(year, 5, 1), "första maj"),
        (from_easter(39), "Kristi himmelsfärdsdag"),
        (from_easter(49), "pingstdagen"),
        (date(year, 6, 6), "nationaldagen"),
        (first_on_or_after(date(year, 6, 19), Weekday::Friday), "midsommarafton"),
        (first_on_or_after(date(year, 6, 20), Weekday::Saturday), "midsommardagen"),
        (first_on_or_after(date(year, 10, 31), Weekday::Saturday), "alla helgons dag"),
        (date(year, 12, 24), "julafton"),
        (date(year, 12, 25), "juldagen"),
        (date(year, 12, 26), "annandag jul"),
        (date(year, 12, 31), "nyårsafton"),
    ]
}

/// Returns the first `weekday` in the week starting at `day`.
fn first_on_or_after(day: Date, weekday: Weekday) -> Date {
    add_days(day, i32::from(day.weekday().until(weekday)))
}

/// Returns `day` moved by `days` days.
///
/// Panics outside jiff's range, which only the years -9999 and 9999 reach.
fn add_days(day: Date, days: i32) -> Date {
    day.checked_add(days.days()).expect("date within jiff's range, -9999 to 9999")
}

/// Tells whether `day` is a Swedish working day: Monday to Friday and not in
/// `public_holidays`.
pub fn is_working_day(day: Date) -> bool {
    !is_weekend(day) && !is_holiday(day)
}

fn is_weekend(day: Date) -> bool {
    matches!(day.weekday(), Weekday::Saturday | Weekday::Sunday)
}

fn is_holiday(day: Date) -> bool {
    holidays(day.year()).iter().any(|&(holiday, _)| holiday == day)
}

/// Returns the first working day after `day`.
fn next_working_day(day: Date) -> Date {
    let mut next = add_days(day, 1);
    while !is_working_day(next) {
        next = add_days(next, 1);
    }
    next
}

/// Returns the last working day before `day`.
fn previous_working_day(day: Date) -> Date {
    let mut previous = add_days(day, -1);
    while !is_working_day(previous) {
        previous = add_days(previous, -1);
    }
    previous
}

/// Returns the deadline that lies `days` working days after `start`.
///
/// The rule is the one a Swedish municipal employee expects:
///
/// - `days == 0` returns `start` unchanged, time zone included.
/// - Otherwise the count is made on the wall clock of Europe/Stockholm,
///   whatever the time zone of `start`, and the result is in that zone.
/// - A task assigned on a working day is due at the same time of day on the
///   `days`-th working day after it: assigned Friday 15:00 with 1 working
///   day, it is due Monday 15:00.
/// - A task assigned on a non-working day (a weekend or a holiday) counts as
///   assigned at 00:00 on the next working day, because nobody can start on
///   it before then; that whole day then counts towards the time given.
///   Assigned Saturday 10:00 with 1 working day, it is due Tuesday 00:00,
///   which is the end of Monday.
///
/// The wall-clock time is kept across a change to or from daylight saving
/// time, so the hours elapsed then differ by one. Stockholm changes its clocks
/// on Sundays, which are never working days, so the time of day always exists
/// on the deadline's date. Were that ever to change, jiff's "compatible" rule
/// would pick the later time in a gap and the earlier one in a fold.
///
/// Invariants for `days >= 1`: the deadline lies on a working day and after
/// `add_working_days(start, days - 1)`. When `start` lies on a working day,
/// `working_days_between` the two dates is `days` and
/// `subtract_working_days(deadline, days)` gives `start` back.
///
/// # Panics
///
/// If the deadline falls after the year 9999, or if the time zone database
/// lacks Europe/Stockholm.
pub fn add_working_days(start: Zoned, days: u32) -> Zoned {
    if days == 0 {
        return start;
    }
    let begin = counting_point(&start);
    let end = (0..days).fold(begin.date(), |day, _| next_working_day(day));
    in_stockholm(end.to_datetime(begin.time()))
}

/// Returns the moment `days` working days before `deadline`, for reminders
/// such as "2 working days before the deadline".
///
/// It mirrors `add_working_days`: `days == 0` returns `deadline` unchanged; a
/// deadline on a working day gives the same time of day `days` working days
/// earlier; a deadline on a non-working day is first moved to 00:00 on the
/// next working day, since no working time passes in between. A deadline of
/// Sunday 12:00 minus 2 working days is thus Thursday 00:00, leaving Thursday
/// and Friday.
///
/// Invariants for `days >= 1`: the result lies on a working day, and for a
/// deadline on a working day `add_working_days(result, days)` gives the
/// deadline back.
///
/// # Panics
///
/// If the result falls before the year -9999, or if the time zone database
/// lacks Europe/Stockholm.
pub fn subtract_working_days(deadline: Zoned, days: u32) -> Zoned {
    if days == 0 {
        return deadline;
    }
    let end = counting_point(&deadline);
    let begin = (0..days).fold(end.date(), |day, _| previous_working_day(day));
    in_stockholm(begin.to_datetime(end.time()))
}

/// Returns the Stockholm wall-clock time from which working days are counted:
/// `moment` itself on a working day, otherwise 00:00 on the next working day.
fn counting_point(moment: &Zoned) -> DateTime {
    let local = moment.with_time_zone(stockholm());
    if is_working_day(local.date()) {
        local.datetime()
    } else {
        next_working_day(local.date()).to_datetime(Time::midnight())
    }
}

fn in_stockholm(wall_clock: DateTime) -> Zoned {
    wall_clock.to_zoned(stockholm()).expect("date within jiff's range, -9999 to 9999")
}

/// The clock of the people handling cases (jiff bundles the database, so it is always there).
pub fn stockholm() -> TimeZone {
    TimeZone::get(TIME_ZONE).expect("the time zone database contains Europe/Stockholm")
}

/// Counts the working days in `(from, to]`: `from` itself is not counted,
/// `to` is.
///
/// So the count from a day to itself is 0, and from a working day to the
/// next one it is 1. When `to` is before `from` the count is negative,
/// `-working_days_between(to, from)`, which makes counts add up:
/// `between(a, b) + between(b, c) == between(a, c)` for any dates.
///
/// It takes time in proportion to the number of years spanned, not days.
pub fn working_days_between(from: Date, to: Date) -> i64 {
    if to < from {
        return -working_days_between(to, from);
    }
    weekdays_through(to) - weekdays_through(from) - weekday_holidays_between(from, to)
}

/// Counts the Mondays to Fridays from `ORIGIN_MONDAY` up to and including
/// `day`, negatively before it; only differences of two counts mean anything.
fn weekdays_through(day: Date) -> i64 {
    let span = ORIGIN_MONDAY.until(day).expect("the distance between two jiff dates fits in a span of days");
    let days = i64::from(span.get_days());
    days.div_euclid(7) * 5 + (days.rem_euclid(7) + 1).min(5)
}

/// Counts the distinct holiday dates in `(from, to]` that fall on Monday to
/// Friday; coinciding holidays must be counted once.
fn weekday_holidays_between(from: Date, to: Date) -> i64 {
    (from.year()..=to.year()).flat_map(holiday_dates).filter(|&day| from < day && day <= to && !is_weekend(day)).count()
        as i64
}

/// Returns the distinct dates of the holidays of `year`, sorted.
fn holiday_dates(year: i16) -> Vec<Date> {
    let mut dates: Vec<Date> = holidays(year).iter().map(|&(day, _)| day).collect();
    dates.sort();
    dates.dedup();
    dates
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::Unit;
    use proptest::prelude::*;
    use std::collections::HashSet;

    /// Returns a Stockholm wall-clock time.
    fn at(year: i16, month: i8, day: i8, hour: i8, minute: i8) -> Zoned {
        in_stockholm(date(year, month, day).at(hour, minute, 0, 0))
    }

    /// Returns the date of the holiday called `name` in `year`.
    fn holiday(year: i16, name: &str) -> Date {
        let found = public_holidays(year).into_iter().find(|&(_, holiday)| holiday == name);
        found.expect("a holiday of that name").0
    }

    /// Asserts that `actual` shows `expected` on a Stockholm wall clock.
    fn assert_stockholm(actual: &Zoned, expected: &Zoned) {
        assert_eq!(actual.time_zone().iana_name(), Some(TIME_ZONE));
        assert_eq!(actual.datetime(), expected.datetime());
        assert_eq!(actual.timestamp(), expected.timestamp());
    }

    /// Easter by Knuth's algorithm (TAOCP 1.3.2, exercise 14), a second,
    /// independent computation to check the first against.
    fn knuth_easter(year: i16) -> Date {
        let y = i32::from(year);
        let golden = y % 19 + 1;
        let century = y / 100 + 1;
        let skipped_leap_days = 3 * century / 4 - 12;
        let moon_correction = (8 * century + 5) / 25 - 5;
        let sunday = 5 * y / 4 - skipped_leap_days - 10;
        let mut epact = (11 * golden + 20 + moon_correction - skipped_leap_days) % 30;
        if (epact == 25 && golden > 11) || epact == 24 {
            epact += 1;
        }
        let mut full_moon = 44 - epact;
        if full_moon < 21 {
            full_moon += 30;
        }
        let day = full_moon + 7 - (sunday + full_moon) % 7;
        if day > 31 { date(year, 4, (day - 31) as i8) } else { date(year, 3, day as i8) }
    }

    /// Counts working days in `(from, to]` one day at a time.
    fn naive_between(from: Date, to: Date) -> i64 {
        let mut count = 0;
        let mut day = from;
        while day < to {
            day = add_days(day, 1);
            count += i64::from(is_working_day(day));
        }
        count
    }

    #[test]
    fn easter_known_dates() {
        assert_eq!(easter_sunday(2024), date(2024, 3, 31));
        assert_eq!(easter_sunday(2025), date(2025, 4, 20));
        assert_eq!(easter_sunday(2026), date(2026, 4, 5));
        assert_eq!(easter_sunday(2027), date(2027, 3, 28));
        assert_eq!(easter_sunday(2038), date(2038, 4, 25));
        assert_eq!(easter_sunday(2285), date(2285, 3, 22));
    }

    #[test]
    fn easter_matches_knuth_and_is_a_sunday_in_range() {
        for year in 1583..=9999 {
            let easter = easter_sunday(year);
            assert_eq!(easter, knuth_easter(year), "{year}");
            assert_eq!(easter.weekday(), Weekday::Sunday, "{year}");
            assert!(date(year, 3, 22) <= easter && easter <= date(year, 4, 25));
        }
    }

    #[test]
    fn easter_is_defined_for_every_year_jiff_supports() {
        for year in -9999..=9999 {
            let easter = easter_sunday(year);
            assert_eq!(easter.weekday(), Weekday::Sunday, "{year}");
            assert!(date(year, 3, 22) <= easter && easter <= date(year, 4, 25));
        }
    }

    #[test]
    fn named_holidays_2026() {
        assert_eq!(holiday(2026, "midsommarafton"), date(2026, 6, 19));
        assert_eq!(holiday(2026, "alla helgons dag"), date(2026, 10, 31));
        assert_eq!(holiday(2026, "Kristi himmelsfärdsdag"), date(2026, 5, 14));
        // 18 June 2027 is a Friday, but too early for midsommarafton.
        assert_eq!(holiday(2027, "midsommarafton"), date(2027, 6, 25));
    }

    #[test]
    fn whole_list_2026() {
        let expected = [
            (date(2026, 1, 1), "nyårsdagen"),
            (date(2026, 1, 6), "trettondedag jul"),
            (date(2026, 4, 3), "långfredagen"),
            (date(2026, 4, 4), "påskafton"),
            (date(2026, 4, 5), "påskdagen"),
            (date(2026, 4, 6), "annandag påsk"),
            (date(2026, 5, 1), "första maj"),
            (date(2026, 5, 14), "Kristi himmelsfärdsdag"),
            (date(2026, 5, 24), "pingstdagen"),
            (date(2026, 6, 6), "nationaldagen"),
            (date(2026, 6, 19), "midsommarafton"),
            (date(2026, 6, 20), "midsommardagen"),
            (date(2026, 10, 31), "alla helgons dag"),
            (date(2026, 12, 24), "julafton"),
            (date(2026, 12, 25), "juldagen"),
            (date(2026, 12, 26), "annandag jul"),
            (date(2026, 12, 31), "nyårsafton"),
        ];
        assert_eq!(public_holidays(2026), expected);
    }

    #[test]
    fn coinciding_holidays_keep_both_names() {
        let holidays = public_holidays(2008);
        let may_first: Vec<_> = holidays.iter().filter(|h| h.0 == date(2008, 5, 1)).collect();
        assert_eq!(may_first, [&(date(2008, 5, 1), "första maj"), &(date(2008, 5, 1), "Kristi himmelsfärdsdag")]);
        assert_eq!(holiday(2049, "pingstdagen"), date(2049, 6, 6));
        assert_eq!(holiday(2049, "nationaldagen"), date(2049, 6, 6));
    }

    #[test]
    fn every_year_1900_to_2200_has_the_expected_holidays() {
        for year in 1900..=2200 {
            let holidays = public_holidays(year);
            assert_eq!(holidays.len(), HOLIDAYS_PER_YEAR, "{year}");
            assert!(holidays.is_sorted_by_key(|h| h.0), "{year}");
            assert!(holidays.iter().all(|h| h.0.year() == year), "{year}");

            let names: HashSet<_> = holidays.iter().map(|h| h.1).collect();
            assert_eq!(names.len(), HOLIDAYS_PER_YEAR, "{year}");

            // Dates are distinct except for the two coincidences that the
            // calendar allows.
            let easter = easter_sunday(year);
            let ascension_on_may_first = easter == date(year, 3, 23);
            let pentecost_on_national_day = easter == date(year, 4, 18);
            let expected =
                HOLIDAYS_PER_YEAR - usize::from(ascension_on_may_first) - usize::from(pentecost_on_national_day);
            assert_eq!(holiday_dates(year).len(), expected, "{year}");
        }
    }

    #[test]
    fn holidays_fall_on_their_weekdays_1900_to_2200() {
        for year in 1900..=2200 {
            let weekday = |name| holiday(year, name).weekday();
            assert_eq!(weekday("långfredagen"), Weekday::Friday);
            assert_eq!(weekday("påskafton"), Weekday::Saturday);
            assert_eq!(weekday("annandag påsk"), Weekday::Monday);
            assert_eq!(weekday("Kristi himmelsfärdsdag"), Weekday::Thursday);
            assert_eq!(weekday("pingstdagen"), Weekday::Sunday);
            assert_eq!(weekday("midsommarafton"), Weekday::Friday);
            assert_eq!(weekday("midsommardagen"), Weekday::Saturday);
            assert_eq!(weekday("alla helgons dag"), Weekday::Saturday);
            let eve = holiday(year, "midsommarafton");
            assert!(date(year, 6, 19) <= eve && eve <= date(year, 6, 25));
            let midsommar = holiday(year, "midsommardagen");
            assert!(date(year, 6, 20) <= midsommar && midsommar <= date(year, 6, 26));
            let all_saints = holiday(year, "alla helgons dag");
            assert!(date(year, 10, 31) <= all_saints && all_saints <= date(year, 11, 6));
        }
    }

    #[test]
    fn working_days_around_easter_2026() {
        assert!(is_working_day(date(2026, 4, 2)));
        assert!(!is_working_day(date(2026, 4, 3)));
        assert!(!is_working_day(date(2026, 4, 4)));
        assert!(!is_working_day(date(2026, 4, 5)));
        assert!(!is_working_day(date(2026, 4, 6)));
        assert!(is_working_day(date(2026, 4, 7)));
    }

    #[test]
    fn eves_and_weekends_are_not_working_days() {
        assert!(!is_working_day(date(2026, 6, 19)));
        assert!(!is_working_day(date(2026, 12, 24)));
        assert!(!is_working_day(date(2026, 12, 31)));
        assert!(!is_working_day(date(2026, 3, 14)));
        assert!(!is_working_day(date(2026, 3, 15)));
        assert!(is_working_day(date(2026, 3, 16)));
    }

    #[test]
    fn add_across_easter_2026() {
        let deadline = add_working_days(at(2026, 4, 2, 10, 0), 1);
        assert_stockholm(&deadline, &at(2026, 4, 7, 10, 0));
    }

    #[test]
    fn add_from_friday_afternoon() {
        let deadline = add_working_days(at(2026, 3, 13, 15, 0), 1);
        assert_stockholm(&deadline, &at(2026, 3, 16, 15, 0));
    }

    #[test]
    fn add_from_saturday_counts_from_monday_morning() {
        let deadline = add_working_days(at(2026, 3, 14, 10, 0), 1);
        assert_stockholm(&deadline, &at(2026, 3, 17, 0, 0));
    }

    #[test]
    fn add_from_a_holiday_counts_from_the_next_working_morning() {
        let deadline = add_working_days(at(2026, 4, 3, 9, 30), 1);
        assert_stockholm(&deadline, &at(2026, 4, 8, 0, 0));
    }

    #[test]
    fn add_across_christmas_and_new_year() {
        let start = at(2026, 12, 23, 14, 0);
        let deadline = |days| add_working_days(start.clone(), days);
        assert_stockholm(&deadline(1), &at(2026, 12, 28, 14, 0));
        assert_stockholm(&deadline(3), &at(2026, 12, 30, 14, 0));
        assert_stockholm(&deadline(4), &at(2027, 1, 4, 14, 0));
        assert_stockholm(&deadline(6), &at(2027, 1, 7, 14, 0));
    }

    #[test]
    fn add_across_spring_dst_change_keeps_wall_clock() {
        let start = at(2026, 3, 27, 10, 0);
        let deadline = add_working_days(start.clone(), 1);
        assert_stockholm(&deadline, &at(2026, 3, 30, 10, 0));
        assert_eq!(start.offset().seconds(), 3600);
        assert_eq!(deadline.offset().seconds(), 7200);
        let hours = start.until((Unit::Hour, &deadline)).unwrap().get_hours();
        assert_eq!(hours, 71);
    }

    #[test]
    fn add_across_autumn_dst_change_keeps_wall_clock() {
        let start = at(2026, 10, 23, 10, 0);
        let deadline = add_working_days(start.clone(), 1);
        assert_stockholm(&deadline, &at(2026, 10, 26, 10, 0));
        assert_eq!(start.offset().seconds(), 7200);
        assert_eq!(deadline.offset().seconds(), 3600);
        let hours = start.until((Unit::Hour, &deadline)).unwrap().get_hours();
        assert_eq!(hours, 73);
    }

    #[test]
    fn add_counts_on_the_stockholm_clock_whatever_the_start_zone() {
        let morning: Zoned = "2026-04-02T08:00:00Z[UTC]".parse().unwrap();
        assert_stockholm(&add_working_days(morning, 1), &at(2026, 4, 7, 10, 0));
        // 23:30 UTC on Thursday is already långfredagen in Stockholm.
        let night: Zoned = "2026-04-02T23:30:00Z[UTC]".parse().unwrap();
        assert_stockholm(&add_working_days(night, 1), &at(2026, 4, 8, 0, 0));
    }

    #[test]
    fn zero_days_returns_start_unchanged() {
        let start: Zoned = "2026-04-04T10:00:00Z[UTC]".parse().unwrap();
        let same = add_working_days(start.clone(), 0);
        assert_eq!(same.datetime(), start.datetime());
        assert_eq!(same.time_zone().iana_name(), Some("UTC"));
        let same = subtract_working_days(start.clone(), 0);
        assert_eq!(same.time_zone().iana_name(), Some("UTC"));
    }

    #[test]
    fn subtract_for_a_reminder() {
        let reminder = subtract_working_days(at(2026, 4, 7, 10, 0), 2);
        assert_stockholm(&reminder, &at(2026, 4, 1, 10, 0));
    }

    #[test]
    fn subtract_from_a_sunday_deadline() {
        let reminder = subtract_working_days(at(2026, 3, 15, 12, 0), 2);
        assert_stockholm(&reminder, &at(2026, 3, 12, 0, 0));
    }

    #[test]
    fn between_counts_half_open_interval() {
        let thursday = date(2026, 4, 2);
        assert_eq!(working_days_between(thursday, thursday), 0);
        assert_eq!(working_days_between(thursday, date(2026, 4, 6)), 0);
        assert_eq!(working_days_between(thursday, date(2026, 4, 7)), 1);
        assert_eq!(working_days_between(date(2026, 4, 7), thursday), -1);
    }

    #[test]
    fn between_counts_the_working_days_of_2026() {
        // 261 weekdays, less the 10 holidays on weekdays: 1 and 6 January,
        // 3 and 6 April, 1 and 14 May, 19 June, 24, 25 and 31 December.
        assert_eq!(working_days_between(date(2025, 12, 31), date(2026, 12, 31)), 251);
    }

    #[test]
    fn between_counts_a_coinciding_holiday_once() {
        // 2008: Kristi himmelsfärdsdag on första maj, a Thursday.
        assert_eq!(working_days_between(date(2008, 4, 30), date(2008, 5, 2)), 1);
    }

    /// Any moment between 1950 and 2150, on the Stockholm clock.
    fn any_moment() -> impl Strategy<Value = Zoned> {
        (0..73_000i32, 0..24i8, 0..60i8)
            .prop_map(|(offset, hour, minute)| in_stockholm(add_days(date(1950, 1, 1), offset).at(hour, minute, 0, 0)))
    }

    /// A moment on a working day, found by moving to the next working day.
    fn working_moment() -> impl Strategy<Value = Zoned> {
        any_moment().prop_map(|moment| {
            let mut day = moment.date();
            if !is_working_day(day) {
                day = next_working_day(day);
            }
            in_stockholm(day.to_datetime(moment.time()))
        })
    }

    /// A moment on a non-working day: a weekend day or one of the holidays.
    fn non_working_moment() -> impl Strategy<Value = Zoned> {
        // The Saturday or the Sunday of the weekend on or after `day`.
        let weekend_day = any_date().prop_map(|day| {
            first_on_or_after(day, Weekday::Saturday).checked_add(i64::from(day.day() % 2).days()).unwrap()
        });
        let holiday = (1950..2150i16, 0..HOLIDAYS_PER_YEAR).prop_map(|(year, index)| holidays(year)[index].0);
        let day = prop_oneof![weekend_day, holiday];
        (day, 0..24i8, 0..60i8).prop_map(|(day, hour, minute)| in_stockholm(day.at(hour, minute, 0, 0)))
    }

    fn any_date() -> impl Strategy<Value = Date> {
        (0..73_000i32).prop_map(|offset| add_days(date(1950, 1, 1), offset))
    }

    proptest! {
        #[test]
        fn deadline_is_a_working_day(start in any_moment(), days in 1..400u32) {
            let deadline = add_working_days(start, days);
            prop_assert!(is_working_day(deadline.date()));
            prop_assert_eq!(deadline.time_zone().iana_name(), Some(TIME_ZONE));
        }

        #[test]
        fn deadline_keeps_time_of_day(start in working_moment(), days in 0..400u32) {
            let deadline = add_working_days(start.clone(), days);
            prop_assert_eq!(deadline.time(), start.time());
        }

        #[test]
        fn between_counts_the_days_added(start in working_moment(), days in 0..400u32) {
            let deadline = add_working_days(start.clone(), days);
            let counted = working_days_between(start.date(), deadline.date());
            prop_assert_eq!(counted, i64::from(days));
        }

        #[test]
        fn non_working_start_counts_from_next_working_morning(
            start in non_working_moment(),
            days in 1..400u32,
        ) {
            prop_assert!(!is_working_day(start.date()));
            let morning = next_working_day(start.date()).to_datetime(Time::midnight());
            let deadline = add_working_days(start.clone(), days);
            let expected = add_working_days(in_stockholm(morning), days);
            prop_assert_eq!(deadline.datetime(), expected.datetime());
            let counted = working_days_between(start.date(), deadline.date());
            prop_assert_eq!(counted, i64::from(days) + 1);
        }

        #[test]
        fn deadline_increases_strictly_with_days(start in any_moment(), days in 0..400u32) {
            let earlier = add_working_days(start.clone(), days);
            let later = add_working_days(start, days + 1);
            prop_assert!(earlier < later);
        }

        #[test]
        fn subtract_undoes_add(start in working_moment(), days in 0..400u32) {
            let deadline = add_working_days(start.clone(), days);
            let back = subtract_working_days(deadline, days);
            prop_assert_eq!(back.datetime(), start.datetime());
            prop_assert_eq!(back.timestamp(), start.timestamp());
        }

        #[test]
        fn add_undoes_subtract(deadline in working_moment(), days in 0..400u32) {
            let reminder = subtract_working_days(deadline.clone(), days);
            prop_assert!(days == 0 || is_working_day(reminder.date()));
            let back = add_working_days(reminder, days);
            prop_assert_eq!(back.datetime(), deadline.datetime());
        }

        #[test]
        fn between_matches_counting_one_day_at_a_time(
            from in any_date(),
            length in 0..800i32,
        ) {
            let to = add_days(from, length);
            prop_assert_eq!(working_days_between(from, to), naive_between(from, to));
        }

        #[test]
        fn between_adds_up(a in any_date(), b in any_date(), c in any_date()) {
            let sum = working_days_between(a, b) + working_days_between(b, c);
            prop_assert_eq!(sum, working_days_between(a, c));
            prop_assert_eq!(working_days_between(a, b), -working_days_between(b, a));
        }
    }
}
