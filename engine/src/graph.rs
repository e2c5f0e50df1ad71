//! Drawing a workflow as Graphviz DOT, Mermaid or SVG.
//!
//! The definition is first turned into a small neutral graph (nodes with a shape and lines of
//! text, edges with a label), so that the three formats draw the same thing.

use std::collections::HashMap;

use layout::backends::svg::SVGWriter;
use layout::core::base::Orientation;
use layout::core::color::Color;
use layout::core::format::{ClipHandle, RenderBackend};
use layout::core::geometry::Point;
use layout::core::style::{LineStyleKind, StyleAttr};
use layout::std_shapes::shapes::{Arrow, Element, LineEndKind, ShapeKind};
use layout::topo::layout::VisualGraph;

use crate::definition::model::{Assignee, Definition, JoinRule, Outcome, Parallel, State, StateKind};
use crate::diagnostic::Lang;

/// The node id of the start marker. State ids are lower case, so it cannot clash with one.
const START: &str = "START";
/// Edge labels longer than this are cut, so that long guard expressions do not widen the drawing.
const MAX_EDGE_LABEL: usize = 30;
const CURRENT_FILL: &str = "#f5a623";
const VISITED_FILL: &str = "#dcecfb";
const UNCOVERED_LINE: &str = "#d0021b";
const TAKEN_LINE: &str = "#1d4ed8";
/// From little to much time spent; black text stays readable on every one.
const HEAT: [&str; 5] = ["#fff7bc", "#fee391", "#fec44f", "#fe9929", "#ec7014"];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Dot,
    Mermaid,
    Svg,
}

impl Format {
    pub fn parse(s: &str) -> Option<Format> {
        match s {
            "dot" => Some(Format::Dot),
            "mermaid" => Some(Format::Mermaid),
            "svg" => Some(Format::Svg),
            _ => None,
        }
    }
}

/// Options for highlighting. States are given by id; an uncovered edge by its state's id and
/// its key within the state (`State::edges`: an action id, `otherwise`, `timeout`, …).
#[derive(Clone, Debug, Default)]
pub struct Highlight {
    pub current: Vec<String>,
    pub visited: Vec<String>,
    pub uncovered_states: Vec<String>,
    pub uncovered_edges: Vec<(String, String)>,
    /// Arrows a case went along, as (from state, to state): drawn thick and blue.
    pub taken: Vec<(String, String)>,
    /// An extra line under a state's label, such as the time spent there.
    pub notes: HashMap<String, String>,
    /// 0.0–1.0 per state: filled from pale yellow to orange (where cases get stuck).
    pub heat: HashMap<String, f64>,
}

/// Draws `def` in `format`, with labels in `lang`.
pub fn render(def: &Definition, format: Format, lang: Lang, highlight: &Highlight) -> String {
    let graph = Graph::new(def, lang, highlight);
    match format {
        Format::Dot => dot(&graph),
        Format::Mermaid => mermaid(&graph),
        Format::Svg => svg(&graph),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shape {
    /// A task: a rounded box.
    Rounded,
    /// A parallel review: a box with a double or heavy border.
    Parallel,
    /// A choice: a diamond where the format has one.
    Diamond,
    /// Auto, call, wait and subworkflow: a plain box.
    Plain,
    /// An end: a double circle.
    End,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fill {
    Plain,
    Visited,
    Current,
    /// An index into `HEAT`.
    Heat(usize),
}

struct Node {
    id: String,
    shape: Shape,
    lines: Vec<String>,
    fill: Fill,
    uncovered: bool,
}

struct Edge {
    from: String,
    to: String,
    label: String,
    uncovered: bool,
    taken: bool,
}

struct Graph {
    id: String,
    title: String,
    start: Option<String>,
    nodes: Vec<Node>,
    edges: Vec<Edge>,
}

impl Graph {
    fn new(def: &Definition, lang: Lang, highlight: &Highlight) -> Graph {
        let nodes: Vec<Node> = def.states.iter().map(|s| node(s, lang, highlight)).collect();
        // Edges to states that do not exist are left out: the checker reports them, and the
        // drawing should still show the rest.
        let edges =
            def.states.iter().flat_map(|s| edges(s, lang, highlight)).filter(|e| def.state(&e.to).is_some()).collect();
        let start = Some(def.start.name.clone()).filter(|s| def.state(s).is_some());
        Graph { id: def.id.clone(), title: one_line(def.name.get(lang)), start, nodes, edges }
    }
}

fn node(state: &State, lang: Lang, highlight: &Highlight) -> Node {
    let (shape, mut lines) = shape_and_lines(state, lang);
    if let Some(note) = highlight.notes.get(&state.id) {
        lines.push(one_line(note));
    }
    let fill = if highlight.current.contains(&state.id) {
        Fill::Current
    } else if let Some(heat) = highlight.heat.get(&state.id) {
        Fill::Heat(((heat.clamp(0.0, 1.0) * (HEAT.len() - 1) as f64).round()) as usize)
    } else if highlight.visited.contains(&state.id) {
        Fill::Visited
    } else {
        Fill::Plain
    };
    let uncovered = highlight.uncovered_states.contains(&state.id);
    Node { id: state.id.clone(), shape, lines, fill, uncovered }
}

fn shape_and_lines(state: &State, lang: Lang) -> (Shape, Vec<String>) {
    let label = one_line(state.label.get(lang));
    match &state.kind {
        StateKind::Task(task) => {
            let who = task.assignee.as_ref().map(|a| assignee(a, lang));
            (Shape::Rounded, [label].into_iter().chain(who).collect())
        }
        StateKind::Parallel(parallel) => (Shape::Parallel, parallel_lines(label, parallel, lang)),
        StateKind::Choice(_) => (Shape::Diamond, vec![label]),
        StateKind::End(end) => {
            let outcome = end.outcome.map(|o| format!("({})", o.label(lang)));
            (Shape::End, [label].into_iter().chain(outcome).collect())
        }
        StateKind::Subworkflow(sub) => {
            (Shape::Plain, vec![format!("{} {label}", kind_tag(&state.kind, lang)), sub.workflow.name.clone()])
        }
        kind => (Shape::Plain, vec![format!("{} {label}", kind_tag(kind, lang))]),
    }
}

/// The kind of an automatic state as a word in brackets; words rather than symbols, because the
/// fonts an SVG viewer falls back to may not have the symbols.
fn kind_tag(kind: &StateKind, lang: Lang) -> &'static str {
    match kind {
        StateKind::Auto(_) => tr(lang, "[automatiskt]", "[auto]"),
        StateKind::Call(_) => tr(lang, "[anrop]", "[call]"),
        StateKind::Wait(_) => tr(lang, "[väntar]", "[wait]"),
        StateKind::Subworkflow(_) => tr(lang, "[delflöde]", "[subworkflow]"),
        _ => "",
    }
}

fn assignee(assignee: &Assignee, lang: Lang) -> String {
    match assignee {
        Assignee::Role { role, scope: Some(scope) } => {
            format!("{}: {} ({})", tr(lang, "roll", "role"), role.name, scope.name)
        }
        Assignee::Role { role, scope: None } => format!("{}: {}", tr(lang, "roll", "role"), role.name),
        Assignee::Field(field) => format!("{}: {}", tr(lang, "fält", "field"), field.name),
        Assignee::Person(person) => format!("person: {}", person.name),
        Assignee::Starter => tr(lang, "startaren", "the starter").to_string(),
    }
}

/// The review's label, one line per branch, and the rule that approves it.
fn parallel_lines(label: String, parallel: &Parallel, lang: Lang) -> Vec<String> {
    let branches = parallel.branches.iter().map(|b| format!("- {}", one_line(b.label.get(lang))));
    let rule = parallel.join.map(|join| match join.rule {
        JoinRule::All => tr(lang, "alla", "all").to_string(),
        JoinRule::Any => tr(lang, "någon", "any").to_string(),
        JoinRule::AtLeast { needed, of } => format!("{needed} {} {of}", tr(lang, "av", "of")),
    });
    let veto = if parallel.veto { ", veto" } else { "" };
    let rule = rule.map(|r| format!("{}: {r}{veto}", tr(lang, "krav", "needs")));
    [label].into_iter().chain(branches).chain(rule).collect()
}

fn edges(state: &State, lang: Lang, highlight: &Highlight) -> Vec<Edge> {
    state
        .edges()
        .into_iter()
        .map(|e| Edge {
            from: state.id.clone(),
            to: e.to.name.clone(),
            label: shorten(&edge_label(state, &e.label, lang)),
            uncovered: highlight.uncovered_edges.iter().any(|(f, via)| *f == state.id && *via == e.via),
            taken: highlight.taken.iter().any(|(f, t)| *f == state.id && *t == e.to.name),
        })
        .collect()
}

/// `successors()` gives Swedish labels; in English, the fixed words, action labels and outcomes
/// are translated, and guard expressions stay as written.
fn edge_label(state: &State, label: &str, lang: Lang) -> String {
    const FIXED: [(&str, &str); 5] = [
        ("tidsgräns", "timeout"),
        ("tillstyrkt", "approved"),
        ("avstyrkt", "rejected"),
        ("annars", "otherwise"),
        ("misslyckades", "failed"),
    ];
    if lang == Lang::Sv {
        return one_line(label);
    }
    let english = match &state.kind {
        StateKind::Task(task) => task.actions.iter().find(|a| a.label.sv == label).map(|a| a.label.get(lang)),
        StateKind::Subworkflow(_) => {
            Outcome::ALL.into_iter().find(|o| o.label(Lang::Sv) == label).map(|o| o.label(lang))
        }
        _ => None,
    };
    let fixed = || FIXED.iter().find(|(sv, _)| *sv == label).map(|(_, en)| *en);
    one_line(english.or_else(fixed).unwrap_or(label))
}

fn shorten(text: &str) -> String {
    if text.chars().count() <= MAX_EDGE_LABEL {
        return text.to_string();
    }
    let kept: String = text.chars().take(MAX_EDGE_LABEL - 1).collect();
    format!("{}…", kept.trim_end())
}

/// Collapses line breaks and runs of spaces: a label is drawn on one line of its own.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn tr(lang: Lang, sv: &'static str, en: &'static str) -> &'static str {
    match lang {
        Lang::Sv => sv,
        Lang::En => en,
    }
}

fn fill_colour(fill: Fill) -> Option<&'static str> {
    match fill {
        Fill::Plain => None,
        Fill::Visited => Some(VISITED_FILL),
        Fill::Current => Some(CURRENT_FILL),
        Fill::Heat(level) => HEAT.get(level).copied(),
    }
}

// DOT

fn dot(graph: &Graph) -> String {
    let mut out = format!("digraph \"{}\" {{\n", dot_escape(&graph.id));
    out.push_str(&format!("  label=\"{}\";\n  labelloc=t;\n", dot_escape(&graph.title)));
    out.push_str("  node [fontname=\"Helvetica\"];\n  edge [fontname=\"Helvetica\", fontsize=10];\n");
    if let Some(start) = &graph.start {
        out.push_str(&format!("  \"{START}\" [shape=point, width=0.2];\n"));
        out.push_str(&format!("  \"{START}\" -> \"{}\";\n", dot_escape(start)));
    }
    for node in &graph.nodes {
        out.push_str(&format!("  \"{}\" [{}];\n", dot_escape(&node.id), dot_node_attrs(node)));
    }
    for edge in &graph.edges {
        out.push_str(&format!(
            "  \"{}\" -> \"{}\" [{}];\n",
            dot_escape(&edge.from),
            dot_escape(&edge.to),
            dot_edge_attrs(edge)
        ));
    }
    out.push_str("}\n");
    out
}

fn dot_node_attrs(node: &Node) -> String {
    let shape = match node.shape {
        Shape::Rounded | Shape::Parallel | Shape::Plain => "box",
        Shape::Diamond => "diamond",
        Shape::End => "doublecircle",
    };
    let label: Vec<String> = node.lines.iter().map(|l| dot_escape(l)).collect();
    let mut attrs = vec![format!("shape={shape}"), format!("label=\"{}\"", label.join("\\n"))];
    let mut style = Vec::new();
    if node.shape == Shape::Rounded {
        style.push("rounded");
    }
    if node.shape == Shape::Parallel {
        attrs.push("peripheries=2".into());
    }
    if let Some(colour) = fill_colour(node.fill) {
        style.push("filled");
        attrs.push(format!("fillcolor=\"{colour}\""));
    }
    if node.uncovered {
        style.push("dashed");
        attrs.push(format!("color=\"{UNCOVERED_LINE}\""));
    }
    if !style.is_empty() {
        attrs.push(format!("style=\"{}\"", style.join(",")));
    }
    attrs.join(", ")
}

fn dot_edge_attrs(edge: &Edge) -> String {
    let mut attrs = vec![format!("label=\"{}\"", dot_escape(&edge.label))];
    if edge.uncovered {
        attrs.push(format!("style=dashed, color=\"{UNCOVERED_LINE}\""));
    }
    if edge.taken {
        attrs.push(format!("penwidth=3, color=\"{TAKEN_LINE}\""));
    }
    attrs.join(", ")
}

fn dot_escape(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"")
}

// Mermaid

/// Words Mermaid reads as syntax when used as a node id.
const MERMAID_KEYWORDS: [&str; 11] =
    ["end", "graph", "flowchart", "subgraph", "style", "class", "classDef", "click", "linkStyle", "direction", "call"];

fn mermaid(graph: &Graph) -> String {
    let mut out = String::from("flowchart TD\n");
    let mut edge_index = 0;
    let mut uncovered_edges = Vec::new();
    if let Some(start) = &graph.start {
        out.push_str(&format!("  {START}((\" \"))\n  {START} --> {}\n", mermaid_id(start)));
        edge_index += 1;
    }
    for node in &graph.nodes {
        out.push_str(&format!("  {}\n", mermaid_node(node)));
    }
    for edge in &graph.edges {
        out.push_str(&format!("  {}\n", mermaid_edge(edge)));
        if edge.uncovered {
            uncovered_edges.push(edge_index.to_string());
        }
        edge_index += 1;
    }
    out.push_str(&mermaid_classes(graph));
    if !uncovered_edges.is_empty() {
        let style = format!("stroke:{UNCOVERED_LINE},stroke-dasharray:5 5");
        out.push_str(&format!("  linkStyle {} {style}\n", uncovered_edges.join(",")));
    }
    out
}

fn mermaid_node(node: &Node) -> String {
    let label: Vec<String> = node.lines.iter().map(|l| mermaid_escape(l)).collect();
    let label = label.join("<br/>");
    let (open, close) = match node.shape {
        Shape::Rounded => ("(", ")"),
        Shape::Parallel => ("[[", "]]"),
        Shape::Diamond => ("{", "}"),
        Shape::Plain => ("[", "]"),
        Shape::End => ("(((", ")))"),
    };
    format!("{}{open}\"{label}\"{close}", mermaid_id(&node.id))
}

fn mermaid_edge(edge: &Edge) -> String {
    let (from, to) = (mermaid_id(&edge.from), mermaid_id(&edge.to));
    if edge.label.is_empty() {
        format!("{from} --> {to}")
    } else {
        format!("{from} -->|\"{}\"| {to}", mermaid_escape(&edge.label))
    }
}

/// The class definitions and assignments for the start marker and the highlighted states.
fn mermaid_classes(graph: &Graph) -> String {
    let mut out = String::new();
    if graph.start.is_some() {
        out.push_str(&format!("  classDef startnode fill:#000,stroke:#000\n  class {START} startnode\n"));
    }
    let heat = (0..HEAT.len()).map(|level| (format!("heat{level}"), Fill::Heat(level)));
    for (name, fill) in
        [("current".to_string(), Fill::Current), ("visited".to_string(), Fill::Visited)].into_iter().chain(heat)
    {
        let ids: Vec<String> = graph.nodes.iter().filter(|n| n.fill == fill).map(|n| mermaid_id(&n.id)).collect();
        let style = format!("fill:{}", fill_colour(fill).unwrap_or_default());
        out.push_str(&mermaid_class(&name, &style, &ids));
    }
    let uncovered: Vec<String> = graph.nodes.iter().filter(|n| n.uncovered).map(|n| mermaid_id(&n.id)).collect();
    let style = format!("stroke:{UNCOVERED_LINE},stroke-dasharray:5 5");
    out.push_str(&mermaid_class("uncovered", &style, &uncovered));
    out
}

fn mermaid_class(name: &str, style: &str, ids: &[String]) -> String {
    if ids.is_empty() {
        return String::new();
    }
    format!("  classDef {name} {style}\n  class {} {name}\n", ids.join(","))
}

fn mermaid_id(id: &str) -> String {
    let id = id.replace('-', "_");
    if MERMAID_KEYWORDS.contains(&id.as_str()) { format!("s_{id}") } else { id }
}

/// Mermaid's entity codes (`#quot;`, `#60;`) for the characters that would end the label or be
/// read as HTML or as the start of an entity code.
fn mermaid_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' => out.push_str("#quot;"),
            '#' => out.push_str("#35;"),
            '&' => out.push_str("#38;"),
            '<' => out.push_str("#60;"),
            '>' => out.push_str("#62;"),
            _ => out.push(c),
        }
    }
    out
}

// SVG

const FONT_SIZE: usize = 14;
const EDGE_FONT_SIZE: usize = 12;

fn svg(graph: &Graph) -> String {
    let mut visual = VisualGraph::new(Orientation::TopToBottom);
    let handles: HashMap<&str, _> = graph.nodes.iter().map(|n| (n.id.as_str(), visual.add_node(svg_node(n)))).collect();
    // The start marker is drawn even without a start state: layout-rs cannot lay out an empty graph.
    let start = visual.add_node(svg_start());
    if let Some(to) = graph.start.as_deref().and_then(|s| handles.get(s)) {
        visual.add_edge(svg_arrow("", false, false), start, *to);
    }
    for edge in &graph.edges {
        if let (Some(from), Some(to)) = (handles.get(edge.from.as_str()), handles.get(edge.to.as_str())) {
            visual.add_edge(svg_arrow(&edge.label, edge.uncovered, edge.taken), *from, *to);
        }
    }
    let mut canvas = Canvas::new();
    visual.do_it(false, false, false, &mut canvas);
    canvas.finish(&graph.title)
}

/// layout-rs has no diamond, so a choice is an ellipse and an end a double ellipse. layout-rs
/// escapes the text it draws itself, so labels are passed as they are.
fn svg_node(node: &Node) -> Element {
    let text = node.lines.join("\n");
    let shape = match node.shape {
        Shape::Diamond => ShapeKind::new_circle(&text),
        Shape::End => ShapeKind::new_double_circle(&text),
        Shape::Rounded | Shape::Parallel | Shape::Plain => ShapeKind::new_box(&text),
    };
    let fill = fill_colour(node.fill).map_or(Color::fast("white"), Color::fast);
    let line = if node.uncovered { Color::fast(UNCOVERED_LINE) } else { Color::fast("black") };
    let width = if node.shape == Shape::Parallel { 4 } else { 2 };
    let rounded = if node.shape == Shape::Rounded { 12 } else { 0 };
    let look = StyleAttr::new(line, width, Some(fill), rounded, FONT_SIZE);
    // The properties go on the `<g>` around the shape; a dash pattern there is inherited by it.
    let dash = if node.uncovered { " stroke-dasharray=\"6,4\"" } else { "" };
    let properties = format!("data-state=\"{}\"{dash}", xml_escape(&node.id));
    let size = svg_size(node.shape, &node.lines);
    Element::create_with_properties(shape, look, Orientation::TopToBottom, size, properties)
}

/// layout-rs sizes a box at a full font size per character, which makes labels of thirty
/// characters very wide; this estimate is closer to the average width of a serif font.
fn svg_size(shape: Shape, lines: &[String]) -> Point {
    let font = FONT_SIZE as f64;
    let longest = lines.iter().map(|l| l.chars().count()).max().unwrap_or(1) as f64;
    let width = longest * font * 0.62 + 24.0;
    let height = lines.len().max(1) as f64 * font * 1.2 + 20.0;
    match shape {
        // An ellipse holds the text's box when its axes are √2 times the box's sides.
        Shape::Diamond | Shape::End => Point::new(width * 1.42, height * 1.42),
        _ => Point::new(width, height),
    }
}

fn svg_start() -> Element {
    let look = StyleAttr::new(Color::fast("black"), 1, Some(Color::fast("black")), 0, FONT_SIZE);
    Element::create(ShapeKind::new_circle(""), look, Orientation::TopToBottom, Point::new(16.0, 16.0))
}

fn svg_arrow(label: &str, uncovered: bool, taken: bool) -> Arrow {
    let colour = match (uncovered, taken) {
        (true, _) => Color::fast(UNCOVERED_LINE),
        (false, true) => Color::fast(TAKEN_LINE),
        (false, false) => Color::fast("black"),
    };
    let style = if uncovered { LineStyleKind::Dashed } else { LineStyleKind::Normal };
    let look = StyleAttr::new(colour, if taken { 3 } else { 1 }, None, 0, EDGE_FONT_SIZE);
    Arrow::new(LineEndKind::None, LineEndKind::Arrow, style, label, &look, &None, &None)
}

/// Draws through layout-rs's SVG writer, working around two of its quirks: it sizes the picture
/// by a rough guess at the text (cutting off labels at the right and leaving space below), and an
/// edge label that it moves to another connector takes that connector's font size.
struct Canvas {
    svg: SVGWriter,
    min: Point,
    max: Point,
}

impl Canvas {
    fn new() -> Canvas {
        Canvas { svg: SVGWriter::new(), min: Point::new(f64::MAX, f64::MAX), max: Point::new(f64::MIN, f64::MIN) }
    }

    fn include(&mut self, p: Point) {
        self.min = Point::new(self.min.x.min(p.x), self.min.y.min(p.y));
        self.max = Point::new(self.max.x.max(p.x), self.max.y.max(p.y));
    }

    /// Includes the box reaching `half` from `centre` each way.
    fn include_around(&mut self, centre: Point, half: Point) {
        self.include(Point::new(centre.x - half.x, centre.y - half.y));
        self.include(Point::new(centre.x + half.x, centre.y + half.y));
    }

    /// The writer's document with its size replaced by the drawing's, and a `<title>` first, where
    /// viewers and screen readers look for it.
    fn finish(self, title: &str) -> String {
        const MARGIN: f64 = 10.0;
        let svg = self.svg.finalize();
        let Some(start) = svg.find("<svg") else { return svg };
        let Some(end) = svg[start..].find('>').map(|i| start + i + 1) else { return svg };
        let (x, y) = ((self.min.x.min(0.0) - MARGIN).floor(), (self.min.y.min(0.0) - MARGIN).floor());
        let (w, h) = ((self.max.x.max(0.0) + MARGIN - x).ceil(), (self.max.y.max(0.0) + MARGIN - y).ceil());
        let xmlns = "http://www.w3.org/2000/svg";
        let open = format!("<svg width=\"{w}\" height=\"{h}\" viewBox=\"{x} {y} {w} {h}\" xmlns=\"{xmlns}\">");
        format!("{}{open}\n<title>{}</title>{}", &svg[..start], xml_escape(title), &svg[end..])
    }
}

impl RenderBackend for Canvas {
    fn draw_rect(&mut self, xy: Point, size: Point, look: &StyleAttr, props: Option<String>, clip: Option<ClipHandle>) {
        self.include(xy);
        self.include(Point::new(xy.x + size.x, xy.y + size.y));
        self.svg.draw_rect(xy, size, look, props, clip);
    }

    fn draw_line(&mut self, start: Point, stop: Point, look: &StyleAttr, props: Option<String>) {
        self.include(start);
        self.include(stop);
        self.svg.draw_line(start, stop, look, props);
    }

    fn draw_circle(&mut self, xy: Point, size: Point, look: &StyleAttr, props: Option<String>) {
        self.include_around(xy, Point::new(size.x / 2.0, size.y / 2.0));
        self.svg.draw_circle(xy, size, look, props);
    }

    fn draw_text(&mut self, xy: Point, text: &str, look: &StyleAttr) {
        // Node labels are drawn at the node font size; any other text is an edge label.
        let mut look = look.clone();
        if look.font_size != FONT_SIZE {
            look.font_size = EDGE_FONT_SIZE;
        }
        let font = look.font_size as f64;
        let longest = text.lines().map(|l| l.chars().count()).max().unwrap_or(0) as f64;
        let lines = text.lines().count() as f64;
        self.include_around(xy, Point::new(longest * font * 0.3, (lines + 1.0) * font / 2.0));
        self.svg.draw_text(xy, text, &look);
    }

    fn draw_arrow(
        &mut self,
        path: &[(Point, Point)],
        dashed: bool,
        head: (bool, bool),
        look: &StyleAttr,
        props: Option<String>,
        text: &str,
    ) {
        for (a, b) in path {
            self.include(*a);
            self.include(*b);
        }
        self.svg.draw_arrow(path, dashed, head, look, props, text);
    }

    fn create_clip(&mut self, xy: Point, size: Point, rounded: usize) -> ClipHandle {
        self.svg.create_clip(xy, size, rounded)
    }
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostic::Report;

    const SOURCE: &str = r#"
name: Ärende & <test>
series: TST
start: granskning
data:
  kostnad: { type: money, label: Kostnad }
  forvaltning: { type: enum, label: Förvaltning, values_from: forvaltningar }
states:
  granskning:
    type: task
    label: Granskning hos IT-samordnaren
    assignee: { role: it-samordnare, scope: forvaltning }
    actions:
      godkann: { label: { sv: Godkänn, en: Approve }, to: remiss }
      avsla: { label: Avslå, to: avslagen }
      vanta: { label: Vänta, to: granskning }
  remiss:
    type: parallel
    label: Remiss till förvaltningarna
    join: 2 of 3
    on_approved: vag
    on_rejected: avslagen
    branches:
      sakerhet:
        label: Säkerhet & <arkiv>
        assignee: { role: sakerhetschef }
        actions:
          ja: { label: Tillstyrk, vote: yes }
          nej: { label: Avstyrk, vote: no }
      ekonomi:
        label: Ekonomi
        assignee: { role: controller }
        actions:
          ja: { label: Tillstyrk, vote: yes }
          nej: { label: Avstyrk, vote: no }
      juridik:
        label: Juridik
        assignee: { role: jurist }
        actions:
          ja: { label: Tillstyrk, vote: yes }
          nej: { label: Avstyrk, vote: no }
  vag:
    type: choice
    label: Över 50 000 kr?
    when:
      - if: kostnad > 50000 && forvaltning == "kommunledningsforvaltningen"
        goto: avslagen
    otherwise: godkand
  godkand: { type: end, label: Godkänd, outcome: approved }
  avslagen: { type: end, label: "Avslagen \"helt\"", outcome: rejected }
"#;

    const IDS: [&str; 5] = ["granskning", "remiss", "vag", "godkand", "avslagen"];

    fn definition() -> Definition {
        let mut report = Report::new("x.yaml");
        let node = crate::yaml::parse(SOURCE).expect("the test YAML parses");
        let def = crate::definition::parse::definition(&mut report, "test-flode", &node).expect("a definition");
        assert!(!report.has_errors(), "{:?}", report.items);
        def
    }

    fn draw(format: Format, highlight: &Highlight) -> String {
        render(&definition(), format, Lang::Sv, highlight)
    }

    /// Checks that every `&` starts an entity and that start and end tags pair up; enough to
    /// catch unescaped labels without an XML parser.
    fn assert_well_formed(xml: &str) {
        for (i, _) in xml.match_indices('&') {
            let rest = &xml[i..];
            let ok = ["&amp;", "&lt;", "&gt;", "&quot;", "&apos;"].iter().any(|e| rest.starts_with(e));
            assert!(ok, "a raw `&` at {i}: {}", &rest[..rest.len().min(20)]);
        }
        let mut open: Vec<String> = Vec::new();
        for tag in xml.split('<').skip(1).map(|t| &t[..t.find('>').expect("tag closed")]) {
            if tag.starts_with('?') || tag.starts_with('!') || tag.ends_with('/') {
                continue;
            }
            let name: String = tag.trim_start_matches('/').chars().take_while(|c| !c.is_whitespace()).collect();
            if tag.starts_with('/') {
                assert_eq!(open.pop().as_deref(), Some(name.as_str()), "closing tag out of order");
            } else {
                open.push(name);
            }
        }
        assert!(open.is_empty(), "unclosed: {open:?}");
    }

    #[test]
    fn format_names_parse() {
        assert_eq!(Format::parse("dot"), Some(Format::Dot));
        assert_eq!(Format::parse("mermaid"), Some(Format::Mermaid));
        assert_eq!(Format::parse("svg"), Some(Format::Svg));
        assert_eq!(Format::parse("png"), None);
    }

    #[test]
    fn dot_has_every_state_and_balanced_braces() {
        let dot = draw(Format::Dot, &Highlight::default());
        assert!(dot.starts_with("digraph \"test-flode\" {"), "{dot}");
        for id in IDS {
            assert!(dot.contains(&format!("\"{id}\" [")), "{id} missing in {dot}");
        }
        assert_eq!(dot.matches('{').count(), dot.matches('}').count());
        assert!(dot.contains("Avslagen \\\"helt\\\""), "{dot}");
        assert!(dot.contains("shape=diamond") && dot.contains("shape=doublecircle") && dot.contains("peripheries=2"));
        assert!(dot.contains("roll: it-samordnare (forvaltning)"));
        assert!(dot.contains("krav: 2 av 3"));
        assert!(dot.contains("\"START\" -> \"granskning\""));
    }

    #[test]
    fn long_guards_are_shortened() {
        let dot = draw(Format::Dot, &Highlight::default());
        let guard = dot.lines().find(|l| l.starts_with("  \"vag\" -> \"avslagen\"")).expect("the guard edge");
        assert!(guard.contains("label=\"kostnad > 50000 && forvaltnin…\""), "{guard}");
    }

    #[test]
    fn mermaid_uses_sanitized_ids_and_shapes() {
        let mermaid = draw(Format::Mermaid, &Highlight::default());
        assert!(mermaid.starts_with("flowchart TD\n"));
        assert!(mermaid.contains("remiss[[\"Remiss till förvaltningarna<br/>- Säkerhet #38; #60;arkiv#62;"));
        assert!(mermaid.contains("vag{\"Över 50 000 kr?\"}"));
        assert!(mermaid.contains("godkand(((\"Godkänd<br/>(bifallen)\")))"));
        assert!(mermaid.contains("Avslagen #quot;helt#quot;"));
        assert!(!mermaid.contains("classDef current"), "no highlight classes without a highlight");
        assert_eq!(mermaid_id("test-flode"), "test_flode");
        assert_eq!(mermaid_id("end"), "s_end");
    }

    #[test]
    fn svg_is_well_formed_and_has_every_label() {
        let svg = draw(Format::Svg, &Highlight::default());
        assert!(svg.contains("<svg"));
        assert!(svg.contains("<title>Ärende &amp; &lt;test&gt;</title>"), "{svg}");
        for label in [
            "Granskning hos IT-samordnaren",
            "Remiss till förvaltningarna",
            "- Säkerhet &amp; &lt;arkiv&gt;",
            "Över 50 000 kr?",
            "Godkänd",
            "Avslagen &quot;helt&quot;",
        ] {
            assert!(svg.contains(label), "{label} missing");
        }
        assert_well_formed(&svg);
    }

    #[test]
    fn highlight_marks_states_and_edges() {
        let highlight = Highlight {
            current: vec!["remiss".into()],
            visited: vec!["granskning".into()],
            uncovered_states: vec!["avslagen".into()],
            uncovered_edges: vec![("vag".into(), "otherwise".into())],
            ..Highlight::default()
        };
        let dot = draw(Format::Dot, &highlight);
        assert!(dot.contains(&format!("fillcolor=\"{CURRENT_FILL}\"")));
        assert!(dot.contains(&format!("fillcolor=\"{VISITED_FILL}\"")));
        let edge = dot.lines().find(|l| l.starts_with("  \"vag\" -> \"godkand\"")).expect("the edge");
        assert!(edge.contains("style=dashed"), "{edge}");
        let mermaid = draw(Format::Mermaid, &highlight);
        assert!(mermaid.contains("class remiss current") && mermaid.contains("class avslagen uncovered"));
        assert!(mermaid.contains("linkStyle 7 "), "{mermaid}");
        let svg = draw(Format::Svg, &highlight);
        assert!(svg.contains("data-state=\"avslagen\" stroke-dasharray"));
        assert_well_formed(&svg);
    }

    #[test]
    fn the_path_taken_notes_and_heat_are_drawn() {
        let highlight = Highlight {
            taken: vec![("granskning".into(), "remiss".into())],
            notes: [("granskning".to_string(), "3 d 4 tim".to_string())].into(),
            heat: [("granskning".to_string(), 1.0), ("remiss".to_string(), 0.0)].into(),
            ..Highlight::default()
        };
        let dot = draw(Format::Dot, &highlight);
        let edge = dot.lines().find(|l| l.starts_with("  \"granskning\" -> \"remiss\"")).expect("the edge");
        assert!(edge.contains(&format!("penwidth=3, color=\"{TAKEN_LINE}\"")), "{edge}");
        assert!(dot.contains("3 d 4 tim"), "the note is under the label");
        assert!(
            dot.contains(&format!("fillcolor=\"{}\"", HEAT[4])) && dot.contains(&format!("fillcolor=\"{}\"", HEAT[0]))
        );
        let mermaid = draw(Format::Mermaid, &highlight);
        assert!(mermaid.contains("class granskning heat4"), "{mermaid}");
        let svg = draw(Format::Svg, &highlight);
        assert!(svg.contains("3 d 4 tim"));
        assert_well_formed(&svg);
    }

    #[test]
    fn a_workflow_without_states_still_draws() {
        let node = crate::yaml::parse("name: Tom\nseries: TOM\nstart: saknas\ndata: {}\nstates: {}\n").expect("YAML");
        let def = crate::definition::parse::definition(&mut Report::new("x.yaml"), "tom", &node).expect("a definition");
        for format in [Format::Dot, Format::Mermaid, Format::Svg] {
            assert!(!render(&def, format, Lang::Sv, &Highlight::default()).is_empty());
        }
    }

    #[test]
    fn english_labels() {
        let dot = render(&definition(), Format::Dot, Lang::En, &Highlight::default());
        assert!(dot.contains("label=\"Approve\"") && dot.contains("label=\"otherwise\""), "{dot}");
        assert!(dot.contains("needs: 2 of 3") && dot.contains("(approved)") && dot.contains("role: it-samordnare"));
    }
}
