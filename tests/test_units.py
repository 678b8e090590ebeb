import pytest

from pardag.units import parse_duration, parse_rate


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("200ms", 0.2),
        ("5s", 5.0),
        ("2m", 120.0),
        ("1h", 3600.0),
        ("1.5", 1.5),
        (3, 3.0),
        (" 7 s ", 7.0),
    ],
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("bad", ["", "5 parsecs", "-1s", True, None, "nan", float("inf"), -2])
def test_bad_durations_name_the_setting(bad: object) -> None:
    with pytest.raises(ValueError, match="timeout"):
        parse_duration(bad, "timeout")


@pytest.mark.parametrize(
    ("text", "rate"), [("10/s", 10.0), ("120/m", 2.0), (5, 5.0), ("1/ms", 1000.0)]
)
def test_rates(text: object, rate: float) -> None:
    assert parse_rate(text) == pytest.approx(rate)


@pytest.mark.parametrize("bad", ["10", "0/s", "x/s", False, -1])
def test_bad_rates(bad: object) -> None:
    with pytest.raises(ValueError, match="rate"):
        parse_rate(bad)
