from diffgen_utils import plotting


def test_format_table_aligns_and_marks_missing():
    text = plotting.format_table(["id", "value"], [["a", 0.5], ["long name", 12.25]], ["<", ".2f"])
    assert text.splitlines() == ["id         value", "a           0.50", "long name  12.25"]
    text = plotting.format_table(["a", "name"], [[1.5, "x"], [10.25, None]], [".2f", "<"])
    assert text.splitlines()[2].split() == ["10.25", "-"]


def test_format_table_empty():
    assert plotting.format_table(["id"], [], ["<"], empty="none") == "none"
