//! Who gets a task, and when it is due.

use super::{Assignment, Case, Error, Party, Task, Via, World};
use crate::calendar::{self, stockholm};
use crate::definition::model::Assignee;
use crate::directory::Directory;
use crate::directory::Person;
use crate::duration::{Duration, Unit};
use jiff::{Timestamp, ToSpan, Zoned};

pub fn party(person: &Person) -> Party {
    Party {
        person: Some(person.id.clone()),
        email: person.email.clone(),
        name: person.name.clone(),
        lang: person.language,
    }
}

/// The people a task goes to on `now`'s date. Someone absent that day is replaced by their
/// substitute, and the assignment says for whom the substitute acts. A person who would get
/// the task twice (as themselves and as a substitute) gets it once.
pub fn resolve(
    world: &World,
    case: &Case,
    assignee: &Assignee,
    via: Via,
    now: Timestamp,
) -> Result<Vec<Assignment>, Error> {
    let directory = world.directory;
    let people: Vec<&Person> = match assignee {
        Assignee::Role { role, scope } => {
            let scope_value = scope.as_ref().and_then(|s| case.data.get(&s.name)).and_then(|v| v.as_str());
            let found = directory.holders(&role.name, scope_value);
            if found.is_empty() {
                return Err(Error::NoAssignee { role: role.name.clone(), scope: scope_value.map(str::to_string) });
            }
            found
        }
        Assignee::Person(p) => directory.person(&p.name).into_iter().collect(),
        Assignee::Field(f) => {
            let value = case.data.get(&f.name).and_then(|v| v.as_str()).unwrap_or_default();
            match directory.person(value) {
                Some(p) => vec![p],
                None if value.contains('@') => {
                    let party = Party {
                        person: None,
                        email: value.to_string(),
                        name: value.to_string(),
                        lang: Default::default(),
                    };
                    return Ok(vec![Assignment { party, on_behalf_of: None, via }]);
                }
                None => return Err(Error::NoAssignee { role: format!("field {}", f.name), scope: None }),
            }
        }
        Assignee::Starter => {
            return Ok(vec![Assignment { party: case.started_by.clone(), on_behalf_of: None, via }]);
        }
    };
    let today = now.to_zoned(stockholm()).date();
    let mut out: Vec<Assignment> = Vec::new();
    for person in people {
        let acting = directory.acting_for(person, today);
        let assignment = if acting.id == person.id {
            Assignment { party: party(person), on_behalf_of: None, via }
        } else {
            Assignment { party: party(acting), on_behalf_of: Some(person.id.clone()), via: Via::Substitute }
        };
        if !out.iter().any(|a| a.party.email == assignment.party.email) {
            out.push(assignment);
        }
    }
    if out.is_empty() {
        return Err(Error::NoAssignee { role: "?".into(), scope: None });
    }
    Ok(out)
}

/// The moment `duration` after `from`, on the Stockholm wall clock (working days skip weekends
/// and holidays; days keep the time of day across daylight saving changes).
pub fn after(from: Timestamp, duration: Duration) -> Timestamp {
    let zoned: Zoned = from.to_zoned(stockholm());
    let n = i64::from(duration.amount);
    let result = match duration.unit {
        Unit::WorkingDays => calendar::add_working_days(zoned, duration.amount),
        Unit::Days => zoned.checked_add(n.days()).unwrap_or(zoned),
        Unit::Weeks => zoned.checked_add((n * 7).days()).unwrap_or(zoned),
        Unit::Hours => zoned.checked_add(n.hours()).unwrap_or(zoned),
    };
    result.timestamp()
}

/// The moment `duration` before `deadline`, for reminders.
pub fn before(deadline: Timestamp, duration: Duration) -> Timestamp {
    let zoned: Zoned = deadline.to_zoned(stockholm());
    let n = i64::from(duration.amount);
    let result = match duration.unit {
        Unit::WorkingDays => calendar::subtract_working_days(zoned, duration.amount),
        Unit::Days => zoned.checked_sub(n.days()).unwrap_or(zoned),
        Unit::Weeks => zoned.checked_sub((n * 7).days()).unwrap_or(zoned),
        Unit::Hours => zoned.checked_sub(n.hours()).unwrap_or(zoned),
    };
    result.timestamp()
}

/// The assignment `actor` takes over, on `now`'s date, as the substitute of a holder who went
/// on leave after the task was given to them: the decision is then recorded as made for that
/// holder. None when `actor` stands in for none of the task's holders.
pub fn standing_in(directory: &Directory, task: &Task, actor: &str, now: Timestamp) -> Option<Assignment> {
    let substitute = directory.person(actor)?;
    let today = now.to_zoned(stockholm()).date();
    task.assignees.iter().find_map(|a| {
        let holder = directory.person(a.party.person.as_deref()?)?;
        let acting = directory.acting_for(holder, today);
        (acting.id != holder.id && acting.id == substitute.id).then(|| Assignment {
            party: party(substitute),
            on_behalf_of: Some(holder.id.clone()),
            via: a.via,
        })
    })
}
