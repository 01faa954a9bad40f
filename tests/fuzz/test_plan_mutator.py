"""The plan mutator's edits keep every checksum valid, so fuzzed plans reach the metadata checks."""

from __future__ import annotations

import random
import zlib

from tests.plan import planedit

from fuzz import plan_mutator
from tensorplan.plan.format import PlanError
from tensorplan.plan.reader import read_header, verify_section

EDITS = 300


def test_metadata_edits_change_the_json_and_keep_the_checksums(plan_seeds):
    changed = 0
    for seed in range(EDITS):
        plan = plan_seeds[seed % len(plan_seeds)]
        edited = plan_mutator.edit_metadata(plan, random.Random(seed))
        view = memoryview(edited)
        header = read_header(view)  # raises PlanError for a bad header, table or CRC of either
        for section in header.sections.values():
            verify_section(view, section)
        changed += planedit.metadata(edited) != planedit.metadata(plan)
    assert changed >= EDITS * 0.9, f"only {changed} of {EDITS} edits changed the metadata"


def test_every_edit_has_a_valid_header_checksum_and_most_reach_the_metadata(plan_seeds):
    readable = 0
    for seed in range(EDITS):
        edited = plan_mutator.edit_plan(plan_seeds[seed % len(plan_seeds)], random.Random(seed))
        assert edited is not None, seed
        assert planedit.header(edited)["header_crc"] == zlib.crc32(edited[:52]), seed
        try:
            header = read_header(memoryview(edited))
        except PlanError:  # a header field or table entry edited to an odd value
            continue
        for section in header.sections.values():
            verify_section(memoryview(edited), section)
        readable += 1
    assert EDITS * 0.8 <= readable < EDITS, readable


def test_the_edits_are_reproducible_from_the_seed(plan_seeds):
    first = [plan_mutator.edit_plan(plan_seeds[0], random.Random(seed)) for seed in range(20)]
    again = [plan_mutator.edit_plan(plan_seeds[0], random.Random(seed)) for seed in range(20)]
    assert first == again
    assert len(set(first)) == 20


def test_a_plan_planedit_cannot_take_apart_is_left_to_byte_mutations(plan_seeds):
    assert plan_mutator.edit_plan(b"not a plan", random.Random(0)) is None
    assert plan_mutator.edit_plan(plan_seeds[0][:100], random.Random(0)) is None
