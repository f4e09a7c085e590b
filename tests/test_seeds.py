"""Per-row seeds: stable, distinct, 63 bits."""

from saesteer.seeds import row_seed


def test_row_seeds_are_stable_and_distinct():
    assert row_seed(0, 3, 17, 0.4, 2) == row_seed(0, 3, 17, 0.4, 2)
    seeds = {row_seed(0, 3, f, c, p) for f in range(5) for c in (0.0, 0.2) for p in range(5)}
    assert len(seeds) == 50 and all(0 <= s < 2**63 for s in seeds)
