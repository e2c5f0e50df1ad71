//! `beslut graph` draws every seed workflow as SVG that parses as XML and names every state.

use crate::{beslut, root, yaml_files};

#[test]
fn seed_workflows_render_to_svg_naming_every_state() {
    let mut drawn = 0;
    for file in yaml_files(&root().join("workflows")) {
        let name = file.file_name().unwrap().to_str().unwrap().to_string();
        if name == "directory.yaml" || name == "portfolios.yaml" {
            continue;
        }
        let relative = format!("workflows/{name}");
        let output = beslut(&["graph", &relative, "--format", "svg"]);
        assert!(output.status.success(), "{relative}: {}", String::from_utf8_lossy(&output.stderr));
        let svg = String::from_utf8(output.stdout).unwrap();
        let document = roxmltree::Document::parse(&svg).unwrap_or_else(|e| panic!("{relative}: not XML: {e}"));
        let text: String = document.descendants().filter_map(|n| n.text()).collect::<Vec<_>>().join("\n");
        for label in state_labels(&file) {
            assert!(text.contains(&label), "{relative}: the SVG does not name the state «{label}»");
        }
        drawn += 1;
    }
    assert!(drawn >= 3, "expected the three seed workflows, drew {drawn}");
}

/// The Swedish label of every state, read with a generic YAML reader so the test does not
/// trust the code under test to parse the file.
fn state_labels(file: &std::path::Path) -> Vec<String> {
    let source = std::fs::read_to_string(file).unwrap();
    let value: serde_json::Value = serde_saphyr::from_str(&source).unwrap();
    let states = value["states"].as_object().expect("a states mapping");
    states
        .values()
        .map(|state| match &state["label"] {
            serde_json::Value::String(s) => s.clone(),
            other => other["sv"].as_str().expect("label or label.sv").to_string(),
        })
        .collect()
}
