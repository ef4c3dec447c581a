"""Indicator values against hand-computed references (worked out in the comments)."""

from __future__ import annotations

import pytest

from shared.errors import ValidationFailed
from shared.market import indicators as ind

approx = pytest.approx


def test_sma():
    assert ind.sma([1, 2, 3, 4, 5], 3) == [None, None, 2, 3, 4]
    assert ind.sma([1, 2], 3) == [None, None]


def test_ema_seeded_with_sma():
    # k = 2/(3+1) = 0.5; seed = mean(10, 11, 12) = 11; 11*.5+11*.5 = 11; 13*.5+11*.5 = 12; 14*.5+12*.5 = 13
    assert ind.ema([10, 11, 12, 11, 13, 14], 3) == [None, None, 11, 11, 12, 13]


def test_rsi_wilder():
    # changes +1 +1 -1 +2 -1; first averages over 3: gain 2/3, loss 1/3 -> RS 2 -> 66.667
    # then gain (2/3*2+2)/3 = 10/9, loss (1/3*2)/3 = 2/9 -> RS 5 -> 83.333
    # then gain (10/9*2)/3 = 20/27, loss (2/9*2+1)/3 = 13/27 -> RS 20/13 -> 60.606
    out = ind.rsi([10, 11, 12, 11, 13, 12], 3)
    assert out[:3] == [None, None, None]
    assert out[3:] == [approx(200 / 3), approx(250 / 3), approx(100 - 1300 / 33)]


def test_rsi_edge_cases():
    assert ind.rsi([1, 2, 3, 4], 3)[-1] == 100.0  # no losses
    assert ind.rsi([5, 5, 5, 5], 3)[-1] == 50.0  # no movement at all


def test_bollinger_population_std():
    up, mid, lo = ind.bollinger([1, 2, 3], 3, 2.0)
    sd = (2 / 3) ** 0.5  # population std of 1, 2, 3
    assert mid[-1] == 2 and up[-1] == approx(2 + 2 * sd) and lo[-1] == approx(2 - 2 * sd)
    assert up[:2] == [None, None]


def test_atr_wilder():
    highs = [10, 11, 12, 11, 13]
    lows = [8, 9, 10, 9, 10]
    closes = [9, 10, 11, 9.5, 12]
    # TR from bar 1: 2, 2, 2 -> first ATR = 2; TR4 = max(3, |13-9.5|, |10-9.5|) = 3.5 -> (2*2+3.5)/3 = 2.5
    assert ind.atr(highs, lows, closes, 3) == [None, None, None, approx(2.0), approx(2.5)]


def test_macd_small_windows():
    closes = [1, 2, 3, 4, 5, 4]
    # EMA2: 1.5, 2.5, 3.5, 4.5, 4.1667 (from bar 1); EMA3: 2, 3, 4, 4 (from bar 2)
    # MACD: 0.5, 0.5, 0.5, 0.16667; signal EMA2 of MACD: seed 0.5 at bar 3, 0.5, 0.27778; hist -0.11111
    line, sig, hist = ind.macd(closes, 2, 3, 2)
    assert line == [None, None, approx(0.5), approx(0.5), approx(0.5), approx(1 / 6)]
    assert sig == [None, None, None, approx(0.5), approx(0.5), approx(5 / 18)]
    assert hist[-1] == approx(1 / 6 - 5 / 18)


def test_parse_names_and_lookback():
    specs = ind.parse_indicators(["SMA_20", "ema_50", "rsi_14", "macd", "bbands_20", "atr_14", "sma_20"])
    assert [s.name for s in specs] == ["sma_20", "ema_50", "rsi_14", "macd", "bbands_20", "atr_14"]
    macd = specs[3]
    assert macd.params == (12, 26, 9) and macd.lookback == 3 * 26 + 9
    assert specs[4].params == (20, 2.0)


@pytest.mark.parametrize("bad", ["vwap", "sma", "sma_1", "sma_999", "macd_26_12_9", "bbands_20_0", "", "rsi_14x"])
def test_unknown_names_rejected(bad):
    with pytest.raises(ValidationFailed) as ei:
        ind.parse_indicators([bad])
    assert ei.value.status == 422 and len(ei.value.errors["names"]) == 1


def test_compute_multi_line_values():
    closes = [float(x) for x in range(1, 41)]
    rows = ind.compute(ind.parse_indicator("bbands_20"), closes, closes, closes)
    value, values = rows[-1]
    assert value == approx(30.5) and set(values) == {"upper", "middle", "lower"}
    assert values["upper"] - values["middle"] == approx(values["middle"] - values["lower"])
