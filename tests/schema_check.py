#!/usr/bin/env python3
"""Checks src/workflow.schema.json against the workflows it must accept and the broken files it
must reject. Not part of `cargo test`; run by hand:

    pip install jsonschema pyyaml
    python3 tests/schema_check.py .            # the argument is the repository root

Prints one line per file (or README example): `ok`, `ok (rejected: …)` for a broken file the
schema rejects, or `FAIL: reason`. Exits 1 if a file that must be accepted is rejected, or a broken
file listed below is accepted.

YAML is read as YAML 1.2 (like `beslut` and VS Code's YAML extension): only `true`/`false` are
booleans, so `vote: yes` stays the text "yes"; dates stay text; duplicate keys are errors.
"""

import re
import sys
from collections import defaultdict
from pathlib import Path

try:
    import yaml
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import relevance
    from referencing import Registry, Resource
except ImportError as err:  # pragma: no cover
    sys.exit(f"{err}: run `pip install jsonschema pyyaml`")

SCHEMA_ID = "https://beslut.se/schema/workflow.json"

# Broken files (tests/check/broken/) that the schema must reject: the structural problems
# (unknown-key, missing-key, wrong-type, invalid-value, invalid-duration, wrong-state-kind), and
# the few others a schema can see.
MUST_REJECT = [
    "06-unknown-key-top-level.yaml",
    "07-unknown-key-state.yaml",
    "08-unknown-key-action.yaml",
    "09-unknown-key-field.yaml",
    "10-unknown-key-end-state.yaml",
    "11-missing-key-start.yaml",
    "12-missing-key-state-type.yaml",
    "13-missing-key-action-to.yaml",
    "14-missing-key-field-label.yaml",
    "15-wrong-type-required.yaml",
    "16-wrong-type-actions-list.yaml",
    "17-wrong-type-label-number.yaml",
    "18-wrong-type-min.yaml",
    "19-invalid-value-state-type.yaml",
    "20-invalid-value-field-type.yaml",
    "21-invalid-value-comment.yaml",
    "22-invalid-value-outcome.yaml",
    "23-invalid-value-join.yaml",
    "24-invalid-value-series.yaml",
    "25-invalid-value-id.yaml",
    "26-invalid-value-values-from.yaml",
    "27-invalid-duration-workdays.yaml",
    "28-invalid-duration-soon.yaml",
    "29-invalid-duration-escalation.yaml",
    "71-wrong-state-kind-join-on-task.yaml",
    "72-wrong-state-kind-vote-on-task-action.yaml",
    "73-wrong-state-kind-to-on-branch-action.yaml",
    "74-wrong-state-kind-otherwise-on-task.yaml",
    # not structural codes, but visible to a schema
    "64-choice-without-otherwise.yaml",  # `otherwise` is required
    "66-quorum-impossible-zero.yaml",  # `join: 0 of 2`: N must be 1 or more
    "75-enum-without-values.yaml",  # enum needs `values` or `values_from`
    "76-bad-default-number.yaml",  # default of a number field must be a number
    "78-bad-default-date.yaml",  # default of a date field must be a date (no month 13)
    # not even YAML for an editor (syntax errors, duplicate keys)
    "01-yaml-syntax-unclosed-quote.yaml",
    "02-yaml-syntax-bad-indentation.yaml",
    "03-yaml-syntax-unclosed-bracket.yaml",
    "04-duplicate-key-state.yaml",
    "05-duplicate-key-field.yaml",
]

# Broken files whose problem is about meaning (names that do not exist, expressions, the graph,
# quorums, templates …): structurally valid, so the schema must accept them. This guards against
# a schema that is stricter than the format.
MUST_ACCEPT_BROKEN = [
    "30-unknown-state-to.yaml",
    "31-unknown-state-goto.yaml",
    "32-unknown-state-otherwise.yaml",
    "33-unknown-state-on-approved.yaml",
    "34-unknown-state-next.yaml",
    "35-unknown-state-start.yaml",
    "36-unknown-state-withdraw-to.yaml",
    "37-unknown-state-on-timeout-goto.yaml",
    "38-unknown-role.yaml",
    "39-unknown-role-escalation.yaml",
    "40-unknown-person.yaml",
    "41-unknown-field-scope.yaml",
    "42-unknown-field-assignee-field.yaml",
    "43-unknown-field-ledger-key.yaml",
    "44-unknown-field-action-fields.yaml",
    "45-unknown-template.yaml",
    "46-unknown-ledger.yaml",
    "47-unknown-workflow.yaml",
    "48-unknown-action.yaml",
    "49-unknown-action-branch.yaml",
    "50-expr-syntax-shift.yaml",
    "51-expr-syntax-incomplete.yaml",
    "52-expr-syntax-unclosed-string.yaml",
    "53-expr-unknown-name-guard.yaml",
    "54-expr-unknown-name-emit.yaml",
    "55-expr-unknown-name-amount.yaml",
    "56-expr-type-text-vs-number.yaml",
    "57-expr-type-guard-not-boolean.yaml",
    "58-expr-type-enum-vs-number.yaml",
    "59-template-unknown-field.yaml",
    "60-template-unknown-field-title.yaml",
    "61-unreachable-state.yaml",
    "62-no-terminal-loop.yaml",
    "63-no-terminal-no-end.yaml",
    "65-quorum-impossible-too-many.yaml",
    "67-quorum-impossible-wrong-count.yaml",
    "68-duplicate-id.yaml",
    "69-withdraw-not-withdrawn.yaml",
    "70-withdraw-not-withdrawn-task.yaml",
    "77-bad-default-enum.yaml",
    "79-warning-task-without-timeout.yaml",
]

NOT_WORKFLOWS = {"directory.yaml", "portfolios.yaml"}


# --- YAML 1.2 (core schema) with PyYAML --------------------------------------------------------

class Yaml12Loader(yaml.SafeLoader):
    """SafeLoader with the YAML 1.2 core schema's scalars and duplicate keys as errors."""


Yaml12Loader.yaml_implicit_resolvers = {}
_RESOLVERS = [
    ("tag:yaml.org,2002:null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    ("tag:yaml.org,2002:bool", r"^(?:true|True|TRUE|false|False|FALSE)$", list("tTfF")),
    ("tag:yaml.org,2002:int", r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", list("-+0123456789")),
    (
        "tag:yaml.org,2002:float",
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        list("-+.0123456789"),
    ),
]
for _tag, _regex, _first in _RESOLVERS:
    Yaml12Loader.add_implicit_resolver(_tag, re.compile(_regex), _first)


def _int(loader, node):
    text = loader.construct_scalar(node)
    if text.startswith("0o"):
        return int(text[2:], 8)
    if text.startswith("0x"):
        return int(text[2:], 16)
    return int(text, 10)


def _float(loader, node):
    text = loader.construct_scalar(node).lower()
    if text.endswith(".inf"):
        return float("-inf") if text.startswith("-") else float("inf")
    if text == ".nan":
        return float("nan")
    return float(text)


def _bool(loader, node):
    return loader.construct_scalar(node).lower() == "true"


def _mapping(loader, node, deep=False):
    loader.flatten_mapping(node)
    out = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        # Keys are text, as in `beslut` (engine/src/yaml.rs): 2026 → "2026", true → "true".
        if isinstance(key, bool):
            key = "true" if key else "false"
        elif key is None:
            key = ""
        elif not isinstance(key, str):
            key = str(key)
        if key in out:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key `{key}`", key_node.start_mark
            )
        out[key] = loader.construct_object(value_node, deep=deep)
    return out


Yaml12Loader.add_constructor("tag:yaml.org,2002:int", _int)
Yaml12Loader.add_constructor("tag:yaml.org,2002:float", _float)
Yaml12Loader.add_constructor("tag:yaml.org,2002:bool", _bool)
Yaml12Loader.add_constructor("tag:yaml.org,2002:map", _mapping)


def load_yaml(text):
    return yaml.load(text, Loader=Yaml12Loader)


# --- validation --------------------------------------------------------------------------------

def explain(error):
    """The most telling reason: inside `oneOf`, follow the alternative whose `type` (the
    discriminator) matched, or the one that fits the value's kind best."""
    while error.context:
        groups = defaultdict(list)
        for sub in error.context:
            groups[sub.relative_schema_path[0]].append(sub)

        def fit(errors):
            discriminator_failed = any(e.validator == "const" and list(e.relative_path) == ["type"] for e in errors)
            wrong_kind = any(e.validator == "type" and not e.relative_path for e in errors)
            return (not discriminator_failed, not wrong_kind, -len(errors))

        if not any(fit(errors)[0] for errors in groups.values()):
            kinds = [e.validator_value for errors in groups.values() for e in errors
                     if e.validator == "const" and list(e.relative_path) == ["type"]]
            if kinds:
                where = "/".join(str(p) for p in error.absolute_path) + "/type"
                return f"{where}: {error.instance.get('type')!r} is not one of {kinds}"
        best = max(groups.values(), key=fit)
        error = max(best, key=relevance)
    where = "/".join(str(p) for p in error.absolute_path) or "(top)"
    # The schema's own bilingual messages (the ones editors show), where it has them.
    message = error.message
    custom = {s.get("errorMessage") for s in error.validator_value if isinstance(s, dict)} - {None} \
        if error.validator == "oneOf" else set()
    if error.schema is False:  # `properties: {key: false}` under `dependentSchemas`
        message = "not allowed together with the other keys here"
    elif error.validator == "pattern" and "patternErrorMessage" in error.schema:
        message = f"{error.instance!r}: {error.schema['patternErrorMessage']}"
    elif len(custom) == 1:
        message = custom.pop()
    elif error.validator in ("type", "const", "enum", "required") and "errorMessage" in error.schema:
        message = error.schema["errorMessage"]
        if error.validator != "required":
            message = f"{error.instance!r}: {message}"
    return f"{where}: {message}"


def problems(validator, instance):
    errors = sorted(validator.iter_errors(instance), key=lambda e: [str(p) for p in e.absolute_path])
    if not errors:
        return None
    reason = explain(errors[0])
    if len(errors) > 1:
        reason += f" (+{len(errors) - 1} more)"
    return reason


def readme_examples(readme):
    """The ```yaml blocks of the README, with the line where each starts."""
    blocks = []
    lines = readme.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        if lines[i].strip() == "```yaml":
            start = i + 2
            body = []
            i += 1
            while i < len(lines) and lines[i].strip() != "```":
                body.append(lines[i])
                i += 1
            blocks.append((start, "\n".join(body) + "\n"))
        i += 1
    return blocks


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: schema_check.py REPO_ROOT")
    root = Path(sys.argv[1]).resolve()
    import json

    schema = json.loads((root / "src" / "workflow.schema.json").read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    registry = Registry().with_resource(SCHEMA_ID, Resource.from_contents(schema))
    whole = Draft202012Validator(schema, registry=registry)

    def part(pointer):
        return Draft202012Validator({"$ref": f"{SCHEMA_ID}#{pointer}"}, registry=registry)

    state = part("/$defs/state")
    ledgers = part("/properties/ledgers")
    webhook = part("/properties/webhook")

    failed = 0
    accepted = 0
    rejected = 0

    def report(name, reason, must_pass):
        nonlocal failed, accepted, rejected
        if must_pass:
            if reason is None:
                accepted += 1
                print(f"{name}: ok")
            else:
                failed += 1
                print(f"{name}: FAIL: {reason}")
        else:
            if reason is None:
                failed += 1
                print(f"{name}: FAIL: the schema accepts this broken file")
            else:
                rejected += 1
                print(f"{name}: ok (rejected: {reason})")

    def check_file(path, must_pass):
        name = path.relative_to(root).as_posix()
        if not path.exists():
            report(name, "file not found", True)  # always a failure
            return
        try:
            data = load_yaml(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as err:
            report(name, f"YAML: {str(err).splitlines()[0]}", must_pass)
            return
        report(name, problems(whole, data), must_pass)

    # README examples
    readme = root / "workflows" / "README.md"
    for line, text in readme_examples(readme):
        name = f"workflows/README.md:{line}"
        try:
            data = load_yaml(text)
        except yaml.YAMLError as err:
            report(name, f"YAML: {str(err).splitlines()[0]}", True)
            continue
        if not isinstance(data, dict):
            report(name, "not a mapping", True)
        elif "states" in data and "start" in data:
            report(name, problems(whole, data), True)
        elif set(data) == {"ledgers"}:
            report(name, problems(ledgers, data["ledgers"]), True)
        elif set(data) == {"webhook"}:
            report(name, problems(webhook, data["webhook"]), True)
        elif set(data) & {"forvaltningar", "roles", "people", "portfolios"}:
            print(f"{name}: skipped (directory/portfolios, not a workflow)")
        else:  # a fragment of `states:`
            reasons = [f"{key}: {r}" for key, value in data.items() if (r := problems(state, value))]
            report(name + f" (states {', '.join(data)})", "; ".join(reasons) or None, True)

    # workflows and the valid example of the check corpus
    for path in sorted((root / "workflows").glob("*.yaml")):
        if path.name not in NOT_WORKFLOWS:
            check_file(path, True)
    check_file(root / "tests" / "check" / "valid" / "liten.yaml", True)

    # broken files
    broken = root / "tests" / "check" / "broken"
    for name in MUST_ACCEPT_BROKEN:
        check_file(broken / name, True)
    for name in MUST_REJECT:
        check_file(broken / name, False)

    print(f"\n{accepted} accepted, {rejected} broken files rejected, {failed} FAIL")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
