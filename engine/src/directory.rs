//! The directory of people and roles (`workflows/directory.yaml`) and who holds a role when.

use crate::definition::model::Text;
use crate::definition::reader::{self, Obj};
use crate::diagnostic::{Lang, Msg, Report, suggest};
use crate::msg;
use crate::yaml::{Node, Pos};
use jiff::civil::Date;

#[derive(Clone, Debug, Default)]
pub struct Directory {
    pub forvaltningar: Vec<Forvaltning>,
    pub roles: Vec<Role>,
    pub people: Vec<Person>,
}

#[derive(Clone, Debug)]
pub struct Forvaltning {
    pub id: String,
    pub name: Text,
}

#[derive(Clone, Debug)]
pub struct Role {
    pub id: String,
    pub label: Text,
    /// Held per förvaltning (e.g. the IT-samordnare of one förvaltning).
    pub scoped: bool,
}

#[derive(Clone, Debug)]
pub struct Person {
    pub id: String,
    pub name: String,
    pub email: String,
    pub language: Lang,
    pub roles: Vec<Grant>,
    pub absences: Vec<Absence>,
}

/// A role held by a person, for one förvaltning if the role is scoped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    pub role: String,
    pub scope: Option<String>,
}

/// A period (both days included) when a person is away and who stands in.
#[derive(Clone, Debug)]
pub struct Absence {
    pub from: Date,
    pub to: Date,
    pub substitute: String,
}

impl Directory {
    pub fn person(&self, id: &str) -> Option<&Person> {
        self.people.iter().find(|p| p.id == id)
    }

    pub fn role(&self, id: &str) -> Option<&Role> {
        self.roles.iter().find(|r| r.id == id)
    }

    /// Everyone holding `role` (for `scope`, when given), in directory order.
    pub fn holders(&self, role: &str, scope: Option<&str>) -> Vec<&Person> {
        self.people
            .iter()
            .filter(|p| p.roles.iter().any(|g| g.role == role && (scope.is_none() || g.scope.as_deref() == scope)))
            .collect()
    }

    /// Who acts for `person` on `day`: the person, or their substitute while they are away
    /// (followed through chains of absences, stopping at a cycle).
    pub fn acting_for<'a>(&'a self, person: &'a Person, day: Date) -> &'a Person {
        let mut current = person;
        let mut seen = vec![person.id.as_str()];
        while let Some(absence) = current.absences.iter().find(|a| a.from <= day && day <= a.to) {
            match self.person(&absence.substitute) {
                Some(next) if !seen.contains(&next.id.as_str()) => {
                    seen.push(&next.id);
                    current = next;
                }
                _ => break,
            }
        }
        current
    }
}

fn w(sv: &str, en: &str) -> Msg {
    Msg::new(sv, en)
}

/// Reads and checks `directory.yaml`.
pub fn parse(r: &mut Report, root: &Node) -> Directory {
    let Some(top) = reader::obj(r, root, &w("katalogen", "the directory")) else { return Directory::default() };
    top.check_keys(r, &["forvaltningar", "roles", "people"], None);
    let forvaltningar = top
        .get("forvaltningar")
        .map(|n| {
            reader::entries(r, n, &w("`forvaltningar`", "`forvaltningar`"))
                .into_iter()
                .filter_map(|(k, v)| {
                    let o = reader::obj(r, v, &w("en förvaltning", "a förvaltning"))?;
                    o.check_keys(r, &["name"], None);
                    let name = o.require(r, "name").and_then(|n| reader::text(r, n, &w("`name`", "`name`")))?;
                    Some(Forvaltning { id: k.name.clone(), name })
                })
                .collect()
        })
        .unwrap_or_default();
    let roles = top.get("roles").map(|n| roles(r, n)).unwrap_or_default();
    let mut directory = Directory { forvaltningar, roles, people: Vec::new() };
    let mut positions = Vec::new();
    if let Some(n) = top.require(r, "people") {
        for (k, v) in reader::entries(r, n, &w("`people`", "`people`")) {
            if let Some((person, pos)) = person(r, &directory, &k.name, v) {
                directory.people.push(person);
                positions.push(pos);
            }
        }
    }
    check_people(r, &directory, &positions);
    directory
}

fn roles(r: &mut Report, node: &Node) -> Vec<Role> {
    reader::entries(r, node, &w("`roles`", "`roles`"))
        .into_iter()
        .filter_map(|(k, v)| {
            let o = reader::obj(r, v, &w("en roll", "a role"))?;
            o.check_keys(r, &["label", "scoped"], None);
            let label = o.require(r, "label").and_then(|n| reader::text(r, n, &w("`label`", "`label`")))?;
            let scoped =
                o.get("scoped").and_then(|n| reader::boolean(r, n, &w("`scoped`", "`scoped`"))).unwrap_or(false);
            Some(Role { id: k.name.clone(), label, scoped })
        })
        .collect()
}

/// Positions of a person's references, checked once everyone is read.
struct PersonPositions {
    substitutes: Vec<Pos>,
}

fn person(r: &mut Report, directory: &Directory, id: &str, node: &Node) -> Option<(Person, PersonPositions)> {
    let o = reader::obj(r, node, &msg!("personen `{id}`", "the person `{id}`"))?;
    o.check_keys(r, &["name", "email", "language", "roles", "absences"], None);
    let name = o.require(r, "name").and_then(|n| reader::string(r, n, &w("`name`", "`name`")));
    let email = o.require(r, "email").and_then(|n| email(r, n));
    let language = o
        .get("language")
        .and_then(|n| reader::choice(r, n, &w("`language`", "`language`"), &[("sv", Lang::Sv), ("en", Lang::En)]))
        .unwrap_or_default();
    let roles = o.get("roles").map(|n| grants(r, directory, n)).unwrap_or_default();
    let (absences, substitutes) = o.get("absences").map(|n| absences(r, n)).unwrap_or_default();
    let person = Person { id: id.to_string(), name: name?, email: email?, language, roles, absences };
    Some((person, PersonPositions { substitutes }))
}

fn email(r: &mut Report, node: &Node) -> Option<String> {
    let text = reader::string(r, node, &w("`email`", "`email`"))?;
    let valid = text
        .split_once('@')
        .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.') && !text.contains(' '));
    if !valid {
        r.error(
            node.pos,
            "invalid-value",
            msg!("`{text}` är ingen e-postadress", "`{text}` is not an email address"),
            Some(Msg::new("skriv t.ex. `anna.berg@kommun.se`", "write e.g. `anna.berg@kommun.se`")),
        );
        return None;
    }
    Some(text)
}

fn grants(r: &mut Report, directory: &Directory, node: &Node) -> Vec<Grant> {
    let Some(items) = reader::list(r, node, &w("`roles`", "`roles`")) else { return Vec::new() };
    items.iter().filter_map(|item| grant(r, directory, item)).collect()
}

fn grant(r: &mut Report, directory: &Directory, node: &Node) -> Option<Grant> {
    let (role_ref, scope_ref) = match &node.value {
        crate::yaml::Value::Map(_) => {
            let o: Obj = reader::obj(r, node, &w("en roll", "a role"))?;
            o.check_keys(r, &["role", "scope"], None);
            let role = o.require(r, "role").and_then(|n| reader::reference(r, n, &w("`role`", "`role`")))?;
            let scope = o.get("scope").and_then(|n| reader::reference(r, n, &w("`scope`", "`scope`")));
            (role, scope)
        }
        _ => (reader::reference(r, node, &w("en roll", "a role"))?, None),
    };
    let Some(role) = directory.role(&role_ref.name) else {
        let name = &role_ref.name;
        r.error(
            role_ref.pos,
            "unknown-role",
            msg!("rollen `{name}` finns inte under `roles`", "the role `{name}` is not defined under `roles`"),
            Some(suggest(name, directory.roles.iter().map(|r| r.id.as_str()))),
        );
        return None;
    };
    match (&scope_ref, role.scoped) {
        (None, true) => {
            let name = &role.id;
            r.error(
                role_ref.pos,
                "missing-key",
                msg!(
                    "rollen `{name}` gäller per förvaltning; ange vilken",
                    "the role `{name}` is held per förvaltning; say which"
                ),
                Some(msg!(
                    "skriv `{{role: {name}, scope: FÖRVALTNING}}`",
                    "write `{{role: {name}, scope: FÖRVALTNING}}`"
                )),
            );
        }
        (Some(scope), false) => {
            let name = &role.id;
            r.error(
                scope.pos,
                "invalid-value",
                msg!("rollen `{name}` gäller inte per förvaltning", "the role `{name}` is not held per förvaltning"),
                Some(msg!(
                    "ta bort `scope` eller sätt `scoped: true` på rollen",
                    "remove `scope` or set `scoped: true` on the role"
                )),
            );
        }
        (Some(scope), true) if !directory.forvaltningar.iter().any(|f| f.id == scope.name) => {
            let name = &scope.name;
            r.error(
                scope.pos,
                "unknown-scope",
                msg!("förvaltningen `{name}` finns inte", "the förvaltning `{name}` does not exist"),
                Some(suggest(name, directory.forvaltningar.iter().map(|f| f.id.as_str()))),
            );
        }
        _ => {}
    }
    Some(Grant { role: role_ref.name, scope: scope_ref.map(|s| s.name) })
}

fn absences(r: &mut Report, node: &Node) -> (Vec<Absence>, Vec<Pos>) {
    let Some(items) = reader::list(r, node, &w("`absences`", "`absences`")) else { return Default::default() };
    let mut out = (Vec::new(), Vec::new());
    for item in items {
        let Some(o) = reader::obj(r, item, &w("en frånvaro", "an absence")) else { continue };
        o.check_keys(r, &["from", "to", "substitute"], None);
        let from = o.require(r, "from").and_then(|n| date(r, n));
        let to = o.require(r, "to").and_then(|n| date(r, n));
        let substitute =
            o.require(r, "substitute").and_then(|n| reader::reference(r, n, &w("`substitute`", "`substitute`")));
        let (Some(from), Some(to), Some(substitute)) = (from, to, substitute) else { continue };
        if to < from {
            r.error(
                o.pos,
                "invalid-value",
                msg!(
                    "frånvaron slutar ({to}) innan den börjar ({from})",
                    "the absence ends ({to}) before it starts ({from})"
                ),
                None,
            );
        }
        out.0.push(Absence { from, to, substitute: substitute.name });
        out.1.push(substitute.pos);
    }
    out
}

/// Reads a date written `2026-07-01`.
pub fn date(r: &mut Report, node: &Node) -> Option<Date> {
    let text = reader::string(r, node, &w("ett datum", "a date"))?;
    match Date::strptime("%Y-%m-%d", &text) {
        Ok(d) => Some(d),
        Err(_) => {
            r.error(
                node.pos,
                "invalid-value",
                msg!("`{text}` är inget datum", "`{text}` is not a date"),
                Some(Msg::new(
                    "skriv datum som ÅÅÅÅ-MM-DD, t.ex. `2026-07-01`",
                    "write dates as YYYY-MM-DD, e.g. `2026-07-01`",
                )),
            );
            None
        }
    }
}

/// Checks what needs everyone read: substitutes exist, and addresses are unique.
fn check_people(r: &mut Report, directory: &Directory, positions: &[PersonPositions]) {
    for (person, pos) in directory.people.iter().zip(positions) {
        for (absence, at) in person.absences.iter().zip(&pos.substitutes) {
            let name = &absence.substitute;
            if directory.person(name).is_none() {
                r.error(
                    *at,
                    "unknown-person",
                    msg!(
                        "ersättaren `{name}` finns inte i katalogen",
                        "the substitute `{name}` is not in the directory"
                    ),
                    Some(suggest(name, directory.people.iter().map(|p| p.id.as_str()))),
                );
            } else if name == &person.id {
                r.error(
                    *at,
                    "invalid-value",
                    Msg::new("en person kan inte ersätta sig själv", "a person cannot substitute for themselves"),
                    None,
                );
            }
        }
    }
    for (i, person) in directory.people.iter().enumerate() {
        if let Some(other) = directory.people[..i].iter().find(|p| p.email.eq_ignore_ascii_case(&person.email)) {
            let (email, first) = (&person.email, &other.id);
            r.error(
                Pos { line: 1, column: 1 },
                "duplicate-id",
                msg!(
                    "adressen `{email}` används också av `{first}`",
                    "the address `{email}` is also used by `{first}`"
                ),
                Some(Msg::new(
                    "varje person behöver en egen adress, så att länkar i e-post går till rätt person",
                    "each person needs an address of their own, so that email links reach the right person",
                )),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(source: &str) -> (Directory, Report) {
        let mut r = Report::new("directory.yaml");
        let d = parse(&mut r, &crate::yaml::parse(source).unwrap());
        (d, r)
    }

    const SAMPLE: &str = "forvaltningar:\n  kf: {name: KF}\nroles:\n  it-chef: {label: IT-chef}\n  samordnare: {label: S, scoped: true}\npeople:\n  anna:\n    name: Anna\n    email: anna@k.se\n    roles: [it-chef]\n    absences: [{from: 2026-07-01, to: 2026-07-31, substitute: bo}]\n  bo:\n    name: Bo\n    email: bo@k.se\n    roles: [{role: samordnare, scope: kf}]\n";

    #[test]
    fn substitutes_act_during_absence_only() {
        let (d, r) = load(SAMPLE);
        assert!(!r.has_errors(), "{:?}", r.items);
        let anna = d.person("anna").unwrap();
        assert_eq!(d.acting_for(anna, Date::constant(2026, 7, 15)).id, "bo");
        assert_eq!(d.acting_for(anna, Date::constant(2026, 8, 1)).id, "anna");
        assert_eq!(d.holders("samordnare", Some("kf")).len(), 1);
    }

    #[test]
    fn reports_unknown_roles_and_substitutes() {
        let (_, r) =
            load(&SAMPLE.replace("roles: [it-chef]", "roles: [it-chief]").replace("substitute: bo", "substitute: boo"));
        let codes: Vec<_> = r.items.iter().map(|d| d.code).collect();
        assert_eq!(codes, ["unknown-role", "unknown-person"]);
    }
}
