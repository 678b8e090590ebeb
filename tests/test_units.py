import pytest

from pardag.units import format_size, parse_duration, parse_rate, parse_size


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


@pytest.mark.parametrize(
    ("text", "size"),
    [
        (1500, 1500),
        ("1500", 1500),
        ("10MiB", 10 * 1024**2),
        (" 512 kib ", 512 * 1024),
        ("1.5GiB", 3 * 1024**3 // 2),
        ("2MB", 2_000_000),
        ("3B", 3),
    ],
)
def test_sizes(text: object, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("bad", ["", "10 parsecs", "10m", "-1MiB", True, None, 1.5, -1])
def test_bad_sizes_name_the_setting(bad: object) -> None:
    with pytest.raises(ValueError, match="max_response"):
        parse_size(bad, "max_response")


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (10 * 1024**2, "10 MiB"),
        (2048, "2 KiB"),
        (1024**3, "1 GiB"),
        (1500, "1,500 bytes"),
        (0, "0 bytes"),
    ],
)
def test_sizes_are_named_in_their_largest_whole_unit(size: int, text: str) -> None:
    assert format_size(size) == text
