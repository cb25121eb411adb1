from switchyard_kit._replica import parse_lsn


def test_lsn_text_orders_like_wal_positions() -> None:
    assert parse_lsn("0/16B3748") == 0x16B3748
    assert parse_lsn("1/0") > parse_lsn("0/FFFFFFFF")
