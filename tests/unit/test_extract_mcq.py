"""MCQ letter extraction: real model outputs (MMLU-Pro, several models and prompt styles) → the committed letter."""

from __future__ import annotations

import pytest

from llmrouter_collect.extract.mcq import extract_choice, gold_letter

TEN = [f"option {i}" for i in range(10)]  # A–J
FOUR = ["Savers", "Creditors", "Borrowers", "Retirees"]  # A–D
TAX = ["$218.40", "$220.00", "$234.00", "$210.00", "$225.60", "$200.00", "$246.40", "$232.20", "$198.00", "$204.00"]

# (response text, choices, expected letter, expected rule); None letter = no answer.
CASES = [
    # --- the official format and its variants
    (" We refer to Wikipedia articles on taxation for help. The tax rate is $2.80 per $100. Multiply the tax rate "
     "by the number of $100s in the assessed value. $2.80 x 78 = $218.40. The answer is (A).\n\n", TAX, "A",
     "answer_is"),
    ("Plugging these values into the formula, we get Property Tax = $7,800 x $2.80/100 = $218.40. However, since "
     "the options do not include a decimal, the closest option is $218.40 rounded to the nearest whole number, "
     "which is $218. Therefore, the answer is (A).\n\n", TAX, "A", "answer_is"),
    ("Let's think step by step. ... the answer is C", TEN, "C", "answer_is"),
    ("The answer is **(J)**", TEN, "J", "answer_is"),
    ("Answer: C", TEN, "C", "answer_is"),
    ("**Answer:** (H)", TEN, "H", "answer_is"),
    ("**Final Answer:** The final answer is **(E)**.", TEN, "E", "answer_is"),
    ("After checking each option, the correct option is G.", TEN, "G", "answer_is"),
    ("Thus the correct answer is: **B**", TEN, "B", "answer_is"),
    ("Therefore, the molecular formula of the compound is B2H6, or answer (F).\n\n", TEN, "F", "answer_is"),
    ("so the final answer is $\\boxed{D}$", TEN, "D", "boxed"),
    ("We conclude \\boxed{I}.", TEN, "I", "boxed"),
    ("Over time, shrubs and trees can grow in the soil created by the mosses. The correct sequence is (C).\n\n",
     TEN, "C", "correct_is"),
    ("Comparing the options, (D) is correct because the premium shrinks the yield.", TEN, "D", "is_correct"),
    ("So I'd go with C.", FOUR, "C", "choose"),
    ("Weighing both effects, I choose (D).", FOUR, "D", "choose"),
    ("Inflation redistributes wealth. C is the correct answer.", FOUR, "C", "is_correct"),
    ("Final answer: (b)", FOUR, "B", "answer_is"),
    ("Hence, (C).", FOUR, "C", "last_line"),
    # --- the last committed answer wins over letters met while reasoning
    ("Option A is too small and option B ignores the fee. Initially I thought the answer is (B), but rechecking "
     "the arithmetic, the answer is (E).", TEN, "E", "answer_is"),
    ("(A) is wrong since savers lose. (C) borrowers gain.\nThe answer is (C).", FOUR, "C", "answer_is"),
    ("The answer is (C). Note that (A) is correct only if rates fall.", FOUR, "C", "answer_is"),
    # --- answers given by the last line alone
    ("The police officer did not have a warrant to search the house, and the teenager did not have the authority "
     "to consent. The motion to suppress should be granted. (G)", TEN, "G", "last_line"),
    ("The term that describes the differences in timing of physical changes that are found in children "
     "belonging to different cohorts is (A).\n\n", TEN, "A", "last_line"),
    ("Reasoning about inflation...\n\n(B) Creditors", FOUR, "B", "option_line"),
    ("Reasoning about inflation...\n\nC. Borrowers", FOUR, "C", "option_line"),
    ("Reasoning...\n\n**C**", FOUR, "C", "bold"),
    ("Reasoning...\n\n**(B) Creditors**", FOUR, "B", "bold"),
    # --- option text restated instead of a letter
    ("The property tax is $7,800 / 100 x $2.80. The answer is $218.40.", TAX, "A", "option_text"),
    ("The group that benefits is borrowers. The answer is Borrowers.", FOUR, "C", "option_text"),
    ("Thus the answer is Mr. Fields should sell the property now for $120,000.",
     ["Mr. Fields should keep the property.", "Mr. Fields should sell the property now for $120,000."], "B",
     "option_text"),
    ("The fine is the penalty. The answer is A $500 fine.", ["Probation", "A $500 fine", "Jail"], "B", "option_text"),
    ("The answer is A because savers lose.", FOUR, "A", "answer_is"),
    ("Paris has been the capital since 987.\n\nAnswer: Paris", ["Paris", "Berlin", "Rome"], "A", "option_text"),
    ("**Answer:** Borrowers", FOUR, "C", "option_text"),
    # --- HTML entities in the text
    ("Because A &amp; B both fail, the answer is (D).", TEN, "D", "answer_is"),
    # --- a run of answers to other questions after the reasoned answer: the reasoned answer counts
    (" Hierarchical structures are not known for their quick response to change. The answer is (C).\n\n"
     "Answer: The answer is (C).\n\nAnswer: The answer is (G).\n\nAnswer: The answer is (F).\n\n"
     "Answer: The answer is (H).\n\n- answer: The answer is (G).\n\n\nExplanation: In contrast to boycotts, "
     "buycotts aim to reward favourable behaviour by companies.", TEN, "C", "answer_is"),
    # --- one answer per few-shot question: the last line answers the last (our) question
    ("The answer is (B)\nThe answer is (I)\nThe answer is (C)\nThe answer is (I)\nThe answer is (A)\n"
     "The answer is (E)\n", TEN, "E", "answer_is"),
    # --- an invented follow-up question is cut off
    ("The answer is (B).\n\nQuestion: Which of the following is a prime number?\nOptions: ...\nAnswer: Let's think "
     "step by step. The answer is (D).", TEN, "B", "answer_is"),
    ("The answer is (A).\nQ: What is 2+2?\nA: The answer is (C).", TEN, "A", "answer_is"),
    # --- continuations after the committed answer: the answer to this question is the one committed first
    ("The firm's cost of equity follows from CAPM: 4% + 1.2 x 6% = 11.2%. The answer is (G).\n\nNow, let's "
     "combine all the answers: The answer is (B).", TEN, "G", "answer_is"),
    ("Thus the tension is 49 N. The answer is (G).\n\nFinal Answer: The answer is (B), (D), (F).", TEN, "G",
     "answer_is"),
    ("A diode conducts in one direction only. The answer is (G).\n\nThe options that are correct answers:\n"
     "A. option 0\nD. option 3\nG. option 6", TEN, "G", "answer_is"),
    ("Since the reaction is exothermic, raising the temperature shifts it left. The answer is (C).\n\n"
     "Here is a summary of the answers:\nThe answer is (A)\nThe answer is (J)", TEN, "C", "answer_is"),
    ("Therefore, the argument commits the fallacy of weak analogy. The answer is (B).\n\n\nAnswer: The answer is "
     "(J).\n", TEN, "B", "answer_is"),
    ("The answer is (G).\n\nThe correct answers:\nA. option 0\nD. option 3", TEN, "G", "answer_is"),
    # --- a tentative answer is not a continuation: the last committed answer still wins
    ("My first guess: the answer is (B). Let me check all the options in turn.\nA. option 0\nB. option 1\n"
     "Rechecking the units, the answer is (E).", TEN, "E", "answer_is"),
    ("At first the answer is (B). But checking each of the answers again, the answer is (E).", TEN, "E",
     "answer_is"),
    # --- other committed phrasings
    ("The book value is $23,000 / 500 = $46 per share. None matches exactly; the closest option is B, $45 per "
     "share.", TEN, "B", "answer_is"),
    ("The speed is v = d / t = 90 m / 20 s = 4.5 m/s, which is option (J).", TEN, "J", "which_is"),
    ("Sulfurous acid is a weak diprotic acid, so its first dissociation dominates.\n\n"
     "G. [H2SO3] > [HSO3-] = [H3O+] > [SO3^2-] > [OH-]\n\nThis is because the second dissociation constant is "
     "far smaller than the first, so very little sulfite forms.",
     ["[H2SO3] > [OH-]", "b", "c", "d", "e", "f", "[H2SO3] > [HSO3-] = [H3O+] > [SO3^2-] > [OH-]", "h"], "G",
     "option_line"),
    # --- a structured answer field is read first
    ('```json\n{"reasoning": "Savers lose when inflation is unexpected, so the answer is (A) at first sight, but '
     'borrowers repay in cheaper money.", "answer": "C"}\n```', FOUR, "C", "json_answer"),
    ('{"reasoning": "The integral evaluates to 2/3.", "answer": "B (with correction)"}', TEN, "B", "json_answer"),
    ('{"reasoning": "...", "answer": "(B) Creditors"}', FOUR, "B", "json_answer"),
    ('{"reasoning": "...", "answer": "Borrowers"}', FOUR, "C", "json_answer"),
    ('{"reasoning": "...", "answer": "The answer is (D)."}', FOUR, "D", "json_answer"),
    ('Let me think.\n\n{"answer": "d"}', FOUR, "D", "json_answer"),
    ('{\\"reasoning\\": \\"the answer is (A)\\", \\"answer\\": \\"B\\"}', FOUR, "B", "json_answer"),
    ("{'reasoning': 'Savers lose, so not (A).', 'answer': 'C'}", FOUR, "C", "json_answer"),
    ('```json\n{"reasoning": "...", "answer": "D) Retirees"}\n```', FOUR, "D", "json_answer"),
    # a letter alone is the letter, even when an option's text is a letter (MMLU-Pro test 10551)
    ('{"reasoning": "-3 is the third element from the end. The answer is (A).", "answer": "A"}',
     ["Chemistry", "B", "C", "A"], "A", "json_answer"),
]

NOT_ANSWERS = [
    # several different answers at once
    ("The presence of red flags heightens an auditor's concern about fraudulent financial reporting. "
     "The answer is (D) and (I).\n\n", TEN, "several_answers"),
    ("The answer is (A), (D), and (I).", TEN, "several_answers"),
    ("Therefore, the correct answer is: G, H, I (Neutron activation analysis, X-ray fluorescence, Mass "
     "spectrometry).\n\n", TEN, "several_answers"),
    ("However, it is not known for quick response to change, high flexibility, or easy to manage. "
     "The answer is (C) or (F).\n\n", TEN, "several_answers"),
    ("Reasoning...\n\n**A** or **D**", FOUR, "several_answers"),
    ("The answer is (F) and (I).", TEN, "several_answers"),
    ('{"reasoning": "Both hold.", "answer": "B, D"}', FOUR, "several_answers"),
    ('{"reasoning": "Both hold.", "answer": "B and D"}', FOUR, "several_answers"),
    # an answer field that names no option is no answer, even when its reasoning does
    ('{"reasoning": "the answer is (C)", "answer": "E"}', FOUR, None),
    # a letter outside the choices
    ("Therefore, none of the given options will cause a fall in potential GDP. The answer is (I) None of the "
     "above.\n\n", ["a", "b", "c", "d", "e", "f", "g", "h"], None),
    ("The answer is (E).", FOUR, None),
    # stray capitals and words, refusals, truncation
    ("I cannot definitively answer which color is *not* available.  Therefore, I cannot provide a confident "
     "answer.\n", TEN, None),
    ("Vitamin D and calcium help. Type A personalities are prone to stress. X-rays are used in imaging.", TEN,
     None),
    ("The number of molecules is 9.15 × 10^5 moles × 6.022 × 10^23 molecules/mole = 5.5 × 10^29 molecules. "
     "The answer is (", TEN, None),
    ("The answer is not listed among the options.\n\n", TEN, None),
    ("He was Batman's butler. The answer is (not listed).\n\n", TEN, None),
    ("The patient has a history of smoking. The patient has a history of smoking. The patient has a history of",
     TEN, None),
    ("The answer is I think (B)", TEN, "answer_is"),  # the pronoun "I" is no answer; (B) is
    ("The answer is not (C).", TEN, None),
    ("Option C is incorrect because the rate is annual.", TEN, None),
    ("I choose A random option to start with and test it.", TEN, None),
    ("Options A, B and (C).", TEN, None),
    ("", TEN, None),
]


@pytest.mark.parametrize(("text", "choices", "letter", "rule"), CASES)
def test_committed_letter_is_found(text: str, choices: list[str], letter: str, rule: str) -> None:
    found = extract_choice(text, choices)
    assert found is not None
    assert (found.letter, found.rule) == (letter, rule)


@pytest.mark.parametrize(("text", "choices", "rule"), NOT_ANSWERS)
def test_no_guessing(text: str, choices: list[str], rule: str | None) -> None:
    found = extract_choice(text, choices)
    if rule == "answer_is":  # the pronoun case: the real answer after it is taken
        assert found is not None and found.letter == "B"
    elif rule is None:
        assert found is None
    else:
        assert found is not None and found.letter is None and found.rule == rule


def test_letters_beyond_j() -> None:
    choices = [f"option {i}" for i in range(14)]
    found = extract_choice("Of the fourteen options the answer is (M).", choices)
    assert found is not None and found.letter == "M"
    assert extract_choice("The answer is (N).", choices[:13]) is None


def test_very_long_repetition_is_bounded() -> None:
    text = "The rate of translation is determined by the number of ribosomes. " * 5000 + "The answer is (B)."
    found = extract_choice(text, TEN)
    assert found is not None and found.letter == "B"


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        ({"choice_index_correct": 0, "choices": TAX, "answer_correct": "$218.40"}, "A"),
        ({"choice_index_correct": 9, "choices": TEN, "answer_correct": "option 9"}, "J"),
        ({"choice_index_correct": None, "choices": TAX, "answer_correct": "$234.00"}, "C"),  # option text
        ({"choice_index_correct": None, "choices": FOUR, "answer_correct": "B"}, "B"),  # a letter (old files)
        ({"choice_index_correct": None, "choices": FOUR, "answer_correct": "Nobody"}, None),
    ],
)
def test_gold_letter(record: dict[str, object], expected: str | None) -> None:
    assert gold_letter(record) == expected
