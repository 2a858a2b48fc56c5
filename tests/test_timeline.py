import numpy as np
import pytest

from anymole_usd.timeline import TimelineError, build_timeline, fill_times


def test_longest_run_is_context_and_rest_are_keys():
    times = np.r_[np.arange(1, 25), 36, 48]
    tl = build_timeline(times)
    assert tl.context == (1, 24)
    assert tl.keys.tolist() == [36, 48]
    assert [(g.start, g.end, len(g.times)) for g in tl.gaps] == [(24, 36, 11), (36, 48, 11)]
    assert tl.generated_times.tolist() == list(range(25, 36)) + list(range(37, 48))


def test_gaps_before_context_and_between_keys_are_filled():
    times = np.r_[0, 10, np.arange(20, 31), 40]
    tl = build_timeline(times)
    assert tl.context == (20, 30)
    assert tl.keys.tolist() == [0, 10, 40]
    assert [(g.start, g.end) for g in tl.gaps] == [(0, 10), (10, 20), (30, 40)]


def test_near_integer_float_times_match_with_tolerance():
    eps = 5.21540642e-8
    times = np.r_[np.arange(1, 61) * (1 + eps), 90 * (1 + eps)]
    tl = build_timeline(times)
    assert tl.context[0] == pytest.approx(1) and tl.context[1] == pytest.approx(60, abs=1e-5)
    assert len(tl.keys) == 1
    assert len(tl.generated_times) == 29
    # Authored samples kept in the output are the originals, not rounded.
    assert np.any(tl.output_times == times[0])


def test_tie_picks_earliest_run():
    tl = build_timeline(np.r_[1, 2, 3, 10, 11, 12])
    assert tl.context == (1, 3)


def test_explicit_context_and_keys_win_over_detection():
    dense = np.arange(0, 121)
    tl = build_timeline(dense, context=(0, 59), keys=[90, 120])
    assert not tl.detected
    assert tl.context == (0, 59)
    assert tl.keys.tolist() == [90, 120]
    assert tl.generated_times.tolist() == list(range(60, 90)) + list(range(91, 120))
    # Dense authored samples inside the gaps are replaced, not output twice.
    assert len(tl.output_times) == 121


def test_fps_changes_generated_sampling():
    tl = build_timeline(np.r_[np.arange(0, 10), 20], step=0.5)
    assert tl.generated_times.tolist() == [9.5 + 0.5 * i for i in range(21)]  # 9.5 .. 19.5


@pytest.mark.parametrize("context,keys,msg", [
    ((0, 5), [50], "outside the authored range"),
    ((0, 5), [3], "inside the context"),
    ((0, 5), [7.5], "not an authored sample"),
    ((5, 0), None, "ends before"),
    ((-10, 3), None, "outside the authored range"),
])
def test_bad_explicit_ranges(context, keys, msg):
    with pytest.raises(TimelineError, match=msg):
        build_timeline(np.r_[np.arange(0, 10), 20], context=context, keys=keys)


def test_fill_times_is_open_interval():
    assert fill_times(0, 3, 1.0).tolist() == [1, 2]
    assert fill_times(0, 1, 1.0).tolist() == []
