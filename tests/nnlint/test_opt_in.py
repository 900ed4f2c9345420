"""Opt-in rules run only when a select entry names them; the docs and --list-rules say so."""
from nnlint.cli import main
from nnlint.config import Config
from nnlint.docs import render_page
from nnlint.engine import selected_rules
from nnlint.rules import ALL_RULES, BY_CODE, DEFAULT_RULES

OPT_IN = [rule for rule in ALL_RULES if not rule.default]


def codes(**config):
    return {rule.code for rule in selected_rules(Config(**config))}


def test_the_default_selection_leaves_opt_in_rules_out():
    assert OPT_IN, "no opt-in rule to test"
    assert codes() == {rule.code for rule in DEFAULT_RULES}
    assert not codes() & {rule.code for rule in OPT_IN}


def test_a_code_or_a_longer_prefix_turns_an_opt_in_rule_on():
    rule = OPT_IN[0]
    assert rule.code in codes(select=["NN", rule.code])
    assert rule.code in codes(select=[rule.code[:3]])
    assert codes(select=[rule.code]) == {rule.code}
    assert rule.code not in codes(select=["NN", rule.code], ignore=[rule.code])


def test_opt_in_is_documented_on_the_page_and_in_list_rules(capsys):
    rule = OPT_IN[0]
    assert "*Opt-in*" in render_page(rule) and f"--select NN,{rule.code}" in render_page(rule)
    assert "*Opt-in*" not in render_page(BY_CODE["NN101"])
    assert main(["--list-rules"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert lines[rule.code].endswith("opt-in") and not lines["NN101"].endswith("opt-in")
