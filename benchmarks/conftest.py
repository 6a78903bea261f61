"""Every benchmark run says where it ran: CPU model, kernel variant, threads, GPU (a figure without
its machine cannot be compared)."""


def pytest_report_header(config):
    from videobert.ops.cli import describe_machine

    return describe_machine()


def pytest_terminal_summary(terminalreporter):
    from videobert.ops.cli import describe_machine

    terminalreporter.write_line(describe_machine())
