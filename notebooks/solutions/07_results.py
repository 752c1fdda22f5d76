"""Solution to notebook 07, exercise 1: the status rule of the claims table.

Run it: ``python notebooks/solutions/07_results.py`` (tests/test_solutions.py runs every solution).
It ends with the notebook's check: ``status`` must agree with srlib.claims.decide on a grid.
"""

from srlib import claims


def status(margin, band):
    """``held`` when the margin clears the noise band, ``not held`` when it clears it the other way,
    ``not resolved`` in between; ``band=None`` (no spread measured) means the sign alone decides."""
    b = 0.0 if band is None else band
    if margin > b:
        return "held"
    if margin < -b:
        return "not held"
    return "not resolved"


if __name__ == "__main__":
    grid = [(m, b) for m in (-2.0, -0.5, -0.1, 0.0, 0.1, 0.5, 2.0) for b in (None, 0.0, 0.1, 1.0)]
    wrong = [(m, b) for m, b in grid if status(m, b) != claims.decide(m, b)]
    assert not wrong, wrong
    print(f"check holds: all {len(grid)} cases agree with srlib.claims.decide")
