"""Editing a sequence file in place changes only what the command changes."""

from nurture.spec.edit import chain, edit_text, set_funnels, set_key

FILE = """\ufeff---\r
# Welcome sequence\r
name: Alpha    # shown to the coach\r
funnels:\r
  - website   # the main form\r
  - ads\r
steps:\r
  - name: Hello   # first\r
    action_type: wait\r
...\r
"""


def test_only_the_edited_lines_change_bom_crlf_and_markers_included():
    edited = edit_text(FILE, chain(set_key("active", False), set_funnels(["website", "referrals"])))
    assert edited == FILE.replace("  - ads\r\n", "  - referrals\r\n").replace(
        "name: Alpha    # shown to the coach\r\n",
        "name: Alpha    # shown to the coach\r\nactive: false\r\n",
    )


def test_an_existing_key_is_changed_where_it_stands_with_its_comment():
    text = "name: A\nactive: true  # on\nsteps: []\n"
    assert edit_text(text, set_key("active", False)) == "name: A\nactive: false # on\nsteps: []\n"


def test_a_key_added_or_removed_leaves_the_comment_above_the_next_key_where_it_is():
    from nurture.spec.edit import update

    text = (
        "name: A\nsteps:\n  - name: One\n    delay_days: 1 # a day\n    # only for hot leads\n"
        "    conditions: {tags: hot}\n# the cases\ntests: []\n"
    )
    added = edit_text(text, update({"delay_days": 1, "delay_hours": 2}, "steps", 0))
    assert added == text.replace("# a day\n", "# a day\n    delay_hours: 2\n")
    removed = edit_text(added, update({"delay_days": None}, "steps", 0))
    assert removed == added.replace("    delay_days: 1 # a day\n", "")
    last = edit_text(text, update({"conditions": {"tags": "hot"}, "active": False}, "steps", 0))
    assert last == text.replace("{tags: hot}\n", "{tags: hot}\n    active: false\n")
