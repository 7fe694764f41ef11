"""Math answers: final-answer extraction from real solution formats, and equivalence with the reference."""

from __future__ import annotations

import pytest

from llmrouter_collect.extract.math import (
    MAX_ANSWER_CHARS,
    answers_equal,
    extract_math_answer,
    normalize,
    quick_equal,
)

# (response text, expected answer, expected rule)
EXTRACTION = [
    # \boxed{} with nested braces; the last box wins
    ("Thus the area is \\(\\boxed{\\frac{3 + \\sqrt{21}}{2}}\\).", "\\frac{3 + \\sqrt{21}}{2}", "boxed"),
    ("First \\boxed{4} was a guess. Rechecking, the answer is \\boxed{5}.", "5", "boxed"),
    ("The final answer is $\\boxed{\\dfrac{1}{2}}$. I hope it is correct.", "\\dfrac{1}{2}", "boxed"),
    ("So the matrix is \\boxed{\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}}",
     "\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}", "boxed"),
    ("Hence \\fbox{42}.", "42", "boxed"),
    ("Hence \\boxed 7.", "7", "boxed"),
    # several boxes closing one sentence are one answer (a list)
    ("The integers that satisfy the inequality are $\\boxed{2}$ and $\\boxed{3}$.", "2, 3", "boxed"),
    ("Thus, the two sequences are: \\[ \\boxed{10, 11, 12, 13, 14} \\quad \\text{and} \\quad \\boxed{-2, -1, 0, "
     "1, 2} \\]", "10, 11, 12, 13, 14, -2, -1, 0, 1, 2", "boxed"),
    ("So the answer is \\boxed{4}.\n\n\\boxed{4}", "4", "boxed"),
    # Minerva / WizardMath / GSM8K / PRM800K formats
    ("Continuing this way, we see that there are exactly 11 possible values of $x$.\n\nFinal Answer: The final "
     "answer is 11. I hope it is correct.", "11", "final_answer_is"),
    ("Therefore, Annika has $15 left. The final answer is: $\\frac{3}{4}$", "\\frac{3}{4}", "final_answer_is"),
    ("**Final Answer:** 42", "42", "final_answer_is"),
    ("Before giving the final answer, let us check 12 cases. So there are 7 ways.", "7", "last_sentence"),
    ("Natalia sold 48/2 = <<48/2=24>>24 clips in May.\nNatalia sold 48+24 = <<48+24=72>>72 clips.\n#### 72", "72",
     "hashes"),
    ("Lastly, she jumped ahead 1 spot to finish the race, which would put her in 7 - 1 = 6th place.\n#### 6th place",
     "6", "hashes"),
    ("I have solved the problem.\n# Answer\n\nHillary has 7 nickels.", "7", "answer_line"),
    ("4 + 7 = 11.\n# Answer\n\n\\frac{7}{2}", "\\frac{7}{2}", "answer_line"),
    ("The integers are $\\boxed{2}$ and $\\boxed{3}$.\n\nThe answer is: 2.\n\n", "2", "answer_is"),
    ("Step 3: add them.\nThe answer is: 0.\\overline{35625}.", "0.\\overline{35625}", "answer_is"),
    ("**Answer:** 1,450,000", "1,450,000", "answer_is"),
    ('{"reasoning": "2+2", "answer": "4"}', "4", "json_answer"),
    ('{"answer": 12.5}', "12.5", "json_answer"),
    # a structured answer field is the commitment, whatever prose says around it or inside it
    ('So, the answer is:\n```json\n{"reasoning": "There are 14 choose 5 ways.", "answer": "2002"}\n```', "2002",
     "json_answer"),
    ('{"reasoning": "Subtract the bad cases: the answer is C(14,5) - C(8,5) = 1946. Then remove 6 more.", '
     '"answer": "1940"}', "1940", "json_answer"),
    ('Let me compute: 3 + 6 = 9.\nAnswer: "answer": "9"', "9", "json_answer"),
    # LaTeX in a JSON string, with single backslashes (invalid JSON, and `\f` would be a form feed) or escaped
    ('{"reasoning": "Halve it.", "answer": "\\frac{1}{2}"}', "\\frac{1}{2}", "json_answer"),
    ('{"reasoning": "Halve it.", "answer": "\\\\frac{1}{2}"}', "\\frac{1}{2}", "json_answer"),
    ('{"reasoning": "...", "answer": "\\boxed{x \\neq 2}"}', "x \\neq 2", "json_answer"),
    # an answer field written as a sentence: the number it states
    ('{"reasoning": "5 bags at $60 each.", "answer": "The chef spent $300 on onions."}', "$300", "json_answer"),
    ('{"reasoning": "...", "answer": "John pays $31,800 per year for driving."}', "$31,800", "json_answer"),
    ('{"reasoning": "...", "answer": "1,360 - 142 = 1,218"}', "1,218", "json_answer"),
    ('{"reasoning": "He leaves at 1:40 and walks 30 minutes.", "answer": "2:10 pm"}', "2:10 pm", "json_answer"),
    ("\\begin{align*} x &amp;= 2 \\end{align*} so $x \\boxed{&lt; 3}$", "< 3", "boxed"),
    ("So she spends \\(\\$36\\).\n\nAnswer: $\\$36$", "\\$36", "answer_is"),
    # plain prose: the closing sentence, never a number from the middle
    ("Gene has been vacationing for 34 - 23 = 11 years.\n\nSince he goes on four vacations each year, he has 4 "
     "vacations/year * 11 years = 44 vacations.\n\nTherefore, he has 44 souvenir t-shirts, which means he has 44 "
     "quilt blocks in total.", "44", "last_sentence"),
    ("To find the number of ducks, we divide both sides by 50:\n\nnumber of ducks = 300 / 50 = 6\n\nSo, there are "
     "6 ducks in Jamal's photograph of the ducks at the zoo.", "6", "last_sentence"),
    ("Therefore, John can harvest 10000 * 4 = <<10000*4=40000>>40000 pineapples within a year.", "40000",
     "last_sentence"),
    ("After giving money to his daughter and wife, Zaid will have $1250 - $900 = $350 left.", "$350",
     "last_sentence"),
    ("Therefore, the probability that Aditya and Ayesha choose the same set of four letters is "
     "\\(\\frac{1}{6084}\\).", "\\frac{1}{6084}", "last_sentence"),
    ("The solution to the system is \\((x, y) = (1000, 10)\\).", "(1000, 10)", "last_sentence"),
    # ToRA: the program output block is not the answer, the box after it is
    ("```python\nprint(18)\n```\n```output\n18\n```\nSo Janet makes $\\boxed{18}$ dollars.", "18", "boxed"),
]

NO_ANSWER = [
    "Let me compute 12 * 7 = 84 and then 84 + ",  # cut off mid-computation
    "We have \\boxed{\\frac{1}{2",  # unclosed box at the token limit
    "",
    # Noise from an untrained model: a digit glued to a word or among undecodable bytes is no answer.
    "\ufffd\ufffdilitue7eering\ufffd3'",
    "\ufffd@Le is\ufffdLe\ufffd\x0bics5 val compre|uecs\ufffdis\ufffdtlV\ufffd\x11 There\ufffdhin divide\x06he",
    "The sum of the digits is abc12 and more",
]


@pytest.mark.parametrize(("text", "answer", "rule"), EXTRACTION)
def test_final_answer_is_found(text: str, answer: str, rule: str) -> None:
    found = extract_math_answer(text)
    assert found is not None
    assert (found.answer, found.rule) == (answer, rule)


@pytest.mark.parametrize("text", NO_ANSWER)
def test_no_final_answer(text: str) -> None:
    assert extract_math_answer(text) is None


def test_cut_response_gets_no_closing_sentence_guess() -> None:
    text = "So far the total is 12 apples. Next we add the pears, which gives 17 fruits."
    assert extract_math_answer(text, allow_last_sentence=True) is not None
    assert extract_math_answer(text, allow_last_sentence=False) is None


# (extracted answer, reference, equal?)
EQUIVALENCE = [
    # fractions, \dfrac, decimals
    ("\\dfrac{1}{2}", "0.5", True),
    ("\\frac{3}{4}", "\\tfrac34", True),
    ("0.75", "3/4", True),
    ("45.00", "45", True),
    ("0.333", "\\frac{1}{3}", False),
    ("0.3333333", "\\frac{1}{3}", True),
    ("4.2000001", "4.2", True),
    ("4.21", "4.2", False),
    # thousands separators (plain, LaTeX {,} and thin space)
    ("1,450,000", "1450000", True),
    ("1{,}450{,}000", "1,450,000", True),
    ("1\\,450\\,000", "1450000", True),
    ("1,450", "145", False),
    # percent, degrees, currency, units and \text{} wrappers
    ("25\\%", "25", True),
    ("25%", "0.25", True),
    ("0.25", "25\\%", True),
    ("0.25", "25", False),
    ("30^\\circ", "30", True),
    ("30^{\\circ}", "30", True),
    ("\\$45.00", "45", True),
    ("\\15", "15", True),
    ("10\\text{ cm}", "10", True),
    ("166 \\, \\text{cm}^2", "$166$", True),
    ("5 dollars", "5", True),
    ("6th place", "6", True),
    ("\\text{Evelyn}", "\\text{Evelyn}", True),
    ("\\text{(C)}", "\\text{(C)}", True),
    ("\\text{east}", "\\text{west}", False),
    # x = 3 against 3, and the reverse
    ("x = 3", "3", True),
    ("3", "x=3", True),
    ("y = 2x + 3", "2x+3", True),
    ("x = 4", "3", False),
    # radicals, pi, and the classic trap: 16√2 is not 16
    ("16\\sqrt{2}", "16", False),
    ("16√2", "16", False),
    ("16 sqrt(2)", "16", False),
    ("16\\sqrt{2}", "16\\sqrt2", True),
    ("\\frac{\\sqrt{8}}{2}", "\\sqrt{2}", True),
    ("2\\pi", "2 \\pi", True),
    ("\\pi/2", "\\frac{\\pi}{2}", True),
    ("3\\pi", "3", False),
    ("\\sqrt{16}", "4", True),
    ("2^{3}", "8", True),
    ("10^{10}", "10000000000", True),
    # intervals, tuples, sets (order-free), lists of answers, matrices
    ("[1,2)", "[1, 2)", True),
    ("(1,2]", "[1, 2)", False),
    ("(-\\infty, 3)", "(-\\infty,3)", True),
    ("(3, -2)", "(3,-2)", True),
    ("(27, 20, 13) \\text{ and } (18, 20, 22)", "$(27,20,13), (18,20,22)$", True),
    ("\\{1,2\\}", "\\{2,1\\}", True),
    ("8 \\text{ and } \\frac{1}{\\sqrt[3]{4}}", "$2^{-2 / 3}$, $8$", True),
    ("1, \\frac{3+\\sqrt{21}}{2}, \\frac{3-\\sqrt{21}}{2}",
     "$1$,$\\frac{3 + \\sqrt{21}}{2}$,$\\frac{3 - \\sqrt{21}}{2}$", True),
    ("1 \\text{ and } 3", "1,3", True),
    ("\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", "\\begin{pmatrix}1\\\\2\\end{pmatrix}", True),
    ("\\begin{pmatrix} 1 \\\\ 3 \\end{pmatrix}", "\\begin{pmatrix}1\\\\2\\end{pmatrix}", False),
    ("\\begin{pmatrix}1/5\\\\-18/5\\end{pmatrix}", "\\begin{pmatrix} 1/5 \\\\ -18/5 \\end{pmatrix}", True),
    ("\\begin{pmatrix}-2\\\\-14\\end{pmatrix}", "\\begin{pmatrix} -2 \\\\ 14 \\end{pmatrix}", False),
    # mixed numbers (MATH-500 writes some answers this way)
    ("137.5", "137 \\frac{1}{2}", True),
    ("\\frac{9}{5}", "1\\frac{4}{5}", True),
    # expressions
    ("\\frac{1}{\\sin x \\cos x} - \\tan x", "\\cot x", True),
    ("\\csc x", "\\cot x", False),
    ("x^2+2x+1", "(x+1)^2", True),
    ("567", "$\\frac{567}{4}$", False),
    ("-15", "15", False),
    # thin-space thousands separators in the reference
    ("900000000", "900,\\!000,\\!000", True),
    ("50625", "50,\\!625", True),
    ("50,625", "50,\\!625", True),
    ("50626", "50,\\!625", False),
    # a list of alternatives does not answer a question asking for one value
    ("3, 4, 5, 6, 7, or 8", "8", False),
    ("3, 4, 5, 6, 7, 8", "8", False),
    ("8, 8", "8", True),
    ("(2, 8)", "(2,8)", True),
]


@pytest.mark.parametrize(("pred", "gold", "equal"), EQUIVALENCE)
def test_equivalence(pred: str, gold: str, equal: bool) -> None:
    assert answers_equal(pred, gold) is equal


def test_plain_numbers_never_need_sympy() -> None:
    assert quick_equal("1,450,000", "1450000") is True
    assert quick_equal("72", "71") is False
    assert quick_equal("x^2", "x^{2}") is True  # same text after normalising
    assert quick_equal("\\sqrt{2}", "2^{1/2}") is None  # needs the symbolic check


def test_length_guard_skips_symbolic_work() -> None:
    huge = "+".join(["x"] * (MAX_ANSWER_CHARS // 2 + 10))
    assert quick_equal(huge, "x") is False


@pytest.mark.parametrize(
    ("raw", "text", "percent"),
    [
        ("$1,234$", "1234", False),
        ("50\\%", "50", True),
        ("x \\in [1, 2]", "[1, 2]", False),
        ("\\left( 1, 2 \\right)", "( 1, 2 )", False),
        ("12 cm^2", "12", False),
    ],
)
def test_normalize(raw: str, text: str, percent: bool) -> None:
    normal = normalize(raw)
    assert (normal.text, normal.percent) == (text, percent)
