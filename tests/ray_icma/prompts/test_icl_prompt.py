"""Prompt strings exactly as ICMA builds them; targets; parsing; fitting to a token budget."""
import pytest

from ray_icma.prompts import TASKS, build_prompt, build_target, count_tokens, fit_prompt, parse_output

EXAMPLES_M2C = [("CCC", "The molecule is propane."), ("CCO", "The molecule is ethanol.")]
EXAMPLES_C2M = [("The molecule is propane.", "CCC"), ("The molecule is ethanol.", "CCO")]


def test_tasks():
    assert TASKS == ("mol2cap", "cap2mol")


def test_mol2cap_icl_prompt_exact():
    got = build_prompt("mol2cap", "CC(=O)O", EXAMPLES_M2C)
    assert got == (
        "Generate a caption for the molecule: CCC\nCaption: The molecule is propane.\n\n"
        "Generate a caption for the molecule: CCO\nCaption: The molecule is ethanol.\n\n"
        "Based on the above examples, analyse the similarities and differences between the examples "
        "and finally generate a caption for the molecule: CC(=O)O. \n"
    )
    assert build_target("mol2cap", " The molecule is acetic acid. ") == "Caption: The molecule is acetic acid."


def test_cap2mol_icl_prompt_exact():
    got = build_prompt("cap2mol", "The molecule is acetic acid.", EXAMPLES_C2M)
    assert got == (
        "Generate a molecule for the caption: The molecule is propane.\nMolecule: CCC\n\n"
        "Generate a molecule for the caption: The molecule is ethanol.\nMolecule: CCO\n\n"
        "Based on the above examples, analyse the similarities and differences between the examples "
        "and finally generate a molecule for the caption: The molecule is acetic acid.\n"
    )
    assert build_target("cap2mol", "CC(=O)O") == "Molecule: CC(=O)O"


def test_zero_shot_prompts_mirror_icma_zero_shot_dataset():
    assert build_prompt("mol2cap", "CCO") == "Generate a caption for the molecule: CCO\n"
    assert build_prompt("cap2mol", "The molecule is ethanol.") == "Generate a molecule that: The molecule is ethanol.\n"


def test_examples_keep_given_order():
    got = build_prompt("mol2cap", "C", list(reversed(EXAMPLES_M2C)))
    assert got.index("CCO") < got.index("CCC")


@pytest.mark.parametrize("bad", ["mol2text", ""])
def test_unknown_task_lists_choices(bad):
    with pytest.raises(ValueError, match="mol2cap, cap2mol"):
        build_prompt(bad, "C")


def test_bad_example_shape():
    with pytest.raises(ValueError, match="example 1"):
        build_prompt("mol2cap", "C", [("CC", "x"), ("CCC",)])


@pytest.mark.parametrize(
    ("task", "generated", "expected"),
    [
        ("mol2cap", " Caption: The molecule is ethanol.\n\nGenerate a caption for", "The molecule is ethanol."),
        ("mol2cap", "The molecule is ethanol. Generate a caption for the molecule: C", "The molecule is ethanol."),
        ("mol2cap", "caption: It is a diol.", "It is a diol."),
        ("cap2mol", "Molecule: CC(=O)O\n\nGenerate a molecule", "CC(=O)O"),
        ("cap2mol", "CC(=O)O is the answer", "CC(=O)O"),
        ("cap2mol", "   ", ""),
    ],
)
def test_parse_output(task, generated, expected):
    assert parse_output(task, generated) == expected


def test_parse_output_inverts_build_target():
    for task, answer in (("mol2cap", "The molecule is a steroid ester."), ("cap2mol", "C[C@H](N)C(=O)O")):
        assert parse_output(task, build_target(task, answer)) == answer


def test_fit_prompt_keeps_everything_when_it_fits(smollm2_tok):
    prompt, kept = fit_prompt(smollm2_tok, "mol2cap", "CCO", EXAMPLES_M2C, cutoff_len=1024, answer_reserve=256)
    assert kept == 2
    assert prompt == build_prompt("mol2cap", "CCO", EXAMPLES_M2C)


def test_fit_prompt_drops_farthest_examples_first(smollm2_tok):
    long_far = ("C" * 10, "The molecule is " + "very " * 300 + "far.")
    near = ("CCC", "The molecule is near.")
    full = build_prompt("mol2cap", "CCO", [long_far, near])
    cutoff = count_tokens(smollm2_tok, full) + 50 - 100  # too small for both, big for the near one
    prompt, kept = fit_prompt(smollm2_tok, "mol2cap", "CCO", [long_far, near], cutoff_len=cutoff, answer_reserve=50)
    assert kept == 1
    assert prompt == build_prompt("mol2cap", "CCO", [near])
    assert count_tokens(smollm2_tok, prompt) <= cutoff - 50


def test_fit_prompt_truncates_query_middle_and_reserves_answer(smollm2_tok):
    query = "The molecule is HEAD " + "filler " * 2000 + "TAIL."
    prompt, kept = fit_prompt(smollm2_tok, "cap2mol", query, EXAMPLES_C2M, cutoff_len=512, answer_reserve=200)
    assert kept == 0
    assert count_tokens(smollm2_tok, prompt) <= 312
    assert prompt.startswith("Generate a molecule that: The molecule is HEAD")
    assert prompt.endswith("TAIL.\n") and " ... " in prompt
    # Close to the budget, not needlessly short.
    assert count_tokens(smollm2_tok, prompt) >= 300


def test_fit_prompt_rejects_impossible_budget(smollm2_tok):
    with pytest.raises(ValueError, match="raise cutoff_len or lower answer_reserve"):
        fit_prompt(smollm2_tok, "mol2cap", "CCO", [], cutoff_len=260, answer_reserve=256)
