//! Budget frames per portfolio and year (`workflows/portfolios.yaml`), which ledgers reserve in.

use crate::definition::model::Text;
use crate::definition::reader;
use crate::diagnostic::{Msg, Report};
use crate::msg;
use crate::yaml::{Node, Value};

#[derive(Clone, Debug, Default)]
pub struct Portfolios {
    pub portfolios: Vec<Portfolio>,
}

#[derive(Clone, Debug)]
pub struct Portfolio {
    pub id: String,
    pub name: Text,
    /// Frames in whole kronor by budget year.
    pub frames: Vec<(i32, i64)>,
}

impl Portfolios {
    /// The frame for a portfolio and year, in kronor.
    pub fn frame(&self, portfolio: &str, year: i32) -> Option<i64> {
        let p = self.portfolios.iter().find(|p| p.id == portfolio)?;
        p.frames.iter().find(|(y, _)| *y == year).map(|(_, amount)| *amount)
    }
}

fn w(sv: &str, en: &str) -> Msg {
    Msg::new(sv, en)
}

/// Reads and checks a portfolios file.
pub fn parse(r: &mut Report, root: &Node) -> Portfolios {
    let Some(top) = reader::obj(r, root, &w("portföljfilen", "the portfolios file")) else {
        return Portfolios::default();
    };
    top.check_keys(r, &["portfolios"], None);
    let Some(node) = top.require(r, "portfolios") else { return Portfolios::default() };
    let portfolios = reader::entries(r, node, &w("`portfolios`", "`portfolios`"))
        .into_iter()
        .filter_map(|(k, v)| {
            let o = reader::obj(r, v, &w("en portfölj", "a portfolio"))?;
            o.check_keys(r, &["name", "frames"], None);
            let name = o.require(r, "name").and_then(|n| reader::text(r, n, &w("`name`", "`name`")));
            let frames = o.require(r, "frames").map(|n| frames(r, n)).unwrap_or_default();
            Some(Portfolio { id: k.name.clone(), name: name?, frames })
        })
        .collect();
    Portfolios { portfolios }
}

fn frames(r: &mut Report, node: &Node) -> Vec<(i32, i64)> {
    let Some(o) = reader::obj(r, node, &w("`frames`", "`frames`")) else { return Vec::new() };
    o.entries
        .iter()
        .filter_map(|(k, v)| {
            let year = k.name.parse::<i32>().ok().filter(|y| (2000..=2200).contains(y));
            if year.is_none() {
                let name = &k.name;
                r.error(
                    k.pos,
                    "invalid-value",
                    msg!("`{name}` är inget budgetår", "`{name}` is not a budget year"),
                    Some(w("skriv året, t.ex. `2026`", "write the year, e.g. `2026`")),
                );
            }
            let amount = match &v.value {
                Value::Int(i) if *i >= 0 => Some(*i),
                _ => {
                    reader::wrong_type(
                        r,
                        v,
                        &w("en ram", "a frame"),
                        &w("ett belopp i hela kronor, 0 eller mer", "an amount in whole kronor, 0 or more"),
                    );
                    None
                }
            };
            Some((year?, amount?))
        })
        .collect()
}
