"""`mainline bisect SERVICE [--env ENV] [--good SHA --bad SHA]`, as an operator types it."""


def test_bisect_is_a_command_with_its_options(mainline):
    result = mainline("bisect", "--help")
    assert result.exit_code == 0
    for option in ("--env", "--good", "--bad", "--wait / --no-wait"):
        assert option in result.output


def test_an_unknown_service_is_a_clear_error(mainline):
    result = mainline("bisect", "nosuch", "--no-wait")
    assert result.exit_code != 0
    assert "nosuch" in result.output and "Traceback" not in result.output
