#!/usr/bin/env python3
"""bench/compare on two results files: each figure's change, which way is
better, figures added and removed, and refusals of bad input."""
import json
import os
import subprocess
import sys
import tempfile
import unittest

COMPARE = sys.argv.pop(1) if len(sys.argv) > 1 else os.path.join(
    os.path.dirname(__file__), "..", "..", "bench", "compare")


def run(*args):
    return subprocess.run([sys.executable, COMPARE, *args], capture_output=True, text=True)


class CompareTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.a = os.path.join(self.dir.name, "a.json")
        self.b = os.path.join(self.dir.name, "b.json")
        with open(self.a, "w") as f:
            json.dump({"date": "2026-12-01", "join": {"https": {"join": {"p50_ms": 300.0}},
                                                      "postgres_local": {"join_ms": 128}},
                       "control": {"get_per_s": [1000, 2000], "ok": True},
                       "gone": {"p99_ms": 5}}, f)
        with open(self.b, "w") as f:
            json.dump({"date": "2026-12-07", "join": {"https": {"join": {"p50_ms": 150.0}},
                                                      "postgres_local": {"join_ms": 130}},
                       "control": {"get_per_s": [900, 2000], "ok": False},
                       "new": {"rows": 7}}, f)
        self.addCleanup(self.dir.cleanup)

    def line(self, out, figure):
        for line in out.splitlines():
            if line.startswith(figure + " "):
                return line
        self.fail(f"{figure} not in:\n{out}")

    def test_each_figure_with_its_change_and_which_way_is_better(self):
        r = run(self.a, self.b)
        self.assertEqual(r.returncode, 0, r.stderr)
        faster = self.line(r.stdout, "join.https.join.p50_ms")
        self.assertIn("0.500x (-50.0%)", faster)
        self.assertTrue(faster.rstrip().endswith("better"), faster)
        fewer = self.line(r.stdout, "control.get_per_s[0]")
        self.assertIn("0.900x (-10.0%)", fewer)
        self.assertTrue(fewer.rstrip().endswith("worse"), fewer)
        self.assertTrue(self.line(r.stdout, "control.get_per_s[1]").rstrip().endswith("same"))
        # Within the noise band: the same.
        self.assertTrue(self.line(r.stdout, "join.postgres_local.join_ms").rstrip().endswith("same"))
        self.assertIn("removed", self.line(r.stdout, "gone.p99_ms"))
        self.assertIn("added", self.line(r.stdout, "new.rows"))
        # Strings and booleans are not figures.
        self.assertNotIn("\ndate ", r.stdout)
        self.assertNotIn("control.ok", r.stdout)
        self.assertIn("6 figures: 1 better, 1 worse", r.stdout)

    def test_bad_input_is_refused_with_the_reason(self):
        r = run(self.a)
        self.assertEqual(r.returncode, 2)
        self.assertIn("usage", r.stderr)
        with open(self.b, "w") as f:
            f.write("{not json")
        r = run(self.a, self.b)
        self.assertEqual(r.returncode, 2)
        self.assertIn("cannot read " + self.b, r.stderr)
        r = run(self.a, os.path.join(self.dir.name, "missing.json"))
        self.assertEqual(r.returncode, 2)
        self.assertIn("missing.json", r.stderr)


if __name__ == "__main__":
    unittest.main()
