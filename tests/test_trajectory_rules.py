"""The Motion Brush editor's Kling rules live once, in kling_api.rules.motion: GET /kling/trajectory_rules
answers them (checked against the real host), and the page (web/*.js) writes none of them down."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from kling_api.rules.fields import MAX_DYNAMIC_MASKS, TRAJECTORY_POINTS_5S
from kling_api.rules.motion import (
    PATH_COLOURS,
    POINT_RULE,
    dynamic_mask_input,
    trajectory_rules,
)

REPO = Path(__file__).resolve().parents[1]
WEB = sorted((REPO / "web").glob("*.js"))
EDITOR = REPO / "web" / "kling_trajectory.js"
#: Named visual constants of the editor that may hold a number that is also a Kling number (a dot's radius).
VISUAL_CONSTANTS = {"HIT_RADIUS", "START_DOT_RADIUS", "DOT_RADIUS", "EDITOR_HEIGHT", "RULES_RETRY_MS"}


def expected_rules() -> dict:
    lo, hi = TRAJECTORY_POINTS_5S
    return {"paths": [{"input": f"dynamic_mask_{i + 1}", "colour": c.hex, "colour_name": c.name}
                      for i, c in enumerate(PATH_COLOURS)],
            "points": {"min": lo, "max": hi},
            "point_rule": POINT_RULE}


def test_the_rules_are_the_python_rules():
    rules = trajectory_rules()
    assert rules == expected_rules()
    assert json.loads(json.dumps(rules)) == rules  # what the route sends is exactly this
    assert len(rules["paths"]) == MAX_DYNAMIC_MASKS == len(PATH_COLOURS)
    assert [p["input"] for p in rules["paths"]] == [dynamic_mask_input(i) for i in range(MAX_DYNAMIC_MASKS)]
    assert (rules["points"]["min"], rules["points"]["max"]) == TRAJECTORY_POINTS_5S
    hexes = [c.hex.lower() for c in PATH_COLOURS]
    assert all(re.fullmatch(r"#[0-9a-f]{6}", h) for h in hexes) and len(set(hexes)) == len(hexes)
    assert len({c.name for c in PATH_COLOURS}) == len(PATH_COLOURS)


def _code_only(text: str) -> str:
    """JavaScript without its comments and string literals (template literals keep their ``${...}`` code)."""
    out: list[str] = []
    i, n = 0, len(text)
    braces: list[int] = []  # for each open ``${``: the brace depth it opened at
    depth = 0
    while i < n:
        ch, nxt = text[i], text[i + 1:i + 2]
        if ch == "/" and nxt == "/":
            i = text.find("\n", i)
            i = n if i < 0 else i
        elif ch == "/" and nxt == "*":
            end = text.find("*/", i + 2)
            i = n if end < 0 else end + 2
        elif ch in "'\"":
            i += 1
            while i < n and text[i] != ch:
                i += 2 if text[i] == "\\" else 1
            i += 1
            out.append(" '' ")
        elif ch == "`" or (ch == "}" and braces and braces[-1] == depth):
            if ch == "}":
                braces.pop()
            i += 1
            while i < n and text[i] != "`" and not (text[i] == "$" and text[i + 1:i + 2] == "{"):
                i += 2 if text[i] == "\\" else 1
            if i < n and text[i] == "$":
                braces.append(depth)
                i += 2
            else:
                i += 1
            out.append(" '' ")
        else:
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
            out.append(ch)
            i += 1
    return "".join(out)


def test_code_only_strips_comments_and_strings():
    js = "const a = 6; // 77\nconst s = `x ${b + 77} 6` + \"6\" + '77'; /* 6 */ f({k: 1});"
    code = _code_only(js)
    assert re.findall(r"\d+", code) == ["6", "77", "1"], code


def test_the_page_writes_no_kling_trajectory_number_nor_colour():
    """No point limit (77), no colour of the paths, no path count in web/*.js: they come from the route."""
    lo, hi = TRAJECTORY_POINTS_5S
    assert WEB and EDITOR in WEB
    for path in WEB:
        text = path.read_text(encoding="utf-8")
        assert not re.search(rf"\b{hi}\b", text), f"{path.name} writes the point limit {hi}"
        assert not re.search(rf"\b{lo}\s*-\s*{hi}\b", text), f"{path.name} writes the point rule"
        for colour in PATH_COLOURS:
            assert colour.hex.lower() not in text.lower(), f"{path.name} writes the colour {colour.hex}"
            assert not re.search(rf"[\"'`]{colour.name}[\"'`]", text), f"{path.name} lists the colour {colour.name}"
        count = rf"(?:{MAX_DYNAMIC_MASKS}|six)"
        assert not re.search(rf"\b{count}\s+(?:paths|masks|dynamic)", text, re.IGNORECASE), f"{path.name}: '{MAX_DYNAMIC_MASKS} paths'"
        assert not re.search(rf"dynamic_mask_{MAX_DYNAMIC_MASKS}\b", text), f"{path.name} names the last mask"
    # the editor's code: neither the path count nor the point limit as a number, but in a named visual constant
    code = _code_only(EDITOR.read_text(encoding="utf-8"))
    declared = re.compile(r"\bconst\s+([A-Z_][A-Z0-9_]*)\s*=\s*[\d.]+\s*;")
    for name in declared.findall(code):
        assert name in VISUAL_CONSTANTS or not re.search(r"PATH|MASK|POINT|COLOU?R", name), \
            f"{EDITOR.name} declares the constant {name}: a Kling rule? (it comes from /kling/trajectory_rules)"
    code = declared.sub(lambda m: "" if m.group(1) in VISUAL_CONSTANTS else m.group(0), code)
    for number in {MAX_DYNAMIC_MASKS, hi}:
        hits = [m.start() for m in re.finditer(rf"(?<![\w.]){number}(?![\w.])", code)]
        assert not hits, f"{EDITOR.name} uses the Kling number {number}: {[code[h - 40:h + 20] for h in hits]}"
    assert "/kling/trajectory_rules" in EDITOR.read_text(encoding="utf-8")


@pytest.mark.host
def test_the_route_answers_the_python_rules(comfy_host):
    assert comfy_host.get_json("/kling/trajectory_rules") == trajectory_rules() == expected_rules()
