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
